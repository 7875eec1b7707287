/**
 * Stream positions in the progress table: where the local stream follower
 * stands in each shard of the table's streams. One item per followed table,
 * `runId = "stream#<table>"`, `segment = 0`, holding the map `shards`
 * (shardId → sequence number of the last record applied). A follower of
 * another log of the table's changes names its own item (`positionsId`):
 * `kinesis#<stream>` for a Kinesis stream, `forward#<table>` for the local
 * change forwarder, so no two readers share positions.
 *
 * A position is written only after every record up to it is in the index,
 * so a follower that stops anywhere resumes after it without a gap; applying
 * a record twice is harmless (every write states the item's whole document).
 * One follower per table at a time: the writes are not conditional, so two
 * followers would each store what they applied.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { ensureProgressTable } from './checkpoint';

/** Where a follower keeps the last applied sequence number of each shard. */
export interface StreamPositionStore {
  /** shardId → sequence number of the last record applied. */
  load(): Promise<Map<string, string>>;
  /** Stores durably before it resolves. */
  save(shardId: string, sequenceNumber: string): Promise<void>;
  /** Drops the positions of shards that no stream lists any more (trimmed after 24 hours). */
  forget(shardIds: string[]): Promise<void>;
}

export interface DynamoDBStreamPositionStoreOptions {
  dynamodb: DynamoDBClient;
  /** The run's progress table (pk `runId` S, sk `segment` N); created, on demand, when missing. */
  progressTable: string;
  /** The table whose stream is followed. */
  table: string;
  /** The positions item's `runId` when another log than the table's stream is read. @default `stream#<table>` */
  positionsId?: string;
}

/** The positions item this file's header describes. */
export class DynamoDBStreamPositionStore implements StreamPositionStore {
  readonly runId: string;
  private readonly key: { runId: { S: string }; segment: { N: string } };

  private constructor(private readonly options: DynamoDBStreamPositionStoreOptions) {
    this.runId = options.positionsId ?? `stream#${options.table}`;
    this.key = { runId: { S: this.runId }, segment: { N: '0' } };
  }

  /** Creates the progress table (PAY_PER_REQUEST) and the positions item when missing. */
  static async open(options: DynamoDBStreamPositionStoreOptions): Promise<DynamoDBStreamPositionStore> {
    const store = new DynamoDBStreamPositionStore(options);
    await ensureProgressTable(options.dynamodb, options.progressTable);
    try {
      await options.dynamodb.send(
        new PutItemCommand({
          TableName: options.progressTable,
          Item: { ...store.key, table: { S: options.table }, shards: { M: {} } },
          ConditionExpression: 'attribute_not_exists(runId)',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    return store;
  }

  async load(): Promise<Map<string, string>> {
    const { Item } = await this.options.dynamodb.send(
      new GetItemCommand({ TableName: this.options.progressTable, Key: this.key, ConsistentRead: true }),
    );
    const shards = Item?.shards?.M ?? {};
    return new Map(
      Object.entries(shards).flatMap(([id, value]) => (value.S === undefined ? [] : [[id, value.S]])),
    );
  }

  async save(shardId: string, sequenceNumber: string): Promise<void> {
    await this.options.dynamodb.send(
      new UpdateItemCommand({
        TableName: this.options.progressTable,
        Key: this.key,
        UpdateExpression: 'SET #shards.#shard = :sequence, updatedAt = :now',
        ExpressionAttributeNames: { '#shards': 'shards', '#shard': shardId },
        ExpressionAttributeValues: {
          ':sequence': { S: sequenceNumber },
          ':now': { S: new Date().toISOString() },
        },
      }),
    );
  }

  async forget(shardIds: string[]): Promise<void> {
    if (shardIds.length === 0) return;
    const names: Record<string, string> = { '#shards': 'shards' };
    shardIds.forEach((id, i) => {
      names[`#s${i}`] = id;
    });
    await this.options.dynamodb.send(
      new UpdateItemCommand({
        TableName: this.options.progressTable,
        Key: this.key,
        UpdateExpression: `REMOVE ${shardIds.map((_, i) => `#shards.#s${i}`).join(', ')}`,
        ExpressionAttributeNames: names,
      }),
    );
  }
}
