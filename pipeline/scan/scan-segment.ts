/**
 * One segment of a parallel Scan into OpenSearch: the work of the worker
 * Lambda and of the local runner alike.
 *
 * The segment is scanned page by page from its checkpoint. Each page is
 * mapped (mapItem, or aggregateCollection per partition) and bulk-created
 * through a BulkWriter. The next page is read while the current one is still
 * being written, and a few bulk requests run at once, a page at most each; when
 * OpenSearch is the slower side the scan waits for a free request slot
 * (handOverPage), so memory does not grow with the table.
 *
 * The checkpoint after page N is written only once every document of pages
 * 1..N has its answer from OpenSearch (and the failures are in the dead-letter
 * place). So a run that stops anywhere (yield, Ctrl-C, a crash, a failure)
 * resumes without a gap, and counts are kept in the checkpoint cumulatively,
 * so nothing is counted twice.
 *
 * Counting is per item, so that scanned = created + alreadyPresent + failed +
 * skipped always holds: an item counts as failed when a document made from it
 * failed, else as created when a document made from it was created, else as
 * already present. With aggregation, every item of a partition shares the
 * outcome of the partition's document.
 *
 * Aggregation: a partition's items are contiguous in a Scan and never split
 * between segments, but a partition may straddle a page boundary. The last
 * partition of a page is held back until the next page (or the end of the
 * segment) shows it complete, and the checkpoint points at the last item of
 * the last partition written, so a resumed run reads a held-back partition
 * again from its beginning.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import {
  type BulkDocument,
  type BulkLine,
  type BulkOutcome,
  BulkWriter,
  bulkCreateLine,
} from '../bulk/bulk-writer';
import { addFieldConflicts, type FieldConflict, type FieldConflictCount } from '../bulk/field-conflicts';
import { indexNameProblem } from '../contract/index-name';
import type { DeadLetterSink } from '../dead-letter/dead-letter';
import {
  BackfillError,
  CheckpointConflictError,
  describeError,
  InvalidMessageError,
  MappingError,
  SourceTableError,
} from '../errors';
import {
  aggregateCollection,
  encodeDocument,
  keyToString,
  type MappedDocument,
  type MappingConfig,
  mapItem,
} from '../mapping/mapping';
import { type Telemetry, withDefaults } from '../observability';
import {
  checkpointResult,
  type SegmentCheckpoint,
  type SegmentCheckpointStore,
} from '../progress/checkpoint';
import { type ItemsPage, scanPage } from '../table/reads';
import {
  addCounts,
  type DeadLetterRecord,
  emptyCounts,
  type Item,
  type KeySchema,
  type SegmentCounts,
  type SegmentMessage,
  type SegmentResult,
} from '../table/types';
import { backoffDelay, isThrottling, isTransient, ReadBudget } from './read-budget';

export interface ScanSegmentDeps {
  dynamodb: DynamoDBClient;
  opensearch: Client;
  checkpoints: SegmentCheckpointStore;
  deadLetters: DeadLetterSink;
  mapping: MappingConfig;
  keySchema: KeySchema;
  telemetry?: Partial<Telemetry>;
}

export interface ScanSegmentOptions {
  /** Upper bound of one bulk body. @default 5 MiB */
  bulkMaxBytes?: number;
  /** Upper bound of documents in one bulk request. @default 5000 */
  bulkMaxDocs?: number;
  /** Bulk requests in flight at once for this segment. @default 2 */
  bulkConcurrency?: number;
  /**
   * Scan `Limit` (items per page).
   * @default about what a 1 MB page holds, learned from the pages read (1000 before the first)
   */
  pageLimit?: number;
  /**
   * Asked once per page as it arrives (and while waiting out the read budget
   * or throttling): true makes that page the last one read; the segment stops
   * once it is acknowledged and checkpointed, with YIELDED. With aggregation
   * it counts only after a whole partition was written in this invocation.
   */
  shouldYield?: () => boolean;
  /** Called after each checkpoint with the counts so far. */
  onProgress?: (progress: SegmentProgress) => void;
  /** Aborting stops after the current page, like shouldYield. */
  signal?: AbortSignal;
  /** Called every heartbeatIntervalMs while the segment runs (errors are logged, not fatal). */
  heartbeat?: () => Promise<void>;
  /** @default 60000 */
  heartbeatIntervalMs?: number;
  /** Bulk retry policy (tests shorten it). */
  bulkRetry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
}

