import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, MappingError } from '../../../pipeline/errors.js';
import {
  aggregateCollection,
  attributeToJson,
  checkMappingForTable,
  documentId,
  encodeDocument,
  indexFor,
  type MappingConfig,
  mapItem,
  toDocumentBody,
} from '../../../pipeline/mapping/mapping.js';
import type { Item, KeySchema } from '../../../pipeline/table/types.js';
import { type KeyType, keyValue, sameKeyValue, text } from '../../support/dynamodb-arbitraries.js';

const hashOnly: KeySchema = { partitionKey: 'pk' };
const composite: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
const bytes = (...values: number[]) => new Uint8Array(values);

describe('documentId', () => {
  it('is the partition key value for a table without a sort key', () => {
    expect(documentId({ pk: { S: 'user#1' }, name: { S: 'Ann' } }, hashOnly)).toBe('user#1');
  });

  it('is <partition>|<sort> for a table with a sort key', () => {
    expect(documentId({ pk: { S: 'user#1' }, sk: { S: 'profile' } }, composite)).toBe('user#1|profile');
  });

  it('writes N keys in plain decimal form and B keys as base64', () => {
    expect(documentId({ pk: { N: '1E+3' }, sk: { N: '1.50' } }, composite)).toBe('1000|1.5');
    expect(documentId({ pk: { N: '-0' } }, hashOnly)).toBe('0');
    expect(documentId({ pk: { N: '0.000001e-2' } }, hashOnly)).toBe('0.00000001');
    expect(documentId({ pk: { B: bytes(0, 1, 2, 253, 254, 255) }, sk: { N: '7' } }, composite)).toBe(
      'AAEC/f7/|7',
    );
  });

  it('encodes only the bytes of a Uint8Array view, not its whole buffer', () => {
    const view = new Uint8Array(bytes(9, 9, 1, 2, 3, 9).buffer, 2, 3);
    expect(documentId({ pk: { B: view } }, hashOnly)).toBe('AQID');
  });

  it('escapes | and \\ in each part of a two-part id, so keys that hold them never share an id', () => {
    expect(documentId({ pk: { S: 'a|b' }, sk: { S: 'c' } }, composite)).toBe('a\\|b|c');
    expect(documentId({ pk: { S: 'a' }, sk: { S: 'b|c' } }, composite)).toBe('a|b\\|c');
    expect(documentId({ pk: { S: 'a\\' }, sk: { S: '|b' } }, composite)).toBe('a\\\\|\\|b');
    expect(documentId({ pk: { S: 'a\\|' }, sk: { S: 'b' } }, composite)).toBe('a\\\\\\||b');
    expect(documentId({ pk: { S: '\\' }, sk: { S: '\\\\' } }, composite)).toBe('\\\\|\\\\\\\\');
  });

  it('leaves ids of keys without | or \\ exactly <partition>|<sort>, and a single-part id unescaped', () => {
    expect(documentId({ pk: { S: 'order#7' }, sk: { N: '3' } }, composite)).toBe('order#7|3');
    expect(documentId({ pk: { S: 'a|b\\c' } }, hashOnly)).toBe('a|b\\c');
  });

  it('applies the 512-byte limit to the escaped id', () => {
    // 255 + 1 + 255 = 511 bytes before escaping; each escaped | adds one.
    expect(
      documentId({ pk: { S: 'x'.repeat(255) }, sk: { S: `${'y'.repeat(254)}|` } }, composite),
    ).toHaveLength(512);
    expect(() =>
      documentId({ pk: { S: `${'x'.repeat(254)}\\` }, sk: { S: `${'y'.repeat(254)}|` } }, composite),
    ).toThrow(new MappingError("document id is 513 bytes long, more than OpenSearch's limit of 512"));
  });

  it('is injective: two keys of one table share an id only when they are the same key (property)', () => {
    const keyTypes = fc.constantFrom<KeyType>('S', 'N', 'B');
    fc.assert(
      fc.property(
        keyTypes.chain((partitionType) =>
          keyTypes.chain((sortType) => {
            const key = fc.record({ pk: keyValue(partitionType), sk: keyValue(sortType) });
            // Pairs a plain `|` join maps to one id: x + s + y with z, and x with y + s + z.
            const shifted = fc
              .tuple(
                text({ minLength: 1 }),
                text(),
                text({ minLength: 1 }),
                fc.constantFrom('|', '\\', '\\|', '|\\'),
              )
              .map(([x, y, z, s]) => [
                { pk: { S: x + s + y }, sk: { S: z } },
                { pk: { S: x }, sk: { S: y + s + z } },
              ]);
            return partitionType === 'S' && sortType === 'S'
              ? fc.oneof(fc.tuple(key, key), shifted)
              : fc.tuple(key, key);
          }),
        ),
        ([a, b]) => {
          const same = sameKeyValue(a.pk, b.pk) && sameKeyValue(a.sk, b.sk);
          const ids = [a, b].map((key) => {
            try {
              return documentId(key, composite);
            } catch (error) {
              // Only the length limit may refuse a key DynamoDB accepts.
              expect((error as Error).message).toMatch(/more than OpenSearch's limit of 512/);
              return undefined;
            }
          });
          if (ids[0] !== undefined && ids[1] !== undefined) expect(ids[0] === ids[1]).toBe(same);
        },
      ),
      { numRuns: 1000, seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED) },
    );
  });

  it('keeps S keys exactly, unicode and whitespace included', () => {
    expect(documentId({ pk: { S: ' 𝄞 Ünïcödé\t' } }, hashOnly)).toBe(' 𝄞 Ünïcödé\t');
  });

  it('fails with a MappingError naming a missing key attribute', () => {
    expect(() => documentId({ other: { S: 'x' } }, hashOnly)).toThrow(
      new MappingError('the item has no key attribute pk'),
    );
    expect(() => documentId({ pk: { S: 'x' } }, composite)).toThrow(
      new MappingError('the item has no key attribute sk'),
    );
  });

  it('fails with a MappingError for a key attribute that is not S, N or B', () => {
    expect(() => documentId({ pk: { BOOL: true } }, hashOnly)).toThrow(
      new MappingError('key attribute pk is of type BOOL, not S, N or B'),
    );
    expect(() => documentId({ pk: { S: 'a' }, sk: { L: [] } }, composite)).toThrow(
      /key attribute sk is of type L/,
    );
  });

  it('fails with a MappingError when the id exceeds OpenSearch 512 bytes', () => {
    expect(documentId({ pk: { S: 'x'.repeat(512) } }, hashOnly)).toHaveLength(512);
    expect(() => documentId({ pk: { S: 'x'.repeat(510) }, sk: { S: 'yy' } }, composite)).toThrow(
      /513 bytes long, more than OpenSearch's limit of 512/,
    );
    expect(() => documentId({ pk: { S: 'é'.repeat(257) } }, hashOnly)).toThrow(/514 bytes/);
  });
});

