/**
 * `npm run bench -- [--items N] [--segments N] [--concurrency N] [--repeat N] [--json]`
 *
 * Starts a DynamoDB Local and an OpenSearch of its own (or uses the ones given
 * with --dynamodb-endpoint and --opensearch-url), runs every measurement of
 * bench/benchmark.ts, prints a table and the targets, and with --json one
 * summary object as the last stdout line. Progress goes to stderr.
 */
import { parseArgs } from 'node:util';
import {
  type BenchmarkOptions,
  type BenchmarkResult,
  DEFAULT_OPTIONS,
  runBenchmark,
  SCALE_FACTOR,
} from './benchmark';
import { PROFILE_PARTS } from './profile';

const USAGE = `usage: npm run bench -- [options]

  --items N               items in the table (default ${DEFAULT_OPTIONS.items})
  --segments N            scan segments of the source ceiling and the backfill (default ${DEFAULT_OPTIONS.segments})
  --concurrency N         segments in flight (default ${DEFAULT_OPTIONS.concurrency})
  --repeat N              rounds; medians are reported (default ${DEFAULT_OPTIONS.repeat})
  --rss-base-items N      items of the small table for the RSS baseline (default ${DEFAULT_OPTIONS.rssBaseItems})
  --stream-items N        items the stream benchmark updates (default: min(--items, 20000))
  --page-limit N          Scan Limit of the raw scans (default ${DEFAULT_OPTIONS.pageLimit})
  --sink-docs N           documents per bulk request of the sink ceiling (default ${DEFAULT_OPTIONS.sinkDocs})
  --sink-concurrency N    bulk requests in flight of the sink ceiling (default ${DEFAULT_OPTIONS.sinkConcurrency})
  --cpu-layout split|shared  split: DynamoDB Local and OpenSearch on separate halves of the CPUs
                          (as separate services in AWS); shared: everything on every CPU
                          (default split with 2+ CPUs and taskset, else shared)
  --naive-seconds N       time box of the naive loops (default ${DEFAULT_OPTIONS.naiveSeconds})
  --warmup-documents N    documents created and overwritten before timing (default ${DEFAULT_OPTIONS.warmupDocuments}; 0: none)
  --warmup-scans N        full scans before timing (default ${DEFAULT_OPTIONS.warmupScans}; 0: none)
  --warmup-backfills N    untimed backfills before timing; the first is CPU-profiled (default ${DEFAULT_OPTIONS.warmupBackfills}; 0: none)
  --scale                 also measure the backfill's peak RSS on a table of ${SCALE_FACTOR} x --items (adds a load
                          of that table and --repeat backfills of it: about 10 more minutes at 100,000)
  --skip-default-pages    do not time the naive loop with Scan's default 1 MB pages (slow on DynamoDB Local)
  --dynamodb-endpoint URL use this DynamoDB instead of starting one (with --opensearch-url)
  --opensearch-url URL    use this OpenSearch instead of starting one (with --dynamodb-endpoint)
  --json                  print one summary object as the last stdout line
`;

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    process.stderr.write(`--${name} must be a positive integer, not "${text}"\n${USAGE}`);
    process.exit(2);
  }
  return value;
}

function count(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`--${name} must be a whole number, not "${text}"\n${USAGE}`);
    process.exit(2);
  }
  return value;
}

