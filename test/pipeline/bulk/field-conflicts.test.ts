/**
 * Heterogeneous items in an index that ddb2os creates, on the real engines:
 * a field whose scalar type differs between items (every arrival order of a
 * number, a string, a boolean and null), lists that mix types in a new field,
 * maps in a list whose members differ, a string set against a list of
 * numbers. Through the backfill (scanSegment → BulkWriter) and through the
 * updater (applyStreamRecords), every document lands with its exact body,
 * and a number stays range-searchable where the field is numeric. An object
 * against a scalar is the one conflict left: a dead letter naming the field
 * and both types, and a line of the run's summary.
 */
import { type AttributeValue, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { summaryLines } from '../../../cli/commands/run';
import { runLocalBackfill } from '../../../local/backfill';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromStreamsRecord } from '../../../pipeline/apply/stream-records';
import { type BulkOutcome, BulkWriter, bulkCreateLine } from '../../../pipeline/bulk/bulk-writer';
import { describeValues, valuesAt } from '../../../pipeline/bulk/field-conflicts';
import { DirectoryDeadLetterSink } from '../../../pipeline/dead-letter/dead-letter';
import { prepareIndexForBackfill } from '../../../pipeline/index/index-settings';
import type { MappingConfig } from '../../../pipeline/mapping/mapping';
import { scanSegment } from '../../../pipeline/scan/scan-segment';
import type { Item, KeySchema } from '../../../pipeline/table/types';
import { progressStore, seedItems } from '../../support/backfill-fixtures';
import { createTable, uniqueName, useEngines } from '../../support/engines';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  indexDocuments,
  readStream,
  temporaryDeadLetters,
} from '../apply/apply-stream-fixtures';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
/** Set-valued fields, compared sorted: DynamoDB keeps no order in a set. */
const SETS = ['strings_then_numbers', 'numbers_then_strings'];

const SCALARS: { kind: string; value: AttributeValue }[] = [
  { kind: 'number', value: { N: '42' } },
  { kind: 'string', value: { S: 'forty-two' } },
  { kind: 'boolean', value: { BOOL: true } },
  { kind: 'null', value: { NULL: true } },
];

function permutations<T>(values: T[]): T[][] {
  if (values.length <= 1) return [values];
  return values.flatMap((value, i) =>
    permutations([...values.slice(0, i), ...values.slice(i + 1)]).map((rest) => [value, ...rest]),
  );
}

/** 24 fields, one per arrival order: item k holds the order's k-th scalar in that field. */
const ORDERS = permutations([0, 1, 2, 3]);
const orderField = (p: number) => `drift_${ORDERS[p]!.map((i) => SCALARS[i]!.kind).join('_')}`;

/** Four items of one partition, read (and written) in sort-key order. */
function driftItems(): Item[] {
  return [0, 1, 2, 3].map((k) => {
    const item: Item = { pk: { S: 'p' }, sk: { S: String(k) } };
    ORDERS.forEach((order, p) => {
      item[orderField(p)] = SCALARS[order[k]!]!.value;
    });
    if (k === 0) {
      item.mixed_string_first = { L: [{ S: 'a' }, { N: '1' }, { BOOL: false }, { NULL: true }] };
      item.mixed_number_first = { L: [{ N: '1' }, { S: 'a' }, { BOOL: false }, { NULL: true }] };
      item.mixed_boolean_first = { L: [{ BOOL: true }, { N: '2.5' }] };
      item.members = { L: [{ M: { v: { N: '1' } } }, { M: { v: { S: 'a' } } }] };
      item.maps_and_scalars = { L: [{ N: '1' }, { M: { x: { N: '2' } } }] };
      item.deep = { M: { a: { M: { b: { L: [{ N: '1' }, { S: 'x' }] } } } } };
      item.strings_then_numbers = { SS: ['a', 'b'] };
      item.numbers_then_strings = { L: [{ N: '1' }, { N: '2' }] };
    }
    if (k === 1) {
      item.strings_then_numbers = { L: [{ N: '1' }, { N: '2' }] };
      item.numbers_then_strings = { SS: ['a', 'b'] };
    }
    return item;
  });
}

const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

