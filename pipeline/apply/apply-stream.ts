/**
 * Applies DynamoDB stream changes to OpenSearch: the logic behind the updater
 * Lambda and the local stream follower. docs/stream-updater.md explains the
 * rules for users; the short version:
 *
 * - Changes of one batch are grouped per item (per partition for an
 *   aggregated mapping). Only the item's state after its last change counts:
 *   the new image, or, when the stream has none, the item read again with a
 *   consistent GetItem (an aggregated document is rebuilt from a consistent
 *   Query of the partition). That state is written with `index` (overwrite),
 *   or the document is deleted.
 * - One `_bulk` request per batch (split by bytes and count), 429/5xx items
 *   retried with exponential backoff and full jitter.
 * - An item that cannot be mapped, or that OpenSearch rejects for good, goes
 *   to the dead-letter place and its previous document is removed: the batch
 *   goes on and the index never shows a version the table no longer holds.
 * - A change that could not be applied after the retries is reported as
 *   `firstFailedSequenceNumber` (the earliest such record in stream order).
 *   Every record before it has been applied; the caller retries from it, and
 *   applying the later records again is harmless because every write states
 *   the item's whole current document.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { API, Client } from '@opensearch-project/opensearch';
import { type FieldConflict, fieldConflictResolverFor } from '../bulk/field-conflicts';
import type { DeadLetterSink } from '../dead-letter/dead-letter';
import { describeError, MappingError } from '../errors';
import {
  aggregateCollection,
  documentId,
  encodeDocument,
  indexFor,
  keyToString,
  type MappedDocument,
  type MappingConfig,
  mapItem,
} from '../mapping/mapping';
import { getItem, queryPartition } from '../table/reads';
import type { DeadLetterRecord, Item, KeySchema } from '../table/types';
import type { StreamChange } from './stream-records';

export type { StreamChange } from './stream-records';

/** What the apply code logs through: a Powertools Logger fits, and so does `console`. */
export interface ApplyLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

export interface ApplyTelemetry {
  /** Counts and sequence numbers only at info and above; reasons (which may quote values) at debug. */
  logger?: ApplyLogger;
}

/** Bulk request limits and retry policy. */
export interface BulkSettings {
  /** Upper bound of one `_bulk` body in bytes. @default 5 MiB */
  maxBytes?: number;
  /** Upper bound of actions in one `_bulk` request. @default 5000 */
  maxDocs?: number;
  /** Attempts per action, the first included, before its change is reported as failed. @default 6 */
  attempts?: number;
  /** First backoff ceiling; doubles per attempt (full jitter). @default 200 */
  baseDelayMs?: number;
  /** Backoff ceiling. @default 10000 */
  maxDelayMs?: number;
}

export interface ApplyStreamDeps {
  opensearch: Client;
  /** Reads the current item (streams without a new image) and aggregated partitions. */
  dynamodb: DynamoDBClient;
  table: string;
  keySchema: KeySchema;
  mapping: MappingConfig;
  deadLetters: DeadLetterSink;
  /** Names the dead-letter records' run. @default 'updater' */
  runId?: string;
  telemetry?: ApplyTelemetry;
  bulk?: BulkSettings;
  /** Concurrent GetItem / Query calls. @default 16 */
  readConcurrency?: number;
}

export interface ApplyResult {
  /** Records handled, in stream order, before the first that must be retried (all of them when none). */
  applied: number;
  /** Documents written (bulk `index`). */
  indexed: number;
  /** Documents deleted (bulk `delete`; a document that was already gone counts too). */
  deleted: number;
  /** Records whose item the mapping routes nowhere: nothing to write or delete for them. */
  skipped: number;
  /** Dead-letter records written (items that cannot be mapped, documents OpenSearch rejects). */
  deadLettered: number;
  /** Sequence number of the first record that must be retried, if any. */
  firstFailedSequenceNumber?: string;
}

const DEFAULT_BULK: Required<BulkSettings> = {
  maxBytes: 5 * 1024 * 1024,
  maxDocs: 5000,
  attempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
};

/** One bulk action, standing for changes `first` … `last` (positions in the batch). */
interface DocumentAction {
  kind: 'index' | 'delete';
  index: string;
  id: string;
  /** The document as its bulk line (index only). */
  body?: string;
  /** The item's key, for dead letters. */
  key: Item;
  first: number;
  last: number;
}

