/**
 * Following an execution until it ends (a block redrawn in place on a
 * terminal, a line per change in a log), and what `start` and `redrive`
 * report after it: the summary or the failure, and the exit code.
 */
import type { SFNClient } from '@aws-sdk/client-sfn';
import { EXIT } from '../cli-error';
import type { CliIo } from '../io';
import { duration, fmt } from '../progress';
import { consoleUrl } from './arns';
import type { AwsTarget, ResolvedCloudDeps } from './aws';
import { CloudError, ExecutionNotFoundError } from './errors';
import {
  describeSnapshot,
  type ExecutionSnapshot,
  type ItemCounts,
  type MapRunView,
  redriveHint,
  TERMINAL,
  unsuccessfulItems,
} from './execution';
import { elapsedSeconds, failureSentence, statusBlock, statusLine, summaryLines } from './render';

/** What `followExecution` follows, where it writes, and with which clients and clocks. */
export interface FollowOptions {
  sfn: SFNClient;
  executionArn: string;
  target: AwsTarget;
  io: CliIo;
  /** Where the human output goes: stdout, or stderr under --json. */
  out: CliIo['stdout'];
  deps: ResolvedCloudDeps;
  /**
   * Right after RedriveExecution, DescribeExecution may still show the old
   * terminal status: until the redrive count reaches this, a terminal status
   * is not the end (for at most a minute).
   */
  minRedriveCount?: number;
}

/** The last snapshot seen, and whether following stopped before the end. */
export interface FollowResult {
  snapshot: ExecutionSnapshot;
  /** Ctrl-C stopped the following (the execution runs on). */
  interrupted: boolean;
}

const STALE_GRACE_MS = 60_000;

/**
 * Polls the execution and its Map Run until the execution ends or the signal
 * aborts. A terminal redraws one block in place; anything else gets one
 * timestamped line whenever the status or the counts change.
 */
export async function followExecution(options: FollowOptions): Promise<FollowResult> {
  const { sfn, executionArn, target, io, out, deps } = options;
  const tty = out.isTTY === true;
  const started = deps.now().getTime();
  let drawn = 0;
  let lastLine = '';
  let mapRunArn: string | undefined;
  let snapshot: ExecutionSnapshot | undefined;
  const draw = (current: ExecutionSnapshot) => {
    if (tty) {
      const width = (out.columns ?? 120) - 1;
      const lines = statusBlock(current, deps.now()).map((line) => line.slice(0, width));
      out.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      const line = statusLine(current);
      if (line !== lastLine) out.write(`${deps.now().toISOString()} ${line}\n`);
      lastLine = line;
    }
  };
  for (;;) {
    if (io.signal.aborted) break;
    try {
      const next = await describeSnapshot(sfn, executionArn, target, {
        signal: io.signal,
        ...(mapRunArn ? { mapRunArn } : {}),
      });
      snapshot = next;
      mapRunArn = next.mapRun?.mapRunArn;
    } catch (error) {
      if (io.signal.aborted) break;
      // A new execution may not be visible yet right after StartExecution.
      const young = deps.now().getTime() - started < STALE_GRACE_MS;
      if (!(young && error instanceof ExecutionNotFoundError)) {
        throw error;
      }
    }
    if (snapshot) {
      const stale =
        options.minRedriveCount !== undefined &&
        snapshot.redriveCount < options.minRedriveCount &&
        deps.now().getTime() - started < STALE_GRACE_MS;
      const ended = TERMINAL.has(snapshot.status) && !stale;
      if (!stale) draw(snapshot);
      if (ended) break;
    }
    await deps.sleep(deps.pollMs, io.signal);
  }
  if (!snapshot) {
    throw new CloudError(`stopped following before execution ${executionArn} could be described`);
  }
  return { snapshot, interrupted: io.signal.aborted && !TERMINAL.has(snapshot.status) };
}

/** The object `--json` prints for `start` and `redrive`. */
export interface FollowSummary {
  executionArn: string;
  consoleUrl: string;
  /** `ended`: followed to the end; `not-followed`: --no-follow; `interrupted`: Ctrl-C stopped following. */
  follow: 'ended' | 'not-followed' | 'interrupted';
  status?: string;
  startDate?: string;
  stopDate?: string;
  redriveCount?: number;
  mapRun?: MapRunView;
  output?: unknown;
  error?: string;
  cause?: string;
  redriveCommand?: string;
}

/**
 * After following: the output summary or the error and cause, the exit code,
 * the one stderr line on failure, and the --json object as the last stdout line.
 */
export function reportFollowed(
  result: FollowResult,
  options: { io: CliIo; out: CliIo['stdout']; target: AwsTarget; json: boolean; now: Date },
): number {
  const { snapshot } = result;
  const { io, out, target } = options;
  const url = consoleUrl(snapshot.executionArn, target.region);
  const summary: FollowSummary = {
    executionArn: snapshot.executionArn,
    consoleUrl: url,
    follow: result.interrupted ? 'interrupted' : 'ended',
    status: snapshot.status,
    ...(snapshot.startDate ? { startDate: snapshot.startDate } : {}),
    ...(snapshot.stopDate ? { stopDate: snapshot.stopDate } : {}),
    redriveCount: snapshot.redriveCount,
    ...(snapshot.mapRun ? { mapRun: snapshot.mapRun } : {}),
    ...(snapshot.output !== undefined ? { output: snapshot.output } : {}),
    ...(snapshot.error ? { error: snapshot.error } : {}),
    ...(snapshot.cause ? { cause: snapshot.cause } : {}),
  };
  let code: number;
  if (result.interrupted) {
    out.write(
      `Stopped following; the execution keeps running. See it with: ddb2os status ${snapshot.executionArn}\n`,
    );
    code = EXIT.interrupted;
  } else if (snapshot.status === 'SUCCEEDED') {
    out.write(`\nSUCCEEDED in ${duration(elapsedSeconds(snapshot, options.now))}\n`);
    for (const line of summaryLines(snapshot.output)) out.write(`${line}\n`);
    code = EXIT.ok;
  } else {
    const hint = redriveHint(snapshot, target);
    if (hint) summary.redriveCommand = hint;
    out.write(`\n${snapshot.status} after ${duration(elapsedSeconds(snapshot, options.now))}\n`);
    if (snapshot.error) out.write(`  error  ${snapshot.error}\n`);
    if (snapshot.cause) out.write(`  cause  ${snapshot.cause}\n`);
    if (hint) {
      out.write(
        `  ${fmt(unsuccessfulItems(snapshot.mapRun?.itemCounts as ItemCounts))} segment(s) did not succeed; ` +
          `rerun only those, from their checkpoints: ${hint}\n`,
      );
    }
    io.stderr.write(`ddb2os: ${failureSentence(snapshot, hint)}\n`);
    code = EXIT.failed;
  }
  if (options.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  return code;
}
