/**
 * The updater Lambda's logic (handleStreamEvent) with Lambda-shaped events
 * made from DynamoDB Local's real stream records (binary as base64, as Lambda
 * delivers them), against the real OpenSearch.
 */

import { Metrics } from '@aws-lambda-powertools/metrics';
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBRecord, KinesisStreamRecord, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler, handleStreamEvent } from '../../handlers/updater';
import type { ApplyStreamDeps } from '../../pipeline/apply/apply-stream';
import { createOpenSearchClient } from '../../pipeline/index/opensearch';
import type { Item, KeySchema } from '../../pipeline/table/types';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  FAST_BULK,
  readStream,
  type SqsEnvelope,
  temporaryDeadLetters,
  toKinesisData,
  toLambdaRecord,
  toSqsBody,
  UNREACHABLE_OPENSEARCH,
} from '../pipeline/apply/apply-stream-fixtures';
import {
  createTable,
  deleteIndex,
  deleteTable,
  openSearchClient,
  opensearchUrl,
  uniqueName,
  useEngines,
} from '../support/engines';
import { startFaultProxy } from '../support/fault-proxy';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

describe('handleStreamEvent', () => {
  const engines = useEngines();
  const { dynamodb, streams, opensearch: search } = engines;
  const table = uniqueName('updater');
  const index = uniqueName('updater');
  let deps: ApplyStreamDeps;
  let seen: string | undefined;

  /** The stream's records since the last call, in the Lambda event's form. */
  async function newRecords(): Promise<DynamoDBRecord[]> {
    const records = await readStream(streams, dynamodb, table, seen);
    if (records.length > 0) seen = records[records.length - 1]!.dynamodb!.SequenceNumber;
    return records.map(toLambdaRecord);
  }
  const put = (item: Item) => dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  const binary = (...values: number[]) => new Uint8Array(values);

  beforeAll(async () => {
    await createTable(dynamodb, table, { keySchema, sortKeyType: 'B', stream: 'NEW_AND_OLD_IMAGES' });
    deps = applyStreamDeps(engines, table, keySchema, { index }, { runId: 'updater-test' });
  });

  afterAll(async () => {
    await deleteTable(dynamodb, table);
    await deleteIndex(search, index);
  });

  it('Lambda-shaped batches of the real stream (binary keys and sets as base64; updates, deletes, a re-create): the index equals the table', async () => {
    // Prepare
    for (let i = 0; i < 8; i++) {
      await put({
        pk: { S: 'file' },
        sk: { B: binary(i, 255) },
        blob: { B: binary(0, i, 254) },
        parts: { BS: [binary(i), binary(1, 2)] },
        size: { N: `0.${i}000000000000001` },
      });
    }
    for (let i = 0; i < 5; i++)
      await put({ pk: { S: 'file' }, sk: { B: binary(1, 255) }, blob: { B: binary(i) } });
    await dynamodb.send(
      new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'file' }, sk: { B: binary(3, 255) } } }),
    );
    await put({ pk: { S: 'file' }, sk: { B: binary(3, 255) }, recreated: { BOOL: true } });
    await dynamodb.send(
      new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'file' }, sk: { B: binary(2, 255) } } }),
    );
    const records = await newRecords();
    expect(records[0]!.dynamodb!.Keys!.sk!.B).toBe(Buffer.from([0, 255]).toString('base64'));
    const metrics = new Metrics({ namespace: 'ddb2os-test', serviceName: 'updater-test' });

    // Act: batches of 4, as an event source mapping would deliver them
    const responses = [];
    for (let i = 0; i < records.length; i += 4) {
      responses.push(await handleStreamEvent({ Records: records.slice(i, i + 4) }, { ...deps, metrics }));
    }

    // Assess
    expect(responses.every((response) => response.batchItemFailures.length === 0)).toBe(true);
    await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, deps.mapping, ['parts']);
    const emitted = metrics.serializeMetrics() as unknown as Record<string, unknown>;
    expect(records.length).toBe(16);
    expect(emitted.StreamRecordsApplied).toEqual([4, 4, 4, 4]);
    expect(emitted.StreamRecordsDeadLettered).toEqual([0, 0, 0, 0]);
    expect((emitted.StreamLagSeconds as number[]).every((lag) => lag >= 0 && lag < 600)).toBe(true);
    metrics.clearMetrics();
  });

  it('OpenSearch unreachable: batchItemFailures names the first record, and re-delivery from it converges', async () => {
    await put({ pk: { S: 'later' }, sk: { B: binary(1) }, v: { N: '1' } });
    await put({ pk: { S: 'later' }, sk: { B: binary(2) }, v: { N: '2' } });
    const records = await newRecords();
    const down = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH });

    const failed = await handleStreamEvent(
      { Records: records },
      { ...deps, opensearch: down, bulk: FAST_BULK },
    );
    await down.close();

    expect(failed).toEqual({ batchItemFailures: [{ itemIdentifier: records[0]!.dynamodb!.SequenceNumber }] });
    const redelivered = await handleStreamEvent({ Records: records }, deps);
    expect(redelivered).toEqual({ batchItemFailures: [] });
    await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, deps.mapping, ['parts']);
  });

  it('an empty event is answered with no failures', async () => {
    expect(await handleStreamEvent({ Records: [] }, deps)).toEqual({ batchItemFailures: [] });
  });
});

