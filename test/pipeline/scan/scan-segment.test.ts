import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryDeadLetterSink } from '../../../pipeline/dead-letter/dead-letter';
import { prepareIndexForBackfill, restoreIndexAfterBackfill } from '../../../pipeline/index/index-settings';
import {
  aggregateCollection,
  type MappingConfig,
  mapItem,
  toDocumentBody,
} from '../../../pipeline/mapping/mapping';
import type { SegmentCheckpointStore } from '../../../pipeline/progress/checkpoint';
import {
  CAPACITY_SAMPLE_PAGES,
  parseSegmentMessage,
  type ScanSegmentDeps,
  type ScanSegmentOutcome,
  scanSegment,
} from '../../../pipeline/scan/scan-segment';
import { summarizeRun } from '../../../pipeline/summarize/summarize-run';
import { addCounts, emptyCounts, type Item, type SegmentCounts } from '../../../pipeline/table/types';
import {
  catalogItem,
  getSource,
  indexCount,
  missingIds,
  progressStore,
  seedItems,
} from '../../support/backfill-fixtures';
import {
  createTable,
  deleteTable,
  dynamoClient,
  openSearchClient,
  opensearchUrl,
  uniqueName,
  useEngines,
} from '../../support/engines';
import { startFaultyProxy } from '../../support/opensearch-proxy';

const engines = useEngines();
const { dynamodb, opensearch } = engines;
let checkpoints: SegmentCheckpointStore;
let deadLetterDir: string;

beforeAll(async () => {
  checkpoints = await progressStore(dynamodb);
  deadLetterDir = await mkdtemp(join(tmpdir(), 'ddb2os-scan-'));
});

afterAll(async () => {
  await deleteTable(dynamodb, checkpoints.tableName);
  await rm(deadLetterDir, { recursive: true, force: true });
});

async function newTable(
  prefix: string,
  options: Parameters<typeof createTable>[2] = { keySchema: { partitionKey: 'pk' } },
): Promise<string> {
  const table = await createTable(dynamodb, uniqueName(prefix), options);
  engines.deleteTableAfter(table);
  return table;
}

function newIndex(prefix: string): string {
  const index = engines.indexName(prefix);
  return index;
}

function deps(mapping: MappingConfig, keySchema: ScanSegmentDeps['keySchema'] = { partitionKey: 'pk' }) {
  return {
    dynamodb,
    opensearch,
    checkpoints,
    deadLetters: new DirectoryDeadLetterSink(deadLetterDir),
    mapping,
    keySchema,
  } satisfies ScanSegmentDeps;
}

function completed(outcome: ScanSegmentOutcome) {
  if (outcome.status !== 'COMPLETED') throw new Error(`expected COMPLETED, got ${outcome.status}`);
  return outcome.result;
}

function total(outcomes: ScanSegmentOutcome[]): SegmentCounts {
  return outcomes
    .map(completed)
    .reduce<SegmentCounts>((sum, result) => addCounts(sum, result), emptyCounts());
}

function addsUp(counts: SegmentCounts): boolean {
  return counts.scanned === counts.created + counts.alreadyPresent + counts.failed + counts.skipped;
}

