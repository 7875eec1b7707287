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
 * - The batch's actions go through the backfill's BulkWriter (`index` and
 *   `delete` instead of `create`): one classifier, one retry policy, 413
 *   split in halves.
 * - An item that cannot be mapped, or that OpenSearch rejects for good, goes
 *   to the dead-letter place and its previous document is removed: the batch
 *   goes on and the index never shows a version the table no longer holds.
 * - During a resync (`deps.resync`, read before each batch) every write also
 *   goes to the index being filled for its serving name; docs/guarantees.md,
 *   "Resync", says why and how deletes are written there.
 * - A change that could not be applied because OpenSearch or DynamoDB is
 *   unavailable (unavailable.ts decides) is reported as
 *   `firstFailedSequenceNumber` (the earliest such record in stream order).
 *   Every record before it has been applied; the caller retries from it, and
 *   applying the later records again is harmless because every write states
 *   the item's whole current document.
 * - A source that may repeat and reorder an item's changes (Kinesis, SQS:
 *   `ordering: 'unordered'`) is applied otherwise: each changed key's
 *   current state, read from the table, is written under the document's
 *   version by the repair primitive; see applyUnordered.
 * - A poison change, one that fails for any other reason, never holds its
 *   shard back: a record that cannot be read, or an item whose read or
 *   mapping fails for a reason retrying does not fix, is dead-lettered
 *   directly with its reason. A failure no single record explains (OpenSearch
 *   refusing a whole bulk request, an exception of this code) bisects the
 *   batch in stream order until the one record that causes it is alone; that
 *   record is dead-lettered and the rest applied.
 */

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { type BulkPolicy, BulkWriter, bulkLine } from '../bulk/bulk-writer';
import type { FieldConflict } from '../bulk/field-conflicts';
import { mapWithConcurrency } from '../concurrency';
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
import { type TelemetryLogger, withDefaults } from '../observability';
import { type RepairOptions, type RepairResult, type RepairTarget, repairKeys } from '../repair/repair-keys';
import type { ResyncState } from '../resync/resync-state';
import { asResyncDelete, fillingTargets, withResyncWrites } from '../resync/resync-targets';
import { getItem, queryPartition } from '../table/reads';
import type { DeadLetterRecord, Item, KeySchema } from '../table/types';
import { isUnreadable, type StreamBatchRecord, type StreamChange } from './stream-records';
import { isRequestRefusedForContent, isSourceUnavailable } from './unavailable';

export type { StreamBatchRecord, StreamChange } from './stream-records';

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
  /** Request bounds and retry policy of the one BulkWriter. @default its defaults */
  bulk?: BulkPolicy;
  /** Concurrent GetItem / Query calls. @default 16 */
  readConcurrency?: number;
  /**
   * The table's resync in progress, read before each batch (docs/guarantees.md, "Resync"): its writes
   * also go to the indices being filled. A failed read retries the batch. @default no resync
   */
  resync?: () => Promise<ResyncState | undefined>;
  /**
   * How far the batch's order can be trusted. 'stream': a DynamoDB stream
   * shard's, each item's changes once and in order. 'unordered': a source
   * that may repeat and reorder an item's changes (Kinesis Data Streams for
   * DynamoDB, an SQS queue fed by a fan-out): a record only says that its
   * key changed, and the key's current state is read from the table and
   * written under the document's version (docs/stream-updater.md, "Order
   * and duplicates"). @default 'stream'
   */
  ordering?: 'stream' | 'unordered';
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
  /** Dead-letter records written (items that cannot be mapped, documents OpenSearch rejects, poison records). */
  deadLettered: number;
  /**
   * Sequence number of the first record that must be retried, if any; with
   * ordering 'unordered', of the first of `retryPositions` (a Kinesis
   * sequence number: Lambda resumes a Kinesis shard from the lowest one reported).
   */
  firstFailedSequenceNumber?: string;
  /**
   * With ordering 'unordered': the positions in the batch of every record
   * that must come again, the others are done whatever their order (an SQS
   * partial batch response names each of their messages).
   */
  retryPositions?: number[];
}

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
  /** Positions of its changes in the batch. */
  positions: number[];
}

/**
 * Applies one batch of records of one shard, given in stream order. Never
 * throws for a document, a poison record or a sink problem: see `ApplyResult`.
 */
