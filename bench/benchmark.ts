/**
 * The benchmark: one table of generated ~1 KiB items, and side by side on the
 * same engines the source ceiling (raw parallel Scan), the sink ceiling
 * (prebuilt bulk bodies), a naive copy loop, the ddb2os backfill (in a child
 * process, which also gives its peak RSS), and the stream updater. Each
 * measurement is repeated and reported as a median with its spread, plus the
 * CPU seconds each engine and Node.js spent per 1,000 items, which is where
 * the time goes on a machine whose cores they all share.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import { type Engines, startEngines } from '../local/engines';
import { loadItems } from '../local/load-items';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { type CpuLayout, type CpuShare, canPin, cpuMeter, ownCpuSeconds, splitCpus } from './cpu';
import { benchItems } from './items';
import {
  type BackfillChildResult,
  backfillInChild,
  bulkBodies,
  bulkLoad,
  bulkSend,
  createBenchTable,
  documentLines,
  enableStream,
  type Measurement,
  naiveCopy,
  rate,
  scanTable,
  streamUpdates,
  timed,
} from './phases';

export interface BenchmarkOptions {
  /** Items in the table. @default 100000 */
  items: number;
  /** Scan segments of the source ceiling and the backfill. @default 4 */
  segments: number;
  /** Segments in flight at once. @default 4 */
  concurrency: number;
  /** Times each measurement is taken; medians are reported. @default 3 */
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
   * Time box of the naive loop with default pages: DynamoDB Local reads the
   * rest of the segment for each such page, so that loop slows down as it
   * goes and a full copy of a large table takes many minutes. Its rate over
   * the first `naiveSeconds` is higher than over the whole table, so the
   * ratio to it is a lower bound. @default 60
   */
  naiveSeconds: number;
  /** Documents created and overwritten before the first timed round. @default 300000 */
  warmupDocuments: number;
  /** Full scans of the table before the first timed round. @default 2 */
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
  repeat: 3,
  rssBaseItems: 10_000,
  pageLimit: 1000,
  sinkDocs: 1000,
  sinkConcurrency: 2,
  naiveDefaultPages: true,
  naiveSeconds: 60,
  warmupDocuments: 300_000,
  warmupScans: 2,
  warmupBackfills: 1,
};

/** A measurement over the repetitions. */
export interface PhaseSummary {
  /** Items, documents or records per second: one per repetition, in order. */
  samples: number[];
  median: number;
  /** (max − min) / median, in percent. */
  spreadPercent: number;
  /** Median CPU milliseconds per 1,000 items, per part (when the engines' pids are known). */
  cpuMsPer1000?: Partial<Record<keyof CpuShare, number>>;
}

export interface Target {
  name: string;
  /** The measured ratio or quantity. */
  value: number;
  /** What it must reach (≥) or stay under (≤). */
  threshold: number;
  comparison: '>=' | '<=';
  pass: boolean;
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
  rss: { base: number[]; n: number[]; childStartMiB: number[] };
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

function summarize(samples: number[], cpu: CpuShare[], counts: number[]): PhaseSummary {
  const middle = median(samples);
  const summary: PhaseSummary = {
    samples: samples.map((value) => Math.round(value)),
    median: Math.round(middle),
    spreadPercent:
      middle > 0 ? Math.round(((Math.max(...samples) - Math.min(...samples)) / middle) * 100) : 0,
  };
  if (cpu.length > 0) {
    const per1000 = (part: keyof CpuShare): number | undefined => {
      const values = cpu
        .map((share, i) =>
          share[part] === undefined ? undefined : ((share[part] as number) * 1e6) / (counts[i] ?? 1),
        )
        .filter((value): value is number => value !== undefined);
      return values.length > 0 ? Math.round(median(values)) : undefined;
    };
    summary.cpuMsPer1000 = Object.fromEntries(
      (['dynamodb', 'opensearch', 'node'] as const)
        .map((part) => [part, per1000(part)] as const)
        .filter(([, value]) => value !== undefined),
    );
  }
  return summary;
}

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Runs every measurement `repeat` times on a table of `items` items and returns the medians. */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkResult> {
  const { log } = options;
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
    engines = await startEngines({ ignoreEnvironment: true, log, cpus: lists });
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
    enginesText = `DynamoDB at ${dynamodbUrl}; OpenSearch at ${opensearchUrl} (given; CPU shares unknown)`;
  }
  const local = { region: 'us-east-1', credentials };
  const dynamodb = new DynamoDBClient({ endpoint: dynamodbUrl, ...local });
  const streams = new DynamoDBStreamsClient({ endpoint: dynamodbUrl, ...local });
  const opensearch = createOpenSearchClient({ endpoint: opensearchUrl, signing: 'none' });
  const prefix = `bench-${Date.now().toString(36)}`;
  const table = `${prefix}-table`;
  const baseTable = `${prefix}-base`;
  const progressTable = `${prefix}-progress`;
  const deadLetterDir = mkdtempSync(join(tmpdir(), 'ddb2os-bench-'));
  const indices = new Set<string>();
  const dropIndex = async (index: string) => {
    await opensearch.indices.delete({ index, ignore_unavailable: true }).catch(() => undefined);
    indices.delete(index);
  };

