/**
 * `ddb2os run`: the backfill workflow on this machine against any DynamoDB and
 * OpenSearch (local engines or real AWS), then, optionally, the stream
 * updater for a while or until Ctrl-C, on the change source of
 * `--change-source` (../change-source.ts).
 */
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import {
  type BackfillEvent,
  createLocalUpdater,
  DEFAULT_PROGRESS_TABLE,
  type LocalBackfillResult,
  runLocalBackfill,
} from '../../local/backfill';
import { WorkflowAbortedError, WorkflowFailedError } from '../../local/workflow';
import { fieldConflictLines } from '../../pipeline/bulk/field-conflicts';
import type { WorkflowInput } from '../../pipeline/contract/workflow';
import { describeError } from '../../pipeline/errors';
import {
  type CommandSpec,
  optionalInteger,
  optionalPositiveNumber,
  optionalString,
  type ParsedArgs,
  requiredString,
} from '../args';
import {
  CHANGE_SOURCE_DETAILS,
  CHANGE_SOURCE_FLAGS,
  type CliChangeSource,
  changeSourceFromArgs,
  checkChangeSourceArgs,
} from '../change-source';
import { EXIT, UsageError } from '../cli-error';
import type { Command } from '../command';
import {
  DYNAMODB_FLAGS,
  type DynamoDbTarget,
  dynamoDbFromArgs,
  ENDPOINT_DETAILS,
  explainDynamoDbError,
  explainEndpointError,
  explainOpenSearchError,
  INDEX_CONFIG_FLAGS,
  MAPPING_FLAGS,
  OPENSEARCH_FLAGS,
  type OpenSearchTarget,
  openSearchFromArgs,
  readIndexConfigFile,
  readMappingFile,
  streamsClientFor,
} from '../endpoints';
import type { CliIo } from '../io';
import { duration, fmt, ProgressDisplay } from '../progress';

export const runSpec: CommandSpec = {
  name: 'run',
  summary: 'backfill a table into an index on this machine, then optionally follow its stream',
  usage:
    'ddb2os run --table T --index I [--dynamodb-endpoint URL] [--opensearch-url URL] [--region R] [--mapping FILE] ' +
    '[--index-config FILE] [--segments N] ' +
    '[--concurrency N] [--read-units-per-second N] [--follow | --follow-for SECONDS] [--json] ' +
    '[--change-source stream|kinesis|sqs [--kinesis-stream NAME] [--change-queue URL|NAME] [--sqs-envelope E] [--fifo]]',
  flags: {
    table: {
      type: 'string',
      value: 'NAME',
      description: 'the DynamoDB table to backfill (it must have a stream)',
    },
    index: { type: 'string', value: 'NAME', description: 'the default OpenSearch index' },
    ...DYNAMODB_FLAGS,
    ...OPENSEARCH_FLAGS,
    ...MAPPING_FLAGS,
    ...INDEX_CONFIG_FLAGS,
    segments: {
      type: 'string',
      value: 'N',
      description: 'parallel-scan segments (default: from the table size)',
    },
    concurrency: { type: 'string', value: 'N', description: 'segments worked on at once (default 4)' },
    'read-units-per-second': {
      type: 'string',
      value: 'N',
      description: 'read budget per segment, in read capacity units per second (default: none)',
    },
    follow: {
      type: 'boolean',
      description: 'after the backfill, keep applying the table stream until Ctrl-C',
    },
    'follow-for': {
      type: 'string',
      value: 'SECONDS',
      description:
        'after the backfill, apply the stream for SECONDS, then everything it holds up to then, and exit',
    },
    'progress-table': {
      type: 'string',
      value: 'NAME',
      description: `DynamoDB table for checkpoints and stream positions (default ${DEFAULT_PROGRESS_TABLE}; created if missing)`,
    },
    'dead-letter-dir': {
      type: 'string',
      value: 'DIR',
      description: 'folder for items that could not be indexed, with their reasons (default .ddb2os)',
    },
    'run-id': {
      type: 'string',
      value: 'ID',
      description: 'resume this run (default: the unfinished run of this table)',
    },
    restart: { type: 'boolean', description: 'start a new run even if an unfinished one exists' },
    json: { type: 'boolean', description: 'print one summary object as the last line of stdout' },
    ...CHANGE_SOURCE_FLAGS,
  },
  details: [
    'The backfill only creates documents (existing ones are counted as already present); the stream updater is',
    'paused during it and then applies every change from the stream in order, so the index ends equal to the',
    'table. Ctrl-C stops after the current page of each segment; the same command resumes from the checkpoints.',
    'A failed segment fails the run (exit 1, its number on stderr); the same command reruns only that segment.',
    '',
    '--index-config FILE applies when the index is missing: ddb2os creates it with those settings and mappings',
    "over its own defaults (the file's dynamic templates first). A file that is not JSON or not of that shape",
    'stops the run before anything starts (exit 2); a setting or mapping OpenSearch refuses stops it before any',
    "item is read (exit 1, with OpenSearch's reason). An index that exists is used as it is, with a warning.",
    '',
    CHANGE_SOURCE_DETAILS,
    '',
    ENDPOINT_DETAILS,
  ].join('\n'),
  examples: [
    'ddb2os run --table orders --index orders --dynamodb-endpoint http://localhost:8000 --opensearch-url http://localhost:9200',
    'ddb2os run --table orders --index orders --region eu-west-1 --opensearch-url https://search-x.eu-west-1.es.amazonaws.com --read-units-per-second 200',
    'ddb2os run --table orders --index orders --follow-for 60 --json',
    'ddb2os run --table orders --index orders --index-config orders-index.json',
    'ddb2os run --table orders --index orders --change-source kinesis --kinesis-stream orders-changes --follow',
  ],
};