export async function applyStreamRecords(
  records: StreamBatchRecord[],
  deps: ApplyStreamDeps,
): Promise<ApplyResult> {
  if (records.length === 0) return emptyResult();
  if (deps.ordering === 'unordered') return applyUnordered(records, deps);
  // Read after the records exist: a batch that finds no resync holds only changes made before it
  // began. The read runs while the batch is planned; only the writes wait for it.
  const resync: Promise<ResyncState | undefined> = Promise.resolve()
    .then(() => deps.resync?.())
    .catch((error: unknown) => {
      throw new ResyncStateUnreadable(error);
    });
  resync.catch(() => undefined);
  let attempt: ApplyAttempt;
  try {
    attempt = await applyOnce(records, deps, resync);
  } catch (error) {
    if (error instanceof ResyncStateUnreadable) {
      deps.telemetry?.logger?.warn('could not read the resync state; the batch will be retried', {
        error: describeError(error.cause),
      });
      return failedFrom(records, 0, emptyResult());
    }
    if (isSourceUnavailable(error)) return failedFrom(records, 0, emptyResult());
    attempt = { unexplained: error };
  }
  if ('result' in attempt) return attempt.result;
  return isolatePoison(records, deps, attempt.unexplained);
}

type ApplyAttempt = { result: ApplyResult } | { unexplained: unknown };

/** The resync state could not be read: the whole batch is retried, nothing of it was written. */
class ResyncStateUnreadable extends Error {
  constructor(cause: unknown) {
    super('could not read the resync state', { cause });
    this.name = 'ResyncStateUnreadable';
  }
}

function emptyResult(): ApplyResult {
  return { applied: 0, indexed: 0, deleted: 0, skipped: 0, deadLettered: 0 };
}

function failedFrom(records: StreamBatchRecord[], position: number, counts: ApplyResult): ApplyResult {
  return { ...counts, applied: position, firstFailedSequenceNumber: records[position]!.sequenceNumber };
}

/**
 * A failure that no record explains: apply the first half, then, if all of
 * it is applied, the second; each half bisects again if it fails the same
 * way. A record alone with the failure is the poison one. Applying a record
 * twice (the whole batch's attempt, then its half) is harmless, since every
 * write states the item's whole current document.
 */
async function isolatePoison(
  records: StreamBatchRecord[],
  deps: ApplyStreamDeps,
  error: unknown,
): Promise<ApplyResult> {
  const logger = deps.telemetry?.logger;
  if (records.length === 1) {
    const record = records[0]!;
    const problem: Problem = {
      key: record.keys,
      reason: `stream record ${record.sequenceNumber} was set aside: ${describeError(error)}`,
      errorType: error instanceof Error ? error.name : 'Error',
      first: 0,
    };
    const written = await putDeadLetters([problem], deps);
    return written
      ? { ...emptyResult(), applied: 1, deadLettered: 1 }
      : failedFrom(records, 0, emptyResult());
  }
  const middle = Math.ceil(records.length / 2);
  logger?.warn('a stream batch failed for a reason no single record explains; bisecting it', {
    records: records.length,
    firstSequenceNumber: records[0]!.sequenceNumber,
    error: describeError(error),
  });
  const head = await applyStreamRecords(records.slice(0, middle), deps);
  if (head.firstFailedSequenceNumber !== undefined) return head;
  const tail = await applyStreamRecords(records.slice(middle), deps);
  return {
    applied: middle + tail.applied,
    indexed: head.indexed + tail.indexed,
    deleted: head.deleted + tail.deleted,
    skipped: head.skipped + tail.skipped,
    deadLettered: head.deadLettered + tail.deadLettered,
    ...(tail.firstFailedSequenceNumber === undefined
      ? {}
      : { firstFailedSequenceNumber: tail.firstFailedSequenceNumber }),
  };
}

/** One attempt at the whole batch; `unexplained` when a failure must be bisected (nothing is dead-lettered then). */
async function applyOnce(
  records: StreamBatchRecord[],
  deps: ApplyStreamDeps,
  resyncState: Promise<ResyncState | undefined>,
): Promise<ApplyAttempt> {
  const logger = deps.telemetry?.logger;
  const result = emptyResult();

  const { groups, problems } = groupChanges(records, deps);
  const plans = await mapWithConcurrency(groups, deps.readConcurrency ?? 16, (group) =>
    planGroup(group, deps),
  );

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
        sequenceNumber: records[plan.first]!.sequenceNumber,
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

  const resync = await resyncState;
  const writes = withResyncWrites([...actions.values()], resync);
  const bulk = deps.bulk ?? {};
  const written = await writeActions(writes, deps.opensearch, bulk, logger);
  if (isRequestRefusedForContent(written.error)) return { unexplained: written.error };
  // A rejected document must not leave its previous version behind.
  const cleanup = written.rejected
    .filter(({ action }) => action.kind === 'index')
    .map(({ action }) =>
      asResyncDelete<DocumentAction>({ ...action, kind: 'delete', body: undefined }, resync),
    );
  const cleaned = await writeActions(cleanup, deps.opensearch, bulk, logger);
  if (isRequestRefusedForContent(cleaned.error)) return { unexplained: cleaned.error };
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
    // Not recorded anywhere, so not processed: the records come again.
    if (await putDeadLetters(problems, deps)) result.deadLettered = problems.length;
    else for (const problem of problems) fail(problem.first);
  }

  const done = Number.isFinite(firstFailed)
    ? failedFrom(records, firstFailed, result)
    : { ...result, applied: records.length };
  logger?.debug('applied stream records', { ...done, records: records.length });
  return { result: done };
}

