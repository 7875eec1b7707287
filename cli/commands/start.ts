/**
 * `ddb2os start`: start the deployed backfill workflow (a backfill, or with
 * `--resync` a resync into new indices behind the aliases) and follow its Map
 * Run until the execution ends.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { WORKFLOW_INPUT_KEYS } from '../../pipeline/contract/workflow';
import { ConfigurationError } from '../../pipeline/errors';
import { validateWorkflowConfig } from '../../pipeline/plan/plan-segments';
import { optionalString, type ParsedArgs } from '../args';
import { EXIT, UsageError } from '../cli-error';
import { consoleUrl, parseStatesArn, type StatesArn, stateMachineArnFromStack } from '../cloud/arns';
import {
  AWS_DETAILS,
  AWS_FLAGS,
  type AwsTarget,
  type CloudDeps,
  resolveTarget,
  withDefaults,
} from '../cloud/aws';
import { CloudError, errorName, explainAwsError } from '../cloud/errors';
import { type FollowSummary, followExecution, reportFollowed } from '../cloud/follow';
import type { Command } from '../command';

/** The stack name `cdk deploy` uses unless told otherwise (stacks/app.ts). */
export const DEFAULT_STACK = 'Ddb2osBackfill';

/** Characters Step Functions refuses in an execution name. */
const NAME_FORBIDDEN = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\p{Cc}]/u;

export function createStartCommand(deps: CloudDeps = {}): Command {
  const cloud = withDefaults(deps);
  return {
    spec: {
      name: 'start',
      summary: 'start the deployed workflow (a backfill, or a resync) and follow its Map Run until it ends',
      usage:
        'ddb2os start [--stack NAME | --state-machine-arn ARN] [--input JSON] [--resync [--keep-old]] [--name NAME] [--no-follow] [--json]',
      flags: {
        'state-machine-arn': {
          type: 'string',
          value: 'ARN',
          description: 'the backfill state machine',
        },
        stack: {
          type: 'string',
          value: 'NAME',
          description: `or: the stack whose StateMachineArn output names it (default ${DEFAULT_STACK})`,
        },
        input: {
          type: 'string',
          value: 'JSON',
          description: `execution input, a JSON object (default {}); keys: ${WORKFLOW_INPUT_KEYS.join(', ')}`,
        },
        resync: {
          type: 'boolean',
          description:
            'rebuild the index into a new one while the updater keeps the current one live, then swap the alias (input "mode": "resync")',
        },
        'keep-old': {
          type: 'boolean',
          description: 'with --resync: keep the index the alias pointed at before (input "keepOld": true)',
        },
        name: {
          type: 'string',
          value: 'NAME',
          description: 'execution name, also the run id that keys the checkpoints (default: generated)',
        },
        ...AWS_FLAGS,
        'no-follow': { type: 'boolean', description: 'print the execution ARN and return at once' },
        json: { type: 'boolean', description: 'print one summary object as the last stdout line' },
      },
      details: [
        'Prints the execution ARN and its console link, then polls the execution and its Map Run',
        '(ListMapRuns, DescribeMapRun: segments pending, running, succeeded, failed, timed out, aborted)',
        'every 5 seconds until the execution ends: a redrawn block on a terminal, one timestamped line',
        'per change elsewhere. At the end: the run summary, or the error and cause.',
        '',
        'Exit code: 0 when the execution SUCCEEDED; 1 when it FAILED, TIMED_OUT or ABORTED (one line',
        'on stderr with the error, the cause and, if segments failed, the `ddb2os redrive` command);',
        '130 when Ctrl-C stops the following. Ctrl-C never stops the execution itself.',
        '',
        'With --json the progress goes to stderr and stdout holds only the summary object.',
        '',
        'A resync (--resync) keeps the stream updater running: it writes every change to the serving',
        'index and to a new <index>-<run id> that the same Map Run fills; once every segment is done the',
        'workflow waits out the writers that started before, removes its delete markers and points the',
        'alias at the new index in one call, then deletes the old index unless --keep-old. A failed',
        'resync leaves the alias where it was; start it again to resume it (the same new index and',
        'checkpoints). --input \'{"mode": "resync", "abort": true}\' removes an unfinished one instead.',
        '',
        AWS_DETAILS,
      ].join('\n'),
      examples: [
        'ddb2os start',
        `ddb2os start --stack Ddb2osBackfill --input '{"totalSegments": 64, "maxConcurrency": 16}'`,
        'ddb2os start --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:Backfill --name orders-2025-06-01',
        'ddb2os start --stack Orders-Backfill --no-follow --json --profile prod --region eu-west-1',
        'ddb2os start --resync',
        'ddb2os start --stack Orders-Backfill --resync --keep-old --input \'{"maxConcurrency": 16}\'',
      ],
    },
    run: async (args, io) => {
      const json = args.values.json === true;
      const out = json ? io.stderr : io.stdout;
      const input = withMode(
        parseInput(optionalString(args, 'input')),
        args.values.resync === true,
        args.values['keep-old'] === true,
      );
      const name = parseName(optionalString(args, 'name'));
      const { stateMachineArn, target } = await resolveStateMachine(args, io);

      const sfn = cloud.sfn(target);
      let executionArn: string;
      let startDate: string | undefined;
      try {
        const started = await sfn.send(
          new StartExecutionCommand({
            stateMachineArn,
            input: JSON.stringify(input),
            ...(name ? { name } : {}),
          }),
        );
        if (!started.executionArn) throw new CloudError('StartExecution returned no execution ARN');
        executionArn = started.executionArn;
        if (started.startDate) startDate = new Date(started.startDate).toISOString();
      } catch (error) {
        throw explainStartError(error, { stateMachineArn, name, target });
      }

      const url = consoleUrl(executionArn, target.region);
      out.write(`execution ${executionArn}\nconsole   ${url}\n`);
      if (args.values['no-follow'] === true) {
        out.write(`Not following. See it with: ddb2os status ${executionArn}\n`);
        if (json) {
          const summary: FollowSummary = {
            executionArn,
            consoleUrl: url,
            follow: 'not-followed',
            status: 'RUNNING',
            ...(startDate ? { startDate } : {}),
          };
          io.stdout.write(`${JSON.stringify(summary)}\n`);
        }
        return EXIT.ok;
      }
      out.write('Following until it ends (Ctrl-C stops following, not the execution).\n');
      const result = await followExecution({ sfn, executionArn, target, io, out, deps: cloud });
      return reportFollowed(result, { io, out, target, json, now: cloud.now() });
    },
  };

  async function resolveStateMachine(
    args: ParsedArgs,
    io: Parameters<Command['run']>[1],
  ): Promise<{ stateMachineArn: string; target: AwsTarget }> {
    const arnFlag = optionalString(args, 'state-machine-arn');
    const stack = optionalString(args, 'stack');
    if (arnFlag !== undefined && stack !== undefined) {
      throw new UsageError('pass either --state-machine-arn or --stack, not both');
    }
    if (arnFlag !== undefined) {
      const arn: StatesArn = parseStatesArn(arnFlag, '--state-machine-arn', 'stateMachine');
      return { stateMachineArn: arn.arn, target: await resolveTarget(args, io, cloud, { arn }) };
    }
    const target = await resolveTarget(args, io, cloud);
    const stackName = stack ?? DEFAULT_STACK;
    let stateMachineArn: string;
    try {
      stateMachineArn = await stateMachineArnFromStack(cloud.cloudFormation(target), stackName, target);
    } catch (error) {
      if (stack === undefined && error instanceof CloudError) {
        throw new CloudError(
          `${error.message} (the default stack name: pass --stack NAME or --state-machine-arn ARN)`,
        );
      }
      throw error;
    }
    parseStatesArn(stateMachineArn, `the StateMachineArn output of stack ${stackName}`, 'stateMachine');
    return { stateMachineArn, target };
  }
}

