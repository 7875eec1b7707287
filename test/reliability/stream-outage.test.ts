/**
 * Chaos case: OpenSearch goes away while the stream updater follows the
 * table (`ddb2os run --follow`: a backfill, then the follower as run wires
 * it) and stays away for longer than the old retry budget, while puts,
 * updates and deletes keep arriving; the follow window even ends during the
 * outage, so the final drain meets it too. When OpenSearch is back, with no
 * manual step, verify must find the index equal to the table.
 *
 * "Stopped" is played by the fault proxy closing every connection before any
 * answer: a stopped OpenSearch refuses the connection, and to the client both
 * are a connection error with no answer (the same ConnectionError, which the
 * updater treats as the sink being unavailable), while the port stays ours
 * for the way back. The case's settings are the old retry budget scaled down
 * (short backoffs), so a 15 s outage exceeds it several times over; the
 * budget is computed from the old settings below.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { runLocalBackfill } from '../../local/backfill';
import type { FollowerBatchInfo } from '../../local/stream-follower';
import { failedBatchesDir } from '../../pipeline/apply/failed-batches';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { openSearchClient, opensearchUrl, uniqueName, useEngines } from '../support/engines';
import { startFaultProxy } from '../support/fault-proxy';
import {
  deadLetterFolder,
  expectClean,
  recordFigures,
  reliabilityItem,
  reliabilityKey,
  reliabilityUpdater,
  seededTable,
  verify,
} from './support';

const ITEMS = 300;
const OUTAGE_MS = 15_000;
/** The follow window ends this long into the outage; the final drain meets the rest of it. */
const FOLLOW_INTO_OUTAGE_MS = 4_000;
const RETRY = { baseDelayMs: 50, maxDelayMs: 500 };
const BULK = { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 200 };

/** Worst-case sum of full-jitter backoffs before attempt `attempts` (base doubling up to the cap). */
function backoffBudgetMs(attempts: number, baseMs: number, capMs: number): number {
  let total = 0;
  for (let attempt = 1; attempt < attempts; attempt++) total += Math.min(capMs, baseMs * 2 ** (attempt - 1));
  return total;
}

/**
 * The old settings: the event source mapping retried a batch 10 times (11
 * invocations) and the local follower's drain 8 times, each attempt with the
 * bulk writer's own retries. The larger of the two, with these delays.
 */
const OLD_ATTEMPTS = Math.max(1 + 10, 8);
const OLD_BUDGET_MS =
  OLD_ATTEMPTS * backoffBudgetMs(BULK.maxAttempts, BULK.baseDelayMs, BULK.maxDelayMs) +
  backoffBudgetMs(OLD_ATTEMPTS, RETRY.baseDelayMs, RETRY.maxDelayMs);

describe('reliability: OpenSearch away while the stream updater follows and writes keep arriving', () => {
  const engines = useEngines();
  const { dynamodb, streams } = engines;
  const progressTable = engines.tableName('rel-chaos-progress');

  it('catches up with no manual step once OpenSearch is back: verify finds 0 missing, 0 extra, 0 differing', async () => {
    // Prepare: a backfilled table, the follower running (both through the proxy)
    const table = engines.deleteTableAfter(await seededTable(dynamodb, 'rel-chaos', ITEMS, { padding: 200 }));
    const index = uniqueName('rel-chaos');
    engines.deleteIndexAfter(index);
    const mapping = { index };
    const deadLetterDir = deadLetterFolder();
    const proxy = await startFaultProxy(opensearchUrl());
    const viaProxy = { dynamodb, streams, opensearch: openSearchClient(proxy.url) };
    const direct = openSearchClient();
    const attempts: FollowerBatchInfo[] = [];
    const writes = { put: 0, updated: 0, deleted: 0 };

    try {
      await runLocalBackfill(
        localBackfillOptions(
          viaProxy,
          { table, index, mapping, progressTable, deadLetterDir },
          { input: { totalSegments: 2, maxConcurrency: 2 }, restart: true },
        ),
      );
      const updater = await reliabilityUpdater(
        viaProxy,
        { table, mapping, progressTable },
        { deadLetterDir, retry: RETRY, bulk: BULK, onAttempt: (info) => attempts.push(info) },
      );
      await updater.drain();
      updater.start();

      // Act: writes all along; OpenSearch away; the follow window ends during the outage (then a drain, as run does)
      let writing = true;
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          const k = n % (ITEMS / 2);
          if (n % 3 === 0) {
            await dynamodb.send(
              new PutItemCommand({ TableName: table, Item: reliabilityItem(ITEMS + n, 1, 200) }),
            );
            writes.put += 1;
          } else if (n % 3 === 1) {
            await dynamodb.send(
              new UpdateItemCommand({
                TableName: table,
                Key: reliabilityKey(2 * k),
                UpdateExpression: 'SET amount = :a, version = :v',
                ExpressionAttributeValues: {
                  ':a': { N: `${n}.00000000000000000001` },
                  ':v': { N: String(n) },
                },
              }),
            );
            writes.updated += 1;
          } else {
            await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: reliabilityKey(2 * k + 1) }));
            writes.deleted += 1;
          }
        }
      })();
      await sleep(1_000);
      const down = Date.now();
      proxy.setFaults({ dropConnections: true });
      await sleep(FOLLOW_INTO_OUTAGE_MS);
      await updater.stop();
      const finalDrain = updater.drain();
      await sleep(OUTAGE_MS - FOLLOW_INTO_OUTAGE_MS);
      const attemptsDuringOutage = Math.max(0, ...attempts.map((info) => info.attempt));
      proxy.setFaults({ dropConnections: false });
      const outageMs = Date.now() - down;
      await sleep(1_000);
      writing = false;
      await writer;
      await finalDrain;
      // What was written after the final drain began.
      await updater.drain();
      const report = await verify(dynamodb, direct, table, mapping);

      // Assess
      recordFigures('stream outage', {
        items: ITEMS,
        ...writes,
        outageMs,
        oldBudgetMs: OLD_BUDGET_MS,
        attemptsAtOnePage: attemptsDuringOutage,
        droppedConnections: proxy.stats.dropped,
        missing: report.missing,
        extra: report.extra,
        differing: report.differing,
      });
      expect(outageMs).toBeGreaterThan(OLD_BUDGET_MS);
      // The old settings gave up after OLD_ATTEMPTS attempts; the updater went on.
      expect(attemptsDuringOutage).toBeGreaterThan(OLD_ATTEMPTS);
      expect(proxy.stats.dropped).toBeGreaterThan(0);
      expect(writes.put + writes.updated + writes.deleted).toBeGreaterThan(30);
      expectClean(report);
      // Nothing set aside: an unavailable OpenSearch is neither poison nor a reason to give up.
      expect(await new DirectoryDeadLetterSink(deadLetterDir).read('updater')).toEqual([]);
      expect(existsSync(failedBatchesDir(deadLetterDir))).toBe(false);
      expect(existsSync(join(deadLetterDir, 'dead-letter'))).toBe(false);
    } finally {
      await viaProxy.opensearch.close();
      await direct.close();
      await proxy.close();
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
