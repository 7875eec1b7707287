/**
 * `ddb2os replay`: apply the stream batches the updater gave up on, from the
 * local follower's failed-batches folder or the stack's stream failure queue.
 * docs/stream-updater.md ("Replay") says why each key's current state is
 * written rather than the batch's old images.
 */

import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { keyToString } from '../../pipeline/mapping/mapping';
import { repairKeys } from '../../pipeline/repair/repair-keys';
import {
  type FailedBatchSource,
  FolderFailedBatchSource,
  QueueFailedBatchSource,
} from '../../pipeline/replay/failed-batch-sources';
import {
  type BatchPlace,
  type RecordOutcome,
  type ReplaySummary,
  replayFailedBatches,
} from '../../pipeline/replay/replay-batches';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { optionalInteger, optionalString, type ParsedArgs, requiredString } from '../args';
import { EXIT, UsageError } from '../cli-error';
import { stackOutput } from '../cloud/arns';
import { type CloudDeps, resolveTarget, withDefaults } from '../cloud/aws';
import { CloudError, explainAwsError } from '../cloud/errors';
import type { Command } from '../command';
import {
  checkMappingFile,
  DYNAMODB_FLAGS,
  describeTableAt,
  dynamoDbFromArgs,
  ENDPOINT_DETAILS,
  explainEndpointError,
  MAPPING_FLAGS,
  OPENSEARCH_FLAGS,
  openSearchFromArgs,
  readMappingFile,
  streamsClientFor,
} from '../endpoints';
import type { CliIo } from '../io';
import { fmt } from '../progress';
import { DEFAULT_STACK } from './start';

/** Keys named in a record's line; the rest are counted. */
const KEYS_SHOWN = 5;

const DETAILS = [
  'Reads the on-failure records of the stream updater: without --stack or --queue-url, the local',
  "follower's files in <dead-letter-dir>/failed-batches/ (`ddb2os run --follow`); with them, the",
  "stack's StreamFailureQueue (SQS; its StreamFailureQueueUrl output). For each record, oldest first",
  "and a shard's records in sequence order, it reads the batch's records back from the stream",
  "(shard and sequence numbers) and writes the CURRENT state of each of the batch's keys from the",
  'table (a consistent read, a write conditioned on the version read: safe while the updater runs),',
  "never the batch's old images, which would undo later changes the updater already applied. A",
  'record is deleted only after every key of its batch is applied.',
  '',
  'A batch the stream no longer holds (streams keep 24 hours) is reported with its shard and time',
  'range, and kept; repair those changes from the table with the `ddb2os verify --repair` command',
  'printed. --discard-trimmed deletes such records once reported (the exit code stays 1). A record',
  'that is not an on-failure record is named and kept; the others are still replayed.',
  '',
  'Exit 0 when every record was replayed (or there was none), 1 when some remain (not held by the',
  'stream, failed, malformed), 2 for a usage error. Items that cannot be mapped go to',
  '--dead-letter-dir with their reasons, as in `ddb2os run`.',
  '',
  ENDPOINT_DETAILS,
].join('\n');

