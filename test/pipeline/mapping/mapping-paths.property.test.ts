/**
 * One invariant, as a property over generated items (fast-check), on the real
 * engines: every path that turns a DynamoDB item into a document gives the
 * same id and the same body.
 *
 * - backfill: the worker's Scan read (scanPage), and
 *   scanSegment itself writing into an index;
 * - stream, Streams API: the records the local follower reads from DynamoDB
 *   Local's real stream, applied with the updater's code into an index;
 * - stream, Lambda event: the same records as the Lambda event carries them
 *   (GetRecords' JSON plus eventSourceARN, as AWS delivers it), through
 *   fromLambdaRecord, applied into an index;
 * - verify: `verifyIndex` maps the table's items itself and compares its
 *   expected documents with each of the three indices.
 *
 * The indices are created with `"enabled": false` mappings: what OpenSearch
 * makes of a field's type across items is another concern (docs/mapping.md);
 * here only ids and `_source` count.
 *
 * On failure fast-check prints `{ seed, path }`; replay with
 * `FC_SEED=<seed> FC_PATH=<path> npx vitest run test/pipeline/mapping/mapping-paths.property.test.ts`.
 */

import type { DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { restoreEmptyMaps, StreamFollower } from '../../../local/stream-follower';
import { applyStreamRecords } from '../../../pipeline/apply/apply-stream';
import { fromLambdaRecord, isUnreadable, type StreamChange } from '../../../pipeline/apply/stream-records';
import type { DeadLetterSink } from '../../../pipeline/dead-letter/dead-letter';
import { compareDecimals, parseDecimal } from '../../../pipeline/mapping/decimal';
import { encodeDocument, type MappedDocument, mapItem } from '../../../pipeline/mapping/mapping';
import { ensureProgressTable, SegmentCheckpointStore } from '../../../pipeline/progress/checkpoint';
import { DynamoDBStreamPositionStore } from '../../../pipeline/progress/stream-positions';
import { scanSegment } from '../../../pipeline/scan/scan-segment';
import { getRecordsPage, scanPage } from '../../../pipeline/table/reads';
import type { DeadLetterRecord, Item, KeySchema } from '../../../pipeline/table/types';
import { verifyIndex } from '../../../pipeline/verify/verify';
import { seedItems } from '../../support/backfill-fixtures';
import { item as itemOf, type KeyType, nestedValue, record } from '../../support/dynamodb-arbitraries';
import { createTable, uniqueName, useEngines } from '../../support/engines';
import { applyStreamDeps, readShards } from '../apply/apply-stream-fixtures';

const progressTable = uniqueName('paths-progress');

const engines = useEngines();
const { dynamodb, streams, opensearch: search } = engines;

engines.deleteTableAfter(progressTable);

beforeAll(async () => {
  await ensureProgressTable(dynamodb, progressTable);
});

interface TableKeys {
  partitionKey: string;
  partitionType: KeyType;
  sortKey?: string;
  sortType?: KeyType;
}

const keySchemaOf = (keys: TableKeys): KeySchema =>
  keys.sortKey === undefined
    ? { partitionKey: keys.partitionKey }
    : { partitionKey: keys.partitionKey, sortKey: keys.sortKey };

/** One table's key types and its items, distinct keys (told apart by the id, which is injective). */
const batch = fc
  .record({
    partitionType: fc.constantFrom<KeyType>('S', 'N', 'B'),
    sortType: fc.constantFrom<KeyType | undefined>('S', 'N', 'B', undefined),
  })
  .chain(({ partitionType, sortType }) => {
    const keys: TableKeys =
      sortType === undefined
        ? { partitionKey: 'pk', partitionType }
        : { partitionKey: 'pk', partitionType, sortKey: 'sk', sortType };
    return fc
      .uniqueArray(itemOf(keys), {
        minLength: 55,
        maxLength: 65,
        selector: (item) => mapItem(item, keySchemaOf(keys), { index: 'x' })[0]?.id,
      })
      .map((items) => ({ keys, items }));
  });

const RUNS = Number(process.env.FC_NUM_RUNS ?? 5);

describe('every path maps an item to the same document (property, real engines)', () => {
  it(`backfill, stream (Streams API and Lambda event) and verify agree on ${RUNS} tables of ~60 generated items`, async () => {
    await fc.assert(
      fc.asyncProperty(batch, async ({ keys, items }) => {
        await checkAllPaths(keys, items);
      }),
      {
        numRuns: RUNS,
        seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED),
        path: process.env.FC_PATH,
        // Shrinking would create a table per step; the per-item messages already name the item and the path.
        endOnFailure: true,
      },
    );
  });

  it('agrees on 30 levels of nesting, keys holding | and \\, and empty maps and lists at several depths', async () => {
    const keys: TableKeys = { partitionKey: 'pk', partitionType: 'S', sortKey: 'sk', sortType: 'S' };
    const items: Item[] = [
      { pk: { S: 'deep' }, sk: { S: '30' }, nested: nestedValue(30) },
      { pk: { S: 'a|b' }, sk: { S: 'c' }, v: { N: '1' } },
      { pk: { S: 'a' }, sk: { S: 'b|c' }, v: { N: '2' } },
      { pk: { S: 'a\\' }, sk: { S: '|b' }, v: { N: '3' } },
      { pk: { S: 'a\\|' }, sk: { S: 'b' }, v: { N: '4' } },
      {
        pk: { S: 'empty' },
        sk: { S: '\\' },
        top: { M: {} },
        inMap: { M: { e: { M: {} }, l: { L: [] } } },
        inList: { L: [{ M: {} }, { L: [] }, { L: [{ M: {} }] }] },
        listInMap: { M: { l: { L: [{ M: {} }, { M: { x: { M: {} } } }] } } },
      },
      record([
        ['pk', { S: '__proto__' }],
        ['sk', { S: 'constructor' }],
        ['__proto__', { M: record([['__proto__', { S: 'still data' }]]) }],
        ['a.b', { S: 'dotted' }],
      ]),
    ];
    const documents = await checkAllPaths(keys, items);
    expect(documents.get('a\\|b|c')).toBeDefined();
    expect(documents.get('a|b\\|c')).toBeDefined();
    expect(documents.size).toBe(items.length);
  });
});

