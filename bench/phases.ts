/**
 * The benchmark's measurements, one function each. Every function times only
 * its own work and returns how many items (documents, records) it moved and
 * in how many seconds; the caller repeats them and takes medians.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  ScanCommand,
  UpdateTableCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import { createLocalUpdater } from '../local/backfill';
import { seededRandom } from '../local/demo-data';
import { loadItems } from '../local/load-items';
import { type BulkLine, BulkWriter, bulkCreateLine } from '../pipeline/bulk/bulk-writer';
import { eachWithConcurrency, range } from '../pipeline/concurrency';
import { prepareIndexForBackfill, restoreIndexAfterBackfill } from '../pipeline/index/index-settings';
import { encodeDocument, type MappingConfig, mapItem } from '../pipeline/mapping/mapping';
import { describeSourceTable } from '../pipeline/table/describe';
import { scanPage } from '../pipeline/table/reads';
import type { Item } from '../pipeline/table/types';
import { BENCH_KEY_SCHEMA, benchItem } from './items';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(BENCH_DIR, '..');

/** What one timed run moved. */
export interface Measurement {
  /** Items, documents or records moved. */
  count: number;
  seconds: number;
}

export function rate(measurement: Measurement): number {
  return measurement.seconds > 0 ? measurement.count / measurement.seconds : 0;
}

/** Runs `work` and times it. */
export async function timed(work: () => Promise<number>): Promise<Measurement> {
  const started = process.hrtime.bigint();
  const count = await work();
  return { count, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** An on-demand table keyed by `pk`, with or without a stream of new and old images. */
export async function createBenchTable(
  dynamodb: DynamoDBClient,
  table: string,
  options: { stream: boolean },
): Promise<void> {
  await dynamodb.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
  await dynamodb.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      ...(options.stream
        ? { StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }
        : {}),
    }),
  );
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 120 }, { TableName: table });
}

/**
 * Turns the table's stream on after the load, so the stream holds only the
 * changes the stream benchmark makes (the load's inserts would be read by
 * the first drain otherwise).
 */
