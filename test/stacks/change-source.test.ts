import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Stream } from 'aws-cdk-lib/aws-kinesis';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRunLockConfig } from '../../pipeline/lambda/config';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import { acknowledge } from '../../stacks/nag';
import {
  environmentStandIns,
  STREAM_ARN,
  testApp,
  UPDATER_STREAM_MAPPING,
  unacknowledgedNagFindings,
  WORKFLOW_TARGET,
  workflowBuilder,
} from './fixtures';

const KINESIS_ARN = 'arn:aws:kinesis:us-east-1:123456789012:stream/orders-changes';
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:orders-changes';
const FIFO_QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:orders-changes.fifo';
const KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** A table without a DynamoDB stream: a Kinesis or SQS source needs none. */
function stackWithTable(): { stack: Stack; table: Table } {
  const stack = new Stack(testApp(), 'Test');
  return { stack, table: Table.fromTableName(stack, 'Orders', 'orders') as Table };
}

function workflowOn(source: (stack: Stack) => Partial<BackfillWorkflowProps>): {
  stack: Stack;
  workflow: BackfillWorkflow;
  template: Template;
} {
  const { stack, table } = stackWithTable();
  const workflow = new BackfillWorkflow(stack, 'Workflow', {
    table,
    ...WORKFLOW_TARGET,
    ...source(stack),
  });
  return { stack, workflow, template: Template.fromStack(stack) };
}

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

/** Every action the role's policies allow, with their resources. */
function statementsOf(
  template: Template,
  stack: Stack,
  role: unknown,
): { Action: unknown; Resource: unknown }[] {
  const roleId = logicalId(stack, role as never);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

/** The mapping UUID wherever the stack hands it on: the definition, the run lock, the watchdog, the deploy guard. */
function mappingReferences(template: Template, stack: Stack, workflow: BackfillWorkflow): unknown[] {
  const resources = template.toJSON().Resources;
  const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  const [guard] = Object.values(template.findResources('Custom::Ddb2osUpdaterDeployGuard'));
  const variables = (fn: { node: { defaultChild?: unknown } }) =>
    resources[logicalId(stack, fn)].Properties.Environment.Variables.DDB2OS_UPDATER_MAPPING_UUID;
  return [
    machine?.Properties.DefinitionSubstitutions.UpdaterMappingUuid,
    variables(workflow.runLockFunction),
    variables(workflow.watchdog.watchdogFunction),
    variables(workflow.watchdog.deployGuardFunction),
    guard?.Properties.UpdaterMappingUuid,
  ];
}

describe('change source: a Kinesis data stream', () => {
  let stack: Stack;
  let workflow: BackfillWorkflow;
  let template: Template;

  beforeAll(() => {
    ({ stack, workflow, template } = workflowOn((s) => ({
      changeSource: 'kinesis',
      kinesisStream: Stream.fromStreamArn(s, 'Changes', KINESIS_ARN),
    })));
  });

  it('reads the stream from TRIM_HORIZON, disabled until a backfill, bisecting and retrying until the records are 22 h old, with a failure destination', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: KINESIS_ARN,
      FunctionName: { Ref: logicalId(stack, workflow.updaterFunction) },
      ...UPDATER_STREAM_MAPPING,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [logicalId(stack, workflow.streamFailureQueue as Queue), 'Arn'] },
        },
      },
    });
    // The segment queue's and this one: no mapping on the table's stream.
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
  });

  it('pauses and enables this mapping: the definition, the run lock, the watchdog and the deploy guard name its UUID', () => {
    const mapping = workflow.updaterFunction.node.findChild('KinesisEventSource');
    const ref = { Ref: logicalId(stack, mapping) };
    expect(mappingReferences(template, stack, workflow)).toEqual([ref, ref, ref, ref, ref]);
  });

  it('lets the updater read the stream with shared throughput only, and nothing of the table stream', () => {
    const statements = statementsOf(template, stack, workflow.updaterFunction.role);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: [
        'kinesis:DescribeStream',
        'kinesis:DescribeStreamSummary',
        'kinesis:GetRecords',
        'kinesis:GetShardIterator',
        'kinesis:ListShards',
      ],
      Resource: KINESIS_ARN,
    });
    const actions = JSON.stringify(statements.map((statement) => statement.Action));
    expect(actions).not.toContain('kinesis:SubscribeToShard');
    expect(actions).not.toContain('dynamodb:GetRecords');
    expect(actions).not.toContain('kms:');
    // Reads of current items (KEYS_ONLY, aggregation) still go to the table.
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DescribeTable'] }),
    );
  });

  it("lets the run-lock function read the stream's retention, and tells it where the stream is", () => {
    expect(statementsOf(template, stack, workflow.runLockFunction.role)).toContainEqual({
      Effect: 'Allow',
      Action: 'kinesis:DescribeStreamSummary',
      Resource: KINESIS_ARN,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [logicalId(stack, workflow.runLockFunction.role as never), 'Arn'] },
      Environment: {
        Variables: Match.objectLike({
          DDB2OS_CHANGE_SOURCE: 'kinesis',
          DDB2OS_CHANGE_SOURCE_ARN: KINESIS_ARN,
        }),
      },
    });
  });

  it("alarms on the updater's iterator age and on a batch in the stream failure queue", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack, workflow.updaterFunction) } }],
      Threshold: 3_600_000,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(stack, workflow.streamFailureQueue as Queue), 'QueueName'] },
        },
      ],
    });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it('lets the updater decrypt a stream encrypted with a customer managed key', () => {
    const {
      stack: keyed,
      workflow: w,
      template: t,
    } = workflowOn((s) => ({
      changeSource: 'kinesis',
      kinesisStream: Stream.fromStreamAttributes(s, 'Changes', {
        streamArn: KINESIS_ARN,
        encryptionKey: Key.fromKeyArn(s, 'Key', KEY_ARN),
      }),
    }));
    expect(statementsOf(t, keyed, w.updaterFunction.role)).toContainEqual({
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: KEY_ARN,
    });
  });

  it('takes an updater max record age up to 7 days, the longest a Kinesis mapping allows', () => {
    const { template: t } = workflowOn((s) => ({
      changeSource: 'kinesis',
      kinesisStream: Stream.fromStreamArn(s, 'Changes', KINESIS_ARN),
      updaterMaxRecordAge: Duration.days(7),
      retentionBudget: Duration.days(6),
    }));
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: KINESIS_ARN,
      MaximumRecordAgeInSeconds: 7 * 24 * 3600,
    });
    expect(() =>
      workflowOn((s) => ({
        changeSource: 'kinesis',
        kinesisStream: Stream.fromStreamArn(s, 'Changes', KINESIS_ARN),
        updaterMaxRecordAge: Duration.days(8),
      })),
    ).toThrow('BackfillWorkflow: updaterMaxRecordAge must be from 1 hour to 7 days (got 8 days).');
  });
});

