/**
 * A whole backfill on one machine: the workflow definition run by the local
 * interpreter, every Task state bound to the same code the Lambdas run, the
 * same progress table for checkpoints, and a follower of the change source
 * (the table's stream, a Kinesis stream, an SQS queue) in place of the
 * updater's event source mapping. `ddb2os run`, `ddb2os demo`, the benchmarks
 * and the reliability tests all come through here.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import { applyStreamRecords } from '../pipeline/apply/apply-stream';
import { writeFailedBatch } from '../pipeline/apply/failed-batches';
import { readKinesisData, readSqsMessage, type StreamBatchRecord } from '../pipeline/apply/stream-records';
import type { BulkPolicy } from '../pipeline/bulk/bulk-writer';
import type { WorkflowInput } from '../pipeline/contract/workflow';
import { DirectoryDeadLetterSink } from '../pipeline/dead-letter/dead-letter';
import { BackfillError, describeError } from '../pipeline/errors';
import type { IndexDefinition } from '../pipeline/index/index-definition';
import { restoreIndexAfterBackfill } from '../pipeline/index/index-settings';
import { checkMappingForTable, type MappingConfig } from '../pipeline/mapping/mapping';
import { planBackfill, targetIndices } from '../pipeline/plan/plan-segments';
import { startRun } from '../pipeline/plan/start-run';
import { ensureProgressTable, SegmentCheckpointStore } from '../pipeline/progress/checkpoint';
import { holderLiveness, releaseRunLock, renewRunLease } from '../pipeline/progress/run-lock';
import { RunMarkerStore } from '../pipeline/progress/run-markers';
import { DynamoDBStreamPositionStore } from '../pipeline/progress/stream-positions';
import { readResyncState } from '../pipeline/resync/resync-state';
import {
  abortResyncStep,
  drainResyncStep,
  type RemoveTombstonesInput,
  type ResyncRun,
  type ResyncStepDeps,
  removeResyncTombstones,
  type SwapAliasesResult,
  startResyncStep,
  swapResyncAliases,
} from '../pipeline/resync/resync-steps';
import { type SegmentProgress, scanSegment } from '../pipeline/scan/scan-segment';
import { prepareSegmentWork } from '../pipeline/scan/segment-message';
import { retentionNeed } from '../pipeline/summarize/retention-clock';
import {
  type ChangeSource,
  kinesisStreamName,
  readSourceRetention,
} from '../pipeline/summarize/source-retention';
import { summarizeRun } from '../pipeline/summarize/summarize-run';
import { describeSourceTable, requireStream, type SourceTable } from '../pipeline/table/describe';
import {
  emptyCounts,
  type KeySchema,
  type SegmentMessage,
  type SegmentResult,
} from '../pipeline/table/types';
import { KinesisChangeLog } from './kinesis-follower';
import type { ResyncPhaseEvent } from './resync';
import { SqsFollower } from './sqs-follower';
import { type FollowerBatchInfo, StreamFollower, type StreamFollowerOptions } from './stream-follower';
import { type RunSummary, runWorkflowLocally, WorkflowAbortedError } from './workflow';

export const DEFAULT_PROGRESS_TABLE = 'ddb2os-progress';
/**
 * A local run holds the table's run lock as a lease it renews while it runs:
 * a process that dies leaves a lock that is stale a minute later, and a run
 * that fails ends its lease at once.
 */
export const LOCAL_LEASE_MS = 60_000;
const LEASE_RENEWAL_MS = 20_000;

/** What the backfill reports as it goes, for a progress display. */
export type BackfillEvent =
  | { type: 'plan'; runId: string; totalSegments: number; itemCount: number; resumed: boolean }
  | { type: 'segment-start'; segment: number; attempt: number }
  | { type: 'segment-progress'; segment: number; progress: SegmentProgress }
  | { type: 'segment-done'; segment: number; result: SegmentResult }
  | { type: 'segment-failed'; segment: number; attempt: number; error: string; cause: string }
  | { type: 'updater'; state: 'Disabled' | 'Enabled' }
  | { type: 'warning'; message: string };

