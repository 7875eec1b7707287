/**
 * The summarize Lambda: adds up the run's segment checkpoints and puts back
 * the settings of the indices the plan created for the bulk load. Input
 * `{ runId, totalSegments, startedAt, retentionBudgetHours, index? }` (or
 * `{ config, plan }`); output the RunSummary.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { restoreIndexAfterBackfill } from '../pipeline/index/index-settings';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { tracedDynamoDb } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readSummarizeConfig } from '../pipeline/lambda/config';
import { parseMappingConfig } from '../pipeline/mapping/mapping';
import { targetIndices } from '../pipeline/plan/plan-segments';
import { SegmentCheckpointStore } from '../pipeline/progress/checkpoint';
import { type RunSummary, readSummarizeInput, summarizeRun } from '../pipeline/summarize/summarize-run';

const logger = new Logger();
const tracer = new Tracer();

/** Clients and mapping, once per execution environment. */
const started = coldStart(async () => {
  const config = readSummarizeConfig();
  const dynamodb = tracedDynamoDb(tracer, config.dynamodbEndpoint);
  return {
    checkpoints: new SegmentCheckpointStore(dynamodb, config.progressTable),
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    // Only the indices matter here (default and routes), so a transform module is not loaded: it
    // is bundled into the worker and the updater only.
    mapping: parseMappingConfig(config.mapping, { index: config.index }),
  };
});

export const handler = async (event: unknown, context: Context): Promise<RunSummary> => {
  logger.addContext(context);
  try {
    const { checkpoints, opensearch, mapping } = await started();
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
