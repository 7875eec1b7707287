/**
 * A resync on one machine: the index is rebuilt while search keeps reading
 * the serving name, kept current by the updater the whole time, and swapped
 * in with one `_aliases` call. docs/guarantees.md ("Resync") has the argument;
 * the steps:
 *
 * 1. The new indices (`<name>-<runId>`, one per index the mapping writes) are
 *    created with the index definition and the tombstone field, and the
 *    resync state goes to FILLING: from the next batch on, the updater writes
 *    them too.
 * 2. The stream follower runs (it is never paused) while the backfill fills
 *    the new indices: the same workflow, segments, checkpoints and retries as
 *    `ddb2os run`.
 * 3. DRAINING: the follower's page in progress ends, the tombstones go, the
 *    follower drains the stream, and each serving name is swapped to its new
 *    index. The resync state is removed; the old indices are deleted unless
 *    kept.
 *
 * A failed or interrupted resync leaves the serving names where they were;
 * the same command resumes it (the state keeps its run), and `abortLocalResync`
 * removes it.
 */
import type { Client } from '@opensearch-project/opensearch';
import { BackfillError, describeError } from '../pipeline/errors';
import { type AliasSwap, resyncIndexName, swapAlias } from '../pipeline/index/alias';
import { createIndicesWithDefinition, indexOptionsFor } from '../pipeline/index/index-definition';
import { ITEM_FRIENDLY_MAPPINGS, type PrepareIndexOptions } from '../pipeline/index/index-settings';
import type { MappingConfig } from '../pipeline/mapping/mapping';
import { targetIndices } from '../pipeline/plan/plan-segments';
import { ensureProgressTable } from '../pipeline/progress/checkpoint';
import {
  drainResync,
  endResync,
  type ResyncState,
  readResyncState,
  startResync,
} from '../pipeline/resync/resync-state';
import { removeTombstones, TOMBSTONE_MAPPING_PROPERTIES } from '../pipeline/resync/tombstones';
import { retentionNeed } from '../pipeline/summarize/retention-clock';
import { describeSourceTable } from '../pipeline/table/describe';
import {
  createLocalUpdater,
  DEFAULT_PROGRESS_TABLE,
  type LocalBackfillOptions,
  type LocalBackfillResult,
  runLocalBackfill,
} from './backfill';

export interface LocalResyncOptions
  extends Omit<LocalBackfillOptions, 'runId' | 'restart' | 'reportedDurationHours'> {
  /** Keep the indices the serving names pointed at before (default: delete them after the swap). */
  keepOld?: boolean;
  /** Each page the follower applies while the resync runs. */
  onUpdaterBatch?: (records: number, lagSeconds: number | undefined) => void;
  /** Tombstone removal rounds before giving up (a writer that saw FILLING still writing). @default 5 */
  tombstoneRounds?: number;
  /** Each step of the resync as it happens, for a progress display. */
  onPhase?: (event: ResyncPhaseEvent) => void;
}

/** A step of a resync, in the order they happen (`filling` only while the backfill has segments to do). */
export type ResyncPhaseEvent =
  | { phase: 'indices'; runId: string; targets: Record<string, string>; resumed: boolean }
  | { phase: 'filling'; runId: string }
  | { phase: 'draining'; runId: string }
  | { phase: 'tombstones-removed'; count: number }
  | { phase: 'swapped'; swaps: AliasSwap[] }
  | { phase: 'old-indices'; deleted: string[]; kept: string[] };

export interface LocalResyncResult extends LocalBackfillResult {
  /** Serving name → the index it now points at. */
  targets: Record<string, string>;
  swaps: AliasSwap[];
  tombstonesRemoved: number;
  /** Old indices deleted after the swap (none with keepOld). */
  deletedIndices: string[];
  /** Stream records the follower applied during the resync. */
  updaterRecords: number;
}

/** How long the old indices outlive the swap: searches already running on them end first. */
const OLD_INDEX_GRACE_MS = 2_000;

