/**
 * The estimate `ddb2os plan` prints: read request units of a full scan, the
 * on-demand cost, and the time at a given read rate or at an assumed
 * per-segment throughput. Plain arithmetic on DescribeTable's figures.
 */
import { retentionNeed } from '../pipeline/summarize/retention-clock';

/**
 * Items one segment scans and bulk-creates per second when no read limit is
 * set and the user gives no figure of their own: the benchmark's measured
 * backfill rate over its segments at a time (`npm run bench` prints it as
 * `model.measuredItemsPerSecondPerSegment`). From the quiet runs recorded in
 * docs/benchmarks.md (2026-12-01, 100,000 items of about 1 KiB, 4 segments
 * at a time): 1,630, 1,251 and 1,315 items/s per segment; their median,
 * 1,315. There one OpenSearch node on one CPU set the pace, so it is a
 * cautious figure for a domain that keeps up; a table's own rate
 * (`--items-per-second-per-segment`) is better.
 */
export const ITEMS_PER_SECOND_PER_SEGMENT = 1_315;

/** Where the model's items/s per segment came from, as `plan` prints it. */
export const ITEMS_PER_SECOND_SOURCES = {
  benchmark: 'the benchmark (docs/benchmarks.md)',
  given: 'given (--items-per-second-per-segment)',
} as const;

/** On-demand price of one million read request units in us-east-1 (USD). */
export const DEFAULT_PRICE_PER_MILLION_RRU = 0.125;

/** Segments processed at once when none is given: the stack's default maxConcurrency. */
export const DEFAULT_CONCURRENCY = 10;

/** The stack's default retention budget: a backfill that runs longer keeps the updater paused. */
export const RETENTION_BUDGET_HOURS = 20;

/** Bytes one read request unit covers (eventually consistent reads cost half a unit each). */
export const READ_UNIT_BYTES = 4_096;

export interface EstimateInput {
  itemCount: number;
  tableSizeBytes: number;
  totalSegments: number;
  /** Segments at a time (the Map's maxConcurrency). */
  concurrency: number;
  /** Read limit per segment (RRU/s); absent: the assumed throughput sets the pace. */
  readUnitsPerSecond?: number;
  pricePerMillionRru: number;
  /** Items per second per segment when no read limit is set. @default ITEMS_PER_SECOND_PER_SEGMENT */
  itemsPerSecondPerSegment?: number;
}

/** The figures the time estimate is computed from, as `plan` prints them. */
export interface ModelInputs {
  itemCount: number;
  tableSizeBytes: number;
  averageItemBytes: number;
  totalSegments: number;
  parallelSegments: number;
  /** Items/s one segment moves when no read limit sets the pace. */
  itemsPerSecondPerSegment: number;
  itemsPerSecondPerSegmentFrom: (typeof ITEMS_PER_SECOND_SOURCES)[keyof typeof ITEMS_PER_SECOND_SOURCES];
  /** Read limit per segment (RRU/s), when one is set. */
  readUnitsPerSecond?: number;
  pricePerMillionRru: number;
  /** seconds = waves × items per segment ÷ items/s per segment, or RRU ÷ (read limit × segments at a time). */
  formula: string;
}

export interface Estimate {
  totalSegments: number;
  itemsPerSegment: number;
  bytesPerSegment: number;
  averageItemBytes: number;
  /** RRU of one full eventually consistent scan: ceil(bytes / 4096) / 2. */
  readRequestUnits: number;
  pricePerMillionRru: number;
  /** On-demand cost of the reads, USD. */
  readCostUsd: number;
  /** Segments that actually run at once: min(concurrency, segments). */
  parallelSegments: number;
  /** Rounds of `parallelSegments` segments. */
  waves: number;
  /** What sets the pace. */
  basis: 'read-limit' | 'assumed-throughput';
  /** Table read rate while segments run in parallel (RRU/s). */
  readRateRruPerSecond: number;
  itemsPerSecond: number;
  seconds: number;
  /**
   * With a read limit: true when the limit allows more items per second per segment than the
   * assumed throughput, so the workers or the domain, not the limit, may set the pace.
   */
  readLimitAboveAssumedThroughput: boolean;
  /** True when the estimate and the updater's drain run past the retention budget (the updater would stay paused). */
  exceedsRetentionBudget: boolean;
  /** The figures the estimate rests on, in words. */
  assumptions: string[];
  /** The figures the time estimate is computed from. */
  modelInputs: ModelInputs;
}

/** Read request units of a full eventually consistent Scan: 0.5 RRU per 4 KB read. */
export function readRequestUnitsForScan(bytes: number): number {
  return Math.ceil(bytes / READ_UNIT_BYTES) / 2;
}

