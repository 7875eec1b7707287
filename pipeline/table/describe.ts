/**
 * The source table's description: one DescribeTable, read into one domain
 * type (`SourceTable`) for every caller (the worker, the updater, the local
 * runner and its stream follower, the CLI's plan and verify, the planner that
 * reads the workflow's own DescribeTable state, the benchmark).
 *
 * A missing table and a refused DescribeTable are one sentence naming the
 * table (SourceTableError); any other error (throttling, the network) is left
 * as the SDK threw it, for the caller to retry or explain.
 */
import {
  type AttributeDefinition,
  DescribeTableCommand,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { SourceTableError } from '../errors';
import type { KeySchema } from './types';

/** The type of a key attribute (AttributeDefinitions). */
export type KeyType = 'S' | 'N' | 'B';

/** What ddb2os reads of a table's description. */
export interface SourceTable {
  name: string;
  keySchema: KeySchema;
  /** Type of each key attribute, from AttributeDefinitions (S when it is not listed). */
  keyTypes: Record<string, KeyType>;
  /** DescribeTable's estimate (AWS refreshes it about every six hours); 0 when absent. */
  itemCount: number;
  /** DescribeTable's estimate, like itemCount; 0 when absent. */
  sizeBytes: number;
  /** TableStatus (ACTIVE, CREATING, …); UNKNOWN when absent. */
  status: string;
  /** PAY_PER_REQUEST or PROVISIONED (a description without a billing summary is provisioned). */
  billingMode: string;
  /** Provisioned read capacity units, for a provisioned table. */
  provisionedReadUnits?: number;
  /** True when the table's stream is enabled. */
  streamEnabled: boolean;
  /** The current stream, when one is enabled. */
  streamArn?: string;
  /** Its label, which orders the table's streams (oldest first). */
  streamLabel?: string;
  /** DescribeTable's `Table` as JSON (numbers as numbers, dates as ISO strings): what the workflow's DescribeTable state passes on. */
  description: Record<string, unknown>;
}

/**
 * One DescribeTable. Throws SourceTableError "table X does not exist" (with
 * `where`, e.g. "at http://localhost:8000", appended) or "access to table X
 * was denied: …", and when the description has no partition key.
 */
export async function describeSourceTable(
  dynamodb: DynamoDBClient,
  table: string,
  options: { signal?: AbortSignal; where?: string } = {},
): Promise<SourceTable> {
  let described: TableDescription | undefined;
  try {
    ({ Table: described } = await dynamodb.send(new DescribeTableCommand({ TableName: table }), {
      abortSignal: options.signal,
    }));
  } catch (error) {
    throw tableError(error, table, options.where) ?? error;
  }
  return sourceTableFrom({ TableName: table, ...JSON.parse(JSON.stringify(described ?? {})) });
}

/** Only the answers that concern the table itself; undefined for the rest (throttling, network, abort). */
function tableError(error: unknown, table: string, where: string | undefined): SourceTableError | undefined {
  const name = (error as { name?: unknown } | undefined)?.name;
  const at = where ? ` ${where}` : '';
  if (name === 'ResourceNotFoundException') {
    // No cause: DynamoDB's "Cannot do operations on a non-existent table" would only repeat it.
    return new SourceTableError(`table ${table} does not exist${at}`);
  }
  if (typeof name === 'string' && /AccessDenied/.test(name)) {
    const reason = error instanceof Error ? error.message : String(error);
    return new SourceTableError(`access to table ${table}${at} was denied: ${reason}`, { cause: error });
  }
  return undefined;
}

/**
 * A table description as JSON (DescribeTable's `Table`, from the SDK or from
 * the workflow's DescribeTable state) read into a SourceTable.
 * SourceTableError when it names no table or no partition key.
 */
/** The one sentence for a table whose changes ddb2os cannot read: it has no stream. */
export function noStreamError(table: string): SourceTableError {
  return new SourceTableError(
    `table ${table} has no stream: enable a stream (NEW_IMAGE or NEW_AND_OLD_IMAGES) so its changes reach the index`,
  );
}

/** The table, once it is known to have a stream; otherwise noStreamError. */
export function requireStream(table: SourceTable): SourceTable {
  if (!table.streamEnabled) throw noStreamError(table.name);
  return table;
}

export function sourceTableFrom(raw: unknown): SourceTable {
  const description = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const table = description as {
    TableName?: unknown;
    TableStatus?: unknown;
    ItemCount?: unknown;
    TableSizeBytes?: unknown;
    KeySchema?: { AttributeName?: unknown; KeyType?: unknown }[];
    AttributeDefinitions?: AttributeDefinition[];
    BillingModeSummary?: { BillingMode?: unknown };
    ProvisionedThroughput?: { ReadCapacityUnits?: unknown };
    StreamSpecification?: { StreamEnabled?: unknown };
    LatestStreamArn?: unknown;
    LatestStreamLabel?: unknown;
  };
  if (typeof table.TableName !== 'string' || table.TableName === '') {
    throw new SourceTableError('the table description has no TableName');
  }
  const name = table.TableName;
  const keys = Array.isArray(table.KeySchema) ? table.KeySchema : [];
  const partitionKey = keys.find((key) => key.KeyType === 'HASH')?.AttributeName;
  const sortKey = keys.find((key) => key.KeyType === 'RANGE')?.AttributeName;
  if (typeof partitionKey !== 'string' || partitionKey === '') {
    throw new SourceTableError(`table ${name} has no partition key in its description`);
  }
  const keySchema: KeySchema =
    typeof sortKey === 'string' && sortKey !== '' ? { partitionKey, sortKey } : { partitionKey };
  const definitions = Array.isArray(table.AttributeDefinitions) ? table.AttributeDefinitions : [];
  const keyTypes: Record<string, KeyType> = {};
  for (const key of keySchema.sortKey === undefined ? [partitionKey] : [partitionKey, keySchema.sortKey]) {
    const type = definitions.find((definition) => definition.AttributeName === key)?.AttributeType;
    keyTypes[key] = type === 'N' || type === 'B' ? type : 'S';
  }
  const billingMode = table.BillingModeSummary?.BillingMode;
  const readUnits = table.ProvisionedThroughput?.ReadCapacityUnits;
  const streamEnabled = table.StreamSpecification?.StreamEnabled === true;
  return {
    name,
    keySchema,
    keyTypes,
    itemCount: nonNegative(table.ItemCount),
    sizeBytes: nonNegative(table.TableSizeBytes),
    status: typeof table.TableStatus === 'string' ? table.TableStatus : 'UNKNOWN',
    billingMode: typeof billingMode === 'string' ? billingMode : 'PROVISIONED',
    ...(typeof readUnits === 'number' ? { provisionedReadUnits: readUnits } : {}),
    streamEnabled,
    ...(streamEnabled && typeof table.LatestStreamArn === 'string' && table.LatestStreamArn !== ''
      ? { streamArn: table.LatestStreamArn }
      : {}),
    ...(streamEnabled && typeof table.LatestStreamLabel === 'string'
      ? { streamLabel: table.LatestStreamLabel }
      : {}),
    description,
  };
}

/** A count of the description as a number (a state's JSON may carry it as a string); 0 when it is not one. */
function nonNegative(value: unknown): number {
  const number = typeof value === 'number' ? value : Number(value ?? 0);
  return Number.isFinite(number) && number > 0 ? number : 0;
}