/** Where a segment stands: its cumulative counts and the pace of this invocation. */
export interface SegmentProgress extends SegmentCounts {
  runId: string;
  segment: number;
  totalSegments: number;
  /** Scan pages read, cumulative. */
  pages: number;
  /** Items scanned per second in this invocation. */
  itemsPerSecond: number;
  /** Milliseconds since this invocation started the segment. */
  elapsedMs: number;
  /**
   * Read capacity units this invocation consumed: as DynamoDB reported them
   * on the pages that asked (every page under a read limit), and at the
   * last reported units per item on the others (CAPACITY_SAMPLE_PAGES).
   */
  readUnits: number;
}

export type ScanSegmentOutcome =
  | { status: 'COMPLETED'; result: SegmentResult }
  | { status: 'YIELDED'; progress: SegmentProgress };

/**
 * Scans one segment into OpenSearch from its checkpoint to its end, or until
 * shouldYield/signal stops it after a page. A COMPLETED checkpoint returns
 * its stored result at once. Throws SinkUnavailableError (OpenSearch kept
 * failing), SourceTableError (the table is gone), CheckpointConflictError
 * (another invocation took the segment over; nothing to report), and marks
 * the checkpoint FAILED for every error but the last.
 */
export async function scanSegment(
  message: SegmentMessage,
  deps: ScanSegmentDeps,
  options: ScanSegmentOptions = {},
): Promise<ScanSegmentOutcome> {
  const telemetry = withDefaults(deps.telemetry);
  const checkpoint = await deps.checkpoints.claim(message, randomUUID());
  const context = { runId: message.runId, segment: message.segment };
  if (checkpoint.status === 'COMPLETED') {
    telemetry.logger.info('segment already completed; returning its stored result', context);
    return { status: 'COMPLETED', result: checkpointResult(checkpoint) };
  }
  return new SegmentScan(message, deps, options, telemetry, checkpoint).run();
}

interface ScanPage {
  items: Item[];
  lastKey?: Item;
  consumed: number;
}

/** A scanned page on its way to the checkpoint. */
interface PageState {
  number: number;
  /** Where a resumed run starts after this page (undefined: from the segment's beginning). */
  resumeKey?: Item;
  final: boolean;
  sealed: boolean;
  pendingUnits: number;
  delta: SegmentCounts;
  deadLetters: DeadLetterRecord[];
  fieldConflicts: FieldConflictCount[];
}

/** Items that become documents together: one item, or one aggregated partition. */
interface Unit {
  page: PageState;
  /** The items' keys (for a dead letter): the rest of each item can go once it is mapped. */
  keys: Item[];
  pendingDocuments: number;
  created: boolean;
  retries: number;
  failures: { index: string; id: string; reason: string; errorType: string; conflict?: FieldConflict }[];
}

/** Scan `Limit` of a segment's first page, when none is configured: ~1 MB of 1 KB items. */
export const FIRST_PAGE_LIMIT = 1000;
const MIN_PAGE_LIMIT = 100;
const MAX_PAGE_LIMIT = 10_000;
const SCAN_PAGE_BYTES = 1024 * 1024;
/** Bytes read per capacity unit of an eventually consistent Scan (0.5 units per 4 KB). */
const BYTES_PER_READ_UNIT = 8192;
/**
 * Without a read limit, a Scan asks DynamoDB for its consumed capacity on the
 * segment's first page and then on one page in this many: enough to learn
 * the page `Limit` and to follow a change of item size through the table.
 * Asking on every page cost DynamoDB Local about 15 % more CPU per item than
 * the same Scan without it (docs/benchmarks.md), for a figure that only
 * the read limit needs exactly; the other pages count at the last measured
 * units per item.
 */
