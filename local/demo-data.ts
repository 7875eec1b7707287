/**
 * The demo's table: a product catalog and a single-table customer design in
 * one table (pk, sk), with a stream. Every product is one item; every customer
 * is a profile item plus order and address items that the mapping aggregates
 * into one document. Values are generated from a seed, so a run is repeatable.
 */
import {
  type AttributeValue,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  PutItemCommand,
  ResourceNotFoundException,
  UpdateItemCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from '@aws-sdk/client-dynamodb';
import type { MappingConfig } from '../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../pipeline/table/types';

// Transitional: cli/commands/demo.ts (edited on another branch) imports the loader from here; once it
// imports it from ./load-items, delete this line.

export const DEMO_KEY_SCHEMA: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
/** The sort key of a collection's parent item: a product's only item, a customer's profile. */
export const PARENT_SORT_KEY = '#META';

/** The demo's mapping: products and customers go to their own indices; a customer's items make one document. */
export function demoMapping(index: string): MappingConfig {
  return {
    index,
    routes: [
      { prefix: 'PRODUCT#', index: `${index}-products` },
      { prefix: 'CUSTOMER#', index: `${index}-customers` },
    ],
    unrouted: 'default',
    aggregate: { parentSortKey: PARENT_SORT_KEY, childrenField: 'records' },
  };
}

/** A small, fast, seeded generator (mulberry32): the same seed gives the same table. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES = ['garden', 'kitchen', 'outdoor', 'office', 'toys', 'audio', 'books', 'tools'];
const ADJECTIVES = ['compact', 'rugged', 'silent', 'solar', 'folding', 'smart', 'classic', 'wireless'];
const NOUNS = [
  'lamp',
  'kettle',
  'tent',
  'chair',
  'speaker',
  'drill',
  'notebook',
  'planter',
  'robot',
  'grill',
];
const CITIES = ['Lisbon', 'Osaka', 'Denver', 'Nairobi', 'Tallinn', 'Recife', 'Perth', 'Quebec'];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

function s(value: string): AttributeValue {
  return { S: value };
}
function n(value: string | number): AttributeValue {
  return { N: String(value) };
}

export function productItem(id: number, random: () => number): Item {
  const name = `${pick(random, ADJECTIVES)} ${pick(random, NOUNS)} ${id}`;
  const cents = 199 + Math.floor(random() * 99_800);
  return {
    pk: s(`PRODUCT#${String(id).padStart(6, '0')}`),
    sk: s(PARENT_SORT_KEY),
    type: s('product'),
    name: s(name),
    category: s(pick(random, CATEGORIES)),
    price: n((cents / 100).toFixed(2)),
    stock: n(Math.floor(random() * 500)),
    // A barcode-like integer beyond 2^53: stays exact as a string in the document.
    gtin: n(`9${String(Math.floor(random() * 1e15)).padStart(16, '0')}`),
    tags: { SS: [pick(random, CATEGORIES), `batch-${id % 7}`] },
    dimensions: {
      M: { widthCm: n(10 + (id % 40)), heightCm: n(5 + (id % 25)), weightKg: n(((id % 90) + 1) / 10) },
    },
    active: { BOOL: random() > 0.1 },
    thumbnail: { B: new Uint8Array([0x89, 0x50, 0x4e, 0x47, id % 256]) },
    discontinuedAt: { NULL: true },
  };
}

export function customerItems(id: number, random: () => number): Item[] {
  const pk = s(`CUSTOMER#${String(id).padStart(6, '0')}`);
  const items: Item[] = [
    {
      pk,
      sk: s(PARENT_SORT_KEY),
      type: s('customer'),
      name: s(`Customer ${id}`),
      email: s(`customer${id}@example.com`),
      city: s(pick(random, CITIES)),
      loyaltyPoints: n(Math.floor(random() * 10_000)),
    },
    {
      pk,
      sk: s('ADDRESS#home'),
      type: s('address'),
      city: s(pick(random, CITIES)),
      zip: s(String(10000 + id)),
    },
  ];
  const orders = 1 + Math.floor(random() * 4);
  for (let order = 1; order <= orders; order += 1) {
    items.push({
      pk,
      sk: s(`ORDER#${String(order).padStart(4, '0')}`),
      type: s('order'),
      total: n((random() * 500 + 5).toFixed(2)),
      lines: n(1 + Math.floor(random() * 5)),
      status: s(random() > 0.2 ? 'shipped' : 'pending'),
    });
  }
  return items;
}

/**
 * The demo's items, about `count` of them: ~40 % products, the rest customers
 * with their addresses and orders (each customer averages 4.5 items).
 */
export function* demoItems(count: number, seed = 42): Generator<Item> {
  const random = seededRandom(seed);
  const productCount = Math.round(count * 0.4);
  let produced = 0;
  for (let id = 1; id <= productCount && produced < count; id += 1, produced += 1)
    yield productItem(id, random);
  for (let id = 1; produced < count; id += 1) {
    for (const item of customerItems(id, random)) {
      if (produced >= count) return;
      yield item;
      produced += 1;
    }
  }
}

/**
 * Creates the demo table (pk, sk; with a stream of new and old images unless
 * `stream: false`), replacing one left from an earlier run.
 */
export async function createDemoTable(
  dynamodb: DynamoDBClient,
  table: string,
  options: { stream?: boolean } = {},
): Promise<void> {
  try {
    await dynamodb.send(new DeleteTableCommand({ TableName: table }));
    // DynamoDB Local deletes at once; DynamoDB takes a moment.
    await waitUntilTableNotExists({ client: dynamodb, maxWaitTime: 60, minDelay: 1 }, { TableName: table });
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await dynamodb.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification:
        options.stream === false ? undefined : { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 120 }, { TableName: table });
}

/** One live change the demo makes after the backfill, and how to see it in the index. */
export interface LiveChange {
  description: string;
  /** The document to look at: its index and id. */
  index: string;
  id: string;
  /** What the document must show once the change has arrived (undefined: the document is gone). */
  expect: (document: Record<string, unknown> | undefined) => boolean;
  apply: (dynamodb: DynamoDBClient, table: string) => Promise<void>;
}

/** The live changes: updates, deletes, new items, and changes inside an aggregated customer. */
export function liveChanges(index: string, productCount: number): LiveChange[] {
  const products = `${index}-products`;
  const customers = `${index}-customers`;
  const productId = (id: number) => `PRODUCT#${String(id).padStart(6, '0')}`;
  const customerId = (id: number) => `CUSTOMER#${String(id).padStart(6, '0')}`;
  const newProduct = productCount + 1;
  return [
    {
      description: `price of ${productId(1)} changes to 12.34`,
      index: products,
      id: productId(1),
      expect: (doc) => doc?.price === 12.34,
      apply: async (dynamodb, table) => {
        await dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: s(productId(1)), sk: s(PARENT_SORT_KEY) },
            UpdateExpression: 'SET price = :p',
            ExpressionAttributeValues: { ':p': n('12.34') },
          }),
        );
      },
    },
    {
      description: `${productId(2)} is deleted`,
      index: products,
      id: productId(2),
      expect: (doc) => doc === undefined,
      apply: async (dynamodb, table) => {
        await dynamodb.send(
          new DeleteItemCommand({ TableName: table, Key: { pk: s(productId(2)), sk: s(PARENT_SORT_KEY) } }),
        );
      },
    },
    {
      description: `new product ${productId(newProduct)} is added`,
      index: products,
      id: productId(newProduct),
      expect: (doc) => doc?.name === 'live demo lamp',
      apply: async (dynamodb, table) => {
        const item = productItem(newProduct, seededRandom(7));
        item.name = s('live demo lamp');
        await dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
      },
    },
    {
      description: `${customerId(1)} places a new order (its aggregated document is rebuilt)`,
      index: customers,
      id: customerId(1),
      expect: (doc) =>
        Array.isArray(doc?.records) &&
        (doc.records as Record<string, unknown>[]).some((record) => record.sk === 'ORDER#9999'),
      apply: async (dynamodb, table) => {
        await dynamodb.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: s(customerId(1)),
              sk: s('ORDER#9999'),
              type: s('order'),
              total: n('99.99'),
              lines: n(1),
              status: s('pending'),
            },
          }),
        );
      },
    },
    {
      description: `${customerId(2)} moves to Reykjavik (profile update)`,
      index: customers,
      id: customerId(2),
      expect: (doc) => doc?.city === 'Reykjavik',
      apply: async (dynamodb, table) => {
        await dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: s(customerId(2)), sk: s(PARENT_SORT_KEY) },
            UpdateExpression: 'SET city = :c',
            ExpressionAttributeValues: { ':c': s('Reykjavik') },
          }),
        );
      },
    },
  ];
}
