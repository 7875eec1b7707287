/**
 * Record normalisation: a Lambda event record (binary as base64) and a
 * Streams API record (binary as bytes) become the same StreamChange, and so
 * do the same change in the Kinesis Data Streams for DynamoDB format and in
 * an SQS message (EventBridge Pipes, SNS raw or enveloped, EventBridge).
 */
import type { _Record } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  fromLambdaRecord,
  fromStreamsRecord,
  isUnreadable,
  readKinesisData,
  readKinesisRecord,
  readSqsMessage,
  readSqsRecord,
  type StreamChange,
} from '../../../pipeline/apply/stream-records';
import { InvalidStreamRecordError } from '../../../pipeline/errors';
import { mapItem } from '../../../pipeline/mapping/mapping';
import { type SqsEnvelope, toKinesisData, toSqsBody } from './apply-stream-fixtures';

const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
const base64 = Buffer.from(bytes).toString('base64');

const lambdaRecord: DynamoDBRecord = {
  eventName: 'MODIFY',
  dynamodb: {
    ApproximateCreationDateTime: 1_700_000_000,
    SequenceNumber: '4421584500000000017450439091',
    Keys: { pk: { S: 'a' }, sk: { B: base64 } },
    NewImage: {
      pk: { S: 'a' },
      sk: { B: base64 },
      n: { N: '12345678901234567890123456789012345678' },
      bs: { BS: [base64, ''] },
      nested: { M: { b: { B: base64 }, l: { L: [{ B: base64 }, { N: '0.1' }, { NULL: true }] } } },
    },
    OldImage: { pk: { S: 'a' }, sk: { B: base64 }, flag: { BOOL: false } },
    StreamViewType: 'NEW_AND_OLD_IMAGES',
  },
};

const streamsRecord: _Record = {
  eventName: 'MODIFY',
  dynamodb: {
    ApproximateCreationDateTime: new Date(1_700_000_000_000),
    SequenceNumber: '4421584500000000017450439091',
    Keys: { pk: { S: 'a' }, sk: { B: bytes } },
    NewImage: {
      pk: { S: 'a' },
      sk: { B: bytes },
      n: { N: '12345678901234567890123456789012345678' },
      bs: { BS: [bytes, new Uint8Array([])] },
      nested: { M: { b: { B: bytes }, l: { L: [{ B: bytes }, { N: '0.1' }, { NULL: true }] } } },
    },
    OldImage: { pk: { S: 'a' }, sk: { B: bytes }, flag: { BOOL: false } },
    StreamViewType: 'NEW_AND_OLD_IMAGES',
  },
};

/** lambdaRecord's JSON before any test decodes (and so converts) it. */
const pristine = JSON.stringify(lambdaRecord);

describe('stream record normalisation', () => {
  it('a Lambda record and a Streams API record of one change become the same StreamChange', () => {
    const fromLambda = fromLambdaRecord(lambdaRecord);
    const fromStreams = fromStreamsRecord(streamsRecord);

    expect(fromLambda).toStrictEqual(fromStreams);
    expect(fromLambda.approximateCreationDateTime).toBe(1_700_000_000);
    expect(fromLambda.keys.sk!.B).toBeInstanceOf(Uint8Array);
    expect(fromLambda.keys.sk!.B).toEqual(bytes);
    expect(fromLambda.newImage!.nested!.M!.l!.L![0]!.B).toEqual(bytes);
    expect(fromLambda.newImage!.bs!.BS).toEqual([bytes, new Uint8Array([])]);
  });

  it('the mapping makes the same document of both, numbers exact', () => {
    const keySchema = { partitionKey: 'pk', sortKey: 'sk' };
    const [fromLambda] = mapItem(fromLambdaRecord(lambdaRecord).newImage!, keySchema, { index: 'i' });
    const [fromStreams] = mapItem(fromStreamsRecord(streamsRecord).newImage!, keySchema, { index: 'i' });

    expect(fromLambda).toStrictEqual(fromStreams);
    expect(fromLambda!.id).toBe(`a|${base64}`);
    expect(fromLambda!.document.n).toBe('12345678901234567890123456789012345678');
    expect(fromLambda!.document.nested).toEqual({ b: base64, l: [base64, 0.1, null] });
  });

  it('a KEYS_ONLY REMOVE carries only its keys', () => {
    const change = fromLambdaRecord({
      eventName: 'REMOVE',
      dynamodb: { SequenceNumber: '7', Keys: { pk: { S: 'a' } }, StreamViewType: 'KEYS_ONLY' },
    });
    expect(change).toStrictEqual({ eventName: 'REMOVE', sequenceNumber: '7', keys: { pk: { S: 'a' } } });
  });

  it('an attribute named __proto__ stays an attribute', () => {
    const change = fromLambdaRecord({
      eventName: 'INSERT',
      dynamodb: {
        SequenceNumber: '1',
        Keys: { pk: { S: 'a' } },
        NewImage: JSON.parse('{"pk":{"S":"a"},"__proto__":{"S":"data"}}'),
      },
    });
    expect(Object.keys(change.newImage!)).toEqual(['pk', '__proto__']);
    expect(Object.getPrototypeOf(change.newImage)).toBe(Object.prototype);
  });

  it('a record without event name, sequence number or keys is refused, naming what is missing', () => {
    expect(() => fromLambdaRecord({ dynamodb: { SequenceNumber: '1', Keys: {} } })).toThrow(
      new InvalidStreamRecordError('stream record 1 has event name undefined, not INSERT, MODIFY or REMOVE'),
    );
    expect(() => fromLambdaRecord({ eventName: 'INSERT', dynamodb: { Keys: {} } })).toThrow(
      /has no sequence number/,
    );
    expect(() => fromStreamsRecord({ eventName: 'INSERT', dynamodb: { SequenceNumber: '1' } })).toThrow(
      /stream record 1 has no Keys/,
    );
    // JSON may say null where an image is absent: that is no Keys, not keys of null.
    const nullKeys = JSON.parse('{"eventName":"MODIFY","dynamodb":{"SequenceNumber":"2","Keys":null}}');
    expect(() => fromLambdaRecord(nullKeys)).toThrow(
      new InvalidStreamRecordError('stream record 2 has no Keys'),
    );
  });
});

