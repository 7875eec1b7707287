/**
 * The updater Lambda: a DynamoDB Streams event source (ReportBatchItemFailures)
 * whose batches are applied to OpenSearch by applyStreamRecords. A batch that
 * could not be applied completely (OpenSearch or DynamoDB unavailable)
 * answers with the first record to retry; Lambda then retries from that
 * record, until the records are older than the mapping's maximum record age,
 * so nothing after it is lost or applied out of order. A poison record is
 * dead-lettered by the apply code and does not hold the shard back.
 * docs/stream-updater.md has the rules.
 *
 * The same function takes a Kinesis data stream's events (Kinesis Data
 * Streams for DynamoDB) and an SQS queue's (a fan-out of the table's stream),
 * told apart per record by `eventSource`. Those sources may repeat and
 * reorder a key's changes, so their batches are applied with ordering
 * 'unordered'; the partial batch response names the first Kinesis record to
 * retry, or every SQS message to retry (the others are deleted from the queue).
 *
 * Powertools' BatchProcessor is not used: it hands records over one by one,
 * and the updater needs the whole batch to send the last state of each item
 * once, in one bulk request.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type {
  Context,
  DynamoDBBatchResponse,
  DynamoDBRecord,
  DynamoDBStreamEvent,
  KinesisStreamEvent,
  KinesisStreamRecord,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import { type ApplyStreamDeps, applyStreamRecords } from '../pipeline/apply/apply-stream';
import {
  readKinesisRecord,
  readLambdaRecord,
  readSqsRecord,
  type StreamBatchRecord,
} from '../pipeline/apply/stream-records';
import { S3DeadLetterSink } from '../pipeline/dead-letter/dead-letter';
import { InvalidStreamRecordError } from '../pipeline/errors';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { bundledMapping, tracedDynamoDb, tracedS3 } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readUpdaterConfig } from '../pipeline/lambda/config';
import { checkMappingForTable } from '../pipeline/mapping/mapping';
import { describeSourceTable } from '../pipeline/table/describe';

/** What handleStreamEvent needs: the apply dependencies, and optionally where metrics go. */
export interface UpdaterDeps extends ApplyStreamDeps {
  metrics?: Metrics;
  /** Milliseconds since the epoch (for the lag metric). @default Date.now */
  now?: () => number;
}

/** What the updater's event source mappings deliver: a DynamoDB stream's, a Kinesis stream's or an SQS queue's batch. */
export type UpdaterEvent = DynamoDBStreamEvent | KinesisStreamEvent | SQSEvent;

/** The ReportBatchItemFailures answer; the three sources share its form. */
export type UpdaterResponse = DynamoDBBatchResponse;

type EventRecord = DynamoDBRecord | KinesisStreamRecord | SQSRecord;

/**
 * A record of the event at the door, by its `eventSource` (none: a DynamoDB
 * stream record, as before the other sources existed); `unordered` when its
 * source may repeat and reorder a key's changes.
 */
function readEventRecord(record: EventRecord): { record: StreamBatchRecord; unordered: boolean } {
  const source = (record as { eventSource?: unknown }).eventSource;
  if (source === undefined || source === 'aws:dynamodb') {
    return { record: readLambdaRecord(record as DynamoDBRecord), unordered: false };
  }
  if (source === 'aws:kinesis')
    return { record: readKinesisRecord(record as KinesisStreamRecord), unordered: true };
  if (source === 'aws:sqs') return { record: readSqsRecord(record as SQSRecord), unordered: true };
  return {
    record: {
      unreadable: new InvalidStreamRecordError(
        `an event record from ${String(source)}: the updater reads records from aws:dynamodb, aws:kinesis or aws:sqs`,
      ),
      sequenceNumber: '',
      keys: {},
    },
    unordered: true,
  };
}

