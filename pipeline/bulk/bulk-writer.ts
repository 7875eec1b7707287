/**
 * The one bulk writer of ddb2os, with every action accounted for: the
 * backfill **creates** documents through it, the stream updater **indexes**
 * (overwrites) and **deletes** them through it, under one item classifier and
 * one retry policy.
 *
 * - Requests are bounded by bytes and by action count. Each action is
 *   serialized and UTF-8 encoded once (`bulkLine`); a request body is the
 *   concatenation of those bytes, and retries resend the same bytes.
 * - Per action: created, indexed or deleted; for a create, 409 already
 *   present (the backfill never overwrites: the stream updater owns updates);
 *   for a delete, 404 not found (what a delete wants); for an index or a
 *   delete made conditional on what was read (`if_seq_no`, repair's), 409
 *   conflict: the document changed since. 429, 5xx,
 *   es_rejected_execution_exception or a cluster block (a write-blocked index,
 *   a full disk's read-only block) retried with exponential backoff and full
 *   jitter (only those actions); a field whose type does not fit is
 *   settled by FieldConflictResolver (a mapping put and another try, or a
 *   failure naming the field and both types); anything else
 *   (mapper_parsing_exception, a document too large, an illegal argument, …)
 *   a permanent failure that the caller sends to the dead-letter place.
 * - Per request: a connection error, a timeout, 429 or 5xx is retried with
 *   backoff; 413 splits the request in halves (a single document that is too
 *   large fails alone). When the retries run out, the writer fails with
 *   SinkUnavailableError and reports nothing more: a document either gets an
 *   outcome or the whole writer has failed. Nothing is dropped silently.
 * - Up to `concurrency` requests are in flight. `add` waits while every slot
 *   is busy and the buffer is full, so memory stays bounded. When a slot frees
 *   and documents wait in the buffer, they go out at once (the request size
 *   adapts to how fast OpenSearch answers).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Client, errors } from '@opensearch-project/opensearch';
import { BackfillError, SinkUnavailableError } from '../errors';
import { quietTelemetry, type Telemetry } from '../observability';
import { backoffDelay } from '../scan/read-budget';
import { type FieldConflict, type FieldConflictResolver, fieldConflictResolverFor } from './field-conflicts';

export const DEFAULT_BULK_MAX_BYTES = 5 * 1024 * 1024;
export const DEFAULT_BULK_MAX_DOCS = 5_000;
export const DEFAULT_BULK_CONCURRENCY = 2;
export const DEFAULT_BULK_ATTEMPTS = 8;

/** What an action does: the backfill creates, the stream updater indexes (overwrites) and deletes. */
export type BulkOperation = 'create' | 'index' | 'delete';

/** One action, serialized once: the action line and the source line of a `_bulk` body. */
export interface BulkLine {
  index: string;
  id: string;
  operation: BulkOperation;
  /**
   * `{"create":{"_index":…,"_id":…}}\n<document JSON>\n` (a delete has no
   * document line), UTF-8 encoded once:
   * a document waiting for its answer is held as bytes outside the JavaScript
   * heap, and a request body is the concatenation of its documents' bytes.
   */
  payload: Buffer;
  /** Bytes of `payload`. */
  bytes: number;
}

/** A document to write, with the caller's token that comes back with its outcome. */
export interface BulkDocument<T> extends BulkLine {
  ticket: T;
}

export type BulkOutcome =
  /** create: the document is new. */
  | { status: 'created' }
  /** create: a document with this id was already there and is left as it was (409). */
  | { status: 'present' }
  /** index: the document is written, replacing any earlier one. */
  | { status: 'indexed' }
  /** delete: the document is gone. */
  | { status: 'deleted' }
  /** delete: there was no such document (404), which is what a delete wants. */
  | { status: 'not_found' }
  /** index or delete with a condition: the document is no longer the one read (409); nothing was written. */
  | { status: 'conflict' }
  | {
      status: 'failed';
      reason: string;
      errorType: string;
      httpStatus?: number;
      /** Set when the item's value does not fit the field's type in the index mapping. */
      conflict?: FieldConflict;
    };

/**
 * The document as it was read (its `_seq_no` and `_primary_term`): an index or
 * delete action that carries it applies only if the document is still that
 * one (OpenSearch's optimistic concurrency control), else answers 409.
 */
