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
 * Powertools' BatchProcessor is not used: it hands records over one by one,
 * and the updater needs the whole batch to send the last state of each item
 * once, in one bulk request.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { type ApplyStreamDeps, applyStreamRecords } from '../pipeline/apply/apply-stream';
import { readLambdaRecord } from '../pipeline/apply/stream-records';
import { S3DeadLetterSink } from '../pipeline/dead-letter/dead-letter';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { bundledMapping, tracedDynamoDb, tracedS3 } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readUpdaterConfig } from '../pipeline/lambda/config';
import { checkMappingForTable } from '../pipeline/mapping/mapping';
import { readResyncState } from '../pipeline/resync/resync-state';
import { describeSourceTable } from '../pipeline/table/describe';

/** What handleStreamEvent needs: the apply dependencies, and optionally where metrics go. */
export interface UpdaterDeps extends ApplyStreamDeps {
  metrics?: Metrics;
  /** Milliseconds since the epoch (for the lag metric). @default Date.now */
  now?: () => number;
}

/**
 * Applies one stream batch and answers in the ReportBatchItemFailures form:
 * the first record to retry, or nothing. A record without event name,
 * sequence number or keys is dead-lettered in its place
 * (InvalidStreamRecordError) and the batch goes on.
 */
export async function handleStreamEvent(
  event: DynamoDBStreamEvent,
  deps: UpdaterDeps,
): Promise<DynamoDBBatchResponse> {
  const changes = (event.Records ?? []).map(readLambdaRecord);
  if (changes.length === 0) return { batchItemFailures: [] };
  const result = await applyStreamRecords(changes, deps);

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
  const { firstFailedSequenceNumber, ...counts } = result;
  if (firstFailedSequenceNumber === undefined) {
    logger?.info('stream batch applied', { records: changes.length, ...counts });
    return { batchItemFailures: [] };
  }
  logger?.warn('stream batch applied in part; Lambda retries from the first failed record', {
    records: changes.length,
    ...counts,
    firstFailedSequenceNumber,
  });
  return { batchItemFailures: [{ itemIdentifier: firstFailedSequenceNumber }] };
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
  const { progressTable } = config;
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
    // A resync of the table is read before each batch (one consistent GetItem): its writes go to the new indices too.
    ...(progressTable ? { resync: () => readResyncState(dynamodb, progressTable, config.table) } : {}),
  };
});

export const handler = async (
  event: DynamoDBStreamEvent,
  context: Context,
): Promise<DynamoDBBatchResponse> => {
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