export interface LocalBackfillOptions {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  opensearch: Client;
  table: string;
  index: string;
  mapping: MappingConfig;
  /** Checkpoints and stream positions (created when missing). @default ddb2os-progress */
  progressTable?: string;
  /** Folder for dead letters. @default .ddb2os */
  deadLetterDir?: string;
  /** Resume this run; default: resume the table's unfinished local run, else start a new one. */
  runId?: string;
  /** Start a new run even when an unfinished one exists. */
  restart?: boolean;
  input?: WorkflowInput;
  /** Settings and mappings of an index the plan step creates (`--index-config`); ddb2os's defaults without. */
  indexConfig?: IndexDefinition;
  bulk?: { maxBytes?: number; maxDocs?: number; concurrency?: number };
  /** Pause before a failed segment is tried again (the cloud waits 30 s and more). @default 1000 */
  segmentRetryIntervalMs?: number;
  onEvent?: (event: BackfillEvent) => void;
  signal?: AbortSignal;
  /**
   * Called before each attempt at a segment; a throw fails that attempt as a
   * worker failure would (the definition's Retry then applies). For fault
   * injection in tests: the local stand-in for a Lambda that crashes.
   */
  beforeSegmentAttempt?: (segment: number, attempt: number) => void | Promise<void>;
  /** Replaces the retention guard's clock: hours the oldest change the updater has not applied is said to be old. */
  reportedDurationHours?: number;
  /**
   * How far behind the local updater (the stream follower, its `lagSeconds`)
   * was when this run paused it: the retention clock starts that much before
   * the run. @default 0
   */
  updaterLagSeconds?: number;
  /**
   * Where the updater takes its changes from: its retention bounds the
   * retention budget (five sixths of it by default, source-retention.ts).
   * @default the table's DynamoDB stream
   */
  changeSource?: ChangeSource;
  /**
   * The local updater of a resync (`input.mode` "resync", local/resync.ts): it runs the whole time, and
   * the resync's steps wait on it. Without it a resync fails at once, as in the cloud with a Disabled updater.
   */
  resyncUpdater?: LocalResyncUpdater;
}

/** How the steps of a local resync wait on the local updater (the cloud waits a Lambda timeout instead). */
export interface LocalResyncUpdater {
  /** After the DRAINING state is written: resolves once no updater page that read FILLING is being applied. */
  draining(): Promise<void>;
  /** Tombstone removal rounds per index. @default 5 */
  tombstoneRounds?: number;
  onPhase?: (event: ResyncPhaseEvent) => void;
}

export interface LocalBackfillResult {
  summary: RunSummary;
  runId: string;
  keySchema: KeySchema;
  deadLetterLocation: string;
  /** What a resync's steps did (mode "resync"). */
  resync?: LocalResyncOutcome;
}

/** What the steps of a resync did. */
export interface LocalResyncOutcome extends SwapAliasesResult {
  /** Serving name → the index it now points at. */
  targets: Record<string, string>;
  tombstonesRemoved: number;
}

/** The table's description, once it is known that the table can be followed (it has a stream). */
async function followableTable(dynamodb: DynamoDBClient, table: string): Promise<SourceTable> {
  return requireStream(await describeSourceTable(dynamodb, table));
}

/** The run to work on: the one given, the marker's run in progress (resumed), or a new one. */
async function resolveRunId(
  markers: RunMarkerStore,
  table: string,
  index: string,
  options: { runId?: string; restart?: boolean },
): Promise<{ runId: string; resumed: boolean; firstStartedAt?: string }> {
  if (options.runId) return { runId: options.runId, resumed: true };
  if (!options.restart) {
    const marker = await markers.get(table, index);
    if (marker && marker.status !== 'COMPLETED')
      return { runId: marker.runId, resumed: true, firstStartedAt: marker.startedAt };
  }
  const runId = `${table}-${new Date().toISOString().replaceAll(/[:.]/g, '-')}`;
  await markers.start(table, index, runId);
  return { runId, resumed: false };
}