describe('handleStreamEvent: poison records and an unavailable sink', () => {
  const engines = useEngines();
  const { dynamodb, streams, opensearch: search } = engines;
  const single: KeySchema = { partitionKey: 'pk' };

  /** A table with puts p0…p(count-1), its stream's records as a Lambda event, and deps writing to `opensearch`. */
  async function batchOf(name: string, count: number, item: (i: number) => Item = () => ({})) {
    const table = await createTable(dynamodb, uniqueName(name), {
      keySchema: single,
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = uniqueName(name);
    engines.deleteTableAfter(table);
    engines.deleteIndexAfter(index);
    for (let i = 0; i < count; i++) {
      await dynamodb.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: `p${i}` }, n: { N: String(i) }, ...item(i) },
        }),
      );
    }
    const records = (await readStream(streams, dynamodb, table)).map(toLambdaRecord);
    const deadLetters = temporaryDeadLetters();
    const deps = (opensearch = search) =>
      applyStreamDeps({ opensearch, dynamodb }, table, single, { index }, { deadLetters, bulk: FAST_BULK });
    const ids = async () => {
      await search.indices.refresh({ index });
      const { body } = await search.search({ index, body: { size: 100, query: { match_all: {} } } });
      return body.hits.hits.map((hit) => hit._id).sort();
    };
    return { table, index, records, deadLetters, deps, ids };
  }

  it('an unreadable record and an item whose GetItem DynamoDB refuses, in the middle of a batch: the others land, both are dead-lettered with their reasons, nothing is retried', async () => {
    // Prepare: record 2 has no known event name; record 4 has lost its image and names its key with the wrong type
    const t = await batchOf('updater-poison', 7);
    t.records[2]!.eventName = 'UNKNOWN' as never;
    const bad = t.records[4]!;
    bad.eventName = 'MODIFY';
    delete bad.dynamodb!.NewImage;
    bad.dynamodb!.Keys = { pk: { N: '4' } };

    // Act
    const response = await handleStreamEvent({ Records: t.records }, t.deps());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await t.ids()).toEqual(['p0', 'p1', 'p3', 'p5', 'p6']);
    const letters = await t.deadLetters.read('updater');
    expect(letters.map((letter) => [letter.key, letter.errorType])).toEqual([
      [{ pk: { S: 'p2' } }, 'InvalidStreamRecordError'],
      [{ pk: { N: '4' } }, 'ValidationException'],
    ]);
    expect(letters[0]!.reason).toBe(
      `stream record ${t.records[2]!.dynamodb!.SequenceNumber} has event name UNKNOWN, not INSERT, MODIFY or REMOVE`,
    );
    expect(letters[1]!.reason).toMatch(
      new RegExp(
        `^the change at stream record ${bad.dynamodb!.SequenceNumber} could not be applied: .*[Tt]ype mismatch`,
      ),
    );
  });

  it('OpenSearch refuses a whole bulk request because of one document: bisection finds it, it is dead-lettered, the other seven land', async () => {
    // Prepare: item 5 holds the text the proxy refuses a bulk request for
    const t = await batchOf('updater-bisect', 8, (i): Item => (i === 5 ? { note: { S: 'refuse-me' } } : {}));
    const proxy = await startFaultProxy(opensearchUrl(), { refuseBulkContaining: 'refuse-me' });
    const opensearch = openSearchClient(proxy.url);

    try {
      // Act
      const response = await handleStreamEvent({ Records: t.records }, t.deps(opensearch));

      // Assess
      expect(response).toEqual({ batchItemFailures: [] });
      expect(await t.ids()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p6', 'p7']);
      const letters = await t.deadLetters.read('updater');
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ key: { pk: { S: 'p5' } }, errorType: 'SinkUnavailableError' });
      expect(letters[0]!.reason).toContain(
        `stream record ${t.records[5]!.dynamodb!.SequenceNumber} was set aside: OpenSearch at ${proxy.url} refused a bulk request with HTTP 400`,
      );
      // The whole batch, then halves down to the one record: a few requests, not one per record.
      expect(proxy.stats.refusedBulkRequests).toBe(4);
    } finally {
      await opensearch.close();
      await proxy.close();
    }
  });

  it('OpenSearch unreachable (every connection dropped): nothing is dead-lettered and the first record is named for the retry', async () => {
    const t = await batchOf('updater-down', 4);
    const proxy = await startFaultProxy(opensearchUrl(), { dropConnections: true });
    const opensearch = openSearchClient(proxy.url);

    try {
      const response = await handleStreamEvent({ Records: t.records }, t.deps(opensearch));

      expect(response).toEqual({
        batchItemFailures: [{ itemIdentifier: t.records[0]!.dynamodb!.SequenceNumber }],
      });
      expect(proxy.stats.dropped).toBeGreaterThan(0);
      expect(await t.deadLetters.read('updater')).toEqual([]);
    } finally {
      await opensearch.close();
      await proxy.close();
    }
  });
});

