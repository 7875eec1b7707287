/**
 * The worker Lambda: one SQS message per segment (batch size 1), sent by the
 * Distributed Map with a task token. It scans the segment into OpenSearch
 * (scanSegment), heartbeats the token while it works, and answers the
 * workflow with SendTaskSuccess (the segment's counts) or SendTaskFailure
 * (the error's class name and one sentence). When the Lambda's time runs
 * short it saves its checkpoint and hands the rest of the segment to a new
 * message on the same queue (same token, `continuation + 1`).
 *
 * A message without a usable task token cannot be answered through Step
 * Functions: it is logged and reported as a batch item failure, so SQS
 * retries it and then moves it to the queue's dead-letter queue.
 */

import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type DeadLetterSink, S3DeadLetterSink } from '../pipeline/dead-letter/dead-letter';
import { CheckpointConflictError, describeError, InvalidMessageError } from '../pipeline/errors';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { bundledMapping, tracedDynamoDb, tracedS3 } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { DEFAULT_TIME_RESERVE_MS, readWorkerConfig } from '../pipeline/lambda/config';
import { powertoolsTelemetry, type Telemetry, withDefaults } from '../pipeline/observability';
import { SegmentCheckpointStore } from '../pipeline/progress/checkpoint';
import { type ScanSegmentDeps, type ScanSegmentOptions, scanSegment } from '../pipeline/scan/scan-segment';
import { prepareSegmentWork } from '../pipeline/scan/segment-message';
import { describeSourceTable } from '../pipeline/table/describe';
import type { KeySchema, SegmentResult } from '../pipeline/table/types';

/** The Step Functions calls the worker makes (an SFNClient fits; tests pass a stub). */
export interface TaskTokenClient {
  send(command: SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand): Promise<unknown>;
}

/** The SQS call the worker makes for a continuation (an SQSClient fits). */
export interface ContinuationQueue {
  send(command: SendMessageCommand): Promise<unknown>;
}

export interface WorkerDeps extends Omit<ScanSegmentDeps, 'keySchema' | 'telemetry'> {
  stepFunctions: TaskTokenClient;
  sqs: ContinuationQueue;
  queueUrl: string;
  /** The table this deployment backfills; a message naming another is refused. */
  table?: string;
  /** @default 120000 (env DDB2OS_TIME_RESERVE_MS) */
  timeReserveMs?: number;
  /** @default 60000, or a third of the message's heartbeatSeconds when that is shorter */
  heartbeatIntervalMs?: number;
  scan?: Pick<
    ScanSegmentOptions,
    'bulkMaxBytes' | 'bulkMaxDocs' | 'bulkConcurrency' | 'pageLimit' | 'bulkRetry'
  >;
  telemetry?: Partial<Telemetry>;
  /** Key schemas by table, filled on first use (one DescribeTable per table per environment). */
  keySchemas?: Map<string, KeySchema>;
}

/** What became of a message (the SQS record is acknowledged in every case). */
export type WorkerOutcome =
  | { action: 'succeeded'; result: SegmentResult }
  | { action: 'continued'; continuation: number }
  | { action: 'failed'; error: string; cause: string }
  | { action: 'stood-down'; reason: string };

/** Step Functions' answer when the token is closed: the task timed out, was answered, or never existed. */
const CLOSED_TOKEN_ERRORS = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

/**
 * Handles one segment message. Resolves when the message is dealt with (the
 * workflow was answered, a continuation sent, or there is nothing to do);
 * rejects when SQS should deliver it again: the body has no usable task token
 * (it then ends in the dead-letter queue), or Step Functions or SQS could not
 * be told (the checkpoint makes the next delivery cheap).
 */
