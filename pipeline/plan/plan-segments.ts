/**
 * The plan of a backfill: how many parallel-scan segments, and how the Map
 * state gets their list. About `targetSegmentBytes` of table per segment
 * (256 MiB by default: a segment then takes minutes, not hours, and a failed
 * one costs little to redo), at least 1 and at most DynamoDB's 1,000,000; an
 * explicit `totalSegments` wins. The list travels in the state while its JSON
 * stays well below Step Functions' 256 KiB; a longer one goes to S3 for the
 * Map's item reader.
 */
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@opensearch-project/opensearch';
import { planListKey } from '../contract/bucket';
import { indexNameProblem } from '../contract/index-name';
import { WORKFLOW_INPUT_KEYS, WORKFLOW_MODES, type WorkflowInput } from '../contract/workflow';
import { ConfigurationError } from '../errors';
import {
  createIndicesWithDefinition,
  definitionNotAppliedWarning,
  indexDefinitionFromPlanInput,
} from '../index/index-definition';
import type { IndexPreparation, PrepareIndexOptions } from '../index/index-settings';
import type { MappingConfig } from '../mapping/mapping';
import { retargetMapping } from '../resync/resync-targets';
import { requireStream, sourceTableFrom } from '../table/describe';
import type { KeySchema } from '../table/types';

export const DEFAULT_TARGET_SEGMENT_BYTES = 256 * 1024 * 1024;
export const MAX_SEGMENTS = 1_000_000;
/** Largest segment list (JSON bytes) that travels inline; the rest of the 256 KiB state stays free. */
export const MAX_INLINE_SEGMENT_LIST_BYTES = 200 * 1024;
/** Step Functions' limit on a Distributed Map's MaxConcurrency. */
export const MAX_CONCURRENCY = 10_000;

/** What the plan handler (and the local runner's "Plan segments") receives. */
export interface PlanInput {
  /** The execution's name; a new id when absent. */
  runId?: string;
  config: unknown;
  /** DescribeTable's `Table`, as JSON. */
  table: unknown;
  /**
   * The deployment's index definition (see index-definition.ts): its JSON text
   * as the state machine passes it, or the object; `null`/absent for none.
   */
  indexConfig?: unknown;
  /** A resync's serving name → new index (the segments write there); absent or empty in a backfill. */
  targets?: Record<string, string> | null;
}

export type SegmentPlan = {
  runId: string;
  table: string;
  index: string;
  totalSegments: number;
  itemSource: 'INLINE' | 'S3';
  /** The segment numbers, when itemSource is INLINE. */
  segments?: number[];
  /** Where the list is, when itemSource is S3. */
  bucket?: string;
  key?: string;
  startedAt: string;
  keySchema: KeySchema;
  /** DescribeTable's estimates (updated about every six hours). */
  itemCount: number;
  tableSizeBytes: number;
  /** Things the user should know that do not stop the backfill (an index config that was not applied). */
  warnings?: string[];
};

export interface PlanSettings {
  /** @default 256 MiB (env DDB2OS_TARGET_SEGMENT_BYTES) */
  targetSegmentBytes?: number;
  /** Index when the config names none (the deployment's DDB2OS_INDEX_NAME). */
  defaultIndex?: string;
  /** Bucket for a long segment list; without one the list always travels inline (local runs). */
  bucket?: string;
  now?: () => Date;
}

/**
 * Checks the workflow input (after the state machine's defaults, the "Plan
 * segments" state's `config`); one ConfigurationError naming the first bad field.
 */
