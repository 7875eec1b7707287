import { DeleteItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { ensureProgressTable } from '../../pipeline/progress/checkpoint';
import { acquireRunLock } from '../../pipeline/progress/run-lock';
import type { Item } from '../../pipeline/table/types';
import { indexCount, seedItems } from '../support/backfill-fixtures';
import { dynamodbEndpoint, localRunArgs, opensearchUrl, useEngines } from '../support/engines';
import { lastJsonLine, runCli } from './support';

function item(i: number): Item {
  return {
    id: { S: `order-${String(i).padStart(5, '0')}` },
    total: { N: `${i}.5` },
    note: { S: `order ${i}` },
  };
}

describe('ddb2os run', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('run-progress');
  const deadLetterDir = engines.tempDir('run');

  async function fixture(items: number): Promise<{ table: string; index: string; args: string[] }> {
    const table = await engines.createTable('run', {
      keySchema: { partitionKey: 'id' },
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = engines.indexName('run-index');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: items }, (_, i) => item(i)),
    );
    return { table, index, args: localRunArgs({ table, index, progressTable, deadLetterDir }) };
  }

  it('indexes a table, prints the summary and exits 0; --json ends stdout with the summary object', async () => {
    const { index, args } = await fixture(600);

    const result = await runCli([...args, '--segments', '3', '--concurrency', '2', '--json']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('backfill complete: run ');
    expect(lastJsonLine(result.stdout)).toMatchObject({
      segments: 3,
      scanned: 600,
      created: 600,
      alreadyPresent: 0,
      failed: 0,
      index,
    });
    // Not a terminal: plain timestamped progress lines on stderr.
    expect(result.stderr).toMatch(/^\d{4}-\d\d-\d\dT\S+Z segment \d done: \d+ items/m);
    expect(await indexCount(opensearch, index)).toBe(600);
    const doc = await opensearch.get({ index, id: 'order-00007' });
    expect(doc.body._source).toEqual({ id: 'order-00007', total: 7.5, note: 'order 7' });
  });

  it('a second run creates nothing, and --follow-for applies the changes made since the first', async () => {
    const { table, index, args } = await fixture(300);
    expect((await runCli([...args, '--segments', '2'])).code).toBe(0);
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { id: { S: 'order-00001' } },
        UpdateExpression: 'SET note = :n',
        ExpressionAttributeValues: { ':n': { S: 'changed after the backfill' } },
      }),
    );
    await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { id: { S: 'order-00002' } } }));

    const second = await runCli([...args, '--segments', '2', '--follow-for', '1', '--json']);

    expect(second.code).toBe(0);
    const summary = lastJsonLine(second.stdout);
    expect(summary).toMatchObject({ scanned: 299, created: 0, alreadyPresent: 299 });
    expect((summary.stream as { records: number }).records).toBeGreaterThanOrEqual(2);
    await opensearch.indices.refresh({ index });
    const changed = await opensearch.get({ index, id: 'order-00001' });
    expect(changed.body._source?.note).toBe('changed after the backfill');
    const deleted = await opensearch.get({ index, id: 'order-00002' }, { ignore: [404] });
    expect(deleted.body.found).toBe(false);
    expect(await indexCount(opensearch, index)).toBe(299);
  });

  it('stops cleanly on Ctrl-C (exit 130) and the same command resumes from the checkpoints', async () => {
    const { index, args } = await fixture(3_000);
    const controller = new AbortController();

    const interrupted = await runCli([...args, '--segments', '6', '--concurrency', '1'], {
      signal: controller.signal,
      onStderr: (text) => {
        if (text.includes('segment 0 done')) controller.abort();
      },
    });

    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain('run the same command again to resume from the checkpoints');
    const resumed = await runCli([...args, '--segments', '6', '--json']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming run /);
    expect(lastJsonLine(resumed.stdout)).toMatchObject({ scanned: 3_000, created: 3_000, alreadyPresent: 0 });
    expect(await indexCount(opensearch, index)).toBe(3_000);
  });

  it('says in one line which run holds the table while another backfill of it runs, exit 1, nothing read', async () => {
    // Prepare: a local run of the same table holds the run lock, its lease still running.
    const { table, index, args } = await fixture(20);
    await ensureProgressTable(dynamodb, progressTable);
    const now = new Date();
    await acquireRunLock(
      dynamodb,
      progressTable,
      table,
      {
        runId: 'other-run',
        acquiredAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + 60_000).toISOString(),
      },
      async () => true,
    );

    // Act
    const result = await runCli([...args, '--segments', '1']);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: backfill of ${table} stopped before any item was read: table ${table} is already being backfilled ` +
        `by local run other-run (it holds the run lock since ${now.toISOString()}); wait for it to end or stop it ` +
        'before starting another backfill of this table\n',
    );
    expect((await opensearch.indices.exists({ index })).body).toBe(false);
  });

  it('says in one line that a table does not exist, exit 1', async () => {
    const result = await runCli([
      'run',
      '--table',
      'no-such-table',
      '--index',
      'x',
      '--dynamodb-endpoint',
      dynamodbEndpoint(),
      '--opensearch-url',
      opensearchUrl(),
      '--progress-table',
      progressTable,
    ]);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^ddb2os: table no-such-table does not exist[^\n]*\n$/);
  });

  it('says in one line that OpenSearch cannot be reached, exit 1', async () => {
    const { args } = await fixture(1);
    const unreachable = args.map((arg) => (arg === opensearchUrl() ? 'http://127.0.0.1:1' : arg));

    const result = await runCli(unreachable);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^ddb2os: cannot reach OpenSearch at http:\/\/127\.0\.0\.1:1: .+\n$/);
  });

  it('rejects a bad number with one line naming the flag, exit 2', async () => {
    const result = await runCli(['run', '--table', 't', '--index', 'i', '--segments', '0']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('ddb2os: --segments must be a whole number from 1 to 1000000, got "0"\n');
  });
});
