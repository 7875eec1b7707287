/**
 * What the local commands (`verify`, `run`, `demo`) share: the DynamoDB client
 * from `--dynamodb-endpoint` / `--region` / `--profile`, the OpenSearch client
 * from `--opensearch-url`, the mapping from `--mapping FILE`, the index
 * definition from `--index-config FILE`, the table's key
 * schema from one DescribeTable, and errors from either end as one sentence.
 */
import { readFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { fromIni } from '@aws-sdk/credential-providers';
import type { Client } from '@opensearch-project/opensearch';
import { ConfigurationError, SourceTableError } from '../pipeline/errors';
import { type IndexDefinition, parseIndexDefinitionText } from '../pipeline/index/index-definition';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import { checkMappingForTable, loadMappingConfig, type MappingConfig } from '../pipeline/mapping/mapping';
import { describeSourceTable, type SourceTable } from '../pipeline/table/describe';
import type { KeySchema } from '../pipeline/table/types';
import { type FlagSpec, optionalString, type ParsedArgs } from './args';
import { UsageError } from './cli-error';
import { resolveTarget, withDefaults } from './cloud/aws';
import { errorName, explainAwsError } from './cloud/errors';
import type { CliIo } from './io';

/** `--dynamodb-endpoint`, `--region`, `--profile`. */
export const DYNAMODB_FLAGS: Record<string, FlagSpec> = {
  'dynamodb-endpoint': {
    type: 'string',
    value: 'URL',
    description: 'DynamoDB endpoint, e.g. http://localhost:8000 for DynamoDB Local (default: AWS)',
  },
  region: {
    type: 'string',
    value: 'REGION',
    description: 'AWS region (default: AWS_REGION, then the profile; us-east-1 with a local endpoint)',
  },
  profile: { type: 'string', value: 'NAME', description: 'named profile of ~/.aws/config for DynamoDB' },
};

/** `--opensearch-url`. */
export const OPENSEARCH_FLAGS: Record<string, FlagSpec> = {
  'opensearch-url': {
    type: 'string',
    value: 'URL',
    description: 'OpenSearch endpoint (default: OPENSEARCH_URL); AWS hosts are signed with SigV4',
  },
};

/** `--mapping FILE`. */
export const MAPPING_FLAGS: Record<string, FlagSpec> = {
  mapping: {
    type: 'string',
    value: 'FILE',
    description: 'mapping JSON (routes, aggregate, transformModule; see docs/mapping.md)',
  },
};

/** `--index-config FILE`. */
export const INDEX_CONFIG_FLAGS: Record<string, FlagSpec> = {
  'index-config': {
    type: 'string',
    value: 'FILE',
    description:
      'settings and mappings (or an index template) JSON for an index ddb2os creates (see docs/mapping.md)',
  },
};

/**
 * Reads `--index-config FILE`: a file that cannot be read, is not JSON (the
 * line and column are named) or is not an index body or template is a
 * UsageError naming the file, as for `--mapping`. Undefined without a path.
 */
export async function readIndexConfigFile(path: string | undefined): Promise<IndexDefinition | undefined> {
  if (path === undefined) return undefined;
  const text = await readUserFile(path, 'index config file');
  try {
    return parseIndexDefinitionText(text, `index config file ${path}`);
  } catch (error) {
    if (error instanceof ConfigurationError) throw new UsageError(error.message);
    throw error;
  }
}

/** A file named on the command line, as text; one that cannot be read is a UsageError naming it. */
async function readUserFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${what} ${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
    );
  }
}

export const ENDPOINT_DETAILS = [
  'DynamoDB: --dynamodb-endpoint URL for DynamoDB Local (credentials local/local and region us-east-1,',
  "unless --profile or --region say otherwise); without it, AWS in --region, AWS_REGION or the profile's",
  'region. OpenSearch: --opensearch-url or OPENSEARCH_URL; AWS hosts are signed with SigV4 (service es,',
  'or aoss for OpenSearch Serverless) with the default credential chain (AWS_PROFILE).',
].join('\n');

/** The DynamoDB a command talks to, and how to name it in a message. */
export interface DynamoDbTarget {
  client: DynamoDBClient;
  /** The endpoint URL: --dynamodb-endpoint, or DynamoDB's regional endpoint. */
  url: string;
  region: string;
  /** True for an endpoint outside AWS (DynamoDB Local): dummy credentials unless --profile. */
  local: boolean;
  profile?: string;
}