export interface ReadVersion {
  seqNo: number;
  primaryTerm: number;
}

/** Builds the NDJSON lines of an action: the action line, and the document's JSON unless it is a delete. */
export function bulkLine(
  operation: BulkOperation,
  index: string,
  id: string,
  documentJson?: string,
  ifVersion?: ReadVersion,
): BulkLine {
  const condition = ifVersion
    ? `,"if_seq_no":${ifVersion.seqNo},"if_primary_term":${ifVersion.primaryTerm}`
    : '';
  const action = `{"${operation}":{"_index":${JSON.stringify(index)},"_id":${JSON.stringify(id)}${condition}}}\n`;
  const payload = Buffer.from(operation === 'delete' ? action : `${action}${documentJson}\n`);
  return { operation, index, id, payload, bytes: payload.length };
}

/** The lines of a create action (the backfill's). */
export function bulkCreateLine(index: string, id: string, documentJson: string): BulkLine {
  return bulkLine('create', index, id, documentJson);
}

/**
 * Request bounds and the retry policy: what a caller of the writer may tune.
 * The writer reads no environment variable; the worker and the updater read
 * DDB2OS_BULK_MAX_BYTES and DDB2OS_BULK_MAX_DOCS and pass them here.
 */
export interface BulkPolicy {
  /** Upper bound of one request body. @default 5 MiB */
  maxBytes?: number;
  /** Upper bound of documents in one request. @default 5000 */
  maxDocs?: number;
  /** Requests in flight at once. @default 2 */
  concurrency?: number;
  /** Attempts per request (the first included) before SinkUnavailableError. @default 8 */
  maxAttempts?: number;
  /** First backoff ceiling; doubles per attempt, full jitter. @default 200 */
  baseDelayMs?: number;
  /** Largest backoff. @default 10000 */
  maxDelayMs?: number;
}

export interface BulkWriterOptions<T> extends BulkPolicy {
  /** Where OpenSearch is, for messages. @default the client's first node */
  endpoint?: string;
  /**
   * Receives each document's final outcome and how often it was resent; with
   * `reportVersions`, also the version a create, index or delete left.
   */
  onOutcome: (
    document: BulkDocument<T>,
    outcome: BulkOutcome,
    retries: number,
    written?: ReadVersion,
  ) => void;
  /**
   * Ask OpenSearch for each written document's `_seq_no` and `_primary_term`
   * (repair deletes a document it created under exactly that version). Off by
   * default: the backfill's answers stay small. @default false
   */
  reportVersions?: boolean;
  telemetry?: Telemetry;
  /** Replaces the backoff wait (tests). */
  sleep?: (ms: number) => Promise<void>;
}

interface Pending<T> {
  document: BulkDocument<T>;
  retries: number;
  /** Times OpenSearch refused it for a field's type (see FieldConflictResolver). */
  conflicts: number;
}

/** One item of a `_bulk` answer, as far as the writer reads it. */
export interface BulkResponseItem {
  status?: number;
  _seq_no?: number;
  _primary_term?: number;
  error?: { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } };
}

/** Only what the writer reads: a status and an error per item. */
const FILTER_PATH =
  'errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by.type,items.*.error.caused_by.reason';
const FILTER_PATH_WITH_VERSIONS = `${FILTER_PATH},items.*._seq_no,items.*._primary_term`;

export class BulkWriter<T> {
  readonly maxBytes: number;
  readonly maxDocs: number;
  readonly concurrency: number;
  readonly endpoint: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly telemetry: Telemetry;
  private readonly wait: (ms: number) => Promise<void>;
  private readonly fieldConflicts: FieldConflictResolver;

  private buffer: Pending<T>[] = [];
  private bufferBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  /** Documents resent so far (each resend of each document counts once). */
  retried = 0;
  /** Requests sent so far (attempts included). */
  requests = 0;

  constructor(
    private readonly client: Client,
    private readonly options: BulkWriterOptions<T>,
  ) {
    this.maxBytes = positive(options.maxBytes, DEFAULT_BULK_MAX_BYTES, 'maxBytes');
    this.maxDocs = positive(options.maxDocs, DEFAULT_BULK_MAX_DOCS, 'maxDocs');
    this.concurrency = positive(options.concurrency, DEFAULT_BULK_CONCURRENCY, 'concurrency');
    this.maxAttempts = positive(options.maxAttempts, DEFAULT_BULK_ATTEMPTS, 'maxAttempts');
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.endpoint = options.endpoint ?? clientEndpoint(client);
    this.telemetry = options.telemetry ?? quietTelemetry;
    this.wait = options.sleep ?? ((ms) => sleep(ms));
    this.fieldConflicts = fieldConflictResolverFor(client);
  }

