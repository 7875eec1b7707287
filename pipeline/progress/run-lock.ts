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
 */
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
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
          },
        }
      : {}),
    ...(lastRunId ? { lastCompleted: { runId: lastRunId, at: item.lastCompletedAt?.S ?? '' } } : {}),
  };
}
