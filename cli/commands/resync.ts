/**
 * `ddb2os resync`: rebuild the index on this machine while search keeps
 * reading the serving name (local/resync.ts does the work; docs/guarantees.md,
 * "Resync", has the argument). This file is the command line around it: the
 * same flags and progress as `run`, the phases of a resync as lines a person
 * can follow, `--abort`, and the one-time move of a plain index behind an
 * alias of its name, said before it happens.
 */

import { DEFAULT_PROGRESS_TABLE } from '../../local/backfill';
import {
  abortLocalResync,
  type LocalResyncResult,
  type ResyncPhaseEvent,
  runLocalResync,
} from '../../local/resync';
import { WorkflowAbortedError, WorkflowFailedError } from '../../local/workflow';
import { describeServingName } from '../../pipeline/index/alias';
import { targetIndices } from '../../pipeline/plan/plan-segments';
import { ensureProgressTable } from '../../pipeline/progress/checkpoint';
import { ResyncInProgressError, type ResyncState, readResyncState } from '../../pipeline/resync/resync-state';
import { type CommandSpec, type FlagSpec, optionalString, type ParsedArgs, requiredString } from '../args';
import { TABLE_STREAM } from '../change-source';
import { EXIT, UsageError } from '../cli-error';
import type { Command } from '../command';
import {
  type DynamoDbTarget,
  dynamoDbFromArgs,
  ENDPOINT_DETAILS,
  explainEndpointError,
  type OpenSearchTarget,
  openSearchFromArgs,
  streamsClientFor,
} from '../endpoints';
import type { CliIo } from '../io';
import { fmt } from '../progress';
import {
  backfillOptions,
  followIfAsked,
  localRunContext,
  preflight,
  progressReporter,
  reportDeadLetters,
  runSpec,
  summaryLines,
} from './run';

/** The flags `resync` takes from `run` as they are: endpoints, mapping, index definition, scan and output. */
const SHARED_WITH_RUN = [
  'dynamodb-endpoint',
  'region',
  'profile',
  'opensearch-url',
  'mapping',
  'index-config',
  'segments',
  'concurrency',
  'read-units-per-second',
  'progress-table',
  'dead-letter-dir',
  'json',
] as const;

function runFlags(): Record<string, FlagSpec> {
  return Object.fromEntries(
    SHARED_WITH_RUN.map((name) => {
      const flag = runSpec.flags[name];
      if (!flag) throw new Error(`run has no --${name} flag for resync to share`);
      return [name, flag];
    }),
  );
}

export const resyncSpec: CommandSpec = {
  name: 'resync',
  summary: 'rebuild the index from the table while search keeps serving, then swap it in',
  usage:
    'ddb2os resync --table T --index I [--dynamodb-endpoint URL] [--opensearch-url URL] [--region R] ' +
    '[--mapping FILE] [--index-config FILE] [--segments N] [--concurrency N] [--read-units-per-second N] ' +
    '[--follow | --follow-for SECONDS] [--keep-old] [--json]\n' +
    '       ddb2os resync --table T --abort [--dynamodb-endpoint URL] [--opensearch-url URL]',
  flags: {
    table: {
      type: 'string',
      value: 'NAME',
      description: 'the DynamoDB table to resync (it must have a stream)',
    },
    index: {
      type: 'string',
      value: 'NAME',
      description: 'the name search reads: an alias (a plain index of that name is moved behind one)',
    },
    ...runFlags(),
    follow: {
      type: 'boolean',
      description: 'after the swap, keep applying the table stream until Ctrl-C',
    },
    'follow-for': {
      type: 'string',
      value: 'SECONDS',
      description:
        'after the swap, apply the stream for SECONDS, then everything it holds up to then, and exit',
    },
    'keep-old': {
      type: 'boolean',
      description: 'keep the index the alias pointed at before (default: delete it after the swap)',
    },
    abort: {
      type: 'boolean',
      description: "remove the table's resync in progress: its new index and its state (search is untouched)",
    },
  },
  details: [
    'Use it after a mapping or index-definition change, when the retention guard refuses to enable the',
    'updater (a backfill longer than the stream keeps changes), or when verify finds more drift than',
    'verify --repair should fix. Search reads --index the whole time and never sees the new index half-filled.',
    '',
    'Steps: a new index <index>-<runId> is created with the index definition; the stream updater keeps',
    'running and writes every change to both indices (a delete as a marker in the new one, so the',
    "backfill's create cannot bring the item back); the backfill fills the new index (create only, with",
    'the same segments and checkpoints as run); the stream is drained, the markers removed, and the alias',
    '--index is moved to the new index in one _aliases call. The old index is then deleted, or kept with',
    '--keep-old. A first resync of a plain index named --index moves it behind an alias of that name: the',
    'same call removes the plain index (an index and an alias cannot share a name, so it cannot be kept).',
    '',
    'Ctrl-C, or a failed segment, leaves the alias on the old index, still kept current: the same command',
    'resumes the resync from its checkpoints, and --abort removes it. One resync per table at a time.',
    'Exit codes as run: 0 done, 1 failed, 2 bad usage, 130 interrupted.',
    '',
    ENDPOINT_DETAILS,
  ].join('\n'),
  examples: [
    'ddb2os resync --table orders --index orders --dynamodb-endpoint http://localhost:8000 --opensearch-url http://localhost:9200',
    'ddb2os resync --table orders --index orders --index-config orders-index-v2.json --keep-old',
    'ddb2os resync --table orders --index orders --region eu-west-1 --opensearch-url https://search-x.eu-west-1.es.amazonaws.com --follow',
    'ddb2os resync --table orders --abort',
  ],
};

