import {
  CreateStreamCommand,
  DeleteStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { useChangeSourceEngines } from '../support/change-source-engines';
import { uniqueName } from '../support/engines';

const engines = useChangeSourceEngines({ kinesis: true });

describe('kinesalite through @aws-sdk/client-kinesis', () => {
  it('serves a client built as for AWS (HTTP/2): create a stream, put records, get them back', async () => {
    const kinesis = new KinesisClient({
      endpoint: engines.kinesisEngine.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const StreamName = uniqueName('sdk');
    try {
      await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
      await waitUntilStreamExists({ client: kinesis, maxWaitTime: 30, minDelay: 1 }, { StreamName });
      const puts = ['a', 'b', 'a'].map((key, n) => ({ key, n }));

      const put = await kinesis.send(
        new PutRecordsCommand({
          StreamName,
          Records: puts.map((record) => ({
            PartitionKey: record.key,
            Data: Buffer.from(JSON.stringify(record)),
          })),
        }),
      );
      const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName }));
      const { ShardIterator } = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName,
          ShardId: Shards[0]?.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      const { Records = [] } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));

      expect(put.FailedRecordCount).toBe(0);
      expect(Records.map((record) => JSON.parse(Buffer.from(record.Data as Uint8Array).toString()))).toEqual(
        puts,
      );
      expect(Records.every((record) => record.ApproximateArrivalTimestamp instanceof Date)).toBe(true);
    } finally {
      await kinesis.send(new DeleteStreamCommand({ StreamName })).catch(() => undefined);
      kinesis.destroy();
    }
  });
});
