/**
 * Metric names and dimensions that a handler publishes (Powertools, EMF) and
 * the stack alarms on. Both take them from here, so an alarm cannot watch a
 * name nobody publishes.
 */

/** The watchdog's metrics, one data point each per run (every 5 minutes). */
export const WATCHDOG_METRICS = {
  /** 1 when a backfill has completed once and the updater is paused while no live run holds the lock, else 0. */
  updaterPausedOutsideBackfill: 'UpdaterPausedOutsideBackfill',
  /** 1 when the mapping's LastProcessingResult says PROBLEM, else 0. */
  updaterProblem: 'UpdaterProblem',
} as const;

/**
 * The dimension, next to `service`, of the watchdog's metrics: the table it
 * watches, so that two deployments in one account do not answer for each other.
 */
export const TABLE_DIMENSION = 'table';

/** The updater's metrics (handlers/updater.ts), dimension `service` only. */
export const UPDATER_METRICS = {
  recordsDeadLettered: 'StreamRecordsDeadLettered',
} as const;
