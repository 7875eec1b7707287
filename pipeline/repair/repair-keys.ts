/**
 * Repair: makes the documents of some keys equal to their items again, from
 * the table, while the updater keeps writing. `ddb2os verify --repair` and
 * `ddb2os replay` call it; docs/guarantees.md ("Repair and replay") gives the
 * argument in full. In short, per document:
 *
 * 1. read the document (its `_seq_no`/`_primary_term`, or that it is absent),
 *    or take what verify read;
 * 2. then read the item with a consistent GetItem (a consistent Query of the
 *    partition for an aggregated mapping) and map it;
 * 3. write only if the document is still the one read in 1: `index` with
 *    `if_seq_no`/`if_primary_term`, `create` when it was absent, `delete` with
 *    the same condition when the item no longer produces it.
 *
 * A write that finds the document changed (409) lost to a newer write, the
 * updater's: the value the updater wrote came from a change at least as new
 * as the read in 2, or a later change is still on its way to it. The key is
 * read again once (verify's read may be minutes old), then left to the
 * updater and counted `superseded`: retrying against a key the updater keeps
 * writing wins nothing. A `create` has no version to condition on, so the
 * item is read again after it: if it is gone, the updater's delete may have
 * landed before the create (a delete of an absent document leaves nothing
 * to conflict with), and the created document is deleted under the version
 * the create gave it.
 */
import type { Client } from '@opensearch-project/opensearch';
import type { ApplyStreamDeps } from '../apply/apply-stream';
import { BulkWriter, bulkLine, type ReadVersion } from '../bulk/bulk-writer';
import { mapWithConcurrency } from '../concurrency';
import { describeError, MappingError } from '../errors';
import {
  aggregateCollection,
  documentId,
  encodeDocument,
  indexFor,
  keyToString,
  type MappedDocument,
  mapItem,
} from '../mapping/mapping';
import { tombstoneLine } from '../resync/tombstones';
import { getItem, queryPartition } from '../table/reads';
import type { DeadLetterRecord, Item, KeySchema } from '../table/types';
import { type ExactJson, firstDifference, type JsonNumber, type JsonValue } from '../verify/exact-json';
import { errorReason, exactRequest, field } from '../verify/verify';

/** A document as verify read it: where, and the version it had then. */
export interface SeenDocument {
  index: string;
  id: string;
  seqNo: number;
  primaryTerm: number;
}

export interface RepairTarget {
  /** The item's key attributes; for an aggregated mapping, the partition key alone is enough. */
  key: Item;
  /**
   * What verify read for this key. undefined or null: the document is read
   * now (an absent document gives no version to hold a write to, so verify's
   * "absent" is no better than a fresh read).
   */
  seen?: SeenDocument | null;
  /**
   * Other places the key's earlier states may have written to (a transform's
   * documents, which the key alone does not name): read now and repaired too.
   */
  places?: { index: string; id: string }[];
}

/**
 * What repair needs is what the updater needs (it reads and writes alike);
 * `runId` names the dead-letter records' run, here by default 'repair'.
 */
export type RepairDeps = ApplyStreamDeps;

export interface RepairResult {
  /** Documents written (created or overwritten) from the table. */
  indexed: number;
  /** Documents deleted because their item is gone or no longer produces them. */
  deleted: number;
  /** Documents already equal to their item (or absent, as they should be). */
  unchanged: number;
  /** A newer write (the updater's) won the race: the document is left to it. */
  superseded: number;
  /** Dead-letter records written (items that cannot be mapped, documents OpenSearch rejects). */
  deadLettered: number;
  /** Keys not repaired, with the reason (DynamoDB or OpenSearch unavailable, a missing index…). */
  failed: { key: Item; reason: string }[];
  /** Every document this repair wrote or deleted, with its item's key: what a second verify checks. */
  repairedIds: { index: string; id: string; key: Item; outcome: 'indexed' | 'deleted' }[];
  /** The documents counted `superseded`. */
  supersededIds: { index: string; id: string; key: Item }[];
}

