/**
 * A schemaless table as real ones are: the same attribute with different
 * types across items, lists whose elements mix types, empty maps and lists
 * deep inside, keys holding `|` and `\`, an item near DynamoDB's 400 KB limit
 * and one nested 30 levels deep, unicode, binary, 38-digit and tiny numbers.
 * Deterministic (a fixed seed), so a failure reproduces.
 *
 * What it leaves out on purpose: an attribute that is a map in one item and a
 * scalar in another (or a list mixing maps and scalars). OpenSearch cannot
 * index both under one field, and such an item may legitimately be
 * dead-lettered (docs/mapping.md), so it has no place in a table of which
 * every item must land.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { seededRandom } from '../../local/demo-data';
import { loadItems } from '../../local/load-items';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { createTable } from './engines';

export const SCHEMALESS_KEY_SCHEMA: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

/**
 * Pairs of keys that a naive `<partition>|<sort>` id would merge into one
 * document (`a|b|c`, `x\||y`), and keys holding the escape characters alone.
 */
export const TRICKY_KEYS: { pk: string; sk: string }[] = [
  { pk: 'a|b', sk: 'c' },
  { pk: 'a', sk: 'b|c' },
  { pk: 'x\\', sk: '|y' },
  { pk: 'x\\|', sk: 'y' },
  { pk: 'back\\slash', sk: 'end\\' },
  { pk: 'p\\|q', sk: 'r\\|s' },
  { pk: '|', sk: '|' },
  { pk: '\\', sk: '\\' },
];

/** The key of the item of about 350 KB. */
export const BIG_ITEM_KEY = { pk: 'big', sk: '350kb' } as const;
/** The item's names plus values in UTF-8 bytes (DynamoDB adds a byte or so per list element): under its 400 KB. */
export const BIG_ITEM_BYTES = 350 * 1024;

/** The key of the item whose attribute `nest` is 30 levels deep, maps and lists alternating. */
export const DEEP_ITEM_KEY = { pk: 'deep', sk: 'alternating-30' } as const;
export const NESTING_LEVELS = 30;

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: string): AttributeValue => ({ N: value });
const BOOL = (value: boolean): AttributeValue => ({ BOOL: value });
const NULL: AttributeValue = { NULL: true };
const L = (...values: AttributeValue[]): AttributeValue => ({ L: values });
const M = (value: Record<string, AttributeValue>): AttributeValue => ({ M: value });
const B = (bytes: number[]): AttributeValue => ({ B: Uint8Array.from(bytes) });

/** DynamoDB numbers at the edges: 38 significant digits, the largest and smallest magnitudes. */
const EDGE_NUMBERS = [
  '12345678901234567890123456789012345678',
  '-99999999999999999999999999999999999999',
  '9.9999999999999999999999999999999999999E+125',
  '1E-130',
  '-1.234567890123456E-120',
  '0.1000000000000001',
  '9007199254740993',
  '-0',
  '1E+3',
  '0.000120',
];

/** One value of each scalar kind a list may mix, rotated so the first element's type varies. */
function mixedList(rotation: number, random: () => number): AttributeValue {
  const elements = [
    S(`word ${Math.floor(random() * 1000)}`),
    N(EDGE_NUMBERS[rotation % EDGE_NUMBERS.length] as string),
    BOOL(rotation % 2 === 0),
    NULL,
    N(String(Math.floor(random() * 100))),
    S(''),
  ];
  const shift = rotation % elements.length;
  return L(...elements.slice(shift), ...elements.slice(0, shift));
}

/** A scalar of the kind `kind` (0 number, 1 string, 2 boolean). */
function scalarOfKind(kind: number, i: number): AttributeValue {
  if (kind === 0) return N(i % 7 === 0 ? (EDGE_NUMBERS[i % EDGE_NUMBERS.length] as string) : `${i}.25`);
  if (kind === 1) return S(i % 5 === 0 ? `${i}` : `text ${i}`);
  return BOOL(i % 2 === 0);
}

/** An empty map `depth` levels down through maps: depth 1 is `{}`, depth 2 `{a:{}}`, … */
function emptyMapAt(depth: number): AttributeValue {
  return depth <= 1 ? M({}) : M({ [`d${depth}`]: emptyMapAt(depth - 1) });
}

/** An empty list `depth` levels down through lists: depth 1 is `[]`, depth 2 `[[]]`, … */
function emptyListAt(depth: number): AttributeValue {
  return depth <= 1 ? L() : L(emptyListAt(depth - 1));
}

