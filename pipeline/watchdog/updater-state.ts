/**
 * Is the stream updater running when it should? The updater's event source
 * mapping is paused on purpose in two cases only: before the first backfill
 * (it is created disabled, and the first backfill enables it) and while a
 * backfill runs (the run that holds the run lock paused it). Anything else,
 * a deploy that sent `Enabled: false` again, someone who paused it and
 * forgot, a backfill that failed and was never redriven, leaves changes in
 * the stream, which trims them after 24 hours, and a paused mapping emits no
 * iterator age: nothing else would notice. So the watchdog compares three
 * things: the mapping's state, the run lock (pipeline/progress/run-lock.ts)
 * and, for a holder, whether its execution still runs.
 *
 * A holder that no longer runs (its execution failed, or a local run's lease
 * expired) does not excuse a paused updater: the watchdog reports it, and the
 * way out is to finish that backfill, not to enable the updater under it
 * (the run's scan would then race the updater's deletes).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetEventSourceMappingCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { UpdaterCheckError } from '../errors';
import { type RunLock, type RunLockState, readRunLock } from '../progress/run-lock';

/** The clients and names the watchdog and the deploy guard read the updater's state with. */
export interface UpdaterStateDeps {
  lambda: LambdaClient;
  sfn: SFNClient;
  dynamodb: DynamoDBClient;
  /** The progress table, which holds the run lock. */
  progressTable: string;
  /** The source table: the lock is per table. */
  table: string;
  /** The updater's event source mapping. */
  mappingUuid: string;
  /** Milliseconds since the epoch, to judge a local run's lease. @default Date.now */
  now?: () => number;
}

/** The lock's holder, and whether it still runs. */
export interface LockHolder extends RunLock {
  live: boolean;
  /** Why it counts as live or not, for a person: `execution RUNNING`, `lease expired at …`. */
  status: string;
}

/** What the watchdog judges. */
export interface UpdaterState {
  table: string;
  mappingUuid: string;
  /** GetEventSourceMapping's `State`: Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting. */
  mappingState: string;
  /** GetEventSourceMapping's `LastProcessingResult`, e.g. `OK`, `PROBLEM: Function call failed`. */
  lastProcessingResult?: string;
  /** GetEventSourceMapping's `EventSourceArn`: the change source (a DynamoDB or Kinesis stream, an SQS queue). */
  eventSourceArn?: string;
  lastCompleted?: RunLockState['lastCompleted'];
  holder?: LockHolder;
}

/**
 * The mapping states in which the updater applies changes or is about to.
 * `Updating` is a change of another setting: the mapping keeps its enabled
 * flag through it, and if the update leaves it disabled, the next check (5
 * minutes later) sees `Disabled`.
 */
const RUNNING_STATES: ReadonlySet<string> = new Set(['Enabled', 'Enabling', 'Updating']);

/** Whether a mapping in `state` applies changes (or is about to). */
export function isRunningState(state: string): boolean {
  return RUNNING_STATES.has(state);
}

/** Reads the mapping, the run lock and, for a holder, its execution; throws UpdaterCheckError naming what could not be read. */
export async function readUpdaterState(deps: UpdaterStateDeps): Promise<UpdaterState> {
  const { table, mappingUuid } = deps;
  const [mapping, lock] = await Promise.all([
    deps.lambda.send(new GetEventSourceMappingCommand({ UUID: mappingUuid })).catch((error: unknown) => {
      throw new UpdaterCheckError(
        `The updater's event source mapping ${mappingUuid} cannot be read: ${(error as Error).message}`,
        { cause: error },
      );
    }),
    readRunLock(deps.dynamodb, deps.progressTable, table).catch((error: unknown) => {
      throw new UpdaterCheckError(
        `The run lock of table ${table} cannot be read from the progress table ${deps.progressTable}: ` +
          (error as Error).message,
        { cause: error },
      );
    }),
  ]);
  return {
    table,
    mappingUuid,
    mappingState: mapping.State ?? 'unknown',
    ...(mapping.LastProcessingResult ? { lastProcessingResult: mapping.LastProcessingResult } : {}),
    ...(mapping.EventSourceArn ? { eventSourceArn: mapping.EventSourceArn } : {}),
    ...(lock.lastCompleted ? { lastCompleted: lock.lastCompleted } : {}),
    ...(lock.holder ? { holder: await judgeHolder(lock.holder, deps) } : {}),
  };
}

/**
 * A cloud holder runs while its execution is RUNNING (a redrive makes a
 * failed one RUNNING again); a local holder while its lease lasts. A holder
 * with neither cannot be shown to run, so it counts as stale.
 */
async function judgeHolder(holder: RunLock, deps: UpdaterStateDeps): Promise<LockHolder> {
  if (holder.executionArn) {
    try {
      const { status } = await deps.sfn.send(
        new DescribeExecutionCommand({ executionArn: holder.executionArn }),
      );
      return { ...holder, live: status === 'RUNNING', status: `execution ${status ?? 'unknown'}` };
    } catch (error) {
      // Step Functions forgets an execution 90 days after it ended.
      if ((error as Error).name === 'ExecutionDoesNotExist') {
        return { ...holder, live: false, status: 'execution no longer exists' };
      }
      throw new UpdaterCheckError(
        `Whether backfill run ${holder.runId} still runs cannot be read (DescribeExecution of ` +
          `${holder.executionArn}): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  if (holder.expiresAt) {
    const expires = Date.parse(holder.expiresAt);
    const live = expires > (deps.now ?? Date.now)();
    return { ...holder, live, status: `${live ? 'lease until' : 'lease expired at'} ${holder.expiresAt}` };
  }
  return { ...holder, live: false, status: 'neither an execution nor a lease recorded' };
}
