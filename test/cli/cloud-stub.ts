/**
 * Step Functions and CloudFormation have no local engine: these stubs stand in
 * for them at the SDK level. A stub client's `send` answers by command name
 * (`DescribeExecution`, `ListMapRuns`, …) from a per-test script and records
 * every call with its input, so a test can assert what was sent.
 */
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { AwsTarget, CloudDeps } from '../../cli/cloud/aws';

type Answer = (input: Record<string, unknown>) => unknown;

export interface StubClient<C> {
  client: C;
  calls: { command: string; input: Record<string, unknown> }[];
  /** Inputs of the calls of one command, in order. */
  inputs(command: string): Record<string, unknown>[];
}

export function stubClient<C>(answers: Record<string, Answer>): StubClient<C> {
  const calls: StubClient<C>['calls'] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ command: name, input: command.input });
      const answer = answers[name];
      if (!answer) throw new Error(`stub: unexpected ${name} call`);
      return answer(command.input);
    },
    destroy: () => undefined,
  };
  return {
    client: client as unknown as C,
    calls,
    inputs: (command) => calls.filter((call) => call.command === command).map((call) => call.input),
  };
}

/** A stub client whose one command fails with `error` (e.g. an awsError); any other command is unexpected. */
export function failingOn<C>(command: string, error: Error): StubClient<C> {
  return stubClient<C>({
    [command]: () => {
      throw error;
    },
  });
}

/**
 * A Step Functions that answers the polls of one execution in turn: its
 * DescribeExecution answers, and its Map Run's (none: ListMapRuns lists no
 * Map Run); `also` adds or overrides commands (StartExecution, RedriveExecution, …).
 */
export function stepFunctions(
  executions: unknown[],
  mapRuns: unknown[] = [],
  also: Record<string, Answer> = {},
): StubClient<SFNClient> {
  return stubClient<SFNClient>({
    DescribeExecution: inTurn(...executions),
    ListMapRuns: () => (mapRuns.length > 0 ? LIST_MAP_RUNS : { mapRuns: [] }),
    ...(mapRuns.length > 0 ? { DescribeMapRun: inTurn(...mapRuns) } : {}),
    ...also,
  });
}

/** Answers in turn, then the last one again and again (a poll that has reached its end). */
export function inTurn(...answers: (unknown | (() => unknown))[]): Answer {
  let index = 0;
  return () => {
    const answer = answers[Math.min(index, answers.length - 1)];
    index += 1;
    if (answer instanceof Error) throw answer;
    return typeof answer === 'function' ? (answer as () => unknown)() : answer;
  };
}

/** An SDK-style service error: what the client throws when the service answers with an error. */
export function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:Ddb2osBackfill`;
export const EXECUTION_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:execution:Ddb2osBackfill:orders-run-1`;
export const MAP_RUN_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:mapRun:Ddb2osBackfill/Segments:4f6a`;
export const T0 = new Date('2025-06-01T10:00:00.000Z');

export interface CountsInput {
  pending?: number;
  running?: number;
  succeeded?: number;
  failed?: number;
  timedOut?: number;
  aborted?: number;
  total?: number;
}

/** A DescribeMapRun answer with these item counts (the rest 0; total the sum unless given). */
export function mapRun(status: string, counts: CountsInput, extra: Record<string, unknown> = {}): unknown {
  const full = {
    pending: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    aborted: 0,
    ...counts,
  };
  const total =
    counts.total ?? full.pending + full.running + full.succeeded + full.failed + full.timedOut + full.aborted;
  return {
    mapRunArn: MAP_RUN_ARN,
    executionArn: EXECUTION_ARN,
    status,
    startDate: new Date(T0.getTime() + 60_000),
    maxConcurrency: 10,
    toleratedFailurePercentage: 0,
    toleratedFailureCount: 0,
    itemCounts: { ...full, total, resultsWritten: 0 },
    executionCounts: { ...full, total, resultsWritten: 0 },
    redriveCount: 0,
    ...extra,
  };
}

/** A DescribeExecution answer. */
export function execution(status: string, extra: Record<string, unknown> = {}): unknown {
  return {
    executionArn: EXECUTION_ARN,
    stateMachineArn: STATE_MACHINE_ARN,
    name: 'orders-run-1',
    status,
    startDate: T0,
    redriveCount: 0,
    ...(status === 'RUNNING' ? {} : { stopDate: new Date(T0.getTime() + 3_600_000) }),
    ...extra,
  };
}

export const LIST_MAP_RUNS = {
  mapRuns: [
    {
      executionArn: EXECUTION_ARN,
      mapRunArn: MAP_RUN_ARN,
      stateMachineArn: `${STATE_MACHINE_ARN}/Segments`,
      startDate: new Date(T0.getTime() + 60_000),
    },
  ],
};

/** The run summary the workflow's last state outputs. */
export const RUN_SUMMARY = {
  runId: 'orders-run-1',
  segments: 4,
  scanned: 12_000,
  created: 11_990,
  alreadyPresent: 10,
  failed: 0,
  skipped: 0,
  retried: 3,
  durationSeconds: 3_540,
};

/** What the command modules' factories get: clients chosen per test, a clock that moves 5 s per poll. */
export interface StubWorld {
  sfn?: StubClient<SFNClient>;
  cloudFormation?: StubClient<CloudFormationClient>;
  /** The targets the commands built clients for. */
  targets: AwsTarget[];
  configuredRegion?: string;
  clock: number;
  sleeps: number;
  /** Runs at every poll pause (e.g. to press Ctrl-C). */
  onSleep?: (count: number) => void;
}

export function newWorld(): StubWorld {
  return { targets: [], clock: T0.getTime(), sleeps: 0 };
}

/** Deps that delegate to the current world, so a command created once serves every test. */
export function worldDeps(holder: { world: StubWorld }): CloudDeps {
  return {
    sfn: (target) => {
      holder.world.targets.push(target);
      if (!holder.world.sfn) throw new Error('stub: this test has no Step Functions client');
      return holder.world.sfn.client;
    },
    cloudFormation: (target) => {
      holder.world.targets.push(target);
      if (!holder.world.cloudFormation) throw new Error('stub: this test has no CloudFormation client');
      return holder.world.cloudFormation.client;
    },
    configuredRegion: async () => holder.world.configuredRegion,
    now: () => new Date(holder.world.clock),
    sleep: async (ms) => {
      holder.world.clock += ms;
      holder.world.sleeps += 1;
      holder.world.onSleep?.(holder.world.sleeps);
    },
    pollMs: 5_000,
  };
}