async function newTable(name: string): Promise<string> {
  const table = await createTable(dynamodb, uniqueName(name), { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
  engines.deleteTableAfter(table);
  return table;
}

async function newIndex(name: string): Promise<string> {
  const index = engines.indexName(name);
  await prepareIndexForBackfill(search, index);
  return index;
}

async function hitIds(index: string, query: Record<string, unknown>): Promise<string[]> {
  const { body } = await search.search({ index, body: { query, size: 100 } });
  return body.hits.hits.map((hit) => hit._id as string).sort();
}

async function fieldTypes(index: string): Promise<Record<string, { type?: string }>> {
  const { body } = await search.indices.getMapping({ index });
  return (body as Record<string, { mappings: { properties: Record<string, { type?: string }> } }>)[index]!
    .mappings.properties;
}

/** The same assertions for both paths: every document exact, and searchable as the docs say. */
async function expectEveryItemSearchable(table: string, index: string, mapping: MappingConfig) {
  await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, mapping, SETS);
  const types = await fieldTypes(index);
  for (let p = 0; p < ORDERS.length; p++) {
    const field = orderField(p);
    const holding = (kind: string) => `p|${ORDERS[p]!.findIndex((i) => SCALARS[i]!.kind === kind)}`;
    const firstKind = ORDERS[p]!.map((i) => SCALARS[i]!.kind).find((kind) => kind !== 'null');
    if (firstKind === 'number') {
      // Numeric while the first value was a number: the number is range-searchable.
      expect(types[field]?.type, field).toBe('double');
      expect(await hitIds(index, { range: { [field]: { gte: 41, lte: 43 } } }), field).toEqual([
        holding('number'),
      ]);
    } else {
      // Text with a keyword subfield: every scalar is found by its text.
      expect(types[field]?.type, field).toBe('text');
      expect(await hitIds(index, { term: { [`${field}.keyword`]: '42' } }), field).toEqual([
        holding('number'),
      ]);
      expect(await hitIds(index, { term: { [`${field}.keyword`]: 'true' } }), field).toEqual([
        holding('boolean'),
      ]);
      expect(await hitIds(index, { match: { [field]: 'forty-two' } }), field).toEqual([holding('string')]);
    }
  }
  // Mixed lists: mapped as text + keyword by the write path, every element findable.
  for (const field of [
    'mixed_string_first',
    'mixed_number_first',
    'members.v',
    'maps_and_scalars',
    'deep.a.b',
  ]) {
    expect(await hitIds(index, { term: { [`${field}.keyword`]: '1' } }), field).toEqual(['p|0']);
  }
  expect(await hitIds(index, { term: { 'mixed_number_first.keyword': 'false' } })).toEqual(['p|0']);
  expect(await hitIds(index, { term: { 'mixed_boolean_first.keyword': '2.5' } })).toEqual(['p|0']);
  // A string set first makes the field text; a list of numbers first keeps it numeric.
  expect(await hitIds(index, { term: { 'strings_then_numbers.keyword': 'a' } })).toEqual(['p|0']);
  expect(await hitIds(index, { term: { 'strings_then_numbers.keyword': '2' } })).toEqual(['p|1']);
  expect(await hitIds(index, { range: { numbers_then_strings: { gte: 1.5, lte: 2.5 } } })).toEqual(['p|0']);
}

describe('heterogeneous items in an index ddb2os creates', () => {
  it('the backfill lands every arrival order of scalar types, mixed lists and a set against a list, exactly', async () => {
    // Prepare
    const table = await newTable('het-backfill');
    await seedItems(dynamodb, table, driftItems(), 1);
    const index = await newIndex('het-backfill');
    const mapping: MappingConfig = { index };
    const deadLetters = temporaryDeadLetters();
    const runId = uniqueName('run');

    // Act: one item per page and one request at a time, so the items arrive in sort-key order
    const outcome = await scanSegment(
      { runId, table, index, segment: 0, totalSegments: 1 },
      {
        dynamodb,
        opensearch: search,
        checkpoints: await progressStore(dynamodb),
        deadLetters,
        mapping,
        keySchema,
      },
      { pageLimit: 1, bulkConcurrency: 1, bulkMaxDocs: 1 },
    );

    // Assess
    expect(outcome).toMatchObject({ status: 'COMPLETED', result: { scanned: 4, created: 4, failed: 0 } });
    expect(await deadLetters.read(runId)).toEqual([]);
    await expectEveryItemSearchable(table, index, mapping);
  });

  it('the updater lands the same items in the same orders, exactly', async () => {
    // Prepare
    const table = await newTable('het-updater');
    const index = await newIndex('het-updater');
    const mapping: MappingConfig = { index };
    const deps = applyStreamDeps(engines, table, keySchema, mapping, { runId: 'het-updater' });
    for (const item of driftItems())
      await dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
    const changes = (await readStream(streams, dynamodb, table)).map(fromStreamsRecord);

    // Act: one batch per change, so the items arrive in the order they were written
    const results = [];
    for (const change of changes) {
      results.push(await applyStreamRecords([change], deps));
    }

    // Assess
    expect(
      results.map((result) => [result.indexed, result.deadLettered, result.firstFailedSequenceNumber]),
    ).toEqual(changes.map(() => [1, 0, undefined]));
    await expectEveryItemSearchable(table, index, mapping);
  });

  it('the updater lands a batch in which many items bring one mixed list at once', async () => {
    // Prepare
    const table = await newTable('het-batch');
    const index = await newIndex('het-batch');
    const mapping: MappingConfig = { index };
    for (let i = 0; i < 40; i++) {
      const list = i % 2 === 0 ? [{ N: String(i) }, { S: 'x' }] : [{ BOOL: true }, { N: String(i) }];
      await dynamodb.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: 'b' }, sk: { S: `${i}` }, mixed: { L: list } },
        }),
      );
    }
    const changes = (await readStream(streams, dynamodb, table)).map(fromStreamsRecord);

    // Act
    const result = await applyStreamRecords(
      changes,
      applyStreamDeps(engines, table, keySchema, mapping, { bulk: { maxDocs: 7 } }),
    );

    // Assess
    expect(result).toMatchObject({ applied: 40, indexed: 40, deadLettered: 0 });
    await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, mapping);
    expect(await hitIds(index, { term: { 'mixed.keyword': '17' } })).toEqual(['b|17']);
  });
});

