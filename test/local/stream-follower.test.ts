/**
 * The local stream follower on DynamoDB Local's real Streams API, applying
 * with the updater's code to the real OpenSearch, with positions in a real
 * progress table.
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import type { Shard } from '@aws-sdk/client-dynamodb-streams';
import { describe, expect, it } from 'vitest';
import { type FollowerBatchInfo, orderShards, StreamFollower } from '../../local/stream-follower';
import { type ApplyResult, applyStreamRecords } from '../../pipeline/apply/apply-stream';
import type { StreamChange } from '../../pipeline/apply/stream-records';
import { SinkUnavailableError } from '../../pipeline/errors';
import { toDocumentBody } from '../../pipeline/mapping/mapping';
import { DynamoDBStreamPositionStore } from '../../pipeline/progress/stream-positions';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { applyStreamDeps, expectIndexEqualsTable, readStream } from '../pipeline/apply/apply-stream-fixtures';
import { createTable, uniqueName, useEngines } from '../support/engines';

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
    apply: (changes: StreamChange[]) => Promise<ApplyResult> = (c) => applyStreamRecords(c, deps),
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
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
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

  it('drain() rejects when a record keeps failing, keeps what was applied, and a later follower goes on from that record', async () => {
    const t = await setup('follow-give-up');
    await makeChanges(t, 'a');
    const failing = await t.follower(async (changes) => {
      const result = await applyStreamRecords(changes.slice(0, 3), t.deps);
      return {
        ...result,
        firstFailedSequenceNumber: changes[3]?.sequenceNumber ?? changes[0]!.sequenceNumber,
      };
    });

    await expect(failing.drain()).rejects.toThrow(SinkUnavailableError);
    const all = await t.streamSequence();
    expect(t.applied.slice(0, 3)).toEqual(all.slice(0, 3));

    const healthy = await t.follower();
    const resumed = await healthy.drain();
    await t.equalsTable();
    // The first follower applied 3 records, then 3 more on each later attempt; the rest came now.
    expect(resumed.records).toBe(all.length - 9);
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
