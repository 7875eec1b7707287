import { describe, expect, it } from 'vitest';
import { describeServingName, resyncIndexName, swapAlias } from '../../../pipeline/index/alias';
import { useEngines } from '../../support/engines';

const engines = useEngines();
const { opensearch } = engines;

async function put(index: string, id: string, body: Record<string, unknown>): Promise<void> {
  await opensearch.index({ index, id, body, refresh: true });
}

async function idsThrough(name: string): Promise<string[]> {
  const { body } = await opensearch.search({ index: name, body: { query: { match_all: {} }, size: 100 } });
  return (body.hits.hits as { _id: string }[]).map((hit) => hit._id).sort();
}

describe('the serving alias of a resync', () => {
  it('moves a plain index behind an alias of its name in one call, serving the new index', async () => {
    // Prepare
    const name = engines.indexName('serving');
    await put(name, 'old-only', { v: 1 });
    const next = engines.deleteIndexAfter(resyncIndexName(name, 'Run-1'));
    await put(next, 'a', { v: 2 });
    await put(next, 'b', { v: 2 });

    // Act
    const before = await describeServingName(opensearch, name);
    const swap = await swapAlias(opensearch, name, next);
    const after = await describeServingName(opensearch, name);

    // Assess
    expect(before).toEqual({ kind: 'index' });
    expect(swap).toEqual({ alias: name, index: next, previousIndices: [], removedPlainIndex: true });
    expect(after).toEqual({ kind: 'alias', indices: [next] });
    expect(await idsThrough(name)).toEqual(['a', 'b']);
  });

  it('moves an alias from the old index to the new one and keeps the old index', async () => {
    // Prepare
    const name = engines.indexName('serving');
    const old = engines.deleteIndexAfter(resyncIndexName(name, 'run-1'));
    const next = engines.deleteIndexAfter(resyncIndexName(name, 'run-2'));
    await put(old, 'x', { v: 1 });
    await put(next, 'y', { v: 2 });
    await swapAlias(opensearch, name, old);

    // Act
    const swap = await swapAlias(opensearch, name, next);
    const again = await swapAlias(opensearch, name, next);

    // Assess
    expect(swap.previousIndices).toEqual([old]);
    expect(again).toEqual({ alias: name, index: next, previousIndices: [], removedPlainIndex: false });
    expect(await describeServingName(opensearch, name)).toEqual({ kind: 'alias', indices: [next] });
    expect(await idsThrough(name)).toEqual(['y']);
    expect((await opensearch.indices.exists({ index: old })).body).toBe(true);
  });

  it('creates the alias when the name is not served yet', async () => {
    const name = engines.indexName('serving');
    const next = engines.deleteIndexAfter(resyncIndexName(name, 'r'));
    await put(next, 'z', { v: 1 });

    expect(await describeServingName(opensearch, name)).toEqual({ kind: 'missing' });
    await swapAlias(opensearch, name, next);
    expect(await idsThrough(name)).toEqual(['z']);
  });

  /** Searches `name` until stopped; returns how many reads ran and what each failed read said. */
  function readContinuously(name: string): { stop: () => Promise<{ reads: number; failures: string[] }> } {
    let reads = 0;
    const failures: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        try {
          const ids = await idsThrough(name);
          if (ids.length !== 1) failures.push(`saw ${ids.length} documents`);
        } catch (error) {
          failures.push((error as Error).message);
        }
        reads += 1;
      }
    })();
    return {
      stop: async () => {
        reading = false;
        await reader;
        return { reads, failures };
      },
    };
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('never fails a reader while it moves an alias from one index to another', async () => {
    // Prepare
    const name = engines.indexName('serving');
    const old = engines.deleteIndexAfter(resyncIndexName(name, 'run-1'));
    const next = engines.deleteIndexAfter(resyncIndexName(name, 'run-2'));
    await put(old, 'a', { v: 1 });
    await put(next, 'a', { v: 2 });
    await swapAlias(opensearch, name, old);
    const reader = readContinuously(name);

    // Act
    await pause(100);
    await swapAlias(opensearch, name, next);
    await pause(100);
    const { reads, failures } = await reader.stop();

    // Assess
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(2);
  });

  it('never leaves a reader without the name while it moves a plain index behind an alias', async () => {
    // Prepare
    const name = engines.indexName('serving');
    await put(name, 'a', { v: 1 });
    const next = engines.deleteIndexAfter(resyncIndexName(name, 'live'));
    await put(next, 'a', { v: 2 });
    const reader = readContinuously(name);

    // Act
    await pause(100);
    await swapAlias(opensearch, name, next);
    await pause(100);
    const { reads, failures } = await reader.stop();

    // Assess: the name always resolves (no index_not_found_exception) to exactly one copy of the
    // document. The plain index is removed by the swap's own call, so a search already running on it
    // can fail with the shard gone (the limit docs/guarantees.md states); no other failure is allowed.
    expect(failures.filter((failure) => !failure.startsWith('search_phase_execution_exception'))).toEqual([]);
    expect(reads).toBeGreaterThan(2);
    expect(await idsThrough(name)).toEqual(['a']);
  });

  it('names the resync index after the run, in the characters an index name allows', () => {
    expect(resyncIndexName('orders', 'Exec:2026/12#1')).toBe('orders-exec-2026-12-1');
    expect(() => resyncIndexName('o'.repeat(250), 'run-0001')).toThrow(
      /longer than OpenSearch's 255 bytes: use a shorter run id/,
    );
  });
});
