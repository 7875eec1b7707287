/**
 * The retention guard's clock. The stream keeps a change for 24 hours, and
 * the updater must apply every change it has not applied yet before the
 * stream trims it. So the clock starts at the oldest change the updater has
 * not applied: the run's start, or, when the updater already lagged, its
 * position when it was paused, whichever is older. And the updater needs
 * time to drain that backlog after the backfill enables it.
 *
 * The rule: age of the oldest unapplied change + drain margin ≤ budget, with
 * the drain margin estimated as 15 minutes (the mapping enables and polls)
 * plus a tenth of that age: the updater applies a backlog at least ten times
 * faster than a table's writes accumulated it (a batch of 100 records per
 * shard per invocation, each in well under a second, against writes spread
 * over hours). A table written faster than its updater drains needs a
 * smaller budget.
 *
 * Where the updater was when paused: the event source mapping's state and
 * its last change (GetEventSourceMapping), and the updater function's
 * IteratorAge (the age of the last record it read; CloudWatch keeps the
 * maximum per minute):
 * - Enabled (or getting there): now − the largest iterator age of the last
 *   15 minutes.
 * - Disabled (someone paused it, or a failed run did): its LastModified − the
 *   largest iterator age of the 15 minutes before it.
 * - Disabled and no backfill ever enabled it (no lastCompleted): the run's
 *   start; it has not applied anything, and the backfill scans all before.
 *
 * An SQS change source has no iterator age, and a queue keeps what a paused
 * mapping has not received: the oldest unapplied change is the queue's
 * oldest message (its ApproximateAgeOfOldestMessage, the largest of the last
 * 15 minutes), enabled or paused, once a backfill has enabled the updater.
 */
import { type CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { GetEventSourceMappingCommand, type LambdaClient } from '@aws-sdk/client-lambda';

/** Minutes of IteratorAge read before a moment. */
export const ITERATOR_AGE_WINDOW_MINUTES = 15;
/** The drain estimate: fixed hours, and the fraction of the backlog's age. */
export const DRAIN_SETUP_HOURS = 0.25;
export const DRAIN_BACKLOG_FRACTION = 0.1;

/** What the guard weighs against the budget, in hours (4 decimals). */
export interface RetentionNeed {
  /** ISO 8601: the oldest change the updater has not applied. */
  oldestUnappliedAt: string;
  /** Its age now. */
  unappliedHours: number;
  /** The time estimated for the updater to drain the backlog. */
  drainMarginHours: number;
  /** unappliedHours + drainMarginHours: must not exceed the retention budget. */
  retentionHours: number;
}

/** The hours the retention guard compares with the budget, at `now`. */
export function retentionNeed(oldestUnappliedAt: string, now: Date): RetentionNeed {
  const unapplied = Math.max(0, (now.getTime() - Date.parse(oldestUnappliedAt)) / 3_600_000);
  const drain = DRAIN_SETUP_HOURS + DRAIN_BACKLOG_FRACTION * unapplied;
  return {
    oldestUnappliedAt,
    unappliedHours: hours(unapplied),
    drainMarginHours: hours(drain),
    retentionHours: hours(unapplied + drain),
  };
}

/** The updater's mapping as the clock needs it. */
export interface UpdaterPosition {
  /** The mapping's State (Enabled, Disabled, Enabling, Disabling, Updating, …). */
  state: string;
  /** When the mapping last changed (its LastModified). */
  lastModified?: Date;
  /** The largest IteratorAge, in milliseconds, of the window before now (Enabled) or before lastModified. */
  iteratorAgeMs?: number;
  /** A backfill has enabled the updater before (the run lock's lastCompleted). */
  everEnabled: boolean;
  /** For a queue: when `iteratorAgeMs` (the oldest message's age) was measured, whatever the mapping's state. */
  queueAgeAt?: Date;
}

/** The oldest change the updater has not applied (see the file header), never later than the run's start. */
export function oldestUnappliedAt(position: UpdaterPosition, runStart: Date): Date {
  const age = position.iteratorAgeMs ?? 0;
  let at: Date;
  if (position.queueAgeAt) {
    at = position.everEnabled ? new Date(position.queueAgeAt.getTime() - age) : runStart;
  } else if (position.state === 'Disabled' || position.state === 'Disabling') {
    at =
      position.everEnabled && position.lastModified
        ? new Date(position.lastModified.getTime() - age)
        : runStart;
  } else {
    at = new Date(runStart.getTime() - age);
  }
  return at < runStart ? at : runStart;
}

/** Reads the updater's position from Lambda and CloudWatch, before the run pauses it. */
export async function readUpdaterPosition(deps: {
  lambda: LambdaClient;
  cloudwatch: CloudWatchClient;
  mappingUuid: string;
  updaterFunctionName: string;
  /** The SQS change queue's name, for an SQS source: its oldest message replaces the iterator age. */
  changeQueueName?: string;
  everEnabled: boolean;
  now: Date;
}): Promise<UpdaterPosition> {
  const mapping = await deps.lambda.send(new GetEventSourceMappingCommand({ UUID: deps.mappingUuid }));
  const state = mapping.State ?? 'Unknown';
  const lastModified = mapping.LastModified ? new Date(mapping.LastModified) : undefined;
  if (deps.changeQueueName !== undefined) {
    if (!deps.everEnabled) return { state, everEnabled: false };
    const ages = await metricMaxima(deps.cloudwatch, {
      namespace: 'AWS/SQS',
      metricName: 'ApproximateAgeOfOldestMessage',
      dimension: { Name: 'QueueName', Value: deps.changeQueueName },
      end: deps.now,
    });
    return {
      state,
      everEnabled: true,
      queueAgeAt: deps.now,
      // Seconds in CloudWatch; milliseconds here, as IteratorAge.
      ...(ages.length > 0 ? { iteratorAgeMs: Math.max(...ages) * 1000 } : {}),
    };
  }
  const paused = state === 'Disabled' || state === 'Disabling';
  // A mapping never enabled read nothing: its clock is the run's start, no metric needed.
  if (paused && !(deps.everEnabled && lastModified)) return { state, everEnabled: deps.everEnabled };
  const ages = await metricMaxima(deps.cloudwatch, {
    namespace: 'AWS/Lambda',
    metricName: 'IteratorAge',
    dimension: { Name: 'FunctionName', Value: deps.updaterFunctionName },
    end: paused && lastModified ? lastModified : deps.now,
  });
  return {
    state,
    ...(lastModified ? { lastModified } : {}),
    ...(ages.length > 0 ? { iteratorAgeMs: Math.max(...ages) } : {}),
    everEnabled: deps.everEnabled,
  };
}

/** The per-minute maxima of a metric over the window that ends at `end`. */
async function metricMaxima(
  cloudwatch: CloudWatchClient,
  metric: { namespace: string; metricName: string; dimension: { Name: string; Value: string }; end: Date },
): Promise<number[]> {
  const { Datapoints } = await cloudwatch.send(
    new GetMetricStatisticsCommand({
      Namespace: metric.namespace,
      MetricName: metric.metricName,
      Dimensions: [metric.dimension],
      StartTime: new Date(metric.end.getTime() - ITERATOR_AGE_WINDOW_MINUTES * 60_000),
      EndTime: metric.end,
      Period: 60,
      Statistics: ['Maximum'],
    }),
  );
  return (Datapoints ?? []).map((point) => point.Maximum ?? 0);
}

function hours(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
