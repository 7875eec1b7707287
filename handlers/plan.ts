/**
 * The plan Lambda ("Plan segments"): validates the workflow input and the
 * table, chooses the segment count, prepares the target indices for a bulk
 * load (with the deployment's index definition, which the state machine passes
 * as `indexConfig`), and writes a long segment list to S3. Input
 * `{ runId, config, table, indexConfig }` (table: DescribeTable's `Table`);
 * output the SegmentPlan.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { tracedS3 } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readPlanConfig } from '../pipeline/lambda/config';
import { parseMappingConfig } from '../pipeline/mapping/mapping';
import { type PlanInput, planBackfill, type SegmentPlan } from '../pipeline/plan/plan-segments';

const logger = new Logger();
const tracer = new Tracer();

/** Clients and mapping, once per execution environment. */
const started = coldStart(async () => {
  const config = readPlanConfig();
  return {
    config,
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    s3: tracedS3(tracer),
    // Only the indices matter here (default and routes), so a transform module is not loaded: it
    // is bundled into the worker and the updater only.
    mapping: parseMappingConfig(config.mapping, { index: config.index }),
  };
});

export const handler = async (event: PlanInput, context: Context): Promise<SegmentPlan> => {
  logger.addContext(context);
  try {
    const { config, opensearch, s3, mapping } = await started();
    const plan = await planBackfill(event, {
      opensearch,
      mapping,
      targetSegmentBytes: config.targetSegmentBytes,
      planStore: { s3, bucket: config.planBucket },
    });
    const { segments: _segments, ...summary } = plan;
    // An index config that was not applied (the index existed) is worth a line of its own in the logs.
    for (const warning of plan.warnings ?? []) logger.warn(warning);
    logger.info('backfill planned', summary);
    return plan;
  } catch (error) {
    logger.error('planning failed', { error: (error as Error).message, name: (error as Error).name });
    throw error;
  }
};
