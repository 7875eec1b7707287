/**
 * The resync's races on the real engines (docs/guarantees.md, "Resync"),
 * each interleaving forced, not hoped for: the backfill's scan reads the
 * table and its bulk `create` is held at a proxy in front of OpenSearch while
 * the table changes and the updater (applyStreamRecords with a resync state)
 * applies the changes; then the create is let go, the resync drains and the
 * tombstones are removed. The index being filled must then hold exactly what
 * the table holds, as the serving index does. The same races on a model of
 * every interleaving: resync-protocol.property.test.ts.
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { afterAll, describe, expect, it } from 'vitest';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromStreamsRecord } from '../../../pipeline/apply/stream-records';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import { ensureProgressTable, SegmentCheckpointStore } from '../../../pipeline/progress/checkpoint';
import type { ResyncState } from '../../../pipeline/resync/resync-state';
import {
  countTombstones,
  removeTombstones,
  TOMBSTONE_FIELD,
  TOMBSTONE_MAPPING_PROPERTIES,
} from '../../../pipeline/resync/tombstones';
import { type ScanSegmentOutcome, scanSegment } from '../../../pipeline/scan/scan-segment';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { opensearchUrl, useEngines } from '../../support/engines';
import { type FaultyProxy, startFaultyProxy } from '../../support/opensearch-proxy';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  indexDocuments,
  readStream,
  temporaryDeadLetters,
} from '../apply/apply-stream-fixtures';

const engines = useEngines();
const { dynamodb, opensearch } = engines;
const RUN = 'run-races';
const proxies: FaultyProxy[] = [];
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
});

interface RaceOptions {
  keySchema: KeySchema;
  /** The serving mapping; `routes` name the other serving indices. */
  mapping: (serving: string[]) => MappingConfig;
  /** How many serving names (each with its index being filled). @default 1 */
  servingNames?: number;
  /** Field mappings of the serving indices and of the new ones (a mapping change). */
  servingProperties?: Record<string, { type: 'keyword' | 'integer' }>;
  newProperties?: Record<string, { type: 'keyword' | 'integer' }>;
}

/**
 * A table with a stream, serving indices kept current by the updater, and new indices a resync fills:
 * the pieces a test drives in the order it wants.
 */