export interface RepairOptions {
  /**
   * Write a document already equal to its item anyway (`index` under the
   * version read) instead of counting it `unchanged`. The write bumps the
   * document's version, so a writer that read the document before it, and
   * may have read an older item, fails its conditional write: the unordered
   * updater relies on this (docs/stream-updater.md, "Order and duplicates").
   * @default false
   */
  rewriteEqual?: boolean;
  /**
   * Repair the documents in other indices: each place's index is looked up
   * here (a serving name → the index a resync fills for it) and places of
   * indices not named are left alone. @default the places themselves
   */
  redirect?: Record<string, string>;
  /**
   * Where the item no longer produces a document, write this run's resync
   * tombstone instead of deleting (or leaving absent) the document, so that
   * the resync backfill's create of an older read finds it and stays out
   * (pipeline/resync/tombstones.ts). @default delete
   */
  tombstone?: string;
}

/** A document's place. */
interface Place {
  index: string;
  id: string;
}

/** A document as read now: its version and `_source`; null when absent. */
type Current = { version: ReadVersion; source: ExactJson | undefined } | null;

interface KeyWork {
  key: Item;
  /** Places to repair, by `placeName`, with the version verify read (undefined: read it now). */
  places: Map<string, { place: Place; version?: ReadVersion }>;
  /** Second round: only the places whose write met a conflict. */
  only?: Set<string>;
  /** Its item went to the dead-letter place in the first round: once is enough. */
  lettered?: boolean;
}

interface WriteAction {
  kind: 'create' | 'index' | 'delete';
  place: Place;
  work: KeyWork;
  body?: string;
  ifVersion?: ReadVersion;
  /** A resync tombstone: nothing to check against the table after its create. */
  tombstone?: boolean;
}

/** Places per `_mget`. */
const READ_BATCH = 1000;

/** Repairs the documents of `targets` from the table; see the module comment. Never throws for one key's problem. */
export async function repairKeys(
  targets: RepairTarget[],
  deps: RepairDeps,
  options: RepairOptions = {},
): Promise<RepairResult> {
  const result: RepairResult = {
    indexed: 0,
    deleted: 0,
    unchanged: 0,
    superseded: 0,
    deadLettered: 0,
    failed: [],
    repairedIds: [],
    supersededIds: [],
  };
  const works = new Map<string, KeyWork>();
  for (const target of targets) {
    const name = keyName(target.key, deps);
    let work = works.get(name);
    if (!work) {
      work = { key: target.key, places: new Map() };
      works.set(name, work);
    }
    for (const place of redirected(target.places ?? [], options)) {
      const name = placeName(place);
      if (!work.places.has(name)) work.places.set(name, { place: { index: place.index, id: place.id } });
    }
    if (target.seen) {
      const place = { index: target.seen.index, id: target.seen.id };
      work.places.set(placeName(place), {
        place,
        version: { seqNo: target.seen.seqNo, primaryTerm: target.seen.primaryTerm },
      });
    }
  }
  const conflicted = await repairRound([...works.values()], deps, result, false, options);
  if (conflicted.length > 0) await repairRound(conflicted, deps, result, true, options);
  deps.telemetry?.logger?.info('repaired keys', {
    keys: works.size,
    indexed: result.indexed,
    deleted: result.deleted,
    unchanged: result.unchanged,
    superseded: result.superseded,
    deadLettered: result.deadLettered,
    failed: result.failed.length,
  });
  return result;
}