interface Problem {
  key: Item;
  index?: string;
  id?: string;
  reason: string;
  errorType: string;
  /** Position of the first change this problem stands for. */
  first: number;
}

/** What one item (or one aggregated partition) of the batch turns into. */
interface GroupPlan {
  actions: DocumentAction[];
  problems: Problem[];
  /** Set when reading DynamoDB failed: the group's changes are not applied. */
  failed?: unknown;
  skipped: number;
  first: number;
  last: number;
}

interface Group {
  keys: Item;
  changes: StreamChange[];
  first: number;
  last: number;
}

/**
 * Applies one batch of changes of one shard, given in stream order. Never
 * throws for a document or a sink problem: see `ApplyResult`.
 */
export async function applyStreamRecords(
  changes: StreamChange[],
  deps: ApplyStreamDeps,
): Promise<ApplyResult> {
  const logger = deps.telemetry?.logger;
  const result: ApplyResult = { applied: 0, indexed: 0, deleted: 0, skipped: 0, deadLettered: 0 };
  if (changes.length === 0) return result;

  const { groups, problems } = groupChanges(changes, deps);
  const plans = await mapConcurrent(groups, deps.readConcurrency ?? 16, (group) => planGroup(group, deps));

  let firstFailed = Number.POSITIVE_INFINITY;
  const fail = (position: number) => {
    firstFailed = Math.min(firstFailed, position);
  };
  const actions = new Map<string, DocumentAction>();
  // Later groups win when two items produce one document (a transform's choice); order by last change.
  for (const plan of [...plans].sort((a, b) => a.last - b.last)) {
    result.skipped += plan.skipped;
    problems.push(...plan.problems);
    if (plan.failed !== undefined) {
      logger?.warn('could not read the current item from DynamoDB; its changes will be retried', {
        sequenceNumber: changes[plan.first]!.sequenceNumber,
        error: describeError(plan.failed),
      });
      fail(plan.first);
      continue;
    }
    for (const action of plan.actions) {
      const key = `${action.index}\n${action.id}`;
      const earlier = actions.get(key);
      actions.set(key, earlier ? { ...action, first: Math.min(earlier.first, action.first) } : action);
    }
  }

  const bulk = { ...DEFAULT_BULK, ...definedOnly(deps.bulk ?? {}) };
  const written = await writeActions([...actions.values()], deps.opensearch, bulk, logger);
  // A rejected document must not leave its previous version behind.
  const cleanup = written.rejected
    .filter(({ action }) => action.kind === 'index')
    .map(({ action }): DocumentAction => ({ ...action, kind: 'delete', body: undefined }));
  const cleaned = await writeActions(cleanup, deps.opensearch, bulk, logger);
  result.indexed = written.indexed;
  result.deleted = written.deleted + cleaned.deleted;
  for (const action of [...written.unresolved, ...cleaned.unresolved]) fail(action.first);
  for (const { action, reason, errorType } of [...written.rejected, ...cleaned.rejected]) {
    problems.push({
      key: action.key,
      index: action.index,
      id: action.id,
      reason,
      errorType,
      first: action.first,
    });
  }

  if (problems.length > 0) {
    const at = new Date().toISOString();
    const records = problems.map(
      (problem): DeadLetterRecord => ({
        runId: deps.runId ?? 'updater',
        table: deps.table,
        ...(problem.index === undefined ? {} : { index: problem.index }),
        key: problem.key,
        ...(problem.id === undefined ? {} : { id: problem.id }),
        reason: problem.reason,
        errorType: problem.errorType,
        at,
      }),
    );
    try {
      await deps.deadLetters.put(records);
      result.deadLettered = records.length;
      logger?.warn('documents went to the dead-letter place', {
        count: records.length,
        location: deps.deadLetters.location,
        errorTypes: [...new Set(records.map((record) => record.errorType))],
      });
      for (const record of records) logger?.debug('dead letter', { id: record.id, reason: record.reason });
    } catch (error) {
      // Not recorded anywhere, so not processed: the records come again.
      logger?.warn('could not write to the dead-letter place; those changes will be retried', {
        location: deps.deadLetters.location,
        error: describeError(error),
      });
      for (const problem of problems) fail(problem.first);
    }
  }

  if (Number.isFinite(firstFailed)) {
    result.applied = firstFailed;
    result.firstFailedSequenceNumber = changes[firstFailed]!.sequenceNumber;
  } else {
    result.applied = changes.length;
  }
  logger?.debug('applied stream records', { ...result, records: changes.length });
  return result;
}