/** Runs the backfill workflow locally; the updater stays paused until it succeeds. */
export async function runLocalBackfill(options: LocalBackfillOptions): Promise<LocalBackfillResult> {
  const progressTable = options.progressTable ?? DEFAULT_PROGRESS_TABLE;
  const { dynamodb, opensearch, table, index, mapping } = options;
  const source = await followableTable(dynamodb, table);
  checkMappingForTable(mapping, source.keySchema);
  await ensureProgressTable(dynamodb, progressTable);
  const checkpoints = new SegmentCheckpointStore(dynamodb, progressTable);
  const deadLetters = new DirectoryDeadLetterSink(options.deadLetterDir ?? '.ddb2os');
  const markers = new RunMarkerStore(dynamodb, progressTable);
  const retention = await readSourceRetention(options.changeSource ?? { kind: 'stream' });
  if (!retention.reported) {
    options.onEvent?.({
      type: 'warning',
      message: `the change source did not report its retention; assuming ${retention.retentionHours} hours, SQS's default`,
    });
  }
  const resyncMode = options.input?.mode === 'resync';
  if (resyncMode && !options.runId) {
    throw new BackfillError(
      'a local resync runs with the run id of its resync state (local/resync.ts gives it)',
    );
  }
  // A resync keeps its run in the resync state: the backfill's run marker is left alone.
  const { runId, resumed, firstStartedAt } = await resolveRunId(markers, table, index, options);
  const emit = options.onEvent ?? (() => {});
  // A resync's updater runs the whole time; a backfill's is paused by the workflow before it scans.
  let updater: 'Disabled' | 'Enabled' = options.resyncUpdater ? 'Enabled' : 'Disabled';
  const resyncSteps = resyncStepBindings(options, progressTable);
  let fillSummary: RunSummary | undefined;
  const attempts = new Map<number, number>();
  const inFlight = new Set<Promise<unknown>>();
  let lease: NodeJS.Timeout | undefined;
  let locked = false;

  const processSegment = async (message: SegmentMessage): Promise<SegmentResult> => {
    // The interpreter keeps starting Map items after an abort: an interrupted run starts no new work.
    if (options.signal?.aborted) throw new WorkflowAbortedError();
    const attempt = (attempts.get(message.segment) ?? 0) + 1;
    attempts.set(message.segment, attempt);
    emit({ type: 'segment-start', segment: message.segment, attempt });
    const work = (async () => {
      try {
        await options.beforeSegmentAttempt?.(message.segment, attempt);
        // The worker's rules: this table only, and the message's index (the input's override) is written.
        const prepared = await prepareSegmentWork(message, {
          table,
          mapping,
          keySchema: async () => source.keySchema,
        });
        // Locally there is no Lambda time limit: the segment runs to its end unless interrupted.
        const outcome = await scanSegment(
          prepared.message,
          {
            dynamodb,
            opensearch,
            checkpoints,
            deadLetters,
            mapping: prepared.mapping,
            keySchema: prepared.keySchema,
          },
          {
            bulkMaxBytes: options.bulk?.maxBytes,
            bulkMaxDocs: options.bulk?.maxDocs,
            bulkConcurrency: options.bulk?.concurrency,
            signal: options.signal,
            onProgress: (progress) => emit({ type: 'segment-progress', segment: message.segment, progress }),
          },
        );
        if (outcome.status !== 'COMPLETED') {
          throw new BackfillError(`segment ${message.segment} was interrupted; its checkpoint is saved`);
        }
        emit({ type: 'segment-done', segment: message.segment, result: outcome.result });
        return outcome.result;
      } catch (error) {
        const name = error instanceof Error ? error.name : 'Error';
        emit({
          type: 'segment-failed',
          segment: message.segment,
          attempt,
          error: name,
          cause: describeError(error),
        });
        throw error;
      }
    })();
    inFlight.add(work);
    try {
      return await work;
    } finally {
      inFlight.delete(work);
    }
  };

  try {
    const summary = await runWorkflowLocally({
      runId,
      table,
      index,
      input: options.input,
      defaults: { retentionBudgetHours: retention.budgetHours },
      indexConfig: options.indexConfig,
      segmentRetryIntervalMs: options.segmentRetryIntervalMs,
      signal: options.signal,
      bindings: {
        startRun: async (event) => {
          const started = await startRun(event, {
            dynamodb,
            progressTable,
            table,
            routeIndices: (mapping.routes ?? []).map((route) => route.index),
            sourceRetentionHours: retention.retentionHours,
            isLive: holderLiveness({}),
            leaseUntil: (now) => new Date(now.getTime() + LOCAL_LEASE_MS),
            // A resumed run's changes have waited since its first start; the follower's lag adds to the run's.
            oldestUnapplied: async (_everEnabled, runStart) =>
              new Date(
                Math.min(
                  runStart.getTime() - (options.updaterLagSeconds ?? 0) * 1000,
                  firstStartedAt ? Date.parse(firstStartedAt) : Number.POSITIVE_INFINITY,
                ),
              ),
          });
          locked = true;
          lease = setInterval(() => {
            const until = new Date(Date.now() + LOCAL_LEASE_MS).toISOString();
            renewRunLease(dynamodb, progressTable, table, runId, until).catch((error: unknown) =>
              emit({
                type: 'warning',
                message: `the run lock's lease was not renewed: ${describeError(error)}`,
              }),
            );
          }, LEASE_RENEWAL_MS);
          lease.unref();
          return started;
        },
        releaseLock: async (id, { completed }) => {
          clearInterval(lease);
          await releaseRunLock(dynamodb, progressTable, table, id, new Date().toISOString(), { completed });
          locked = false;
        },
        pauseUpdater: async () => {
          updater = 'Disabled';
          emit({ type: 'updater', state: updater });
        },
        enableUpdater: async () => {
          updater = 'Enabled';
          emit({ type: 'updater', state: updater });
        },
        updaterState: () => updater,
        describeTable: async () => source.description,
        planSegments: async (input) => {
          const plan = await planBackfill(input, {
            opensearch,
            mapping,
            sourceRetentionHours: retention.retentionHours,
          });
          // A resync resumes when its state existed; a backfill when its run did.
          const planResumed = resyncSteps.resumed() ?? resumed;
          // A resumed run finds the index its first attempt created (or found, and then said so).
          if (!planResumed) for (const message of plan.warnings ?? []) emit({ type: 'warning', message });
          emit({
            type: 'plan',
            runId: plan.runId,
            totalSegments: plan.totalSegments,
            itemCount: source.itemCount,
            resumed: planResumed,
          });
          return plan;
        },
        processSegment,
        summarize: async (input) => {
          // A resumed run is measured from its first start, as a redrive in the cloud is (it keeps the
          // plan's startedAt): the retention guard must see all the time the stream has been accumulating.
          const startedAt =
            firstStartedAt && Date.parse(firstStartedAt) < Date.parse(input.startedAt)
              ? firstStartedAt
              : input.startedAt;
          const summary = await summarizeRun({ ...input, startedAt }, { checkpoints });
          await restoreIndexAfterBackfill(opensearch, targetIndices({ ...mapping, index: input.index }));
          fillSummary = summary;
          if (options.reportedDurationHours === undefined) return summary;
          const reported = new Date(Date.now() - options.reportedDurationHours * 3_600_000).toISOString();
          return { ...summary, ...retentionNeed(reported, new Date()) };
        },
        ...resyncSteps.bindings,
      },
    });
    if (!resyncMode) await markers.complete(table, index, runId);
    return {
      // A resync's output is its own shape: its summary is the fill's (none when an earlier run filled).
      summary: resyncMode ? (fillSummary ?? emptySummary(runId)) : summary,
      runId,
      keySchema: source.keySchema,
      deadLetterLocation: deadLetters.location,
      ...(resyncMode ? { resync: resyncSteps.outcome() } : {}),
    };
  } finally {
    clearInterval(lease);
    // A failed run keeps the lock, but stale at once: the next start takes it over without waiting.
    if (locked) await renewRunLease(dynamodb, progressTable, table, runId, new Date().toISOString());
    // An interrupted or failed run: let the segments still working finish their page and save their checkpoint.
    await Promise.allSettled([...inFlight]);
  }
}

