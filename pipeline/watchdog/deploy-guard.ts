/**
 * Deploys leave the updater's state alone. CloudFormation declares the
 * mapping `Enabled: false` (the first backfill enables it), and every update
 * of the mapping's properties sends that flag again: without this guard, a
 * deploy that changes the batch size pauses production sync until someone
 * notices. The stack runs `resumeUpdaterAfterDeploy` after every create or
 * update of the mapping (a custom resource that depends on it), and it puts
 * the updater back exactly when the watchdog would call it paused outside a
 * backfill and no run holds the lock at all: a holder, live or failed, paused
 * it on purpose, and only that run may enable it again.
 */
import { UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import { UpdaterCheckError } from '../errors';
import { isRunningState, readUpdaterState, type UpdaterStateDeps } from './updater-state';

/** Mapping states that end by themselves; the guard waits for them to end. */
const TRANSITIONAL_STATES: ReadonlySet<string> = new Set(['Creating', 'Disabling', 'Updating']);

export interface DeployGuardDeps extends UpdaterStateDeps {
  /** How long to wait for a mapping in transition to settle. @default 120000 */
  settleTimeoutMs?: number;
  /** Between two reads of a mapping in transition. @default 5000 */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** What the guard did, in one sentence. */
export interface DeployGuardOutcome {
  enabled: boolean;
  reason: string;
}

/**
 * Enables the updater's mapping if a backfill completed once, no run holds
 * the lock and the mapping is disabled. Right after enabling it reads the
 * lock again: a backfill that took the lock and paused the updater in
 * between gets its pause back at once, before its scan starts.
 */
export async function resumeUpdaterAfterDeploy(deps: DeployGuardDeps): Promise<DeployGuardOutcome> {
  const { mappingUuid } = deps;
  const state = await settledState(deps);
  const { holder, lastCompleted, mappingState } = state;
  if (!lastCompleted) {
    return { enabled: false, reason: 'no backfill has completed yet; the first one enables the updater' };
  }
  if (holder) {
    return {
      enabled: false,
      reason:
        `backfill run ${holder.runId} holds the run lock (${holder.status}) and enables the updater when it ` +
        'completes',
    };
  }
  if (isRunningState(mappingState)) {
    return { enabled: false, reason: `the updater is ${mappingState} already` };
  }
  if (mappingState !== 'Disabled') {
    return {
      enabled: false,
      reason: `the updater's mapping is ${mappingState}, which a deploy cannot resume`,
    };
  }
  await setEnabled(deps, true);
  const after = await readUpdaterState(deps);
  if (after.holder) {
    await setEnabled(deps, false);
    return {
      enabled: false,
      reason: `backfill run ${after.holder.runId} took the run lock while the deploy resumed the updater; paused it again`,
    };
  }
  return {
    enabled: true,
    reason:
      `resumed the updater (mapping ${mappingUuid}): backfill run ${lastCompleted.runId} completed at ` +
      `${lastCompleted.at} and no run holds the lock`,
  };
}

async function settledState(deps: DeployGuardDeps) {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const pollMs = deps.pollMs ?? 5000;
  const timeoutMs = deps.settleTimeoutMs ?? 120_000;
  for (let waited = 0; ; waited += pollMs) {
    const state = await readUpdaterState(deps);
    if (!TRANSITIONAL_STATES.has(state.mappingState)) return state;
    if (waited + pollMs > timeoutMs) {
      throw new UpdaterCheckError(
        `The updater's event source mapping ${deps.mappingUuid} stayed ${state.mappingState} for ` +
          `${Math.round(waited / 1000)} seconds after the deploy changed it.`,
      );
    }
    await sleep(pollMs);
  }
}

async function setEnabled(deps: DeployGuardDeps, enabled: boolean): Promise<void> {
  try {
    await deps.lambda.send(new UpdateEventSourceMappingCommand({ UUID: deps.mappingUuid, Enabled: enabled }));
  } catch (error) {
    throw new UpdaterCheckError(
      `The updater's event source mapping ${deps.mappingUuid} cannot be ${enabled ? 'enabled' : 'disabled'}: ` +
        (error as Error).message,
      { cause: error },
    );
  }
}
