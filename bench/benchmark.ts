/**
 * The benchmark: one table of generated ~1 KiB items, and side by side on the
 * same engines the source ceiling (raw parallel Scan), the sink ceiling
 * (prebuilt bulk bodies), a naive copy loop, the ddb2os backfill (in a child
 * process, which also gives its peak RSS), the stream updater and its update
 * ceiling (the same updated documents, prebuilt, bulk-indexed over the
 * existing ones). Each measurement is repeated and reported as a median with
 * its spread, plus the CPU milliseconds each engine and Node.js spent per
 * 1,000 items: in the cloud the domain's and the table's CPU is what a
 * backfill waits on and pays for, so the targets compare those per document.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import {
  DEFAULT_PRICE_PER_MILLION_RRU,
  estimateBackfill,
  ITEMS_PER_SECOND_PER_SEGMENT,
} from '../cli/estimate';
import { type Engines, startEngines } from '../local/engines';
import { loadItems } from '../local/load-items';
import { DEFAULT_BULK_CONCURRENCY } from '../pipeline/bulk/bulk-writer';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { describeSourceTable } from '../pipeline/table/describe';
import {
  type CpuLayout,
  type CpuShare,
  canPin,
  cpuMeter,
  type EngineSeconds,
  engineProcessGroups,
  ownCpuSeconds,
  runQueueMeter,
  splitCpus,
} from './cpu';
import { benchItems } from './items';
import {
  type BackfillChildResult,
  backfillInChild,
  backfillLines,
  bulkBodies,
  bulkLoad,
  bulkSend,
  createBenchTable,
  documentLines,
  enableStream,
  type Measurement,
  naiveCopy,
  overwriteLoad,
  rate,
  scanTable,
  streamUpdates,
  timed,
  updatedItems,
  writerLoad,
} from './phases';
import { type ProfileSplit, splitProfileIn } from './profile';

export interface BenchmarkOptions {
  /** Items in the table. @default 100000 */
  items: number;
  /** Scan segments of the source ceiling and the backfill. @default 4 */
  segments: number;
  /** Segments in flight at once. @default 4 */
  concurrency: number;
  /** Times each measurement is taken; medians are reported. @default 2 */
  repeat: number;
  /** Items of the small table whose backfill's peak RSS is the baseline. @default 10000 */
  rssBaseItems: number;
  /**
   * Items the stream benchmark updates. DynamoDB Local writes to a table with
   * a stream at only a few hundred items per second, so this is not all items.
   * @default min(items, 20000)
   */
  streamItems: number;
  /** Scan `Limit` of the raw scans (source ceiling and the paged naive loop). @default 1000 */
  pageLimit: number;
  /** Documents per bulk request of the sink ceiling. */
  sinkDocs: number;
  /** Bulk requests in flight for the sink ceiling. */
  sinkConcurrency: number;
  /** Also time the naive loop with Scan's default pages (up to 1 MB, no Limit). @default true */
  naiveDefaultPages: boolean;
  /**
   * Time box of the naive loops. With default pages DynamoDB Local reads the
   * rest of the segment for each page, so that loop slows down as it goes
   * and a full copy of a large table takes many minutes: its rate over the
   * first `naiveSeconds` is higher than over the whole table, so the ratio
   * to it is a lower bound. The paged loop keeps its pace, so its first
   * `naiveSeconds` give its rate. @default 20
   */
  naiveSeconds: number;
  /** Documents created and overwritten before the first timed round. @default 100000 */
  warmupDocuments: number;
  /** Full scans of the table before the first timed round. @default 1 */
  warmupScans: number;
  /**
   * Untimed ddb2os backfills of the table before the first timed round: the
   * engines' paths that only the backfill takes (Scan with consumed capacity,
   * conditional checkpoint writes, many bulk requests at once) get compiled
   * too. Without it, the first round's backfill cost DynamoDB Local 96 ms of
   * CPU per 1,000 items against 64 once warm. @default 1
   */
  warmupBackfills: number;
  /**
   * Also measure the backfill's peak RSS on a table of 3 × `items` (its own
   * table, loaded after the rounds), `repeat` times: memory must not grow
   * with the table. @default false
   */
  scale: boolean;
  /**
   * `split` starts DynamoDB Local and OpenSearch on separate halves of the CPUs
   * (as in AWS, where they are separate services); `shared` lets the engines
   * and Node.js share every CPU. Only for engines the benchmark starts.
   * @default split when there are at least 2 CPUs and taskset works, else shared
   */
  cpuLayout?: CpuLayout;
  /** Use these engines instead of starting a pair for the benchmark (CPU shares are then unknown). */
  dynamodbEndpoint?: string;
  opensearchUrl?: string;
  /** Progress lines. */
  log: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<BenchmarkOptions, 'log' | 'streamItems'> = {
  items: 100_000,
  segments: 4,
  concurrency: 4,
  // Two rounds fit the 15 minutes a 100,000-item run may take on 2 CPUs; three did not (docs/benchmarks.md).
  repeat: 2,
  rssBaseItems: 10_000,
  pageLimit: 1000,
  sinkDocs: 1000,
  sinkConcurrency: 2,
  naiveDefaultPages: true,
  // No target rests on it any more (the naive ratio is printed as information); a lower bound either way.
  naiveSeconds: 20,
  // Sized to what the figures need (see the warm-up in runBenchmark): 300,000 OpenSearch writes in all.
  warmupDocuments: 100_000,
  warmupScans: 1,
  warmupBackfills: 1,
  scale: false,
};

