/**
 * Stream records in one shape. The updater Lambda receives records as JSON
 * (binary values as base64 strings); the local stream follower reads the same
 * JSON from GetRecords, or, when it cannot, the SDK's output (binary values
 * as Uint8Array, times as Date). Both become a `StreamChange` whose attribute values have the form the
 * DynamoDB SDK returns from GetItem and Query, so the mapping sees one shape
 * whatever the source.
 *
 * The fan-out sources (docs/stream-updater.md, "Kinesis and SQS sources")
 * become the same `StreamChange` here, at the door:
 *
 * - a Kinesis record's data in the Kinesis Data Streams for DynamoDB format
 *   (the stream record without a SequenceNumber; ApproximateCreationDateTime
 *   in milliseconds, or microseconds when the table's destination is set so):
 *   `readKinesisData`, `readKinesisRecord`;
 * - an SQS message whose body is a DynamoDB stream record as EventBridge Pipes
 *   delivers it, as an SNS subscription delivers it (raw, or in the
 *   `Notification` envelope), or as the `detail` of an EventBridge event:
 *   `readSqsMessage`, `readSqsRecord`.
 *
 * Nothing after the door sees these wire formats.
 */
import type {
  AttributeValue as StreamsApiAttributeValue,
  _Record as StreamsApiRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type {
  DynamoDBRecord,
  KinesisStreamRecord,
  AttributeValue as LambdaAttributeValue,
  SQSRecord,
} from 'aws-lambda';
import { InvalidStreamRecordError } from '../errors';
import { decodeWireItem } from '../table/sdk-json';
import type { Item } from '../table/types';

/** One change of one item, as the stream recorded it. */
export interface StreamChange {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  /**
   * Orders the changes of one shard; a decimal string. For a Kinesis record,
   * whose data has none, the Kinesis sequence number: the record's place in
   * its shard, which is what a retry names, not the change's place in its
   * item's history.
   */
  sequenceNumber: string;
  /** The item's key attributes. */
  keys: Item;
  /** The item after the change (absent for REMOVE and for KEYS_ONLY and OLD_IMAGE streams). */
  newImage?: Item;
  /** The item before the change (absent for INSERT and for KEYS_ONLY and NEW_IMAGE streams). */
  oldImage?: Item;
  /**
   * When the change was made, in seconds since the epoch (as in the Lambda
   * event); fractional for a Kinesis record (milliseconds or microseconds).
   */
  approximateCreationDateTime?: number;
  /** The SQS message that carried the record: what a partial batch response names it by. */
  messageId?: string;
}

/**
 * A record of a Lambda `DynamoDBStreamEvent` (binary values are base64
 * strings), or of GetRecords' JSON, which has the same shape. Its images are
 * converted in place: binary values become Uint8Array.
 */
export function fromLambdaRecord(record: DynamoDBRecord): StreamChange {
  const stream = record.dynamodb;
  return buildChange(record.eventName, stream?.SequenceNumber, stream?.ApproximateCreationDateTime, {
    keys: lambdaItem(stream?.Keys),
    newImage: lambdaItem(stream?.NewImage),
    oldImage: lambdaItem(stream?.OldImage),
  });
}

/**
 * A record of a batch that is not a change the updater can read (no event
 * name, sequence number or keys; an image that cannot be decoded). It keeps
 * its place in the batch, so the apply code dead-letters it there, with its
 * reason, and goes on: one such record must not hold back its shard.
 */
export interface UnreadableStreamRecord {
  /** Why the record cannot be read (an InvalidStreamRecordError). */
  unreadable: Error;
  /** The record's sequence number, or '' when it has none. */
  sequenceNumber: string;
  /** The record's Keys as they came, for the dead letter; empty when it has none. */
  keys: Item;
  approximateCreationDateTime?: number;
  /** The SQS message that carried the record. */
  messageId?: string;
}

/** What a stream batch holds, position by position: changes, and the records that could not be read. */
export type StreamBatchRecord = StreamChange | UnreadableStreamRecord;

export function isUnreadable(record: StreamBatchRecord): record is UnreadableStreamRecord {
  return 'unreadable' in record;
}

/**
 * `fromLambdaRecord` for one record of a batch: a record it cannot read
 * becomes an UnreadableStreamRecord in its place instead of failing the batch.
 */
export function readLambdaRecord(record: DynamoDBRecord): StreamBatchRecord {
  try {
    return fromLambdaRecord(record);
  } catch (error) {
    return unreadableRecord(error, record);
  }
}

/** What the dead letter of a record that cannot be read keeps of it: its sequence number and Keys, as they came. */
function unreadableRecord(
  error: unknown,
  record: unknown,
  place: {
    sequenceNumber?: string;
    messageId?: string;
    what?: string;
    seconds?: (time: number) => number;
  } = {},
): UnreadableStreamRecord {
  const stream = (record as { dynamodb?: Record<string, unknown> } | null | undefined)?.dynamodb;
  const found = stream?.SequenceNumber;
  const sequenceNumber = place.sequenceNumber ?? (typeof found === 'string' ? found : '');
  const keys = stream?.Keys;
  const created = stream?.ApproximateCreationDateTime;
  const unreadable =
    error instanceof InvalidStreamRecordError
      ? error
      : new InvalidStreamRecordError(
          `${place.what ?? 'stream record'} ${sequenceNumber || place.messageId || '(no sequence number)'} cannot be read: ${(error as Error)?.message ?? String(error)}`,
          { cause: error },
        );
  return {
    unreadable,
    sequenceNumber,
    keys: keys !== null && typeof keys === 'object' ? (keys as Item) : {},
    ...(typeof created === 'number'
      ? { approximateCreationDateTime: (place.seconds ?? Number)(created) }
      : {}),
    ...(place.messageId === undefined ? {} : { messageId: place.messageId }),
  };
}

/**
 * ApproximateCreationDateTime of the Kinesis format: milliseconds since the
 * epoch, or microseconds when the table's Kinesis destination has
 * ApproximateCreationDateTimePrecision MICROSECOND. The two cannot be told
 * apart by name, only by size: microseconds since 1970 passed 10^14 in 1973,
 * milliseconds will not before the year 5138.
 */
const MICROSECONDS_FROM = 1e14;

/**
 * The data of a Kinesis record in the Kinesis Data Streams for DynamoDB
 * format, as bytes (GetRecords) or base64 (the Lambda event), at its place
 * `kinesisSequenceNumber` in its shard. A record that is not such a change
 * becomes an UnreadableStreamRecord in its place.
 */
export function readKinesisData(data: Uint8Array | string, kinesisSequenceNumber: string): StreamBatchRecord {
  let record: unknown;
  try {
    const text =
      typeof data === 'string'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    record = JSON.parse(text);
    if (!isObject(record) || !isObject(record.dynamodb)) {
      throw new InvalidStreamRecordError(
        `Kinesis record ${kinesisSequenceNumber} is not a DynamoDB change in the Kinesis Data Streams for DynamoDB format (a JSON object with eventName and dynamodb)`,
      );
    }
    const stream = record.dynamodb as Record<string, unknown>;
    const created = stream.ApproximateCreationDateTime;
    return buildChange(
      record.eventName as string | undefined,
      kinesisSequenceNumber,
      typeof created === 'number' ? kinesisSeconds(created) : undefined,
      {
        keys: lambdaItem(stream.Keys as Record<string, LambdaAttributeValue> | undefined),
        newImage: lambdaItem(stream.NewImage as Record<string, LambdaAttributeValue> | undefined),
        oldImage: lambdaItem(stream.OldImage as Record<string, LambdaAttributeValue> | undefined),
      },
    );
  } catch (error) {
    return unreadableRecord(error, record, {
      sequenceNumber: kinesisSequenceNumber,
      what: 'Kinesis record',
      seconds: kinesisSeconds,
    });
  }
}

function kinesisSeconds(time: number): number {
  return time >= MICROSECONDS_FROM ? time / 1e6 : time / 1e3;
}

/** A record of a Lambda Kinesis event (`eventSource` aws:kinesis): its base64 data, at its Kinesis sequence number. */
export function readKinesisRecord(record: KinesisStreamRecord): StreamBatchRecord {
  return readKinesisData(record.kinesis?.data ?? '', record.kinesis?.sequenceNumber ?? '');
}

/**
 * The body of an SQS message carrying one DynamoDB stream record, as
 *
 * - EventBridge Pipes delivers it to an SQS target: the record itself, in the
 *   Lambda event's shape (`eventName`, `dynamodb` with `SequenceNumber`);
 * - an SNS subscription delivers it: with raw message delivery the record
 *   itself, otherwise the envelope `{"Type":"Notification","Message":"<the
 *   record as JSON>",…}`;
 * - an EventBridge rule delivers it: the event `{"version","id",
 *   "detail-type","source",…,"detail":<the record>}`.
 *
 * Anything else becomes an UnreadableStreamRecord (InvalidStreamRecordError
 * naming the shapes expected), dead-lettered in its place as poison.
 */
export function readSqsMessage(body: string, messageId: string): StreamBatchRecord {
  let record: unknown;
  try {
    record = streamRecordOfBody(body, messageId);
    const change = fromLambdaRecord(record as DynamoDBRecord);
    change.messageId = messageId;
    return change;
  } catch (error) {
    return unreadableRecord(error, record, { messageId, what: `SQS message ${messageId}: stream record` });
  }
}

/** A record of a Lambda SQS event (`eventSource` aws:sqs). */
export function readSqsRecord(record: SQSRecord): StreamBatchRecord {
  return readSqsMessage(record.body ?? '', record.messageId ?? '');
}

const EXPECTED_BODIES =
  'a DynamoDB stream record as EventBridge Pipes delivers it, an SNS notification carrying one (raw or in its Notification envelope), or an EventBridge event whose detail is one';

/** The stream record inside an SQS body, through at most one envelope (SNS or EventBridge). */
function streamRecordOfBody(body: string, messageId: string): Record<string, unknown> {
  const parse = (text: string, what: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InvalidStreamRecordError(
        `SQS message ${messageId}: ${what} is not JSON; expected ${EXPECTED_BODIES}`,
        { cause: error },
      );
    }
  };
  const outer = parse(body, 'the body');
  let inner = outer;
  if (isObject(outer) && outer.Type === 'Notification' && typeof outer.Message === 'string') {
    inner = parse(outer.Message, "the SNS notification's Message");
  } else if (isObject(outer) && 'detail-type' in outer && 'detail' in outer) {
    inner = outer.detail;
  }
  if (!isObject(inner) || !isObject(inner.dynamodb) || typeof inner.eventName !== 'string') {
    throw new InvalidStreamRecordError(
      `SQS message ${messageId} holds no DynamoDB change; expected ${EXPECTED_BODIES}`,
    );
  }
  return inner;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A record of the DynamoDB Streams API's GetRecords (binary values are Uint8Array). */
export function fromStreamsRecord(record: StreamsApiRecord): StreamChange {
  const stream = record.dynamodb;
  const created = stream?.ApproximateCreationDateTime;
  return buildChange(
    record.eventName,
    stream?.SequenceNumber,
    created === undefined ? undefined : created.getTime() / 1000,
    {
      keys: streamsApiItem(stream?.Keys),
      newImage: streamsApiItem(stream?.NewImage),
      oldImage: streamsApiItem(stream?.OldImage),
    },
  );
}

/** Sequence numbers are decimal strings of varying length: compare them as numbers. */
export function compareSequenceNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

type Images = { keys: Item | undefined; newImage: Item | undefined; oldImage: Item | undefined };

function buildChange(
  eventName: string | undefined,
  sequenceNumber: string | undefined,
  approximateCreationDateTime: number | undefined,
  images: Images,
): StreamChange {
  if (eventName !== 'INSERT' && eventName !== 'MODIFY' && eventName !== 'REMOVE') {
    throw new InvalidStreamRecordError(
      `stream record ${sequenceNumber ?? '(no sequence number)'} has event name ${String(eventName)}, not INSERT, MODIFY or REMOVE`,
    );
  }
  if (typeof sequenceNumber !== 'string' || sequenceNumber === '') {
    throw new InvalidStreamRecordError(`a ${eventName} stream record has no sequence number`);
  }
  if (images.keys === undefined) {
    throw new InvalidStreamRecordError(`stream record ${sequenceNumber} has no Keys`);
  }
  const change: StreamChange = { eventName, sequenceNumber, keys: images.keys };
  if (images.newImage !== undefined) change.newImage = images.newImage;
  if (images.oldImage !== undefined) change.oldImage = images.oldImage;
  if (approximateCreationDateTime !== undefined)
    change.approximateCreationDateTime = approximateCreationDateTime;
  return change;
}

/**
 * Converted in place (decodeWireItem): the event's images are JSON the caller
 * parsed and owns, and copying every attribute value of both images was a
 * tenth of the stream follower's CPU (docs/benchmarks.md).
 */
function lambdaItem(item: Record<string, LambdaAttributeValue> | undefined): Item | undefined {
  if (item === undefined || item === null) return undefined;
  return typeof item === 'object' ? decodeWireItem(item as Record<string, unknown>) : (item as Item);
}

/** The Streams API's images already have the SDK's form (binary as Uint8Array); the two SDK packages only declare the type separately. */
function streamsApiItem(item: Record<string, StreamsApiAttributeValue> | undefined): Item | undefined {
  return item === undefined || item === null ? undefined : (item as unknown as Item);
}