/** Phase lines: above the live block while the backfill shows one, else timestamped lines on stderr. */
function phaseNotes(io: CliIo, reporter: ReturnType<typeof progressReporter>) {
  let backfillShown = true;
  const note = (message: string) => {
    const display = backfillShown ? reporter.display() : undefined;
    if (display) display.log(message);
    else io.stderr.write(`${new Date().toISOString()} ${message}\n`);
  };
  const onPhase = (event: ResyncPhaseEvent) => {
    switch (event.phase) {
      case 'indices':
        note(
          `${event.resumed ? 'resuming' : 'starting'} resync ${event.runId}: ` +
            Object.entries(event.targets)
              .map(([serving, next]) => `new index ${next} for ${serving}`)
              .join(', ') +
            '; the stream updater writes every change to both from now on',
        );
        break;
      case 'filling':
        note(`filling the new index from the table (search keeps reading the old one)`);
        break;
      case 'draining':
        // The backfill's block is done: what follows are single lines.
        reporter.display()?.finish();
        backfillShown = false;
        note('every segment done: draining the stream into the new index');
        break;
      case 'tombstones-removed':
        note(`delete markers removed from the new index: ${fmt(event.count)}`);
        break;
      case 'swapped':
        for (const swap of event.swaps) {
          note(
            `swapped ${swap.alias} → ${swap.index} in one _aliases call` +
              (swap.removedPlainIndex
                ? ` (the plain index ${swap.alias} was removed by the same call: ${swap.alias} is an alias from now on)`
                : ''),
          );
        }
        break;
      case 'old-indices':
        for (const index of event.deleted) note(`old index ${index} deleted`);
        for (const index of event.kept)
          note(`old index ${index} kept (--keep-old): delete it when done with it`);
        break;
    }
  };
  return { note, onPhase };
}

/** Refuses a resync whose serving names differ from the one in progress for the table, naming both. */
function checkSameResync(state: ResyncState | undefined, table: string, servingNames: string[]): void {
  if (!state) return;
  const inProgress = Object.keys(state.targets).sort();
  if (inProgress.join('\n') === [...servingNames].sort().join('\n')) return;
  throw new ResyncInProgressError(
    `table ${table} has a resync in progress for index ${inProgress.join(', ')} (run ${state.runId}, ` +
      `phase ${state.phase}, since ${state.startedAt}), not for ${servingNames.join(', ')}: finish it with ` +
      `ddb2os resync --table ${table} --index ${inProgress[0]}, or remove it with ddb2os resync --table ${table} --abort`,
  );
}

/** Says, before anything changes, which serving names are plain indices that the swap moves behind an alias. */
async function announcePlainIndices(
  io: CliIo,
  opensearch: OpenSearchTarget,
  servingNames: string[],
  keepOld: boolean,
): Promise<void> {
  for (const name of servingNames) {
    const serving = await describeServingName(opensearch.client, name);
    if (serving.kind !== 'index') continue;
    io.stderr.write(
      `ddb2os: ${name} is a plain index: this first resync moves it behind an alias of the same name. ` +
        `Searches of ${name} keep working; the swap removes the plain index in the same call` +
        `${keepOld ? ' (--keep-old cannot keep it: an index and an alias cannot share a name)' : ''}.\n`,
    );
  }
}

