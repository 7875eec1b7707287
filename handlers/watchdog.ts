/**
 * The watchdog Lambda, every 5 minutes (an EventBridge rule): reads the
 * updater's mapping, the run lock and the lock holder's execution, and
 * publishes UpdaterPausedOutsideBackfill and UpdaterProblem (0 or 1, with the
 * table as a dimension) for the stack's alarms. Each finding is logged as one
 * sentence that says what to run. A run that cannot check throws and
 * publishes nothing: the paused alarm treats a missing data point as
 * breaching. The rules are in pipeline/watchdog/watchdog.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { TABLE_DIMENSION, WATCHDOG_METRICS } from '../pipeline/contract/metrics';
import { updaterStateDeps } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readWatchdogConfig } from '../pipeline/lambda/config';
import { readUpdaterState, type UpdaterStateDeps } from '../pipeline/watchdog/updater-state';
import { judgeUpdater, type UpdaterVerdict } from '../pipeline/watchdog/watchdog';

const logger = new Logger();
const metrics = new Metrics();
const tracer = new Tracer();

/** Clients and names, once per execution environment. */
const started = coldStart(async (): Promise<UpdaterStateDeps> => {
  const config = readWatchdogConfig();
  metrics.setDefaultDimensions({ [TABLE_DIMENSION]: config.table });
  return updaterStateDeps(tracer, config);
});

export const handler = async (_event: unknown, context: Context): Promise<UpdaterVerdict> => {
  logger.addContext(context);
  try {
    const state = await readUpdaterState(await started());
    const verdict = judgeUpdater(state);
    metrics.addMetric(
      WATCHDOG_METRICS.updaterPausedOutsideBackfill,
      MetricUnit.Count,
      verdict.pausedOutsideBackfill ? 1 : 0,
    );
    metrics.addMetric(WATCHDOG_METRICS.updaterProblem, MetricUnit.Count, verdict.problem ? 1 : 0);
    for (const finding of verdict.findings) logger.error(finding, { state });
    if (verdict.findings.length === 0) {
      logger.info(
        verdict.pausedOnPurpose
          ? `the updater is paused on purpose: ${verdict.pausedOnPurpose}`
          : 'the updater runs',
        { state },
      );
    }
    return verdict;
  } catch (error) {
    logger.error(
      'the watchdog could not check the updater; its alarm counts the missing data point',
      error as Error,
    );
    throw error;
  } finally {
    metrics.publishStoredMetrics();
  }
};