export const CAPACITY_SAMPLE_PAGES = 16;

/**
 * The Scan `Limit` that makes a page about as large as DynamoDB's 1 MB page,
 * at the item size the last page showed (its consumed capacity over its
 * items); undefined when the page says too little. Why a Limit at all:
 * DynamoDB Local reads every remaining row of the segment for a page without
 * one, and only then cuts it at 1 MB, so a Scan without a Limit costs it time
 * quadratic in the table (docs/benchmarks.md). On DynamoDB the page count
 * stays the same.
 */
export function pageLimitFor(items: number, consumedUnits: number): number | undefined {
  if (items < 10 || !(consumedUnits > 0)) return undefined;
  const bytesPerItem = (consumedUnits * BYTES_PER_READ_UNIT) / items;
  return Math.min(MAX_PAGE_LIMIT, Math.max(MIN_PAGE_LIMIT, Math.floor(SCAN_PAGE_BYTES / bytesPerItem)));
}

class SegmentScan {
  private readonly startedAt = Date.now();
  private readonly initial: SegmentCounts;
  private counts: SegmentCounts;
  private readonly pages: PageState[] = [];
  private readonly writer: BulkWriter<Unit>;
  private readonly budget: ReadBudget;
  private readonly context: { runId: string; segment: number };
  private commits: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private stopped = false;
  /** This invocation has moved the checkpoint on (see stopRequested). */
  private advanced = false;
  /** Scan `Limit` of the next page: the configured one, or learned (pageLimitFor). */
  private pageLimit: number;
  /** Pages this invocation has asked for, and the units per item of the last page that reported them. */
  private pagesAsked = 0;
  private unitsPerItem: number | undefined;

  constructor(
    private readonly message: SegmentMessage,
    private readonly deps: ScanSegmentDeps,
    private readonly options: ScanSegmentOptions,
    private readonly telemetry: Telemetry,
    private checkpoint: SegmentCheckpoint,
  ) {
    this.initial = { ...checkpoint.counts };
    this.counts = { ...checkpoint.counts };
    this.context = { runId: message.runId, segment: message.segment };
    this.budget = new ReadBudget(message.readUnitsPerSecond ?? undefined);
    this.pageLimit = options.pageLimit ?? FIRST_PAGE_LIMIT;
    this.writer = new BulkWriter<Unit>(deps.opensearch, {
      maxBytes: options.bulkMaxBytes,
      maxDocs: options.bulkMaxDocs,
      concurrency: options.bulkConcurrency,
      ...options.bulkRetry,
      telemetry,
      onOutcome: (document, outcome, retries) => this.onOutcome(document, outcome, retries),
    });
  }

