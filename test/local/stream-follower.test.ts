/**
 * The local stream follower on DynamoDB Local's real Streams API, applying
 * with the updater's code to the real OpenSearch, with positions in a real
 * progress table.
 */

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import type { Shard } from '@aws-sdk/client-dynamodb-streams';
import { describe, expect, it } from 'vitest';
import { createLocalUpdater } from '../../local/backfill';
import { type FollowerBatchInfo, orderShards, StreamFollower } from '../../local/stream-follower';
import { type ApplyResult, applyStreamRecords } from '../../pipeline/apply/apply-stream';
import { failedBatchesDir, parseFailedBatch } from '../../pipeline/apply/failed-batches';
import type { StreamBatchRecord } from '../../pipeline/apply/stream-records';
import { toDocumentBody } from '../../pipeline/mapping/mapping';
import { DynamoDBStreamPositionStore } from '../../pipeline/progress/stream-positions';
import type { Item, KeySchema } from '../../pipeline/table/types';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  FAST_BULK,
  readStream,
} from '../pipeline/apply/apply-stream-fixtures';
import { createTable, openSearchClient, opensearchUrl, uniqueName, useEngines } from '../support/engines';
import { startFaultProxy } from '../support/fault-proxy';

const keySchema: KeySchema = { partitionKey: 'pk' };
/** One progress table for the file: the store creates it on first use. */
const progressTable = uniqueName('follower-progress');

const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

engines.deleteTableAfter(progressTable);

async function setup(name: string) {
  const table = await createTable(dynamodb, uniqueName(name), { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const index = uniqueName(name);
  engines.deleteTableAfter(table);
  engines.deleteIndexAfter(index);
  const deps = applyStreamDeps(engines, table, keySchema, { index });
  /** Every sequence number handed to apply and reported applied, in order. */
  const applied: string[] = [];
  const batches: FollowerBatchInfo[] = [];
  const follower = async (
    apply: (changes: StreamBatchRecord[]) => Promise<ApplyResult> = (c) => applyStreamRecords(c, deps),
  ) =>
    new StreamFollower({
      streams,
      dynamodb,
      table,
      positions: await DynamoDBStreamPositionStore.open({ dynamodb, progressTable, table }),
      apply: async (changes) => {
        const result = await apply(changes);
        applied.push(...changes.slice(0, result.applied).map((change) => change.sequenceNumber));
        return result;
      },
      onBatch: (info) => batches.push(info),
      pollIntervalMs: 50,
      retry: { baseDelayMs: 1, maxDelayMs: 5 },
    });
  const put = (pk: string, rest: Item = {}) =>
    dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, ...rest } }));
  const remove = (pk: string) =>
    dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } }));
  const equalsTable = () =>
    expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, deps.mapping);
  const streamSequence = async () =>
    (await readStream(streams, dynamodb, table)).map((record) => record.dynamodb!.SequenceNumber!);
  return { table, index, deps, applied, batches, follower, put, remove, equalsTable, streamSequence };
}

/** Puts, updates of one key, deletes and a delete then re-create. */
async function makeChanges(t: Awaited<ReturnType<typeof setup>>, tag: string) {
  for (let i = 0; i < 6; i++) await t.put(`${tag}${i}`, { v: { N: `${i}.25` } });
  for (let i = 0; i < 10; i++) await t.put(`${tag}0`, { v: { N: `9007199254740993${i}` } });
  await t.remove(`${tag}1`);
  await t.remove(`${tag}2`);
  await t.put(`${tag}2`, { back: { BOOL: true } });
}