/** One pass over `works`; returns the keys to read again (their writes met a conflict), unless `last`. */
async function repairRound(
  works: KeyWork[],
  deps: RepairDeps,
  result: RepairResult,
  last: boolean,
  options: RepairOptions,
): Promise<KeyWork[]> {
  const failed = new Set<KeyWork>();
  const fail = (work: KeyWork, reason: string) => {
    if (failed.has(work)) return;
    failed.add(work);
    result.failed.push({ key: work.key, reason });
  };
  for (const work of works) {
    for (const place of keyPlaces(work.key, deps, options)) {
      const name = placeName(place);
      if (!work.places.has(name)) work.places.set(name, { place });
    }
  }

  // 1. The documents, before the items (the order the argument rests on).
  const current = new Map<string, Current>();
  await readDocuments(unread(works, current), deps.opensearch, current, fail);

  // 2. The items, consistent; a transform may name places not read yet: read those, then the item again.
  const concurrency = deps.readConcurrency ?? 16;
  const mapped = await mapWithConcurrency(works, concurrency, (work) => mapKey(work, deps, options));
  const moved = works.filter((work, i) => {
    const outcome = mapped[i]!;
    if (!('documents' in outcome) || failed.has(work)) return false;
    let added = false;
    for (const document of outcome.documents) {
      const name = placeName(document);
      if (!work.places.has(name)) {
        work.places.set(name, { place: { index: document.index, id: document.id } });
        added = true;
      }
    }
    return added;
  });
  if (moved.length > 0) {
    await readDocuments(unread(moved, current), deps.opensearch, current, fail);
    const again = await mapWithConcurrency(moved, concurrency, (work) => mapKey(work, deps, options));
    moved.forEach((work, j) => {
      const outcome = again[j]!;
      if (
        'documents' in outcome &&
        outcome.documents.some((document) => !work.places.has(placeName(document)))
      ) {
        fail(work, 'the transform maps the item to other documents on each read');
      }
      mapped[works.indexOf(work)] = outcome;
    });
  }

  // 3. What to write.
  const actions: WriteAction[] = [];
  const letters: { work: KeyWork; record: Omit<DeadLetterRecord, 'runId' | 'table' | 'at'> }[] = [];
  works.forEach((work, i) => {
    if (failed.has(work)) return;
    const outcome = mapped[i]!;
    if ('failure' in outcome) {
      fail(work, outcome.failure);
      return;
    }
    let documents: { place: Place; body: string }[] = [];
    const unmappable = (problem: { reason: string; errorType: string }) => {
      if (!work.lettered) letters.push({ work, record: { key: work.key, ...problem } });
      work.lettered = true;
    };
    if ('unmappable' in outcome) {
      unmappable(outcome.unmappable);
    } else {
      try {
        documents = outcome.documents.map((document) => ({
          place: { index: document.index, id: document.id },
          body: encodeDocument(document.document),
        }));
      } catch (error) {
        if (!(error instanceof MappingError)) throw error;
        unmappable(problemOf(error));
      }
    }
    const bodies = new Map(documents.map((document) => [placeName(document.place), document.body]));
    for (const [name, { place, version: seen }] of work.places) {
      if (work.only && !work.only.has(name)) continue;
      const now = seen ? { version: seen, source: undefined } : current.get(name);
      if (now === undefined) continue; // its read failed: the key is in `failed`
      const body = bodies.get(name);
      if (body === undefined && options.tombstone !== undefined) {
        const tombstone = tombstoneLine(options.tombstone);
        if (now === null) actions.push({ kind: 'create', place, work, body: tombstone, tombstone: true });
        else if (!options.rewriteEqual && now.source !== undefined && isTombstone(now.source, tombstone)) {
          result.unchanged += 1;
        } else actions.push({ kind: 'index', place, work, body: tombstone, ifVersion: now.version });
      } else if (body === undefined) {
        if (now === null) result.unchanged += 1;
        else actions.push({ kind: 'delete', place, work, ifVersion: now.version });
      } else if (now === null) {
        actions.push({ kind: 'create', place, work, body });
      } else if (
        !options.rewriteEqual &&
        now.source !== undefined &&
        !firstDifference(JSON.parse(body) as JsonValue, now.source)
      ) {
        result.unchanged += 1;
      } else {
        actions.push({ kind: 'index', place, work, body, ifVersion: now.version });
      }
    }
  });

  // 4. The writes, each held to the version read.
  const retry = new Map<KeyWork, Set<string>>();
  const conflict = (action: WriteAction) => {
    if (last) {
      superseded(action, result);
      return;
    }
    let places = retry.get(action.work);
    if (!places) {
      places = new Set();
      retry.set(action.work, places);
    }
    places.add(placeName(action.place));
  };
  const written = await writeActions(actions, deps);
  const created: { action: WriteAction; version: ReadVersion }[] = [];
  for (const { action, status, version } of written.outcomes) {
    if (status === 'written') {
      if (action.kind === 'create' && version && !action.tombstone) created.push({ action, version });
      else record(action, result);
    } else if (status === 'conflict') {
      conflict(action);
    }
  }
  for (const { action, reason, errorType } of written.rejected) {
    letters.push({ work: action.work, record: { key: action.work.key, ...action.place, reason, errorType } });
    // A document OpenSearch refuses must not keep showing the item's older value.
    if (action.kind === 'index' && action.ifVersion) {
      const cleanup = { kind: 'delete', place: action.place, work: action.work, ifVersion: action.ifVersion };
      const cleaned = await writeActions([cleanup as WriteAction], deps);
      for (const outcome of cleaned.outcomes) {
        if (outcome.status === 'written') record(outcome.action, result);
        else if (outcome.status === 'conflict') superseded(outcome.action, result);
      }
      if (cleaned.failure) fail(action.work, cleaned.failure);
    }
  }
  if (written.failure) for (const action of written.unresolved) fail(action.work, written.failure);

  // 5. The resurrection check: a create whose item is gone now is taken back.
  await checkCreated(created, deps, result, fail, options);

  // 6. Items that cannot be mapped go to the dead-letter place.
  if (letters.length > 0) {
    const at = new Date().toISOString();
    const records = letters.map(
      ({ record }): DeadLetterRecord => ({ runId: deps.runId ?? 'repair', table: deps.table, ...record, at }),
    );
    try {
      await deps.deadLetters.put(records);
      result.deadLettered += records.length;
    } catch (error) {
      for (const { work } of letters) {
        fail(
          work,
          `could not write to the dead-letter place ${deps.deadLetters.location}: ${describeError(error)}`,
        );
      }
    }
  }

  return [...retry].map(([work, only]) => ({
    key: work.key,
    // Verify's versions are spent: the second round reads every place again.
    places: new Map([...work.places].map(([name, { place }]) => [name, { place }])),
    only,
    ...(work.lettered ? { lettered: true } : {}),
  }));
}