  async run(): Promise<ScanSegmentOutcome> {
    const { logger } = this.telemetry;
    logger.info('segment started', {
      ...this.context,
      totalSegments: this.message.totalSegments,
      resumed: this.checkpoint.lastEvaluatedKey !== undefined,
      pagesBefore: this.checkpoint.pages,
      scannedBefore: this.checkpoint.counts.scanned,
      readUnitsPerSecond: this.budget.unitsPerSecond,
    });
    const heartbeat = this.startHeartbeat();
    try {
      const stoppedEarly = await this.scanPages();
      await this.writer.drain();
      await this.commits;
      this.throwIfFailed();
      this.emitMetrics();
      if (stoppedEarly || this.checkpoint.status !== 'COMPLETED') {
        const progress = this.progress();
        logger.info('segment yielded; its checkpoint is saved', { ...this.context, ...progress });
        return { status: 'YIELDED', progress };
      }
      const result = checkpointResult(this.checkpoint);
      this.telemetry.metrics.count('SegmentsCompleted', 1);
      logger.info('segment completed', { ...this.context, ...result });
      return { status: 'COMPLETED', result };
    } catch (error) {
      this.stopped = true;
      await this.writer.settle();
      await this.commits.catch(() => undefined);
      this.emitMetrics();
      if (!(error instanceof CheckpointConflictError)) {
        this.telemetry.metrics.count('SegmentsFailed', 1);
        await this.deps.checkpoints
          .fail(this.checkpoint, describeError(error))
          .catch((failError: unknown) => {
            logger.warn('could not mark the checkpoint FAILED', {
              ...this.context,
              error: describeError(failError),
            });
          });
        logger.error('segment failed', {
          ...this.context,
          error: describeError(error),
          name: errorName(error),
        });
      } else {
        logger.info('another invocation owns the segment; standing down', this.context);
      }
      throw error;
    } finally {
      // A page read ahead and no longer wanted stops waiting for the budget or a throttle.
      this.stopped = true;
      if (heartbeat) clearInterval(heartbeat);
    }
  }

  /**
   * Reads and hands over pages until the segment ends (false) or a stop was
   * asked for after a page (true). The next page is requested before the
   * current one is mapped.
   */
  private async scanPages(): Promise<boolean> {
    let resumeKey = this.checkpoint.lastEvaluatedKey;
    let pageNumber = this.checkpoint.pages;
    let carried: Item[] = [];
    let next: Promise<ScanPage | undefined> | undefined = this.prefetch(resumeKey);
    while (next) {
      const page = await next;
      next = undefined;
      if (page === undefined) return true; // stopped while waiting for the read budget or throttling
      this.throwIfFailed();
      pageNumber += 1;
      const final = page.lastKey === undefined;
      // Asked once per page, as it arrives: a stop means this page is the last one read.
      const stopAfter = !final && this.stopRequested();
      if (!final && !stopAfter) next = this.prefetch(page.lastKey);

      const state: PageState = {
        number: pageNumber,
        final,
        sealed: false,
        pendingUnits: 0,
        delta: emptyCounts(),
        deadLetters: [],
        fieldConflicts: [],
      };
      this.pages.push(state);
      if (this.deps.mapping.aggregate) {
        const { complete, held } = splitPartitions(carried.concat(page.items), this.deps.keySchema, final);
        carried = held;
        for (const partition of complete) await this.writeUnit(state, partition);
        const last = complete.at(-1)?.at(-1);
        if (last) {
          resumeKey = keyOf(last, this.deps.keySchema);
          this.advanced = true;
        }
      } else {
        for (const item of page.items) await this.writeUnit(state, [item]);
        resumeKey = page.lastKey;
        this.advanced = true;
      }
      state.resumeKey = final ? undefined : resumeKey;
      state.sealed = true;
      this.telemetry.logger.debug('page scanned', {
        ...this.context,
        page: pageNumber,
        items: page.items.length,
        readUnits: page.consumed,
      });
      this.pageMaybeReady(state);
      await this.handOverPage();

      if (final) return false;
      // An abort while the page was written drops the page read ahead (it is read again on resume).
      if (stopAfter || this.options.signal?.aborted) return true;
    }
    return false;
  }

  /**
   * Sends the page's documents as one request once a slot is free, waiting
   * for one when every slot is busy: the segment then maps its next page
   * (already read ahead) only when OpenSearch has taken a request. Without
   * the wait, a segment kept adding pages to the writer's buffer while its
   * requests were out, so a request took what had piled up, up to 5 MiB: as
   * the index grew and OpenSearch's answers slowed, requests grew from ~1.2
   * to ~2.6 MiB over a 90,000-item run, and the process held up to
   * segments × (slots + 1) × 5 MiB of documents (60 MiB at 4 segments):
   * peak RSS grew with the table. Held now: about three pages of documents
   * per segment, whatever OpenSearch's pace. With OpenSearch the slower
   * side, a local run's peak RSS went from 207-221 MiB at 30,000 items and
   * 253-260 at 90,000 to 202-211 and 202-205, at the same speed
   * (docs/benchmarks.md, "Tuning").
   */
  private async handOverPage(): Promise<void> {
    await this.writer.flush();
  }

