/**
 * verifyIndex on the real engines: a table in DynamoDB Local and an index in
 * OpenSearch built by hand under the mapping contract, then changed one way
 * at a time (a document deleted, added, altered, rounded).
 */
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { loadItems } from '../../../local/load-items';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { JsonNumber } from '../../../pipeline/verify/exact-json';
import {
  indexMatchesTable,
  keyFromSource,
  type VerifyTable,
  verifyIndex,
} from '../../../pipeline/verify/verify';
import { createTable, deleteIndex, uniqueName, useEngines } from '../../support/engines';
import { buildTableAndIndex, catalogItems, createIndex, indexRaw, orderItems } from './verify-fixtures';

const engines = useEngines();
const { dynamodb, opensearch: search } = engines;

const simpleKey: KeySchema = { partitionKey: 'pk' };
const compositeKey: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

/** A fresh table and index holding `items` and exactly their contract documents. */
async function fixture(
  items: Item[],
  options: {
    keySchema?: KeySchema;
    mapping?: (index: string) => MappingConfig;
    sortKeyType?: 'S' | 'N';
  } = {},
): Promise<{ table: VerifyTable; mapping: MappingConfig; index: string }> {
  const keySchema = options.keySchema ?? simpleKey;
  const name = await createTable(dynamodb, uniqueName('verify'), {
    keySchema,
    ...(options.sortKeyType ? { sortKeyType: options.sortKeyType } : {}),
  });
  engines.deleteTableAfter(name);
  const index = uniqueName('verify');
  const mapping = options.mapping?.(index) ?? { index };
  for (const target of [mapping.index, ...(mapping.routes ?? []).map((route) => route.index)])
    engines.deleteIndexAfter(target);
  await buildTableAndIndex(dynamodb, search, name, keySchema, mapping, items);
  const keyTypes: VerifyTable['keyTypes'] = { pk: 'S' };
  if (keySchema.sortKey) keyTypes[keySchema.sortKey] = options.sortKeyType ?? 'S';
  return { table: { name, keySchema, keyTypes, itemCount: items.length }, mapping, index };
}

function verify(
  table: VerifyTable,
  mapping: MappingConfig,
  extra: Partial<Parameters<typeof verifyIndex>[0]> = {},
) {
  return verifyIndex({ dynamodb, opensearch: search, table, mapping, ...extra });
}

