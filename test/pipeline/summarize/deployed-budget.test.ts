import { describe, expect, it } from 'vitest';
import { deployedBudgetHours, type SourceRetention } from '../../../pipeline/summarize/source-retention';

const keeping = (retentionHours: number, budgetHours: number): SourceRetention => ({
  kind: 'sqs',
  retentionHours,
  reported: true,
  budgetHours,
});

describe('deployedBudgetHours', () => {
  it("keeps the deployment's budget when the source keeps more", () => {
    // A Kinesis stream of 7 days: the deployment's 20 hours stand (its updaterMaxRecordAge is 22 hours).
    expect(deployedBudgetHours(20, keeping(168, 140))).toBe(20);
  });

  it("lowers it to the source's budget when the source keeps less", () => {
    // A queue that keeps 12 hours cannot wait out a 20-hour backfill.
    expect(deployedBudgetHours(20, keeping(12, 10))).toBe(10);
  });

  it("takes the source's budget when the deployment gives none", () => {
    expect(deployedBudgetHours(null, keeping(96, 80))).toBe(80);
  });
});
