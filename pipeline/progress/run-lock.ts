/**
 * The run lock in the progress table: one backfill per source table at a
 * time. One item per table, `runId = "lock#<table>"`, `segment = 0`:
 *
 * - `holderRunId`, `holderExecutionArn` (cloud only), `acquiredAt`,
 *   `expiresAt` (a local run's lease, renewed while it runs): the run that
 *   holds the lock, absent when none does. A backfill takes it before it
 *   pauses the updater and releases it (removes these fields) only after it
 *   has enabled the updater. A failed execution keeps it; its holder is then
 *   stale (not RUNNING), so a new start takes it over, and a redrive makes
 *   the holder live again.
 * - `lastCompletedRunId`, `lastCompletedAt`: the last backfill that enabled
 *   the updater. From then on the updater is meant to be enabled whenever no
 *   live run holds the lock: the watchdog alarms otherwise, and a deploy puts
 *   it back.
 *
 * Taking it is a conditional write that names the holder it replaces (none,
 * the same run resuming, or a stale one), so of two starts at once exactly
 * one wins and the other reads the winner and names it. Releasing is
 * conditional on still holding it.
 */
import { hostname } from 'node:os';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ExecutionDoesNotExist, type SFNClient } from '@aws-sdk/client-sfn';
import { RunLockedError } from '../errors';
import type { Item } from '../table/types';

/** Who holds a table's run lock. */
export interface RunLock {
  /** The execution name (cloud) or local run id. */
  runId: string;
  /** The Step Functions execution ARN; absent for a local run. */
  executionArn?: string;
  /** ISO 8601. */
  acquiredAt: string;
  /** ISO 8601; a local run renews it while it runs (a lease), a cloud run leaves it absent. */
  expiresAt?: string;
  /** A local run's process, `<host>:<pid>`: on the same host, a lease whose process is gone is stale at once. */
  process?: string;
}

/** What the lock item says about a table. */
export interface RunLockState {
  holder?: RunLock;
  lastCompleted?: { runId: string; at: string };
}

/** The progress-table key of `table`'s run lock. */
export function runLockKey(table: string): Item {
  return { runId: { S: `lock#${table}` }, segment: { N: '0' } };
}

/** Reads `table`'s lock item (consistent read); an absent item is an empty state. */
export async function readRunLock(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
): Promise<RunLockState> {
  const { Item: item } = await dynamodb.send(
    new GetItemCommand({ TableName: progressTable, Key: runLockKey(table), ConsistentRead: true }),
  );
  if (!item) return {};
  const holderRunId = item.holderRunId?.S;
  const lastRunId = item.lastCompletedRunId?.S;
  return {
    ...(holderRunId
      ? {
          holder: {
            runId: holderRunId,
            acquiredAt: item.acquiredAt?.S ?? '',
            ...(item.holderExecutionArn?.S ? { executionArn: item.holderExecutionArn.S } : {}),
            ...(item.expiresAt?.S ? { expiresAt: item.expiresAt.S } : {}),
            ...(item.holderProcess?.S ? { process: item.holderProcess.S } : {}),
          },
        }
      : {}),
    ...(lastRunId ? { lastCompleted: { runId: lastRunId, at: item.lastCompletedAt?.S ?? '' } } : {}),
  };
}

/** Says whether a holder still runs; a holder that does not is stale and may be taken over. */
export type HolderLiveness = (holder: RunLock) => Promise<boolean>;

/**
 * A holder is live while its lease lasts (a local run) or, without a lease,
 * while its execution is RUNNING (DescribeExecution; an execution that does
 * not exist is not). Without a Step Functions client, an execution holder
 * counts as live: only its own account can tell.
 */
export function holderLiveness(deps: { sfn?: SFNClient; now?: () => Date }): HolderLiveness {
  return async (holder) => {
    if (holder.expiresAt !== undefined) {
      // A run killed outright (SIGKILL, a crash) renews nothing: on this host its lease ends with it.
      if (holder.process !== undefined && !processAlive(holder.process)) return false;
      return Date.parse(holder.expiresAt) > (deps.now?.() ?? new Date()).getTime();
    }
    if (holder.executionArn === undefined) return false;
    if (!deps.sfn) return true;
    try {
      const { status } = await deps.sfn.send(
        new DescribeExecutionCommand({ executionArn: holder.executionArn }),
      );
      return status === 'RUNNING';
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return false;
      throw error;
    }
  };
}

/** This process, as a lease records it. */
export function thisProcess(): string {
  return `${hostname()}:${process.pid}`;
}

