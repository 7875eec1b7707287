/**
 * The local stand-in for the AWS features that carry a table's changes to the
 * other change sources: **Kinesis Data Streams for DynamoDB** (the table
 * streams to a Kinesis data stream) and a **fan-out** of the table's stream
 * into an SQS queue (EventBridge Pipes, a Lambda publishing to SNS, an
 * EventBridge rule). DynamoDB Local can do neither, so this reads the
 * table's DynamoDB stream (the stream follower's reading, its own positions
 * `forward#<table>`) and writes every change, in the wire format AWS
 * delivers, to kinesalite or ElasticMQ. It is not part of a cloud
 * deployment, and says so when it starts.
 *
 * - Kinesis: PutRecords, partition key = a hash of the item's key (so one
 *   item's changes share a shard, as with AWS), the record in the format of
 *   Kinesis Data Streams for DynamoDB with `ApproximateCreationDateTime` in
 *   microseconds (`ApproximateCreationDateTimePrecision: MICROSECOND`).
 *   DynamoDB Local stamps its stream records in whole seconds, where AWS
 *   stamps the write at microsecond precision: one item's later change must
 *   carry a later time, so the forwarder keeps the times it gives strictly
 *   increasing in stream order.
 * - SQS: one message per change, its body the DynamoDB stream record as
 *   Lambda and Pipes see it, in the envelope of the chosen fan-out (see
 *   `SqsEnvelope`). A FIFO queue gets MessageGroupId = the item's key hash
 *   and MessageDeduplicationId = the record's eventID.
 * - `disorder`: what Kinesis and a standard queue may do to a consumer,
 *   made to happen: each page goes out shuffled and with some records twice,
 *   from a seed, so a failing test run can be repeated. Refused for a FIFO
 *   queue, which keeps a group's order and drops repeated ids.
 *
 * A page is forwarded whole or retried (records already sent are sent
 * again): at-least-once, as the AWS features deliver.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ApplyResult } from '../pipeline/apply/apply-stream';
import { isUnreadable, type StreamBatchRecord, type StreamChange } from '../pipeline/apply/stream-records';
import { ChangeSourceError, ConfigurationError } from '../pipeline/errors';
import { DynamoDBStreamPositionStore } from '../pipeline/progress/stream-positions';
import { kinesisStreamName } from '../pipeline/summarize/source-retention';
import { describeSourceTable, requireStream } from '../pipeline/table/describe';
import { binaryAsBase64 } from '../pipeline/table/sdk-json';
import type { Item } from '../pipeline/table/types';
import { seededRandom } from './demo-data';
import { LOCAL_ACCOUNT_ID } from './engines/engine';
import { StreamFollower } from './stream-follower';

/**
 * How the fan-out wraps each stream record in the SQS message body:
 * - `pipes`: EventBridge Pipes from the stream to the queue: the record itself.
 * - `sns-raw`: a Lambda publishes the record to SNS, the queue subscribes
 *   with raw message delivery: the record itself.
 * - `sns`: the same without raw delivery: an SNS notification whose
 *   `Message` is the record as a string.
 * - `eventbridge`: Pipes to an event bus, a rule to the queue: an
 *   EventBridge event whose `detail` is the record.
 */
export type SqsEnvelope = 'pipes' | 'sns-raw' | 'sns' | 'eventbridge';
export const SQS_ENVELOPES: readonly SqsEnvelope[] = ['pipes', 'sns-raw', 'sns', 'eventbridge'];

/** Where the forwarder writes. */
export type ForwardTarget =
  | { kind: 'kinesis'; kinesis: KinesisClient /** name or ARN */; stream: string }
  | { kind: 'sqs'; sqs: SQSClient; queueUrl: string; envelope: SqsEnvelope; fifo: boolean };