/** Serving name → new index, for every index the mapping writes. */
export function resyncTargets(
  mapping: Pick<MappingConfig, 'index' | 'routes'>,
  runId: string,
): Record<string, string> {
  return Object.fromEntries(targetIndices(mapping).map((name) => [name, resyncIndexName(name, runId)]));
}

/** The mapping with each serving name replaced by its new index: what the backfill of a resync writes to. */
function retargeted(mapping: MappingConfig, targets: Record<string, string>): MappingConfig {
  const to = (name: string) => targets[name] ?? name;
  return {
    ...mapping,
    index: to(mapping.index),
    ...(mapping.routes
      ? { routes: mapping.routes.map((route) => ({ ...route, index: to(route.index) })) }
      : {}),
  };
}

/** Index options of a resync index: the definition's (or ddb2os's defaults) plus the tombstone field. */
function resyncIndexOptions(options: LocalResyncOptions): PrepareIndexOptions {
  const base = options.indexConfig
    ? indexOptionsFor(options.indexConfig)
    : { mappingBody: { ...ITEM_FRIENDLY_MAPPINGS } as Record<string, unknown> };
  const mappingBody = base.mappingBody ?? {};
  return {
    ...base,
    mappingBody: {
      ...mappingBody,
      properties: {
        ...((mappingBody.properties ?? {}) as Record<string, unknown>),
        ...TOMBSTONE_MAPPING_PROPERTIES,
      },
    },
  };
}

/** Runs (or resumes) the resync of `options.table` into new indices and swaps them in. */
export async function runLocalResync(options: LocalResyncOptions): Promise<LocalResyncResult> {
  const progressTable = options.progressTable ?? DEFAULT_PROGRESS_TABLE;
  const { dynamodb, opensearch, table, mapping } = options;
  await ensureProgressTable(dynamodb, progressTable);
  const existing = await readResyncState(dynamodb, progressTable, table);
  const runId =
    existing?.runId ?? `resync-${new Date().toISOString().replaceAll(/[:.]/g, '-').toLowerCase()}`;
  const targets = existing?.targets ?? resyncTargets(mapping, runId);
  if (existing) {
    options.onEvent?.({
      type: 'warning',
      message: `resuming the resync ${runId} of ${table} (phase ${existing.phase})`,
    });
  }

  // The new indices exist before the state names them: the updater never writes to a missing index.
  const indexOptions = resyncIndexOptions(options);
  await createIndicesWithDefinition(
    opensearch,
    Object.values(targets),
    options.indexConfig && { ...options.indexConfig, mappings: indexOptions.mappingBody ?? {} },
    indexOptions,
  );
  const state = await startResync(dynamodb, progressTable, table, runId, targets);
  const phase = options.onPhase ?? (() => {});
  phase({ phase: 'indices', runId, targets, resumed: existing !== undefined });

  const { keySchema } = await describeSourceTable(dynamodb, table);
  let updaterRecords = 0;
  const follower = await createLocalUpdater({
    dynamodb,
    streams: options.streams,
    opensearch,
    table,
    keySchema,
    mapping,
    progressTable,
    deadLetterDir: options.deadLetterDir,
    ...(options.bulk ? { bulk: options.bulk } : {}),
    onBatch: (records, lag) => {
      updaterRecords += records;
      options.onUpdaterBatch?.(records, lag);
    },
  });
  follower.start();
  options.onEvent?.({ type: 'updater', state: 'Enabled' });
  try {
    if (state.phase === 'FILLING') phase({ phase: 'filling', runId });
    const result =
      state.phase === 'FILLING'
        ? await runLocalBackfill({
            ...options,
            index: targets[options.index] ?? options.index,
            mapping: retargeted(mapping, targets),
            progressTable,
            runId,
            // The indices exist (created above with the definition and the tombstone field).
            indexConfig: undefined,
            // The updater is never paused in a resync, so the stream's retention does not bound it.
            reportedDurationHours: 0,
          })
        : undefined;
    await drainResync(dynamodb, progressTable, table, runId);
    phase({ phase: 'draining', runId });
    // No page that read FILLING is still being applied once the follower has stopped.
    await follower.stop();
    const tombstonesRemoved = await removeAllTombstones(opensearch, state, options.tombstoneRounds ?? 5);
    phase({ phase: 'tombstones-removed', count: tombstonesRemoved });
    // Caught up: everything written to the table before now is in both indices.
    await follower.drain();
    const swaps: AliasSwap[] = [];
    for (const [serving, next] of Object.entries(targets))
      swaps.push(await swapAlias(opensearch, serving, next));
    phase({ phase: 'swapped', swaps });
    await endResync(dynamodb, progressTable, table, runId);
    const previous = swaps.flatMap((swap) => swap.previousIndices);
    const deletedIndices = options.keepOld ? [] : previous;
    // A search that resolved the alias just before the swap may still be reading the old index:
    // deleting it under that search fails it (seen under load in test/cli/resync.test.ts).
    if (deletedIndices.length > 0) await new Promise((resolve) => setTimeout(resolve, OLD_INDEX_GRACE_MS));
    for (const index of deletedIndices) await opensearch.indices.delete({ index });
    phase({ phase: 'old-indices', deleted: deletedIndices, kept: options.keepOld ? previous : [] });
    return {
      ...(result ?? (await finishedRun(options, runId, keySchema))),
      targets,
      swaps,
      tombstonesRemoved,
      deletedIndices,
      updaterRecords,
    };
  } finally {
    await follower.stop();
  }
}