describe('change source: an SQS queue', () => {
  let stack: Stack;
  let workflow: BackfillWorkflow;
  let template: Template;
  let queue: Queue;

  beforeAll(() => {
    ({ stack, workflow, template } = workflowOn((s) => {
      const deadLetters = new Queue(s, 'ChangesDeadLetters', { enforceSSL: true });
      // The user's queues, not ddb2os's: their findings are the user's to answer.
      acknowledge(deadLetters, ['Serverless-SQSRedrivePolicy'], 'The dead-letter queue of the change queue.');
      queue = new Queue(s, 'Changes', {
        enforceSSL: true,
        visibilityTimeout: Duration.minutes(30),
        deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
      });
      return { changeSource: 'sqs', changeQueue: queue };
    }));
  });

  it('receives 100 messages per batch within 1 second, reporting failed messages, at most 5 updaters at once, disabled until a backfill', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack, queue), 'Arn'] },
      FunctionName: { Ref: logicalId(stack, workflow.updaterFunction) },
      Enabled: false,
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
      StartingPosition: Match.absent(),
      DestinationConfig: Match.absent(),
      MaximumRecordAgeInSeconds: Match.absent(),
    });
  });

  it("leaves the queue's redrive policy as it is, and makes no stream failure queue", () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 1800,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
    });
    expect(workflow.streamFailureQueue).toBeUndefined();
    // The segment queue, its dead-letter queue, and the user's two.
    template.resourceCountIs('AWS::SQS::Queue', 4);
  });

  it('pauses and enables this mapping: the definition, the run lock, the watchdog and the deploy guard name its UUID', () => {
    const ref = { Ref: logicalId(stack, workflow.updaterFunction.node.findChild('SqsEventSource')) };
    expect(mappingReferences(template, stack, workflow)).toEqual([ref, ref, ref, ref, ref]);
  });

  it('lets the updater receive, delete and hide messages of this queue, and nothing of the table stream', () => {
    const statements = statementsOf(template, stack, workflow.updaterFunction.role);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      Resource: { 'Fn::GetAtt': [logicalId(stack, queue), 'Arn'] },
    });
    const actions = JSON.stringify(statements.map((statement) => statement.Action));
    expect(actions).not.toContain('dynamodb:GetRecords');
    expect(actions).not.toContain('sqs:GetQueueUrl');
  });

  it("lets the run-lock function read the queue's retention, and tells it the queue's URL", () => {
    expect(statementsOf(template, stack, workflow.runLockFunction.role)).toContainEqual({
      Effect: 'Allow',
      Action: 'sqs:GetQueueAttributes',
      Resource: { 'Fn::GetAtt': [logicalId(stack, queue), 'Arn'] },
    });
    const [fn] = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Role: { 'Fn::GetAtt': [logicalId(stack, workflow.runLockFunction.role as never), 'Arn'] },
        },
      }),
    );
    const variables = fn?.Properties.Environment.Variables as Record<string, unknown>;
    expect(variables).toMatchObject({
      DDB2OS_CHANGE_SOURCE: 'sqs',
      DDB2OS_CHANGE_QUEUE_URL: { Ref: logicalId(stack, queue) },
    });
    // The run-lock function starts with these settings.
    expect(readRunLockConfig(environmentStandIns(variables))).toMatchObject({ table: 'orders' });
  });

  it("alarms on the age of the queue's oldest message (in seconds) and on its dead-letter queue", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, queue), 'QueueName'] } }],
      Threshold: 3600,
      EvaluationPeriods: 5,
    });
    const deadLetters = stack.node.findChild('ChangesDeadLetters') as Queue;
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, deadLetters), 'QueueName'] } },
      ],
      Threshold: 1,
    });
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('"IteratorAge"');
    // Its description names the updater's function (a token), so it is a join.
    const paused = template.findResources('AWS::CloudWatch::Alarm', {
      Properties: { MetricName: 'UpdaterPausedOutsideBackfill' },
    });
    expect(JSON.stringify(paused)).toContain(
      'changes wait in the change queue, which keeps them for its message retention period',
    );
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it('reads a FIFO queue from its ARN: 10 messages per batch, no batching window', () => {
    const { template: t } = workflowOn((s) => ({
      changeSource: 'sqs',
      changeQueue: Queue.fromQueueArn(s, 'Changes', FIFO_QUEUE_ARN),
    }));
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: FIFO_QUEUE_ARN,
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: Match.absent(),
    });
  });

  it('lets the updater decrypt a queue encrypted with a customer managed key', () => {
    const {
      stack: keyed,
      workflow: w,
      template: t,
    } = workflowOn((s) => ({
      changeSource: 'sqs',
      changeQueue: Queue.fromQueueAttributes(s, 'Changes', { queueArn: QUEUE_ARN, keyArn: KEY_ARN }),
    }));
    expect(statementsOf(t, keyed, w.updaterFunction.role)).toContainEqual({
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: KEY_ARN,
    });
  });

  it('takes a retention budget beyond 24 hours (the run lock checks it against the queue retention)', () => {
    const { template: t } = workflowOn((s) => ({
      changeSource: 'sqs',
      changeQueue: Queue.fromQueueArn(s, 'Changes', QUEUE_ARN),
      retentionBudget: Duration.days(3),
    }));
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      DefinitionSubstitutions: Match.objectLike({ RetentionBudgetHours: '72' }),
    });
  });
});

