/** The order replay takes the on-failure records in, and the keys it writes per batch. */
import { describe, expect, it } from 'vitest';
import type { FailedBatchMessage } from '../../../pipeline/replay/failed-batch-sources';
import { distinctKeys, inReplayOrder } from '../../../pipeline/replay/replay-batches';
import { failureRecord } from './replay-fixtures';

const STREAM = 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-11-30T00:00:00.000';

function message(name: string, shardId: string, start: string, firstArrival?: string): FailedBatchMessage {
  const batch = failureRecord({
    shardId,
    startSequenceNumber: start,
    endSequenceNumber: `${start}9`,
    streamArn: STREAM,
  });
  if (firstArrival === undefined) delete batch.DDBStreamBatchInfo.approximateArrivalOfFirstRecord;
  else batch.DDBStreamBatchInfo.approximateArrivalOfFirstRecord = firstArrival;
  return { name, handle: name, batch };
}

describe('inReplayOrder', () => {
  it("takes a shard's records by sequence number (as numbers, not text), the shards oldest first", () => {
    // Prepare: shard B's oldest record is older than shard A's; names and sequence numbers sort differently as text.
    const messages = [
      message('a-late', 'shard-A', '900', '2026-11-30T08:00:05.000Z'),
      message('a-early', 'shard-A', '1000', '2026-11-30T08:00:09.000Z'),
      message('b-2', 'shard-B', '3000', '2026-11-30T08:00:07.000Z'),
      message('b-1', 'shard-B', '200', '2026-11-30T08:00:01.000Z'),
      { name: 'broken', handle: 'broken', problem: 'broken is not JSON' },
    ];

    // Act
    const order = inReplayOrder(messages).map((m) => m.name);

    // Assess: malformed messages are not replayed.
    expect(order).toEqual(['b-1', 'b-2', 'a-late', 'a-early']);
  });

  it('puts the records without an arrival time last, still in sequence order', () => {
    const order = inReplayOrder([
      message('x-2', 'shard-X', '20'),
      message('y', 'shard-Y', '5', '2026-11-30T08:00:00.000Z'),
      message('x-1', 'shard-X', '3'),
    ]).map((m) => m.name);

    expect(order).toEqual(['y', 'x-1', 'x-2']);
  });
});

describe('distinctKeys', () => {
  it('keeps each key once, in the order of its first change (numbers compared as numbers)', () => {
    const keys = distinctKeys(
      [
        { pk: { S: 'b' }, sk: { N: '1' } },
        { pk: { S: 'a' }, sk: { N: '1' } },
        { pk: { S: 'b' }, sk: { N: '1.0' } },
        { pk: { S: 'b' }, sk: { N: '2' } },
      ],
      { partitionKey: 'pk', sortKey: 'sk' },
    );

    expect(keys).toEqual([
      { pk: { S: 'b' }, sk: { N: '1' } },
      { pk: { S: 'a' }, sk: { N: '1' } },
      { pk: { S: 'b' }, sk: { N: '2' } },
    ]);
  });
});