describe('an object in the index against a scalar in an item', () => {
  /** `e` is a map first, then a string (dead letter); `f` a string first, then a map (lands, not indexed). */
  const items: Item[] = [
    { pk: { S: 'o' }, sk: { S: '0' }, e: { M: { k: { S: 'v' } } }, f: { S: 'plain' } },
    { pk: { S: 'o' }, sk: { S: '1' }, e: { S: 'str' } },
    { pk: { S: 'o' }, sk: { S: '2' }, e: { L: [{ N: '1' }, { M: { k: { S: 'w' } } }] } },
    { pk: { S: 'o' }, sk: { S: '3' }, f: { M: { x: { N: '1' } } } },
  ];

  it('the backfill dead-letters the item with a reason naming the field and both types, and the summary lists the field once with the fix', async () => {
    // Prepare
    const table = await newTable('obj-backfill');
    await seedItems(dynamodb, table, items, 1);
    const index = engines.indexName('obj-backfill');
    const progressTable = engines.tableName('obj-progress');
    const deadLetterDir = temporaryDeadLetters().location;

    // Act
    const result = await runLocalBackfill({
      dynamodb,
      streams,
      opensearch: search,
      table,
      index,
      mapping: { index },
      progressTable,
      deadLetterDir,
      input: { totalSegments: 1 },
      bulk: { maxDocs: 1, concurrency: 1 },
    });

    // Assess: the map-first field refuses the string and the list; the string-first field took the map
    expect(result.summary).toMatchObject({ scanned: 4, created: 2, failed: 2 });
    const letters = await new DirectoryDeadLetterSink(deadLetterDir).read(result.runId);
    expect(letters.map((letter) => [letter.id, letter.reason]).sort()).toEqual([
      ['o|1', 'field e is an object in the index mapping and a string in this item'],
      [
        'o|2',
        'field e is an object in the index mapping and a list holding numbers and objects in this item',
      ],
    ]);
    expect(result.summary.fieldConflicts).toEqual([
      {
        index,
        field: 'e',
        indexType: 'object',
        itemTypes: ['a string', 'a list holding numbers and objects'],
        items: 2,
        fix: 'map it explicitly in the index definition, e.g. "e": {"type": "object", "enabled": false} (every value kept, none searchable)',
      },
    ]);
    expect(summaryLines(result).slice(-2)).toEqual([
      'fields whose type in the index does not fit some items (those items are dead-lettered):',
      `  index ${index}: field e is an object in the index mapping and a string or a list holding numbers and objects in 2 items; map it explicitly in the index definition, e.g. "e": {"type": "object", "enabled": false} (every value kept, none searchable)`,
    ]);
    const { body } = await search.get({ index, id: 'o|0' });
    expect(body._source).toEqual({ pk: 'o', sk: '0', e: { k: 'v' }, f: 'plain' });
    expect((await search.get({ index, id: 'o|3' })).body._source).toEqual({ pk: 'o', sk: '3', f: { x: 1 } });
  });

  it('the updater dead-letters the item with the same reason and keeps the others', async () => {
    // Prepare
    const table = await newTable('obj-updater');
    const index = await newIndex('obj-updater');
    const deps = applyStreamDeps(engines, table, keySchema, { index }, { runId: 'obj-updater' });
    for (const item of items) await dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
    const changes = (await readStream(streams, dynamodb, table)).map(fromStreamsRecord);

    // Act
    let deadLettered = 0;
    for (const change of changes) {
      const result = await applyStreamRecords([change], deps);
      deadLettered += result.deadLettered;
    }

    // Assess
    expect(deadLettered).toBe(2);
    const letters = await deps.deadLetters.read('obj-updater');
    expect(letters.map((letter) => [letter.id, letter.errorType, letter.reason]).sort()).toEqual([
      [
        'o|1',
        'mapper_parsing_exception',
        'field e is an object in the index mapping and a string in this item',
      ],
      [
        'o|2',
        'mapper_parsing_exception',
        'field e is an object in the index mapping and a list holding numbers and objects in this item',
      ],
    ]);
    expect([...(await indexDocuments(search, index)).keys()].sort()).toEqual(['o|0', 'o|3']);
  });
});

