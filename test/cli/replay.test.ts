/**
 * `ddb2os replay` on the real engines: on-failure records in the local
 * follower's folder, their batches read back from DynamoDB Local's stream,
 * each key's current state written to the real OpenSearch.
 */
import { existsSync } from 'node:fs';
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { applyStreamRecords } from '../../pipeline/apply/apply-stream';
import { fromStreamsRecord } from '../../pipeline/apply/stream-records';
import type { Item } from '../../pipeline/table/types';
import { applyStreamDeps, readStream, UNREACHABLE_OPENSEARCH } from '../pipeline/apply/apply-stream-fixtures';
import { batchInfo, failureRecord, sequenceOf, writeFailedBatch } from '../pipeline/replay/replay-fixtures';
import { engineFlags, useEngines } from '../support/engines';
import { newWorld, REGION, type StubWorld, stubClient } from './cloud-stub';
import { runCli } from './support';

const holder = vi.hoisted(() => ({ world: {} as StubWorld }));
vi.mock('../../cli/commands/replay', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../cli/commands/replay')>();
  const { worldDeps } = await import('./cloud-stub');
  return { ...mod, replayCommand: mod.createReplayCommand(worldDeps(holder)) };
});

const engines = useEngines();
const { dynamodb, streams, opensearch } = engines;
const keySchema = { partitionKey: 'pk' };

/**
 * A table whose first three changes (puts of a, b, c) are a batch the updater gave up on, and whose
 * later changes (b deleted, c changed) the updater applied: the index holds c's newer value and no a.
 */
async function afterAFailedBatch(options: { behindAlias?: boolean } = {}) {
  const table = await engines.createTable('replay', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  const index = engines.indexName('replay');
  if (options.behindAlias) {
    // As after a resync: the name is an alias of the index that holds the documents.
    const concrete = engines.deleteIndexAfter(`${index}-resynced`);
    await opensearch.indices.create({ index: concrete, body: { aliases: { [index]: {} } } });
  }
  const deadLetterDir = engines.tempDir('replay');
  const put = (pk: string, v: string) =>
    dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, v: { S: v } } }));
  await put('a', 'a1');
  await put('b', 'b1');
  await put('c', 'c1');
  await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'b' } } }));
  await put('c', 'c2');
  const records = await readStream(streams, dynamodb, table);
  const deps = applyStreamDeps(engines, table, keySchema, { index });
  // The updater applies what came after the failed batch, as the event source mapping did.
  const later = await applyStreamRecords(records.slice(3).map(fromStreamsRecord), deps);
  expect(later.applied).toBe(2);
  const info = await batchInfo(engines, table, sequenceOf(records[0]!), sequenceOf(records[2]!));
  return { table, index, deadLetterDir, info, records };
}

/** `ddb2os replay` of a run's table, index and folder on the test engines (`at` points OpenSearch elsewhere). */
function replay(
  run: { table: string; index: string; deadLetterDir: string },
  flags: string[] = [],
  at: { opensearch?: string } = {},
) {
  return runCli([
    ...replayOf(run.table, run.index),
    ...engineFlags(at),
    '--dead-letter-dir',
    run.deadLetterDir,
    ...flags,
  ]);
}

function replayOf(table: string, index: string): string[] {
  return ['replay', '--table', table, '--index', index];
}

async function documents(index: string): Promise<Record<string, Item>> {
  await opensearch.indices.refresh({ index });
  const { body } = await opensearch.search({ index, body: { query: { match_all: {} }, size: 100 } });
  return Object.fromEntries(body.hits.hits.map((hit) => [hit._id, hit._source as Item]));
}