describe('change source props', () => {
  const build = (source: (stack: Stack) => Partial<BackfillWorkflowProps>) => () => workflowOn(source);
  const kinesis = (s: Stack) => Stream.fromStreamArn(s, 'Changes', KINESIS_ARN);
  const queue = (s: Stack, arn = QUEUE_ARN) => Queue.fromQueueArn(s, 'Changes', arn);

  it('rejects a change source it does not know', () => {
    expect(build(() => ({ changeSource: 'dynamodb' as never }))).toThrow(
      'BackfillWorkflow: changeSource must be one of dynamodb-stream, kinesis, sqs (got dynamodb).',
    );
  });

  it('rejects the default source on a table without a stream, naming the other sources', () => {
    expect(build(() => ({}))).toThrow(/has no stream.*changeSource: 'kinesis'/s);
  });

  it('rejects a Kinesis source without its stream', () => {
    expect(build(() => ({ changeSource: 'kinesis' }))).toThrow(
      "BackfillWorkflow: changeSource 'kinesis' needs kinesisStream",
    );
  });

  it('rejects an SQS source without its queue', () => {
    expect(build(() => ({ changeSource: 'sqs' }))).toThrow(
      "BackfillWorkflow: changeSource 'sqs' needs changeQueue",
    );
  });

  it('rejects a stream or a queue given without its source', () => {
    expect(build((s) => ({ kinesisStream: kinesis(s) }))).toThrow(
      "BackfillWorkflow: kinesisStream is given, but changeSource is dynamodb-stream; set changeSource: 'kinesis' to use it",
    );
    expect(
      build((s) => ({ changeSource: 'kinesis', kinesisStream: kinesis(s), changeQueueBatchSize: 10 })),
    ).toThrow(
      "BackfillWorkflow: changeQueueBatchSize is given, but changeSource is kinesis; set changeSource: 'sqs' to use it",
    );
  });

  it('rejects a stream or a queue named by an ARN of another service', () => {
    expect(
      build((s) => ({
        changeSource: 'kinesis',
        kinesisStream: Stream.fromStreamArn(s, 'Changes', QUEUE_ARN),
      })),
    ).toThrow(
      `BackfillWorkflow: kinesisStream must be named by an ARN like arn:aws:kinesis:us-east-1:123456789012:stream/orders (got ${QUEUE_ARN}).`,
    );
    expect(build((s) => ({ changeSource: 'sqs', changeQueue: queue(s, KINESIS_ARN) }))).toThrow(
      'BackfillWorkflow: changeQueue must be named by an ARN like arn:aws:sqs:',
    );
  });

  it('rejects a batch of more than 10 messages from a FIFO queue, and a batching window for one', () => {
    expect(
      build((s) => ({
        changeSource: 'sqs',
        changeQueue: queue(s, FIFO_QUEUE_ARN),
        changeQueueBatchSize: 11,
      })),
    ).toThrow(
      'BackfillWorkflow: changeQueueBatchSize must be a whole number from 1 to 10 for a FIFO queue (got 11).',
    );
    expect(
      build((s) => ({
        changeSource: 'sqs',
        changeQueue: queue(s, FIFO_QUEUE_ARN),
        changeQueueBatchingWindow: Duration.seconds(5),
      })),
    ).toThrow('BackfillWorkflow: changeQueueBatchingWindow is not allowed for a FIFO queue');
  });

  it('rejects a batch of more than 10 messages without a batching window', () => {
    expect(
      build((s) => ({
        changeSource: 'sqs',
        changeQueue: queue(s),
        changeQueueBatchSize: 500,
        changeQueueBatchingWindow: Duration.seconds(0),
      })),
    ).toThrow(
      'BackfillWorkflow: changeQueueBatchSize 500 needs a changeQueueBatchingWindow of at least 1 second',
    );
  });

  it('rejects a maximum concurrency SQS event sources do not allow', () => {
    expect(
      build((s) => ({ changeSource: 'sqs', changeQueue: queue(s), changeQueueMaxConcurrency: 1 })),
    ).toThrow('BackfillWorkflow: changeQueueMaxConcurrency must be a whole number from 2 to 1000 (got 1).');
  });

  it('rejects an updater max record age for an SQS source, whose redrive policy ends the retries', () => {
    expect(
      build((s) => ({ changeSource: 'sqs', changeQueue: queue(s), updaterMaxRecordAge: Duration.hours(12) })),
    ).toThrow("BackfillWorkflow: updaterMaxRecordAge applies to stream sources, not to changeSource 'sqs'");
  });

  it("rejects a queue of the app whose visibility timeout is shorter than the updater's timeout", () => {
    expect(
      build((s) => ({ changeSource: 'sqs', changeQueue: new Queue(s, 'Changes', { enforceSSL: true }) })),
    ).toThrow(
      "changeQueue's visibility timeout (30 seconds) is shorter than the updater's timeout (300 seconds)",
    );
  });

  it('rejects a retention budget beyond what the source can keep', () => {
    expect(
      build((s) => ({ changeSource: 'sqs', changeQueue: queue(s), retentionBudget: Duration.days(14) })),
    ).toThrow(
      'BackfillWorkflow: retentionBudget (14 days) must be more than 0 and less than 14 days, the longest an SQS queue keeps a message',
    );
  });
});

