import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type SendTaskFailureCommand,
  type SendTaskHeartbeatCommand,
  type SendTaskSuccessCommand,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import type { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { processSegmentMessage, type WorkerDeps, type WorkerOutcome } from '../../handlers/worker';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import type { SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import type { SegmentResult } from '../../pipeline/table/types';
import {
  catalogItem,
  indexCount,
  progressStore,
  seedItems,
  shortLivedContext,
} from '../support/backfill-fixtures';
import {
  createTable,
  deleteTable,
  dynamodbEndpoint,
  opensearchUrl,
  uniqueName,
  useEngines,
} from '../support/engines';

// Before handlers/worker.ts builds its Powertools instances at import: no log lines in the test output.
const POWERTOOLS_ENV = vi.hoisted(() => {
  const env = { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_NAMESPACE: 'ddb2os-test' };
  Object.assign(process.env, env);
  return env;
});

type TaskCommand = SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand;

/** Step Functions has no local engine: this stub records the task-token calls, or answers that the token is closed. */
class StepFunctionsStub {
  readonly calls: { name: string; input: Record<string, unknown> }[] = [];
  tokenClosed = false;

  async send(command: TaskCommand): Promise<unknown> {
    this.calls.push({
      name: command.constructor.name,
      input: command.input as unknown as Record<string, unknown>,
    });
    if (this.tokenClosed) throw new TaskTimedOut({ message: 'Task Timed Out', $metadata: {} });
    return {};
  }

  named(name: string) {
    return this.calls.filter((call) => call.name === name);
  }

  results(): SegmentResult[] {
    return this.named('SendTaskSuccessCommand').map((call) => JSON.parse(call.input.output as string));
  }
}

/** SQS stands in for the continuation queue: it keeps the message bodies. */
class QueueStub {
  readonly bodies: string[] = [];

  async send(command: SendMessageCommand): Promise<unknown> {
    this.bodies.push(command.input.MessageBody as string);
    return {};
  }
}

const engines = useEngines();
const { dynamodb, opensearch } = engines;
let checkpoints: SegmentCheckpointStore;
let deadLetterDir: string;
let table: string;
const ITEMS = 500;

beforeAll(async () => {
  checkpoints = await progressStore(dynamodb);
  deadLetterDir = await mkdtemp(join(tmpdir(), 'ddb2os-worker-'));
  table = await createTable(dynamodb, uniqueName('worker'), { keySchema: { partitionKey: 'pk' } });
  await seedItems(
    dynamodb,
    table,
    Array.from({ length: ITEMS }, (_, i) => catalogItem(i)),
  );
});

afterAll(async () => {
  await deleteTable(dynamodb, table);
  await deleteTable(dynamodb, checkpoints.tableName);
  await rm(deadLetterDir, { recursive: true, force: true });
  for (const name of [
    ...Object.keys(POWERTOOLS_ENV),
    ...Object.keys(process.env).filter((key) => key.startsWith('DDB2OS_')),
  ]) {
    delete process.env[name];
  }
  delete process.env.DYNAMODB_ENDPOINT;
});

function newIndex(): string {
  const index = uniqueName('worker');
  engines.deleteIndexAfter(index);
  return index;
}

function workerDeps(overrides: Partial<WorkerDeps> = {}) {
  const stepFunctions = new StepFunctionsStub();
  const sqs = new QueueStub();
  const deps: WorkerDeps = {
    dynamodb,
    opensearch,
    checkpoints,
    deadLetters: new DirectoryDeadLetterSink(deadLetterDir),
    mapping: { index: 'unused-default' },
    stepFunctions,
    sqs,
    queueUrl: 'https://sqs.local/segments',
    table,
    scan: { pageLimit: 40 },
    keySchemas: new Map(),
    ...overrides,
  };
  return { deps, stepFunctions, sqs };
}

function body(fields: Record<string, unknown>): string {
  return JSON.stringify({
    taskToken: 'token-1',
    table,
    segment: 0,
    totalSegments: 2,
    readUnitsPerSecond: null,
    heartbeatSeconds: 300,
    segmentTimeoutSeconds: 3_600,
    ...fields,
  });
}

const longLived = { getRemainingTimeInMillis: () => 900_000 };

describe('processSegmentMessage', () => {
  it('(Step Functions stubbed) hands a segment on when the Lambda time runs short, and the continuations finish it with exact counts', async () => {
    // Prepare
    const index = newIndex();
    const runId = uniqueName('run');
    const { deps, stepFunctions, sqs } = workerDeps();

    // Act: each invocation has time for two pages; every continuation goes through the queue stub
    const outcomes: WorkerOutcome[] = [];
    for (const segment of [0, 1]) {
      let next: string | undefined = body({ runId, index, segment });
      while (next) {
        const outcome: WorkerOutcome = await processSegmentMessage(next, deps, shortLivedContext(2));
        outcomes.push(outcome);
        next = outcome.action === 'continued' ? sqs.bodies.at(-1) : undefined;
      }
    }

    // Assess
    const continued = outcomes.filter((outcome) => outcome.action === 'continued');
    expect(continued.length).toBeGreaterThanOrEqual(4);
    expect(JSON.parse(sqs.bodies[0] as string)).toMatchObject({
      taskToken: 'token-1',
      runId,
      segment: 0,
      continuation: 1,
    });
    expect(JSON.parse(sqs.bodies[1] as string)).toMatchObject({ continuation: 2 });
    const results = stepFunctions.results();
    expect(results.map((result) => result.segment)).toEqual([0, 1]);
    const scanned = results.reduce((sum, result) => sum + result.scanned, 0);
    const created = results.reduce((sum, result) => sum + result.created, 0);
    const present = results.reduce((sum, result) => sum + result.alreadyPresent, 0);
    expect({ scanned, created, present }).toEqual({ scanned: ITEMS, created: ITEMS, present: 0 });
    expect(stepFunctions.named('SendTaskFailureCommand')).toEqual([]);
    expect(stepFunctions.named('SendTaskHeartbeatCommand').length).toBe(outcomes.length);
    expect(await indexCount(opensearch, index)).toBe(ITEMS);
  });

  it.each([
    [{ runId: undefined }, 'InvalidMessageError', 'the segment message has no runId'],
    [
      { segment: '1' },
      'InvalidMessageError',
      'the segment message\'s segment must be an integer of at least 0, not "1"',
    ],
    [
      { segment: 2 },
      'InvalidMessageError',
      "the segment message's segment 2 is not below its totalSegments 2",
    ],
    [
      { totalSegments: 'two' },
      'InvalidMessageError',
      'the segment message\'s totalSegments must be an integer of at least 1, not "two"',
    ],
    [{ index: 42 }, 'InvalidMessageError', "the segment message's index must be a non-empty string, not 42"],
    [{ table: 'someone-elses-table' }, 'SourceTableError', 'but the message names table someone-elses-table'],
  ])(
    '(Step Functions stubbed) fails the task for %j with %s and one clear sentence, and touches no checkpoint',
    async (fields, error, cause) => {
      // Prepare
      const runId = uniqueName('run');
      const { deps, stepFunctions } = workerDeps();

      // Act
      const outcome = await processSegmentMessage(
        body({ runId, index: newIndex(), ...fields }),
        deps,
        longLived,
      );

      // Assess
      expect(outcome).toMatchObject({ action: 'failed', error });
      const [failure] = stepFunctions.named('SendTaskFailureCommand');
      expect(failure?.input).toMatchObject({
        taskToken: 'token-1',
        error,
        cause: expect.stringContaining(cause),
      });
      expect(stepFunctions.named('SendTaskSuccessCommand')).toEqual([]);
      expect(await checkpoints.listCheckpoints(runId)).toEqual([]);
    },
  );

  it('(Step Functions stubbed) fails the task with SourceTableError for a table that does not exist, and the other segments carry on', async () => {
    // Prepare
    const runId = uniqueName('run');
    const index = newIndex();
    const missing = uniqueName('missing');
    const { deps, stepFunctions } = workerDeps({ table: undefined });

    // Act
    const bad = await processSegmentMessage(body({ runId, index, table: missing }), deps, longLived);
    const good = await processSegmentMessage(body({ runId, index, segment: 1 }), deps, longLived);

    // Assess
    expect(bad).toMatchObject({ action: 'failed', error: 'SourceTableError' });
    expect((bad as { cause: string }).cause).toMatch(new RegExp(`^table ${missing} does not exist`));
    expect(good.action).toBe('succeeded');
    expect((await checkpoints.listCheckpoints(runId)).map((checkpoint) => checkpoint.status)).toEqual([
      'COMPLETED',
    ]);
    expect(stepFunctions.named('SendTaskFailureCommand')).toHaveLength(1);
  });

  it('(Step Functions stubbed) logs and ignores a task token that is already closed', async () => {
    // Prepare
    const { deps, stepFunctions } = workerDeps();
    stepFunctions.tokenClosed = true;
    const runId = uniqueName('run');

    // Act
    const work = await processSegmentMessage(body({ runId, index: newIndex() }), deps, longLived);
    const broken = await processSegmentMessage(body({ runId, index: 'x', segment: -1 }), deps, longLived);

    // Assess
    expect(work).toMatchObject({ action: 'stood-down' });
    expect(broken).toMatchObject({ action: 'failed', error: 'InvalidMessageError' });
    expect(stepFunctions.named('SendTaskHeartbeatCommand')).toHaveLength(1);
    expect(stepFunctions.named('SendTaskFailureCommand')).toHaveLength(1);
  });

  it('(Step Functions stubbed) rejects a message without a usable task token, so that SQS moves it to the dead-letter queue', async () => {
    // Prepare
    const { deps, stepFunctions } = workerDeps();

    // Act
    const notJson = processSegmentMessage('{"runId": ', deps, longLived);
    const noToken = processSegmentMessage(
      body({ taskToken: undefined, runId: 'r', index: 'i' }),
      deps,
      longLived,
    );

    // Assess
    await expect(notJson).rejects.toMatchObject({
      name: 'InvalidMessageError',
      message: 'the segment message is not JSON',
    });
    await expect(noToken).rejects.toThrow(
      'the segment message has no taskToken, so Step Functions cannot be told',
    );
    expect(stepFunctions.calls).toEqual([]);
  });

  it('(Step Functions stubbed) lets only one of two deliveries of a running segment finish it, and nothing is counted twice', async () => {
    // Prepare: the first invocation reads slowly, and heartbeats often
    const index = newIndex();
    const runId = uniqueName('run');
    const slow = {
      send: async (command: unknown) => {
        await new Promise((resolve) => setTimeout(resolve, 60));
        return dynamodb.send(command as never);
      },
    } as unknown as DynamoDBClient;
    const first = workerDeps({ dynamodb: slow, heartbeatIntervalMs: 30, scan: { pageLimit: 20 } });
    const second = workerDeps({ scan: { pageLimit: 20 } });
    const message = body({ runId, index, totalSegments: 1 });

    // Act
    const running = processSegmentMessage(message, first.deps, longLived);
    while (((await checkpoints.get(runId, 0))?.pages ?? 0) < 3)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const [a, b] = await Promise.all([running, processSegmentMessage(message, second.deps, longLived)]);

    // Assess: whichever wins the checkpoint finishes; the other stands down without answering
    expect([a.action, b.action].sort()).toEqual(['stood-down', 'succeeded']);
    const results = [...first.stepFunctions.results(), ...second.stepFunctions.results()];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ scanned: ITEMS, failed: 0 });
    expect((results[0]?.created ?? 0) + (results[0]?.alreadyPresent ?? 0)).toBe(ITEMS);
    expect(first.stepFunctions.named('SendTaskHeartbeatCommand').length).toBeGreaterThan(1);
    expect(await indexCount(opensearch, index)).toBe(ITEMS);
  });
});