/**
 * `--input`: a JSON object that the workflow's planner accepts, or a UsageError
 * that says what is wrong with it. Checked here too, so that a typo is a usage
 * error before any execution starts ("Validate and lock" checks it again,
 * with the deployment's limits).
 */
export function parseInput(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new UsageError(`--input is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new UsageError(`--input must be a JSON object such as '{"totalSegments": 64}', got ${kind}`);
  }
  try {
    validateWorkflowConfig(value);
  } catch (error) {
    if (error instanceof ConfigurationError) throw new UsageError(`--input: ${error.message}`);
    throw error;
  }
  return value as Record<string, unknown>;
}

/**
 * The input with `--resync` (mode resync) and `--keep-old` (keepOld) in it; a UsageError when the
 * flags contradict the input or each other.
 */
export function withMode(
  input: Record<string, unknown>,
  resync: boolean,
  keepOld: boolean,
): Record<string, unknown> {
  if (keepOld && !resync && input.mode !== 'resync') {
    throw new UsageError(
      '--keep-old goes with --resync: it keeps the index the alias pointed at before the swap',
    );
  }
  if (resync && input.mode !== undefined && input.mode !== 'resync') {
    throw new UsageError(`--resync contradicts the input's "mode": ${JSON.stringify(input.mode)}`);
  }
  const merged = {
    ...input,
    ...(resync ? { mode: 'resync' } : {}),
    ...(keepOld ? { keepOld: true } : {}),
  };
  try {
    validateWorkflowConfig(merged);
  } catch (error) {
    if (error instanceof ConfigurationError) throw new UsageError(`--input: ${error.message}`);
    throw error;
  }
  return merged;
}

function parseName(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.length < 1 || raw.length > 80) {
    throw new UsageError(`--name must be 1 to 80 characters long, got ${raw.length}`);
  }
  const bad = NAME_FORBIDDEN.exec(raw);
  if (bad) {
    throw new UsageError(
      `--name "${raw}" contains ${JSON.stringify(bad[0])}, which execution names may not hold ` +
        '(use letters, digits, - and _)',
    );
  }
  return raw;
}

function explainStartError(
  error: unknown,
  context: { stateMachineArn: string; name: string | undefined; target: AwsTarget },
): Error {
  switch (errorName(error)) {
    case 'StateMachineDoesNotExist':
      return new CloudError(`state machine ${context.stateMachineArn} not found in ${context.target.region}`);
    case 'ExecutionAlreadyExists':
      return new CloudError(
        `an execution named ${context.name ?? '(generated)'} already exists for this state machine ` +
          '(names stay taken for 90 days): choose another --name, or rerun its failed segments with ddb2os redrive',
      );
    case 'InvalidExecutionInput':
      return new CloudError(`Step Functions refused the --input: ${(error as Error).message}`);
    case 'StateMachineDeleting':
      return new CloudError(`state machine ${context.stateMachineArn} is being deleted`);
    default:
      return explainAwsError(error, context.target);
  }
}

export const startCommand = createStartCommand();
