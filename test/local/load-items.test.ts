import {
  type BatchWriteItemCommandInput,
  type BatchWriteItemCommandOutput,
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadItems } from '../../local/load-items';
import type { Item } from '../../pipeline/table/types';
import { createTable, deleteTable, dynamoClient, uniqueName } from '../support/engines';

function* numbered(count: number): Generator<Item> {
  for (let i = 0; i < count; i += 1) yield { pk: { S: `item#${i}` }, n: { N: String(i) } };
}

async function tableCount(dynamodb: DynamoDBClient, table: string): Promise<number> {
  let total = 0;
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({ TableName: table, Select: 'COUNT', ExclusiveStartKey }),
    );
    total += page.Count ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey);
  return total;
}

describe('loadItems', () => {
  let dynamodb: DynamoDBClient;
  const tables: string[] = [];

  beforeAll(() => {
    dynamodb = dynamoClient();
  });

  afterAll(async () => {
    for (const table of tables) await deleteTable(dynamodb, table);
  });

  async function newTable(): Promise<string> {
    const table = await createTable(dynamodb, uniqueName('load'), { keySchema: { partitionKey: 'pk' } });
    tables.push(table);
    return table;
  }

  it('puts every item of a generator into the table and reports progress batch by batch', async () => {
    // Prepare
    const table = await newTable();
    const progress: number[] = [];

    // Act
    const written = await loadItems(dynamodb, table, numbered(1_001), {
      concurrency: 4,
      onProgress: (count) => progress.push(count),
    });

    // Assess
    expect(written).toBe(1_001);
    expect(await tableCount(dynamodb, table)).toBe(1_001);
    expect(progress).toHaveLength(Math.ceil(1_001 / 25));
    expect(progress.at(-1)).toBe(1_001);
    const last = await dynamodb.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'item#1000' } } }),
    );
    expect(last.Item?.n).toEqual({ N: '1000' });
  });

  it('sends again the items DynamoDB leaves unprocessed (first answers of each batch cut short by a client middleware)', async () => {
    // Prepare: the first send of every batch writes only its first 20 requests and answers the rest as
    // unprocessed, as DynamoDB does for a hot partition (DynamoDB Local never does).
    const table = await newTable();
    const client = dynamoClient();
    const seen = new Set<string>();
    let cutShort = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as BatchWriteItemCommandInput;
        const requests = input.RequestItems?.[table];
        const first = requests?.[0]?.PutRequest?.Item?.pk?.S;
        if (!requests || first === undefined || seen.has(first) || requests.length <= 20) return next(args);
        seen.add(first);
        cutShort += 1;
        const kept: WriteRequest[] = requests.slice(0, 20);
        const left: WriteRequest[] = requests.slice(20);
        const result = await next({ ...args, input: { RequestItems: { [table]: kept } } });
        (result.output as BatchWriteItemCommandOutput).UnprocessedItems = { [table]: left };
        return result;
      },
      { step: 'initialize', name: 'cutBatchesShort' },
    );

    // Act
    const written = await loadItems(client, table, numbered(250));

    // Assess
    expect(cutShort).toBe(10);
    expect(written).toBe(250);
    expect(await tableCount(dynamodb, table)).toBe(250);
  });
});
