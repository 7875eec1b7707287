/**
 * The deploy guard: the onEvent handler of a custom resource (CDK Provider)
 * that depends on the updater's event source mapping and runs after every
 * create and update of it. It puts the updater back when a deploy paused it
 * outside a backfill (pipeline/watchdog/deploy-guard.ts).
 *
 * It never fails a deploy: a failure would roll the stack back, and the
 * rollback's update runs the guard again, so the same failure would leave the
 * stack in UPDATE_ROLLBACK_FAILED. It logs what went wrong and what to run
 * instead, and the watchdog's alarm fires within minutes.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { describeError } from '../pipeline/errors';
import { updaterStateDeps } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readWatchdogConfig } from '../pipeline/lambda/config';
import { resumeUpdaterAfterDeploy } from '../pipeline/watchdog/deploy-guard';
import type { UpdaterStateDeps } from '../pipeline/watchdog/updater-state';

const logger = new Logger();
const tracer = new Tracer();

/** Clients and names, once per execution environment. */
const started = coldStart(
  async (): Promise<UpdaterStateDeps> => updaterStateDeps(tracer, readWatchdogConfig()),
);

/** The Provider framework's answer: a fixed physical id (an update never replaces it) and what the guard did. */
export interface DeployGuardResponse {
  PhysicalResourceId: string;
  Data: { Enabled: string; Outcome: string };
}

export const handler = async (
  event: CloudFormationCustomResourceEvent,
  context: Context,
): Promise<DeployGuardResponse> => {
  logger.addContext(context);
  const physicalResourceId = 'updater-deploy-guard';
  if (event.RequestType === 'Delete') {
    return { PhysicalResourceId: physicalResourceId, Data: { Enabled: 'false', Outcome: 'deleted' } };
  }
  try {
    const outcome = await resumeUpdaterAfterDeploy(await started());
    logger.info(`deploy guard: ${outcome.reason}`);
    return {
      PhysicalResourceId: physicalResourceId,
      Data: { Enabled: String(outcome.enabled), Outcome: outcome.reason },
    };
  } catch (error) {
    const message =
      `The deploy could not check or resume the stream updater (${describeError(error)}); if the updater stays ` +
      "paused, the UpdaterPausedOutsideBackfill alarm fires and the watchdog's log says what to run.";
    logger.error(message, error as Error);
    return { PhysicalResourceId: physicalResourceId, Data: { Enabled: 'false', Outcome: message } };
  }
};
