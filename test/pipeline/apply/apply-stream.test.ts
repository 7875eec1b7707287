/**
 * applyStreamRecords against the real engines: changes made in DynamoDB Local,
 * read back from its stream through the Streams API, applied to OpenSearch.
 * After each step the index must equal the table.
 */
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromStreamsRecord, type StreamChange } from '../../../pipeline/apply/stream-records';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { createTable, opensearchUrl, uniqueName, useEngines } from '../../support/engines';
import { startFaultyProxy } from '../../support/opensearch-proxy';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  FAST_BULK,
  indexDocuments,
  readStream,
  UNREACHABLE_OPENSEARCH,
} from './apply-stream-fixtures';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

/** A table with a stream, an index name, and the deps to apply its changes. */
async function setup(
  name: string,
  options: { stream?: 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY'; mapping?: Omit<MappingConfig, 'index'> } = {},
) {
  const table = await createTable(dynamodb, uniqueName(name), {
    keySchema,
    stream: options.stream ?? 'NEW_AND_OLD_IMAGES',
  });
  const index = uniqueName(name);
  engines.deleteTableAfter(table);
  engines.deleteIndexAfter(index);
  const mapping: MappingConfig = { index, ...options.mapping };
  const deps = applyStreamDeps(engines, table, keySchema, mapping, { runId: 'apply-test' });
  const { deadLetters } = deps;
  let seen: string | undefined;
  /** The stream's records since the last call, as changes. */
  const newChanges = async (): Promise<StreamChange[]> => {
    const records = await readStream(streams, dynamodb, table, seen);
    if (records.length > 0) seen = records[records.length - 1]!.dynamodb!.SequenceNumber;
    return records.map(fromStreamsRecord);
  };
  const put = (item: Item) => dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  const remove = (pk: string, sk: string) =>
    dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } } }));
  const equalsTable = () => expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, mapping);
  return { table, index, mapping, deps, deadLetters, newChanges, put, remove, equalsTable };
}

const item = (pk: string, sk: string, rest: Item = {}): Item => ({ pk: { S: pk }, sk: { S: sk }, ...rest });