function parseOptions(argv: string[]): { options: BenchmarkOptions; json: boolean } {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      strict: true,
      options: {
        items: { type: 'string' },
        segments: { type: 'string' },
        concurrency: { type: 'string' },
        repeat: { type: 'string' },
        'rss-base-items': { type: 'string' },
        'stream-items': { type: 'string' },
        'page-limit': { type: 'string' },
        'sink-docs': { type: 'string' },
        'sink-concurrency': { type: 'string' },
        'cpu-layout': { type: 'string' },
        'naive-seconds': { type: 'string' },
        'warmup-documents': { type: 'string' },
        'warmup-scans': { type: 'string' },
        'warmup-backfills': { type: 'string' },
        'skip-default-pages': { type: 'boolean' },
        scale: { type: 'boolean' },
        'dynamodb-endpoint': { type: 'string' },
        'opensearch-url': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  }
  try {
    parsed = parse();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if ((values['dynamodb-endpoint'] === undefined) !== (values['opensearch-url'] === undefined)) {
    process.stderr.write(`--dynamodb-endpoint and --opensearch-url go together\n${USAGE}`);
    process.exit(2);
  }
  const items = positiveInteger('items', values.items, DEFAULT_OPTIONS.items);
  const layout = values['cpu-layout'];
  if (layout !== undefined && layout !== 'split' && layout !== 'shared') {
    process.stderr.write(`--cpu-layout must be split or shared, not "${layout}"\n${USAGE}`);
    process.exit(2);
  }
  const options: BenchmarkOptions = {
    items,
    segments: positiveInteger('segments', values.segments, DEFAULT_OPTIONS.segments),
    concurrency: positiveInteger('concurrency', values.concurrency, DEFAULT_OPTIONS.concurrency),
    repeat: positiveInteger('repeat', values.repeat, DEFAULT_OPTIONS.repeat),
    rssBaseItems: positiveInteger('rss-base-items', values['rss-base-items'], DEFAULT_OPTIONS.rssBaseItems),
    streamItems: positiveInteger('stream-items', values['stream-items'], Math.min(items, 20_000)),
    pageLimit: positiveInteger('page-limit', values['page-limit'], DEFAULT_OPTIONS.pageLimit),
    sinkDocs: positiveInteger('sink-docs', values['sink-docs'], DEFAULT_OPTIONS.sinkDocs),
    sinkConcurrency: positiveInteger(
      'sink-concurrency',
      values['sink-concurrency'],
      DEFAULT_OPTIONS.sinkConcurrency,
    ),
    naiveDefaultPages: !values['skip-default-pages'],
    warmupDocuments: count('warmup-documents', values['warmup-documents'], DEFAULT_OPTIONS.warmupDocuments),
    warmupScans: count('warmup-scans', values['warmup-scans'], DEFAULT_OPTIONS.warmupScans),
    warmupBackfills: count('warmup-backfills', values['warmup-backfills'], DEFAULT_OPTIONS.warmupBackfills),
    naiveSeconds: positiveInteger('naive-seconds', values['naive-seconds'], DEFAULT_OPTIONS.naiveSeconds),
    scale: values.scale === true,
    cpuLayout: layout,
    dynamodbEndpoint: values['dynamodb-endpoint'],
    opensearchUrl: values['opensearch-url'],
    log: (line) => process.stderr.write(`${line}\n`),
  };
  return { options, json: values.json === true };
}

const number = (value: number) => Math.round(value).toLocaleString('en-US');

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
    .join('  ');
}