/** The OpenSearch a command talks to. */
export interface OpenSearchTarget {
  client: Client;
  url: string;
}

/** True for a URL whose host is not an AWS endpoint (DynamoDB Local, a container, a tunnel). */
export function isLocalEndpoint(url: string): boolean {
  const host = new URL(url).hostname;
  return !/\.amazonaws\.com(\.cn)?$/.test(host);
}

/**
 * The DynamoDB client of `--dynamodb-endpoint`, `--region` and `--profile`. A
 * local endpoint gets the credentials `local`/`local` (unless --profile) and
 * region us-east-1 (unless --region): the same namespace DynamoDB Local gives
 * `ddb2os run` and the tests.
 */
export async function dynamoDbFromArgs(args: ParsedArgs, io: CliIo): Promise<DynamoDbTarget> {
  const endpoint = optionalString(args, 'dynamodb-endpoint');
  const profile = optionalString(args, 'profile');
  if (endpoint === undefined) {
    const target = await resolveTarget(args, io, withDefaults());
    const client = new DynamoDBClient({
      region: target.region,
      ...(profile ? { credentials: fromIni({ profile }) } : {}),
    });
    return {
      client,
      url: `https://dynamodb.${target.region}.amazonaws.com`,
      region: target.region,
      local: false,
      ...(profile ? { profile } : {}),
    };
  }
  const url = httpUrl(endpoint, '--dynamodb-endpoint');
  const local = isLocalEndpoint(url);
  const regionFlag = optionalString(args, 'region');
  if (regionFlag !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(regionFlag)) {
    throw new UsageError(`--region "${regionFlag}" is not an AWS region name (e.g. us-east-1)`);
  }
  const region = local
    ? (regionFlag ?? 'us-east-1')
    : (await resolveTarget(args, io, withDefaults(), { fallback: 'us-east-1' })).region;
  const credentials = profile
    ? fromIni({ profile })
    : local
      ? { accessKeyId: 'local', secretAccessKey: 'local' }
      : undefined;
  const client = new DynamoDBClient({ endpoint: url, region, ...(credentials ? { credentials } : {}) });
  return { client, url, region, local, ...(profile ? { profile } : {}) };
}

/** The Streams API of the same DynamoDB (endpoint, region, credentials) as `target`. */
export function streamsClientFor(target: DynamoDbTarget): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({
    region: target.region,
    ...(target.local ? { endpoint: target.url } : {}),
    credentials: target.client.config.credentials,
  });
}

/** The OpenSearch client of `--opensearch-url` (default OPENSEARCH_URL), signed as createOpenSearchClient decides. */
export function openSearchFromArgs(args: ParsedArgs, io: CliIo, command: string): OpenSearchTarget {
  const url = optionalString(args, 'opensearch-url') ?? io.env.OPENSEARCH_URL;
  if (url === undefined || url.trim() === '') {
    throw new UsageError(
      `--opensearch-url is required, or set OPENSEARCH_URL (see \`ddb2os ${command} --help\`)`,
    );
  }
  const region = optionalString(args, 'region');
  try {
    const client = createOpenSearchClient({ endpoint: url, ...(region ? { region } : {}) });
    return { client, url };
  } catch (error) {
    if (error instanceof ConfigurationError) throw new UsageError(`--opensearch-url: ${error.message}`);
    throw error;
  }
}

/**
 * Reads `--mapping FILE` (JSON, checked by loadMappingConfig) with `index` as
 * the default index. Without a file, every item goes to `index`. A problem is
 * a UsageError that names the file and the field.
 */