/** The summary of a run that scanned nothing (a resync resumed after its fill was done). */
function emptySummary(runId: string): RunSummary {
  const now = new Date();
  return {
    runId,
    segments: 0,
    segmentsCompleted: 0,
    ...emptyCounts(),
    fieldConflicts: [],
    durationSeconds: 0,
    durationHours: 0,
    ...retentionNeed(now.toISOString(), now),
  };
}

/**
 * The resync steps of the workflow bound to the pipeline's functions (the resync Lambda runs the
 * same), with the local updater's waits, and what they did for the result.
 */
function resyncStepBindings(options: LocalBackfillOptions, progressTable: string) {
  const deps: ResyncStepDeps = {
    dynamodb: options.dynamodb,
    opensearch: options.opensearch,
    progressTable,
    table: options.table,
    mapping: options.mapping,
  };
  const phase = options.resyncUpdater?.onPhase ?? (() => {});
  let run: ResyncRun | undefined;
  let tombstonesRemoved = 0;
  let swap: SwapAliasesResult = { swaps: [], deletedIndices: [] };
  const bindings = {
    startResync: async (input: { runId: string; indexConfig?: unknown }) => {
      run = await startResyncStep(input, deps);
      phase({ phase: 'indices', runId: run.runId, targets: run.targets, resumed: run.resumed });
      if (run.phase === 'FILLING') phase({ phase: 'filling', runId: run.runId });
      return run;
    },
    drainResync: async (input: { runId: string }) => {
      await drainResyncStep(input, deps);
      phase({ phase: 'draining', runId: input.runId });
      // The local stand-in for "Wait for resync writers": the updater's page in progress ends.
      await options.resyncUpdater?.draining();
    },
    removeTombstones: async (input: RemoveTombstonesInput) => {
      const removed = await removeResyncTombstones(
        { rounds: options.resyncUpdater?.tombstoneRounds, ...input },
        deps,
      );
      tombstonesRemoved = removed.tombstonesRemoved;
      phase({ phase: 'tombstones-removed', count: tombstonesRemoved });
      return removed;
    },
    swapAliases: async (input: { runId: string; targets: Record<string, string>; keepOld?: boolean }) => {
      swap = await swapResyncAliases(input, deps);
      const previous = swap.swaps.flatMap((done) => done.previousIndices);
      phase({ phase: 'swapped', swaps: swap.swaps });
      phase({ phase: 'old-indices', deleted: swap.deletedIndices, kept: input.keepOld ? previous : [] });
      return swap;
    },
    abortResync: () => abortResyncStep(deps),
  };
  return {
    bindings,
    /** Whether the resync existed before this run (undefined outside a resync). */
    resumed: (): boolean | undefined => run?.resumed,
    outcome: (): LocalResyncOutcome => ({ targets: run?.targets ?? {}, tombstonesRemoved, ...swap }),
  };
}

