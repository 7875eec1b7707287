/**
 * What the cloud commands (`start`, `status`, `redrive`, `plan`) share: AWS
 * clients built from `--region` / `--profile`, Step Functions ARNs, the state
 * machine ARN from a stack output, AWS errors as one sentence, and following
 * an execution and its Map Run until it ends.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  DescribeMapRunCommand,
  type DescribeMapRunOutput,
  ListMapRunsCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { fromIni } from '@aws-sdk/credential-providers';
import { type FieldConflictCount, fieldConflictLines } from '../handlers/lib/field-conflicts';
import type { FlagSpec, ParsedArgs } from './args';
import { optionalString } from './args';
import { EXIT, UsageError } from './cli-error';
import type { CliIo } from './io';
import { bar, duration, fmt } from './progress';

/** Where the AWS calls go: a region and, optionally, a named profile of ~/.aws. */
export interface AwsTarget {
  region: string;
  profile?: string;
}

/** The clients and clocks a cloud command uses; tests hand in stubs (Step Functions has no local engine). */
export interface CloudDeps {
  sfn?: (target: AwsTarget) => SFNClient;
  cloudFormation?: (target: AwsTarget) => CloudFormationClient;
  dynamodb?: (target: AwsTarget & { endpoint?: string }) => DynamoDBClient;
  /** Waits between polls; resolves early when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => Date;
  /** The region configured for the profile in ~/.aws/config, the last place a region is looked for. */
  configuredRegion?: (profile: string | undefined) => Promise<string | undefined>;
  /** Milliseconds between two polls while following (default 5 s). */
  pollMs?: number;
}

/** The same deps with every default filled in. */
export type ResolvedCloudDeps = Required<CloudDeps>;

export const POLL_MS = 5_000;

export function withDefaults(deps: CloudDeps = {}): ResolvedCloudDeps {
  return {
    sfn: deps.sfn ?? ((target) => new SFNClient(clientConfig(target))),
    cloudFormation: deps.cloudFormation ?? ((target) => new CloudFormationClient(clientConfig(target))),
    dynamodb:
      deps.dynamodb ??
      ((target) =>
        new DynamoDBClient({
          ...clientConfig(target),
          ...(target.endpoint ? { endpoint: target.endpoint } : {}),
        })),
    sleep: deps.sleep ?? abortableSleep,
    now: deps.now ?? (() => new Date()),
    configuredRegion: deps.configuredRegion ?? regionFromConfigFile,
    pollMs: deps.pollMs ?? POLL_MS,
  };
}

function clientConfig(target: AwsTarget): { region: string; credentials?: ReturnType<typeof fromIni> } {
  return target.profile
    ? { region: target.region, credentials: fromIni({ profile: target.profile }) }
    : { region: target.region };
}

async function regionFromConfigFile(profile: string | undefined): Promise<string | undefined> {
  try {
    // The SDK's own region chain reads [profile] region from ~/.aws/config.
    return await new SFNClient(profile ? { profile } : {}).config.region();
  } catch {
    return undefined;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `--region` and `--profile`, the same for every cloud command. */
export const AWS_FLAGS: Record<string, FlagSpec> = {
  region: {
    type: 'string',
    value: 'REGION',
    description: 'AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the ARN, then the profile)',
  },
  profile: { type: 'string', value: 'NAME', description: 'named profile of ~/.aws/config to use' },
};

export const AWS_DETAILS = [
  'Region: --region, else AWS_REGION or AWS_DEFAULT_REGION, else the region inside the ARN',
  'argument, else the region of the profile in ~/.aws/config. Credentials: the AWS SDK default',
  'chain, or --profile NAME (its ~/.aws/credentials or config entry, SSO included).',
].join('\n');

// --- ARNs ---------------------------------------------------------------------

export interface StatesArn {
  arn: string;
  partition: string;
  region: string;
  account: string;
  resource: 'execution' | 'stateMachine' | 'express';
  /** The state machine name (with `/<Map label>` for a Map Run's child execution). */
  stateMachineName: string;
  /** The execution name (execution ARNs only). */
  executionName?: string;
}

const STATES_ARN =
  /^arn:(aws(?:-[a-z]+)*):states:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):(execution|stateMachine|express):([^:\s]+)(?::([^:\s]+))?$/;

/**
 * Parses a Step Functions ARN. A malformed one is a UsageError that names the
 * argument (`what`) and shows the expected shape.
 */
export function parseStatesArn(value: string, what: string, kind: 'execution' | 'stateMachine'): StatesArn {
  const match = STATES_ARN.exec(value.trim());
  const shape =
    kind === 'execution'
      ? 'arn:aws:states:<region>:<account>:execution:<state machine>:<execution name>'
      : 'arn:aws:states:<region>:<account>:stateMachine:<name>';
  const resource = match?.[4] as StatesArn['resource'] | undefined;
  const fits =
    match !== null &&
    (kind === 'execution'
      ? (resource === 'execution' || resource === 'express') && match[6] !== undefined
      : resource === 'stateMachine');
  if (!match || !fits) {
    throw new UsageError(`${what} "${value}" is not a Step Functions ${kindName(kind)} ARN (${shape})`);
  }
  return {
    arn: value.trim(),
    partition: match[1] as string,
    region: match[2] as string,
    account: match[3] as string,
    resource: resource as StatesArn['resource'],
    stateMachineName: match[5] as string,
    ...(kind === 'execution' ? { executionName: match[6] as string } : {}),
  };
}

function kindName(kind: 'execution' | 'stateMachine'): string {
  return kind === 'execution' ? 'execution' : 'state machine';
}

/** The execution's page in the Step Functions console. */
export function consoleUrl(executionArn: string, region: string): string {
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

// --- region and clients -------------------------------------------------------

/**
 * The region of a command: `--region`, else AWS_REGION / AWS_DEFAULT_REGION,
 * else the region inside an ARN argument, else the profile's configured
 * region. None → UsageError.
 */
export async function resolveTarget(
  args: ParsedArgs,
  io: CliIo,
  deps: ResolvedCloudDeps,
  options: { arn?: StatesArn; fallback?: string } = {},
): Promise<AwsTarget> {
  const profile = optionalString(args, 'profile');
  const flag = optionalString(args, 'region');
  if (flag !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(flag)) {
    throw new UsageError(`--region "${flag}" is not an AWS region name (e.g. us-east-1)`);
  }
  const region =
    flag ||
    io.env.AWS_REGION ||
    io.env.AWS_DEFAULT_REGION ||
    options.arn?.region ||
    (await deps.configuredRegion(profile ?? io.env.AWS_PROFILE)) ||
    options.fallback;
  if (!region) {
    throw new UsageError(
      'no AWS region: pass --region, set AWS_REGION, or configure a region for the profile',
    );
  }
  return profile ? { region, profile } : { region };
}

// --- errors -------------------------------------------------------------------

/** An AWS call failed; the message is one sentence for the operator, the SDK error is the cause. */
export class CloudError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CloudError';
  }
}

