import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import {
  AttributeType,
  StreamViewType,
  Table,
  TableEncryption,
  TableEncryptionV2,
  TableV2,
} from 'aws-cdk-lib/aws-dynamodb';
import type { Role } from 'aws-cdk-lib/aws-iam';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { Domain, EngineVersion } from 'aws-cdk-lib/aws-opensearchservice';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFINITION_PATH } from '../../pipeline/contract/definition';
import { indexDefinitionFromPlanInput } from '../../pipeline/index/index-definition';
import {
  readPlanConfig,
  readRunLockConfig,
  readSummarizeConfig,
  readUpdaterConfig,
  readWorkerConfig,
} from '../../pipeline/lambda/config';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import type { HandlerFunction } from '../../stacks/handler-function';
import {
  DOMAIN_ARN,
  DOMAIN_ENDPOINT,
  environmentStandIns,
  importedStreamTable,
  STREAM_ARN,
  stackWithStreamTable,
  synthInChildProcess,
  testApp,
  UPDATER_STREAM_MAPPING,
  unacknowledgedNagFindings,
  workflowBuilder,
} from './fixtures';

/** The ARN of the updater's event source mapping, as the template builds it. */
const updaterMappingArn = {
  'Fn::Join': [
    '',
    Match.arrayWith([
      ':event-source-mapping:',
      { Ref: Match.stringLikeRegexp('UpdaterFunctionDynamoDBEventSource') },
    ]),
  ],
};

function logicalId(
  stack: Stack,
  workflow: BackfillWorkflow,
  pick: (w: BackfillWorkflow) => { node: { defaultChild?: unknown } },
): string {
  return stack.getLogicalId(pick(workflow).node.defaultChild as never);
}

/** Makes the table `Orders` of the app, with a stream, encrypted as `encryption` says. */
function ordersTable(encryption?: TableEncryption): (stack: Stack) => Table {
  return (stack) =>
    new Table(stack, 'Orders', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      encryption,
    });
}

