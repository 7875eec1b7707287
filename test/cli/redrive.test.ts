import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  awsError,
  EXECUTION_ARN,
  execution,
  mapRun,
  newWorld,
  REGION,
  RUN_SUMMARY,
  type StubWorld,
  stepFunctions,
  T0,
} from './cloud-stub';
import { lastJsonLine, runCli } from './support';

const holder = vi.hoisted(() => ({ world: {} as StubWorld }));
vi.mock('../../cli/commands/redrive', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../cli/commands/redrive')>();
  const { worldDeps } = await import('./cloud-stub');
  return { ...mod, redriveCommand: mod.createRedriveCommand(worldDeps(holder)) };
});

const FAILED = execution('FAILED', {
  error: 'States.ExceedToleratedFailureThreshold',
  cause: 'The specified tolerated failure threshold was exceeded',
  redriveStatus: 'REDRIVABLE',
});
const FAILED_MAP_RUN = mapRun('FAILED', { succeeded: 3, failed: 1 });

describe('ddb2os redrive', () => {
  beforeEach(() => {
    holder.world = newWorld();
  });

  it('redrives a failed execution and follows it to SUCCEEDED, not mistaking the stale FAILED status right after the redrive for the end (Step Functions stubbed)', async () => {
    // Prepare
    const redriven = { redriveCount: 1, redriveDate: new Date(T0.getTime() + 7_200_000) };
    holder.world.sfn = stepFunctions(
      [
        FAILED, // before the redrive
        FAILED, // eventual consistency: the redrive is not visible yet
        execution('RUNNING', redriven),
        execution('SUCCEEDED', { ...redriven, output: JSON.stringify(RUN_SUMMARY) }),
      ],
      [
        FAILED_MAP_RUN,
        FAILED_MAP_RUN,
        mapRun('RUNNING', { succeeded: 3, running: 1 }, { redriveCount: 1 }),
        mapRun('SUCCEEDED', { succeeded: 4 }, { redriveCount: 1 }),
      ],
      { RedriveExecution: () => ({ redriveDate: redriven.redriveDate }) },
    );

    // Act
    const result = await runCli(['redrive', EXECUTION_ARN], { env: {} });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(holder.world.sfn.inputs('RedriveExecution')).toEqual([{ executionArn: EXECUTION_ARN }]);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(
      `Redriving execution ${EXECUTION_ARN} (redrive 1): 1 segment(s) run again, each from its checkpoint.`,
    );
    expect(lines[1]).toBe(
      `console   https://${REGION}.console.aws.amazon.com/states/home?region=${REGION}#/v2/executions/details/${EXECUTION_ARN}`,
    );
    const progress = lines.filter((line) => /^\d{4}-\d\d-\d\dT/.test(line));
    expect(progress.map((line) => line.split(' ').slice(1, 6).join(' '))).toEqual([
      'RUNNING Map Run RUNNING: 3/4',
      'SUCCEEDED Map Run SUCCEEDED: 4/4',
    ]);
    expect(result.stdout).toMatch(/^ {2}documents created +11,990$/m);
  });

  it('--no-follow --json redrives and prints one summary object (Step Functions stubbed)', async () => {
    // Prepare
    holder.world.sfn = stepFunctions([FAILED], [FAILED_MAP_RUN], {
      RedriveExecution: () => ({ redriveDate: new Date() }),
    });

    // Act
    const result = await runCli(['redrive', EXECUTION_ARN, '--no-follow', '--json']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(lastJsonLine(result.stdout)).toMatchObject({
      executionArn: EXECUTION_ARN,
      follow: 'not-followed',
      redriveCount: 1,
    });
    expect(result.stderr).toContain(`Not following. See it with: ddb2os status ${EXECUTION_ARN}`);
  });

  it('ends with exit 1 and the redrive command again when the redriven segments fail again (Step Functions stubbed)', async () => {
    // Prepare
    const failedAgain = execution('FAILED', {
      redriveCount: 1,
      redriveStatus: 'REDRIVABLE',
      error: 'States.ExceedToleratedFailureThreshold',
      cause: 'threshold exceeded',
    });
    holder.world.sfn = stepFunctions([FAILED, failedAgain], [FAILED_MAP_RUN], {
      RedriveExecution: () => ({ redriveDate: new Date() }),
    });

    // Act
    const result = await runCli(['redrive', EXECUTION_ARN]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: execution FAILED: States.ExceedToleratedFailureThreshold: threshold exceeded; ` +
        `rerun the failed segments with: ddb2os redrive ${EXECUTION_ARN}\n`,
    );
  });

  it.each([
    [
      execution('SUCCEEDED', {
        redriveStatus: 'NOT_REDRIVABLE',
        redriveStatusReason: 'Execution is SUCCEEDED and cannot be redriven',
      }),
      `execution ${EXECUTION_ARN} SUCCEEDED, so there is nothing to redrive: only an execution that FAILED, TIMED_OUT or was ABORTED can be redriven, within 14 days of its stop`,
    ],
    [
      execution('RUNNING'),
      `execution ${EXECUTION_ARN} is still RUNNING and cannot be redriven: only an execution that FAILED, TIMED_OUT or was ABORTED can be redriven, within 14 days of its stop; follow it with ddb2os status`,
    ],
    [
      execution('FAILED', {
        redriveStatus: 'NOT_REDRIVABLE',
        redriveStatusReason: 'Execution history event limit exceeded',
      }),
      `execution ${EXECUTION_ARN} (FAILED) cannot be redriven: Execution history event limit exceeded. Only an execution that FAILED, TIMED_OUT or was ABORTED can be redriven, within 14 days of its stop; start a new execution with ddb2os start`,
    ],
  ])(
    'maps ExecutionNotRedrivable to one clear sentence, exit 1 (Step Functions stubbed) #%#',
    async (before, sentence) => {
      // Prepare
      holder.world.sfn = stepFunctions([before], [], {
        RedriveExecution: () => {
          throw awsError('ExecutionNotRedrivable', 'Execution cannot be redriven');
        },
      });

      // Act
      const result = await runCli(['redrive', EXECUTION_ARN]);

      // Assess
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`ddb2os: ${sentence}\n`);
    },
  );

  it('a malformed EXECUTION_ARN is a usage error naming the argument, exit 2', async () => {
    // Act
    const result = await runCli(['redrive', 'arn:aws:states:eu-west-1:123:execution:x:y']);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'ddb2os: EXECUTION_ARN "arn:aws:states:eu-west-1:123:execution:x:y" is not a Step Functions execution ARN ' +
        '(arn:aws:states:<region>:<account>:execution:<state machine>:<execution name>)\n',
    );
  });

  it('--help explains that only the failed segments run again, from their checkpoints', async () => {
    // Act
    const result = await runCli(['redrive', '--help']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'in the Map Run only the segments that failed, timed out or were aborted run again',
    );
    expect(result.stdout).toContain('resumes from its checkpoint');
    expect(result.stdout).toContain('Examples:\n  ddb2os redrive arn:aws:states:');
  });
});
