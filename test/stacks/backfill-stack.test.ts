import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { indexDefinitionFromPlanInput } from '../../pipeline/index/index-definition';
import { BackfillStack } from '../../stacks/backfill-stack';
import {
  DOMAIN_ENDPOINT,
  EXISTING_CONTEXT,
  STREAM_ARN,
  testApp,
  unacknowledgedNagFindings,
} from './fixtures';

describe('BackfillStack with an existing table and domain', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = new BackfillStack(testApp(EXISTING_CONTEXT), 'Ddb2osBackfill');
    template = Template.fromStack(stack);
  });

  it('follows the stream of the given table and creates no table of its own but the progress table', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { EventSourceArn: STREAM_ARN });
  });

  it('describes the table by the ARN the stream names, in the account and region of the stream', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'dynamodb:DescribeTable',
            Resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders',
          },
        ]),
      },
    });
  });

  it('writes to the given domain endpoint and index', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          DDB2OS_OPENSEARCH_ENDPOINT: DOMAIN_ENDPOINT,
          DDB2OS_INDEX_NAME: 'orders',
        }),
      },
    });
  });

  it('keeps the progress table and the bucket when the stack is deleted', () => {
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  it('names the state machine after the stack', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'Ddb2osBackfill-Backfill',
    });
  });

  it('outputs the state machine, its console link, the start command, the progress table and the bucket', () => {
    const arn = { Ref: stack.getLogicalId(stack.workflow.stateMachine.node.defaultChild as never) };
    template.hasOutput('StateMachineArn', { Value: arn });
    template.hasOutput('StateMachineConsoleUrl', {
      Value: {
        'Fn::Join': [
          '',
          [
            'https://',
            { Ref: 'AWS::Region' },
            '.console.aws.amazon.com/states/home?region=',
            { Ref: 'AWS::Region' },
            '#/statemachines/view/',
            arn,
          ],
        ],
      },
    });
    template.hasOutput('StartExecutionCommand', {
      Value: {
        'Fn::Join': ['', ['aws stepfunctions start-execution --state-machine-arn ', arn, " --input '{}'"]],
      },
    });
    template.hasOutput('ProgressTableName', { Value: Match.anyValue() });
    template.hasOutput('DeadLetterBucketName', { Value: Match.anyValue() });
  });

  it('outputs the stream failure queue that `ddb2os replay --stack` reads', () => {
    const queue = stack.getLogicalId((stack.workflow.streamFailureQueue as Queue).node.defaultChild as never);
    template.hasOutput('StreamFailureQueueUrl', { Value: { Ref: queue } });
  });

  it('outputs the roles that need access to the domain', () => {
    const roleArn = (fn: { role?: unknown }) => ({
      'Fn::GetAtt': [
        stack.getLogicalId((fn.role as { node: { defaultChild: never } }).node.defaultChild),
        'Arn',
      ],
    });
    const { planFunction, workerFunction, updaterFunction, summarizeFunction, resyncFunction } =
      stack.workflow;
    template.hasOutput('OpenSearchRoleArns', {
      Value: {
        'Fn::Join': [
          '',
          [
            roleArn(planFunction),
            ',',
            roleArn(workerFunction),
            ',',
            roleArn(updaterFunction),
            ',',
            roleArn(summarizeFunction),
            ',',
            roleArn(resyncFunction),
          ],
        ],
      },
    });
  });

  it('has a dashboard of segments, documents per second, dead letters and the updater lag', () => {
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    for (const title of [
      'Segments',
      'Documents created per second',
      'Dead-letter queues',
      'Stream updater iterator age',
    ]) {
      expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    }
  });

  it('alarms on segment dead letters, stream failures and failed executions as soon as there is one', () => {
    for (const metricName of ['ApproximateNumberOfMessagesVisible', 'ExecutionsFailed']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it('alarms when the updater is paused outside a backfill (the watchdog publishes it) and shows it on the dashboard', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'UpdaterPausedOutsideBackfill',
      TreatMissingData: 'breaching',
    });
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    expect(body).toContain('\\"title\\":\\"Stream updater watchdog\\"');
    expect(body).toContain('UpdaterPausedOutsideBackfill');
    expect(body).toContain('\\"title\\":\\"Alarms\\"');
  });

  it('alarms when the updater is more than an hour behind the stream', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Threshold: 3_600_000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('stays environment-agnostic when no account is given', () => {
    expect(JSON.stringify(template.toJSON())).not.toContain('CDK_DEFAULT');
    expect(stack.account).toMatch(/^\$\{Token\[AWS\.AccountId/);
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack in demo mode', () => {
  let stack: BackfillStack;
  let template: Template;

  beforeAll(() => {
    stack = new BackfillStack(testApp({ demo: 'true' }), 'Ddb2osDemo');
    template = Template.fromStack(stack);
  });

  it('creates a demo table with a pk/sk key and a stream of new and old images, deleted with the stack', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
      DeletionPolicy: 'Delete',
    });
  });

  it('creates a one-node OpenSearch 2.19 domain, encrypted, HTTPS with TLS 1.2 only', () => {
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      EngineVersion: 'OpenSearch_2.19',
      ClusterConfig: Match.objectLike({ InstanceCount: 1, InstanceType: 't3.small.search' }),
      EBSOptions: { EBSEnabled: true, VolumeSize: 10, VolumeType: 'gp3' },
      NodeToNodeEncryptionOptions: { Enabled: true },
      EncryptionAtRestOptions: { Enabled: true },
      DomainEndpointOptions: { EnforceHTTPS: true, TLSSecurityPolicy: 'Policy-Min-TLS-1-2-2019-07' },
    });
  });

  it('lets only the five function roles into the domain, each with only the HTTP methods it uses', () => {
    const role = (fn: { role?: unknown }) => ({
      'Fn::GetAtt': [
        stack.getLogicalId((fn.role as { node: { defaultChild: never } }).node.defaultChild),
        'Arn',
      ],
    });
    const { planFunction, workerFunction, updaterFunction, summarizeFunction, resyncFunction } =
      stack.workflow;
    const statement = (fn: { role?: unknown }, action: string | string[]) =>
      Match.objectLike({ Effect: 'Allow', Principal: { AWS: role(fn) }, Action: action });
    template.hasResourceProperties('AWS::OpenSearchService::Domain', {
      AccessPolicies: {
        Statement: [
          statement(planFunction, ['es:ESHttpHead', 'es:ESHttpPut']),
          statement(workerFunction, 'es:ESHttpPost'),
          statement(updaterFunction, 'es:ESHttpPost'),
          statement(summarizeFunction, ['es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost']),
          statement(resyncFunction, [
            'es:ESHttpHead',
            'es:ESHttpGet',
            'es:ESHttpPut',
            'es:ESHttpPost',
            'es:ESHttpDelete',
          ]),
        ],
      },
    });
  });

  it('writes to the demo domain through its https endpoint', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          DDB2OS_OPENSEARCH_ENDPOINT: {
            'Fn::Join': [
              '',
              ['https://', { 'Fn::GetAtt': [Match.stringLikeRegexp('DemoDomain'), 'DomainEndpoint'] }],
            ],
          },
          DDB2OS_INDEX_NAME: 'ddb2os-demo',
        }),
      },
    });
  });

  it('deletes the progress table and empties and deletes the bucket with the stack', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        KeySchema: Match.arrayWith([{ AttributeName: 'runId', KeyType: 'HASH' }]),
      }),
      DeletionPolicy: 'Delete',
    });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
  });

  it('outputs the demo table and domain endpoint', () => {
    template.hasOutput('DemoTableName', { Value: Match.anyValue() });
    template.hasOutput('DemoDomainEndpoint', { Value: Match.anyValue() });
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillStack context', () => {
  const synth = (context: Record<string, unknown>) => () =>
    new BackfillStack(testApp(context), 'Ddb2osBackfill');

  it('says which -c to pass when the existing resources are not given', () => {
    expect(synth({ tableName: 'orders' })).toThrow(
      'Missing context: tableStreamArn, domainEndpoint, domainArn (or domainName), index. Pass it with -c',
    );
    expect(synth({})).toThrow('or deploy a demo table and domain with: npx cdk deploy -c demo=true');
  });

  it('rejects a stream ARN that is not one', () => {
    expect(synth({ ...EXISTING_CONTEXT, tableStreamArn: 'orders-stream' })).toThrow(
      '-c tableStreamArn must be a DynamoDB stream ARN',
    );
  });

  it('rejects a stream of another table', () => {
    expect(synth({ ...EXISTING_CONTEXT, tableName: 'customers' })).toThrow(
      'is a stream of table orders, not of -c tableName=customers',
    );
  });

  it('rejects a stream in another region than the stack', () => {
    expect(
      () =>
        new BackfillStack(testApp(EXISTING_CONTEXT), 'Ddb2osBackfill', {
          env: { account: '123456789012', region: 'eu-west-1' },
        }),
    ).toThrow('-c tableStreamArn is in us-east-1, but the stack deploys to eu-west-1');
  });

  it('notifies the topic of -c alarmTopicArn from every alarm', () => {
    const topic = 'arn:aws:sns:us-east-1:123456789012:ddb2os-alarms';
    const template = Template.fromStack(
      new BackfillStack(testApp({ ...EXISTING_CONTEXT, alarmTopicArn: topic }), 'Ddb2osBackfill'),
    );
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(8);
    for (const { Properties } of alarms) {
      expect(Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    }
  });

  it('rejects an alarm topic ARN that is not one, or in another region than the stack', () => {
    expect(synth({ ...EXISTING_CONTEXT, alarmTopicArn: 'ddb2os-alarms' })).toThrow(
      '-c alarmTopicArn must be the ARN of a standard SNS topic, like arn:aws:sns:us-east-1:123456789012:ddb2os-alarms (got ddb2os-alarms).',
    );
    expect(
      () =>
        new BackfillStack(
          testApp({
            ...EXISTING_CONTEXT,
            tableStreamArn: STREAM_ARN.replace('us-east-1', 'eu-west-1'),
            alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:ddb2os-alarms',
          }),
          'Ddb2osBackfill',
          { env: { account: '123456789012', region: 'eu-west-1' } },
        ),
    ).toThrow('-c alarmTopicArn is in us-east-1, but the stack deploys to eu-west-1');
  });

  it('rejects a demo flag that is neither true nor false', () => {
    expect(synth({ demo: 'yes' })).toThrow('-c demo must be true or false (got yes)');
  });

  it('rejects a mapping that is not a JSON object', () => {
    expect(synth({ ...EXISTING_CONTEXT, mapping: '{routes:' })).toThrow('-c mapping must be a JSON object');
    expect(synth({ ...EXISTING_CONTEXT, mapping: '[1]' })).toThrow('-c mapping must be a JSON object');
  });

  it('derives the domain ARN from a domain name', () => {
    const { domainArn: _arn, ...context } = EXISTING_CONTEXT;
    const template = Template.fromStack(
      new BackfillStack(testApp({ ...context, domainName: 'x' }), 'Ddb2osBackfill'),
    );
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['es:ESHttpPost']),
            Resource: { 'Fn::Join': ['', Match.arrayWith([':domain/x/*'])] },
          }),
        ]),
      },
    });
  });

  it('passes a JSON mapping and a concurrency from context to the workflow', () => {
    const template = Template.fromStack(
      new BackfillStack(
        testApp({ ...EXISTING_CONTEXT, mapping: '{"unrouted":"skip"}', maxConcurrency: '40' }),
        'Ddb2osBackfill',
      ),
    );
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DDB2OS_MAPPING: '{"unrouted":"skip"}' }) },
    });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      DefinitionSubstitutions: Match.objectLike({ MaxConcurrency: '40' }),
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 40 },
    });
  });

  it("passes the updater's batch size and concurrent batches per shard from context to its mapping", () => {
    const template = Template.fromStack(
      new BackfillStack(
        testApp({ ...EXISTING_CONTEXT, updaterBatchSize: '500', updaterParallelizationFactor: '4' }),
        'Ddb2osBackfill',
      ),
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 500,
      ParallelizationFactor: 4,
    });
    expect(
      () =>
        new BackfillStack(
          testApp({ ...EXISTING_CONTEXT, updaterParallelizationFactor: 'two' }),
          'Ddb2osBackfill',
        ),
    ).toThrow('-c updaterParallelizationFactor must be a whole number (got two).');
  });

  describe('-c indexConfig=FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddb2os-stack-'));
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const planInputIndexConfig = (template: Template): unknown => {
      const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
      return indexDefinitionFromPlanInput(
        JSON.parse(`"${machine?.Properties.DefinitionSubstitutions.IndexConfig as string}"`),
      );
    };

    it('reads the file at synth and hands its definition to the plan step', () => {
      const path = file('index.json', '{ "mappings": { "properties": { "sku": { "type": "keyword" } } } }');

      const template = Template.fromStack(synth({ ...EXISTING_CONTEXT, indexConfig: path })());

      expect(planInputIndexConfig(template)).toMatchObject({
        mappings: { properties: { sku: { type: 'keyword' } } },
      });
    });

    it('prefers the indexConfig prop to the context', () => {
      const path = file('ignored.json', '{ "settings": { "number_of_shards": 5 } }');

      const stack = new BackfillStack(testApp({ ...EXISTING_CONTEXT, indexConfig: path }), 'Ddb2osBackfill', {
        indexConfig: { settings: { number_of_shards: 2 } },
      });

      expect(planInputIndexConfig(Template.fromStack(stack))).toMatchObject({
        settings: { number_of_shards: 2 },
      });
    });

    it('rejects a file that is not JSON, naming the file, the line and the column', () => {
      const path = file('broken.json', '{\n  "mappings": { "dynamic": strict }\n}');

      expect(synth({ ...EXISTING_CONTEXT, indexConfig: path })).toThrow(
        `-c indexConfig=${path} is not valid JSON: Unexpected token 's' at line 2, column 28`,
      );
    });

    it('rejects a file of the wrong shape and a missing file, naming the file', () => {
      const path = file('shape.json', '{ "index": "orders" }');

      expect(synth({ ...EXISTING_CONTEXT, indexConfig: path })).toThrow(
        `-c indexConfig=${path} has unknown top-level field "index"`,
      );
      expect(synth({ ...EXISTING_CONTEXT, indexConfig: join(dir, 'missing.json') })).toThrow(
        `-c indexConfig=${join(dir, 'missing.json')}: the file cannot be read (no such file)`,
      );
    });
  });
});
