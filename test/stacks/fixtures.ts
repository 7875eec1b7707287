import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { type ITable, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import { nagPacks } from '../../stacks/nag';

export const STREAM_ARN =
  'arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000';
export const DOMAIN_ENDPOINT = 'https://search-x.us-east-1.es.amazonaws.com';
export const DOMAIN_ARN = 'arn:aws:es:us-east-1:123456789012:domain/x';

/** The workflow props every construct test shares: where the documents go, and the state machine's name its grants name. */
export const WORKFLOW_TARGET = {
  index: 'orders',
  domainEndpoint: DOMAIN_ENDPOINT,
  domainArn: DOMAIN_ARN,
  stateMachineName: 'ddb2os-test-backfill',
};

/** Context for the existing-resources mode, as `-c` flags would give it. */
export const EXISTING_CONTEXT = {
  tableName: 'orders',
  tableStreamArn: STREAM_ARN,
  domainEndpoint: DOMAIN_ENDPOINT,
  domainArn: DOMAIN_ARN,
  index: 'orders',
};

/**
 * An app that skips esbuild bundling (the handlers' code is irrelevant to the
 * template), so that a synth takes milliseconds.
 */
export function testApp(context: Record<string, unknown> = {}): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
}

export function stackWithStreamTable(): { stack: Stack; table: ITable } {
  const stack = new Stack(testApp(), 'Test');
  return { stack, table: importedStreamTable(stack) };
}

/** The table `orders` with a stream, imported (its encryption unknown to the app). */
export function importedStreamTable(stack: Stack): ITable {
  return Table.fromTableAttributes(stack, 'Orders', { tableName: 'orders', tableStreamArn: STREAM_ARN });
}

/**
 * A BackfillWorkflow for the index `orders` on the domain's endpoint and ARN,
 * built only when the returned function is called (for `toThrow`): `props`
 * gives the props over those, `table` makes the table in the test's stack.
 */
export function workflowBuilder(
  props: (stack: Stack) => Partial<BackfillWorkflowProps> = () => ({}),
  table: (stack: Stack) => ITable = importedStreamTable,
): () => BackfillWorkflow {
  const stack = new Stack(testApp(), 'Test');
  const source = table(stack);
  return () =>
    new BackfillWorkflow(stack, 'Workflow', {
      table: source,
      index: 'orders',
      domainEndpoint: DOMAIN_ENDPOINT,
      domainArn: DOMAIN_ARN,
      ...props(stack),
    });
}

/** The cdk-nag findings (AwsSolutions and Serverless packs) that nobody acknowledged, as `rule at path` lines. */
export function unacknowledgedNagFindings(stack: Stack): string[] {
  return nagPacks(stack).flatMap((pack) =>
    pack
      .validateScope(stack)
      .violations.flatMap((violation) =>
        violation.violatingResources.map(
          (resource) => `${violation.severity} ${violation.ruleName} at ${resource.constructPath}`,
        ),
      ),
  );
}

const run = promisify(execFile);

/**
 * The CDK app (stacks/app.ts, as cdk.json runs it) synthesized in a child
 * process with the existing-resources context and `context` over it, esbuild
 * bundling on; returns the cloud assembly's folder. A child process, because
 * bundling blocks the process that runs it for longer than the test runner
 * tolerates.
 */
export async function synthInChildProcess(context: Record<string, string> = {}): Promise<string> {
  const directory = mkdtempSync(join(tmpdir(), 'ddb2os-synth-'));
  await run('npx', ['tsx', 'stacks/app.ts'], {
    env: {
      ...process.env,
      CDK_OUTDIR: directory,
      CDK_CONTEXT_JSON: JSON.stringify({ ...EXISTING_CONTEXT, ...context }),
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  return directory;
}

/**
 * What the updater's mapping on a stream (DynamoDB or Kinesis) always has:
 * disabled until a backfill enables it, from TRIM_HORIZON, bisection, retries
 * until the records are 22 hours old (-1 is CloudFormation's "retry until
 * the records expire"; the record age ends the retries), partial batch responses.
 */
export const UPDATER_STREAM_MAPPING = {
  Enabled: false,
  StartingPosition: 'TRIM_HORIZON',
  BisectBatchOnFunctionError: true,
  MaximumRetryAttempts: -1,
  MaximumRecordAgeInSeconds: 22 * 3600,
  FunctionResponseTypes: ['ReportBatchItemFailures'],
  BatchSize: 100,
  ParallelizationFactor: Match.absent(),
};

/**
 * A function's environment variables as the handler would read them:
 * tokens (Ref, Fn::GetAtt) become values at deploy time, so any non-empty
 * string stands in for them.
 */
export function environmentStandIns(variables: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [name, typeof value === 'string' ? value : `<${name}>`]),
  );
}