/** Empty maps and lists at depths 1 to 4, in maps and in lists, under names that never hold a scalar. */
function emptiesAtDepths(): Item {
  const item: Item = {};
  for (let depth = 1; depth <= 4; depth++) {
    item[`emptyMap${depth}`] = emptyMapAt(depth);
    item[`emptyList${depth}`] = emptyListAt(depth);
    // A map holding an empty list, and a list holding an empty map, `depth` levels down.
    item[`emptyListInMap${depth}`] = depth === 1 ? M({ list: L() }) : M({ inner: emptyListAt(depth - 1) });
    item[`emptyMapInList${depth}`] = depth === 1 ? L(M({})) : L(emptyMapAt(depth - 1));
  }
  item.emptiesTogether = M({
    map: M({}),
    list: L(),
    maps: L(M({}), M({ e: M({}) }), M({ l: L() })),
    nested: M({ a: M({ b: M({ c: M({}) }) }), z: L(L(L())) }),
  });
  return item;
}

/** `levels` of maps and lists alternating, the top-level attribute a map; the innermost value a string. */
function alternatingNest(levels: number): AttributeValue {
  let value: AttributeValue = S('the bottom');
  for (let level = levels; level >= 1; level--) {
    value = level % 2 === 1 ? M({ level: N(String(level)), next: value }) : L(value);
  }
  return value;
}

/** `levels` of maps, one inside the other. */
function mapNest(levels: number): AttributeValue {
  let value: AttributeValue = S('the bottom');
  for (let level = levels; level >= 1; level--) value = M({ [`m${level}`]: value });
  return value;
}

const WORDS = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'größe', 'naïve', '東京', 'مرحبا', '🙂'];

/** Text of exactly `bytes` UTF-8 bytes: whole words while they fit, then dots. */
function words(random: () => number, bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (;;) {
    const word = `${WORDS[Math.floor(random() * WORDS.length)]} `;
    const wordBytes = Buffer.byteLength(word);
    if (size + wordBytes > bytes) break;
    parts.push(word);
    size += wordBytes;
  }
  return parts.join('') + '.'.repeat(bytes - size);
}

/** The 350 KB item: a long text and a list of lines. Its document is plain JSON strings, easy to state. */
export function bigItem(): Item {
  const random = seededRandom(350);
  const lines = Array.from({ length: 500 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(90)}`);
  const fixed =
    Buffer.byteLength('pk') +
    Buffer.byteLength(BIG_ITEM_KEY.pk) +
    Buffer.byteLength('sk') +
    Buffer.byteLength(BIG_ITEM_KEY.sk) +
    Buffer.byteLength('lines') +
    lines.reduce((sum, line) => sum + Buffer.byteLength(line), 0) +
    Buffer.byteLength('text');
  return {
    pk: S(BIG_ITEM_KEY.pk),
    sk: S(BIG_ITEM_KEY.sk),
    text: S(words(random, BIG_ITEM_BYTES - fixed)),
    lines: L(...lines.map(S)),
  };
}

/** The big item's document, written out without ddb2os's mapping code. */
export function bigItemDocument(): Record<string, unknown> {
  const item = bigItem();
  return {
    pk: BIG_ITEM_KEY.pk,
    sk: BIG_ITEM_KEY.sk,
    text: item.text?.S,
    lines: item.lines?.L?.map((line) => line.S),
  };
}

/** Ordinary-looking items that between them drift in type, mix lists, hold empties, binary and edge numbers. */
function everydayItem(i: number, random: () => number): Item {
  const item: Item = {
    pk: S(`item#${String(i % 70).padStart(3, '0')}`),
    sk: S(`v${String(i).padStart(4, '0')}`),
    name: S(i % 13 === 0 ? `ünïcødé ${i} 🚀 مرحبا 日本語 e\u0301` : `item ${i}`),
    amount: N(
      i % 17 === 0 ? (EDGE_NUMBERS[(i / 17) % EDGE_NUMBERS.length] as string) : `${i * 3}.${i % 100}`,
    ),
    // The same name as a number, a string or a boolean; which comes first differs with the scan order.
    drift: i % 11 === 0 ? NULL : scalarOfKind((i * 7) % 3, i),
    active: BOOL(random() < 0.5),
    note: S(i % 10 === 0 ? '' : `note ${Math.floor(random() * 1e6)}`),
  };
  if (i % 4 === 0) item.mixed = mixedList(i / 4, random);
  if (i % 5 === 0) item.tags = { SS: [`t${i}`, `u${i}`, 'shared'] };
  if (i % 5 === 2) item.tags = L(N(String(i)), N('2.5'), N(EDGE_NUMBERS[i % EDGE_NUMBERS.length] as string));
  if (i % 5 === 3) item.codes = { NS: [String(i * 1000), '0.1', '12345678901234567890123456789012345678'] };
  if (i % 5 === 4) item.codes = { SS: ['A-1', `B-${i}`] };
  if (i % 6 === 0) Object.assign(item, emptiesAtDepths());
  if (i % 6 === 3) item.profile = M({ empty: M({}), items: L(), level: scalarOfKind(i % 3, i) });
  if (i % 9 === 0) {
    item.blob = B([0, 1, 2, 255, 254, i % 256]);
    item.blobs = { BS: [Uint8Array.from([i % 256]), Uint8Array.from([1, 2, 3])] };
    item.files = L(B([104, 105]), S('not binary'), B([]));
  }
  if (i % 8 === 5) item.measures = L(N('1000'), N('0.1'), N('-7'), N(EDGE_NUMBERS[0] as string));
  if (i % 12 === 7) item.nothing = NULL;
  return item;
}

