/**
 * The state of a table's resync in the progress table: one item per table,
 * `runId = "resync#<table>"`, `segment = 0`. The updater reads it before each
 * batch (a consistent read) to know where a change goes besides the serving
 * name; docs/guarantees.md ("Resync") has the phases and why each write is
 * safe:
 *
 * - FILLING: the backfill creates documents in the new indices; the updater
 *   also writes every change there, a delete as a tombstone that the
 *   backfill's create cannot overwrite.
 * - DRAINING: every segment is done; the updater deletes for real in the new
 *   indices, and the tombstones are removed once no writer that saw FILLING
 *   can still be running.
 * - no item: no resync; the updater writes to the serving names only.
 *
 * The swap ends the resync by deleting the item: from then on the serving
 * names point at the new indices.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { BackfillError } from '../errors';
import type { Item } from '../table/types';

export type ResyncPhase = 'FILLING' | 'DRAINING';

/** A table's resync in progress. */
export interface ResyncState {
  /** The run filling the new indices. */
  runId: string;
  phase: ResyncPhase;
  /** Serving name (alias, or a plain index before its first resync) → the index being filled for it. */
  targets: Record<string, string>;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601: when the phase last changed. */
  phaseChangedAt: string;
  /** The indices the serving names pointed at when the swap began (recordRetiringIndices); none before. */
  retiring?: string[];
}

/** The progress-table key of `table`'s resync state. */
export function resyncStateKey(table: string): Item {
  return { runId: { S: `resync#${table}` }, segment: { N: '0' } };
}

/** Reads `table`'s resync (consistent); undefined when none is in progress. */
export async function readResyncState(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
): Promise<ResyncState | undefined> {
  const { Item: item } = await dynamodb.send(
    new GetItemCommand({ TableName: progressTable, Key: resyncStateKey(table), ConsistentRead: true }),
  );
  if (!item?.resyncRunId?.S) return undefined;
  return {
    runId: item.resyncRunId.S,
    phase: item.phase?.S === 'DRAINING' ? 'DRAINING' : 'FILLING',
    targets: Object.fromEntries(
      Object.entries(item.targets?.M ?? {}).flatMap(([serving, next]) => (next.S ? [[serving, next.S]] : [])),
    ),
    startedAt: item.startedAt?.S ?? '',
    phaseChangedAt: item.phaseChangedAt?.S ?? '',
    ...(item.retiring?.L ? { retiring: item.retiring.L.flatMap((index) => (index.S ? [index.S] : [])) } : {}),
  };
}

/** Another run's resync of the table is in progress. */
export class ResyncInProgressError extends BackfillError {
  constructor(message: string) {
    super(message);
    this.name = 'ResyncInProgressError';
  }
}

/**
 * Starts (FILLING) the resync of `runId`, or finds it started: a rerun of the same run resumes it as it
 * stands. A resync of another run fails with a sentence naming it.
 */
export async function startResync(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
  targets: Record<string, string>,
): Promise<ResyncState> {
  const now = new Date().toISOString();
  try {
    await dynamodb.send(
      new PutItemCommand({
        TableName: progressTable,
        Item: {
          ...resyncStateKey(table),
          resyncRunId: { S: runId },
          phase: { S: 'FILLING' },
          targets: { M: Object.fromEntries(Object.entries(targets).map(([k, v]) => [k, { S: v }])) },
          startedAt: { S: now },
          phaseChangedAt: { S: now },
        },
        // A rerun of the same run finds its resync as it stands (targets, phase) and resumes it.
        ConditionExpression: 'attribute_not_exists(runId)',
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  const state = await readResyncState(dynamodb, progressTable, table);
  if (!state)
    throw new ResyncInProgressError(`the resync state of table ${table} vanished while it was written`);
  if (state.runId !== runId) {
    throw new ResyncInProgressError(
      `table ${table} is already being resynced by run ${state.runId} (since ${state.startedAt}): ` +
        `let it finish, or abort it with ddb2os resync --abort`,
    );
  }
  return state;
}

/** Moves `runId`'s resync to DRAINING (idempotent); fails if the table's resync is another run's. */
export async function drainResync(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
): Promise<void> {
  try {
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: progressTable,
        Key: resyncStateKey(table),
        UpdateExpression:
          'SET phase = :draining, phaseChangedAt = if_not_exists(drainingSince, :now), drainingSince = if_not_exists(drainingSince, :now)',
        ConditionExpression: 'resyncRunId = :run',
        ExpressionAttributeValues: {
          ':run': { S: runId },
          ':draining': { S: 'DRAINING' },
          ':now': { S: new Date().toISOString() },
        },
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ResyncInProgressError(`table ${table} has no resync of run ${runId} to finish`);
    }
    throw error;
  }
}

/**
 * Records, once, the indices the swap of `runId` retires (the ones the serving names point at before it)
 * and returns the recorded list: an attempt that runs again after the aliases moved no longer sees them
 * on the aliases, and finds the first attempt's list here (the condition keeps the first one).
 */
export async function recordRetiringIndices(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
  indices: string[],
): Promise<string[]> {
  try {
    const { Attributes: item } = await dynamodb.send(
      new UpdateItemCommand({
        TableName: progressTable,
        Key: resyncStateKey(table),
        UpdateExpression: 'SET retiring = if_not_exists(retiring, :indices)',
        ConditionExpression: 'resyncRunId = :run',
        ExpressionAttributeValues: {
          ':run': { S: runId },
          ':indices': { L: indices.map((index) => ({ S: index })) },
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return (item?.retiring?.L ?? []).flatMap((index) => (index.S ? [index.S] : []));
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  const state = await readResyncState(dynamodb, progressTable, table);
  // No resync left: this run's swap ended (a step invoked again after it succeeded); nothing retires now.
  if (!state) return [];
  throw new ResyncInProgressError(
    `table ${table}'s resync belongs to run ${state.runId}, not ${runId}: its aliases are not swapped`,
  );
}

/** Ends the resync (after the swap, or an abort): the updater writes to the serving names only. */
export async function endResync(
  dynamodb: DynamoDBClient,
  progressTable: string,
  table: string,
  runId: string,
): Promise<void> {
  try {
    await dynamodb.send(
      new DeleteItemCommand({
        TableName: progressTable,
        Key: resyncStateKey(table),
        ConditionExpression: 'attribute_not_exists(runId) OR resyncRunId = :run',
        ExpressionAttributeValues: { ':run': { S: runId } },
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ResyncInProgressError(
        `table ${table}'s resync belongs to another run than ${runId}: not ended`,
      );
    }
    throw error;
  }
}
