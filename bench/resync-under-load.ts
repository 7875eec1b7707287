/**
 * `npm run bench:resync -- [--items N] [--segments N] [--concurrency N] [--keep] [--json]`
 *
 * The resync under load of issue 15 ("Done when"), on the engines of
 * --dynamodb-endpoint and --opensearch-url (default DYNAMODB_ENDPOINT and
 * OPENSEARCH_URL): a table of N items with a stream, indexed by `ddb2os run`
 * into an index behind the alias search reads; then `ddb2os resync` while a
 * writer puts, updates and deletes items and a reader queries the alias every
 * 200 ms (bench/resync-load.ts); then `ddb2os verify` against the alias.
 * Prints the figures (items, writer operations, reader queries, the smallest
 * hits margin, errors, durations, verify's counts, the machine's load); with
 * --json one object as the last stdout line. Exit 1 when a check fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CliIo } from '../cli/io';
import { main } from '../cli/main';
import { seededRandom } from '../local/demo-data';
import { loadItems } from '../local/load-items';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { BENCH_KEY_SCHEMA, benchItem, benchItems, benchKey } from './items';
import { createBenchTable } from './phases';
import { startAliasReader, startTableWriter } from './resync-load';

const USAGE = `usage: npm run bench:resync -- [options]

  --items N               items in the table (default 50000)
  --segments N            scan segments of the backfills (default: from the table size)
  --concurrency N         segments in flight (default 4)
  --dynamodb-endpoint URL DynamoDB (default DYNAMODB_ENDPOINT)
  --opensearch-url URL    OpenSearch (default OPENSEARCH_URL)
  --keep                  keep the table, the progress table, the indices and the dead-letter folder
  --json                  print one summary object as the last stdout line
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) fail(`--${name} must be a positive integer, not "${text}"`);
  return value;
}

/** Runs one `ddb2os` command in process; stderr is passed through, `onStderr` sees it as it comes. */
async function ddb2os(
  argv: string[],
  onStderr?: (text: string) => void,
): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    onStderr?.(chunk.toString());
  });
  const io: CliIo = { stdout, stderr, env: process.env, signal: new AbortController().signal };
  const code = await main(argv, io);
  return { code, stdout: out };
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>;
}

