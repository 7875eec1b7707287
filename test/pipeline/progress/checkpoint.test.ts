import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointResult,
  decodeKey,
  encodeKey,
  ensureProgressTable,
  SegmentCheckpointStore,
} from '../../../pipeline/progress/checkpoint';
import { deleteTable, uniqueName, useEngines } from '../../support/engines';

const engines = useEngines();
const { dynamodb } = engines;
let store: SegmentCheckpointStore;

beforeAll(async () => {
  const name = uniqueName('progress');
  await ensureProgressTable(dynamodb, name);
  store = new SegmentCheckpointStore(dynamodb, name);
});

afterAll(async () => {
  await deleteTable(dynamodb, store.tableName);
});

const target = (runId: string, segment = 0) => ({ runId, segment, totalSegments: 4 });

describe('SegmentCheckpointStore', () => {
  it('stores a binary, numeric and string key exactly as DynamoDB gave it', async () => {
    // Prepare
    const key = {
      pk: { B: Uint8Array.from([0, 1, 254, 255, 10, 13]) },
      sk: { N: '-12345678901234567890.000000000000000001' },
      gsi: { S: 'ünïcode "quoted" \n line' },
    };
    const runId = uniqueName('run');
    const claimed = await store.claim(target(runId), 'owner-a');

    // Act
    await store.save(claimed, { ...claimed, lastEvaluatedKey: key, pages: 3 });
    const loaded = await store.get(runId, 0);

    // Assess
    expect(loaded?.lastEvaluatedKey).toEqual(key);
    expect(decodeKey(encodeKey(key))).toEqual(key);
    expect(encodeKey({ pk: { B: Uint8Array.from([255]) } })).toBe('{"pk":{"B":"/w=="}}');
  });

  it('lets a newer claim take a segment over, and stops the older owner at its next write', async () => {
    // Prepare
    const runId = uniqueName('run');
    const first = await store.claim(target(runId), 'owner-a');

    // Act
    const second = await store.claim(target(runId), 'owner-b');
    const stale = store.save(first, { ...first, pages: 1 });

    // Assess
    await expect(stale).rejects.toMatchObject({ name: 'CheckpointConflictError' });
    expect(second).toMatchObject({ leaseOwner: 'owner-b', version: first.version + 1 });
    expect(await store.get(runId, 0)).toMatchObject({ leaseOwner: 'owner-b', pages: 0 });
  });

  it('leaves exactly one owner able to write when two invocations claim a segment at once', async () => {
    // Prepare
    const runId = uniqueName('run');

    // Act: both claim; then each owner that got a claim tries to save its first page
    const claims = await Promise.allSettled([
      store.claim(target(runId), 'owner-a'),
      store.claim(target(runId), 'owner-b'),
    ]);
    const saves = await Promise.allSettled(
      claims
        .filter((claim) => claim.status === 'fulfilled')
        .map((claim) => store.save(claim.value, { ...claim.value, pages: 1 })),
    );

    // Assess
    const failures = [...claims, ...saves].filter((result) => result.status === 'rejected');
    expect(failures).toHaveLength(1);
    expect((failures[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'CheckpointConflictError' });
    expect(await store.get(runId, 0)).toMatchObject({ pages: 1 });
  });

  it('hands a completed checkpoint back unchanged instead of claiming it', async () => {
    // Prepare
    const runId = uniqueName('run');
    const claimed = await store.claim(target(runId), 'owner-a');
    const counts = { scanned: 10, created: 7, alreadyPresent: 2, failed: 1, skipped: 0, retried: 3 };
    const done = await store.save(claimed, {
      ...claimed,
      status: 'COMPLETED',
      counts,
      pages: 2,
      completedAt: new Date(Date.parse(claimed.startedAt) + 1_500).toISOString(),
    });

    // Act
    const again = await store.claim(target(runId), 'owner-b');

    // Assess
    expect(again).toEqual(done);
    expect(checkpointResult(again)).toEqual({
      segment: 0,
      totalSegments: 4,
      ...counts,
      pages: 2,
      durationMs: 1_500,
    });
  });

  it('refuses a message whose segment count differs from the checkpoint', async () => {
    // Prepare
    const runId = uniqueName('run');
    await store.claim(target(runId), 'owner-a');

    // Act
    const claim = store.claim({ runId, segment: 0, totalSegments: 8 }, 'owner-b');

    // Assess
    await expect(claim).rejects.toThrow(
      `segment 0 of run ${runId} was checkpointed as one of 4 segments, but the message says 8`,
    );
  });

  it('marks a failure, which a later claim clears, and lists a run in segment order', async () => {
    // Prepare
    const runId = uniqueName('run');
    for (const segment of [2, 0, 3, 1]) await store.claim(target(runId, segment), 'owner-a');
    const one = (await store.get(runId, 1))!;

    // Act
    await store.fail(one, 'OpenSearch at http://x could not take a bulk request');
    const failed = await store.get(runId, 1);
    await store.claim(target(runId, 1), 'owner-b');
    const listed = await store.listCheckpoints(runId);

    // Assess
    expect(failed).toMatchObject({
      status: 'FAILED',
      error: 'OpenSearch at http://x could not take a bulk request',
    });
    expect(listed.map((checkpoint) => checkpoint.segment)).toEqual([0, 1, 2, 3]);
    expect(listed[1]).toMatchObject({ status: 'IN_PROGRESS', leaseOwner: 'owner-b' });
    expect(listed[1]?.error).toBeUndefined();
  });

  it('creates the progress table once and accepts an existing one', async () => {
    // Act
    await ensureProgressTable(dynamodb, store.tableName);

    // Assess
    expect(await store.listCheckpoints(uniqueName('nothing'))).toEqual([]);
  });
});