describe('ddb2os replay (local folder)', () => {
  it("writes each key's current state: a missed put lands, a later delete is not undone, a later value stays; the record is removed", async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const file = await writeFailedBatch(run.deadLetterDir, 'batch.json', failureRecord(run.info));

    // Act
    const result = await replay(run);

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await documents(run.index)).toEqual({ a: { pk: 'a', v: 'a1' }, c: { pk: 'c', v: 'c2' } });
    expect(existsSync(file)).toBe(false);
    const line = result.stdout.split('\n').find((text) => text.startsWith('replayed'));
    expect(line).toContain(
      `${run.info.shardId} ${run.info.startSequenceNumber}..${run.info.endSequenceNumber}`,
    );
    // a is written; b (gone) and c (c2 already) are left as they are.
    expect(line).toContain('3 records, 3 keys (a, b, c): 1 written, 0 deleted, 0 superseded, 2 unchanged');
    expect(line).toContain(`(${file} removed)`);
    expect(result.stdout).toContain(
      'replay: 1 records: 1 replayed, 0 no longer in the stream, 0 failed, 0 malformed; 0 remain',
    );
  });

  it('writes through an alias (the name after a resync) to the index behind it, creating no index', async () => {
    // Prepare
    const run = await afterAFailedBatch({ behindAlias: true });
    await writeFailedBatch(run.deadLetterDir, 'batch.json', failureRecord(run.info));

    // Act
    const result = await replay(run);

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await documents(run.index)).toEqual({ a: { pk: 'a', v: 'a1' }, c: { pk: 'c', v: 'c2' } });
    const { body } = await opensearch.indices.getAlias({ name: run.index });
    expect(Object.keys(body)).toEqual([`${run.index}-resynced`]);
  });

  it('keeps a record whose shard the stream no longer holds, names the shard and time range, and prints the verify --repair command (exit 1)', async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const gone = { ...run.info, shardId: 'shardId-00000001700000000000-0badc0de' };
    const file = await writeFailedBatch(run.deadLetterDir, 'gone.json', failureRecord(gone));

    // Act
    const result = await replay(run);

    // Assess
    expect(result.code).toBe(1);
    expect(existsSync(file)).toBe(true);
    expect(result.stdout).toContain(
      `trimmed    ${gone.shardId} ${gone.startSequenceNumber}..${gone.endSequenceNumber} ` +
        '(changes from 2026-11-30T08:01:02.000Z to 2026-11-30T08:01:09.000Z): the stream no longer holds these records: ' +
        `the shard no longer exists (${file} kept)`,
    );
    const [dynamodbEndpoint, opensearchUrl] = [engineFlags()[1], engineFlags()[3]];
    expect(result.stdout).toContain(
      `  ddb2os verify --repair --table ${run.table} --index ${run.index} --dynamodb-endpoint ${dynamodbEndpoint} --opensearch-url ${opensearchUrl}\n`,
    );
    expect(result.stderr).toContain(
      `1 of 1 failed stream batches remain in ${run.deadLetterDir}/failed-batches`,
    );
    // Nothing was written for it; the printed command repairs what the batch missed.
    expect(await documents(run.index)).toEqual({ c: { pk: 'c', v: 'c2' } });
    const command = /^ {2}ddb2os (verify --repair .*)$/m.exec(result.stdout)![1]!;
    const repaired = await runCli(command.split(' '));
    expect(repaired.code).toBe(0);
    expect(await documents(run.index)).toEqual({ a: { pk: 'a', v: 'a1' }, c: { pk: 'c', v: 'c2' } });
  });

  it('with --discard-trimmed deletes such a record once reported, and still exits 1', async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const file = await writeFailedBatch(
      run.deadLetterDir,
      'trimmed.json',
      failureRecord({ ...run.info, startSequenceNumber: '000000000000000000000' }),
    );

    // Act
    const result = await replay(run, ['--discard-trimmed']);

    // Assess
    expect(result.code).toBe(1);
    expect(existsSync(file)).toBe(false);
    expect(result.stdout).toContain('the shard holds no record 000000000000000000000');
    expect(result.stdout).toContain(`(${file} deleted: --discard-trimmed)`);
    expect(result.stdout).toContain('ddb2os verify --repair');
  });

  it('names a malformed file and keeps it, and still replays the others (exit 1)', async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const notJson = await writeFailedBatch(run.deadLetterDir, 'a-broken.json', '{"DDBStreamBatchInfo": ');
    const notRecord = await writeFailedBatch(run.deadLetterDir, 'b-other.json', '{"segment": 3}');
    const good = await writeFailedBatch(run.deadLetterDir, 'c-good.json', failureRecord(run.info));

    // Act
    const result = await replay(run);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`malformed  ${notJson} is not JSON: .* \\(kept\\)`));
    expect(result.stdout).toContain(
      `malformed  ${notRecord} is not a stream batch failure record: it has no DDBStreamBatchInfo`,
    );
    expect([existsSync(notJson), existsSync(notRecord), existsSync(good)]).toEqual([true, true, false]);
    expect(await documents(run.index)).toEqual({ a: { pk: 'a', v: 'a1' }, c: { pk: 'c', v: 'c2' } });
    expect(result.stdout).toContain(
      '3 records: 1 replayed, 0 no longer in the stream, 0 failed, 2 malformed; 2 remain',
    );
  });

  it('keeps a record whose keys cannot be written (OpenSearch unreachable) for the next replay (exit 1)', async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const file = await writeFailedBatch(run.deadLetterDir, 'batch.json', failureRecord(run.info));

    // Act
    const result = await replay(run, [], { opensearch: UNREACHABLE_OPENSEARCH });

    // Assess
    expect(result.code).toBe(1);
    expect(existsSync(file)).toBe(true);
    expect(result.stdout).toMatch(
      /^failed {5}shardId-\S+ \d+\.\.\d+, 3 keys \(a, b, c\): .+ \(.+batch\.json kept\)$/m,
    );
    expect(result.stdout).toContain('Run the same replay again for the records that failed.');
  });

  it("keeps a record of another table's stream instead of writing this table's items for its keys (exit 1)", async () => {
    // Prepare
    const run = await afterAFailedBatch();
    const other = {
      ...run.info,
      streamArn: run.info.streamArn.replace(`table/${run.table}/`, 'table/invoices/'),
    };
    const file = await writeFailedBatch(run.deadLetterDir, 'other.json', failureRecord(other));

    // Act
    const result = await replay(run);

    // Assess
    expect(result.code).toBe(1);
    expect(existsSync(file)).toBe(true);
    expect(result.stdout).toContain(
      `: the record is of table invoices's stream, not of table ${run.table}'s (${file} kept)`,
    );
    expect(await documents(run.index)).toEqual({ c: { pk: 'c', v: 'c2' } });
  });

  it('says so and exits 0 when there is nothing to replay', async () => {
    // Prepare
    const run = await afterAFailedBatch();

    // Act
    const result = await replay(run);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `nothing to replay: ${run.deadLetterDir}/failed-batches holds no failed stream batch`,
    );
  });
});

