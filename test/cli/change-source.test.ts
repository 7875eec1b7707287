/**
 * `ddb2os run --change-source kinesis|sqs` on the real local engines: the
 * stream or queue is created when missing (with a line that says so), the
 * change forwarder stands in for the AWS feature, and the updater applies
 * through the chosen source what changed after the backfill.
 */
import { DeleteItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Item } from '../../pipeline/table/types';
import { seedItems } from '../support/backfill-fixtures';
import { useChangeSourceEngines } from '../support/change-source-engines';
import { localRunArgs, uniqueName, useEngines } from '../support/engines';
import { lastJsonLine, runCli } from './support';

/** Few: every seeded item also goes through the source, and the unordered apply reads each key back. */
const ITEMS = 20;

function item(i: number): Item {
  return { id: { S: `order-${String(i).padStart(4, '0')}` }, note: { S: `order ${i}` } };
}

describe('ddb2os run --change-source', () => {
  const sources = useChangeSourceEngines({ sqs: true, kinesis: true });
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('source-progress');
  const deadLetterDir = engines.tempDir('source');

  async function fixture(): Promise<{ table: string; index: string; args: string[] }> {
    const table = await engines.createTable('source', {
      keySchema: { partitionKey: 'id' },
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = engines.indexName('source-index');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: ITEMS }, (_, i) => item(i)),
    );
    return { table, index, args: localRunArgs({ table, index, progressTable, deadLetterDir }) };
  }

  /** Two changes after the first run: one update, one delete. */
  async function changeTwo(table: string): Promise<void> {
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { id: { S: 'order-0001' } },
        UpdateExpression: 'SET note = :n',
        ExpressionAttributeValues: { ':n': { S: 'changed after the backfill' } },
      }),
    );
    await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { id: { S: 'order-0002' } } }));
  }

  async function expectChangesApplied(index: string): Promise<void> {
    await opensearch.indices.refresh({ index });
    const changed = await opensearch.get({ index, id: 'order-0001' });
    expect(changed.body._source).toEqual({ id: 'order-0001', note: 'changed after the backfill' });
    const deleted = await opensearch.get({ index, id: 'order-0002' }, { ignore: [404] });
    expect(deleted.body.found).toBe(false);
    expect((await opensearch.count({ index })).body.count).toBe(ITEMS - 1);
  }

  it.each([
    ['sqs', 'a standard queue (SNS envelope)', ['--sqs-envelope', 'sns']],
    ['sqs', 'a FIFO queue', ['--fifo']],
    ['kinesis', 'a Kinesis stream', []],
  ])(
    '%s through %s: creates the missing source, then applies what changed after the backfill',
    async (kind, _what, extra) => {
      const { table, index, args } = await fixture();
      const name = uniqueName('changes');
      const sourceArgs =
        kind === 'sqs'
          ? [
              '--change-source',
              'sqs',
              '--sqs-endpoint',
              sources.sqsEngine.url,
              '--change-queue',
              name,
              ...extra,
            ]
          : [
              '--change-source',
              'kinesis',
              '--kinesis-endpoint',
              sources.kinesisEngine.url,
              '--kinesis-stream',
              name,
            ];

      const first = await runCli([...args, ...sourceArgs, '--segments', '2']);
      await changeTwo(table);
      const second = await runCli([...args, ...sourceArgs, '--segments', '2', '--follow-for', '1', '--json']);

      expect(first.code).toBe(0);
      expect(first.stderr).toContain(
        kind === 'sqs'
          ? `created ${extra[0] === '--fifo' ? 'FIFO ' : ''}SQS queue ${name}${extra[0] === '--fifo' ? '.fifo' : ''} at `
          : `created Kinesis stream ${name} (1 shard) at `,
      );
      expect(first.stderr).toContain(
        kind === 'sqs'
          ? 'change forwarder: standing in for a fan-out'
          : 'change forwarder: standing in for Kinesis Data Streams for DynamoDB',
      );
      expect(second.code).toBe(0);
      expect(second.stderr).not.toMatch(/^created /m);
      expect(second.stderr).toContain(kind === 'sqs' ? 'following ' : `following Kinesis stream ${name}`);
      const summary = lastJsonLine(second.stdout);
      expect(summary).toMatchObject({ scanned: ITEMS - 1, created: 0, alreadyPresent: ITEMS - 1 });
      // The seeded items and the two changes went through the source, and were all applied.
      expect((summary.stream as { records: number }).records).toBeGreaterThanOrEqual(ITEMS + 2);
      await expectChangesApplied(index);
    },
  );

  it.each([
    [['--change-source', 'pigeon'], '--change-source must be stream, kinesis or sqs, not "pigeon"'],
    [['--change-source', 'kinesis', '--fifo'], '--fifo does not go with --change-source kinesis'],
    [['--change-queue', 'q'], '--change-queue does not go with --change-source stream'],
    [
      ['--change-source', 'sqs', '--sqs-envelope', 'carrier'],
      '--sqs-envelope must be one of pipes, sns-raw, sns, eventbridge, not "carrier"',
    ],
  ])('refuses %j before anything starts (exit 2)', async (flags, message) => {
    const result = await runCli(['run', '--table', 't', '--index', 'i', ...flags]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('--help names the sources and their flags', async () => {
    const result = await runCli(['run', '--help']);

    expect(result.code).toBe(0);
    for (const flag of [
      '--change-source',
      '--kinesis-stream',
      '--change-queue',
      '--sqs-envelope',
      '--fifo',
    ]) {
      expect(result.stdout).toContain(flag);
    }
    expect(result.stdout).toContain('a change forwarder stands in for the AWS feature');
  });
});
