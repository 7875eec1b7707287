/**
 * applyStreamRecords with ordering 'unordered' against the real engines: the
 * changes are made in DynamoDB Local and read back from its stream, then
 * carried as the fan-out sources carry them (Kinesis Data Streams for
 * DynamoDB data, SQS bodies), decoded at the door, and delivered reordered
 * and repeated. The index must end equal to the table, deletes included,
 * also after OpenSearch has forgotten a deletion (`index.gc_deletes` 0s).
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import {
  readKinesisData,
  readSqsMessage,
  type StreamBatchRecord,
} from '../../../pipeline/apply/stream-records';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import type { ResyncState } from '../../../pipeline/resync/resync-state';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { createTable, opensearchUrl, uniqueName, useEngines } from '../../support/engines';
import { startFaultyProxy } from '../../support/opensearch-proxy';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  FAST_BULK,
  indexDocuments,
  readStream,
  type SqsEnvelope,
  toKinesisData,
  toLambdaRecord,
  toSqsBody,
  UNREACHABLE_OPENSEARCH,
} from './apply-stream-fixtures';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

type Source = { kind: 'kinesis' } | { kind: 'sqs'; envelope: SqsEnvelope };
// The other SQS envelopes decode to the same change (apply-stream-records.test.ts, and the updater's test mixes them).
const sources: [string, Source][] = [
  ['Kinesis', { kind: 'kinesis' }],
  ['SQS (SNS enveloped)', { kind: 'sqs', envelope: 'sns' }],
];

/** A stream record as `source` carries it, decoded at the door; `n` makes its Kinesis sequence number or message id. */
function carried(lambda: DynamoDBRecord, n: number, source: Source): StreamBatchRecord {
  if (source.kind === 'kinesis') {
    // Kinesis' sequence numbers and µs times: the apply trusts neither for a key's order.
    const micros = BigInt(Math.round(lambda.dynamodb!.ApproximateCreationDateTime! * 1e6)) + BigInt(n % 1000);
    return readKinesisData(toKinesisData(lambda, { micros }), `${10n ** 50n + BigInt(n)}`);
  }
  return readSqsMessage(toSqsBody(lambda, source.envelope), `message-${n}`);
}

/** A table with a stream, its index (created here, with `gcDeletes`), and the deps of an unordered apply. */
async function setup(
  name: string,
  source: Source,
  options: { gcDeletes?: string; mapping?: Omit<MappingConfig, 'index'> } = {},
) {
  const table = await createTable(dynamodb, uniqueName(name), { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const index = uniqueName(name);
  engines.deleteTableAfter(table);
  engines.deleteIndexAfter(index);
  await search.indices.create({
    index,
    body: {
      settings: {
        number_of_replicas: 0,
        ...(options.gcDeletes ? { 'index.gc_deletes': options.gcDeletes } : {}),
      },
    },
  });
  const mapping: MappingConfig = { index, ...options.mapping };
  const deps = applyStreamDeps(engines, table, keySchema, mapping, {
    runId: 'unordered-test',
    ordering: 'unordered',
  });
  let seen: string | undefined;
  let delivered = 0;
  /** The stream's records since the last call, as `as` carries them. */
  const newRecords = async (as: Source = source): Promise<StreamBatchRecord[]> => {
    const records = await readStream(streams, dynamodb, table, seen);
    if (records.length > 0) seen = records[records.length - 1]!.dynamodb!.SequenceNumber;
    return records.map((record) => carried(toLambdaRecord(record), delivered++, as));
  };
  const put = (pk: string, sk: string, rest: Item = {}) =>
    dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, sk: { S: sk }, ...rest } }));
  const remove = (pk: string, sk: string) =>
    dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } } }));
  const equalsTable = () => expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, mapping);
  const apply = (records: StreamBatchRecord[]) => applyStreamRecords(records, deps);
  /** A change's record as the change itself describes it, without reading the stream back (the property makes hundreds). */
  const recordOf = (pk: string, sk: string, newImage: Item | undefined, as: Source): StreamBatchRecord => {
    const n = delivered++;
    const lambda: DynamoDBRecord = {
      eventID: `property-${n}`,
      eventName: newImage ? 'MODIFY' : 'REMOVE',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        ApproximateCreationDateTime: Date.now() / 1000,
        Keys: { pk: { S: pk }, sk: { S: sk } },
        ...(newImage ? { NewImage: { pk: { S: pk }, sk: { S: sk }, ...newImage } as never } : {}),
        SequenceNumber: `${10n ** 21n + BigInt(n)}`,
        SizeBytes: 1,
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
    };
    return carried(lambda, n, as);
  };
  return { table, index, deps, newRecords, recordOf, put, remove, equalsTable, apply };
}

