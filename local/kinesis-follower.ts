/**
 * A Kinesis data stream that the table streams to (Kinesis Data Streams for
 * DynamoDB), read as a `ShardedChangeLog`: the stream follower reads it
 * exactly as it reads the table's DynamoDB stream (shards in order, a parent
 * before its children, positions in the progress table under
 * `kinesis#<stream>`, retries until the max record age), and hands each page
 * to the updater's apply code.
 *
 * What differs is the record: a Kinesis record's data is the change in the
 * Kinesis-for-DynamoDB format (`decode` reads it), and its position in the
 * shard is the Kinesis sequence number, which is what the follower stores.
 * Kinesis may deliver a change twice, and the forwarder (or a producer
 * retrying PutRecords) may put one item's changes out of order: the apply
 * code orders them by their microsecond time, not by the shard.
 *
 * Read with GetShardIterator / GetRecords (kinesalite has no enhanced
 * fan-out); a stream ARN is passed as its name (docs/local-engines.md).
 */
import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  type _Record as KinesisRecord,
  ListShardsCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis';
import type { StreamBatchRecord } from '../pipeline/apply/stream-records';
import { ChangeSourceError } from '../pipeline/errors';
import { kinesisStreamName } from '../pipeline/summarize/source-retention';
import type { LogShard, RecordsPage, ShardedChangeLog } from './stream-follower';

/** GetRecords returns at most 10,000 records a call. */
const KINESIS_MAX_PAGE = 10_000;

/** Reads one Kinesis record (its data and its sequence number) as a change of the apply code. */
export type KinesisRecordDecoder = (record: KinesisRecord) => StreamBatchRecord;

/** One Kinesis data stream as the follower's change log. */
export class KinesisChangeLog implements ShardedChangeLog {
  readonly streamName: string;

  constructor(
    private readonly kinesis: KinesisClient,
    stream: string,
    private readonly decode: KinesisRecordDecoder,
  ) {
    this.streamName = kinesisStreamName(stream);
  }

  async streams(): Promise<string[]> {
    return [this.streamName];
  }

  async shards(stream: string): Promise<LogShard[]> {
    const shards: LogShard[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const page = await this.kinesis.send(
          new ListShardsCommand(NextToken ? { NextToken } : { StreamName: stream }),
        );
        shards.push(...(page.Shards ?? []));
        NextToken = page.NextToken;
      } while (NextToken);
    } catch (error) {
      if (error instanceof ResourceNotFoundException) {
        throw new ChangeSourceError(`Kinesis stream ${stream} does not exist`, { cause: error });
      }
      throw error;
    }
    return shards;
  }

  async iterator(stream: string, shardId: string, position: string | undefined): Promise<string> {
    const { ShardIterator } = await this.kinesis.send(
      new GetShardIteratorCommand(
        position === undefined
          ? { StreamName: stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }
          : {
              StreamName: stream,
              ShardId: shardId,
              ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
              StartingSequenceNumber: position,
            },
      ),
    );
    if (!ShardIterator) throw new ChangeSourceError(`GetShardIterator of ${stream} returned no iterator`);
    return ShardIterator;
  }

  async records(iterator: string, limit: number): Promise<RecordsPage> {
    const page = await this.kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(limit, KINESIS_MAX_PAGE) }),
    );
    return {
      changes: (page.Records ?? []).map((record) => this.decode(record)),
      ...(page.NextShardIterator ? { NextShardIterator: page.NextShardIterator } : {}),
    };
  }

  isExpiredIterator(error: unknown): boolean {
    return error instanceof ExpiredIteratorException;
  }
}