/** The result of a resync resumed after its backfill had finished (phase DRAINING). */
async function finishedRun(
  options: LocalResyncOptions,
  runId: string,
  keySchema: LocalBackfillResult['keySchema'],
): Promise<LocalBackfillResult> {
  return {
    runId,
    keySchema,
    deadLetterLocation: options.deadLetterDir ?? '.ddb2os',
    summary: {
      runId,
      segments: 0,
      segmentsCompleted: 0,
      scanned: 0,
      created: 0,
      alreadyPresent: 0,
      failed: 0,
      skipped: 0,
      retried: 0,
      fieldConflicts: [],
      durationSeconds: 0,
      durationHours: 0,
      ...retentionNeed(new Date().toISOString(), new Date()),
    },
  };
}

async function removeAllTombstones(opensearch: Client, state: ResyncState, rounds: number): Promise<number> {
  let removed = 0;
  for (const index of Object.values(state.targets)) {
    for (let round = 1; ; round += 1) {
      const { deleted, remaining } = await removeTombstones(opensearch, index, state.runId);
      removed += deleted;
      if (remaining === 0) break;
      if (round >= rounds) {
        throw new BackfillError(
          `${remaining} resync tombstones are still in ${index} after ${rounds} rounds: a writer that saw ` +
            'the FILLING phase is still running; run the same command again',
        );
      }
    }
  }
  return removed;
}

/** Removes a table's resync: its state, then its indices (the serving names are left as they are). */
export async function abortLocalResync(options: {
  dynamodb: LocalBackfillOptions['dynamodb'];
  opensearch: Client;
  table: string;
  progressTable?: string;
}): Promise<{ runId: string; deletedIndices: string[] } | undefined> {
  const progressTable = options.progressTable ?? DEFAULT_PROGRESS_TABLE;
  const state = await readResyncState(options.dynamodb, progressTable, options.table);
  if (!state) return undefined;
  // The state first: no updater batch that starts after this writes the indices about to go.
  await endResync(options.dynamodb, progressTable, options.table, state.runId);
  const deletedIndices: string[] = [];
  for (const index of Object.values(state.targets)) {
    try {
      await options.opensearch.indices.delete({ index, ignore_unavailable: true } as never);
      deletedIndices.push(index);
    } catch (error) {
      throw new BackfillError(`could not delete the resync index ${index}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
  return { runId: state.runId, deletedIndices };
}
