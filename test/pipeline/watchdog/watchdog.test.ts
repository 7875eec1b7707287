import { describe, expect, it } from 'vitest';
import { readUpdaterState } from '../../../pipeline/watchdog/updater-state';
import { judgeUpdater } from '../../../pipeline/watchdog/watchdog';
import { awsError } from '../../cli/cloud-stub';
import { uniqueName, useEngines } from '../../support/engines';
import {
  COMPLETED,
  EXECUTION_ARN,
  executionDoesNotExist,
  HELD_BY_RUN_2,
  lambdaStub,
  lockFixture,
  MAPPING_UUID,
  sfnStub,
  stateDeps,
} from './support';

const engines = useEngines();
const tableWithLock = lockFixture(engines, 'watchdog-progress');

/** The watchdog's verdict on a mapping in `state` (GetEventSourceMapping stubbed) and the lock of `source`. */
async function verdictOf(
  source: Awaited<ReturnType<typeof tableWithLock>>,
  state: { State: string; LastProcessingResult?: string; EventSourceArn?: string },
  sfn?: ReturnType<typeof sfnStub>,
) {
  return judgeUpdater(await readUpdaterState(stateDeps(source, lambdaStub([state]), sfn)));
}

describe('watchdog (Lambda control plane and Step Functions stubbed, run lock in DynamoDB Local)', () => {
  it('publishes 0 before the first backfill: the updater is created paused and the first backfill enables it', async () => {
    // Prepare
    const source = await tableWithLock();

    // Act
    const verdict = await verdictOf(source, { State: 'Disabled' });

    // Assess
    expect(verdict).toMatchObject({ pausedOutsideBackfill: false, problem: false, findings: [] });
    expect(verdict.pausedOnPurpose).toBe(
      `no backfill of table ${source.table} has completed yet; the first one enables the updater`,
    );
  });

  it('reports a paused updater once a backfill has completed and no run holds the lock, naming the command that resumes it', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: COMPLETED });

    // Act
    const verdict = await verdictOf(source, { State: 'Disabled' });

    // Assess
    expect(verdict.pausedOutsideBackfill).toBe(true);
    expect(verdict.findings).toEqual([
      `The stream updater of table ${source.table} (event source mapping ${MAPPING_UUID}) is Disabled while no ` +
        'backfill runs (the last one, orders-1, completed at 2026-11-30T08:00:00.000Z); changes wait in the ' +
        'stream, which keeps them for 24 hours. Resume it: aws lambda update-event-source-mapping ' +
        `--uuid ${MAPPING_UUID} --enabled`,
    ]);
  });

  it("names where the changes of a paused updater wait, and for how long, by the mapping's source", async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: COMPLETED });
    const waitOf = async (EventSourceArn: string) =>
      (await verdictOf(source, { State: 'Disabled', EventSourceArn })).findings[0];

    // Act
    const [table, kinesis, queue] = await Promise.all([
      waitOf(`arn:aws:dynamodb:eu-west-1:123456789012:table/${source.table}/stream/2026-11-30T08:00:00.000`),
      waitOf('arn:aws:kinesis:eu-west-1:123456789012:stream/orders-changes'),
      waitOf('arn:aws:sqs:eu-west-1:123456789012:orders-changes.fifo'),
    ]);

    // Assess
    expect(table).toContain('; changes wait in the stream, which keeps them for 24 hours. Resume it:');
    expect(kinesis).toContain(
      '; changes wait in the Kinesis stream, which keeps them for its retention period. Resume it:',
    );
    expect(queue).toContain(
      '; changes wait in the change queue, which keeps them for its message retention period. Resume it:',
    );
  });

  it('counts Disabling as paused, and Enabled, Enabling and Updating as running', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: COMPLETED });
    const paused = async (State: string) => (await verdictOf(source, { State })).pausedOutsideBackfill;

    // Act
    const verdicts = Object.fromEntries(
      await Promise.all(
        ['Enabled', 'Enabling', 'Updating', 'Disabling', 'Disabled'].map(async (state) => [
          state,
          await paused(state),
        ]),
      ),
    );

    // Assess
    expect(verdicts).toEqual({
      Enabled: false,
      Enabling: false,
      Updating: false,
      Disabling: true,
      Disabled: true,
    });
  });

  it('publishes 0 while the lock holder’s execution is RUNNING: that backfill paused the updater', async () => {
    // Prepare
    const source = await tableWithLock(HELD_BY_RUN_2);
    const sfn = sfnStub({ status: 'RUNNING' });

    // Act
    const verdict = await verdictOf(source, { State: 'Disabled' }, sfn);

    // Assess
    expect(verdict).toMatchObject({ pausedOutsideBackfill: false, findings: [] });
    expect(verdict.pausedOnPurpose).toContain('backfill run orders-2 is running (execution RUNNING)');
    expect(sfn.inputs('DescribeExecution')).toEqual([{ executionArn: EXECUTION_ARN }]);
  });

  it('reports a paused updater under a holder whose execution FAILED, and says to redrive that run, not to enable the updater', async () => {
    // Prepare
    const source = await tableWithLock(HELD_BY_RUN_2);

    // Act
    const verdict = await verdictOf(source, { State: 'Disabled' }, sfnStub({ status: 'FAILED' }));

    // Assess
    expect(verdict.pausedOutsideBackfill).toBe(true);
    expect(verdict.findings).toHaveLength(1);
    expect(verdict.findings[0]).toContain('because backfill run orders-2 did not finish (execution FAILED)');
    expect(verdict.findings[0]).toContain(
      `aws stepfunctions redrive-execution --execution-arn ${EXECUTION_ARN}`,
    );
    expect(verdict.findings[0]).not.toContain('update-event-source-mapping');
  });

  it('counts a holder whose execution Step Functions no longer knows as stale', async () => {
    // Prepare
    const source = await tableWithLock(HELD_BY_RUN_2);

    // Act
    const verdict = await verdictOf(source, { State: 'Disabled' }, sfnStub(executionDoesNotExist()));

    // Assess
    expect(verdict.pausedOutsideBackfill).toBe(true);
    expect(verdict.findings[0]).toContain('(execution no longer exists)');
  });

  it('judges a local holder by its lease: running until it expires, stale after', async () => {
    // Prepare
    const live = await tableWithLock({
      lastCompleted: COMPLETED,
      holder: { runId: 'local-3', expiresAt: '2026-12-01T05:01:00.000Z' },
    });
    const expired = await tableWithLock({
      lastCompleted: COMPLETED,
      holder: { runId: 'local-3', expiresAt: '2026-12-01T04:59:00.000Z' },
    });
    const check = async (source: typeof live) => verdictOf(source, { State: 'Disabled' }); // now 05:00

    // Act
    const [whileLeased, afterLease] = [await check(live), await check(expired)];

    // Assess
    expect(whileLeased.pausedOutsideBackfill).toBe(false);
    expect(afterLease.pausedOutsideBackfill).toBe(true);
    expect(afterLease.findings[0]).toContain(
      'because local backfill run local-3 did not finish (lease expired at 2026-12-01T04:59:00.000Z)',
    );
  });

  it('reports a PROBLEM processing result, and nothing for OK', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: COMPLETED });
    const check = async (LastProcessingResult: string) =>
      verdictOf(source, { State: 'Enabled', LastProcessingResult });

    // Act
    const [problem, ok] = [await check('PROBLEM: Function call failed'), await check('OK')];

    // Assess
    expect(problem).toMatchObject({ problem: true, pausedOutsideBackfill: false });
    expect(problem.findings).toEqual([
      `The stream updater of table ${source.table} (event source mapping ${MAPPING_UUID}) reports "PROBLEM: ` +
        'Function call failed": read the updater function\'s logs, fix the cause (a permission, the function ' +
        'failing as a whole); the mapping retries on its own.',
    ]);
    expect(ok).toMatchObject({ problem: false, findings: [] });
  });

  it('fails with one sentence naming the mapping when the mapping cannot be read', async () => {
    // Prepare
    const source = await tableWithLock({ lastCompleted: COMPLETED });
    const lambda = lambdaStub([]);
    lambda.client.send = (async () => {
      throw awsError('AccessDeniedException', 'not authorized to perform: lambda:GetEventSourceMapping');
    }) as never;

    // Act
    const check = readUpdaterState(stateDeps(source, lambda));

    // Assess
    await expect(check).rejects.toMatchObject({
      name: 'UpdaterCheckError',
      message: `The updater's event source mapping ${MAPPING_UUID} cannot be read: not authorized to perform: lambda:GetEventSourceMapping`,
    });
  });

  it('fails naming the run when its execution cannot be described, rather than guessing', async () => {
    // Prepare
    const source = await tableWithLock(HELD_BY_RUN_2);
    const denied = awsError('AccessDeniedException', 'not authorized to perform: states:DescribeExecution');

    // Act
    const check = readUpdaterState(stateDeps(source, lambdaStub([{ State: 'Disabled' }]), sfnStub(denied)));

    // Assess
    await expect(check).rejects.toMatchObject({
      name: 'UpdaterCheckError',
      message: expect.stringContaining(
        `Whether backfill run orders-2 still runs cannot be read (DescribeExecution of ${EXECUTION_ARN})`,
      ),
      cause: denied,
    });
  });

  it('fails naming the progress table when the run lock cannot be read', async () => {
    // Prepare
    const source = {
      dynamodb: engines.dynamodb,
      progressTable: uniqueName('no-such-table'),
      table: 'orders',
    };

    // Act
    const check = readUpdaterState(stateDeps(source, lambdaStub([{ State: 'Enabled' }])));

    // Assess
    await expect(check).rejects.toMatchObject({
      name: 'UpdaterCheckError',
      message: expect.stringContaining(
        `The run lock of table orders cannot be read from the progress table ${source.progressTable}`,
      ),
    });
  });
});
