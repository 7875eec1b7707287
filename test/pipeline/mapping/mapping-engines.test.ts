/**
 * The mapping end to end through the real engines: items go into DynamoDB
 * Local, come back through GetItem and Scan (the form the product maps), are
 * mapped, indexed into OpenSearch and read back with GET _doc and _source.
 */
import { randomBytes } from 'node:crypto';
import { type DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { API, Client } from '@opensearch-project/opensearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyToString, type MappedDocument, mapItem } from '../../../pipeline/mapping/mapping.js';
import type { Item, KeySchema } from '../../../pipeline/table/types.js';
import {
  createTable,
  deleteIndex,
  deleteTable,
  dynamoClient,
  openSearchClient,
  uniqueName,
} from '../../support/engines.js';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
/**
 * The target index settings that docs/mapping.md recommends: a depth limit
 * above DynamoDB's 32 levels (OpenSearch's default is 20), every dynamic
 * number as double (so integers and fractions can share a field), no date
 * detection.
 */
const recommendedIndex: API.Indices_Create_RequestBody = {
  settings: { 'index.mapping.depth.limit': 40 },
  mappings: {
    date_detection: false,
    dynamic_templates: [
      { whole_numbers: { match_mapping_type: 'long', mapping: { type: 'double' } } },
      { fractions: { match_mapping_type: 'double', mapping: { type: 'double' } } },
    ],
    // Fields whose arrays mix JSON types within one item need an explicit
    // mapping (dynamic mapping cannot type them); see docs/mapping.md.
    properties: {
      l: { type: 'object', enabled: false },
      ns: { type: 'double' },
      inList: { type: 'double' },
      nested: { properties: { l: { type: 'object', enabled: false } } },
    },
  },
};

interface Case {
  /** The sort key; also the test's name. */
  sk: string;
  pk?: string;
  attributes: Item;
  /** The body without pk and sk. */
  expected: Record<string, unknown>;
  /** Set-valued fields: DynamoDB does not keep a set's order, so these compare sorted. */
  sets?: string[];
  /** The document id, when it is not plainly `<pk>|<sk>`. */
  id?: string;
}

function nestMaps(levels: number, bottom: Item[string]): Item[string] {
  let value = bottom;
  for (let i = 0; i < levels; i++) value = { M: { [`level${levels - i}`]: value } };
  return value;
}

function nestObjects(levels: number, bottom: unknown): unknown {
  let value = bottom;
  for (let i = 0; i < levels; i++) value = { [`level${levels - i}`]: value };
  return value;
}

const controlCharacters = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');
const unicode = `${controlCharacters}\u007f"\\/ é ñ 漢字 한국어 עברית العربية 😀👍🏽 e\u0301 \u200b\u2028\u2029\ufeff\ufffd 𝄞`;
const bigText = 'ä€😀abc'.repeat(29_866); // 358,392 UTF-8 bytes: with the rest, a 350+ KB item
const bigBinary = randomBytes(20_000);

const cases: Case[] = [
  {
    sk: 'every-type',
    attributes: {
      s: { S: 'text' },
      n: { N: '42' },
      t: { BOOL: true },
      f: { BOOL: false },
      nothing: { NULL: true },
      m: { M: { a: { N: '1' }, b: { S: 'x' }, inner: { M: { l: { L: [{ N: '2' }] } } } } },
      l: { L: [{ S: 'x' }, { N: '2.5' }, { NULL: true }, { BOOL: false }, { M: {} }, { L: [] }] },
      b: { B: new Uint8Array([0, 1, 2, 253, 254, 255]) },
    },
    expected: {
      s: 'text',
      n: 42,
      t: true,
      f: false,
      nothing: null,
      m: { a: 1, b: 'x', inner: { l: [2] } },
      l: ['x', 2.5, null, false, {}, []],
      b: 'AAEC/f7/',
    },
  },
  {
    sk: 'sets',
    attributes: {
      ss: { SS: ['b', 'a', ''] },
      ns: { NS: ['1E+3', '9007199254740993', '0.1', '-1.50'] },
      bs: { BS: [new Uint8Array([1]), new Uint8Array([255, 0]), new Uint8Array([])] },
    },
    expected: { ss: ['', 'a', 'b'], ns: [-1.5, 0.1, 1000, '9007199254740993'], bs: ['', '/wA=', 'AQ=='] },
    sets: ['ss', 'ns', 'bs'],
  },
  {
    sk: 'numbers',
    attributes: {
      int: { N: '42' },
      negZero: { N: '-0' },
      trailingZero: { N: '1.50' },
      exponent: { N: '1E+3' },
      tiny: { N: '0.000001e-2' },
      maxSafe: { N: '9007199254740991' },
      minSafe: { N: '-9007199254740991' },
      beyondSafe: { N: '9007199254740992' },
      negBeyondSafe: { N: '-9007199254740993' },
      digits38: { N: '12345678901234567890123456789012345678' },
      fifteenDigits: { N: '0.100000000000001' },
      sixteenDigits: { N: '0.1000000000000001' },
      pi: { N: '3.1415926535897932384626433832795028842' },
      smallest: { N: '1E-130' },
      smallestNegative: { N: '-1E-130' },
      largest: { N: '9.9999999999999999999999999999999999999E+125' },
      largestNegative: { N: '-9.9999999999999999999999999999999999999E+125' },
      oneE30: { N: '1E+30' },
      preciseTiny: { N: '1.234567890123456E-120' },
      inList: { L: [{ N: '1E+20' }, { N: '0.25' }] },
    },
    expected: {
      int: 42,
      negZero: 0,
      trailingZero: 1.5,
      exponent: 1000,
      tiny: 1e-8,
      maxSafe: 9007199254740991,
      minSafe: -9007199254740991,
      beyondSafe: '9007199254740992',
      negBeyondSafe: '-9007199254740993',
      digits38: '12345678901234567890123456789012345678',
      fifteenDigits: 0.100000000000001,
      sixteenDigits: '0.1000000000000001',
      pi: '3.1415926535897932384626433832795028842',
      smallest: 1e-130,
      smallestNegative: -1e-130,
      largest: `99999999999999999999999999999999999999${'0'.repeat(88)}`,
      largestNegative: `-99999999999999999999999999999999999999${'0'.repeat(88)}`,
      oneE30: '1000000000000000000000000000000',
      preciseTiny: `0.${'0'.repeat(119)}1234567890123456`,
      inList: ['100000000000000000000', 0.25],
    },
  },
  {
    sk: 'empty-values',
    attributes: {
      emptyString: { S: '' },
      emptyMap: { M: {} },
      emptyList: { L: [] },
      emptyBinary: { B: new Uint8Array([]) },
      nested: { M: { e: { S: '' }, m: { M: {} }, l: { L: [{ M: {} }, { L: [] }, { S: '' }] } } },
    },
    expected: {
      emptyString: '',
      emptyMap: {},
      emptyList: [],
      emptyBinary: '',
      nested: { e: '', m: {}, l: [{}, [], ''] },
    },
  },
  {
    sk: 'deep-30',
    attributes: {
      deep: nestMaps(30, { S: 'bottom' }),
      mixed: { L: [nestMaps(14, { L: [nestMaps(14, { N: '1' })] })] },
    },
    expected: { deep: nestObjects(30, 'bottom'), mixed: [nestObjects(14, [nestObjects(14, 1)])] },
  },
  {
    sk: 'unicode-and-control',
    attributes: {
      text: { S: unicode },
      [`key ${unicode.slice(32)}`]: { S: 'attribute name with unicode' },
      map: { M: { 'é 😀': { S: unicode } } },
      list: { L: [{ S: unicode }] },
    },
    expected: {
      text: unicode,
      [`key ${unicode.slice(32)}`]: 'attribute name with unicode',
      map: { 'é 😀': unicode },
      list: [unicode],
    },
  },
  {
    pk: 'pipe|partition',
    sk: 'pipe|sort|😀',
    id: 'pipe\\|partition|pipe\\|sort\\|😀',
    attributes: { v: { S: 'keys with |' } },
    expected: { v: 'keys with |' },
  },
  {
    sk: 'large-350kb',
    attributes: { text: { S: bigText }, blob: { B: bigBinary }, small: { N: '1' } },
    expected: { text: bigText, blob: bigBinary.toString('base64'), small: 1 },
  },
];

const partitionOf = (c: Case) => c.pk ?? 'mapping';
const expectedBody = (c: Case) => ({ pk: partitionOf(c), sk: c.sk, ...c.expected });
const expectedId = (c: Case) => c.id ?? `${partitionOf(c)}|${c.sk}`;

/** Sorts the named set fields the way the expectations are written: numbers first, then strings. */
function sortSets(body: Record<string, unknown>, sets: string[] = []): Record<string, unknown> {
  const copy = { ...body };
  for (const name of sets) {
    copy[name] = [...(copy[name] as unknown[])].sort((a, b) => {
      if (typeof a === 'number' && typeof b === 'number') return a - b;
      if (typeof a === 'number') return -1;
      if (typeof b === 'number') return 1;
      return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    });
  }
  return copy;
}

async function bulkIndex(client: Client, documents: MappedDocument[]): Promise<void> {
  const body = documents.flatMap(({ index, id, document }) => [
    { index: { _index: index, _id: id } },
    document,
  ]);
  const response = await client.bulk({ body, refresh: true });
  const failures = response.body.items.filter((entry) => entry.index?.error);
  expect(failures).toEqual([]);
}

describe('mapping through DynamoDB Local and OpenSearch', () => {
  let dynamo: DynamoDBClient;
  let search: Client;
  const table = uniqueName('mapping-items');
  const index = uniqueName('mapping-items');
  const read = new Map<string, Item>();

  beforeAll(async () => {
    dynamo = dynamoClient();
    search = openSearchClient();
    await createTable(dynamo, table, { keySchema });
    await search.indices.create({ index, body: recommendedIndex });
    for (const c of cases) {
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: partitionOf(c) }, sk: { S: c.sk }, ...c.attributes },
        }),
      );
      const got = await dynamo.send(
        new GetItemCommand({
          TableName: table,
          Key: { pk: { S: partitionOf(c) }, sk: { S: c.sk } },
          ConsistentRead: true,
        }),
      );
      read.set(c.sk, got.Item!);
    }
    await bulkIndex(
      search,
      cases.flatMap((c) => mapItem(read.get(c.sk)!, keySchema, { index })),
    );
  });

  afterAll(async () => {
    await deleteTable(dynamo, table);
    await deleteIndex(search, index);
    dynamo.destroy();
    await search.close();
  });

  it('the 350 KB case is really over 350 KB in DynamoDB and in OpenSearch', () => {
    const large = mapItem(read.get('large-350kb')!, keySchema, { index })[0]!;
    expect(Buffer.byteLength(JSON.stringify(large.document))).toBeGreaterThan(350 * 1024);
  });

  it.each(cases.map((c) => [c.sk, c] as const))(
    '%s: maps what GetItem returns to the expected body',
    (_name, c) => {
      const [mapped] = mapItem(read.get(c.sk)!, keySchema, { index });
      expect(mapped!.id).toBe(expectedId(c));
      expect(sortSets(mapped!.document, c.sets)).toStrictEqual(expectedBody(c));
    },
  );

  it.each(cases.map((c) => [c.sk, c] as const))(
    '%s: GET _doc and _source return the expected JSON',
    async (_n, c) => {
      const doc = await search.get({ index, id: expectedId(c) });
      expect(doc.body.found).toBe(true);
      expect(doc.body._id).toBe(expectedId(c));
      expect(sortSets(doc.body._source as Record<string, unknown>, c.sets)).toStrictEqual(expectedBody(c));

      const source = await search.getSource({ index, id: expectedId(c) });
      expect(sortSets(source.body as Record<string, unknown>, c.sets)).toStrictEqual(expectedBody(c));
    },
  );

  it('Scan returns items that map to the same ids and bodies as GetItem', async () => {
    const scanned: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const page = await dynamo.send(
        new ScanCommand({ TableName: table, ExclusiveStartKey, ConsistentRead: true }),
      );
      scanned.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);

    const fromScan = scanned.flatMap((item) => mapItem(item, keySchema, { index }));
    const fromGet = cases.flatMap((c) => mapItem(read.get(c.sk)!, keySchema, { index }));
    const byId = (a: MappedDocument, b: MappedDocument) => (a.id < b.id ? -1 : 1);
    expect(fromScan.sort(byId)).toStrictEqual(fromGet.sort(byId));
  });

  it('the N form DynamoDB returns is already the plain form ddb2os writes', () => {
    const numbers = read.get('numbers')!;
    for (const [name, value] of Object.entries(numbers)) {
      if (value.N !== undefined) expect(keyToString(value), name).toBe(value.N);
    }
  });

  it('a search finds a number beyond 2^53 by its exact string', async () => {
    const found = await search.search({
      index,
      body: { query: { term: { 'digits38.keyword': '12345678901234567890123456789012345678' } } },
    });
    expect(found.body.hits.hits.map((hit) => hit._id)).toEqual(['mapping|numbers']);
  });
});

