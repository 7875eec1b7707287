/**
 * Reading a failed batch's records back from DynamoDB Local's real stream, by
 * shard and sequence numbers, and telling a range the stream no longer holds.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { readStreamRange } from '../../../pipeline/replay/stream-range';
import { useEngines } from '../../support/engines';
import { readStream } from '../apply/apply-stream-fixtures';
import { batchInfo, sequenceOf } from './replay-fixtures';

const engines = useEngines();
const { dynamodb, streams } = engines;

/** A table with `count` puts in its stream, and their sequence numbers. */
async function streamOf(count: number) {
  const table = await engines.createTable('range', {
    keySchema: { partitionKey: 'pk' },
    stream: 'NEW_AND_OLD_IMAGES',
  });
  for (let i = 0; i < count; i++) {
    await dynamodb.send(
      new PutItemCommand({ TableName: table, Item: { pk: { S: `k${i}` }, v: { N: `${i}` } } }),
    );
  }
  return { table, records: (await readStream(streams, dynamodb, table)).map(sequenceOf) };
}

describe('readStreamRange', () => {
  it('returns exactly the records from the start to the end sequence number, in order', async () => {
    // Prepare
    const { table, records } = await streamOf(7);
    const info = await batchInfo(engines, table, records[2]!, records[5]!);

    // Act
    const range = await readStreamRange(streams, info, { recordsPerPage: 2 });

    // Assess
    expect(range.held).toBe(true);
    const changes = range.held ? range.changes : [];
    expect(changes.map((change) => change.keys.pk?.S)).toEqual(['k2', 'k3', 'k4', 'k5']);
    expect(changes.map((change) => change.sequenceNumber)).toEqual(records.slice(2, 6));
  });

  it('says the stream no longer holds a shard it does not list', async () => {
    // Prepare
    const { table, records } = await streamOf(2);
    const info = {
      ...(await batchInfo(engines, table, records[0]!, records[1]!)),
      shardId: 'shardId-00000001700000000000-00000000',
    };

    // Act
    const range = await readStreamRange(streams, info);

    // Assess
    expect(range).toEqual({ held: false, reason: 'the shard no longer exists' });
  });

  it('says the stream no longer holds a start sequence number its shard does not have', async () => {
    // Prepare: a sequence number before the shard's first record (what a trimmed one is).
    const { table, records } = await streamOf(2);
    const info = await batchInfo(engines, table, '000000000000000000000', records[1]!);

    // Act
    const range = await readStreamRange(streams, info);

    // Assess
    expect(range).toEqual({ held: false, reason: 'the shard holds no record 000000000000000000000' });
  });

  it('says the shard ends before an end sequence number it never reached', async () => {
    // Prepare: an end past the last record of an open shard.
    const { table, records } = await streamOf(2);
    const last = records[1]!;
    const info = await batchInfo(engines, table, records[0]!, `${BigInt(last) + 1000n}`.padStart(21, '0'));

    // Act
    const read = readStreamRange(streams, info, { emptyPages: 2, emptyPageDelayMs: 1 });

    // Assess: an open shard may still be written; nothing is concluded from an empty page.
    await expect(read).rejects.toThrow(`returned nothing after ${last} before reaching`);
  });
});
