import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV } from '../pipeline/contract/env';
import { type TransformModule, transformEntry } from './transform-bundle';

/** The repository root: handler entries, the lock file and tsconfig are resolved from it. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Powertools service name of every ddb2os function: the metrics dimension the dashboard reads. */
export const SERVICE_NAME = 'ddb2os';

/** CloudWatch namespace of the metrics the handlers publish with Powertools. */
export const METRICS_NAMESPACE = 'ddb2os';

/** The Lambda handlers of ddb2os, one file each under `handlers/`. */
export type HandlerName = 'plan' | 'worker' | 'updater' | 'summarize' | 'watchdog' | 'deploy-guard';

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
 * with source maps, built by the local esbuild (never Docker).
 */
export class HandlerFunction extends NodejsFunction {
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
    const handlerPath = fileURLToPath(new URL(`../handlers/${props.handlerName}.ts`, import.meta.url));
    super(scope, id, {
      role,
      entry: props.transformModule
        ? transformEntry(props.handlerName, handlerPath, props.transformModule)
        : handlerPath,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: fileURLToPath(new URL('../package-lock.json', import.meta.url)),
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
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        // Some dependencies are CommonJS and call require(); an ESM bundle needs it defined.
        banner: "import { createRequire } from 'module';const require = createRequire(import.meta.url);",
        mainFields: ['module', 'main'],
      },
    });
  }
}
