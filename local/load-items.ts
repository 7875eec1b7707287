/**
 * Puts items into a table fast: the demo's table, the benchmark's, and the
 * tests' fixtures. BatchWriteItem takes 25 puts a request; a few requests in
 * flight keep DynamoDB (Local) busy without queueing behind one another.
 * DynamoDB may leave part of a batch unprocessed when a partition is hot;
 * those items are sent again after the project's jittered backoff, and a
 * batch that still has unprocessed items after MAX_ATTEMPTS stops the load.
 */
import { BatchWriteItemCommand, type DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { eachWithConcurrency } from '../pipeline/concurrency';
import { BackfillError } from '../pipeline/errors';
import { backoffDelay } from '../pipeline/scan/read-budget';
import type { Item } from '../pipeline/table/types';

/** BatchWriteItem's limit of requests per call. */
const BATCH_SIZE = 25;
/** Sends of one batch (the first included) before its unprocessed items fail the load. */
const MAX_ATTEMPTS = 20;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 2_000;

export interface LoadItemsOptions {
  /** BatchWriteItem requests in flight at once (default 8). */
  concurrency?: number;
  /** Called after each batch is written in full, with the number of items written so far. */
  onProgress?: (written: number) => void;
}

/**
 * Writes the items with BatchWriteItem, 25 a request, `concurrency` requests
 * in flight, resending unprocessed items. Reads `items` lazily, so a
 * generator of a million items is never held in memory. Resolves to the
 * number of items written.
 */
export async function loadItems(
  dynamodb: DynamoDBClient,
  table: string,
  items: Iterable<Item>,
  options: LoadItemsOptions = {},
): Promise<number> {
  let written = 0;
  await eachWithConcurrency(batchesOf(items), options.concurrency ?? 8, async (batch) => {
    await writeBatch(dynamodb, table, batch);
    written += batch.length;
    options.onProgress?.(written);
  });
  return written;
}

/** The items in batches of BATCH_SIZE, read as they are needed. */
function* batchesOf(items: Iterable<Item>): Generator<Item[]> {
  let batch: Item[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === BATCH_SIZE) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

async function writeBatch(dynamodb: DynamoDBClient, table: string, batch: Item[]): Promise<void> {
  let requests: WriteRequest[] = batch.map((item) => ({ PutRequest: { Item: item } }));
  for (let attempt = 1; ; attempt += 1) {
    const answer = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
    requests = answer.UnprocessedItems?.[table] ?? [];
    if (requests.length === 0) return;
    if (attempt === MAX_ATTEMPTS) {
      throw new BackfillError(
        `DynamoDB left ${requests.length} item(s) unprocessed in table ${table} after ${MAX_ATTEMPTS} BatchWriteItem attempts`,
      );
    }
    await new Promise((resolve) =>
      setTimeout(resolve, backoffDelay(attempt, BACKOFF_BASE_MS, BACKOFF_CAP_MS)),
    );
  }
}
