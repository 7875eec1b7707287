/**
 * The watchdog's verdict on the updater's state (updater-state.ts): the two
 * values it publishes every 5 minutes, and one sentence per finding that says
 * what is wrong and what to run.
 *
 * Before the first backfill completes, a paused updater is how ddb2os is
 * deployed (the mapping is created disabled so that the first backfill starts
 * from an empty index with the stream waiting), so it publishes 0: alarming
 * then would fire on every new deployment. A first backfill that fails has
 * its own alarm (the failed execution).
 */
import { changeSourceOfArn, WHERE_CHANGES_WAIT } from '../contract/change-source';
import { isRunningState, type UpdaterState } from './updater-state';

/** What the watchdog publishes and logs. */
export interface UpdaterVerdict {
  /** A backfill has completed once, the updater is paused and no live run holds the lock. */
  pausedOutsideBackfill: boolean;
  /** The mapping's last processing result says PROBLEM. */
  problem: boolean;
  /** One sentence per finding: what is wrong and what to run. Empty when all is well. */
  findings: string[];
  /** Why a paused updater is fine right now, when it is paused: before the first backfill, or during one. */
  pausedOnPurpose?: string;
}

/** Judges the updater's state; see the module comment for the rules. */
export function judgeUpdater(state: UpdaterState): UpdaterVerdict {
  const { table, mappingUuid, mappingState, holder, lastCompleted } = state;
  const findings: string[] = [];
  const running = isRunningState(mappingState);
  let pausedOnPurpose: string | undefined;
  let pausedOutsideBackfill = false;
  if (!running && !lastCompleted) {
    pausedOnPurpose = `no backfill of table ${table} has completed yet; the first one enables the updater`;
  } else if (!running && holder?.live) {
    pausedOnPurpose = `backfill run ${holder.runId} is running (${holder.status}) and enables the updater when it completes`;
  } else if (!running) {
    pausedOutsideBackfill = true;
    const updater = `The stream updater of table ${table} (event source mapping ${mappingUuid}) is ${mappingState}`;
    const retention = `changes wait in ${WHERE_CHANGES_WAIT[changeSourceOfArn(state.eventSourceArn)]}`;
    if (holder?.executionArn) {
      findings.push(
        `${updater} because backfill run ${holder.runId} did not finish (${holder.status}); ${retention}. ` +
          `Finish that run: aws stepfunctions redrive-execution --execution-arn ${holder.executionArn} ` +
          '(or start a new backfill, which takes its lock over); it enables the updater when it completes.',
      );
    } else if (holder) {
      findings.push(
        `${updater} because local backfill run ${holder.runId} did not finish (${holder.status}); ${retention}. ` +
          `Start the backfill again (ddb2os run --table ${table} …, which takes its lock over); it enables ` +
          'the updater when it completes.',
      );
    } else {
      findings.push(
        `${updater} while no backfill runs (the last one, ${lastCompleted?.runId}, completed at ` +
          `${lastCompleted?.at}); ${retention}. Resume it: aws lambda update-event-source-mapping ` +
          `--uuid ${mappingUuid} --enabled`,
      );
    }
  }
  const problem = state.lastProcessingResult?.startsWith('PROBLEM') ?? false;
  if (problem) {
    findings.push(
      `The stream updater of table ${table} (event source mapping ${mappingUuid}) reports ` +
        `"${state.lastProcessingResult}": read the updater function's logs, fix the cause (a permission, ` +
        'the function failing as a whole); the mapping retries on its own.',
    );
  }
  return { pausedOutsideBackfill, problem, findings, ...(pausedOnPurpose ? { pausedOnPurpose } : {}) };
}
