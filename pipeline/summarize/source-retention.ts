/**
 * How long the change source keeps a change, and so how long a backfill may
 * keep the updater paused (the retention guard's budget, retention-clock.ts
 * weighs the run against it). The updater replays from its source after the
 * backfill: every change made since the run started must still be there.
 *
 * - The table's DynamoDB stream keeps 24 hours, fixed.
 * - A Kinesis data stream keeps its RetentionPeriodHours (24 hours to 365
 *   days), read with DescribeStreamSummary.
 * - An SQS queue keeps a message MessageRetentionPeriod seconds (1 minute to
 *   14 days, 4 days by default), read with GetQueueAttributes.
 *
 * The budget is five sixths of the retention: the 20 of 24 hours the
 * workflow has always allowed a DynamoDB stream, leaving the rest for the
 * updater's retries before its source drops what it has not applied.
 *
 * Plain functions taking their clients: the local run and the cloud's
 * workflow read the same way.
 */
import { DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DYNAMODB_STREAM_RETENTION_HOURS } from '../contract/workflow';
import { ChangeSourceError } from '../errors';

/** SQS's MessageRetentionPeriod when a queue is created without one: 4 days. */
export const SQS_DEFAULT_RETENTION_SECONDS = 345_600;
/** The share of the retention a backfill may keep the updater paused (20 of the stream's 24 hours). */
export const RETENTION_BUDGET_SHARE = 5 / 6;

/**
 * Where the updater takes its changes from, with the client that reads it:
 * the table's DynamoDB stream (the default), a Kinesis data stream the table
 * streams to, or an SQS queue fed by a fan-out of its stream.
 */
export type ChangeSource =
  | { kind: 'stream' }
  /** `stream`: a stream name or ARN. */
  | { kind: 'kinesis'; kinesis: KinesisClient; stream: string }
  | { kind: 'sqs'; sqs: SQSClient; queueUrl: string };

/** What the guard needs to know about the source. */
export interface SourceRetention {
  kind: ChangeSource['kind'];
  /** Hours the source keeps a change. */
  retentionHours: number;
  /**
   * False when the source did not report its retention and the documented
   * default was assumed (ElasticMQ leaves MessageRetentionPeriod out).
   */
  reported: boolean;
  /** The retention budget derived from it: a backfill longer than this leaves the updater paused. */
  budgetHours: number;
}

/** The budget for a source that keeps changes `retentionHours` (4 decimals). */
export function retentionBudgetHours(retentionHours: number): number {
  return Math.round(retentionHours * RETENTION_BUDGET_SHARE * 10_000) / 10_000;
}

/**
 * The default budget of a deployed workflow: the deployment's (the stack's
 * `retentionBudget`, 20 hours unless set), lowered to the source's own
 * budget when the source keeps less (an SQS queue that keeps 12 hours); the
 * source's budget when the deployment gives none.
 */
export function deployedBudgetHours(deployed: unknown, retention: SourceRetention): number {
  return typeof deployed === 'number' ? Math.min(deployed, retention.budgetHours) : retention.budgetHours;
}

/**
 * Kinesis APIs take a stream by name or ARN; kinesalite accepts only the
 * name (docs/local-engines.md), so an ARN is passed as its name, which AWS
 * accepts as well.
 */
export function kinesisStreamName(nameOrArn: string): string {
  const marker = nameOrArn.indexOf(':stream/');
  return nameOrArn.startsWith('arn:') && marker >= 0
    ? nameOrArn.slice(marker + ':stream/'.length)
    : nameOrArn;
}

/** Reads the source's retention and derives the budget; ChangeSourceError when the source cannot be read. */
export async function readSourceRetention(source: ChangeSource): Promise<SourceRetention> {
  const result = (retentionHours: number, reported: boolean): SourceRetention => ({
    kind: source.kind,
    retentionHours,
    reported,
    budgetHours: retentionBudgetHours(retentionHours),
  });
  switch (source.kind) {
    case 'stream':
      return result(DYNAMODB_STREAM_RETENTION_HOURS, true);
    case 'kinesis': {
      const StreamName = kinesisStreamName(source.stream);
      try {
        const { StreamDescriptionSummary } = await source.kinesis.send(
          new DescribeStreamSummaryCommand({ StreamName }),
        );
        const hours = StreamDescriptionSummary?.RetentionPeriodHours;
        if (hours === undefined) throw new Error('DescribeStreamSummary returned no RetentionPeriodHours');
        return result(hours, true);
      } catch (error) {
        throw new ChangeSourceError(`the retention of Kinesis stream ${StreamName} cannot be read`, {
          cause: error,
        });
      }
    }
    case 'sqs': {
      let seconds: string | undefined;
      try {
        const { Attributes } = await source.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: source.queueUrl,
            AttributeNames: ['MessageRetentionPeriod'],
          }),
        );
        seconds = Attributes?.MessageRetentionPeriod;
      } catch (error) {
        throw new ChangeSourceError(`the retention of SQS queue ${source.queueUrl} cannot be read`, {
          cause: error,
        });
      }
      // SQS always reports it; ElasticMQ never does (docs/local-engines.md): assume SQS's default then.
      if (seconds === undefined) return result(SQS_DEFAULT_RETENTION_SECONDS / 3600, false);
      return result(Number(seconds) / 3600, true);
    }
  }
}