/** The table of a `--scale` run holds this many times `items`. */
export const SCALE_FACTOR = 3;

/** A measurement over the repetitions. */
export interface PhaseSummary {
  /** Items, documents or records per second: one per repetition, in order. */
  samples: number[];
  median: number;
  /** (max − min) / median, in percent. */
  spreadPercent: number;
  /** Median CPU milliseconds per 1,000 items, per part (when the engines' pids are known). */
  cpuMsPer1000?: Partial<Record<keyof CpuShare, number>>;
  /**
   * Median milliseconds per 1,000 items each engine's threads were ready to
   * run while another process held their CPU (the run queue). Where it is
   * high, the engine's CPU per document was measured on shared CPUs and is
   * higher than on CPUs of its own (docs/benchmarks.md).
   */
  runQueueMsPer1000?: Partial<Record<keyof EngineSeconds, number>>;
}

export interface Target {
  name: string;
  /** The measured ratio or quantity (0 when it could not be measured: see `note`). */
  value: number;
  /** What it must reach (≥) or stay under (≤). */
  threshold: number;
  comparison: '>=' | '<=';
  pass: boolean;
  /** Why the value could not be measured (then `pass` is false). */
  note?: string;
}

/** What the backfill asked of the engines (the last timed round's backfill). */
export interface BackfillRequests {
  /** DynamoDB requests by command. */
  dynamodb: Record<string, number>;
  /** Scan pages the raw scan reads for the same table (its `Limit` is page_limit). */
  sourceScanPages: number;
  bulkRequests: number;
  bulkDocsPerRequest: number;
  bulkKiBPerRequest: number;
  /** Bulk requests the backfill may have in flight: segments at a time × the writer's concurrency. */
  bulkInFlight: number;
}

/** `ddb2os plan`'s model for the benchmark's table, against the measured backfill. */
export interface ModelCheck {
  itemCount: number;
  tableSizeBytes: number;
  /** The default items/s per segment `ddb2os plan` assumes. */
  itemsPerSecondPerSegment: number;
  estimatedSeconds: number;
  /** The median backfill's duration. */
  measuredSeconds: number;
  /** The backfill's median rate ÷ segments at a time: the figure to calibrate the default with. */
  measuredItemsPerSecondPerSegment: number;
  readRequestUnits: number;
}

