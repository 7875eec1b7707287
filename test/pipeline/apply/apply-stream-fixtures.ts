/**
 * What the stream tests share: the real stream's records read through the
 * DynamoDB Streams API, the same records in the Lambda event's JSON form, and
 * the check that the index equals the table.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  type _Record,
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type AttributeValue as StreamsAttributeValue,
} from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import type { DynamoDBRecord, AttributeValue as LambdaAttributeValue } from 'aws-lambda';
import { expect } from 'vitest';
import type { ApplyStreamDeps } from '../../../pipeline/apply/apply-stream';
import { type DeadLetterSink, DirectoryDeadLetterSink } from '../../../pipeline/dead-letter/dead-letter';
import { aggregateCollection, type MappingConfig, mapItem } from '../../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../../pipeline/table/types';

/** Every record of the table's current stream after `after` (all when omitted), in shard order. */
export async function readStream(
  streams: DynamoDBStreamsClient,
  dynamodb: DynamoDBClient,
  table: string,
  after?: string,
): Promise<_Record[]> {
  const { records } = await readShards(streams, dynamodb, table, async (iterator) => {
    const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
    return { records: page.Records ?? [], next: page.NextShardIterator };
  });
  return after === undefined
    ? records
    : records.filter((record) => BigInt(record.dynamodb!.SequenceNumber!) > BigInt(after));
}

/**
 * Every record of the table's current stream, shard by shard from its start
 * (TRIM_HORIZON), each page read by `readPage`; a shard ends at its first
 * empty page, since DynamoDB Local keeps an open shard's iterator going.
 */
export async function readShards<R>(
  streams: DynamoDBStreamsClient,
  dynamodb: DynamoDBClient,
  table: string,
  readPage: (iterator: string) => Promise<{ records: R[]; next?: string }>,
): Promise<{ streamArn: string; records: R[] }> {
  const described = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
  const streamArn = described.Table!.LatestStreamArn!;
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const records: R[] = [];
  for (const shard of StreamDescription?.Shards ?? []) {
    let iterator = (
      await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await readPage(iterator);
      records.push(...page.records);
      if (page.records.length === 0) break;
      iterator = page.next;
    }
  }
  return { streamArn, records };
}

/** A Streams API record as the Lambda event carries it: binary as base64, time in epoch seconds. */
export function toLambdaRecord(record: _Record): DynamoDBRecord {
  const stream = record.dynamodb!;
  const image = (item: Record<string, StreamsAttributeValue> | undefined) =>
    item === undefined
      ? undefined
      : Object.fromEntries(Object.entries(item).map(([name, value]) => [name, toLambdaValue(value)]));
  return {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion,
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    eventSourceARN: 'arn:aws:dynamodb:us-east-1:000000000000:table/test/stream/label',
    dynamodb: {
      ApproximateCreationDateTime: stream.ApproximateCreationDateTime!.getTime() / 1000,
      Keys: image(stream.Keys),
      NewImage: image(stream.NewImage),
      OldImage: image(stream.OldImage),
      SequenceNumber: stream.SequenceNumber,
      SizeBytes: stream.SizeBytes,
      StreamViewType: stream.StreamViewType,
    },
  };
}

function toLambdaValue(value: StreamsAttributeValue): LambdaAttributeValue {
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  if (value.B !== undefined) return { B: base64(value.B) };
  if (value.BS !== undefined) return { BS: value.BS.map(base64) };
  if (value.M !== undefined)
    return {
      M: Object.fromEntries(Object.entries(value.M).map(([name, member]) => [name, toLambdaValue(member)])),
    };
  if (value.L !== undefined) return { L: value.L.map(toLambdaValue) };
  return JSON.parse(JSON.stringify(value)) as LambdaAttributeValue;
}