describe.each(sources)('applyStreamRecords, ordering unordered, from %s', (_name, source) => {
  it('reordered and duplicated changes of many keys: the index equals the table', async () => {
    // Prepare
    const t = await setup('unordered-shuffle', source);
    for (let i = 0; i < 6; i++) await t.put('user', `u${i}`, { v: { N: `${i}` } });
    for (let i = 0; i < 6; i++)
      await t.put('user', `u${i}`, { v: { N: `${i + 100}` }, note: { S: 'second' } });
    await t.remove('user', 'u2');
    await t.remove('user', 'u3');
    await t.put('user', 'u3', { recreated: { BOOL: true } });
    const records = await t.newRecords();
    expect(records).toHaveLength(15);

    // Act: newest first, every record twice, in batches of 4
    const delivery = [...records].reverse().flatMap((record) => [record, record]);
    const results = [];
    for (let i = 0; i < delivery.length; i += 4) results.push(await t.apply(delivery.slice(i, i + 4)));

    // Assess
    await t.equalsTable();
    expect(results.every((result) => result.retryPositions === undefined)).toBe(true);
    expect(results.reduce((sum, result) => sum + result.applied, 0)).toBe(30);
    expect(results.reduce((sum, result) => sum + result.deadLettered, 0)).toBe(0);
    const documents = await indexDocuments(search, t.index);
    expect(documents.get('user|u3')).toStrictEqual({ pk: 'user', sk: 'u3', recreated: true });
    expect(documents.get('user|u0')).toStrictEqual({ pk: 'user', sk: 'u0', v: 100, note: 'second' });
    expect(documents.has('user|u2')).toBe(false);
  });

  it('a delete delivered before its create: no document; a re-create after the delete: the re-created item', async () => {
    // Prepare
    const t = await setup('unordered-delete-first', source);
    await t.put('k', 'gone', { v: { N: '1' } });
    await t.remove('k', 'gone');
    await t.put('k', 'back', { v: { N: '1' } });
    await t.remove('k', 'back');
    await t.put('k', 'back', { v: { N: '2' } });
    const [createGone, deleteGone, createBack, deleteBack, recreateBack] = await t.newRecords();

    // Act
    const first = await t.apply([deleteGone!, recreateBack!]);
    const late = await t.apply([createGone!, deleteBack!, createBack!]);

    // Assess
    expect(first.retryPositions).toBeUndefined();
    expect(late.retryPositions).toBeUndefined();
    const documents = await indexDocuments(search, t.index);
    expect([...documents.keys()]).toStrictEqual(['k|back']);
    expect(documents.get('k|back')).toStrictEqual({ pk: 'k', sk: 'back', v: 2 });
  });

  it('a create arriving after OpenSearch forgot the deletion (gc_deletes 0s) does not bring the item back', async () => {
    // Prepare: the document exists, then its deletion is applied and forgotten
    const t = await setup('unordered-gc-deletes', source, { gcDeletes: '0s' });
    await t.put('k', 'late', { v: { N: '1' } });
    const [create] = await t.newRecords();
    await t.apply([create!]);
    expect((await indexDocuments(search, t.index)).has('k|late')).toBe(true);
    await t.remove('k', 'late');
    const [remove] = await t.newRecords();
    await t.apply([remove!]);
    await search.indices.refresh({ index: t.index });
    await new Promise((resolve) => setTimeout(resolve, 50));

    // Act: the create again (a duplicate delivered late), and once more with a new key next to it
    await t.put('k', 'other', { v: { N: '3' } });
    const [other] = await t.newRecords();
    const result = await t.apply([create!, other!, create!]);

    // Assess
    expect(result).toMatchObject({ applied: 3, indexed: 1, deadLettered: 0 });
    const documents = await indexDocuments(search, t.index);
    expect([...documents.keys()]).toStrictEqual(['k|other']);
    await t.equalsTable();
  });
});

