import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  Code,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV } from '../pipeline/contract/env';
import {
  bundleHandler,
  handlerEntry,
  handlerSourcePath,
  PACKAGE_ROOT,
  prebuiltHandlerDir,
} from './handler-bundle';
import { type TransformModule, transformEntry } from './transform-bundle';

/** The package root (a checkout's root, or the installed package's folder). */
export const PROJECT_ROOT = PACKAGE_ROOT;

/** Powertools service name of every ddb2os function: the metrics dimension the dashboard reads. */
export const SERVICE_NAME = 'ddb2os';

/** CloudWatch namespace of the metrics the handlers publish with Powertools. */
export const METRICS_NAMESPACE = 'ddb2os';

/** The Lambda handlers of ddb2os, one file each under `handlers/`. */
export type HandlerName =
  | 'plan'
  | 'worker'
  | 'updater'
  | 'summarize'
  | 'run-lock'
  | 'resync'
  | 'watchdog'
  | 'deploy-guard';

/** What differs between the ddb2os functions; everything else is HandlerFunction's default. */
export interface HandlerFunctionProps {
  /** Which file under `handlers/` (exporting `handler`) this function runs. */
  readonly handlerName: HandlerName;
  /** What the function does, shown in the console. */
  readonly description: string;
  /**
   * Function timeout.
   * @default Duration.minutes(1)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MiB (CPU scales with it).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Environment variables, in addition to the Powertools and Node settings every function gets.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * What happens to the function's log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * The mapping's transform module (checked by checkTransformModule), bundled
   * into this function behind a generated entry. Only for functions that map items.
   * @default - the handler alone
   */
  readonly transformModule?: TransformModule;
}

/**
 * The one place where ddb2os Lambda defaults live: Node.js 22 on ARM64, X-Ray
 * tracing, JSON logs at INFO in a log group with a retention, minified ESM bundles
 * with source maps (handler-bundle.ts: built by esbuild in process, never Docker).
 */
export class HandlerFunction extends LambdaFunction {
  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Its own role, allowed to write to its own log group only (instead of the AWS managed
    // AWSLambdaBasicExecutionRole, which allows every log group).
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      role,
      code: handlerCode(props.handlerName, props.transformModule),
      handler: 'index.handler',
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      timeout: props.timeout ?? Duration.minutes(1),
      memorySize: props.memorySize ?? 512,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      // INFO at most: the handlers log keys, counts and error types there, item content never
      // (OpenSearch's reasons, which may quote a value, are logged at DEBUG). Lambda drops lower levels.
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.INFO,
      environment: {
        [ENV.SERVICE_NAME]: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
  }
}

/**
 * The function's code: bundled at synth with the transform module when there
 * is one, else from the handler's source in a checkout, else the package's
 * prebuilt bundle.
 */
function handlerCode(handlerName: HandlerName, transformModule: TransformModule | undefined): Code {
  if (transformModule) {
    return Code.fromAsset(bundleHandler(handlerName, transformEntry(handlerName, transformModule)));
  }
  if (existsSync(handlerSourcePath(handlerName))) {
    return Code.fromAsset(bundleHandler(handlerName, handlerEntry(handlerName)));
  }
  const prebuilt = prebuiltHandlerDir(handlerName);
  if (!existsSync(join(prebuilt, 'index.mjs'))) {
    throw new Error(
      `BackfillWorkflow: the ${handlerName} function's code is missing (no ${join(prebuilt, 'index.mjs')}): ` +
        'the ddb2os package is incomplete; install it again (in a checkout, run npm run build).',
    );
  }
  return Code.fromAsset(prebuilt);
}