/** Changes per item (per partition when aggregating), in order of first appearance. */
function groupChanges(
  changes: StreamChange[],
  deps: ApplyStreamDeps,
): { groups: Group[]; problems: Problem[] } {
  const { partitionKey, sortKey } = deps.keySchema;
  const byKey = new Map<string, Group>();
  const problems: Problem[] = [];
  changes.forEach((change, position) => {
    let name: string;
    let keys: Item;
    try {
      const partition = keyPart(change.keys, partitionKey);
      if (deps.mapping.aggregate) {
        name = partition;
        keys = { [partitionKey]: change.keys[partitionKey]! };
      } else {
        name = sortKey === undefined ? partition : `${partition}\u0000${keyPart(change.keys, sortKey)}`;
        keys = change.keys;
      }
    } catch (error) {
      problems.push({ key: change.keys, ...problemOf(error), first: position });
      return;
    }
    const group = byKey.get(name);
    if (group) {
      group.changes.push(change);
      group.last = position;
    } else {
      byKey.set(name, { keys, changes: [change], first: position, last: position });
    }
  });
  return { groups: [...byKey.values()], problems };
}

function keyPart(keys: Item, name: string): string {
  const value = keys[name];
  if (value === undefined) throw new MappingError(`the stream record's Keys lack the key attribute ${name}`);
  return keyToString(value);
}

async function planGroup(group: Group, deps: ApplyStreamDeps): Promise<GroupPlan> {
  const plan: GroupPlan = { actions: [], problems: [], skipped: 0, first: group.first, last: group.last };
  try {
    if (deps.mapping.aggregate) await planPartition(group, deps, plan);
    else await planItem(group, deps, plan);
  } catch (error) {
    if (error instanceof MappingError) {
      plan.problems.push({ key: group.keys, ...problemOf(error), first: group.first });
    } else {
      plan.failed = error;
    }
  }
  if (plan.actions.length === 0 && plan.problems.length === 0 && plan.failed === undefined) {
    plan.skipped = group.changes.length;
  }
  return plan;
}

/**
 * One item: delete the documents its earlier states produced that its final
 * state no longer produces, and write the final state's documents.
 */
async function planItem(group: Group, deps: ApplyStreamDeps, plan: GroupPlan): Promise<void> {
  const { keySchema, mapping } = deps;
  // Built-in: the key alone decides the place, and a key that cannot be an id fails here, once.
  const keyTarget = mapping.transform ? [] : builtInTarget(group.keys, keySchema, mapping);
  const item = await currentItem(group, deps);

  let documents: MappedDocument[] = [];
  if (item !== undefined) {
    try {
      documents = mapItem(item, keySchema, mapping);
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      plan.problems.push({ key: group.keys, ...problemOf(error), first: group.first });
    }
  }

  const earlier = mapping.transform
    ? earlierTransformTargets(group, deps, documents.length === 0)
    : keyTarget;
  const produced = new Set(documents.map((document) => `${document.index}\n${document.id}`));
  const deleted = new Set<string>();
  for (const target of earlier) {
    const name = `${target.index}\n${target.id}`;
    if (produced.has(name) || deleted.has(name)) continue;
    deleted.add(name);
    plan.actions.push({ kind: 'delete', ...target, key: group.keys, first: group.first, last: group.last });
  }
  for (const document of documents) {
    const target = { index: document.index, id: document.id };
    try {
      const body = encodeDocument(document.document);
      plan.actions.push({
        kind: 'index',
        ...target,
        body,
        key: group.keys,
        first: group.first,
        last: group.last,
      });
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      plan.problems.push({ key: group.keys, ...target, ...problemOf(error), first: group.first });
      plan.actions.push({ kind: 'delete', ...target, key: group.keys, first: group.first, last: group.last });
    }
  }
}

/** The built-in mapping puts an item at one place that its key alone decides (routing is by partition key). */
function builtInTarget(keys: Item, keySchema: KeySchema, mapping: MappingConfig): Target[] {
  const index = indexFor(keys, keySchema, mapping);
  return index === undefined ? [] : [{ index, id: documentId(keys, keySchema) }];
}

interface Target {
  index: string;
  id: string;
}

/**
 * Where a transform put the item's earlier states: from the old images, and
 * from the new images of all but the last change. Without an old image of the
 * state before the batch (KEYS_ONLY and NEW_IMAGE streams) those documents are
 * unknown; then, when the final state produces nothing, the item's id in the
 * default index is deleted, the one place a transform most likely used.
 */
