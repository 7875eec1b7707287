/**
 * Reliability case 1: puts, updates and deletes on the table during the whole
 * backfill, on the real DynamoDB Local and OpenSearch. The writer knows where
 * the scan is (the segment's checkpointed pages, and each key's page from a
 * scan of the same segments made before the backfill), so it deletes and
 * updates keys the scan has already passed as well as keys it has not yet
 * reached, and re-creates deleted keys. Once the updater has caught up
 * (drain), verify must find no lost update and no resurrected delete.
 */
import {
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { runLocalBackfill } from '../../local/backfill';
import { seededRandom } from '../../local/demo-data';
import type { Item } from '../../pipeline/table/types';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { useEngines } from '../support/engines';
import {
  deadLetterFolder,
  expectClean,
  indexCount,
  recordFigures,
  reliabilityItem,
  reliabilityKey,
  reliabilityUpdater,
  secondsSince,
  seededTable,
  tableCount,
  verify,
} from './support';

const ITEMS = 4_000;
const SEGMENTS = 2;

/** Where each item sits in the backfill's scan: its segment and its 1 MB page (1-based). */
async function scanLayout(
  dynamodb: DynamoDBClient,
  table: string,
): Promise<Map<number, { segment: number; page: number }>> {
  const layout = new Map<number, { segment: number; page: number }>();
  for (let segment = 0; segment < SEGMENTS; segment++) {
    let ExclusiveStartKey: Item | undefined;
    let page = 0;
    do {
      const response = await dynamodb.send(
        new ScanCommand({ TableName: table, Segment: segment, TotalSegments: SEGMENTS, ExclusiveStartKey }),
      );
      page += 1;
      for (const item of response.Items ?? []) layout.set(Number(item.sk?.N), { segment, page });
      ExclusiveStartKey = response.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }
  return layout;
}

describe('reliability: concurrent writes during the whole backfill', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('rel-progress');

  it('ends with index = table: no lost update, no resurrected delete, deletes before and after the scan passed, re-creates', async () => {
    // Prepare: a table of 2 KB items, so each segment is several Scan pages; where each item sits in the scan.
    const table = engines.deleteTableAfter(await seededTable(dynamodb, 'rel-concurrent', ITEMS));
    const index = engines.indexName('rel-concurrent');
    const mapping = { index };
    const layout = await scanLayout(dynamodb, table);
    const pagesPerSegment = Math.max(...[...layout.values()].map((place) => place.page));
    const checkpointed = Array.from({ length: SEGMENTS }, () => 0);
    const done = Array.from({ length: SEGMENTS }, () => false);

    const present = new Set(Array.from({ length: ITEMS }, (_, i) => i));
    const deleted: number[] = [];
    const versions = new Map<number, number>();
    const writes: Record<string, number> = {
      updateAnywhere: 0,
      updatePassed: 0,
      deletePassed: 0,
      deleteNotYetReached: 0,
      deleteAndRecreatePassed: 0,
      recreate: 0,
      putNew: 0,
    };
    // Seeded, so that a failure can be replayed with the same writes.
    const next = seededRandom(20240501);
    let nextNew = ITEMS;
    let stop = false;

    const pick = (accept: (i: number) => boolean): number | undefined => {
      const candidates = [...present].filter(accept);
      return candidates.length === 0 ? undefined : candidates[Math.floor(next() * candidates.length)];
    };
    const passed = (i: number) => {
      const place = layout.get(i);
      return place !== undefined && place.page <= checkpointed[place.segment]!;
    };
    // The scan reads one page ahead of its checkpoint: two pages beyond it is certainly not read yet.
    const notYetReached = (i: number) => {
      const place = layout.get(i);
      return place !== undefined && !done[place.segment] && place.page > checkpointed[place.segment]! + 2;
    };
    const put = async (i: number) => {
      const version = (versions.get(i) ?? 0) + 1;
      versions.set(i, version);
      await dynamodb.send(new PutItemCommand({ TableName: table, Item: reliabilityItem(i, version) }));
      present.add(i);
    };
    const update = async (i: number) => {
      const version = (versions.get(i) ?? 0) + 1;
      versions.set(i, version);
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: table,
          Key: reliabilityKey(i),
          // A changed exact number, and an attribute removed: either lost shows as a differing document.
          UpdateExpression: 'SET version = :v, amount = :a REMOVE detail',
          ExpressionAttributeValues: {
            ':v': { N: String(version) },
            ':a': { N: `-${i}.${version}000000000000000007` },
          },
        }),
      );
    };
    const remove = async (i: number) => {
      await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: reliabilityKey(i) }));
      present.delete(i);
      deleted.push(i);
    };
    const cycle: (() => Promise<boolean>)[] = [
      async () => {
        const i = pick(() => true);
        if (i === undefined) return false;
        await update(i);
        writes.updateAnywhere! += 1;
        return true;
      },
      async () => {
        const i = pick(passed);
        if (i === undefined) return false;
        await update(i);
        writes.updatePassed! += 1;
        return true;
      },
      async () => {
        const i = pick(passed);
        if (i === undefined) return false;
        await remove(i);
        writes.deletePassed! += 1;
        return true;
      },
      async () => {
        const i = pick(notYetReached);
        if (i === undefined) return false;
        await remove(i);
        writes.deleteNotYetReached! += 1;
        return true;
      },
      async () => {
        const i = pick(passed);
        if (i === undefined) return false;
        await remove(i);
        await put(i);
        writes.deleteAndRecreatePassed! += 1;
        return true;
      },
      async () => {
        const i = deleted.splice(Math.floor(next() * deleted.length), 1)[0];
        if (i === undefined) return false;
        await put(i);
        writes.recreate! += 1;
        return true;
      },
      async () => {
        await put(nextNew++);
        writes.putNew! += 1;
        return true;
      },
    ];
    const writer = (async () => {
      for (let turn = 0; !stop; turn++) {
        if (!(await cycle[turn % cycle.length]!())) await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    // Act: the backfill, paced by a read budget so that it lasts a few seconds, with the writer running throughout.
    const started = Date.now();
    let result: Awaited<ReturnType<typeof runLocalBackfill>>;
    try {
      result = await runLocalBackfill(
        localBackfillOptions(
          engines,
          { table, index, mapping, progressTable, deadLetterDir: deadLetterFolder() },
          {
            restart: true,
            input: { totalSegments: SEGMENTS, maxConcurrency: SEGMENTS, readUnitsPerSecond: 100 },
            onEvent: (event) => {
              if (event.type === 'segment-progress') checkpointed[event.segment] = event.progress.pages;
              if (event.type === 'segment-done') done[event.segment] = true;
            },
          },
        ),
      );
    } finally {
      stop = true;
      await writer;
    }
    const backfillSeconds = secondsSince(started);
    const drainStarted = Date.now();
    let streamRecords = 0;
    const updater = await reliabilityUpdater(
      engines,
      { table, mapping, progressTable },
      {
        onBatch: (records) => {
          streamRecords += records;
        },
      },
    );
    await updater.drain();
    const drainSeconds = secondsSince(drainStarted);
    const verifyStarted = Date.now();
    const report = await verify(dynamodb, opensearch, table, mapping);
    const verifySeconds = secondsSince(verifyStarted);

    // Assess
    const { summary } = result;
    const items = await tableCount(dynamodb, table);
    const documents = await indexCount(opensearch, index);
    const totalWrites = Object.values(writes).reduce((a, b) => a + b, 0);
    recordFigures('1 concurrent writes', {
      itemsBefore: ITEMS,
      itemsAfter: items,
      segments: SEGMENTS,
      pagesPerSegment,
      writesDuringBackfill: totalWrites,
      ...writes,
      scanned: summary.scanned,
      created: summary.created,
      alreadyPresent: summary.alreadyPresent,
      streamRecordsApplied: streamRecords,
      documents,
      missing: report.missing,
      extra: report.extra,
      differing: report.differing,
      backfillSeconds,
      drainSeconds,
      verifySeconds,
    });
    expectClean(report);
    expect(report.items).toBe(items);
    expect(documents).toBe(items);
    expect(summary.scanned).toBe(summary.created + summary.alreadyPresent + summary.failed + summary.skipped);
    expect(summary.failed + summary.skipped).toBe(0);
    // The writes really raced the scan, on both sides of it.
    expect(pagesPerSegment).toBeGreaterThanOrEqual(3);
    for (const kind of [
      'updatePassed',
      'deletePassed',
      'deleteNotYetReached',
      'deleteAndRecreatePassed',
      'recreate',
      'putNew',
    ]) {
      expect(writes[kind], kind).toBeGreaterThan(0);
    }
  });
});
