/**
 * A table and its index built by hand for the verify tests: items go into
 * DynamoDB Local, and their documents into OpenSearch exactly as the contract
 * says (mapItem / aggregateCollection, encodeDocument), so that verify is
 * tested against the contract and not against itself.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { API, Client } from '@opensearch-project/opensearch';
import { loadItems } from '../../../local/load-items';
import {
  aggregateCollection,
  encodeDocument,
  keyToString,
  type MappedDocument,
  type MappingConfig,
  mapItem,
} from '../../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../../pipeline/table/types';

/** A document as raw JSON text, so a test can write numbers JSON.stringify cannot (an unrounded 2^53+1). */
export interface RawDocument {
  index: string;
  id: string;
  json: string;
}

/** The documents the contract makes of these items (one per item, or one per partition when aggregating). */
export function expectedDocuments(
  items: Item[],
  keySchema: KeySchema,
  mapping: MappingConfig,
): MappedDocument[] {
  if (!mapping.aggregate) return items.flatMap((item) => mapItem(item, keySchema, mapping));
  const partitions = new Map<string, Item[]>();
  for (const item of items) {
    const partition = keyToString(item[keySchema.partitionKey]!);
    partitions.set(partition, [...(partitions.get(partition) ?? []), item]);
  }
  return [...partitions.values()].flatMap((group) => aggregateCollection(group, keySchema, mapping));
}

export function toRaw(document: MappedDocument): RawDocument {
  return { index: document.index, id: document.id, json: encodeDocument(document.document) };
}

/** Indexes raw documents with _bulk (no refresh: verify refreshes). Throws when any item fails. */
export async function indexRaw(search: Client, documents: RawDocument[]): Promise<void> {
  for (let i = 0; i < documents.length; i += 2_000) {
    const lines = documents
      .slice(i, i + 2_000)
      .flatMap((document) => [
        JSON.stringify({ index: { _index: document.index, _id: document.id } }),
        document.json,
      ]);
    // Raw NDJSON: the client would re-serialize objects and round their numbers.
    const { body } = await search.bulk({ body: `${lines.join('\n')}\n` as unknown as API.Bulk_RequestBody });
    if (body.errors) {
      const failed = body.items.find((item) => item.index?.error);
      throw new Error(`bulk failed: ${JSON.stringify(failed)}`);
    }
  }
}

/** Puts the items into the table and their contract documents into the index. */
export async function buildTableAndIndex(
  dynamodb: DynamoDBClient,
  search: Client,
  table: string,
  keySchema: KeySchema,
  mapping: MappingConfig,
  items: Item[],
): Promise<void> {
  await loadItems(dynamodb, table, items);
  for (const index of new Set([mapping.index, ...(mapping.routes ?? []).map((route) => route.index)])) {
    await createIndex(search, index);
  }
  await indexRaw(search, expectedDocuments(items, keySchema, mapping).map(toRaw));
}

/**
 * Drift in an index of `catalogItems` (20 or more): product#1 and product#2
 * deleted (missing), product#3 altered at `active` (differing), and `stray`,
 * which no item produces (extra).
 */
export async function driftCatalog(search: Client, index: string): Promise<void> {
  await search.delete({ index, id: 'product#1' });
  await search.delete({ index, id: 'product#2' });
  await indexRaw(search, [
    { index, id: 'stray', json: '{"pk":"stray"}' },
    {
      index,
      id: 'product#3',
      json: '{"pk":"product#3","name":"Product 3","price":3.5,"stock":3,"tags":["a","t3"],"active":true}',
    },
  ]);
}

/** An index with the settings docs/mapping.md recommends (every dynamic number a double). */
export async function createIndex(search: Client, index: string): Promise<void> {
  await search.indices.create({
    index,
    body: {
      settings: { 'index.mapping.depth.limit': 40, number_of_replicas: 0 },
      mappings: {
        date_detection: false,
        dynamic_templates: [
          { whole_numbers: { match_mapping_type: 'long', mapping: { type: 'double' } } },
          { fractions: { match_mapping_type: 'double', mapping: { type: 'double' } } },
        ],
      },
    },
  });
}

/** `count` items of a product catalog: pk `product#<i>`, a few attribute types. */
export function catalogItems(count: number, prefix = 'product'): Item[] {
  return Array.from({ length: count }, (_, i) => ({
    pk: { S: `${prefix}#${i}` },
    name: { S: `Product ${i}` },
    price: { N: `${(i % 97) + 0.5}` },
    stock: { N: String(i) },
    tags: { SS: ['a', `t${i % 5}`] },
    active: { BOOL: i % 2 === 0 },
  }));
}

/** Orders with lines: partition `order#<i>`, a parent `ORDER` and `lines` line items each. */
export function orderItems(orders: number, lines: number): Item[] {
  const items: Item[] = [];
  for (let i = 0; i < orders; i++) {
    items.push({ pk: { S: `order#${i}` }, sk: { S: 'ORDER' }, customer: { S: `customer ${i}` } });
    for (let line = 1; line <= lines; line++) {
      items.push({ pk: { S: `order#${i}` }, sk: { S: `LINE#${line}` }, qty: { N: String(line) } });
    }
  }
  return items;
}