/** DescribeExecution answered ExecutionDoesNotExist. */
export class ExecutionNotFoundError extends CloudError {
  constructor(executionArn: string, region: string) {
    super(`execution ${executionArn} not found in ${region}`);
    this.name = 'ExecutionNotFoundError';
  }
}

export function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'name' in error
    ? String((error as { name: unknown }).name)
    : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The errors every AWS call can meet (credentials, expired tokens, access
 * denied) as one sentence. Anything else keeps its own message, prefixed with
 * the error's name so that it can be looked up.
 */
export function explainAwsError(error: unknown, target: AwsTarget): Error {
  if (error instanceof CloudError || error instanceof UsageError) return error;
  const name = errorName(error) ?? 'Error';
  const message = errorMessage(error);
  if (name === 'CredentialsProviderError') {
    return new CloudError(
      target.profile
        ? `no usable AWS credentials for profile "${target.profile}": ${message}`
        : 'no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile',
    );
  }
  if (/ExpiredToken|TokenRefreshRequired/.test(name) || /token.*expired/i.test(message)) {
    return new CloudError(
      `the AWS credentials have expired${target.profile ? ` (profile ${target.profile})` : ''}: refresh them (e.g. aws sso login) and try again`,
    );
  }
  if (/UnrecognizedClient|InvalidClientTokenId|InvalidSignature|SignatureDoesNotMatch/.test(name)) {
    return new CloudError(`AWS rejected the credentials in ${target.region}: ${message}`);
  }
  if (/AccessDenied/.test(name)) {
    return new CloudError(`access denied in ${target.region}: ${message}`);
  }
  if (name === 'AbortError') return error as Error;
  return new CloudError(`${name}: ${message}`, { cause: error });
}

// --- the state machine ARN from a stack ---------------------------------------

/** The `StateMachineArn` output of a CloudFormation stack (the ddb2os stack declares it). */
export async function stateMachineArnFromStack(
  cloudFormation: CloudFormationClient,
  stackName: string,
  target: AwsTarget,
): Promise<string> {
  let outputs: { OutputKey?: string; OutputValue?: string }[];
  try {
    const answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = answer.Stacks?.[0]?.Outputs ?? [];
  } catch (error) {
    if (errorName(error) === 'ValidationError' && /does not exist/.test(errorMessage(error))) {
      throw new CloudError(`stack ${stackName} not found in ${target.region}`);
    }
    throw explainAwsError(error, target);
  }
  const value = outputs.find((output) => output.OutputKey === 'StateMachineArn')?.OutputValue;
  if (!value) {
    const keys = outputs.map((output) => output.OutputKey).filter(Boolean);
    throw new CloudError(
      `stack ${stackName} in ${target.region} has no StateMachineArn output ` +
        `(${keys.length > 0 ? `its outputs: ${keys.join(', ')}` : 'it has no outputs'}); is it a ddb2os stack?`,
    );
  }
  return value;
}

