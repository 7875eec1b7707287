/**
 * The run-lock Lambda: "Validate and lock" (`action: "start"`) checks the
 * whole input, takes the table's run lock and measures the updater's
 * backlog before the workflow pauses it; "Release lock" (`action:
 * "release"`) gives the lock back once the updater is enabled and records
 * the run as the last completed one. Output of start: StartRunResult.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { ConfigurationError } from '../pipeline/errors';
import { tracedDynamoDb } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { type RunLockChangeSource, readRunLockConfig } from '../pipeline/lambda/config';
import { parseMappingConfig } from '../pipeline/mapping/mapping';
import { type StartRunEvent, type StartRunResult, startRun } from '../pipeline/plan/start-run';
import { holderLiveness, releaseRunLock } from '../pipeline/progress/run-lock';
import { oldestUnappliedAt, readUpdaterPosition } from '../pipeline/summarize/retention-clock';
import {
  type ChangeSource,
  deployedBudgetHours,
  readSourceRetention,
} from '../pipeline/summarize/source-retention';

const logger = new Logger();
const tracer = new Tracer();

const started = coldStart(async () => {
  const config = readRunLockConfig();
  const mapping = parseMappingConfig(config.mapping, { index: config.index });
  return {
    config,
    routeIndices: (mapping.routes ?? []).map((route) => route.index),
    dynamodb: tracedDynamoDb(tracer, config.dynamodbEndpoint),
    sfn: tracer.captureAWSv3Client(new SFNClient({})),
    lambda: tracer.captureAWSv3Client(new LambdaClient({})),
    cloudwatch: tracer.captureAWSv3Client(new CloudWatchClient({})),
    changeSource: sourceWithClient(config.changeSource),
  };
});

/** The change source with the client that reads its retention. */
function sourceWithClient(source: RunLockChangeSource): ChangeSource {
  if (source.kind === 'kinesis') {
    return {
      kind: 'kinesis',
      kinesis: tracer.captureAWSv3Client(new KinesisClient({})),
      stream: source.streamArn,
    };
  }
  if (source.kind === 'sqs') {
    return { kind: 'sqs', sqs: tracer.captureAWSv3Client(new SQSClient({})), queueUrl: source.queueUrl };
  }
  return { kind: 'stream' };
}

/** A queue URL's last path segment is the queue's name (the metrics' QueueName). */
function queueNameOf(queueUrl: string): string {
  return queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
}

export type RunLockEvent =
  | ({ action: 'start' } & StartRunEvent)
  /** `abort`: the run aborted a resync; the lock is released without recording a completed run. */
  | { action: 'release'; runId: string; abort?: boolean };

export const handler = async (event: RunLockEvent, context: Context): Promise<StartRunResult | null> => {
  logger.addContext(context);
  try {
    const { config, routeIndices, dynamodb, sfn, lambda, cloudwatch, changeSource } = await started();
    if (event.action === 'release') {
      await releaseRunLock(
        dynamodb,
        config.progressTable,
        config.table,
        event.runId,
        new Date().toISOString(),
        { completed: event.abort !== true },
      );
      logger.info('run lock released', {
        runId: event.runId,
        table: config.table,
        abort: event.abort === true,
      });
      return null;
    }
    if (event.action !== 'start') {
      throw new ConfigurationError(
        `the run-lock function knows the actions start and release, not ${JSON.stringify((event as { action?: unknown }).action)}`,
      );
    }
    // The budget is decided here, before anything changes: at most what the source keeps.
    const retention = await readSourceRetention(changeSource);
    const given = (event.defaults ?? {}) as Record<string, unknown>;
    const defaults = {
      ...given,
      retentionBudgetHours: deployedBudgetHours(given.retentionBudgetHours, retention),
    };
    const result = await startRun(
      { ...event, defaults },
      {
        dynamodb,
        sourceRetentionHours: retention.retentionHours,
        progressTable: config.progressTable,
        table: config.table,
        routeIndices,
        isLive: holderLiveness({ sfn }),
        oldestUnapplied: async (everEnabled, runStart) =>
          oldestUnappliedAt(
            await readUpdaterPosition({
              lambda,
              cloudwatch,
              mappingUuid: config.updaterMappingUuid,
              updaterFunctionName: config.updaterFunctionName,
              ...(config.changeSource.kind === 'sqs'
                ? { changeQueueName: queueNameOf(config.changeSource.queueUrl) }
                : {}),
              everEnabled,
              now: runStart,
            }),
            runStart,
          ),
      },
    );
    logger.info('run validated and locked', { runId: event.runId, ...result });
    return result;
  } catch (error) {
    logger.error('run lock failed', { error: (error as Error).message, name: (error as Error).name });
    throw error;
  }
};
