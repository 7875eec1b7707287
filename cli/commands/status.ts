/**
 * `ddb2os status`: one look at an execution of the deployed workflow and its
 * Map Run.
 */
import { EXIT } from '../cli-error';
import { consoleUrl, parseStatesArn } from '../cloud/arns';
import { AWS_DETAILS, AWS_FLAGS, type CloudDeps, resolveTarget, withDefaults } from '../cloud/aws';
import { describeSnapshot, type ExecutionSnapshot, redriveHint } from '../cloud/execution';
import { BEFORE_MAP_RUN, countsText, mapRunBar, succeededText, summaryLines } from '../cloud/render';
import type { Command } from '../command';
import { duration } from '../progress';

export function createStatusCommand(deps: CloudDeps = {}): Command {
  const cloud = withDefaults(deps);
  return {
    spec: {
      name: 'status',
      summary: 'show an execution of the deployed workflow and its Map Run',
      usage: 'ddb2os status EXECUTION_ARN [--region REGION] [--profile NAME] [--json]',
      positionals: [{ name: 'EXECUTION_ARN', required: true }],
      flags: {
        ...AWS_FLAGS,
        json: { type: 'boolean', description: 'print the snapshot as one JSON object' },
      },
      details: [
        'Prints the status, start and stop, the Map Run counts (segments pending, running, succeeded,',
        'failed, timed out, aborted), the redrive count and whether the execution can be redriven, and',
        'the output (the run summary) or the error and cause. Exit code 0 whenever the execution could',
        'be described, whatever its status: read the status from the output (or --json).',
        '',
        AWS_DETAILS,
      ].join('\n'),
      examples: [
        'ddb2os status arn:aws:states:eu-west-1:123456789012:execution:Backfill:orders-2025-06-01',
        'ddb2os status arn:aws:states:eu-west-1:123456789012:execution:Backfill:orders-2025-06-01 --json | jq .mapRun.itemCounts',
      ],
    },
    run: async (args, io) => {
      const arn = parseStatesArn(args.positionals[0] as string, 'EXECUTION_ARN', 'execution');
      const target = await resolveTarget(args, io, cloud, { arn });
      const snapshot = await describeSnapshot(cloud.sfn(target), arn.arn, target, { signal: io.signal });
      const url = consoleUrl(snapshot.executionArn, target.region);
      const hint = redriveHint(snapshot, target);
      if (args.values.json === true) {
        io.stdout.write(
          `${JSON.stringify({ ...snapshot, consoleUrl: url, ...(hint ? { redriveCommand: hint } : {}) })}\n`,
        );
        return EXIT.ok;
      }
      io.stdout.write(`${statusText(snapshot, { url, hint, now: cloud.now() }).join('\n')}\n`);
      return EXIT.ok;
    },
  };
}

/** The lines `ddb2os status` prints. */
export function statusText(
  snapshot: ExecutionSnapshot,
  options: { url: string; hint: string | undefined; now: Date },
): string[] {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(10)} ${value}`);
  row('execution', snapshot.executionArn);
  row('status', snapshot.status);
  if (snapshot.startDate) row('started', snapshot.startDate);
  if (snapshot.startDate) {
    const end = snapshot.stopDate ? Date.parse(snapshot.stopDate) : options.now.getTime();
    const took = duration((end - Date.parse(snapshot.startDate)) / 1000);
    row(
      snapshot.stopDate ? 'stopped' : 'running',
      snapshot.stopDate ? `${snapshot.stopDate} (${took})` : `for ${took}`,
    );
  }
  const redrivable =
    snapshot.redriveStatus === undefined
      ? ''
      : `, ${snapshot.redriveStatus.toLowerCase().replace(/_/g, ' ')}${
          snapshot.redriveStatusReason ? ` (${snapshot.redriveStatusReason})` : ''
        }`;
  row('redrives', `${snapshot.redriveCount}${redrivable}`);
  if (snapshot.mapRun) {
    const { itemCounts } = snapshot.mapRun;
    row(
      'Map Run',
      `${snapshot.mapRun.status}  ${mapRunBar(itemCounts)}  ${succeededText(itemCounts)}` +
        (snapshot.mapRun.redriveCount > 0 ? `  (redriven ${snapshot.mapRun.redriveCount}x)` : ''),
    );
    row('', countsText(itemCounts));
  } else {
    row('Map Run', `not started ${BEFORE_MAP_RUN}`);
  }
  if (snapshot.output !== undefined) {
    lines.push('output');
    lines.push(...summaryLines(snapshot.output));
  }
  if (snapshot.error) row('error', snapshot.error);
  if (snapshot.cause) row('cause', snapshot.cause);
  if (options.hint) row('next', options.hint);
  row('console', options.url);
  return lines;
}

export const statusCommand = createStatusCommand();
