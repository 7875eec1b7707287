import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldConflictCount } from '../../../pipeline/bulk/field-conflicts';
import type { SegmentCheckpointStore } from '../../../pipeline/progress/checkpoint';
import { readSummarizeInput, summarizeRun } from '../../../pipeline/summarize/summarize-run';
import { progressStore } from '../../support/backfill-fixtures';
import { deleteTable, uniqueName, useEngines } from '../../support/engines';

const engines = useEngines();
const { dynamodb } = engines;
let checkpoints: SegmentCheckpointStore;

beforeAll(async () => {
  checkpoints = await progressStore(dynamodb);
});

afterAll(async () => {
  await deleteTable(dynamodb, checkpoints.tableName);
});

/** Completes a segment's checkpoint with the given counts. */
async function complete(
  runId: string,
  segment: number,
  totalSegments: number,
  scanned: number,
  fieldConflicts?: FieldConflictCount[],
) {
  const claimed = await checkpoints.claim({ runId, segment, totalSegments }, 'test');
  const counts = { scanned, created: scanned - 3, alreadyPresent: 1, failed: 1, skipped: 1, retried: 2 };
  await checkpoints.save(claimed, {
    ...claimed,
    status: 'COMPLETED',
    counts,
    ...(fieldConflicts ? { fieldConflicts } : {}),
    completedAt: new Date().toISOString(),
  });
}

describe('summarizeRun', () => {
  it('adds up every segment of the run and measures it from the plan', async () => {
    // Prepare
    const runId = uniqueName('run');
    for (let segment = 0; segment < 5; segment++) await complete(runId, segment, 5, 100 + segment);
    await complete(uniqueName('other-run'), 0, 1, 999);

    // Act
    const summary = await summarizeRun(
      { runId, totalSegments: 5, startedAt: '2025-06-01T10:00:00.000Z', retentionBudgetHours: 23 },
      { checkpoints, now: () => new Date('2025-06-01T11:30:00.000Z') },
    );

    // Assess
    expect(summary).toEqual({
      runId,
      segments: 5,
      segmentsCompleted: 5,
      scanned: 510,
      created: 495,
      alreadyPresent: 5,
      failed: 5,
      skipped: 5,
      retried: 10,
      fieldConflicts: [],
      durationSeconds: 5_400,
      durationHours: 1.5,
      // Without a measured backlog the retention clock starts at the plan.
      oldestUnappliedAt: '2025-06-01T10:00:00.000Z',
      unappliedHours: 1.5,
      drainMarginHours: 0.4,
      retentionHours: 1.9,
    });
    expect(summary.scanned).toBe(summary.created + summary.alreadyPresent + summary.failed + summary.skipped);
  });

  it('weighs the retention budget from the oldest change the updater had not applied when it was paused', async () => {
    // Prepare: the updater lagged 4 hours behind when the run paused it at 10:00.
    const runId = uniqueName('run');
    await complete(runId, 0, 1, 10);

    // Act
    const summary = await summarizeRun(
      {
        runId,
        totalSegments: 1,
        startedAt: '2025-06-01T10:00:00.000Z',
        oldestUnappliedAt: '2025-06-01T06:00:00.000Z',
      },
      { checkpoints, now: () => new Date('2025-06-01T11:00:00.000Z') },
    );

    // Assess
    expect(summary).toMatchObject({
      durationHours: 1,
      oldestUnappliedAt: '2025-06-01T06:00:00.000Z',
      unappliedHours: 5,
      drainMarginHours: 0.75,
      retentionHours: 5.75,
    });
  });

  it('lists each field whose type did not fit once, with its items over every segment and the fix', async () => {
    // Prepare: two segments met the same field (a string in one, a number in the other), one another field.
    const runId = uniqueName('run');
    const e = { index: 'books', field: 'e', indexType: 'object' };
    await complete(runId, 0, 2, 10, [{ ...e, itemTypes: ['a string'], items: 1 }]);
    await complete(runId, 1, 2, 10, [
      { ...e, itemTypes: ['a number'], items: 2 },
      { index: 'books', field: 'sku', indexType: 'keyword', itemTypes: ['an object'], items: 1 },
    ]);

    // Act
    const summary = await summarizeRun(
      { runId, totalSegments: 2, startedAt: new Date().toISOString() },
      { checkpoints },
    );

    // Assess
    expect(summary.fieldConflicts).toEqual([
      {
        ...e,
        itemTypes: ['a string', 'a number'],
        items: 3,
        fix: 'map it explicitly in the index definition, e.g. "e": {"type": "object", "enabled": false} (every value kept, none searchable)',
      },
      {
        index: 'books',
        field: 'sku',
        indexType: 'keyword',
        itemTypes: ['an object'],
        items: 1,
        fix: 'set "index.mapping.ignore_malformed": true in the index definition (the value is kept, not indexed), or map it as "sku": {"type": "object", "enabled": false} (every value kept, none searchable)',
      },
    ]);
  });

  it('refuses to summarize a run with a segment that never completed', async () => {
    // Prepare
    const runId = uniqueName('run');
    await complete(runId, 0, 3, 10);
    await checkpoints.claim({ runId, segment: 2, totalSegments: 3 }, 'test');

    // Act
    const summary = summarizeRun(
      { runId, totalSegments: 3, startedAt: new Date().toISOString() },
      { checkpoints },
    );

    // Assess
    await expect(summary).rejects.toThrow(
      `run ${runId} has 1 of 3 segments completed; segments 1, 2 have no completed checkpoint, so the backfill is not complete`,
    );
  });

  it('reads the { config, plan } form as well as the flat one', () => {
    expect(
      readSummarizeInput({
        config: { index: 'from-config' },
        plan: { runId: 'r', totalSegments: 4, startedAt: '2025-06-01T10:00:00.000Z', index: 'from-plan' },
      }),
    ).toEqual({ runId: 'r', totalSegments: 4, startedAt: '2025-06-01T10:00:00.000Z', index: 'from-plan' });
    expect(() => readSummarizeInput({ startedAt: '2025-06-01T10:00:00.000Z' })).toThrow(
      'the summarize input has no runId (a non-empty string)',
    );
  });
});
