/**
 * Replays the stream batches the updater gave up on (docs/stream-updater.md,
 * "Replay"). For each on-failure record, oldest first and a shard's records
 * in sequence order:
 *
 * 1. read the batch's records back from the stream (`readStreamRange`);
 * 2. write the CURRENT state of each of the batch's keys with the repair
 *    primitive, not the batch's old images: the updater has gone on past the
 *    batch and may have applied later changes of the same keys, which the
 *    old images would undo. A key's current state includes the batch's
 *    change or a later one, so the batch's effect is in the index either way;
 * 3. remove the record only once every key is applied.
 *
 * A record the stream no longer holds in full is kept (unless the caller
 * discards it) and reported with its shard and time range: its changes can
 * only be recovered from the table, by `ddb2os verify --repair`.
 */
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { FailedStreamBatch, StreamBatchInfo } from '../apply/failed-batches';
import { compareSequenceNumbers } from '../apply/stream-records';
import { describeError } from '../errors';
import { keyToString } from '../mapping/mapping';
import type { RepairResult, RepairTarget } from '../repair/repair-keys';
import type { Item, KeySchema } from '../table/types';
import type { FailedBatchMessage, FailedBatchSource } from './failed-batch-sources';
import { readStreamRange, type StreamRangeOptions } from './stream-range';

export interface ReplayDeps {
  source: FailedBatchSource;
  streams: DynamoDBStreamsClient;
  /** The table whose stream the records must be of: another table's keys would write the wrong documents. */
  table: string;
  keySchema: KeySchema;
  /** Writes each key's current state, e.g. `(targets) => repairKeys(targets, deps)`. */
  applyKeys: (targets: RepairTarget[]) => Promise<RepairResult>;
  /** Delete the records the stream no longer holds instead of keeping them. @default false */
  discardTrimmed?: boolean;
  /** Records taken from the source at most. @default 1000 */
  maxRecords?: number;
  /** Called as each record is done, in order. */
  onRecord?: (outcome: RecordOutcome) => void;
  signal?: AbortSignal;
  streamRange?: StreamRangeOptions;
}

/** Where a record's batch is in the stream (its `DDBStreamBatchInfo`). */
export type BatchPlace = Pick<
  StreamBatchInfo,
  | 'streamArn'
  | 'shardId'
  | 'startSequenceNumber'
  | 'endSequenceNumber'
  | 'approximateArrivalOfFirstRecord'
  | 'approximateArrivalOfLastRecord'
>;

export type RecordOutcome =
  /** Every key applied; the record is removed. */
  | {
      kind: 'replayed';
      name: string;
      place: BatchPlace;
      records: number;
      keys: Item[];
      applied: RepairResult;
    }
  /** The stream no longer holds the batch in full; kept unless `discarded`. */
  | { kind: 'trimmed'; name: string; place: BatchPlace; reason: string; discarded: boolean }
  /** Reading or applying failed (or some keys could not be applied); kept for the next replay. */
  | { kind: 'failed'; name: string; place: BatchPlace; reason: string; keys?: Item[]; applied?: RepairResult }
  /** Not an on-failure record; kept. */
  | { kind: 'malformed'; name: string; reason: string }
  /** Not tried: the replay was interrupted; kept. */
  | { kind: 'skipped'; name: string; place: BatchPlace };

export interface ReplaySummary {
  outcomes: RecordOutcome[];
  replayed: number;
  trimmed: number;
  failed: number;
  malformed: number;
  skipped: number;
  /** Records left in the source for a later replay. */
  remaining: number;
}

/** Replays every record the source holds (up to `maxRecords`); see the module's comment. */
export async function replayFailedBatches(deps: ReplayDeps): Promise<ReplaySummary> {
  const { source } = deps;
  const messages = await source.receive(deps.maxRecords ?? 1000);
  const outcomes: RecordOutcome[] = [];
  const kept: FailedBatchMessage[] = [];
  const done = (outcome: RecordOutcome, message: FailedBatchMessage, keep: boolean) => {
    outcomes.push(outcome);
    if (keep) kept.push(message);
    deps.onRecord?.(outcome);
  };
  try {
    for (const message of messages) {
      if (!message.batch)
        done({ kind: 'malformed', name: message.name, reason: message.problem ?? '' }, message, true);
    }
    for (const message of inReplayOrder(messages)) {
      const batch = message.batch as FailedStreamBatch;
      const place = placeOf(batch);
      if (deps.signal?.aborted) {
        done({ kind: 'skipped', name: message.name, place }, message, true);
        continue;
      }
      const outcome = await replayOne(message.name, batch, deps);
      const remove =
        outcome.kind === 'replayed' || (outcome.kind === 'trimmed' && deps.discardTrimmed === true);
      if (remove) {
        try {
          await source.remove(message);
        } catch (error) {
          done(
            {
              ...outcome,
              kind: 'failed',
              reason: `applied, but not removed from ${source.location}: ${describeError(error)}`,
            },
            message,
            false,
          );
          continue;
        }
      }
      done(outcome.kind === 'trimmed' ? { ...outcome, discarded: remove } : outcome, message, !remove);
    }
  } finally {
    await source.release(kept);
  }
  const count = (kind: RecordOutcome['kind']) => outcomes.filter((outcome) => outcome.kind === kind).length;
  return {
    outcomes,
    replayed: count('replayed'),
    trimmed: count('trimmed'),
    failed: count('failed'),
    malformed: count('malformed'),
    skipped: count('skipped'),
    remaining: kept.length,
  };
}

