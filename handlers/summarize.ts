/**
 * The summarize Lambda: adds up the run's segment checkpoints and puts back
 * the settings of the indices the plan created for the bulk load. Input
 * `{ runId, totalSegments, startedAt, retentionBudgetHours, index? }` (or
 * `{ config, plan }`); output the RunSummary.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import type { Context } from 'aws-lambda';
import { restoreIndexAfterBackfill } from '../pipeline/index/index-settings';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { type MappingConfig, parseMappingConfig } from '../pipeline/mapping/mapping';
import { targetIndices } from '../pipeline/plan/plan-segments';
import { SegmentCheckpointStore } from '../pipeline/progress/checkpoint';
import { readSummarizeConfig } from '../pipeline/scan/worker-config';
import { type RunSummary, readSummarizeInput, summarizeRun } from '../pipeline/summarize/summarize-run';

const logger = new Logger();
const tracer = new Tracer();

interface SummarizeDeps {
  checkpoints: SegmentCheckpointStore;
  opensearch: Client;
  mapping: MappingConfig;
}

let coldStart: Promise<SummarizeDeps> | undefined;

async function prepare(): Promise<SummarizeDeps> {
  const config = readSummarizeConfig();
  const dynamodb = tracer.captureAWSv3Client(
    new DynamoDBClient(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
  );
  return {
    checkpoints: new SegmentCheckpointStore(dynamodb, config.progressTable),
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    // Only the indices matter here (default and routes), so a transform module is not loaded: it
    // is bundled into the worker and the updater only.
    mapping: parseMappingConfig(config.mapping, { index: config.index }),
  };
}

export const handler = async (event: unknown, context: Context): Promise<RunSummary> => {
  logger.addContext(context);
  try {
    // A failed start (a missing variable) is tried again on the next invocation.
    coldStart ??= prepare().catch((error: unknown) => {
      coldStart = undefined;
      throw error;
    });
    const { checkpoints, opensearch, mapping } = await coldStart;
    const request = readSummarizeInput(event);
    const summary = await summarizeRun(request, { checkpoints });
    const indices = await restoreIndexAfterBackfill(
      opensearch,
      targetIndices({ ...mapping, index: request.index ?? mapping.index }),
    );
    logger.info('backfill summarized', { ...summary, indices });
    return summary;
  } catch (error) {
    logger.error('summarizing failed', { error: (error as Error).message, name: (error as Error).name });
    throw error;
  }
};