export interface LocalUpdaterOptions {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  opensearch: Client;
  table: string;
  keySchema: KeySchema;
  mapping: MappingConfig;
  progressTable?: string;
  /** Dead letters, and the batches given up on in its `failed-batches` folder. @default .ddb2os */
  deadLetterDir?: string;
  onBatch?: (records: number, lagSeconds: number | undefined) => void;
  /** Every attempt at a page, with its attempt number and result. */
  onAttempt?: (info: FollowerBatchInfo) => void;
  /** The follower's backoff between attempts at a page. @default its defaults */
  retry?: StreamFollowerOptions['retry'];
  /** The follower's max record age. @default 22 hours, as the event source mapping */
  maxRecordAgeSeconds?: number;
  /** The bulk writer's bounds and retries. @default its defaults */
  bulk?: BulkPolicy;
  /** Where the changes come from. @default the table's DynamoDB stream */
  changeSource?: ChangeSource;
}

/** What runs in place of the updater's event source mapping: paused = not consuming. */
export interface LocalUpdater {
  /** Applies everything the source holds now, then resolves. */
  drain(): Promise<{ records: number }>;
  /** Keeps consuming until stop(). */
  start(): void;
  /** Stops consuming; resolves when the batch being applied is done. */
  stop(): Promise<void>;
}

