/**
 * describeSourceTable and the item reads of pipeline/table on DynamoDB Local:
 * what every caller relies on (the key schema and its types, the stream, one
 * sentence for a missing table; GetItem and the partition Query reading an
 * item exactly as the backfill's Scan does).
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceTableError } from '../../../pipeline/errors';
import { describeSourceTable } from '../../../pipeline/table/describe';
import { getItem, queryPartition, scanPage } from '../../../pipeline/table/reads';
import type { Item } from '../../../pipeline/table/types';
import { createTable, deleteTable, dynamoClient, uniqueName } from '../../support/engines';

const dynamodb = dynamoClient();
const table = uniqueName('table-reads');

function itemWithProto(sk: string): Item {
  const item: Item = { pk: { N: '7' }, sk: { S: sk }, blob: { B: new Uint8Array([1, 2, 255]) } };
  Object.defineProperty(item, '__proto__', {
    value: { S: `proto of ${sk}` },
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return item;
}

function protoOf(item: Item | undefined): unknown {
  return item && Object.hasOwn(item, '__proto__')
    ? Object.getOwnPropertyDescriptor(item, '__proto__')?.value
    : undefined;
}

describe('pipeline/table', () => {
  beforeAll(async () => {
    await createTable(dynamodb, table, {
      keySchema: { partitionKey: 'pk', sortKey: 'sk' },
      partitionKeyType: 'N',
      stream: 'NEW_AND_OLD_IMAGES',
    });
    for (const sk of ['a', 'b', 'c']) {
      await dynamodb.send(new PutItemCommand({ TableName: table, Item: itemWithProto(sk) }));
    }
  });
  afterAll(async () => {
    await deleteTable(dynamodb, table);
    dynamodb.destroy();
  });

  it('describeSourceTable reads the key schema, the key types and the stream', async () => {
    const source = await describeSourceTable(dynamodb, table);

    expect(source).toMatchObject({
      name: table,
      keySchema: { partitionKey: 'pk', sortKey: 'sk' },
      keyTypes: { pk: 'N', sk: 'S' },
      status: 'ACTIVE',
      streamEnabled: true,
    });
    expect(source.streamArn).toMatch(/stream/);
    expect(source.description.TableName).toBe(table);
  });

  it('describeSourceTable names a missing table in one sentence, with where it looked', async () => {
    const missing = uniqueName('no-such-table');

    const error = await describeSourceTable(dynamodb, missing, { where: 'at the test endpoint' }).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(SourceTableError);
    expect((error as Error).message).toBe(`table ${missing} does not exist at the test endpoint`);
  });

  it('getItem and queryPartition read an item as scanPage does: binary as Uint8Array, __proto__ kept as a member', async () => {
    const scanned = (await scanPage(dynamodb, { TableName: table })).items;
    const got = await getItem(dynamodb, table, { pk: { N: '7' }, sk: { S: 'b' } });
    const partition = await queryPartition(dynamodb, { table, partitionKey: 'pk', value: { N: '7' } });

    expect(scanned).toHaveLength(3);
    expect(partition.map((item) => item.sk?.S)).toEqual(['a', 'b', 'c']);
    for (const item of [...scanned, ...partition, got]) {
      expect(protoOf(item)).toEqual({ S: `proto of ${item?.sk?.S}` });
      expect(Array.from(item?.blob?.B as Uint8Array)).toEqual([1, 2, 255]);
    }
    expect(await getItem(dynamodb, table, { pk: { N: '7' }, sk: { S: 'none' } })).toBeUndefined();
  });

  it('queryPartition pages through a partition larger than one Query page', async () => {
    const big = uniqueName('table-reads-big');
    await createTable(dynamodb, big, { keySchema: { partitionKey: 'pk', sortKey: 'sk' } });
    try {
      // ~1.5 MB in one partition: more than one 1 MB Query page.
      const text = 'x'.repeat(100_000);
      for (let i = 0; i < 15; i++) {
        await dynamodb.send(
          new PutItemCommand({
            TableName: big,
            Item: { pk: { S: 'p' }, sk: { S: String(i).padStart(2, '0') }, text: { S: text } },
          }),
        );
      }

      const items = await queryPartition(dynamodb, { table: big, partitionKey: 'pk', value: { S: 'p' } });

      expect(items.map((item) => item.sk?.S)).toEqual(
        Array.from({ length: 15 }, (_, i) => String(i).padStart(2, '0')),
      );
    } finally {
      await deleteTable(dynamodb, big);
    }
  });
});