function record(action: WriteAction, result: RepairResult): void {
  if (action.kind === 'delete') result.deleted += 1;
  else result.indexed += 1;
  const outcome = action.kind === 'delete' ? 'deleted' : 'indexed';
  result.repairedIds.push({ ...action.place, key: action.work.key, outcome });
}

function superseded(action: WriteAction, result: RepairResult): void {
  result.superseded += 1;
  result.supersededIds.push({ ...action.place, key: action.work.key });
}

/** After the creates: an item that is gone now was deleted, perhaps before the create; undo the create. */
async function checkCreated(
  created: { action: WriteAction; version: ReadVersion }[],
  deps: RepairDeps,
  result: RepairResult,
  fail: (work: KeyWork, reason: string) => void,
  options: RepairOptions,
): Promise<void> {
  if (created.length === 0) return;
  const undo: WriteAction[] = [];
  const again = await mapWithConcurrency(created, deps.readConcurrency ?? 16, ({ action }) =>
    mapKey(action.work, deps, options),
  );
  created.forEach(({ action, version }, i) => {
    const outcome = again[i]!;
    if ('failure' in outcome) {
      // Neither keeping nor removing the document is known to be right: the second verify looks at it.
      fail(
        action.work,
        `created ${action.place.index}/${action.place.id} but could not read the item again: ${outcome.failure}`,
      );
      return;
    }
    const stillProduced =
      'documents' in outcome &&
      outcome.documents.some((document) => placeName(document) === placeName(action.place));
    if (stillProduced) record(action, result);
    else undo.push({ kind: 'delete', place: action.place, work: action.work, ifVersion: version });
  });
  const undone = await writeActions(undo, deps);
  for (const { action, status } of undone.outcomes) {
    // Either way the newer state stands: our delete of the stale create, or the updater's write after it.
    if (status === 'written' || status === 'conflict') superseded(action, result);
  }
  for (const { action, reason } of undone.rejected) fail(action.work, reason);
  if (undone.failure) {
    for (const action of undone.unresolved) {
      fail(
        action.work,
        `a document created from an item deleted meanwhile could not be removed: ${undone.failure}`,
      );
    }
  }
}

// --- reading -------------------------------------------------------------------

