/**
 * The workflow definition (statemachines/backfill.asl.json) run end to end by
 * the local interpreter against the real DynamoDB Local and OpenSearch. Faults
 * are injected only at the "Process segment" boundary, where SQS and a Lambda
 * stand in the cloud (no local engine for those).
 */
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { describe, expect, it } from 'vitest';
import {
  type BackfillEvent,
  createLocalUpdater,
  type LocalBackfillOptions,
  runLocalBackfill,
} from '../../local/backfill';
import { loadItems } from '../../local/load-items';
import { WorkflowFailedError } from '../../local/workflow';
import type { WorkflowInput } from '../../pipeline/contract/workflow';
import { ConfigurationError, SinkUnavailableError } from '../../pipeline/errors';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import { ensureProgressTable, SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import { acquireRunLock, readRunLock } from '../../pipeline/progress/run-lock';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { indexMatchesTable, verifyIndex } from '../../pipeline/verify/verify';
import { createTable, uniqueName, useEngines } from '../support/engines';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

function key(i: number): Item {
  return { pk: { S: `user#${i % 500}` }, sk: { N: String(i) } };
}

function item(i: number): Item {
  return {
    pk: { S: `user#${i % 500}` },
    sk: { N: String(i) },
    name: { S: `item ${i}` },
    amount: { N: `${i}.25` },
    big: { N: `9007199254740${String(993 + i)}` },
  };
}

async function count(opensearch: Client, index: string): Promise<number> {
  await opensearch.indices.refresh({ index });
  return (await opensearch.count({ index })).body.count;
}

describe('the backfill workflow, run locally from the same definition file', () => {
  const progressTable = uniqueName('progress');
  const engines = useEngines();
  const { dynamodb, streams, opensearch } = engines;
  engines.deleteTableAfter(progressTable);

  /** Runs the local backfill of a fixture's table into its index, on this file's engines and progress table. */
  function backfill(
    target: { table: string; index: string; mapping: MappingConfig },
    options: Partial<LocalBackfillOptions> = {},
  ) {
    return runLocalBackfill({ dynamodb, streams, opensearch, progressTable, ...target, ...options });
  }

  async function fixture(items: number) {
    const table = await createTable(dynamodb, uniqueName('backfill'), {
      keySchema,
      sortKeyType: 'N',
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = uniqueName('backfill-index');
    engines.deleteTableAfter(table);
    engines.deleteIndexAfter(index);
    await loadItems(
      dynamodb,
      table,
      Array.from({ length: items }, (_, i) => item(i)),
    );
    const mapping: MappingConfig = { index };
    return { table, index, mapping };
  }

  it('backfills every item, then the updater applies the changes made during the backfill: index = table', async () => {
    const { table, index, mapping } = await fixture(3_000);
    const events: BackfillEvent[] = [];
    let writes = 0;
    let stop = false;
    // Puts, updates and deletes on the table for the whole backfill.
    const writer = (async () => {
      for (let i = 0; !stop; i += 1) {
        const n = (i * 37) % 3_000;
        if (i % 3 === 0) {
          await dynamodb.send(
            new UpdateItemCommand({
              TableName: table,
              Key: key(n),
              UpdateExpression: 'SET amount = :a',
              ExpressionAttributeValues: { ':a': { N: `${i}.5` } },
            }),
          );
        } else if (i % 3 === 1) {
          await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: key(n) }));
        } else {
          await dynamodb.send(new PutItemCommand({ TableName: table, Item: item(10_000 + i) }));
        }
        writes += 1;
      }
    })();

    const result = await backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 4, maxConcurrency: 2 },
        onEvent: (event) => events.push(event),
      },
    );
    stop = true;
    await writer;

    expect(result.summary.segments).toBe(4);
    expect(result.summary.scanned).toBeGreaterThan(0);
    expect(result.summary.created + result.summary.alreadyPresent).toBe(result.summary.scanned);
    expect(events.filter((event) => event.type === 'updater').map((event) => event.state)).toEqual([
      'Disabled',
      'Enabled',
    ]);
    expect(writes).toBeGreaterThan(0);

    const updater = await createLocalUpdater({
      dynamodb,
      streams,
      opensearch,
      table,
      keySchema,
      mapping,
      progressTable,
    });
    await updater.drain();
    const report = await verifyIndex({
      dynamodb,
      opensearch,
      table: { name: table, keySchema, keyTypes: { pk: 'S', sk: 'N' } },
      mapping,
    });
    expect({ missing: report.missing, extra: report.extra, differing: report.differing }).toEqual({
      missing: 0,
      extra: 0,
      differing: 0,
    });
    expect(indexMatchesTable(report)).toBe(true);
  });

  it('fails the run when a segment keeps failing, leaves the updater paused, and a rerun does only that segment', async () => {
    const { table, index, mapping } = await fixture(1_200);
    const events: BackfillEvent[] = [];
    const attempts: number[] = [];

    const failing = backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 4, maxConcurrency: 4 },
        segmentRetryIntervalMs: 10,
        onEvent: (event) => events.push(event),
        beforeSegmentAttempt: (segment, attempt) => {
          if (segment !== 2) return;
          attempts.push(attempt);
          throw new SinkUnavailableError('OpenSearch at http://127.0.0.1:1 did not answer after 8 attempts');
        },
      },
    );

    const error = await failing.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).error).toBe('SinkUnavailableError');
    expect((error as WorkflowFailedError).causeText).toContain('did not answer after 8 attempts');
    expect(attempts).toEqual([1, 2, 3, 4]); // the first try and the definition's 3 retries
    expect(events.some((event) => event.type === 'updater' && event.state === 'Enabled')).toBe(false);
    const planned = events.find((event) => event.type === 'plan');
    const runId = planned?.type === 'plan' ? planned.runId : '';
    const checkpoints = await new SegmentCheckpointStore(dynamodb, progressTable).listCheckpoints(runId);
    const completed = checkpoints.filter((c) => c.status === 'COMPLETED').map((c) => c.segment);
    expect(completed.sort()).toEqual([0, 1, 3]);
    const indexedAfterFailure = await count(opensearch, index);
    expect(indexedAfterFailure).toBeLessThan(1_200);

    const rerunEvents: BackfillEvent[] = [];
    const rerun = await backfill(
      { table, index, mapping },
      {
        input: { totalSegments: 4, maxConcurrency: 4 },
        onEvent: (event) => rerunEvents.push(event),
      },
    );

    expect(rerun.runId).toBe(runId);
    expect(rerun.summary.scanned).toBe(1_200);
    expect(rerun.summary.created).toBe(1_200);
    expect(rerun.summary.alreadyPresent).toBe(0);
    expect(await count(opensearch, index)).toBe(1_200);
    // Only segment 2 scanned anything in the rerun.
    const scannedInRerun = rerunEvents
      .filter((event) => event.type === 'segment-progress')
      .map((event) => (event.type === 'segment-progress' ? event.segment : -1));
    expect(new Set(scannedInRerun)).toEqual(new Set([2]));
    expect(rerunEvents.filter((event) => event.type === 'updater').at(-1)).toMatchObject({
      state: 'Enabled',
    });
  });

  it("refuses an index other than the updater's before pausing it, and backfills the updater's own", async () => {
    // Prepare
    const { table, index, mapping } = await fixture(120);
    const override = uniqueName('backfill-override');
    engines.deleteIndexAfter(override);
    const events: BackfillEvent[] = [];

    // Act
    const error = await backfill(
      { table, index, mapping },
      { restart: true, input: { index: override, totalSegments: 2 }, onEvent: (event) => events.push(event) },
    ).catch((e: unknown) => e);
    const { summary } = await backfill(
      { table, index, mapping },
      { restart: true, input: { index, totalSegments: 2 } },
    );

    // Assess
    expect((error as WorkflowFailedError).error).toBe('ConfigurationError');
    expect((error as WorkflowFailedError).causeText).toBe(
      `index "${override}" is not the index the stream updater writes to ("${index}"), so the backfill would fill ` +
        'one index while the updater keeps the other: leave index out of the input (to change an index, deploy the new definition and start a resync)',
    );
    expect(events.filter((event) => event.type === 'updater')).toEqual([]);
    expect((await opensearch.indices.exists({ index: override })).body).toBe(false);
    expect(summary).toMatchObject({ scanned: 120, created: 120, failed: 0 });
    expect(await count(opensearch, index)).toBe(120);
  });

  it('checks the whole input before it pauses the updater: a typo fails the run naming the field, with the updater and the lock untouched', async () => {
    // Prepare
    const { table, index, mapping } = await fixture(20);
    const events: BackfillEvent[] = [];

    // Act
    const error = await backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 2, maxConcurency: 2 } as WorkflowInput,
        onEvent: (event) => events.push(event),
      },
    ).catch((e: unknown) => e);

    // Assess
    expect((error as WorkflowFailedError).error).toBe('ConfigurationError');
    expect((error as WorkflowFailedError).causeText).toMatch(
      /^the workflow input field maxConcurency is not known \(known: totalSegments, maxConcurrency, /,
    );
    expect(events.filter((event) => event.type === 'updater' || event.type === 'plan')).toEqual([]);
    expect(await readRunLock(dynamodb, progressTable, table)).toEqual({});
  });

  it('lets one of two runs of a table started at once backfill; the other fails naming the running local run and never pauses the updater', async () => {
    // Prepare
    const { table, index, mapping } = await fixture(300);
    const events = { first: [] as BackfillEvent[], second: [] as BackfillEvent[] };
    const run = (name: 'first' | 'second') =>
      backfill(
        { table, index, mapping },
        {
          runId: uniqueName(name),
          input: { totalSegments: 2 },
          onEvent: (event) => events[name].push(event),
        },
      );

    // Act
    const outcomes = await Promise.allSettled([run('first'), run('second')]);

    // Assess
    const winner = outcomes.findIndex((outcome) => outcome.status === 'fulfilled');
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const won = outcomes[winner] as PromiseFulfilledResult<Awaited<ReturnType<typeof run>>>;
    const lost = outcomes[1 - winner] as PromiseRejectedResult;
    expect(won.value.summary).toMatchObject({ scanned: 300, created: 300 });
    expect((lost.reason as WorkflowFailedError).error).toBe('RunLockedError');
    expect((lost.reason as WorkflowFailedError).causeText).toMatch(
      new RegExp(
        `^table ${table} is already being backfilled by local run ${won.value.runId} \\(it holds the run lock since [^)]+\\); wait for it to end or stop it before starting another backfill of this table$`,
      ),
    );
    const loserEvents = winner === 0 ? events.second : events.first;
    expect(loserEvents.filter((event) => event.type === 'updater')).toEqual([]);
    expect(await readRunLock(dynamodb, progressTable, table)).toEqual({
      lastCompleted: { runId: won.value.runId, at: expect.any(String) },
    });
  });

  it('takes over the lock of a local run whose lease expired, and after success releases it and records itself as the last completed run', async () => {
    // Prepare: a run that died holding the lock a minute ago.
    const { table, index, mapping } = await fixture(50);
    await ensureProgressTable(dynamodb, progressTable);
    const expired = new Date(Date.now() - 60_000).toISOString();
    await acquireRunLock(
      dynamodb,
      progressTable,
      table,
      { runId: 'crashed-run', acquiredAt: expired, expiresAt: expired },
      async () => false,
    );
    const before = Date.now();

    // Act
    const { summary, runId } = await backfill(
      { table, index, mapping },
      { restart: true, input: { totalSegments: 1 } },
    );

    // Assess
    expect(summary).toMatchObject({ scanned: 50, created: 50 });
    const lock = await readRunLock(dynamodb, progressTable, table);
    expect(lock).toEqual({ lastCompleted: { runId, at: expect.any(String) } });
    expect(Date.parse(lock.lastCompleted?.at ?? '')).toBeGreaterThanOrEqual(before);
  });

  it('does not retry a segment whose message is invalid (ConfigurationError)', async () => {
    const { table, index, mapping } = await fixture(50);
    const attempts: number[] = [];

    const error = await backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 1 },
        segmentRetryIntervalMs: 10,
        beforeSegmentAttempt: (_segment, attempt) => {
          attempts.push(attempt);
          throw new ConfigurationError('readUnitsPerSecond must be a positive number');
        },
      },
    ).catch((e: unknown) => e);

    expect((error as WorkflowFailedError).error).toBe('ConfigurationError');
    expect(attempts).toEqual([1]);
  });

  it('refuses to enable the updater when the oldest unapplied change and its drain exceed the retention budget', async () => {
    const { table, index, mapping } = await fixture(100);
    const events: BackfillEvent[] = [];

    const error = await backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 2, retentionBudgetHours: 23 },
        reportedDurationHours: 30,
        onEvent: (event) => events.push(event),
      },
    ).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).error).toBe('RetentionBudgetExceededError');
    expect((error as WorkflowFailedError).causeText).toBe(
      'The stream updater stays paused: the oldest change it has not applied is 30 hours old and draining needs ' +
        'about 3.25 hours more, beyond the retention budget of 23 hours, so changes could leave the stream (it keeps ' +
        'them 24 hours) before the updater applies them; delete the index, then start a new execution with a higher ' +
        'maxConcurrency or totalSegments so that it finishes within the budget, and that execution enables the ' +
        'updater when it succeeds.',
    );
    expect(events.some((event) => event.type === 'updater' && event.state === 'Enabled')).toBe(false);
  });

  it("starts the retention clock where the updater lagged when paused, not at the run's start; a failed run keeps the lock, stale at once", async () => {
    // Prepare: the updater was 19 hours behind; 19 h + 0.25 h + 1.9 h of drain > the 20-hour default budget.
    const { table, index, mapping } = await fixture(40);
    const events: BackfillEvent[] = [];

    // Act
    const error = await backfill(
      { table, index, mapping },
      {
        restart: true,
        input: { totalSegments: 1 },
        updaterLagSeconds: 19 * 3600,
        onEvent: (event) => events.push(event),
      },
    ).catch((e: unknown) => e);
    const lock = await readRunLock(dynamodb, progressTable, table);
    // 17 h behind: 17 + 0.25 + 1.7 = 18.95 h fits the budget; this run takes the failed run's lock over.
    const rerun = await backfill(
      { table, index, mapping },
      { restart: true, input: { totalSegments: 1 }, updaterLagSeconds: 17 * 3600 },
    );

    // Assess
    expect((error as WorkflowFailedError).error).toBe('RetentionBudgetExceededError');
    expect((error as WorkflowFailedError).causeText).toMatch(
      /^The stream updater stays paused: the oldest change it has not applied is 19(\.\d+)? hours old and draining needs about 2\.15\d* hours more, beyond the retention budget of 20 hours/,
    );
    expect(events.filter((event) => event.type === 'updater').map((event) => event.state)).toEqual([
      'Disabled',
    ]);
    expect(lock.holder?.runId).toBeDefined();
    expect(Date.parse(lock.holder?.expiresAt ?? '')).toBeLessThanOrEqual(Date.now());
    expect(rerun.summary).toMatchObject({ scanned: 40, alreadyPresent: 40 });
    expect(await readRunLock(dynamodb, progressTable, table)).toEqual({
      lastCompleted: { runId: rerun.runId, at: expect.any(String) },
    });
  });

  it('names a table that does not exist, and one without a stream', async () => {
    const noStream = await createTable(dynamodb, uniqueName('nostream'), {
      keySchema: { partitionKey: 'pk' },
    });
    engines.deleteTableAfter(noStream);
    const base = {
      dynamodb,
      streams,
      opensearch,
      index: 'unused',
      mapping: { index: 'unused' },
      progressTable,
    };

    await expect(runLocalBackfill({ ...base, table: 'no-such-table' })).rejects.toThrow(
      'table no-such-table does not exist',
    );
    await expect(runLocalBackfill({ ...base, table: noStream })).rejects.toThrow(
      new RegExp(`table ${noStream} has no stream: enable a stream`),
    );
  });
});
