/**
 * A resync run locally through the workflow definition in mode "resync"
 * (statemachines/backfill.asl.json), against the real DynamoDB Local and
 * OpenSearch, with the local updater running the whole time. Faults are
 * injected only at the "Process segment" boundary, where SQS and a Lambda
 * stand in the cloud.
 */
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { describe, expect, it } from 'vitest';
import { type BackfillEvent, createLocalUpdater, runLocalBackfill } from '../../local/backfill';
import { abortLocalResync, type LocalResyncOptions, runLocalResync } from '../../local/resync';
import { WorkflowFailedError } from '../../local/workflow';
import { SinkUnavailableError } from '../../pipeline/errors';
import { describeServingName } from '../../pipeline/index/alias';
import { readIndexDefinition } from '../../pipeline/index/index-definition';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import { readRunLock } from '../../pipeline/progress/run-lock';
import { readResyncState } from '../../pipeline/resync/resync-state';
import { countTombstones, TOMBSTONE_FIELD } from '../../pipeline/resync/tombstones';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { verifyIndex } from '../../pipeline/verify/verify';
import { seedItems } from '../support/backfill-fixtures';
import { useEngines } from '../support/engines';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

function key(i: number): Item {
  return { pk: { S: `user#${i % 50}` }, sk: { N: String(i) } };
}

function item(i: number): Item {
  return { ...key(i), name: { S: `item ${i}` }, amount: { N: `${i}.25` } };
}

async function exists(opensearch: Client, index: string): Promise<boolean> {
  return (await opensearch.indices.exists({ index })).body === true;
}

async function count(opensearch: Client, index: string): Promise<number> {
  await opensearch.indices.refresh({ index });
  return (await opensearch.count({ index })).body.count;
}

