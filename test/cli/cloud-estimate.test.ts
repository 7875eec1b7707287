import { describe, expect, it } from 'vitest';
import { estimateBackfill, formatBytes, readRequestUnitsForScan } from '../../cli/estimate';

describe('the plan estimate (arithmetic)', () => {
  it('counts 0.5 read request units per 4 KB of an eventually consistent scan', () => {
    expect(readRequestUnitsForScan(0)).toBe(0);
    expect(readRequestUnitsForScan(1)).toBe(0.5);
    expect(readRequestUnitsForScan(4096)).toBe(0.5);
    expect(readRequestUnitsForScan(4097)).toBe(1);
    // 100 GiB: 26,214,400 reads of 4 KB, 13,107,200 RRU, $1.64 at $0.125 per million.
    expect(readRequestUnitsForScan(100 * 1024 ** 3)).toBe(13_107_200);
  });

  it('estimates a 100 GiB table of 1 KiB items at the assumed throughput, in waves', () => {
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
    // 10 waves x 262,144 items / 1,500 items/s.
    expect(estimate.seconds).toBeCloseTo((10 * 262_144) / 1500, 6);
    expect(estimate.itemsPerSecond).toBe(60_000);
    expect(estimate.readRateRruPerSecond).toBeCloseTo(60_000 / 8, 6);
    expect(estimate.exceedsRetentionBudget).toBe(false);
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
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(5_040)).toBe('4.9 KiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(256 * 1024 * 1024)).toBe('256.0 MiB');
  });
});