export function createReplayCommand(deps: CloudDeps = {}): Command {
  const cloud = withDefaults(deps);
  return {
    spec: {
      name: 'replay',
      summary: 'apply the stream batches the updater gave up on (failure queue or local folder)',
      usage:
        'ddb2os replay --table TABLE --index INDEX [--mapping FILE] [--dynamodb-endpoint URL] [--opensearch-url URL] ' +
        '[--dead-letter-dir DIR | --stack NAME | --queue-url URL] [--region REGION] [--profile NAME] ' +
        '[--discard-trimmed] [--max-records N]',
      flags: {
        table: { type: 'string', value: 'TABLE', description: 'the DynamoDB table the updater follows' },
        index: {
          type: 'string',
          value: 'INDEX',
          description: 'the index the updater writes, unless the mapping names it',
        },
        ...DYNAMODB_FLAGS,
        ...OPENSEARCH_FLAGS,
        ...MAPPING_FLAGS,
        'dead-letter-dir': {
          type: 'string',
          value: 'DIR',
          description:
            'local: the folder `ddb2os run` was given (records in DIR/failed-batches); dead letters go here (default .ddb2os)',
        },
        stack: {
          type: 'string',
          value: 'NAME',
          description: `cloud: the stack whose StreamFailureQueueUrl output names the queue (e.g. ${DEFAULT_STACK})`,
        },
        'queue-url': { type: 'string', value: 'URL', description: 'cloud: the stream failure queue itself' },
        'discard-trimmed': {
          type: 'boolean',
          description:
            'delete the records the stream no longer holds, once reported (repair them with verify --repair)',
        },
        'max-records': {
          type: 'string',
          value: 'N',
          description: 'records taken in one replay (default 1000; run again for more)',
        },
      },
      details: DETAILS,
      examples: [
        'ddb2os replay --table orders --index orders --dynamodb-endpoint http://localhost:8000 --opensearch-url http://localhost:9200',
        'ddb2os replay --stack Ddb2osBackfill --table orders --index orders --region eu-west-1 --opensearch-url https://search-orders-abc.eu-west-1.es.amazonaws.com',
        'ddb2os replay --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/StreamFailureQueue --table orders --mapping mapping.json --opensearch-url https://search-orders-abc.eu-west-1.es.amazonaws.com',
      ],
    },
    run: async (args, io) => {
      const table = requiredString(args, 'table', 'replay');
      const index = optionalString(args, 'index');
      const mappingFile = optionalString(args, 'mapping');
      const maxRecords = optionalInteger(args, 'max-records', 1, 100_000);
      const deadLetterDir = optionalString(args, 'dead-letter-dir') ?? '.ddb2os';
      const mapping = await readMappingFile(mappingFile, index);
      const source = await sourceFromArgs(args, io, deadLetterDir);
      const opensearch = openSearchFromArgs(args, io, 'replay');
      const dynamodb = await dynamoDbFromArgs(args, io);
      const streams = streamsClientFor(dynamodb);
      try {
        const description = await describeTableAt(dynamodb, table, io.signal);
        checkMappingFile(mapping, description.keySchema, mappingFile);
        const keySchema = description.keySchema;
        const deadLetters = new DirectoryDeadLetterSink(deadLetterDir);
        io.stdout.write(`replaying the failed stream batches in ${source.location}\n`);
        const summary = await replayFailedBatches({
          source,
          streams,
          table,
          keySchema,
          applyKeys: (targets) =>
            repairKeys(targets, {
              opensearch: opensearch.client,
              dynamodb: dynamodb.client,
              table,
              keySchema,
              mapping,
              deadLetters,
              runId: 'replay',
            }),
          discardTrimmed: args.values['discard-trimmed'] === true,
          signal: io.signal,
          ...(maxRecords !== undefined ? { maxRecords } : {}),
          onRecord: (outcome) => io.stdout.write(`${outcomeLine(outcome, keySchema)}\n`),
        });
        for (const line of summaryLines(summary, source.location, verifyRepairCommand(args))) {
          io.stdout.write(`${line}\n`);
        }
        if (summary.remaining === 0 && summary.trimmed === 0) return EXIT.ok;
        io.stderr.write(
          `ddb2os: ${fmt(summary.remaining)} of ${fmt(summary.outcomes.length)} failed stream batches remain in ${source.location}\n`,
        );
        return EXIT.failed;
      } catch (error) {
        if (error instanceof UsageError || error instanceof CloudError) throw error;
        throw explainEndpointError(error, dynamodb, opensearch);
      } finally {
        streams.destroy();
        dynamodb.client.destroy();
        await opensearch.client.close().catch(() => undefined);
      }
    },
  };

  async function sourceFromArgs(
    args: ParsedArgs,
    io: CliIo,
    deadLetterDir: string,
  ): Promise<FailedBatchSource> {
    const stack = optionalString(args, 'stack');
    const queueUrl = optionalString(args, 'queue-url');
    if (stack !== undefined && queueUrl !== undefined) {
      throw new UsageError('pass either --stack or --queue-url, not both');
    }
    if (stack === undefined && queueUrl === undefined) return new FolderFailedBatchSource(deadLetterDir);
    if (queueUrl !== undefined && !/^https:\/\/\S+\/\d{12}\/\S+$/.test(queueUrl)) {
      throw new UsageError(
        `--queue-url "${queueUrl}" is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)`,
      );
    }
    const target = await resolveTarget(args, io, cloud);
    const url =
      queueUrl ??
      (await stackOutput(cloud.cloudFormation(target), stack as string, 'StreamFailureQueueUrl', target));
    const sqs = cloud.sqs(target);
    const source = new QueueFailedBatchSource(sqs, url);
    return {
      location: source.location,
      receive: (max) => source.receive(max).catch((error) => Promise.reject(explainAwsError(error, target))),
      remove: (message) => source.remove(message),
      release: (messages) => source.release(messages),
    };
  }
}