describe('applyStreamRecords, ordering unordered: aggregated documents and transforms', () => {
  it("an aggregated partition is rebuilt from the table whatever order its items' changes arrive in, and goes when it is empty", async () => {
    // Prepare
    const t = await setup(
      'unordered-aggregate',
      { kind: 'kinesis' },
      {
        mapping: { aggregate: { parentSortKey: 'profile', childrenField: 'orders' } },
      },
    );
    await t.put('c1', 'profile', { name: { S: 'Ada' } });
    await t.put('c1', 'order#1', { total: { N: '10' } });
    await t.put('c1', 'order#2', { total: { N: '20' } });
    await t.remove('c1', 'order#1');
    await t.put('c2', 'profile', { name: { S: 'Bob' } });
    await t.remove('c2', 'profile');
    const records = await t.newRecords();

    // Act: newest first, then the first half again
    const result = await t.apply([...records].reverse());
    const again = await t.apply(records.slice(0, 3));

    // Assess
    expect(result.retryPositions ?? again.retryPositions).toBeUndefined();
    const documents = await indexDocuments(search, t.index);
    expect([...documents.keys()]).toStrictEqual(['c1']);
    expect(documents.get('c1')).toStrictEqual({
      pk: 'c1',
      sk: 'profile',
      name: 'Ada',
      orders: [{ pk: 'c1', sk: 'order#2', total: 20 }],
    });
    await t.equalsTable();
  });

  it("a transform: the documents of earlier states, named by any record's images, go; the current state's stay", async () => {
    // Prepare: one document per tag
    const t = await setup(
      'unordered-transform',
      { kind: 'sqs', envelope: 'eventbridge' },
      {
        mapping: {
          transform: (item, { defaultIndex }) =>
            (item.tags?.SS ?? []).map((tag) => ({
              index: defaultIndex,
              id: `${item.pk!.S}#${tag}`,
              document: { owner: item.pk!.S, tag },
            })),
        },
      },
    );
    await t.put('a', 'x', { tags: { SS: ['red', 'blue'] } });
    await t.put('b', 'x', { tags: { SS: ['red'] } });
    const created = await t.newRecords();
    await t.apply(created);
    await t.put('a', 'x', { tags: { SS: ['green', 'blue'] } });
    await t.remove('b', 'x');
    const changed = await t.newRecords();

    // Act: the later changes first, then the creates again (late duplicates)
    const result = await t.apply([...changed.reverse(), ...created]);

    // Assess
    expect(result).toMatchObject({ deleted: 2, deadLettered: 0 });
    expect(result.retryPositions).toBeUndefined();
    expect([...(await indexDocuments(search, t.index)).keys()].sort()).toStrictEqual(['a#blue', 'a#green']);
  });
});

