/**
 * `ddb2os verify`: does the index equal the table under the mapping contract
 * (docs/mapping.md)? Every item (or a random sample) is mapped exactly as the
 * backfill and the updater map it, and its expected document is compared with
 * what OpenSearch holds:
 *
 * - missing: an item whose expected document is absent;
 * - differing: present, but its `_source` is not the expected body (compared
 *   as JSON, deep, key order irrelevant, numbers as exact decimals);
 * - extra: a document in a target index that no item produces.
 *
 * Full mode scans the table with a parallel Scan, checks the expected
 * documents with `_mget` in batches (several in flight), remembers every
 * expected id per target index and then walks each target index's ids to find
 * the extras. That id set is the one thing that grows with the table: about
 * 100 bytes per item (measured on Node 20: 77 B for a 14-character id, about
 * 170 B for a 23-character `pk|sk` id), so 10 million items take 1 to 2 GB
 * (raise Node's heap with NODE_OPTIONS=--max-old-space-size=4096 if needed).
 * Beyond tens of millions of items, use the sample mode.
 *
 * Sample mode checks N random items (whole small segments of a parallel Scan
 * with many segments, picked at random) and N random documents per target
 * index (`random_score`), whose items are read back by the key attributes in
 * their `_source`; extras are then an estimate.
 */
import type { Readable } from 'node:stream';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { eachWithConcurrency } from '../concurrency';
import { BackfillError, MappingError, SinkUnavailableError } from '../errors';
import { parseDecimal } from '../mapping/decimal';
import {
  aggregateCollection,
  attributeToJson,
  checkMappingForTable,
  encodeDocument,
  keyToString,
  type MappedDocument,
  type MappingConfig,
  mapItem,
} from '../mapping/mapping';
import type { SeenDocument } from '../repair/repair-keys';
import { getItem, queryPartition, scanPage } from '../table/reads';
import type { Item, KeySchema } from '../table/types';
import {
  type ExactJson,
  firstDifference,
  JsonNumber,
  type JsonValue,
  parseExactJson,
  stringifyExact,
} from './exact-json';

/** What verify needs to know about the table (from one DescribeTable). */
export interface VerifyTable {
  name: string;
  keySchema: KeySchema;
  /** Types of the key attributes (AttributeDefinitions), to read a key back from a document. */
  keyTypes: Record<string, 'S' | 'N' | 'B'>;
  /** DescribeTable's ItemCount (AWS updates it about every six hours); sizes the sample's segments. */
  itemCount?: number;
}

export interface VerifyOptions {
  dynamodb: DynamoDBClient;
  opensearch: Client;
  table: VerifyTable;
  mapping: MappingConfig;
  /**
   * Parallel Scan segments (full mode) or segments scanned at once (sample mode).
   * @default 4
   */
  segments?: number;
  /** Check N random items and N random documents per target index instead of everything. */
  sample?: number;
  /**
   * Examples kept of each kind of difference.
   * @default 5
   */
  examples?: number;
  /**
   * Documents per `_mget`.
   * @default 1000
   */
  batchSize?: number;
  /**
   * `_mget` requests in flight.
   * @default 4
   */
  concurrency?: number;
  /**
   * Ids per page when walking an index for extras.
   * @default 5000
   */
  walkPageSize?: number;
  signal?: AbortSignal;
  onProgress?: (progress: VerifyProgress) => void;
  /** Source of randomness for the sample (tests pass a seeded one). */
  random?: () => number;
  /**
   * Keep every missing, extra and differing document (not only examples),
   * with its item's key and the version read, up to this many: what
   * `verify --repair` repairs. Beyond it the report says `driftOverflow`.
   */
  collect?: number;
}

export interface VerifyProgress {
  phase: 'scan' | 'extras' | 'sample-items' | 'sample-documents';
  items: number;
  checked: number;
  missing: number;
  differing: number;
  extra: number;
}

/** An item whose expected document is absent. `key` is the item's key as JSON. */
export interface MissingExample {
  index: string;
  id: string;
  key: Record<string, unknown>;
}

/** A document that no item produces; `reason` says why, in sample mode. */
export interface ExtraExample {
  index: string;
  id: string;
  reason?: string;
}

/**
 * A document whose `_source` differs from the expected body at `path`.
 * `expected` and `actual` are JSON texts (numbers exactly as stored); a side
 * is absent when the field is absent there.
 */
export interface DifferingExample {
  index: string;
  id: string;
  key: Record<string, unknown>;
  path: string;
  expected?: string;
  actual?: string;
}

/**
 * One difference, with what repair needs: the item's key and the version of
 * the document as verify read it (null: absent).
 */
export interface Drift {
  kind: 'missing' | 'extra' | 'differing';
  index: string;
  id: string;
  /** The item's key (the partition key alone when aggregating); absent when an extra's `_source` does not hold it. */
  key?: Item;
  seen: SeenDocument | null;
  /** Why `key` is absent. */
  reason?: string;
}

/** An item the mapping cannot turn into a document (the backfill dead-letters it too). */
export interface UnmappableExample {
  key: Record<string, unknown>;
  reason: string;
}

