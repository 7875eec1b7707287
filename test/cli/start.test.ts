import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  awsError,
  EXECUTION_ARN,
  execution,
  failingOn,
  inTurn,
  LIST_MAP_RUNS,
  mapRun,
  newWorld,
  REGION,
  RUN_SUMMARY,
  STATE_MACHINE_ARN,
  type StubWorld,
  stepFunctions,
  stubClient,
  T0,
} from './cloud-stub';
import { lastJsonLine, runCli } from './support';

const holder = vi.hoisted(() => ({ world: {} as StubWorld }));
vi.mock('../../cli/commands/start', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../cli/commands/start')>();
  const { worldDeps } = await import('./cloud-stub');
  return { ...mod, startCommand: mod.createStartCommand(worldDeps(holder)) };
});

const CONSOLE_URL = `https://${REGION}.console.aws.amazon.com/states/home?region=${REGION}#/v2/executions/details/${EXECUTION_ARN}`;
const ENV = { AWS_REGION: REGION };

function stack(outputs: { OutputKey: string; OutputValue: string }[]) {
  return stubClient<CloudFormationClient>({
    DescribeStacks: () => ({ Stacks: [{ StackName: 'Ddb2osBackfill', Outputs: outputs }] }),
  });
}

/** A Step Functions that starts the execution and then answers the polls in turn. */
function startingStepFunctions(
  executions: unknown[],
  mapRuns: unknown[],
  extra: Record<string, (input: Record<string, unknown>) => unknown> = {},
) {
  return stepFunctions(executions, mapRuns, {
    StartExecution: () => ({ executionArn: EXECUTION_ARN, startDate: T0 }),
    ...extra,
  });
}

