/**
 * The run lock on the real progress table (DynamoDB Local). Whether a cloud
 * holder still runs is Step Functions' DescribeExecution, which has no local
 * engine: those tests stub it and say so in their names.
 */
import type { SFNClient } from '@aws-sdk/client-sfn';
import { beforeAll, describe, expect, it } from 'vitest';
import { RunLockedError } from '../../../pipeline/errors';
import { type StartRunEvent, startRun } from '../../../pipeline/plan/start-run';
import { ensureProgressTable } from '../../../pipeline/progress/checkpoint';
import {
  acquireRunLock,
  holderLiveness,
  readRunLock,
  releaseRunLock,
  renewRunLease,
} from '../../../pipeline/progress/run-lock';
import { ResyncInProgressError, startResync } from '../../../pipeline/resync/resync-state';
import { uniqueName, useEngines } from '../../support/engines';

const engines = useEngines();
const { dynamodb } = engines;
const progressTable = engines.tableName('progress');

beforeAll(async () => {
  await ensureProgressTable(dynamodb, progressTable);
});

const ARN_PREFIX = 'arn:aws:states:eu-west-1:123456789012:execution:ddb2os-backfill:';

/** DescribeExecution, stubbed: the status of each execution ARN (absent: it does not exist). */
function describeExecutionStub(statuses: Record<string, string>): SFNClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    send: async (command: { input: { executionArn: string } }) => {
      calls.push(command.input.executionArn);
      const status = statuses[command.input.executionArn];
      if (status === undefined) {
        const { ExecutionDoesNotExist } = await import('@aws-sdk/client-sfn');
        throw new ExecutionDoesNotExist({ message: 'no such execution', $metadata: {} });
      }
      return { status };
    },
  } as unknown as SFNClient & { calls: string[] };
}

function start(runId: string, input: unknown = {}): StartRunEvent {
  return {
    runId,
    executionArn: `${ARN_PREFIX}${runId}`,
    input,
    defaults: {
      totalSegments: null,
      maxConcurrency: 4,
      readUnitsPerSecond: null,
      index: 'orders',
      retentionBudgetHours: 20,
    },
    deployment: { workerMaxConcurrency: 8, index: 'orders' },
  };
}

function cloudDeps(table: string, sfn: SFNClient) {
  return {
    dynamodb,
    progressTable,
    table,
    isLive: holderLiveness({ sfn }),
    oldestUnapplied: async (_everEnabled: boolean, runStart: Date) => runStart,
  };
}