export async function scanTable(dynamodb: DynamoDBClient, table: string): Promise<Item[]> {
  const items: Item[] = [];
  let ExclusiveStartKey: Item | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** Every document of the index (after a refresh), by id. */
export async function indexDocuments(search: Client, index: string): Promise<Map<string, unknown>> {
  await search.indices.refresh({ index, ignore_unavailable: true });
  const exists = await search.indices.exists({ index });
  if (!exists.body) return new Map();
  const found = await search.search({ index, body: { query: { match_all: {} }, size: 10_000 } });
  return new Map(found.body.hits.hits.map((hit) => [hit._id!, hit._source]));
}

/**
 * The index holds exactly the documents the mapping makes of the table's
 * items now: the same ids, the same bodies, nothing more. `sets` names
 * set-valued fields, compared sorted (DynamoDB keeps no order in a set).
 */
export async function expectIndexEqualsTable(
  context: { search: Client; dynamodb: DynamoDBClient; table: string; index: string },
  keySchema: KeySchema,
  mapping: MappingConfig,
  sets: string[] = [],
): Promise<void> {
  const items = await scanTable(context.dynamodb, context.table);
  let expected: { id: string; document: Record<string, unknown> }[];
  if (mapping.aggregate) {
    const partitions = new Map<string, Item[]>();
    for (const item of items) {
      const name = JSON.stringify(item[keySchema.partitionKey]);
      partitions.set(name, [...(partitions.get(name) ?? []), item]);
    }
    expected = [...partitions.values()].flatMap((group) => aggregateCollection(group, keySchema, mapping));
  } else {
    expected = items.flatMap((item) => mapItem(item, keySchema, mapping));
  }
  const actual = await indexDocuments(context.search, context.index);
  const normal = (document: unknown) => sortSets(document as Record<string, unknown>, sets);
  expect(Object.fromEntries([...actual].map(([id, document]) => [id, normal(document)]))).toStrictEqual(
    Object.fromEntries(expected.map(({ id, document }) => [id, normal(document)])),
  );
}

function sortSets(document: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  const copy = { ...document };
  for (const name of sets) {
    if (Array.isArray(copy[name])) copy[name] = [...(copy[name] as unknown[])].map(String).sort();
  }
  return copy;
}

/** A dead-letter folder of its own under the system's temporary directory. */
export function temporaryDeadLetters(): DirectoryDeadLetterSink {
  return new DirectoryDeadLetterSink(mkdtempSync(join(tmpdir(), 'ddb2os-stream-dead-letters-')));
}

/**
 * The deps applyStreamRecords needs to apply `table`'s changes to
 * `mapping.index` on the engines, with a dead-letter folder of their own
 * unless `options` brings one; `options` adds or overrides any other dep.
 */
export function applyStreamDeps<Sink extends DeadLetterSink = DirectoryDeadLetterSink>(
  engines: { opensearch: Client; dynamodb: DynamoDBClient },
  table: string,
  keySchema: KeySchema,
  mapping: MappingConfig,
  options: Partial<Omit<ApplyStreamDeps, 'deadLetters'>> & { deadLetters?: Sink } = {},
): ApplyStreamDeps & { deadLetters: Sink } {
  return {
    opensearch: engines.opensearch,
    dynamodb: engines.dynamodb,
    table,
    keySchema,
    mapping,
    ...options,
    // Without a sink of the caller's, Sink is its default, the directory sink made here.
    deadLetters: options.deadLetters ?? (temporaryDeadLetters() as DeadLetterSink as Sink),
  };
}

/** An OpenSearch URL where nothing listens (port 9 is discard; closed on loopback). */
export const UNREACHABLE_OPENSEARCH = 'http://127.0.0.1:9';

/** Fast retries, so tests that exhaust them stay quick. */
export const FAST_BULK = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };

/** How an SQS message may carry a stream record (docs/stream-updater.md, "Kinesis and SQS sources"). */
export type SqsEnvelope = 'pipes' | 'sns-raw' | 'sns' | 'eventbridge';

/**
 * A Lambda-form stream record in the Kinesis Data Streams for DynamoDB
 * format, base64 as the Lambda event carries it: no SequenceNumber, and
 * ApproximateCreationDateTime in microseconds or milliseconds. `micros`
 * gives the time in microseconds (a record's seconds say too little).
 */
export function toKinesisData(
  record: DynamoDBRecord,
  options: { micros: bigint; precision?: 'MICROSECOND' | 'MILLISECOND' },
): string {
  const {
    SequenceNumber: _sequence,
    StreamViewType: _view,
    ApproximateCreationDateTime: _time,
    ...stream
  } = record.dynamodb!;
  const time = options.precision === 'MILLISECOND' ? options.micros / 1000n : options.micros;
  const data = {
    awsRegion: 'us-east-1',
    eventID: record.eventID,
    eventName: record.eventName,
    userIdentity: null,
    recordFormat: 'application/json',
    tableName: 'test',
    dynamodb: { ApproximateCreationDateTime: Number(time), ...stream, SizeBytes: stream.SizeBytes ?? 1 },
    eventSource: 'aws:dynamodb',
  };
  return Buffer.from(JSON.stringify(data)).toString('base64');
}

/** The body of the SQS message that carries `record` through `envelope`. */
export function toSqsBody(record: DynamoDBRecord, envelope: SqsEnvelope): string {
  const json = JSON.stringify(record);
  switch (envelope) {
    case 'pipes':
    case 'sns-raw':
      return json;
    case 'sns':
      return JSON.stringify({
        Type: 'Notification',
        MessageId: `sns-${record.eventID}`,
        TopicArn: 'arn:aws:sns:us-east-1:000000000000:changes',
        Message: json,
        Timestamp: '2026-01-01T00:00:00.000Z',
        SignatureVersion: '1',
        Signature: 'c2lnbmF0dXJl',
        SigningCertURL: 'https://sns.us-east-1.amazonaws.com/cert.pem',
        UnsubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe',
      });
    case 'eventbridge':
      return JSON.stringify({
        version: '0',
        id: `eb-${record.eventID}`,
        'detail-type': 'Event from aws:dynamodb',
        source: 'Pipe changes',
        account: '000000000000',
        time: '2026-01-01T00:00:00Z',
        region: 'us-east-1',
        resources: [],
        detail: record,
      });
  }
}
