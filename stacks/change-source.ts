/**
 * The updater's change source and its event source mapping: the table's
 * DynamoDB stream (the default), a Kinesis data stream the table streams to,
 * or an SQS queue a fan-out fills (docs/deploy.md, "Change sources").
 *
 * The workflow pauses and enables exactly one mapping, whatever its source:
 * it is created disabled (the first backfill enables it), and its UUID goes
 * into the definition, the run-lock function, the watchdog and the deploy
 * guard. What differs per source:
 *
 * - A stream (DynamoDB or Kinesis) keeps a shard's order, so the mapping
 *   starts at TRIM_HORIZON, bisects a failing batch, retries it until its
 *   records are `updaterMaxRecordAge` old and then sends an on-failure record
 *   to the stream failure queue for `ddb2os replay`.
 * - A queue has no order and no position: Lambda retries a message until the
 *   queue's own redrive policy (the user's, not ours) moves it to its
 *   dead-letter queue, or its retention ends. SQS mappings take no
 *   on-failure destination, starting position or record age.
 *
 * The grants are written out rather than taken from CDK's event sources:
 * `IStream.grantRead` adds SubscribeToShard, ListStreams and
 * DescribeStreamConsumer (enhanced fan-out, which the mapping does not use),
 * and `IQueue.grantConsumeMessages` adds GetQueueUrl.
 */
import { Duration, Token } from 'aws-cdk-lib';
import type { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IStream } from 'aws-cdk-lib/aws-kinesis';
import { type Function as LambdaFunction, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { type CfnQueue, type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  CHANGE_SOURCES,
  type ChangeSourceKind,
  isChangeSourceKind,
} from '../pipeline/contract/change-source';
import { ENV } from '../pipeline/contract/env';

export type { ChangeSourceKind } from '../pipeline/contract/change-source';

/** The props of BackfillWorkflow that choose and tune the change source. */
export interface ChangeSourceProps {
  /**
   * Where the updater takes the table's changes from: the table's DynamoDB
   * stream, a Kinesis data stream the table streams to (`kinesisStream`), or
   * an SQS queue filled by a fan-out of the table's stream (`changeQueue`).
   * @default 'dynamodb-stream'
   */
  readonly changeSource?: ChangeSourceKind;
  /**
   * The Kinesis data stream the table streams to (Kinesis Data Streams for
   * DynamoDB), in the stack's region. Only with `changeSource: 'kinesis'`.
   * Encrypted with a customer managed key: import it with its
   * `encryptionKey`, and the updater gets kms:Decrypt on it.
   * @default - none: required with changeSource 'kinesis'
   */
  readonly kinesisStream?: IStream;
  /**
   * The SQS queue (standard or FIFO) that EventBridge Pipes, an SNS
   * subscription or an EventBridge rule fills with the table's stream
   * records, in the stack's region. Only with `changeSource: 'sqs'`. Its
   * redrive policy is yours: ddb2os does not change the queue. Its
   * visibility timeout must be at least the updater's timeout (5 minutes).
   * Encrypted with a customer managed key: import it with its `keyArn`, and
   * the updater gets kms:Decrypt on it.
   * @default - none: required with changeSource 'sqs'
   */
  readonly changeQueue?: IQueue;
  /**
   * Messages per updater invocation. 1 to 10 for a FIFO queue, 1 to 10,000
   * for a standard queue (above 10 with a batching window of at least 1 second).
   * @default - 100 for a standard queue, 10 for a FIFO queue
   */
  readonly changeQueueBatchSize?: number;
  /**
   * How long Lambda gathers messages before it invokes the updater; standard
   * queues only (Lambda refuses a window for FIFO queues). At most 5 minutes.
   * @default - 1 second for a standard queue, none for a FIFO queue
   */
  readonly changeQueueBatchingWindow?: Duration;
  /**
   * Most updater invocations at once on the change queue (the event source's
   * maximum concurrency), which bounds the write load on the domain. 2 to 1,000.
   * @default 5
   */
  readonly changeQueueMaxConcurrency?: number;
  /**
   * Stream records per updater invocation, for a stream source (DynamoDB or
   * Kinesis): 1 to 1,000 for the table's stream (what CDK's DynamoDB event
   * source takes), 1 to 10,000 for a Kinesis stream. Larger batches spend
   * less of each invocation on its fixed costs (the resync state read, a
   * bulk request's round trip). Not for an SQS source (`changeQueueBatchSize`).
   * @default 100
   */
  readonly updaterBatchSize?: number;
  /**
   * Batches of one shard the updater applies at once (the event source
   * mapping's ParallelizationFactor), for a stream source: 1 to 10. Lambda
   * keeps each item's changes in order across the concurrent batches, so a
   * document written from one item stays in order; a document built from
   * several items (`mapping.aggregate`, or a `transformModule`, which may
   * merge items) does not, and the table's stream refuses more than 1 with
   * either (docs/stream-updater.md, "Concurrent batches of a shard"). A
   * Kinesis source is applied without relying on order and takes any
   * factor. Not for an SQS source (`changeQueueMaxConcurrency`).
   * @default 1
   */
  readonly updaterParallelizationFactor?: number;
}

/** What a source keeps and for how long at most, for the checks of the durations that depend on it. */
export interface ChangeSourceLimits {
  /** The longest the source can keep a change (a budget or an alarm threshold must stay below it). */
  readonly maxRetention: Duration;
  /** `maxRetention` in a message, with what it is. */
  readonly retention: string;
  /** The longest MaximumRecordAge its mapping takes; none for a queue. */
  readonly maxRecordAge?: Duration;
}

/** The change source after checking. */
export type ChangeSource =
  | ({ readonly kind: 'dynamodb-stream'; readonly limits: ChangeSourceLimits } & StreamBatches)
  | ({
      readonly kind: 'kinesis';
      readonly limits: ChangeSourceLimits;
      readonly stream: IStream;
    } & StreamBatches)
  | {
      readonly kind: 'sqs';
      readonly limits: ChangeSourceLimits;
      readonly queue: IQueue;
      readonly fifo: boolean;
      readonly batchSize: number;
      readonly batchingWindow?: Duration;
      readonly maxConcurrency: number;
    };

/** How a stream source's mapping hands records to the updater. */
export interface StreamBatches {
  readonly batchSize: number;
  readonly parallelizationFactor: number;
}

const LIMITS: Record<ChangeSourceKind, ChangeSourceLimits> = {
  'dynamodb-stream': {
    maxRetention: Duration.hours(24),
    retention: '24 hours, the DynamoDB stream retention',
    maxRecordAge: Duration.hours(24),
  },
  // A mapping's MaximumRecordAge stops at 7 days, however long the stream keeps records.
  kinesis: {
    maxRetention: Duration.days(365),
    retention: '365 days, the longest a Kinesis data stream keeps records',
    maxRecordAge: Duration.days(7),
  },
  sqs: { maxRetention: Duration.days(14), retention: '14 days, the longest an SQS queue keeps a message' },
};

/** A Kinesis data stream's ARN; its region is the 4th field. */
export const KINESIS_STREAM_ARN =
  /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):\d{12}:stream\/[A-Za-z0-9_.-]{1,128}$/;
