import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryDeadLetterSink } from '../../../pipeline/dead-letter/dead-letter';
import { backoffDelay, isThrottling, ReadBudget } from '../../../pipeline/scan/read-budget';
import { scanSegment } from '../../../pipeline/scan/scan-segment';
import type { Item } from '../../../pipeline/table/types';
import { progressStore, seedItems } from '../../support/backfill-fixtures';
import {
  createTable,
  deleteIndex,
  deleteTable,
  dynamoClient,
  dynamodbEndpoint,
  openSearchClient,
  uniqueName,
} from '../../support/engines';

/** A clock that only moves when someone sleeps or works. */
function fakeClock() {
  const clock = {
    time: 1_000_000,
    now: () => clock.time,
    sleep: async (ms: number) => {
      clock.time += ms;
    },
  };
  return clock;
}

/** The guarantee: what was consumed before a page started fits the budget since the first start. */
function withinBudget(
  pages: { start: number; consumed: number }[],
  unitsPerSecond: number,
  slackMs = 0,
): boolean {
  let before = 0;
  for (const page of pages) {
    const allowed = (unitsPerSecond * (page.start - (pages[0]?.start ?? 0) + slackMs)) / 1000;
    if (before > allowed + 1e-9) return false;
    before += page.consumed;
  }
  return true;
}

describe('ReadBudget', () => {
  it('schedules pages so that the units consumed never run ahead of the budget', async () => {
    // Prepare: pages of uneven cost and uneven processing time
    const clock = fakeClock();
    const budget = new ReadBudget(10, clock);
    const costs = [128, 3, 0.5, 40, 40, 40, 1, 90, 7, 7, 7, 7, 60, 2, 128];
    const pages: { start: number; consumed: number }[] = [];

    // Act
    for (const [i, consumed] of costs.entries()) {
      await budget.acquire();
      pages.push({ start: clock.now(), consumed });
      budget.record(consumed);
      clock.time += (i * 37) % 250; // the page's own processing
    }

    // Assess
    expect(withinBudget(pages, 10)).toBe(true);
    const total = costs.slice(0, -1).reduce((sum, cost) => sum + cost, 0);
    // Not slower than needed either: the last start is the budget's time for all earlier pages.
    expect((pages.at(-1)?.start ?? 0) - (pages[0]?.start ?? 0)).toBeLessThanOrEqual(
      (total / 10) * 1000 + 250,
    );
    expect(budget.consumed).toBe(total + 128);
  });

  it('never waits without a limit, and gives up a wait when told to stop', async () => {
    // Prepare
    const clock = fakeClock();
    const free = new ReadBudget(undefined, clock);
    const tight = new ReadBudget(1, clock);
    await tight.acquire();
    tight.record(100);

    // Act
    const started = clock.now();
    for (let i = 0; i < 5; i++) {
      await free.acquire();
      free.record(1_000);
    }
    const freeTime = clock.now() - started;
    const stopped = await tight.acquire({ stop: () => clock.now() - started > 3_000 });

    // Assess
    expect(freeTime).toBe(0);
    expect(stopped).toBe(false);
    expect(clock.now() - started).toBeLessThan(5_000);
  });

  it('backs off with full jitter under a cap, and knows throttling by name', () => {
    expect(backoffDelay(1, 100, 20_000, () => 0.999)).toBe(99);
    expect(backoffDelay(4, 100, 20_000, () => 0.5)).toBe(400);
    expect(backoffDelay(30, 100, 20_000, () => 0.999)).toBe(19_980);
    const throttled = Object.assign(new Error('slow down'), {
      name: 'ProvisionedThroughputExceededException',
    });
    expect(isThrottling(throttled)).toBe(true);
    expect(isThrottling(Object.assign(new Error('x'), { name: 'ValidationException' }))).toBe(false);
  });
});

describe('scanSegment with a read budget', () => {
  const tables: string[] = [];
  const indices: string[] = [];
  const dynamodb = dynamoClient();
  const opensearch = openSearchClient();
  let progressTable = '';

  afterAll(async () => {
    await Promise.all(tables.map((table) => deleteTable(dynamodb, table)));
    if (progressTable) await deleteTable(dynamodb, progressTable);
    await Promise.all(indices.map((index) => deleteIndex(opensearch, index)));
  });

  it('keeps the read units DynamoDB reports within the budget, page after page', async () => {
    // Prepare: 200 items of about 2 KB, pages of 20 items (about 5 RCU each)
    const table = await createTable(dynamodb, uniqueName('budget'), { keySchema: { partitionKey: 'pk' } });
    tables.push(table);
    const items: Item[] = Array.from({ length: 200 }, (_, i) => ({
      pk: { S: `k-${i}` },
      body: { S: 'z'.repeat(2_000) },
    }));
    await seedItems(dynamodb, table, items);
    const index = uniqueName('budget');
    indices.push(index);
    const checkpoints = await progressStore(dynamodb);
    progressTable = checkpoints.tableName;
    const pages: { start: number; consumed: number }[] = [];
    const measured = new DynamoDBClient({
      endpoint: dynamodbEndpoint(),
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    measured.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'ScanCommand') return next(args);
        const start = Date.now();
        const result = await next(args);
        const output = result.output as { ConsumedCapacity?: { CapacityUnits?: number } };
        pages.push({ start, consumed: output.ConsumedCapacity?.CapacityUnits ?? 0 });
        return result;
      },
      { step: 'initialize', name: 'measureScans' },
    );
    const unitsPerSecond = 25;

    // Act
    const outcome = await scanSegment(
      {
        runId: uniqueName('run'),
        table,
        index,
        segment: 0,
        totalSegments: 1,
        readUnitsPerSecond: unitsPerSecond,
      },
      {
        dynamodb: measured,
        opensearch,
        checkpoints,
        deadLetters: new DirectoryDeadLetterSink(join(tmpdir(), 'ddb2os-budget-dead-letters')),
        mapping: { index },
        keySchema: { partitionKey: 'pk' },
      },
      { pageLimit: 20 },
    );

    // Assess
    expect(outcome.status).toBe('COMPLETED');
    if (outcome.status === 'COMPLETED') expect(outcome.result.scanned).toBe(200);
    expect(pages.length).toBeGreaterThanOrEqual(10);
    const consumed = pages.reduce((sum, page) => sum + page.consumed, 0);
    expect(consumed).toBeGreaterThan(20);
    // Timer resolution: a sleep may end a millisecond early.
    expect(withinBudget(pages, unitsPerSecond, 5)).toBe(true);
    const elapsed = ((pages.at(-1)?.start ?? 0) - (pages[0]?.start ?? 0)) / 1000;
    expect(elapsed).toBeGreaterThanOrEqual(
      ((consumed - (pages.at(-1)?.consumed ?? 0)) / unitsPerSecond) * 0.95,
    );
  });
});
