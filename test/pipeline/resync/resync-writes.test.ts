/**
 * The updater's writes during a resync, on the real engines: changes read
 * back from DynamoDB Local's stream and applied by applyStreamRecords with a
 * resync state. The serving index gets them as always; the index being filled
 * gets them too, a delete as a tombstone in FILLING that the backfill's create
 * of an older read cannot overwrite, and for real in DRAINING.
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromStreamsRecord } from '../../../pipeline/apply/stream-records';
import type { ResyncState } from '../../../pipeline/resync/resync-state';
import { TOMBSTONE_FIELD } from '../../../pipeline/resync/tombstones';
import { useEngines } from '../../support/engines';
import { applyStreamDeps, indexDocuments, readStream } from '../apply/apply-stream-fixtures';

const engines = useEngines();
const keySchema = { partitionKey: 'pk' };

async function setup(phase: ResyncState['phase'] | 'none') {
  const table = await engines.createTable('resync-writes', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const serving = engines.indexName('serving');
  const filling = engines.indexName('filling');
  for (const index of [serving, filling]) await engines.opensearch.indices.create({ index });
  const state: ResyncState | undefined =
    phase === 'none'
      ? undefined
      : { runId: 'run-7', phase, targets: { [serving]: filling }, startedAt: '', phaseChangedAt: '' };
  let reads = 0;
  const deps = applyStreamDeps(
    engines,
    table,
    keySchema,
    { index: serving },
    {
      resync: async () => {
        reads += 1;
        return state;
      },
    },
  );
  const put = (pk: string, v: number) =>
    engines.dynamodb.send(
      new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, v: { N: String(v) } } }),
    );
  const remove = (pk: string) =>
    engines.dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } }));
  const applyAll = async () => {
    const changes = (await readStream(engines.streams, engines.dynamodb, table)).map(fromStreamsRecord);
    return applyStreamRecords(changes, deps);
  };
  return { serving, filling, put, remove, applyAll, reads: () => reads };
}

describe('the updater during a resync', () => {
  it('FILLING: writes both indices, a delete as a tombstone the backfill cannot overwrite', async () => {
    // Prepare
    const { serving, filling, put, remove, applyAll, reads } = await setup('FILLING');
    await put('kept', 1);
    await put('gone', 1);
    await remove('gone');

    // Act
    const result = await applyAll();
    const create = await engines.opensearch.create(
      { index: filling, id: 'gone', body: { pk: 'gone', v: 1 } },
      { ignore: [409] },
    );

    // Assess
    expect(result.firstFailedSequenceNumber).toBeUndefined();
    expect(reads()).toBe(1);
    expect(Object.fromEntries(await indexDocuments(engines.opensearch, serving))).toEqual({
      kept: { pk: 'kept', v: 1 },
    });
    expect(Object.fromEntries(await indexDocuments(engines.opensearch, filling))).toEqual({
      kept: { pk: 'kept', v: 1 },
      gone: { [TOMBSTONE_FIELD]: 'run-7' },
    });
    expect(create.statusCode).toBe(409);
  });

  it('DRAINING: deletes for real in the index being filled', async () => {
    const { filling, put, remove, applyAll } = await setup('DRAINING');
    await engines.opensearch.index({ index: filling, id: 'gone', body: { pk: 'gone', v: 0 }, refresh: true });
    await put('kept', 2);
    await put('gone', 1);
    await remove('gone');

    await applyAll();

    expect(Object.fromEntries(await indexDocuments(engines.opensearch, filling))).toEqual({
      kept: { pk: 'kept', v: 2 },
    });
  });

  it('no resync: the serving index only', async () => {
    const { serving, filling, put, applyAll } = await setup('none');
    await put('a', 3);

    await applyAll();

    expect([...(await indexDocuments(engines.opensearch, serving)).keys()]).toEqual(['a']);
    expect((await indexDocuments(engines.opensearch, filling)).size).toBe(0);
  });
});
