/**
 * Where the AWS calls of the cloud commands go: the clients built from
 * `--region` / `--profile`, the region chain, and the clocks that tests
 * replace (Step Functions has no local engine).
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { fromIni } from '@aws-sdk/credential-providers';
import type { FlagSpec, ParsedArgs } from '../args';
import { optionalString } from '../args';
import { UsageError } from '../cli-error';
import type { CliIo } from '../io';
import type { StatesArn } from './arns';

/** Where the AWS calls go: a region and, optionally, a named profile of ~/.aws. */
export interface AwsTarget {
  region: string;
  profile?: string;
}

/** The clients and clocks a cloud command uses; tests hand in stubs (Step Functions has no local engine). */
export interface CloudDeps {
  sfn?: (target: AwsTarget) => SFNClient;
  cloudFormation?: (target: AwsTarget) => CloudFormationClient;
  dynamodb?: (target: AwsTarget & { endpoint?: string }) => DynamoDBClient;
  sqs?: (target: AwsTarget) => SQSClient;
  /** Waits between polls; resolves early when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => Date;
  /** The region configured for the profile in ~/.aws/config, the last place a region is looked for. */
  configuredRegion?: (profile: string | undefined) => Promise<string | undefined>;
  /** Milliseconds between two polls while following (default 5 s). */
  pollMs?: number;
}

/** The same deps with every default filled in. */
export type ResolvedCloudDeps = Required<CloudDeps>;

/** Milliseconds between two looks at a followed execution. */
export const POLL_MS = 5_000;

/** The real clients and clocks wherever `deps` leaves one out. */
export function withDefaults(deps: CloudDeps = {}): ResolvedCloudDeps {
  return {
    sfn: deps.sfn ?? ((target) => new SFNClient(clientConfig(target))),
    cloudFormation: deps.cloudFormation ?? ((target) => new CloudFormationClient(clientConfig(target))),
    dynamodb:
      deps.dynamodb ??
      ((target) =>
        new DynamoDBClient({
          ...clientConfig(target),
          ...(target.endpoint ? { endpoint: target.endpoint } : {}),
        })),
    sqs: deps.sqs ?? ((target) => new SQSClient(clientConfig(target))),
    sleep: deps.sleep ?? abortableSleep,
    now: deps.now ?? (() => new Date()),
    configuredRegion: deps.configuredRegion ?? regionFromConfigFile,
    pollMs: deps.pollMs ?? POLL_MS,
  };
}

function clientConfig(target: AwsTarget): { region: string; credentials?: ReturnType<typeof fromIni> } {
  return target.profile
    ? { region: target.region, credentials: fromIni({ profile: target.profile }) }
    : { region: target.region };
}

async function regionFromConfigFile(profile: string | undefined): Promise<string | undefined> {
  try {
    // The SDK's own region chain reads [profile] region from ~/.aws/config.
    return await new SFNClient(profile ? { profile } : {}).config.region();
  } catch {
    return undefined;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `--region` and `--profile`, the same for every cloud command. */
export const AWS_FLAGS: Record<string, FlagSpec> = {
  region: {
    type: 'string',
    value: 'REGION',
    description: 'AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the ARN, then the profile)',
  },
  profile: { type: 'string', value: 'NAME', description: 'named profile of ~/.aws/config to use' },
};

/** The help text's paragraph on where the region and the credentials come from. */
export const AWS_DETAILS = [
  'Region: --region, else AWS_REGION or AWS_DEFAULT_REGION, else the region inside the ARN',
  'argument, else the region of the profile in ~/.aws/config. Credentials: the AWS SDK default',
  'chain, or --profile NAME (its ~/.aws/credentials or config entry, SSO included).',
].join('\n');

/**
 * The region of a command: `--region`, else AWS_REGION / AWS_DEFAULT_REGION,
 * else the region inside an ARN argument, else the profile's configured
 * region. None → UsageError.
 */
export async function resolveTarget(
  args: ParsedArgs,
  io: CliIo,
  deps: ResolvedCloudDeps,
  options: { arn?: StatesArn; fallback?: string } = {},
): Promise<AwsTarget> {
  const profile = optionalString(args, 'profile');
  const flag = optionalString(args, 'region');
  if (flag !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(flag)) {
    throw new UsageError(`--region "${flag}" is not an AWS region name (e.g. us-east-1)`);
  }
  const region =
    flag ||
    io.env.AWS_REGION ||
    io.env.AWS_DEFAULT_REGION ||
    options.arn?.region ||
    (await deps.configuredRegion(profile ?? io.env.AWS_PROFILE)) ||
    options.fallback;
  if (!region) {
    throw new UsageError(
      'no AWS region: pass --region, set AWS_REGION, or configure a region for the profile',
    );
  }
  return profile ? { region, profile } : { region };
}