/** False only when `holderProcess` ran on this host and its process is gone. */
function processAlive(holderProcess: string): boolean {
  const at = holderProcess.lastIndexOf(':');
  const pid = Number(holderProcess.slice(at + 1));
  if (holderProcess.slice(0, at) !== hostname() || !Number.isInteger(pid)) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** How a person recognises the run that holds a lock. */
export function describeHolder(holder: RunLock): string {
  return holder.executionArn ? `execution ${holder.executionArn}` : `local run ${holder.runId}`;
}

/**
 * Takes `table`'s lock for `candidate`: when no run holds it, when the
 * candidate's own execution does (a retried start), or when the holder is
 * stale (a local run resumed after it failed finds its own lease ended). Throws
 * RunLockedError naming the live holder otherwise. Returns the stale holder
 * it took over, if any.
 */
export async function acquireRunLock(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  candidate: RunLock,
  isLive: HolderLiveness,
): Promise<{ tookOverFrom?: RunLock }> {
  // Each lost race means another start changed the item; three in a row is a storm worth reporting.
  for (let attempt = 0; attempt < 3; attempt++) {
    const { holder } = await readRunLock(dynamodb, progressTable, table);
    // The same run may take its lock again (a retried start), unless it is leased: then another
    // process may be resuming that same local run.
    const other = holder && (holder.runId !== candidate.runId || holder.expiresAt !== undefined);
    if (holder && other && (await isLive(holder))) {
      throw new RunLockedError(
        `table ${table} is already being backfilled by ${describeHolder(holder)} (it holds the run lock since ` +
          `${holder.acquiredAt}); wait for it to end or stop it before starting another backfill of this table`,
      );
    }
    const values: Item = {
      ':run': { S: candidate.runId },
      ':at': { S: candidate.acquiredAt },
      ...(candidate.executionArn ? { ':arn': { S: candidate.executionArn } } : {}),
      ...(candidate.expiresAt ? { ':expires': { S: candidate.expiresAt } } : {}),
      ...(candidate.process ? { ':process': { S: candidate.process } } : {}),
      ...(holder ? { ':previous': { S: holder.runId }, ':previousAt': { S: holder.acquiredAt } } : {}),
    };
    const set = [
      'holderRunId = :run',
      'acquiredAt = :at',
      ...(candidate.executionArn ? ['holderExecutionArn = :arn'] : []),
      ...(candidate.expiresAt ? ['expiresAt = :expires'] : []),
      ...(candidate.process ? ['holderProcess = :process'] : []),
    ];
    const remove = [
      ...(candidate.executionArn ? [] : ['holderExecutionArn']),
      ...(candidate.expiresAt ? [] : ['expiresAt']),
      ...(candidate.process ? [] : ['holderProcess']),
    ];
    try {
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: progressTable,
          Key: runLockKey(table),
          UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
          // The holder this start read, exactly: a start that read another state loses the race.
          ConditionExpression: holder
            ? 'holderRunId = :previous AND acquiredAt = :previousAt'
            : 'attribute_not_exists(holderRunId)',
          ExpressionAttributeValues: values,
        }),
      );
      return holder && holder.runId !== candidate.runId ? { tookOverFrom: holder } : {};
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
  throw new RunLockedError(
    `the run lock of table ${table} kept changing hands while run ${candidate.runId} tried to take it; start again`,
  );
}

/**
 * Moves a local run's lease to `expiresAt` (later while it runs, now when it
 * fails, so that a new start may take over at once). False when the run no
 * longer holds the lock.
 */
export function renewRunLease(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
  expiresAt: string,
): Promise<boolean> {
  return updateHeldLock(dynamodb, progressTable, table, runId, 'SET expiresAt = :expires', {
    ':expires': { S: expiresAt },
  });
}

/**
 * Releases the lock `runId` holds and records it as the last completed run,
 * once the updater is enabled. With `completed: false` (an aborted resync,
 * which enables nothing) it only releases: the last completed run stays the
 * one before, so the watchdog does not expect an updater that no backfill
 * enabled. RunLockedError when another run has taken the lock meanwhile
 * (this run was stale for a while): that run decides the updater's state now.
 */
export async function releaseRunLock(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
  completedAt: string,
  options: { completed?: boolean } = {},
): Promise<void> {
  const completed = options.completed ?? true;
  const released = await updateHeldLock(
    dynamodb,
    progressTable,
    table,
    runId,
    `${completed ? 'SET lastCompletedRunId = :run, lastCompletedAt = :at ' : ''}REMOVE holderRunId, holderExecutionArn, acquiredAt, expiresAt, holderProcess`,
    completed ? { ':at': { S: completedAt } } : {},
  );
  if (released) return;
  const { holder } = await readRunLock(dynamodb, progressTable, table);
  throw new RunLockedError(
    `run ${runId} enabled the updater but no longer holds the run lock of table ${table} ` +
      `(${holder ? `${describeHolder(holder)} took it over` : 'nobody holds it'}); check that run before trusting the index`,
  );
}

/** Applies `update` (`:run` is `runId`) to the lock item while `runId` holds it; false when it does not. */
async function updateHeldLock(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
  update: string,
  values: Item,
): Promise<boolean> {
  try {
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: progressTable,
        Key: runLockKey(table),
        UpdateExpression: update,
        ConditionExpression: 'holderRunId = :run',
        ExpressionAttributeValues: { ':run': { S: runId }, ...values },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
