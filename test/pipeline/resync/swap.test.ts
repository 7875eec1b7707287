/**
 * "Swap aliases" run again after it moved the aliases but failed to delete
 * the old index (OpenSearch busy, a timeout): the retry must still delete it,
 * though the alias no longer names it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { describeServingName, resyncIndexName, swapAlias } from '../../../pipeline/index/alias';
import { createOpenSearchClient } from '../../../pipeline/index/opensearch';
import { ensureProgressTable } from '../../../pipeline/progress/checkpoint';
import { drainResync, readResyncState, startResync } from '../../../pipeline/resync/resync-state';
import { swapResyncAliases } from '../../../pipeline/resync/resync-steps';
import { opensearchUrl, useEngines } from '../../support/engines';
import { type FaultyProxy, startFaultyProxy } from '../../support/opensearch-proxy';

const engines = useEngines();
const { dynamodb, opensearch } = engines;
const proxies: FaultyProxy[] = [];
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
});

const exists = async (index: string) => (await opensearch.indices.exists({ index })).body === true;

describe('swapping the aliases of a resync', () => {
  it('deletes the old index on a retry after the swap, when the first attempt could not', async () => {
    // Prepare: the serving alias on the old index; the resync of run-2 filled the new one and drained.
    const table = engines.tableName('orders');
    const progressTable = engines.tableName('resync-progress');
    await ensureProgressTable(dynamodb, progressTable);
    const serving = engines.indexName('serving');
    const old = engines.deleteIndexAfter(resyncIndexName(serving, 'run-1'));
    const next = engines.deleteIndexAfter(resyncIndexName(serving, 'run-2'));
    await opensearch.index({ index: old, id: 'a', body: { v: 1 }, refresh: true });
    await opensearch.index({ index: next, id: 'a', body: { v: 2 }, refresh: true });
    await swapAlias(opensearch, serving, old);
    const targets = { [serving]: next };
    await startResync(dynamodb, progressTable, table, 'run-2', targets);
    await drainResync(dynamodb, progressTable, table, 'run-2');
    let deletesFail = true;
    const proxy = await startFaultyProxy(opensearchUrl(), {
      unavailableOther: (method, path) => deletesFail && method === 'DELETE' && path.startsWith(`/${old}`),
    });
    proxies.push(proxy);
    const deps = {
      dynamodb,
      opensearch: createOpenSearchClient({ endpoint: proxy.url }),
      progressTable,
      table,
      mapping: { index: serving },
    };

    // Act: the first attempt moves the alias, then cannot delete the old index.
    await expect(swapResyncAliases({ runId: 'run-2', targets }, deps)).rejects.toThrow(
      `OpenSearch could not delete index ${old}`,
    );
    const afterFailure = {
      serving: await describeServingName(opensearch, serving),
      oldExists: await exists(old),
      state: await readResyncState(dynamodb, progressTable, table),
    };
    deletesFail = false;
    const retried = await swapResyncAliases({ runId: 'run-2', targets }, deps);
    const again = await swapResyncAliases({ runId: 'run-2', targets }, deps);

    // Assess
    expect(afterFailure.serving).toEqual({ kind: 'alias', indices: [next] });
    expect(afterFailure.oldExists).toBe(true);
    expect(afterFailure.state).toMatchObject({ runId: 'run-2', retiring: [old] });
    expect(retried.deletedIndices).toEqual([old]);
    expect(await exists(old)).toBe(false);
    expect(await readResyncState(dynamodb, progressTable, table)).toBeUndefined();
    expect(again.deletedIndices).toEqual([]);
    expect(await describeServingName(opensearch, serving)).toEqual({ kind: 'alias', indices: [next] });
  }, 60_000);
});
