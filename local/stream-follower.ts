/**
 * The local stand-in for the updater's event source mapping: reads the table's
 * stream through the DynamoDB Streams API and hands each GetRecords page, in
 * order, to the same apply code the updater Lambda runs.
 *
 * - Every shard is read in order, a parent shard to its end before its
 *   children; streams of the table that were disabled (and are still within
 *   their 24 hours) before the current one. A shard's next page is read
 *   while the current one is applied; pages are applied one at a time.
 * - The last applied sequence number of each shard is stored durably (a
 *   `StreamPositionStore`), after every page; a new follower resumes there,
 *   or starts at TRIM_HORIZON the first time.
 * - A page whose apply reports `firstFailedSequenceNumber` (OpenSearch or
 *   DynamoDB unavailable; poison records are dead-lettered by the apply code
 *   and do not fail a page) is retried from that record, with capped
 *   backoff, until it is applied or its oldest record is older than
 *   `maxRecordAgeSeconds`, as the Lambda's event source mapping does. Then
 *   the rest of the page is handed to `onFailedBatch` as the on-failure
 *   record Lambda writes (createLocalUpdater writes it to the dead-letter
 *   folder for `ddb2os replay`) and the shard moves on. Without
 *   `onFailedBatch` it never gives up: a record is never skipped silently.
 *
 * The same reading serves every sharded log of changes (`ShardedChangeLog`):
 * the table's DynamoDB streams (the default), or a Kinesis data stream the
 * table streams to (kinesis-follower.ts); local/change-forwarder.ts reads
 * the table's stream through it too, to feed the other change sources.
 *
 * One follower per table at a time: two would both apply and store positions.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetShardIteratorCommand,
  ListStreamsCommand,
  TrimmedDataAccessException,
} from '@aws-sdk/client-dynamodb-streams';
import type { ApplyResult } from '../pipeline/apply/apply-stream';
import { type FailedStreamBatch, UPDATER_MAX_RECORD_AGE_HOURS } from '../pipeline/apply/failed-batches';
import {
  compareSequenceNumbers,
  readLambdaRecord,
  type StreamBatchRecord,
} from '../pipeline/apply/stream-records';
import {
  BackfillError,
  ConfigurationError,
  describeError,
  SinkUnavailableError,
  SourceTableError,
} from '../pipeline/errors';
import type { StreamPositionStore } from '../pipeline/progress/stream-positions';
import { describeSourceTable, noStreamError } from '../pipeline/table/describe';
import { getRecordsPage } from '../pipeline/table/reads';

/** What a follower reports after each page it applied (or tried to). */
export interface FollowerBatchInfo {
  streamArn: string;
  shardId: string;
  /** Records handed to `apply` in this attempt. */
  records: number;
  result: ApplyResult;
  /** 1 for the first attempt at these records. */
  attempt: number;
  /** Age of the page's newest record when it was applied. */
  lagSeconds?: number;
}

/** A shard as the follower reads it: a DynamoDB stream's or a Kinesis stream's (which may have two parents). */
export interface LogShard {
  ShardId?: string;
  ParentShardId?: string;
  /** The other parent of a shard made by merging two (Kinesis only). */
  AdjacentParentShardId?: string;
  SequenceNumberRange?: { StartingSequenceNumber?: string; EndingSequenceNumber?: string };
}

/**
 * A sharded, ordered log of a table's changes, read shard by shard with
 * iterators: the table's DynamoDB streams, or a Kinesis data stream.
 */
export interface ShardedChangeLog {
  /** The streams to read, oldest first (a disabled stream's changes came before the current one's). */
  streams(): Promise<string[]>;
  /** Every shard of `stream` listed now. */
  shards(stream: string): Promise<LogShard[]>;
  /**
   * An iterator at the start of the shard (no position yet) or after
   * `position`; a clear error when the log no longer holds what follows it.
   */
  iterator(stream: string, shardId: string, position: string | undefined): Promise<string>;
  /** One page from `iterator`, its records in the apply code's form. */
  records(iterator: string, limit: number): Promise<RecordsPage>;
  /** True for the error of an iterator that timed out: the follower asks for a new one. */
  isExpiredIterator(error: unknown): boolean;
}

