/**
 * repairKeys against the real engines. The races are made to happen every
 * time: a proxy in front of OpenSearch holds repair's bulk write until the
 * updater's code (applyStreamRecords, fed from the table's real stream) has
 * applied a newer change of the same key.
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromStreamsRecord, type StreamChange } from '../../../pipeline/apply/stream-records';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import { type RepairDeps, repairKeys } from '../../../pipeline/repair/repair-keys';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { opensearchUrl, useEngines } from '../../support/engines';
import { startFaultyProxy } from '../../support/opensearch-proxy';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  indexDocuments,
  readStream,
  temporaryDeadLetters,
} from '../apply/apply-stream-fixtures';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

const item = (pk: string, sk: string, rest: Item = {}): Item => ({ pk: { S: pk }, sk: { S: sk }, ...rest });
const key = (pk: string, sk: string): Item => ({ pk: { S: pk }, sk: { S: sk } });

async function setup(name: string, mapping: Omit<MappingConfig, 'index'> = {}) {
  const table = await engines.createTable(name, { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const index = engines.indexName(name);
  const config: MappingConfig = { index, ...mapping };
  const deadLetters = temporaryDeadLetters();
  const updaterDeps = applyStreamDeps(engines, table, keySchema, config, { runId: 'updater-test' });
  let applied: string | undefined;
  /** The updater: applies the stream's records since its last call, in order. */
  const updater = async () => {
    const records = await readStream(streams, dynamodb, table, applied);
    if (records.length === 0) return;
    applied = records[records.length - 1]!.dynamodb!.SequenceNumber;
    const changes: StreamChange[] = records.map(fromStreamsRecord);
    const result = await applyStreamRecords(changes, updaterDeps);
    expect(result.firstFailedSequenceNumber).toBeUndefined();
  };
  const put = (value: Item) => dynamodb.send(new PutItemCommand({ TableName: table, Item: value }));
  const remove = (pk: string, sk: string) =>
    dynamodb.send(new DeleteItemCommand({ TableName: table, Key: key(pk, sk) }));
  const deps = (opensearch = search): RepairDeps => ({
    opensearch,
    dynamodb,
    table,
    keySchema,
    mapping: config,
    deadLetters,
    runId: 'repair-test',
  });
  const equalsTable = () => expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, config);
  return { table, index, config, deadLetters, updater, put, remove, deps, equalsTable };
}

/** An OpenSearch client through a proxy that runs `race` before each bulk request that touches `id`. */
async function racingClient(id: string, race: () => Promise<void>) {
  const proxy = await startFaultyProxy(opensearchUrl(), {
    beforeBulk: async (actions) => {
      if (actions.some((action) => action.id === id)) await race();
    },
  });
  return { proxy, client: createOpenSearchClient({ endpoint: proxy.url }) };
}

