import { describe, expect, it } from 'vitest';
import {
  estimateBackfill,
  formatBytes,
  ITEMS_PER_SECOND_PER_SEGMENT,
  readRequestUnitsForScan,
} from '../../cli/estimate';

describe('the plan estimate (arithmetic)', () => {
  it('counts 0.5 read request units per 4 KB of an eventually consistent scan', () => {
    expect(readRequestUnitsForScan(0)).toBe(0);
    expect(readRequestUnitsForScan(1)).toBe(0.5);
    expect(readRequestUnitsForScan(4096)).toBe(0.5);
    expect(readRequestUnitsForScan(4097)).toBe(1);
    // 100 GiB: 26,214,400 reads of 4 KB, 13,107,200 RRU, $1.64 at $0.125 per million.
    expect(readRequestUnitsForScan(100 * 1024 ** 3)).toBe(13_107_200);
  });

  it("estimates a 100 GiB table of 1 KiB items at the benchmark's items/s per segment, in waves", () => {
    const estimate = estimateBackfill({
      itemCount: 104_857_600,
      tableSizeBytes: 100 * 1024 ** 3,
      totalSegments: 400,
      concurrency: 40,
      pricePerMillionRru: 0.125,
    });

    expect(estimate.readCostUsd).toBeCloseTo(1.6384, 6);
    expect(estimate.waves).toBe(10);
    expect(estimate.itemsPerSegment).toBe(262_144);
    // The benchmark's figure: the median of the quiet runs' items/s per segment (docs/benchmarks.md).
    expect(ITEMS_PER_SECOND_PER_SEGMENT).toBe(1_315);
    // 10 waves x 262,144 items / 1,315 items/s.
    expect(estimate.seconds).toBeCloseTo((10 * 262_144) / 1_315, 6);
    expect(estimate.itemsPerSecond).toBe(52_600);
    expect(estimate.readRateRruPerSecond).toBeCloseTo(52_600 / 8, 6);
    expect(estimate.exceedsRetentionBudget).toBe(false);
    expect(estimate.modelInputs).toEqual({
      itemCount: 104_857_600,
      tableSizeBytes: 100 * 1024 ** 3,
      averageItemBytes: 1024,
      totalSegments: 400,
      parallelSegments: 40,
      itemsPerSecondPerSegment: 1_315,
      itemsPerSecondPerSegmentFrom: 'the benchmark (docs/benchmarks.md)',
      pricePerMillionRru: 0.125,
      formula: 'seconds = waves x (items per segment / items/s per segment)',
    });
  });

  it("takes the table's own items/s per segment when it is given, and says so", () => {
    // The benchmark's own table: 100,000 items of about 1.4 KiB, 4 segments, 4 at a time.
    const estimate = estimateBackfill({
      itemCount: 100_000,
      tableSizeBytes: 140_000_000,
      totalSegments: 4,
      concurrency: 4,
      pricePerMillionRru: 0.125,
      itemsPerSecondPerSegment: 500,
    });

    // One wave of 25,000 items per segment at 500 items/s: 50 s; 2,000 items/s in all.
    expect(estimate.seconds).toBeCloseTo(50, 6);
    expect(estimate.itemsPerSecond).toBe(2_000);
    expect(estimate.modelInputs.itemsPerSecondPerSegment).toBe(500);
    expect(estimate.modelInputs.itemsPerSecondPerSegmentFrom).toBe('given (--items-per-second-per-segment)');
    expect(estimate.assumptions).toContain(
      'time: 500 items/s per segment, from given (--items-per-second-per-segment), no read limit; set --read-units-per-second to plan at a read rate',
    );
  });

  it('flags a backfill that would outlast the retention budget', () => {
    const estimate = estimateBackfill({
      itemCount: 4_000_000_000,
      tableSizeBytes: 1024 ** 4,
      totalSegments: 4000,
      concurrency: 10,
      pricePerMillionRru: 0.125,
    });

    expect(estimate.exceedsRetentionBudget).toBe(true);
  });

  it('says when a read limit allows more than the assumed throughput per segment', () => {
    const estimate = estimateBackfill({
      itemCount: 1_048_576,
      tableSizeBytes: 1024 ** 3,
      totalSegments: 4,
      concurrency: 4,
      readUnitsPerSecond: 500,
      pricePerMillionRru: 0.125,
    });

    // 1 KiB items: one RRU reads 8 items, so 500 RRU/s is 4,000 items/s per segment.
    expect(estimate.basis).toBe('read-limit');
    expect(estimate.itemsPerSecond).toBeCloseTo(16_000, 6);
    expect(estimate.seconds).toBeCloseTo(131_072 / 2_000, 6);
    expect(estimate.readLimitAboveAssumedThroughput).toBe(true);
    expect(estimate.modelInputs).toMatchObject({
      readUnitsPerSecond: 500,
      formula: 'seconds = read request units / (read limit per segment x segments at a time)',
    });
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(5_040)).toBe('4.9 KiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(256 * 1024 * 1024)).toBe('256.0 MiB');
  });
});
