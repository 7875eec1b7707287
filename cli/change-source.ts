/**
 * `--change-source stream|kinesis|sqs` for `ddb2os run` and `ddb2os demo`:
 * where the local updater takes the table's changes from, the client of that
 * source, and, when the table is in DynamoDB Local (which can stream to
 * neither), the change forwarder that stands in for the AWS feature feeding
 * it. A stream or queue that does not exist on a local engine is created,
 * with a line that says so; on AWS it must exist.
 */
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ResourceNotFoundException,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueUrlCommand, QueueDoesNotExist, SQSClient } from '@aws-sdk/client-sqs';
import {
  type ChangeForwarder,
  createChangeForwarder,
  SQS_ENVELOPES,
  type SqsEnvelope,
} from '../local/change-forwarder';
import { ChangeSourceError } from '../pipeline/errors';
import { type ChangeSource, kinesisStreamName } from '../pipeline/summarize/source-retention';
import { type FlagSpec, optionalString, type ParsedArgs } from './args';
import { UsageError } from './cli-error';
import { type DynamoDbTarget, isLocalEndpoint, streamsClientFor } from './endpoints';
import type { CliIo } from './io';

/** The flags of the change source. */
export const CHANGE_SOURCE_FLAGS: Record<string, FlagSpec> = {
  'change-source': {
    type: 'string',
    value: 'stream|kinesis|sqs',
    description: "where the updater reads the table's changes (default stream, the table's DynamoDB stream)",
  },
  'kinesis-stream': {
    type: 'string',
    value: 'NAME',
    description:
      'with --change-source kinesis: the Kinesis data stream, name or ARN (default <table>-changes)',
  },
  'change-queue': {
    type: 'string',
    value: 'URL|NAME',
    description: 'with --change-source sqs: the SQS queue (default <table>-changes, .fifo with --fifo)',
  },
  'sqs-envelope': {
    type: 'string',
    value: SQS_ENVELOPES.join('|'),
    description: 'with --change-source sqs: how the fan-out wraps each record (default pipes)',
  },
  fifo: { type: 'boolean', description: 'with --change-source sqs: the queue is a FIFO queue' },
  'kinesis-endpoint': {
    type: 'string',
    value: 'URL',
    description: 'Kinesis endpoint, e.g. kinesalite (default: KINESIS_ENDPOINT, else AWS)',
  },
  'sqs-endpoint': {
    type: 'string',
    value: 'URL',
    description: 'SQS endpoint, e.g. ElasticMQ (default: SQS_ENDPOINT, else AWS)',
  },
};

export const CHANGE_SOURCE_DETAILS = [
  "Change sources: the table's DynamoDB stream (default), a Kinesis data stream the table streams to",
  '(--change-source kinesis), or an SQS queue fed by a fan-out of its stream (--change-source sqs: EventBridge',
  'Pipes, SNS raw or enveloped, or EventBridge; --sqs-envelope). Their retention bounds the retention budget.',
  'With DynamoDB Local, which can stream to neither, a change forwarder stands in for the AWS feature and',
  'carries the table stream to the source; a stream or queue missing on a local engine is created.',
].join('\n');

/** The chosen source, its client, and the forwarder that feeds it locally. */
export interface CliChangeSource {
  source: ChangeSource;
  /** What a person reads: "the table stream", "Kinesis stream orders-changes", … */
  label: string;
  /** Only with a local DynamoDB and a source other than the stream. */
  forwarder?: ChangeForwarder;
  close(): Promise<void>;
}

type Kind = ChangeSource['kind'];

function kindOf(args: ParsedArgs): Kind {
  const kind = optionalString(args, 'change-source') ?? 'stream';
  if (kind !== 'stream' && kind !== 'kinesis' && kind !== 'sqs') {
    throw new UsageError(`--change-source must be stream, kinesis or sqs, not "${kind}"`);
  }
  const misplaced = (
    kind === 'kinesis'
      ? ['change-queue', 'sqs-envelope', 'fifo', 'sqs-endpoint']
      : kind === 'sqs'
        ? ['kinesis-stream', 'kinesis-endpoint']
        : ['kinesis-stream', 'change-queue', 'sqs-envelope', 'fifo', 'kinesis-endpoint', 'sqs-endpoint']
  ).filter((flag) => args.values[flag] !== undefined);
  if (misplaced.length > 0) {
    throw new UsageError(`--${misplaced[0]} does not go with --change-source ${kind}`);
  }
  return kind;
}

/** The envelope of --sqs-envelope (checked before anything starts). */
function envelopeOf(args: ParsedArgs): SqsEnvelope {
  const envelope = optionalString(args, 'sqs-envelope') ?? 'pipes';
  if (!(SQS_ENVELOPES as readonly string[]).includes(envelope)) {
    throw new UsageError(`--sqs-envelope must be one of ${SQS_ENVELOPES.join(', ')}, not "${envelope}"`);
  }
  return envelope as SqsEnvelope;
}

/** Checks the flags alone, before any engine is touched (a typo costs nothing). */
export function checkChangeSourceArgs(args: ParsedArgs): Kind {
  const kind = kindOf(args);
  if (kind === 'sqs') envelopeOf(args);
  return kind;
}