describe('a resync, run locally through the workflow definition', () => {
  const engines = useEngines();
  const { dynamodb, streams, opensearch } = engines;
  const progressTable = engines.tableName('progress');

  /** A table of `items` items backfilled into a plain index of the same name as the serving name. */
  async function backfilled(items: number) {
    const table = await engines.createTable('resync', {
      keySchema,
      sortKeyType: 'N',
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = engines.indexName('resync-index');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: items }, (_, i) => item(i)),
    );
    const mapping: MappingConfig = { index };
    const clients = { dynamodb, streams, opensearch, progressTable, table, index, mapping };
    await runLocalBackfill({ ...clients, restart: true, input: { totalSegments: 2 } });
    return clients;
  }

  async function resync(target: Awaited<ReturnType<typeof backfilled>>, more: Partial<LocalResyncOptions>) {
    const result = await runLocalResync({ ...target, input: { totalSegments: 3 }, ...more });
    engines.deleteIndexAfter(...Object.values(result.targets));
    return result;
  }

  /** A resync of `target` whose segments all fail (OpenSearch away): its state and new index stay. */
  async function failedResync(target: Awaited<ReturnType<typeof backfilled>>) {
    await runLocalResync({
      ...target,
      input: { totalSegments: 2 },
      segmentRetryIntervalMs: 10,
      beforeSegmentAttempt: () => {
        throw new SinkUnavailableError('OpenSearch did not answer');
      },
    }).catch(() => undefined);
    return readResyncState(dynamodb, progressTable, target.table);
  }

  async function matchesTable(target: { table: string; mapping: MappingConfig }) {
    const report = await verifyIndex({
      dynamodb,
      opensearch,
      table: { name: target.table, keySchema, keyTypes: { pk: 'S', sk: 'N' } },
      mapping: target.mapping,
    });
    const counts = { missing: report.missing, extra: report.extra, differing: report.differing };
    // What drifted, next to the failed comparison of the counts.
    if (counts.missing + counts.extra + counts.differing > 0) console.error(JSON.stringify(report.examples));
    return counts;
  }

  it('moves the plain index behind an alias on a new index equal to the table, while a writer changes it', async () => {
    const target = await backfilled(300);
    let stop = false;
    let writes = 0;
    // Puts, updates and deletes on the table while the resync runs (the updater writes them to both
    // indices), a bounded number: an unbounded writer outruns the follower on a loaded machine.
    const writer = (async () => {
      for (let i = 0; !stop && i < 300; i += 1) {
        const n = (i * 7) % 300;
        if (i % 3 === 0) {
          await dynamodb.send(
            new UpdateItemCommand({
              TableName: target.table,
              Key: key(n),
              UpdateExpression: 'SET amount = :a',
              ExpressionAttributeValues: { ':a': { N: `${i}.5` } },
            }),
          );
        } else if (i % 3 === 1) {
          await dynamodb.send(new DeleteItemCommand({ TableName: target.table, Key: key(n) }));
        } else {
          await dynamodb.send(new PutItemCommand({ TableName: target.table, Item: item(1_000 + i) }));
        }
        writes += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const result = await resync(target, {}).finally(() => {
      stop = true;
    });
    await writer;

    const next = result.targets[target.index] as string;
    expect(next).toBe(`${target.index}-${result.runId}`);
    expect(result.swaps).toEqual([
      { alias: target.index, index: next, previousIndices: [], removedPlainIndex: true },
    ]);
    expect(await describeServingName(opensearch, target.index)).toEqual({ kind: 'alias', indices: [next] });
    expect(result.summary.segments).toBe(3);
    expect(result.summary.created + result.summary.alreadyPresent).toBe(result.summary.scanned);
    expect(await countTombstones(opensearch, next, result.runId)).toBe(0);
    expect(await readResyncState(dynamodb, progressTable, target.table)).toBeUndefined();
    expect(writes).toBeGreaterThan(0);
    // The writes after the swap reach the alias once the updater applies them (the caller's follower).
    const updater = await createLocalUpdater({ ...target, keySchema, progressTable });
    await updater.drain();
    expect(await matchesTable(target)).toEqual({ missing: 0, extra: 0, differing: 0 });
  });

  it('deletes the index the alias left, or keeps it with keepOld', async () => {
    const target = await backfilled(200);
    const first = await resync(target, {});
    const firstIndex = first.targets[target.index] as string;

    const second = await resync(target, {});
    const secondIndex = second.targets[target.index] as string;

    expect(second.deletedIndices).toEqual([firstIndex]);
    expect(await exists(opensearch, firstIndex)).toBe(false);
    expect(await describeServingName(opensearch, target.index)).toEqual({
      kind: 'alias',
      indices: [secondIndex],
    });
    expect(await count(opensearch, target.index)).toBe(200);

    const third = await resync(target, { keepOld: true });

    expect(third.deletedIndices).toEqual([]);
    expect(await exists(opensearch, secondIndex)).toBe(true);
    expect(await count(opensearch, secondIndex)).toBe(200);
    expect(await describeServingName(opensearch, target.index)).toEqual({
      kind: 'alias',
      indices: [third.targets[target.index] as string],
    });
    expect(await matchesTable(target)).toEqual({ missing: 0, extra: 0, differing: 0 });
  });

  it("creates the new index with the run's index definition and the tombstone field, without a not-applied warning", async () => {
    const target = await backfilled(50);
    const events: BackfillEvent[] = [];

    const result = await resync(target, {
      indexConfig: readIndexDefinition(
        { mappings: { properties: { name: { type: 'keyword' } } } },
        'index config file orders.json',
      ),
      onEvent: (event) => events.push(event),
    });

    const next = result.targets[target.index] as string;
    const { body } = await opensearch.indices.getMapping({ index: next });
    expect(body[next]?.mappings.properties).toMatchObject({
      name: { type: 'keyword' },
      [TOMBSTONE_FIELD]: { type: 'keyword' },
    });
    expect(events.filter((event) => event.type === 'warning')).toEqual([]);
    expect(await count(opensearch, target.index)).toBe(50);
  });

  it('leaves the serving index in place when a segment fails for good, and a rerun resumes the same resync', async () => {
    const target = await backfilled(240);
    const attempts: number[] = [];

    const error = await runLocalResync({
      ...target,
      input: { totalSegments: 3 },
      segmentRetryIntervalMs: 10,
      beforeSegmentAttempt: (segment, attempt) => {
        if (segment !== 1) return;
        attempts.push(attempt);
        throw new SinkUnavailableError('OpenSearch at http://127.0.0.1:1 did not answer after 8 attempts');
      },
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).error).toBe('SinkUnavailableError');
    expect(attempts).toEqual([1, 2, 3, 4]);
    const state = await readResyncState(dynamodb, progressTable, target.table);
    expect(state?.phase).toBe('FILLING');
    const next = state?.targets[target.index] as string;
    engines.deleteIndexAfter(next);
    // Search still reads the old index, whole: the half-filled one is not served.
    expect(await describeServingName(opensearch, target.index)).toEqual({ kind: 'index' });
    expect(await count(opensearch, target.index)).toBe(240);

    const rerun = await resync(target, {});

    expect(rerun.runId).toBe(state?.runId);
    expect(rerun.targets).toEqual(state?.targets);
    expect(rerun.summary.segments).toBe(3);
    expect(rerun.summary.scanned).toBe(240);
    expect(await describeServingName(opensearch, target.index)).toEqual({ kind: 'alias', indices: [next] });
    expect(await count(opensearch, target.index)).toBe(240);
    expect(await matchesTable(target)).toEqual({ missing: 0, extra: 0, differing: 0 });
  });

  it('refuses to start without a running updater, before any index is made, as the cloud does with a Disabled one', async () => {
    const target = await backfilled(20);

    const error = await runLocalBackfill({
      ...target,
      runId: 'resync-without-updater',
      input: { mode: 'resync' },
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).error).toBe('UpdaterNotRunningError');
    expect((error as WorkflowFailedError).causeText).toMatch(
      /^The stream updater \(event source mapping local-stream-follower\) is Disabled, so nothing would write the changes made during the resync into the new index/,
    );
    expect(await readResyncState(dynamodb, progressTable, target.table)).toBeUndefined();
    expect(await exists(opensearch, `${target.index}-resync-without-updater`)).toBe(false);
  });

  it('abort removes the new index and the resync state, and leaves the serving index as it was', async () => {
    const target = await backfilled(120);
    const state = await failedResync(target);
    const next = state?.targets[target.index] as string;
    engines.deleteIndexAfter(next);
    expect(await exists(opensearch, next)).toBe(true);

    const aborted = await abortLocalResync({ dynamodb, opensearch, table: target.table, progressTable });

    expect(aborted).toEqual({ runId: state?.runId, deletedIndices: [next] });
    expect(await exists(opensearch, next)).toBe(false);
    expect(await readResyncState(dynamodb, progressTable, target.table)).toBeUndefined();
    expect(await describeServingName(opensearch, target.index)).toEqual({ kind: 'index' });
    expect(await count(opensearch, target.index)).toBe(120);
    expect(await abortLocalResync({ dynamodb, opensearch, table: target.table, progressTable })).toBe(
      undefined,
    );
  });

  it('an abort through the definition releases the lock without recording itself as the last completed run', async () => {
    // Prepare: a backfilled table (its run the last completed one), then a resync that failed half-way
    const target = await backfilled(60);
    const before = await readRunLock(dynamodb, progressTable, target.table);
    const state = await failedResync(target);
    engines.deleteIndexAfter(state?.targets[target.index] as string);

    // Act: {"mode": "resync", "abort": true}, run by the workflow definition
    await runLocalBackfill({ ...target, runId: 'abort-run', input: { mode: 'resync', abort: true } });

    // Assess: the abort enabled nothing, so the last completed run is still the backfill's
    expect(await readResyncState(dynamodb, progressTable, target.table)).toBeUndefined();
    const after = await readRunLock(dynamodb, progressTable, target.table);
    expect(after.holder).toBeUndefined();
    expect(after.lastCompleted?.runId).toBe(before.lastCompleted?.runId);
    expect(before.lastCompleted?.runId).toBeDefined();
  });
});