export interface SampleInfo {
  /** N of `--sample N`. */
  requested: number;
  /** How the items were picked, in words. */
  method: string;
  totalSegments: number;
  segmentsScanned: number;
  /** Random documents whose item was looked up (across target indices). */
  documentsSampled: number;
  /** Sampled documents whose key could not be read from `_source` (not counted either way). */
  unresolved: number;
  /** Documents the target indices hold (`_count`). */
  documentsInIndices: number;
  /** extra / documentsSampled × documentsInIndices, rounded. */
  estimatedExtra: number;
  /**
   * missing / checked × the documents the whole table should make (its
   * ItemCount × expectedDocuments / items), rounded; 0 when ItemCount is unknown.
   */
  estimatedMissing: number;
  /** differing / checked, scaled the same way. */
  estimatedDiffering: number;
}

export interface VerifyReport {
  table: string;
  /** The mapping's default index. */
  index: string;
  /** Every index checked: the default (unless unrouted items are skipped), the routes' and any a transform wrote to. */
  indices: string[];
  /** Target indices that do not exist: every expected document there is missing. */
  missingIndices: string[];
  /** Items read (all of them, or the sampled ones). */
  items: number;
  /** Documents the mapping makes of those items. */
  expectedDocuments: number;
  /** Expected documents looked up (= expectedDocuments). */
  checked: number;
  matched: number;
  missing: number;
  extra: number;
  differing: number;
  /** Items the mapping routes nowhere. */
  skipped: number;
  /** Items the mapping cannot map (dead-lettered by the backfill). */
  unmappable: number;
  /** Documents found in the target indices (full mode: walked; sample mode: `_count`). */
  documents: number;
  examples: {
    missing: MissingExample[];
    extra: ExtraExample[];
    differing: DifferingExample[];
    unmappable: UnmappableExample[];
  };
  sampled: boolean;
  sample?: SampleInfo;
  /** Things a reader should know: missing indices, ids two items share, how the sample was taken. */
  notes: string[];
  durationMs: number;
  /** With `collect`: every difference found (up to `collect` of them). */
  drift?: Drift[];
  /** With `collect`: more differences were found than `collect` keeps. */
  driftOverflow?: boolean;
}

/** The scan met the items of one partition in two places, so aggregation cannot be checked segment by segment. */
export class VerifyError extends BackfillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VerifyError';
  }
}

/** True when the index equals the table: nothing missing, extra or differing. */
export function indexMatchesTable(report: VerifyReport): boolean {
  return report.missing === 0 && report.extra === 0 && report.differing === 0;
}

const DEFAULTS = { segments: 4, examples: 5, batchSize: 1000, concurrency: 4, walkPageSize: 5000 };
/** DynamoDB's most parallel-scan segments. */
const MAX_TOTAL_SEGMENTS = 1_000_000;
/** OpenSearch's default index.max_result_window: one random_score page at most. */
const MAX_RANDOM_DOCUMENTS = 10_000;
/** Sample mode aims at about this many segments, so the sample spreads over the key space. */
const SAMPLE_SEGMENTS_AIMED = 100;

/** Compares the table with the index (or a sample of both); see the module comment. */
export async function verifyIndex(options: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const { table, mapping } = options;
  checkMappingForTable(mapping, table.keySchema);
  const settings = {
    segments: options.segments ?? DEFAULTS.segments,
    examples: options.examples ?? DEFAULTS.examples,
    batchSize: options.batchSize ?? DEFAULTS.batchSize,
    concurrency: options.concurrency ?? DEFAULTS.concurrency,
    walkPageSize: options.walkPageSize ?? DEFAULTS.walkPageSize,
  };
  const tally = new Tally(settings.examples, options.collect);
  const targets = new TargetIndices(options.opensearch, mapping, tally);
  const progress = (phase: VerifyProgress['phase']) => options.onProgress?.({ phase, ...tally.progress() });
  const checker = new DocumentChecker(options.opensearch, targets, tally, settings, () =>
    progress(options.sample === undefined ? 'scan' : 'sample-items'),
  );
  const context: MappingContext = {
    table,
    mapping,
    tally,
    checker,
    targets,
    expectedIds: options.sample === undefined ? new Map() : undefined,
  };
  const walk = { ...settings, keyNames: keyNames(table, mapping), keyTypes: table.keyTypes };

  let sample: SampleInfo | undefined;
  if (options.sample === undefined) {
    await scanEverything(options, settings.segments, context, () => progress('scan'));
    await checker.finish();
    for (const index of targets.all()) {
      if (!(await targets.exists(index))) continue;
      await walkForExtras(options, index, context.expectedIds?.get(index) ?? new Set(), walk, tally, () =>
        progress('extras'),
      );
    }
  } else {
    sample = await checkSample(options, options.sample, settings, context, progress);
  }

  const report = tally.report({
    table: table.name,
    index: mapping.index,
    indices: targets.all(),
    missingIndices: await targets.missing(),
    sampled: options.sample !== undefined,
    durationMs: Date.now() - started,
  });
  if (sample) report.sample = sample;
  return report;
}

