import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { type ITable, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BackfillWorkflow, type BackfillWorkflowProps } from '../../stacks/backfill-workflow';
import { nagPacks } from '../../stacks/nag';

export const STREAM_ARN =
  'arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000';
export const DOMAIN_ENDPOINT = 'https://search-x.us-east-1.es.amazonaws.com';
export const DOMAIN_ARN = 'arn:aws:es:us-east-1:123456789012:domain/x';

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