  /**
   * True when the segment should stop after the current page: the signal
   * aborted, or shouldYield says so. With aggregation, shouldYield counts
   * only once this invocation has written a whole partition, so that a chain
   * of continuations always makes progress (a page of one partition that is
   * still open moves the checkpoint nowhere).
   */
  private stopRequested(): boolean {
    if (this.options.signal?.aborted) return true;
    if (this.deps.mapping.aggregate && !this.advanced) return false;
    return this.options.shouldYield?.() === true;
  }

  /**
   * Starts reading a page. Its promise gets a handler at once: it may fail
   * while the previous page is still being written, long before it is awaited.
   */
  private prefetch(startKey: Item | undefined): Promise<ScanPage | undefined> {
    const next = this.fetch(startKey);
    next.catch(() => undefined);
    return next;
  }

  /** Maps a unit's items, queues its documents, and counts what never reaches OpenSearch. */
  private async writeUnit(page: PageState, items: Item[]): Promise<void> {
    const { keySchema, mapping } = this.deps;
    page.delta.scanned += items.length;
    let lines: BulkLine[];
    try {
      const documents: MappedDocument[] = mapping.aggregate
        ? aggregateCollection(items, keySchema, mapping)
        : mapItem(items[0] as Item, keySchema, mapping);
      lines = documents.map((document) =>
        bulkCreateLine(document.index, document.id, encodeDocument(document.document)),
      );
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      page.delta.failed += items.length;
      for (const item of items) {
        page.deadLetters.push(this.deadLetter(keyOf(item, keySchema), error.message, error.name));
      }
      return;
    }
    if (lines.length === 0) {
      page.delta.skipped += items.length;
      return;
    }
    const unit: Unit = {
      page,
      keys: items.map((item) => keyOf(item, keySchema)),
      pendingDocuments: lines.length,
      created: false,
      retries: 0,
      failures: [],
    };
    page.pendingUnits += 1;
    for (const line of lines) {
      const waiting = this.writer.add({ ...line, ticket: unit });
      if (waiting) await waiting;
    }
  }

  private onOutcome(document: BulkDocument<Unit>, outcome: BulkOutcome, retries: number): void {
    const unit = document.ticket;
    unit.retries += retries;
    if (outcome.status === 'created') unit.created = true;
    else if (outcome.status === 'failed') {
      unit.failures.push({
        index: document.index,
        id: document.id,
        reason: outcome.reason,
        errorType: outcome.errorType,
        ...(outcome.conflict ? { conflict: outcome.conflict } : {}),
      });
    }
    unit.pendingDocuments -= 1;
    if (unit.pendingDocuments > 0) return;

    const { page } = unit;
    const size = unit.keys.length;
    page.delta.retried += unit.retries;
    if (unit.failures.length > 0) {
      page.delta.failed += size;
      for (const failure of unit.failures) {
        if (failure.conflict) {
          const { field, indexType, itemType } = failure.conflict;
          page.fieldConflicts = addFieldConflicts(page.fieldConflicts, [
            { index: failure.index, field, indexType, itemTypes: [itemType], items: size },
          ]);
        }
        for (const key of unit.keys) {
          page.deadLetters.push(
            this.deadLetter(key, failure.reason, failure.errorType, failure.index, failure.id),
          );
        }
      }
    } else if (unit.created) page.delta.created += size;
    else page.delta.alreadyPresent += size;
    page.pendingUnits -= 1;
    this.pageMaybeReady(page);
  }

