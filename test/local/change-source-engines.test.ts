import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { kinesisCall, useChangeSourceEngines } from '../support/change-source-engines';

const engines = useChangeSourceEngines({ sqs: true, kinesis: true });

/** Receives (and deletes) until `count` messages came or the queue stays empty. */
async function receiveAll(queueUrl: string, count: number): Promise<Message[]> {
  const received: Message[] = [];
  for (let empty = 0; received.length < count || empty < 1; ) {
    const { Messages = [] } = await engines.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['MessageGroupId'],
      }),
    );
    if (Messages.length === 0) {
      empty += 1;
      if (empty > 5) break;
      continue;
    }
    received.push(...Messages);
    await engines.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
      }),
    );
  }
  return received;
}

async function queueAttributes(queueUrl: string, names: string[]): Promise<Record<string, string>> {
  const { Attributes = {} } = await engines.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names as never }),
  );
  return Attributes;
}

describe('ElasticMQ, the local SQS engine', () => {
  it('sends, receives and deletes on a standard queue, at a queue URL on its own port and an ARN in the clients region', async () => {
    const queueUrl = await engines.createQueue('standard');
    const name = queueUrl.split('/').pop() as string;

    expect(new URL(queueUrl).origin).toBe(new URL(engines.sqsEngine.url).origin);
    expect(await queueAttributes(queueUrl, ['QueueArn'])).toEqual({
      QueueArn: `arn:aws:sqs:us-east-1:000000000000:${name}`,
    });

    const bodies = ['{"key":"a","n":1}', '{"key":"b","n":1}', '{"key":"a","n":2}'];
    for (const body of bodies) {
      await engines.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    }
    const received = await receiveAll(queueUrl, bodies.length);

    expect(received.map((message) => message.Body).sort()).toEqual([...bodies].sort());
    const after = await queueAttributes(queueUrl, [
      'ApproximateNumberOfMessages',
      'ApproximateNumberOfMessagesNotVisible',
    ]);
    expect(after).toEqual({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });

  it('keeps a FIFO queue in order per message group and drops a repeated deduplication id', async () => {
    const queueUrl = await engines.createQueue('ordered', { fifo: true });
    const sends = [
      ['a', 'a1'],
      ['b', 'b1'],
      ['a', 'a2'],
      ['a', 'a2'], // the same deduplication id again: SQS keeps one within five minutes
      ['b', 'b2'],
      ['a', 'a3'],
    ];
    const sequenceNumbers: string[] = [];
    for (const [group, body] of sends) {
      const sent = await engines.sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: body,
          MessageGroupId: group,
          MessageDeduplicationId: body,
        }),
      );
      sequenceNumbers.push(sent.SequenceNumber as string);
    }

    const received = await receiveAll(queueUrl, 5);

    const inGroup = (group: string) =>
      received.filter((message) => message.Attributes?.MessageGroupId === group).map((m) => m.Body);
    expect(inGroup('a')).toEqual(['a1', 'a2', 'a3']);
    expect(inGroup('b')).toEqual(['b1', 'b2']);
    expect(received).toHaveLength(5);
    expect(sequenceNumbers.every((n) => /^\d+$/.test(n))).toBe(true);
  });

  it('refuses a FIFO message without a message group, as SQS does', async () => {
    const queueUrl = await engines.createQueue('no-group', { fifo: true });

    await expect(
      engines.sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x', MessageDeduplicationId: 'x' }),
      ),
    ).rejects.toThrow(/MessageGroupId/);
  });

  it('does not report MessageRetentionPeriod, even when the queue was created with one (SQS always does)', async () => {
    const queueUrl = await engines.createQueue('retention', {
      attributes: { MessageRetentionPeriod: '1209600' },
    });

    const attributes = await queueAttributes(queueUrl, ['All']);

    expect(attributes.QueueArn).toMatch(/^arn:aws:sqs:/);
    expect(attributes).not.toHaveProperty('MessageRetentionPeriod');
  });
});

interface StreamSummary {
  StreamName: string;
  StreamARN: string;
  StreamStatus: string;
  RetentionPeriodHours: number;
  OpenShardCount: number;
}

async function streamSummary(streamName: string): Promise<StreamSummary> {
  const { StreamDescriptionSummary } = await kinesisCall<{ StreamDescriptionSummary: StreamSummary }>(
    engines.kinesisEngine.url,
    'DescribeStreamSummary',
    { StreamName: streamName },
  );
  return StreamDescriptionSummary;
}

interface KinesisRecord {
  PartitionKey: string;
  SequenceNumber: string;
  Data: string;
}

/** Every record of every shard, from TRIM_HORIZON, by shard id. */
async function readStream(streamName: string): Promise<Map<string, KinesisRecord[]>> {
  const url = engines.kinesisEngine.url;
  const { Shards } = await kinesisCall<{ Shards: { ShardId: string }[] }>(url, 'ListShards', {
    StreamName: streamName,
  });
  const byShard = new Map<string, KinesisRecord[]>();
  for (const { ShardId } of Shards) {
    let { ShardIterator } = await kinesisCall<{ ShardIterator: string }>(url, 'GetShardIterator', {
      StreamName: streamName,
      ShardId,
      ShardIteratorType: 'TRIM_HORIZON',
    });
    const records: KinesisRecord[] = [];
    for (;;) {
      const page = await kinesisCall<{
        Records: KinesisRecord[];
        NextShardIterator: string;
        MillisBehindLatest: number;
      }>(url, 'GetRecords', { ShardIterator, Limit: 7 });
      records.push(...page.Records);
      ShardIterator = page.NextShardIterator;
      if (page.MillisBehindLatest === 0 && page.Records.length === 0) break;
    }
    byShard.set(ShardId, records);
  }
  return byShard;
}

