/**
 * `ddb2os plan`: the segment plan of a table (the same planner the workflow
 * runs) and an estimate of the read request units, cost and time of a backfill.
 */
import { randomUUID } from 'node:crypto';
import { ConfigurationError, SourceTableError } from '../../pipeline/errors';
import { checkDefinitionWithOpenSearch, type IndexDefinition } from '../../pipeline/index/index-definition';
import { planSegments, segmentCount } from '../../pipeline/plan/plan-segments';
import { describeSourceTable, type SourceTable } from '../../pipeline/table/describe';
import { optionalInteger, optionalPositiveNumber, optionalString, requiredString } from '../args';
import { EXIT, UsageError } from '../cli-error';
import { AWS_DETAILS, AWS_FLAGS, type CloudDeps, resolveTarget, withDefaults } from '../cloud/aws';
import { explainAwsError } from '../cloud/errors';
import type { Command } from '../command';
import {
  explainOpenSearchError,
  INDEX_CONFIG_FLAGS,
  openSearchFromArgs,
  readIndexConfigFile,
} from '../endpoints';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_PRICE_PER_MILLION_RRU,
  type Estimate,
  estimateBackfill,
  formatBytes,
  formatUsd,
  ITEMS_PER_SECOND_PER_SEGMENT,
  RETENTION_BUDGET_HOURS,
} from '../estimate';
import type { CliIo } from '../io';
import { duration, fmt } from '../progress';

const MIB = 1024 * 1024;

/** What `plan` did with `--index-config`. */
interface IndexConfigCheck {
  file: string;
  /** opensearch: created a scratch index with it and deleted it; shape: read the file only. */
  checkedBy: 'opensearch' | 'shape';
  opensearch?: string;
}