describe('ddb2os replay: usage and cloud flags', () => {
  it('exits 2 without --table, and with both --stack and --queue-url', async () => {
    const noTable = await runCli(['replay', ...engineFlags()]);
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toContain('--table is required');

    const both = await runCli([
      ...replayOf('t', 'i'),
      '--stack',
      'S',
      '--queue-url',
      'https://sqs.eu-west-1.amazonaws.com/123456789012/q',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('pass either --stack or --queue-url, not both');
  });

  it('exits 2 for a --queue-url that is not a queue URL', async () => {
    const result = await runCli([...replayOf('t', 'i'), '--queue-url', 'my-queue']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--queue-url "my-queue" is not an SQS queue URL');
  });

  it('names the missing StreamFailureQueueUrl output of a --stack (CloudFormation stubbed)', async () => {
    // Prepare
    holder.world = newWorld();
    holder.world.cloudFormation = stubClient<CloudFormationClient>({
      DescribeStacks: () => ({
        Stacks: [{ StackName: 'Old', Outputs: [{ OutputKey: 'StateMachineArn', OutputValue: 'arn' }] }],
      }),
    });

    // Act
    const result = await runCli([...replayOf('t', 'i'), '--stack', 'Old', '--region', REGION]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: stack Old in ${REGION} has no StreamFailureQueueUrl output (its outputs: StateMachineArn); is it a ddb2os stack?\n`,
    );
  });
});