// --- counts and examples --------------------------------------------------------

class Tally {
  items = 0;
  expectedDocuments = 0;
  matched = 0;
  missing = 0;
  extra = 0;
  differing = 0;
  skipped = 0;
  unmappable = 0;
  documents = 0;
  collisions = 0;
  readonly notes: string[] = [];
  readonly examples: VerifyReport['examples'] = { missing: [], extra: [], differing: [], unmappable: [] };
  readonly drift: Drift[] | undefined;
  driftOverflow = false;

  constructor(
    private readonly limit: number,
    private readonly collectLimit?: number,
  ) {
    this.drift = collectLimit === undefined ? undefined : [];
  }

  /** Keeps a difference for repair, when collecting. */
  collect(drift: Drift): void {
    if (!this.drift || this.collectLimit === undefined) return;
    if (this.drift.length < this.collectLimit) this.drift.push(drift);
    else this.driftOverflow = true;
  }

  addMissing(example: MissingExample): void {
    this.missing += 1;
    this.keep(this.examples.missing, example);
  }

  addExtra(example: ExtraExample): void {
    this.extra += 1;
    this.keep(this.examples.extra, example);
  }

  addDiffering(example: DifferingExample): void {
    this.differing += 1;
    this.keep(this.examples.differing, example);
  }

  addUnmappable(example: UnmappableExample): void {
    this.unmappable += 1;
    this.keep(this.examples.unmappable, example);
  }

  progress(): Omit<VerifyProgress, 'phase'> {
    return {
      items: this.items,
      checked: this.matched + this.missing + this.differing,
      missing: this.missing,
      differing: this.differing,
      extra: this.extra,
    };
  }

  report(
    head: Pick<VerifyReport, 'table' | 'index' | 'indices' | 'missingIndices' | 'sampled' | 'durationMs'>,
  ): VerifyReport {
    return {
      table: head.table,
      index: head.index,
      indices: head.indices,
      missingIndices: head.missingIndices,
      items: this.items,
      expectedDocuments: this.expectedDocuments,
      checked: this.matched + this.missing + this.differing,
      matched: this.matched,
      missing: this.missing,
      extra: this.extra,
      differing: this.differing,
      skipped: this.skipped,
      unmappable: this.unmappable,
      documents: this.documents,
      examples: this.examples,
      sampled: head.sampled,
      notes: this.notes,
      durationMs: head.durationMs,
      ...(this.drift ? { drift: this.drift, driftOverflow: this.driftOverflow } : {}),
    };
  }

  private keep<T>(list: T[], example: T): void {
    if (list.length < this.limit) list.push(example);
  }
}

// --- target indices -------------------------------------------------------------

/**
 * The indices the mapping writes to, whether each exists (asked once), and a
 * refresh before the first read so that recently written documents count.
 */
class TargetIndices {
  private readonly names = new Set<string>();
  private readonly state = new Map<string, Promise<boolean>>();

  constructor(
    private readonly opensearch: Client,
    mapping: MappingConfig,
    private readonly tally: Tally,
  ) {
    if (mapping.unrouted !== 'skip') this.names.add(mapping.index);
    for (const route of mapping.routes ?? []) this.names.add(route.index);
  }

  /** A transform may write anywhere: the indices it names join the targets. */
  add(index: string): void {
    this.names.add(index);
  }

  all(): string[] {
    return [...this.names];
  }

  exists(index: string): Promise<boolean> {
    let known = this.state.get(index);
    if (!known) {
      known = this.prepare(index);
      this.state.set(index, known);
    }
    return known;
  }

  async missing(): Promise<string[]> {
    const missing: string[] = [];
    for (const index of this.all()) if (!(await this.exists(index))) missing.push(index);
    return missing;
  }

  private async prepare(index: string): Promise<boolean> {
    const { body: exists } = await this.opensearch.indices.exists({ index });
    if (!exists) {
      this.tally.notes.push(`index ${index} does not exist: every document expected there is missing`);
      return false;
    }
    try {
      await this.opensearch.indices.refresh({ index });
    } catch (error) {
      // OpenSearch Serverless has no _refresh (it refreshes on its own): say so, go on.
      this.tally.notes.push(
        `index ${index} could not be refreshed (${(error as Error).message}); documents written in the last second may not count`,
      );
    }
    return true;
  }
}

// --- mapping items into expected documents --------------------------------------

interface ExpectedDocument {
  index: string;
  id: string;
  /** The body as encodeDocument writes it. */
  body: string;
  key: Record<string, unknown>;
  /** The item's key attributes (wire form), for repair. */
  itemKey: Item;
}

interface MappingContext {
  table: VerifyTable;
  mapping: MappingConfig;
  tally: Tally;
  checker: DocumentChecker;
  targets: TargetIndices;
  /** Full mode: every expected id per index, to find the extras afterwards. */
  expectedIds: Map<string, Set<string>> | undefined;
}

/**
 * One segment's items → expected documents. With aggregation, consecutive
 * items of one partition form a group: a Scan returns a partition's items
 * together, and a parallel Scan never splits a partition between segments.
 */