export interface ChangeForwarderOptions {
  streams: DynamoDBStreamsClient;
  dynamodb: DynamoDBClient;
  table: string;
  /** Where the forwarder keeps its stream positions (the run's progress table). */
  progressTable: string;
  target: ForwardTarget;
  /** Shuffle each page and send some records twice, from `seed`. Not for a FIFO queue. @default in order, once */
  disorder?: { seed: number /** Share of records sent twice. @default 0.25 */; duplicates?: number };
  /** Pause between polls of the table's stream. @default 200 */
  pollIntervalMs?: number;
  /** Where its start line and errors go. @default stderr */
  log?: (line: string) => void;
}

/** The counts of a forwarder, for tests and the demo. */
export interface ForwarderCounts {
  /** Changes read from the table's stream. */
  changes: number;
  /** Records or messages written (changes plus duplicates). */
  sent: number;
}

/** The table's stream read and forwarded: start() and stop() as the stream follower's, plus counts. */
export interface ChangeForwarder {
  readonly follower: StreamFollower;
  readonly counts: ForwarderCounts;
  /** Forwards everything the stream holds now, then resolves. */
  drain(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

const KINESIS_BATCH = 500;
const SQS_BATCH = 10;
/** SQS takes 256 KiB per batch request; room for the request's own fields. */
const SQS_BATCH_BYTES = 240 * 1024;

/** Starts nothing yet: returns the forwarder of `table`'s stream to `target`. */
export async function createChangeForwarder(options: ChangeForwarderOptions): Promise<ChangeForwarder> {
  const { target } = options;
  if (options.disorder && target.kind === 'sqs' && target.fifo) {
    throw new ConfigurationError(
      'the forwarder cannot shuffle or duplicate into a FIFO queue: FIFO keeps each group in order and drops repeated ids',
    );
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const table = requireStream(await describeSourceTable(options.dynamodb, options.table));
  const region = await options.dynamodb.config.region();
  const viewType = String(
    (table.description.StreamSpecification as { StreamViewType?: string } | undefined)?.StreamViewType ??
      'NEW_AND_OLD_IMAGES',
  );
  const encoder = new RecordEncoder({ table: options.table, region, streamArn: table.streamArn!, viewType });
  const random = options.disorder ? seededRandom(options.disorder.seed) : undefined;
  const counts: ForwarderCounts = { changes: 0, sent: 0 };
  const send = target.kind === 'kinesis' ? kinesisSender(target) : sqsSender(target);
  log(
    `change forwarder: standing in for ${describeFeature(target)}, from the stream of ${options.table}` +
      (options.disorder
        ? ` (shuffled, ${Math.round((options.disorder.duplicates ?? 0.25) * 100)}% sent twice, seed ${options.disorder.seed})`
        : ''),
  );
  const positions = await DynamoDBStreamPositionStore.open({
    dynamodb: options.dynamodb,
    progressTable: options.progressTable,
    table: options.table,
    positionsId: `forward#${options.table}`,
  });
  const follower = new StreamFollower({
    streams: options.streams,
    dynamodb: options.dynamodb,
    table: options.table,
    positions,
    pollIntervalMs: options.pollIntervalMs ?? 200,
    onError: (error) => log(`change forwarder: ${(error as Error)?.message ?? String(error)}; trying again`),
    apply: async (records: StreamBatchRecord[]): Promise<ApplyResult> => {
      const changes = records.filter((record): record is StreamChange => !isUnreadable(record));
      if (changes.length < records.length) {
        log(`change forwarder: ${records.length - changes.length} unreadable stream records not forwarded`);
      }
      let outgoing = changes.map((change) => encoder.encode(change));
      if (random && options.disorder) {
        const share = options.disorder.duplicates ?? 0.25;
        outgoing = shuffle(
          outgoing.flatMap((record) => (random() < share ? [record, record] : [record])),
          random,
        );
      }
      await send(outgoing);
      counts.changes += changes.length;
      counts.sent += outgoing.length;
      return {
        applied: records.length,
        indexed: 0,
        deleted: 0,
        skipped: records.length - changes.length,
        deadLettered: 0,
      };
    },
  });
  return {
    follower,
    counts,
    drain: async () => {
      await follower.drain();
    },
    start: () => follower.start(),
    stop: () => follower.stop(),
  };
}

function describeFeature(target: ForwardTarget): string {
  if (target.kind === 'kinesis') {
    return `Kinesis Data Streams for DynamoDB (to stream ${kinesisStreamName(target.stream)})`;
  }
  const fanOut = {
    pipes: 'EventBridge Pipes',
    'sns-raw': 'SNS with raw message delivery',
    sns: 'SNS',
    eventbridge: 'EventBridge Pipes to a bus and a rule',
  }[target.envelope];
  return `a fan-out of the table's stream through ${fanOut} (to ${target.fifo ? 'FIFO ' : ''}queue ${target.queueUrl})`;
}

/** A change as the forwarder sends it: the DynamoDB stream record and the Kinesis record, built once. */
export interface ForwardedRecord {
  /** Hash of the item's key: Kinesis partition key, FIFO message group. */
  partitionKey: string;
  eventID: string;
  /** The record as Lambda, Pipes and SNS subscribers see it (JSON). */
  streamRecord: Record<string, unknown>;
  /** The record in the Kinesis Data Streams for DynamoDB format (JSON text). */
  kinesisData: string;
}

/** Builds both wire forms of a change (exported for the tests that read them back with the updater's decoders). */
export class RecordEncoder {
  /** The last microsecond time given: times increase strictly in stream order (see the header). */
  private lastMicros = 0;

  constructor(
    private readonly context: { table: string; region: string; streamArn: string; viewType: string },
  ) {}

  encode(change: StreamChange): ForwardedRecord {
    const { table, region, streamArn, viewType } = this.context;
    const images: Record<string, Item> = { Keys: change.keys };
    if (change.newImage) images.NewImage = change.newImage;
    if (change.oldImage) images.OldImage = change.oldImage;
    const imagesJson = JSON.stringify(images, binaryAsBase64);
    const sizeBytes = Buffer.byteLength(imagesJson);
    const wireImages = JSON.parse(imagesJson) as Record<string, unknown>;
    const seconds = change.approximateCreationDateTime ?? Date.now() / 1000;
    this.lastMicros = Math.max(Math.round(seconds * 1_000_000), this.lastMicros + 1);
    // The same change always gets the same id: a retried page is deduplicated by a FIFO queue.
    const eventID = createHash('md5').update(`${streamArn}/${change.sequenceNumber}`).digest('hex');
    const partitionKey = createHash('md5')
      .update(JSON.stringify(sortedKeys(wireImages.Keys as Record<string, unknown>)))
      .digest('hex')
      .toUpperCase();
    const streamRecord = {
      eventID,
      eventName: change.eventName,
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: region,
      dynamodb: {
        ApproximateCreationDateTime: Math.floor(seconds),
        ...wireImages,
        SequenceNumber: change.sequenceNumber,
        SizeBytes: sizeBytes,
        StreamViewType: viewType,
      },
      eventSourceARN: streamArn,
    };
    const kinesisRecord = {
      awsRegion: region,
      eventID: randomUUIDFrom(eventID),
      eventName: change.eventName,
      userIdentity: null,
      recordFormat: 'application/json',
      tableName: table,
      dynamodb: {
        ApproximateCreationDateTime: this.lastMicros,
        ...wireImages,
        SizeBytes: sizeBytes,
        ApproximateCreationDateTimePrecision: 'MICROSECOND',
      },
      eventSource: 'aws:dynamodb',
    };
    return { partitionKey, eventID, streamRecord, kinesisData: JSON.stringify(kinesisRecord) };
  }
}

function sortedKeys(keys: Record<string, unknown>): [string, unknown][] {
  return Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Kinesis Data Streams for DynamoDB names events with UUIDs: the hex id in that form. */
function randomUUIDFrom(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

type Sender = (records: ForwardedRecord[]) => Promise<void>;

function kinesisSender(target: Extract<ForwardTarget, { kind: 'kinesis' }>): Sender {
  const StreamName = kinesisStreamName(target.stream);
  return async (records) => {
    for (let start = 0; start < records.length; start += KINESIS_BATCH) {
      let entries: PutRecordsRequestEntry[] = records.slice(start, start + KINESIS_BATCH).map((record) => ({
        PartitionKey: record.partitionKey,
        Data: new TextEncoder().encode(record.kinesisData),
      }));
      for (let attempt = 1; entries.length > 0; attempt++) {
        const answer = await target.kinesis.send(new PutRecordsCommand({ StreamName, Records: entries }));
        // Throttled entries fail one by one: send those again, in their order.
        entries = entries.filter((_, i) => answer.Records?.[i]?.ErrorCode !== undefined);
        if (entries.length > 0) await giveUpAfter(attempt, `PutRecords to ${StreamName}`);
      }
    }
  };
}

function sqsSender(target: Extract<ForwardTarget, { kind: 'sqs' }>): Sender {
  return async (records) => {
    for (const batch of sqsBatches(records.map((record) => sqsEntry(target, record)))) {
      let entries = batch;
      for (let attempt = 1; entries.length > 0; attempt++) {
        const answer = await target.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: target.queueUrl, Entries: entries }),
        );
        const failed = new Set((answer.Failed ?? []).map((failure) => failure.Id));
        entries = entries.filter((entry) => failed.has(entry.Id));
        if (entries.length > 0) await giveUpAfter(attempt, `SendMessageBatch to ${target.queueUrl}`);
      }
    }
  };
}

let entryCounter = 0;

function sqsEntry(
  target: Extract<ForwardTarget, { kind: 'sqs' }>,
  record: ForwardedRecord,
): SendMessageBatchRequestEntry {
  entryCounter += 1;
  return {
    Id: `m${entryCounter}`,
    MessageBody: JSON.stringify(envelope(target.envelope, record)),
    ...(target.fifo ? { MessageGroupId: record.partitionKey, MessageDeduplicationId: record.eventID } : {}),
  };
}

/** At most 10 entries and SQS_BATCH_BYTES a request. */
function sqsBatches(entries: SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const batches: SendMessageBatchRequestEntry[][] = [];
  let current: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.MessageBody ?? '');
    if (current.length === SQS_BATCH || (current.length > 0 && bytes + size > SQS_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The message body of one change in the fan-out's envelope (see SqsEnvelope). */
export function envelope(kind: SqsEnvelope, record: ForwardedRecord): unknown {
  const { streamRecord } = record;
  const region = String(streamRecord.awsRegion);
  const now = new Date().toISOString();
  switch (kind) {
    case 'pipes':
    case 'sns-raw':
      return streamRecord;
    case 'sns': {
      const topicArn = `arn:aws:sns:${region}:${LOCAL_ACCOUNT_ID}:ddb2os-change-forwarder`;
      return {
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: topicArn,
        Message: JSON.stringify(streamRecord),
        Timestamp: now,
        SignatureVersion: '1',
        // The stand-in signs nothing; a reader of the queue does not check SNS signatures.
        Signature: 'stand-in',
        SigningCertURL: `https://sns.${region}.amazonaws.com/SimpleNotificationService-stand-in.pem`,
        UnsubscribeURL: `https://sns.${region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:stand-in`,
      };
    }
    case 'eventbridge':
      return {
        version: '0',
        id: randomUUID(),
        'detail-type': 'Event from aws:dynamodb',
        source: 'Pipe ddb2os-change-forwarder',
        account: LOCAL_ACCOUNT_ID,
        time: now,
        region,
        resources: [],
        detail: streamRecord,
      };
  }
}

/** Waits before sending failed entries again; after 8 attempts the page fails (the follower retries it). */
async function giveUpAfter(attempt: number, what: string): Promise<void> {
  if (attempt >= 8)
    throw new ChangeSourceError(`${what} kept failing for some records after ${attempt} attempts`);
  await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 50 * 2 ** attempt)));
}

/** Fisher–Yates with the given generator. */
function shuffle<T>(values: T[], random: () => number): T[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}