describe('toDocumentBody: every attribute and nothing else', () => {
  it('maps every DynamoDB type', () => {
    const item: Item = {
      pk: { S: 'p' },
      s: { S: 'text' },
      empty: { S: '' },
      n: { N: '12' },
      big: { N: '9007199254740993' },
      t: { BOOL: true },
      f: { BOOL: false },
      nothing: { NULL: true },
      m: { M: { a: { N: '1' }, b: { M: {} } } },
      l: { L: [{ S: 'x' }, { N: '2.5' }, { NULL: true }, { L: [] }] },
      ss: { SS: ['a', 'b'] },
      ns: { NS: ['1', '1E+20'] },
      bs: { BS: [bytes(1), bytes(255, 0)] },
      b: { B: bytes(104, 105) },
      emptyB: { B: bytes() },
    };

    expect(toDocumentBody(item)).toStrictEqual({
      pk: 'p',
      s: 'text',
      empty: '',
      n: 12,
      big: '9007199254740993',
      t: true,
      f: false,
      nothing: null,
      m: { a: 1, b: {} },
      l: ['x', 2.5, null, []],
      ss: ['a', 'b'],
      ns: [1, '100000000000000000000'],
      bs: ['AQ==', '/wA='],
      b: 'aGk=',
      emptyB: '',
    });
  });

  it('adds no field of its own (no id, no key copies)', () => {
    expect(Object.keys(toDocumentBody({ pk: { S: 'p' }, sk: { S: 's' } }))).toEqual(['pk', 'sk']);
  });

  it('keeps binary that arrives base64-encoded (Lambda stream events) as it is', () => {
    expect(attributeToJson({ B: 'aGk=' as unknown as Uint8Array })).toBe('aGk=');
  });

  it('keeps an attribute named __proto__ as data', () => {
    const body = toDocumentBody({ ['__proto__']: { S: 'x' }, m: { M: { ['__proto__']: { N: '1' } } } });
    expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
    expect(JSON.stringify(body)).toBe('{"__proto__":"x","m":{"__proto__":1}}');
  });

  it('maps 30 levels of nesting', () => {
    let value: Item[string] = { S: 'bottom' };
    for (let i = 0; i < 30; i++) value = i % 2 ? { M: { d: value } } : { L: [value] };
    let body: unknown = toDocumentBody({ pk: { S: 'p' }, deep: value }).deep;
    for (let i = 29; i >= 0; i--) body = i % 2 ? (body as { d: unknown }).d : (body as unknown[])[0];
    expect(body).toBe('bottom');
  });

  it('names the path of a value it cannot read', () => {
    const item = { pk: { S: 'p' }, m: { M: { list: { L: [{ S: 'ok' }, { N: 'abc' }] } } } };
    expect(() => toDocumentBody(item)).toThrow(new MappingError('m.list[1]: "abc" is not a number'));
    expect(() => toDocumentBody({ x: {} as Item[string] })).toThrow(/^x: empty is not a DynamoDB type/);
    expect(() => toDocumentBody({ x: { $unknown: ['V', 1] } as Item[string] })).toThrow(
      'x: of unknown type V is not a DynamoDB type that ddb2os maps',
    );
  });
});

