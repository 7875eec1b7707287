/**
 * The summary of a backfill run: the sum of its segment checkpoints (a
 * paginated Query of the progress table), and how long the run took since
 * the plan. The counts add up like a segment's:
 * scanned = created + alreadyPresent + failed + skipped. Items that failed
 * because a field's type in the index does not fit them are also listed
 * per field, once each, with the explicit mapping that fixes it.
 */

import { addFieldConflicts, conflictFix, type FieldConflictCount } from '../bulk/field-conflicts';
import { BackfillError, ConfigurationError } from '../errors';
import type { SegmentCheckpointStore } from '../progress/checkpoint';
import { addCounts, emptyCounts } from '../table/types';
import { type RetentionNeed, retentionNeed } from './retention-clock';

/** A type literal (not an interface) so that it also fits `Record<string, unknown>`-shaped types. */
export type RunSummary = {
  runId: string;
  /** Segments of the run (the plan's totalSegments, else the checkpoints found). */
  segments: number;
  segmentsCompleted: number;
  scanned: number;
  created: number;
  alreadyPresent: number;
  failed: number;
  skipped: number;
  retried: number;
  /**
   * Fields whose type in the index mapping did not fit some items (an object
   * against a scalar), each once: its items are among `failed`, and `fix`
   * says which explicit mapping makes them land. Empty when there were none.
   */
  fieldConflicts: (FieldConflictCount & { fix: string })[];
  /** From the plan's startedAt to now. */
  durationSeconds: number;
  /** The same in hours. */
  durationHours: number;
} & RetentionNeed;

/** What summarizeRun needs; the workflow passes it flat, or as `{ config, plan }`. */
export interface SummarizeRequest {
  runId: string;
  totalSegments?: number;
  startedAt: string;
  /** The index the plan used (to restore its settings), when the input carries it. */
  index?: string;
  /** Where the retention clock starts ("Validate and lock"); startedAt when absent. */
  oldestUnappliedAt?: string;
}

/**
 * Reads `{ runId, totalSegments, startedAt, … }` or `{ config, plan }`
 * (plan: { runId, totalSegments, startedAt, index }). ConfigurationError
 * naming the missing or bad field.
 */
export function readSummarizeInput(raw: unknown): SummarizeRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigurationError('the summarize input must be a JSON object');
  }
  const outer = raw as Record<string, unknown>;
  const plan = (typeof outer.plan === 'object' && outer.plan !== null ? outer.plan : {}) as Record<
    string,
    unknown
  >;
  const config = (typeof outer.config === 'object' && outer.config !== null ? outer.config : {}) as Record<
    string,
    unknown
  >;
  const runId = outer.runId ?? plan.runId;
  if (typeof runId !== 'string' || runId === '') {
    throw new ConfigurationError('the summarize input has no runId (a non-empty string)');
  }
  const startedAt = outer.startedAt ?? plan.startedAt;
  if (typeof startedAt !== 'string' || Number.isNaN(Date.parse(startedAt))) {
    throw new ConfigurationError(
      `the summarize input's startedAt must be an ISO date, not ${JSON.stringify(startedAt)}`,
    );
  }
  const totalSegments = outer.totalSegments ?? plan.totalSegments;
  if (totalSegments !== undefined && totalSegments !== null) {
    if (typeof totalSegments !== 'number' || !Number.isInteger(totalSegments) || totalSegments < 1) {
      throw new ConfigurationError(
        `the summarize input's totalSegments must be a positive integer, not ${JSON.stringify(totalSegments)}`,
      );
    }
  }
  const index = outer.index ?? plan.index ?? config.index;
  const oldestUnappliedAt = outer.oldestUnappliedAt;
  if (
    oldestUnappliedAt !== undefined &&
    (typeof oldestUnappliedAt !== 'string' || Number.isNaN(Date.parse(oldestUnappliedAt)))
  ) {
    throw new ConfigurationError(
      `the summarize input's oldestUnappliedAt must be an ISO date, not ${JSON.stringify(oldestUnappliedAt)}`,
    );
  }
  return {
    runId,
    startedAt,
    ...(oldestUnappliedAt !== undefined ? { oldestUnappliedAt } : {}),
    ...(typeof totalSegments === 'number' ? { totalSegments } : {}),
    ...(typeof index === 'string' && index !== '' ? { index } : {}),
  };
}

/**
 * Sums the run's checkpoints. Throws BackfillError when segments the plan
 * made have no COMPLETED checkpoint: a summary must never hide a segment
 * that was not backfilled.
 */
export async function summarizeRun(
  input: unknown,
  deps: { checkpoints: SegmentCheckpointStore; now?: () => Date },
): Promise<RunSummary> {
  const request = readSummarizeInput(input);
  let counts = emptyCounts();
  let fieldConflicts: FieldConflictCount[] = [];
  let found = 0;
  const completed = new Set<number>();
  for await (const checkpoint of deps.checkpoints.checkpointsOf(request.runId)) {
    found += 1;
    counts = addCounts(counts, checkpoint.counts);
    fieldConflicts = addFieldConflicts(fieldConflicts, checkpoint.fieldConflicts ?? []);
    if (checkpoint.status === 'COMPLETED') completed.add(checkpoint.segment);
  }
  const segments = request.totalSegments ?? found;
  if (request.totalSegments !== undefined && completed.size < request.totalSegments) {
    const missing: number[] = [];
    for (let segment = 0; segment < request.totalSegments && missing.length < 10; segment++) {
      if (!completed.has(segment)) missing.push(segment);
    }
    throw new BackfillError(
      `run ${request.runId} has ${completed.size} of ${request.totalSegments} segments completed; ` +
        `segments ${missing.join(', ')}${request.totalSegments - completed.size > missing.length ? ', …' : ''} ` +
        'have no completed checkpoint, so the backfill is not complete',
    );
  }
  const nowDate = deps.now?.() ?? new Date();
  const now = nowDate.getTime();
  const durationSeconds = Math.max(0, Math.round((now - Date.parse(request.startedAt)) / 1000));
  return {
    runId: request.runId,
    segments,
    segmentsCompleted: completed.size,
    ...counts,
    fieldConflicts: fieldConflicts.map((conflict) => ({ ...conflict, fix: conflictFix(conflict) })),
    durationSeconds,
    durationHours: Math.round((durationSeconds / 3600) * 10_000) / 10_000,
    ...retentionNeed(earliest(request.oldestUnappliedAt, request.startedAt), nowDate),
  };
}

function earliest(first: string | undefined, second: string): string {
  return first !== undefined && Date.parse(first) < Date.parse(second) ? first : second;
}