class SegmentMapper {
  private group: { partition: string; items: Item[] } | undefined;

  constructor(private readonly context: MappingContext) {}

  /** Maps a non-aggregated item, or adds it to its partition's group (closing the previous group). */
  async add(item: Item): Promise<void> {
    const { mapping, table, tally } = this.context;
    if (!mapping.aggregate) {
      tally.items += 1;
      await this.emit(() => mapItem(item, table.keySchema, mapping), [item]);
      return;
    }
    const partition = partitionOf(item, table.keySchema);
    if (this.group && this.group.partition !== partition) await this.closeGroup();
    if (!this.group) this.group = { partition, items: [] };
    this.group.items.push(item);
  }

  /** The partition of the group being built (aggregation), if any. */
  openPartition(): string | undefined {
    return this.group?.partition;
  }

  /** A sample that stops in the middle of a partition drops its incomplete group. */
  discardGroup(): void {
    this.group = undefined;
  }

  /** Closes the open group (the segment ended, or the next item is of another partition). */
  async closeGroup(): Promise<void> {
    const group = this.group;
    if (!group) return;
    this.group = undefined;
    const { mapping, table, tally } = this.context;
    tally.items += group.items.length;
    await this.emit(() => aggregateCollection(group.items, table.keySchema, mapping), group.items);
  }

  private async emit(map: () => MappedDocument[], items: Item[]): Promise<void> {
    const { table, tally, targets, expectedIds, checker, mapping } = this.context;
    const first = items[0] as Item;
    const key = keyJson(first, table.keySchema, mapping.aggregate !== undefined);
    const itemKey = keyAttributes(first, keyNames(table, mapping));
    let documents: ExpectedDocument[];
    try {
      documents = map().map((document) => {
        targets.add(document.index);
        return {
          index: document.index,
          id: document.id,
          body: encodeDocument(document.document),
          key,
          itemKey,
        };
      });
    } catch (error) {
      if (!(error instanceof MappingError)) throw error;
      tally.addUnmappable({ key, reason: error.message });
      return;
    }
    if (documents.length === 0) tally.skipped += items.length;
    for (const document of documents) {
      tally.expectedDocuments += 1;
      if (expectedIds) {
        let ids = expectedIds.get(document.index);
        if (!ids) {
          ids = new Set();
          expectedIds.set(document.index, ids);
        }
        if (ids.has(document.id)) {
          if (mapping.aggregate) {
            throw new VerifyError(
              `the scan of table ${table.name} returned the items of partition ${document.id} in two places, ` +
                'so its aggregated document cannot be rebuilt; run verify again, or with --sample',
            );
          }
          tally.collisions += 1;
          if (tally.collisions <= 3) {
            tally.notes.push(
              `two items map to document ${document.index}/${document.id} (a transform that gives two items one id?); only one of them can match`,
            );
          }
        }
        ids.add(document.id);
      }
      await checker.add(document);
    }
  }
}

/** The key attributes that name an item (a partition, when aggregating). */
function keyNames(table: VerifyTable, mapping: MappingConfig): string[] {
  const { partitionKey, sortKey } = table.keySchema;
  return mapping.aggregate || sortKey === undefined ? [partitionKey] : [partitionKey, sortKey];
}

function keyAttributes(item: Item, names: string[]): Item {
  const key: Item = {};
  for (const name of names) if (item[name] !== undefined) key[name] = item[name];
  return key;
}

function partitionOf(item: Item, keySchema: KeySchema): string {
  const value = item[keySchema.partitionKey];
  return value === undefined ? '' : keyToString(value);
}

/** The item's key attributes as JSON, for examples (the partition key alone for an aggregated document). */
function keyJson(item: Item, keySchema: KeySchema, partitionOnly: boolean): Record<string, unknown> {
  const names =
    partitionOnly || keySchema.sortKey === undefined
      ? [keySchema.partitionKey]
      : [keySchema.partitionKey, keySchema.sortKey];
  const key: Record<string, unknown> = {};
  for (const name of names) {
    const value = item[name];
    if (value === undefined) continue;
    try {
      key[name] = attributeToJson(value);
    } catch {
      key[name] = String(Object.values(value)[0]);
    }
  }
  return key;
}

// --- comparing with what OpenSearch holds ---------------------------------------

/**
 * Expected documents → `_mget` batches per index, `concurrency` in flight;
 * `add` waits when all slots are busy, so memory stays bounded.
 */
