import { ArnFormat, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IDomain } from 'aws-cdk-lib/aws-opensearchservice';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { BUCKET_PREFIXES } from '../pipeline/contract/bucket';
import { DEFINITION_PATH } from '../pipeline/contract/definition';
import { ENV } from '../pipeline/contract/env';
import {
  type IndexDefinition,
  indexDefinitionSubstitution,
  readIndexDefinition,
} from '../pipeline/index/index-definition';
import { HandlerFunction } from './handler-function';
import { acknowledge, wildcardResourceFinding } from './nag';
import { checkTransformModule, type TransformModule } from './transform-bundle';

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
} as const;

/** A function that calls OpenSearch, and the HTTP methods it needs there. */
export interface OpenSearchAccess {
  readonly function: HandlerFunction;
  readonly actions: readonly string[];
}

export interface BackfillWorkflowProps {
  /**
   * The DynamoDB table to backfill and follow. It must have a stream (NEW_IMAGE
   * or NEW_AND_OLD_IMAGES); for an imported table pass `tableStreamArn` to
   * `Table.fromTableAttributes`.
   */
  readonly table: ITable;
  /**
   * The OpenSearch Service domain to write to. Give either this or
   * `domainEndpoint` and `domainArn`.
   * @default - `domainEndpoint` and `domainArn`
   */
  readonly domain?: IDomain;
  /**
   * The domain endpoint, an `https://` URL. Only without `domain`.
   * @default - from `domain`
   */
  readonly domainEndpoint?: string;
  /**
   * The domain ARN (`arn:aws:es:region:account:domain/name`), for IAM. Only without `domain`.
   * @default - from `domain`
   */
  readonly domainArn?: string;
  /**
   * The OpenSearch index (or alias) that documents go to. Lowercase; none of
   * `\ / * ? " < > | , #` or spaces; not starting with `_`, `-` or `+`.
   */
  readonly index: string;
  /**
   * Mapping configuration (routes, aggregation; see docs/mapping.md), passed
   * to the worker and the updater as JSON in DDB2OS_MAPPING.
   * @default - one document per item in `index`
   */
  readonly mapping?: Record<string, unknown>;
  /**
   * Path of a JavaScript or TypeScript module whose default export (or export
   * named `transform`) is the mapping's transform hook (docs/mapping.md),
   * resolved against the working directory at synth. The module and what it
   * imports are bundled into the worker and the updater, the functions that
   * map items. Cannot be combined with `mapping.routes`, `unrouted` or `aggregate`.
   * @default - no transform: the built-in mapping
   */
  readonly transformModule?: string;
  /**
   * Your own index definition: the body of `PUT /<index>` (`settings`,
   * `mappings`) or an index template (its `template.settings` and
   * `template.mappings`), as parsed JSON. The plan step applies it when it
   * creates a missing index, over ddb2os's defaults (see docs/mapping.md,
   * "Your own index definition"); an index that exists is used as it is. It
   * travels in the state machine definition, not in an environment variable
   * (Lambda allows 4 KB of those in all). At most 128 KiB as compact JSON;
   * `aliases` are refused.
   * @default - ddb2os's index defaults
   */
  readonly indexConfig?: Record<string, unknown>;
  /**
   * Segments processed at the same time (the Map's MaxConcurrency), unless the
   * execution input says otherwise. 1 to 10,000.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * Most worker Lambdas running at once (the SQS event source's maximum
   * concurrency). 2 to 1,000. Keep it at least the Map's concurrency, or
   * segments wait in the queue and their heartbeats time out.
   * @default - maxConcurrency, at least 2
   */
  readonly workerMaxConcurrency?: number;
  /**
   * Timeout of one worker invocation. A segment that takes longer is handed on
   * to a new invocation. 1 to 15 minutes.
   * @default Duration.minutes(15)
   */
  readonly workerTimeout?: Duration;
  /**
   * How long a segment may go without a heartbeat from its worker before the
   * Map item fails (and is retried). At least 30 seconds, less than `segmentTimeout`.
   * @default Duration.minutes(5)
   */
  readonly heartbeat?: Duration;
  /**
   * How long one attempt at a segment may take in all.
   * @default Duration.hours(6)
   */
  readonly segmentTimeout?: Duration;
  /**
   * The longest a backfill may run and still enable the updater afterwards.
   * Must be less than the stream's 24-hour retention, with room to spare.
   * @default Duration.hours(23)
   */
  readonly retentionBudget?: Duration;
  /**
   * Table bytes per segment that the planner aims for (DDB2OS_TARGET_SEGMENT_BYTES).
   * @default - the planner's default (256 MiB)
   */
  readonly targetSegmentBytes?: number;
  /**
   * Upper bound of one bulk request body in bytes (DDB2OS_BULK_MAX_BYTES). At most 100 MiB;
   * small instance types accept only 10 MiB.
   * @default - the handlers' default (5 MiB)
   */
  readonly bulkMaxBytes?: number;
  /**
   * What happens to the progress table, the workflow bucket and the log groups
   * when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The state machine's name. It is fixed at synth time because the state
   * machine's own policy names it (a Distributed Map starts child executions of itself).
   * @default - derived from the construct path
   */
  readonly stateMachineName?: string;
}

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
  /** UUID of the updater's event source mapping, which the workflow pauses and enables. */
  readonly updaterMappingId: string;
  /** The functions that call OpenSearch, with their methods: allow exactly these in the domain's access policy. */
  readonly openSearchAccess: OpenSearchAccess[];

  constructor(scope: Construct, id: string, props: BackfillWorkflowProps) {
    super(scope, id);
    // Validate everything before any function is bundled: a bad prop fails fast.
    const settings = resolveSettings(props);
    const { table } = props;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

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
      environment: sink,
    });
    this.summarizeFunction = new HandlerFunction(this, 'SummarizeFunction', {
      handlerName: 'summarize',
      description: 'ddb2os: adds up the segment counts of a backfill run',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      logRemovalPolicy: removalPolicy,
      environment: { ...opensearchEnvironment, [ENV.PROGRESS_TABLE]: this.progressTable.tableName },
    });
    this.openSearchAccess = [
      { function: this.planFunction, actions: OPENSEARCH_ACTIONS.plan },
      { function: this.workerFunction, actions: OPENSEARCH_ACTIONS.worker },
      { function: this.updaterFunction, actions: OPENSEARCH_ACTIONS.updater },
      { function: this.summarizeFunction, actions: OPENSEARCH_ACTIONS.summarize },
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
      bisectBatchOnError: true,
      retryAttempts: 10,
      // A record can wait up to the retention budget while a backfill runs; the stream
      // trims at 24 h anyway, so a shorter age would only discard changes the updater needs.
      maxRecordAge: Duration.hours(24),
      reportBatchItemFailures: true,
      onFailure: new SqsDlq(this.streamFailureQueue),
    });
    this.updaterFunction.addEventSource(updaterSource);
    this.updaterMappingId = updaterSource.eventSourceMappingId;

    this.grantHandlers(props, settings.domainArn);

    const stateMachineName =
      props.stateMachineName ?? Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
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
        SegmentQueueUrl: this.segmentQueue.queueUrl,
        BucketName: this.bucket.bucketName,
        IndexConfig: indexDefinitionSubstitution(settings.indexConfig),
      },
      logs: { destination: stateMachineLogs, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.grantStateMachine(table, stateMachineName, updaterSource.eventSourceMappingArn);
    this.suppressNagFindings(settings.domainArn, stateMachineName);
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
    this.updaterFunction.addToRolePolicy(putDeadLetters);

    this.progressTable.grant(this.summarizeFunction, 'dynamodb:Query');
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
        resources: [this.planFunction.functionArn, this.summarizeFunction.functionArn],
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

  /** Each acknowledgement names the cdk-nag finding and says why it stays. */
  private suppressNagFindings(domainArn: string, stateMachineName: string): void {
    const functions = [this.planFunction, this.workerFunction, this.updaterFunction, this.summarizeFunction];
    for (const fn of functions) {
      acknowledge(
        fn,
        ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion'],
        'Node.js 22 is the runtime the handlers are built (esbuild target node22) and tested for; ' +
          'moving to a newer runtime is a deliberate change, not a drift.',
      );
      acknowledge(
        fn,
        ['Serverless-LambdaDLQ'],
        'No function is invoked asynchronously: plan and summarize are invoked synchronously by Step ' +
          'Functions, the worker by an SQS event source (its queue has a dead-letter queue), the updater ' +
          'by a stream event source (with an on-failure destination).',
      );
      acknowledge(
        fn.role as Role,
        ['AwsSolutions-IAM5[Resource::*]'],
        'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.' +
          (fn === this.workerFunction
            ? ' states:SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat take a task token, not a resource, ' +
              'so IAM only accepts "*" for them.'
            : '') +
          (fn === this.updaterFunction
            ? ' dynamodb:ListStreams (granted by the stream event source) supports no resource-level permissions.'
            : ''),
      );
    }
    const opensearchIndexes = wildcardResourceFinding(this, `${domainArn}/*`);
    const deadLetters = wildcardResourceFinding(
      this,
      this.bucket.arnForObjects(`${BUCKET_PREFIXES.deadLetters}*`),
    );
    const plans = wildcardResourceFinding(this, this.bucket.arnForObjects(`${BUCKET_PREFIXES.plans}*`));
    const mapResults = wildcardResourceFinding(
      this,
      this.bucket.arnForObjects(`${BUCKET_PREFIXES.mapResults}*`),
    );
    for (const { function: fn } of this.openSearchAccess) {
      acknowledge(
        fn.role as Role,
        [opensearchIndexes],
        'Documents go to the configured index, to the indexes the mapping routes to and to the index a ' +
          'workflow input names, which are data, not infrastructure, and _bulk is a domain-level path: access is ' +
          'limited to the HTTP methods this function uses (OPENSEARCH_ACTIONS) on this one domain.',
      );
    }
    for (const fn of [this.workerFunction, this.updaterFunction]) {
      acknowledge(
        fn.role as Role,
        [deadLetters],
        'Dead-letter objects get one new key per batch (runId/segment/timestamp); PutObject only, only under dead-letter/.',
      );
    }
    acknowledge(
      this.planFunction.role as Role,
      [plans],
      'The planner writes one segment list per run under plans/; PutObject only, only under that prefix.',
    );
    acknowledge(
      this.stateMachine.role,
      [
        'AwsSolutions-IAM5[Resource::*]',
        plans,
        mapResults,
        wildcardResourceFinding(
          this,
          Stack.of(this).formatArn({
            service: 'states',
            resource: 'execution',
            resourceName: `${stateMachineName}/*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ),
      ],
      'Resource "*": CloudWatch Logs delivery and X-Ray APIs support no resource-level permissions. ' +
        'plans/*: the Map item reader reads the list the planner wrote for this run. map-results/*: the Map ' +
        'result writer creates one object set per Map Run. execution:<name>/*: the Distributed Map child ' +
        'executions of this state machine get generated names; they are described, stopped and redriven.',
    );
    acknowledge(
      this.bucket,
      ['AwsSolutions-S1'],
      'The bucket holds transient workflow objects (segment lists, Map results, dead letters) that only this ' +
        "stack's roles write, all expiring by lifecycle rules; CloudTrail data events can audit object access " +
        'where required, without a second bucket for access logs.',
    );
    acknowledge(
      this.streamFailureQueue,
      ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy'],
      "This queue is itself a dead-letter destination: the updater's stream event source sends the batches it " +
        'gave up on here. Nothing consumes it automatically, so it needs no dead-letter queue of its own.',
    );
    acknowledge(
      this.segmentDeadLetterQueue,
      ['Serverless-SQSRedrivePolicy'],
      'This is the dead-letter queue of the segment queue; a dead-letter queue of a dead-letter queue would add nothing.',
    );
    acknowledge(
      this.workerFunction,
      ['Serverless-LambdaEventSourceMappingDestination'],
      'SQS event source mappings do not support on-failure destinations; the segment queue sends messages ' +
        'that fail 3 times to its dead-letter queue instead.',
    );
  }
}

interface ResolvedSettings {
  domainEndpoint: string;
  domainArn: string;
  maxConcurrency: number;
  workerMaxConcurrency: number;
  workerTimeout: Duration;
  heartbeat: Duration;
  segmentTimeout: Duration;
  retentionBudget: Duration;
  transformModule?: TransformModule;
  indexConfig?: IndexDefinition;
}

/** Checks the props and fills in the defaults; every message names the prop and what it must be. */
function resolveSettings(props: BackfillWorkflowProps): ResolvedSettings {
  if (!props.table.tableStreamArn) {
    throw new Error(
      `BackfillWorkflow: the table ${props.table.node.path} has no stream, and the updater follows the stream. ` +
        'Enable a stream (NEW_AND_OLD_IMAGES or NEW_IMAGE) on the table; for an imported table, ' +
        'pass its stream ARN as tableStreamArn to Table.fromTableAttributes.',
    );
  }
  const { domainEndpoint, domainArn } = resolveDomain(props);
  validateIndexName(props.index);
  const mappingIndex = props.mapping?.index;
  if (mappingIndex !== undefined && mappingIndex !== props.index) {
    throw new Error(
      `BackfillWorkflow: mapping.index (${String(mappingIndex)}) differs from index (${props.index}); ` +
        'set the index once, with the index prop.',
    );
  }
  const maxConcurrency = props.maxConcurrency ?? 10;
  requireInteger('maxConcurrency', maxConcurrency, 1, 10_000);
  const workerMaxConcurrency = props.workerMaxConcurrency ?? Math.min(Math.max(maxConcurrency, 2), 1000);
  requireInteger('workerMaxConcurrency', workerMaxConcurrency, 2, 1000);

  const workerTimeout = props.workerTimeout ?? Duration.minutes(15);
  requireDuration('workerTimeout', workerTimeout, Duration.minutes(1), Duration.minutes(15));
  const segmentTimeout = props.segmentTimeout ?? Duration.hours(6);
  const heartbeat = props.heartbeat ?? Duration.minutes(5);
  requireDuration('segmentTimeout', segmentTimeout, Duration.minutes(1), Duration.days(7));
  requireDuration('heartbeat', heartbeat, Duration.seconds(30), segmentTimeout);
  if (heartbeat.toSeconds() >= segmentTimeout.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: heartbeat (${heartbeat.toHumanString()}) must be shorter than segmentTimeout ` +
        `(${segmentTimeout.toHumanString()}).`,
    );
  }
  const retentionBudget = props.retentionBudget ?? Duration.hours(23);
  if (retentionBudget.toSeconds() <= 0 || retentionBudget.toSeconds() >= Duration.hours(24).toSeconds()) {
    throw new Error(
      `BackfillWorkflow: retentionBudget (${retentionBudget.toHumanString()}) must be more than 0 and ` +
        'less than 24 hours, the DynamoDB stream retention: the updater can only catch up on changes ' +
        'that are still in the stream.',
    );
  }
  if (props.targetSegmentBytes !== undefined) {
    requireInteger('targetSegmentBytes', props.targetSegmentBytes, 1, Number.MAX_SAFE_INTEGER);
  }
  if (props.bulkMaxBytes !== undefined) {
    requireInteger('bulkMaxBytes', props.bulkMaxBytes, 1, 100 * 1024 * 1024);
  }
  let indexConfig: IndexDefinition | undefined;
  if (props.indexConfig !== undefined) {
    try {
      // The plan step names it so in a refusal; the synth messages name the prop.
      indexConfig = {
        ...readIndexDefinition(props.indexConfig, 'indexConfig'),
        source: "the deployment's indexConfig",
      };
    } catch (error) {
      throw new Error(`BackfillWorkflow: ${(error as Error).message}.`, { cause: error });
    }
  }
  return {
    indexConfig,
    domainEndpoint,
    domainArn,
    transformModule: resolveTransformModule(props),
    maxConcurrency,
    workerMaxConcurrency,
    workerTimeout,
    heartbeat,
    segmentTimeout,
    retentionBudget,
  };
}

/**
 * The transform hook reaches the functions only as a bundled module: a function
 * in `mapping` would vanish in the JSON of DDB2OS_MAPPING, and a path in it
 * would name a file the deployment package does not hold.
 */
function resolveTransformModule(props: BackfillWorkflowProps): TransformModule | undefined {
  for (const field of ['transform', 'transformModule']) {
    if (props.mapping?.[field] !== undefined) {
      throw new Error(
        `BackfillWorkflow: mapping.${field} cannot reach the deployed functions; give the module's path as ` +
          'the transformModule prop (-c transformModule=PATH), which bundles it into them.',
      );
    }
  }
  if (props.transformModule === undefined) return undefined;
  return checkTransformModule(props.transformModule);
}

function resolveDomain(props: BackfillWorkflowProps): { domainEndpoint: string; domainArn: string } {
  if (props.domain) {
    if (props.domainEndpoint !== undefined || props.domainArn !== undefined) {
      throw new Error('BackfillWorkflow: give either domain, or domainEndpoint and domainArn, not both.');
    }
    return { domainEndpoint: `https://${props.domain.domainEndpoint}`, domainArn: props.domain.domainArn };
  }
  const { domainEndpoint, domainArn } = props;
  if (domainEndpoint === undefined || domainArn === undefined) {
    throw new Error(
      'BackfillWorkflow: give the OpenSearch domain: domain, or both domainEndpoint and domainArn.',
    );
  }
  if (!Token.isUnresolved(domainEndpoint)) {
    let url: URL | undefined;
    try {
      url = new URL(domainEndpoint);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || url.pathname !== '/' || url.search !== '') {
      throw new Error(
        `BackfillWorkflow: domainEndpoint must be the domain's https URL, like ` +
          `https://search-name-abc123.us-east-1.es.amazonaws.com (got ${domainEndpoint}).`,
      );
    }
  }
  if (
    !Token.isUnresolved(domainArn) &&
    !/^arn:aws[a-z-]*:es:[a-z0-9-]+:\d{12}:domain\/[a-z][a-z0-9-]*$/.test(domainArn)
  ) {
    throw new Error(
      `BackfillWorkflow: domainArn must be an OpenSearch domain ARN, like ` +
        `arn:aws:es:us-east-1:123456789012:domain/name (got ${domainArn}).`,
    );
  }
  return { domainEndpoint: domainEndpoint.replace(/\/$/, ''), domainArn };
}

/** OpenSearch index naming rules, so a bad name fails at synth rather than at the first bulk request. */
function validateIndexName(index: string): void {
  if (Token.isUnresolved(index)) return;
  const problems: string[] = [];
  if (index.length === 0) problems.push('is empty');
  if (Buffer.byteLength(index, 'utf8') > 255) problems.push('is longer than 255 bytes');
  if (index !== index.toLowerCase()) problems.push('has uppercase letters');
  const forbidden = [...new Set(index.match(/[\\/*?"<>|, #:]/g) ?? [])];
  if (forbidden.length > 0) problems.push(`contains ${forbidden.map((c) => `'${c}'`).join(' ')}`);
  if (/^[_\-+]/.test(index)) problems.push("starts with '_', '-' or '+'");
  if (index === '.' || index === '..') problems.push("is '.' or '..'");
  if (problems.length > 0) {
    throw new Error(
      `BackfillWorkflow: index "${index}" is not a valid OpenSearch index name: it ${problems.join(', ')}. ` +
        'Use lowercase letters, digits and - _ . (not first).',
    );
  }
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`BackfillWorkflow: ${name} must be a whole number from ${min} to ${max} (got ${value}).`);
  }
}

function requireDuration(name: string, value: Duration, min: Duration, max: Duration): void {
  const seconds = value.toSeconds();
  if (seconds < min.toSeconds() || seconds > max.toSeconds()) {
    throw new Error(
      `BackfillWorkflow: ${name} must be from ${min.toHumanString()} to ${max.toHumanString()} ` +
        `(got ${value.toHumanString()}).`,
    );
  }
}