/** An SQS queue's ARN; a FIFO queue's name ends in `.fifo`. */
export const SQS_QUEUE_ARN = /^arn:aws[a-z-]*:sqs:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,75}(\.fifo)?$/;
/** The example ARN each message shows. */
export const EXAMPLE_ARNS = {
  kinesis: 'arn:aws:kinesis:us-east-1:123456789012:stream/orders',
  sqs: 'arn:aws:sqs:us-east-1:123456789012:orders-changes',
} as const;

/** What the check needs besides the source props. */
interface SourceContext {
  readonly table: ITable;
  readonly updaterMaxRecordAge?: Duration;
}

/**
 * Checks the change source props against each other and the table; every
 * message names the prop. Runs at synth, before anything is built.
 */
export function resolveChangeSource(props: ChangeSourceProps & SourceContext): ChangeSource {
  const kind = props.changeSource ?? CHANGE_SOURCES[0];
  if (!isChangeSourceKind(kind)) {
    throw new Error(
      `BackfillWorkflow: changeSource must be one of ${CHANGE_SOURCES.join(', ')} (got ${String(kind)}).`,
    );
  }
  refuseForeignProps(kind, props);
  const limits = LIMITS[kind];
  if (kind === 'dynamodb-stream') {
    if (!props.table.tableStreamArn) {
      throw new Error(
        `BackfillWorkflow: the table ${props.table.node.path} has no stream, and the updater follows the stream. ` +
          'Enable a stream (NEW_AND_OLD_IMAGES or NEW_IMAGE) on the table; for an imported table, ' +
          "pass its stream ARN as tableStreamArn to Table.fromTableAttributes. Or follow a Kinesis data stream (changeSource: 'kinesis') or an SQS queue (changeSource: 'sqs').",
      );
    }
    return { kind, limits, ...streamBatches(props, 1000) };
  }
  if (kind === 'kinesis') {
    const stream = props.kinesisStream;
    if (!stream) {
      throw new Error(
        "BackfillWorkflow: changeSource 'kinesis' needs kinesisStream, the Kinesis data stream the table streams to " +
          '(Kinesis Data Streams for DynamoDB); from context: -c kinesisStreamArn=arn:aws:kinesis:REGION:ACCOUNT:stream/NAME.',
      );
    }
    requireArn('kinesisStream', stream.streamArn, KINESIS_STREAM_ARN, EXAMPLE_ARNS.kinesis);
    return { kind, limits, stream, ...streamBatches(props, 10_000) };
  }
  const queue = props.changeQueue;
  if (!queue) {
    throw new Error(
      "BackfillWorkflow: changeSource 'sqs' needs changeQueue, the SQS queue a fan-out of the table's stream fills " +
        '(EventBridge Pipes, SNS, an EventBridge rule); from context: -c changeQueueArn=arn:aws:sqs:REGION:ACCOUNT:NAME.',
    );
  }
  requireArn('changeQueue', queue.queueArn, SQS_QUEUE_ARN, EXAMPLE_ARNS.sqs);
  if (props.updaterMaxRecordAge !== undefined) {
    throw new Error(
      "BackfillWorkflow: updaterMaxRecordAge applies to stream sources, not to changeSource 'sqs': Lambda retries a " +
        "message until the queue's redrive policy moves it to its dead-letter queue, or its retention ends.",
    );
  }
  return { kind, limits, queue, ...queueSettings(props, queue) };
}