/**
 * Opens the source of the flags for `table`; creates a missing stream or
 * queue on a local engine, and the forwarder when DynamoDB is local (not
 * started: the caller starts it before the backfill).
 */
/** The table's own DynamoDB stream: the default source, and the one a local resync follows. */
export const TABLE_STREAM: CliChangeSource = {
  source: { kind: 'stream' },
  label: 'the table stream',
  close: async () => {},
};

export async function changeSourceFromArgs(
  args: ParsedArgs,
  io: CliIo,
  dynamodb: DynamoDbTarget,
  table: string,
  progressTable: string,
): Promise<CliChangeSource> {
  const kind = kindOf(args);
  if (kind === 'stream') return TABLE_STREAM;
  const credentials = dynamodb.client.config.credentials;
  const say = (line: string) => io.stderr.write(`${line}\n`);
  let source: ChangeSource;
  let label: string;
  let destroy: () => void;
  let forwarderTarget: Parameters<typeof createChangeForwarder>[0]['target'];
  if (kind === 'kinesis') {
    const endpoint = optionalString(args, 'kinesis-endpoint') ?? (io.env.KINESIS_ENDPOINT || undefined);
    const kinesis = new KinesisClient({
      region: dynamodb.region,
      credentials,
      ...(endpoint ? { endpoint } : {}),
    });
    const stream = optionalString(args, 'kinesis-stream') ?? `${table}-changes`;
    await ensureKinesisStream(kinesis, stream, endpoint, say);
    source = { kind, kinesis, stream };
    label = `Kinesis stream ${kinesisStreamName(stream)}`;
    destroy = () => kinesis.destroy();
    forwarderTarget = { kind, kinesis, stream };
  } else {
    const endpoint = optionalString(args, 'sqs-endpoint') ?? (io.env.SQS_ENDPOINT || undefined);
    const sqs = new SQSClient({ region: dynamodb.region, credentials, ...(endpoint ? { endpoint } : {}) });
    const fifo = args.values.fifo === true;
    const queueUrl = await ensureQueue(
      sqs,
      optionalString(args, 'change-queue') ?? `${table}-changes`,
      fifo,
      endpoint,
      say,
    );
    source = { kind, sqs, queueUrl };
    label = `${fifo ? 'FIFO ' : ''}queue ${queueUrl}`;
    destroy = () => sqs.destroy();
    forwarderTarget = { kind, sqs, queueUrl, envelope: envelopeOf(args), fifo };
  }
  let forwarder: ChangeForwarder | undefined;
  const streams = dynamodb.local ? streamsClientFor(dynamodb) : undefined;
  if (streams) {
    forwarder = await createChangeForwarder({
      streams,
      dynamodb: dynamodb.client,
      table,
      progressTable,
      target: forwarderTarget,
      log: say,
    });
  }
  return {
    source,
    label,
    ...(forwarder ? { forwarder } : {}),
    close: async () => {
      await forwarder?.stop();
      streams?.destroy();
      destroy();
    },
  };
}

/** The stream, created (1 shard) when a local engine lacks it; on AWS a missing stream is an error. */
async function ensureKinesisStream(
  kinesis: KinesisClient,
  stream: string,
  endpoint: string | undefined,
  say: (line: string) => void,
): Promise<void> {
  const StreamName = kinesisStreamName(stream);
  try {
    await kinesis.send(new DescribeStreamSummaryCommand({ StreamName }));
    return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) {
      throw new ChangeSourceError(`Kinesis stream ${StreamName} cannot be read`, { cause: error });
    }
    if (!endpoint || !isLocalEndpoint(endpoint)) {
      throw new ChangeSourceError(
        `Kinesis stream ${StreamName} does not exist: create it and stream the table to it (Kinesis Data Streams for DynamoDB)`,
        { cause: error },
      );
    }
  }
  await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, { StreamName });
  say(`created Kinesis stream ${StreamName} (1 shard) at ${endpoint}: it was missing`);
}

/** The queue's URL; a name missing on a local engine is created (FIFO with --fifo). */
async function ensureQueue(
  sqs: SQSClient,
  queue: string,
  fifo: boolean,
  endpoint: string | undefined,
  say: (line: string) => void,
): Promise<string> {
  if (/^https?:\/\//.test(queue)) return queue;
  const QueueName = fifo && !queue.endsWith('.fifo') ? `${queue}.fifo` : queue;
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName }));
    if (QueueUrl) return QueueUrl;
  } catch (error) {
    if (
      !(error instanceof QueueDoesNotExist) &&
      (error as Error)?.name !== 'AWS.SimpleQueueService.NonExistentQueue'
    ) {
      throw new ChangeSourceError(`SQS queue ${QueueName} cannot be read`, { cause: error });
    }
    if (!endpoint || !isLocalEndpoint(endpoint)) {
      throw new ChangeSourceError(
        `SQS queue ${QueueName} does not exist: create it and subscribe it to the fan-out of the table stream`,
        { cause: error },
      );
    }
  }
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName, ...(fifo ? { Attributes: { FifoQueue: 'true' } } : {}) }),
  );
  say(`created ${fifo ? 'FIFO ' : ''}SQS queue ${QueueName} at ${endpoint}: it was missing`);
  return QueueUrl as string;
}