export function createPlanCommand(deps: CloudDeps = {}): Command {
  const cloud = withDefaults(deps);
  return {
    spec: {
      name: 'plan',
      summary: 'print the segment plan of a table and an estimate of read units, time and cost',
      usage:
        'ddb2os plan --table TABLE [--segments N] [--concurrency N] [--read-units-per-second N] ' +
        '[--items-per-second-per-segment N] ' +
        '[--index-config FILE [--opensearch-url URL]] [--json]',
      flags: {
        table: { type: 'string', value: 'TABLE', description: 'the DynamoDB table to plan for' },
        'dynamodb-endpoint': {
          type: 'string',
          value: 'URL',
          description: 'DynamoDB endpoint (e.g. DynamoDB Local, http://127.0.0.1:8000)',
        },
        ...AWS_FLAGS,
        segments: {
          type: 'string',
          value: 'N',
          description: 'segment count to plan with (default: the planner chooses from the table size)',
        },
        concurrency: {
          type: 'string',
          value: 'N',
          description: `segments at a time, the Map's maxConcurrency (default ${DEFAULT_CONCURRENCY}, the stack's default)`,
        },
        'read-units-per-second': {
          type: 'string',
          value: 'N',
          description: 'read limit per segment in RRU/s (default: no limit)',
        },
        'items-per-second-per-segment': {
          type: 'string',
          value: 'N',
          description: `items one segment moves per second without a read limit, e.g. your table's rate in an earlier run (default ${ITEMS_PER_SECOND_PER_SEGMENT.toLocaleString('en-US')}, from the benchmark)`,
        },
        'target-segment-mib': {
          type: 'string',
          value: 'N',
          description: "table MiB per segment the planner aims for (default: the planner's, 256)",
        },
        'price-per-million-rru': {
          type: 'string',
          value: 'USD',
          description: `on-demand price of a million read request units (default ${DEFAULT_PRICE_PER_MILLION_RRU}, us-east-1)`,
        },
        ...INDEX_CONFIG_FLAGS,
        'opensearch-url': {
          type: 'string',
          value: 'URL',
          description:
            'with --index-config: the OpenSearch that checks it (default: OPENSEARCH_URL; without either, only its shape is checked)',
        },
        json: { type: 'boolean', description: 'print the plan and the estimate as one JSON object' },
      },
      details: [
        'Reads the table with DescribeTable (no Scan: nothing is read from the table) and runs the',
        "workflow's planner on its item count and size. DynamoDB updates those figures about every six",
        'hours, so a new or recently changed table may show fewer items than it holds.',
        '',
        'Read request units: an eventually consistent Scan costs 0.5 RRU per 4 KB read, so a full scan',
        'costs at least ceil(tableSizeBytes / 4096) / 2 RRU. Cost: RRU / 1,000,000 x the on-demand price.',
        'Time: with --read-units-per-second, RRU / (limit x segments at a time); without, waves x items per',
        `segment / items/s per segment: ${fmt(ITEMS_PER_SECOND_PER_SEGMENT)} by default, the benchmark's measured backfill`,
        'rate over its segments at a time (docs/benchmarks.md), or your own with --items-per-second-per-segment.',
        "The model's inputs are printed with the estimate.",
        `A backfill longer than the retention budget (${RETENTION_BUDGET_HOURS} h by default) keeps the updater paused.`,
        '',
        '--index-config FILE: the file is read and its shape checked (JSON; settings and mappings, or an index',
        'template). With --opensearch-url (or OPENSEARCH_URL), OpenSearch checks its settings and mappings too:',
        'plan creates a scratch index ddb2os-index-config-check-<random> with them, exactly as a backfill creates',
        "its index, and deletes it; a refusal is one line with OpenSearch's reason (exit 1).",
        '',
        AWS_DETAILS,
      ].join('\n'),
      examples: [
        'ddb2os plan --table orders --region eu-west-1',
        'ddb2os plan --table orders --concurrency 32 --read-units-per-second 500',
        'ddb2os plan --table orders --concurrency 32 --items-per-second-per-segment 2400',
        'ddb2os plan --table orders --segments 200 --price-per-million-rru 0.1415 --json',
        'ddb2os plan --table demo --dynamodb-endpoint http://127.0.0.1:8000',
        'ddb2os plan --table orders --index-config orders-index.json --opensearch-url https://search-x.eu-west-1.es.amazonaws.com',
      ],
    },
    run: async (args, io) => {
      const table = requiredString(args, 'table', 'plan');
      const endpoint = optionalString(args, 'dynamodb-endpoint');
      if (endpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(endpoint)) {
        throw new UsageError(`--dynamodb-endpoint "${endpoint}" is not an http(s) URL`);
      }
      const totalSegments = optionalInteger(args, 'segments', 1, 1_000_000);
      const concurrency = optionalInteger(args, 'concurrency', 1, 10_000) ?? DEFAULT_CONCURRENCY;
      const readUnitsPerSecond = optionalPositiveNumber(args, 'read-units-per-second');
      const itemsPerSecondPerSegment = optionalPositiveNumber(args, 'items-per-second-per-segment');
      const targetMib = optionalPositiveNumber(args, 'target-segment-mib');
      const price = optionalPositiveNumber(args, 'price-per-million-rru') ?? DEFAULT_PRICE_PER_MILLION_RRU;
      const indexConfigFile = optionalString(args, 'index-config');
      const indexConfig = await readIndexConfigFile(indexConfigFile);
      if (indexConfig === undefined && args.values['opensearch-url'] !== undefined) {
        throw new UsageError('--opensearch-url is used only to check --index-config: give both, or neither');
      }
      let indexConfigCheck: IndexConfigCheck | undefined;
      try {
        indexConfigCheck =
          indexConfig && indexConfigFile
            ? await checkIndexConfig(args, io, indexConfigFile, indexConfig)
            : undefined;
      } catch (error) {
        if (!(error instanceof ConfigurationError)) throw error;
        // OpenSearch's reason is in the message already: one line, without the client's wording of it.
        io.stderr.write(`ddb2os: ${error.message}\n`);
        return EXIT.failed;
      }
      // Local engines ignore the region, but the SDK wants one.
      const target = await resolveTarget(args, io, cloud, endpoint ? { fallback: 'us-east-1' } : {});
      const where = endpoint ?? target.region;

      let source: SourceTable;
      try {
        source = await describeSourceTable(
          cloud.dynamodb({ ...target, ...(endpoint ? { endpoint } : {}) }),
          table,
          { signal: io.signal, where: endpoint ? `at ${endpoint}` : `in ${target.region}` },
        );
      } catch (error) {
        if (error instanceof SourceTableError) throw error;
        throw explainAwsError(error, target);
      }
      const { itemCount, sizeBytes: tableSizeBytes, billingMode } = source;

      const targetSegmentBytes =
        targetMib === undefined ? undefined : Math.max(1, Math.round(targetMib * MIB));
      const plan = segmentPlan(source.description, { totalSegments, targetSegmentBytes, tableSizeBytes });
      const estimate = estimateBackfill({
        itemCount,
        tableSizeBytes,
        totalSegments: plan.totalSegments,
        concurrency,
        ...(readUnitsPerSecond !== undefined ? { readUnitsPerSecond } : {}),
        ...(itemsPerSecondPerSegment !== undefined ? { itemsPerSecondPerSegment } : {}),
        pricePerMillionRru: price,
      });
      // What to start the workflow with to get this plan: only what differs from the workflow's own choice.
      const startInput = {
        ...(totalSegments !== undefined || targetMib !== undefined
          ? { totalSegments: estimate.totalSegments }
          : {}),
        ...(args.values.concurrency !== undefined ? { maxConcurrency: concurrency } : {}),
        ...(readUnitsPerSecond !== undefined ? { readUnitsPerSecond } : {}),
      };

      if (args.values.json === true) {
        io.stdout.write(
          `${JSON.stringify({
            table,
            source: endpoint ? { endpoint } : { region: target.region },
            billingMode,
            itemCount,
            tableSizeBytes,
            figuresFrom:
              'DescribeTable (DynamoDB updates ItemCount and TableSizeBytes about every six hours)',
            ...(targetSegmentBytes !== undefined ? { targetSegmentBytes } : {}),
            concurrency,
            ...(readUnitsPerSecond !== undefined ? { readUnitsPerSecond } : {}),
            ...estimate,
            startInput,
            ...(indexConfigCheck ? { indexConfig: indexConfigCheck } : {}),
            warnings: plan.warnings,
          })}\n`,
        );
        return EXIT.ok;
      }
      const provisioned = billingMode === 'PROVISIONED' ? source.provisionedReadUnits : undefined;
      io.stdout.write(
        `${planText({ table, where, billingMode, itemCount, tableSizeBytes, estimate, provisioned, startInput, warnings: plan.warnings, indexConfigCheck }).join('\n')}\n`,
      );
      return EXIT.ok;
    },
  };
}

