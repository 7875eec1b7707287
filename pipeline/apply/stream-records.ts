/**
 * Stream records in one shape. The updater Lambda receives records as JSON
 * (binary values as base64 strings); the local stream follower reads the same
 * JSON from GetRecords, or, when it cannot, the SDK's output (binary values
 * as Uint8Array, times as Date). Both become a `StreamChange` whose attribute values have the form the
 * DynamoDB SDK returns from GetItem and Query, so the mapping sees one shape
 * whatever the source.
 */
import type {
  AttributeValue as StreamsApiAttributeValue,
  _Record as StreamsApiRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, AttributeValue as LambdaAttributeValue } from 'aws-lambda';
import { InvalidStreamRecordError } from '../errors';
import { decodeWireItem } from '../table/sdk-json';
import type { Item } from '../table/types';

/** One change of one item, as the stream recorded it. */
export interface StreamChange {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  /** Orders the changes of one shard; a decimal string. */
  sequenceNumber: string;
  /** The item's key attributes. */
  keys: Item;
  /** The item after the change (absent for REMOVE and for KEYS_ONLY and OLD_IMAGE streams). */
  newImage?: Item;
  /** The item before the change (absent for INSERT and for KEYS_ONLY and NEW_IMAGE streams). */
  oldImage?: Item;
  /** When the change was made, in seconds since the epoch (as in the Lambda event). */
  approximateCreationDateTime?: number;
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
    const stream = (record as { dynamodb?: Record<string, unknown> } | null)?.dynamodb;
    const sequenceNumber = stream?.SequenceNumber;
    const keys = stream?.Keys;
    const created = stream?.ApproximateCreationDateTime;
    const unreadable =
      error instanceof InvalidStreamRecordError
        ? error
        : new InvalidStreamRecordError(
            `stream record ${typeof sequenceNumber === 'string' ? sequenceNumber : '(no sequence number)'} cannot be read: ${(error as Error)?.message ?? String(error)}`,
            { cause: error },
          );
    return {
      unreadable,
      sequenceNumber: typeof sequenceNumber === 'string' ? sequenceNumber : '',
      keys: keys !== null && typeof keys === 'object' ? (keys as Item) : {},
      ...(typeof created === 'number' ? { approximateCreationDateTime: created } : {}),
    };
  }
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
