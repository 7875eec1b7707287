/**
 * A stream batch the updater gave up on, in the form Lambda's on-failure
 * destination writes for a DynamoDB stream event source (the record AWS
 * documents as the "invocation record" with `DDBStreamBatchInfo`). The local
 * stream follower writes the same record to its failed-batches folder, so
 * `ddb2os replay` reads one format from SQS (cloud) and from the folder
 * (local).
 *
 * The record names a shard and a range of sequence numbers, not the changes
 * themselves: replay re-reads them from the stream while it still holds them.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidMessageError } from '../errors';

/**
 * How old a stream record may grow while its batch is retried before the
 * updater gives up on the batch and records it here (the event source
 * mapping's MaximumRecordAge, the local follower's maxRecordAgeSeconds).
 * 22 hours: the record reaches the failure queue (or folder) while the
 * stream still holds the records for about 2 more hours, so `ddb2os replay`
 * can re-read them; after 24 hours the stream has trimmed them and only
 * `ddb2os verify --repair` helps.
 */
export const UPDATER_MAX_RECORD_AGE_HOURS = 22;

/** `DDBStreamBatchInfo`: where the batch is in the stream. */
export interface StreamBatchInfo {
  shardId: string;
  startSequenceNumber: string;
  endSequenceNumber: string;
  /** ISO 8601, as Lambda writes it. */
  approximateArrivalOfFirstRecord?: string;
  approximateArrivalOfLastRecord?: string;
  batchSize?: number;
  streamArn: string;
}

/** The whole on-failure record. Fields other than `DDBStreamBatchInfo` are informative only. */
export interface FailedStreamBatch {
  version?: string;
  /** ISO 8601: when the batch was given up on. */
  timestamp?: string;
  requestContext?: {
    requestId?: string;
    functionArn?: string;
    /** Why the event source gave up, e.g. `RetryAttemptsExhausted`, `RecordAgeExceeded`. */
    condition?: string;
    approximateInvokeCount?: number;
  };
  responseContext?: { statusCode?: number; executedVersion?: string; functionError?: string };
  DDBStreamBatchInfo: StreamBatchInfo;
}

/**
 * Parses one on-failure record; `source` names where it came from (a message id, a file) for the
 * error, which says what is missing.
 */
export function parseFailedBatch(text: string, source: string): FailedStreamBatch {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidMessageError(`${source} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const info = (value as { DDBStreamBatchInfo?: Record<string, unknown> } | null)?.DDBStreamBatchInfo;
  if (!info || typeof info !== 'object') {
    throw new InvalidMessageError(
      `${source} is not a stream batch failure record: it has no DDBStreamBatchInfo (is this the updater's failure queue?)`,
    );
  }
  for (const field of ['shardId', 'startSequenceNumber', 'endSequenceNumber', 'streamArn'] as const) {
    if (typeof info[field] !== 'string' || info[field] === '') {
      throw new InvalidMessageError(`${source} has no DDBStreamBatchInfo.${field}`);
    }
  }
  return value as FailedStreamBatch;
}

/**
 * Where the local stream follower writes its on-failure records (one `<name>.json` file each) and
 * where `ddb2os replay` reads them: `<dead-letter-dir>/failed-batches`.
 */
export function failedBatchesDir(deadLetterDir: string): string {
  return join(deadLetterDir, 'failed-batches');
}

/**
 * Writes one on-failure record to `<dead-letter-dir>/failed-batches/<shardId>-<startSequenceNumber>.json`
 * (whole or not at all: a reader never sees half a file) and returns its path.
 */
export async function writeFailedBatch(deadLetterDir: string, batch: FailedStreamBatch): Promise<string> {
  const folder = failedBatchesDir(deadLetterDir);
  await mkdir(folder, { recursive: true });
  const { shardId, startSequenceNumber } = batch.DDBStreamBatchInfo;
  const path = join(folder, `${shardId}-${startSequenceNumber}.json`);
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, `${JSON.stringify(batch, null, 2)}\n`);
  await rename(partial, path);
  return path;
}