type Mapped =
  | { documents: MappedDocument[] }
  | { unmappable: { reason: string; errorType: string } }
  | { failure: string };

/** The key's item (the partition's items when aggregating), read consistently now, and its documents. */
async function mapKey(work: KeyWork, deps: RepairDeps, options: RepairOptions): Promise<Mapped> {
  const { keySchema, mapping } = deps;
  let items: Item[];
  try {
    if (mapping.aggregate) {
      const value = work.key[keySchema.partitionKey];
      if (value === undefined) return { unmappable: missingKey(keySchema.partitionKey) };
      items = await queryPartition(deps.dynamodb, {
        table: deps.table,
        partitionKey: keySchema.partitionKey,
        value,
      });
    } else {
      const item = await getItem(deps.dynamodb, deps.table, itemKey(work.key, keySchema));
      items = item ? [item] : [];
    }
  } catch (error) {
    return { failure: `could not read the item from DynamoDB table ${deps.table}: ${describeError(error)}` };
  }
  try {
    const documents = mapping.aggregate
      ? aggregateCollection(items, keySchema, mapping)
      : items[0]
        ? mapItem(items[0], keySchema, mapping)
        : [];
    return { documents: redirected(documents, options) };
  } catch (error) {
    if (error instanceof MappingError) return { unmappable: problemOf(error) };
    throw error;
  }
}

/** The places whose documents are not read yet (and not pinned by verify's read). */
function unread(works: KeyWork[], current: Map<string, Current>): { place: Place; work: KeyWork }[] {
  const places: { place: Place; work: KeyWork }[] = [];
  for (const work of works) {
    for (const [name, { place, version }] of work.places) {
      if (version === undefined && !current.has(name)) places.push({ place, work });
    }
  }
  return places;
}

/** `_mget` per index (realtime: no refresh needed), with each document's version and exact `_source`. */
async function readDocuments(
  places: { place: Place; work: KeyWork }[],
  opensearch: Client,
  current: Map<string, Current>,
  fail: (work: KeyWork, reason: string) => void,
): Promise<void> {
  const byIndex = new Map<string, { place: Place; work: KeyWork }[]>();
  for (const entry of places) {
    const list = byIndex.get(entry.place.index) ?? [];
    list.push(entry);
    byIndex.set(entry.place.index, list);
  }
  for (const [index, entries] of byIndex) {
    for (let start = 0; start < entries.length; start += READ_BATCH) {
      const batch = entries.slice(start, start + READ_BATCH);
      let docs: ExactJson | undefined;
      try {
        const response = await exactRequest(opensearch, 'POST', `/${encodeURIComponent(index)}/_mget`, {
          ids: batch.map(({ place }) => place.id),
        });
        docs = field(response, 'docs');
        if (!Array.isArray(docs) || docs.length !== batch.length) {
          throw new Error(`OpenSearch answered _mget on ${index} without one entry per id`);
        }
      } catch (error) {
        for (const { work } of batch)
          fail(work, `could not read documents of index ${index}: ${describeError(error)}`);
        continue;
      }
      batch.forEach(({ place, work }, i) => {
        const found = (docs as ExactJson[])[i];
        const error = field(found, 'error');
        if (error !== undefined) {
          const type = field(error, 'type');
          fail(
            work,
            type === 'index_not_found_exception'
              ? `index ${index} does not exist: run the backfill (ddb2os run) to create and fill it`
              : `could not read document ${index}/${place.id}: ${errorReason(error)}`,
          );
          return;
        }
        if (field(found, 'found') !== true) {
          current.set(placeName(place), null);
          return;
        }
        const seqNo = Number((field(found, '_seq_no') as JsonNumber).text);
        const primaryTerm = Number((field(found, '_primary_term') as JsonNumber).text);
        current.set(placeName(place), { version: { seqNo, primaryTerm }, source: field(found, '_source') });
      });
    }
  }
}

// --- writing -------------------------------------------------------------------

interface Written {
  outcomes: { action: WriteAction; status: 'written' | 'conflict'; version?: ReadVersion }[];
  rejected: { action: WriteAction; reason: string; errorType: string }[];
  /** Not applied: the writer gave up on OpenSearch (`failure` says why). */
  unresolved: WriteAction[];
  failure?: string;
}

