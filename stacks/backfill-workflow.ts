import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { BUCKET_PREFIXES } from '../pipeline/contract/bucket';
import { DEFINITION_PATH } from '../pipeline/contract/definition';
import { ENV } from '../pipeline/contract/env';
import { indexDefinitionSubstitution } from '../pipeline/index/index-definition';
import { BackfillAlarms } from './backfill-alarms';
import { type BackfillWorkflowProps, resolveWorkflowSettings } from './backfill-workflow-props';
import { HandlerFunction } from './handler-function';
import { acknowledgeWatchdogFindings, acknowledgeWorkflowFindings } from './nag-acknowledgements';
import { createResyncFunction } from './resync-function';
import { UpdaterWatchdog } from './updater-watchdog';

/**
 * The OpenSearch HTTP methods (IAM actions on the domain) each function uses,
 * and no other: the domain's resource policy and the roles grant exactly these.
 */
export const OPENSEARCH_ACTIONS = {
  /** Prepares the target indices: HEAD /index (exists?), PUT /index (create with bulk-load settings). */
  plan: ['es:ESHttpHead', 'es:ESHttpPut'],
  /** Bulk create: POST /_bulk. */
  worker: ['es:ESHttpPost'],
  /** Bulk index and delete: POST /_bulk. */
  updater: ['es:ESHttpPost'],
  /** Restores the indices: GET /index/_mapping, PUT /index/_settings and /_mapping, POST /index/_refresh. */
  summarize: ['es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost'],
  /**
   * A resync: HEAD and PUT /index (create the new ones), GET /_alias and /index/_mapping, PUT
   * /index/_settings, POST /_aliases, /index/_refresh, _search, _count and _bulk (tombstones), DELETE /index (the old ones).
   */
  resync: ['es:ESHttpHead', 'es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpPost', 'es:ESHttpDelete'],
} as const;

/** A function that calls OpenSearch, and the HTTP methods it needs there. */
export interface OpenSearchAccess {
  readonly function: HandlerFunction;
  readonly actions: readonly string[];
}

export type { BackfillWorkflowProps } from './backfill-workflow-props';

/**
 * Everything a backfill runs on, and the stream updater: the Step Functions
 * workflow (from statemachines/backfill.asl.json), the segment queue and
 * worker, the updater with its (disabled) event source mapping, the progress
 * table and the workflow bucket. No business logic lives here.
 */
export class BackfillWorkflow extends Construct {
  readonly stateMachine: StateMachine;
  readonly segmentQueue: Queue;
  readonly segmentDeadLetterQueue: Queue;
  /** Stream batches that the updater gave up on (the event source's on-failure destination). */
  readonly streamFailureQueue: Queue;
  readonly progressTable: Table;
  /** Plans, Map results and dead letters. */
  readonly bucket: Bucket;
  readonly planFunction: HandlerFunction;
  readonly workerFunction: HandlerFunction;
  readonly updaterFunction: HandlerFunction;
  readonly summarizeFunction: HandlerFunction;
  /** "Validate and lock" and "Release lock": the input check, the table's run lock and the retention clock. */
  readonly runLockFunction: HandlerFunction;
  /** The steps of a resync (input `{"mode": "resync"}`): new indices, resync state, tombstones, alias swap. */
  readonly resyncFunction: HandlerFunction;
  /** UUID of the updater's event source mapping, which the workflow pauses and enables. */
  readonly updaterMappingId: string;
  /** The functions that call OpenSearch, with their methods: allow exactly these in the domain's access policy. */
  readonly openSearchAccess: OpenSearchAccess[];
  /** Checks every 5 minutes that the updater runs outside a backfill; resumes it after a deploy paused it. */
  readonly watchdog: UpdaterWatchdog;
  /** Every alarm, with the `alarmTopic` as its action. */
  readonly alarms: BackfillAlarms;

