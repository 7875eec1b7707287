/**
 * `ddb2os verify`: compare a table with its index under the mapping contract
 * and report missing, extra and differing documents. Exit 0 only when the
 * index equals the table. With `--repair`, fix every difference found from
 * the table (repairKeys) and check those keys again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { attributeToJson, type MappingConfig } from '../../pipeline/mapping/mapping';
import { type RepairResult, type RepairTarget, repairKeys } from '../../pipeline/repair/repair-keys';
import type { Item } from '../../pipeline/table/types';
import {
  indexMatchesTable,
  type KeysCheck,
  type VerifyProgress,
  type VerifyReport,
  type VerifyTable,
  verifyIndex,
  verifyKeys,
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
  '--repair fixes every missing, extra and differing document found, from the table, and is safe while',
  "the updater runs: each document is read (verify's read, with its _seq_no), then its item with a",
  'consistent read, and written only if the document is still the one read (if_seq_no; create when it',
  'was absent); a document the updater wrote since is left to it (counted superseded). Items that cannot',
  'be mapped go to --dead-letter-dir. Then the repaired keys are verified again (read from the table and',
  'the index once more; a difference still there is checked again after a second, three times, since the',
  'updater may be applying a newer change). Exit 0 only when that second verify is clean. --repair keeps',
  'every difference in memory (a few hundred bytes each) up to --max-repairs (default 1,000,000) and',
  'repairs nothing beyond it. It needs the full comparison: --sample cannot be combined with it.',
  'docs/guarantees.md ("Repair and replay") says why no older value can win.',
  '',
  ENDPOINT_DETAILS,
].join('\n');

export const verifyCommand: Command = {
  spec: {
    name: 'verify',
    summary: 'compare every item of a table with its document in the index',
    usage:
      'ddb2os verify --table TABLE --index INDEX [--dynamodb-endpoint URL] [--opensearch-url URL] ' +
      '[--region REGION] [--profile NAME] [--mapping FILE] [--sample N] [--segments N] [--examples N] ' +
      '[--repair [--max-repairs N] [--dead-letter-dir DIR]] [--json]',
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
      repair: {
        type: 'boolean',
        description:
          'fix every difference from the table (safe while the updater runs), then verify those keys again',
      },
      'max-repairs': {
        type: 'string',
        value: 'N',
        description:
          'most differences --repair keeps in memory; beyond it nothing is repaired (default 1000000)',
      },
      'dead-letter-dir': {
        type: 'string',
        value: 'DIR',
        description: 'folder for items --repair cannot index, with their reasons (default .ddb2os)',
      },
      json: { type: 'boolean', description: 'print the report as one JSON object, as the last stdout line' },
    },
    details: DETAILS,
    examples: [
      'ddb2os verify --table orders --index orders --dynamodb-endpoint http://localhost:8000 --opensearch-url http://localhost:9200',
      'ddb2os verify --table orders --mapping mapping.json --opensearch-url https://search-orders-abc.eu-west-1.es.amazonaws.com --region eu-west-1',
      'ddb2os verify --table orders --index orders --sample 10000 --json | tail -n 1 | jq .sample',
      'ddb2os verify --table orders --index orders --repair --opensearch-url https://search-orders-abc.eu-west-1.es.amazonaws.com --region eu-west-1',
    ],
  },
  run: async (args, io) => {
    const table = requiredString(args, 'table', 'verify');
    const index = optionalString(args, 'index');
    const sample = optionalInteger(args, 'sample', 1, 100_000_000);
    const segments = optionalInteger(args, 'segments', 1, 1_000);
    const examples = optionalInteger(args, 'examples', 0, 10_000);
    const json = args.values.json === true;
    const repair = args.values.repair === true;
    const maxRepairs = optionalInteger(args, 'max-repairs', 1, 100_000_000);
    const deadLetterDir = optionalString(args, 'dead-letter-dir');
    if (!repair && (maxRepairs !== undefined || deadLetterDir !== undefined)) {
      throw new UsageError(
        `--${maxRepairs !== undefined ? 'max-repairs' : 'dead-letter-dir'} goes with --repair`,
      );
    }
    if (repair && sample !== undefined) {
      throw new UsageError(
        '--repair needs the full comparison (a sample finds only some of the differences): drop --sample',
      );
    }
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
        ...(repair ? { collect: maxRepairs ?? DEFAULT_MAX_REPAIRS } : {}),
      });
      progress.clear();
      const { drift, driftOverflow, ...shown } = report;
      io.stdout.write(`${reportText(report).join('\n')}\n`);
      if (!repair || indexMatchesTable(report)) {
        if (json) io.stdout.write(`${JSON.stringify(shown)}\n`);
        if (indexMatchesTable(report)) return EXIT.ok;
        io.stderr.write(`ddb2os: ${summaryLine(report)}\n`);
        return EXIT.failed;
      }
      if (driftOverflow) {
        if (json) io.stdout.write(`${JSON.stringify(shown)}\n`);
        const limit = maxRepairs ?? DEFAULT_MAX_REPAIRS;
        io.stderr.write(
          `ddb2os: verify found ${fmt(report.missing + report.extra + report.differing)} differences, more than --max-repairs ${fmt(limit)}; ` +
            'nothing was repaired: raise --max-repairs (each difference takes a few hundred bytes of memory) ' +
            `or rebuild it while search keeps serving it: ddb2os resync --table ${table} --index ${mapping.index}\n`,
        );
        return EXIT.failed;
      }
      const outcome = await repairDrift(drift ?? [], {
        dynamodb: dynamodb.client,
        opensearch: opensearch.client,
        table: description,
        mapping,
        deadLetterDir: deadLetterDir ?? '.ddb2os',
        examples: examples ?? 5,
        signal: io.signal,
      });
      io.stdout.write(`${repairText(outcome, examples ?? 5).join('\n')}\n`);
      if (json) {
        io.stdout.write(
          `${JSON.stringify({ ...shown, repair: repairJson(outcome.repair, outcome.unrepairable), recheck: outcome.recheck })}\n`,
        );
      }
      if (recheckClean(outcome.recheck)) return EXIT.ok;
      io.stderr.write(`ddb2os: ${recheckLine(outcome.recheck, report)}\n`);
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

const DEFAULT_MAX_REPAIRS = 1_000_000;
/** The second verify looks again at what still differs, this often, this far apart: the updater may be applying a newer change. */
const RECHECKS = 3;
const RECHECK_PAUSE_MS = 1_000;