/** The readable report: one row per measurement, the memory, the targets. */
export function formatReport(result: BenchmarkResult): string {
  const rows: [string, string, string][] = [
    ['source ceiling: raw parallel Scan', 'source', 'items/s'],
    ['sink ceiling: prebuilt bulk bodies', 'sink', 'docs/s'],
    [`naive: 1 segment, 1 bulk per page (first ${result.naive_seconds} s)`, 'naive', 'docs/s'],
    [`naive, Scan Limit ${result.page_limit} (first ${result.naive_seconds} s)`, 'naive_paged', 'docs/s'],
    ['ddb2os backfill (workflow, child)', 'backfill', 'docs/s'],
    ["sink at the backfill's request shape", 'sink_same_shape', 'docs/s'],
    ['stream updater (drain of updates)', 'stream', 'records/s'],
    ['update ceiling: prebuilt bulk index over existing', 'update_ceiling', 'docs/s'],
  ];
  const header = ['measurement', 'median', 'unit', 'spread', 'samples', 'CPU ms/1000: DDB', 'OS', 'node'];
  const table = rows
    .filter(([, phase]) => result.phases[phase] !== undefined)
    .map(([label, phase, unit]) => {
      const summary = result.phases[phase]!;
      const cpu = summary.cpuMsPer1000 ?? {};
      const part = (value: number | undefined) => (value === undefined ? '-' : number(value));
      return [
        label,
        number(summary.median),
        unit,
        `${summary.spreadPercent} %`,
        summary.samples.map(number).join(' / '),
        part(cpu.dynamodb),
        part(cpu.opensearch),
        part(cpu.node),
      ];
    });
  const widths = header.map((title, i) => Math.max(title.length, ...table.map((row) => row[i]!.length)));
  const lines = [
    `ddb2os benchmark: ${number(result.items)} items of ~1 KiB, ${result.segments} segments, ${result.concurrency} in flight, ` +
      `${result.repeat} round(s), medians (spread = (max - min) / median)`,
    `engines: ${result.engines} (CPU layout: ${result.cpu_layout})`,
    `machine: ${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memoryGiB} GiB, Node ${result.machine.node}`,
    `sink ceiling: ${result.sink_docs_per_request} documents per request, ${result.sink_concurrency} in flight; ` +
      `table loaded at ${number(result.load_items_per_s)} items/s`,
    '',
    pad(header, widths),
    ...table.map((row) => pad(row, widths)),
    '',
    `peak RSS of the backfill: ${result.rss_10k_mib} MiB at ${number(result.rss_base_items)} items, ` +
      `${result.rss_n_mib} MiB at ${number(result.items)} items: growth ${result.rss_growth_mib} MiB ` +
      `(samples ${result.rss.base.join(' / ')} and ${result.rss.n.join(' / ')}; the child starts at ~${result.rss.childStartMiB[0] ?? '?'} MiB)`,
  ];
  if (result.rss_scale_mib !== undefined) {
    lines.push(
      `peak RSS at ${number(result.scale_items ?? 0)} items: ${result.rss_scale_mib} MiB (samples ${(result.rss.scale ?? []).join(' / ')}): ` +
        `growth ${result.rss_growth_scale_mib} MiB from ${number(result.items)} items`,
    );
  }
  const requests = result.backfill_requests;
  if (requests) {
    const dynamodb = Object.entries(requests.dynamodb)
      .map(([command, count]) => `${command} ${number(count)}`)
      .join(', ');
    lines.push(
      `backfill's requests: DynamoDB ${dynamodb} (the raw scan: ${number(requests.sourceScanPages)} Scan pages); ` +
        `OpenSearch ${number(requests.bulkRequests)} bulk requests of ${number(requests.bulkDocsPerRequest)} documents ` +
        `(${number(requests.bulkKiBPerRequest)} KiB) on average, up to ${requests.bulkInFlight} in flight ` +
        `(the sink ceiling: ${number(result.sink_docs_per_request)} documents, ${result.sink_concurrency} in flight)`,
    );
  }
  const model = result.model;
  lines.push(
    `cost/time model: ddb2os plan estimates ${model.estimatedSeconds} s for this table (${number(model.itemCount)} items, ` +
      `${number(model.tableSizeBytes)} bytes, ${number(model.readRequestUnits)} RRU) at ${number(model.itemsPerSecondPerSegment)} items/s ` +
      `per segment; the backfill took ${model.measuredSeconds} s = ${number(model.measuredItemsPerSecondPerSegment)} items/s per segment`,
  );
  const steps = Object.entries(result.elapsed)
    .filter(([name]) => name !== 'total')
    .map(([name, seconds]) => `${name} ${Math.round(seconds)}`)
    .join(', ');
  lines.push(`elapsed: ${Math.round(result.elapsed_s)} s in all (seconds: ${steps})`);
  lines.push(
    '',
    'targets',
    ...result.targets.map(
      (target) =>
        `  ${target.pass ? 'PASS' : 'MISS'}  ${target.name}: ${target.note ?? target.value} (target ${target.comparison} ${target.threshold})`,
    ),
  );
  const profile = result.node_profile;
  const shares = profile
    ? ` (profile of a backfill, busy time: ${PROFILE_PARTS.map((part) => `${part} ${profile.sharePercent[part]} %`).join(', ')}; idle ${Math.round(profile.idleMs)} ms)`
    : '';
  lines.push(
    `  info  Node.js CPU per 1,000 documents in the backfill: ${result.node_cpu_ms_per_1000_docs} ms${shares}`,
  );
  if (result.opensearch_cpu_ratio_same_shape > 0) {
    lines.push(
      `  info  OpenSearch CPU per document: backfill / sink at the backfill's request shape: ${result.opensearch_cpu_ratio_same_shape}`,
    );
  }
  const waits = (['backfill', 'sink', 'sink_same_shape'] as const).map(
    (phase) => result.phases[phase]?.runQueueMsPer1000?.opensearch,
  );
  if (waits.every((wait) => wait !== undefined)) {
    const [backfill, sink, shaped] = waits;
    lines.push(
      `  info  OpenSearch's threads waiting for a CPU (run queue), ms per 1,000 documents: backfill ${backfill}, ` +
        `sink ceiling ${sink}, sink at the backfill's request shape ${shaped} (its CPU per document rises where it waits)`,
    );
  }
  const naive = result.naive_docs_per_s;
  lines.push(
    `  info  backfill / naive${result.phases.naive ? ` (first ${result.naive_seconds} s of Scan's own pages, a lower bound)` : ''}: ` +
      `${naive > 0 ? (result.backfill_docs_per_s / naive).toFixed(2) : '-'}`,
  );
  if (result.phases.naive_paged && result.phases.naive) {
    const paged = result.naive_paged_docs_per_s;
    lines.push(
      `  info  backfill / naive with Scan Limit ${result.page_limit}: ${paged > 0 ? (result.backfill_docs_per_s / paged).toFixed(2) : '-'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const { options, json } = parseOptions(process.argv.slice(2));
const result = await runBenchmark(options);
process.stdout.write(formatReport(result));
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
