/**
 * The load a resync must serve through (issue 15, "Done when"): a writer
 * that puts, updates and deletes items the whole time, and a reader that
 * queries the serving name every 200 ms and checks what it sees. The test
 * (test/cli/resync.test.ts) runs them at a small size, the resync benchmark
 * (bench/resync-under-load.ts) at 50,000 items.
 */
import {
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { Client } from '@opensearch-project/opensearch';
import { describeError } from '../pipeline/errors';
import { TOMBSTONE_FIELD } from '../pipeline/resync/tombstones';
import type { Item } from '../pipeline/table/types';

export interface TableWriterOptions {
  dynamodb: DynamoDBClient;
  table: string;
  /** Items 0..initial-1 are in the table when the writer starts. */
  initial: number;
  /** Item `i` (the writer puts items initial, initial+1, …). */
  itemOf: (i: number) => Item;
  /** The key of item `i`. */
  keyOf: (i: number) => Item;
}

export interface WriterCounts {
  ops: number;
  puts: number;
  updates: number;
  /** Counted before each delete is sent: a reader comparing with it never expects a document that may be gone. */
  deletes: number;
}

/** A running writer: its counts so far, and stop() that resolves once its last operation is done. */
export interface TableWriter {
  readonly counts: WriterCounts;
  stop(): Promise<void>;
}

/**
 * Cycles put (a new item), update (a live item's `note`), delete (a live item), one operation at a
 * time, as fast as the table answers, until stopped. The choice of item is deterministic.
 */
export function startTableWriter(options: TableWriterOptions): TableWriter {
  const { dynamodb, table } = options;
  const live = Array.from({ length: options.initial }, (_, i) => i);
  let next = options.initial;
  let stopped = false;
  const counts: WriterCounts = { ops: 0, puts: 0, updates: 0, deletes: 0 };
  const done = (async () => {
    for (let step = 0; !stopped; step += 1) {
      const kind = step % 3;
      if (kind === 0) {
        const i = next++;
        await dynamodb.send(new PutItemCommand({ TableName: table, Item: options.itemOf(i) }));
        live.push(i);
        counts.puts += 1;
      } else if (kind === 1) {
        const i = live[(step * 7_919) % live.length] as number;
        await dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: options.keyOf(i),
            UpdateExpression: 'SET note = :note',
            ExpressionAttributeValues: { ':note': { S: `updated at step ${step}` } },
          }),
        );
        counts.updates += 1;
      } else {
        const [i] = live.splice((step * 104_729) % live.length, 1) as [number];
        counts.deletes += 1;
        await dynamodb.send(new DeleteItemCommand({ TableName: table, Key: options.keyOf(i) }));
      }
      counts.ops += 1;
    }
  })();
  return {
    counts,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

export interface ReaderFigures {
  queries: number;
  /** Every failed query's message. */
  errors: string[];
  /** The smallest (hits − (items at the start − deletes sent so far)) seen: never below 0 when search serves right. */
  minMargin: number;
  /** Resync delete markers seen through the serving name (must stay 0). */
  markers: number;
}

/** A running reader: what it saw so far, and stop() that resolves after its last query. */
export interface AliasReader {
  readonly seen: ReaderFigures;
  stop(): Promise<void>;
}

/**
 * Queries `index` (the serving name) every `everyMs` for its hit count and the delete markers it shows,
 * and compares the hits with the items of the start minus `deletesSoFar()`, read after the answer.
 */
export function startAliasReader(options: {
  opensearch: Client;
  index: string;
  initial: number;
  deletesSoFar: () => number;
  everyMs?: number;
}): AliasReader {
  const everyMs = options.everyMs ?? 200;
  let stopped = false;
  const seen: ReaderFigures = { queries: 0, errors: [], minMargin: Number.POSITIVE_INFINITY, markers: 0 };
  const done = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        const { body } = await options.opensearch.search({
          index: options.index,
          body: {
            size: 0,
            track_total_hits: true,
            query: { match_all: {} },
            aggs: { markers: { filter: { exists: { field: TOMBSTONE_FIELD } } } },
          },
        });
        const hits = (body.hits.total as { value: number }).value;
        seen.minMargin = Math.min(seen.minMargin, hits - (options.initial - options.deletesSoFar()));
        seen.markers += (body.aggregations as { markers: { doc_count: number } }).markers.doc_count;
      } catch (error) {
        seen.errors.push(describeError(error));
      }
      seen.queries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - (Date.now() - started))));
    }
  })();
  return {
    seen,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}
