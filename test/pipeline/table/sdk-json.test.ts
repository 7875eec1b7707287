/**
 * sendForJson + decodeWireItem (the Scan read path of scanSegment) against
 * the SDK's own deserializer, on DynamoDB Local: the same items, the same
 * LastEvaluatedKey, the same exceptions.
 */
import {
  PutItemCommand,
  ResourceNotFoundException,
  ScanCommand,
  type ScanCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWireItem, sendForJson } from '../../../pipeline/table/sdk-json';
import type { Item } from '../../../pipeline/table/types';
import { createTable, deleteTable, dynamoClient, uniqueName } from '../../support/engines';

interface WireScan {
  Items?: Record<string, unknown>[];
  LastEvaluatedKey?: Record<string, unknown>;
  Count?: number;
}

const dynamodb = dynamoClient();
const table = uniqueName('sdk-json');

const withProto: Item = { pk: { B: new Uint8Array([9, 9]) }, sk: { S: 'proto' } };
Object.defineProperty(withProto, '__proto__', {
  value: { M: { inner: { B: new Uint8Array([7]) } } },
  enumerable: true,
  writable: true,
  configurable: true,
});

const items: Item[] = [
  {
    pk: { B: new Uint8Array([0, 1, 255]) },
    sk: { S: 'every-type' },
    s: { S: 'é 漢字 😀 "quoted" \\ \u0000\u001f' },
    n: { N: '9007199254740993' },
    exp: { N: '1E+3' },
    t: { BOOL: true },
    nothing: { NULL: true },
    b: { B: new Uint8Array([0, 1, 2, 253, 254, 255]) },
    emptyB: { B: new Uint8Array([]) },
    bs: { BS: [new Uint8Array([1]), new Uint8Array([255, 0])] },
    ss: { SS: ['a', 'b'] },
    ns: { NS: ['1', '99999999999999999999.5'] },
    m: {
      M: { deep: { M: { blob: { B: new Uint8Array([42]) } } }, list: { L: [{ B: new Uint8Array([1, 2]) }] } },
    },
    l: { L: [{ S: 'x' }, { L: [{ BS: [new Uint8Array([3])] }] }, { M: {} }] },
  },
  { pk: { B: new Uint8Array([0, 1, 255]) }, sk: { S: 'second' }, v: { N: '-0.000001' } },
  withProto,
];

function sortById(list: Item[]): Item[] {
  const id = (item: Item) => `${Buffer.from(item.pk?.B as Uint8Array).toString('hex')}|${item.sk?.S}`;
  return [...list].sort((a, b) => id(a).localeCompare(id(b)));
}