async function bench(): Promise<number> {
  const { values } = (() => {
    try {
      return parseArgs({
        args: process.argv.slice(2),
        strict: true,
        options: {
          items: { type: 'string' },
          segments: { type: 'string' },
          concurrency: { type: 'string' },
          'dynamodb-endpoint': { type: 'string' },
          'opensearch-url': { type: 'string' },
          keep: { type: 'boolean' },
          json: { type: 'boolean' },
          help: { type: 'boolean' },
        },
      });
    } catch (error) {
      return fail((error as Error).message);
    }
  })();
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const items = positive('items', values.items) ?? 50_000;
  const segments = positive('segments', values.segments);
  const concurrency = positive('concurrency', values.concurrency);
  const dynamodbUrl = values['dynamodb-endpoint'] ?? process.env.DYNAMODB_ENDPOINT;
  const opensearchUrl = values['opensearch-url'] ?? process.env.OPENSEARCH_URL;
  if (!dynamodbUrl || !opensearchUrl)
    fail('give --dynamodb-endpoint and --opensearch-url (or their variables)');

  const dynamodb = new DynamoDBClient({
    endpoint: dynamodbUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const opensearch = createOpenSearchClient({ endpoint: opensearchUrl });
  const suffix = `${process.pid}-${Date.now().toString(36)}`;
  const table = `bench-resync-${suffix}`;
  const progressTable = `bench-resync-progress-${suffix}`;
  const index = `bench-resync-${suffix}`;
  const endpoints = ['--dynamodb-endpoint', dynamodbUrl, '--opensearch-url', opensearchUrl];
  const deadLetterDir = mkdtempSync(join(tmpdir(), 'ddb2os-bench-resync-'));
  const common = [...endpoints, '--progress-table', progressTable, '--dead-letter-dir', deadLetterDir];
  const scan = [
    ...(segments ? ['--segments', String(segments)] : []),
    ...(concurrency ? ['--concurrency', String(concurrency)] : []),
  ];
  const log = (message: string) => process.stderr.write(`${new Date().toISOString()} bench: ${message}\n`);
  const loadBefore = loadavg()[0] ?? 0;
  const started = Date.now();
  try {
    // Prepare: the table, its first backfill into <index>-first, and the alias search reads.
    await createBenchTable(dynamodb, table, { stream: true });
    log(`loading ${items} items into ${table}`);
    await loadItems(dynamodb, table, benchItems(items, 7, 0));
    // --follow-for 0: the updater is caught up when the resync starts, as a live install's is.
    const first = await ddb2os([
      'run',
      '--table',
      table,
      '--index',
      `${index}-first`,
      ...common,
      ...scan,
      '--follow-for',
      '0',
    ]);
    if (first.code !== 0) throw new Error(`the first backfill failed (exit ${first.code})`);
    await opensearch.indices.updateAliases({
      body: { actions: [{ add: { index: `${index}-first`, alias: index } }] },
    });

    // Act: the resync, with the writer and the reader running the whole time.
    const random = seededRandom(11);
    const itemOf = (i: number) => benchItem(i, random);
    const keyOf = (i: number) => ({ [BENCH_KEY_SCHEMA.partitionKey]: { S: benchKey(i) } });
    const writer = startTableWriter({ dynamodb, table, initial: items, itemOf, keyOf });
    const reader = startAliasReader({
      opensearch,
      index,
      initial: items,
      deletesSoFar: () => writer.counts.deletes,
    });
    const resyncStarted = Date.now();
    let writerStopped: Promise<void> | undefined;
    const resync = await ddb2os(
      ['resync', '--table', table, '--index', index, ...common, ...scan, '--follow-for', '2', '--json'],
      (text) => {
        // Once the alias is swapped and the updater follows, the writer stops; --follow-for applies the rest.
        if (text.includes('following the table stream')) writerStopped ??= writer.stop();
      },
    );
    await (writerStopped ?? writer.stop());
    await reader.stop();
    const resyncSeconds = (Date.now() - resyncStarted) / 1000;
    const verify = await ddb2os(['verify', '--table', table, '--index', index, ...endpoints, '--json']);
    const verified = verify.stdout.trim() ? lastJson(verify.stdout) : {};

    // Assess
    const figures = {
      items,
      writer: writer.counts,
      reader: {
        ...reader.seen,
        errors: reader.seen.errors.length,
        firstErrors: reader.seen.errors.slice(0, 3),
      },
      resync: { exitCode: resync.code, seconds: resyncSeconds, ...pick(lastJsonOrEmpty(resync.stdout)) },
      verify: {
        exitCode: verify.code,
        missing: verified.missing,
        extra: verified.extra,
        differing: verified.differing,
        checked: verified.checked,
      },
      totalSeconds: (Date.now() - started) / 1000,
      loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
    };
    const ok =
      resync.code === 0 &&
      verify.code === 0 &&
      reader.seen.errors.length === 0 &&
      reader.seen.markers === 0 &&
      reader.seen.minMargin >= 0;
    printFigures(figures, ok);
    if (values.json) process.stdout.write(`${JSON.stringify({ ...figures, ok })}\n`);
    return ok ? 0 : 1;
  } finally {
    if (!values.keep) {
      await dynamodb.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
      await dynamodb.send(new DeleteTableCommand({ TableName: progressTable })).catch(() => undefined);
      await opensearch.indices
        .delete({ index: `${index}-*`, ignore_unavailable: true })
        .catch(() => undefined);
      rmSync(deadLetterDir, { recursive: true, force: true });
    }
    dynamodb.destroy();
    await opensearch.close();
  }
}

function lastJsonOrEmpty(stdout: string): Record<string, unknown> {
  try {
    return lastJson(stdout);
  } catch {
    return {};
  }
}

function pick(summary: Record<string, unknown>) {
  return {
    scanned: summary.scanned,
    created: summary.created,
    alreadyPresent: summary.alreadyPresent,
    tombstonesRemoved: summary.tombstonesRemoved,
    updaterRecords: summary.updaterRecords,
  };
}

function printFigures(
  f: {
    items: number;
    writer: { ops: number; puts: number; updates: number; deletes: number };
    reader: { queries: number; errors: number; minMargin: number; markers: number; firstErrors: string[] };
    resync: { exitCode: number; seconds: number; tombstonesRemoved?: unknown; updaterRecords?: unknown };
    verify: { exitCode: number; missing?: unknown; extra?: unknown; differing?: unknown; checked?: unknown };
    totalSeconds: number;
    loadAverage: { before: number; after: number };
  },
  ok: boolean,
): void {
  const lines = [
    `resync under load: ${ok ? 'OK' : 'FAILED'}`,
    `  items at the start        ${f.items}`,
    `  writer operations         ${f.writer.ops} (${f.writer.puts} puts, ${f.writer.updates} updates, ${f.writer.deletes} deletes)`,
    `  reader queries            ${f.reader.queries}, errors ${f.reader.errors}, markers seen ${f.reader.markers}`,
    `  smallest hits margin      ${f.reader.minMargin} (hits − (items at the start − deletes so far))`,
    `  resync                    exit ${f.resync.exitCode}, ${f.resync.seconds.toFixed(1)} s, ${String(f.resync.updaterRecords)} stream records, ${String(f.resync.tombstonesRemoved)} markers removed`,
    `  verify on the alias       exit ${f.verify.exitCode}: ${String(f.verify.missing)} missing, ${String(f.verify.extra)} extra, ${String(f.verify.differing)} differing of ${String(f.verify.checked)}`,
    `  total                     ${f.totalSeconds.toFixed(1)} s; load average ${f.loadAverage.before.toFixed(1)} before, ${f.loadAverage.after.toFixed(1)} after`,
    ...f.reader.firstErrors.map((error) => `  reader error: ${error}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

bench().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
