/**
 * The BackfillStack's settings, from its props or from CDK context
 * (`-c name=value`; a prop wins over the context value of the same name),
 * parsed and checked at synth. Every message names the `-c` flag and what it
 * must be.
 */
import { readFileSync } from 'node:fs';
import { ArnFormat, type Stack, Token } from 'aws-cdk-lib';
import type { ChangeSourceKind } from '../pipeline/contract/change-source';
import { parseIndexDefinitionText } from '../pipeline/index/index-definition';
import type { BackfillStackProps, BackfillWorkflowSettings } from './backfill-stack';
import { type ChangeSourceContext, readChangeSourceContext } from './change-source-context';

const EXAMPLE_CONTEXT =
  '-c tableName=orders -c tableStreamArn=arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000 ' +
  '-c domainEndpoint=https://search-orders-abc123.us-east-1.es.amazonaws.com ' +
  '-c domainArn=arn:aws:es:us-east-1:123456789012:domain/orders -c index=orders';

/** The settings of both modes, demo and existing resources. */
export interface StackSettings {
  readonly demo: boolean;
  /** The index as given; demo mode has a default of its own. */
  readonly index?: string;
  readonly mapping?: Record<string, unknown>;
  readonly transformModule?: string;
  readonly indexConfig?: Record<string, unknown>;
  /** The workflow settings, with the state machine named after the stack, `-c maxConcurrency` and the updater's batches. */
  readonly workflow: BackfillWorkflowSettings;
  /** `-c alarmTopicArn`, checked; the workflow's `alarmTopic` prop wins over it. */
  readonly alarmTopicArn?: string;
  /** `-c changeSource` and the stream or queue it names, checked. */
  readonly changeSource: ChangeSourceContext;
}

/** An existing table and domain as the settings name them, checked against each other and the stack's region. */
export interface ExistingResources {
  /** The table's ARN, given or read from its stream ARN; its name only when neither gives the ARN. */
  readonly table: { tableArn: string } | { tableName: string };
  /** Only for the DynamoDB stream source (or when given anyway). */
  readonly tableStreamArn?: string;
  readonly domainEndpoint: string;
  readonly domainArn: string;
  readonly index: string;
}

type Setting = <T>(name: keyof BackfillStackProps) => T | undefined;

/** Reads a setting: the prop, else the context value of the same name. */
function settingsOf(stack: Stack, props: BackfillStackProps): Setting {
  return <T>(name: keyof BackfillStackProps): T | undefined =>
    (props[name] as T | undefined) ?? (stack.node.tryGetContext(name) as T | undefined);
}

/** The settings of both modes, checked; the first problem throws, naming its `-c` flag. */
export function readStackSettings(stack: Stack, props: BackfillStackProps): StackSettings {
  const setting = settingsOf(stack, props);
  const demo = parseDemo(setting<boolean | string>('demo'));
  const mapping = parseMapping(setting<Record<string, unknown> | string>('mapping'));
  const transformModule = setting<string>('transformModule');
  const indexConfig =
    props.indexConfig ?? readIndexConfigFile(stack.node.tryGetContext('indexConfig') as unknown);
  const wholeNumbers = Object.fromEntries(
    (['maxConcurrency', 'updaterBatchSize', 'updaterParallelizationFactor'] as const).flatMap((name) => {
      const value = props.workflow?.[name] ?? parseWholeNumber(name, stack.node.tryGetContext(name));
      return value === undefined ? [] : [[name, value]];
    }),
  );
  return {
    demo,
    changeSource: readChangeSourceContext(stack, setting, demo),
    alarmTopicArn: parseAlarmTopicArn(stack, setting<string>('alarmTopicArn')),
    index: setting<string>('index'),
    mapping,
    transformModule,
    indexConfig,
    workflow: {
      stateMachineName: `${stack.stackName}-Backfill`.slice(0, 80),
      ...props.workflow,
      // `-c maxConcurrency`, `-c updaterBatchSize`, `-c updaterParallelizationFactor`; the props win.
      ...wholeNumbers,
    },
  };
}

/**
 * The existing table and domain (the mode without `demo`); says which `-c` to
 * pass when one is missing. The table's stream is needed only when it is the
 * change source.
 */
export function readExistingResources(
  stack: Stack,
  props: BackfillStackProps,
  changeSource: ChangeSourceKind,
): ExistingResources {
  const setting = settingsOf(stack, props);
  const tableName = setting<string>('tableName');
  const tableArn = setting<string>('tableArn');
  const tableStreamArn = setting<string>('tableStreamArn');
  const domainEndpoint = setting<string>('domainEndpoint');
  const domainArn = setting<string>('domainArn');
  const domainName = setting<string>('domainName');
  const index = setting<string>('index');

  const missing = [
    ...(tableName || tableArn ? [] : ['tableName (or tableArn)']),
    ...(tableStreamArn || changeSource !== 'dynamodb-stream' ? [] : ['tableStreamArn']),
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
  const streamArn = tableStreamArn ?? '';
  const stream =
    streamArn === ''
      ? null
      : /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/([A-Za-z0-9_.-]+)\/stream\/.+$/.exec(streamArn);
  if (streamArn !== '' && !Token.isUnresolved(streamArn) && !stream) {
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
  if (stream && !Token.isUnresolved(stack.region) && streamArn.split(':')[3] !== stack.region) {
    throw new Error(
      `-c tableStreamArn is in ${streamArn.split(':')[3]}, but the stack deploys to ${stack.region}: ` +
        'an event source mapping reads only streams of its own region. Deploy the stack in the table region.',
    );
  }
  // The stream ARN names the table's account and region, which an env-agnostic stack does not know.
  const resolvedTableArn =
    tableArn ?? (stream ? streamArn.slice(0, streamArn.indexOf('/stream/')) : undefined);
  return {
    table: resolvedTableArn ? { tableArn: resolvedTableArn } : { tableName: tableName as string },
    ...(tableStreamArn ? { tableStreamArn } : {}),
    domainEndpoint: domainEndpoint as string,
    domainArn:
      domainArn ??
      stack.formatArn({
        service: 'es',
        resource: 'domain',
        resourceName: domainName as string,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    index: index as string,
  };
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

/** `-c alarmTopicArn`: a standard SNS topic in the stack's region (CloudWatch alarms notify only those). */
function parseAlarmTopicArn(stack: Stack, arn: string | undefined): string | undefined {
  if (arn === undefined || Token.isUnresolved(arn)) return arn;
  const topic = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$/.exec(arn);
  if (!topic) {
    throw new Error(
      `-c alarmTopicArn must be the ARN of a standard SNS topic, like arn:aws:sns:us-east-1:123456789012:ddb2os-alarms (got ${arn}).`,
    );
  }
  if (!Token.isUnresolved(stack.region) && topic[1] !== stack.region) {
    throw new Error(
      `-c alarmTopicArn is in ${topic[1]}, but the stack deploys to ${stack.region}: CloudWatch alarms notify ` +
        'topics of their own region only. Create the topic in the stack region.',
    );
  }
  return arn;
}