describe('indexFor and mapItem: index and routing', () => {
  const routed: MappingConfig = {
    index: 'everything',
    routes: [
      { prefix: 'user#', index: 'users' },
      { prefix: 'user#admin', index: 'admins' },
      { prefix: '1', index: 'numbers' },
    ],
  };

  it('sends every item to the configured index by default', () => {
    const item = { pk: { S: 'a' }, v: { N: '1' } };
    expect(mapItem(item, hashOnly, { index: 'things' })).toEqual([
      { index: 'things', id: 'a', document: { pk: 'a', v: 1 } },
    ]);
  });

  it('routes by partition key prefix, longest prefix first', () => {
    expect(indexFor({ pk: { S: 'user#7' } }, hashOnly, routed)).toBe('users');
    expect(indexFor({ pk: { S: 'user#admin7' } }, hashOnly, routed)).toBe('admins');
    expect(indexFor({ pk: { S: 'order#7' } }, hashOnly, routed)).toBe('everything');
  });

  it('does not depend on the order of the routes', () => {
    const reversed = { ...routed, routes: [...routed.routes!].reverse() };
    expect(indexFor({ pk: { S: 'user#admin7' } }, hashOnly, reversed)).toBe('admins');
  });

  it('matches the string form of N and B keys', () => {
    expect(indexFor({ pk: { N: '1E+3' } }, hashOnly, routed)).toBe('numbers');
    expect(indexFor({ pk: { N: '2' } }, hashOnly, routed)).toBe('everything');
    const base64Routes = { index: 'x', routes: [{ prefix: 'AQ', index: 'binary' }] };
    expect(indexFor({ pk: { B: bytes(1, 2) } }, hashOnly, base64Routes)).toBe('binary');
  });

  it('skips unrouted items when configured, and maps them to []', () => {
    const skipping: MappingConfig = { ...routed, unrouted: 'skip' };
    expect(indexFor({ pk: { S: 'order#7' } }, hashOnly, skipping)).toBeUndefined();
    expect(mapItem({ pk: { S: 'order#7' } }, hashOnly, skipping)).toEqual([]);
    expect(mapItem({ pk: { S: 'user#7' } }, hashOnly, skipping)).toEqual([
      { index: 'users', id: 'user#7', document: { pk: 'user#7' } },
    ]);
  });

  it('routes by the partition key only, so a key-only item (a delete) finds its index', () => {
    expect(indexFor({ pk: { S: 'user#admin1' }, sk: { S: 'x' } }, composite, routed)).toBe('admins');
  });

  it('throws a MappingError for an item without its partition key', () => {
    expect(() => mapItem({ v: { S: 'x' } }, hashOnly, routed)).toThrow(MappingError);
  });

  it('refuses an aggregated config (partitions go through aggregateCollection)', () => {
    const config = { index: 'x', aggregate: { parentSortKey: 'A', childrenField: 'c' } };
    expect(() => mapItem({ pk: { S: 'p' }, sk: { S: 'A' } }, composite, config)).toThrow(ConfigurationError);
  });
});

