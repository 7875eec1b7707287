/**
 * Reads back the records of a failed stream batch: the shard and the range of
 * sequence numbers its on-failure record names, while the stream still holds
 * them (24 hours). A range the stream no longer holds in full is reported,
 * not thrown: its changes can only be recovered from the table
 * (`ddb2os verify --repair`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  ResourceNotFoundException,
  TrimmedDataAccessException,
} from '@aws-sdk/client-dynamodb-streams';
import type { StreamBatchInfo } from '../apply/failed-batches';
import { compareSequenceNumbers, fromLambdaRecord, type StreamChange } from '../apply/stream-records';
import { SourceTableError } from '../errors';
import { getRecordsPage } from '../table/reads';

/** The batch's records, or why the stream cannot give all of them back. */
export type StreamRange =
  | { held: true; changes: StreamChange[] }
  | {
      held: false;
      /** One clause: what the stream answered, e.g. "shard … no longer exists". */
      reason: string;
    };

export interface StreamRangeOptions {
  /** GetRecords page size. @default 1000 */
  recordsPerPage?: number;
  /** Empty pages of an open shard in a row before giving up on reaching the range's end. @default 5, 200 ms apart */
  emptyPages?: number;
  emptyPageDelayMs?: number;
}

/**
 * The records of `info`'s shard from `startSequenceNumber` to `endSequenceNumber`, both included,
 * in stream order. Not held: the stream or shard is gone (ResourceNotFoundException), the records
 * are trimmed (TrimmedDataAccessException), the shard holds no record with the start sequence number
 * (DynamoDB Local answers ValidationException), the first record returned comes after the start (the
 * ones before it are gone), or the shard ends before the end sequence number.
 */
export async function readStreamRange(
  streams: DynamoDBStreamsClient,
  info: StreamBatchInfo,
  options: StreamRangeOptions = {},
): Promise<StreamRange> {
  const { shardId, startSequenceNumber: start, endSequenceNumber: end } = info;
  if (!isSequenceNumber(start) || !isSequenceNumber(end)) {
    return { held: false, reason: `sequence numbers ${start} to ${end} are not decimal numbers` };
  }
  const changes: StreamChange[] = [];
  const last = () => changes[changes.length - 1]?.sequenceNumber;
  let iterator = await shardIterator(streams, info, start, 'AT_SEQUENCE_NUMBER');
  let renewed = false;
  let empty = 0;
  while (typeof iterator === 'string') {
    let page: Awaited<ReturnType<typeof getRecordsPage>>;
    try {
      page = await getRecordsPage(streams, {
        ShardIterator: iterator,
        Limit: options.recordsPerPage ?? 1000,
      });
    } catch (error) {
      if (error instanceof TrimmedDataAccessException) return notHeld(TRIMMED);
      if (!(error instanceof ExpiredIteratorException) || renewed) throw error;
      // A slow read: go on after the last record read.
      renewed = true;
      const at = last();
      iterator = await shardIterator(
        streams,
        info,
        at ?? start,
        at === undefined ? 'AT_SEQUENCE_NUMBER' : 'AFTER_SEQUENCE_NUMBER',
      );
      continue;
    }
    for (const record of page.records) {
      const change = fromLambdaRecord(record);
      if (changes.length === 0 && compareSequenceNumbers(change.sequenceNumber, start) > 0) {
        return notHeld(
          `its first record is ${change.sequenceNumber}, after ${start}: the ones before are gone`,
        );
      }
      if (compareSequenceNumbers(change.sequenceNumber, end) > 0) return { held: true, changes };
      changes.push(change);
      if (compareSequenceNumbers(change.sequenceNumber, end) === 0) return { held: true, changes };
    }
    if (page.nextShardIterator === undefined) break;
    iterator = page.nextShardIterator;
    if (page.records.length > 0) {
      empty = 0;
      continue;
    }
    empty += 1;
    if (empty >= (options.emptyPages ?? 5)) {
      throw new SourceTableError(
        `shard ${shardId} returned nothing after ${last() ?? start} before reaching ${end}; try again later`,
      );
    }
    await sleep(options.emptyPageDelayMs ?? 200);
  }
  if (typeof iterator !== 'string') return iterator;
  return notHeld(`the shard ends at ${last() ?? 'its start'}, before ${end}`);
}

async function shardIterator(
  streams: DynamoDBStreamsClient,
  info: StreamBatchInfo,
  sequenceNumber: string,
  type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER',
): Promise<string | StreamRange> {
  const input: GetShardIteratorCommandInput = {
    StreamArn: info.streamArn,
    ShardId: info.shardId,
    ShardIteratorType: type,
    SequenceNumber: sequenceNumber,
  };
  try {
    const { ShardIterator } = await streams.send(new GetShardIteratorCommand(input));
    if (!ShardIterator)
      throw new SourceTableError(`GetShardIterator returned no iterator for shard ${info.shardId}`);
    return ShardIterator;
  } catch (error) {
    if (error instanceof TrimmedDataAccessException) return notHeld(TRIMMED);
    if (error instanceof ResourceNotFoundException) {
      return notHeld(`${/stream/i.test(error.message) ? 'the stream' : 'the shard'} no longer exists`);
    }
    // DynamoDB Local's answer for a sequence number its shard does not hold (AWS answers Trimmed…).
    if (
      (error as { name?: string }).name === 'ValidationException' &&
      /sequence ?number/i.test(String(error))
    ) {
      return notHeld(`the shard holds no record ${sequenceNumber}`);
    }
    throw error;
  }
}

const TRIMMED = 'the stream has trimmed them (it keeps records 24 hours)';

function notHeld(reason: string): StreamRange {
  return { held: false, reason };
}

function isSequenceNumber(value: string): boolean {
  return /^\d{1,64}$/.test(value);
}