function planText(plan: {
  table: string;
  where: string;
  billingMode: string;
  itemCount: number;
  tableSizeBytes: number;
  estimate: Estimate;
  provisioned: number | undefined;
  startInput: Record<string, number>;
  warnings: string[];
  indexConfigCheck?: IndexConfigCheck;
}): string[] {
  const { estimate: e } = plan;
  const m = e.modelInputs;
  const mode = plan.billingMode === 'PAY_PER_REQUEST' ? 'on-demand' : plan.billingMode.toLowerCase();
  const row = (label: string, value: string) => `  ${label.padEnd(20)} ${value}`;
  const note = (text: string) => `  ${''.padEnd(20)} ${text}`;
  const lines = [
    `Table ${plan.table} (${plan.where}, ${mode})`,
    row('items', fmt(plan.itemCount)),
    row('size', `${formatBytes(plan.tableSizeBytes)} (${fmt(plan.tableSizeBytes)} bytes)`),
    note('from DescribeTable, which DynamoDB updates about every six hours'),
  ];
  if (plan.itemCount === 0) {
    lines.push(note('0 items: an empty table, or one created or filled in the last six hours'));
  }
  for (const warning of plan.warnings) lines.push(`  note: ${warning}`);
  lines.push(
    '',
    'Plan',
    row('segments', fmt(e.totalSegments)),
    row('per segment', `${fmt(Math.round(e.itemsPerSegment))} items, ${formatBytes(e.bytesPerSegment)}`),
    row('at a time', `${fmt(e.parallelSegments)} segment(s), ${fmt(e.waves)} wave(s)`),
    '',
    'Estimate',
    row('read request units', `${fmt(e.readRequestUnits)} for one full scan`),
    note('eventually consistent Scan: 0.5 RRU per 4 KB read = ceil(tableSizeBytes / 4096) / 2'),
    row('read cost', `${formatUsd(e.readCostUsd)} at $${e.pricePerMillionRru} per million RRU (on-demand)`),
  );
  if (plan.billingMode === 'PROVISIONED') {
    lines.push(
      note(
        `the table is provisioned${plan.provisioned !== undefined ? ` (${fmt(plan.provisioned)} RCU)` : ''}: ` +
          'it pays for capacity, not per request; keep the read rate below it',
      ),
    );
  }
  lines.push(
    row(
      'read rate',
      `${fmt(Math.round(e.readRateRruPerSecond))} RRU/s, ${fmt(Math.round(e.itemsPerSecond))} items/s`,
    ),
    row('time', `about ${duration(e.seconds)}`),
    note(
      e.basis === 'read-limit'
        ? 'at the read limit per segment x segments at a time, if the workers and the domain keep up'
        : `at ${fmt(m.itemsPerSecondPerSegment)} items/s per segment (${m.itemsPerSecondPerSegmentFrom})`,
    ),
  );
  if (e.readLimitAboveAssumedThroughput) {
    lines.push(
      note(
        `the limit allows ${fmt(Math.round(e.itemsPerSecond / e.parallelSegments))} items/s per segment, more than ` +
          `the ${fmt(m.itemsPerSecondPerSegment)} of the model: the workers or the domain may set the pace`,
      ),
    );
  }
  lines.push(note('plus a minute or two to pause the updater, plan, summarize and enable the updater'));
  if (e.exceedsRetentionBudget) {
    lines.push(
      note(
        `longer than the ${RETENTION_BUDGET_HOURS} h retention budget: the updater would stay paused; ` +
          'raise --concurrency (and --segments)',
      ),
    );
  }
  lines.push(
    '',
    'Model inputs',
    row('items', `${fmt(m.itemCount)} (DescribeTable)`),
    row('table size', `${fmt(m.tableSizeBytes)} bytes (DescribeTable)`),
    row('average item', `${fmt(Math.round(m.averageItemBytes))} bytes`),
    row('segments', `${fmt(m.totalSegments)}, ${fmt(m.parallelSegments)} at a time`),
    row(
      'items/s per segment',
      `${fmt(m.itemsPerSecondPerSegment)} (${m.itemsPerSecondPerSegmentFrom})${e.basis === 'read-limit' ? ', not used: the read limit sets the pace' : ''}`,
    ),
    row(
      'read limit',
      m.readUnitsPerSecond === undefined ? 'none' : `${fmt(m.readUnitsPerSecond)} RRU/s per segment`,
    ),
    row('price', `$${m.pricePerMillionRru} per million RRU`),
    row('formula', m.formula),
  );
  const check = plan.indexConfigCheck;
  if (check) {
    lines.push(
      '',
      'Index config',
      row('file', check.file),
      check.checkedBy === 'opensearch'
        ? row(
            'checked',
            `accepted by OpenSearch at ${check.opensearch} (a scratch index was created with it and deleted)`,
          )
        : row(
            'checked',
            'valid JSON of the right shape; give --opensearch-url to have OpenSearch check its settings and mappings',
          ),
      note('applied when ddb2os creates a missing index; an index that exists is used as it is'),
    );
  }
  const input = JSON.stringify(plan.startInput);
  lines.push('', `Start with: ddb2os start${input === '{}' ? '' : ` --input '${input}'`}`);
  return lines;
}