// --- snapshots of an execution and its Map Run ---------------------------------

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

// --- rendering ----------------------------------------------------------------

/** `running 8 · pending 40 · failed 0 · timed out 0 · aborted 0` (the console's Map Run counts). */
export function countsText(counts: ItemCounts): string {
  const parts = [
    `running ${fmt(counts.running)}`,
    `pending ${fmt(counts.pending)}`,
    `failed ${fmt(counts.failed)}`,
    `timed out ${fmt(counts.timedOut)}`,
    `aborted ${fmt(counts.aborted)}`,
  ];
  if (counts.pendingRedrive > 0) parts.push(`pending redrive ${fmt(counts.pendingRedrive)}`);
  if (counts.failuresNotRedrivable > 0) parts.push(`not redrivable ${fmt(counts.failuresNotRedrivable)}`);
  return parts.join(' · ');
}

/** `52/100 segments succeeded` */
export function succeededText(counts: ItemCounts): string {
  return `${fmt(counts.succeeded)}/${fmt(counts.total)} segments succeeded`;
}

export function mapRunBar(counts: ItemCounts, width = 30): string {
  return bar(counts.total > 0 ? counts.succeeded / counts.total : 0, width);
}

function elapsedSeconds(snapshot: ExecutionSnapshot, now: Date): number {
  if (!snapshot.startDate) return 0;
  const end = snapshot.stopDate ? Date.parse(snapshot.stopDate) : now.getTime();
  return Math.max(0, (end - Date.parse(snapshot.startDate)) / 1000);
}

const WAITING_FOR_MAP_RUN =
  'Map Run not started yet (the workflow pauses the updater and plans the segments first)';

/** The block a terminal shows and redraws while following. */
export function statusBlock(snapshot: ExecutionSnapshot, now: Date): string[] {
  const head = `${snapshot.status}  ${duration(elapsedSeconds(snapshot, now))}${
    snapshot.redriveCount > 0 ? `  (redrive ${snapshot.redriveCount})` : ''
  }`;
  if (!snapshot.mapRun) return [head, WAITING_FOR_MAP_RUN];
  const { itemCounts } = snapshot.mapRun;
  return [
    head,
    `Map Run ${snapshot.mapRun.status}  ${mapRunBar(itemCounts)}  ${succeededText(itemCounts)}`,
    `  ${countsText(itemCounts)}`,
  ];
}

/** The one line a log gets when something changed (status, Map Run status or counts). */
export function statusLine(snapshot: ExecutionSnapshot): string {
  if (!snapshot.mapRun) return `${snapshot.status} ${WAITING_FOR_MAP_RUN}`;
  const { itemCounts } = snapshot.mapRun;
  return `${snapshot.status} Map Run ${snapshot.mapRun.status}: ${succeededText(itemCounts)} · ${countsText(itemCounts)}`;
}

const SUMMARY_LABELS: Record<string, string> = {
  segments: 'segments',
  scanned: 'items scanned',
  created: 'documents created',
  alreadyPresent: 'already present',
  failed: 'items failed (dead-lettered)',
  skipped: 'items skipped',
  retried: 'bulk retries',
  durationSeconds: 'duration',
};

/** The execution output (the run summary) as aligned `label  value` lines. */
export function summaryLines(output: unknown): string[] {
  if (output === null || typeof output !== 'object' || Array.isArray(output)) {
    return output === undefined ? [] : [`  output  ${JSON.stringify(output)}`];
  }
  const entries = Object.entries(output as Record<string, unknown>).filter(
    ([key]) => key !== 'runId' && key !== 'durationHours' && key !== 'fieldConflicts',
  );
  const conflicts = (output as { fieldConflicts?: unknown }).fieldConflicts;
  const width = Math.max(...entries.map(([key]) => (SUMMARY_LABELS[key] ?? key).length), 0);
  return entries
    .map(([key, value]) => {
      const label = (SUMMARY_LABELS[key] ?? key).padEnd(width);
      const text =
        key === 'durationSeconds' && typeof value === 'number'
          ? `${duration(value)} (${fmt(value)} s)`
          : typeof value === 'number'
            ? fmt(value)
            : typeof value === 'string'
              ? value
              : JSON.stringify(value);
      return `  ${label}  ${text}`;
    })
    .concat(Array.isArray(conflicts) ? fieldConflictLines(conflicts as FieldConflictCount[]) : []);
}

/** Error and cause on one line: causes can hold newlines and JSON. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

// --- following ----------------------------------------------------------------

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

/** `execution FAILED: States.ExceedToleratedFailureThreshold: <cause>; rerun the failed segments with: …` */
export function failureSentence(snapshot: ExecutionSnapshot, hint: string | undefined): string {
  const parts = [`execution ${snapshot.status}`];
  if (snapshot.error) parts.push(oneLine(snapshot.error));
  if (snapshot.cause) parts.push(oneLine(snapshot.cause));
  const head = parts.join(': ');
  return hint ? `${head}; rerun the failed segments with: ${hint}` : head;
}
