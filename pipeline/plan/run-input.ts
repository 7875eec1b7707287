/**
 * The whole workflow input, checked before the updater is paused ("Validate
 * and lock"): a typo must fail the start, not pause production sync and then
 * fail. Beyond what the planner checks (known keys, types, ranges), the input
 * must fit the deployment: no more segments at once than the worker may run
 * (the rest would wait in the queue without heartbeats until they time out),
 * and the index the updater writes to (a backfill of another index would
 * leave the updater writing the first; index changes go through a resync).
 */
import type { WorkflowInput, WorkflowMode } from '../contract/workflow';
import { ConfigurationError } from '../errors';
import { validateWorkflowConfig } from './plan-segments';

/** What the deployment fixes, as the definition's substitutions carry it. */
export interface DeploymentLimits {
  /** The worker's event source maximum concurrency (the stack's workerMaxConcurrency). */
  workerMaxConcurrency: number;
  /** The index the stream updater writes to (the deployment's index). */
  updaterIndex: string;
  /** Indices the mapping's routes send items to, whatever `index` says. */
  routeIndices?: string[];
}

/** The workflow's config after defaults: every key present, `null` where the planner decides. */
export interface RunConfig {
  totalSegments: number | null;
  maxConcurrency: number;
  readUnitsPerSecond: number | null;
  index: string;
  retentionBudgetHours: number;
  /** What the execution does; the definition's Choice states read it. */
  mode: WorkflowMode;
  /** Resync: keep the old indices after the swap. */
  keepOld: boolean;
  /** Resync: remove the unfinished resync instead of running one. */
  abort: boolean;
}

/**
 * Merges `input` over `defaults` (a key absent or null in the input keeps the
 * default) and checks the result; ConfigurationError naming the field.
 */
export function resolveRunInput(input: unknown, defaults: unknown, limits: DeploymentLimits): RunConfig {
  const given = validateWorkflowConfig(input);
  const fallback = validateWorkflowConfig(defaults);
  const pick = <K extends keyof WorkflowInput>(key: K): WorkflowInput[K] => given[key] ?? fallback[key];
  const maxConcurrency = pick('maxConcurrency');
  const retentionBudgetHours = pick('retentionBudgetHours');
  if (maxConcurrency === undefined || retentionBudgetHours === undefined) {
    throw new ConfigurationError('the deployment gives no default maxConcurrency or retentionBudgetHours');
  }
  if (maxConcurrency > limits.workerMaxConcurrency) {
    throw new ConfigurationError(
      `maxConcurrency ${maxConcurrency} is more than the worker's deployed concurrency of ` +
        `${limits.workerMaxConcurrency}, so segments would wait in the queue without heartbeats until they ` +
        `time out: give at most ${limits.workerMaxConcurrency}, or deploy with a higher workerMaxConcurrency`,
    );
  }
  const index = pick('index') ?? limits.updaterIndex;
  if (index !== limits.updaterIndex) {
    const routes = limits.routeIndices?.filter((route) => route !== limits.updaterIndex) ?? [];
    throw new ConfigurationError(
      `index ${JSON.stringify(index)} is not the index the stream updater writes to ` +
        `(${JSON.stringify(limits.updaterIndex)}), so the backfill would fill one index while the updater keeps ` +
        'the other: leave index out of the input (to change an index, deploy the new definition and start a resync)' +
        (routes.length > 0
          ? `; index only replaces the default index, the mapping's routes write to ${routes.join(', ')} either way`
          : ''),
    );
  }
  return {
    totalSegments: pick('totalSegments') ?? null,
    maxConcurrency,
    readUnitsPerSecond: pick('readUnitsPerSecond') ?? null,
    index,
    retentionBudgetHours,
    mode: pick('mode') ?? 'backfill',
    keepOld: pick('keepOld') ?? false,
    abort: pick('abort') ?? false,
  };
}
