/**
 * "Validate and lock", the workflow's first task, before the updater is
 * paused: the whole input is checked against the deployment, the table's run
 * lock is taken, and the oldest change the updater has not applied is
 * measured while the updater still runs. The Lambda handler and the local
 * runner call this with their own liveness check and updater clock.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConfigurationError } from '../errors';
import { acquireRunLock, type HolderLiveness, readRunLock, thisProcess } from '../progress/run-lock';
import { ResyncInProgressError, readResyncState } from '../resync/resync-state';
import { type RunConfig, resolveRunInput } from './run-input';

/** What the "Validate and lock" state passes. */
export interface StartRunEvent {
  /** The execution name (cloud) or local run id. */
  runId: string;
  /** The execution ARN (`$$.Execution.Id`); absent or ignored locally. */
  executionArn?: string;
  /** The execution input, as the user gave it. */
  input: unknown;
  /** The deployment's defaults ("Read input"). */
  defaults: unknown;
  /** What the deployment fixes: substituted into the definition by the stack. */
  deployment: { workerMaxConcurrency: number; index: string };
}

/** What the state keeps for the rest of the run. */
export interface StartRunResult {
  config: RunConfig;
  /** ISO 8601: where the retention guard's clock starts (see retention-clock.ts). */
  oldestUnappliedAt: string;
  /** The stale holder this run took the lock over from, if any. */
  tookOverFrom?: string;
}

export interface StartRunDeps {
  dynamodb: DynamoDBClient;
  progressTable: string;
  /** The table this deployment backfills. */
  table: string;
  /** Indices the mapping's routes write to, to explain a refused index. */
  routeIndices?: string[];
  /** Hours the updater's change source keeps a change (source-retention.ts). @default 24 */
  sourceRetentionHours?: number;
  isLive: HolderLiveness;
  /** A local run's lease end; absent in the cloud, where the execution's status decides. */
  leaseUntil?: (now: Date) => Date;
  /** The oldest change the updater has not applied, given whether a backfill ever enabled it. */
  oldestUnapplied: (everEnabled: boolean, runStart: Date) => Promise<Date>;
  now?: () => Date;
}

/** Validates, locks and measures, in that order: nothing changes unless the input is valid. */
export async function startRun(event: StartRunEvent, deps: StartRunDeps): Promise<StartRunResult> {
  if (typeof event.runId !== 'string' || event.runId === '') {
    throw new ConfigurationError('the Validate and lock state passed no runId (the execution name)');
  }
  const config = resolveRunInput(event.input, event.defaults, {
    workerMaxConcurrency: event.deployment.workerMaxConcurrency,
    updaterIndex: event.deployment.index,
    routeIndices: deps.routeIndices,
    sourceRetentionHours: deps.sourceRetentionHours,
  });
  if (config.mode === 'backfill') await refuseDuringResync(deps);
  const now = deps.now?.() ?? new Date();
  const { tookOverFrom } = await acquireRunLock(
    deps.dynamodb,
    deps.progressTable,
    deps.table,
    {
      runId: event.runId,
      acquiredAt: now.toISOString(),
      ...(event.executionArn && !deps.leaseUntil ? { executionArn: event.executionArn } : {}),
      ...(deps.leaseUntil ? { expiresAt: deps.leaseUntil(now).toISOString(), process: thisProcess() } : {}),
    },
    deps.isLive,
  );
  const { lastCompleted } = await readRunLock(deps.dynamodb, deps.progressTable, deps.table);
  const oldest = await deps.oldestUnapplied(lastCompleted !== undefined, now);
  return {
    config,
    oldestUnappliedAt: oldest.toISOString(),
    ...(tookOverFrom ? { tookOverFrom: tookOverFrom.executionArn ?? tookOverFrom.runId } : {}),
  };
}

/**
 * A backfill pauses the updater, which an unfinished resync needs to keep its new indices current (and
 * a backfill would fill the serving index beside them): it waits until the resync is finished or aborted.
 */
async function refuseDuringResync(deps: StartRunDeps): Promise<void> {
  const resync = await readResyncState(deps.dynamodb, deps.progressTable, deps.table);
  if (!resync) return;
  throw new ResyncInProgressError(
    `table ${deps.table} has an unfinished resync (run ${resync.runId}, phase ${resync.phase}, since ` +
      `${resync.startedAt}); a backfill now would pause the updater that keeps its new index current: ` +
      'finish it (start the resync again: it resumes) or abort it (ddb2os resync --abort, or the input ' +
      '{"mode":"resync","abort":true}) before starting a backfill',
  );
}