export interface RunSettings {
  table: string;
  index: string;
  segments?: number;
  concurrency?: number;
  readUnitsPerSecond?: number;
  follow: boolean;
  followForSeconds?: number;
}

/** The flags `run` shares with `resync`; `command` names the command whose --help a usage error points to. */
export function runSettings(args: ParsedArgs, command = 'run'): RunSettings {
  const follow = args.values.follow === true;
  const followForSeconds = optionalInteger(args, 'follow-for', 0, 7 * 24 * 3600);
  if (follow && followForSeconds !== undefined) {
    throw new UsageError('--follow and --follow-for exclude each other: give one');
  }
  return {
    table: requiredString(args, 'table', command),
    index: requiredString(args, 'index', command),
    segments: optionalInteger(args, 'segments', 1, 1_000_000),
    concurrency: optionalInteger(args, 'concurrency', 1, 10_000),
    readUnitsPerSecond: optionalPositiveNumber(args, 'read-units-per-second'),
    follow,
    followForSeconds,
  };
}

/** The workflow input of `--segments`, `--concurrency` and `--read-units-per-second`. */
export function workflowInput(settings: RunSettings): WorkflowInput {
  return {
    ...(settings.segments ? { totalSegments: settings.segments } : {}),
    ...(settings.concurrency ? { maxConcurrency: settings.concurrency } : {}),
    ...(settings.readUnitsPerSecond ? { readUnitsPerSecond: settings.readUnitsPerSecond } : {}),
  };
}

/** Turns backfill events into the progress display (created when the plan is known). */
export function progressReporter(io: CliIo): {
  onEvent: (event: BackfillEvent) => void;
  display: () => ProgressDisplay | undefined;
  /** "segments 2, 5 failed: " (the start of a failure's line), or "" when no segment failed. */
  failedSegmentsText: () => string;
} {
  let display: ProgressDisplay | undefined;
  const failed = new Set<number>();
  const onEvent = (event: BackfillEvent) => {
    switch (event.type) {
      case 'plan':
        display = new ProgressDisplay(io.stderr as never, event.totalSegments, event.itemCount);
        display.log(
          `${event.resumed ? 'resuming' : 'starting'} run ${event.runId}: ${fmt(event.totalSegments)} segments, ` +
            `about ${fmt(event.itemCount)} items (DescribeTable's estimate)`,
        );
        break;
      case 'segment-start':
        display?.update(event.segment, { state: event.attempt > 1 ? 'retrying' : 'running' });
        break;
      case 'segment-progress':
        display?.update(event.segment, {
          state: 'running',
          scanned: event.progress.scanned,
          created: event.progress.created,
          alreadyPresent: event.progress.alreadyPresent,
          failed: event.progress.failed,
        });
        break;
      case 'segment-done':
        failed.delete(event.segment);
        display?.update(event.segment, {
          state: 'done',
          scanned: event.result.scanned,
          created: event.result.created,
          alreadyPresent: event.result.alreadyPresent,
          failed: event.result.failed,
          note: undefined,
        });
        break;
      case 'segment-failed':
        failed.add(event.segment);
        display?.update(event.segment, { state: 'failed', note: `${event.error}: ${event.cause}` });
        break;
      case 'updater':
        display?.log(`stream updater ${event.state === 'Enabled' ? 'enabled' : 'paused'}`);
        break;
      case 'warning':
        if (display) display.log(`warning: ${event.message}`);
        else io.stderr.write(`ddb2os: warning: ${event.message}\n`);
        break;
    }
  };
  const failedSegmentsText = () => {
    const segments = [...failed].sort((a, b) => a - b);
    return segments.length > 0
      ? `segment${segments.length > 1 ? 's' : ''} ${segments.join(', ')} failed: `
      : '';
  };
  return { onEvent, display: () => display, failedSegmentsText };
}

