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
import { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@opensearch-project/opensearch';
import type { Context } from 'aws-lambda';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { type MappingConfig, parseMappingConfig } from '../pipeline/mapping/mapping';
import { type PlanInput, planBackfill, type SegmentPlan } from '../pipeline/plan/plan-segments';
import { type PlanConfig, readPlanConfig } from '../pipeline/scan/worker-config';

const logger = new Logger();
const tracer = new Tracer();

interface PlanDeps {
  config: PlanConfig;
  opensearch: Client;
  s3: S3Client;
  mapping: MappingConfig;
}

let coldStart: Promise<PlanDeps> | undefined;

async function prepare(): Promise<PlanDeps> {
  const config = readPlanConfig();
  return {
    config,
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    s3: tracer.captureAWSv3Client(new S3Client({})),
    // Only the indices matter here (default and routes), so a transform module is not loaded: it
    // is bundled into the worker and the updater only.
    mapping: parseMappingConfig(config.mapping, { index: config.index }),
  };
}

export const handler = async (event: PlanInput, context: Context): Promise<SegmentPlan> => {
  logger.addContext(context);
  try {
    // A failed start (a missing variable) is tried again on the next invocation.
    coldStart ??= prepare().catch((error: unknown) => {
      coldStart = undefined;
      throw error;
    });
    const { config, opensearch, s3, mapping } = await coldStart;
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