export function estimateBackfill(input: EstimateInput): Estimate {
  const segments = Math.max(1, input.totalSegments);
  const itemsPerSegment = input.itemCount / segments;
  const bytesPerSegment = input.tableSizeBytes / segments;
  const averageItemBytes = input.itemCount > 0 ? input.tableSizeBytes / input.itemCount : 0;
  const readRequestUnits = readRequestUnitsForScan(input.tableSizeBytes);
  const parallelSegments = Math.min(Math.max(1, input.concurrency), segments);
  const waves = Math.ceil(segments / parallelSegments);
  // Half a unit per 4 KB: one RRU reads 8 KB eventually consistently.
  const rruPerItem = averageItemBytes / (2 * READ_UNIT_BYTES);
  const assumptions = [
    `read request units: eventually consistent Scan, 0.5 RRU per 4 KB read = ceil(tableSizeBytes / 4096) / 2 ` +
      `(at least; each Scan page rounds up to the next 4 KB)`,
    `cost: $${input.pricePerMillionRru} per million read request units (on-demand; --price-per-million-rru; ` +
      'default: us-east-1 on-demand). Provisioned tables pay for capacity instead.',
    `${parallelSegments} segment(s) at a time (of ${segments}), so ${waves} wave(s)`,
    'item count and size: DescribeTable, which DynamoDB updates about every six hours',
  ];

  let readRateRruPerSecond: number;
  let itemsPerSecond: number;
  let seconds: number;
  let basis: Estimate['basis'];
  let readLimitAboveAssumedThroughput = false;
  const assumedPerSegment = input.itemsPerSecondPerSegment ?? ITEMS_PER_SECOND_PER_SEGMENT;
  const perSegmentFrom =
    input.itemsPerSecondPerSegment === undefined
      ? ITEMS_PER_SECOND_SOURCES.benchmark
      : ITEMS_PER_SECOND_SOURCES.given;
  if (input.readUnitsPerSecond !== undefined) {
    basis = 'read-limit';
    readRateRruPerSecond = input.readUnitsPerSecond * parallelSegments;
    itemsPerSecond = rruPerItem > 0 ? readRateRruPerSecond / rruPerItem : 0;
    seconds = readRateRruPerSecond > 0 ? readRequestUnits / readRateRruPerSecond : 0;
    readLimitAboveAssumedThroughput = itemsPerSecond / parallelSegments > assumedPerSegment;
    assumptions.push(
      `time: ${input.readUnitsPerSecond} RRU/s per segment x ${parallelSegments} segment(s) = ` +
        `${readRateRruPerSecond} RRU/s on the table, if the workers and the domain keep up with it`,
    );
    if (readLimitAboveAssumedThroughput) {
      assumptions.push(
        `the read limit allows about ${Math.round(itemsPerSecond / parallelSegments).toLocaleString('en-US')} ` +
          `items/s per segment, more than the assumed ${assumedPerSegment.toLocaleString('en-US')}: ` +
          'the workers or the domain may set the pace, not the limit',
      );
    }
  } else {
    basis = 'assumed-throughput';
    itemsPerSecond = assumedPerSegment * parallelSegments;
    readRateRruPerSecond = itemsPerSecond * rruPerItem;
    seconds = waves * (itemsPerSegment / assumedPerSegment);
    assumptions.push(
      `time: ${assumedPerSegment.toLocaleString('en-US')} items/s per segment, from ${perSegmentFrom}, ` +
        'no read limit; set --read-units-per-second to plan at a read rate',
    );
  }
  assumptions.push('plus a minute or two to pause the updater, plan, summarize and enable the updater');

  return {
    totalSegments: segments,
    itemsPerSegment,
    bytesPerSegment,
    averageItemBytes,
    readRequestUnits,
    pricePerMillionRru: input.pricePerMillionRru,
    readCostUsd: (readRequestUnits / 1_000_000) * input.pricePerMillionRru,
    parallelSegments,
    waves,
    basis,
    readRateRruPerSecond,
    itemsPerSecond,
    seconds,
    readLimitAboveAssumedThroughput,
    // The guard's rule (retention-clock.ts) for a run that starts with the updater up to date.
    exceedsRetentionBudget:
      retentionNeed(new Date(0).toISOString(), new Date(seconds * 1000)).retentionHours >
      RETENTION_BUDGET_HOURS,
    assumptions,
    modelInputs: {
      itemCount: input.itemCount,
      tableSizeBytes: input.tableSizeBytes,
      averageItemBytes,
      totalSegments: segments,
      parallelSegments,
      itemsPerSecondPerSegment: assumedPerSegment,
      itemsPerSecondPerSegmentFrom: perSegmentFrom,
      ...(input.readUnitsPerSecond !== undefined ? { readUnitsPerSecond: input.readUnitsPerSecond } : {}),
      pricePerMillionRru: input.pricePerMillionRru,
      formula:
        basis === 'read-limit'
          ? 'seconds = read request units / (read limit per segment x segments at a time)'
          : 'seconds = waves x (items per segment / items/s per segment)',
    },
  };
}

/** `9.8 GiB`, `245.0 MiB`, `5,040 B`. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  if (bytes < 1024) return `${Math.round(bytes).toLocaleString('en-US')} B`;
  let value = bytes;
  let unit = 'B';
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toFixed(1)} ${unit}`;
}

/** `$0.16`, `$1,234.50`, or `under $0.01` (the JSON keeps the exact figure). */
export function formatUsd(amount: number): string {
  if (amount === 0) return '$0.00';
  if (amount < 0.01) return 'under $0.01';
  return `$${amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