/** The actions through the one BulkWriter; at most one action per document, so order does not matter. */
async function writeActions(actions: WriteAction[], deps: RepairDeps): Promise<Written> {
  const written: Written = { outcomes: [], rejected: [], unresolved: [] };
  if (actions.length === 0) return written;
  const done = new Set<WriteAction>();
  const writer = new BulkWriter<WriteAction>(deps.opensearch, {
    ...(deps.bulk ?? {}),
    reportVersions: true,
    onOutcome: (document, outcome, _retries, version) => {
      const action = document.ticket;
      done.add(action);
      switch (outcome.status) {
        case 'created':
        case 'indexed':
        case 'deleted':
          written.outcomes.push({ action, status: 'written', ...(version ? { version } : {}) });
          break;
        // A conditional delete of a document already gone answers 409, not 404; a create, 409 "present".
        case 'not_found':
        case 'present':
        case 'conflict':
          written.outcomes.push({ action, status: 'conflict' });
          break;
        case 'failed':
          written.rejected.push({ action, reason: outcome.reason, errorType: outcome.errorType });
          break;
      }
    },
  });
  const failure = await writer.writeAll(actions, (action) =>
    bulkLine(action.kind, action.place.index, action.place.id, action.body, action.ifVersion),
  );
  if (failure) {
    written.unresolved = actions.filter((action) => !done.has(action));
    written.failure = describeError(failure);
  }
  return written;
}

// --- keys and places -------------------------------------------------------------

/** Where the key's document is without reading the item: the built-in mapping's one place (none for a transform). */
function keyPlaces(key: Item, deps: RepairDeps, options: RepairOptions): Place[] {
  const { keySchema, mapping } = deps;
  if (mapping.transform) return [];
  try {
    const index = indexFor(key, keySchema, mapping);
    if (index === undefined) return [];
    const idSchema = mapping.aggregate ? { partitionKey: keySchema.partitionKey } : keySchema;
    return redirected([{ index, id: documentId(key, idSchema) }], options);
  } catch (error) {
    // A key that cannot be an id: the item's own mapping fails too, and dead-letters it.
    if (error instanceof MappingError) return [];
    throw error;
  }
}

function keyName(key: Item, deps: RepairDeps): string {
  const { partitionKey, sortKey } = deps.keySchema;
  const part = (name: string) => {
    const value = key[name];
    try {
      return value === undefined ? '' : keyToString(value);
    } catch (error) {
      // Not a key value: the key still gets its own entry, and its read or mapping says what is wrong.
      if (error instanceof MappingError) return JSON.stringify(value);
      throw error;
    }
  };
  if (deps.mapping.aggregate || sortKey === undefined) return part(partitionKey);
  return `${part(partitionKey)}\u0000${part(sortKey)}`;
}

/** The key attributes alone (a caller may pass a whole item or a document's fields). */
function itemKey(key: Item, keySchema: KeySchema): Item {
  const own: Item = { [keySchema.partitionKey]: key[keySchema.partitionKey]! };
  if (keySchema.sortKey !== undefined) own[keySchema.sortKey] = key[keySchema.sortKey]!;
  return own;
}

/** Places (or documents) moved to the indices `options.redirect` names, those of other indices left out. */
function redirected<P extends Place>(places: P[], options: RepairOptions): P[] {
  const { redirect } = options;
  if (redirect === undefined) return places;
  return places.flatMap((place) => {
    const index = redirect[place.index];
    return index === undefined ? [] : [{ ...place, index }];
  });
}

/** Whether a document's `_source` is the tombstone `line`. */
function isTombstone(source: ExactJson, line: string): boolean {
  return !firstDifference(JSON.parse(line) as JsonValue, source);
}

function placeName(place: Place): string {
  return `${place.index}\n${place.id}`;
}

function missingKey(name: string): { reason: string; errorType: string } {
  return { reason: `the key lacks the partition key attribute ${name}`, errorType: 'MappingError' };
}

function problemOf(error: unknown): { reason: string; errorType: string } {
  return { reason: describeError(error), errorType: error instanceof Error ? error.name : 'Error' };
}