describe('applyStreamRecords, ordering unordered: races between deliveries', () => {
  it('a delivery that read the item before its last change writes after that change was applied, and the item went back to a value the document held: the stale write loses', async () => {
    // Prepare: the document holds A; the item becomes B. A delivery of B's record reads the document (A) and the
    // item (B); before its write, the item goes back to A and that record is applied: the document already held A.
    const t = await setup('unordered-aba', { kind: 'sqs', envelope: 'pipes' });
    await t.put('k', 'aba', { v: { S: 'A' } });
    await t.apply(await t.newRecords());
    await t.put('k', 'aba', { v: { S: 'B' } });
    const [toB] = await t.newRecords();
    let raced = false;
    const proxy = await startFaultyProxy(opensearchUrl(), {
      beforeBulk: async () => {
        if (raced) return;
        raced = true;
        await t.put('k', 'aba', { v: { S: 'A' } });
        const backToA = await t.apply(await t.newRecords());
        expect(backToA.retryPositions).toBeUndefined();
      },
    });
    const stale = createOpenSearchClient({ endpoint: proxy.url });

    try {
      // Act
      const result = await applyStreamRecords([toB!], { ...t.deps, opensearch: stale });

      // Assess
      expect(raced).toBe(true);
      expect(result.retryPositions).toBeUndefined();
      expect((await indexDocuments(search, t.index)).get('k|aba')).toStrictEqual({
        pk: 'k',
        sk: 'aba',
        v: 'A',
      });
      await t.equalsTable();
    } finally {
      await stale.close();
      await proxy.close();
    }
  });

  it('another write lands before each of its writes: it reads again until its own write lands, or leaves the record for retry', async () => {
    // Prepare: another writer (standing for a delivery of an older record) puts an older value in before each write
    const t = await setup('unordered-superseded', { kind: 'kinesis' });
    await t.put('k', 's', { v: { N: '1' } });
    const records = await t.newRecords();
    const interfering = async (times: number) => {
      let writes = 0;
      const proxy = await startFaultyProxy(opensearchUrl(), {
        beforeBulk: async () => {
          if (writes++ >= times) return;
          await search.index({ index: t.index, id: 'k|s', body: { pk: 'k', sk: 's', v: 0 }, refresh: true });
        },
      });
      return { proxy, client: createOpenSearchClient({ endpoint: proxy.url }) };
    };

    // Act: superseded in repairKeys' two reads, then settled in the next round; then never let through
    const twice = await interfering(2);
    const settled = await applyStreamRecords(records, { ...t.deps, opensearch: twice.client });
    await twice.client.close();
    await twice.proxy.close();
    const settledDocument = (await indexDocuments(search, t.index)).get('k|s');
    const always = await interfering(Number.POSITIVE_INFINITY);
    const gaveUp = await applyStreamRecords(records, { ...t.deps, opensearch: always.client });
    await always.client.close();
    await always.proxy.close();

    // Assess
    expect(settled.retryPositions).toBeUndefined();
    expect(settledDocument).toStrictEqual({ pk: 'k', sk: 's', v: 1 });
    expect(gaveUp).toMatchObject({ applied: 0, retryPositions: [0] });
    expect(gaveUp.firstFailedSequenceNumber).toBe(records[0]!.sequenceNumber);
  });
});

describe('applyStreamRecords, ordering unordered: failures', () => {
  it('an unreadable SQS message is dead-lettered in its place; the rest of the batch applies', async () => {
    // Prepare
    const source: Source = { kind: 'sqs', envelope: 'sns-raw' };
    const t = await setup('unordered-poison', source);
    await t.put('k', 'a', { v: { N: '1' } });
    const [good] = await t.newRecords();
    const poison = readSqsMessage('{"hello":"world"}', 'message-poison');

    // Act
    const result = await t.apply([poison, good!]);

    // Assess
    expect(result).toMatchObject({ applied: 2, indexed: 1, deadLettered: 1 });
    expect(result.retryPositions).toBeUndefined();
    const letters = await t.deps.deadLetters.read('unordered-test');
    expect(letters).toHaveLength(1);
    expect(letters[0]!.reason).toMatch(/^SQS message message-poison holds no DynamoDB change; expected /);
    await t.equalsTable();
  });

  it('OpenSearch unreachable: every record is reported for retry, the first by its sequence number', async () => {
    // Prepare
    const t = await setup('unordered-unreachable', { kind: 'kinesis' });
    await t.put('k', 'a');
    await t.put('k', 'b');
    const records = await t.newRecords();
    const down = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH });

    // Act
    const result = await applyStreamRecords(records, { ...t.deps, opensearch: down, bulk: FAST_BULK });
    await down.close();
    const retried = await t.apply(records);

    // Assess
    expect(result).toMatchObject({ applied: 0, retryPositions: [0, 1] });
    expect(result.firstFailedSequenceNumber).toBe(records[0]!.sequenceNumber);
    expect(retried).toMatchObject({ applied: 2, indexed: 2 });
    await t.equalsTable();
  });
});

/** The resync state `runId` in `phase`, filling `targets` (serving name → new index). */
function resyncOf(runId: string, phase: ResyncState['phase'], targets: Record<string, string>): ResyncState {
  const now = new Date().toISOString();
  return { runId, phase, targets, startedAt: now, phaseChangedAt: now };
}