/**
 * Puts the items into a new table with a stream, maps them along every path
 * and checks that all agree, item by item and in the indices; returns the
 * documents by id.
 */
async function checkAllPaths(keys: TableKeys, items: Item[]): Promise<Map<string, MappedDocument>> {
  // Prepare: the table, its stream, and an index per path that writes one
  const keySchema = keySchemaOf(keys);
  const table = await createTable(dynamodb, uniqueName('paths'), {
    keySchema,
    partitionKeyType: keys.partitionType,
    sortKeyType: keys.sortType,
    stream: 'NEW_AND_OLD_IMAGES',
  });
  engines.deleteTableAfter(table);
  const index = {
    backfill: uniqueName('paths-backfill'),
    streams: uniqueName('paths-streams'),
    lambda: uniqueName('paths-lambda'),
  };
  for (const name of Object.values(index)) {
    engines.deleteIndexAfter(name);
    await search.indices.create({ index: name, body: { mappings: { enabled: false } } });
  }
  await seedItems(dynamodb, table, items, 4);
  const deadLetters: DeadLetterRecord[] = [];
  const sink: DeadLetterSink = {
    location: 'memory',
    put: async (records) => void deadLetters.push(...records),
  };

  // Act: each path reads the table (or its stream) and maps what it read
  const fromScan = await scanAsWorkerReads(table);
  const backfill = await scanSegment(
    { runId: uniqueName('run'), table, index: index.backfill, segment: 0, totalSegments: 1 },
    {
      dynamodb,
      opensearch: search,
      checkpoints: new SegmentCheckpointStore(dynamodb, progressTable),
      deadLetters: sink,
      mapping: { index: index.backfill },
      keySchema,
    },
  );

  const followed: StreamChange[] = [];
  const follower = new StreamFollower({
    streams,
    dynamodb,
    table,
    positions: await DynamoDBStreamPositionStore.open({ dynamodb, progressTable, table }),
    apply: (changes) => {
      // Every record of this stream is readable; one that is not fails the comparison below.
      for (const change of changes) if (!isUnreadable(change)) followed.push(change);
      return applyStreamRecords(
        changes,
        applyStreamDeps(engines, table, keySchema, { index: index.streams }, { deadLetters: sink }),
      );
    },
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
  });
  await follower.drain();

  const lambdaRecords = await lambdaEventRecords(table);
  const lambdaChanges = lambdaRecords.map(fromLambdaRecord);
  const applied = await applyStreamRecords(
    lambdaChanges,
    applyStreamDeps(engines, table, keySchema, { index: index.lambda }, { deadLetters: sink }),
  );

  // Assess, item by item: the same id and the same body on every path, and the item as it was written
  const mapped = (paths: Record<string, Item[]>) =>
    Object.fromEntries(
      Object.entries(paths).map(([path, read]) => [
        path,
        byId(
          read.flatMap((item) => {
            try {
              return mapItem(item, keySchema, { index: 'i' });
            } catch (error) {
              throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
            }
          }),
        ),
      ]),
    );
  const paths = mapped({
    'backfill (Scan JSON, decodeWireItem)': fromScan,
    'stream (Streams API, follower)': followed.map((change) => change.newImage!),
    'stream (Lambda event)': lambdaChanges.map((change) => change.newImage!),
  });
  const written = byId(items.flatMap((item) => mapItem(sortedSets(item), keySchema, { index: 'i' })));
  const scanned = byId(fromScan.flatMap((item) => mapItem(sortedSets(item), keySchema, { index: 'i' })));
  const [reference, ...others] = Object.entries(paths);
  const [referenceName, referenceDocuments] = reference!;
  expect([...referenceDocuments.keys()].sort(), `ids of ${referenceName} against the items written`).toEqual(
    [...written.keys()].sort(),
  );
  for (const [id, document] of referenceDocuments) {
    expect(
      canonical(scanned.get(id)!.document),
      `${referenceName}: item ${id} against the item written (sets sorted)`,
    ).toBe(canonical(written.get(id)!.document));
    const body = canonical(document.document);
    for (const [name, documents] of others) {
      expect(documents.get(id), `${name}: item ${id} has a document`).toBeDefined();
      expect(
        canonical(documents.get(id)!.document),
        `${name}: body of item ${id} against ${referenceName}`,
      ).toBe(body);
    }
  }
  for (const [name, documents] of others) expect(documents.size, `${name}: documents`).toBe(items.length);

  // Assess, in the indices: what each path wrote is what verify expects of the table, nothing else
  expect(backfill.status).toBe('COMPLETED');
  if (backfill.status === 'COMPLETED') {
    expect(backfill.result).toMatchObject({ scanned: items.length, created: items.length, failed: 0 });
  }
  expect(applied).toMatchObject({ applied: items.length, deadLettered: 0 });
  expect(deadLetters.map((letter) => letter.reason)).toEqual([]);
  for (const [path, name] of Object.entries(index)) {
    const report = await verifyIndex({
      dynamodb,
      opensearch: search,
      table: { name: table, keySchema, keyTypes: keyTypesOf(keys) },
      mapping: { index: name },
    });
    expect(
      {
        matched: report.matched,
        missing: report.missing,
        extra: report.extra,
        differing: report.differing,
        unmappable: report.unmappable,
        examples: report.examples.differing,
      },
      `verify of the ${path} index`,
    ).toEqual({ matched: items.length, missing: 0, extra: 0, differing: 0, unmappable: 0, examples: [] });
  }
  return referenceDocuments;
}