const KINDS = ['number', 'string', 'boolean'] as const;
const PERMUTATIONS = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/** For each order of number, string and boolean, three items whose field `driftOrder<k>` arrives in that order. */
function driftOrderItems(): Item[] {
  return PERMUTATIONS.flatMap((order, k) =>
    order.map((kind, position) => ({
      pk: S(`drift-order#${k}`),
      sk: S(`${position}-${KINDS[kind]}`),
      [`driftOrder${k}`]: scalarOfKind(kind, position * 7 + k),
      // And the same inside a map and inside a list.
      [`driftInMap${k}`]: M({ value: scalarOfKind(kind, position * 7 + k) }),
      [`driftInList${k}`]: L(scalarOfKind(kind, position + k)),
    })),
  );
}

/** Items whose only occurrence of a field is a mixed list, so the field is first seen that way. */
function freshMixedItems(random: () => number): Item[] {
  return Array.from({ length: 6 }, (_, k) => ({
    pk: S(`fresh-mixed#${k}`),
    sk: S('only'),
    [`freshMixed${k}`]: mixedList(k, random),
    [`freshNested${k}`]: M({ inner: M({ list: mixedList(k + 3, random) }) }),
    [`freshListOfLists${k}`]: L(mixedList(k + 1, random), L(), mixedList(k + 2, random)),
  }));
}

function unicodeAndBinaryItems(): Item[] {
  return [
    {
      pk: S('ünïcødé 🚀'),
      sk: S('日本語 · مرحبا · e\u0301'),
      名前: S('テスト'),
      'émoji🙂': S('👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag'),
      'dotted.name': S('a field name with a dot'),
      rtl: S('שלום עולם'),
      mixedUnicode: L(S('ß'), N('1'), BOOL(false), NULL, S('𝔘𝔫𝔦𝔠𝔬𝔡𝔢')),
    },
    {
      pk: S('binary'),
      sk: S('all-bytes'),
      bytes: B(Array.from({ length: 256 }, (_, i) => i)),
      emptyBytes: B([]),
      byteSet: { BS: [Uint8Array.from([0]), Uint8Array.from([255, 0]), Uint8Array.from([1, 2, 3, 4])] },
      binaryInMap: M({ b: B([222, 173, 190, 239]), inList: L(B([1]), B([2])) }),
    },
    {
      pk: S('numbers'),
      sk: S('edges'),
      edges: L(...EDGE_NUMBERS.map(N)),
      edgeSet: { NS: EDGE_NUMBERS.filter((n) => n !== '-0' && n !== '1E+3') },
      huge: N(EDGE_NUMBERS[2] as string),
      tiny: N(EDGE_NUMBERS[3] as string),
      amount: N(EDGE_NUMBERS[1] as string),
    },
  ];
}

/** The table's items in the order they are written (about 300). */
export function schemalessItems(): Item[] {
  const random = seededRandom(12);
  const items: Item[] = [];
  for (let i = 0; i < 250; i++) items.push(everydayItem(i, random));
  items.push(...driftOrderItems());
  items.push(...freshMixedItems(random));
  items.push(...unicodeAndBinaryItems());
  for (const [i, key] of TRICKY_KEYS.entries()) {
    items.push({ pk: S(key.pk), sk: S(key.sk), which: N(String(i)), raw: S(`${key.pk} + ${key.sk}`) });
  }
  items.push({ ...emptiesAtDepths(), pk: S('empties'), sk: S('all-depths') });
  items.push({ pk: S(DEEP_ITEM_KEY.pk), sk: S(DEEP_ITEM_KEY.sk), nest: alternatingNest(NESTING_LEVELS) });
  items.push({ pk: S('deep'), sk: S('maps-30'), mapNest: mapNest(NESTING_LEVELS) });
  items.push(bigItem());
  return items;
}