describe('worker handler', () => {
  it('(Step Functions stubbed) reports a message without a task token as a batch item failure', async () => {
    // Prepare: the Lambda's environment, pointing at the local engines
    Object.assign(process.env, {
      DDB2OS_TABLE_NAME: table,
      DDB2OS_INDEX_NAME: 'worker-handler',
      DDB2OS_OPENSEARCH_ENDPOINT: opensearchUrl(),
      DDB2OS_OPENSEARCH_SIGNING: 'none',
      DDB2OS_PROGRESS_TABLE: checkpoints.tableName,
      DDB2OS_SEGMENT_QUEUE_URL: 'https://sqs.local/segments',
      DDB2OS_DEAD_LETTER_BUCKET: 'unused',
      DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    });
    const { handler } = await import('../../handlers/worker');
    const record = (messageId: string, text: string) =>
      ({ messageId, body: text }) as SQSEvent['Records'][number];
    const event = {
      Records: [record('m-1', '{"runId":"r","segment":0}'), record('m-2', 'not json')],
    } as SQSEvent;
    const context = { getRemainingTimeInMillis: () => 900_000, functionName: 'worker', awsRequestId: 'req' };

    // Act
    const response = await handler(event, context as never);

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }, { itemIdentifier: 'm-2' }]);
  });
});
