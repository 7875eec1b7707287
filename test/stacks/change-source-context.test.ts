import { Match, Template } from 'aws-cdk-lib/assertions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BackfillStack } from '../../stacks/backfill-stack';
import { EXISTING_CONTEXT, testApp, unacknowledgedNagFindings } from './fixtures';

const KINESIS_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/orders-changes';
const FIFO_QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:orders-changes.fifo';
const KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The existing-resources context without the table's stream, which these sources do not read. */
const { tableStreamArn: _stream, ...WITHOUT_STREAM } = EXISTING_CONTEXT;

const synth = (context: Record<string, unknown>) => () =>
  new BackfillStack(testApp(context), 'Ddb2osBackfill');

describe('BackfillStack with -c changeSource=kinesis', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = synth({ ...WITHOUT_STREAM, changeSource: 'kinesis', kinesisStreamArn: KINESIS_ARN })();
    template = Template.fromStack(stack);
  });

  it('follows the Kinesis stream, without the table stream ARN', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: KINESIS_ARN,
      StartingPosition: 'TRIM_HORIZON',
      Enabled: false,
    });
  });

  it('outputs the stream failure queue that `ddb2os replay --stack` reads', () => {
    template.hasOutput('StreamFailureQueueUrl', { Value: Match.anyValue() });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack with -c changeSource=sqs', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = synth({
      ...WITHOUT_STREAM,
      changeSource: 'sqs',
      changeQueueArn: FIFO_QUEUE_ARN,
      changeSourceKeyArn: KEY_ARN,
    })();
    template = Template.fromStack(stack);
  });

  it('reads the queue, a FIFO queue by its .fifo name: 10 messages per batch', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: FIFO_QUEUE_ARN,
      BatchSize: 10,
      Enabled: false,
    });
  });

  it('lets the updater decrypt with the key of -c changeSourceKeyArn', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: stack.getLogicalId(stack.workflow.updaterFunction.role?.node.defaultChild as never) }],
      PolicyDocument: {
        Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: KEY_ARN }]),
      },
    });
  });

  it('has no stream failure queue output: the queue keeps what the updater gave up on', () => {
    expect(Object.keys(template.toJSON().Outputs)).not.toContain('StreamFailureQueueUrl');
  });

  it('shows the age of the oldest message on the dashboard', () => {
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    expect(body).toContain('\\"title\\":\\"Change queue oldest message\\"');
    expect(body).toContain('ApproximateAgeOfOldestMessage');
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack in demo mode with -c changeSource=kinesis', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = synth({ demo: 'true', changeSource: 'kinesis' })();
    template = Template.fromStack(stack);
  });

  it('streams the demo table to a new on-demand Kinesis stream at microsecond precision, and follows that', () => {
    const [streamId] = Object.keys(template.findResources('AWS::Kinesis::Stream'));
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KinesisStreamSpecification: {
        StreamArn: { 'Fn::GetAtt': [streamId, 'Arn'] },
        ApproximateCreationDateTimePrecision: 'MICROSECOND',
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [streamId, 'Arn'] },
    });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack in demo mode with -c changeSource=sqs', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = synth({ demo: 'true', changeSource: 'sqs' })();
    template = Template.fromStack(stack);
  });

  it("fans the demo table's stream out to a change queue through an EventBridge pipe, and follows the queue", () => {
    const [tableId] = Object.keys(
      template.findResources('AWS::DynamoDB::Table', {
        Properties: { StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' } },
      }),
    );
    const queueId = stack.getLogicalId(
      (stack.node.findChild('DemoFanOut').node.findChild('ChangeQueue') as Queue).node.defaultChild as never,
    );
    template.hasResourceProperties('AWS::Pipes::Pipe', {
      Source: { 'Fn::GetAtt': [tableId, 'StreamArn'] },
      SourceParameters: { DynamoDBStreamParameters: Match.objectLike({ StartingPosition: 'TRIM_HORIZON' }) },
      Target: { 'Fn::GetAtt': [queueId, 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      Enabled: false,
    });
    // The updater reads no stream: only the pipe does.
    template.resourcePropertiesCountIs(
      'AWS::Lambda::EventSourceMapping',
      { EventSourceArn: { 'Fn::GetAtt': [tableId, 'StreamArn'] } },
      0,
    );
  });

  it("alarms on the change queue's dead-letter queue", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp("^The change queue's redrive policy moved a message"),
      MetricName: 'ApproximateNumberOfMessagesVisible',
    });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack change source context', () => {
  it('rejects a change source it does not know', () => {
    expect(synth({ ...EXISTING_CONTEXT, changeSource: 'sns' })).toThrow(
      '-c changeSource must be one of dynamodb-stream, kinesis, sqs (got sns).',
    );
  });

  it('says which ARN a Kinesis or SQS source needs', () => {
    expect(synth({ ...WITHOUT_STREAM, changeSource: 'kinesis' })).toThrow(
      '-c changeSource=kinesis needs -c kinesisStreamArn, like -c kinesisStreamArn=arn:aws:kinesis:us-east-1:123456789012:stream/orders.',
    );
    expect(synth({ ...WITHOUT_STREAM, changeSource: 'sqs' })).toThrow(
      '-c changeSource=sqs needs -c changeQueueArn',
    );
  });

  it('still needs the table stream ARN for the default source', () => {
    expect(synth(WITHOUT_STREAM)).toThrow('Missing context: tableStreamArn.');
  });

  it('rejects a stream or queue ARN given without its source', () => {
    expect(synth({ ...EXISTING_CONTEXT, kinesisStreamArn: KINESIS_ARN })).toThrow(
      '-c kinesisStreamArn is given, but the change source is dynamodb-stream: add -c changeSource=kinesis',
    );
  });

  it('rejects an ARN of another service', () => {
    expect(synth({ ...WITHOUT_STREAM, changeSource: 'kinesis', kinesisStreamArn: FIFO_QUEUE_ARN })).toThrow(
      `-c kinesisStreamArn must be an ARN like arn:aws:kinesis:us-east-1:123456789012:stream/orders (got ${FIFO_QUEUE_ARN}).`,
    );
    expect(synth({ ...WITHOUT_STREAM, changeSource: 'sqs', changeQueueArn: KINESIS_ARN })).toThrow(
      '-c changeQueueArn must be an ARN like arn:aws:sqs:',
    );
    expect(
      synth({
        ...WITHOUT_STREAM,
        changeSource: 'sqs',
        changeQueueArn: FIFO_QUEUE_ARN,
        changeSourceKeyArn: KINESIS_ARN,
      }),
    ).toThrow('-c changeSourceKeyArn must be an ARN like arn:aws:kms:');
  });

  it('rejects a stream in another region than the stack', () => {
    expect(
      () =>
        new BackfillStack(
          testApp({ ...WITHOUT_STREAM, changeSource: 'kinesis', kinesisStreamArn: KINESIS_ARN }),
          'Ddb2osBackfill',
          { env: { account: '123456789012', region: 'eu-west-1' } },
        ),
    ).toThrow('-c kinesisStreamArn is in us-east-1, but the stack deploys to eu-west-1');
  });

  it('rejects a key for the DynamoDB stream, and a stream named in demo mode', () => {
    expect(synth({ ...EXISTING_CONTEXT, changeSourceKeyArn: KEY_ARN })).toThrow(
      '-c changeSourceKeyArn is for a Kinesis stream or an SQS queue encrypted with a customer managed key',
    );
    expect(synth({ demo: 'true', changeSource: 'kinesis', kinesisStreamArn: KINESIS_ARN })).toThrow(
      '-c kinesisStreamArn is not for demo mode, which makes its own stream',
    );
  });
});