  private pageMaybeReady(page: PageState): void {
    if (!page.sealed || page.pendingUnits > 0) return;
    this.commits = this.commits.then(() => this.commitReadyPages());
  }

  /**
   * Writes the checkpoint of the latest page whose documents, and those of
   * every page before it, are all answered; dead letters go first.
   */
  private async commitReadyPages(): Promise<void> {
    if (this.failure) return;
    const ready: PageState[] = [];
    while (this.pages[0]?.sealed && this.pages[0].pendingUnits === 0)
      ready.push(this.pages.shift() as PageState);
    const last = ready.at(-1);
    if (!last) return;
    try {
      const deadLetters = ready.flatMap((page) => page.deadLetters);
      if (deadLetters.length > 0) {
        await this.deps.deadLetters.put(deadLetters);
        this.telemetry.logger.warn('documents went to the dead-letter place', {
          ...this.context,
          documents: deadLetters.length,
          location: this.deps.deadLetters.location,
        });
      }
      let counts = this.counts;
      let fieldConflicts = this.checkpoint.fieldConflicts ?? [];
      for (const page of ready) {
        counts = addCounts(counts, page.delta);
        fieldConflicts = addFieldConflicts(fieldConflicts, page.fieldConflicts);
      }
      const now = new Date().toISOString();
      const { lastEvaluatedKey: _previous, completedAt: _completed, ...base } = this.checkpoint;
      this.checkpoint = await this.deps.checkpoints.save(this.checkpoint, {
        ...base,
        status: last.final ? 'COMPLETED' : 'IN_PROGRESS',
        ...(last.resumeKey ? { lastEvaluatedKey: last.resumeKey } : {}),
        ...(last.final ? { completedAt: now } : {}),
        counts,
        ...(fieldConflicts.length > 0 ? { fieldConflicts } : {}),
        pages: last.number,
      });
      this.counts = counts;
    } catch (error) {
      this.failure ??= error instanceof Error ? error : new BackfillError(String(error));
      return;
    }
    try {
      this.options.onProgress?.(this.progress());
    } catch (error) {
      this.telemetry.logger.warn('onProgress threw', { ...this.context, error: describeError(error) });
    }
  }

  private throwIfFailed(): void {
    const failure = this.failure ?? this.writer.failed;
    if (failure) throw failure;
  }

  /** One Scan page, after the read budget allows it; undefined when a stop came first. */
  private async fetch(startKey: Item | undefined): Promise<ScanPage | undefined> {
    const stop = () => this.stopped || this.stopRequested();
    if (!(await this.budget.acquire({ signal: this.options.signal, stop }))) return undefined;
    // Under a read limit every page's units count exactly; without one, a sample of pages reports them.
    const reportCapacity =
      this.budget.limited || this.unitsPerItem === undefined || this.pagesAsked % CAPACITY_SAMPLE_PAGES === 0;
    this.pagesAsked += 1;
    const response = await this.scanWithRetries(startKey, stop, reportCapacity);
    if (response === undefined) return undefined;
    const { items } = response;
    const reported = response.consumedCapacity?.CapacityUnits;
    let consumed: number;
    if (reported !== undefined) {
      consumed = reported;
      if (items.length > 0) this.unitsPerItem = reported / items.length;
      if (this.options.pageLimit === undefined)
        this.pageLimit = pageLimitFor(items.length, reported) ?? this.pageLimit;
    } else consumed = items.length * (this.unitsPerItem ?? 0);
    this.budget.record(consumed);
    return { items, lastKey: response.lastEvaluatedKey, consumed };
  }

