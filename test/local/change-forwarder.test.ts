/**
 * The change forwarder's wire formats, read back with the updater's own
 * decoders (pipeline/apply/stream-records.ts): what the stand-in writes is
 * what the AWS features deliver, in every envelope. The forwarding itself,
 * on the real engines, is in backfill-change-sources.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { envelope, RecordEncoder, SQS_ENVELOPES } from '../../local/change-forwarder';
import { readKinesisData, readSqsMessage, type StreamChange } from '../../pipeline/apply/stream-records';

const streamArn = 'arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-12-01T00:00:00.000';

function encoder() {
  return new RecordEncoder({
    table: 'orders',
    region: 'us-east-1',
    streamArn,
    viewType: 'NEW_AND_OLD_IMAGES',
  });
}

function change(sequenceNumber: string, note: string): StreamChange {
  return {
    eventName: 'MODIFY',
    sequenceNumber,
    keys: { id: { S: 'order-1' }, blob: { B: new Uint8Array([0, 255, 7]) } },
    newImage: { id: { S: 'order-1' }, blob: { B: new Uint8Array([0, 255, 7]) }, note: { S: note } },
    oldImage: { id: { S: 'order-1' }, blob: { B: new Uint8Array([0, 255, 7]) }, note: { S: 'before' } },
    approximateCreationDateTime: 1_796_000_000,
  };
}

describe('the change forwarder writes what the AWS features deliver', () => {
  it.each(SQS_ENVELOPES)('an SQS body in the %s envelope reads back as the same change', (kind) => {
    const record = encoder().encode(change('4100000000000000001', 'after'));

    const read = readSqsMessage(JSON.stringify(envelope(kind, record)), 'message-1');

    expect(read).toEqual({ ...change('4100000000000000001', 'after'), messageId: 'message-1' });
  });

  it('a Kinesis record reads back as the same change at the Kinesis sequence number, its time in microseconds', () => {
    const record = encoder().encode(change('4100000000000000001', 'after'));
    const data = JSON.parse(record.kinesisData);

    const read = readKinesisData(
      new TextEncoder().encode(record.kinesisData),
      '49650000000000000000000000001',
    );

    expect(data).toMatchObject({
      eventName: 'MODIFY',
      recordFormat: 'application/json',
      tableName: 'orders',
      userIdentity: null,
      eventSource: 'aws:dynamodb',
      dynamodb: {
        ApproximateCreationDateTime: 1_796_000_000_000_000,
        ApproximateCreationDateTimePrecision: 'MICROSECOND',
      },
    });
    expect(data.dynamodb.SequenceNumber).toBeUndefined();
    expect(read).toEqual({ ...change('49650000000000000000000000001', 'after') });
  });

  it("gives one item's changes made in the same second strictly later times, and the same change the same id", () => {
    const forwarder = encoder();
    const first = forwarder.encode(change('4100000000000000001', 'one'));
    const second = forwarder.encode(change('4100000000000000002', 'two'));
    const again = encoder().encode(change('4100000000000000001', 'one'));
    const micros = (record: typeof first) =>
      JSON.parse(record.kinesisData).dynamodb.ApproximateCreationDateTime;

    expect(micros(second)).toBeGreaterThan(micros(first));
    expect(again.eventID).toBe(first.eventID);
    expect(second.eventID).not.toBe(first.eventID);
    // One item, one partition key (Kinesis shard, FIFO message group).
    expect(second.partitionKey).toBe(first.partitionKey);
  });
});