export async function readMappingFile(
  path: string | undefined,
  index: string | undefined,
): Promise<MappingConfig> {
  const defaults = index === undefined ? {} : { index };
  if (path === undefined) return loadMapping(undefined, defaults, 'the command line');
  const text = await readUserFile(path, 'mapping file');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`mapping file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (index !== undefined && typeof raw === 'object' && raw !== null && 'index' in raw) {
    const named = (raw as { index: unknown }).index;
    if (named !== index) {
      throw new UsageError(
        `--index "${index}" and mapping.index ${JSON.stringify(named)} in ${path} differ: give the index once`,
      );
    }
  }
  return loadMapping(raw, defaults, `mapping file ${path}`);
}

/** The mapping checked against the table's key schema: a misfit is a UsageError naming `--mapping FILE` when there is one. */
export function checkMappingFile(
  mapping: MappingConfig,
  keySchema: KeySchema,
  path: string | undefined,
): void {
  try {
    checkMappingForTable(mapping, keySchema);
  } catch (error) {
    if (error instanceof ConfigurationError) {
      throw new UsageError(`${path ? `mapping file ${path}: ` : ''}${error.message}`);
    }
    throw error;
  }
}

async function loadMapping(
  raw: unknown,
  defaults: { index?: string },
  where: string,
): Promise<MappingConfig> {
  try {
    return await loadMappingConfig(raw, defaults);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    if (/^mapping\.index must be a non-empty string$/.test(error.message)) {
      throw new UsageError(`--index is required (or name the index in the mapping file's "index")`);
    }
    if (where === 'the command line')
      throw new UsageError(error.message.replace(/^mapping\.index/, '--index'));
    throw new UsageError(`${where}: ${error.message}`);
  }
}

/**
 * The table's description (describeSourceTable), with the endpoint or region
 * in its errors: "table X does not exist at <endpoint>" (or "in <region>");
 * an endpoint that does not answer is "cannot reach DynamoDB at URL: …".
 */
export async function describeTableAt(
  target: DynamoDbTarget,
  table: string,
  signal?: AbortSignal,
): Promise<SourceTable> {
  try {
    return await describeSourceTable(target.client, table, {
      where: whereIs(target),
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if (error instanceof SourceTableError) throw error;
    throw explainDynamoDbError(error, target);
  }
}

function whereIs(target: DynamoDbTarget): string {
  return target.local ? `at ${target.url}` : `in ${target.region}`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
]);

/** The network error's text ("connect ECONNREFUSED 127.0.0.1:8000"), when the error is one. */
function networkProblem(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (
      (code !== undefined && NETWORK_CODES.has(code)) ||
      current.name === 'TimeoutError' ||
      current.name === 'ConnectionError' ||
      current.name === 'NoLivingConnectionsError'
    ) {
      return current.message || code || current.name;
    }
    current = current.cause;
  }
  return undefined;
}

/** A DynamoDB error as one sentence: unreachable endpoint, credentials, access, or the SDK's own message. */
export function explainDynamoDbError(error: unknown, target: DynamoDbTarget): Error {
  const problem = networkProblem(error);
  if (problem !== undefined) {
    return new SourceTableError(`cannot reach DynamoDB at ${target.url}: ${problem}`, { cause: error });
  }
  return explainAwsError(error, {
    region: target.region,
    ...(target.profile ? { profile: target.profile } : {}),
  });
}

/** An OpenSearch error as one sentence: unreachable, access refused, or OpenSearch's reason. */
export function explainOpenSearchError(error: unknown, target: OpenSearchTarget): Error {
  const problem = networkProblem(error);
  if (problem !== undefined)
    return new Error(`cannot reach OpenSearch at ${target.url}: ${problem}`, { cause: error });
  const status = (error as { meta?: { statusCode?: number } }).meta?.statusCode;
  if (status === 401 || status === 403) {
    return new Error(
      `OpenSearch at ${target.url} refused access (${status}): check the credentials and the domain's access policy`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Which end an error came from: AWS SDK errors carry `$metadata`, the
 * OpenSearch client's errors are named ConnectionError, ResponseError, ….
 */
export function explainEndpointError(
  error: unknown,
  dynamodb: DynamoDbTarget,
  opensearch: OpenSearchTarget,
): Error {
  if (typeof error === 'object' && error !== null && '$metadata' in error)
    return explainDynamoDbError(error, dynamodb);
  const name = errorName(error) ?? '';
  if (
    /^(ConnectionError|TimeoutError|NoLivingConnectionsError|ResponseError|DeserializationError)$/.test(name)
  ) {
    return explainOpenSearchError(error, opensearch);
  }
  return error instanceof Error ? error : new Error(String(error));
}

function httpUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} "${value}" is not a URL (e.g. http://localhost:8000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${flag} "${value}" is not an http(s) URL`);
  }
  return value.replace(/\/+$/, '');
}