  constructor(scope: Construct, id: string, props: BackfillWorkflowProps) {
    super(scope, id);
    // Validate everything before any function is bundled: a bad prop fails fast.
    const settings = resolveWorkflowSettings(this, props);
    const { table } = props;
    const { removalPolicy, stateMachineName } = settings;

    this.progressTable = new Table(this, 'ProgressTable', {
      partitionKey: { name: 'runId', type: AttributeType.STRING },
      sortKey: { name: 'segment', type: AttributeType.NUMBER },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
    });

    this.bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
      lifecycleRules: [
        { prefix: BUCKET_PREFIXES.plans, expiration: Duration.days(30) },
        { prefix: BUCKET_PREFIXES.mapResults, expiration: Duration.days(30) },
        { prefix: BUCKET_PREFIXES.deadLetters, expiration: Duration.days(90) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    this.segmentDeadLetterQueue = new Queue(this, 'SegmentDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.segmentQueue = new Queue(this, 'SegmentQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS recommends six times the function timeout for an SQS event source.
      visibilityTimeout: Duration.seconds(settings.workerTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.segmentDeadLetterQueue, maxReceiveCount: 3 },
    });
    this.streamFailureQueue = new Queue(this, 'StreamFailureQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    // Every function that talks to OpenSearch: where it is, the default index and the mapping's routes.
    const mapping = settings.transformModule
      ? { ...props.mapping, transformModule: settings.transformModule.source }
      : props.mapping;
    const opensearchEnvironment = {
      [ENV.INDEX_NAME]: props.index,
      [ENV.OPENSEARCH_ENDPOINT]: settings.domainEndpoint,
      [ENV.OPENSEARCH_SIGNING]: 'es',
      ...(mapping ? { [ENV.MAPPING]: JSON.stringify(mapping) } : {}),
    };
    const sink = {
      ...opensearchEnvironment,
      [ENV.TABLE_NAME]: table.tableName,
      [ENV.DEAD_LETTER_BUCKET]: this.bucket.bucketName,
      ...(props.bulkMaxBytes ? { [ENV.BULK_MAX_BYTES]: String(props.bulkMaxBytes) } : {}),
    };

    this.planFunction = new HandlerFunction(this, 'PlanFunction', {
      handlerName: 'plan',
      description: 'ddb2os: plans the backfill segments of a table',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      logRemovalPolicy: removalPolicy,
      environment: {
        ...opensearchEnvironment,
        [ENV.TABLE_NAME]: table.tableName,
        [ENV.PLAN_BUCKET]: this.bucket.bucketName,
        ...(props.targetSegmentBytes ? { [ENV.TARGET_SEGMENT_BYTES]: String(props.targetSegmentBytes) } : {}),
      },
    });
    this.workerFunction = new HandlerFunction(this, 'WorkerFunction', {
      handlerName: 'worker',
      description: 'ddb2os: scans one table segment into OpenSearch',
      transformModule: settings.transformModule,
      timeout: settings.workerTimeout,
      memorySize: 1024,
      logRemovalPolicy: removalPolicy,
      environment: {
        ...sink,
        [ENV.PROGRESS_TABLE]: this.progressTable.tableName,
        [ENV.SEGMENT_QUEUE_URL]: this.segmentQueue.queueUrl,
      },
    });
    this.updaterFunction = new HandlerFunction(this, 'UpdaterFunction', {
      handlerName: 'updater',
      description: 'ddb2os: applies DynamoDB stream changes to OpenSearch',
      transformModule: settings.transformModule,
      timeout: Duration.minutes(5),
      memorySize: 512,
      logRemovalPolicy: removalPolicy,
      // The progress table holds the resync state, which the updater reads before each batch.
      environment: { ...sink, [ENV.PROGRESS_TABLE]: this.progressTable.tableName },
    });
    this.summarizeFunction = new HandlerFunction(this, 'SummarizeFunction', {
      handlerName: 'summarize',
      description: 'ddb2os: adds up the segment counts of a backfill run',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      logRemovalPolicy: removalPolicy,
      environment: { ...opensearchEnvironment, [ENV.PROGRESS_TABLE]: this.progressTable.tableName },
    });
    this.resyncFunction = createResyncFunction(this, 'ResyncFunction', {
      tableName: table.tableName,
      progressTable: this.progressTable,
      opensearchEnvironment,
      logRemovalPolicy: removalPolicy,
    });
    this.openSearchAccess = [
      { function: this.planFunction, actions: OPENSEARCH_ACTIONS.plan },
      { function: this.workerFunction, actions: OPENSEARCH_ACTIONS.worker },
      { function: this.updaterFunction, actions: OPENSEARCH_ACTIONS.updater },
      { function: this.summarizeFunction, actions: OPENSEARCH_ACTIONS.summarize },
      { function: this.resyncFunction, actions: OPENSEARCH_ACTIONS.resync },
    ];

    this.workerFunction.addEventSource(
      new SqsEventSource(this.segmentQueue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: settings.workerMaxConcurrency,
      }),
    );
    const updaterSource = new DynamoEventSource(table, {
      // The workflow enables the mapping after the first backfill; from then on the
      // updater replays the stream from the oldest record it has not applied.
      enabled: false,
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      // A poison record is isolated and dead-lettered by the updater's own code; bisection is
      // Lambda's second line, for a batch that fails as a whole (the function crashes).
      bisectBatchOnError: true,
      // Retry until OpenSearch answers or the records are too old: a few failed retries must never
      // skip changes (-1 is CloudFormation's "infinite"; maxRecordAge ends it).
      retryAttempts: -1,
      // Short of the stream's 24 h, so the on-failure record reaches the queue while the stream
      // still holds the records and `ddb2os replay` can re-read them.
      maxRecordAge: settings.updaterMaxRecordAge,
      reportBatchItemFailures: true,
      onFailure: new SqsDlq(this.streamFailureQueue),
    });
    this.updaterFunction.addEventSource(updaterSource);
    this.updaterMappingId = updaterSource.eventSourceMappingId;
    this.runLockFunction = new HandlerFunction(this, 'RunLockFunction', {
      handlerName: 'run-lock',
      description:
        "ddb2os: validates a backfill's input, holds the table's run lock, measures the updater's backlog",
      timeout: Duration.minutes(1),
      memorySize: 512,
      logRemovalPolicy: removalPolicy,
      environment: {
        [ENV.TABLE_NAME]: table.tableName,
        [ENV.INDEX_NAME]: props.index,
        ...(mapping ? { [ENV.MAPPING]: JSON.stringify(mapping) } : {}),
        [ENV.PROGRESS_TABLE]: this.progressTable.tableName,
        [ENV.UPDATER_MAPPING_UUID]: this.updaterMappingId,
        [ENV.UPDATER_FUNCTION_NAME]: this.updaterFunction.functionName,
      },
    });

    this.grantHandlers(props, settings.domainArn);
    this.grantRunLock(stateMachineName, updaterSource.eventSourceMappingArn);

    const stateMachineLogs = new LogGroup(this, 'StateMachineLogs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromFile(DEFINITION_PATH),
      definitionSubstitutions: {
        IndexName: props.index,
        MaxConcurrency: String(settings.maxConcurrency),
        RetentionBudgetHours: String(settings.retentionBudget.toHours({ integral: false })),
        HeartbeatSeconds: String(settings.heartbeat.toSeconds()),
        SegmentTimeoutSeconds: String(settings.segmentTimeout.toSeconds()),
        UpdaterMappingUuid: this.updaterMappingId,
        TableName: table.tableName,
        PlanFunctionArn: this.planFunction.functionArn,
        SummarizeFunctionArn: this.summarizeFunction.functionArn,
        RunLockFunctionArn: this.runLockFunction.functionArn,
        WorkerMaxConcurrency: String(settings.workerMaxConcurrency),
        SegmentQueueUrl: this.segmentQueue.queueUrl,
        BucketName: this.bucket.bucketName,
        IndexConfig: indexDefinitionSubstitution(settings.indexConfig),
        ResyncFunctionArn: this.resyncFunction.functionArn,
        // "Wait for resync writers": no updater batch that read FILLING, and no worker still creating, outlives it.
        ResyncDrainSeconds: String(
          Math.max(
            (this.updaterFunction.timeout ?? Duration.minutes(1)).toSeconds(),
            settings.workerTimeout.toSeconds(),
          ),
        ),
      },
      logs: { destination: stateMachineLogs, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.grantStateMachine(table, stateMachineName, updaterSource.eventSourceMappingArn);
    this.watchdog = new UpdaterWatchdog(this, 'UpdaterWatchdog', {
      table,
      updaterFunction: this.updaterFunction,
      progressTable: this.progressTable,
      stateMachineName,
      removalPolicy,
    });
    acknowledgeWorkflowFindings(this, settings.domainArn, stateMachineName);
    acknowledgeWatchdogFindings(this.watchdog, stateMachineName);
    this.alarms = new BackfillAlarms(this, 'Alarms', {
      workflow: this,
      watchdog: this.watchdog,
      iteratorAgeThreshold: settings.iteratorAgeAlarmThreshold,
      alarmTopic: props.alarmTopic,
    });
  }

  private grantHandlers(props: BackfillWorkflowProps, domainArn: string): void {
    const { table } = props;
    for (const access of this.openSearchAccess) {
      access.function.addToRolePolicy(
        new PolicyStatement({ actions: [...access.actions], resources: [`${domainArn}/*`] }),
      );
    }
    const putDeadLetters = new PolicyStatement({
      actions: ['s3:PutObject'],
      resources: [this.bucket.arnForObjects(`${BUCKET_PREFIXES.deadLetters}*`)],
    });

    this.planFunction.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${BUCKET_PREFIXES.plans}*`)],
      }),
    );

    table.grant(this.workerFunction, 'dynamodb:Scan', 'dynamodb:DescribeTable');
    // Checkpoints: read one (claim) and write it conditionally (claim, save, fail); nothing else.
    this.progressTable.grant(this.workerFunction, 'dynamodb:GetItem', 'dynamodb:PutItem');
    this.workerFunction.addToRolePolicy(putDeadLetters);
    this.workerFunction.addToRolePolicy(
      new PolicyStatement({
        // Continuations: the worker hands the rest of a segment on through its own queue.
        actions: ['sqs:SendMessage'],
        resources: [this.segmentQueue.queueArn],
      }),
    );
    this.workerFunction.addToRolePolicy(
      new PolicyStatement({
        // Task-token APIs take no resource: IAM accepts only '*' for them.
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
        resources: ['*'],
      }),
    );

    // DescribeTable: the key schema, once per cold start; GetItem/Query: current items for
    // KEYS_ONLY streams and aggregated partitions.
    table.grant(this.updaterFunction, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DescribeTable');
    // The table's resync state, read before each batch.
    this.progressTable.grant(this.updaterFunction, 'dynamodb:GetItem');
    this.updaterFunction.addToRolePolicy(putDeadLetters);

    this.progressTable.grant(this.summarizeFunction, 'dynamodb:Query');
  }

  private grantRunLock(stateMachineName: string, updaterMappingArn: string): void {
    // The lock item: read it (consistently) and write it conditionally.
    this.progressTable.grant(this.runLockFunction, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    const statements = [
      // Is the lock's holder still RUNNING? Only this state machine's executions hold it.
      new PolicyStatement({
        actions: ['states:DescribeExecution'],
        resources: [
          Stack.of(this).formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `${stateMachineName}:*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
      new PolicyStatement({ actions: ['lambda:GetEventSourceMapping'], resources: [updaterMappingArn] }),
      // The updater's IteratorAge; CloudWatch metric reads support no resource-level permissions.
      new PolicyStatement({ actions: ['cloudwatch:GetMetricStatistics'], resources: ['*'] }),
    ];
    for (const statement of statements) this.runLockFunction.addToRolePolicy(statement);
  }

  private grantStateMachine(table: ITable, stateMachineName: string, updaterMappingArn: string): void {
    const stack = Stack.of(this);
    const statements = [
      new PolicyStatement({
        actions: ['lambda:UpdateEventSourceMapping', 'lambda:GetEventSourceMapping'],
        resources: [updaterMappingArn],
      }),
      new PolicyStatement({ actions: ['dynamodb:DescribeTable'], resources: [table.tableArn] }),
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.segmentQueue.queueArn] }),
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [
          this.planFunction.functionArn,
          this.summarizeFunction.functionArn,
          this.runLockFunction.functionArn,
          this.resyncFunction.functionArn,
        ],
      }),
      // A Distributed Map runs its items as child executions of this state machine.
      new PolicyStatement({
        actions: ['states:StartExecution'],
        resources: [
          stack.formatArn({
            service: 'states',
            resource: 'stateMachine',
            resourceName: stateMachineName,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
      new PolicyStatement({
        actions: ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution'],
        resources: [
          stack.formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `${stateMachineName}/*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
      new PolicyStatement({
        // The item reader reads the planner's list; the result writer writes (multipart) results.
        actions: ['s3:GetObject'],
        resources: [
          this.bucket.arnForObjects(`${BUCKET_PREFIXES.plans}*`),
          this.bucket.arnForObjects(`${BUCKET_PREFIXES.mapResults}*`),
        ],
      }),
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects(`${BUCKET_PREFIXES.mapResults}*`)],
      }),
    ];
    for (const statement of statements) this.stateMachine.addToRolePolicy(statement);
  }
}