describe('scanSegment', () => {
  it('indexes every item of a 20,000-item table exactly once over 8 segments, and a second run only finds them present', async () => {
    // Prepare
    const table = await newTable('catalog');
    const items = Array.from({ length: 20_000 }, (_, i) => catalogItem(i));
    await seedItems(dynamodb, table, items);
    const index = newIndex('catalog');
    await prepareIndexForBackfill(opensearch, index);
    const mapping: MappingConfig = { index };
    const runAll = (runId: string) =>
      Promise.all(
        Array.from({ length: 8 }, (_, segment) =>
          scanSegment({ runId, table, index, segment, totalSegments: 8 }, deps(mapping), { pageLimit: 700 }),
        ),
      );

    // Act
    const first = await runAll(uniqueName('run'));
    await restoreIndexAfterBackfill(opensearch, index);

    // Assess
    expect(total(first)).toMatchObject({ scanned: 20_000, created: 20_000, alreadyPresent: 0, failed: 0 });
    expect(await indexCount(opensearch, index)).toBe(20_000);
    const ids = items.map((item) => item.pk?.S as string);
    expect(await missingIds(opensearch, index, ids)).toEqual([]);
    for (const i of [0, 1, 7, 999, 4_321, 12_345, 19_999]) {
      // As the table holds it: a set comes back in DynamoDB's order, not the order it was written in.
      const { Item: stored } = await dynamodb.send(
        new GetItemCommand({ TableName: table, Key: { pk: { S: ids[i] as string } } }),
      );
      const [expected] = mapItem(stored as Item, { partitionKey: 'pk' }, mapping);
      expect(await getSource(opensearch, index, ids[i] as string)).toEqual(
        JSON.parse(JSON.stringify(expected?.document)),
      );
    }

    // Act again: a new run over the same index
    const runId = uniqueName('rerun');
    const second = await runAll(runId);

    // Assess
    expect(total(second)).toMatchObject({ scanned: 20_000, created: 0, alreadyPresent: 20_000, failed: 0 });
    expect(await indexCount(opensearch, index)).toBe(20_000);
    const summary = await summarizeRun(
      { runId, totalSegments: 8, startedAt: new Date().toISOString() },
      { checkpoints },
    );
    expect(summary).toMatchObject({
      segments: 8,
      segmentsCompleted: 8,
      scanned: 20_000,
      alreadyPresent: 20_000,
    });
  });

  it('stops after 2 pages when told to yield, and resumes from its checkpoint with no gap and no duplicate', async () => {
    // Prepare: binary partition keys, so the checkpoint's key must round-trip exactly
    const table = await newTable('binary', { keySchema: { partitionKey: 'pk' }, partitionKeyType: 'B' });
    const items: Item[] = Array.from({ length: 1_000 }, (_, i) => ({
      pk: { B: Uint8Array.from([i >> 8, i & 255, 0, 255]) },
      n: { N: String(i) },
    }));
    await seedItems(dynamodb, table, items);
    const index = newIndex('binary');
    const message = { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1 };
    let asked = 0;

    // Act
    const first = await scanSegment(message, deps({ index }), {
      pageLimit: 100,
      shouldYield: () => ++asked >= 2,
    });
    const second = await scanSegment(message, deps({ index }), { pageLimit: 100 });

    // Assess
    expect(first.status).toBe('YIELDED');
    if (first.status === 'YIELDED')
      expect(first.progress).toMatchObject({ pages: 2, scanned: 200, created: 200 });
    expect(completed(second)).toMatchObject({ scanned: 1_000, created: 1_000, alreadyPresent: 0, failed: 0 });
    expect(await indexCount(opensearch, index)).toBe(1_000);
  });

  it('asks DynamoDB for consumed capacity on a sample of pages without a read limit, on every page under one', async () => {
    // Prepare: 400 items read 10 a page, through a client that records what each Scan asked for
    const table = await newTable('capacity');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: 400 }, (_, i) => catalogItem(i)),
    );
    const asked: string[] = [];
    const recording = dynamoClient();
    recording.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'ScanCommand')
          asked.push(String((args.input as ScanCommandInput).ReturnConsumedCapacity));
        return next(args);
      },
      { step: 'initialize', name: 'recordScanInput' },
    );
    const run = async (readUnitsPerSecond?: number) => {
      asked.length = 0;
      const index = newIndex('capacity');
      let readUnits = 0;
      const outcome = await scanSegment(
        { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1, readUnitsPerSecond },
        { ...deps({ index }), dynamodb: recording },
        { pageLimit: 10, onProgress: (progress) => (readUnits = progress.readUnits) },
      );
      return { result: completed(outcome), asked: [...asked], readUnits };
    };

    try {
      // Act
      const sampled = await run();
      // A limit far above what 400 items need: every page must count, none waits.
      const limited = await run(1_000_000);

      // Assess
      expect(sampled.result).toMatchObject({ scanned: 400, created: 400 });
      expect(limited.result).toMatchObject({ scanned: 400, created: 400 });
      const pages = limited.asked.length;
      expect(pages).toBeGreaterThanOrEqual(40);
      expect(limited.asked.every((value) => value === 'TOTAL')).toBe(true);
      expect(sampled.asked).toHaveLength(pages);
      expect(sampled.asked.flatMap((value, page) => (value === 'TOTAL' ? [page] : []))).toEqual(
        Array.from({ length: Math.ceil(pages / CAPACITY_SAMPLE_PAGES) }, (_, i) => i * CAPACITY_SAMPLE_PAGES),
      );
      // The sampled pages' units per item stand for the others: the total stays close to the exact one.
      expect(limited.readUnits).toBeGreaterThan(0);
      expect(Math.abs(sampled.readUnits - limited.readUnits) / limited.readUnits).toBeLessThan(0.1);
    } finally {
      recording.destroy();
    }
  });

  it('sends one page per bulk request and reads no further ahead while OpenSearch has not answered, and indexes every item', async () => {
    // Prepare: 600 items read 50 a page; OpenSearch answers the first two requests only once the scan has read
    // every page or has stopped reading for 2 s (it is slower than the table), through a client that counts Scans
    const table = await newTable('slow-sink');
    const items = Array.from({ length: 600 }, (_, i) => catalogItem(i));
    await seedItems(dynamodb, table, items);
    const index = newIndex('slow-sink');
    let scans = 0;
    let scansWhileHeld = 0;
    const counting = dynamoClient();
    counting.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'ScanCommand') scans += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countScans' },
    );
    const scanSettled = async () => {
      let seen = -1;
      let since = Date.now();
      while (scans < 13 && Date.now() - since < 2_000) {
        if (scans !== seen) [seen, since] = [scans, Date.now()];
        await sleep(50);
      }
      scansWhileHeld = Math.max(scansWhileHeld, scans);
    };
    let held = 0;
    const proxy = await startFaultyProxy(opensearchUrl(), {
      beforeBulk: async () => {
        if (held++ < 2) await scanSettled();
      },
    });
    const slowOpenSearch = openSearchClient(proxy.url);

    try {
      // Act
      const outcome = await scanSegment(
        { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1 },
        { ...deps({ index }), dynamodb: counting, opensearch: slowOpenSearch },
        { pageLimit: 50, bulkConcurrency: 2 },
      );

      // Assess: what waits for OpenSearch is a few pages, however long it takes to answer
      expect(completed(outcome)).toMatchObject({ scanned: 600, created: 600, failed: 0 });
      expect(proxy.stats.bodies.map((body) => body.actions)).toEqual(Array.from({ length: 12 }, () => 50));
      // Two pages sent, one mapped and waiting for a slot, one read ahead.
      expect(scansWhileHeld).toBe(4);
      expect(
        await missingIds(
          opensearch,
          index,
          items.map((item) => item.pk?.S as string),
        ),
      ).toEqual([]);
    } finally {
      counting.destroy();
      await slowOpenSearch.close();
      await proxy.close();
    }
  });

  it('stops after the current page on abort, with everything acknowledged, and the resumed run is exact', async () => {
    // Prepare
    const table = await newTable('abort');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: 600 }, (_, i) => catalogItem(i)),
    );
    const index = newIndex('abort');
    const message = { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1 };
    const controller = new AbortController();
    let scans = 0;
    // Ctrl-C as the second page comes back.
    const interrupted = {
      send: async (command: unknown) => {
        const response = await dynamodb.send(command as ScanCommand);
        if (command instanceof ScanCommand && ++scans === 2) controller.abort();
        return response;
      },
    } as unknown as DynamoDBClient;

    // Act
    const first = await scanSegment(
      message,
      { ...deps({ index }), dynamodb: interrupted },
      { pageLimit: 50, signal: controller.signal },
    );
    const second = await scanSegment(message, deps({ index }), { pageLimit: 50 });

    // Assess
    expect(first.status).toBe('YIELDED');
    if (first.status === 'YIELDED')
      expect(first.progress).toMatchObject({ pages: 2, scanned: 100, created: 100 });
    expect(completed(second)).toMatchObject({ scanned: 600, created: 600, alreadyPresent: 0 });
    expect(await indexCount(opensearch, index)).toBe(600);
  });

  it('sends a document OpenSearch rejects and an item the mapping cannot map to the dead-letter place, and indexes the rest', async () => {
    // Prepare: size is an object in the index; one item holds a word there (a word in the long price would land)
    const table = await newTable('rejects');
    const items: Item[] = Array.from({ length: 300 }, (_, i) => ({
      pk: { S: `ok-${i}` },
      price: { N: String(i) },
    }));
    items.push({ pk: { S: 'bad-size' }, price: { N: '3' }, size: { S: 'not an object' } });
    items.push({ pk: { S: 'bad-map' }, price: { N: '1' } });
    items.push({ pk: { S: 'skip-me' }, price: { N: '2' } });
    await seedItems(dynamodb, table, items);
    const index = newIndex('rejects');
    await prepareIndexForBackfill(opensearch, index, {
      mappingBody: {
        properties: { price: { type: 'long' }, size: { properties: { cm: { type: 'long' } } } },
      },
    });
    const mapping: MappingConfig = {
      index,
      transform: (item, { defaultIndex }) => {
        if (item.pk?.S === 'bad-map') throw new Error('this item has no place in the index');
        if (item.pk?.S === 'skip-me') return null;
        return { index: defaultIndex, id: item.pk?.S as string, document: toDocumentBody(item) };
      },
    };
    const runId = uniqueName('run');

    // Act
    const outcome = await scanSegment({ runId, table, index, segment: 0, totalSegments: 1 }, deps(mapping), {
      pageLimit: 50,
    });

    // Assess
    const result = completed(outcome);
    expect(result).toMatchObject({ scanned: 303, created: 300, alreadyPresent: 0, failed: 2, skipped: 1 });
    expect(addsUp(result)).toBe(true);
    expect(await indexCount(opensearch, index)).toBe(300);
    const records = await new DirectoryDeadLetterSink(deadLetterDir).read(runId);
    expect(records).toHaveLength(2);
    const rejected = records.find((record) => record.key.pk?.S === 'bad-size');
    expect(rejected).toMatchObject({
      id: 'bad-size',
      errorType: 'mapper_parsing_exception',
      segment: 0,
      table,
    });
    expect(rejected?.reason).toBe('field size is an object in the index mapping and a string in this item');
    const unmapped = records.find((record) => record.key.pk?.S === 'bad-map');
    expect(unmapped).toMatchObject({ errorType: 'MappingError' });
    expect(unmapped?.reason).toMatch(/the transform failed: this item has no place in the index/);
  });

  it('aggregates partitions that straddle pages and a yield, one document each, counted per item', async () => {
    // Prepare: 40 customers with 1 to 13 items each; pages of 7 items cut partitions
    const keySchema = { partitionKey: 'pk', sortKey: 'sk' };
    const table = await newTable('orders', { keySchema });
    const items: Item[] = [];
    for (let c = 0; c < 40; c++) {
      items.push({ pk: { S: `customer-${c}` }, sk: { S: 'profile' }, name: { S: `Customer ${c}` } });
      for (let o = 0; o < c % 13; o++) {
        items.push({
          pk: { S: `customer-${c}` },
          sk: { S: `order-${String(o).padStart(3, '0')}` },
          total: { N: `${o}.5` },
        });
      }
    }
    await seedItems(dynamodb, table, items);
    const index = newIndex('orders');
    const mapping: MappingConfig = {
      index,
      aggregate: { parentSortKey: 'profile', childrenField: 'orders' },
    };
    const message = { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1 };
    let asked = 0;

    // Act
    const first = await scanSegment(message, deps(mapping, keySchema), {
      pageLimit: 7,
      shouldYield: () => ++asked >= 5,
    });
    const second = await scanSegment(message, deps(mapping, keySchema), { pageLimit: 7 });

    // Assess
    expect(first.status).toBe('YIELDED');
    expect(completed(second)).toMatchObject({
      scanned: items.length,
      created: items.length,
      alreadyPresent: 0,
      failed: 0,
    });
    expect(await indexCount(opensearch, index)).toBe(40);
    for (const c of [0, 1, 12, 13, 25, 39]) {
      const partition = items.filter((item) => item.pk?.S === `customer-${c}`);
      const [expected] = aggregateCollection(partition, keySchema, mapping);
      expect(await getSource(opensearch, index, `customer-${c}`)).toEqual(
        JSON.parse(JSON.stringify(expected?.document)),
      );
    }
  });

  it('answers a repeated message for a completed segment with the stored result, without scanning', async () => {
    // Prepare
    const table = await newTable('repeat');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: 30 }, (_, i) => catalogItem(i)),
    );
    const index = newIndex('repeat');
    const message = { runId: uniqueName('run'), table, index, segment: 0, totalSegments: 1 };
    const result = completed(await scanSegment(message, deps({ index })));
    const noScans = {
      send: async () => Promise.reject(new Error('scanned again')),
    } as unknown as DynamoDBClient;

    // Act
    const again = await scanSegment(message, { ...deps({ index }), dynamodb: noScans });

    // Assess
    expect(completed(again)).toEqual(result);
  });

  it('fails with SourceTableError naming a table that does not exist, and marks the checkpoint FAILED', async () => {
    // Prepare
    const table = uniqueName('missing');
    const message = { runId: uniqueName('run'), table, index: 'whatever', segment: 0, totalSegments: 1 };

    // Act
    const failure = scanSegment(message, deps({ index: 'whatever' }));

    // Assess
    await expect(failure).rejects.toMatchObject({
      name: 'SourceTableError',
      message: expect.stringContaining(table),
    });
    expect(await checkpoints.get(message.runId, 0)).toMatchObject({
      status: 'FAILED',
      error: expect.stringContaining(table),
    });
  });
});