describe('fan-out records at the door', () => {
  // Decoding converts a record's images in place: each decode gets its own copy.
  const fresh = (): DynamoDBRecord => JSON.parse(pristine);
  const micros = 1_700_000_000_123_456n;
  const kinesisSequence = '49590338271490256608559692538361571095921575989136588898';

  it('Kinesis data (base64 as Lambda gives it, or bytes as GetRecords does) becomes the change, at its Kinesis sequence number, with µs time', () => {
    const data = toKinesisData(fresh(), { micros });
    const fromBase64 = readKinesisData(data, kinesisSequence) as StreamChange;
    const fromBytes = readKinesisData(new Uint8Array(Buffer.from(data, 'base64')), kinesisSequence);
    const fromEvent = readKinesisRecord({
      eventSource: 'aws:kinesis',
      kinesis: { data, sequenceNumber: kinesisSequence, partitionKey: 'k' },
    } as never);

    const expected = { ...fromLambdaRecord(fresh()), sequenceNumber: kinesisSequence };
    expect(fromBase64).toStrictEqual({ ...expected, approximateCreationDateTime: 1_700_000_000.123456 });
    expect(fromBytes).toStrictEqual(fromBase64);
    expect(fromEvent).toStrictEqual(fromBase64);
    expect(fromBase64.keys.sk!.B).toEqual(bytes);
  });

  it('Kinesis time at millisecond precision is read as milliseconds', () => {
    const change = readKinesisData(
      toKinesisData(fresh(), { micros, precision: 'MILLISECOND' }),
      kinesisSequence,
    ) as StreamChange;
    expect(change.approximateCreationDateTime).toBe(1_700_000_000.123);
  });

  it.each(['pipes', 'sns-raw', 'sns', 'eventbridge'] satisfies SqsEnvelope[])(
    'an SQS body as %s delivers a record becomes the change, named by its message id',
    (envelope) => {
      const body = toSqsBody(fresh(), envelope);
      const change = readSqsMessage(body, 'm-1');
      const fromEvent = readSqsRecord({ messageId: 'm-1', body } as never);

      expect(change).toStrictEqual({ ...fromLambdaRecord(fresh()), messageId: 'm-1' });
      expect(fromEvent).toStrictEqual(change);
    },
  );

  it('a body of no known shape, or a record without keys, is unreadable in its place, saying what was expected', () => {
    const notJson = readSqsMessage('hello', 'm-2');
    const otherEvent = readSqsMessage(
      JSON.stringify({ Type: 'Notification', Message: '{"hello":1}' }),
      'm-3',
    );
    const noKeys = readSqsMessage(
      JSON.stringify({ eventName: 'INSERT', dynamodb: { SequenceNumber: '7' } }),
      'm-4',
    );
    const kinesis = readKinesisData(Buffer.from('[1]').toString('base64'), '55');

    for (const record of [notJson, otherEvent, noKeys, kinesis]) expect(isUnreadable(record)).toBe(true);
    expect(notJson).toMatchObject({ messageId: 'm-2', sequenceNumber: '', keys: {} });
    const expected =
      'expected a DynamoDB stream record as EventBridge Pipes delivers it, an SNS notification carrying one (raw or in its Notification envelope), or an EventBridge event whose detail is one';
    expect(isUnreadable(notJson) && notJson.unreadable).toEqual(
      new InvalidStreamRecordError(`SQS message m-2: the body is not JSON; ${expected}`),
    );
    expect(isUnreadable(otherEvent) && otherEvent.unreadable.message).toBe(
      `SQS message m-3 holds no DynamoDB change; ${expected}`,
    );
    expect(isUnreadable(noKeys) && noKeys.unreadable.message).toBe('stream record 7 has no Keys');
    expect(noKeys).toMatchObject({ messageId: 'm-4', sequenceNumber: '7' });
    expect(isUnreadable(kinesis) && kinesis.unreadable.message).toBe(
      'Kinesis record 55 is not a DynamoDB change in the Kinesis Data Streams for DynamoDB format (a JSON object with eventName and dynamodb)',
    );
    expect(kinesis).toMatchObject({ sequenceNumber: '55' });
  });
});
