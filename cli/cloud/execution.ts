/**
 * One look at an execution and its Map Run (what `status` prints and what
 * `start` and `redrive` poll), and what a failed one can be redriven with.
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  DescribeMapRunCommand,
  type DescribeMapRunOutput,
  ListMapRunsCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { AwsTarget } from './aws';
import { ExecutionNotFoundError, errorName, explainAwsError } from './errors';

/** A Map Run's item counts, as DescribeMapRun gives them. */
export interface ItemCounts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  aborted: number;
  total: number;
  /** Unsuccessful items waiting to run again after a redrive. */
  pendingRedrive: number;
  /** Unsuccessful items a redrive cannot rerun. */
  failuresNotRedrivable: number;
}

/** What a snapshot keeps of a Map Run. */
export interface MapRunView {
  mapRunArn: string;
  status: string;
  startDate?: string;
  stopDate?: string;
  maxConcurrency?: number;
  redriveCount: number;
  itemCounts: ItemCounts;
}

/** One look at an execution: what `status` prints and what `start` and `redrive` poll. */
export interface ExecutionSnapshot {
  executionArn: string;
  name?: string;
  stateMachineArn?: string;
  status: string;
  startDate?: string;
  stopDate?: string;
  redriveCount: number;
  redriveStatus?: string;
  redriveStatusReason?: string;
  /** The output, parsed when it is JSON. */
  output?: unknown;
  error?: string;
  cause?: string;
  mapRun?: MapRunView;
}

/** The statuses after which an execution does not change (unless redriven). */
export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

/**
 * Describes the execution and its Map Run (the latest one ListMapRuns names).
 * `mapRunArn` skips the listing once the Map Run is known.
 */
export async function describeSnapshot(
  sfn: SFNClient,
  executionArn: string,
  target: AwsTarget,
  options: { signal?: AbortSignal; mapRunArn?: string } = {},
): Promise<ExecutionSnapshot> {
  const send = { abortSignal: options.signal };
  let execution: DescribeExecutionOutput;
  try {
    execution = await sfn.send(new DescribeExecutionCommand({ executionArn }), send);
  } catch (error) {
    if (errorName(error) === 'ExecutionDoesNotExist') {
      throw new ExecutionNotFoundError(executionArn, target.region);
    }
    throw explainAwsError(error, target);
  }
  let mapRunArn = options.mapRunArn;
  let mapRun: DescribeMapRunOutput | undefined;
  try {
    if (!mapRunArn) {
      const list = await sfn.send(new ListMapRunsCommand({ executionArn }), send);
      const latest = [...(list.mapRuns ?? [])].sort(
        (a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0),
      )[0];
      mapRunArn = latest?.mapRunArn;
    }
    if (mapRunArn) mapRun = await sfn.send(new DescribeMapRunCommand({ mapRunArn }), send);
  } catch (error) {
    throw explainAwsError(error, target);
  }
  return toSnapshot(execution, mapRun);
}

function toSnapshot(execution: DescribeExecutionOutput, mapRun?: DescribeMapRunOutput): ExecutionSnapshot {
  const snapshot: ExecutionSnapshot = {
    executionArn: execution.executionArn ?? '',
    status: execution.status ?? 'UNKNOWN',
    redriveCount: execution.redriveCount ?? 0,
  };
  if (execution.name) snapshot.name = execution.name;
  if (execution.stateMachineArn) snapshot.stateMachineArn = execution.stateMachineArn;
  if (execution.startDate) snapshot.startDate = iso(execution.startDate);
  if (execution.stopDate) snapshot.stopDate = iso(execution.stopDate);
  if (execution.redriveStatus) snapshot.redriveStatus = execution.redriveStatus;
  if (execution.redriveStatusReason) snapshot.redriveStatusReason = execution.redriveStatusReason;
  if (execution.output !== undefined) snapshot.output = parseJson(execution.output);
  if (execution.error) snapshot.error = execution.error;
  if (execution.cause) snapshot.cause = execution.cause;
  if (mapRun?.mapRunArn) {
    const counts = mapRun.itemCounts;
    snapshot.mapRun = {
      mapRunArn: mapRun.mapRunArn,
      status: mapRun.status ?? 'UNKNOWN',
      ...(mapRun.startDate ? { startDate: iso(mapRun.startDate) } : {}),
      ...(mapRun.stopDate ? { stopDate: iso(mapRun.stopDate) } : {}),
      ...(mapRun.maxConcurrency !== undefined ? { maxConcurrency: mapRun.maxConcurrency } : {}),
      redriveCount: mapRun.redriveCount ?? 0,
      itemCounts: {
        pending: counts?.pending ?? 0,
        running: counts?.running ?? 0,
        succeeded: counts?.succeeded ?? 0,
        failed: counts?.failed ?? 0,
        timedOut: counts?.timedOut ?? 0,
        aborted: counts?.aborted ?? 0,
        total: counts?.total ?? 0,
        pendingRedrive: counts?.pendingRedrive ?? 0,
        failuresNotRedrivable: counts?.failuresNotRedrivable ?? 0,
      },
    };
  }
  return snapshot;
}

function iso(date: Date | string): string {
  return date instanceof Date ? date.toISOString() : new Date(date).toISOString();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Items that did not succeed: what a redrive runs again. */
export function unsuccessfulItems(counts: ItemCounts): number {
  return counts.failed + counts.timedOut + counts.aborted;
}

/** The redrive command to suggest, when the Map Run has failed items and the execution can be redriven. */
export function redriveHint(snapshot: ExecutionSnapshot, target: AwsTarget): string | undefined {
  if (snapshot.status === 'SUCCEEDED' || !TERMINAL.has(snapshot.status)) return undefined;
  if (!snapshot.mapRun || unsuccessfulItems(snapshot.mapRun.itemCounts) === 0) return undefined;
  if (snapshot.redriveStatus === 'NOT_REDRIVABLE') return undefined;
  return `ddb2os redrive ${snapshot.executionArn}${target.profile ? ` --profile ${target.profile}` : ''}`;
}
