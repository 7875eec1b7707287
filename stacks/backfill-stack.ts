import { createHash } from 'node:crypto';
import { ArnFormat, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import {
  ApproximateCreationDateTimePrecision,
  AttributeType,
  BillingMode,
  StreamViewType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { EbsDeviceVolumeType } from 'aws-cdk-lib/aws-ec2';
import { type IRole, PolicyDocument } from 'aws-cdk-lib/aws-iam';
import { Stream, StreamEncryption, StreamMode } from 'aws-cdk-lib/aws-kinesis';
import { type CfnDomain, Domain, EngineVersion, TLSSecurityPolicy } from 'aws-cdk-lib/aws-opensearchservice';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { BUCKET_PREFIXES } from '../pipeline/contract/bucket';
import { BackfillDashboard } from './backfill-dashboard';
import { readExistingResources, readStackSettings } from './backfill-stack-context';
import { BackfillWorkflow, type BackfillWorkflowProps } from './backfill-workflow';
import type { ChangeSourceKind } from './change-source';
import { changeSourceProps } from './change-source-context';
import { DemoFanOut } from './demo-fan-out';
import { acknowledgeDemoDomainFindings, acknowledgeDemoFanOutFindings } from './nag-acknowledgements';

/** Workflow settings a stack passes through; table, domain, index and mapping come from the stack props or context. */
export type BackfillWorkflowSettings = Omit<
  BackfillWorkflowProps,
  | 'table'
  | 'domain'
  | 'domainEndpoint'
  | 'domainArn'
  | 'index'
  | 'mapping'
  | 'transformModule'
  | 'indexConfig'
  | 'removalPolicy'
  | 'addDomainAccessPolicy'
>;

/**
 * Every value can come from the props or from CDK context (`-c name=value`);
 * a prop wins over the context value of the same name.
 */
export interface BackfillStackProps extends StackProps {
  /**
   * Create a demo table and a small OpenSearch domain (context `demo=true`)
   * instead of using existing ones. Everything it creates is deleted with the stack.
   * @default false
   */
  readonly demo?: boolean;
  /**
   * Name of the existing table (or give `tableArn`).
   * @default - from `tableArn`
   */
  readonly tableName?: string;
  /**
   * ARN of the existing table (or give `tableName`).
   * @default - from `tableName`, in this stack's account and region
   */
  readonly tableArn?: string;
  /**
   * The existing table's stream ARN (`…:table/NAME/stream/LABEL`). Required unless demo.
   * @default - none: required unless demo
   */
  readonly tableStreamArn?: string;
  /**
   * The existing domain's `https://` endpoint. Required unless demo.
   * @default - none: required unless demo
   */
  readonly domainEndpoint?: string;
  /**
   * The existing domain's ARN (or give `domainName`).
   * @default - from `domainName`, in this stack's account and region
   */
  readonly domainArn?: string;
  /**
   * The existing domain's name, when `domainArn` is not given.
   * @default - from `domainArn`
   */
  readonly domainName?: string;
  /**
   * The OpenSearch index. Required unless demo.
   * @default 'ddb2os-demo' in demo mode
   */
  readonly index?: string;
  /**
   * Mapping configuration (context: a JSON string).
   * @default - one document per item
   */
  readonly mapping?: Record<string, unknown>;
  /**
   * Path of the mapping's transform module, bundled into the worker and the
   * updater (context `transformModule=PATH`; see BackfillWorkflowProps.transformModule).
   * @default - no transform
   */
  readonly transformModule?: string;
  /**
   * Your own index definition (settings and mappings, or an index template),
   * applied when the plan step creates a missing index; see the workflow's
   * `indexConfig`. Context: `-c indexConfig=FILE`, a JSON file read at synth.
   * @default - ddb2os's index defaults
   */
  readonly indexConfig?: Record<string, unknown>;
  /**
   * Further workflow settings (context gives only `maxConcurrency`).
   * @default - the workflow's defaults
   */
  readonly workflow?: BackfillWorkflowSettings;
  /**
   * Where the updater takes the table's changes from (context
   * `changeSource`): the table's DynamoDB stream, the Kinesis data stream of
   * `kinesisStreamArn`, or the SQS queue of `changeQueueArn`. In demo mode,
   * `kinesis` makes the demo table stream to a new Kinesis data stream, and
   * `sqs` fans its stream out to a new queue through an EventBridge pipe.
   * @default 'dynamodb-stream'
   */
  readonly changeSource?: ChangeSourceKind;
  /**
   * ARN of the Kinesis data stream the table streams to, in the stack's
   * region (context `kinesisStreamArn`). Only with changeSource `kinesis`.
   * @default - none: required with changeSource kinesis (but in demo mode)
   */
  readonly kinesisStreamArn?: string;
  /**
   * ARN of the SQS queue a fan-out of the table's stream fills, in the
   * stack's region (context `changeQueueArn`); a name ending in `.fifo` is a
   * FIFO queue. Only with changeSource `sqs`.
   * @default - none: required with changeSource sqs
   */
  readonly changeQueueArn?: string;
  /**
   * ARN of the customer managed KMS key the Kinesis stream or the queue is
   * encrypted with (context `changeSourceKeyArn`): the updater gets
   * kms:Decrypt on it. Not needed for AWS managed keys.
   * @default - no customer managed key
   */
  readonly changeSourceKeyArn?: string;
  /**
   * ARN of an SNS topic (in the stack's region) that every alarm notifies
   * (context `alarmTopicArn`); `workflow.alarmTopic` wins over it.
   * @default - alarms without actions
   */
  readonly alarmTopicArn?: string;
}

/**
 * ddb2os in one stack: the backfill workflow, the stream updater and a
 * dashboard, for an existing table and domain, or (demo mode) for a demo
 * table and domain that the stack creates.
 */
export class BackfillStack extends Stack {
  /** The backfill workflow and the stream updater. */
  readonly workflow: BackfillWorkflow;
  /** Segments, documents per second, dead letters and the updater's lag. */
  readonly dashboard: BackfillDashboard;

  constructor(scope: Construct, id: string, props: BackfillStackProps = {}) {
    super(scope, id, {
      description:
        'ddb2os: backfills a DynamoDB table into OpenSearch, then keeps it in sync from the stream',
      ...props,
    });
    const settings = readStackSettings(this, props);
    const { mapping, transformModule, indexConfig } = settings;
    const workflowSettings = {
      ...(settings.alarmTopicArn
        ? { alarmTopic: Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn) }
        : {}),
      ...settings.workflow,
    };

    if (settings.demo) {
      const kinesisStream = this.demoChangeStream(settings.changeSource.changeSource);
      const table = new Table(this, 'DemoTable', {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        sortKey: { name: 'sk', type: AttributeType.STRING },
        billingMode: BillingMode.PAY_PER_REQUEST,
        stream: StreamViewType.NEW_AND_OLD_IMAGES,
        ...(kinesisStream
          ? { kinesisStream, kinesisPrecisionTimestamp: ApproximateCreationDateTimePrecision.MICROSECOND }
          : {}),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: TableEncryption.AWS_MANAGED,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // The domain's access policy names the domain's own ARN; a fixed name avoids a self-reference.
      const domainName = `ddb2os-demo-${createHash('sha256').update(this.stackName).digest('hex').slice(0, 8)}`;
      const domain = new Domain(this, 'DemoDomain', {
        domainName,
        version: EngineVersion.OPENSEARCH_2_19,
        capacity: { dataNodes: 1, dataNodeInstanceType: 't3.small.search', multiAzWithStandbyEnabled: false },
        ebs: { volumeSize: 10, volumeType: EbsDeviceVolumeType.GP3 },
        zoneAwareness: { enabled: false },
        nodeToNodeEncryption: true,
        encryptionAtRest: { enabled: true },
        enforceHttps: true,
        tlsSecurityPolicy: TLSSecurityPolicy.TLS_1_2,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const fanOut =
        settings.changeSource.changeSource === 'sqs'
          ? new DemoFanOut(this, 'DemoFanOut', { table })
          : undefined;
      if (fanOut) acknowledgeDemoFanOutFindings(fanOut);
      this.workflow = new BackfillWorkflow(this, 'Workflow', {
        ...(kinesisStream ? { changeSource: 'kinesis', kinesisStream } : {}),
        ...(fanOut ? { changeSource: 'sqs', changeQueue: fanOut.changeQueue } : {}),
        ...workflowSettings,
        table,
        domain,
        index: settings.index ?? 'ddb2os-demo',
        mapping,
        transformModule,
        indexConfig,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.allowWorkflowRoles(domain, domainName);
      new CfnOutput(this, 'DemoTableName', {
        value: table.tableName,
        description: 'The demo table: put items into it, then start a backfill',
      });
      new CfnOutput(this, 'DemoDomainEndpoint', {
        value: `https://${domain.domainEndpoint}`,
        description: 'The demo OpenSearch domain (IAM access for the stack roles only)',
      });
    } else {
      this.workflow = new BackfillWorkflow(this, 'Workflow', {
        ...changeSourceProps(this, settings.changeSource),
        ...workflowSettings,
        ...this.existingResources(props, settings.changeSource.changeSource),
        mapping,
        transformModule,
        indexConfig,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    this.dashboard = new BackfillDashboard(this, 'Dashboard', { workflow: this.workflow });
    this.addOutputs();
  }

  /** The existing table and domain that the settings name. */
  private existingResources(
    props: BackfillStackProps,
    changeSource: ChangeSourceKind,
  ): Pick<BackfillWorkflowProps, 'table' | 'domainEndpoint' | 'domainArn' | 'index'> {
    const { table, tableStreamArn, ...domainAndIndex } = readExistingResources(this, props, changeSource);
    return {
      table: Table.fromTableAttributes(this, 'Table', { ...table, tableStreamArn }),
      ...domainAndIndex,
    };
  }

  /**
   * Demo mode with `-c changeSource=kinesis`: a Kinesis data stream the demo
   * table streams to (on-demand, encrypted with the AWS managed key, 24 hours).
   * With `sqs` the table keeps its stream, which a pipe fans out (demo-fan-out.ts).
   */
  private demoChangeStream(changeSource: ChangeSourceKind): Stream | undefined {
    if (changeSource !== 'kinesis') return undefined;
    return new Stream(this, 'DemoChangeStream', {
      streamMode: StreamMode.ON_DEMAND,
      encryption: StreamEncryption.MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  /** Fine-grained access control is off: the domain policy lets in the stack's Lambda roles, and nobody else. */
  private allowWorkflowRoles(domain: Domain, domainName: string): void {
    const domainArn = this.formatArn({
      service: 'es',
      resource: 'domain',
      resourceName: domainName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    // One statement per function role, with only the HTTP methods that function uses.
    (domain.node.defaultChild as CfnDomain).accessPolicies = new PolicyDocument({
      statements: this.workflow.domainAccessPolicyStatements(domainArn),
    }).toJSON();
    acknowledgeDemoDomainFindings(domain);
  }

  private addOutputs(): void {
    const { stateMachine, progressTable, bucket } = this.workflow;
    const arn = stateMachine.stateMachineArn;
    new CfnOutput(this, 'StateMachineArn', { value: arn, description: 'The backfill state machine' });
    new CfnOutput(this, 'StateMachineConsoleUrl', {
      value: `https://${this.region}.console.aws.amazon.com/states/home?region=${this.region}#/statemachines/view/${arn}`,
      description: 'Start a backfill here with the input {}',
    });
    new CfnOutput(this, 'StartExecutionCommand', {
      value: `aws stepfunctions start-execution --state-machine-arn ${arn} --input '{}'`,
      description: 'Starts a backfill from a shell',
    });
    new CfnOutput(this, 'ProgressTableName', {
      value: progressTable.tableName,
      description: 'Segment checkpoints and counts, by runId (the execution name)',
    });
    new CfnOutput(this, 'DeadLetterBucketName', {
      value: bucket.bucketName,
      description: `Dead letters (${BUCKET_PREFIXES.deadLetters}), segment lists (${BUCKET_PREFIXES.plans}) and Map results (${BUCKET_PREFIXES.mapResults})`,
    });
    new CfnOutput(this, 'OpenSearchRoleArns', {
      value: this.workflow.openSearchAccess
        .map((access) => (access.function.role as IRole).roleArn)
        .join(','),
      description:
        'The plan, worker, updater, summarize and resync roles: allow them in the domain access policy (plan: HEAD, PUT; ' +
        'worker, updater: POST; summarize: GET, PUT, POST; resync: HEAD, GET, PUT, POST, DELETE), and map them to a ' +
        'role with write access (and index and alias management, for resync) if fine-grained access control is on',
    });
    // An SQS source has none: the change queue's own redrive policy keeps what the updater gave up on.
    if (this.workflow.streamFailureQueue) {
      new CfnOutput(this, 'StreamFailureQueueUrl', {
        value: this.workflow.streamFailureQueue.queueUrl,
        description:
          'Stream batches the updater gave up on: `ddb2os replay --stack <this stack>` applies them',
      });
    }
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.dashboard.dashboard.dashboardName}`,
      description: 'Segments, documents per second, dead letters and the updater lag',
    });
  }
}
