/**
 * Reliability case 2: OpenSearch stopped for 20 seconds in the middle of the
 * backfill, then started again (a real process stop: same data folder, same
 * port). This case starts its OWN OpenSearch, so the shared engines are never
 * stopped; DynamoDB is the suite's DynamoDB Local.
 *
 * The run must complete: the bulk writer retries while OpenSearch is away,
 * a segment whose retries run out fails and the workflow's Retry tries it
 * again from its checkpoint, and if the outage outlasts even that, the same
 * run started again completes it. Changes made while OpenSearch is down
 * reach the index through the updater. Then verify finds no difference.
 */
import { DeleteItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocalBackfill } from '../../local/backfill';
import type { Engine } from '../../local/engines/engine';
import { startOpenSearch } from '../../local/engines/opensearch';
import { WorkflowFailedError } from '../../local/workflow';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { openSearchClient, uniqueName, useEngines } from '../support/engines';
import {
  deadLetterFolder,
  expectClean,
  indexCount,
  recordFigures,
  reliabilityKey,
  reliabilityUpdater,
  secondsSince,
  seededTable,
  tableCount,
  verify,
} from './support';

const ITEMS = 4_000;
const SEGMENTS = 2;
const DOWN_FOR_MS = 20_000;

describe('reliability: OpenSearch stopped in the middle of the backfill', () => {
  // The shared OpenSearch is never used here: this case's own OpenSearch goes down with its index.
  const shared = useEngines();
  const { dynamodb, streams } = shared;
  let engine: Engine;
  let opensearch: Client;
  const progressTable = shared.tableName('rel-progress');

  beforeAll(async () => {
    engine = await startOpenSearch({ openSearchHeap: '512m' });
    opensearch = openSearchClient(engine.url);
  });

  afterAll(async () => {
    await engine?.stop();
  });

  it('completes once OpenSearch is back (same data, same port), with zero differences', async () => {
    // Prepare
    const table = shared.deleteTableAfter(await seededTable(dynamodb, 'rel-outage', ITEMS));
    const index = uniqueName('rel-outage');
    const mapping = { index };
    const url = engine.url;
    const pidBefore = engine.pid;
    const scannedSoFar = Array.from({ length: SEGMENTS }, () => 0);
    let outage: Promise<void> | undefined;
    let scannedAtStop = 0;
    let downSeconds = 0;
    let failedAttempts = 0;
    const writesWhileDown = { updated: 0, deleted: 0 };
    const takeDown = async () => {
      scannedAtStop = scannedSoFar.reduce((a, b) => a + b, 0);
      const stopped = Date.now();
      await engine.stopProcess?.();
      // The table keeps changing while OpenSearch is away.
      for (let i = 0; i < 5; i++) {
        await dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: reliabilityKey(i * 101),
            UpdateExpression: 'SET amount = :a',
            ExpressionAttributeValues: { ':a': { N: `0.${i}0000000000000000000000000000001` } },
          }),
        );
        writesWhileDown.updated += 1;
        await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: reliabilityKey(i * 101 + 50) }));
        writesWhileDown.deleted += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, DOWN_FOR_MS - (Date.now() - stopped))));
      await engine.startAgain?.();
      downSeconds = secondsSince(stopped);
    };
    const clients = { dynamodb, streams, opensearch };
    const options = localBackfillOptions(
      clients,
      { table, index, mapping, progressTable, deadLetterDir: deadLetterFolder() },
      {
        input: { totalSegments: SEGMENTS, maxConcurrency: SEGMENTS, readUnitsPerSecond: 100 },
        segmentRetryIntervalMs: 2_000,
        onEvent: (event) => {
          if (event.type === 'segment-progress') {
            scannedSoFar[event.segment] = event.progress.scanned;
            // The first checkpoint of a segment: stop OpenSearch while every segment still has pages to go.
            outage ??= takeDown();
          }
          if (event.type === 'segment-failed') failedAttempts += 1;
        },
      },
    );

    // Act: the backfill; if OpenSearch's absence outlasts the segment retries, the same run again.
    const started = Date.now();
    let runs = 1;
    const result = await runLocalBackfill({ ...options, restart: true }).catch(async (error: unknown) => {
      if (!(error instanceof WorkflowFailedError)) throw error;
      expect(error.error).toBe('SinkUnavailableError');
      await outage;
      runs += 1;
      return runLocalBackfill(options);
    });
    await outage;
    const backfillSeconds = secondsSince(started);
    const updater = await reliabilityUpdater(clients, { table, mapping, progressTable });
    await updater.drain();
    const report = await verify(dynamodb, opensearch, table, mapping);

    // Assess
    const { summary } = result;
    const items = await tableCount(dynamodb, table);
    const documents = await indexCount(opensearch, index);
    recordFigures('2 OpenSearch outage', {
      items: ITEMS,
      itemsAfter: items,
      scannedAtStop,
      downSeconds,
      failedSegmentAttempts: failedAttempts,
      runs,
      scanned: summary.scanned,
      created: summary.created,
      alreadyPresent: summary.alreadyPresent,
      retried: summary.retried,
      documents,
      missing: report.missing,
      extra: report.extra,
      differing: report.differing,
      backfillSeconds,
    });
    expect(outage).toBeDefined();
    expect(scannedAtStop).toBeGreaterThan(0);
    expect(scannedAtStop).toBeLessThan(ITEMS);
    // The same engine came back: same URL, a new process, the documents written before the stop still there.
    expect(engine.url).toBe(url);
    expect(engine.pid).not.toBe(pidBefore);
    // A summary at all means every segment completed (summarize refuses otherwise).
    expect(summary.segments).toBe(SEGMENTS);
    // Every item once: those written before the stop but not yet checkpointed are found already present.
    expect(summary.scanned).toBeGreaterThanOrEqual(ITEMS - writesWhileDown.deleted);
    expect(summary.scanned).toBe(summary.created + summary.alreadyPresent + summary.failed + summary.skipped);
    expect(summary.failed).toBe(0);
    expectClean(report);
    expect(documents).toBe(items);
    expect(items).toBe(ITEMS - writesWhileDown.deleted);
  });
});