/**
 * Applies one batch and answers in the ReportBatchItemFailures form: for a
 * DynamoDB or Kinesis stream the first record to retry (Lambda resumes the
 * shard there), for an SQS queue every message to retry; or nothing. A record
 * that cannot be read (no event name, sequence number or keys; an SQS body of
 * no known shape) is dead-lettered in its place (InvalidStreamRecordError)
 * and the batch goes on.
 */
export async function handleStreamEvent(event: UpdaterEvent, deps: UpdaterDeps): Promise<UpdaterResponse> {
  const read = ((event.Records ?? []) as EventRecord[]).map(readEventRecord);
  const changes = read.map(({ record }) => record);
  if (changes.length === 0) return { batchItemFailures: [] };
  const ordering = read.some(({ unordered }) => unordered) ? 'unordered' : 'stream';
  const result = await applyStreamRecords(changes, { ...deps, ordering });

  const { metrics } = deps;
  if (metrics) {
    metrics.addMetric('StreamRecordsApplied', MetricUnit.Count, result.applied);
    metrics.addMetric('StreamRecordsDeadLettered', MetricUnit.Count, result.deadLettered);
    const oldest = Math.min(...changes.map((change) => change.approximateCreationDateTime ?? Infinity));
    if (Number.isFinite(oldest)) {
      const lag = Math.max(0, (deps.now ?? Date.now)() / 1000 - oldest);
      metrics.addMetric('StreamLagSeconds', MetricUnit.Seconds, Math.round(lag));
    }
  }
  const logger = deps.telemetry?.logger;
  const { firstFailedSequenceNumber, retryPositions, ...counts } = result;
  if (firstFailedSequenceNumber === undefined) {
    logger?.info('stream batch applied', { records: changes.length, ordering, ...counts });
    return { batchItemFailures: [] };
  }
  // SQS retries each message named; a stream resumes its shard from the lowest sequence number named.
  const messages = (retryPositions ?? []).map((position) => changes[position]!.messageId);
  const itemIdentifiers =
    messages.length > 0 && messages.every((id) => id !== undefined) ? messages : [firstFailedSequenceNumber];
  logger?.warn('stream batch applied in part; Lambda retries the records named', {
    records: changes.length,
    ordering,
    ...counts,
    firstFailedSequenceNumber,
    retried: itemIdentifiers.length,
  });
  return { batchItemFailures: itemIdentifiers.map((itemIdentifier) => ({ itemIdentifier })) };
}

const logger = new Logger();
const metrics = new Metrics();
const tracer = new Tracer();

/** Clients, key schema (one DescribeTable) and mapping, once per execution environment. */
const started = coldStart(async (): Promise<ApplyStreamDeps> => {
  const config = readUpdaterConfig();
  const dynamodb = tracedDynamoDb(tracer, config.dynamodbEndpoint);
  const s3 = tracedS3(tracer);
  const { keySchema } = await describeSourceTable(dynamodb, config.table);
  const mapping = await bundledMapping(config);
  checkMappingForTable(mapping, keySchema);
  logger.info('updater ready', { table: config.table, index: mapping.index, keySchema });
  return {
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    dynamodb,
    table: config.table,
    keySchema,
    mapping,
    deadLetters: new S3DeadLetterSink(s3, config.deadLetterBucket),
    telemetry: { logger },
    bulk: { maxBytes: config.bulkMaxBytes, maxDocs: config.bulkMaxDocs },
  };
});

export const handler = async (event: UpdaterEvent, context: Context): Promise<UpdaterResponse> => {
  logger.addContext(context);
  const facade = tracer.getSegment();
  const segment = facade?.addNewSubsegment('## updater');
  if (segment) tracer.setSegment(segment);
  tracer.annotateColdStart();
  tracer.addServiceNameAnnotation();
  try {
    return await handleStreamEvent(event, { ...(await started()), metrics });
  } catch (error) {
    tracer.addErrorAsMetadata(error as Error);
    logger.error('the stream batch failed as a whole and will be retried', error as Error);
    throw error;
  } finally {
    segment?.close();
    if (facade) tracer.setSegment(facade);
    metrics.publishStoredMetrics();
  }
};
