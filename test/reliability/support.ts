/**
 * What the reliability cases share: items large enough that a segment takes
 * several Scan pages (so a fault can land in the middle of one), a table
 * fixture on the real DynamoDB Local, the verify step every case ends with,
 * and one figures line per case on stdout (`[reliability] …`), which
 * docs/guarantees.md quotes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamoDBClient, ScanCommand, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { expect } from 'vitest';
import { createLocalUpdater, type LocalUpdater, type LocalUpdaterOptions } from '../../local/backfill';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { type VerifyReport, verifyIndex } from '../../pipeline/verify/verify';
import { seedItems } from '../support/backfill-fixtures';
import { createTable, type EngineClients, uniqueName } from '../support/engines';

export { seedItems };

export const KEY_SCHEMA: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };
export const KEY_TYPES = { pk: 'S', sk: 'N' } as const;

/** Bytes of filler per item: 2 KB items make a 1 MB Scan page of about 500 items. */
export const PADDING_BYTES = 1_900;

/**
 * Item `i` (version `v`): a composite key, numbers a double would round, a
 * nested map and list, and padding. Every version differs in its exact
 * numbers, so an update that is lost shows as a differing document.
 */
export function reliabilityItem(i: number, v = 0, padding = PADDING_BYTES): Item {
  return {
    pk: { S: `customer#${String(i % 97).padStart(3, '0')}` },
    sk: { N: String(i) },
    version: { N: String(v) },
    amount: { N: `${i}.${String(v).padStart(3, '0')}00000000000000001` },
    big: { N: `${9_007_199_254_740_993n + BigInt(i * 1000 + v)}` },
    name: { S: `item ${i} v${v} ✓` },
    tags: { SS: ['all', `v${v}`, `m${i % 7}`] },
    // A list of one JSON type: OpenSearch rejects an array that mixes types (docs/mapping.md).
    detail: {
      M: {
        lines: { L: [{ S: `v${v}` }, { S: `line ${i}` }] },
        even: { BOOL: v % 2 === 0 },
        none: { NULL: true },
      },
    },
    padding: { S: 'x'.repeat(padding) },
  };
}

export function reliabilityKey(i: number): Item {
  return { pk: { S: `customer#${String(i % 97).padStart(3, '0')}` }, sk: { N: String(i) } };
}

/**
 * A new table filled with items 0..count-1, then given a NEW_AND_OLD_IMAGES
 * stream: an existing table that turns its stream on before its backfill.
 * (DynamoDB Local spends about 20 to 60 ms on every write to a table with a
 * stream; seeding first keeps a few thousand items to a second.)
 */
export async function seededTable(
  dynamodb: DynamoDBClient,
  prefix: string,
  count: number,
  options: { padding?: number; item?: (i: number) => Item } = {},
): Promise<string> {
  const table = await createTable(dynamodb, uniqueName(prefix), { keySchema: KEY_SCHEMA, sortKeyType: 'N' });
  const make = options.item ?? ((i: number) => reliabilityItem(i, 0, options.padding));
  await seedItems(
    dynamodb,
    table,
    Array.from({ length: count }, (_, i) => make(i)),
  );
  await dynamodb.send(
    new UpdateTableCommand({
      TableName: table,
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  return table;
}

/** The local updater of a case: the table's stream applied to the mapping's index, with the cases' key schema. */
export function reliabilityUpdater(
  clients: EngineClients,
  run: { table: string; mapping: MappingConfig; progressTable: string },
  more: Partial<LocalUpdaterOptions> = {},
): Promise<LocalUpdater> {
  const { dynamodb, streams, opensearch } = clients;
  return createLocalUpdater({ dynamodb, streams, opensearch, keySchema: KEY_SCHEMA, ...run, ...more });
}

/** Items in the table now (a consistent COUNT scan). */
export async function tableCount(dynamodb: DynamoDBClient, table: string): Promise<number> {
  let total = 0;
  let ExclusiveStartKey: Item | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({ TableName: table, Select: 'COUNT', ConsistentRead: true, ExclusiveStartKey }),
    );
    total += page.Count ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return total;
}

/** Documents in the index now, after a refresh. */
export async function indexCount(opensearch: Client, index: string): Promise<number> {
  await opensearch.indices.refresh({ index });
  return (await opensearch.count({ index })).body.count;
}

/** The verify step, against the engines themselves (never through a fault proxy). */
export async function verify(
  dynamodb: DynamoDBClient,
  opensearch: Client,
  table: string,
  mapping: MappingConfig,
  keySchema: KeySchema = KEY_SCHEMA,
  keyTypes: Record<string, 'S' | 'N' | 'B'> = { ...KEY_TYPES },
): Promise<VerifyReport> {
  return verifyIndex({
    dynamodb,
    opensearch,
    table: { name: table, keySchema, keyTypes },
    mapping,
    examples: 10,
  });
}

/** Asserts a verify report found the index equal to the table, showing the examples when not. */
export function expectClean(report: VerifyReport): void {
  expect(
    { missing: report.missing, extra: report.extra, differing: report.differing },
    JSON.stringify(report.examples, null, 1).slice(0, 4000),
  ).toEqual({ missing: 0, extra: 0, differing: 0 });
}

/** Seconds since `started`, to the tenth. */
export function secondsSince(started: number): number {
  return Math.round((Date.now() - started) / 100) / 10;
}

/** Prints the figures of a case as one line, the line docs/guarantees.md quotes. */
export function recordFigures(name: string, figures: Record<string, number | string | boolean>): void {
  const text = Object.entries(figures)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
  console.log(`[reliability] ${name}: ${text}`);
}

/** A fresh folder for dead letters. */
export function deadLetterFolder(): string {
  return mkdtempSync(join(tmpdir(), 'ddb2os-reliability-'));
}