  /** The error that stopped the writer, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Requests in flight now. */
  get busy(): number {
    return this.inFlight.size;
  }

  /**
   * Buffers a document. When it would overflow the buffer, sends the buffer
   * first and returns a promise that resolves once a slot was free; otherwise
   * returns nothing (no await per document). Throws the writer's failure.
   */
  add(document: BulkDocument<T>): Promise<void> | undefined {
    this.throwIfFailed();
    if (
      this.buffer.length > 0 &&
      (this.bufferBytes + document.bytes > this.maxBytes || this.buffer.length >= this.maxDocs)
    ) {
      return this.flush().then(() => this.push(document));
    }
    this.push(document);
    return undefined;
  }

  private push(document: BulkDocument<T>): void {
    this.buffer.push({ document, retries: 0, conflicts: 0 });
    this.bufferBytes += document.bytes;
  }

  /** Sends the buffer now if a slot is free; never waits. */
  nudge(): void {
    if (this.failure || this.buffer.length === 0 || this.inFlight.size >= this.concurrency) return;
    this.dispatch();
  }

  /** Sends the buffer, waiting for a free slot. Throws the writer's failure. */
  async flush(): Promise<void> {
    while (this.inFlight.size >= this.concurrency) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    this.throwIfFailed();
    if (this.buffer.length > 0) this.dispatch();
  }