describe('Scan answers read as JSON (sendForJson + decodeWireItem)', () => {
  beforeAll(async () => {
    await createTable(dynamodb, table, {
      keySchema: { partitionKey: 'pk', sortKey: 'sk' },
      partitionKeyType: 'B',
    });
    for (const item of items) await dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  });
  afterAll(async () => {
    await deleteTable(dynamodb, table);
    dynamodb.destroy();
  });

  it('gives the same items as the SDK deserializer: binary as Uint8Array at any depth, numbers as sent, __proto__ as a member', async () => {
    const sdk = await dynamodb.send(new ScanCommand({ TableName: table }));
    const answer = await sendForJson<WireScan, ScanCommand, ScanCommandOutput>(
      (command) => dynamodb.send(command),
      new ScanCommand({ TableName: table }),
      'Items',
    );
    expect(answer.json).toBeDefined();
    const decoded = (answer.json?.Items ?? []).map(decodeWireItem);
    expect(decoded).toHaveLength(3);
    const every = decoded.find((item) => item.sk?.S === 'every-type') as Item;
    expect(every.b?.B).toBeInstanceOf(Uint8Array);
    expect(Array.from(every.b?.B as Uint8Array)).toEqual([0, 1, 2, 253, 254, 255]);
    expect(Array.from(every.m?.M?.deep?.M?.blob?.B as Uint8Array)).toEqual([42]);
    expect(every.n).toEqual({ N: '9007199254740993' });
    const proto = decoded.find((item) => item.sk?.S === 'proto') as Item;
    expect(Object.hasOwn(proto, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    const protoMember = Object.getOwnPropertyDescriptor(proto, '__proto__')?.value as { M: Item };
    expect(Array.from(protoMember.M.inner?.B as Uint8Array)).toEqual([7]);
    // The SDK drops a member named __proto__; everything else is deep-equal.
    const withoutProto = decoded.map((item) =>
      Object.fromEntries(Object.entries(item).filter(([name]) => name !== '__proto__')),
    );
    expect(sortById(withoutProto as Item[])).toEqual(sortById(sdk.Items ?? []));
  });

  it('gives a binary LastEvaluatedKey that the next page accepts, and pages through every item once', async () => {
    const seen: string[] = [];
    let startKey: Item | undefined;
    let pages = 0;
    do {
      const answer = await sendForJson<WireScan, ScanCommand, ScanCommandOutput>(
        (command) => dynamodb.send(command),
        new ScanCommand({ TableName: table, Limit: 1, ExclusiveStartKey: startKey }),
        'Items',
      );
      const page = answer.json as WireScan;
      for (const item of (page.Items ?? []).map(decodeWireItem)) seen.push(item.sk?.S as string);
      startKey = page.LastEvaluatedKey && decodeWireItem(page.LastEvaluatedKey);
      if (startKey) expect(startKey.pk?.B).toBeInstanceOf(Uint8Array);
      pages += 1;
    } while (startKey && pages < 10);
    expect(seen.sort()).toEqual(['every-type', 'proto', 'second']);
  });

  it('leaves the rest of the answer to the SDK, so middleware still sees Count, ConsumedCapacity and LastEvaluatedKey', async () => {
    const seen: ScanCommandOutput[] = [];
    const command = new ScanCommand({ TableName: table, Limit: 2, ReturnConsumedCapacity: 'TOTAL' });
    command.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        seen.push(result.output);
        return result;
      },
      { step: 'initialize', name: 'observeOutput' },
    );
    const answer = await sendForJson<WireScan, ScanCommand, ScanCommandOutput>(
      (sent) => dynamodb.send(sent),
      command,
      'Items',
    );
    expect(answer.json?.Items).toHaveLength(2);
    const output = seen[0] as ScanCommandOutput;
    expect(output.Items).toBeUndefined();
    expect(output.Count).toBe(2);
    expect(output.ConsumedCapacity?.CapacityUnits).toBeGreaterThan(0);
    expect(output.LastEvaluatedKey?.pk?.B).toBeInstanceOf(Uint8Array);
  });

  it('decodes an answer of many network chunks whose characters straddle chunk boundaries', async () => {
    const big = uniqueName('sdk-json-big');
    await createTable(dynamodb, big, { keySchema: { partitionKey: 'pk' } });
    try {
      // ~700 KB of two-, three- and four-byte characters: the answer arrives in many chunks, and a chunk
      // boundary falls inside a character (unless the engine escapes them, when this still checks the text).
      const texts = [0, 1, 2, 3].map((n) => `${n}:${'漢字😀é'.repeat(15_000 + n)}`);
      for (const [n, text] of texts.entries()) {
        await dynamodb.send(
          new PutItemCommand({ TableName: big, Item: { pk: { S: `k${n}` }, text: { S: text } } }),
        );
      }
      const answer = await sendForJson<WireScan, ScanCommand, ScanCommandOutput>(
        (command) => dynamodb.send(command),
        new ScanCommand({ TableName: big }),
        'Items',
      );
      const read = (answer.json?.Items ?? []).map(decodeWireItem).map((item) => item.text?.S as string);
      expect(read.sort()).toEqual(texts);
    } finally {
      await deleteTable(dynamodb, big);
    }
  });

  it('leaves an error answer to the SDK: a missing table is still ResourceNotFoundException', async () => {
    const missing = sendForJson<WireScan, ScanCommand, ScanCommandOutput>(
      (command) => dynamodb.send(command),
      new ScanCommand({ TableName: uniqueName('no-such-table') }),
      'Items',
    );
    await expect(missing).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});
