/**
 * The run lock in the progress table: one backfill per source table at a
 * time. One item per table, `runId = "lock#<table>"`, `segment = 0`, holding
 * the run that owns it. A backfill takes it before it pauses the updater and
 * releases it after it enables the updater (or fails); the updater watchdog
 * reads it to tell a paused updater during a backfill (expected) from one
 * outside a backfill (an alarm).
 */
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

/** The progress-table key of `table`'s run lock. */
export function runLockKey(table: string): Item {
  return { runId: { S: `lock#${table}` }, segment: { N: '0' } };
}
