/**
 * `ddb2os verify`: compare a table with its index under the mapping contract
 * and report missing, extra and differing documents. Exit 0 only when the
 * index equals the table.
 */
import {
  indexMatchesTable,
  type VerifyProgress,
  type VerifyReport,
  verifyIndex,
} from '../../pipeline/verify/verify';
import { optionalInteger, optionalString, requiredString } from '../args';
import { EXIT, UsageError } from '../cli-error';
import type { Command } from '../command';
import {
  checkMappingFile,
  DYNAMODB_FLAGS,
  describeTableAt,
  dynamoDbFromArgs,
  ENDPOINT_DETAILS,
  explainEndpointError,
  MAPPING_FLAGS,
  OPENSEARCH_FLAGS,
  openSearchFromArgs,
  readMappingFile,
} from '../endpoints';
import type { CliIo } from '../io';
import { duration, fmt } from '../progress';

const DETAILS = [
  'Every item is mapped exactly as the backfill and the updater map it (docs/mapping.md) and its',
  'expected document is compared with what the index holds: missing (the document is absent),',
  'differing (_source is not the expected body: compared as JSON, key order aside, numbers as exact',
  'decimals; the first differing field is shown) and extra (a document no item produces). The target',
  'indices are refreshed first. Exit 0 when the index equals the table, 1 when it differs (a one-line',
  'summary on stderr), 2 for a usage error.',
  '',
  'Full mode keeps every expected document id in memory to find the extras: about 100 to 200 bytes per',
  'item (1 to 2 GB for 10 million items). Beyond tens of millions of items, use --sample N: N random',
  'items (whole segments of a parallel Scan with many segments, picked at random) and N random documents',
  'per index (random_score), whose items are read back by the key attributes in _source; extras and the',
  'totals are then estimates.',
  '',
  ENDPOINT_DETAILS,
].join('\n');

export const verifyCommand: Command = {
  spec: {
    name: 'verify',
    summary: 'compare every item of a table with its document in the index',
    usage:
      'ddb2os verify --table TABLE --index INDEX [--dynamodb-endpoint URL] [--opensearch-url URL] ' +
      '[--region REGION] [--profile NAME] [--mapping FILE] [--sample N] [--segments N] [--examples N] [--json]',
    flags: {
      table: { type: 'string', value: 'TABLE', description: 'the DynamoDB table' },
      index: {
        type: 'string',
        value: 'INDEX',
        description: 'the index (or alias) documents go to, unless the mapping names it',
      },
      ...DYNAMODB_FLAGS,
      ...OPENSEARCH_FLAGS,
      ...MAPPING_FLAGS,
      sample: {
        type: 'string',
        value: 'N',
        description: 'check N random items and N random documents per index instead of everything',
      },
      segments: { type: 'string', value: 'N', description: 'parallel Scan segments (default 4)' },
      examples: { type: 'string', value: 'N', description: 'examples shown of each difference (default 5)' },
      json: { type: 'boolean', description: 'print the report as one JSON object, as the last stdout line' },
    },
    details: DETAILS,
    examples: [
      'ddb2os verify --table orders --index orders --dynamodb-endpoint http://localhost:8000 --opensearch-url http://localhost:9200',
      'ddb2os verify --table orders --mapping mapping.json --opensearch-url https://search-orders-abc.eu-west-1.es.amazonaws.com --region eu-west-1',
      'ddb2os verify --table orders --index orders --sample 10000 --json | tail -n 1 | jq .sample',
    ],
  },
  run: async (args, io) => {
    const table = requiredString(args, 'table', 'verify');
    const index = optionalString(args, 'index');
    const sample = optionalInteger(args, 'sample', 1, 100_000_000);
    const segments = optionalInteger(args, 'segments', 1, 1_000);
    const examples = optionalInteger(args, 'examples', 0, 10_000);
    const json = args.values.json === true;
    const mappingFile = optionalString(args, 'mapping');
    const mapping = await readMappingFile(mappingFile, index);
    const opensearch = openSearchFromArgs(args, io, 'verify');
    const dynamodb = await dynamoDbFromArgs(args, io);
    const progress = new ProgressLine(io);
    try {
      const description = await describeTableAt(dynamodb, table, io.signal);
      checkMappingFile(mapping, description.keySchema, mappingFile);
      const report = await verifyIndex({
        dynamodb: dynamodb.client,
        opensearch: opensearch.client,
        table: description,
        mapping,
        signal: io.signal,
        onProgress: (update) => progress.show(update),
        ...(sample !== undefined ? { sample } : {}),
        ...(segments !== undefined ? { segments } : {}),
        ...(examples !== undefined ? { examples } : {}),
      });
      progress.clear();
      io.stdout.write(`${reportText(report).join('\n')}\n`);
      if (json) io.stdout.write(`${JSON.stringify(report)}\n`);
      if (indexMatchesTable(report)) return EXIT.ok;
      io.stderr.write(`ddb2os: ${summaryLine(report)}\n`);
      return EXIT.failed;
    } catch (error) {
      progress.clear();
      if (error instanceof UsageError) throw error;
      throw explainEndpointError(error, dynamodb, opensearch);
    } finally {
      dynamodb.client.destroy();
      await opensearch.client.close().catch(() => undefined);
    }
  },
};