class DocumentChecker {
  private readonly batches = new Map<string, ExpectedDocument[]>();
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly opensearch: Client,
    private readonly targets: TargetIndices,
    private readonly tally: Tally,
    private readonly settings: { batchSize: number; concurrency: number },
    private readonly onBatch: () => void,
  ) {}

  async add(document: ExpectedDocument): Promise<void> {
    this.throwIfFailed();
    let batch = this.batches.get(document.index);
    if (!batch) {
      batch = [];
      this.batches.set(document.index, batch);
    }
    batch.push(document);
    if (batch.length >= this.settings.batchSize) {
      this.batches.delete(document.index);
      await this.dispatch(document.index, batch);
    }
  }

  /** Sends what is left and waits for every batch. */
  async finish(): Promise<void> {
    for (const [index, batch] of [...this.batches]) {
      this.batches.delete(index);
      await this.dispatch(index, batch);
    }
    await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  private async dispatch(index: string, batch: ExpectedDocument[]): Promise<void> {
    while (this.inFlight.size >= this.settings.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const task: Promise<void> = this.check(index, batch)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.inFlight.delete(task);
        this.onBatch();
      });
    this.inFlight.add(task);
  }

  private missing(document: ExpectedDocument): void {
    this.tally.addMissing(missingExample(document));
    this.tally.collect({
      kind: 'missing',
      index: document.index,
      id: document.id,
      key: document.itemKey,
      seen: null,
    });
  }

  private async check(index: string, batch: ExpectedDocument[]): Promise<void> {
    if (!(await this.targets.exists(index))) {
      for (const document of batch) this.missing(document);
      return;
    }
    const response = await exactRequest(this.opensearch, 'POST', `/${encodeURIComponent(index)}/_mget`, {
      ids: batch.map((document) => document.id),
    });
    const docs = field(response, 'docs');
    if (!Array.isArray(docs) || docs.length !== batch.length) {
      throw new SinkUnavailableError(`OpenSearch answered _mget on ${index} without one entry per id`);
    }
    batch.forEach((document, i) => {
      const found = docs[i];
      const error = field(found, 'error');
      if (error !== undefined) {
        throw new SinkUnavailableError(
          `OpenSearch could not read document ${index}/${document.id}: ${errorReason(error)}`,
        );
      }
      if (field(found, 'found') !== true) {
        this.missing(document);
        return;
      }
      const source = field(found, '_source');
      const difference =
        source === undefined
          ? { path: '', expected: null, actual: undefined }
          : // The expected side is what ddb2os wrote: JSON.parse gives back exactly its numbers.
            firstDifference(JSON.parse(document.body) as JsonValue, source);
      if (!difference) {
        this.tally.matched += 1;
        return;
      }
      this.tally.collect({
        kind: 'differing',
        index,
        id: document.id,
        key: document.itemKey,
        seen: seenOf(found, index, document.id),
      });
      this.tally.addDiffering({
        index,
        id: document.id,
        key: document.key,
        path: source === undefined ? '_source (the index does not store it)' : difference.path,
        ...(difference.expected !== undefined && source !== undefined
          ? { expected: stringifyExact(difference.expected) }
          : {}),
        ...(difference.actual !== undefined ? { actual: stringifyExact(difference.actual) } : {}),
      });
    });
  }
}

/** The version of a document in an `_mget` or search answer. */
function seenOf(found: ExactJson | undefined, index: string, id: string): SeenDocument | null {
  const seqNo = field(found, '_seq_no');
  const primaryTerm = field(found, '_primary_term');
  if (!(seqNo instanceof JsonNumber) || !(primaryTerm instanceof JsonNumber)) return null;
  return { index, id, seqNo: Number(seqNo.text), primaryTerm: Number(primaryTerm.text) };
}

function missingExample(document: ExpectedDocument): MissingExample {
  return { index: document.index, id: document.id, key: document.key };
}

// --- full mode -----------------------------------------------------------------

async function scanEverything(
  options: VerifyOptions,
  totalSegments: number,
  context: MappingContext,
  onPage: () => void,
): Promise<void> {
  await Promise.all(
    Array.from({ length: totalSegments }, async (_, segment) => {
      const mapper = new SegmentMapper(context);
      for await (const items of scanPages(options, segment, totalSegments)) {
        for (const item of items) await mapper.add(item);
        onPage();
      }
      await mapper.closeGroup();
    }),
  );
}

async function* scanPages(
  options: VerifyOptions,
  segment: number,
  totalSegments: number,
): AsyncGenerator<Item[]> {
  let start: Item | undefined;
  do {
    throwIfAborted(options.signal);
    const page = await scanPage(
      options.dynamodb,
      {
        TableName: options.table.name,
        Segment: segment,
        TotalSegments: totalSegments,
        ExclusiveStartKey: start,
      },
      { signal: options.signal },
    );
    yield page.items;
    start = page.lastEvaluatedKey;
  } while (start);
}

/**
 * Pages through every id of the index (`search_after` on `_id`) and counts
 * those no item produces. When collecting for repair, each page also brings
 * the documents' versions and the key attributes in `_source`, read exactly.
 */