export interface BenchmarkResult {
  items: number;
  source_ceiling_items_per_s: number;
  sink_ceiling_docs_per_s: number;
  naive_docs_per_s: number;
  backfill_docs_per_s: number;
  stream_records_per_s: number;
  rss_10k_mib: number;
  rss_n_mib: number;
  rss_growth_mib: number;
  /** The updated documents of the stream benchmark, prebuilt, bulk `index`ed over the existing ones. */
  update_ceiling_docs_per_s: number;
  /** OpenSearch CPU per document: backfill ÷ sink ceiling (0: engine CPU unknown). */
  opensearch_cpu_ratio: number;
  /** The same against the sink at the backfill's request shape (its writer, request size, requests in flight). */
  opensearch_cpu_ratio_same_shape: number;
  /** DynamoDB CPU per item: backfill ÷ raw scan (0: engine CPU unknown). */
  dynamodb_cpu_ratio: number;
  /** CPU milliseconds of the backfill's Node.js process per 1,000 documents (median). */
  node_cpu_ms_per_1000_docs: number;
  /** Wall-clock seconds of the whole run, engines' start included. */
  elapsed_s: number;
  /** With --scale: median peak RSS of the backfill at 3 × items, minus at items (MiB). */
  rss_growth_scale_mib?: number;
  rss_scale_mib?: number;
  scale_items?: number;
  /** The naive loop with the same page Limit as the raw scan (isolates the pipeline from page size). */
  naive_paged_docs_per_s: number;
  /** Time box of the naive loop with Scan's default pages (seconds). */
  naive_seconds: number;
  rss_base_items: number;
  stream_items: number;
  segments: number;
  concurrency: number;
  repeat: number;
  page_limit: number;
  sink_docs_per_request: number;
  sink_concurrency: number;
  /** split, shared, or given (engines the benchmark did not start). */
  cpu_layout: CpuLayout | 'given';
  load_items_per_s: number;
  phases: Record<string, PhaseSummary>;
  rss: { base: number[]; n: number[]; childStartMiB: number[]; scale?: number[] };
  backfill_requests?: BackfillRequests;
  /** Self time of the backfill's Node.js process by part (from the profiled warm-up backfill). */
  node_profile?: ProfileSplit;
  model: ModelCheck;
  /** Wall-clock seconds per stage of the run (a phase's rounds added up). */
  elapsed: Record<string, number>;
  targets: Target[];
  engines: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function summarize(
  samples: number[],
  cpu: CpuShare[],
  counts: number[],
  runQueue: EngineSeconds[] = [],
): PhaseSummary {
  const middle = median(samples);
  const summary: PhaseSummary = {
    samples: samples.map((value) => Math.round(value)),
    median: Math.round(middle),
    spreadPercent:
      middle > 0 ? Math.round(((Math.max(...samples) - Math.min(...samples)) / middle) * 100) : 0,
  };
  /** The median over the rounds of `part`'s seconds in `shares`, in milliseconds per 1,000 items. */
  const per1000 = <P extends string>(
    shares: Partial<Record<P, number>>[],
    parts: readonly P[],
  ): Partial<Record<P, number>> =>
    Object.fromEntries(
      parts
        .map((part) => {
          const values = shares
            .map((share, i) => {
              const seconds = share[part];
              return seconds === undefined ? undefined : (seconds * 1e6) / (counts[i] ?? 1);
            })
            .filter((value): value is number => value !== undefined);
          return [part, values.length > 0 ? Math.round(median(values)) : undefined] as const;
        })
        .filter(([, value]) => value !== undefined),
    ) as Partial<Record<P, number>>;
  if (cpu.length > 0) summary.cpuMsPer1000 = per1000(cpu, ['dynamodb', 'opensearch', 'node'] as const);
  const waits = per1000(runQueue, ['dynamodb', 'opensearch'] as const);
  if (Object.keys(waits).length > 0) summary.runQueueMsPer1000 = waits;
  return summary;
}

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Runs every measurement `repeat` times on a table of `items` items and returns the medians. */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkResult> {
  const { log } = options;
  const runStarted = process.hrtime.bigint();
  const elapsed: Record<string, number> = {};
  /** Runs one stage of the run, adds its wall-clock time to `elapsed[name]` and says so. */
  const stage = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = process.hrtime.bigint();
    try {
      return await work();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      elapsed[name] = Math.round(((elapsed[name] ?? 0) + seconds) * 10) / 10;
      log(`    [${name}: ${seconds.toFixed(1)} s]`);
    }
  };
  let engines: Engines | undefined;
  let dynamodbUrl = options.dynamodbEndpoint;
  let opensearchUrl = options.opensearchUrl;
  let pids: { dynamodb?: number; opensearch?: number } = {};
  let enginesText: string;
  let cpuLayout: CpuLayout | 'given' = 'given';
  if (dynamodbUrl === undefined || opensearchUrl === undefined) {
    log('starting a DynamoDB Local and an OpenSearch of its own for the benchmark…');
    cpuLayout = options.cpuLayout ?? (cpus().length >= 2 && canPin() ? 'split' : 'shared');
    const lists = cpuLayout === 'split' ? splitCpus(cpus().length) : undefined;
    // Each engine starts on its CPUs, so that its JVM sizes the garbage collector and thread pools to
    // them: pinned after start, DynamoDB Local kept two collector threads on one CPU (docs/benchmarks.md).
    engines = await stage('engines start', () => startEngines({ ignoreEnvironment: true, log, cpus: lists }));
    dynamodbUrl = engines.dynamodb.url;
    opensearchUrl = engines.opensearch.url;
    pids = { dynamodb: engines.dynamodb.pid, opensearch: engines.opensearch.pid };
    enginesText = engines.describe();
    if (lists) {
      // Node.js is left to the scheduler: pinned with DynamoDB Local, the backfill ran at 0.61-0.62 of the
      // sink ceiling (that CPU saturated with both), against 0.66-0.71 free at the time (docs/benchmarks.md).
      enginesText += `; DynamoDB Local on CPU ${lists.dynamodb}, OpenSearch on CPU ${lists.opensearch}, Node.js free`;
    } else {
      enginesText += '; engines and Node.js share every CPU';
    }
  } else {
    // Engines on this machine are found by the port they listen on; their CPU counts whatever else uses them.
    pids = engineProcessGroups(dynamodbUrl, opensearchUrl);
    const known = pids.dynamodb !== undefined && pids.opensearch !== undefined;
    enginesText =
      `DynamoDB at ${dynamodbUrl}; OpenSearch at ${opensearchUrl} (given; ` +
      `${known ? 'CPU read from their processes, which anything else using them shares' : 'CPU shares unknown'})`;
  }
  const local = { region: 'us-east-1', credentials };
  const dynamodb = new DynamoDBClient({ endpoint: dynamodbUrl, ...local });
  const streams = new DynamoDBStreamsClient({ endpoint: dynamodbUrl, ...local });
  const opensearch = createOpenSearchClient({ endpoint: opensearchUrl, signing: 'none' });
  const prefix = `bench-${Date.now().toString(36)}`;
  const table = `${prefix}-table`;
  const baseTable = `${prefix}-base`;
  const scaleTable = `${prefix}-scale`;
  const progressTable = `${prefix}-progress`;
  const deadLetterDir = mkdtempSync(join(tmpdir(), 'ddb2os-bench-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'ddb2os-bench-profile-'));
  const indices = new Set<string>();
  const dropIndex = async (index: string) => {
    await opensearch.indices.delete({ index, ignore_unavailable: true }).catch(() => undefined);
    indices.delete(index);
  };

  let result: BenchmarkResult | undefined;
  try {
    log(`loading ${options.items} items into ${table} (stream enabled after the load)…`);
    const load = await stage('load', async () => {
      await createBenchTable(dynamodb, table, { stream: false });
      const measured = await timed(() => loadItems(dynamodb, table, benchItems(options.items)));
      await enableStream(dynamodb, table);
      log(
        `loaded at ${Math.round(rate(measured))} items/s; loading ${options.rssBaseItems} items into ${baseTable}…`,
      );
      await createBenchTable(dynamodb, baseTable, { stream: false });
      await loadItems(dynamodb, baseTable, benchItems(options.rssBaseItems));
      await enableStream(dynamodb, baseTable);
      return measured;
    });

    const prebuilt = await stage('documents prebuilt', async () => {
      const lines = documentLines(benchItems(options.items), { index: 'unused' });
      const bodies = bulkBodies(lines, options.sinkDocs);
      const documents = lines.length;
      lines.length = 0;
      // The backfill's own action lines, for the sink at the backfill's request shape (one index name for
      // every round: the action lines carry it).
      const shapedIndex = `${prefix}-sink-shaped`;
      return {
        bodies,
        documents,
        shapedIndex,
        shaped: backfillLines(benchItems(options.items), shapedIndex),
      };
    });
    const { bodies, documents } = prebuilt;

    // Warm-up, sized to what the figures need. A fresh JVM compiles its hot paths over its first few
    // hundred thousand documents: OpenSearch's CPU per document fell about threefold over its first
    // 300,000 documents, DynamoDB Local's by half over its first full scan (docs/benchmarks.md). So
    // before the first timed round OpenSearch takes 300,000 writes: the table's documents created and
    // then overwritten once (index actions: the stream updater's and the update ceiling's path, an
    // update of an existing document, is as warm as the backfill's), and one untimed ddb2os backfill
    // (the paths only the backfill takes: Scan with consumed capacity, conditional checkpoint writes,
    // many bulk requests at once; without it the first round's backfill cost DynamoDB Local 96 ms of
    // CPU per 1,000 items against 62-66 once warm). DynamoDB Local gets one raw scan plus that
    // backfill's scan. More would not move the medians, which compare measurements taken in the same
    // warm state (each round warms the next one further), and would cost minutes a run cannot spare.
    log(
      `warming the engines up (untimed): ${options.warmupDocuments.toLocaleString('en-US')} documents created and overwritten, ${options.warmupScans} scan${options.warmupScans === 1 ? '' : 's'}, ${options.warmupBackfills} backfill${options.warmupBackfills === 1 ? '' : 's'}…`,
    );
    await stage('warm-up', async () => {
      const overwrites = bodies.map((body) => body.replaceAll('{"create":{"_id":', '{"index":{"_id":'));
      for (let loaded = 0, pass = 0; loaded < options.warmupDocuments; loaded += documents, pass++) {
        const warmup = `${prefix}-warmup-${pass}`;
        indices.add(warmup);
        await bulkLoad(opensearch, warmup, bodies, documents, options.sinkConcurrency);
        await bulkSend(opensearch, warmup, overwrites, options.sinkConcurrency);
        await dropIndex(warmup);
      }
      for (let scan = 0; scan < options.warmupScans; scan++)
        await scanTable(dynamodb, table, options.segments, options.concurrency, options.pageLimit);
    });

    const samples: Record<
      string,
      { rates: number[]; cpu: CpuShare[]; runQueue: EngineSeconds[]; counts: number[] }
    > = {};
    const record = (phase: string, measurement: Measurement, cpu: CpuShare, runQueue: EngineSeconds) => {
      samples[phase] ??= { rates: [], cpu: [], runQueue: [], counts: [] };
      const entry = samples[phase];
      entry.rates.push(rate(measurement));
      entry.cpu.push(cpu);
      entry.runQueue.push(runQueue);
      entry.counts.push(measurement.count);
      log(
        `  ${phase}: ${measurement.count} in ${measurement.seconds.toFixed(2)} s = ${Math.round(rate(measurement))}/s` +
          ` (CPU s: ${Object.entries(cpu)
            .map(([part, seconds]) => `${part} ${(seconds as number).toFixed(1)}`)
            .join(', ')}; run queue s: ${Object.entries(runQueue)
            .map(([part, seconds]) => `${part} ${(seconds as number).toFixed(1)}`)
            .join(', ')})`,
      );
    };
    /** Times a phase that runs in this process, with the engines' CPU. */
    const measure = (phase: string, work: () => Promise<Measurement>): Promise<void> =>
      stage(phase, async () => {
        const engineCpu = cpuMeter(pids);
        const engineWait = runQueueMeter(pids);
        const ownBefore = ownCpuSeconds();
        const measurement = await work();
        record(phase, measurement, { ...engineCpu(), node: ownCpuSeconds() - ownBefore }, engineWait());
      });
    const backfill = async (
      source: string,
      index: string,
      profile = false,
    ): Promise<BackfillChildResult & { cpu: CpuShare; runQueue: EngineSeconds }> => {
      indices.add(index);
      const engineCpu = cpuMeter(pids);
      const engineWait = runQueueMeter(pids);
      const result = await backfillInChild({
        dynamodbEndpoint: dynamodbUrl as string,
        opensearchUrl: opensearchUrl as string,
        table: source,
        index,
        segments: options.segments,
        concurrency: options.concurrency,
        progressTable,
        deadLetterDir,
        ...(profile ? { cpuProfileDir: profileDir } : {}),
      });
      const cpu = { ...engineCpu(), node: result.cpuSeconds };
      const runQueue = engineWait();
      if (result.failed > 0 || result.created !== result.scanned) {
        throw new Error(
          `the backfill of ${source} created ${result.created} of ${result.scanned} documents (${result.failed} failed)`,
        );
      }
      return { ...result, cpu, runQueue };
    };

    // The first warm-up backfill is profiled (untimed, so the profiler's overhead costs no figure): each
    // backfill runs in a fresh child, so its Node.js is no warmer in a timed round than here.
    let nodeProfile: ProfileSplit | undefined;
    for (let pass = 0; pass < options.warmupBackfills; pass++) {
      const warmup = `${prefix}-warmup-backfill-${pass}`;
      await stage('warm-up', () => backfill(table, warmup, pass === 0));
      if (pass === 0) nodeProfile = splitProfileIn(profileDir);
      await dropIndex(warmup);
    }

    const rss = { base: [] as number[], n: [] as number[], childStartMiB: [] as number[] };
    const backfillSeconds: number[] = [];
    const inFlight = Math.min(options.concurrency, options.segments) * DEFAULT_BULK_CONCURRENCY;
    let requests: BackfillRequests | undefined;
    let updaterIndex: string | undefined;
    for (let round = 1; round <= options.repeat; round++) {
      log(`round ${round} of ${options.repeat}`);
      const sourceStats = { pages: 0 };
      await measure('source', () =>
        timed(() =>
          scanTable(dynamodb, table, options.segments, options.concurrency, options.pageLimit, sourceStats),
        ),
      );

      const sinkIndex = `${prefix}-sink-${round}`;
      indices.add(sinkIndex);
      await measure('sink', () =>
        bulkLoad(opensearch, sinkIndex, bodies, documents, options.sinkConcurrency),
      );
      await dropIndex(sinkIndex);

      const naivePaged = `${prefix}-naive-paged-${round}`;
      indices.add(naivePaged);
      // Time-boxed like the naive loop: with a Scan Limit it does not slow down as it goes, so its first
      // naiveSeconds give its rate, and the whole table would cost a minute a round.
      await measure('naive_paged', () =>
        naiveCopy(dynamodb, opensearch, table, naivePaged, options.pageLimit, options.naiveSeconds),
      );
      await dropIndex(naivePaged);

      if (options.naiveDefaultPages) {
        const naive = `${prefix}-naive-${round}`;
        indices.add(naive);
        await measure('naive', () =>
          naiveCopy(dynamodb, opensearch, table, naive, undefined, options.naiveSeconds),
        );
        await dropIndex(naive);
      }

      const backfillIndex = `${prefix}-backfill-${round}`;
      const full = await stage('backfill', () => backfill(table, backfillIndex));
      record('backfill', { count: full.created, seconds: full.seconds }, full.cpu, full.runQueue);
      backfillSeconds.push(full.seconds);
      rss.n.push(full.peakRssMiB);
      rss.childStartMiB.push(full.startRssMiB);
      const docsPerRequest = Math.max(1, Math.round(full.created / Math.max(1, full.bulkRequests)));
      requests = {
        dynamodb: full.dynamodbRequests,
        sourceScanPages: sourceStats.pages,
        bulkRequests: full.bulkRequests,
        bulkDocsPerRequest: docsPerRequest,
        bulkKiBPerRequest: Math.round(full.bulkBytes / Math.max(1, full.bulkRequests) / 1024),
        bulkInFlight: inFlight,
      };
      log(
        `  backfill requests: DynamoDB ${Object.entries(full.dynamodbRequests)
          .map(([command, count]) => `${command} ${count}`)
          .join(', ')}; OpenSearch ${full.bulkRequests} bulk requests of ${docsPerRequest} documents ` +
          `(${requests.bulkKiBPerRequest} KiB) on average, up to ${inFlight} in flight`,
      );
      if (updaterIndex !== undefined) await dropIndex(updaterIndex);
      updaterIndex = backfillIndex;

      // The sink again, at the backfill's request shape: its writer, its average request, its requests in flight.
      indices.add(prebuilt.shapedIndex);
      await measure('sink_same_shape', () =>
        writerLoad(opensearch, prebuilt.shapedIndex, prebuilt.shaped, docsPerRequest, inFlight),
      );
      await dropIndex(prebuilt.shapedIndex);

      const updates = await stage('stream updates written', () =>
        streamUpdates({
          dynamodb,
          streams,
          opensearch,
          table,
          index: backfillIndex,
          count: options.streamItems,
          version: round + 1,
          progressTable,
          deadLetterDir,
        }),
      );
      await measure('stream', updates.drain);

      // The same updated documents, prebuilt, overwriting the ones the updater just wrote.
      const overwriteLines = documentLines(
        updatedItems(options.streamItems, round + 1),
        { index: 'unused' },
        'index',
      );
      const overwriteBodies = bulkBodies(overwriteLines, options.sinkDocs);
      await measure('update_ceiling', () =>
        overwriteLoad(
          opensearch,
          backfillIndex,
          overwriteBodies,
          overwriteLines.length,
          options.sinkConcurrency,
        ),
      );

      const baseIndex = `${prefix}-base-${round}`;
      const base = await stage('backfill (RSS base)', () => backfill(baseTable, baseIndex));
      rss.base.push(base.peakRssMiB);
      await dropIndex(baseIndex);
      log(
        `  peak RSS of the backfill: ${base.peakRssMiB} MiB at ${base.scanned} items, ${full.peakRssMiB} MiB at ${full.scanned}`,
      );
    }
    if (updaterIndex !== undefined) await dropIndex(updaterIndex);

    let scale: number[] | undefined;
    const scaleItems = options.items * SCALE_FACTOR;
    if (options.scale) {
      log(`--scale: loading ${scaleItems} items into ${scaleTable}…`);
      await stage('scale load', async () => {
        await createBenchTable(dynamodb, scaleTable, { stream: false });
        await loadItems(dynamodb, scaleTable, benchItems(scaleItems));
        await enableStream(dynamodb, scaleTable);
      });
      scale = [];
      for (let round = 1; round <= options.repeat; round++) {
        const scaleIndex = `${prefix}-scale-${round}`;
        const result = await stage('backfill (RSS scale)', () => backfill(scaleTable, scaleIndex));
        scale.push(result.peakRssMiB);
        await dropIndex(scaleIndex);
        log(`  peak RSS of the backfill at ${result.scanned} items: ${result.peakRssMiB} MiB`);
      }
    }

    const phases = Object.fromEntries(
      Object.entries(samples).map(([phase, entry]) => [
        phase,
        summarize(entry.rates, entry.cpu, entry.counts, entry.runQueue),
      ]),
    );
    const value = (phase: string) => phases[phase]?.median ?? 0;
    // A median of an even count is a mean of two: rounded to the 0.1 MiB the samples have.
    const mibMedian = (samples: number[]) => Math.round(median(samples) * 10) / 10;
    const rssBase = mibMedian(rss.base);
    const rssN = mibMedian(rss.n);
    const model = await modelCheck(dynamodb, table, options, value('backfill'), median(backfillSeconds));
    result = {
      items: options.items,
      source_ceiling_items_per_s: value('source'),
      sink_ceiling_docs_per_s: value('sink'),
      naive_docs_per_s: options.naiveDefaultPages ? value('naive') : value('naive_paged'),
      backfill_docs_per_s: value('backfill'),
      stream_records_per_s: value('stream'),
      rss_10k_mib: rssBase,
      rss_n_mib: rssN,
      rss_growth_mib: Math.round((rssN - rssBase) * 10) / 10,
      update_ceiling_docs_per_s: value('update_ceiling'),
      opensearch_cpu_ratio: cpuRatio(phases, 'backfill', 'sink', 'opensearch'),
      opensearch_cpu_ratio_same_shape: cpuRatio(phases, 'backfill', 'sink_same_shape', 'opensearch'),
      dynamodb_cpu_ratio: cpuRatio(phases, 'backfill', 'source', 'dynamodb'),
      node_cpu_ms_per_1000_docs: phases.backfill?.cpuMsPer1000?.node ?? 0,
      elapsed_s: 0,
      ...(scale
        ? {
            rss_scale_mib: mibMedian(scale),
            rss_growth_scale_mib: Math.round((mibMedian(scale) - rssN) * 10) / 10,
            scale_items: scaleItems,
          }
        : {}),
      naive_paged_docs_per_s: value('naive_paged'),
      naive_seconds: options.naiveSeconds,
      rss_base_items: options.rssBaseItems,
      stream_items: options.streamItems,
      segments: options.segments,
      concurrency: options.concurrency,
      repeat: options.repeat,
      page_limit: options.pageLimit,
      sink_docs_per_request: options.sinkDocs,
      sink_concurrency: options.sinkConcurrency,
      cpu_layout: cpuLayout,
      load_items_per_s: Math.round(rate(load)),
      phases,
      rss: { ...rss, ...(scale ? { scale } : {}) },
      ...(requests ? { backfill_requests: requests } : {}),
      ...(nodeProfile ? { node_profile: nodeProfile } : {}),
      model,
      elapsed,
      targets: [],
      engines: enginesText,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
        node: process.version,
      },
    };
    result.targets = targets(result);
    return result;
  } finally {
    for (const index of indices)
      await opensearch.indices.delete({ index, ignore_unavailable: true }).catch(() => undefined);
    for (const name of [table, baseTable, scaleTable, progressTable]) {
      await dynamodb.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    }
    rmSync(deadLetterDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
    dynamodb.destroy();
    streams.destroy();
    await (opensearch as Client).close();
    if (engines) await engines.stop();
    // The whole run, the engines' stop included: what a newcomer waits for.
    elapsed.total = Math.round((Number(process.hrtime.bigint() - runStarted) / 1e9) * 10) / 10;
    if (result) result.elapsed_s = elapsed.total;
  }
}

/** `numerator`'s CPU per item in `part` ÷ `denominator`'s; 0 when either is unknown. */
function cpuRatio(
  phases: Record<string, PhaseSummary>,
  numerator: string,
  denominator: string,
  part: 'dynamodb' | 'opensearch',
): number {
  const top = phases[numerator]?.cpuMsPer1000?.[part];
  const bottom = phases[denominator]?.cpuMsPer1000?.[part];
  return top !== undefined && bottom !== undefined && bottom > 0 ? Math.round((top / bottom) * 100) / 100 : 0;
}

/**
 * What `ddb2os plan` would estimate for the benchmark's table (DescribeTable's
 * figures, the benchmark's segments and concurrency, no read limit, the
 * default items/s per segment) next to the measured backfill.
 */
async function modelCheck(
  dynamodb: DynamoDBClient,
  table: string,
  options: BenchmarkOptions,
  backfillRate: number,
  measuredSeconds: number,
): Promise<ModelCheck> {
  const { itemCount, sizeBytes } = await describeSourceTable(dynamodb, table);
  const estimate = estimateBackfill({
    itemCount,
    tableSizeBytes: sizeBytes,
    totalSegments: options.segments,
    concurrency: options.concurrency,
    pricePerMillionRru: DEFAULT_PRICE_PER_MILLION_RRU,
  });
  return {
    itemCount,
    tableSizeBytes: sizeBytes,
    itemsPerSecondPerSegment: ITEMS_PER_SECOND_PER_SEGMENT,
    estimatedSeconds: Math.round(estimate.seconds * 1000) / 1000,
    measuredSeconds: Math.round(measuredSeconds * 10) / 10,
    measuredItemsPerSecondPerSegment: Math.round(backfillRate / estimate.parallelSegments),
    readRequestUnits: estimate.readRequestUnits,
  };
}

/** The issue's targets (docs/benchmarks.md says why each), as values against their thresholds. */
export function targets(result: BenchmarkResult): Target[] {
  const ceiling = Math.min(result.source_ceiling_items_per_s, result.sink_ceiling_docs_per_s);
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
  const target = (
    name: string,
    value: number,
    comparison: '>=' | '<=',
    threshold: number,
    unknown?: string,
  ): Target => ({
    name,
    value,
    comparison,
    threshold,
    pass: unknown === undefined && (comparison === '>=' ? value >= threshold : value <= threshold),
    ...(unknown === undefined ? {} : { note: unknown }),
  });
  const cpuUnknown = (value: number) => (value > 0 ? undefined : 'engine CPU unknown');
  const list = [
    target('backfill / min(source, sink ceiling)', ratio(result.backfill_docs_per_s, ceiling), '>=', 0.75),
    target(
      'OpenSearch CPU per document: backfill / sink ceiling',
      result.opensearch_cpu_ratio,
      '<=',
      1.05,
      cpuUnknown(result.opensearch_cpu_ratio),
    ),
    target(
      'DynamoDB CPU per item: backfill / raw scan',
      result.dynamodb_cpu_ratio,
      '<=',
      1.1,
      cpuUnknown(result.dynamodb_cpu_ratio),
    ),
    target(
      'stream updater / update ceiling',
      ratio(result.stream_records_per_s, result.update_ceiling_docs_per_s),
      '>=',
      0.8,
    ),
    target(
      `peak RSS growth ${result.rss_base_items} → ${result.items} items (MiB)`,
      result.rss_growth_mib,
      '<=',
      50,
    ),
  ];
  if (result.rss_growth_scale_mib !== undefined) {
    list.push(
      target(
        `peak RSS growth ${result.items} → ${result.scale_items} items (MiB)`,
        result.rss_growth_scale_mib,
        '<=',
        15,
      ),
    );
  }
  return list;
}