/** `index "orders" differs from table "orders": 2 missing, 1 extra, 3 differing` */
export function summaryLine(report: VerifyReport): string {
  const counts = `${fmt(report.missing)} missing, ${fmt(report.extra)} extra, ${fmt(report.differing)} differing`;
  const absent = report.missingIndices.map((index) => `index ${index} does not exist`);
  const head = `index "${report.index}" differs from table "${report.table}": ${counts}${absent.length > 0 ? ` (${absent.join('; ')})` : ''}`;
  if (!report.sample) return head;
  return `${head} (in a sample of ${fmt(report.checked)} documents and ${fmt(report.sample.documentsSampled)} indexed documents)`;
}

/** The readable report `ddb2os verify` prints on stdout. */
export function reportText(report: VerifyReport): string[] {
  const lines: string[] = [];
  const targets =
    report.indices.length === 1 ? `index ${report.index}` : `indices ${report.indices.join(', ')}`;
  lines.push(
    `${report.sampled ? 'Sampled' : 'Verified'} table ${report.table} against ${targets} in ${seconds(report.durationMs)}`,
  );
  const rows: [string, string][] = [
    [report.sampled ? 'items sampled' : 'items', fmt(report.items)],
    ['expected documents', fmt(report.expectedDocuments) + expectedNote(report)],
    [report.sampled ? 'documents in the indices' : 'documents in the index', fmt(report.documents)],
    ['matched', fmt(report.matched)],
    ['missing', fmt(report.missing) + estimate(report, report.sample?.estimatedMissing)],
    ['differing', fmt(report.differing) + estimate(report, report.sample?.estimatedDiffering)],
    ['extra', fmt(report.extra) + extraNote(report)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(width)}  ${value}`);

  const section = <T>(title: string, total: number, shown: T[], line: (example: T) => string) => {
    if (total === 0) return;
    const more = total > shown.length ? `, ${fmt(shown.length)} shown` : '';
    lines.push('', `${title} (${fmt(total)}${more}):`);
    for (const example of shown) lines.push(`  ${line(example)}`);
  };
  section(
    'Missing',
    report.missing,
    report.examples.missing,
    (e) => `${e.index}/${e.id}  key ${JSON.stringify(e.key)}`,
  );
  section(
    'Differing',
    report.differing,
    report.examples.differing,
    (e) =>
      `${e.index}/${e.id}  at ${e.path || '(the document)'}: expected ${clip(e.expected ?? '(absent)')}, found ${clip(e.actual ?? '(absent)')}`,
  );
  section(
    'Extra',
    report.extra,
    report.examples.extra,
    (e) => `${e.index}/${e.id}${e.reason ? `  (${e.reason})` : ''}`,
  );
  section(
    'Unmappable items (dead-lettered by the backfill; not a difference)',
    report.unmappable,
    report.examples.unmappable,
    (e) => `key ${JSON.stringify(e.key)}: ${e.reason}`,
  );
  if (report.notes.length > 0) {
    lines.push('', 'Notes:');
    for (const note of report.notes) lines.push(`  ${note}`);
  }
  lines.push(
    '',
    indexMatchesTable(report)
      ? `Result: index "${report.index}" equals table "${report.table}"${report.sampled ? ' in the sample' : ''} (${fmt(report.matched)} documents checked)`
      : `Result: ${summaryLine(report)}`,
  );
  return lines;
}

function expectedNote(report: VerifyReport): string {
  const parts: string[] = [];
  if (report.skipped > 0) parts.push(`${fmt(report.skipped)} items routed nowhere`);
  if (report.unmappable > 0) parts.push(`${fmt(report.unmappable)} unmappable`);
  return parts.length > 0 ? `  (${parts.join(', ')})` : '';
}

function estimate(report: VerifyReport, value: number | undefined): string {
  return report.sample && value !== undefined && value > 0
    ? `  (about ${fmt(value)} in the whole table)`
    : '';
}

function extraNote(report: VerifyReport): string {
  if (!report.sample) return '';
  const { documentsSampled, estimatedExtra } = report.sample;
  return `  of ${fmt(documentsSampled)} sampled documents (estimated ${fmt(estimatedExtra)} in the indices)`;
}

function clip(text: string, width = 120): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s` : duration(ms / 1000);
}

/** One line on stderr, redrawn in place, while a terminal watches; nothing otherwise. */
class ProgressLine {
  private last = 0;
  private drawn = false;

  constructor(private readonly io: CliIo) {}

  show(update: VerifyProgress): void {
    if (this.io.stderr.isTTY !== true) return;
    const now = Date.now();
    if (now - this.last < 250) return;
    this.last = now;
    const phase = update.phase === 'extras' ? 'looking for extra documents' : update.phase.replace('-', ' ');
    this.io.stderr.write(
      `\r\x1b[2K${phase}: ${fmt(update.items)} items, ${fmt(update.checked)} checked, ` +
        `${fmt(update.missing)} missing, ${fmt(update.differing)} differing, ${fmt(update.extra)} extra`,
    );
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.io.stderr.write('\r\x1b[2K');
    this.drawn = false;
  }
}
