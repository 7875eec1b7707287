/**
 * What every engine-backed test needs: clients for the real DynamoDB Local and
 * OpenSearch that the global setup started, unique names, tables with the
 * shapes the product meets, and `useEngines`, which deletes what a test file
 * created once its tests are done.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  type KeySchemaElement,
  type StreamViewType,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { Client } from '@opensearch-project/opensearch';
import { afterAll, inject } from 'vitest';
import type { KeySchema } from '../../pipeline/table/types';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

export function dynamodbEndpoint(): string {
  return inject('dynamodbEndpoint');
}

export function opensearchUrl(): string {
  return inject('opensearchUrl');
}

/** A DynamoDB client of the shared engine, or of `endpoint` (a fault proxy in front of it). */
export function dynamoClient(endpoint = dynamodbEndpoint()): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'us-east-1', credentials });
}

export function streamsClient(endpoint = dynamodbEndpoint()): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({ endpoint, region: 'us-east-1', credentials });
}

export function openSearchClient(url = opensearchUrl()): Client {
  return new Client({ node: url });
}

/** The three clients a local backfill or updater takes. */
export interface EngineClients {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  opensearch: Client;
}

let counter = 0;
/** A name no other test (or parallel test file) uses: lowercase, so it is also a valid index name. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`.toLowerCase();
}

export interface TestTableOptions {
  keySchema: KeySchema;
  /** Attribute types of the keys (default S). */
  partitionKeyType?: 'S' | 'N' | 'B';
  sortKeyType?: 'S' | 'N' | 'B';
  /** Stream view type; no stream when omitted. */
  stream?: StreamViewType;
}

/** Creates an on-demand table in DynamoDB Local and returns its name. */
export async function createTable(
  client: DynamoDBClient,
  name: string,
  options: TestTableOptions,
): Promise<string> {
  const { keySchema } = options;
  const KeySchema: KeySchemaElement[] = [{ AttributeName: keySchema.partitionKey, KeyType: 'HASH' }];
  const AttributeDefinitions: AttributeDefinition[] = [
    { AttributeName: keySchema.partitionKey, AttributeType: options.partitionKeyType ?? 'S' },
  ];
  if (keySchema.sortKey) {
    KeySchema.push({ AttributeName: keySchema.sortKey, KeyType: 'RANGE' });
    AttributeDefinitions.push({
      AttributeName: keySchema.sortKey,
      AttributeType: options.sortKeyType ?? 'S',
    });
  }
  await client.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema,
      AttributeDefinitions,
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: options.stream
        ? { StreamEnabled: true, StreamViewType: options.stream }
        : undefined,
    }),
  );
  return name;
}

export async function deleteTable(client: DynamoDBClient, name: string): Promise<void> {
  await client.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
}

export async function deleteIndex(client: Client, index: string): Promise<void> {
  await client.indices.delete({ index, ignore_unavailable: true }).catch(() => undefined);
}

/** The clients of a test file and the clean-up of what its tests create (see `useEngines`). */
export interface TestEngines extends Readonly<EngineClients> {
  /** Creates a table named `uniqueName(prefix)`, deleted after the file's tests. */
  createTable(prefix: string, options: TestTableOptions): Promise<string>;
  /** A unique table name (for a table the product creates, e.g. a progress table), deleted after the file's tests. */
  tableName(prefix: string): string;
  /** A unique index name, the index deleted after the file's tests. */
  indexName(prefix: string): string;
  /** Deletes these tables (made by another helper) after the file's tests; returns the first. */
  deleteTableAfter(...names: string[]): string;
  /** Deletes these indices after the file's tests; returns the first. */
  deleteIndexAfter(...names: string[]): string;
  /** A new empty folder under the system's temporary folder, removed after the file's tests. */
  tempDir(prefix: string): string;
}

/**
 * Clients for the shared engines, and an `afterAll` that deletes every table,
 * index and folder the file's tests registered with them. Call it once, at
 * the top of the file or of a `describe`.
 */
export function useEngines(): TestEngines {
  const tables: string[] = [];
  const indices: string[] = [];
  const folders: string[] = [];
  const engines: TestEngines = {
    dynamodb: dynamoClient(),
    streams: streamsClient(),
    opensearch: openSearchClient(),
    async createTable(prefix, options) {
      return engines.deleteTableAfter(await createTable(engines.dynamodb, uniqueName(prefix), options));
    },
    tableName: (prefix) => engines.deleteTableAfter(uniqueName(prefix)),
    indexName: (prefix) => engines.deleteIndexAfter(uniqueName(prefix)),
    deleteTableAfter(...names) {
      tables.push(...names);
      return names[0] as string;
    },
    deleteIndexAfter(...names) {
      indices.push(...names);
      return names[0] as string;
    },
    tempDir(prefix) {
      const folder = mkdtempSync(join(tmpdir(), `ddb2os-${prefix}-`));
      folders.push(folder);
      return folder;
    },
  };
  afterAll(async () => {
    await Promise.all(tables.map((table) => deleteTable(engines.dynamodb, table)));
    await Promise.all(indices.map((index) => deleteIndex(engines.opensearch, index)));
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    engines.dynamodb.destroy();
    engines.streams.destroy();
    await engines.opensearch.close();
  });
  return engines;
}

/**
 * The engine flags of a run on the test engines, as a user points ddb2os at
 * local ones; `at` points one of them elsewhere (e.g. a closed port).
 */
export function engineFlags(at: { dynamodb?: string; opensearch?: string } = {}): string[] {
  return [
    '--dynamodb-endpoint',
    at.dynamodb ?? dynamodbEndpoint(),
    '--opensearch-url',
    at.opensearch ?? opensearchUrl(),
  ];
}

/** The arguments of `ddb2os run` that point it at the shared engines, a progress table and a dead-letter folder. */
export function localRunArgs(run: {
  table: string;
  index: string;
  progressTable: string;
  deadLetterDir: string;
}): string[] {
  return [
    'run',
    '--table',
    run.table,
    '--index',
    run.index,
    ...engineFlags(),
    '--progress-table',
    run.progressTable,
    '--dead-letter-dir',
    run.deadLetterDir,
  ];
}