/** The run's counts, per item: scanned = created + already present + skipped + failed. */
export function summaryLines(result: LocalBackfillResult): string[] {
  const s = result.summary;
  return [
    `backfill complete: run ${result.runId}`,
    `  segments                     ${fmt(s.segments)}`,
    `  items scanned                ${fmt(s.scanned)}`,
    `  items in new documents       ${fmt(s.created)}`,
    `  items already in the index   ${fmt(s.alreadyPresent)}`,
    `  items the mapping skips      ${fmt(s.skipped)}`,
    `  items dead-lettered          ${fmt(s.failed)}${s.failed > 0 ? `  (with reasons, in ${result.deadLetterLocation})` : ''}`,
    `  bulk items retried           ${fmt(s.retried)}`,
    `  duration                     ${duration(s.durationSeconds)}`,
    ...fieldConflictLines(s.fieldConflicts ?? []),
  ];
}

/** Both ends answer before anything starts, so a wrong URL is one clear line, not a failed workflow. */
export async function preflight(dynamodb: DynamoDbTarget, opensearch: OpenSearchTarget): Promise<void> {
  try {
    await opensearch.client.info();
  } catch (error) {
    throw explainOpenSearchError(error, opensearch);
  }
  try {
    await dynamodb.client.send(new ListTablesCommand({ Limit: 1 }));
  } catch (error) {
    throw explainDynamoDbError(error, dynamodb);
  }
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** What `run` and `resync` read from their shared flags, once both ends answered (preflight). */
export async function localRunContext(args: ParsedArgs, io: CliIo, command: string) {
  const settings = runSettings(args, command);
  const dynamodb = await dynamoDbFromArgs(args, io);
  const opensearch = openSearchFromArgs(args, io, command);
  const mapping = await readMappingFile(optionalString(args, 'mapping'), settings.index);
  const indexConfig = await readIndexConfigFile(optionalString(args, 'index-config'));
  const progressTable = optionalString(args, 'progress-table') ?? DEFAULT_PROGRESS_TABLE;
  const deadLetterDir = optionalString(args, 'dead-letter-dir') ?? '.ddb2os';
  await preflight(dynamodb, opensearch);
  return { settings, dynamodb, opensearch, mapping, indexConfig, progressTable, deadLetterDir };
}

/** The options of a local backfill (or resync) that the shared flags give. */
export function backfillOptions(
  context: Awaited<ReturnType<typeof localRunContext>>,
  streams: ReturnType<typeof streamsClientFor>,
) {
  const { settings } = context;
  return {
    dynamodb: context.dynamodb.client,
    streams,
    opensearch: context.opensearch.client,
    table: settings.table,
    index: settings.index,
    mapping: context.mapping,
    progressTable: context.progressTable,
    deadLetterDir: context.deadLetterDir,
    indexConfig: context.indexConfig,
    input: workflowInput(settings),
  };
}

export const runCommand: Command = {
  spec: runSpec,
  async run(args, io) {
    checkChangeSourceArgs(args);
    const context = await localRunContext(args, io, 'run');
    const { settings, dynamodb, opensearch } = context;
    const changeSource = await changeSourceFromArgs(
      args,
      io,
      dynamodb,
      settings.table,
      context.progressTable,
    );
    // Closed once, whatever ends the run: the backfill, the follow, or an error of either.
    try {
      // The AWS feature it stands in for runs all along; the updater (paused) does not consume meanwhile.
      changeSource.forwarder?.start();
      const reporter = progressReporter(io);
      const streams = streamsClientFor(dynamodb);
      let result: LocalBackfillResult;
      try {
        result = await runLocalBackfill({
          ...backfillOptions(context, streams),
          runId: optionalString(args, 'run-id'),
          restart: args.values.restart === true,
          onEvent: reporter.onEvent,
          signal: io.signal,
          changeSource: changeSource.source,
        });
      } catch (error) {
        reporter.display()?.finish();
        if (error instanceof WorkflowAbortedError) {
          io.stderr.write(`ddb2os: ${error.message}\n`);
          return EXIT.interrupted;
        }
        if (error instanceof WorkflowFailedError && reporter.display() === undefined) {
          // No plan yet, so no segment started: nothing was read and there is nothing to resume.
          io.stderr.write(
            `ddb2os: backfill of ${settings.table} stopped before any item was read: ${error.causeText}\n`,
          );
          return EXIT.failed;
        }
        if (error instanceof WorkflowFailedError) {
          const which = reporter.failedSegmentsText();
          io.stderr.write(
            `ddb2os: backfill of ${settings.table} failed: ${which}${error.error}: ${error.causeText}; ` +
              'the stream updater stays paused; run the same command again to rerun only the failed segments\n',
          );
          return EXIT.failed;
        }
        throw explainEndpointError(error, dynamodb, opensearch);
      } finally {
        streams.destroy();
      }
      reporter.display()?.finish();
      for (const line of summaryLines(result)) io.stdout.write(`${line}\n`);

      const stream = await followIfAsked(args, io, context, result, changeSource);
      if (args.values.json === true) {
        io.stdout.write(
          `${JSON.stringify({ ...result.summary, table: settings.table, index: settings.index, stream })}\n`,
        );
      }
      reportDeadLetters(io, result);
      return EXIT.ok;
    } finally {
      await changeSource.close();
    }
  },
};

/** `--follow` / `--follow-for`, when given, after the backfill (or a resync's swap); its figures for --json. */
export async function followIfAsked(
  args: ParsedArgs,
  io: CliIo,
  context: Awaited<ReturnType<typeof localRunContext>>,
  result: LocalBackfillResult,
  changeSource: CliChangeSource,
): Promise<{ records: number; seconds: number } | undefined> {
  const { settings } = context;
  if (!settings.follow && settings.followForSeconds === undefined) return undefined;
  const stream = await followStream(args, io, settings, result, { ...context, changeSource });
  io.stdout.write(`stream updater: ${fmt(stream.records)} records applied in ${duration(stream.seconds)}\n`);
  return stream;
}

/** Per-item failures do not fail the run: every one is in the dead-letter folder with its reason. */
export function reportDeadLetters(io: CliIo, result: LocalBackfillResult): void {
  if (result.summary.failed === 0) return;
  io.stderr.write(
    `ddb2os: ${fmt(result.summary.failed)} items could not be indexed; see ${result.deadLetterLocation} for each key and reason\n`,
  );
}

/** `--follow` / `--follow-for`: the updater applies the stream after the backfill (or a resync's swap). */
export async function followStream(
  _args: ParsedArgs,
  io: CliIo,
  settings: RunSettings,
  result: LocalBackfillResult,
  context: {
    dynamodb: DynamoDbTarget;
    opensearch: OpenSearchTarget;
    mapping: Awaited<ReturnType<typeof readMappingFile>>;
    progressTable: string;
    deadLetterDir: string;
    changeSource: CliChangeSource;
  },
): Promise<{ records: number; seconds: number }> {
  const started = Date.now();
  const streams = streamsClientFor(context.dynamodb);
  let records = 0;
  const updater = await createLocalUpdater({
    dynamodb: context.dynamodb.client,
    streams,
    opensearch: context.opensearch.client,
    table: settings.table,
    keySchema: result.keySchema,
    mapping: context.mapping,
    progressTable: context.progressTable,
    deadLetterDir: context.deadLetterDir,
    changeSource: context.changeSource.source,
    onBatch: (applied, lag) => {
      records += applied;
      if (applied > 0) {
        io.stderr.write(
          `${new Date().toISOString()} ${context.changeSource.source.kind}: ${fmt(applied)} records applied${lag === undefined ? '' : `, lag ${lag.toFixed(1)} s`}\n`,
        );
      }
    },
  });
  const { forwarder, label } = context.changeSource;
  // Locally the forwarder stands in for the AWS feature: what the table stream holds reaches the source first.
  const drain = async () => {
    await forwarder?.drain();
    return updater.drain();
  };
  try {
    io.stderr.write(
      settings.follow
        ? `following ${label} (Ctrl-C to stop)…\n`
        : `following ${label} for ${settings.followForSeconds} s…\n`,
    );
    await drain();
    updater.start();
    await sleep(settings.follow ? 2 ** 31 - 1 : (settings.followForSeconds ?? 0) * 1000, io.signal);
    await updater.stop();
    // Everything written before this moment reaches the index before we exit.
    await forwarder?.stop();
    if (!io.signal.aborted || !settings.follow) await drain();
    else await drain().catch((error) => io.stderr.write(`ddb2os: ${describeError(error)}\n`));
  } finally {
    streams.destroy();
  }
  return { records, seconds: (Date.now() - started) / 1000 };
}