describe('verifyIndex, full mode', () => {
  it('finds nothing to report when the index holds exactly the contract documents', async () => {
    const { table, mapping, index } = await fixture(catalogItems(120));

    const report = await verify(table, mapping);

    expect(report).toMatchObject({
      table: table.name,
      index,
      indices: [index],
      items: 120,
      expectedDocuments: 120,
      checked: 120,
      matched: 120,
      missing: 0,
      extra: 0,
      differing: 0,
      documents: 120,
      sampled: false,
    });
    expect(indexMatchesTable(report)).toBe(true);
  });

  it('reports a deleted document as missing, with its key', async () => {
    const { table, mapping, index } = await fixture(catalogItems(30));
    await search.delete({ index, id: 'product#7' });

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ missing: 1, extra: 0, differing: 0, matched: 29 });
    expect(report.examples.missing).toEqual([{ index, id: 'product#7', key: { pk: 'product#7' } }]);
    expect(indexMatchesTable(report)).toBe(false);
  });

  it('reports a document no item produces as extra', async () => {
    const { table, mapping, index } = await fixture(catalogItems(30));
    await indexRaw(search, [{ index, id: 'stray#1', json: '{"pk":"stray#1"}' }]);

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ missing: 0, extra: 1, differing: 0, matched: 30, documents: 31 });
    expect(report.examples.extra).toEqual([{ index, id: 'stray#1' }]);
  });

  it('reports a changed field as differing, with its path and both values', async () => {
    const items: Item[] = [
      { pk: { S: 'a' }, address: { M: { city: { S: 'Lyon' }, zip: { S: '69001' } } } },
      { pk: { S: 'b' }, price: { N: '9.5' } },
    ];
    const { table, mapping, index } = await fixture(items);
    await indexRaw(search, [
      { index, id: 'a', json: '{"pk":"a","address":{"zip":"69001","city":"Paris"}}' },
      { index, id: 'b', json: '{"price":"9.5","pk":"b"}' },
    ]);

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ missing: 0, extra: 0, differing: 2, matched: 0 });
    const byId = Object.fromEntries(report.examples.differing.map((example) => [example.id, example]));
    expect(byId.a).toMatchObject({ index, path: 'address.city', expected: '"Lyon"', actual: '"Paris"' });
    expect(byId.b).toMatchObject({ path: 'price', expected: '9.5', actual: '"9.5"' });
  });

  it('compares numbers beyond 2^53 exactly: the rounded number differs, the exact string matches', async () => {
    const items: Item[] = [
      { pk: { S: 'exact' }, n: { N: '9007199254740993' } },
      { pk: { S: 'rounded' }, n: { N: '9007199254740993' } },
      { pk: { S: 'as-number' }, n: { N: '9007199254740993' } },
      { pk: { S: 'fraction' }, x: { N: '0.1000000000000001' } },
    ];
    const { table, mapping, index } = await fixture(items);
    await indexRaw(search, [
      // What a writer that went through a double would have stored.
      { index, id: 'rounded', json: '{"pk":"rounded","n":9007199254740992}' },
      // Every digit, but as a JSON number where the contract says string.
      { index, id: 'as-number', json: '{"pk":"as-number","n":9007199254740993}' },
      { index, id: 'fraction', json: '{"pk":"fraction","x":0.1000000000000001}' },
    ]);

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ matched: 1, differing: 3, missing: 0, extra: 0 });
    const byId = Object.fromEntries(report.examples.differing.map((example) => [example.id, example]));
    expect(byId.rounded).toMatchObject({
      path: 'n',
      expected: '"9007199254740993"',
      actual: '9007199254740992',
    });
    expect(byId['as-number']).toMatchObject({
      path: 'n',
      expected: '"9007199254740993"',
      actual: '9007199254740993',
    });
    expect(byId.fraction).toMatchObject({
      path: 'x',
      expected: '"0.1000000000000001"',
      actual: '0.1000000000000001',
    });
  });

  it('checks routed items in their own index: a document in the wrong index is missing there and extra here', async () => {
    const items = [...catalogItems(10, 'user'), ...catalogItems(10, 'product')];
    const { table, mapping, index } = await fixture(items, {
      mapping: (base) => ({ index: base, routes: [{ prefix: 'user#', index: `${base}-users` }] }),
    });
    const users = `${index}-users`;
    await search.delete({ index: users, id: 'user#3' });
    await indexRaw(search, [{ index, id: 'user#3', json: '{"pk":"user#3"}' }]);

    const report = await verify(table, mapping);

    expect(report.indices).toEqual([index, users]);
    expect(report).toMatchObject({ items: 20, matched: 19, missing: 1, extra: 1, differing: 0 });
    expect(report.examples.missing[0]).toMatchObject({ index: users, id: 'user#3' });
    expect(report.examples.extra[0]).toEqual({ index, id: 'user#3' });
  });

  it('rebuilds aggregated documents per partition and compares them', async () => {
    const { table, mapping, index } = await fixture(orderItems(25, 3), {
      keySchema: compositeKey,
      mapping: (base) => ({ index: base, aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } }),
    });
    await indexRaw(search, [
      {
        index,
        id: 'order#4',
        json: JSON.stringify({
          pk: 'order#4',
          sk: 'ORDER',
          customer: 'customer 4',
          lines: [
            { pk: 'order#4', sk: 'LINE#1', qty: 1 },
            { pk: 'order#4', sk: 'LINE#2', qty: 20 },
            { pk: 'order#4', sk: 'LINE#3', qty: 3 },
          ],
        }),
      },
    ]);
    await search.delete({ index, id: 'order#9' });

    const report = await verify(table, mapping, { segments: 3 });

    expect(report).toMatchObject({
      items: 100,
      expectedDocuments: 25,
      matched: 23,
      differing: 1,
      missing: 1,
    });
    expect(report.examples.differing[0]).toMatchObject({
      id: 'order#4',
      path: 'lines[1].qty',
      expected: '2',
      actual: '20',
    });
    expect(report.examples.missing[0]).toMatchObject({ id: 'order#9', key: { pk: 'order#9' } });
  });

  it('counts every item missing when the index does not exist, and says so', async () => {
    const { table } = await fixture(catalogItems(12));
    const absent = uniqueName('verify-absent');

    const report = await verify(table, { index: absent });

    expect(report).toMatchObject({ missing: 12, matched: 0, extra: 0, missingIndices: [absent] });
    expect(report.notes).toContain(
      `index ${absent} does not exist: every document expected there is missing`,
    );
  });

  it('sees a document written a moment ago (the index is refreshed first)', async () => {
    const { table, mapping, index } = await fixture(catalogItems(5));
    const late: Item = { pk: { S: 'late' }, v: { N: '1' } };
    await loadItems(dynamodb, table.name, [late]);
    await indexRaw(search, [
      { index, id: 'late', json: '{"pk":"late","v":1}' },
      { index, id: 'late-stray', json: '{"pk":"late-stray"}' },
    ]);

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ items: 6, matched: 6, missing: 0, extra: 1, documents: 7 });
  });

  it('keeps up with many documents in small batches and pages (several _mget in flight)', async () => {
    const { table, mapping, index } = await fixture(catalogItems(3_000));
    await search.delete({ index, id: 'product#2999' });
    await indexRaw(search, [{ index, id: 'zzz', json: '{}' }]);

    const started = Date.now();
    const report = await verify(table, mapping, {
      batchSize: 100,
      concurrency: 4,
      walkPageSize: 500,
      examples: 2,
    });

    expect(report).toMatchObject({ items: 3_000, matched: 2_999, missing: 1, extra: 1, documents: 3_000 });
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('keeps the examples to the limit while counting all', async () => {
    const { table, mapping, index } = await fixture(catalogItems(10));
    await deleteIndex(search, index);
    await createIndex(search, index);

    const report = await verify(table, mapping, { examples: 3 });

    expect(report.missing).toBe(10);
    expect(report.examples.missing).toHaveLength(3);
  });

  it('lists items the mapping cannot map apart, as the backfill dead-letters them', async () => {
    const { table, mapping } = await fixture(catalogItems(3));
    await dynamodb.send(
      new PutItemCommand({ TableName: table.name, Item: { pk: { S: 'x'.repeat(600) }, v: { N: '1' } } }),
    );

    const report = await verify(table, mapping);

    expect(report).toMatchObject({ items: 4, matched: 3, unmappable: 1, missing: 0 });
    expect(report.examples.unmappable[0]?.reason).toMatch(/document id is 600 bytes long/);
    expect(indexMatchesTable(report)).toBe(true);
  });
});

