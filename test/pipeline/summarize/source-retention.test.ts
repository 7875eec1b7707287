/**
 * The change source's retention and the budget derived from it, read from the
 * real local engines: kinesalite (DescribeStreamSummary) and ElasticMQ
 * (GetQueueAttributes, which leaves MessageRetentionPeriod out).
 */
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { afterAll, describe, expect, it } from 'vitest';
import { ChangeSourceError } from '../../../pipeline/errors';
import {
  kinesisStreamName,
  readSourceRetention,
  retentionBudgetHours,
} from '../../../pipeline/summarize/source-retention';
import { kinesisCall, useChangeSourceEngines } from '../../support/change-source-engines';

const engines = useChangeSourceEngines({ sqs: true, kinesis: true });
let kinesisClient: KinesisClient | undefined;
const kinesis = () => {
  kinesisClient ??= new KinesisClient({
    endpoint: engines.kinesisEngine.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return kinesisClient;
};
afterAll(() => kinesisClient?.destroy());

describe('readSourceRetention', () => {
  it("keeps the DynamoDB stream's 24 hours and today's budget of 20", async () => {
    expect(await readSourceRetention({ kind: 'stream' })).toEqual({
      kind: 'stream',
      retentionHours: 24,
      reported: true,
      budgetHours: 20,
    });
  });

  it("reads a Kinesis stream's retention period, by name or by ARN, and raises the budget with it", async () => {
    const stream = await engines.createStream('retention', 1);
    await kinesisCall(engines.kinesisEngine.url, 'IncreaseStreamRetentionPeriod', {
      StreamName: stream,
      RetentionPeriodHours: 168,
    });
    const arn = `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`;

    const byName = await readSourceRetention({ kind: 'kinesis', kinesis: kinesis(), stream });
    const byArn = await readSourceRetention({ kind: 'kinesis', kinesis: kinesis(), stream: arn });

    expect(byName).toEqual({ kind: 'kinesis', retentionHours: 168, reported: true, budgetHours: 140 });
    expect(byArn).toEqual(byName);
  });

  it('says which Kinesis stream it could not read', async () => {
    const reading = readSourceRetention({ kind: 'kinesis', kinesis: kinesis(), stream: 'no-such-stream' });

    await expect(reading).rejects.toThrow(ChangeSourceError);
    await expect(reading).rejects.toThrow('the retention of Kinesis stream no-such-stream cannot be read');
  });

  it("assumes SQS's default of 4 days when the queue does not report its retention (ElasticMQ), and says so", async () => {
    // Created with 2 days: ElasticMQ still leaves the attribute out (docs/local-engines.md).
    const queueUrl = await engines.createQueue('retention', {
      attributes: { MessageRetentionPeriod: String(2 * 86_400) },
    });

    const retention = await readSourceRetention({ kind: 'sqs', sqs: engines.sqs, queueUrl });

    expect(retention).toEqual({ kind: 'sqs', retentionHours: 96, reported: false, budgetHours: 80 });
  });
});

describe('retentionBudgetHours', () => {
  it('is five sixths of the retention: 20 of 24 hours, 280 of SQS 14 days, 7300 of Kinesis 365 days', () => {
    expect([24, 336, 8760].map(retentionBudgetHours)).toEqual([20, 280, 7300]);
  });
});

describe('kinesisStreamName', () => {
  it('takes the name out of a stream ARN and leaves a name alone', () => {
    expect(kinesisStreamName('arn:aws:kinesis:eu-west-1:123456789012:stream/orders-changes')).toBe(
      'orders-changes',
    );
    expect(kinesisStreamName('orders-changes')).toBe('orders-changes');
  });
});