function earlierTransformTargets(group: Group, deps: ApplyStreamDeps, producesNothing: boolean): Target[] {
  const targets: Target[] = [];
  const addFrom = (image: Item) => {
    try {
      for (const document of mapItem(image, deps.keySchema, deps.mapping))
        targets.push({ index: document.index, id: document.id });
    } catch (error) {
      // That state could not be mapped, so it wrote no document.
      if (!(error instanceof MappingError)) throw error;
    }
  };
  group.changes.forEach((change, i) => {
    if (change.oldImage) addFrom(change.oldImage);
    if (change.newImage && i < group.changes.length - 1) addFrom(change.newImage);
  });
  const first = group.changes[0]!;
  const stateBeforeUnknown = first.eventName !== 'INSERT' && first.oldImage === undefined;
  if (stateBeforeUnknown && producesNothing) {
    targets.push({ index: deps.mapping.index, id: documentId(group.keys, deps.keySchema) });
  }
  return targets;
}

/** The item after the group's last change: its new image, or the table's current item when the stream has no new image. */
async function currentItem(group: Group, deps: ApplyStreamDeps): Promise<Item | undefined> {
  const last = group.changes[group.changes.length - 1]!;
  if (last.eventName === 'REMOVE') return undefined;
  if (last.newImage) return last.newImage;
  return getItem(deps.dynamodb, deps.table, group.keys);
}

/** An aggregated partition: rebuilt from all its items as they are now, or deleted when it has none. */
async function planPartition(group: Group, deps: ApplyStreamDeps, plan: GroupPlan): Promise<void> {
  const { keySchema, mapping } = deps;
  const index = indexFor(group.keys, keySchema, mapping);
  if (index === undefined) return;
  const target = { index, id: documentId(group.keys, { partitionKey: keySchema.partitionKey }) };
  const span = { key: group.keys, first: group.first, last: group.last };

  const { partitionKey } = keySchema;
  const items = await queryPartition(deps.dynamodb, {
    table: deps.table,
    partitionKey,
    value: group.keys[partitionKey]!,
  });
  if (items.length === 0) {
    plan.actions.push({ kind: 'delete', ...target, ...span });
    return;
  }
  try {
    const [document] = aggregateCollection(items, keySchema, mapping);
    if (document === undefined) return;
    plan.actions.push({
      kind: 'index',
      index: document.index,
      id: document.id,
      body: encodeDocument(document.document),
      ...span,
    });
  } catch (error) {
    if (!(error instanceof MappingError)) throw error;
    plan.problems.push({ key: group.keys, ...target, ...problemOf(error), first: group.first });
    plan.actions.push({ kind: 'delete', ...target, ...span });
  }
}

function problemOf(error: unknown): { reason: string; errorType: string } {
  return { reason: describeError(error), errorType: error instanceof Error ? error.name : 'Error' };
}

interface WriteOutcome {
  indexed: number;
  deleted: number;
  /** OpenSearch refused these for good (mapper_parsing_exception and the like). */
  rejected: { action: DocumentAction; reason: string; errorType: string; conflict?: FieldConflict }[];
  /** Still failing after every attempt (429, 5xx, cluster blocks, OpenSearch unreachable). */
  unresolved: DocumentAction[];
}

/**
 * Sends the actions with `_bulk`, retrying what failed for a reason that
 * passes (a whole request that failed, or an item with 429, 5xx or a cluster
 * block such as a full disk's read-only block) with exponential backoff and
 * full jitter. A request-level error is never taken as a verdict on the
 * documents: a 401 or 403 is a setup problem, not bad data. A document
 * refused for a field's type goes to FieldConflictResolver, as in the
 * backfill: another try after a mapping put or a race, bounded per document
 * (so those tries do not count against `attempts`), or a reason naming the
 * field and both types.
 */