describe('verifyIndex, sample mode', () => {
  it('checks N random items and says the extras are estimated', async () => {
    const { table, mapping } = await fixture(catalogItems(200));

    const report = await verify(table, mapping, { sample: 25 });

    expect(report).toMatchObject({
      sampled: true,
      items: 25,
      checked: 25,
      matched: 25,
      missing: 0,
      extra: 0,
    });
    expect(report.sample).toMatchObject({ requested: 25, documentsSampled: 25, documentsInIndices: 200 });
    expect(report.sample?.segmentsScanned).toBeGreaterThan(1);
    expect(report.notes.join(' ')).toMatch(/extras are estimated/);
  });

  it('finds a stray document and a deleted one when the sample covers everything', async () => {
    const { table, mapping, index } = await fixture(catalogItems(40));
    await search.delete({ index, id: 'product#5' });
    await indexRaw(search, [{ index, id: 'stray', json: '{"pk":"stray"}' }]);
    // An item whose document is indexed, then the item is deleted: extra by key lookup.
    await dynamodb.send(new DeleteItemCommand({ TableName: table.name, Key: { pk: { S: 'product#6' } } }));

    const report = await verify(table, mapping, { sample: 1_000 });

    expect(report).toMatchObject({ sampled: true, items: 39, missing: 1, extra: 2 });
    expect(report.sample).toMatchObject({ documentsSampled: 40, documentsInIndices: 40, estimatedExtra: 2 });
    expect(report.examples.extra.map((example) => example.id).sort()).toEqual(['product#6', 'stray']);
    expect(report.examples.extra.find((example) => example.id === 'stray')?.reason).toBe(
      'no item has the key {"pk":"stray"}',
    );
  });

  it('samples whole partitions when aggregating, and reads a partition back for a sampled document', async () => {
    const { table, mapping, index } = await fixture(orderItems(30, 2), {
      keySchema: compositeKey,
      mapping: (base) => ({ index: base, aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } }),
    });
    await indexRaw(search, [{ index, id: 'order#999', json: '{"pk":"order#999","lines":[]}' }]);

    const some = await verify(table, mapping, { sample: 10 });
    const all = await verify(table, mapping, { sample: 1_000 });

    expect(some).toMatchObject({ sampled: true, expectedDocuments: 10, items: 30, matched: 10 });
    expect(all).toMatchObject({ expectedDocuments: 30, matched: 30, extra: 1 });
    expect(all.examples.extra[0]).toMatchObject({ id: 'order#999' });
  });
});

describe('keyFromSource', () => {
  it('reads S, N (number or exact string) and B key values by the table types', () => {
    expect(
      keyFromSource({ pk: 'a', sk: new JsonNumber('9007199254740993') }, ['pk', 'sk'], { pk: 'S', sk: 'N' }),
    ).toEqual({
      pk: { S: 'a' },
      sk: { N: '9007199254740993' },
    });
    expect(keyFromSource({ pk: '12345678901234567890' }, ['pk'], { pk: 'N' })).toEqual({
      pk: { N: '12345678901234567890' },
    });
    expect(keyFromSource({ pk: 'AAEC' }, ['pk'], { pk: 'B' })).toEqual({ pk: { B: Buffer.from([0, 1, 2]) } });
    expect(keyFromSource({ pk: 1 as never }, ['pk'], { pk: 'S' })).toBe('field pk is not a S key value');
    expect(keyFromSource({}, ['pk'], { pk: 'S' })).toBe('field pk is absent');
  });
});
