/**
 * `ddb2os verify --repair` as a user runs it, on the real engines: what it
 * fixed, the second verify's line, exit codes, and the flags it refuses.
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { StreamFollower } from '../../local/stream-follower';
import { applyStreamRecords } from '../../pipeline/apply/apply-stream';
import { DynamoDBStreamPositionStore } from '../../pipeline/progress/stream-positions';
import type { Item } from '../../pipeline/table/types';
import { applyStreamDeps } from '../pipeline/apply/apply-stream-fixtures';
import {
  buildTableAndIndex,
  catalogItems,
  createIndex,
  driftCatalog,
  indexRaw,
} from '../pipeline/verify/verify-fixtures';
import { useEngines } from '../support/engines';
import { lastJsonLine, runVerify } from './support';

const shared = useEngines();
const { dynamodb, streams, opensearch: search } = shared;

async function fixture(items: Item[]): Promise<{ table: string; index: string }> {
  const keySchema = { partitionKey: 'pk' };
  const table = await shared.createTable('verify-repair', { keySchema });
  const index = shared.indexName('verify-repair');
  await buildTableAndIndex(dynamodb, search, table, keySchema, { index }, items);
  return { table, index };
}

/** `ddb2os verify --repair` on the test engines, with a dead-letter folder of its own, then `flags`. */
function runRepair(table: string, index: string, flags: string[] = []) {
  return runVerify(table, [
    '--index',
    index,
    '--repair',
    '--dead-letter-dir',
    shared.tempDir('dl'),
    ...flags,
  ]);
}