async function writeActions(
  actions: DocumentAction[],
  opensearch: Client,
  settings: Required<BulkSettings>,
  logger: ApplyLogger | undefined,
): Promise<WriteOutcome> {
  const outcome: WriteOutcome = { indexed: 0, deleted: 0, rejected: [], unresolved: [] };
  const fieldConflicts = fieldConflictResolverFor(opensearch);
  const conflicts = new Map<DocumentAction, number>();
  let pending = actions;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const retry: DocumentAction[] = [];
    const refused: { action: DocumentAction; item: BulkItem }[] = [];
    let lastError: unknown;
    for (const chunk of chunks(pending, settings)) {
      let items: BulkItem[];
      try {
        items = await sendBulk(opensearch, chunk);
      } catch (error) {
        lastError = error;
        retry.push(...chunk);
        continue;
      }
      chunk.forEach((action, i) => {
        const item = items[i]!;
        const verdict = classify(action, item);
        if (verdict === 'done') {
          if (action.kind === 'index') outcome.indexed += 1;
          else outcome.deleted += 1;
        } else if (verdict === 'retry') {
          lastError = item.error?.type ?? `status ${item.status}`;
          retry.push(action);
        } else refused.push({ action, item });
      });
    }
    const sinkRetries = retry.length;
    await Promise.all(
      refused.map(async ({ action, item }) => {
        const tries = conflicts.get(action) ?? 0;
        const verdict =
          action.kind === 'index'
            ? await fieldConflicts.settle(
                action.index,
                item.error,
                tries,
                () => JSON.parse(action.body ?? 'null'),
                logger,
              )
            : undefined;
        if (verdict?.retry) {
          conflicts.set(action, tries + 1);
          retry.push(action);
          return;
        }
        if (verdict?.conflict) {
          logger?.warn('an item holds a value its field in the index mapping cannot take', {
            index: action.index,
            ...verdict.conflict,
          });
        }
        outcome.rejected.push({
          action,
          reason:
            verdict?.reason ?? item.error?.reason ?? JSON.stringify(item.error ?? { status: item.status }),
          errorType: item.error?.type ?? `http_${item.status}`,
          ...(verdict?.conflict ? { conflict: verdict.conflict } : {}),
        });
      }),
    );
    if (retry.length === 0) break;
    if (attempt >= settings.attempts && sinkRetries > 0) {
      logger?.warn('bulk actions still failing after every attempt', {
        actions: retry.length,
        attempts: attempt,
        error: describeError(lastError),
      });
      outcome.unresolved = retry;
      break;
    }
    logger?.debug('retrying bulk actions', {
      actions: retry.length,
      attempt,
      error: describeError(lastError),
    });
    const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1));
    await sleep(Math.random() * ceiling);
    pending = retry;
  }
  return outcome;
}

interface BulkItem {
  status: number;
  error?: { type?: string; reason?: string };
}

const BULK_FILTER_PATH = ['items.*.status', 'items.*.error.type', 'items.*.error.reason'];

async function sendBulk(opensearch: Client, chunk: DocumentAction[]): Promise<BulkItem[]> {
  const body = chunk.map(bulkLines).join('');
  // Only what classify reads: OpenSearch then leaves out each item's index, id, version, shards and sequence numbers.
  const response = await opensearch.bulk({
    body: body as unknown as API.Bulk_RequestBody,
    filter_path: BULK_FILTER_PATH,
  });
  const items = (response.body.items ?? []).map(
    (entry) => (entry.index ?? entry.delete) as BulkItem | undefined,
  );
  if (items.length !== chunk.length || items.some((item) => item === undefined)) {
    throw new Error(`_bulk answered ${items.length} items for ${chunk.length} actions`);
  }
  return items as BulkItem[];
}

function classify(action: DocumentAction, item: BulkItem): 'done' | 'retry' | 'rejected' {
  if (item.status >= 200 && item.status < 300) return 'done';
  // Deleting what is not there is what a delete wants.
  if (action.kind === 'delete' && item.status === 404) return 'done';
  if (item.status === 429 || item.status >= 500) return 'retry';
  if (item.error?.type === 'cluster_block_exception') return 'retry';
  return 'rejected';
}

function bulkLines(action: DocumentAction): string {
  const meta = JSON.stringify({ [action.kind]: { _index: action.index, _id: action.id } });
  return action.kind === 'index' ? `${meta}\n${action.body}\n` : `${meta}\n`;
}

function* chunks(actions: DocumentAction[], settings: Required<BulkSettings>): Generator<DocumentAction[]> {
  let chunk: DocumentAction[] = [];
  let bytes = 0;
  for (const action of actions) {
    const size = Buffer.byteLength(bulkLines(action));
    if (chunk.length > 0 && (bytes + size > settings.maxBytes || chunk.length >= settings.maxDocs)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(action);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

async function mapConcurrent<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  });
  await Promise.all(workers);
  return results;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