/** Writes the problems to the dead-letter place; false (logged) when that place cannot take them. */
async function putDeadLetters(problems: Problem[], deps: ApplyStreamDeps): Promise<boolean> {
  const logger = deps.telemetry?.logger;
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
  } catch (error) {
    logger?.warn('could not write to the dead-letter place; those changes will be retried', {
      location: deps.deadLetters.location,
      error: describeError(error),
    });
    return false;
  }
  logger?.warn('documents went to the dead-letter place', {
    count: records.length,
    location: deps.deadLetters.location,
    errorTypes: [...new Set(records.map((record) => record.errorType))],
  });
  for (const record of records) logger?.debug('dead letter', { id: record.id, reason: record.reason });
  return true;
}

/** Changes per item (per partition when aggregating), in order of first appearance. */
function groupChanges(
  records: StreamBatchRecord[],
  deps: ApplyStreamDeps,
): { groups: Group[]; problems: Problem[] } {
  const { partitionKey, sortKey } = deps.keySchema;
  const byKey = new Map<string, Group>();
  const problems: Problem[] = [];
  records.forEach((change, position) => {
    if (isUnreadable(change)) {
      problems.push({ key: change.keys, ...problemOf(change.unreadable), first: position });
      return;
    }
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
      group.positions.push(position);
      group.last = position;
    } else {
      byKey.set(name, { keys, changes: [change], first: position, last: position, positions: [position] });
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
    } else if (isSourceUnavailable(error)) {
      plan.failed = error;
    } else {
      // Poison: this item's changes fail for a reason that retrying does not fix. Nothing half-planned is written.
      plan.actions = [];
      plan.problems.push({ key: group.keys, ...poisonOf(group, error), first: group.first });
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
    ? earlierTransformTargets(group, deps, documents.length === 0, false)
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
 * from the new images of all but the last change (of every change when the
 * batch's order says nothing, `everyImage`). Without an old image of the
 * state before the batch (KEYS_ONLY and NEW_IMAGE streams) those documents are
 * unknown; then, when the final state produces nothing, the item's id in the
 * default index is deleted, the one place a transform most likely used.
 */
function earlierTransformTargets(
  group: Group,
  deps: ApplyStreamDeps,
  producesNothing: boolean,
  everyImage: boolean,
): Target[] {
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
    if (change.newImage && (everyImage || i < group.changes.length - 1)) addFrom(change.newImage);
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

// --- sources that repeat and reorder (ordering 'unordered') ----------------------

/**
 * A batch of a source that may repeat and reorder an item's changes. No
 * record's image is written, since a later change may already be in the
 * index: a record only says that its key changed. Each key of the batch is
 * brought to the table's current state by the repair primitive (repairKeys):
 * the document read with its version, then the item with a consistent read,
 * then a write held to that version, a create checked against the table
 * again afterwards. docs/stream-updater.md, "Order and duplicates", gives the
 * argument. The records' positions are independent: a key that could not be
 * applied leaves its records to come again, the others are done.
 */
async function applyUnordered(records: StreamBatchRecord[], deps: ApplyStreamDeps): Promise<ApplyResult> {
  const logger = deps.telemetry?.logger;
  const result = emptyResult();
  const retry = new Set<number>();
  const everything = () => records.map((_, position) => position);
  let resync: ResyncState | undefined;
  try {
    resync = await deps.resync?.();
  } catch (error) {
    logger?.warn('could not read the resync state; the batch will be retried', {
      error: describeError(error),
    });
    return retryingAt(records, everything(), result);
  }
  const { groups, problems } = groupChanges(records, deps);
  const targets: { target: RepairTarget; group: Group }[] = [];
  for (const group of groups) {
    try {
      const places = deps.mapping.transform ? earlierTransformTargets(group, deps, true, true) : [];
      targets.push({ target: { key: group.keys, ...(places.length > 0 ? { places } : {}) }, group });
    } catch (error) {
      problems.push({ key: group.keys, ...poisonOf(group, error), first: group.first });
    }
  }

  const { results, failures } = await settleKeys(targets, deps, REWRITE_EQUAL);
  const filling = resync && resyncPass(resync);
  if (filling) {
    const copies = await settleKeys(targets, deps, filling);
    results.push(...copies.results);
    failures.push(...copies.failures);
  }
  for (const repaired of results) {
    result.indexed += repaired.indexed;
    result.deleted += repaired.deleted;
    result.deadLettered += repaired.deadLettered;
  }
  for (const { group, error, reason } of failures) {
    if (error !== undefined && !isSourceUnavailable(error)) {
      problems.push({ key: group.keys, ...poisonOf(group, error), first: group.first });
      continue;
    }
    logger?.warn('a changed key could not be brought to its current state; its records will be retried', {
      sequenceNumber: records[group.first]!.sequenceNumber,
      reason: reason ?? describeError(error),
    });
    for (const position of group.positions) retry.add(position);
  }

  if (problems.length > 0) {
    if (await putDeadLetters(problems, deps)) result.deadLettered += problems.length;
    else for (const problem of problems) retry.add(problem.first);
  }
  const done = retryingAt(records, [...retry], result);
  logger?.debug('applied unordered records', { ...done, records: records.length });
  return done;
}

/**
 * Rounds of repairEach until every key is settled by a write of this batch's
 * own (or found absent as it should be). A key `superseded` (another write
 * landed between this batch's read of its document and its write) goes
 * again: the other writer may have read the item before the change this
 * batch's record stands for, and no later record is sure to come. After
 * `SETTLE_ROUNDS` rounds its records are left to come again.
 */
async function settleKeys(
  targets: { target: RepairTarget; group: Group }[],
  deps: ApplyStreamDeps,
  options: RepairOptions,
): Promise<{ results: RepairResult[]; failures: KeyFailure[] }> {
  const results: RepairResult[] = [];
  const failures: KeyFailure[] = [];
  let pending = targets;
  for (let round = 1; pending.length > 0; round++) {
    const settled = await repairEach(pending, deps, options);
    results.push(...settled.results);
    failures.push(...settled.failures);
    const superseded = new Set(
      settled.results.flatMap((result) => result.supersededIds.map(({ key }) => key)),
    );
    pending = pending.filter(({ target }) => superseded.has(target.key));
    if (round === SETTLE_ROUNDS) {
      const reason = `another write of the key landed first in each of ${SETTLE_ROUNDS} rounds`;
      failures.push(...pending.map(({ group }) => ({ group, reason })));
      break;
    }
  }
  return { results, failures };
}

/** Rounds of settleKeys (each repairKeys reads a conflicted key twice) before a key's records are left to come again. */
const SETTLE_ROUNDS = 4;

/** Even a document equal to its item is written, under its version: see RepairOptions.rewriteEqual. */
const REWRITE_EQUAL: RepairOptions = { rewriteEqual: true };

/**
 * The second pass of a batch during a resync (docs/guarantees.md, "Resync"):
 * the same keys in the indices being filled, a deleted item as a tombstone
 * while FILLING, as withResyncWrites does for the ordered path.
 */
function resyncPass(state: ResyncState): RepairOptions | undefined {
  const redirect = fillingTargets(state);
  if (Object.keys(redirect).length === 0) return undefined;
  return {
    ...REWRITE_EQUAL,
    redirect,
    ...(state.phase === 'FILLING' ? { tombstone: state.runId } : {}),
  };
}

/** A key repairEach did not apply: repairKeys said why (`reason`), or threw (`error`). */
interface KeyFailure {
  group: Group;
  reason?: string;
  error?: unknown;
}

/**
 * repairKeys over the batch's keys at once; when it throws (a failure of
 * this code that no key explains), key by key, so that only the key it
 * belongs to is set aside.
 */
async function repairEach(
  targets: { target: RepairTarget; group: Group }[],
  deps: ApplyStreamDeps,
  options: RepairOptions,
): Promise<{ results: RepairResult[]; failures: KeyFailure[] }> {
  if (targets.length === 0) return { results: [], failures: [] };
  const repairDeps = { ...deps, runId: deps.runId ?? 'updater' };
  const failuresOf = (repaired: RepairResult, among: typeof targets): KeyFailure[] =>
    repaired.failed.flatMap((failure) => {
      const entry = among.find(({ target }) => target.key === failure.key);
      return entry ? [{ group: entry.group, reason: failure.reason }] : [];
    });
  try {
    const repaired = await repairKeys(
      targets.map(({ target }) => target),
      repairDeps,
      options,
    );
    return { results: [repaired], failures: failuresOf(repaired, targets) };
  } catch (error) {
    if (targets.length === 1 || isSourceUnavailable(error)) {
      return { results: [], failures: targets.map(({ group }) => ({ group, error })) };
    }
    const results: RepairResult[] = [];
    const failures: KeyFailure[] = [];
    await mapWithConcurrency(targets, deps.readConcurrency ?? 16, async (entry) => {
      try {
        const repaired = await repairKeys([entry.target], repairDeps, options);
        results.push(repaired);
        failures.push(...failuresOf(repaired, [entry]));
      } catch (alone) {
        failures.push({ group: entry.group, error: alone });
      }
    });
    return { results, failures };
  }
}

/** Why a group's changes were set aside: the error of a change that retrying does not fix. */
function poisonOf(group: Group, error: unknown): { reason: string; errorType: string } {
  return {
    reason: `the change at stream record ${group.changes[0]!.sequenceNumber} could not be applied: ${describeError(error)}`,
    errorType: error instanceof Error ? error.name : 'Error',
  };
}

/** An unordered batch's result: every record done but those at `positions`. */
function retryingAt(records: StreamBatchRecord[], positions: number[], counts: ApplyResult): ApplyResult {
  if (positions.length === 0) return { ...counts, applied: records.length };
  const sorted = [...new Set(positions)].sort((a, b) => a - b);
  return {
    ...counts,
    applied: records.length - sorted.length,
    firstFailedSequenceNumber: records[sorted[0]!]!.sequenceNumber,
    retryPositions: sorted,
  };
}

interface WriteOutcome {
  indexed: number;
  deleted: number;
  /** OpenSearch refused these for good (mapper_parsing_exception and the like). */
  rejected: { action: DocumentAction; reason: string; errorType: string; conflict?: FieldConflict }[];
  /** Not applied: the writer gave up on the sink (429, 5xx, cluster blocks, OpenSearch unreachable or refusing the request). */
  unresolved: DocumentAction[];
  /** Why the writer gave up, when it did. */
  error?: unknown;
}

/**
 * Sends the actions through the one BulkWriter (its classifier, retry policy,
 * 413 split and field-conflict handling are the backfill's). Order holds with
 * concurrent requests: the batch holds at most one action per document, and
 * this returns only once no request is in flight, even after a failure.
 */
async function writeActions(
  actions: DocumentAction[],
  opensearch: Client,
  policy: BulkPolicy,
  logger: ApplyLogger | undefined,
): Promise<WriteOutcome> {
  const outcome: WriteOutcome = { indexed: 0, deleted: 0, rejected: [], unresolved: [] };
  if (actions.length === 0) return outcome;
  const done = new Set<DocumentAction>();
  const writer = new BulkWriter<DocumentAction>(opensearch, {
    ...policy,
    telemetry: withDefaults(logger ? { logger: writerLogger(logger) } : {}),
    onOutcome: (document, result) => {
      const action = document.ticket;
      done.add(action);
      if (result.status === 'indexed') outcome.indexed += 1;
      else if (result.status === 'deleted' || result.status === 'not_found') outcome.deleted += 1;
      else if (result.status === 'failed') {
        if (result.conflict) {
          logger?.warn('an item holds a value its field in the index mapping cannot take', {
            index: action.index,
            ...result.conflict,
          });
        }
        outcome.rejected.push({
          action,
          reason: result.reason,
          errorType: result.errorType,
          ...(result.conflict ? { conflict: result.conflict } : {}),
        });
      }
    },
  });
  const error = await writer.writeAll(actions, (action) =>
    bulkLine(action.kind, action.index, action.id, action.body),
  );
  if (error) {
    // The writer gave up on the sink; nothing of this batch is still in flight when the caller retries it.
    outcome.error = error;
    outcome.unresolved = actions.filter((action) => !done.has(action));
    logger?.warn('bulk actions could not be applied', {
      actions: outcome.unresolved.length,
      error: describeError(error),
    });
  }
  return outcome;
}

/** The writer's logger over the updater's, which has no error level (the writer logs none). */
function writerLogger(logger: ApplyLogger): TelemetryLogger {
  return {
    debug: (message, ...attributes) => logger.debug(message, ...attributes),
    info: (message, ...attributes) => logger.info(message, ...attributes),
    warn: (message, ...attributes) => logger.warn(message, ...attributes),
    error: (message, ...attributes) => logger.warn(message, ...attributes),
  };
}