describe('ddb2os start', () => {
  beforeEach(() => {
    holder.world = newWorld();
  });

  it('resolves the state machine from the stack, sends the input, prints the ARN and console link, and follows the Map Run until SUCCEEDED (Step Functions and CloudFormation stubbed)', async () => {
    // Prepare
    holder.world.cloudFormation = stack([
      { OutputKey: 'DashboardUrl', OutputValue: 'https://example' },
      { OutputKey: 'StateMachineArn', OutputValue: STATE_MACHINE_ARN },
    ]);
    holder.world.sfn = startingStepFunctions(
      [
        execution('RUNNING'),
        execution('RUNNING'),
        execution('RUNNING'),
        execution('RUNNING'),
        execution('RUNNING'),
        execution('SUCCEEDED', { output: JSON.stringify(RUN_SUMMARY) }),
      ],
      [
        mapRun('RUNNING', { running: 2, pending: 2 }),
        mapRun('RUNNING', { running: 2, pending: 2 }),
        mapRun('RUNNING', { running: 2, succeeded: 2 }),
        mapRun('SUCCEEDED', { succeeded: 4 }),
      ],
      // The Map Run starts after the workflow paused the updater and planned: none on the first poll.
      { ListMapRuns: inTurn({ mapRuns: [] }, LIST_MAP_RUNS) },
    );

    // Act
    const result = await runCli(
      ['start', '--stack', 'Ddb2osBackfill', '--input', '{"totalSegments": 4, "maxConcurrency": 2}'],
      { env: ENV },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(holder.world.cloudFormation.inputs('DescribeStacks')).toEqual([{ StackName: 'Ddb2osBackfill' }]);
    expect(holder.world.sfn.inputs('StartExecution')).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, input: '{"totalSegments":4,"maxConcurrency":2}' },
    ]);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`execution ${EXECUTION_ARN}`);
    expect(lines[1]).toBe(`console   ${CONSOLE_URL}`);
    // One timestamped line per change, none for a poll that saw nothing new.
    const progress = lines.filter((line) => /^\d{4}-\d\d-\d\dT/.test(line));
    expect(progress).toEqual([
      '2025-06-01T10:00:00.000Z RUNNING Map Run not started yet (the workflow pauses the updater, or starts the resync, and plans the segments first)',
      '2025-06-01T10:00:05.000Z RUNNING Map Run RUNNING: 0/4 segments succeeded · running 2 · pending 2 · failed 0 · timed out 0 · aborted 0',
      '2025-06-01T10:00:15.000Z RUNNING Map Run RUNNING: 2/4 segments succeeded · running 2 · pending 0 · failed 0 · timed out 0 · aborted 0',
      '2025-06-01T10:00:20.000Z RUNNING Map Run SUCCEEDED: 4/4 segments succeeded · running 0 · pending 0 · failed 0 · timed out 0 · aborted 0',
      '2025-06-01T10:00:25.000Z SUCCEEDED Map Run SUCCEEDED: 4/4 segments succeeded · running 0 · pending 0 · failed 0 · timed out 0 · aborted 0',
    ]);
    expect(result.stdout).toContain('\nSUCCEEDED in 1h00m\n');
    expect(result.stdout).toMatch(/^ {2}segments +4$/m);
    expect(result.stdout).toMatch(/^ {2}items scanned +12,000$/m);
    expect(result.stdout).toMatch(/^ {2}documents created +11,990$/m);
    expect(result.stdout).toMatch(/^ {2}already present +10$/m);
    expect(result.stdout).toMatch(/^ {2}duration +59m00s \(3,540 s\)$/m);
  });

  it.each(['FAILED', 'TIMED_OUT', 'ABORTED'])(
    'exits 1 when the execution ends %s, with one stderr line naming the status, error, cause and the exact redrive command (Step Functions stubbed)',
    async (status) => {
      // Prepare
      holder.world.sfn = startingStepFunctions(
        [
          execution('RUNNING'),
          execution(status, {
            error: 'States.ExceedToleratedFailureThreshold',
            cause: 'The specified tolerated failure threshold\nwas exceeded',
            redriveStatus: 'REDRIVABLE',
          }),
        ],
        [mapRun('RUNNING', { running: 4 }), mapRun('FAILED', { succeeded: 3, failed: 1 })],
      );

      // Act
      const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN], { env: ENV });

      // Assess
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `ddb2os: execution ${status}: States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded; ` +
          `rerun the failed segments with: ddb2os redrive ${EXECUTION_ARN}\n`,
      );
      expect(result.stdout).toContain(`\n${status} after 1h00m\n`);
      expect(result.stdout).toContain('  error  States.ExceedToleratedFailureThreshold\n');
      expect(result.stdout).toContain(
        `  1 segment(s) did not succeed; rerun only those, from their checkpoints: ddb2os redrive ${EXECUTION_ARN}\n`,
      );
    },
  );

  it('gives no redrive hint when every segment succeeded but a later state failed (Step Functions stubbed)', async () => {
    // Prepare
    const cause = 'The backfill took 25 hours, more than the retention budget of 23 hours';
    holder.world.sfn = startingStepFunctions(
      [execution('FAILED', { error: 'RetentionBudgetExceededError', cause })],
      [mapRun('SUCCEEDED', { succeeded: 4 })],
    );

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN], { env: ENV });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`ddb2os: execution FAILED: RetentionBudgetExceededError: ${cause}\n`);
  });

  it('--json puts one summary object on the last stdout line and the progress on stderr (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = startingStepFunctions(
      [execution('RUNNING'), execution('SUCCEEDED', { output: JSON.stringify(RUN_SUMMARY) })],
      [mapRun('RUNNING', { running: 4 }), mapRun('SUCCEEDED', { succeeded: 4 })],
    );

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, '--json'], { env: ENV });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const summary = lastJsonLine(result.stdout);
    expect(summary).toMatchObject({
      executionArn: EXECUTION_ARN,
      consoleUrl: CONSOLE_URL,
      follow: 'ended',
      status: 'SUCCEEDED',
      output: RUN_SUMMARY,
      mapRun: { status: 'SUCCEEDED', itemCounts: { succeeded: 4, total: 4, failed: 0 } },
    });
    expect(result.stderr).toContain(`execution ${EXECUTION_ARN}\n`);
  });

  it('redraws a single status block with a bar on a terminal (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = startingStepFunctions(
      [execution('RUNNING'), execution('RUNNING'), execution('SUCCEEDED', { output: '{}' })],
      [
        mapRun('RUNNING', { running: 4 }),
        mapRun('RUNNING', { running: 2, succeeded: 2 }),
        mapRun('SUCCEEDED', { succeeded: 4 }),
      ],
    );

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN], { env: ENV, tty: true });

    // Assess
    expect(result.code).toBe(0);
    // Three polls: the block is drawn once and then moved over (3 lines up, clear) twice.
    expect(result.stdout.split('\x1b[3A\x1b[0J')).toHaveLength(3);
    expect(result.stdout).toContain(
      `Map Run RUNNING  [${'#'.repeat(15)}${'.'.repeat(15)}]  2/4 segments succeeded`,
    );
    expect(result.stdout).toContain(`Map Run SUCCEEDED  [${'#'.repeat(30)}]  4/4 segments succeeded`);
    expect(result.stdout).not.toMatch(/^\d{4}-\d\d-\d\dT/m);
  });

  it('Ctrl-C stops following, not the execution, and says so (Step Functions stubbed)', async () => {
    // Prepare
    const controller = new AbortController();
    holder.world.sfn = startingStepFunctions([execution('RUNNING')], [mapRun('RUNNING', { running: 4 })]);
    holder.world.onSleep = (count) => {
      if (count === 2) controller.abort(new Error('interrupted'));
    };

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN], {
      env: ENV,
      signal: controller.signal,
    });

    // Assess
    expect(result.code).toBe(130);
    expect(result.stdout).toContain(
      `Stopped following; the execution keeps running. See it with: ddb2os status ${EXECUTION_ARN}\n`,
    );
    expect(holder.world.sfn.inputs('StopExecution')).toEqual([]);
  });

  it('--no-follow prints the execution ARN and console link and returns at once (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = startingStepFunctions([], []);

    // Act
    const result = await runCli(
      ['start', '--state-machine-arn', STATE_MACHINE_ARN, '--name', 'orders-2025', '--no-follow'],
      { env: ENV },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      `execution ${EXECUTION_ARN}\nconsole   ${CONSOLE_URL}\nNot following. See it with: ddb2os status ${EXECUTION_ARN}\n`,
    );
    expect(holder.world.sfn.inputs('StartExecution')).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, input: '{}', name: 'orders-2025' },
    ]);
    expect(holder.world.sfn.inputs('DescribeExecution')).toEqual([]);
  });

  it('takes the region from the state machine ARN when no flag or variable names one (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = startingStepFunctions([], []);

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, '--no-follow'], {
      env: {},
    });

    // Assess
    expect(result.code).toBe(0);
    expect(holder.world.targets).toEqual([{ region: REGION }]);
  });

  it('--region and --profile choose where the clients go (Step Functions and CloudFormation stubbed)', async () => {
    // Prepare
    holder.world.cloudFormation = stack([{ OutputKey: 'StateMachineArn', OutputValue: STATE_MACHINE_ARN }]);
    holder.world.sfn = startingStepFunctions([], []);

    // Act
    const result = await runCli(
      ['start', '--stack', 'S', '--region', 'ap-southeast-2', '--profile', 'prod', '--no-follow'],
      { env: ENV },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(holder.world.targets).toEqual([
      { region: 'ap-southeast-2', profile: 'prod' },
      { region: 'ap-southeast-2', profile: 'prod' },
    ]);
  });

  it('a stack without a StateMachineArn output is one clear error naming the stack (CloudFormation stubbed)', async () => {
    // Prepare
    holder.world.cloudFormation = stack([{ OutputKey: 'BucketName', OutputValue: 'b' }]);

    // Act
    const result = await runCli(['start', '--stack', 'OtherStack'], { env: ENV });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: stack OtherStack in ${REGION} has no StateMachineArn output (its outputs: BucketName); is it a ddb2os stack?\n`,
    );
  });

  it('without --stack or --state-machine-arn, uses the default stack Ddb2osBackfill and says so when it is missing (CloudFormation stubbed)', async () => {
    // Prepare
    holder.world.cloudFormation = failingOn<CloudFormationClient>(
      'DescribeStacks',
      awsError('ValidationError', 'Stack with id Ddb2osBackfill does not exist'),
    );

    // Act
    const result = await runCli(['start'], { env: ENV });

    // Assess
    expect(result.code).toBe(1);
    expect(holder.world.cloudFormation.inputs('DescribeStacks')).toEqual([{ StackName: 'Ddb2osBackfill' }]);
    expect(result.stderr).toBe(
      `ddb2os: stack Ddb2osBackfill not found in ${REGION} (the default stack name: pass --stack NAME or --state-machine-arn ARN)\n`,
    );
  });

  it('a stack that does not exist is one line naming it and the region (CloudFormation stubbed)', async () => {
    // Prepare
    holder.world.cloudFormation = failingOn<CloudFormationClient>(
      'DescribeStacks',
      awsError('ValidationError', 'Stack with id Nope does not exist'),
    );

    // Act
    const result = await runCli(['start', '--stack', 'Nope'], { env: ENV });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`ddb2os: stack Nope not found in ${REGION}\n`);
  });

  it.each([
    ['[1, 2]', '--input must be a JSON object such as \'{"totalSegments": 64}\', got an array'],
    ['42', '--input must be a JSON object such as \'{"totalSegments": 64}\', got a number'],
    ['{totalSegments: 4}', '--input is not valid JSON: '],
  ])('rejects --input %s, naming the problem, with exit 2 and no AWS call', async (input, message) => {
    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, '--input', input], {
      env: ENV,
    });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.startsWith(`ddb2os: ${message}`)).toBe(true);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(holder.world.targets).toEqual([]);
  });

  it.each([
    [
      '{"maxConcurency": 4}',
      '--input: the workflow input field maxConcurency is not known (known: totalSegments, ',
    ],
    ['{"totalSegments": 0}', '--input: totalSegments must be an integer from 1 to 1,000,000, not 0'],
    [
      '{"retentionBudgetHours": 30}',
      '--input: retentionBudgetHours must be a number of hours above 0 and at most 24',
    ],
  ])(
    'rejects input %s that the workflow would refuse, before starting anything, exit 2',
    async (input, message) => {
      // Act
      const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, '--input', input], {
        env: ENV,
      });

      // Assess
      expect(result.code).toBe(2);
      expect(result.stderr.startsWith(`ddb2os: ${message}`)).toBe(true);
      expect(holder.world.targets).toEqual([]);
    },
  );

  it.each([
    [
      ['--state-machine-arn', 'arn:aws:lambda:eu-west-1:123456789012:function:f'],
      '--state-machine-arn "arn:aws:lambda',
    ],
    [['--state-machine-arn', EXECUTION_ARN], '--state-machine-arn "arn:aws:states'],
    [
      ['--stack', 'S', '--state-machine-arn', STATE_MACHINE_ARN],
      'pass either --state-machine-arn or --stack',
    ],
    [['--stack', 'S', '--name', 'has space'], '--name "has space" contains " "'],
  ])('rejects start %j as a usage error, exit 2', async (argv, message) => {
    // Act
    const result = await runCli(['start', ...argv], { env: ENV });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.startsWith(`ddb2os: ${message}`)).toBe(true);
  });

  it('missing credentials are one line that says how to provide them (Step Functions stubbed to fail like the SDK)', async () => {
    // Prepare
    holder.world.sfn = failingOn<SFNClient>(
      'StartExecution',
      awsError('CredentialsProviderError', 'Could not load credentials from any providers'),
    );

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN], { env: ENV });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'ddb2os: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile\n',
    );
  });

  it('a name already taken is a clear sentence (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = failingOn<SFNClient>(
      'StartExecution',
      awsError('ExecutionAlreadyExists', 'Execution Already Exists'),
    );

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, '--name', 'run-1'], {
      env: ENV,
    });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'ddb2os: an execution named run-1 already exists for this state machine (names stay taken for 90 days): ' +
        'choose another --name, or rerun its failed segments with ddb2os redrive\n',
    );
  });

  it('--resync starts the execution with mode resync and follows it like a backfill, ending with what is now served (Step Functions stubbed)', async () => {
    // Prepare
    const output = {
      ...RUN_SUMMARY,
      runId: 'orders-resync-1',
      targets: { orders: 'orders-orders-resync-1' },
      swaps: [
        {
          alias: 'orders',
          index: 'orders-orders-resync-1',
          previousIndices: ['orders-orders-resync-0'],
          removedPlainIndex: false,
        },
      ],
      deletedIndices: ['orders-orders-resync-0'],
      tombstonesRemoved: 7,
    };
    holder.world.sfn = startingStepFunctions(
      [execution('RUNNING'), execution('SUCCEEDED', { output: JSON.stringify(output) })],
      [mapRun('RUNNING', { running: 4 }), mapRun('SUCCEEDED', { succeeded: 4 })],
    );

    // Act
    const result = await runCli(
      ['start', '--state-machine-arn', STATE_MACHINE_ARN, '--resync', '--input', '{"maxConcurrency": 2}'],
      { env: ENV },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(holder.world.sfn.inputs('StartExecution')).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, input: '{"maxConcurrency":2,"mode":"resync"}' },
    ]);
    expect(result.stdout).toMatch(/^ {2}items scanned +12,000$/m);
    expect(result.stdout).toMatch(/^ {2}now served +orders → orders-orders-resync-1$/m);
    expect(result.stdout).toMatch(/^ {2}old indices deleted +orders-orders-resync-0$/m);
    expect(result.stdout).toMatch(/^ {2}delete markers removed +7$/m);
    expect(result.stdout).not.toContain('previousIndices');
  });

  it('--resync --keep-old asks the resync to keep the old index (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = startingStepFunctions([execution('RUNNING')], [], {});

    // Act
    const result = await runCli(
      ['start', '--state-machine-arn', STATE_MACHINE_ARN, '--resync', '--keep-old', '--no-follow'],
      { env: ENV },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(holder.world.sfn.inputs('StartExecution')).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, input: '{"mode":"resync","keepOld":true}' },
    ]);
  });

  it.each([
    [
      ['--keep-old'],
      '--keep-old goes with --resync: it keeps the index the alias pointed at before the swap',
    ],
    [['--resync', '--input', '{"mode": "backfill"}'], `--resync contradicts the input's "mode": "backfill"`],
    [['--input', '{"mode": "rebuild"}'], '--input: mode must be "backfill" or "resync", not "rebuild"'],
  ])('%j is a usage error before anything starts (Step Functions stubbed)', async (flags, message) => {
    // Prepare
    holder.world.sfn = startingStepFunctions([], []);

    // Act
    const result = await runCli(['start', '--state-machine-arn', STATE_MACHINE_ARN, ...flags], { env: ENV });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(holder.world.sfn.inputs('StartExecution')).toEqual([]);
  });

  it('--help shows the flags and examples', async () => {
    // Act
    const result = await runCli(['start', '--help']);

    // Assess
    expect(result.code).toBe(0);
    for (const flag of [
      '--state-machine-arn',
      '--stack',
      '--input',
      '--name',
      '--region',
      '--profile',
      '--no-follow',
      '--json',
      '--resync',
      '--keep-old',
    ]) {
      expect(result.stdout).toContain(flag);
    }
    expect(result.stdout).toContain('Examples:\n  ddb2os start\n');
    expect(result.stdout).toContain('  ddb2os start --resync\n');
  });
});