  /**
   * Scan with DynamoDB's own retries plus ours: throttling is waited out for
   * as long as it lasts (a backfill never fails on it), other transient
   * errors a bounded number of times.
   */
  private async scanWithRetries(
    startKey: Item | undefined,
    stop: () => boolean,
    reportCapacity: boolean,
  ): Promise<ItemsPage | undefined> {
    const { message } = this;
    const { dynamodb } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        return await scanPage(dynamodb, {
          TableName: message.table,
          Segment: message.segment,
          TotalSegments: message.totalSegments,
          ExclusiveStartKey: startKey,
          ConsistentRead: false,
          ReturnConsumedCapacity: reportCapacity ? 'TOTAL' : 'NONE',
          Limit: this.pageLimit,
        });
      } catch (error) {
        if (error instanceof ResourceNotFoundException) {
          throw new SourceTableError(`table ${message.table} does not exist (or is not reachable)`, {
            cause: error,
          });
        }
        const throttled = isThrottling(error);
        if (!throttled && !(isTransient(error) && attempt < 10)) throw error;
        if (stop()) return undefined;
        this.telemetry.logger.warn(throttled ? 'scan throttled; waiting' : 'scan failed; retrying', {
          ...this.context,
          attempt,
          error: errorName(error),
        });
        await sleep(backoffDelay(Math.min(attempt, 10), 100, 20_000) + 50);
      }
    }
  }

  private deadLetter(
    key: Item,
    reason: string,
    errorType: string,
    index = this.deps.mapping.index,
    id?: string,
  ): DeadLetterRecord {
    return {
      runId: this.message.runId,
      segment: this.message.segment,
      table: this.message.table,
      index,
      key,
      ...(id !== undefined ? { id } : {}),
      reason,
      errorType,
      at: new Date().toISOString(),
    };
  }

  private progress(): SegmentProgress {
    const elapsedMs = Date.now() - this.startedAt;
    const scannedNow = this.counts.scanned - this.initial.scanned;
    return {
      runId: this.message.runId,
      segment: this.message.segment,
      totalSegments: this.message.totalSegments,
      ...this.counts,
      pages: this.checkpoint.pages,
      itemsPerSecond: elapsedMs > 0 ? Math.round((scannedNow * 1000) / elapsedMs) : 0,
      elapsedMs,
      readUnits: this.budget.consumed,
    };
  }

  /** This invocation's share of the counts (a resumed segment does not report its earlier part again). */
  private emitMetrics(): void {
    const { metrics } = this.telemetry;
    metrics.count('ItemsScanned', this.counts.scanned - this.initial.scanned);
    metrics.count('DocumentsCreated', this.counts.created - this.initial.created);
    metrics.count('DocumentsAlreadyPresent', this.counts.alreadyPresent - this.initial.alreadyPresent);
    metrics.count('DocumentsFailed', this.counts.failed - this.initial.failed);
    metrics.count('BulkRetries', this.writer.retried);
  }

  private startHeartbeat(): NodeJS.Timeout | undefined {
    const { heartbeat } = this.options;
    if (!heartbeat) return undefined;
    let beating = false;
    const timer = setInterval(() => {
      if (beating) return;
      beating = true;
      heartbeat()
        .catch((error: unknown) => {
          this.telemetry.logger.warn('heartbeat failed', { ...this.context, error: describeError(error) });
        })
        .finally(() => {
          beating = false;
        });
    }, this.options.heartbeatIntervalMs ?? 60_000);
    timer.unref();
    return timer;
  }
}

/**
 * Groups items into partitions (contiguous runs of one partition key, as a
 * Scan returns them). Unless the page is the segment's last, the final
 * partition is held back: the next page may continue it.
 */
function splitPartitions(
  items: Item[],
  keySchema: KeySchema,
  final: boolean,
): { complete: Item[][]; held: Item[] } {
  const partitions: Item[][] = [];
  let current: Item[] = [];
  let currentKey: string | undefined;
  for (const item of items) {
    const value = item[keySchema.partitionKey];
    const key = value ? keyToString(value) : '';
    if (currentKey !== undefined && key !== currentKey) {
      partitions.push(current);
      current = [];
    }
    currentKey = key;
    current.push(item);
  }
  if (current.length > 0) {
    if (final) partitions.push(current);
    else return { complete: partitions, held: current };
  }
  return { complete: partitions, held: [] };
}