/** The shape was checked when the file was read; OpenSearch checks the rest when one is given. */
async function checkIndexConfig(
  args: Parameters<Command['run']>[0],
  io: CliIo,
  file: string,
  definition: IndexDefinition,
): Promise<IndexConfigCheck> {
  const url = optionalString(args, 'opensearch-url') ?? io.env.OPENSEARCH_URL;
  if (url === undefined || url.trim() === '') return { file, checkedBy: 'shape' };
  const target = openSearchFromArgs(args, io, 'plan');
  try {
    await checkDefinitionWithOpenSearch(
      target.client,
      definition,
      `ddb2os-index-config-check-${randomUUID().slice(0, 8)}`,
    );
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw explainOpenSearchError(error, target);
  } finally {
    await target.client.close();
  }
  return { file, checkedBy: 'opensearch', opensearch: target.url };
}

/**
 * The segment count the workflow's planner would choose (or `totalSegments`).
 * The planner refuses a table the workflow cannot follow (no stream): the
 * estimate still holds, so the count comes from the same rule and the reason
 * becomes a warning.
 */
function segmentPlan(
  description: unknown,
  options: { totalSegments?: number; targetSegmentBytes?: number; tableSizeBytes: number },
): { totalSegments: number; warnings: string[] } {
  const config = options.totalSegments !== undefined ? { totalSegments: options.totalSegments } : {};
  const settings = {
    // The index is checked but plays no part in the segment count.
    defaultIndex: 'plan',
    ...(options.targetSegmentBytes !== undefined ? { targetSegmentBytes: options.targetSegmentBytes } : {}),
  };
  try {
    return {
      totalSegments: planSegments({ runId: 'plan', config, table: description }, settings).totalSegments,
      warnings: [],
    };
  } catch (error) {
    if (!(error instanceof SourceTableError)) throw error;
    return {
      totalSegments:
        options.totalSegments ?? segmentCount(options.tableSizeBytes, options.targetSegmentBytes),
      warnings: [`${error.message} (the workflow refuses the table until then)`],
    };
  }
}

export const planCommand = createPlanCommand();