/** The worker's read of a Scan page (scanPage: the answer's JSON, binary decoded in place). */
async function scanAsWorkerReads(table: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await scanPage(dynamodb, { TableName: table, ExclusiveStartKey: start });
    items.push(...page.items);
    start = page.lastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * The table's stream as a Lambda event carries it: each record of GetRecords'
 * JSON as it came, plus `eventSourceARN` (binary stays base64, times stay
 * epoch seconds). DynamoDB Local's `{}` for an empty map is read as AWS's
 * streams write it, `{"M":{}}` (restoreEmptyMaps), since a Lambda never sees
 * that engine's stream.
 */
async function lambdaEventRecords(table: string): Promise<DynamoDBRecord[]> {
  const { streamArn, records } = await readShards(streams, dynamodb, table, async (iterator) => {
    const answer = await getRecordsPage(streams, { ShardIterator: iterator });
    return { records: answer.records, next: answer.nextShardIterator };
  });
  return records.map((raw) => {
    restoreEmptyMaps(raw);
    return { ...raw, eventSourceARN: streamArn };
  });
}

function keyTypesOf(keys: TableKeys): Record<string, 'S' | 'N' | 'B'> {
  return keys.sortKey === undefined
    ? { [keys.partitionKey]: keys.partitionType }
    : { [keys.partitionKey]: keys.partitionType, [keys.sortKey]: keys.sortType ?? 'S' };
}

function byId(documents: MappedDocument[]): Map<string, MappedDocument> {
  return new Map(documents.map((document) => [document.id, document]));
}

/** The item with every set's members in one order: DynamoDB keeps none. */
function sortedSets(item: Item): Item {
  return record(Object.entries(item).map(([name, value]) => [name, sortedSetValue(value)]));
}

function sortedSetValue(value: Item[string]): Item[string] {
  if (value.SS) return { SS: [...value.SS].sort() };
  if (value.NS)
    return { NS: [...value.NS].sort((a, b) => compareDecimals(parseDecimal(a)!, parseDecimal(b)!)) };
  if (value.BS) return { BS: [...value.BS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) };
  if (value.M) return { M: sortedSets(value.M) };
  if (value.L) return { L: value.L.map(sortedSetValue) };
  return value;
}

/** A body as JSON text with every object's members in name order, so member order does not count. */
function canonical(body: unknown): string {
  return encodeDocument({ body: sortMembers(body) });
}

function sortMembers(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortMembers);
  if (value === null || typeof value !== 'object') return value;
  return record(
    Object.keys(value)
      .sort()
      .map((name) => [name, sortMembers((value as Record<string, unknown>)[name])]),
  );
}