export async function processSegmentMessage(
  body: string,
  deps: WorkerDeps,
  context: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<WorkerOutcome> {
  const { logger } = withDefaults(deps.telemetry);
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    logger.error('segment message is not JSON; it goes back to the queue and then to its dead-letter queue', {
      bodyBytes: body.length,
    });
    throw new InvalidMessageError('the segment message is not JSON', { cause: error });
  }
  const token = (raw as { taskToken?: unknown } | null)?.taskToken;
  if (typeof token !== 'string' || token === '') {
    logger.error(
      'segment message has no taskToken; it goes back to the queue and then to its dead-letter queue',
      {
        fields: typeof raw === 'object' && raw !== null ? Object.keys(raw) : [],
      },
    );
    throw new InvalidMessageError('the segment message has no taskToken, so Step Functions cannot be told');
  }
  const task = new TaskCallbacks(deps.stepFunctions, token, withDefaults(deps.telemetry));
  try {
    return await runSegment(raw as Record<string, unknown>, deps, context, task);
  } catch (error) {
    if (error instanceof CheckpointConflictError) {
      logger.info('another invocation owns this segment; acknowledging without an answer', {
        reason: error.message,
      });
      return { action: 'stood-down', reason: error.message };
    }
    return task.fail(error);
  }
}

async function runSegment(
  raw: Record<string, unknown>,
  deps: WorkerDeps,
  context: Pick<Context, 'getRemainingTimeInMillis'>,
  task: TaskCallbacks,
): Promise<WorkerOutcome> {
  const telemetry = withDefaults(deps.telemetry);
  const where = { runId: raw.runId, segment: raw.segment, continuation: raw.continuation ?? 0 };
  task.where = where;
  const { message, mapping, keySchema } = await prepareSegmentWork(raw, {
    table: deps.table,
    mapping: deps.mapping,
    keySchema: async (table) => {
      let keySchema = deps.keySchemas?.get(table);
      if (!keySchema) {
        keySchema = (await describeSourceTable(deps.dynamodb, table)).keySchema;
        deps.keySchemas?.set(table, keySchema);
      }
      return keySchema;
    },
  });
  if (!(await task.heartbeat())) return task.closedOutcome();

  const reserve = deps.timeReserveMs ?? DEFAULT_TIME_RESERVE_MS;
  const stop = new AbortController();
  const heartbeatSeconds = typeof raw.heartbeatSeconds === 'number' ? raw.heartbeatSeconds : undefined;
  const outcome = await scanSegment(
    message,
    { ...deps, mapping, keySchema, telemetry },
    {
      ...deps.scan,
      shouldYield: () => context.getRemainingTimeInMillis() < reserve,
      signal: stop.signal,
      heartbeat: async () => {
        if (!(await task.heartbeat())) stop.abort();
      },
      heartbeatIntervalMs: Math.min(
        deps.heartbeatIntervalMs ?? 60_000,
        heartbeatSeconds ? (heartbeatSeconds * 1000) / 3 : Number.POSITIVE_INFINITY,
      ),
    },
  );

  if (outcome.status === 'COMPLETED') {
    await task.succeed(outcome.result);
    return { action: 'succeeded', result: outcome.result };
  }
  if (task.closed) return task.closedOutcome();
  const continuation = (message.continuation ?? 0) + 1;
  await deps.sqs.send(
    new SendMessageCommand({
      QueueUrl: deps.queueUrl,
      MessageBody: JSON.stringify({ ...raw, continuation }),
    }),
  );
  telemetry.logger.info('segment handed on to a continuation', { ...where, next: continuation });
  return { action: 'continued', continuation };
}

/** The task token's three calls; a closed token is logged and otherwise ignored. */
class TaskCallbacks {
  closed = false;
  /** runId, segment and continuation once the message is read, for the logs. */
  where: Record<string, unknown> = {};

  constructor(
    private readonly client: TaskTokenClient,
    private readonly token: string,
    private readonly telemetry: Telemetry,
  ) {}

  /** False when the token is closed (the workflow no longer waits for this task). */
  async heartbeat(): Promise<boolean> {
    await this.call(new SendTaskHeartbeatCommand({ taskToken: this.token }));
    return !this.closed;
  }