  /** Sends what is buffered and waits until every request has finished; throws the writer's failure. */
  async drain(): Promise<void> {
    await this.flush();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /**
   * Adds a document per ticket (its `line`) and drains. When the writer
   * fails, waits until no request is in flight (a caller that retries the
   * batch must not race its own earlier requests) and returns the failure
   * instead of throwing: the documents that got no outcome were not applied.
   */
  async writeAll(tickets: Iterable<T>, line: (ticket: T) => BulkLine): Promise<Error | undefined> {
    try {
      // One line at a time: a document is serialized only when the buffer has room for it.
      for (const ticket of tickets) {
        const waiting = this.add({ ...line(ticket), ticket });
        if (waiting) await waiting;
      }
      await this.drain();
      return undefined;
    } catch (error) {
      await this.settle();
      return error instanceof Error ? error : new BackfillError(String(error));
    }
  }

  /** Waits for the requests in flight to end, whatever their result (after a failure elsewhere). */
  async settle(): Promise<void> {
    this.buffer = [];
    this.bufferBytes = 0;
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private dispatch(): void {
    const batch = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    const request: Promise<void> = this.sendWithRetries(batch)
      .catch((error: unknown) => {
        this.failure ??= error instanceof Error ? error : new BackfillError(String(error));
      })
      .finally(() => {
        this.inFlight.delete(request);
        this.nudge();
      });
    this.inFlight.add(request);
  }

  private async sendWithRetries(batch: Pending<T>[]): Promise<void> {
    let pending = batch;
    let attempt = 0;
    while (pending.length > 0) {
      if (this.failure) return; // another request already failed the writer; its documents get no outcome
      attempt += 1;
      let items: BulkResponseItem[];
      try {
        items = await this.request(pending);
      } catch (error) {
        const status = statusOf(error);
        if (status === 413) {
          await this.splitTooLarge(pending, error);
          return;
        }
        if (!isRetryableRequestError(error)) {
          throw new SinkUnavailableError(
            `OpenSearch at ${this.endpoint} refused a bulk request${status ? ` with HTTP ${status}` : ''}: ${errorText(error)}`,
            { cause: error },
          );
        }
        if (attempt >= this.maxAttempts) {
          throw new SinkUnavailableError(
            `OpenSearch at ${this.endpoint} could not take a bulk request of ${pending.length} documents after ${attempt} attempts: ${errorText(error)}`,
            { cause: error },
          );
        }
        this.telemetry.logger.warn('bulk request failed; retrying', {
          endpoint: this.endpoint,
          attempt,
          documents: pending.length,
          error: errorText(error),
        });
        await this.backoff(attempt, pending);
        continue;
      }

      const retry: Pending<T>[] = [];
      let sinkRetries = 0;
      let lastRetryReason = '';
      const refused: { entry: Pending<T>; item: BulkResponseItem }[] = [];
      pending.forEach((entry, i) => {
        const item = items[i] as BulkResponseItem;
        const verdict = classifyItem(entry.document.operation, item);
        if (verdict === 'retry') {
          retry.push(entry);
          sinkRetries += 1;
          lastRetryReason = `${item.status ?? 0} ${item.error?.type ?? ''}`.trim();
        } else if (verdict === 'refused') refused.push({ entry, item });
        else this.report(entry, { status: verdict }, writtenVersion(item));
      });
      await Promise.all(
        refused.map(async ({ entry, item }) => {
          // A delete carries no document, so no field of it can conflict.
          const verdict =
            entry.document.operation === 'delete'
              ? undefined
              : await this.fieldConflicts.settle(
                  entry.document.index,
                  item.error,
                  entry.conflicts,
                  () => documentOf(entry.document),
                  this.telemetry.logger,
                );
          if (verdict?.retry) {
            entry.conflicts += 1;
            retry.push(entry);
            return;
          }
          const status = item.status ?? 0;
          this.report(entry, {
            status: 'failed',
            reason: verdict?.reason ?? itemReason(item),
            errorType: item.error?.type ?? `http_${status}`,
            httpStatus: status,
            ...(verdict?.conflict ? { conflict: verdict.conflict } : {}),
          });
        }),
      );
      if (retry.length === 0) return;
      // A mapping conflict is bounded per document (MAX_CONFLICT_ATTEMPTS); only a sink that keeps refusing fails the writer.
      if (attempt >= this.maxAttempts && sinkRetries > 0) {
        throw new SinkUnavailableError(
          `OpenSearch at ${this.endpoint} kept rejecting ${sinkRetries} documents (${lastRetryReason}) after ${attempt} attempts`,
        );
      }
      await this.backoff(attempt, retry);
      pending = retry;
    }
  }

  /** HTTP 413: the body is over the cluster's limit. Halves until one document is alone. */
  private async splitTooLarge(pending: Pending<T>[], error: unknown): Promise<void> {
    if (pending.length === 1) {
      const entry = pending[0] as Pending<T>;
      this.report(entry, {
        status: 'failed',
        reason: `the document is ${entry.document.bytes} bytes in its bulk request, more than OpenSearch accepts (HTTP 413: ${errorText(error)})`,
        errorType: 'request_entity_too_large',
        httpStatus: 413,
      });
      return;
    }
    const middle = Math.ceil(pending.length / 2);
    this.telemetry.logger.warn('bulk request too large; splitting it', {
      endpoint: this.endpoint,
      documents: pending.length,
    });
    await this.sendWithRetries(pending.slice(0, middle));
    await this.sendWithRetries(pending.slice(middle));
  }

  private async request(pending: Pending<T>[]): Promise<BulkResponseItem[]> {
    this.requests += 1;
    let bytes = 0;
    for (const entry of pending) bytes += entry.document.bytes;
    const body = Buffer.concat(
      pending.map((entry) => entry.document.payload),
      bytes,
    );
    // From now on each document's bytes are a view of the body: the request holds its documents once,
    // not twice, and a retry of some of them concatenates those views into a smaller body.
    let offset = 0;
    for (const entry of pending) {
      const end = offset + entry.document.bytes;
      entry.document.payload = body.subarray(offset, end);
      offset = end;
    }
    const response = await this.telemetry.tracer.trace('OpenSearch.bulk', () =>
      this.client.bulk({
        body,
        filter_path: this.options.reportVersions ? FILTER_PATH_WITH_VERSIONS : FILTER_PATH,
      } as never),
    );
    // Each item is keyed by its action's operation (`create`, `index`, `delete`), the one key it has.
    const items = ((response.body as { items?: Record<string, BulkResponseItem>[] }).items ?? []).map(
      (item) => (Object.values(item)[0] ?? {}) as BulkResponseItem,
    );
    if (items.length !== pending.length) {
      throw new SinkUnavailableError(
        `OpenSearch at ${this.endpoint} answered a bulk request of ${pending.length} documents with ${items.length} results`,
      );
    }
    return items;
  }

  private async backoff(attempt: number, entries: Pending<T>[]): Promise<void> {
    for (const entry of entries) entry.retries += 1;
    this.retried += entries.length;
    await this.wait(backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs));
  }

  private report(entry: Pending<T>, outcome: BulkOutcome, written?: ReadVersion): void {
    this.options.onOutcome(entry.document, outcome, entry.retries, written);
  }
}

function writtenVersion(item: BulkResponseItem): ReadVersion | undefined {
  return item._seq_no === undefined || item._primary_term === undefined
    ? undefined
    : { seqNo: item._seq_no, primaryTerm: item._primary_term };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new BackfillError(`BulkWriter ${name} must be a positive integer, not ${value}`);
  }
  return value;
}