export interface StreamFollowerOptions {
  /** The table's DynamoDB Streams (with `dynamodb`), unless `changeLog` is given. */
  streams?: DynamoDBStreamsClient;
  dynamodb?: DynamoDBClient;
  /** The table followed, for messages. */
  table: string;
  /** Another log of the table's changes to read instead of its DynamoDB streams (a Kinesis stream). */
  changeLog?: ShardedChangeLog;
  /** The updater's apply code, e.g. `(changes) => applyStreamRecords(changes, deps)`. */
  apply: (changes: StreamBatchRecord[]) => Promise<ApplyResult>;
  positions: StreamPositionStore;
  /** Pause between passes of start() that found nothing new. @default 1000 */
  pollIntervalMs?: number;
  onBatch?: (info: FollowerBatchInfo) => void;
  /** An error of a start() pass (the loop goes on, from the stored positions). @default one line on stderr */
  onError?: (error: unknown) => void;
  /** Backoff between attempts at one page: full jitter, doubling from the base up to the cap. @default 500 ms, 15 s */
  retry?: { baseDelayMs?: number; maxDelayMs?: number };
  /**
   * How old a page's oldest unapplied record may grow while the page is
   * retried before the follower gives up on it (the event source mapping's
   * MaximumRecordAge). @default 22 hours (UPDATER_MAX_RECORD_AGE_HOURS)
   */
  maxRecordAgeSeconds?: number;
  /**
   * Takes a page given up on, as Lambda's on-failure record, and stores it
   * durably before it resolves; the follower then moves on past it. Without
   * it the follower retries a page forever.
   */
  onFailedBatch?: (batch: FailedStreamBatch) => Promise<void>;
  /** GetRecords page size (at most 1000). @default 1000 */
  recordsPerPage?: number;
}

/** A GetRecords answer, its records already in the apply code's form. */
export interface RecordsPage {
  changes: StreamBatchRecord[];
  NextShardIterator?: string;
}

/** stop() was called while a page was waiting to be retried. */
class FollowerStopped extends BackfillError {
  constructor() {
    super('the stream follower was stopped');
    this.name = 'FollowerStopped';
  }
}

export class StreamFollower {
  private positions?: Map<string, string>;
  /** Open shards: where the last pass stopped reading. */
  private readonly iterators = new Map<string, string>();
  /** Closed shards read to their end. */
  private readonly finished = new Set<string>();
  private exclusive: Promise<unknown> = Promise.resolve();
  private loop?: Promise<void>;
  private stopping = false;
  private wake?: () => void;
  private interruptible = false;
  private readonly log: ShardedChangeLog;
  /** While drain() runs: when it was called (epoch seconds); a shard's read ends past records written after it. */
  private drainUntil?: number;

  constructor(private readonly options: StreamFollowerOptions) {
    if (options.changeLog) this.log = options.changeLog;
    else if (options.streams && options.dynamodb) {
      this.log = new DynamoDBStreamLog(options.streams, options.dynamodb, options.table);
    } else {
      throw new ConfigurationError(
        'a stream follower needs a change log, or the DynamoDB Streams and DynamoDB clients',
      );
    }
  }

  /**
   * Applies everything the stream holds up to now (all shards, parents before
   * children, in order), then resolves: everything written to the table
   * before drain() was called is in the index, or in a failed batch handed
   * to `onFailedBatch`. While OpenSearch is away it waits (retrying) rather
   * than rejecting; it rejects when reading the stream fails or on stop().
   */
  drain(): Promise<{ records: number }> {
    return this.serially(async () => {
      // A writer that never pauses would otherwise keep an open shard's read going page after page.
      this.drainUntil = Date.now() / 1000;
      try {
        return { records: await this.pass() };
      } finally {
        this.drainUntil = undefined;
      }
    });
  }

