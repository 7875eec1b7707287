import { describe, expect, it } from 'vitest';
import { resumeUpdaterAfterDeploy } from '../../../pipeline/watchdog/deploy-guard';
import { useEngines } from '../../support/engines';
import * as fixture from './support';

const engines = useEngines();
const tableWithLock = fixture.lockFixture(engines, 'guard-progress');
const noWait = { sleep: async () => undefined, pollMs: 5000, settleTimeoutMs: 60_000 };

describe('deploy guard (Lambda control plane and Step Functions stubbed, run lock in DynamoDB Local)', () => {
  it('enables a mapping that a deploy disabled after a backfill completed, when no run holds the lock', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: fixture.COMPLETED });
    const lambda = fixture.lambdaStub([{ State: 'Disabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...fixture.stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([
      { UUID: fixture.MAPPING_UUID, Enabled: true },
    ]);
    expect(outcome).toEqual({
      enabled: true,
      reason: `resumed the updater (mapping ${fixture.MAPPING_UUID}): backfill run orders-1 completed at 2026-11-30T08:00:00.000Z and no run holds the lock`,
    });
  });

  it('leaves the mapping disabled before the first backfill', async () => {
    // Prepare
    const source = await tableWithLock();
    const lambda = fixture.lambdaStub([{ State: 'Disabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...fixture.stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(outcome).toEqual({
      enabled: false,
      reason: 'no backfill has completed yet; the first one enables the updater',
    });
  });

  it('leaves the mapping to the run that holds the lock, running or failed', async () => {
    // Prepare
    const lock = fixture.HELD_BY_RUN_2;
    const running = fixture.lambdaStub([{ State: 'Disabled' }]);
    const failed = fixture.lambdaStub([{ State: 'Disabled' }]);

    // Act
    const whileRunning = await resumeUpdaterAfterDeploy({
      ...fixture.stateDeps(await tableWithLock(lock), running, fixture.sfnStub({ status: 'RUNNING' })),
      ...noWait,
    });
    const afterFailure = await resumeUpdaterAfterDeploy({
      ...fixture.stateDeps(await tableWithLock(lock), failed, fixture.sfnStub({ status: 'FAILED' })),
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
    const source = await tableWithLock({ lastCompleted: fixture.COMPLETED });
    const lambda = fixture.lambdaStub([{ State: 'Enabled' }]);

    // Act
    const outcome = await resumeUpdaterAfterDeploy({ ...fixture.stateDeps(source, lambda), ...noWait });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
    expect(outcome).toEqual({ enabled: false, reason: 'the updater is Enabled already' });
  });

  it('waits for a mapping that the deploy is still updating, then enables it', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: fixture.COMPLETED });
    const lambda = fixture.lambdaStub([{ State: 'Updating' }, { State: 'Disabling' }, { State: 'Disabled' }]);
    const waits: number[] = [];

    // Act
    const outcome = await resumeUpdaterAfterDeploy({
      ...fixture.stateDeps(source, lambda),
      ...noWait,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });

    // Assess
    expect(waits).toEqual([5000, 5000]);
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([
      { UUID: fixture.MAPPING_UUID, Enabled: true },
    ]);
    expect(outcome.enabled).toBe(true);
  });

  it('gives up on a mapping that stays in transition, naming it and its state', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: fixture.COMPLETED });
    const lambda = fixture.lambdaStub([{ State: 'Updating' }]);

    // Act
    const outcome = resumeUpdaterAfterDeploy({
      ...fixture.stateDeps(source, lambda),
      ...noWait,
      settleTimeoutMs: 20_000,
    });

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'UpdaterCheckError',
      message: `The updater's event source mapping ${fixture.MAPPING_UUID} stayed Updating for 20 seconds after the deploy changed it.`,
    });
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([]);
  });

  it('pauses the updater again when a backfill took the lock while the deploy was resuming it', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: fixture.COMPLETED });
    // The backfill takes the lock (and pauses the updater) between the guard's read and its enable.
    const lambda = fixture.lambdaStub([{ State: 'Disabled' }], async (input) => {
      if (input.Enabled === true) {
        await fixture.writeLock(engines.dynamodb, source.progressTable, source.table, fixture.HELD_BY_RUN_2);
      }
      return {};
    });

    // Act
    const outcome = await resumeUpdaterAfterDeploy({
      ...fixture.stateDeps(source, lambda, fixture.sfnStub({ status: 'RUNNING' })),
      ...noWait,
    });

    // Assess
    expect(lambda.inputs('UpdateEventSourceMapping')).toEqual([
      { UUID: fixture.MAPPING_UUID, Enabled: true },
      { UUID: fixture.MAPPING_UUID, Enabled: false },
    ]);
    expect(outcome).toEqual({
      enabled: false,
      reason: 'backfill run orders-2 took the run lock while the deploy resumed the updater; paused it again',
    });
  });
});
