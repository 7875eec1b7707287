import { createHash } from 'node:crypto';
import { ArnFormat, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { EbsDeviceVolumeType } from 'aws-cdk-lib/aws-ec2';
import { ArnPrincipal, type IRole, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type CfnDomain, Domain, EngineVersion, TLSSecurityPolicy } from 'aws-cdk-lib/aws-opensearchservice';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { BUCKET_PREFIXES } from '../pipeline/contract/bucket';
import { BackfillDashboard } from './backfill-dashboard';
import { readExistingResources, readStackSettings } from './backfill-stack-context';
import { BackfillWorkflow, type BackfillWorkflowProps } from './backfill-workflow';
import { acknowledgeDemoDomainFindings } from './nag-acknowledgements';

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
  readonly workflow: BackfillWorkflow;
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
      const table = new Table(this, 'DemoTable', {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        sortKey: { name: 'sk', type: AttributeType.STRING },
        billingMode: BillingMode.PAY_PER_REQUEST,
        stream: StreamViewType.NEW_AND_OLD_IMAGES,
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
      this.workflow = new BackfillWorkflow(this, 'Workflow', {
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
        ...workflowSettings,
        ...this.existingResources(props),
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
  ): Pick<BackfillWorkflowProps, 'table' | 'domainEndpoint' | 'domainArn' | 'index'> {
    const { table, tableStreamArn, ...domainAndIndex } = readExistingResources(this, props);
    return {
      table: Table.fromTableAttributes(this, 'Table', { ...table, tableStreamArn }),
      ...domainAndIndex,
    };
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
      statements: this.workflow.openSearchAccess.map(
        (access) =>
          new PolicyStatement({
            principals: [new ArnPrincipal((access.function.role as IRole).roleArn)],
            actions: [...access.actions],
            resources: [`${domainArn}/*`],
          }),
      ),
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
    new CfnOutput(this, 'StreamFailureQueueUrl', {
      value: this.workflow.streamFailureQueue.queueUrl,
      description: 'Stream batches the updater gave up on: `ddb2os replay --stack <this stack>` applies them',
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.dashboard.dashboard.dashboardName}`,
      description: 'Segments, documents per second, dead letters and the updater lag',
    });
  }
}
