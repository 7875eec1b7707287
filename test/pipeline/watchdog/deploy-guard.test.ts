import { beforeAll, describe, expect, it } from 'vitest';
import { ensureProgressTable } from '../../../pipeline/progress/checkpoint';
import { resumeUpdaterAfterDeploy } from '../../../pipeline/watchdog/deploy-guard';
import { uniqueName, useEngines } from '../../support/engines';
import { EXECUTION_ARN, lambdaStub, MAPPING_UUID, sfnStub, stateDeps, writeLock } from './support';

const engines = useEngines();
const progressTable = engines.tableName('guard-progress');
const completed = { runId: 'orders-1', at: '2026-11-30T08:00:00.000Z' };
const noWait = { sleep: async () => undefined, pollMs: 5000, settleTimeoutMs: 60_000 };

beforeAll(async () => {
  await ensureProgressTable(engines.dynamodb, progressTable);
});

async function tableWithLock(lock?: Parameters<typeof writeLock>[3]) {
  const table = uniqueName('orders');
  if (lock) await writeLock(engines.dynamodb, progressTable, table, lock);
  return { dynamodb: engines.dynamodb, progressTable, table };
}

describe('deploy guard (Lambda control plane and Step Functions stubbed, run lock in DynamoDB Local)', () => {
  it('enables a mapping that a deploy disabled after a backfill completed, when no run holds the lock', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: completed });
    const lambda = lambdaStub([{ State: 'Disabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([{ UUID: MAPPING_UUID, Enabled: true }]);
    expect(outcome).toEqual({
      enabled: true,
      reason: `resumed the updater (mapping ${MAPPING_UUID}): backfill run orders-1 completed at 2026-11-30T08:00:00.000Z and no run holds the lock`,
    });
  });

  it('leaves the mapping disabled before the first backfill', async () => {
    // Prepare
    const source = await tableWithLock();
    const lambda = lambdaStub([{ State: 'Disabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(outcome).toEqual({
      enabled: false,
      reason: 'no backfill has completed yet; the first one enables the updater',
    });
  });

  it('leaves the mapping to the run that holds the lock, running or failed', async () => {
    // Prepare
    const lock = { lastCompleted: completed, holder: { runId: 'orders-2', executionArn: EXECUTION_ARN } };
    const running = lambdaStub([{ State: 'Disabled' }]);
    const failed = lambdaStub([{ State: 'Disabled' }]);

    // Act
    const whileRunning = await resumeUpdaterAfterDeploy({
      ...stateDeps(await tableWithLock(lock), running, sfnStub({ status: 'RUNNING' })),
      ...noWait,
    });
    const afterFailure = await resumeUpdaterAfterDeploy({
      ...stateDeps(await tableWithLock(lock), failed, sfnStub({ status: 'FAILED' })),
      ...noWait,
    });

    // Assess
    expect(running.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(failed.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(whileRunning.reason).toBe(
      'backfill run orders-2 holds the run lock (execution RUNNING) and enables the updater when it completes',
    );
    expect(afterFailure).toEqual({
      enabled: false,
      reason:
        'backfill run orders-2 holds the run lock (execution FAILED) and enables the updater when it completes',
    });
  });

  it('leaves an enabled mapping alone', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: completed });
    const lambda = lambdaStub([{ State: 'Enabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(outcome).toEqual({ enabled: false, reason: 'the updater is Enabled already' });
  });

  it('waits for a mapping that the deploy is still updating, then enables it', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: completed });
    const lambda = lambdaStub([{ State: 'Updating' }, { State: 'Disabling' }, { State: 'Disabled' }]);
    const waits: number[] = [];

    // Act
    const outcome = await resumeUpdaterAfterDeploy({
      ...stateDeps(source, lambda),
      ...noWait,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });

    // Assess
    expect(waits).toEqual([5000, 5000]);
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([{ UUID: MAPPING_UUID, Enabled: true }]);
    expect(outcome.enabled).toBe(true);
  });

  it('gives up on a mapping that stays in transition, naming it and its state', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: completed });
    const lambda = lambdaStub([{ State: 'Updating' }]);

    // Act
    const outcome = resumeUpdaterAfterDeploy({
      ...stateDeps(source, lambda),
      ...noWait,
      settleTimeoutMs: 20_000,
    });

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'UpdaterCheckError',
      message: `The updater's event source mapping ${MAPPING_UUID} stayed Updating for 20 seconds after the deploy changed it.`,
    });
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
  });

  it('pauses the updater again when a backfill took the lock while the deploy was resuming it', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: completed });
    // The backfill takes the lock (and pauses the updater) between the guard's read and its enable.
    const lambda = lambdaStub([{ State: 'Disabled' }], async (input) => {
      if (input.Enabled === true) {
        await writeLock(engines.dynamodb, progressTable, source.table, {
          lastCompleted: completed,
          holder: { runId: 'orders-2', executionArn: EXECUTION_ARN },
        });
      }
      return {};
    });

    // Act
    const outcome = await resumeUpdaterAfterDeploy({
      ...stateDeps(source, lambda, sfnStub({ status: 'RUNNING' })),
      ...noWait,
    });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([
      { UUID: MAPPING_UUID, Enabled: true },
      { UUID: MAPPING_UUID, Enabled: false },
    ]);
    expect(outcome).toEqual({
      enabled: false,
      reason: 'backfill run orders-2 took the run lock while the deploy resumed the updater; paused it again',
    });
  });
});