export function validateWorkflowConfig(raw: unknown): WorkflowInput {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigurationError('the workflow input must be a JSON object');
  }
  const input = raw as Record<string, unknown>;
  for (const name of Object.keys(input)) {
    if (!(WORKFLOW_INPUT_KEYS as readonly string[]).includes(name)) {
      throw new ConfigurationError(
        `the workflow input field ${name} is not known (known: ${WORKFLOW_INPUT_KEYS.join(', ')})`,
      );
    }
  }
  const config: WorkflowInput = {};
  if (input.totalSegments !== undefined && input.totalSegments !== null) {
    config.totalSegments = integerIn(input.totalSegments, 'totalSegments', 1, MAX_SEGMENTS);
  }
  if (input.maxConcurrency !== undefined && input.maxConcurrency !== null) {
    config.maxConcurrency = integerIn(input.maxConcurrency, 'maxConcurrency', 1, MAX_CONCURRENCY);
  }
  if (input.readUnitsPerSecond !== undefined && input.readUnitsPerSecond !== null) {
    const value = input.readUnitsPerSecond;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigurationError(
        `readUnitsPerSecond must be a positive number of read capacity units per second per segment, not ${JSON.stringify(value)}`,
      );
    }
    config.readUnitsPerSecond = value;
  }
  if (input.index !== undefined && input.index !== null) config.index = checkedIndex(input.index);
  if (input.retentionBudgetHours !== undefined && input.retentionBudgetHours !== null) {
    const value = input.retentionBudgetHours;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 24) {
      throw new ConfigurationError(
        `retentionBudgetHours must be a number of hours above 0 and at most 24 (the stream keeps 24 hours), not ${JSON.stringify(value)}`,
      );
    }
    config.retentionBudgetHours = value;
  }
  if (input.mode !== undefined && input.mode !== null) {
    if (!(WORKFLOW_MODES as readonly unknown[]).includes(input.mode)) {
      throw new ConfigurationError(
        `mode must be ${WORKFLOW_MODES.map((mode) => JSON.stringify(mode)).join(' or ')}, not ${JSON.stringify(input.mode)}`,
      );
    }
    config.mode = input.mode as WorkflowInput['mode'];
  }
  for (const flag of ['keepOld', 'abort'] as const) {
    const value = input[flag];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'boolean') {
      throw new ConfigurationError(`${flag} must be true or false, not ${JSON.stringify(value)}`);
    }
    // A backfill has no old index to keep and no resync to abort: the flag would be silently ignored.
    if (value && config.mode !== 'resync') {
      throw new ConfigurationError(`${flag} applies to a resync only: give it with "mode": "resync"`);
    }
    config[flag] = value;
  }
  return config;
}

/** The facts of DescribeTable's `Table` that the plan needs; SourceTableError when it cannot be backfilled. */
export function readTableDescription(raw: unknown): {
  name: string;
  itemCount: number;
  sizeBytes: number;
  keySchema: KeySchema;
} {
  const table = requireStream(sourceTableFrom(raw));
  return {
    name: table.name,
    itemCount: table.itemCount,
    sizeBytes: table.sizeBytes,
    keySchema: table.keySchema,
  };
}

/** ceil(size / target), at least 1, at most 1,000,000. */
export function segmentCount(
  tableSizeBytes: number,
  targetSegmentBytes = DEFAULT_TARGET_SEGMENT_BYTES,
): number {
  if (!Number.isFinite(targetSegmentBytes) || targetSegmentBytes <= 0) {
    throw new ConfigurationError(
      `the target segment size must be a positive number of bytes, not ${targetSegmentBytes}`,
    );
  }
  const count = Math.ceil(Math.max(0, tableSizeBytes) / targetSegmentBytes);
  return Math.min(MAX_SEGMENTS, Math.max(1, count));
}

/** Bytes of `JSON.stringify([0, 1, …, count − 1])`, without building it. */
export function segmentListBytes(count: number): number {
  if (count <= 0) return 2;
  let digits = 0;
  for (let width = 1; ; width++) {
    const low = width === 1 ? 0 : 10 ** (width - 1);
    if (low >= count) break;
    digits += (Math.min(count, 10 ** width) - low) * width;
  }
  return 2 + digits + (count - 1);
}

/**
 * The plan, without side effects: validates the config and the table, counts
 * the segments and decides where their list goes.
 */