  /** Keeps polling until stop(). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.follow();
  }

  /** Stops polling; resolves when the page being applied is done and its position stored. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    this.stopping = false;
  }

  private async follow(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        await this.serially(() => this.pass(true));
        failures = 0;
      } catch (error) {
        if (this.stopping && error instanceof FollowerStopped) break;
        failures += 1;
        // Iterators may point past a page that failed: start from the stored positions.
        this.iterators.clear();
        (this.options.onError ?? reportError)(error);
      }
      await this.pause(failures > 0 ? this.backoff(failures) : (this.options.pollIntervalMs ?? 1000));
    }
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(work, work);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One pass over every stream of the table; returns the records read. A start() pass ends early on stop(). */
  private async pass(interruptible = false): Promise<number> {
    this.interruptible = interruptible;
    this.positions ??= await this.options.positions.load();
    const listed = new Set<string>();
    let records = 0;
    for (const streamArn of await this.log.streams()) records += await this.passStream(streamArn, listed);
    if (this.interrupted()) return records;
    // Only a complete pass knows every shard that is still listed.
    const gone = [...this.positions.keys()].filter((id) => !listed.has(id));
    if (gone.length > 0) {
      await this.options.positions.forget(gone);
      for (const id of gone) this.positions.delete(id);
    }
    return records;
  }

  private async passStream(streamArn: string, listed: Set<string>): Promise<number> {
    let records = 0;
    for (;;) {
      const shards = await this.log.shards(streamArn);
      const byId = new Map(shards.map((shard) => [shard.ShardId!, shard]));
      for (const id of byId.keys()) listed.add(id);
      let finishedOne = false;
      for (const shard of orderShards(shards)) {
        if (this.interrupted()) return records;
        if (this.isFinished(shard)) continue;
        const parents = [shard.ParentShardId, shard.AdjacentParentShardId].map((id) =>
          id === undefined ? undefined : byId.get(id),
        );
        if (parents.some((parent) => parent && !this.isFinished(parent))) continue;
        const read = await this.readShard(streamArn, shard);
        records += read.records;
        finishedOne ||= read.finished;
      }
      // A shard that just ended may have children that the description did not list yet.
      if (!finishedOne) return records;
    }
  }

  /** True once a page holds a record written after drain() was called: what came before it is applied. */
  private pastDrainPoint(batch: StreamBatchRecord[]): boolean {
    const created = batch[batch.length - 1]?.approximateCreationDateTime;
    // Creation times may be whole seconds (DynamoDB Local's, a Lambda event's), rounded either way:
    // only a record more than a second after the call is surely written after it.
    return this.drainUntil !== undefined && created !== undefined && created > this.drainUntil + 1;
  }

  private interrupted(): boolean {
    return this.interruptible && this.stopping;
  }

  private isFinished(shard: LogShard): boolean {
    const id = shard.ShardId!;
    if (this.finished.has(id)) return true;
    const ending = shard.SequenceNumberRange?.EndingSequenceNumber;
    const position = this.positions?.get(id);
    return ending !== undefined && position !== undefined && compareSequenceNumbers(position, ending) >= 0;
  }

