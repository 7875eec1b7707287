/**
 * The steps of a resync, as the workflow definition runs them in `resync`
 * mode (statemachines/backfill.asl.json): the resync Lambda and the local
 * runner call these same functions. Each step is safe to run again (a
 * retried Lambda, a new execution resuming the table's resync):
 *
 * 1. startResyncStep ("Start resync"): creates `<serving>-<runId>` for every
 *    index the mapping writes, with the deployment's index definition and the
 *    tombstone field, then puts the state FILLING. An existing state keeps
 *    its run and targets: a new execution resumes it. The backfill then fills
 *    the new indices (create only) with the same segments and checkpoints.
 * 2. drainResyncStep ("Drain resync"): DRAINING. The definition then waits
 *    until no updater batch that read FILLING and no worker still creating
 *    can be running.
 * 3. removeResyncTombstones ("Remove tombstones"): fails if any remain.
 * 4. swapResyncAliases ("Swap aliases"): the new indices get their
 *    after-backfill settings, each serving name moves to its new index in one
 *    `_aliases` call, the old indices go (unless kept), the state ends.
 *
 * abortResync removes an unfinished resync: state first, then its indices.
 * docs/guarantees.md ("Resync") has the argument behind the order.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { BackfillError, SinkUnavailableError } from '../errors';
import { type AliasSwap, describeServingName, resyncIndexName, swapAlias } from '../index/alias';
import {
  createIndicesWithDefinition,
  type IndexDefinition,
  indexDefinitionFromPlanInput,
} from '../index/index-definition';
import { ITEM_FRIENDLY_MAPPINGS, restoreIndexAfterBackfill } from '../index/index-settings';
import type { MappingConfig } from '../mapping/mapping';
import { targetIndices } from '../plan/plan-segments';
import {
  drainResync,
  endResync,
  type ResyncPhase,
  readResyncState,
  recordRetiringIndices,
  startResync,
} from './resync-state';
import { removeTombstones, TOMBSTONE_MAPPING_PROPERTIES } from './tombstones';

/** What every step works on: the deployment's table, progress table, mapping and clients. */
export interface ResyncStepDeps {
  dynamodb: DynamoDBClient;
  opensearch: Client;
  progressTable: string;
  table: string;
  /** The indices the mapping writes (its `index` and routes' indices) are the serving names. */
  mapping: Pick<MappingConfig, 'index' | 'routes'>;
}

/** "Start resync"'s input. */
export interface StartResyncInput {
  /** The execution's name: the resync's run unless the table's resync exists. */
  runId: string;
  /** The deployment's index definition as the definition substitutes it (JSON text, `null` for none). */
  indexConfig?: unknown;
}

/** The resync the rest of the run works on. */
export interface ResyncRun {
  /** The resync's run: it keys the segment checkpoints, so a new execution resumes the same segments. */
  runId: string;
  /** Serving name → the index being filled for it. */
  targets: Record<string, string>;
  phase: ResyncPhase;
  /** True when the table's resync existed (this execution resumes it). */
  resumed: boolean;
}

/** The tombstones of a resync are still there: something that saw FILLING still writes. */
export class ResyncTombstonesRemainError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ResyncTombstonesRemainError';
  }
}

/** Serving name → new index (`<name>-<runId>`), for every index the mapping writes. */
export function resyncTargets(
  mapping: Pick<MappingConfig, 'index' | 'routes'>,
  runId: string,
): Record<string, string> {
  return Object.fromEntries(targetIndices(mapping).map((name) => [name, resyncIndexName(name, runId)]));
}

/**
 * The definition a resync index is created with: the deployment's (or ddb2os's defaults), plus the
 * tombstone field, so that a `"dynamic": "strict"` definition accepts tombstones too.
 */
export function resyncIndexDefinition(definition: IndexDefinition | undefined): IndexDefinition {
  const base = definition ?? {
    source: "ddb2os's default index definition",
    settings: {},
    mappings: { ...ITEM_FRIENDLY_MAPPINGS } as Record<string, unknown>,
  };
  return {
    ...base,
    mappings: {
      ...base.mappings,
      properties: {
        ...((base.mappings.properties ?? {}) as Record<string, unknown>),
        ...TOMBSTONE_MAPPING_PROPERTIES,
      },
    },
  };
}

/** "Start resync": the new indices, then the FILLING state (or the table's resync as it stands). */
export async function startResyncStep(input: StartResyncInput, deps: ResyncStepDeps): Promise<ResyncRun> {
  const existing = await readResyncState(deps.dynamodb, deps.progressTable, deps.table);
  const runId = existing?.runId ?? input.runId;
  const targets = existing?.targets ?? resyncTargets(deps.mapping, runId);
  // The indices exist before the state names them: the updater never writes to a missing index.
  await createIndicesWithDefinition(
    deps.opensearch,
    Object.values(targets),
    resyncIndexDefinition(indexDefinitionFromPlanInput(input.indexConfig)),
    undefined,
  );
  const state = await startResync(deps.dynamodb, deps.progressTable, deps.table, runId, targets);
  return { runId, targets: state.targets, phase: state.phase, resumed: existing !== undefined };
}

/** "Drain resync": every segment is done; the updater deletes for real in the new indices from now on. */
export async function drainResyncStep(input: { runId: string }, deps: ResyncStepDeps): Promise<void> {
  await drainResync(deps.dynamodb, deps.progressTable, deps.table, input.runId);
}