describe('BackfillWorkflow', () => {
  let stack: Stack;
  let workflow: BackfillWorkflow;
  let template: Template;
  const ref = (pick: (w: BackfillWorkflow) => { node: { defaultChild?: unknown } }) => ({
    Ref: logicalId(stack, workflow, pick),
  });
  const arnOf = (pick: (w: BackfillWorkflow) => { node: { defaultChild?: unknown } }) => ({
    'Fn::GetAtt': [logicalId(stack, workflow, pick), 'Arn'],
  });

  beforeAll(() => {
    const fixture = stackWithStreamTable();
    stack = fixture.stack;
    workflow = new BackfillWorkflow(stack, 'Workflow', {
      table: fixture.table,
      index: 'orders',
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      stateMachineName: 'ddb2os-test-backfill',
    });
    template = Template.fromStack(stack);
  });

  it('creates the updater event source mapping disabled, at TRIM_HORIZON, with bisection, retries until the records are 22 h old, and a failure destination', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: STREAM_ARN,
      FunctionName: ref((w) => w.updaterFunction),
      ...UPDATER_STREAM_MAPPING,
      DestinationConfig: { OnFailure: { Destination: arnOf((w) => w.streamFailureQueue as Queue) } },
    });
  });

  it('feeds the worker one segment message at a time, reporting failed messages, with bounded concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arnOf((w) => w.segmentQueue),
      FunctionName: ref((w) => w.workerFunction),
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('keeps a segment message invisible for six times the worker timeout', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 6 * 15 * 60,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DDB2OS_SEGMENT_QUEUE_URL: Match.anyValue() }) },
      Timeout: 15 * 60,
    });
  });

  it('moves a segment message that failed three times to the dead-letter queue', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: arnOf((w) => w.segmentDeadLetterQueue), maxReceiveCount: 3 },
    });
  });

  it('refuses unencrypted transport to every queue', () => {
    const policies = template.findResources('AWS::SQS::QueuePolicy');
    expect(Object.keys(policies)).toHaveLength(3);
    for (const policy of Object.values(policies)) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  it('deploys the state machine from the definition file with logging of everything and X-Ray tracing', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'ddb2os-test-backfill',
      StateMachineType: 'STANDARD',
      DefinitionS3Location: Match.objectLike({ Key: Match.stringLikeRegexp('\\.json$') }),
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: true,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: Match.anyValue() } }],
      },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('substitutes every placeholder of the definition file, and nothing else', () => {
    const placeholders = [...readFileSync(DEFINITION_PATH, 'utf8').matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    expect(Object.keys(machine?.Properties.DefinitionSubstitutions).sort()).toEqual(
      [...new Set(placeholders)].sort(),
    );
  });

  it('substitutes the defaults the workflow input falls back to', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      DefinitionSubstitutions: Match.objectLike({
        IndexName: 'orders',
        MaxConcurrency: '10',
        RetentionBudgetHours: '20',
        WorkerMaxConcurrency: '10',
        HeartbeatSeconds: '300',
        SegmentTimeoutSeconds: '21600',
        TableName: 'orders',
        UpdaterMappingUuid: { Ref: Match.stringLikeRegexp('UpdaterFunctionDynamoDBEventSource') },
      }),
    });
  });

  it('lets the state machine pause and enable only the updater event source mapping', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.stateMachine.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['lambda:UpdateEventSourceMapping', 'lambda:GetEventSourceMapping'],
            Resource: updaterMappingArn,
          },
        ]),
      },
    });
  });

  it('lets the state machine describe the table, send to the segment queue and invoke plan, summarize, run-lock and resync, nothing wider', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.stateMachine.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'dynamodb:DescribeTable',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':table/orders'])] },
          },
          { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: arnOf((w) => w.segmentQueue) },
          {
            Effect: 'Allow',
            Action: 'lambda:InvokeFunction',
            Resource: [
              arnOf((w) => w.planFunction),
              arnOf((w) => w.summarizeFunction),
              arnOf((w) => w.runLockFunction),
              arnOf((w) => w.resyncFunction),
            ],
          },
        ]),
      },
    });
  });

  it('lets the state machine run, stop and redrive its own Distributed Map child executions', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.stateMachine.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'states:StartExecution',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':stateMachine:ddb2os-test-backfill'])] },
          },
          {
            Effect: 'Allow',
            Action: ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution'],
            Resource: { 'Fn::Join': ['', Match.arrayWith([':execution:ddb2os-test-backfill/*'])] },
          },
        ]),
      },
    });
  });

  it('lets the worker answer task tokens, and only POST (_bulk) to the one domain', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.workerFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          { Effect: 'Allow', Action: 'es:ESHttpPost', Resource: `${DOMAIN_ARN}/*` },
          {
            Effect: 'Allow',
            Action: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
            Resource: '*',
          },
        ]),
      },
    });
  });

  it('lets the updater describe the table (its key schema, per cold start) and read single items, not scan it', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.updaterFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
            Resource: STREAM_ARN,
          }),
          { Effect: 'Allow', Action: 'es:ESHttpPost', Resource: `${DOMAIN_ARN}/*` },
          Match.objectLike({ Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DescribeTable'] }),
        ]),
      },
    });
    const [policy] = Object.values(
      template.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [ref((w) => w.updaterFunction.role as never)] },
      }),
    );
    expect(JSON.stringify(policy)).not.toContain('dynamodb:Scan');
  });

  it('lets the plan function prepare indices on the domain (HEAD, PUT) and nothing more there', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.planFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          { Effect: 'Allow', Action: ['es:ESHttpHead', 'es:ESHttpPut'], Resource: `${DOMAIN_ARN}/*` },
        ]),
      },
    });
  });

  it('lets the summarize function read the progress table and restore indices (GET, PUT, POST)', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.summarizeFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost'],
            Resource: `${DOMAIN_ARN}/*`,
          },
          Match.objectLike({
            Action: 'dynamodb:Query',
            Resource: Match.arrayWith([arnOf((w) => w.progressTable)]),
          }),
        ]),
      },
    });
  });

  it('lets the worker read and write checkpoints one item at a time, not scan or delete them', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.workerFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
            Resource: Match.arrayWith([arnOf((w) => w.progressTable)]),
          }),
        ]),
      },
    });
  });

  it('gives each handler every environment variable it reads at start-up', () => {
    const environment = (pick: (w: BackfillWorkflow) => { role?: unknown }) => {
      const [fn] = Object.values(
        template.findResources('AWS::Lambda::Function', {
          Properties: { Role: arnOf((w) => pick(w).role as never) },
        }),
      );
      return environmentStandIns(fn?.Properties.Environment.Variables as Record<string, unknown>);
    };
    expect(readPlanConfig(environment((w) => w.planFunction))).toMatchObject({
      index: 'orders',
      endpoint: DOMAIN_ENDPOINT,
      signing: 'es',
    });
    expect(readWorkerConfig(environment((w) => w.workerFunction))).toMatchObject({
      endpoint: DOMAIN_ENDPOINT,
    });
    expect(readUpdaterConfig(environment((w) => w.updaterFunction))).toMatchObject({
      endpoint: DOMAIN_ENDPOINT,
    });
    expect(readSummarizeConfig(environment((w) => w.summarizeFunction))).toMatchObject({
      index: 'orders',
      endpoint: DOMAIN_ENDPOINT,
      signing: 'es',
    });
    expect(readRunLockConfig(environment((w) => w.runLockFunction))).toMatchObject({
      table: 'orders',
      index: 'orders',
    });
  });

  it("lets the run-lock function take the lock item, ask whether its holder still runs, and read the updater's state and iterator age", () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref((w) => w.runLockFunction.role as never)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
            Resource: [arnOf((w) => w.progressTable)],
          }),
          {
            Effect: 'Allow',
            Action: 'states:DescribeExecution',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':execution:ddb2os-test-backfill:*'])] },
          },
          {
            Effect: 'Allow',
            Action: 'lambda:GetEventSourceMapping',
            Resource: updaterMappingArn,
          },
          { Effect: 'Allow', Action: 'cloudwatch:GetMetricStatistics', Resource: '*' },
        ]),
      },
    });
  });

  it('keeps checkpoints in an on-demand progress table keyed by runId and segment, with point-in-time recovery', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [
          { AttributeName: 'runId', KeyType: 'HASH' },
          { AttributeName: 'segment', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'runId', AttributeType: 'S' },
          { AttributeName: 'segment', AttributeType: 'N' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      },
      DeletionPolicy: 'Retain',
    });
  });

  it('keeps plans, Map results and dead letters in a private, encrypted bucket that expires them', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'plans/', ExpirationInDays: 30 }),
          Match.objectLike({ Prefix: 'dead-letter/', ExpirationInDays: 90 }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('runs every function on Node.js 22, ARM64, with active tracing, JSON logs at INFO (no DEBUG reasons) and source maps', () => {
    // CDK's custom resource provider (in front of the deploy guard) brings its own code and runtime.
    const functions = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (fn) => !String(fn.Properties.Description).startsWith('AWS CDK resource provider framework'),
    );
    // plan, worker, updater, summarize, run-lock, resync, watchdog, deploy guard
    expect(functions).toHaveLength(8);
    for (const fn of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'INFO' },
        Environment: {
          Variables: expect.objectContaining({
            NODE_OPTIONS: '--enable-source-maps',
            POWERTOOLS_SERVICE_NAME: 'ddb2os',
          }),
        },
      });
    }
    // The eight functions', the state machine's and the provider's.
    template.resourceCountIs('AWS::Logs::LogGroup', 10);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('tells the worker and the updater where the domain, the index and the dead letters are', () => {
    for (const pick of [
      (w: BackfillWorkflow) => w.workerFunction,
      (w: BackfillWorkflow) => w.updaterFunction,
    ]) {
      const [fn] = Object.values(
        template.findResources('AWS::Lambda::Function', {
          Properties: { Role: arnOf((w) => pick(w).role as never) },
        }),
      );
      expect(fn?.Properties.Environment.Variables).toMatchObject({
        DDB2OS_TABLE_NAME: 'orders',
        DDB2OS_INDEX_NAME: 'orders',
        DDB2OS_OPENSEARCH_ENDPOINT: DOMAIN_ENDPOINT,
        DDB2OS_OPENSEARCH_SIGNING: 'es',
        DDB2OS_DEAD_LETTER_BUCKET: ref((w) => w.bucket),
      });
    }
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillWorkflow props', () => {
  const build = (props: Partial<BackfillWorkflowProps> = {}) => workflowBuilder(() => props);

  it('accepts an OpenSearch domain construct instead of an endpoint and ARN', () => {
    const { stack, table } = stackWithStreamTable();
    const domain = Domain.fromDomainEndpoint(stack, 'Domain', DOMAIN_ENDPOINT);
    new BackfillWorkflow(stack, 'Workflow', { table, index: 'orders', domain });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DDB2OS_OPENSEARCH_ENDPOINT: DOMAIN_ENDPOINT }) },
    });
  });

  it('rejects a table without a stream', () => {
    const stack = new Stack(testApp(), 'Test');
    const table = Table.fromTableName(stack, 'Orders', 'orders');
    expect(
      () =>
        new BackfillWorkflow(stack, 'Workflow', {
          table,
          index: 'orders',
          domainEndpoint: DOMAIN_ENDPOINT,
          domainArn: DOMAIN_ARN,
        }),
    ).toThrow(/has no stream.*tableStreamArn/s);
  });

  it('rejects a missing domain', () => {
    expect(build({ domainEndpoint: undefined })).toThrow(
      'give the OpenSearch domain: domain, or both domainEndpoint and domainArn',
    );
  });

  it('rejects a domain together with an endpoint', () => {
    const { stack, table } = stackWithStreamTable();
    const domain = Domain.fromDomainEndpoint(stack, 'Domain', DOMAIN_ENDPOINT);
    expect(
      () =>
        new BackfillWorkflow(stack, 'Workflow', {
          table,
          index: 'orders',
          domain,
          domainEndpoint: DOMAIN_ENDPOINT,
        }),
    ).toThrow('give either domain, or domainEndpoint and domainArn, not both');
  });

  it('rejects an endpoint that is not an https URL', () => {
    expect(build({ domainEndpoint: 'search-x.us-east-1.es.amazonaws.com' })).toThrow(
      /domainEndpoint must be the domain's https URL/,
    );
    expect(build({ domainEndpoint: 'http://search-x.us-east-1.es.amazonaws.com' })).toThrow(/https URL/);
  });

  it('rejects a domain ARN that is not one', () => {
    expect(build({ domainArn: 'arn:aws:es:us-east-1:123456789012:x' })).toThrow(
      /domainArn must be an OpenSearch domain ARN/,
    );
  });

  it.each([
    ['Orders', 'must be lowercase'],
    ['my orders', 'must not contain \\ / * ? " < > | , # : or spaces'],
    ['a,b#c', 'must not contain \\ / * ? " < > | , # : or spaces'],
    ['_orders', 'must not start with -, _ or +'],
    ['-orders', 'must not start with -, _ or +'],
    ['', 'must not be empty'],
  ])('rejects the index name %j: it %s', (index, problem) => {
    expect(build({ index })).toThrow(`is not a valid OpenSearch index name: it ${problem}`);
  });

  it('rejects a mapping whose index differs from the index', () => {
    expect(build({ mapping: { index: 'other' } })).toThrow(
      'mapping.index (other) differs from index (orders)',
    );
  });

  it('rejects a default maxConcurrency above the worker concurrency, which every start would be refused for', () => {
    expect(build({ maxConcurrency: 20, workerMaxConcurrency: 10 })).toThrow(
      'maxConcurrency (20) must be at most workerMaxConcurrency (10)',
    );
    expect(build({ maxConcurrency: 2_000 })).toThrow(
      'maxConcurrency (2000) must be at most workerMaxConcurrency (1000)',
    );
  });

  it.each([0, 1.5, 10_001])('rejects maxConcurrency %s', (maxConcurrency) => {
    expect(build({ maxConcurrency })).toThrow(
      `maxConcurrency must be a whole number from 1 to 10000 (got ${maxConcurrency})`,
    );
  });

  it('rejects a worker concurrency that SQS event sources do not allow', () => {
    expect(build({ workerMaxConcurrency: 1 })).toThrow(
      'workerMaxConcurrency must be a whole number from 2 to 1000',
    );
  });

  it('rejects a worker timeout beyond the Lambda maximum', () => {
    expect(build({ workerTimeout: Duration.minutes(16) })).toThrow(
      'workerTimeout must be from 1 minute to 15 minutes (got 16 minutes)',
    );
  });

  it('rejects a heartbeat that is not shorter than the segment timeout', () => {
    expect(build({ heartbeat: Duration.hours(1), segmentTimeout: Duration.hours(1) })).toThrow(
      'heartbeat (1 hour) must be shorter than segmentTimeout (1 hour)',
    );
  });

  it('rejects a heartbeat under 30 seconds', () => {
    expect(build({ heartbeat: Duration.seconds(10) })).toThrow('heartbeat must be from 30 seconds');
  });

  it('rejects a retention budget of 24 hours or more: the stream keeps changes for 24 hours', () => {
    expect(build({ retentionBudget: Duration.hours(24) })).toThrow(
      'retentionBudget (1 day) must be more than 0 and less than 24 hours, the DynamoDB stream retention',
    );
  });

  it('sets the updater max record age from its prop', () => {
    const workflow = build({ updaterMaxRecordAge: Duration.hours(12), retentionBudget: Duration.hours(6) })();
    Template.fromStack(Stack.of(workflow)).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: -1,
      MaximumRecordAgeInSeconds: 12 * 3600,
    });
  });

  it('rejects an updater max record age under 1 hour or over 24 hours', () => {
    expect(build({ updaterMaxRecordAge: Duration.minutes(30) })).toThrow(
      'BackfillWorkflow: updaterMaxRecordAge must be from 1 hour to 1 day (got 30 minutes).',
    );
    expect(build({ updaterMaxRecordAge: Duration.hours(25) })).toThrow(
      'BackfillWorkflow: updaterMaxRecordAge must be from 1 hour to 1 day (got 1 day 1 hour).',
    );
  });

  it('rejects a retention budget that is not less than the updater max record age', () => {
    expect(build({ retentionBudget: Duration.hours(12), updaterMaxRecordAge: Duration.hours(12) })).toThrow(
      'BackfillWorkflow: retentionBudget (12 hours) must be less than updaterMaxRecordAge (12 hours): after a ' +
        'backfill the updater resumes with changes as old as the backfill, and would give up on those older ' +
        'than updaterMaxRecordAge.',
    );
    expect(build({ retentionBudget: Duration.hours(23) })).toThrow(
      'retentionBudget (23 hours) must be less than updaterMaxRecordAge (22 hours)',
    );
  });

  it('rejects a bulk size above 100 MiB', () => {
    expect(build({ bulkMaxBytes: 200 * 1024 * 1024 })).toThrow(
      'bulkMaxBytes must be a whole number from 1 to 104857600',
    );
  });

  it('rejects a state machine name that Step Functions logging does not take', () => {
    expect(build({ stateMachineName: 'orders backfill' })).toThrow(
      'BackfillWorkflow: stateMachineName "orders backfill" is not a valid state machine name: use 1 to 80 ' +
        'letters, digits, - and _.',
    );
    expect(build({ stateMachineName: 'x'.repeat(81) })).toThrow('is not a valid state machine name');
  });

  const withKey = (stack: Stack) => ({ tableEncryptionKey: new Key(stack, 'Key') });

  it('rejects a key for a table of this app encrypted with an AWS owned key', () => {
    expect(workflowBuilder(withKey, ordersTable())).toThrow(
      'BackfillWorkflow: tableEncryptionKey is given, but the table Test/Orders is encrypted with an AWS owned ' +
        'key, which needs no grant; leave tableEncryptionKey out',
    );
  });

  it('rejects a key for a table of this app encrypted with an AWS managed key', () => {
    const table = (stack: Stack) =>
      new TableV2(stack, 'Orders', {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        dynamoStream: StreamViewType.NEW_IMAGE,
        encryption: TableEncryptionV2.awsManagedKey(),
      });
    expect(workflowBuilder(withKey, table)).toThrow(
      'the table Test/Orders is encrypted with an AWS managed key, which needs no grant',
    );
  });

  it("rejects a key other than the table's own customer managed key", () => {
    expect(workflowBuilder(withKey, ordersTable(TableEncryption.CUSTOMER_MANAGED))).toThrow(
      'BackfillWorkflow: tableEncryptionKey differs from the encryptionKey of the table Test/Orders; leave ' +
        "tableEncryptionKey out, the table's own key is used.",
    );
  });

  it('rejects addDomainAccessPolicy for a domain given as endpoint and ARN, or imported', () => {
    const message =
      'BackfillWorkflow: addDomainAccessPolicy needs domain to be a Domain construct of this app; an imported ' +
      "domain's policy is its owner's: allow the roles of domainAccessPolicyStatements() there instead.";
    expect(build({ addDomainAccessPolicy: true })).toThrow(message);
    const importedDomain = (stack: Stack) => ({
      domain: Domain.fromDomainEndpoint(stack, 'Domain', DOMAIN_ENDPOINT),
      domainEndpoint: undefined,
      domainArn: undefined,
      addDomainAccessPolicy: true,
    });
    expect(workflowBuilder(importedDomain)).toThrow(message);
  });

  it('rejects addDomainAccessPolicy for a domain in another stack, which would make the stacks depend on each other', () => {
    const app = testApp();
    const domain = new Domain(new Stack(app, 'Search'), 'Domain', { version: EngineVersion.OPENSEARCH_2_19 });
    const stack = new Stack(app, 'Sync');
    expect(
      () =>
        new BackfillWorkflow(stack, 'Workflow', {
          table: importedStreamTable(stack),
          domain,
          index: 'orders',
          addDomainAccessPolicy: true,
        }),
    ).toThrow(
      "BackfillWorkflow: addDomainAccessPolicy needs the domain in the workflow's stack (Sync), not in Search",
    );
  });

  it('passes the mapping, bulk size and segment size to the handlers that use them', () => {
    const { stack, table } = stackWithStreamTable();
    new BackfillWorkflow(stack, 'Workflow', {
      table,
      index: 'orders',
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      mapping: { routes: [{ prefix: 'order#', index: 'orders' }] },
      bulkMaxBytes: 1_000_000,
      targetSegmentBytes: 64 * 1024 * 1024,
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          DDB2OS_MAPPING: '{"routes":[{"prefix":"order#","index":"orders"}]}',
          DDB2OS_BULK_MAX_BYTES: '1000000',
        }),
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DDB2OS_TARGET_SEGMENT_BYTES: String(64 * 1024 * 1024) }) },
    });
    // Plan prepares and summarize restores the routed indices too, run-lock explains them when it
    // refuses an index, and resync makes a new index for each: all six functions read the mapping.
    const withMapping = template.findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: {
          Variables: Match.objectLike({
            DDB2OS_MAPPING: '{"routes":[{"prefix":"order#","index":"orders"}]}',
          }),
        },
      },
    });
    expect(Object.keys(withMapping)).toHaveLength(6);
  });
});