describe('N and B keys through DynamoDB Local and OpenSearch', () => {
  let dynamo: DynamoDBClient;
  let search: Client;
  const table = uniqueName('mapping-keys');
  const index = uniqueName('mapping-keys');
  const keys = [
    { pk: '1E+3', sk: [0, 1, 2], id: '1000|AAEC' },
    { pk: '-0.50', sk: [255], id: '-0.5|/w==' },
    {
      pk: '12345678901234567890123456789012345678',
      sk: [104, 105],
      id: '12345678901234567890123456789012345678|aGk=',
    },
    { pk: '1E-130', sk: [7], id: `0.${'0'.repeat(129)}1|Bw==` },
  ];

  beforeAll(async () => {
    dynamo = dynamoClient();
    search = openSearchClient();
    await createTable(dynamo, table, { keySchema, partitionKeyType: 'N', sortKeyType: 'B' });
    for (const key of keys) {
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { N: key.pk }, sk: { B: new Uint8Array(key.sk) } },
        }),
      );
    }
  });

  afterAll(async () => {
    await deleteTable(dynamo, table);
    await deleteIndex(search, index);
    dynamo.destroy();
    await search.close();
  });

  it('ids are the plain decimal partition key and the base64 sort key, and OpenSearch finds them', async () => {
    const scanned = await dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    const documents = (scanned.Items ?? []).flatMap((item) => mapItem(item, keySchema, { index }));
    expect(documents.map((d) => d.id).sort()).toEqual(keys.map((k) => k.id).sort());
    await bulkIndex(search, documents);

    for (const key of keys) {
      const doc = await search.get({ index, id: key.id });
      expect(doc.body._source).toStrictEqual({
        pk: mapItem({ pk: { N: key.pk } }, { partitionKey: 'pk' }, { index })[0]!.document.pk,
        sk: Buffer.from(key.sk).toString('base64'),
      });
    }
  });
});

