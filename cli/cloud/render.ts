/** An execution as text: the Map Run's counts and bar, the status block and line, the run summary. */
import { type FieldConflictCount, fieldConflictLines } from '../../pipeline/bulk/field-conflicts';
import { bar, duration, fmt } from '../progress';
import type { ExecutionSnapshot, ItemCounts } from './execution';

/** `running 8 · pending 40 · failed 0 · timed out 0 · aborted 0` (the console's Map Run counts). */
export function countsText(counts: ItemCounts): string {
  const parts = [
    `running ${fmt(counts.running)}`,
    `pending ${fmt(counts.pending)}`,
    `failed ${fmt(counts.failed)}`,
    `timed out ${fmt(counts.timedOut)}`,
    `aborted ${fmt(counts.aborted)}`,
  ];
  if (counts.pendingRedrive > 0) parts.push(`pending redrive ${fmt(counts.pendingRedrive)}`);
  if (counts.failuresNotRedrivable > 0) parts.push(`not redrivable ${fmt(counts.failuresNotRedrivable)}`);
  return parts.join(' · ');
}

/** `52/100 segments succeeded` */
export function succeededText(counts: ItemCounts): string {
  return `${fmt(counts.succeeded)}/${fmt(counts.total)} segments succeeded`;
}

/** The share of the Map Run's items that succeeded, as a bar. */
export function mapRunBar(counts: ItemCounts, width = 30): string {
  return bar(counts.total > 0 ? counts.succeeded / counts.total : 0, width);
}

/** Seconds from the start to the stop, or to `now` while it runs. */
export function elapsedSeconds(snapshot: ExecutionSnapshot, now: Date): number {
  if (!snapshot.startDate) return 0;
  const end = snapshot.stopDate ? Date.parse(snapshot.stopDate) : now.getTime();
  return Math.max(0, (end - Date.parse(snapshot.startDate)) / 1000);
}

/** Why an execution has no Map Run yet (`start` and `status` say it). */
export const BEFORE_MAP_RUN =
  '(the workflow pauses the updater, or starts the resync, and plans the segments first)';

const WAITING_FOR_MAP_RUN = `Map Run not started yet ${BEFORE_MAP_RUN}`;

/** The block a terminal shows and redraws while following. */
export function statusBlock(snapshot: ExecutionSnapshot, now: Date): string[] {
  const head = `${snapshot.status}  ${duration(elapsedSeconds(snapshot, now))}${
    snapshot.redriveCount > 0 ? `  (redrive ${snapshot.redriveCount})` : ''
  }`;
  if (!snapshot.mapRun) return [head, WAITING_FOR_MAP_RUN];
  const { itemCounts } = snapshot.mapRun;
  return [
    head,
    `Map Run ${snapshot.mapRun.status}  ${mapRunBar(itemCounts)}  ${succeededText(itemCounts)}`,
    `  ${countsText(itemCounts)}`,
  ];
}

/** The one line a log gets when something changed (status, Map Run status or counts). */
export function statusLine(snapshot: ExecutionSnapshot): string {
  if (!snapshot.mapRun) return `${snapshot.status} ${WAITING_FOR_MAP_RUN}`;
  const { itemCounts } = snapshot.mapRun;
  return `${snapshot.status} Map Run ${snapshot.mapRun.status}: ${succeededText(itemCounts)} · ${countsText(itemCounts)}`;
}

const SUMMARY_LABELS: Record<string, string> = {
  segments: 'segments',
  scanned: 'items scanned',
  created: 'documents created',
  alreadyPresent: 'already present',
  failed: 'items failed (dead-lettered)',
  skipped: 'items skipped',
  retried: 'bulk retries',
  durationSeconds: 'duration',
  oldestUnappliedAt: 'oldest change the updater had not applied',
  targets: 'now served',
  tombstonesRemoved: 'delete markers removed',
  deletedIndices: 'old indices deleted',
};

/** A resync's output values as text: `alias → index` pairs, index lists. */
function resyncValueText(key: string, value: unknown): string | undefined {
  if (key === 'targets' && value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, string>)
      .map(([alias, index]) => `${alias} → ${index}`)
      .join(', ');
  }
  if (key === 'deletedIndices' && Array.isArray(value)) return value.length > 0 ? value.join(', ') : 'none';
  return undefined;
}

/** The execution output (the run summary) as aligned `label  value` lines. */
export function summaryLines(output: unknown): string[] {
  if (output === null || typeof output !== 'object' || Array.isArray(output)) {
    return output === undefined ? [] : [`  output  ${JSON.stringify(output)}`];
  }
  // A resync's swaps say again what its targets say.
  const entries = Object.entries(output as Record<string, unknown>).filter(
    ([key]) => key !== 'runId' && key !== 'durationHours' && key !== 'fieldConflicts' && key !== 'swaps',
  );
  const conflicts = (output as { fieldConflicts?: unknown }).fieldConflicts;
  const width = Math.max(...entries.map(([key]) => (SUMMARY_LABELS[key] ?? key).length), 0);
  return entries
    .map(([key, value]) => {
      const label = (SUMMARY_LABELS[key] ?? key).padEnd(width);
      const text =
        resyncValueText(key, value) ??
        (key === 'durationSeconds' && typeof value === 'number'
          ? `${duration(value)} (${fmt(value)} s)`
          : typeof value === 'number'
            ? fmt(value)
            : typeof value === 'string'
              ? value
              : JSON.stringify(value));
      return `  ${label}  ${text}`;
    })
    .concat(Array.isArray(conflicts) ? fieldConflictLines(conflicts as FieldConflictCount[]) : []);
}

/** Error and cause on one line: causes can hold newlines and JSON. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** `execution FAILED: States.ExceedToleratedFailureThreshold: <cause>; rerun the failed segments with: …` */
export function failureSentence(snapshot: ExecutionSnapshot, hint: string | undefined): string {
  const parts = [`execution ${snapshot.status}`];
  if (snapshot.error) parts.push(oneLine(snapshot.error));
  if (snapshot.cause) parts.push(oneLine(snapshot.cause));
  const head = parts.join(': ');
  return hint ? `${head}; rerun the failed segments with: ${hint}` : head;
}