/** A prop of another source is a mistake (a forgotten changeSource, most likely): say which. */
function refuseForeignProps(kind: ChangeSourceKind, props: ChangeSourceProps): void {
  const owners: [keyof ChangeSourceProps, ChangeSourceKind][] = [
    ['kinesisStream', 'kinesis'],
    ['changeQueue', 'sqs'],
    ['changeQueueBatchSize', 'sqs'],
    ['changeQueueBatchingWindow', 'sqs'],
    ['changeQueueMaxConcurrency', 'sqs'],
  ];
  if (kind === 'sqs') {
    for (const [prop, instead] of [
      ['updaterBatchSize', 'changeQueueBatchSize'],
      ['updaterParallelizationFactor', 'changeQueueMaxConcurrency'],
    ] as const) {
      if (props[prop] !== undefined) {
        throw new Error(
          `BackfillWorkflow: ${prop} applies to stream sources, not to changeSource 'sqs'; set ${instead} for a queue.`,
        );
      }
    }
  }
  for (const [prop, owner] of owners) {
    if (props[prop] !== undefined && owner !== kind) {
      throw new Error(
        `BackfillWorkflow: ${prop} is given, but changeSource is ${kind}; set changeSource: '${owner}' to use it, or leave ${prop} out.`,
      );
    }
  }
}

function streamBatches(props: ChangeSourceProps, maxBatchSize: number): StreamBatches {
  const batchSize = props.updaterBatchSize ?? 100;
  const parallelizationFactor = props.updaterParallelizationFactor ?? 1;
  requireWhole(
    'updaterBatchSize',
    batchSize,
    1,
    maxBatchSize,
    ` for a ${props.changeSource ?? 'dynamodb-stream'} source`,
  );
  requireWhole('updaterParallelizationFactor', parallelizationFactor, 1, 10, '');
  return { batchSize, parallelizationFactor };
}

function requireArn(prop: string, arn: string, pattern: RegExp, example: string): void {
  if (!Token.isUnresolved(arn) && !pattern.test(arn)) {
    throw new Error(`BackfillWorkflow: ${prop} must be named by an ARN like ${example} (got ${arn}).`);
  }
}

