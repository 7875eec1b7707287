/**
 * Record normalisation: a Lambda event record (binary as base64) and a
 * Streams API record (binary as bytes) become the same StreamChange.
 */
import type { _Record } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { fromLambdaRecord, fromStreamsRecord } from '../../../pipeline/apply/stream-records';
import { InvalidStreamRecordError } from '../../../pipeline/errors';
import { mapItem } from '../../../pipeline/mapping/mapping';

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