export async function enableStream(dynamodb: DynamoDBClient, table: string): Promise<void> {
  await dynamodb.send(
    new UpdateTableCommand({
      TableName: table,
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  for (let i = 0; i < 120; i++) {
    const { streamEnabled, status } = await describeSourceTable(dynamodb, table);
    if (streamEnabled && status === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the stream of ${table} did not become enabled`);
}

/**
 * 1. Source ceiling: a raw parallel Scan of the whole table, `concurrency`
 * segments at a time, each read page after page; items counted and dropped
 * (and pages counted in `stats`).
 */
export async function scanTable(
  dynamodb: DynamoDBClient,
  table: string,
  segments: number,
  concurrency: number,
  pageLimit?: number,
  stats?: { pages: number },
): Promise<number> {
  let items = 0;
  await eachWithConcurrency(range(segments), concurrency, async (segment) => {
    let startKey: Item | undefined;
    do {
      // The read path scanSegment uses, so that the ceiling is not lower than the backfill's own reads.
      const page = await scanPage(dynamodb, {
        TableName: table,
        Segment: segment,
        TotalSegments: segments,
        ExclusiveStartKey: startKey,
        ...(pageLimit ? { Limit: pageLimit } : {}),
      });
      items += page.count;
      if (stats) stats.pages += 1;
      startKey = page.lastEvaluatedKey;
    } while (startKey);
  });
  return items;
}

/**
 * The bulk lines of the table's documents, as ddb2os maps them, without an
 * index (the URL names it): `create` for a load, `index` for an overwrite.
 */
export function documentLines(
  items: Iterable<Item>,
  mapping: MappingConfig,
  operation: 'create' | 'index' = 'create',
): string[] {
  const lines: string[] = [];
  for (const item of items) {
    for (const document of mapItem(item, BENCH_KEY_SCHEMA, mapping)) {
      lines.push(
        `{"${operation}":{"_id":${JSON.stringify(document.id)}}}\n${encodeDocument(document.document)}\n`,
      );
    }
  }
  return lines;
}

/**
 * The backfill's own create actions for `index` (bulkCreateLine: the index
 * in each action line, UTF-8 encoded once), built before any timing.
 */
export function backfillLines(items: Iterable<Item>, index: string): BulkLine[] {
  const lines: BulkLine[] = [];
  for (const item of items) {
    for (const document of mapItem(item, BENCH_KEY_SCHEMA, { index })) {
      lines.push(bulkCreateLine(index, document.id, encodeDocument(document.document)));
    }
  }
  return lines;
}

/**
 * The sink at the backfill's request shape: the same prebuilt create actions
 * sent through the backfill's BulkWriter (its action lines, `filter_path` and
 * answer handling), `docsPerRequest` a request and `concurrency` in flight,
 * into a fresh index, timed as the backfill is (timedLoad). Set to the backfill's measured average
 * request size and its requests in flight, it tells the part of the
 * backfill's OpenSearch CPU that comes from the shape of its requests from
 * the part that comes from anything else.
 */
export async function writerLoad(
  opensearch: Client,
  index: string,
  lines: BulkLine[],
  docsPerRequest: number,
  concurrency: number,
): Promise<Measurement> {
  return timedLoad(opensearch, index, async () => {
    let failed = 0;
    const writer = new BulkWriter<BulkLine>(opensearch, {
      maxDocs: docsPerRequest,
      concurrency,
      onOutcome: (_document, outcome) => {
        if (outcome.status !== 'created') failed += 1;
      },
    });
    const error = await writer.writeAll(lines, (line) => line);
    if (error) throw error;
    if (failed > 0) throw new Error(`the shaped bulk load into ${index} did not create ${failed} documents`);
    return lines.length;
  });
}

/** Request bodies of `docsPerRequest` lines each. */
export function bulkBodies(lines: string[], docsPerRequest: number): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < lines.length; i += docsPerRequest) {
    bodies.push(lines.slice(i, i + docsPerRequest).join(''));
  }
  return bodies;
}

/**
 * Times a load into `index` from end to end as the backfill's own time runs:
 * the index created as the backfill creates it, the documents written
 * (`write` returns how many), and the index's settings put back and
 * refreshed as the backfill does before it reports (so the documents are
 * searchable). The index's creation and restoration cost OpenSearch CPU
 * (cluster state updates, a replica to allocate) that the backfill pays in
 * its window; a ceiling that left them out would make the backfill look
 * dearer per document than it is.
 */
export async function timedLoad(
  opensearch: Client,
  index: string,
  write: () => Promise<number>,
): Promise<Measurement> {
  await opensearch.indices.delete({ index, ignore_unavailable: true }).catch(() => undefined);
  return timed(async () => {
    await prepareIndexForBackfill(opensearch, index);
    const documents = await write();
    await restoreIndexAfterBackfill(opensearch, index);
    return documents;
  });
}

interface BulkAnswer {
  errors?: boolean;
  items?: Record<string, { status?: number; error?: { type?: string; reason?: string } }>[];
}

/** Sends one prebuilt `_bulk` body; throws when any document was not written. */
async function sendBody(opensearch: Client, index: string, body: string): Promise<void> {
  const response = await opensearch.bulk({
    index,
    body,
    filter_path: 'errors,items.*.error.type,items.*.error.reason',
  } as never);
  const answer = response.body as BulkAnswer;
  if (answer.errors) {
    const first = answer.items?.flatMap((item) => Object.values(item)).find((item) => item.error)?.error;
    throw new Error(`bulk load into ${index} failed: ${first?.type}: ${first?.reason}`);
  }
}

/** Sends prebuilt `_bulk` bodies into an existing index, `concurrency` in flight. */
export async function bulkSend(
  opensearch: Client,
  index: string,
  bodies: string[],
  concurrency: number,
): Promise<void> {
  await eachWithConcurrency(bodies, concurrency, (body) => sendBody(opensearch, index, body));
}

/**
 * 2. Sink ceiling: prebuilt request bodies, `concurrency` in flight, into a
 * fresh index, timed as the backfill is (timedLoad: from the index's
 * creation until its documents are searchable).
 */
export async function bulkLoad(
  opensearch: Client,
  index: string,
  bodies: string[],
  docs: number,
  concurrency: number,
): Promise<Measurement> {
  return timedLoad(opensearch, index, sendAll(opensearch, index, bodies, docs, concurrency));
}

/**
 * The update ceiling: the stream benchmark's updated documents, prebuilt as
 * `index` actions, bulk-indexed over the existing documents of `index`. It
 * ends, as the updater's drain does, when OpenSearch has acknowledged every
 * write (the backfilled index refreshes itself every second again, for
 * both). An overwrite costs OpenSearch more than a create into a fresh index
 * (the old version is looked up and marked deleted), so this, not the sink
 * ceiling, is what the updater is measured against.
 */
export async function overwriteLoad(
  opensearch: Client,
  index: string,
  bodies: string[],
  docs: number,
  concurrency: number,
): Promise<Measurement> {
  return timed(sendAll(opensearch, index, bodies, docs, concurrency));
}

/** The work both loads time: every body sent, `docs` documents. */
function sendAll(
  opensearch: Client,
  index: string,
  bodies: string[],
  docs: number,
  concurrency: number,
): () => Promise<number> {
  return async () => {
    await bulkSend(opensearch, index, bodies, concurrency);
    return docs;
  };
}

/**
 * 3. Naive baseline: one segment, page by page; each page mapped and sent as
 * one bulk request, awaited before the next page is read. Pages are Scan's
 * default (up to 1 MB) unless `pageLimit` is given. Timed as the backfill
 * and the sink ceiling are (timedLoad). With `timeLimitSeconds`, stops after
 * the page that reaches it: the rate of the part copied so far.
 */
export async function naiveCopy(
  dynamodb: DynamoDBClient,
  opensearch: Client,
  table: string,
  index: string,
  pageLimit?: number,
  timeLimitSeconds?: number,
): Promise<Measurement> {
  const mapping: MappingConfig = { index };
  return timedLoad(opensearch, index, async () => {
    const started = Date.now();
    const overTime = () => timeLimitSeconds !== undefined && Date.now() - started >= timeLimitSeconds * 1000;
    let documents = 0;
    let startKey: Item | undefined;
    do {
      const page = await dynamodb.send(
        new ScanCommand({
          TableName: table,
          ExclusiveStartKey: startKey,
          ...(pageLimit ? { Limit: pageLimit } : {}),
        }),
      );
      const lines = documentLines(page.Items ?? [], mapping);
      if (lines.length > 0) await sendBody(opensearch, index, lines.join(''));
      documents += lines.length;
      startKey = page.LastEvaluatedKey;
    } while (startKey && !overTime());
    return documents;
  });
}

/** What bench/backfill-child.ts is told to do. */
export interface BackfillChildRequest {
  dynamodbEndpoint: string;
  opensearchUrl: string;
  table: string;
  index: string;
  segments: number;
  concurrency: number;
  progressTable: string;
  deadLetterDir: string;
  /** Write a V8 CPU profile of the backfill (`backfill.cpuprofile`) into this folder. */
  cpuProfileDir?: string;
}

/** What it answers: the backfill's documents, time and peak RSS, measured in its own process. */
export interface BackfillChildResult {
  scanned: number;
  created: number;
  failed: number;
  seconds: number;
  /** CPU seconds the child spent in the backfill. */
  cpuSeconds: number;
  /** RSS before the backfill began (the process, its modules and clients). */
  startRssMiB: number;
  /** Peak RSS of the child over its whole life. */
  peakRssMiB: number;
  /** DynamoDB requests the backfill sent, by command (Scan, PutItem, …). */
  dynamodbRequests: Record<string, number>;
  /** OpenSearch `_bulk` requests the backfill sent, and their bytes. */
  bulkRequests: number;
  bulkBytes: number;
}

/**
 * Runs a TypeScript file of this repository with Node.js and tsx in a child
 * process (from the repository root) and returns its exit code and output.
 */
export async function runTypeScript(
  file: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const code = await new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode) => resolveExit(exitCode));
  });
  return { code, stdout, stderr };
}

/**
 * 4 and 6. The ddb2os backfill (runLocalBackfill into a fresh index) in a
 * child process, so that its peak RSS is its own.
 */
export async function backfillInChild(request: BackfillChildRequest): Promise<BackfillChildResult> {
  const { code, stdout, stderr } = await runTypeScript(join(BENCH_DIR, 'backfill-child.ts'), [
    JSON.stringify(request),
  ]);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`the backfill child exited with ${code}: ${stderr.slice(-2000) || stdout.slice(-2000)}`);
  }
  return JSON.parse(last) as BackfillChildResult;
}

/**
 * 5. Stream updater: updates `count` items (a new `version` and new values),
 * which puts `count` MODIFY records in the stream, and returns the timed
 * part: the updater applying them (`drain()`) into `index`.
 */
export async function streamUpdates(options: {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  opensearch: Client;
  table: string;
  index: string;
  count: number;
  version: number;
  progressTable: string;
  deadLetterDir: string;
}): Promise<{ drain: () => Promise<Measurement> }> {
  const updater = await createLocalUpdater({
    dynamodb: options.dynamodb,
    streams: options.streams,
    opensearch: options.opensearch,
    table: options.table,
    keySchema: BENCH_KEY_SCHEMA,
    mapping: { index: options.index },
    progressTable: options.progressTable,
    deadLetterDir: options.deadLetterDir,
  });
  // Each round's drain applies everything its updates wrote: nothing is left over for the next round.
  await loadItems(options.dynamodb, options.table, updatedItems(options.count, options.version));
  return { drain: () => timed(async () => (await updater.drain()).records) };
}

/** Items 1..count as the stream benchmark's round writes them (`version` and the values it seeds). */
export function* updatedItems(count: number, version: number): Generator<Item> {
  const random = seededRandom(1_000 + version);
  for (let id = 1; id <= count; id++) yield benchItem(id, random, version);
}