describe('change source: batches of a stream (updaterBatchSize, updaterParallelizationFactor)', () => {
  const kinesis = (s: Stack) => Stream.fromStreamArn(s, 'Changes', KINESIS_ARN);
  const AGGREGATE = { aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } };
  const TRANSFORM = 'test/stacks/user-transform/order-transform.ts';

  function mappingOf(build: () => BackfillWorkflow, sourceArn: string): Record<string, unknown> {
    const workflow = build();
    const mappings = Template.fromStack(Stack.of(workflow)).findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: sourceArn },
    });
    const [mapping] = Object.values(mappings);
    return mapping?.Properties as Record<string, unknown>;
  }

  it("hands the table stream's records in the batches and concurrent batches per shard asked for", () => {
    const mapping = mappingOf(
      workflowBuilder(() => ({ updaterBatchSize: 500, updaterParallelizationFactor: 4 })),
      STREAM_ARN,
    );
    expect(mapping).toMatchObject({ ...UPDATER_STREAM_MAPPING, BatchSize: 500, ParallelizationFactor: 4 });
  });

  it('takes up to 10,000 records a batch and concurrent batches from a Kinesis stream, aggregated mapping included', () => {
    const mapping = mappingOf(
      workflowBuilder(
        (s) => ({
          changeSource: 'kinesis',
          kinesisStream: kinesis(s),
          mapping: AGGREGATE,
          updaterBatchSize: 10_000,
          updaterParallelizationFactor: 10,
        }),
        (s) => Table.fromTableName(s, 'Orders', 'orders'),
      ),
      KINESIS_ARN,
    );
    expect(mapping).toMatchObject({ BatchSize: 10_000, ParallelizationFactor: 10 });
  });

  it("refuses concurrent batches of the table's stream when a document comes from several items, naming why", () => {
    expect(workflowBuilder(() => ({ mapping: AGGREGATE, updaterParallelizationFactor: 2 }))).toThrow(
      "BackfillWorkflow: updaterParallelizationFactor 2 needs documents that each come from one item, and mapping.aggregate builds one document from every item of a partition: Lambda keeps only each item's changes in order across concurrent batches.",
    );
    expect(workflowBuilder(() => ({ transformModule: TRANSFORM, updaterParallelizationFactor: 3 }))).toThrow(
      /updaterParallelizationFactor 3 needs documents that each come from one item, and a transformModule may build one document from several items.*changeSource: 'kinesis'/,
    );
  });

  it('refuses batch sizes and factors the event source mapping does not take, naming the prop and the range', () => {
    expect(workflowBuilder(() => ({ updaterBatchSize: 1001 }))).toThrow(
      'BackfillWorkflow: updaterBatchSize must be a whole number from 1 to 1000 for a dynamodb-stream source (got 1001).',
    );
    expect(workflowBuilder(() => ({ updaterBatchSize: 0 }))).toThrow(
      /updaterBatchSize must be a whole number from 1 to 1000/,
    );
    expect(workflowBuilder(() => ({ updaterParallelizationFactor: 11 }))).toThrow(
      'BackfillWorkflow: updaterParallelizationFactor must be a whole number from 1 to 10 (got 11).',
    );
    expect(workflowBuilder(() => ({ updaterParallelizationFactor: 1.5 }))).toThrow(
      /updaterParallelizationFactor must be a whole number from 1 to 10 \(got 1.5\)/,
    );
  });

  it("refuses them for an SQS source, naming the queue's own props", () => {
    const queue = (s: Stack) => Queue.fromQueueArn(s, 'Changes', QUEUE_ARN);
    const onQueue = (extra: Partial<BackfillWorkflowProps>) =>
      workflowBuilder(
        (s) => ({ changeSource: 'sqs', changeQueue: queue(s), ...extra }),
        (s) => Table.fromTableName(s, 'Orders', 'orders'),
      );
    expect(onQueue({ updaterBatchSize: 10 })).toThrow(
      "BackfillWorkflow: updaterBatchSize applies to stream sources, not to changeSource 'sqs'; set changeQueueBatchSize for a queue.",
    );
    expect(onQueue({ updaterParallelizationFactor: 2 })).toThrow(
      "BackfillWorkflow: updaterParallelizationFactor applies to stream sources, not to changeSource 'sqs'; set changeQueueMaxConcurrency for a queue.",
    );
  });
});