async function until(check: () => Promise<void>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('StreamFollower', () => {
  it('drain() applies everything written before it was called: the index equals the table', async () => {
    const t = await setup('follow-drain');
    await makeChanges(t, 'a');

    const follower = await t.follower();
    const first = await follower.drain();
    await t.equalsTable();

    await makeChanges(t, 'b');
    const second = await follower.drain();

    await t.equalsTable();
    expect(first.records + second.records).toBe(2 * 19);
    expect(t.applied).toEqual(await t.streamSequence());
    expect(await follower.drain()).toEqual({ records: 0 });
  });

  it('an item with empty maps at several depths reaches the index unchanged, though DynamoDB Local writes them as {} in its stream', async () => {
    // Prepare: an insert, then a modify (so the old image holds the empty maps too)
    const t = await setup('follow-empty-maps');
    const emptyMaps: Item = {
      top: { M: {} },
      inMap: { M: { e: { M: {} }, deeper: { M: { e2: { M: {} } } } } },
      inList: { L: [{ M: {} }, { L: [] }, { L: [{ M: {} }] }] },
      listInMap: { M: { l: { L: [{ M: {} }, { M: { x: { M: {} } } }] } } },
      emptyList: { L: [] },
    };
    await t.put('empty', emptyMaps);
    await t.put('empty', { ...emptyMaps, v: { N: '2' } });
    const [inserted] = await readStream(streams, dynamodb, t.table);
    // The engine's quirk this test is about; should a later DynamoDB Local write {"M":{}}, the workaround can go.
    expect(inserted!.dynamodb!.NewImage!.top).toEqual({});

    // Act
    const follower = await t.follower();
    await follower.drain();

    // Assess: the document is the item's mapping, field by field, and nothing was dead-lettered
    const { Item: item } = await dynamodb.send(
      new GetItemCommand({ TableName: t.table, Key: { pk: { S: 'empty' } }, ConsistentRead: true }),
    );
    const { body } = await search.get({ index: t.index, id: 'empty' });
    expect(body._source).toStrictEqual(toDocumentBody(item!));
    expect(body._source).toStrictEqual({
      pk: 'empty',
      v: 2,
      top: {},
      inMap: { e: {}, deeper: { e2: {} } },
      inList: [{}, [], [{}]],
      listInMap: { l: [{}, { x: {} }] },
      emptyList: [],
    });
    expect(t.batches.map((batch) => [batch.records, batch.result.deadLettered])).toEqual([[2, 0]]);
  });

  it('start() follows live changes; after stop() a new follower resumes from the stored position, nothing twice, nothing missed', async () => {
    // Prepare
    const t = await setup('follow-resume');
    const live = await t.follower();
    live.start();
    await makeChanges(t, 'a');
    await until(t.equalsTable);
    await live.stop();
    const beforeRestart = [...t.applied];

    // Act: changes while nobody follows, then a new follower (a new process would do the same)
    await makeChanges(t, 'b');
    await t.remove('a0');
    const resumed = await t.follower();
    await resumed.drain();

    // Assess
    await t.equalsTable();
    const all = await t.streamSequence();
    // Every record exactly once, in stream order: the live follower's part, then the resumed one's.
    expect(beforeRestart.length).toBeGreaterThan(0);
    expect(t.applied).toEqual(all);
    const stored = await dynamodb.send(
      new GetItemCommand({
        TableName: progressTable,
        Key: { runId: { S: `stream#${t.table}` }, segment: { N: '0' } },
      }),
    );
    expect(Object.values(stored.Item!.shards!.M!).map((value) => value.S)).toEqual([all[all.length - 1]]);
  });

  it('a page whose apply fails part-way is retried from the failed record, never skipping it', async () => {
    const t = await setup('follow-retry');
    await makeChanges(t, 'a');
    let calls = 0;
    const handed: string[][] = [];
    const follower = await t.follower(async (changes) => {
      handed.push(changes.map((change) => change.sequenceNumber));
      calls += 1;
      if (calls > 1) return applyStreamRecords(changes, t.deps);
      // The first attempt applies 5 records, then reports the 6th as failed (as OpenSearch being down would).
      const result = await applyStreamRecords(changes.slice(0, 5), t.deps);
      return { ...result, firstFailedSequenceNumber: changes[5]!.sequenceNumber };
    });

    await follower.drain();

    await t.equalsTable();
    const all = await t.streamSequence();
    expect(handed).toEqual([all, all.slice(5)]);
    expect(t.applied).toEqual(all);
    expect(t.batches.map((batch) => [batch.attempt, batch.records])).toEqual([
      [1, all.length],
      [2, all.length - 5],
    ]);
  });

  it('a page that cannot be applied for longer than the max record age goes to <dead-letter-dir>/failed-batches as the on-failure record, and the follower goes on', async () => {
    // Prepare: the follower as `ddb2os run` wires it, with OpenSearch behind a proxy that drops every connection
    const t = await setup('follow-give-up');
    const proxy = await startFaultProxy(opensearchUrl(), { dropConnections: true });
    const opensearch = openSearchClient(proxy.url);
    const deadLetterDir = mkdtempSync(join(tmpdir(), 'ddb2os-follower-'));
    const attempts: FollowerBatchInfo[] = [];
    const updater = await createLocalUpdater({
      dynamodb,
      streams,
      opensearch,
      table: t.table,
      keySchema,
      mapping: t.deps.mapping,
      progressTable,
      deadLetterDir,
      maxRecordAgeSeconds: 1,
      retry: { baseDelayMs: 20, maxDelayMs: 100 },
      bulk: FAST_BULK,
      onAttempt: (info) => attempts.push(info),
    });
    await makeChanges(t, 'a');
    const down = await t.streamSequence();

    try {
      // Act: OpenSearch away for longer than the max record age; then back, and later changes arrive
      await updater.drain();
      const failedFolder = failedBatchesDir(deadLetterDir);
      const files = readdirSync(failedFolder);
      proxy.setFaults({ dropConnections: false });
      await makeChanges(t, 'b');
      const later = await updater.drain();

      // Assess: one on-failure record naming the shard and the whole range; the later changes are in the index
      const shardId = attempts[0]!.shardId;
      expect(files).toEqual([`${shardId}-${down[0]}.json`]);
      const batch = parseFailedBatch(readFileSync(join(failedFolder, files[0]!), 'utf8'), files[0]!);
      expect(batch.DDBStreamBatchInfo).toMatchObject({
        shardId,
        startSequenceNumber: down[0],
        endSequenceNumber: down[down.length - 1],
        batchSize: down.length,
        streamArn: attempts[0]!.streamArn,
      });
      expect(batch.requestContext?.condition).toBe('RecordAgeExceeded');
      expect(proxy.stats.dropped).toBeGreaterThan(0);
      expect(later.records).toBe(19);
      await search.indices.refresh({ index: t.index });
      const { body } = await search.search({ index: t.index, body: { size: 100, query: { match_all: {} } } });
      const ids = body.hits.hits.map((hit) => hit._id).sort();
      expect(ids).toEqual(['b0', 'b2', 'b3', 'b4', 'b5']);
      // Nothing was dead-lettered: an unreachable OpenSearch is not a poison record.
      expect(readdirSync(deadLetterDir)).toEqual(['failed-batches']);
    } finally {
      await opensearch.close();
      await proxy.close();
    }
  });

  it('a disabled stream is read to its end (a closed shard) before the re-enabled one', async () => {
    // Prepare: changes in the first stream, then a new stream with later changes of the same keys
    const t = await setup('follow-closed');
    await makeChanges(t, 'a');
    await dynamodb.send(
      new UpdateTableCommand({ TableName: t.table, StreamSpecification: { StreamEnabled: false } }),
    );
    await dynamodb.send(
      new UpdateTableCommand({
        TableName: t.table,
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    await t.put('a3', { note: { S: 'from the second stream' } });
    await t.remove('a4');

    // Act
    const follower = await t.follower();
    const drained = await follower.drain();

    // Assess
    expect(drained.records).toBe(19 + 2);
    await t.equalsTable();
    expect(await follower.drain()).toEqual({ records: 0 });
    expect(await (await t.follower()).drain()).toEqual({ records: 0 });
  });
});

describe('StreamFollower on a table it cannot follow', () => {
  it('says the table has no stream, or does not exist', async () => {
    const table = await createTable(dynamodb, uniqueName('follow-no-stream'), { keySchema });
    engines.deleteTableAfter(table);
    const follower = (name: string) =>
      new StreamFollower({
        streams,
        dynamodb,
        table: name,
        apply: async () => ({ applied: 0, indexed: 0, deleted: 0, skipped: 0, deadLettered: 0 }),
        positions: { load: async () => new Map(), save: async () => {}, forget: async () => {} },
      });

    await expect(follower(table).drain()).rejects.toThrow(
      `table ${table} has no stream: enable a stream (NEW_IMAGE or NEW_AND_OLD_IMAGES) so its changes reach the index`,
    );
    await expect(follower(`${table}-missing`).drain()).rejects.toThrow(
      `table ${table}-missing does not exist`,
    );
  });
});

describe('orderShards', () => {
  const shard = (id: string, start: string, parent?: string): Shard => ({
    ShardId: id,
    ParentShardId: parent,
    SequenceNumberRange: { StartingSequenceNumber: start },
  });

  it('puts every parent before its children, else orders by starting sequence number', () => {
    const shards = [
      shard('child-b', '300', 'parent'),
      shard('grandchild', '400', 'child-a'),
      shard('child-a', '200', 'parent'),
      // A parent listed with a later number than its child still comes first.
      shard('parent', '1000'),
      shard('orphan', '50', 'trimmed-away'),
    ];
    expect(orderShards(shards).map((s) => s.ShardId)).toEqual([
      'orphan',
      'parent',
      'child-a',
      'child-b',
      'grandchild',
    ]);
  });

  it('compares sequence numbers as numbers, not as text', () => {
    expect(orderShards([shard('b', '10'), shard('a', '9')]).map((s) => s.ShardId)).toEqual(['a', 'b']);
  });
});