async function setup(prefix: string, options: RaceOptions) {
  const { keySchema } = options;
  const table = await engines.createTable(prefix, { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const serving = Array.from({ length: options.servingNames ?? 1 }, (_, i) =>
    engines.indexName(`${prefix}-serving-${i}`),
  );
  const filling = serving.map((name) => engines.deleteIndexAfter(`${name}-${RUN}`));
  const targets = Object.fromEntries(serving.map((name, i) => [name, filling[i] as string]));
  for (const index of serving) {
    await opensearch.indices.create({
      index,
      body: { mappings: { properties: { ...options.servingProperties } } },
    });
  }
  for (const index of filling) {
    await opensearch.indices.create({
      index,
      body: { mappings: { properties: { ...options.newProperties, ...TOMBSTONE_MAPPING_PROPERTIES } } },
    });
  }
  const servingMapping = options.mapping(serving);
  // What the backfill of the resync writes to: each serving name replaced by its new index.
  const newMapping = options.mapping(filling);

  let phase: ResyncState['phase'] | 'none' = 'none';
  const deadLetters = temporaryDeadLetters();
  const updaterDeps = applyStreamDeps(engines, table, keySchema, servingMapping, {
    deadLetters,
    resync: async () =>
      phase === 'none' ? undefined : { runId: RUN, phase, targets, startedAt: '', phaseChangedAt: '' },
  });
  let applied: string | undefined;
  /** The updater applies every change the stream holds that it has not applied yet, as one batch. */
  const updater = async () => {
    const records = await readStream(engines.streams, dynamodb, table, applied);
    if (records.length === 0) return undefined;
    applied = records.at(-1)?.dynamodb?.SequenceNumber;
    const result = await applyStreamRecords(records.map(fromStreamsRecord), updaterDeps);
    expect(result.firstFailedSequenceNumber).toBeUndefined();
    return result;
  };

  const progressTable = engines.tableName(`${prefix}-progress`);
  await ensureProgressTable(dynamodb, progressTable);
  /**
   * The backfill's scan of the whole table into the new indices, its bulk `create` held at a proxy
   * until `release`: `held` resolves once the scan has read the table and its create is waiting.
   */
  const heldScan = async () => {
    let reached!: () => void;
    const held = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const proxy = await startFaultyProxy(opensearchUrl(), {
      beforeBulk: async (actions) => {
        if (!actions.some((action) => action.operation === 'create')) return;
        reached();
        await gate;
      },
    });
    proxies.push(proxy);
    const outcome: Promise<ScanSegmentOutcome> = scanSegment(
      { runId: RUN, table, index: filling[0] as string, segment: 0, totalSegments: 1 },
      {
        dynamodb,
        opensearch: createOpenSearchClient({ endpoint: proxy.url }),
        checkpoints: new SegmentCheckpointStore(dynamodb, progressTable),
        deadLetters,
        mapping: newMapping,
        keySchema,
      },
    );
    // A scan that fails before its create would otherwise leave `held` waiting forever.
    await Promise.race([held, outcome]);
    return {
      release: async () => {
        release();
        const done = await outcome;
        if (done.status !== 'COMPLETED') throw new Error(`the scan ended ${done.status}`);
        return done.result;
      },
    };
  };

  /** Every segment is done: DRAINING, then the tombstones go (no FILLING batch runs in these tests). */
  const drainAndRemoveTombstones = async (client: Client = opensearch) => {
    phase = 'DRAINING';
    let deleted = 0;
    for (const index of filling) {
      const removal = await removeTombstones(client, index, RUN);
      expect(removal.remaining).toBe(0);
      deleted += removal.deleted;
    }
    return deleted;
  };

  const put = (item: Item) => dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  const remove = (key: Item) => dynamodb.send(new DeleteItemCommand({ TableName: table, Key: key }));
  /** The serving index and the new one hold exactly the documents the mapping makes of the table now. */
  const expectBothEqualTable = async () => {
    for (const mapping of [servingMapping, newMapping]) {
      await expectIndexEqualsTable(
        { search: opensearch, dynamodb, table, index: mapping.index },
        keySchema,
        mapping,
      );
    }
  };
  return {
    table,
    serving,
    filling,
    updater,
    heldScan,
    drainAndRemoveTombstones,
    put,
    remove,
    expectBothEqualTable,
    fill: () => {
      phase = 'FILLING';
    },
  };
}

const byPk: RaceOptions = {
  keySchema: { partitionKey: 'pk' },
  mapping: ([index]) => ({ index: index as string }),
};
const item = (pk: string, v: number | string): Item => ({
  pk: { S: pk },
  v: typeof v === 'number' ? { N: String(v) } : { S: v },
});
const key = (pk: string): Item => ({ pk: { S: pk } });
/** The index's documents (after a refresh), by id. */
const documentsOf = async (index: string) => Object.fromEntries(await indexDocuments(opensearch, index));

describe('the resync races, on the real engines', () => {
  it('create after delete: the scan read the item, the delete became a tombstone, the create lands: no document', async () => {
    // Prepare: the serving index is current; the resync starts (FILLING before the scan's first read)
    const t = await setup('race-delete', byPk);
    await t.put(item('gone', 1));
    await t.put(item('kept', 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    // Act: the item is deleted after the scan read it; its create lands after the delete was applied
    await t.remove(key('gone'));
    await t.updater();
    const tombstones = await countTombstones(opensearch, t.filling[0] as string, RUN);
    const counts = await scan.release();
    const removed = await t.drainAndRemoveTombstones();

    // Assess
    expect(tombstones).toBe(1);
    expect(counts).toMatchObject({ scanned: 2, created: 1, alreadyPresent: 1, failed: 0 });
    expect(removed).toBe(1);
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      kept: { pk: 'kept', v: 1 },
    });
    await t.expectBothEqualTable();
  });

  it('create after update: the older read lands after the update and leaves the updated body', async () => {
    const t = await setup('race-update', byPk);
    await t.put(item('a', 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    await t.put(item('a', 2));
    await t.updater();
    const counts = await scan.release();
    await t.drainAndRemoveTombstones();

    expect(counts).toMatchObject({ scanned: 1, created: 0, alreadyPresent: 1 });
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      a: { pk: 'a', v: 2 },
    });
    await t.expectBothEqualTable();
  });

  it('delete then re-create: the re-created document replaces the tombstone and survives its removal', async () => {
    const t = await setup('race-recreate', byPk);
    await t.put(item('a', 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    await t.remove(key('a'));
    await t.updater(); // a batch of its own: the tombstone is written
    await t.put(item('a', 3));
    await t.updater(); // the re-creation overwrites it
    const counts = await scan.release();
    const removed = await t.drainAndRemoveTombstones();

    expect(counts).toMatchObject({ scanned: 1, created: 0, alreadyPresent: 1 });
    expect(removed).toBe(0);
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      a: { pk: 'a', v: 3 },
    });
    await t.expectBothEqualTable();
  });

  it('a re-creation that lands while the tombstones are being removed survives (if_seq_no)', async () => {
    // Prepare: two tombstones; the removal has found them and is about to delete them
    const t = await setup('race-removal', byPk);
    for (const pk of ['a', 'b', 'c']) await t.put(item(pk, 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();
    await t.remove(key('a'));
    await t.remove(key('b'));
    await t.updater();
    await scan.release();
    let raced = 0;
    const proxy = await startFaultyProxy(opensearchUrl(), {
      // Between the removal's search and its bulk delete, the updater (now DRAINING) re-creates a.
      beforeBulk: async (actions) => {
        if (raced > 0 || !actions.some((action) => action.operation === 'delete')) return;
        raced += 1;
        await t.put(item('a', 4));
        await t.updater();
      },
    });
    proxies.push(proxy);

    // Act
    const removed = await t.drainAndRemoveTombstones(createOpenSearchClient({ endpoint: proxy.url }));

    // Assess: b's tombstone went; a's was replaced by the re-created document, which the delete left alone
    expect(raced).toBe(1);
    expect(removed).toBe(1);
    expect(await countTombstones(opensearch, t.filling[0] as string, RUN)).toBe(0);
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      a: { pk: 'a', v: 4 },
      c: { pk: 'c', v: 1 },
    });
    await t.expectBothEqualTable();
  });

  it('an update the new mapping rejects: the older read does not come back after the rejected document is removed', async () => {
    // Prepare: the resync changes v from keyword to integer; the serving index takes any v
    const t = await setup('race-rejected', {
      ...byPk,
      servingProperties: { v: { type: 'keyword' } },
      newProperties: { v: { type: 'integer' } },
    });
    await t.put(item('a', 1));
    await t.put(item('b', 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    // Act: a becomes a value the new index refuses; the scan's create of its older read lands after
    await t.put(item('a', 'many'));
    const applied = await t.updater();
    const counts = await scan.release();
    await t.drainAndRemoveTombstones();

    // Assess: a is dead-lettered, and the new index shows no version of it (not the one the table no longer holds)
    expect(applied?.deadLettered).toBe(1);
    expect(counts).toMatchObject({ scanned: 2, created: 1, alreadyPresent: 1 });
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      b: { pk: 'b', v: 1 },
    });
    expect(await documentsOf(t.serving[0] as string)).toEqual({
      a: { pk: 'a', v: 'many' },
      b: { pk: 'b', v: 1 },
    });
  });

  it('aggregated documents: a partition the updater rebuilt, one it emptied, one changed after the create landed', async () => {
    // Prepare
    const keySchema = { partitionKey: 'pk', sortKey: 'sk' };
    const t = await setup('race-aggregate', {
      keySchema,
      mapping: ([index]) => ({
        index: index as string,
        aggregate: { parentSortKey: 'profile', childrenField: 'records' },
      }),
    });
    const row = (pk: string, sk: string, v: number): Item => ({
      pk: { S: pk },
      sk: { S: sk },
      v: { N: String(v) },
    });
    for (const pk of ['grown', 'emptied', 'late']) {
      await t.put(row(pk, 'profile', 1));
      await t.put(row(pk, 'order#1', 1));
    }
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    // Act: rebuilt and emptied before the scan's creates land; 'late' changes now but is applied after
    await t.put(row('grown', 'order#2', 2));
    await t.remove({ pk: { S: 'emptied' }, sk: { S: 'profile' } });
    await t.remove({ pk: { S: 'emptied' }, sk: { S: 'order#1' } });
    await t.updater();
    await t.put(row('late', 'order#1', 9));
    const counts = await scan.release();
    await t.updater();
    const removed = await t.drainAndRemoveTombstones();

    // Assess
    expect(counts).toMatchObject({ scanned: 6, created: 2, alreadyPresent: 4, failed: 0 });
    expect(removed).toBe(1);
    const documents = await indexDocuments(opensearch, t.filling[0] as string);
    expect([...documents.keys()].sort()).toEqual(['grown', 'late']);
    expect(documents.get('grown')).toMatchObject({ records: [{ sk: 'order#1' }, { sk: 'order#2', v: 2 }] });
    expect(documents.get('late')).toMatchObject({ records: [{ sk: 'order#1', v: 9 }] });
    await t.expectBothEqualTable();
  });

  it('routes: two serving names, each with its new index, a delete and an update in each', async () => {
    // Prepare
    const t = await setup('race-routes', {
      keySchema: { partitionKey: 'pk' },
      servingNames: 2,
      mapping: ([main, other]) => ({
        index: main as string,
        routes: [{ prefix: 'b#', index: other as string }],
      }),
    });
    for (const pk of ['a#1', 'a#2', 'b#1', 'b#2']) await t.put(item(pk, 1));
    await t.updater();
    t.fill();
    const scan = await t.heldScan();

    // Act
    await t.remove(key('a#1'));
    await t.put(item('a#2', 2));
    await t.remove(key('b#1'));
    await t.put(item('b#2', 2));
    await t.updater();
    const counts = await scan.release();
    const removed = await t.drainAndRemoveTombstones();

    // Assess
    expect(counts).toMatchObject({ scanned: 4, created: 0, alreadyPresent: 4 });
    expect(removed).toBe(2);
    expect(await documentsOf(t.filling[0] as string)).toEqual({
      'a#2': { pk: 'a#2', v: 2 },
    });
    expect(await documentsOf(t.filling[1] as string)).toEqual({
      'b#2': { pk: 'b#2', v: 2 },
    });
    for (const index of [...t.serving, ...t.filling]) {
      expect(await countTombstones(opensearch, index, RUN)).toBe(0);
      const documents = await indexDocuments(opensearch, index);
      expect([...documents.values()].some((body) => TOMBSTONE_FIELD in (body as object))).toBe(false);
    }
    expect([...(await indexDocuments(opensearch, t.serving[0] as string)).keys()]).toEqual(['a#2']);
    expect([...(await indexDocuments(opensearch, t.serving[1] as string)).keys()]).toEqual(['b#2']);
  });
});