interface RepairOutcome {
  repair: RepairResult;
  /** Differences without a key to repair from (an extra whose _source lacks the key attributes). */
  unrepairable: { index: string; id: string; reason: string }[];
  recheck: KeysCheck;
  /** Dead-letter folder. */
  deadLetters: string;
}

/** repairKeys on every difference verify kept, then the second verify of exactly those keys and documents. */
async function repairDrift(
  drift: NonNullable<VerifyReport['drift']>,
  context: {
    dynamodb: DynamoDBClient;
    opensearch: Client;
    table: VerifyTable;
    mapping: MappingConfig;
    deadLetterDir: string;
    examples: number;
    signal: AbortSignal;
  },
): Promise<RepairOutcome> {
  const targets: RepairTarget[] = [];
  const unrepairable: RepairOutcome['unrepairable'] = [];
  for (const entry of drift) {
    if (entry.key) targets.push({ key: entry.key, seen: entry.seen });
    else
      unrepairable.push({ index: entry.index, id: entry.id, reason: entry.reason ?? 'its key is unknown' });
  }
  const deadLetters = new DirectoryDeadLetterSink(context.deadLetterDir);
  const repair = await repairKeys(targets, {
    opensearch: context.opensearch,
    dynamodb: context.dynamodb,
    table: context.table.name,
    keySchema: context.table.keySchema,
    mapping: context.mapping,
    deadLetters,
    runId: 'repair',
  });
  let keys: Item[] = targets.map((target) => target.key);
  let places = [
    ...drift.map(({ index, id }) => ({ index, id })),
    ...repair.repairedIds.map(({ index, id }) => ({ index, id })),
    ...repair.supersededIds.map(({ index, id }) => ({ index, id })),
  ];
  const check = { dynamodb: context.dynamodb, opensearch: context.opensearch, table: context.table };
  let recheck = await verifyKeys({
    ...check,
    mapping: context.mapping,
    keys,
    places,
    examples: Number.MAX_SAFE_INTEGER,
  });
  const total = recheck;
  for (let attempt = 1; attempt < RECHECKS && !recheckClean(recheck); attempt++) {
    await sleep(RECHECK_PAUSE_MS, undefined, { signal: context.signal });
    // Only what still differs is looked at again.
    const open = [...recheck.examples.missing, ...recheck.examples.differing, ...recheck.examples.extra];
    const ids = new Set(open.map(({ index, id }) => `${index}\n${id}`));
    places = places.filter(({ index, id }) => ids.has(`${index}\n${id}`));
    const reopened = new Set<Item>();
    for (const entry of [...drift, ...repair.repairedIds, ...repair.supersededIds]) {
      if (entry.key && ids.has(`${entry.index}\n${entry.id}`)) reopened.add(entry.key);
    }
    keys = [...reopened];
    recheck = await verifyKeys({
      ...check,
      mapping: context.mapping,
      keys,
      places,
      examples: Number.MAX_SAFE_INTEGER,
    });
  }
  const shown = (list: { index: string; id: string }[]) => list.slice(0, context.examples);
  return {
    repair,
    unrepairable,
    recheck: {
      ...recheck,
      keys: total.keys,
      checked: total.checked,
      matched: total.checked - recheck.missing - recheck.differing,
      examples: {
        missing: shown(recheck.examples.missing) as KeysCheck['examples']['missing'],
        differing: shown(recheck.examples.differing) as KeysCheck['examples']['differing'],
        extra: shown(recheck.examples.extra),
        unmappable: [],
      },
    },
    deadLetters: deadLetters.location,
  };
}

