/**
 * `ddb2os redrive`: rerun the failed segments of a failed execution (Step
 * Functions RedriveExecution), then follow it like `start`.
 */
import { RedriveExecutionCommand } from '@aws-sdk/client-sfn';
import { EXIT } from '../cli-error';
import { consoleUrl, parseStatesArn } from '../cloud/arns';
import { AWS_DETAILS, AWS_FLAGS, type CloudDeps, resolveTarget, withDefaults } from '../cloud/aws';
import { CloudError, ExecutionNotFoundError, errorName, explainAwsError } from '../cloud/errors';
import { describeSnapshot, type ExecutionSnapshot } from '../cloud/execution';
import { type FollowSummary, followExecution, reportFollowed } from '../cloud/follow';
import type { Command } from '../command';

export function createRedriveCommand(deps: CloudDeps = {}): Command {
  const cloud = withDefaults(deps);
  return {
    spec: {
      name: 'redrive',
      summary: 'rerun only the failed segments of a failed execution',
      usage: 'ddb2os redrive EXECUTION_ARN [--no-follow] [--region REGION] [--profile NAME] [--json]',
      positionals: [{ name: 'EXECUTION_ARN', required: true }],
      flags: {
        ...AWS_FLAGS,
        'no-follow': { type: 'boolean', description: 'redrive and return at once' },
        json: { type: 'boolean', description: 'print one summary object as the last stdout line' },
      },
      details: [
        'Redrives the execution (Step Functions RedriveExecution): it restarts from the state that',
        'failed, and in the Map Run only the segments that failed, timed out or were aborted run again;',
        'the segments that succeeded are not touched. The run id is the execution name, which a redrive',
        'keeps, so each segment that runs again resumes from its checkpoint instead of rescanning from',
        'the start. The updater stays paused until every segment is done.',
        '',
        'Only an execution that FAILED, TIMED_OUT or was ABORTED can be redriven, within 14 days of',
        'its stop. Then follows the execution like `ddb2os start` (same output and exit codes).',
        '',
        AWS_DETAILS,
      ].join('\n'),
      examples: [
        'ddb2os redrive arn:aws:states:eu-west-1:123456789012:execution:Backfill:orders-2025-06-01',
        'ddb2os redrive arn:aws:states:eu-west-1:123456789012:execution:Backfill:orders-2025-06-01 --no-follow --json',
      ],
    },
    run: async (args, io) => {
      const json = args.values.json === true;
      const out = json ? io.stderr : io.stdout;
      const arn = parseStatesArn(args.positionals[0] as string, 'EXECUTION_ARN', 'execution');
      const target = await resolveTarget(args, io, cloud, { arn });
      const sfn = cloud.sfn(target);

      const before = await describeSnapshot(sfn, arn.arn, target, { signal: io.signal });
      try {
        await sfn.send(new RedriveExecutionCommand({ executionArn: arn.arn }));
      } catch (error) {
        if (errorName(error) === 'ExecutionNotRedrivable') throw notRedrivable(before, error);
        if (errorName(error) === 'ExecutionDoesNotExist')
          throw new ExecutionNotFoundError(arn.arn, target.region);
        throw explainAwsError(error, target);
      }

      const failedSegments = before.mapRun
        ? before.mapRun.itemCounts.failed +
          before.mapRun.itemCounts.timedOut +
          before.mapRun.itemCounts.aborted
        : undefined;
      const url = consoleUrl(arn.arn, target.region);
      out.write(
        `Redriving execution ${arn.arn} (redrive ${before.redriveCount + 1}): ` +
          (failedSegments === undefined
            ? 'it restarts from the state that failed.\n'
            : `${failedSegments} segment(s) run again, each from its checkpoint.\n`),
      );
      out.write(`console   ${url}\n`);
      if (args.values['no-follow'] === true) {
        out.write(`Not following. See it with: ddb2os status ${arn.arn}\n`);
        if (json) {
          const summary: FollowSummary = {
            executionArn: arn.arn,
            consoleUrl: url,
            follow: 'not-followed',
            status: 'RUNNING',
            redriveCount: before.redriveCount + 1,
          };
          io.stdout.write(`${JSON.stringify(summary)}\n`);
        }
        return EXIT.ok;
      }
      out.write('Following until it ends (Ctrl-C stops following, not the execution).\n');
      const result = await followExecution({
        sfn,
        executionArn: arn.arn,
        target,
        io,
        out,
        deps: cloud,
        minRedriveCount: before.redriveCount + 1,
      });
      return reportFollowed(result, { io, out, target, json, now: cloud.now() });
    },
  };
}

function notRedrivable(before: ExecutionSnapshot, error: unknown): CloudError {
  const rule =
    'only an execution that FAILED, TIMED_OUT or was ABORTED can be redriven, within 14 days of its stop';
  if (before.status === 'RUNNING') {
    return new CloudError(
      `execution ${before.executionArn} is still RUNNING and cannot be redriven: ${rule}; follow it with ddb2os status`,
    );
  }
  if (before.status === 'SUCCEEDED') {
    return new CloudError(
      `execution ${before.executionArn} SUCCEEDED, so there is nothing to redrive: ${rule}`,
    );
  }
  const reason = before.redriveStatusReason ?? (error as Error).message;
  return new CloudError(
    `execution ${before.executionArn} (${before.status}) cannot be redriven: ${reason}. ` +
      `${rule[0]?.toUpperCase()}${rule.slice(1)}; start a new execution with ddb2os start`,
  );
}

export const redriveCommand = createRedriveCommand();