describe('aggregateCollection', () => {
  const config: MappingConfig = {
    index: 'orders',
    aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' },
  };
  const order: Item[] = [
    { pk: { S: 'o1' }, sk: { S: 'LINE#2' }, qty: { N: '2' } },
    { pk: { S: 'o1' }, sk: { S: 'ORDER' }, customer: { S: 'Ann' } },
    { pk: { S: 'o1' }, sk: { S: 'LINE#10' }, qty: { N: '10' } },
    { pk: { S: 'o1' }, sk: { S: 'A' }, note: { S: 'first' } },
  ];

  it('makes one document: the parent attributes plus the other items sorted by sort key, id = partition key', () => {
    expect(aggregateCollection(order, composite, config)).toStrictEqual([
      {
        index: 'orders',
        id: 'o1',
        document: {
          pk: 'o1',
          sk: 'ORDER',
          customer: 'Ann',
          lines: [
            { pk: 'o1', sk: 'A', note: 'first' },
            { pk: 'o1', sk: 'LINE#10', qty: 10 },
            { pk: 'o1', sk: 'LINE#2', qty: 2 },
          ],
        },
      },
    ]);
  });

  it('gives the same document for any input order', () => {
    const expected = aggregateCollection(order, composite, config);
    expect(aggregateCollection([...order].reverse(), composite, config)).toStrictEqual(expected);
    expect(
      aggregateCollection([order[2]!, order[0]!, order[3]!, order[1]!], composite, config),
    ).toStrictEqual(expected);
  });

  it('sorts N sort keys by value and S sort keys by UTF-8 bytes, as DynamoDB does', () => {
    const numeric = ['10', '-1', '2', '1E+1', '0.5'].map((n, i) => ({
      pk: { S: 'p' },
      sk: { N: n },
      i: { N: String(i) },
    }));
    numeric.splice(3, 1); // 10 and 1E+1 are one key
    const lines = aggregateCollection(numeric, composite, {
      ...config,
      aggregate: { parentSortKey: '-1', childrenField: 'c' },
    });
    expect((lines[0]!.document.c as { sk: number }[]).map((line) => line.sk)).toEqual([0.5, 2, 10]);

    // U+FF5E sorts before U+1F600 in UTF-8 but after it in UTF-16 code units.
    const text = ['😀', '～', 'a'].map((s) => ({ pk: { S: 'p' }, sk: { S: s } }));
    const byBytes = aggregateCollection(text, composite, config)[0]!.document.lines as { sk: string }[];
    expect(byBytes.map((line) => line.sk)).toEqual(['a', '～', '😀']);
  });

  it('matches parentSortKey against the string form of an N sort key', () => {
    const items: Item[] = [
      { pk: { N: '1' }, sk: { N: '0.0' }, head: { BOOL: true } },
      { pk: { N: '1' }, sk: { N: '1' } },
    ];
    const [doc] = aggregateCollection(items, composite, {
      index: 'x',
      aggregate: { parentSortKey: '0', childrenField: 'c' },
    });
    expect(doc).toStrictEqual({
      index: 'x',
      id: '1',
      document: { pk: 1, sk: 0, head: true, c: [{ pk: 1, sk: 1 }] },
    });
  });

  it('without a parent item still yields a document: the partition key plus the children', () => {
    const children = order.filter((item) => item.sk!.S !== 'ORDER');
    expect(aggregateCollection(children, composite, config)[0]!.document).toStrictEqual({
      pk: 'o1',
      lines: [
        { pk: 'o1', sk: 'A', note: 'first' },
        { pk: 'o1', sk: 'LINE#10', qty: 10 },
        { pk: 'o1', sk: 'LINE#2', qty: 2 },
      ],
    });
  });

  it('a parent alone has an empty children array', () => {
    expect(aggregateCollection([order[1]!], composite, config)[0]!.document).toStrictEqual({
      pk: 'o1',
      sk: 'ORDER',
      customer: 'Ann',
      lines: [],
    });
  });

  it('maps no items to no document', () => {
    expect(aggregateCollection([], composite, config)).toEqual([]);
  });

  it('routes the collection by its partition key and can skip it', () => {
    const routedConfig: MappingConfig = { ...config, routes: [{ prefix: 'o', index: 'o-index' }] };
    expect(aggregateCollection(order, composite, routedConfig)[0]!.index).toBe('o-index');
    const skipping: MappingConfig = { ...config, routes: [{ prefix: 'x', index: 'x' }], unrouted: 'skip' };
    expect(aggregateCollection(order, composite, skipping)).toEqual([]);
  });

  it('refuses items of two partitions, repeated sort keys, and a parent that holds the children field', () => {
    const other = { pk: { S: 'o2' }, sk: { S: 'ORDER' } };
    expect(() => aggregateCollection([...order, other], composite, config)).toThrow(
      new MappingError('items of partitions o1 and o2 cannot be aggregated into one document'),
    );
    expect(() => aggregateCollection([...order, order[0]!], composite, config)).toThrow(
      new MappingError('partition o1 holds two items with sk LINE#2'),
    );
    const clash = { pk: { S: 'o1' }, sk: { S: 'ORDER' }, lines: { N: '3' } };
    expect(() => aggregateCollection([clash], composite, config)).toThrow(/has an attribute lines/);
  });

  it('needs a sort key and a children field that is not a key attribute', () => {
    expect(() => aggregateCollection(order, hashOnly, config)).toThrow(
      new ConfigurationError(
        'mapping.aggregate needs a table with a sort key, and this table has only the partition key pk',
      ),
    );
    const shadowing = { index: 'x', aggregate: { parentSortKey: 'A', childrenField: 'sk' } };
    expect(() => checkMappingForTable(shadowing, composite)).toThrow(
      new ConfigurationError('mapping.aggregate.childrenField must not be the key attribute sk'),
    );
    expect(() => checkMappingForTable({ index: 'x' }, hashOnly)).not.toThrow();
  });
});