describe('applyStreamRecords', () => {
  it('puts, updates, deletes, a delete then re-create and many updates of one key: the index equals the table', async () => {
    // Prepare
    const t = await setup('apply-mixed');
    for (let i = 0; i < 12; i++) {
      await t.put(item('user', `u${i}`, { n: { N: `${i}.50` }, exact: { S: `v${i}` } }));
    }
    for (let i = 0; i < 4; i++) await t.put(item('user', `u${i}`, { n: { N: '9007199254740993' } }));
    for (let i = 4; i < 7; i++) await t.remove('user', `u${i}`);
    await t.remove('user', 'u8');
    await t.put(item('user', 'u8', { recreated: { BOOL: true } }));
    for (let i = 0; i < 30; i++) {
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: t.table,
          Key: { pk: { S: 'counter' }, sk: { S: 'c' } },
          UpdateExpression: 'ADD hits :one SET big = :big',
          ExpressionAttributeValues: {
            ':one': { N: '1' },
            ':big': { N: `1234567890123456789012345678901234567${i % 10}` },
          },
        }),
      );
    }
    const changes = await t.newChanges();
    expect(changes.length).toBe(12 + 4 + 3 + 2 + 30);

    // Act: in pages of 7 (a key's changes span pages) with bulk requests of at most 3 actions or 400 bytes,
    // then all again as one batch (a re-delivery; its deletes find nothing to delete)
    const counts = { applied: 0, deadLettered: 0 };
    for (let i = 0; i < changes.length; i += 7) {
      const small = { ...t.deps, bulk: { maxDocs: 3, maxBytes: 400 } };
      const result = await applyStreamRecords(changes.slice(i, i + 7), small);
      expect(result.firstFailedSequenceNumber).toBeUndefined();
      counts.applied += result.applied;
      counts.deadLettered += result.deadLettered;
    }
    await t.equalsTable();
    const again = await applyStreamRecords(changes, t.deps);

    // Assess
    expect(counts).toEqual({ applied: changes.length, deadLettered: 0 });
    // One batch: the last change of each of the 14 keys only; the 3 deletes are deletes.
    expect(again).toEqual({ applied: changes.length, indexed: 10, deleted: 3, skipped: 0, deadLettered: 0 });
    await t.equalsTable();
    const docs = await indexDocuments(search, t.index);
    expect(docs.get('counter|c')).toEqual({
      pk: 'counter',
      sk: 'c',
      hits: 30,
      big: '12345678901234567890123456789012345679',
    });
    expect(docs.get('user|u8')).toEqual({ pk: 'user', sk: 'u8', recreated: true });
    expect(docs.has('user|u5')).toBe(false);
  });

  it('a REMOVE then INSERT of one key in one batch indexes the last image', async () => {
    const t = await setup('apply-recreate');
    await t.put(item('p', 'k', { v: { N: '1' } }));
    await applyStreamRecords(await t.newChanges(), t.deps);
    await t.remove('p', 'k');
    await t.put(item('p', 'k', { v: { N: '2' } }));

    const changes = await t.newChanges();
    const result = await applyStreamRecords(changes, t.deps);

    expect(changes.map((change) => change.eventName)).toEqual(['REMOVE', 'INSERT']);
    expect(result).toMatchObject({ applied: 2, indexed: 1, deleted: 0 });
    expect((await indexDocuments(search, t.index)).get('p|k')).toEqual({ pk: 'p', sk: 'k', v: 2 });
  });

  it('an aggregated document follows changes to any item of its partition, and goes when the partition is empty', async () => {
    const t = await setup('apply-aggregate', {
      mapping: { aggregate: { parentSortKey: 'profile', childrenField: 'orders' } },
    });
    const step = async () => {
      const result = await applyStreamRecords(await t.newChanges(), t.deps);
      expect(result.firstFailedSequenceNumber).toBeUndefined();
      await t.equalsTable();
      return (await indexDocuments(search, t.index)).get('c1') as Record<string, unknown> | undefined;
    };

    await t.put(item('c1', 'profile', { name: { S: 'Ada' } }));
    await t.put(item('c1', 'order#1', { total: { N: '10.10' } }));
    expect(await step()).toEqual({
      pk: 'c1',
      sk: 'profile',
      name: 'Ada',
      orders: [{ pk: 'c1', sk: 'order#1', total: 10.1 }],
    });

    await t.put(item('c1', 'order#2', { total: { N: '0.1000000000000001' } }));
    expect(((await step())!.orders as unknown[]).length).toBe(2);

    await t.put(item('c1', 'profile', { name: { S: 'Ada L.' } }));
    expect((await step())?.name).toBe('Ada L.');

    await t.remove('c1', 'order#1');
    expect((await step())?.orders).toEqual([{ pk: 'c1', sk: 'order#2', total: '0.1000000000000001' }]);

    await t.remove('c1', 'order#2');
    await t.remove('c1', 'profile');
    expect(await step()).toBeUndefined();
  });

  it('a KEYS_ONLY stream: documents come from a consistent GetItem, deletes included', async () => {
    const t = await setup('apply-keys-only', { stream: 'KEYS_ONLY' });
    for (let i = 0; i < 5; i++) await t.put(item('k', `${i}`, { v: { N: `${i}` } }));
    await t.put(item('k', '0', { v: { S: 'changed' } }));
    await t.remove('k', '1');
    await t.remove('k', '2');
    await t.put(item('k', '2', { v: { S: 'back' } }));

    const changes = await t.newChanges();
    expect(changes.every((change) => change.newImage === undefined && change.oldImage === undefined)).toBe(
      true,
    );
    const first = await applyStreamRecords(changes.slice(0, 3), t.deps);
    const rest = await applyStreamRecords(changes.slice(3), t.deps);

    expect(first.firstFailedSequenceNumber ?? rest.firstFailedSequenceNumber).toBeUndefined();
    await t.equalsTable();
  });

  it('a transform: documents the new image no longer produces are deleted (from the old image)', async () => {
    // One document per tag.
    const t = await setup('apply-transform', {
      mapping: {
        transform: (item, { defaultIndex }) =>
          (item.tags?.SS ?? []).map((tag) => ({
            index: defaultIndex,
            id: `${item.pk!.S}#${tag}`,
            document: { owner: item.pk!.S, tag },
          })),
      },
    });
    await t.put(item('a', 'x', { tags: { SS: ['red', 'blue'] } }));
    await t.put(item('b', 'x', { tags: { SS: ['red'] } }));
    await applyStreamRecords(await t.newChanges(), t.deps);
    expect([...(await indexDocuments(search, t.index)).keys()].sort()).toEqual(['a#blue', 'a#red', 'b#red']);

    await t.put(item('a', 'x', { tags: { SS: ['green', 'blue'] } }));
    await t.remove('b', 'x');
    const result = await applyStreamRecords(await t.newChanges(), t.deps);

    expect(result).toMatchObject({ indexed: 2, deleted: 2, deadLettered: 0 });
    expect([...(await indexDocuments(search, t.index)).keys()].sort()).toEqual(['a#blue', 'a#green']);
  });

  it('documents that cannot be written go to the dead-letter place, their stale version is removed, the batch goes on', async () => {
    // Prepare: qty is an integer field; one item later puts text in it, another has a 600-byte id.
    const t = await setup('apply-poison');
    await search.indices.create({
      index: t.index,
      body: { mappings: { properties: { qty: { type: 'integer' } } } },
    });
    await t.put(item('p', 'poison', { qty: { N: '1' } }));
    await t.put(item('p', 'good', { qty: { N: '2' } }));
    await applyStreamRecords(await t.newChanges(), t.deps);
    await t.put(item('p', 'poison', { qty: { S: 'lots' } }));
    await t.put(item('p', 'é'.repeat(300), { qty: { N: '3' } }));
    await t.put(item('p', 'good', { qty: { N: '4' } }));

    // Act
    const changes = await t.newChanges();
    const result = await applyStreamRecords(changes, t.deps);

    // Assess
    expect(result).toMatchObject({ applied: 3, indexed: 1, deadLettered: 2 });
    expect(result.firstFailedSequenceNumber).toBeUndefined();
    const docs = await indexDocuments(search, t.index);
    expect([...docs.keys()]).toEqual(['p|good']);
    expect(docs.get('p|good')).toEqual({ pk: 'p', sk: 'good', qty: 4 });
    const letters = await t.deadLetters.read('apply-test');
    expect(letters.map((letter) => letter.errorType).sort()).toEqual([
      'MappingError',
      'mapper_parsing_exception',
    ]);
    const poison = letters.find((letter) => letter.errorType === 'mapper_parsing_exception')!;
    expect(poison).toMatchObject({
      table: t.table,
      index: t.index,
      id: 'p|poison',
      key: { pk: { S: 'p' }, sk: { S: 'poison' } },
    });
    expect(poison.reason).toMatch(/qty/);
    const longId = letters.find((letter) => letter.errorType === 'MappingError')!;
    expect(longId.reason).toMatch(/document id is 602 bytes long/);
  });

  it('OpenSearch unreachable: the first record is reported, and applying again from it converges', async () => {
    const t = await setup('apply-unreachable');
    await t.put(item('u', '1'));
    await t.put(item('u', '2'));
    await t.remove('u', '1');
    const changes = await t.newChanges();
    const down = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH });

    const failed = await applyStreamRecords(changes, { ...t.deps, opensearch: down, bulk: FAST_BULK });
    await down.close();

    expect(failed).toMatchObject({ applied: 0, indexed: 0, deleted: 0, deadLettered: 0 });
    expect(failed.firstFailedSequenceNumber).toBe(changes[0]!.sequenceNumber);
    const retried = await applyStreamRecords(changes, t.deps);
    expect(retried.firstFailedSequenceNumber).toBeUndefined();
    await t.equalsTable();
  });

  it('a write-blocked index fails the records from the first one that touches it; those before it are applied', async () => {
    // Prepare: partitions b… go to an index whose writes are blocked.
    const blocked = engines.indexName('apply-blocked');
    await search.indices.create({ index: blocked, body: { settings: { 'index.blocks.write': true } } });
    const t = await setup('apply-partial', { mapping: { routes: [{ prefix: 'b', index: blocked }] } });
    await t.put(item('a1', 'x'));
    await t.put(item('a2', 'x'));
    await t.put(item('b1', 'x'));
    await t.put(item('a3', 'x'));
    const changes = await t.newChanges();

    // Act
    const result = await applyStreamRecords(changes, { ...t.deps, bulk: FAST_BULK });

    // Assess: the Lambda retries from b1; a1 and a2 are in.
    expect(result.firstFailedSequenceNumber).toBe(changes[2]!.sequenceNumber);
    expect(result.applied).toBe(2);
    const docs = await indexDocuments(search, t.index);
    expect(docs.has('a1|x') && docs.has('a2|x')).toBe(true);

    await search.indices.putSettings({ index: blocked, body: { 'index.blocks.write': false } });
    const retried = await applyStreamRecords(changes.slice(2), t.deps);
    expect(retried.firstFailedSequenceNumber).toBeUndefined();
    expect((await indexDocuments(search, blocked)).get('b1|x')).toEqual({ pk: 'b1', sk: 'x' });
  });

  it('splits a request answered 413 and retries a request answered 503, as the backfill does; a document too large alone is dead-lettered', async () => {
    // Prepare: 30 items of ~450 bytes, then one of 5,000; OpenSearch behind a proxy that takes at most 3,000 bytes
    const t = await setup('apply-413');
    for (let i = 0; i < 30; i++) await t.put(item('p', `${i}`, { text: { S: 'x'.repeat(400) } }));
    await t.put(item('p', 'huge', { text: { S: 'y'.repeat(5_000) } }));
    const changes = await t.newChanges();
    const strict = await startFaultyProxy(opensearchUrl(), { maxBodyBytes: 3_000, unavailableFirst: 1 });
    const client = createOpenSearchClient({ endpoint: strict.url });

    // Act
    let result: Awaited<ReturnType<typeof applyStreamRecords>>;
    try {
      result = await applyStreamRecords(changes, {
        ...t.deps,
        opensearch: client,
        bulk: { baseDelayMs: 1, maxDelayMs: 5 },
      });
    } finally {
      await client.close();
      await strict.close();
    }

    // Assess
    expect(result).toEqual({ applied: 31, indexed: 30, deleted: 1, skipped: 0, deadLettered: 1 });
    expect(strict.stats.tooLarge).toBeGreaterThan(1);
    expect(strict.stats.unavailable).toBe(1);
    const docs = await indexDocuments(search, t.index);
    expect([...docs.keys()].sort()).toEqual(Array.from({ length: 30 }, (_, i) => `p|${i}`).sort());
    expect(docs.get('p|7')).toEqual({ pk: 'p', sk: '7', text: 'x'.repeat(400) });
    const letters = await t.deadLetters.read('apply-test');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ id: 'p|huge', index: t.index, errorType: 'request_entity_too_large' });
  });

  it('the resync state cannot be read: nothing of the batch is written, and the whole batch is retried', async () => {
    // Prepare: two items changed; the resync state read fails (read while the batch is planned)
    const t = await setup('apply-resync-unread');
    await t.put(item('p', 'a'));
    await t.put(item('p', 'b'));
    const changes = await t.newChanges();
    const warnings: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (message: string) => {
        warnings.push(message);
      },
    };

    // Act
    const failed = await applyStreamRecords(changes, {
      ...t.deps,
      telemetry: { logger },
      resync: () => Promise.reject(new Error('progress table throttled')),
    });

    // Assess: no write went out before the state was known; the retry applies everything
    expect(failed).toEqual({
      applied: 0,
      indexed: 0,
      deleted: 0,
      skipped: 0,
      deadLettered: 0,
      firstFailedSequenceNumber: changes[0]!.sequenceNumber,
    });
    expect(warnings).toContain('could not read the resync state; the batch will be retried');
    expect((await indexDocuments(search, t.index)).size).toBe(0);
    const retried = await applyStreamRecords(changes, t.deps);
    expect(retried).toMatchObject({ applied: 2, indexed: 2 });
    await t.equalsTable();
  });
});
