/**
 * Every read of the source table's items and of its stream, in the one form
 * the pipeline maps: the SDK's attribute values (binary as Uint8Array,
 * numbers as exact strings). The backfill's Scan, verify's Scan, Query and
 * GetItem, the updater's GetItem and partition Query, and the local
 * follower's GetRecords all come through here, so they read an item alike:
 * the SDK's own deserializer drops an attribute named `__proto__`, and the
 * backfill reads it, so every other path must too.
 *
 * The answers are read as JSON (sdk-json.ts says why and gives the figures);
 * no caller sees that wire form.
 */
import {
  type AttributeValue,
  type ConsumedCapacity,
  type DynamoDBClient,
  GetItemCommand,
  type GetItemCommandOutput,
  QueryCommand,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandInput,
  type ScanCommandOutput,
} from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandInput,
  type GetRecordsCommandOutput,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { decodeWireItem, sendForJson } from './sdk-json';
import type { Item } from './types';

/** One Scan (or Query) page. */
export interface ItemsPage {
  items: Item[];
  /** Where the next page starts; absent on the last page. */
  lastEvaluatedKey?: Item;
  /** With `ReturnConsumedCapacity` in the input. */
  consumedCapacity?: ConsumedCapacity;
  /** Items in the page (before any filter: DynamoDB's Count). */
  count: number;
}

/** A Scan or Query answer as DynamoDB sends it (binary values as base64). */
interface WireItemsPage {
  Items?: Record<string, unknown>[];
  LastEvaluatedKey?: Record<string, unknown>;
  ConsumedCapacity?: ConsumedCapacity;
  Count?: number;
}

/**
 * One Scan page. The backfill's hot path: the items are decoded in place in
 * the array the answer was parsed into, nothing is copied. DynamoDB's
 * exceptions (ResourceNotFoundException, throttling, …) come as the SDK
 * throws them.
 */
export async function scanPage(
  dynamodb: DynamoDBClient,
  input: ScanCommandInput,
  options: { signal?: AbortSignal } = {},
): Promise<ItemsPage> {
  const answer = await sendForJson<WireItemsPage, ScanCommand, ScanCommandOutput>(
    (command) => dynamodb.send(command, { abortSignal: options.signal }),
    new ScanCommand(input),
    'Items',
  );
  return answer.json ? decodedPage(answer.json) : sdkPage(answer.output);
}

/**
 * Every item of one partition (paged Query), as they are now: consistent
 * unless `consistentRead` is false.
 */
export async function queryPartition(
  dynamodb: DynamoDBClient,
  partition: { table: string; partitionKey: string; value: AttributeValue },
  options: { consistentRead?: boolean; signal?: AbortSignal } = {},
): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const answer = await sendForJson<WireItemsPage, QueryCommand, QueryCommandOutput>(
      (command) => dynamodb.send(command, { abortSignal: options.signal }),
      new QueryCommand({
        TableName: partition.table,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': partition.partitionKey },
        ExpressionAttributeValues: { ':pk': partition.value },
        ConsistentRead: options.consistentRead ?? true,
        ExclusiveStartKey: start,
      }),
      'Items',
    );
    const page = answer.json ? decodedPage(answer.json) : sdkPage(answer.output);
    for (const item of page.items) items.push(item);
    start = page.lastEvaluatedKey;
  } while (start);
  return items;
}

/** The item under `key` as it is now (a consistent GetItem); undefined when there is none. */
export async function getItem(
  dynamodb: DynamoDBClient,
  table: string,
  key: Item,
  options: { signal?: AbortSignal } = {},
): Promise<Item | undefined> {
  const answer = await sendForJson<{ Item?: Record<string, unknown> }, GetItemCommand, GetItemCommandOutput>(
    (command) => dynamodb.send(command, { abortSignal: options.signal }),
    new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
    'Item',
  );
  if (!answer.json) return answer.output.Item;
  return answer.json.Item && decodeWireItem(answer.json.Item);
}

function decodedPage(json: WireItemsPage): ItemsPage {
  const items = json.Items ?? [];
  for (const item of items) decodeWireItem(item);
  return {
    items: items as Item[],
    ...(json.LastEvaluatedKey ? { lastEvaluatedKey: decodeWireItem(json.LastEvaluatedKey) } : {}),
    ...(json.ConsumedCapacity ? { consumedCapacity: json.ConsumedCapacity } : {}),
    count: json.Count ?? items.length,
  };
}

function sdkPage(output: ScanCommandOutput | QueryCommandOutput): ItemsPage {
  const items = output.Items ?? [];
  return {
    items,
    ...(output.LastEvaluatedKey ? { lastEvaluatedKey: output.LastEvaluatedKey } : {}),
    ...(output.ConsumedCapacity ? { consumedCapacity: output.ConsumedCapacity } : {}),
    count: output.Count ?? items.length,
  };
}

/** One GetRecords page. */
export interface RecordsPage {
  /**
   * The records in the shape of a Lambda stream event's (which is what
   * GetRecords sends), for `fromLambdaRecord`. Binary values are base64
   * strings, or Uint8Array when the SDK had to read the answer; both convert.
   */
  records: DynamoDBRecord[];
  /** Absent once a closed shard is read to its end. */
  nextShardIterator?: string;
}

/**
 * One GetRecords page of a DynamoDB stream. Its JSON is parsed once: the
 * SDK's deserializer, which rebuilt every attribute value of both images,
 * took half of the stream follower's CPU (docs/benchmarks.md). An error
 * answer is left to the SDK, so its exceptions (ExpiredIteratorException, …)
 * are unchanged.
 */
export async function getRecordsPage(
  streams: DynamoDBStreamsClient,
  input: GetRecordsCommandInput,
): Promise<RecordsPage> {
  const answer = await sendForJson<
    { Records?: DynamoDBRecord[]; NextShardIterator?: string },
    GetRecordsCommand,
    GetRecordsCommandOutput
  >((command) => streams.send(command), new GetRecordsCommand(input), 'Records');
  if (answer.json) {
    return {
      records: answer.json.Records ?? [],
      ...(answer.json.NextShardIterator ? { nextShardIterator: answer.json.NextShardIterator } : {}),
    };
  }
  // The SDK's records differ from the event's only in their time (a Date, not seconds).
  const records = (answer.output.Records ?? []).map((record) => {
    const created = record.dynamodb?.ApproximateCreationDateTime;
    return (created === undefined
      ? record
      : {
          ...record,
          dynamodb: { ...record.dynamodb, ApproximateCreationDateTime: created.getTime() / 1000 },
        }) as unknown as DynamoDBRecord;
  });
  return {
    records,
    ...(answer.output.NextShardIterator ? { nextShardIterator: answer.output.NextShardIterator } : {}),
  };
}