function queueSettings(
  props: ChangeSourceProps,
  queue: IQueue,
): { fifo: boolean; batchSize: number; batchingWindow?: Duration; maxConcurrency: number } {
  // An imported queue whose ARN is a token cannot tell; its name's .fifo suffix is the rule for FIFO queues.
  const fifo = queue.fifo || (!Token.isUnresolved(queue.queueArn) && queue.queueArn.endsWith('.fifo'));
  const batchSize = props.changeQueueBatchSize ?? (fifo ? 10 : 100);
  const batchingWindow = props.changeQueueBatchingWindow ?? (fifo ? undefined : Duration.seconds(1));
  const maxConcurrency = props.changeQueueMaxConcurrency ?? 5;
  requireWhole('changeQueueBatchSize', batchSize, 1, fifo ? 10 : 10_000, fifo ? ' for a FIFO queue' : '');
  requireWhole('changeQueueMaxConcurrency', maxConcurrency, 2, 1000, '');
  if (batchingWindow !== undefined) {
    if (fifo) {
      throw new Error(
        'BackfillWorkflow: changeQueueBatchingWindow is not allowed for a FIFO queue: Lambda takes no batching window for FIFO event sources.',
      );
    }
    if (batchingWindow.toSeconds() > 300) {
      throw new Error(
        `BackfillWorkflow: changeQueueBatchingWindow must be at most 5 minutes (got ${batchingWindow.toHumanString()}).`,
      );
    }
  }
  if (batchSize > 10 && (batchingWindow === undefined || batchingWindow.toSeconds() < 1)) {
    throw new Error(
      `BackfillWorkflow: changeQueueBatchSize ${batchSize} needs a changeQueueBatchingWindow of at least 1 second: ` +
        'Lambda refuses batches of more than 10 messages without one.',
    );
  }
  return { fifo, batchSize, ...(batchingWindow ? { batchingWindow } : {}), maxConcurrency };
}

function requireWhole(name: string, value: number, min: number, max: number, where: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(
      `BackfillWorkflow: ${name} must be a whole number from ${min} to ${max}${where} (got ${value}).`,
    );
  }
}

/** How far behind the updater is, as CloudWatch measures it for the source. */
export interface SourceLag {
  /** Maximum per period: Lambda's IteratorAge (ms) for a stream, SQS ApproximateAgeOfOldestMessage (s) for a queue. */
  readonly metric: Metric;
  /** The metric's value for `age` (the two metrics count in different units). */
  threshold(age: Duration): number;
  /** What the metric is, with its unit, for a dashboard. */
  readonly label: string;
}

/** The updater's event source mapping, and what watches its source. */
export interface UpdaterSource {
  readonly source: ChangeSource;
  /** The mapping's UUID: the definition pauses and enables it. */
  readonly mappingId: string;
  readonly mappingArn: string;
  /** Where a stream mapping sends the batches it gave up on (`ddb2os replay` reads it); none for a queue. */
  readonly failureQueue?: Queue;
  /** The change queue's dead-letter queue, when its redrive policy is known here (a Queue of this app). */
  readonly queueDeadLetterQueue?: IQueue;
  readonly lag: SourceLag;
}

/** What the mapping is built from. */
export interface UpdaterSourceSettings {
  /** The workflow: the stream failure queue is its child, as it always was. */
  readonly scope: Construct;
  readonly updater: LambdaFunction;
  readonly table: ITable;
  readonly source: ChangeSource;
  readonly updaterMaxRecordAge: Duration;
}