describe('BackfillWorkflow table encryption key', () => {
  /** The roles that the template lets use `key` (kms:Decrypt on its ARN), and those of the worker and the updater. */
  function decryptingRoles(
    workflow: BackfillWorkflow,
    key: IKey,
  ): { granted: Set<unknown>; expected: Set<unknown> } {
    const stack = Stack.of(workflow);
    const keyArn = JSON.stringify(stack.resolve(key.keyArn));
    const granted = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
      .filter((policy) =>
        (policy.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]).some(
          (statement) =>
            [statement.Action].flat().includes('kms:Decrypt') &&
            JSON.stringify(statement.Resource) === keyArn,
        ),
      )
      .flatMap((policy) => policy.Properties.Roles);
    const readers = [workflow.workerFunction, workflow.updaterFunction];
    return {
      granted: new Set(granted),
      expected: new Set(readers.map((fn) => stack.resolve(fn.role?.roleName))),
    };
  }

  it("grants kms:Decrypt on the table's customer managed key to the worker and the updater, and no other function", () => {
    const workflow = workflowBuilder(undefined, ordersTable(TableEncryption.CUSTOMER_MANAGED))();
    const table = Stack.of(workflow).node.findChild('Orders') as Table;
    const { granted, expected } = decryptingRoles(workflow, table.encryptionKey as IKey);
    expect(granted).toEqual(expected);
  });

  it('grants kms:Decrypt on the key given for an imported table to the worker and the updater', () => {
    let key: IKey | undefined;
    const workflow = workflowBuilder((stack) => {
      key = new Key(stack, 'TableKey');
      return { tableEncryptionKey: key };
    })();
    const { granted, expected } = decryptingRoles(workflow, key as IKey);
    expect(granted).toEqual(expected);
  });

  it('grants no key without one', () => {
    const workflow = workflowBuilder()();
    expect(JSON.stringify(Template.fromStack(Stack.of(workflow)).toJSON())).not.toContain('kms:');
  });
});