/** The item's key attributes (wire form). */
function keyOf(item: Item, keySchema: KeySchema): Item {
  const key: Item = {};
  const partition = item[keySchema.partitionKey];
  if (partition) key[keySchema.partitionKey] = partition;
  if (keySchema.sortKey) {
    const sort = item[keySchema.sortKey];
    if (sort) key[keySchema.sortKey] = sort;
  }
  return key;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Reads an SQS segment message body (already JSON-parsed). InvalidMessageError
 * names the first bad field. Unknown fields are allowed (the workflow adds
 * heartbeatSeconds and segmentTimeoutSeconds); null means absent.
 */
export function parseSegmentMessage(raw: unknown): SegmentMessage {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidMessageError('the segment message is not a JSON object');
  }
  const body = raw as Record<string, unknown>;
  const text = (name: string): string => {
    const value = body[name];
    if (value === undefined || value === null)
      throw new InvalidMessageError(`the segment message has no ${name}`);
    if (typeof value !== 'string' || value === '') {
      throw new InvalidMessageError(
        `the segment message's ${name} must be a non-empty string, not ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const integer = (name: string, low: number): number => {
    const value = body[name];
    if (value === undefined || value === null)
      throw new InvalidMessageError(`the segment message has no ${name}`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < low) {
      throw new InvalidMessageError(
        `the segment message's ${name} must be an integer of at least ${low}, not ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const message: SegmentMessage = {
    runId: text('runId'),
    table: text('table'),
    index: text('index'),
    segment: integer('segment', 0),
    totalSegments: integer('totalSegments', 1),
  };
  const indexProblem = indexNameProblem(message.index);
  if (indexProblem) {
    // Every document would fail on its own (invalid_index_name_exception): refuse the message instead.
    throw new InvalidMessageError(
      `the segment message's index ${JSON.stringify(message.index)} is not a valid index name: it ${indexProblem}`,
    );
  }
  if (message.totalSegments > 1_000_000) {
    throw new InvalidMessageError(
      `the segment message's totalSegments must be at most 1,000,000, not ${message.totalSegments}`,
    );
  }
  if (message.segment >= message.totalSegments) {
    throw new InvalidMessageError(
      `the segment message's segment ${message.segment} is not below its totalSegments ${message.totalSegments}`,
    );
  }
  if (body.taskToken !== undefined && body.taskToken !== null) message.taskToken = text('taskToken');
  const budget = body.readUnitsPerSecond;
  if (budget !== undefined && budget !== null) {
    if (typeof budget !== 'number' || !Number.isFinite(budget) || budget <= 0) {
      throw new InvalidMessageError(
        `the segment message's readUnitsPerSecond must be a positive number, not ${JSON.stringify(budget)}`,
      );
    }
    message.readUnitsPerSecond = budget;
  }
  if (body.continuation !== undefined && body.continuation !== null) {
    message.continuation = integer('continuation', 0);
  }
  if (body.targets !== undefined && body.targets !== null) message.targets = resyncTargetsOf(body.targets);
  return message;
}

/** A message's `targets`: serving name → valid index name. */
function resyncTargetsOf(raw: unknown): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidMessageError(
      `the segment message's targets must be an object, not ${JSON.stringify(raw)}`,
    );
  }
  const targets: Record<string, string> = {};
  for (const [serving, index] of Object.entries(raw)) {
    const problem = typeof index === 'string' ? indexNameProblem(index) : 'is not a string';
    if (problem) {
      throw new InvalidMessageError(
        `the segment message's target of ${serving}, ${JSON.stringify(index)}, is not a valid index name: it ${problem}`,
      );
    }
    targets[serving] = index as string;
  }
  return targets;
}