/** Builds the updater's (disabled) event source mapping for the source, with its grants. */
export function addUpdaterSource(settings: UpdaterSourceSettings): UpdaterSource {
  const { updater, source } = settings;
  const iteratorAge: SourceLag = {
    metric: updater.metric('IteratorAge', { period: Duration.minutes(1), statistic: 'Maximum' }),
    threshold: (age) => age.toMilliseconds(),
    label: 'Updater iterator age (ms)',
  };
  if (source.kind === 'sqs') return addQueueSource(settings, source);
  const failureQueue = new Queue(settings.scope, 'StreamFailureQueue', {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  const streamSettings = {
    // The workflow enables the mapping after the first backfill; from then on the
    // updater replays the stream from the oldest record it has not applied.
    enabled: false,
    startingPosition: StartingPosition.TRIM_HORIZON,
    batchSize: source.batchSize,
    // Above 1, Lambda keeps each item's records in order across the shard's concurrent batches; the
    // workflow's props refuse it where a document depends on more than one item (stream-updater.md).
    // Left out at 1 (Lambda's default): a template that did not change keeps its mapping as it was.
    ...(source.parallelizationFactor > 1 ? { parallelizationFactor: source.parallelizationFactor } : {}),
    // A poison record is isolated and dead-lettered by the updater's own code; bisection is
    // Lambda's second line, for a batch that fails as a whole (the function crashes).
    bisectBatchOnError: true,
    // Retry until OpenSearch answers or the records are too old: a few failed retries must never
    // skip changes (-1 is CloudFormation's "infinite"; maxRecordAge ends it).
    retryAttempts: -1,
    // Short of the stream's retention, so the on-failure record reaches the queue while the stream
    // still holds the records and `ddb2os replay` can re-read them.
    maxRecordAge: settings.updaterMaxRecordAge,
    reportBatchItemFailures: true,
    onFailure: new SqsDlq(failureQueue),
  };
  if (source.kind === 'dynamodb-stream') {
    const eventSource = new DynamoEventSource(settings.table, streamSettings);
    updater.addEventSource(eventSource);
    return {
      source,
      mappingId: eventSource.eventSourceMappingId,
      mappingArn: eventSource.eventSourceMappingArn,
      failureQueue,
      lag: iteratorAge,
    };
  }
  const mapping = updater.addEventSourceMapping('KinesisEventSource', {
    eventSourceArn: source.stream.streamArn,
    ...streamSettings,
  });
  updater.addToRolePolicy(
    new PolicyStatement({
      // Shared-throughput reads only: no enhanced fan-out consumer, so no SubscribeToShard.
      actions: [
        'kinesis:DescribeStream',
        'kinesis:DescribeStreamSummary',
        'kinesis:GetRecords',
        'kinesis:GetShardIterator',
        'kinesis:ListShards',
      ],
      resources: [source.stream.streamArn],
    }),
  );
  source.stream.encryptionKey?.grantDecrypt(updater);
  return {
    source,
    mappingId: mapping.eventSourceMappingId,
    mappingArn: mapping.eventSourceMappingArn,
    failureQueue,
    lag: iteratorAge,
  };
}

function addQueueSource(
  settings: UpdaterSourceSettings,
  source: Extract<ChangeSource, { kind: 'sqs' }>,
): UpdaterSource {
  const { updater, scope } = settings;
  const { queue } = source;
  requireVisibilityTimeout(queue, updater, scope);
  const mapping = updater.addEventSourceMapping('SqsEventSource', {
    eventSourceArn: queue.queueArn,
    // Paused until the first backfill has run, like a stream mapping: messages wait in the queue.
    enabled: false,
    batchSize: source.batchSize,
    maxBatchingWindow: source.batchingWindow,
    reportBatchItemFailures: true,
    maxConcurrency: source.maxConcurrency,
  });
  updater.addToRolePolicy(
    new PolicyStatement({
      actions: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      resources: [queue.queueArn],
    }),
  );
  queue.encryptionMasterKey?.grantDecrypt(updater);
  return {
    source,
    mappingId: mapping.eventSourceMappingId,
    mappingArn: mapping.eventSourceMappingArn,
    ...(queue instanceof Queue && queue.deadLetterQueue
      ? { queueDeadLetterQueue: queue.deadLetterQueue.queue }
      : {}),
    lag: {
      metric: queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: (age) => age.toSeconds(),
      label: 'Oldest message in the change queue (s)',
    },
  };
}

/**
 * Lambda refuses an SQS event source whose queue hides a message for less
 * time than the function may run; said at synth for a queue of this app.
 */
function requireVisibilityTimeout(queue: IQueue, updater: LambdaFunction, scope: Construct): void {
  if (!(queue instanceof Queue)) return;
  const visibility = (queue.node.defaultChild as CfnQueue).visibilityTimeout;
  const timeout = updater.timeout?.toSeconds() ?? 3;
  // CloudFormation's default is 30 seconds.
  const seconds = typeof visibility === 'number' ? visibility : 30;
  if (!Token.isUnresolved(seconds) && seconds < timeout) {
    throw new Error(
      `BackfillWorkflow (${scope.node.path}): changeQueue's visibility timeout (${seconds} seconds) is shorter than ` +
        `the updater's timeout (${timeout} seconds), which Lambda refuses for an SQS event source; AWS recommends ` +
        'six times the function timeout.',
    );
  }
}

/**
 * What the run-lock function needs to read the source's retention at each
 * start ("Validate and lock", where the run's retention budget is decided):
 * its environment, and DescribeStreamSummary or GetQueueAttributes on the
 * source alone. The DynamoDB stream's retention is fixed (24 hours): nothing to read.
 */
export function retentionReader(source: ChangeSource, fn: LambdaFunction): Record<string, string> {
  if (source.kind === 'kinesis') {
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['kinesis:DescribeStreamSummary'],
        resources: [source.stream.streamArn],
      }),
    );
    return { [ENV.CHANGE_SOURCE]: source.kind, [ENV.CHANGE_SOURCE_ARN]: source.stream.streamArn };
  }
  if (source.kind === 'sqs') {
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [source.queue.queueArn] }),
    );
    return {
      [ENV.CHANGE_SOURCE]: source.kind,
      [ENV.CHANGE_SOURCE_ARN]: source.queue.queueArn,
      [ENV.CHANGE_QUEUE_URL]: source.queue.queueUrl,
    };
  }
  return { [ENV.CHANGE_SOURCE]: source.kind };
}