async function walkForExtras(
  options: VerifyOptions,
  index: string,
  expected: Set<string>,
  settings: { walkPageSize: number; keyNames: string[]; keyTypes: VerifyTable['keyTypes'] },
  tally: Tally,
  onPage: () => void,
): Promise<void> {
  const collecting = options.collect !== undefined;
  let after: string | undefined;
  for (;;) {
    throwIfAborted(options.signal);
    const response = await exactRequest(options.opensearch, 'POST', `/${encodeURIComponent(index)}/_search`, {
      size: settings.walkPageSize,
      _source: collecting ? { includes: settings.keyNames } : false,
      ...(collecting ? { seq_no_primary_term: true } : {}),
      track_total_hits: false,
      sort: [{ _id: 'asc' }],
      query: { match_all: {} },
      ...(after === undefined ? {} : { search_after: [after] }),
    });
    const found = field(field(response, 'hits'), 'hits');
    const hits = Array.isArray(found) ? found : [];
    for (const hit of hits) {
      tally.documents += 1;
      const id = field(hit, '_id');
      if (typeof id !== 'string' || expected.has(id)) continue;
      tally.addExtra({ index, id });
      if (!collecting) continue;
      const key = keyFromSource(field(hit, '_source'), settings.keyNames, settings.keyTypes);
      tally.collect({
        kind: 'extra',
        index,
        id,
        seen: seenOf(hit, index, id),
        ...(typeof key === 'string' ? { reason: `its item's key is not in _source (${key})` } : { key }),
      });
    }
    onPage();
    if (hits.length < settings.walkPageSize) return;
    const last = field(hits[hits.length - 1], '_id');
    after = typeof last === 'string' ? last : undefined;
  }
}

/** What a check of some keys found (`verifyKeys`). */
export interface KeysCheck {
  /** Keys read again. */
  keys: number;
  /** Items those keys have now. */
  items: number;
  /** Expected documents looked up. */
  checked: number;
  matched: number;
  missing: number;
  differing: number;
  /** Documents named in `places` that no item of `keys` produces, but that exist. */
  extra: number;
  examples: VerifyReport['examples'];
}

/**
 * Verify for exactly some keys, after a repair: each key's item (its
 * partition, when aggregating) is read again (consistent) and its documents
 * compared with the index; each of `places` that none of them produces must
 * be absent. Reads are realtime (`_mget`), no refresh needed.
 */