  /** Reads one shard until its end (closed) or until it has nothing more (open). */
  private async readShard(
    streamArn: string,
    shard: LogShard,
  ): Promise<{ records: number; finished: boolean }> {
    const id = shard.ShardId!;
    let iterator = this.iterators.get(id) ?? (await this.newIterator(streamArn, id));
    this.iterators.delete(id);
    let renewed = false;
    let records = 0;
    // The next page, read while the current one is applied; pages are still applied one after the other.
    let ahead: Promise<RecordsPage> | undefined;
    for (;;) {
      const reading = ahead ?? this.log.records(iterator, this.options.recordsPerPage ?? 1000);
      ahead = undefined;
      let page: RecordsPage;
      try {
        page = await reading;
      } catch (error) {
        if (!this.log.isExpiredIterator(error) || renewed) throw error;
        // From the stored position: everything before it is applied.
        iterator = await this.newIterator(streamArn, id);
        renewed = true;
        continue;
      }
      const batch = page.changes;
      if (batch.length > 0 && page.NextShardIterator !== undefined && !this.interrupted()) {
        ahead = this.log.records(page.NextShardIterator, this.options.recordsPerPage ?? 1000);
        // It may fail while this page is applied, long before it is awaited (or never, if the apply fails).
        ahead.catch(() => undefined);
      }
      if (batch.length > 0) {
        await this.applyPage(streamArn, id, batch);
        records += batch.length;
      }
      if (page.NextShardIterator === undefined) {
        // The shard is closed and read to its end: record that, so no pass reads it again.
        const ending = shard.SequenceNumberRange?.EndingSequenceNumber;
        const position = this.positions!.get(id);
        if (
          ending !== undefined &&
          (position === undefined || compareSequenceNumbers(ending, position) > 0)
        ) {
          await this.savePosition(id, ending);
        }
        this.finished.add(id);
        return { records, finished: true };
      }
      iterator = page.NextShardIterator;
      if (batch.length === 0 || this.interrupted() || this.pastDrainPoint(batch)) {
        // A page read ahead is dropped: the next pass reads it again with the same iterator.
        this.iterators.set(id, iterator);
        return { records, finished: false };
      }
    }
  }

  private newIterator(streamArn: string, shardId: string): Promise<string> {
    return this.log.iterator(streamArn, shardId, this.positions!.get(shardId));
  }

  /**
   * Applies one page; retries from the first failed record until it is
   * applied, or until its oldest unapplied record is older than the max
   * record age: then the rest of the page goes to `onFailedBatch` and the
   * position moves past it.
   */
  private async applyPage(streamArn: string, shardId: string, records: StreamBatchRecord[]): Promise<void> {
    let changes = records;
    const maxAgeSeconds = this.options.maxRecordAgeSeconds ?? UPDATER_MAX_RECORD_AGE_HOURS * 3600;
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      try {
        const result = await this.options.apply(changes);
        const failed = result.firstFailedSequenceNumber;
        const index =
          failed === undefined
            ? changes.length
            : changes.findIndex((change) => change.sequenceNumber === failed);
        // A sequence number that is not in the page: nothing of it counts as applied.
        const applied = Math.max(0, index);
        if (applied > 0) await this.savePosition(shardId, changes[applied - 1]!.sequenceNumber);
        this.options.onBatch?.({
          streamArn,
          shardId,
          records: changes.length,
          result,
          attempt,
          lagSeconds: lagOf(changes[changes.length - 1]!),
        });
        if (applied === changes.length) return;
        changes = changes.slice(applied);
        failure = new SinkUnavailableError(
          `stream record ${changes[0]!.sequenceNumber} of shard ${shardId} could not be applied`,
        );
      } catch (error) {
        failure = error;
      }
      if (this.stopping) throw new FollowerStopped();
      const age = lagOf(changes[0]!);
      if (this.options.onFailedBatch && age !== undefined && age > maxAgeSeconds) {
        await this.giveUp(streamArn, shardId, changes, attempt, failure);
        return;
      }
      await this.pause(this.backoff(attempt));
      if (this.stopping) throw new FollowerStopped();
    }
  }

  /** Hands the unapplied rest of a page to onFailedBatch, then stores the position after it. */
  private async giveUp(
    streamArn: string,
    shardId: string,
    changes: StreamBatchRecord[],
    attempts: number,
    failure: unknown,
  ): Promise<void> {
    const first = changes[0]!;
    const last = changes[changes.length - 1]!;
    const arrival = (record: StreamBatchRecord) =>
      record.approximateCreationDateTime === undefined
        ? undefined
        : new Date(record.approximateCreationDateTime * 1000).toISOString();
    await this.options.onFailedBatch!({
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: { condition: 'RecordAgeExceeded', approximateInvokeCount: attempts },
      responseContext: { functionError: describeError(failure) },
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: first.sequenceNumber,
        endSequenceNumber: last.sequenceNumber,
        approximateArrivalOfFirstRecord: arrival(first),
        approximateArrivalOfLastRecord: arrival(last),
        batchSize: changes.length,
        streamArn,
      },
    });
    await this.savePosition(shardId, last.sequenceNumber);
  }

  private async savePosition(shardId: string, sequenceNumber: string): Promise<void> {
    await this.options.positions.save(shardId, sequenceNumber);
    this.positions!.set(shardId, sequenceNumber);
  }

  private backoff(attempt: number): number {
    const base = this.options.retry?.baseDelayMs ?? 500;
    const max = this.options.retry?.maxDelayMs ?? 15_000;
    return Math.random() * Math.min(max, base * 2 ** (attempt - 1));
  }
}

