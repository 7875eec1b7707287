/** What the replay tests share: on-failure records of a real table's stream, and the folder they are read from. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type _Record,
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
} from '@aws-sdk/client-dynamodb-streams';
import {
  type FailedStreamBatch,
  failedBatchesDir,
  type StreamBatchInfo,
} from '../../../pipeline/apply/failed-batches';

/** The batch info of the sequence numbers `start`..`end` in the one shard of the table's stream. */
export async function batchInfo(
  clients: { dynamodb: DynamoDBClient; streams: DynamoDBStreamsClient },
  table: string,
  start: string,
  end: string,
): Promise<StreamBatchInfo> {
  const described = await clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
  const streamArn = described.Table!.LatestStreamArn!;
  const stream = await clients.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  return {
    shardId: stream.StreamDescription!.Shards![0]!.ShardId!,
    startSequenceNumber: start,
    endSequenceNumber: end,
    streamArn,
  };
}

/** The sequence number of a stream record. */
export function sequenceOf(record: _Record): string {
  return record.dynamodb!.SequenceNumber!;
}

/** The on-failure record Lambda writes for a batch that ran out of time. */
export function failureRecord(info: StreamBatchInfo): FailedStreamBatch {
  return {
    version: '1.0',
    timestamp: '2026-11-30T09:00:00.000Z',
    requestContext: { condition: 'RecordAgeExceeded', approximateInvokeCount: 40 },
    DDBStreamBatchInfo: {
      approximateArrivalOfFirstRecord: '2026-11-30T08:01:02.000Z',
      approximateArrivalOfLastRecord: '2026-11-30T08:01:09.000Z',
      batchSize: 3,
      ...info,
    },
  };
}

/** Writes `content` (a record, or raw text) as `<name>` in the failed-batches folder of `deadLetterDir`; returns its path. */
export async function writeFailedBatch(
  deadLetterDir: string,
  name: string,
  content: FailedStreamBatch | string,
): Promise<string> {
  const folder = failedBatchesDir(deadLetterDir);
  await mkdir(folder, { recursive: true });
  const path = join(folder, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}