describe('kinesalite, the local Kinesis engine', () => {
  it('puts and gets records: each partition key on one shard, in the order it was put', async () => {
    const streamName = await engines.createStream('changes', 2);
    const keys = ['orders#1', 'orders#2', 'orders#3', 'orders#4'];
    const puts = [0, 1, 2, 3, 4].flatMap((n) => keys.map((key) => ({ key, n })));

    const { FailedRecordCount } = await kinesisCall<{ FailedRecordCount: number }>(
      engines.kinesisEngine.url,
      'PutRecords',
      {
        StreamName: streamName,
        Records: puts.map((put) => ({
          PartitionKey: put.key,
          Data: Buffer.from(JSON.stringify(put)).toString('base64'),
        })),
      },
    );
    const byShard = await readStream(streamName);

    expect(FailedRecordCount).toBe(0);
    expect(byShard.size).toBe(2);
    const all = [...byShard.values()].flat();
    expect(all).toHaveLength(puts.length);
    for (const key of keys) {
      const shardsOfKey = [...byShard].filter(([, records]) => records.some((r) => r.PartitionKey === key));
      expect(shardsOfKey).toHaveLength(1);
      const [, records] = shardsOfKey[0] as [string, KinesisRecord[]];
      const ofKey = records.filter((record) => record.PartitionKey === key);
      expect(ofKey.map((record) => JSON.parse(Buffer.from(record.Data, 'base64').toString()))).toEqual(
        [0, 1, 2, 3, 4].map((n) => ({ key, n })),
      );
      const sequence = ofKey.map((record) => BigInt(record.SequenceNumber));
      expect(sequence).toEqual([...sequence].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    }
  });

  it('describes a stream with an ARN in the clients region and the 24-hour retention the guard reads', async () => {
    const streamName = await engines.createStream('described', 1);

    expect(await streamSummary(streamName)).toMatchObject({
      StreamARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
      StreamStatus: 'ACTIVE',
      RetentionPeriodHours: 24,
      OpenShardCount: 1,
    });
  });

  it('creates more shards than kinesalite allows by default (10)', async () => {
    const streamName = await engines.createStream('wide', 11);

    expect((await streamSummary(streamName)).OpenShardCount).toBe(11);
  });

  it('answers HTTP/2 without TLS, which @aws-sdk/client-kinesis speaks', async () => {
    const session = connect(engines.kinesisEngine.url);
    try {
      const request = session.request({
        ':method': 'POST',
        ':path': '/',
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'Kinesis_20131202.ListStreams',
        'x-amz-date': '20200101T000000Z',
        authorization:
          'AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0',
      });
      request.end('{}');
      const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
        let status = 0;
        let body = '';
        request.on('response', (headers) => {
          status = Number(headers[':status']);
        });
        request.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        request.on('end', () => resolve([status, body]));
        request.on('error', reject);
      });

      expect(status).toBe(200);
      expect(JSON.parse(body)).toHaveProperty('StreamNames');
    } finally {
      session.close();
    }
  });

  it('knows a stream only by its name: a call with StreamARN alone is refused', async () => {
    const streamName = await engines.createStream('by-arn', 1);
    const { StreamARN } = await streamSummary(streamName);

    await expect(
      kinesisCall(engines.kinesisEngine.url, 'DescribeStreamSummary', { StreamARN }),
    ).rejects.toThrow(/ValidationException.*streamName/);
  });

  it('refuses an on-demand stream: a stream has a shard count', async () => {
    await expect(
      kinesisCall(engines.kinesisEngine.url, 'CreateStream', {
        StreamName: 'on-demand',
        StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      }),
    ).rejects.toThrow(/ValidationException.*shardCount/);
  });
});

/** The local addresses that listen on `port` (IPv4 and IPv6, from /proc/net). */
function listeningAddresses(port: number): string[] {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[1]?.endsWith(`:${portHex}`) && fields[3] === '0A')
      .map((fields) => (fields[1] as string).split(':')[0] as string),
  );
}

describe.runIf(process.platform === 'linux')('both engines', () => {
  it('listen on loopback only', () => {
    // 127.0.0.1 as /proc/net writes it: in IPv4, and mapped into IPv6.
    const loopback = ['0100007F', '0000000000000000FFFF00000100007F'];
    for (const engine of [engines.sqsEngine, engines.kinesisEngine].filter((e) => !e.external)) {
      const addresses = listeningAddresses(Number(new URL(engine.url).port));
      expect(addresses.length).toBeGreaterThan(0);
      expect(addresses.every((address) => loopback.includes(address))).toBe(true);
    }
  });
});