  async succeed(result: SegmentResult): Promise<void> {
    await this.call(new SendTaskSuccessCommand({ taskToken: this.token, output: JSON.stringify(result) }));
  }

  async fail(error: unknown): Promise<WorkerOutcome> {
    const name = (error instanceof Error ? error.name : 'Error').slice(0, 256);
    const cause = describeError(error).slice(0, 32_000);
    this.telemetry.logger.error('segment failed; telling the workflow', {
      ...this.where,
      error: name,
      cause,
    });
    await this.call(new SendTaskFailureCommand({ taskToken: this.token, error: name, cause }));
    return { action: 'failed', error: name, cause };
  }

  closedOutcome(): WorkerOutcome {
    return { action: 'stood-down', reason: 'the task token is closed (timed out, answered or unknown)' };
  }

  private async call(command: SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand) {
    try {
      await this.client.send(command);
    } catch (error) {
      if (error instanceof Error && CLOSED_TOKEN_ERRORS.has(error.name)) {
        this.closed = true;
        this.telemetry.logger.warn(
          'the task token is closed; the workflow no longer waits for this segment',
          {
            ...this.where,
            call: command.constructor.name,
            error: error.name,
          },
        );
        return;
      }
      throw error;
    }
  }
}

/** Answers every record of a batch with the error that stopped the worker from starting. */
async function failBatch(
  event: SQSEvent,
  error: unknown,
  stepFunctions: TaskTokenClient,
  telemetry: Telemetry,
): Promise<SQSBatchResponse> {
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    let token: unknown;
    try {
      token = (JSON.parse(record.body) as { taskToken?: unknown }).taskToken;
    } catch {
      token = undefined;
    }
    try {
      if (typeof token !== 'string' || token === '') throw error;
      await new TaskCallbacks(stepFunctions, token, telemetry).fail(error);
    } catch {
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}

const logger = new Logger();
const metrics = new Metrics();
const tracer = new Tracer();
const telemetry = powertoolsTelemetry({ logger, metrics, tracer });
const processor = new BatchProcessor(EventType.SQS);
let stepFunctions: SFNClient | undefined;

/** Clients and mapping, once per execution environment. */
const started = coldStart(async (): Promise<Omit<WorkerDeps, 'stepFunctions'>> => {
  const config = readWorkerConfig();
  const dynamodb = tracedDynamoDb(tracer, config.dynamodbEndpoint);
  const s3 = tracedS3(tracer);
  const deadLetters: DeadLetterSink = new S3DeadLetterSink(s3, config.deadLetterBucket);
  const mapping = await bundledMapping(config);
  return {
    dynamodb,
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    checkpoints: new SegmentCheckpointStore(dynamodb, config.progressTable),
    deadLetters,
    mapping,
    sqs: tracer.captureAWSv3Client(new SQSClient({})),
    queueUrl: config.segmentQueueUrl,
    table: config.table,
    timeReserveMs: config.timeReserveMs,
    scan: { bulkMaxBytes: config.bulkMaxBytes, bulkMaxDocs: config.bulkMaxDocs },
    telemetry,
    keySchemas: new Map(),
  };
});

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  stepFunctions ??= tracer.captureAWSv3Client(new SFNClient({}));
  try {
    let deps: WorkerDeps;
    try {
      deps = { ...(await started()), stepFunctions };
    } catch (error) {
      // A missing variable or an unloadable mapping: tell the workflow (the next event tries again).
      logger.error('the worker could not start', { error: describeError(error) });
      return await failBatch(event, error, stepFunctions, telemetry);
    }
    return await processPartialResponse(
      event,
      async (record: SQSRecord) => {
        logger.appendKeys({ messageId: record.messageId });
        await processSegmentMessage(record.body, deps, context);
      },
      processor,
      { context, throwOnFullBatchFailure: false },
    );
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
};
