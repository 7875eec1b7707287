import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ArnFormat, CfnOutput, RemovalPolicy, Stack, type StackProps, Token } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  type ITable,
  StreamViewType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { EbsDeviceVolumeType } from 'aws-cdk-lib/aws-ec2';
import { ArnPrincipal, type IRole, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type CfnDomain, Domain, EngineVersion, TLSSecurityPolicy } from 'aws-cdk-lib/aws-opensearchservice';
import type { Construct } from 'constructs';
import { parseIndexDefinitionText } from '../pipeline/index/index-definition';
import { BackfillDashboard } from './backfill-dashboard';
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
  /** The existing table's stream ARN (`…:table/NAME/stream/LABEL`). Required unless demo. */
  readonly tableStreamArn?: string;
  /** The existing domain's `https://` endpoint. Required unless demo. */
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
}

const EXAMPLE_CONTEXT =
  '-c tableName=orders -c tableStreamArn=arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000 ' +
  '-c domainEndpoint=https://search-orders-abc123.us-east-1.es.amazonaws.com ' +
  '-c domainArn=arn:aws:es:us-east-1:123456789012:domain/orders -c index=orders';

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
    const setting = <T>(name: keyof BackfillStackProps): T | undefined =>
      (props[name] as T | undefined) ?? (this.node.tryGetContext(name) as T | undefined);
    const demo = parseDemo(setting<boolean | string>('demo'));
    const mapping = parseMapping(setting<Record<string, unknown> | string>('mapping'));
    const transformModule = setting<string>('transformModule');
    const indexConfig =
      props.indexConfig ?? readIndexConfigFile(this.node.tryGetContext('indexConfig') as unknown);
    const maxConcurrency =
      props.workflow?.maxConcurrency ??
      parseWholeNumber('maxConcurrency', this.node.tryGetContext('maxConcurrency'));
    const workflowSettings: BackfillWorkflowSettings = {
      stateMachineName: `${this.stackName}-Backfill`.slice(0, 80),
      ...props.workflow,
      ...(maxConcurrency === undefined ? {} : { maxConcurrency }),
    };

    if (demo) {
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
        index: setting<string>('index') ?? 'ddb2os-demo',
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
        ...this.existingResources(setting),
        mapping,
        transformModule,
        indexConfig,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    this.dashboard = new BackfillDashboard(this, 'Dashboard', { workflow: this.workflow });
    this.addOutputs();
  }

  private existingResources(
    setting: <T>(name: keyof BackfillStackProps) => T | undefined,
  ): Pick<BackfillWorkflowProps, 'table' | 'domainEndpoint' | 'domainArn' | 'index'> {
    const tableName = setting<string>('tableName');
    const tableArn = setting<string>('tableArn');
    const tableStreamArn = setting<string>('tableStreamArn');
    const domainEndpoint = setting<string>('domainEndpoint');
    const domainArn = setting<string>('domainArn');
    const domainName = setting<string>('domainName');
    const index = setting<string>('index');

    const missing = [
      ...(tableName || tableArn ? [] : ['tableName (or tableArn)']),
      ...(tableStreamArn ? [] : ['tableStreamArn']),
      ...(domainEndpoint ? [] : ['domainEndpoint']),
      ...(domainArn || domainName ? [] : ['domainArn (or domainName)']),
      ...(index ? [] : ['index']),
    ];
    if (missing.length > 0) {
      throw new Error(
        `ddb2os needs an existing table and OpenSearch domain, or demo mode. Missing context: ${missing.join(', ')}. ` +
          `Pass it with -c, for example:\n  npx cdk deploy ${EXAMPLE_CONTEXT}\n` +
          'or deploy a demo table and domain with: npx cdk deploy -c demo=true',
      );
    }
    const streamArn = tableStreamArn as string;
    const stream = /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/([A-Za-z0-9_.-]+)\/stream\/.+$/.exec(
      streamArn,
    );
    if (!Token.isUnresolved(streamArn) && !stream) {
      throw new Error(
        `-c tableStreamArn must be a DynamoDB stream ARN like arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000 (got ${streamArn}). ` +
          'aws dynamodb describe-table --table-name NAME --query Table.LatestStreamArn prints it.',
      );
    }
    if (tableArn && !Token.isUnresolved(tableArn)) {
      if (!/^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]+$/.test(tableArn)) {
        throw new Error(
          `-c tableArn must be a DynamoDB table ARN like arn:aws:dynamodb:us-east-1:123456789012:table/orders (got ${tableArn}).`,
        );
      }
      if (stream && !streamArn.startsWith(`${tableArn}/stream/`)) {
        throw new Error(`-c tableStreamArn (${streamArn}) is not a stream of -c tableArn (${tableArn}).`);
      }
    }
    if (tableName && stream && stream[1] !== tableName) {
      throw new Error(
        `-c tableStreamArn (${streamArn}) is a stream of table ${stream[1]}, not of -c tableName=${tableName}.`,
      );
    }
    if (stream && !Token.isUnresolved(this.region) && streamArn.split(':')[3] !== this.region) {
      throw new Error(
        `-c tableStreamArn is in ${streamArn.split(':')[3]}, but the stack deploys to ${this.region}: ` +
          'an event source mapping reads only streams of its own region. Deploy the stack in the table region.',
      );
    }
    // The stream ARN names the table's account and region, which an env-agnostic stack does not know.
    const resolvedTableArn =
      tableArn ?? (stream ? streamArn.slice(0, streamArn.indexOf('/stream/')) : undefined);
    const table: ITable = Table.fromTableAttributes(this, 'Table', {
      ...(resolvedTableArn ? { tableArn: resolvedTableArn } : { tableName: tableName as string }),
      tableStreamArn: streamArn,
    });
    return {
      table,
      domainEndpoint: domainEndpoint as string,
      domainArn:
        domainArn ??
        this.formatArn({
          service: 'es',
          resource: 'domain',
          resourceName: domainName as string,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        }),
      index: index as string,
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
      description: 'Dead letters (dead-letter/), segment lists (plans/) and Map results (map-results/)',
    });
    new CfnOutput(this, 'OpenSearchRoleArns', {
      value: this.workflow.openSearchAccess
        .map((access) => (access.function.role as IRole).roleArn)
        .join(','),
      description:
        'The plan, worker, updater and summarize roles: allow them in the domain access policy (plan: HEAD, PUT; ' +
        'worker, updater: POST; summarize: GET, PUT, POST), and map them to a role with write access if ' +
        'fine-grained access control is on',
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.dashboard.dashboard.dashboardName}`,
      description: 'Segments, documents per second, dead letters and the updater lag',
    });
  }
}

function parseDemo(value: boolean | string | undefined): boolean {
  if (value === undefined || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new Error(`-c demo must be true or false (got ${String(value)}).`);
}

function parseMapping(
  value: Record<string, unknown> | string | undefined,
): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new Error(
        `-c mapping must be a JSON object, like -c 'mapping={"routes":[{"prefix":"order#","index":"orders"}]}' (${(error as Error).message}).`,
      );
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('-c mapping must be a JSON object (see docs/mapping.md).');
  }
  return parsed as Record<string, unknown>;
}

/** `-c indexConfig=FILE`: the file is read and checked at synth; a problem names the file. */
function readIndexConfigFile(path: unknown): Record<string, unknown> | undefined {
  if (path === undefined) return undefined;
  if (typeof path !== 'string' || path.trim() === '') {
    throw new Error(`-c indexConfig must be the path of a JSON file (got ${JSON.stringify(path)}).`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      `-c indexConfig=${path}: the file cannot be read (${code === 'ENOENT' ? 'no such file' : (error as Error).message}).`,
      { cause: error },
    );
  }
  // Checked here so that a problem names the file; the workflow checks the object again.
  parseIndexDefinitionText(text, `-c indexConfig=${path}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function parseWholeNumber(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(number)) throw new Error(`-c ${name} must be a whole number (got ${String(value)}).`);
  return number;
}
