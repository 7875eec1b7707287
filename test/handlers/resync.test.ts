/**
 * The resync Lambda's handler, with the environment the stack sets, against
 * the real DynamoDB Local and OpenSearch: each action of the definition's
 * resync states in the order the definition runs them.
 */
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler, type ResyncEvent } from '../../handlers/resync';
import { describeServingName } from '../../pipeline/index/alias';
import { ensureProgressTable } from '../../pipeline/progress/checkpoint';
import { readResyncState } from '../../pipeline/resync/resync-state';
import { TOMBSTONE_FIELD, tombstoneLine } from '../../pipeline/resync/tombstones';
import { dynamodbEndpoint, opensearchUrl, uniqueName, useEngines } from '../support/engines';

// Before handlers/resync.ts builds its Powertools instances at import: no log lines in the test output.
const POWERTOOLS_ENV = vi.hoisted(() => {
  const env = { POWERTOOLS_LOG_LEVEL: 'SILENT' };
  Object.assign(process.env, env);
  return env;
});

const engines = useEngines();
const { dynamodb, opensearch } = engines;
// The resync state names the table; the table itself is never read by these actions.
const table = uniqueName('orders');
const progressTable = engines.tableName('progress');
const index = engines.indexName('resync-handler');
const audit = engines.indexName('resync-handler-audit');
const ENV = {
  DDB2OS_TABLE_NAME: table,
  DDB2OS_INDEX_NAME: index,
  DDB2OS_MAPPING: JSON.stringify({ routes: [{ prefix: 'audit#', index: audit }] }),
  DDB2OS_OPENSEARCH_ENDPOINT: opensearchUrl(),
  DDB2OS_OPENSEARCH_SIGNING: 'none',
  DDB2OS_PROGRESS_TABLE: progressTable,
  DYNAMODB_ENDPOINT: dynamodbEndpoint(),
};

const call = (event: ResyncEvent) => handler(event, {} as Context);

beforeAll(async () => {
  Object.assign(process.env, ENV);
  await ensureProgressTable(dynamodb, progressTable);
  // The serving names before their first resync: plain indices with a document each.
  for (const name of [index, audit]) {
    await opensearch.index({ index: name, id: 'old', body: { name: 'old' }, refresh: true });
  }
});

afterAll(() => {
  for (const name of [...Object.keys(ENV), ...Object.keys(POWERTOOLS_ENV)]) delete process.env[name];
});

describe('the resync handler', () => {
  const runId = 'exec-1';
  const next = `${index}-${runId}`;
  const nextAudit = `${audit}-${runId}`;
  engines.deleteIndexAfter(next, nextAudit);

  it('start creates a new index for every index the mapping writes, with the tombstone field, and puts the state FILLING', async () => {
    const started = await call({ action: 'start', runId, indexConfig: 'null' });

    expect(started).toEqual({
      runId,
      targets: { [index]: next, [audit]: nextAudit },
      phase: 'FILLING',
      resumed: false,
    });
    const { body } = await opensearch.indices.getMapping({ index: next });
    expect(body[next]?.mappings.properties?.[TOMBSTONE_FIELD]).toEqual({ type: 'keyword' });
    expect((await readResyncState(dynamodb, progressTable, table))?.phase).toBe('FILLING');
  });

  it("start from a later execution resumes the table's resync: same run, same indices", async () => {
    const resumed = await call({ action: 'start', runId: 'exec-2', indexConfig: 'null' });

    expect(resumed).toMatchObject({ runId, targets: { [index]: next, [audit]: nextAudit }, resumed: true });
  });

  it('drain moves the state to DRAINING', async () => {
    expect(await call({ action: 'drain', runId })).toBeNull();

    expect((await readResyncState(dynamodb, progressTable, table))?.phase).toBe('DRAINING');
  });

  it("removeTombstones deletes the run's delete markers and counts them", async () => {
    await opensearch.index({
      index: next,
      id: 'gone',
      body: JSON.parse(tombstoneLine(runId)),
      refresh: true,
    });
    await opensearch.index({ index: next, id: 'kept', body: { name: 'kept' }, refresh: true });

    const removed = await call({ action: 'removeTombstones', runId, targets: { [index]: next } });

    expect(removed).toEqual({ tombstonesRemoved: 1 });
    expect((await opensearch.exists({ index: next, id: 'gone' })).body).toBe(false);
  });

  it('swap points each serving name at its new index, moving the plain indices behind aliases, and ends the resync', async () => {
    const swapped = await call({
      action: 'swap',
      runId,
      targets: { [index]: next, [audit]: nextAudit },
      keepOld: false,
    });

    expect(swapped).toEqual({
      swaps: [
        { alias: index, index: next, previousIndices: [], removedPlainIndex: true },
        { alias: audit, index: nextAudit, previousIndices: [], removedPlainIndex: true },
      ],
      deletedIndices: [],
    });
    expect(await describeServingName(opensearch, index)).toEqual({ kind: 'alias', indices: [next] });
    const hits = (await opensearch.search({ index, body: { query: { match_all: {} } } })).body.hits.hits;
    expect(hits.map((hit) => hit._id)).toEqual(['kept']);
    expect(await readResyncState(dynamodb, progressTable, table)).toBeUndefined();
  });

  it('abort without a resync in progress removes nothing', async () => {
    expect(await call({ action: 'abort' })).toEqual({ runId: null, deletedIndices: [] });
  });

  it('refuses an action it does not know, naming those it knows', async () => {
    await expect(call({ action: 'rebuild' } as never)).rejects.toThrow(
      'the resync function knows the actions start, drain, removeTombstones, swap and abort, not "rebuild"',
    );
  });
});