describe('applyStreamRecords, ordering unordered: during a resync', () => {
  it('FILLING: each key is written to the serving index and to the one being filled, a deleted item there as a tombstone that an older create cannot replace', async () => {
    // Prepare
    const t = await setup('unordered-resync', { kind: 'sqs', envelope: 'pipes' });
    const filling = engines.deleteIndexAfter(`${t.index}-r1`);
    await search.indices.create({ index: filling, body: { settings: { number_of_replicas: 0 } } });
    await t.put('k', 'a', { v: { N: '1' } });
    await t.put('k', 'b', { v: { N: '2' } });
    await t.remove('k', 'b');
    const records = await t.newRecords();
    const state = resyncOf('r1', 'FILLING', { [t.index]: filling });

    // Act: newest first, each twice; then the resync's backfill creates its older read of k/b
    const result = await applyStreamRecords([...records].reverse().concat(records), {
      ...t.deps,
      resync: async () => state,
    });
    const olderCreate = await search
      .create({ index: filling, id: 'k|b', body: { pk: 'k', sk: 'b', v: 2 } })
      .then(
        () => 201,
        (error: { meta?: { statusCode?: number } }) => error.meta?.statusCode,
      );

    // Assess
    expect(result.retryPositions).toBeUndefined();
    await t.equalsTable();
    const copies = await indexDocuments(search, filling);
    expect(Object.fromEntries(copies)).toStrictEqual({
      'k|a': { pk: 'k', sk: 'a', v: 1 },
      'k|b': { _ddb2os_tombstone: 'r1' },
    });
    expect(olderCreate).toBe(409);
  });

  it('DRAINING: a deleted item is deleted from the index being filled too', async () => {
    // Prepare: a tombstone-free copy of k/c in the index being filled, then k/c is deleted
    const t = await setup('unordered-draining', { kind: 'kinesis' });
    const filling = engines.deleteIndexAfter(`${t.index}-r2`);
    await search.index({ index: filling, id: 'k|c', body: { pk: 'k', sk: 'c', v: 3 }, refresh: true });
    await t.put('k', 'c', { v: { N: '3' } });
    await t.remove('k', 'c');
    const records = await t.newRecords();
    const state = resyncOf('r2', 'DRAINING', { [t.index]: filling });

    // Act
    const result = await applyStreamRecords(records, { ...t.deps, resync: async () => state });

    // Assess
    expect(result.retryPositions).toBeUndefined();
    expect((await indexDocuments(search, filling)).size).toBe(0);
    expect((await indexDocuments(search, t.index)).size).toBe(0);
  });
});

describe('applyStreamRecords, ordering unordered: property', () => {
  it('any delivery of a key history, reordered, repeated and partly concurrent, while the table keeps changing, ends with the index equal to the table', async () => {
    const t = await setup('unordered-property', { kind: 'sqs', envelope: 'sns' }, { gcDeletes: '0s' });
    let run = 0;
    const step = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.nat(2), value: fc.nat(9) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.nat(2) }),
      fc.record({
        kind: fc.constant('deliver' as const),
        picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        concurrent: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        async (steps, kinesis) => {
          const source: Source = kinesis ? { kind: 'kinesis' } : { kind: 'sqs', envelope: 'sns' };
          const pk = `run${run++}`;
          // Records that exist (their change is made), each delivered any number of times, at least once.
          const pending: StreamBatchRecord[] = [];
          const made: StreamBatchRecord[] = [];
          const pick = (n: number) => made[n % made.length]!;
          for (const s of steps) {
            if (s.kind !== 'deliver') {
              const image: Item | undefined = s.kind === 'put' ? { v: { N: `${s.value}` } } : undefined;
              if (image) await t.put(pk, `k${s.key}`, image);
              else await t.remove(pk, `k${s.key}`);
              const fresh = t.recordOf(pk, `k${s.key}`, image, source);
              made.push(fresh);
              pending.push(fresh);
              continue;
            }
            if (made.length === 0) continue;
            const batch = s.picks.map(pick);
            for (const record of batch) {
              const at = pending.indexOf(record);
              if (at >= 0) pending.splice(at, 1);
            }
            if (s.concurrent) {
              const half = Math.ceil(batch.length / 2);
              await Promise.all([t.apply(batch.slice(0, half)), t.apply(batch.slice(half))]);
            } else {
              await t.apply(batch);
            }
          }
          const rest = [...pending].reverse();
          const final = await t.apply(rest);
          expect(final.retryPositions).toBeUndefined();
          await t.equalsTable();
        },
      ),
      { numRuns: 12, seed: 1612, endOnFailure: true },
    );
  }, 240_000);
});