describe('BackfillWorkflow domain access policy', () => {
  function appWithDomain(addDomainAccessPolicy?: boolean): {
    stack: Stack;
    workflow: BackfillWorkflow;
    template: Template;
  } {
    const { stack, table } = stackWithStreamTable();
    const domain = new Domain(stack, 'Domain', { version: EngineVersion.OPENSEARCH_2_19 });
    const workflow = new BackfillWorkflow(stack, 'Workflow', {
      table,
      domain,
      index: 'orders',
      ...(addDomainAccessPolicy === undefined ? {} : { addDomainAccessPolicy }),
    });
    return { stack, workflow, template: Template.fromStack(stack) };
  }

  it("leaves the domain's access policy to its owner by default", () => {
    const { template } = appWithDomain();
    expect(template.findResources('Custom::OpenSearchAccessPolicy')).toEqual({});
    template.hasResourceProperties('AWS::OpenSearchService::Domain', { AccessPolicies: Match.absent() });
  });

  /** The access policy the custom resource sets, with references written `LogicalId.Attr`. */
  function accessPolicySet(template: Template): { Statement: Record<string, unknown>[] } {
    const [resource] = Object.values(template.findResources('Custom::OpenSearchAccessPolicy'));
    const [, parts] = (resource?.Properties.Create ?? { 'Fn::Join': ['', []] })['Fn::Join'] as [
      string,
      unknown[],
    ];
    const text = parts
      .map((part) => {
        if (typeof part === 'string') return part;
        const { Ref, 'Fn::GetAtt': getAtt } = part as { Ref?: string; 'Fn::GetAtt'?: string[] };
        return Ref ?? getAtt?.join('.');
      })
      .join('');
    return JSON.parse(JSON.parse(text).parameters.AccessPolicies);
  }

  it("adds each function's role with exactly its HTTP methods on the domain's indices when asked", () => {
    const { stack, workflow, template } = appWithDomain(true);
    const roleOf = (fn: HandlerFunction) =>
      `${stack.getLogicalId((fn.role as Role).node.defaultChild as never)}.Arn`;
    const domainArn = `${stack.getLogicalId(stack.node.findChild('Domain').node.defaultChild as never)}.Arn`;
    expect(accessPolicySet(template).Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { AWS: roleOf(workflow.planFunction) },
        Action: ['es:ESHttpHead', 'es:ESHttpPut'],
        Resource: `${domainArn}/*`,
      },
      {
        Effect: 'Allow',
        Principal: { AWS: roleOf(workflow.workerFunction) },
        Action: 'es:ESHttpPost',
        Resource: `${domainArn}/*`,
      },
      {
        Effect: 'Allow',
        Principal: { AWS: roleOf(workflow.updaterFunction) },
        Action: 'es:ESHttpPost',
        Resource: `${domainArn}/*`,
      },
      {
        Effect: 'Allow',
        Principal: { AWS: roleOf(workflow.summarizeFunction) },
        Action: ['es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost'],
        Resource: `${domainArn}/*`,
      },
      {
        Effect: 'Allow',
        Principal: { AWS: roleOf(workflow.resyncFunction) },
        Action: ['es:ESHttpHead', 'es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost', 'es:ESHttpDelete'],
        Resource: `${domainArn}/*`,
      },
    ]);
  });

  it("leaves no cdk-nag finding of CDK's access policy function unacknowledged", () => {
    const { stack } = appWithDomain(true);
    expect(unacknowledgedNagFindings(stack).filter((finding) => !finding.includes('Test/Domain/'))).toEqual(
      [],
    );
  });
});