describe('repairKeys', () => {
  it('a deleted, an altered and an extra document, and a document already right: fixed from the table', async () => {
    // Prepare
    const t = await setup('repair-drift');
    for (const sk of ['deleted', 'altered', 'extra', 'fine']) await t.put(item('d', sk, { v: { S: sk } }));
    await t.updater();
    await search.delete({ index: t.index, id: 'd|deleted', refresh: true });
    await search.index({ index: t.index, id: 'd|altered', body: { pk: 'd', sk: 'altered', v: 'stale' } });
    await t.remove('d', 'extra'); // the table lost it, the index did not (its change never applied)

    // Act
    const result = await repairKeys(
      ['deleted', 'altered', 'extra', 'fine'].map((sk) => ({ key: key('d', sk) })),
      t.deps(),
    );

    // Assess
    expect(result).toMatchObject({
      indexed: 2,
      deleted: 1,
      unchanged: 1,
      superseded: 0,
      deadLettered: 0,
      failed: [],
    });
    expect(result.repairedIds.map(({ id }) => id).sort()).toEqual(['d|altered', 'd|deleted', 'd|extra']);
    await t.equalsTable();
  });

  it("verify's read is stale (the updater wrote since): the key is read again once and repaired from the table", async () => {
    // Prepare: verify read version 0 of the document; the updater has written twice since.
    const t = await setup('repair-stale-seen');
    await t.put(item('s', '1', { v: { N: '1' } }));
    await t.updater();
    const { body: seen } = await search.get({ index: t.index, id: 's|1' });
    await t.put(item('s', '1', { v: { N: '2' } }));
    await t.updater();
    await search.index({ index: t.index, id: 's|1', body: { pk: 's', sk: '1', v: 99 } }); // drift after it

    // Act
    const result = await repairKeys(
      [
        {
          key: key('s', '1'),
          seen: { index: t.index, id: 's|1', seqNo: seen._seq_no!, primaryTerm: seen._primary_term! },
        },
      ],
      t.deps(),
    );

    // Assess
    expect(result).toMatchObject({ indexed: 1, superseded: 0, failed: [] });
    expect((await indexDocuments(search, t.index)).get('s|1')).toEqual({ pk: 's', sk: '1', v: 2 });
  });

  it('the updater writes a newer value between the read and every write: superseded, and the newer value stays', async () => {
    // Prepare: the document is stale. Each time repair is about to write, the item changes, the updater applies
    // that change, and the item changes once more (the updater lags that one): the re-read finds work to do again.
    const t = await setup('repair-superseded');
    await t.put(item('r', '1', { v: { N: '0' } }));
    await t.updater();
    await search.index({ index: t.index, id: 'r|1', body: { pk: 'r', sk: '1', v: -1 } });
    let writes = 0;
    const { proxy, client } = await racingClient('r|1', async () => {
      writes += 1;
      await t.put(item('r', '1', { v: { N: String(2 * writes - 1) } }));
      await t.updater();
      await t.put(item('r', '1', { v: { N: String(2 * writes) } }));
    });

    // Act
    const result = await repairKeys([{ key: key('r', '1') }], t.deps(client));
    await client.close();
    await proxy.close();

    // Assess: two attempts (the first, and one after reading again) lost to the updater; its value 3 stays,
    // not repair's older 2. Once the updater drains, the index equals the table.
    expect(writes).toBe(2);
    expect(result).toMatchObject({ indexed: 0, deleted: 0, superseded: 1, failed: [] });
    expect((await indexDocuments(search, t.index)).get('r|1')).toEqual({ pk: 'r', sk: '1', v: 3 });
    await t.updater();
    await t.equalsTable();
  });

  it('the item is deleted and the delete applied between the read and the create: the created document is taken back', async () => {
    // Prepare: the document is missing; before repair's create lands, the item is deleted and the updater applies
    // that delete (to an absent document: nothing to conflict with later).
    const t = await setup('repair-resurrection');
    await t.put(item('z', 'keep'));
    await t.put(item('z', 'gone', { v: { S: 'old' } }));
    await t.updater();
    await search.delete({ index: t.index, id: 'z|gone', refresh: true });
    let races = 0;
    const { proxy, client } = await racingClient('z|gone', async () => {
      races += 1;
      if (races > 1) return; // the second request touching it is repair's own take-back
      await t.remove('z', 'gone');
      await t.updater();
    });

    // Act
    const result = await repairKeys([{ key: key('z', 'gone') }], t.deps(client));
    await client.close();
    await proxy.close();

    // Assess: no resurrection.
    expect(races).toBe(2);
    expect(result).toMatchObject({ indexed: 0, superseded: 1, failed: [] });
    expect([...(await indexDocuments(search, t.index)).keys()]).toEqual(['z|keep']);
    await t.equalsTable();
  });

  it('an item OpenSearch refuses: dead-lettered with the reason, and its stale document removed', async () => {
    // Prepare: qty is an integer field; the item now holds text there.
    const t = await setup('repair-poison');
    await search.indices.create({
      index: t.index,
      body: { mappings: { properties: { qty: { type: 'integer' } } } },
    });
    await t.put(item('p', 'poison', { qty: { N: '1' } }));
    await t.updater();
    await t.put(item('p', 'poison', { qty: { S: 'lots' } }));

    // Act
    const result = await repairKeys([{ key: key('p', 'poison') }], t.deps());

    // Assess
    expect(result).toMatchObject({ indexed: 0, deleted: 1, deadLettered: 1, failed: [] });
    expect((await indexDocuments(search, t.index)).has('p|poison')).toBe(false);
    const [letter] = await t.deadLetters.read('repair-test');
    expect(letter).toMatchObject({
      table: t.table,
      index: t.index,
      id: 'p|poison',
      errorType: 'mapper_parsing_exception',
    });
    expect(letter!.reason).toMatch(/qty/);
  });

  it('an aggregated mapping: the partition document is rebuilt from a consistent Query, or deleted when it is empty', async () => {
    // Prepare
    const t = await setup('repair-aggregate', { aggregate: { parentSortKey: '0', childrenField: 'items' } });
    await t.put(item('a', '0', { v: { N: '1' } }));
    await t.put(item('a', '2', { v: { N: '2' } }));
    await t.put(item('b', '1'));
    await t.updater();
    await search.index({ index: t.index, id: 'a', body: { pk: 'a', items: [] } });
    await t.remove('b', '1'); // not applied: the document of b stays

    // Act
    const result = await repairKeys([{ key: { pk: { S: 'a' } } }, { key: { pk: { S: 'b' } } }], t.deps());

    // Assess
    expect(result).toMatchObject({ indexed: 1, deleted: 1, failed: [] });
    await t.equalsTable();
  });

  it('OpenSearch unreachable: every key is reported failed with the reason, nothing is thrown', async () => {
    const t = await setup('repair-down');
    await t.put(item('x', '1'));
    const down = createOpenSearchClient({ endpoint: 'http://127.0.0.1:9' });

    const result = await repairKeys([{ key: key('x', '1') }], t.deps(down));
    await down.close();

    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.reason).toMatch(/could not read documents of index/);
  });
});
