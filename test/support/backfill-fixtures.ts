/**
 * Shared pieces of the backfill tests: seeding tables fast, items with every attribute type, a progress table, and
 * reading back what OpenSearch holds.
 */
import {
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import type { LocalBackfillOptions } from '../../local/backfill';
import { loadItems } from '../../local/load-items';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import { ensureProgressTable, SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import type { Item } from '../../pipeline/table/types';
import { type EngineClients, uniqueName } from './engines';

/** Writes the items with the loader the demo and the benchmark use, 12 requests in flight. */
export async function seedItems(
  client: DynamoDBClient,
  table: string,
  items: Item[],
  parallel = 12,
): Promise<void> {
  await loadItems(client, table, items, { concurrency: parallel });
}

/** The items a churn writes to: item `i`'s key and whole item, and how many exist at the start. */
export interface ChurnItems {
  key: (i: number) => Item;
  item: (i: number) => Item;
  count: number;
}

/**
 * Puts, updates and deletes on `table` until `until.done()` (or `until.max`
 * writes): in turn an update of an existing item's `amount`, a delete of
 * one, and a put of a new item (`item(10_000 + i)`), which `renameNew` then
 * updates at once (two changes of one key close together). Returns the
 * writes made, a put and its rename counting one.
 */
export async function churnTable(
  dynamodb: DynamoDBClient,
  table: string,
  items: ChurnItems,
  until: { done: () => boolean; max?: number; renameNew?: boolean },
): Promise<number> {
  let writes = 0;
  for (let i = 0; writes < (until.max ?? Number.POSITIVE_INFINITY) && !until.done(); i += 1) {
    const n = (i * 37) % items.count;
    if (i % 3 === 0) {
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: table,
          Key: items.key(n),
          UpdateExpression: 'SET amount = :a',
          ExpressionAttributeValues: { ':a': { N: `${i}.5` } },
        }),
      );
    } else if (i % 3 === 1) {
      await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: items.key(n) }));
    } else {
      await dynamodb.send(new PutItemCommand({ TableName: table, Item: items.item(10_000 + i) }));
      if (until.renameNew) {
        await dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: items.key(10_000 + i),
            UpdateExpression: 'SET #n = :n',
            ExpressionAttributeNames: { '#n': 'name' },
            ExpressionAttributeValues: { ':n': { S: `renamed ${i}` } },
          }),
        );
      }
    }
    writes += 1;
  }
  return writes;
}

/**
 * The options of a local backfill of `run.table` into `run.index` (mapping
 * `{ index }` unless given) with the test's clients; `more` adds the rest.
 * A local updater takes the same options with a key schema.
 */
export function localBackfillOptions(
  clients: EngineClients,
  run: {
    table: string;
    index: string;
    progressTable: string;
    deadLetterDir: string;
    mapping?: MappingConfig;
  },
  more: Partial<LocalBackfillOptions> = {},
): LocalBackfillOptions {
  const { dynamodb, streams, opensearch } = clients;
  return { dynamodb, streams, opensearch, mapping: { index: run.index }, ...run, ...more };
}

/** An item with every attribute type, numbers that a double would round, and binary. */
export function catalogItem(i: number): Item {
  const id = `item-${String(i).padStart(6, '0')}`;
  return {
    pk: { S: id },
    name: { S: `Product ${i} — “ünïcode” ✓` },
    price: { N: `${i}12345678901234567.25` },
    quantity: { N: String(i % 1000) },
    ratio: { N: '0.1' },
    active: { BOOL: i % 2 === 0 },
    nothing: { NULL: true },
    tags: { SS: ['a', `t${i % 7}`] },
    sizes: { NS: ['1.5', '2.5', `${i}.75`] },
    blob: { B: Uint8Array.from([0, 255, i % 256, (i >> 8) % 256]) },
    specs: {
      M: {
        weight: { N: '1.0000000000000000001' },
        colours: { L: [{ S: 'red' }, { S: `c${i % 5}` }] },
        box: { M: { deep: { BOOL: true }, depth: { N: '7' } } },
      },
    },
  };
}

/** A fresh progress table and its store. */
export async function progressStore(client: DynamoDBClient): Promise<SegmentCheckpointStore> {
  const name = uniqueName('progress');
  await ensureProgressTable(client, name);
  return new SegmentCheckpointStore(client, name);
}

export async function indexCount(client: Client, index: string): Promise<number> {
  await client.indices.refresh({ index });
  const { body } = await client.count({ index });
  return (body as { count: number }).count;
}

/** The ids among `ids` that the index does not hold (mget in chunks). */
export async function missingIds(client: Client, index: string, ids: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i += 2_000) {
    const chunk = ids.slice(i, i + 2_000);
    const { body } = await client.mget({ index, body: { ids: chunk }, _source: false } as never);
    for (const doc of (body as { docs: { _id: string; found: boolean }[] }).docs) {
      if (!doc.found) missing.push(doc._id);
    }
  }
  return missing;
}

export async function getSource(client: Client, index: string, id: string): Promise<unknown> {
  const { body } = await client.get({ index, id });
  return (body as { _source: unknown })._source;
}

/** A clock-free stand-in for the Lambda context: the remaining time shrinks after `pages` calls. */
export function shortLivedContext(fullCalls: number): { getRemainingTimeInMillis(): number; calls: number } {
  const context = {
    calls: 0,
    getRemainingTimeInMillis(): number {
      context.calls += 1;
      return context.calls <= fullCalls ? 900_000 : 1_000;
    },
  };
  return context;
}