describe('ddb2os verify --repair', () => {
  it('repairs missing, differing and extra documents, prints what it fixed and a clean second verify, exit 0', async () => {
    // Prepare
    const { table, index } = await fixture(catalogItems(20));
    await driftCatalog(search, index);

    // Act
    const result = await runRepair(table, index, ['--json']);

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `Result: index "${index}" differs from table "${table}": 2 missing, 1 extra, 1 differing`,
    );
    expect(result.stdout).toContain(
      'Repair: 3 indexed, 1 deleted, 0 already right, 0 superseded, 0 dead-lettered, 0 failed',
    );
    expect(result.stdout).toContain(`    ${index}/stray`);
    expect(result.stdout).toContain(
      'Second verify of 4 repaired keys (3 documents checked): 0 missing, 0 extra, 0 differing',
    );
    expect(result.stdout).toContain('Result: every difference found is repaired');
    const json = lastJsonLine(result.stdout);
    expect(json).toMatchObject({
      missing: 2,
      extra: 1,
      differing: 1,
      repair: { indexed: 3, deleted: 1, superseded: 0, failed: [] },
      recheck: { keys: 4, missing: 0, extra: 0, differing: 0 },
    });
    const again = await runVerify(table, ['--index', index]);
    expect(again.code).toBe(0);
  });

  it('a document whose key is not in _source cannot be repaired: listed as failed, the second verify says so, exit 1', async () => {
    // Prepare
    const { table, index } = await fixture(catalogItems(3));
    await indexRaw(search, [{ index, id: 'orphan', json: '{"note":"no key here"}' }]);

    // Act
    const result = await runRepair(table, index);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      '0 indexed, 0 deleted, 0 already right, 0 superseded, 0 dead-lettered, 1 failed',
    );
    expect(result.stdout).toContain(`${index}/orphan: its item's key is not in _source (field pk is absent)`);
    expect(result.stdout).toContain(
      'Second verify of 0 repaired keys (0 documents checked): 0 missing, 1 extra, 0 differing',
    );
    expect(result.stderr).toBe(
      `ddb2os: after the repair, index "${index}" still differs from table "${table}" for the repaired keys: 0 missing, 1 extra, 0 differing\n`,
    );
  });

  it('more differences than --max-repairs: nothing is repaired and the flag is named, exit 1', async () => {
    // Prepare
    const { table, index } = await fixture(catalogItems(5));
    await search.delete({ index, id: 'product#1' });
    await search.delete({ index, id: 'product#2', refresh: true });

    // Act
    const result = await runVerify(table, ['--index', index, '--repair', '--max-repairs', '1']);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'ddb2os: verify found 2 differences, more than --max-repairs 1; nothing was repaired: raise --max-repairs ' +
        '(each difference takes a few hundred bytes of memory) or rebuild it while search keeps serving it: ' +
        `ddb2os resync --table ${table} --index ${index}\n`,
    );
    const again = await runVerify(table, ['--index', index]);
    expect(again.stderr).toContain('2 missing, 0 extra, 0 differing');
  });

  it('refuses --repair with --sample, and --max-repairs or --dead-letter-dir without --repair, exit 2', async () => {
    for (const [flags, message] of [
      [
        ['--repair', '--sample', '10'],
        '--repair needs the full comparison (a sample finds only some of the differences): drop --sample',
      ],
      [['--max-repairs', '10'], '--max-repairs goes with --repair'],
      [['--dead-letter-dir', 'x'], '--dead-letter-dir goes with --repair'],
    ] as const) {
      const result = await runVerify('any-table', ['--index', 'any-index', ...flags]);

      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr, flags.join(' ')).toContain(message);
    }
  });

  it('while a live updater applies concurrent writes to the same and other keys: the second verify and a final full verify are 0/0/0', async () => {
    // Prepare: a table whose stream the local follower applies with the updater's code, and an index it filled.
    const keySchema = { partitionKey: 'pk' };
    const table = await shared.createTable('verify-repair-live', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
    const index = shared.indexName('verify-repair-live');
    await createIndex(search, index);
    const put = (pk: string, rest: Item = {}) =>
      dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, ...rest } }));
    const remove = (pk: string) =>
      dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } }));
    for (let i = 0; i < 40; i++) await put(`k${i}`, { v: { N: String(i) }, name: { S: `item ${i}` } });
    const follower = new StreamFollower({
      streams,
      dynamodb,
      table,
      positions: await DynamoDBStreamPositionStore.open({
        dynamodb,
        progressTable: shared.tableName('verify-repair-progress'),
        table,
      }),
      apply: (changes) => applyStreamRecords(changes, applyStreamDeps(shared, table, keySchema, { index })),
      pollIntervalMs: 50,
    });
    await follower.drain();
    // Drift the updater never sees: documents deleted, altered, and extra ones no item produces.
    for (let i = 0; i < 5; i++) await search.delete({ index, id: `k${i}` });
    await indexRaw(
      search,
      Array.from({ length: 5 }, (_, i) => ({ index, id: `k${5 + i}`, json: `{"pk":"k${5 + i}","v":-1}` })),
    );
    await indexRaw(
      search,
      Array.from({ length: 5 }, (_, i) => ({ index, id: `ghost${i}`, json: `{"pk":"ghost${i}"}` })),
    );
    follower.start();
    let writes = 0;
    // Writes to drifted keys (updates, deletes, a re-create of a ghost) and to others, while the repair runs.
    const writer = (async () => {
      for (let round = 0; round < 6; round++) {
        await put(`k${round}`, { v: { N: String(100 + round) } }); // a deleted document's item changes
        await put(`k${5 + round}`, { v: { N: String(200 + round) } }); // an altered one's
        if (round < 3) await remove(`k${10 + round}`); // other keys go
        await put(`new${round}`); // new keys come
        if (round === 2) await put('ghost0', { back: { BOOL: true } }); // an extra document's item appears
        writes += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    // Act
    const result = await runRepair(table, index);
    const writesDuringRepair = writes;
    await writer;
    await follower.drain();
    await follower.stop();

    // Assess
    expect(writesDuringRepair, 'the writes overlapped the repair').toBeGreaterThan(0);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /Second verify of \d+ repaired keys \(\d+ documents checked\): 0 missing, 0 extra, 0 differing/,
    );
    const final = await runVerify(table, ['--index', index, '--json']);
    expect(final.stderr).toBe('');
    expect(final.code).toBe(0);
    expect(lastJsonLine(final.stdout)).toMatchObject({ missing: 0, extra: 0, differing: 0 });
  });
});