async function replayOne(name: string, batch: FailedStreamBatch, deps: ReplayDeps): Promise<RecordOutcome> {
  const place = placeOf(batch);
  let keys: Item[] | undefined;
  const owner = tableOfStream(place.streamArn);
  if (owner !== deps.table) {
    return {
      kind: 'failed',
      name,
      place,
      reason: `the record is of ${owner === undefined ? `stream ${place.streamArn}` : `table ${owner}'s stream`}, not of table ${deps.table}'s`,
    };
  }
  try {
    const range = await readStreamRange(deps.streams, batch.DDBStreamBatchInfo, deps.streamRange);
    if (!range.held) return { kind: 'trimmed', name, place, reason: range.reason, discarded: false };
    keys = distinctKeys(
      range.changes.map((change) => change.keys),
      deps.keySchema,
    );
    const applied = await deps.applyKeys(keys.map((key) => ({ key })));
    if (applied.failed.length > 0) {
      const first = applied.failed[0] as { reason: string };
      return {
        kind: 'failed',
        name,
        place,
        keys,
        applied,
        reason: `${applied.failed.length} of ${keys.length} keys could not be applied (first: ${first.reason})`,
      };
    }
    return { kind: 'replayed', name, place, records: range.changes.length, keys, applied };
  } catch (error) {
    return { kind: 'failed', name, place, reason: describeError(error), ...(keys ? { keys } : {}) };
  }
}

/** The keys of the changes, each once, in the order of their first change. */
export function distinctKeys(keys: Item[], keySchema: KeySchema): Item[] {
  const seen = new Map<string, Item>();
  for (const key of keys) {
    const partition = key[keySchema.partitionKey];
    const sort = keySchema.sortKey === undefined ? undefined : key[keySchema.sortKey];
    // One table's key attributes have one type each: the values alone tell keys apart.
    const text = JSON.stringify([partition && keyToString(partition), sort && keyToString(sort)]);
    if (!seen.has(text)) seen.set(text, key);
  }
  return [...seen.values()];
}

/** The table name in a stream ARN (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`). */
function tableOfStream(streamArn: string): string | undefined {
  return /:table\/([^/]+)\/stream\//.exec(streamArn)?.[1];
}

/**
 * The records' replay order: shard by shard, a shard's records by start sequence number; the shards
 * by their oldest record's arrival (or failure time), oldest first.
 */
export function inReplayOrder(messages: FailedBatchMessage[]): FailedBatchMessage[] {
  const shards = new Map<string, FailedBatchMessage[]>();
  for (const message of messages) {
    if (!message.batch) continue;
    const info = message.batch.DDBStreamBatchInfo;
    const shard = `${info.streamArn} ${info.shardId}`;
    shards.set(shard, [...(shards.get(shard) ?? []), message]);
  }
  const bySequence = (a: FailedBatchMessage, b: FailedBatchMessage) =>
    compareSequenceNumbers(
      (a.batch as FailedStreamBatch).DDBStreamBatchInfo.startSequenceNumber,
      (b.batch as FailedStreamBatch).DDBStreamBatchInfo.startSequenceNumber,
    );
  const groups = [...shards.values()].map((group) => group.sort(bySequence));
  const oldest = (group: FailedBatchMessage[]) => Math.min(...group.map((message) => arrival(message)));
  return groups.sort((a, b) => compareNumbers(oldest(a), oldest(b))).flat();
}

function compareNumbers(x: number, y: number): number {
  return x === y ? 0 : x < y ? -1 : 1;
}

function arrival(message: FailedBatchMessage): number {
  const batch = message.batch as FailedStreamBatch;
  const time = Date.parse(batch.DDBStreamBatchInfo.approximateArrivalOfFirstRecord ?? batch.timestamp ?? '');
  return Number.isNaN(time) ? Number.POSITIVE_INFINITY : time;
}

function placeOf(batch: FailedStreamBatch): BatchPlace {
  const info = batch.DDBStreamBatchInfo;
  return {
    streamArn: info.streamArn,
    shardId: info.shardId,
    startSequenceNumber: info.startSequenceNumber,
    endSequenceNumber: info.endSequenceNumber,
    ...(info.approximateArrivalOfFirstRecord
      ? { approximateArrivalOfFirstRecord: info.approximateArrivalOfFirstRecord }
      : {}),
    ...(info.approximateArrivalOfLastRecord
      ? { approximateArrivalOfLastRecord: info.approximateArrivalOfLastRecord }
      : {}),
  };
}