/**
 * Creates the table (pk and sk of type S, stream NEW_AND_OLD_IMAGES) and
 * writes the items; returns them. The items whose field type drifts in a
 * stated order are written last, one at a time, so the stream holds them in
 * that order.
 */
export async function createSchemalessTable(dynamodb: DynamoDBClient, table: string): Promise<Item[]> {
  await createTable(dynamodb, table, { keySchema: SCHEMALESS_KEY_SCHEMA, stream: 'NEW_AND_OLD_IMAGES' });
  const items = schemalessItems();
  const ordered = (item: Item) => item.pk?.S?.startsWith('drift-order#') === true;
  await loadItems(
    dynamodb,
    table,
    items.filter((item) => !ordered(item)),
  );
  for (const item of items.filter(ordered)) {
    await dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  }
  return items;
}

/** One write to the table after it was seeded, said in words for a failure message. */
export interface TableChange {
  what: string;
  /** PutItem, UpdateItem or DeleteItem input (without TableName). */
  put?: { Item: Item };
  update?: {
    Key: Item;
    UpdateExpression: string;
    ExpressionAttributeValues?: Item;
    ExpressionAttributeNames?: Record<string, string>;
  };
  delete?: { Key: Item };
}

const key = (pk: string, sk: string): Item => ({ pk: S(pk), sk: S(sk) });

/**
 * Changes of every kind to the seeded table (updates that change a field's
 * type, deletes, re-puts with other types, a new item, a change to the 350 KB
 * item), never turning a scalar field into a map or back.
 */
export function schemalessChanges(): TableChange[] {
  const random = seededRandom(99);
  return [
    {
      what: 'update item#000/v0000: drift becomes a string, mixed a new mixed list, note removed',
      update: {
        Key: key('item#000', 'v0000'),
        UpdateExpression: 'SET drift = :drift, mixed = :mixed, emptyMap3 = :empty REMOVE note',
        ExpressionAttributeValues: {
          ':drift': S('now a string'),
          ':mixed': mixedList(3, random),
          ':empty': emptyMapAt(3),
        },
      },
    },
    {
      what: 'update a|b + c: which becomes a string',
      update: {
        Key: key('a|b', 'c'),
        UpdateExpression: 'SET which = :which',
        ExpressionAttributeValues: { ':which': S('changed') },
      },
    },
    { what: 'delete a + b|c', delete: { Key: key('a', 'b|c') } },
    { what: 'delete x\\| + y', delete: { Key: key('x\\|', 'y') } },
    { what: 'delete item#001/v0001', delete: { Key: key('item#001', 'v0001') } },
    {
      what: 'put item#002/v0002 again with other types: amount a string, drift a boolean, tags a string set',
      put: {
        Item: {
          ...emptiesAtDepths(),
          pk: S('item#002'),
          sk: S('v0002'),
          amount: S('twelve'),
          drift: BOOL(true),
          tags: { SS: ['re', 'put'] },
          mixed: mixedList(5, random),
        },
      },
    },
    {
      what: 'put drift-order#0 / 0-number again with driftOrder0 a boolean',
      put: {
        Item: {
          pk: S('drift-order#0'),
          sk: S('0-number'),
          driftOrder0: BOOL(false),
          driftInMap0: M({ value: S('a string now') }),
          driftInList0: L(NULL, BOOL(true), N('1')),
        },
      },
    },
    {
      what: 'insert new|item + \\after, holding a mixed list and empties',
      put: {
        Item: { ...emptiesAtDepths(), pk: S('new|item'), sk: S('\\after'), mixed: mixedList(1, random) },
      },
    },
    {
      what: 'update the 350 KB item: its first line changes',
      update: {
        Key: key(BIG_ITEM_KEY.pk, BIG_ITEM_KEY.sk),
        UpdateExpression: 'SET #lines[0] = :line',
        ExpressionAttributeNames: { '#lines': 'lines' },
        ExpressionAttributeValues: { ':line': S('the first line, changed') },
      },
    },
    {
      what: 'update the 30-level item: a new top-level attribute',
      update: {
        Key: key(DEEP_ITEM_KEY.pk, DEEP_ITEM_KEY.sk),
        UpdateExpression: 'SET touched = :t',
        ExpressionAttributeValues: { ':t': BOOL(true) },
      },
    },
  ];
}

/** Makes one change to the table. */
export async function applyChange(
  dynamodb: DynamoDBClient,
  table: string,
  change: TableChange,
): Promise<void> {
  if (change.put) await dynamodb.send(new PutItemCommand({ TableName: table, ...change.put }));
  if (change.update) await dynamodb.send(new UpdateItemCommand({ TableName: table, ...change.update }));
  if (change.delete) await dynamodb.send(new DeleteItemCommand({ TableName: table, ...change.delete }));
}
