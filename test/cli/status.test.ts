import type { SFNClient } from '@aws-sdk/client-sfn';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  awsError,
  EXECUTION_ARN,
  execution,
  failingOn,
  MAP_RUN_ARN,
  mapRun,
  newWorld,
  REGION,
  RUN_SUMMARY,
  type StubWorld,
  stepFunctions,
} from './cloud-stub';
import { lastJsonLine, runCli } from './support';

const holder = vi.hoisted(() => ({ world: {} as StubWorld }));
vi.mock('../../cli/commands/status', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../cli/commands/status')>();
  const { worldDeps } = await import('./cloud-stub');
  return { ...mod, statusCommand: mod.createStatusCommand(worldDeps(holder)) };
});

describe('ddb2os status', () => {
  beforeEach(() => {
    holder.world = newWorld();
  });

  it('shows the status, times, Map Run counts, redrive status, error, cause and redrive command of a failed execution (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions(
      [
        execution('FAILED', {
          error: 'States.ExceedToleratedFailureThreshold',
          cause: 'The specified tolerated failure threshold was exceeded',
          redriveStatus: 'REDRIVABLE',
        }),
      ],
      [mapRun('FAILED', { succeeded: 97, failed: 2, timedOut: 1 })],
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN], { env: {} });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        `execution  ${EXECUTION_ARN}`,
        'status     FAILED',
        'started    2025-06-01T10:00:00.000Z',
        'stopped    2025-06-01T11:00:00.000Z (1h00m)',
        'redrives   0, redrivable',
        `Map Run    FAILED  [${'#'.repeat(29)}.]  97/100 segments succeeded`,
        '           running 0 · pending 0 · failed 2 · timed out 1 · aborted 0',
        'error      States.ExceedToleratedFailureThreshold',
        'cause      The specified tolerated failure threshold was exceeded',
        `next       ddb2os redrive ${EXECUTION_ARN}`,
        `console    https://${REGION}.console.aws.amazon.com/states/home?region=${REGION}#/v2/executions/details/${EXECUTION_ARN}`,
        '',
      ].join('\n'),
    );
    // Region from the ARN: no flag, no variable.
    expect(holder.world.targets).toEqual([{ region: REGION }]);
    expect(holder.world.sfn.inputs('DescribeMapRun')).toEqual([{ mapRunArn: MAP_RUN_ARN }]);
  });

  it('shows the run summary of a succeeded execution (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions(
      [execution('SUCCEEDED', { output: JSON.stringify(RUN_SUMMARY), redriveCount: 1 })],
      [mapRun('SUCCEEDED', { succeeded: 4 }, { redriveCount: 1 })],
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('status     SUCCEEDED\n');
    expect(result.stdout).toContain('redrives   1\n');
    expect(result.stdout).toContain('4/4 segments succeeded  (redriven 1x)\n');
    expect(result.stdout).toMatch(/^output\n {2}segments +4\n {2}items scanned +12,000\n/m);
    expect(result.stdout).not.toContain('next ');
  });

  it('says when the Map Run has not started yet (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions([execution('RUNNING')]);
    holder.world.clock += 42_000;

    // Act
    const result = await runCli(['status', EXECUTION_ARN]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('running    for 42s\n');
    expect(result.stdout).toContain(
      'Map Run    not started (the workflow pauses the updater, or starts the resync, and plans the segments first)\n',
    );
  });

  it('--json prints the snapshot as one object (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions(
      [execution('TIMED_OUT', { redriveStatus: 'REDRIVABLE' })],
      [mapRun('ABORTED', { succeeded: 2, aborted: 2 })],
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN, '--json']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(lastJsonLine(result.stdout)).toMatchObject({
      executionArn: EXECUTION_ARN,
      status: 'TIMED_OUT',
      startDate: '2025-06-01T10:00:00.000Z',
      stopDate: '2025-06-01T11:00:00.000Z',
      redriveCount: 0,
      redriveStatus: 'REDRIVABLE',
      mapRun: {
        mapRunArn: MAP_RUN_ARN,
        status: 'ABORTED',
        itemCounts: { pending: 0, running: 0, succeeded: 2, failed: 0, timedOut: 0, aborted: 2, total: 4 },
      },
      redriveCommand: `ddb2os redrive ${EXECUTION_ARN}`,
    });
  });

  it('--region wins over the ARN and --profile reaches the client and the hint (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions(
      [execution('FAILED', { redriveStatus: 'REDRIVABLE' })],
      [mapRun('FAILED', { succeeded: 1, failed: 1 })],
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN, '--region', 'us-west-2', '--profile', 'ops']);

    // Assess
    expect(result.code).toBe(0);
    expect(holder.world.targets).toEqual([{ region: 'us-west-2', profile: 'ops' }]);
    expect(result.stdout).toContain(`next       ddb2os redrive ${EXECUTION_ARN} --profile ops\n`);
  });

  it('an execution that does not exist is one line naming it and the region, exit 1 (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = failingOn<SFNClient>(
      'DescribeExecution',
      awsError('ExecutionDoesNotExist', 'Execution Does Not Exist'),
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN], { env: {} });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`ddb2os: execution ${EXECUTION_ARN} not found in ${REGION}\n`);
  });

  it('access denied is one line naming the region (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = failingOn<SFNClient>(
      'DescribeExecution',
      awsError(
        'AccessDeniedException',
        'User: arn:aws:iam::1:user/x is not authorized to perform: states:DescribeExecution',
      ),
    );

    // Act
    const result = await runCli(['status', EXECUTION_ARN], { env: {} });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: access denied in ${REGION}: User: arn:aws:iam::1:user/x is not authorized to perform: states:DescribeExecution\n`,
    );
  });

  it.each([
    [
      ['arn:aws:states:eu-west-1:123456789012:stateMachine:Ddb2osBackfill'],
      'EXECUTION_ARN "arn:aws:states:eu-west-1:123456789012:stateMachine:Ddb2osBackfill" is not a Step Functions execution ARN',
    ],
    [['orders-run-1'], 'EXECUTION_ARN "orders-run-1" is not a Step Functions execution ARN'],
    [[], 'missing EXECUTION_ARN'],
    [[EXECUTION_ARN, '--region', 'europe'], '--region "europe" is not an AWS region name'],
    [[EXECUTION_ARN, '--follow'], "Unknown option '--follow'"],
  ])('rejects status %j as a usage error, exit 2', async (argv, message) => {
    // Act
    const result = await runCli(['status', ...argv]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
