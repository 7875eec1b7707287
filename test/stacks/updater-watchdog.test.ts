import { Duration, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { type CfnEventSourceMapping, EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readWatchdogConfig } from '../../pipeline/lambda/config';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import {
  DOMAIN_ARN,
  DOMAIN_ENDPOINT,
  environmentStandIns,
  stackWithStreamTable,
  unacknowledgedNagFindings,
} from './fixtures';

/** An alarm that fires on the first one. */
const FIRST_ONE = { Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' };

const TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:ddb2os-alarms';

function workflowStack(props: Partial<BackfillWorkflowProps> = {}, withTopic = true) {
  const { stack, table } = stackWithStreamTable();
  const topic = withTopic ? Topic.fromTopicArn(stack, 'AlarmTopic', TOPIC_ARN) : undefined;
  const workflow = new BackfillWorkflow(stack, 'Workflow', {
    table,
    index: 'orders',
    domainEndpoint: DOMAIN_ENDPOINT,
    domainArn: DOMAIN_ARN,
    stateMachineName: 'ddb2os-test-backfill',
    alarmTopic: topic,
    ...props,
  });
  return { stack, workflow, topic };
}

function updaterMapping(workflow: BackfillWorkflow): EventSourceMapping {
  return workflow.updaterFunction.node.children.find(
    (child) => child instanceof EventSourceMapping,
  ) as EventSourceMapping;
}

function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

function guardHash(stack: Stack): string {
  const [guard] = Object.values(Template.fromStack(stack).findResources('Custom::Ddb2osUpdaterDeployGuard'));
  return guard?.Properties.UpdaterMappingPropertiesHash as string;
}

// One stack with a topic for the tests that only read its template.
let stack: Stack;
let workflow: BackfillWorkflow;
let template: Template;

beforeAll(() => {
  ({ stack, workflow } = workflowStack());
  template = Template.fromStack(stack);
});

describe('BackfillWorkflow updater watchdog', () => {
  it('runs the watchdog every 5 minutes from an EventBridge rule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(stack, workflow.watchdog.watchdogFunction), 'Arn'] },
        }),
      ],
    });
  });

  it('tells the watchdog and the deploy guard the table, the progress table and the mapping', () => {
    for (const fn of [workflow.watchdog.watchdogFunction, workflow.watchdog.deployGuardFunction]) {
      const { Properties } = template.toJSON().Resources[logicalId(stack, fn)];
      const variables = Properties.Environment.Variables as Record<string, unknown>;
      expect(variables.DDB2OS_UPDATER_MAPPING_UUID).toEqual({
        Ref: logicalId(stack, updaterMapping(workflow)),
      });
      expect(variables.DDB2OS_PROGRESS_TABLE).toEqual({ Ref: logicalId(stack, workflow.progressTable) });
      expect(readWatchdogConfig(environmentStandIns(variables))).toMatchObject({ table: 'orders' });
    }
  });

  it('lets the watchdog read the mapping, the lock item and the holder execution, and change nothing', () => {
    const policy =
      template.toJSON().Resources[
        logicalId(stack, workflow.watchdog.watchdogFunction.role?.node.findChild('DefaultPolicy') as never)
      ];
    const statements = policy.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[];
    const actions = statements.flatMap((statement) => statement.Action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'lambda:GetEventSourceMapping',
        'dynamodb:GetItem',
        'states:DescribeExecution',
      ]),
    );
    expect(actions).not.toContain('lambda:UpdateEventSourceMapping');
    expect(statements.find((s) => s.Action === 'states:DescribeExecution')?.Resource).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':states:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':execution:ddb2os-test-backfill:*',
        ],
      ],
    });
  });

  it('lets the deploy guard enable and disable only the updater mapping', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalId(stack, workflow.watchdog.deployGuardFunction.role as never) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['lambda:GetEventSourceMapping', 'lambda:UpdateEventSourceMapping'],
            Resource: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
          },
        ]),
      },
    });
  });

  it('runs the deploy guard after the mapping: it refers to it (a Ref orders CloudFormation)', () => {
    const mappingId = logicalId(stack, updaterMapping(workflow));
    template.hasResource('Custom::Ddb2osUpdaterDeployGuard', {
      Properties: {
        UpdaterMappingUuid: { Ref: mappingId },
        UpdaterMappingPropertiesHash: Match.stringLikeRegexp('^[0-9a-f]{64}$'),
      },
    });
  });

  it("runs the deploy guard on every update of the mapping: its hash changes with the mapping's properties, and only then", () => {
    const again = workflowStack();
    const changed = workflowStack();
    (updaterMapping(changed.workflow).node.defaultChild as CfnEventSourceMapping).addPropertyOverride(
      'BatchSize',
      50,
    );

    expect(guardHash(again.stack)).toBe(guardHash(stack));
    expect(guardHash(changed.stack)).not.toBe(guardHash(stack));
  });

  it('invokes the deploy guard through a provider whose role writes only to its own log group (no managed policy)', () => {
    const role = template.toJSON().Resources[
      logicalId(stack, workflow.watchdog.deployGuardProvider.node.findChild('framework-onEvent') as never)
    ].Properties.Role as { 'Fn::GetAtt': [string, string] };
    expect(template.toJSON().Resources[role['Fn::GetAtt'][0]].Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillWorkflow alarms', () => {
  const alarm = (properties: Record<string, unknown>) =>
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ...properties,
      AlarmActions: [TOPIC_ARN],
      OKActions: [TOPIC_ARN],
    });

  /** A metric of the updater function (AWS/Lambda, FunctionName). */
  const updaterMetric = (MetricName: string) => ({
    Namespace: 'AWS/Lambda',
    MetricName,
    Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(stack, workflow.updaterFunction) } }],
  });

  // Each alarm: when it fires, its metric, threshold and how it treats missing data.
  const queueDepth = (queue: (w: BackfillWorkflow) => IQueue) => () => ({
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [
      { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, queue(workflow)), 'QueueName'] } },
    ],
    ...FIRST_ONE,
    TreatMissingData: 'notBreaching',
  });
  it.each<[string, () => Record<string, unknown>]>([
    [
      'the updater is paused outside a backfill, and when the watchdog is silent',
      () => ({
        Namespace: 'ddb2os',
        MetricName: 'UpdaterPausedOutsideBackfill',
        Dimensions: Match.arrayWith([
          { Name: 'service', Value: 'ddb2os' },
          { Name: 'table', Value: 'orders' },
        ]),
        Statistic: 'Maximum',
        Period: 600,
        ...FIRST_ONE,
        EvaluationPeriods: 1,
        TreatMissingData: 'breaching',
      }),
    ],
    [
      'the mapping reports a PROBLEM',
      () => ({ MetricName: 'UpdaterProblem', ...FIRST_ONE, TreatMissingData: 'notBreaching' }),
    ],
    [
      'the updater is more than an hour behind, counting silence (no traffic, paused) as fine',
      () => ({
        ...updaterMetric('IteratorAge'),
        Statistic: 'Maximum',
        Threshold: 3_600_000,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 5,
        TreatMissingData: 'notBreaching',
      }),
    ],
    ['a stream batch is in the stream failure queue', queueDepth((w) => w.streamFailureQueue as IQueue)],
    ['a segment message is in the dead-letter queue', queueDepth((w) => w.segmentDeadLetterQueue)],
    [
      'the updater fails batches in three 5-minute periods in a row',
      () => ({
        ...updaterMetric('Errors'),
        Statistic: 'Sum',
        Period: 300,
        ...FIRST_ONE,
        EvaluationPeriods: 3,
      }),
    ],
    [
      'the updater dead-letters a stream record',
      () => ({
        Namespace: 'ddb2os',
        MetricName: 'StreamRecordsDeadLettered',
        Statistic: 'Sum',
        ...FIRST_ONE,
      }),
    ],
    ['a backfill execution fails', () => ({ MetricName: 'ExecutionsFailed', ...FIRST_ONE })],
  ])('alarms when %s', (_when, properties) => {
    alarm(properties());
  });

  it('notifies the topic from every alarm, on alarm and on OK, and says in each what to do', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(8);
    for (const { Properties } of alarms) {
      expect(Properties).toMatchObject({ AlarmActions: [TOPIC_ARN], OKActions: [TOPIC_ARN] });
      expect(JSON.stringify(Properties.AlarmDescription).length).toBeGreaterThan(80);
    }
  });

  it('has no actions without a topic', () => {
    const { stack: bare } = workflowStack({}, false);
    const alarms = Object.values(Template.fromStack(bare).findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(8);
    for (const { Properties } of alarms) expect(Properties.AlarmActions).toBeUndefined();
  });

  it('takes the iterator age threshold from the prop', () => {
    const { stack: custom } = workflowStack({ iteratorAgeAlarmThreshold: Duration.minutes(30) });
    Template.fromStack(custom).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Threshold: 1_800_000,
    });
  });

  it('rejects an iterator age threshold of 24 hours or more: the stream has dropped the changes by then', () => {
    expect(() => workflowStack({ iteratorAgeAlarmThreshold: Duration.hours(24) })).toThrow(
      'BackfillWorkflow: iteratorAgeAlarmThreshold (1 day) must be more than 0 and less than 24 hours',
    );
    expect(() => workflowStack({ iteratorAgeAlarmThreshold: Duration.seconds(0) })).toThrow(
      'iteratorAgeAlarmThreshold (0 seconds) must be more than 0',
    );
  });
});
