/**
 * The backfill workflow's input: what a user passes to start-execution (or
 * `ddb2os run`'s flags become). The state machine's "Read input" state gives
 * each key a default, the planner refuses any other key, and `ddb2os start`
 * lists them in its help; all three read the keys from here, and a test
 * holds the definition file to them.
 */

/** The workflow's input, as a user passes it (every key optional). */
export interface WorkflowInput {
  /** Parallel-scan segments; absent or null: the planner decides from the table's size. */
  totalSegments?: number | null;
  /** Segments scanned at once (the Distributed Map's MaxConcurrency). */
  maxConcurrency?: number;
  /** Read budget per segment, in read capacity units per second; absent or null: none. */
  readUnitsPerSecond?: number | null;
  /** The index to fill instead of the deployment's default index. */
  index?: string;
  /** Hours the backfill may take before the updater is left paused (at most 24, the stream's retention). */
  retentionBudgetHours?: number;
  /**
   * `backfill` (default): fill the serving index with the updater paused. `resync`: fill new indices
   * while the updater keeps running, then swap the aliases (docs/deploy.md, "Resync").
   */
  mode?: WorkflowMode;
  /** Resync only: keep the indices the aliases pointed at before the swap (default: delete them). */
  keepOld?: boolean;
  /** Resync only: remove the table's unfinished resync (its new indices and state) instead of running one. */
  abort?: boolean;
}

/** What a workflow execution does. */
export const WORKFLOW_MODES = ['backfill', 'resync'] as const;
export type WorkflowMode = (typeof WORKFLOW_MODES)[number];

/** Every key the workflow input may have. */
export const WORKFLOW_INPUT_KEYS = [
  'totalSegments',
  'maxConcurrency',
  'readUnitsPerSecond',
  'index',
  'retentionBudgetHours',
  'mode',
  'keepOld',
  'abort',
] as const satisfies readonly (keyof WorkflowInput)[];