/**
 * The table's DynamoDB streams as a change log: every stream of the table
 * that ListStreams still lists (oldest label first), read through the
 * DynamoDB Streams API.
 */
export class DynamoDBStreamLog implements ShardedChangeLog {
  constructor(
    private readonly streamsClient: DynamoDBStreamsClient,
    private readonly dynamodb: DynamoDBClient,
    private readonly table: string,
  ) {}

  async streams(): Promise<string[]> {
    const { streamsClient, dynamodb, table } = this;
    const described = await describeSourceTable(dynamodb, table);
    const labelled = new Map<string, string>();
    let ExclusiveStartStreamArn: string | undefined;
    do {
      const page = await streamsClient.send(
        new ListStreamsCommand({ TableName: table, ExclusiveStartStreamArn }),
      );
      for (const stream of page.Streams ?? []) {
        if (stream.StreamArn) labelled.set(stream.StreamArn, stream.StreamLabel ?? '');
      }
      ExclusiveStartStreamArn = page.LastEvaluatedStreamArn;
    } while (ExclusiveStartStreamArn);
    const latest = described.streamArn;
    if (latest) labelled.set(latest, described.streamLabel ?? labelled.get(latest) ?? '');
    if (labelled.size === 0) throw noStreamError(table);
    return [...labelled.entries()]
      .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([arn]) => arn);
  }

  async shards(streamArn: string): Promise<LogShard[]> {
    const shards: LogShard[] = [];
    let ExclusiveStartShardId: string | undefined;
    do {
      const { StreamDescription } = await this.streamsClient.send(
        new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId }),
      );
      shards.push(...(StreamDescription?.Shards ?? []).filter((shard) => shard.ShardId));
      ExclusiveStartShardId = StreamDescription?.LastEvaluatedShardId;
    } while (ExclusiveStartShardId);
    return shards;
  }

  async iterator(streamArn: string, shardId: string, position: string | undefined): Promise<string> {
    try {
      const { ShardIterator } = await this.streamsClient.send(
        new GetShardIteratorCommand(
          position === undefined
            ? { StreamArn: streamArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }
            : {
                StreamArn: streamArn,
                ShardId: shardId,
                ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
                SequenceNumber: position,
              },
        ),
      );
      if (!ShardIterator) throw new Error('GetShardIterator returned no iterator');
      return ShardIterator;
    } catch (error) {
      if (error instanceof TrimmedDataAccessException) {
        throw new SourceTableError(
          `the stream of ${this.table} no longer holds the records after ${position} in shard ${shardId} ` +
            '(streams keep 24 hours): changes were missed, run a new backfill',
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * One GetRecords page, read as the records of a Lambda stream event; DynamoDB
   * Local's empty-map quirk is undone here, where that engine is read.
   */
  async records(iterator: string, limit: number): Promise<RecordsPage> {
    const page = await getRecordsPage(this.streamsClient, { ShardIterator: iterator, Limit: limit });
    for (const record of page.records) restoreEmptyMaps(record);
    return { changes: page.records.map(readLambdaRecord), NextShardIterator: page.nextShardIterator };
  }

  /**
   * An iterator to read again from the stored position. Besides an expired one: DynamoDB Local
   * answers GetRecords with TrimmedDataAccessException now and then on a stream enabled moments
   * before (the demo's forwarder met it every run), and a new iterator from the same position reads
   * on. Where the records really are trimmed (real DynamoDB, 24 hours), the new iterator's
   * GetShardIterator fails and iterator() says so in one sentence.
   */
  isExpiredIterator(error: unknown): boolean {
    return error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException;
  }
}

/** An attribute value as a stream image holds it, binary in either form. */
interface ImageValue {
  M?: Record<string, ImageValue>;
  L?: ImageValue[];
}

/**
 * DynamoDB Local's stream images write an empty map as `{}` where DynamoDB
 * (and that engine's own GetItem and Scan) write `{"M":{}}`, at any depth.
 * `{}` is no other attribute value, so it is read back here as the empty map
 * it stands for, in place, in both images; the mapping stays strict for every
 * other source (docs/stream-updater.md). Exported for the tests that derive a
 * Lambda event from this engine's records.
 */
export function restoreEmptyMaps(record: { dynamodb?: { NewImage?: object; OldImage?: object } }): void {
  const images = record.dynamodb;
  if (images === undefined || images === null) return;
  for (const image of [images.NewImage, images.OldImage]) {
    if (image === undefined || image === null || typeof image !== 'object') continue;
    for (const value of Object.values(image)) restoreEmptyMap(value as ImageValue);
  }
}

function restoreEmptyMap(value: ImageValue): void {
  if (value === null || typeof value !== 'object') return;
  if (value.M !== undefined) {
    if (value.M !== null && typeof value.M === 'object') {
      for (const member of Object.values(value.M)) restoreEmptyMap(member);
    }
  } else if (value.L !== undefined) {
    if (Array.isArray(value.L)) for (const element of value.L) restoreEmptyMap(element);
  } else if (isEmptyObject(value)) {
    // DynamoDB Local's stream quirk: `{}` is its empty map (issue 12).
    value.M = {};
  }
}

function isEmptyObject(value: object): boolean {
  for (const _ in value) return false;
  return true;
}

/**
 * Shards in the order they must be read: every parent (both, for a Kinesis
 * merge) before its children, otherwise by starting sequence number. A parent
 * that is no longer listed (trimmed) does not hold a child back.
 */
export function orderShards<S extends LogShard>(shards: S[]): S[] {
  const byId = new Map(shards.map((shard) => [shard.ShardId, shard]));
  const start = (shard: S) => shard.SequenceNumberRange?.StartingSequenceNumber ?? '0';
  const sorted = [...shards].sort((a, b) => compareSequenceNumbers(start(a), start(b)));
  const ordered: S[] = [];
  const visited = new Set<S>();
  const visit = (shard: S) => {
    if (visited.has(shard)) return;
    visited.add(shard);
    for (const id of [shard.ParentShardId, shard.AdjacentParentShardId]) {
      const parent = id === undefined ? undefined : byId.get(id);
      if (parent) visit(parent);
    }
    ordered.push(shard);
  };
  for (const shard of sorted) visit(shard);
  return ordered;
}

export { compareSequenceNumbers } from '../pipeline/apply/stream-records';

function lagOf(change: StreamBatchRecord): number | undefined {
  const created = change.approximateCreationDateTime;
  return created === undefined ? undefined : Math.max(0, Date.now() / 1000 - created);
}

function reportError(error: unknown): void {
  console.error(`stream follower: ${describeError(error)}; trying again`);
}