export async function verifyKeys(
  options: Pick<VerifyOptions, 'dynamodb' | 'opensearch' | 'table' | 'mapping' | 'examples' | 'signal'> & {
    keys: Item[];
    places: { index: string; id: string }[];
  },
): Promise<KeysCheck> {
  const { table, mapping } = options;
  const tally = new Tally(options.examples ?? DEFAULTS.examples);
  const targets = new TargetIndices(options.opensearch, mapping, tally);
  const checker = new DocumentChecker(
    options.opensearch,
    targets,
    tally,
    { batchSize: DEFAULTS.batchSize, concurrency: DEFAULTS.concurrency },
    () => undefined,
  );
  const expectedIds = new Map<string, Set<string>>();
  const context: MappingContext = { table, mapping, tally, checker, targets, expectedIds };
  const names = keyNames(table, mapping);
  const seen = new Set<string>();
  const keys = options.keys.filter((key) => {
    const name = JSON.stringify(keyJson(key, table.keySchema, mapping.aggregate !== undefined));
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
  await eachWithConcurrency(keys, 16, async (key) => {
    throwIfAborted(options.signal);
    const mapper = new SegmentMapper(context);
    const own = keyAttributes(key, names);
    const items = mapping.aggregate
      ? await queryPartition(options.dynamodb, {
          table: table.name,
          partitionKey: table.keySchema.partitionKey,
          value: own[table.keySchema.partitionKey]!,
        })
      : [await getItem(options.dynamodb, table.name, own, { signal: options.signal })].filter(
          (item): item is Item => item !== undefined,
        );
    for (const item of items) await mapper.add(item);
    await mapper.closeGroup();
  });
  await checker.finish();

  // Places the items no longer produce must be gone.
  const stray = new Map<string, string[]>();
  for (const place of options.places) {
    if (expectedIds.get(place.index)?.has(place.id)) continue;
    const ids = stray.get(place.index) ?? [];
    if (!ids.includes(place.id)) ids.push(place.id);
    stray.set(place.index, ids);
  }
  for (const [index, ids] of stray) {
    if (!(await targets.exists(index))) continue;
    for (let start = 0; start < ids.length; start += DEFAULTS.batchSize) {
      const batch = ids.slice(start, start + DEFAULTS.batchSize);
      const response = await exactRequest(
        options.opensearch,
        'POST',
        `/${encodeURIComponent(index)}/_mget?_source=false`,
        { ids: batch },
      );
      const docs = field(response, 'docs');
      batch.forEach((id, i) => {
        if (Array.isArray(docs) && field(docs[i], 'found') === true) tally.addExtra({ index, id });
      });
    }
  }
  return {
    keys: keys.length,
    ...tally.progress(),
    matched: tally.matched,
    examples: tally.examples,
  };
}

// --- sample mode ---------------------------------------------------------------

async function checkSample(
  options: VerifyOptions,
  requested: number,
  settings: { segments: number },
  context: MappingContext,
  progress: (phase: VerifyProgress['phase']) => void,
): Promise<SampleInfo> {
  const random = options.random ?? Math.random;
  const itemCount = options.table.itemCount ?? 0;
  // Segments of about requested/100 items each: the sample spreads over about
  // 100 random stretches of the key space, at about 100 Scan requests.
  const perSegment = Math.max(1, Math.ceil(requested / SAMPLE_SEGMENTS_AIMED));
  const totalSegments =
    itemCount > 0 ? Math.min(MAX_TOTAL_SEGMENTS, Math.max(1, Math.ceil(itemCount / perSegment))) : 100;
  const order = randomOrder(totalSegments, random);
  let collected = 0;
  let segmentsScanned = 0;
  const aggregated = context.mapping.aggregate !== undefined;

  // Segments are taken while the sample is short, and no further: each one taken draws on `random`.
  function* segmentsWhileShort(): Generator<number> {
    while (collected < requested) {
      const next = order.next();
      if (next.done) return;
      yield next.value;
    }
  }
  await eachWithConcurrency(segmentsWhileShort(), settings.segments, async (segment) => {
    segmentsScanned += 1;
    const mapper = new SegmentMapper(context);
    for await (const items of scanPages(options, segment, totalSegments)) {
      for (const item of items) {
        if (aggregated) {
          // A partition counts once it is complete: when the next one starts, or at the segment's end.
          const open = mapper.openPartition();
          if (open !== undefined && open !== partitionOf(item, context.table.keySchema)) {
            if (collected >= requested) {
              mapper.discardGroup();
              return;
            }
            collected += 1;
          }
        } else {
          if (collected >= requested) return;
          collected += 1;
        }
        await mapper.add(item);
      }
      progress('sample-items');
      if (collected >= requested) break;
    }
    if (mapper.openPartition() !== undefined) {
      if (collected < requested) {
        collected += 1;
        await mapper.closeGroup();
      } else {
        mapper.discardGroup();
      }
    }
  });
  await context.checker.finish();

  const documents = await checkRandomDocuments(options, requested, context, () =>
    progress('sample-documents'),
  );
  const { tally } = context;
  const checked = tally.matched + tally.missing + tally.differing;
  // Aggregation makes fewer documents than items: scale to the documents the table makes.
  const tableDocuments = tally.items > 0 ? (itemCount * tally.expectedDocuments) / tally.items : 0;
  const scale = (count: number) => (checked > 0 ? Math.round((count / checked) * tableDocuments) : 0);
  const unit = aggregated ? 'partitions' : 'items';
  tally.notes.push(
    `sample: ${collected} ${unit} from ${segmentsScanned} random segments of a ${totalSegments}-segment parallel Scan` +
      `, and up to ${Math.min(requested, MAX_RANDOM_DOCUMENTS)} random documents (random_score) per index whose items were read back by key; extras are estimated`,
  );
  return {
    requested,
    method:
      `whole segments of a parallel Scan with ${totalSegments} segments, picked at random, until ${requested} ${unit}; ` +
      `random documents by random_score, their items read back by the key in _source (consistent GetItem${aggregated ? ', or Query of the partition' : ''})`,
    totalSegments,
    segmentsScanned,
    documentsSampled: documents.sampled,
    unresolved: documents.unresolved,
    documentsInIndices: tally.documents,
    estimatedExtra:
      documents.sampled > 0 ? Math.round((tally.extra / documents.sampled) * tally.documents) : tally.extra,
    estimatedMissing: scale(tally.missing),
    estimatedDiffering: scale(tally.differing),
  };
}

/**
 * N random documents per existing target index: the key attributes in each
 * `_source` name an item (GetItem, or a Query of the partition when
 * aggregating), and a document that item does not produce is an extra.
 */
async function checkRandomDocuments(
  options: VerifyOptions,
  requested: number,
  context: MappingContext,
  onPage: () => void,
): Promise<{ sampled: number; unresolved: number }> {
  const { tally, targets, table, mapping } = context;
  const aggregated = mapping.aggregate !== undefined;
  const keyNames =
    aggregated || table.keySchema.sortKey === undefined
      ? [table.keySchema.partitionKey]
      : [table.keySchema.partitionKey, table.keySchema.sortKey];
  let sampled = 0;
  let unresolved = 0;
  for (const index of targets.all()) {
    if (!(await targets.exists(index))) continue;
    throwIfAborted(options.signal);
    const { body: counted } = await options.opensearch.count({ index });
    tally.documents += counted.count;
    const response = await exactRequest(options.opensearch, 'POST', `/${encodeURIComponent(index)}/_search`, {
      size: Math.min(requested, MAX_RANDOM_DOCUMENTS),
      track_total_hits: false,
      _source: { includes: keyNames },
      query: {
        function_score: {
          query: { match_all: {} },
          random_score: { seed: Math.floor((options.random ?? Math.random)() * 2 ** 31), field: '_seq_no' },
        },
      },
    });
    const hits = field(field(response, 'hits'), 'hits');
    const list = Array.isArray(hits) ? hits : [];
    await eachWithConcurrency(list, 8, async (hit) => {
      const id = field(hit, '_id');
      if (typeof id !== 'string') return;
      const key = keyFromSource(field(hit, '_source'), keyNames, table.keyTypes);
      if (typeof key === 'string') {
        unresolved += 1;
        return;
      }
      sampled += 1;
      const verdict = await producedBy(options, context, key, index, id);
      if (verdict !== undefined) tally.addExtra({ index, id, reason: verdict });
    });
    onPage();
  }
  if (unresolved > 0) {
    tally.notes.push(
      `${unresolved} sampled documents do not hold their key attributes (${keyNames.join(', ')}) in _source, so their items could not be looked up`,
    );
  }
  return { sampled, unresolved };
}

/** undefined when the item under `key` produces `index`/`id`; otherwise why not. */
async function producedBy(
  options: VerifyOptions,
  context: MappingContext,
  key: Item,
  index: string,
  id: string,
): Promise<string | undefined> {
  const { table, mapping } = context;
  const shown = JSON.stringify(keyJson(key, table.keySchema, false));
  let documents: MappedDocument[];
  try {
    if (mapping.aggregate) {
      const items = await queryPartition(
        options.dynamodb,
        {
          table: table.name,
          partitionKey: table.keySchema.partitionKey,
          value: key[table.keySchema.partitionKey]!,
        },
        { signal: options.signal },
      );
      if (items.length === 0) return `no item has the key ${shown}`;
      documents = aggregateCollection(items, table.keySchema, mapping);
    } else {
      const item = await getItem(options.dynamodb, table.name, key, { signal: options.signal });
      if (!item) return `no item has the key ${shown}`;
      documents = mapItem(item, table.keySchema, mapping);
    }
  } catch (error) {
    if (error instanceof MappingError)
      return `the item with the key ${shown} cannot be mapped: ${error.message}`;
    if (error instanceof Error && error.name === 'ValidationException') {
      return `the key ${shown} read from the document is not a key of the table: ${error.message}`;
    }
    throw error;
  }
  if (documents.some((document) => document.index === index && document.id === id)) return undefined;
  const where = documents.map((document) => `${document.index}/${document.id}`).join(', ');
  return `the item with the key ${shown} maps to ${where || 'no document'}`;
}

/**
 * The item key a document's `_source` holds, by the key attributes' types:
 * S a string; N a number or its exact string; B base64. A string says why not.
 */
export function keyFromSource(
  source: ExactJson | undefined,
  names: string[],
  types: Record<string, 'S' | 'N' | 'B'>,
): Item | string {
  const key: Item = {};
  for (const name of names) {
    const value = field(source, name);
    const type = types[name] ?? 'S';
    if (type === 'S' && typeof value === 'string') key[name] = { S: value };
    else if (type === 'N' && value instanceof JsonNumber) key[name] = { N: value.text };
    else if (type === 'N' && typeof value === 'string' && parseDecimal(value) !== undefined)
      key[name] = { N: value };
    else if (
      type === 'B' &&
      typeof value === 'string' &&
      Buffer.from(value, 'base64').toString('base64') === value
    ) {
      key[name] = { B: Buffer.from(value, 'base64') };
    } else {
      return `field ${name} is ${value === undefined ? 'absent' : `not a ${type} key value`}`;
    }
  }
  return key;
}

// --- OpenSearch requests whose numbers must stay exact ---------------------------

/**
 * A request whose answer is read with parseExactJson (the client's own
 * JSON.parse would round big numbers). A non-2xx answer is a
 * SinkUnavailableError with OpenSearch's reason.
 */
export async function exactRequest(
  opensearch: Client,
  method: string,
  path: string,
  body: unknown,
): Promise<ExactJson> {
  const response = await opensearch.transport.request(
    { method, path, body: body as Record<string, unknown> },
    { asStream: true },
  );
  const text = await readText(response.body as Readable, response.headers ?? {});
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    let reason = text.slice(0, 300);
    try {
      reason = errorReason(field(JSON.parse(text) as ExactJson, 'error')) ?? reason;
    } catch {
      // Not JSON: keep the text.
    }
    throw new SinkUnavailableError(`OpenSearch answered ${status} to ${method} ${path}: ${reason}`);
  }
  return parseExactJson(text);
}

async function readText(stream: Readable, headers: Record<string, unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const raw = Buffer.concat(chunks);
  const encoding = String(headers['content-encoding'] ?? '').toLowerCase();
  if (encoding.includes('gzip')) return gunzipSync(raw).toString('utf8');
  if (encoding.includes('deflate')) return inflateSync(raw).toString('utf8');
  return raw.toString('utf8');
}

/** OpenSearch's `error` member (an object or a string) as `type: reason`. */
export function errorReason(error: unknown): string {
  if (typeof error === 'string') return error;
  const type = field(error as ExactJson, 'type');
  const reason = field(error as ExactJson, 'reason');
  return [type, reason].filter((part) => typeof part === 'string').join(': ') || JSON.stringify(error);
}

/** A member of a JSON object, or undefined for anything else. */
export function field(value: ExactJson | undefined, name: string): ExactJson | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof JsonNumber) {
    return undefined;
  }
  return Object.hasOwn(value, name) ? value[name] : undefined;
}

// --- small helpers ---------------------------------------------------------------

/** 0…n-1 in random order, lazily: a Fisher–Yates shuffle that stores only the swapped places. */
function* randomOrder(n: number, random: () => number): Generator<number> {
  const swapped = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (n - i));
    const picked = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    swapped.delete(i);
    yield picked;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('interrupted');
}