  try {
    log(`loading ${options.items} items into ${table} (stream enabled after the load)…`);
    await createBenchTable(dynamodb, table, { stream: false });
    const load = await timed(() => loadItems(dynamodb, table, benchItems(options.items)));
    await enableStream(dynamodb, table);
    log(
      `loaded at ${Math.round(rate(load))} items/s; loading ${options.rssBaseItems} items into ${baseTable}…`,
    );
    await createBenchTable(dynamodb, baseTable, { stream: true });
    await loadItems(dynamodb, baseTable, benchItems(options.rssBaseItems));

    const lines = documentLines(benchItems(options.items), { index: 'unused' });
    const bodies = bulkBodies(lines, options.sinkDocs);
    const documents = lines.length;
    lines.length = 0;

    // A fresh JVM compiles its hot paths over its first few hundred thousand documents (measured:
    // OpenSearch's CPU per document falls about threefold over its first 300,000 documents, DynamoDB
    // Local's by half over its first full scan): warm both engines up, untimed. Each pass creates the
    // documents and then overwrites them (index actions), so the stream updater's path (an update of
    // an existing document) is as warm as the backfill's.
    log(
      `warming the engines up (untimed): ${options.warmupDocuments.toLocaleString('en-US')} documents created and overwritten, ${options.warmupScans} scans, ${options.warmupBackfills} backfill${options.warmupBackfills === 1 ? '' : 's'}…`,
    );
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

    const samples: Record<string, { rates: number[]; cpu: CpuShare[]; counts: number[] }> = {};
    const record = (phase: string, measurement: Measurement, cpu: CpuShare) => {
      samples[phase] ??= { rates: [], cpu: [], counts: [] };
      const entry = samples[phase];
      entry.rates.push(rate(measurement));
      entry.cpu.push(cpu);
      entry.counts.push(measurement.count);
      log(
        `  ${phase}: ${measurement.count} in ${measurement.seconds.toFixed(2)} s = ${Math.round(rate(measurement))}/s` +
          ` (CPU s: ${Object.entries(cpu)
            .map(([part, seconds]) => `${part} ${(seconds as number).toFixed(1)}`)
            .join(', ')})`,
      );
    };
    /** Times a phase that runs in this process, with the engines' CPU. */
    const measure = async (phase: string, work: () => Promise<Measurement>): Promise<void> => {
      const engineCpu = cpuMeter(pids);
      const ownBefore = ownCpuSeconds();
      const measurement = await work();
      record(phase, measurement, { ...engineCpu(), node: ownCpuSeconds() - ownBefore });
    };
    const backfill = async (
      source: string,
      index: string,
    ): Promise<BackfillChildResult & { cpu: CpuShare }> => {
      indices.add(index);
      const engineCpu = cpuMeter(pids);
      const result = await backfillInChild({
        dynamodbEndpoint: dynamodbUrl as string,
        opensearchUrl: opensearchUrl as string,
        table: source,
        index,
        segments: options.segments,
        concurrency: options.concurrency,
        progressTable,
        deadLetterDir,
      });
      const cpu = { ...engineCpu(), node: result.cpuSeconds };
      if (result.failed > 0 || result.created !== result.scanned) {
        throw new Error(
          `the backfill of ${source} created ${result.created} of ${result.scanned} documents (${result.failed} failed)`,
        );
      }
      return { ...result, cpu };
    };

    for (let pass = 0; pass < options.warmupBackfills; pass++) {
      const warmup = `${prefix}-warmup-backfill-${pass}`;
      await backfill(table, warmup);
      await dropIndex(warmup);
    }

    const rss = { base: [] as number[], n: [] as number[], childStartMiB: [] as number[] };
    let updaterIndex: string | undefined;
    for (let round = 1; round <= options.repeat; round++) {
      log(`round ${round} of ${options.repeat}`);
      await measure('source', () =>
        timed(() => scanTable(dynamodb, table, options.segments, options.concurrency, options.pageLimit)),
      );

      const sinkIndex = `${prefix}-sink-${round}`;
      indices.add(sinkIndex);
      await measure('sink', () =>
        bulkLoad(opensearch, sinkIndex, bodies, documents, options.sinkConcurrency),
      );
      await dropIndex(sinkIndex);

      const naivePaged = `${prefix}-naive-paged-${round}`;
      indices.add(naivePaged);
      await measure('naive_paged', () =>
        naiveCopy(dynamodb, opensearch, table, naivePaged, options.pageLimit),
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
      const full = await backfill(table, backfillIndex);
      record('backfill', { count: full.created, seconds: full.seconds }, full.cpu);
      rss.n.push(full.peakRssMiB);
      rss.childStartMiB.push(full.startRssMiB);
      if (updaterIndex !== undefined) await dropIndex(updaterIndex);
      updaterIndex = backfillIndex;

      const updates = await streamUpdates({
        dynamodb,
        streams,
        opensearch,
        table,
        index: backfillIndex,
        count: options.streamItems,
        version: round + 1,
        progressTable,
        deadLetterDir,
      });
      await measure('stream', updates.drain);

      const baseIndex = `${prefix}-base-${round}`;
      const base = await backfill(baseTable, baseIndex);
      rss.base.push(base.peakRssMiB);
      await dropIndex(baseIndex);
      log(
        `  peak RSS of the backfill: ${base.peakRssMiB} MiB at ${base.scanned} items, ${full.peakRssMiB} MiB at ${full.scanned}`,
      );
    }

    const phases = Object.fromEntries(
      Object.entries(samples).map(([phase, entry]) => [
        phase,
        summarize(entry.rates, entry.cpu, entry.counts),
      ]),
    );
    const value = (phase: string) => phases[phase]?.median ?? 0;
    const rssBase = median(rss.base);
    const rssN = median(rss.n);
    const result: BenchmarkResult = {
      items: options.items,
      source_ceiling_items_per_s: value('source'),
      sink_ceiling_docs_per_s: value('sink'),
      naive_docs_per_s: options.naiveDefaultPages ? value('naive') : value('naive_paged'),
      backfill_docs_per_s: value('backfill'),
      stream_records_per_s: value('stream'),
      rss_10k_mib: rssBase,
      rss_n_mib: rssN,
      rss_growth_mib: Math.round((rssN - rssBase) * 10) / 10,
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
      rss,
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
    for (const name of [table, baseTable, progressTable]) {
      await dynamodb.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    }
    rmSync(deadLetterDir, { recursive: true, force: true });
    dynamodb.destroy();
    streams.destroy();
    await (opensearch as Client).close();
    if (engines) await engines.stop();
  }
}

/** The four targets, as ratios against their thresholds. */
export function targets(result: BenchmarkResult): Target[] {
  const ceiling = Math.min(result.source_ceiling_items_per_s, result.sink_ceiling_docs_per_s);
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
  const target = (name: string, value: number, comparison: '>=' | '<=', threshold: number): Target => ({
    name,
    value,
    comparison,
    threshold,
    pass: comparison === '>=' ? value >= threshold : value <= threshold,
  });
  return [
    target('backfill / min(source, sink ceiling)', ratio(result.backfill_docs_per_s, ceiling), '>=', 0.7),
    target('backfill / naive baseline', ratio(result.backfill_docs_per_s, result.naive_docs_per_s), '>=', 3),
    target(
      `peak RSS growth ${result.rss_base_items} → ${result.items} items (MiB)`,
      result.rss_growth_mib,
      '<=',
      50,
    ),
    target(
      'stream updater / sink ceiling',
      ratio(result.stream_records_per_s, result.sink_ceiling_docs_per_s),
      '>=',
      0.5,
    ),
  ];
}