/** The client's first node, e.g. `https://search-x.eu-west-1.es.amazonaws.com`. */
export function clientEndpoint(client: Client): string {
  const connection = (client as { connectionPool?: { connections?: { url?: URL }[] } }).connectionPool
    ?.connections?.[0];
  return connection?.url?.origin ?? 'the configured endpoint';
}

function statusOf(error: unknown): number | undefined {
  if (error instanceof errors.ResponseError) return error.statusCode ?? undefined;
  return undefined;
}

function isRetryableRequestError(error: unknown): boolean {
  if (error instanceof errors.ConnectionError || error instanceof errors.TimeoutError) return true;
  if (error instanceof errors.NoLivingConnectionsError) return true;
  if (error instanceof errors.DeserializationError) return true; // a truncated answer
  const status = statusOf(error);
  return status === 429 || (status !== undefined && status >= 500);
}

/**
 * The one item classifier: what an action's answer means for it. `retry`
 * for a busy or blocked sink (429, 5xx, a full write queue, a cluster block
 * such as a write-blocked index or a full disk's read-only block), never a
 * verdict on the document; `refused` for everything else that is not done,
 * which FieldConflictResolver may still settle.
 */
export function classifyItem(
  operation: BulkOperation,
  item: BulkResponseItem,
): 'created' | 'present' | 'indexed' | 'deleted' | 'not_found' | 'conflict' | 'retry' | 'refused' {
  const status = item.status ?? 0;
  if (status >= 200 && status < 300) {
    return operation === 'create' ? 'created' : operation === 'index' ? 'indexed' : 'deleted';
  }
  if (operation === 'create' && status === 409) return 'present';
  // Only a conditional index or delete (bulkLine's ifVersion) can meet a version conflict.
  if (status === 409 && item.error?.type === 'version_conflict_engine_exception') return 'conflict';
  // Also a missing index: either way the document is not there.
  if (operation === 'delete' && status === 404) return 'not_found';
  const type = item.error?.type;
  if (status === 429 || status >= 500) return 'retry';
  if (type === 'es_rejected_execution_exception' || type === 'cluster_block_exception') return 'retry';
  // A write to a name that resolves to no index for a moment: an alias swap (a resync moving a plain
  // index behind an alias) deletes the index a request had resolved. Again, the name finds the new
  // index; refused, the updater would dead-letter the item and remove its document from both indices.
  if (type === 'index_not_found_exception') return 'retry';
  return 'refused';
}

/** The document's JSON, the second line of its bulk payload (read only when OpenSearch refused it). */
function documentOf(document: BulkLine): unknown {
  const text = document.payload.toString('utf8');
  return JSON.parse(text.slice(text.indexOf('\n') + 1));
}

/** The rule lives with the rest of the field-type handling; re-exported for the writers' callers. */
export { isDynamicMappingRace, MAPPING_RACE_ATTEMPTS } from './field-conflicts';

function itemReason(item: BulkResponseItem): string {
  const error = item.error;
  if (!error) return `HTTP ${item.status ?? 'unknown'}`;
  const cause = error.caused_by?.reason;
  return cause && !error.reason?.includes(cause)
    ? `${error.reason}: ${cause}`
    : (error.reason ?? error.type ?? '');
}

function errorText(error: unknown): string {
  if (error instanceof errors.ResponseError) {
    const body = error.meta?.body as { error?: { reason?: string; type?: string } } | string | undefined;
    if (typeof body === 'object' && body?.error?.reason) return `${body.error.type}: ${body.error.reason}`;
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