async function abort(args: ParsedArgs, io: CliIo): Promise<number> {
  for (const flag of ['follow', 'follow-for', 'keep-old', 'mapping', 'index-config'] as const) {
    if (args.values[flag] !== undefined) throw new UsageError(`--abort and --${flag} exclude each other`);
  }
  const table = requiredString(args, 'table', 'resync');
  const dynamodb = await dynamoDbFromArgs(args, io);
  const opensearch = openSearchFromArgs(args, io, 'resync');
  const progressTable = optionalString(args, 'progress-table') ?? DEFAULT_PROGRESS_TABLE;
  await preflight(dynamodb, opensearch);
  let aborted: Awaited<ReturnType<typeof abortLocalResync>>;
  try {
    await ensureProgressTable(dynamodb.client, progressTable);
    aborted = await abortLocalResync({
      dynamodb: dynamodb.client,
      opensearch: opensearch.client,
      table,
      progressTable,
    });
  } catch (error) {
    throw explainEndpointError(error, dynamodb, opensearch);
  }
  if (!aborted) {
    io.stderr.write(`ddb2os: table ${table} has no resync in progress: nothing to abort\n`);
    return EXIT.failed;
  }
  io.stdout.write(
    `aborted resync ${aborted.runId} of ${table}: deleted ${aborted.deletedIndices.join(', ')}; ` +
      'search still reads the index it read before\n',
  );
  if (args.values.json === true) io.stdout.write(`${JSON.stringify({ table, aborted: true, ...aborted })}\n`);
  return EXIT.ok;
}

export const resyncCommand: Command = {
  spec: resyncSpec,
  async run(args, io) {
    if (args.values.abort === true) return abort(args, io);
    const keepOld = args.values['keep-old'] === true;
    const context = await localRunContext(args, io, 'resync');
    const { settings, dynamodb, opensearch, mapping, progressTable } = context;
    const servingNames = targetIndices(mapping);
    let resuming: boolean;
    try {
      await ensureProgressTable(dynamodb.client, progressTable);
      const state = await readResyncState(dynamodb.client, progressTable, settings.table);
      checkSameResync(state, settings.table, servingNames);
      resuming = state !== undefined;
      if (!resuming) await announcePlainIndices(io, opensearch, servingNames, keepOld);
    } catch (error) {
      if (error instanceof ResyncInProgressError) throw error;
      throw explainEndpointError(error, dynamodb, opensearch);
    }

    const reporter = progressReporter(io);
    const { onPhase } = phaseNotes(io, reporter);
    const streams = streamsClientFor(dynamodb);
    let result: LocalResyncResult;
    try {
      result = await runLocalResync({
        ...backfillOptions(context, streams),
        keepOld,
        onEvent: (event) => {
          // The updater is never paused in a resync: the backfill's pause and enable steps do nothing here.
          if (event.type !== 'updater') reporter.onEvent(event);
        },
        onPhase,
        signal: io.signal,
      });
    } catch (error) {
      reporter.display()?.finish();
      return resyncFailed(error, io, settings.table, servingNames, reporter, { dynamodb, opensearch });
    } finally {
      streams.destroy();
    }
    reporter.display()?.finish();
    for (const line of summaryLines(result)) io.stdout.write(`${line}\n`);
    for (const line of resyncLines(result)) io.stdout.write(`${line}\n`);

    const stream = await followIfAsked(args, io, context, result, TABLE_STREAM);
    if (args.values.json === true) {
      io.stdout.write(
        `${JSON.stringify({
          ...result.summary,
          table: settings.table,
          index: settings.index,
          targets: result.targets,
          swaps: result.swaps,
          tombstonesRemoved: result.tombstonesRemoved,
          deletedIndices: result.deletedIndices,
          updaterRecords: result.updaterRecords,
          stream,
        })}\n`,
      );
    }
    reportDeadLetters(io, result);
    return EXIT.ok;
  },
};

/** What the resync did besides the backfill, after its summary. */
function resyncLines(result: LocalResyncResult): string[] {
  return [
    `resync complete: ${result.swaps.map((swap) => `${swap.alias} → ${swap.index}`).join(', ')}`,
    `  stream records applied       ${fmt(result.updaterRecords)}`,
    `  delete markers removed       ${fmt(result.tombstonesRemoved)}`,
    `  old indices deleted          ${result.deletedIndices.length > 0 ? result.deletedIndices.join(', ') : 'none'}`,
  ];
}

/** A resync that did not finish: one line saying that search still reads the old index, and what to do. */
function resyncFailed(
  error: unknown,
  io: CliIo,
  table: string,
  servingNames: string[],
  reporter: ReturnType<typeof progressReporter>,
  ends: { dynamodb: DynamoDbTarget; opensearch: OpenSearchTarget },
): number {
  const still = `search still reads ${servingNames.join(', ')} as before, kept current by the stream updater`;
  if (error instanceof WorkflowAbortedError) {
    io.stderr.write(`ddb2os: ${error.message}; ${still}\n`);
    return EXIT.interrupted;
  }
  if (error instanceof WorkflowFailedError) {
    const which = reporter.failedSegmentsText();
    io.stderr.write(
      `ddb2os: resync of ${table} failed: ${which}${error.error}: ${error.causeText}; ${still}; run the same ` +
        `command again to resume it, or ddb2os resync --table ${table} --abort to remove it\n`,
    );
    return EXIT.failed;
  }
  throw explainEndpointError(error, ends.dynamodb, ends.opensearch);
}