export function planSegments(input: PlanInput, settings: PlanSettings = {}): SegmentPlan {
  const config = validateWorkflowConfig(input.config);
  const table = readTableDescription(input.table);
  const index = config.index ?? (settings.defaultIndex ? checkedIndex(settings.defaultIndex) : undefined);
  if (index === undefined) {
    throw new ConfigurationError('index is not set: give it in the workflow input or the deployment');
  }
  const runId =
    input.runId === undefined || input.runId === null ? newRunId(table.name) : checkedRunId(input.runId);
  const totalSegments = config.totalSegments ?? segmentCount(table.sizeBytes, settings.targetSegmentBytes);
  const base = {
    runId,
    table: table.name,
    index,
    totalSegments,
    startedAt: (settings.now?.() ?? new Date()).toISOString(),
    keySchema: table.keySchema,
    itemCount: table.itemCount,
    tableSizeBytes: table.sizeBytes,
  };
  if (settings.bucket && segmentListBytes(totalSegments) > MAX_INLINE_SEGMENT_LIST_BYTES) {
    return { ...base, itemSource: 'S3', bucket: settings.bucket, key: planListKey(runId) };
  }
  return { ...base, itemSource: 'INLINE', segments: Array.from({ length: totalSegments }, (_, i) => i) };
}

export interface PlanBackfillDeps extends Omit<PlanSettings, 'bucket'> {
  /** Prepares the target indices when given. */
  opensearch?: Client;
  /** The mapping, for the indices it writes to (its `index` is replaced by the plan's). */
  mapping?: MappingConfig;
  /** How a missing index is created when the input carries no index definition. */
  indexOptions?: PrepareIndexOptions;
  /** Where a long segment list goes (the plan Lambda); without it the list stays inline. */
  planStore?: { s3: S3Client; bucket: string };
}

/**
 * planSegments, then the side effects: the target indices prepared for a
 * bulk load (when an OpenSearch client is given) and a long segment list
 * written to S3 as a JSON array (`plans/<runId>/segments.json`, see planListKey).
 */
export async function planBackfill(
  input: PlanInput,
  deps: PlanBackfillDeps = {},
): Promise<SegmentPlan & { indices?: IndexPreparation[] }> {
  const plan = planSegments(input, {
    ...deps,
    defaultIndex: deps.defaultIndex ?? deps.mapping?.index,
    bucket: deps.planStore?.bucket,
  });
  const definition = indexDefinitionFromPlanInput(input.indexConfig);
  let indices: IndexPreparation[] | undefined;
  let warnings: string[] = [];
  if (deps.opensearch) {
    // A resync's segments write its new indices (created by "Start resync", so found here).
    indices = await createIndicesWithDefinition(
      deps.opensearch,
      targetIndices(
        retargetMapping({ ...(deps.mapping ?? {}), index: plan.index }, input.targets ?? undefined),
      ),
      definition,
      deps.indexOptions,
    );
    const notApplied = definitionNotAppliedWarning(definition, indices);
    if (notApplied) warnings = [notApplied];
  }
  if (plan.itemSource === 'S3' && deps.planStore && plan.key) {
    await deps.planStore.s3.send(
      new PutObjectCommand({
        Bucket: deps.planStore.bucket,
        Key: plan.key,
        Body: JSON.stringify(Array.from({ length: plan.totalSegments }, (_, i) => i)),
        ContentType: 'application/json',
      }),
    );
  }
  return { ...plan, ...(indices ? { indices } : {}), ...(warnings.length > 0 ? { warnings } : {}) };
}

/** Every index a mapping writes to: its default index and its routes' (a transform's are unknown ahead). */
export function targetIndices(mapping: Pick<MappingConfig, 'index' | 'routes'>): string[] {
  return [...new Set([mapping.index, ...(mapping.routes ?? []).map((route) => route.index)])];
}

function integerIn(value: unknown, name: string, low: number, high: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
    throw new ConfigurationError(
      `${name} must be an integer from ${low.toLocaleString('en-US')} to ${high.toLocaleString('en-US')}, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkedIndex(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigurationError(`index must be a non-empty string, not ${JSON.stringify(value)}`);
  }
  const problem = indexNameProblem(value);
  if (problem) {
    throw new ConfigurationError(`index ${JSON.stringify(value)} is not a valid index name: it ${problem}`);
  }
  return value;
}

function checkedRunId(value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 200) {
    throw new ConfigurationError(
      `runId must be a non-empty string of at most 200 characters, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function newRunId(table: string): string {
  const stamp = new Date().toISOString().replaceAll(/[:.]/g, '-');
  return `${table}-${stamp}-${randomUUID().slice(0, 8)}`;
}