/**
 * The stand-in for the updater's event source mapping, on the change source:
 * - the table's stream: a follower that retries a page until its records
 *   are older than the max record age, then writes the on-failure record
 *   Lambda would send to the failure queue into
 *   `<deadLetterDir>/failed-batches/` and goes on;
 * - a Kinesis stream: the same follower on the Kinesis shards (positions
 *   `kinesis#<stream>`), retrying a page until it is applied;
 * - an SQS queue: receivers that delete what was applied and dead-letter a
 *   message received too often or too old (sqs-follower.ts).
 * The two fan-out sources repeat and reorder changes: they are applied with
 * ordering 'unordered'.
 */
export async function createLocalUpdater(options: LocalUpdaterOptions): Promise<LocalUpdater> {
  const deadLetterDir = options.deadLetterDir ?? '.ddb2os';
  const deadLetters = new DirectoryDeadLetterSink(deadLetterDir);
  const progressTable = options.progressTable ?? DEFAULT_PROGRESS_TABLE;
  const source = options.changeSource ?? { kind: 'stream' };
  const apply = (changes: StreamBatchRecord[]) =>
    applyStreamRecords(changes, {
      opensearch: options.opensearch,
      dynamodb: options.dynamodb,
      table: options.table,
      keySchema: options.keySchema,
      mapping: options.mapping,
      deadLetters,
      runId: 'updater',
      // A resync of the table (this process's or another's) is read before each page, as the Lambda does.
      resync: () => readResyncState(options.dynamodb, progressTable, options.table),
      ...(options.bulk ? { bulk: options.bulk } : {}),
      ...(source.kind === 'stream' ? {} : { ordering: 'unordered' as const }),
    });
  const onBatch = (info: FollowerBatchInfo) => {
    options.onAttempt?.(info);
    options.onBatch?.(info.result.applied, info.lagSeconds);
  };
  if (source.kind === 'sqs') {
    return new SqsFollower({
      sqs: source.sqs,
      queueUrl: source.queueUrl,
      table: options.table,
      decode: readSqsMessage,
      apply,
      deadLetters,
      onBatch,
      ...(options.maxRecordAgeSeconds === undefined
        ? {}
        : { maxRecordAgeSeconds: options.maxRecordAgeSeconds }),
    });
  }
  if (source.kind === 'kinesis') {
    const changeLog = new KinesisChangeLog(source.kinesis, source.stream, (record) =>
      readKinesisData(record.Data ?? new Uint8Array(), record.SequenceNumber ?? ''),
    );
    return new StreamFollower({
      changeLog,
      table: options.table,
      positions: await DynamoDBStreamPositionStore.open({
        dynamodb: options.dynamodb,
        progressTable,
        table: options.table,
        positionsId: `kinesis#${kinesisStreamName(source.stream)}`,
      }),
      apply,
      onBatch,
      // No on-failure record: `ddb2os replay` reads the table's stream. A page is retried until it is applied.
      ...(options.retry ? { retry: options.retry } : {}),
    });
  }
  const positions = await DynamoDBStreamPositionStore.open({
    dynamodb: options.dynamodb,
    progressTable,
    table: options.table,
  });
  return new StreamFollower({
    streams: options.streams,
    dynamodb: options.dynamodb,
    table: options.table,
    positions,
    apply,
    onBatch,
    onFailedBatch: async (batch) => {
      const path = await writeFailedBatch(deadLetterDir, batch);
      const { shardId, startSequenceNumber, endSequenceNumber } = batch.DDBStreamBatchInfo;
      console.error(
        `stream follower: gave up on records ${startSequenceNumber} to ${endSequenceNumber} of shard ${shardId} ` +
          `(older than the max record age); recorded in ${path} for ddb2os replay`,
      );
    },
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.maxRecordAgeSeconds === undefined
      ? {}
      : { maxRecordAgeSeconds: options.maxRecordAgeSeconds }),
  });
}
