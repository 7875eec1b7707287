/**
 * Reliability case 4: a busy OpenSearch and a throttled DynamoDB table, made
 * by test/support/fault-proxy.ts in front of the REAL engines. OpenSearch answers
 * 429 es_rejected_execution_exception to a share of the bulk items, DynamoDB
 * answers ProvisionedThroughputExceededException (HTTP 400, DynamoDB's JSON
 * body) to a share of the Scan calls. Everything must land, and the retries
 * must be counted: the run's `retried` is exactly the number of items the
 * proxy rejected during the backfill.
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocalBackfill } from '../../local/backfill';
import { localBackfillOptions } from '../support/backfill-fixtures';
import {
  dynamoClient,
  dynamodbEndpoint,
  openSearchClient,
  opensearchUrl,
  streamsClient,
  useEngines,
} from '../support/engines';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
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

const ITEMS = 3_000;
const SEGMENTS = 6;
const REJECT_SHARE = 0.2;
const THROTTLE_SHARE = 0.4;

describe('reliability: OpenSearch 429s and DynamoDB throttling, through a fault proxy', () => {
  let opensearchProxy: FaultProxy;
  let dynamodbProxy: FaultProxy;
  const direct = useEngines();
  const progressTable = direct.tableName('rel-progress');

  beforeAll(async () => {
    opensearchProxy = await startFaultProxy(opensearchUrl(), { bulkItemRejectShare: REJECT_SHARE });
    dynamodbProxy = await startFaultProxy(dynamodbEndpoint(), {
      throttleShare: THROTTLE_SHARE,
      throttleOperations: ['Scan'],
    });
  });

  afterAll(async () => {
    await opensearchProxy?.close();
    await dynamodbProxy?.close();
  });

  it('lands every item, counts every retry, and the updater gets through the same faults', async () => {
    // Prepare: the table (written directly), and clients that go through the proxies.
    const table = direct.deleteTableAfter(await seededTable(direct.dynamodb, 'rel-throttle', ITEMS));
    const index = direct.indexName('rel-throttle');
    const mapping = { index };
    const proxied = {
      dynamodb: dynamoClient(dynamodbProxy.url),
      streams: streamsClient(dynamodbProxy.url),
      opensearch: openSearchClient(opensearchProxy.url),
    };

    // Act: the backfill through the faults.
    const started = Date.now();
    const result = await runLocalBackfill(
      localBackfillOptions(
        proxied,
        { table, index, mapping, progressTable, deadLetterDir: deadLetterFolder() },
        { restart: true, input: { totalSegments: SEGMENTS, maxConcurrency: 3 } },
      ),
    );
    const backfillSeconds = secondsSince(started);
    const atBackfillEnd = { ...opensearchProxy.stats, operations: { ...dynamodbProxy.stats.operations } };
    const throttledScans = dynamodbProxy.stats.throttled;

    // Then changes, applied by the updater through the same faults (its index and delete actions get 429s too).
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) {
        await direct.dynamodb.send(new DeleteItemCommand({ TableName: table, Key: reliabilityKey(i * 40) }));
      } else {
        await direct.dynamodb.send(
          new PutItemCommand({ TableName: table, Item: reliabilityItem(i * 40, 1) }),
        );
      }
    }
    const updater = await reliabilityUpdater(proxied, { table, mapping, progressTable });
    await updater.drain();
    const report = await verify(direct.dynamodb, direct.opensearch, table, mapping);

    // Assess
    const { summary } = result;
    const documents = await indexCount(direct.opensearch, index);
    const items = await tableCount(direct.dynamodb, table);
    recordFigures('4 throttling and 429s', {
      items: ITEMS,
      scanCalls: atBackfillEnd.operations.Scan ?? 0,
      throttledScans,
      bulkActions: atBackfillEnd.bulkActions,
      rejectedItems: atBackfillEnd.rejectedItems,
      retried: summary.retried,
      rejectedItemsUpdater: opensearchProxy.stats.rejectedItems - atBackfillEnd.rejectedItems,
      scanned: summary.scanned,
      created: summary.created,
      alreadyPresent: summary.alreadyPresent,
      documents,
      missing: report.missing,
      extra: report.extra,
      differing: report.differing,
      backfillSeconds,
    });
    expect(throttledScans).toBeGreaterThan(0);
    expect(atBackfillEnd.rejectedItems).toBeGreaterThan(0);
    expect(summary.retried).toBeGreaterThan(0);
    // Each rejected item was resent once and counted once.
    expect(summary.retried).toBe(atBackfillEnd.rejectedItems);
    expect(opensearchProxy.stats.rejectedItems).toBeGreaterThan(atBackfillEnd.rejectedItems);
    expect(summary).toMatchObject({
      scanned: ITEMS,
      created: ITEMS,
      alreadyPresent: 0,
      failed: 0,
      skipped: 0,
    });
    expectClean(report);
    expect(documents).toBe(items);
  });
});