describe('handleStreamEvent: Kinesis and SQS events', () => {
  const engines = useEngines();
  const { dynamodb, streams, opensearch: search } = engines;
  const single: KeySchema = { partitionKey: 'pk' };

  /** A table with churn (puts, updates, deletes, a re-create), its index, and its stream's records in the Lambda form. */
  async function churn(name: string) {
    const table = await engines.createTable(name, { keySchema: single, stream: 'NEW_AND_OLD_IMAGES' });
    const index = engines.indexName(name);
    // The backfill creates the index before the updater runs; an unordered apply reads documents from it.
    await search.indices.create({ index, body: { settings: { number_of_replicas: 0 } } });
    const put = (pk: string, n: number) =>
      dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, n: { N: `${n}` } } }));
    const remove = (pk: string) =>
      dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } }));
    for (let i = 0; i < 5; i++) await put(`p${i}`, i);
    await put('p1', 11);
    await remove('p2');
    await remove('p3');
    await put('p3', 33);
    const records = (await readStream(streams, dynamodb, table)).map(toLambdaRecord);
    const deadLetters = temporaryDeadLetters();
    const deps = (opensearch = search) =>
      applyStreamDeps({ opensearch, dynamodb }, table, single, { index }, { deadLetters, bulk: FAST_BULK });
    const equalsTable = () => expectIndexEqualsTable({ search, dynamodb, table, index }, single, { index });
    return { records, deadLetters, deps, equalsTable };
  }

  const kinesisRecord = (record: DynamoDBRecord, n: number): KinesisStreamRecord =>
    ({
      eventSource: 'aws:kinesis',
      eventName: 'aws:kinesis:record',
      eventID: `shardId-000000000000:${n}`,
      kinesis: {
        data: toKinesisData(record, {
          micros: BigInt(record.dynamodb!.ApproximateCreationDateTime!) * 1_000_000n,
        }),
        sequenceNumber: `${49_600_000_000_000_000_000n + BigInt(n)}`,
        partitionKey: JSON.stringify(record.dynamodb!.Keys),
        kinesisSchemaVersion: '1.0',
        approximateArrivalTimestamp: 1_700_000_000,
      },
    }) as KinesisStreamRecord;
  const sqsRecord = (body: string, n: number): SQSRecord =>
    ({ eventSource: 'aws:sqs', messageId: `message-${n}`, body }) as SQSRecord;
  const envelopes: SqsEnvelope[] = ['pipes', 'sns-raw', 'sns', 'eventbridge'];

  it('a Kinesis event, its records shuffled and repeated as Kinesis may deliver them: the index equals the table', async () => {
    // Prepare
    const t = await churn('updater-kinesis');
    const delivery = [...[...t.records].reverse(), ...t.records].map((record, n) => kinesisRecord(record, n));

    // Act
    const response = await handleStreamEvent({ Records: delivery }, t.deps());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    await t.equalsTable();
  });

  it('an SQS event mixing the fan-out envelopes, repeated and reversed, with one message of no known shape: the index equals the table and that message is dead-lettered', async () => {
    // Prepare
    const t = await churn('updater-sqs');
    const bodies = [...[...t.records].reverse(), ...t.records].map((record, n) =>
      toSqsBody(record, envelopes[n % envelopes.length]!),
    );
    const delivery = [sqsRecord('{"not":"a change"}', 99), ...bodies.map(sqsRecord)];

    // Act
    const response = await handleStreamEvent({ Records: delivery }, t.deps());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    await t.equalsTable();
    const letters = await t.deadLetters.read('updater');
    expect(letters.map((letter) => letter.errorType)).toEqual(['InvalidStreamRecordError']);
    expect(letters[0]!.reason).toMatch(/^SQS message message-99 holds no DynamoDB change; expected /);
  });

  it('OpenSearch unreachable: an SQS answer names every message, a Kinesis answer the first record; re-delivery converges', async () => {
    // Prepare
    const t = await churn('updater-fanout-down');
    const messages = t.records.map((record, n) => sqsRecord(toSqsBody(record, 'pipes'), n));
    const kinesis = t.records.map((record, n) => kinesisRecord(record, n));
    const down = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH });

    // Act
    const fromSqs = await handleStreamEvent({ Records: messages }, t.deps(down));
    const fromKinesis = await handleStreamEvent({ Records: kinesis }, t.deps(down));
    await down.close();
    const redelivered = await handleStreamEvent({ Records: messages }, t.deps());

    // Assess
    expect(fromSqs).toEqual({
      batchItemFailures: messages.map((message) => ({ itemIdentifier: message.messageId })),
    });
    expect(fromKinesis).toEqual({
      batchItemFailures: [{ itemIdentifier: kinesis[0]!.kinesis.sequenceNumber }],
    });
    expect(redelivered).toEqual({ batchItemFailures: [] });
    await t.equalsTable();
  });

  it('a record from a source the updater does not read is dead-lettered, naming the sources it reads', async () => {
    const t = await churn('updater-foreign');
    const response = await handleStreamEvent(
      { Records: [{ eventSource: 'aws:s3' } as never, sqsRecord(toSqsBody(t.records[0]!, 'sns'), 1)] },
      t.deps(),
    );
    expect(response).toEqual({ batchItemFailures: [] });
    const letters = await t.deadLetters.read('updater');
    expect(letters.map((letter) => letter.reason)).toEqual([
      'an event record from aws:s3: the updater reads records from aws:dynamodb, aws:kinesis or aws:sqs',
    ]);
  });
});

describe('updater configuration', () => {
  it('the handler fails the batch, naming the missing variable, when the function is not configured', async () => {
    const saved = process.env.DDB2OS_TABLE_NAME;
    delete process.env.DDB2OS_TABLE_NAME;
    try {
      await expect(handler({ Records: [] }, {} as Context)).rejects.toThrow(
        'environment variable DDB2OS_TABLE_NAME is not set',
      );
    } finally {
      if (saved !== undefined) process.env.DDB2OS_TABLE_NAME = saved;
    }
  });
});