describe('transform hook', () => {
  const item: Item = { pk: { S: 'p1' }, sk: { S: 's1' }, price: { N: '9.5' } };

  it('decides index, id and document, and can return several documents', () => {
    const config: MappingConfig = {
      index: 'main',
      transform: (source, { keySchema, defaultIndex }) => [
        {
          index: defaultIndex,
          id: documentId(source, keySchema),
          document: { price: attributeToJson(source.price!) },
        },
        { index: 'audit', id: 'p1-audit', document: {} },
      ],
    };
    expect(mapItem(item, composite, config)).toEqual([
      { index: 'main', id: 'p1|s1', document: { price: 9.5 } },
      { index: 'audit', id: 'p1-audit', document: {} },
    ]);
  });

  it('receives the key schema and the default index', () => {
    const seen: unknown[] = [];
    mapItem(item, composite, { index: 'main', transform: (_item, context) => void seen.push(context) });
    expect(seen).toEqual([{ keySchema: composite, defaultIndex: 'main' }]);
  });

  it('accepts a single document', () => {
    const config = { index: 'main', transform: () => ({ index: 'one', id: 'x', document: { a: 1 } }) };
    expect(mapItem(item, composite, config)).toEqual([{ index: 'one', id: 'x', document: { a: 1 } }]);
  });

  it('skips the item when it returns null, undefined or []', () => {
    for (const result of [null, undefined, []]) {
      expect(mapItem(item, composite, { index: 'main', transform: () => result })).toEqual([]);
    }
  });

  it('turns an error thrown by the hook into a MappingError with the cause', () => {
    const boom = new Error('no price');
    const config = {
      index: 'main',
      transform: () => {
        throw boom;
      },
    };
    expect(() => mapItem(item, composite, config)).toThrow(
      new MappingError('the transform failed: no price'),
    );
    try {
      mapItem(item, composite, config);
    } catch (error) {
      expect((error as Error).cause).toBe(boom);
    }
  });

  it('rejects results that are not documents, naming the problem', () => {
    const bad = (result: unknown) => () =>
      mapItem(item, composite, { index: 'main', transform: () => result as never });
    expect(bad('x')).toThrow(
      new MappingError('transform result [0] is not an object { index, id, document }'),
    );
    expect(bad({ index: '', id: 'x', document: {} })).toThrow(
      'transform result [0].index must be a non-empty string',
    );
    expect(
      bad([
        { index: 'a', id: 'x', document: {} },
        { index: 'Upper', id: 'x', document: {} },
      ]),
    ).toThrow(/transform result \[1\]\.index "Upper" is not a valid index name: it must be lowercase/);
    expect(bad({ index: 'a', id: '', document: {} })).toThrow(
      'transform result [0].id must be a non-empty string',
    );
    expect(bad({ index: 'a', id: 7, document: {} })).toThrow(
      'transform result [0].id must be a non-empty string',
    );
    expect(bad({ index: 'a', id: 'x'.repeat(513), document: {} })).toThrow(/limit of 512/);
    expect(bad({ index: 'a', id: 'x', document: [] })).toThrow(
      'transform result [0].document must be an object',
    );
    expect(bad({ index: 'a', id: 'x', document: null })).toThrow(
      'transform result [0].document must be an object',
    );
  });

  it('rejects an asynchronous hook', () => {
    const config = { index: 'main', transform: (async () => []) as never };
    expect(() => mapItem(item, composite, config)).toThrow(/returned a Promise/);
  });
});

describe('encodeDocument', () => {
  it('writes a mapped body as plain JSON, big numbers as their exact strings', () => {
    const body = toDocumentBody({ pk: { S: 'p' }, big: { N: '9007199254740993' }, small: { N: '1E-130' } });
    expect(encodeDocument(body)).toBe('{"pk":"p","big":"9007199254740993","small":1e-130}');
  });

  it('turns a value JSON cannot hold (a BigInt from a transform) into a MappingError', () => {
    expect(() => encodeDocument({ n: 10n })).toThrow(MappingError);
    expect(() => encodeDocument({ n: 10n })).toThrow(/^the document cannot be written as JSON: /);
  });
});
