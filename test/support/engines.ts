/**
 * What every engine-backed test needs: clients for the real DynamoDB Local and
 * OpenSearch that the global setup started, unique names, and tables with the
 * shapes the product meets.
 */
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
import { inject } from 'vitest';
import type { KeySchema } from '../../pipeline/table/types';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

export function dynamodbEndpoint(): string {
  return inject('dynamodbEndpoint');
}

export function opensearchUrl(): string {
  return inject('opensearchUrl');
}

export function dynamoClient(): DynamoDBClient {
  return new DynamoDBClient({ endpoint: dynamodbEndpoint(), region: 'us-east-1', credentials });
}

export function streamsClient(): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({ endpoint: dynamodbEndpoint(), region: 'us-east-1', credentials });
}

export function openSearchClient(): Client {
  return new Client({ node: opensearchUrl() });
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