describe('BackfillWorkflow indexConfig', () => {
  const INDEX_CONFIG = {
    settings: { index: { number_of_shards: 3 } },
    mappings: { properties: { sku: { type: 'keyword' } } },
  };

  function synth(indexConfig?: Record<string, unknown>): Template {
    const { stack, table } = stackWithStreamTable();
    new BackfillWorkflow(stack, 'Workflow', {
      table,
      index: 'orders',
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      ...(indexConfig ? { indexConfig } : {}),
    });
    return Template.fromStack(stack);
  }

  /** What the "Plan segments" state passes as indexConfig once CloudFormation substitutes the value. */
  function planInputIndexConfig(template: Template): unknown {
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    const value = machine?.Properties.DefinitionSubstitutions.IndexConfig as string;
    return indexDefinitionFromPlanInput(JSON.parse(`"${value}"`));
  }

  it('passes the definition to the plan step in the state machine definition, not in an environment variable', () => {
    const template = synth(INDEX_CONFIG);

    expect(planInputIndexConfig(template)).toEqual({
      source: "the deployment's indexConfig",
      settings: { number_of_shards: 3 },
      mappings: { properties: { sku: { type: 'keyword' } } },
    });
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    for (const fn of functions) {
      expect(JSON.stringify(fn.Properties.Environment ?? {})).not.toContain('sku');
    }
  });

  it('passes null without one, so the plan step uses the defaults', () => {
    expect(planInputIndexConfig(synth())).toBeUndefined();
  });

  it('takes an index template and grants the plan function nothing more on the domain', () => {
    const template = synth({ index_patterns: ['orders*'], template: INDEX_CONFIG });

    expect(planInputIndexConfig(template)).toMatchObject({ settings: { number_of_shards: 3 } });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: ['es:ESHttpHead', 'es:ESHttpPut'], Resource: `${DOMAIN_ARN}/*` }),
        ]),
      },
    });
  });

  it('rejects at synth a definition of an unknown shape, naming the prop and the field', () => {
    expect(() => synth({ settings: {}, mapping: {} })).toThrow(
      'BackfillWorkflow: indexConfig has unknown top-level field "mapping"',
    );
    expect(() => synth({ aliases: { search: {} } })).toThrow(
      'BackfillWorkflow: indexConfig: aliases are not applied',
    );
    expect(() => synth({ mappings: { dynamic_templates: 'x' } })).toThrow(
      'BackfillWorkflow: indexConfig: mappings.dynamic_templates must be an array',
    );
  });

  it('leaves no cdk-nag AwsSolutions or Serverless finding unacknowledged', () => {
    const { stack, table } = stackWithStreamTable();
    new BackfillWorkflow(stack, 'Workflow', {
      table,
      index: 'orders',
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      indexConfig: INDEX_CONFIG,
    });
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe('BackfillWorkflow bundling', () => {
  it('bundles each handler with the local esbuild (no Docker) into minified ESM with a source map', async () => {
    const directory = await synthInChildProcess();
    try {
      const assets = readdirSync(directory).filter((name) => name.startsWith('asset.'));
      const bundles = assets.filter((name) => existsSync(join(directory, name, 'index.mjs')));
      // plan, worker, updater, summarize, run-lock, resync, watchdog, deploy guard
      expect(bundles).toHaveLength(8);
      for (const bundle of bundles) {
        const code = readFileSync(join(directory, bundle, 'index.mjs'), 'utf8');
        expect(code).toContain('createRequire');
        expect(code).toMatch(/sourceMappingURL=index\.mjs\.map/);
        expect(existsSync(join(directory, bundle, 'index.mjs.map'))).toBe(true);
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
