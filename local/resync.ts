/**
 * A resync on one machine: the workflow definition run in mode "resync"
 * (statemachines/backfill.asl.json, the same definition the cloud runs),
 * while the local updater (the stream follower) runs the whole time, as the
 * updater Lambda does. docs/guarantees.md ("Resync") has the argument; the
 * steps, each bound to the function the resync Lambda calls
 * (pipeline/resync/resync-steps.ts):
 *
 * 1. "Start resync": the new indices (`<name>-<runId>`, one per index the
 *    mapping writes) with the index definition and the tombstone field, and
 *    the state FILLING: from its next page on, the follower writes them too.
 * 2. The same Map, segments, checkpoints and retries as `ddb2os run` fill the
 *    new indices (create only).
 * 3. "Drain resync": DRAINING. Where the cloud waits a Lambda timeout, the
 *    follower is stopped instead: its page in progress ends, so no page that
 *    read FILLING is still being applied when "Remove tombstones" runs.
 * 4. "Swap aliases", once the follower has drained the stream: each serving
 *    name moves to its new index; the old indices are deleted unless kept.
 *
 * A failed or interrupted resync leaves the serving names where they were;
 * the same call resumes it (the state keeps its run, which keys the segment
 * checkpoints), and `abortLocalResync` removes it.
 */
import type { Client } from '@opensearch-project/opensearch';
import type { AliasSwap } from '../pipeline/index/alias';
import { ensureProgressTable } from '../pipeline/progress/checkpoint';
import { readResyncState } from '../pipeline/resync/resync-state';
import { abortResync } from '../pipeline/resync/resync-steps';
import { describeSourceTable } from '../pipeline/table/describe';
import {
  createLocalUpdater,
  DEFAULT_PROGRESS_TABLE,
  type LocalBackfillOptions,
  type LocalBackfillResult,
  runLocalBackfill,
} from './backfill';

export { resyncTargets } from '../pipeline/resync/resync-steps';

export interface LocalResyncOptions
  extends Omit<LocalBackfillOptions, 'runId' | 'restart' | 'reportedDurationHours' | 'resyncUpdater'> {
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

/** Runs (or resumes) the resync of `options.table` into new indices and swaps them in. */
export async function runLocalResync(options: LocalResyncOptions): Promise<LocalResyncResult> {
  const progressTable = options.progressTable ?? DEFAULT_PROGRESS_TABLE;
  const { dynamodb, table } = options;
  await ensureProgressTable(dynamodb, progressTable);
  // The execution's name: a new resync's run, or the table's resync as it stands (resumed).
  const existing = await readResyncState(dynamodb, progressTable, table);
  const runId =
    existing?.runId ?? `resync-${new Date().toISOString().replaceAll(/[:.]/g, '-').toLowerCase()}`;
  if (existing) {
    options.onEvent?.({
      type: 'warning',
      message: `resuming the resync ${runId} of ${table} (phase ${existing.phase})`,
    });
  }

  const { keySchema } = await describeSourceTable(dynamodb, table);
  let updaterRecords = 0;
  const follower = await createLocalUpdater({
    dynamodb,
    streams: options.streams,
    opensearch: options.opensearch,
    table,
    keySchema,
    mapping: options.mapping,
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
    const { keepOld, onUpdaterBatch: _batch, tombstoneRounds, onPhase, ...backfill } = options;
    const result = await runLocalBackfill({
      ...backfill,
      progressTable,
      runId,
      input: { ...options.input, mode: 'resync', ...(keepOld ? { keepOld: true } : {}) },
      resyncUpdater: {
        // No page that read FILLING is still being applied once the follower has stopped.
        draining: () => follower.stop(),
        // Everything written to the table before now is in both indices.
        caughtUp: async () => {
          await follower.drain();
        },
        ...(tombstoneRounds === undefined ? {} : { tombstoneRounds }),
        ...(onPhase ? { onPhase } : {}),
      },
    });
    const outcome = result.resync ?? { targets: {}, swaps: [], deletedIndices: [], tombstonesRemoved: 0 };
    return { ...result, ...outcome, updaterRecords };
  } finally {
    await follower.stop();
  }
}

/** Removes a table's resync: its state, then its indices (the serving names are left as they are). */
export async function abortLocalResync(options: {
  dynamodb: LocalBackfillOptions['dynamodb'];
  opensearch: Client;
  table: string;
  progressTable?: string;
}): Promise<{ runId: string; deletedIndices: string[] } | undefined> {
  return abortResync({
    dynamodb: options.dynamodb,
    opensearch: options.opensearch,
    table: options.table,
    progressTable: options.progressTable ?? DEFAULT_PROGRESS_TABLE,
  });
}