function recheckClean(check: KeysCheck): boolean {
  return check.missing === 0 && check.extra === 0 && check.differing === 0;
}

function recheckLine(check: KeysCheck, report: VerifyReport): string {
  return (
    `after the repair, index "${report.index}" still differs from table "${report.table}" for the repaired keys: ` +
    `${fmt(check.missing)} missing, ${fmt(check.extra)} extra, ${fmt(check.differing)} differing`
  );
}

/** What `--repair` prints after the report: what it fixed, and the second verify. */
export function repairText(outcome: RepairOutcome, examples: number): string[] {
  const { repair, recheck, unrepairable } = outcome;
  const lines = [
    '',
    `Repair: ${fmt(repair.indexed)} indexed, ${fmt(repair.deleted)} deleted, ${fmt(repair.unchanged)} already right, ` +
      `${fmt(repair.superseded)} superseded, ${fmt(repair.deadLettered)} dead-lettered, ` +
      `${fmt(repair.failed.length + unrepairable.length)} failed`,
  ];
  const list = (title: string, ids: string[]) => {
    if (ids.length === 0) return;
    const more = ids.length > examples ? ` (${fmt(examples)} of ${fmt(ids.length)} shown)` : '';
    lines.push(`  ${title}${more}:`);
    for (const id of ids.slice(0, examples)) lines.push(`    ${id}`);
  };
  const place = ({ index, id }: { index: string; id: string }) => `${index}/${id}`;
  list('indexed', repair.repairedIds.filter((entry) => entry.outcome === 'indexed').map(place));
  list('deleted', repair.repairedIds.filter((entry) => entry.outcome === 'deleted').map(place));
  list('superseded (the updater wrote a newer value since; left to it)', repair.supersededIds.map(place));
  if (repair.deadLettered > 0)
    lines.push(`  dead-lettered items are in ${outcome.deadLetters}, with their reasons`);
  list('failed', [
    ...repair.failed.map(({ key, reason }) => `key ${JSON.stringify(keyJson(key))}: ${reason}`),
    ...unrepairable.map((entry) => `${place(entry)}: ${entry.reason}`),
  ]);
  lines.push(
    `Second verify of ${fmt(recheck.keys)} repaired keys (${fmt(recheck.checked)} documents checked): ` +
      `${fmt(recheck.missing)} missing, ${fmt(recheck.extra)} extra, ${fmt(recheck.differing)} differing`,
  );
  list('still missing', recheck.examples.missing.map(place));
  list('still differing', recheck.examples.differing.map(place));
  list('still extra', recheck.examples.extra.map(place));
  lines.push(
    '',
    recheckClean(recheck)
      ? 'Result: every difference found is repaired'
      : 'Result: some differences remain after the repair (see above)',
  );
  return lines;
}

function repairJson(
  repair: RepairResult,
  unrepairable: RepairOutcome['unrepairable'],
): Record<string, unknown> {
  const { repairedIds, supersededIds, failed, ...counts } = repair;
  return {
    ...counts,
    failed: [
      ...failed.map(({ key, reason }) => ({ key: keyJson(key), reason })),
      ...unrepairable.map(({ index, id, reason }) => ({ index, id, reason })),
    ],
    repairedIds: repairedIds.map(({ index, id, outcome }) => ({ index, id, outcome })),
    supersededIds: supersededIds.map(({ index, id }) => ({ index, id })),
  };
}

function keyJson(key: Item): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(key)) {
    try {
      shown[name] = attributeToJson(value);
    } catch {
      shown[name] = String(Object.values(value)[0]);
    }
  }
  return shown;
}

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
