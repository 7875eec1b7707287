/**
 * The run lock as the workflow writes it (pipeline/progress/run-lock.ts), in a
 * real progress table, and a Lambda control plane and Step Functions stubbed
 * (neither has a local engine).
 */
import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { beforeAll } from 'vitest';
import { ensureProgressTable } from '../../../pipeline/progress/checkpoint';
import { runLockKey } from '../../../pipeline/progress/run-lock';
import type { UpdaterStateDeps } from '../../../pipeline/watchdog/updater-state';
import { awsError, type StubClient, stubClient } from '../../cli/cloud-stub';
import { type TestEngines, uniqueName } from '../../support/engines';

export const MAPPING_UUID = '6f0e3a52-1c1d-4c55-9a3e-2b8f0d1e7a10';
export const EXECUTION_ARN =
  'arn:aws:states:eu-west-1:123456789012:execution:Ddb2osBackfill-Backfill:orders-2';

/** The last backfill that enabled the updater. */
export const COMPLETED = { runId: 'orders-1', at: '2026-11-30T08:00:00.000Z' };

/** A lock after a completed backfill, held by the next run's execution. */
export const HELD_BY_RUN_2 = {
  lastCompleted: COMPLETED,
  holder: { runId: 'orders-2', executionArn: EXECUTION_ARN },
};

export interface LockItem {
  holder?: { runId: string; executionArn?: string; expiresAt?: string };
  lastCompleted?: { runId: string; at: string };
}

/** Writes `table`'s lock item as a backfill leaves it. */
export async function writeLock(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  lock: LockItem,
): Promise<void> {
  const { holder, lastCompleted } = lock;
  await dynamodb.send(
    new PutItemCommand({
      TableName: progressTable,
      Item: {
        ...runLockKey(table),
        ...(holder
          ? {
              holderRunId: { S: holder.runId },
              acquiredAt: { S: '2026-11-30T09:00:00.000Z' },
              ...(holder.executionArn ? { holderExecutionArn: { S: holder.executionArn } } : {}),
              ...(holder.expiresAt ? { expiresAt: { S: holder.expiresAt } } : {}),
            }
          : {}),
        ...(lastCompleted
          ? { lastCompletedRunId: { S: lastCompleted.runId }, lastCompletedAt: { S: lastCompleted.at } }
          : {}),
      },
    }),
  );
}

/**
 * A real progress table in DynamoDB Local (created before the file's tests,
 * deleted after), and a source table name of its own per call with `lock`
 * written for it: the lock is per table.
 */
export function lockFixture(engines: TestEngines, prefix: string) {
  const progressTable = engines.tableName(prefix);
  beforeAll(async () => {
    await ensureProgressTable(engines.dynamodb, progressTable);
  });
  return async (lock?: LockItem) => {
    const table = uniqueName('orders');
    if (lock) await writeLock(engines.dynamodb, progressTable, table, lock);
    return { dynamodb: engines.dynamodb, progressTable, table };
  };
}

/** GetEventSourceMapping answers: one mapping state (and last result) after another, then the last again. */
export function lambdaStub(
  states: { State: string; LastProcessingResult?: string; EventSourceArn?: string }[],
  onUpdate: (input: Record<string, unknown>) => unknown = () => ({}),
): StubClient<LambdaClient> {
  let read = 0;
  return stubClient<LambdaClient>({
    GetEventSourceMapping: (input) => {
      const answer = states[Math.min(read, states.length - 1)];
      read += 1;
      return { UUID: input.UUID, ...answer };
    },
    UpdateEventSourceMapping: onUpdate,
  });
}

/** DescribeExecution answers with `status`, or throws `error`. */
export function sfnStub(answer: { status: string } | Error): StubClient<SFNClient> {
  return stubClient<SFNClient>({
    DescribeExecution: (input) => {
      if (answer instanceof Error) throw answer;
      return { executionArn: input.executionArn, status: answer.status };
    },
  });
}

export const executionDoesNotExist = () =>
  awsError('ExecutionDoesNotExist', 'Execution Does Not Exist: some-arn');

/** The watchdog's dependencies over these clients. */
export function stateDeps(
  engines: { dynamodb: DynamoDBClient; progressTable: string; table: string },
  lambda: StubClient<LambdaClient>,
  sfn: StubClient<SFNClient> = sfnStub(new Error('stub: no DescribeExecution expected')),
  now = Date.parse('2026-12-01T05:00:00.000Z'),
): UpdaterStateDeps {
  return {
    lambda: lambda.client,
    sfn: sfn.client,
    dynamodb: engines.dynamodb,
    progressTable: engines.progressTable,
    table: engines.table,
    mappingUuid: MAPPING_UUID,
    now: () => now,
  };
}