describe('OpenSearch limits that the mapping documents', () => {
  let search: Client;
  const index = uniqueName('mapping-limits');

  beforeAll(async () => {
    search = openSearchClient();
    await search.indices.create({ index });
  });

  afterAll(async () => {
    await deleteIndex(search, index);
    await search.close();
  });

  it('an index with the default settings rejects a 30-level item (hence the depth limit setting)', async () => {
    const [deep] = mapItem(
      { pk: { S: 'deep' }, deep: nestMaps(30, { S: 'x' }) },
      { partitionKey: 'pk' },
      { index },
    );
    const response = await search
      .index({ index, id: deep!.id, body: deep!.document })
      .catch((error) => error);
    expect(response.meta.statusCode).toBe(400);
    expect(JSON.stringify(response.meta.body)).toContain('index.mapping.depth.limit');
  });

  it('dynamic mapping rejects a new field whose array mixes integers and fractions (hence the templates)', async () => {
    const [doc] = mapItem(
      { pk: { S: 'ns' }, ns: { NS: ['1000', '0.1'] } },
      { partitionKey: 'pk' },
      { index },
    );
    const response = await search.index({ index, id: doc!.id, body: doc!.document }).catch((error) => error);
    expect(response.meta.statusCode).toBe(400);
    expect(JSON.stringify(response.meta.body)).toMatch(/mapper \[ns\] cannot be changed from type/);
  });

  it('accepts a 512-byte id and rejects 513 bytes (the limit documentId enforces)', async () => {
    await search.index({ index, id: 'é'.repeat(256), body: {} });
    const response = await search
      .index({ index, id: `${'é'.repeat(256)}x`, body: {} })
      .catch((error) => error);
    expect(response.meta.statusCode).toBe(400);
    expect(JSON.stringify(response.meta.body)).toMatch(/id .* is too long, must be no longer than 512 bytes/);
  });
});