/** "Remove tombstones"'s input. */
export interface RemoveTombstonesInput {
  runId: string;
  targets: Record<string, string>;
  /** Removal rounds per index before giving up. @default 5 */
  rounds?: number;
}

/**
 * "Remove tombstones": deletes the run's tombstones from every new index, in rounds; returns how many
 * it deleted. ResyncTombstonesRemainError when some are still there after the last round.
 */
export async function removeResyncTombstones(
  input: RemoveTombstonesInput,
  deps: Pick<ResyncStepDeps, 'opensearch'>,
): Promise<{ tombstonesRemoved: number }> {
  const rounds = input.rounds ?? 5;
  let removed = 0;
  for (const index of Object.values(input.targets)) {
    for (let round = 1; ; round += 1) {
      const { deleted, remaining } = await removeTombstones(deps.opensearch, index, input.runId);
      removed += deleted;
      if (remaining === 0) break;
      if (round >= rounds) {
        throw new ResyncTombstonesRemainError(
          `${remaining} resync tombstones of run ${input.runId} are still in ${index} after ${rounds} rounds: ` +
            'an updater batch or a worker that saw the FILLING phase is still writing, so the index is not ' +
            'swapped in; the aliases stay where they were. Start the resync again once it has stopped: it resumes.',
        );
      }
    }
  }
  return { tombstonesRemoved: removed };
}

/** How long the old indices outlive the swap: searches already running on them end first. */
const OLD_INDEX_GRACE_MS = 2_000;

/** "Swap aliases"'s input. */
export interface SwapAliasesInput {
  runId: string;
  targets: Record<string, string>;
  /** Keep the indices the aliases left. @default false */
  keepOld?: boolean;
}

/** What the swap did. */
export interface SwapAliasesResult {
  swaps: AliasSwap[];
  /** Old indices deleted after the swap (none with keepOld). */
  deletedIndices: string[];
}

/**
 * "Swap aliases": the new indices get their after-backfill settings (replicas, refresh), each serving
 * name points at its new index (one `_aliases` call each), the old indices are deleted unless kept, and
 * the resync state ends: from then on the updater writes the serving names only.
 */
export async function swapResyncAliases(
  input: SwapAliasesInput,
  deps: ResyncStepDeps,
): Promise<SwapAliasesResult> {
  await restoreIndexAfterBackfill(deps.opensearch, Object.values(input.targets));
  // Recorded before anything moves: a retry of this step after the swap (the old indices' deletion
  // failed) finds the aliases on the new indices already, and would otherwise leave the old ones behind.
  const retiring = await recordRetiringIndices(
    deps.dynamodb,
    deps.progressTable,
    deps.table,
    input.runId,
    await aliasedIndices(deps.opensearch, input.targets),
  );
  const swaps: AliasSwap[] = [];
  for (const [serving, next] of Object.entries(input.targets)) {
    swaps.push(await swapAlias(deps.opensearch, serving, next));
  }
  const deletedIndices = input.keepOld ? [] : retiring;
  // A search that resolved the alias just before the swap may still be reading an old index: deleting
  // it under that search fails it (seen under load in test/cli/resync.test.ts). It ends first.
  if (deletedIndices.length > 0) await new Promise((resolve) => setTimeout(resolve, OLD_INDEX_GRACE_MS));
  await deleteIndices(deps.opensearch, deletedIndices);
  await endResync(deps.dynamodb, deps.progressTable, deps.table, input.runId);
  return { swaps, deletedIndices };
}

/** The indices each serving name points at as an alias, other than the index the resync filled for it. */
async function aliasedIndices(opensearch: Client, targets: Record<string, string>): Promise<string[]> {
  const indices: string[] = [];
  for (const [serving, next] of Object.entries(targets)) {
    const current = await describeServingName(opensearch, serving);
    if (current.kind === 'alias') indices.push(...current.indices.filter((index) => index !== next));
  }
  return indices;
}

/**
 * Removes the table's unfinished resync: its state first (no updater batch that starts afterwards
 * writes the indices about to go), then its new indices. The serving names stay as they are.
 * Undefined when the table has no resync.
 */
export async function abortResync(
  deps: Omit<ResyncStepDeps, 'mapping'>,
): Promise<{ runId: string; deletedIndices: string[] } | undefined> {
  const state = await readResyncState(deps.dynamodb, deps.progressTable, deps.table);
  if (!state) return undefined;
  await endResync(deps.dynamodb, deps.progressTable, deps.table, state.runId);
  const deletedIndices = Object.values(state.targets);
  await deleteIndices(deps.opensearch, deletedIndices);
  return { runId: state.runId, deletedIndices };
}

/** The "Abort resync" state's result, the same from the Lambda and the local run: what was removed, if anything. */
export async function abortResyncStep(
  deps: Omit<ResyncStepDeps, 'mapping'>,
): Promise<{ runId: string | null; deletedIndices: string[] }> {
  const aborted = await abortResync(deps);
  return { runId: aborted?.runId ?? null, deletedIndices: aborted?.deletedIndices ?? [] };
}

async function deleteIndices(opensearch: Client, indices: string[]): Promise<void> {
  for (const index of indices) {
    try {
      // A retried step finds the index gone already.
      await opensearch.indices.delete({ index, ignore_unavailable: true } as never);
    } catch (error) {
      throw new SinkUnavailableError(
        `OpenSearch could not delete index ${index}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}