/** One line per record: what happened, where in the stream, which keys. */
export function outcomeLine(outcome: RecordOutcome, keySchema: KeySchema): string {
  if (outcome.kind === 'malformed')
    // The reason names the file or message.
    return `malformed  ${outcome.reason} (kept)`;
  const where = placeText(outcome.place);
  switch (outcome.kind) {
    case 'replayed': {
      const a = outcome.applied;
      return (
        `replayed   ${where}: ${fmt(outcome.records)} records, ${keysText(outcome.keys, keySchema)}: ` +
        `${fmt(a.indexed)} written, ${fmt(a.deleted)} deleted, ${fmt(a.superseded)} superseded, ` +
        `${fmt(a.unchanged)} unchanged${a.deadLettered > 0 ? `, ${fmt(a.deadLettered)} dead-lettered` : ''} (${outcome.name} removed)`
      );
    }
    case 'trimmed':
      return (
        `trimmed    ${where}${timeRange(outcome.place)}: the stream no longer holds these records: ` +
        `${outcome.reason} (${outcome.name} ${outcome.discarded ? 'deleted: --discard-trimmed' : 'kept'})`
      );
    case 'failed':
      return `failed     ${where}${outcome.keys ? `, ${keysText(outcome.keys, keySchema)}` : ''}: ${outcome.reason} (${outcome.name} kept)`;
    case 'skipped':
      return `not tried  ${where}: interrupted (${outcome.name} kept)`;
  }
}

/** The final lines: the counts and, when the stream no longer holds a batch, the command that repairs it. */
export function summaryLines(summary: ReplaySummary, location: string, repairCommand: string): string[] {
  if (summary.outcomes.length === 0) return [`nothing to replay: ${location} holds no failed stream batch`];
  const lines = [
    `replay: ${fmt(summary.outcomes.length)} records: ${fmt(summary.replayed)} replayed, ${fmt(summary.trimmed)} ` +
      `no longer in the stream, ${fmt(summary.failed)} failed, ${fmt(summary.malformed)} malformed` +
      `${summary.skipped > 0 ? `, ${fmt(summary.skipped)} not tried` : ''}; ${fmt(summary.remaining)} remain in ${location}`,
  ];
  if (summary.trimmed > 0) {
    lines.push(
      'The changes of the batches the stream no longer holds can only be recovered from the table: run',
      `  ${repairCommand}`,
    );
  }
  if (summary.failed > 0 || summary.skipped > 0)
    lines.push('Run the same replay again for the records that failed.');
  return lines;
}

/** `ddb2os verify --repair` against the same table, index and endpoints as this replay. */
export function verifyRepairCommand(args: ParsedArgs): string {
  const parts = ['ddb2os verify --repair'];
  for (const flag of [
    'table',
    'index',
    'mapping',
    'dynamodb-endpoint',
    'opensearch-url',
    'region',
    'profile',
  ]) {
    const value = optionalString(args, flag);
    if (value !== undefined) parts.push(`--${flag} ${shellWord(value)}`);
  }
  return parts.join(' ');
}

function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

function placeText(place: BatchPlace): string {
  return `${place.shardId} ${place.startSequenceNumber}..${place.endSequenceNumber}`;
}

function timeRange(place: BatchPlace): string {
  const first = place.approximateArrivalOfFirstRecord;
  const last = place.approximateArrivalOfLastRecord;
  if (first === undefined && last === undefined) return '';
  return ` (changes from ${first ?? '?'} to ${last ?? '?'})`;
}

function keysText(keys: Item[], keySchema: KeySchema): string {
  const names = keys.slice(0, KEYS_SHOWN).map((key) => {
    const partition = key[keySchema.partitionKey];
    const sort = keySchema.sortKey === undefined ? undefined : key[keySchema.sortKey];
    return [partition, sort]
      .filter((part) => part !== undefined)
      .map((part) => keyToString(part as NonNullable<typeof part>))
      .join('|');
  });
  const more = keys.length > KEYS_SHOWN ? `, … ${fmt(keys.length - KEYS_SHOWN)} more` : '';
  return `${fmt(keys.length)} key${keys.length === 1 ? '' : 's'} (${names.join(', ')}${more})`;
}

export const replayCommand = createReplayCommand();
