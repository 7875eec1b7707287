/**
 * The resync Lambda: the steps of the workflow's resync mode, one `action`
 * each ("Start resync" `start`, "Drain resync" `drain`, "Remove tombstones"
 * `removeTombstones`, "Swap aliases" `swap`, "Abort resync" `abort`). The
 * work is pipeline/resync/resync-steps.ts, which the local runner calls too.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { ConfigurationError } from '../pipeline/errors';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { tracedDynamoDb } from '../pipeline/lambda/clients';
import { coldStart } from '../pipeline/lambda/cold-start';
import { readResyncConfig } from '../pipeline/lambda/config';
import { parseMappingConfig } from '../pipeline/mapping/mapping';
import {
  abortResyncStep,
  drainResyncStep,
  type RemoveTombstonesInput,
  type ResyncRun,
  type ResyncStepDeps,
  removeResyncTombstones,
  type StartResyncInput,
  type SwapAliasesInput,
  type SwapAliasesResult,
  startResyncStep,
  swapResyncAliases,
} from '../pipeline/resync/resync-steps';

const logger = new Logger();
const tracer = new Tracer();

/** Clients and the serving names, once per execution environment. */
const started = coldStart(async (): Promise<ResyncStepDeps> => {
  const config = readResyncConfig();
  return {
    dynamodb: tracedDynamoDb(tracer, config.dynamodbEndpoint),
    opensearch: createOpenSearchClient({ endpoint: config.endpoint, signing: config.signing }),
    progressTable: config.progressTable,
    table: config.table,
    // Only the indices matter here (default and routes): no transform module is loaded.
    mapping: parseMappingConfig(config.mapping, { index: config.index }),
  };
});

export type ResyncEvent =
  | ({ action: 'start' } & StartResyncInput)
  | { action: 'drain'; runId: string }
  | ({ action: 'removeTombstones' } & RemoveTombstonesInput)
  | ({ action: 'swap' } & SwapAliasesInput)
  | { action: 'abort' };

export type ResyncStepResult =
  | ResyncRun
  | { tombstonesRemoved: number }
  | SwapAliasesResult
  | { runId: string | null; deletedIndices: string[] }
  | null;

/** Runs one step of a resync on `deps`; ConfigurationError for an unknown action. */
export async function runResyncAction(event: ResyncEvent, deps: ResyncStepDeps): Promise<ResyncStepResult> {
  switch (event.action) {
    case 'start':
      return startResyncStep(event, deps);
    case 'drain':
      await drainResyncStep(event, deps);
      return null;
    case 'removeTombstones':
      return removeResyncTombstones(event, deps);
    case 'swap':
      return swapResyncAliases(event, deps);
    case 'abort':
      return abortResyncStep(deps);
    default:
      throw new ConfigurationError(
        `the resync function knows the actions start, drain, removeTombstones, swap and abort, not ${JSON.stringify((event as { action?: unknown }).action)}`,
      );
  }
}

export const handler = async (event: ResyncEvent, context: Context): Promise<ResyncStepResult> => {
  logger.addContext(context);
  try {
    const result = await runResyncAction(event, await started());
    logger.info('resync step done', { action: event.action, result });
    return result;
  } catch (error) {
    logger.error('resync step failed', {
      action: event.action,
      error: (error as Error).message,
      name: (error as Error).name,
    });
    throw error;
  }
};