describe('the run lock, cloud path (DescribeExecution stub)', () => {
  it('lets exactly one of two starts at once take it; the other fails with one sentence naming the running execution', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({
      [`${ARN_PREFIX}run-a`]: 'RUNNING',
      [`${ARN_PREFIX}run-b`]: 'RUNNING',
    });

    // Act
    const outcomes = await Promise.allSettled([
      startRun(start('run-a'), cloudDeps(table, sfn)),
      startRun(start('run-b'), cloudDeps(table, sfn)),
    ]);

    // Assess
    const won = outcomes.findIndex((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const winner = won === 0 ? 'run-a' : 'run-b';
    expect(lost.reason).toBeInstanceOf(RunLockedError);
    expect(lost.reason.message).toMatch(
      new RegExp(
        `^table ${table} is already being backfilled by execution ${ARN_PREFIX}${winner} \\(it holds the run lock since [^)]+\\); wait for it to end or stop it before starting another backfill of this table$`,
      ),
    );
    expect((await readRunLock(dynamodb, progressTable, table)).holder).toMatchObject({
      runId: winner,
      executionArn: `${ARN_PREFIX}${winner}`,
    });
  });

  it('takes over a lock whose execution is no longer RUNNING, and one whose execution does not exist', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({ [`${ARN_PREFIX}failed`]: 'FAILED' });
    await startRun(start('failed'), cloudDeps(table, sfn));

    // Act
    const taken = await startRun(start('next'), cloudDeps(table, sfn));
    const takenAgain = await startRun(start('third'), cloudDeps(table, sfn));

    // Assess
    expect(taken.tookOverFrom).toBe(`${ARN_PREFIX}failed`);
    expect(takenAgain.tookOverFrom).toBe(`${ARN_PREFIX}next`);
    expect(sfn.calls).toEqual([`${ARN_PREFIX}failed`, `${ARN_PREFIX}next`]);
    expect((await readRunLock(dynamodb, progressTable, table)).holder?.runId).toBe('third');
  });

  it('checks the input before it touches the lock: a bad input leaves the lock item as it was', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({});

    // Act
    const error = await startRun(start('typo', { maxConcurency: 4 }), cloudDeps(table, sfn)).catch(
      (e: unknown) => e,
    );

    // Assess
    expect((error as Error).message).toMatch(/^the workflow input field maxConcurency is not known/);
    expect(await readRunLock(dynamodb, progressTable, table)).toEqual({});
  });

  it('refuses a backfill while the table has an unfinished resync, naming it and both ways out, and leaves the lock alone', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({});
    await startResync(dynamodb, progressTable, table, 'resync-1', { orders: 'orders-resync-1' });

    // Act
    const error = await startRun(start('backfill-now'), cloudDeps(table, sfn)).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ResyncInProgressError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^table ${table} has an unfinished resync \\(run resync-1, phase FILLING, since [^)]+\\); a backfill now ` +
          'would pause the updater that keeps its new index current: finish it .*ddb2os resync --abort',
      ),
    );
    expect(await readRunLock(dynamodb, progressTable, table)).toEqual({});
  });

  it('releases the lock after success and records the run as the last completed one; the next start sees it', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({});
    const everEnabled: boolean[] = [];
    const deps = {
      ...cloudDeps(table, sfn),
      oldestUnapplied: async (ever: boolean, runStart: Date) => {
        everEnabled.push(ever);
        return runStart;
      },
    };
    await startRun(start('first'), deps);

    // Act
    await releaseRunLock(dynamodb, progressTable, table, 'first', '2026-12-01T05:00:00.000Z');
    const state = await readRunLock(dynamodb, progressTable, table);
    await startRun(start('second'), deps);

    // Assess
    expect(state).toEqual({ lastCompleted: { runId: 'first', at: '2026-12-01T05:00:00.000Z' } });
    expect(everEnabled).toEqual([false, true]);
    expect(sfn.calls).toEqual([]);
  });

  it('lets an execution take its own lock again (a retried Validate and lock), without asking Step Functions', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({});
    await startRun(start('run-a'), cloudDeps(table, sfn));

    // Act
    const again = await startRun(start('run-a'), cloudDeps(table, sfn));

    // Assess
    expect(again.tookOverFrom).toBeUndefined();
    expect(sfn.calls).toEqual([]);
    expect((await readRunLock(dynamodb, progressTable, table)).holder?.runId).toBe('run-a');
  });

  it('refuses to release a lock another run took over, naming that run', async () => {
    // Prepare
    const table = uniqueName('orders');
    const sfn = describeExecutionStub({ [`${ARN_PREFIX}old`]: 'FAILED' });
    await startRun(start('old'), cloudDeps(table, sfn));
    await startRun(start('new'), cloudDeps(table, describeExecutionStub({ [`${ARN_PREFIX}old`]: 'FAILED' })));

    // Act
    const error = await releaseRunLock(dynamodb, progressTable, table, 'old', new Date().toISOString()).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(RunLockedError);
    expect((error as Error).message).toBe(
      `run old enabled the updater but no longer holds the run lock of table ${table} (execution ${ARN_PREFIX}new took it over); check that run before trusting the index`,
    );
    expect((await readRunLock(dynamodb, progressTable, table)).holder?.runId).toBe('new');
  });
});

describe('the run lock, local leases', () => {
  /** Takes `table`'s lock for the local run `runId` with a lease of a minute. */
  const takeLease = (table: string, runId: string) =>
    acquireRunLock(
      dynamodb,
      progressTable,
      table,
      { runId, acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() },
      holderLiveness({}),
    );

  it('refuses a start while a lease lasts, naming the local run, and takes over once it has expired', async () => {
    // Prepare
    const table = uniqueName('orders');
    await takeLease(table, 'local-a');

    // Act
    const refused = await takeLease(table, 'local-b').catch((e: unknown) => e);
    await renewRunLease(dynamodb, progressTable, table, 'local-a', new Date(Date.now() - 1).toISOString());
    const taken = await takeLease(table, 'local-b');

    // Assess
    expect((refused as Error).message).toMatch(
      new RegExp(`^table ${table} is already being backfilled by local run local-a \\(`),
    );
    expect(taken.tookOverFrom?.runId).toBe('local-a');
    expect(await renewRunLease(dynamodb, progressTable, table, 'local-a', new Date().toISOString())).toBe(
      false,
    );
  });

  it('refuses a second process resuming the same local run while the first one holds the lease', async () => {
    // Prepare
    const table = uniqueName('orders');
    await takeLease(table, 'local-a');

    // Act
    const refused = await takeLease(table, 'local-a').catch((e: unknown) => e);

    // Assess
    expect(refused).toBeInstanceOf(RunLockedError);
    expect((refused as Error).message).toMatch(/is already being backfilled by local run local-a \(/);
  });
});