describe('parseSegmentMessage', () => {
  const good = { taskToken: 't', runId: 'r', table: 't', index: 'i', segment: 2, totalSegments: 4 };

  it.each([
    [{ ...good, runId: undefined }, 'the segment message has no runId'],
    [{ ...good, segment: '2' }, 'the segment message\'s segment must be an integer of at least 0, not "2"'],
    [{ ...good, segment: 1.5 }, "the segment message's segment must be an integer of at least 0, not 1.5"],
    [{ ...good, segment: 4 }, "the segment message's segment 4 is not below its totalSegments 4"],
    [
      { ...good, totalSegments: 0 },
      "the segment message's totalSegments must be an integer of at least 1, not 0",
    ],
    [
      { ...good, readUnitsPerSecond: -1 },
      "the segment message's readUnitsPerSecond must be a positive number, not -1",
    ],
    [{ ...good, index: '' }, 'the segment message\'s index must be a non-empty string, not ""'],
  ])('refuses %j with one sentence', (raw, sentence) => {
    expect(() => parseSegmentMessage(raw)).toThrow(sentence);
  });

  it('reads the fields the workflow sends, null as absent, extra fields ignored', () => {
    expect(
      parseSegmentMessage({ ...good, readUnitsPerSecond: null, heartbeatSeconds: 300, continuation: 3 }),
    ).toEqual({ ...good, continuation: 3 });
  });
});