describe('an index ddb2os did not create', () => {
  it('gets no mapping put: a self-conflicting list is dead-lettered after three attempts with a reason naming the field', async () => {
    // Prepare: the user's own index, without ddb2os's _meta
    const index = engines.indexName('user-index');
    await search.indices.create({ index });
    const outcomes: BulkOutcome[] = [];
    const writer = new BulkWriter<number>(search, {
      baseDelayMs: 1,
      maxDelayMs: 5,
      onOutcome: (_document, outcome) => outcomes.push(outcome),
    });

    // Act
    writer.add({ ...bulkCreateLine(index, 'mixed', JSON.stringify({ m: ['a', 1] })), ticket: 0 });
    writer.add({ ...bulkCreateLine(index, 'plain', JSON.stringify({ n: 1 })), ticket: 1 });
    await writer.drain();

    // Assess
    expect(outcomes).toContainEqual({ status: 'created' });
    expect(outcomes).toContainEqual({
      status: 'failed',
      errorType: 'illegal_argument_exception',
      httpStatus: 400,
      reason:
        'field m holds a list holding numbers and strings in this item and the index could not give it one type after 3 attempts (OpenSearch: mapper [m] cannot be changed from type [text] to [long])',
    });
    expect(Object.keys(await fieldTypes(index))).toEqual(['n']);
  });
});

describe('valuesAt and describeValues', () => {
  it('find a field path through lists and attribute names with dots, and name what they hold', () => {
    const document = { a: [{ b: 1 }, { b: 'x' }], 'c.d': { e: true }, f: [] };
    expect(valuesAt(document, 'a.b')).toEqual([1, 'x']);
    expect(valuesAt(document, 'c.d.e')).toEqual([true]);
    expect(describeValues(valuesAt(document, 'a.b'))).toBe('a number and a string');
    expect(describeValues(valuesAt(document, 'f'))).toBe('an empty list');
    expect(describeValues(valuesAt(document, 'missing'))).toBe('no value');
  });
});
