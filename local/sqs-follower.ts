/**
 * The local stand-in for the updater's event source mapping on an SQS queue
 * fed by a fan-out of the table's stream: receives messages, reads each body
 * as a DynamoDB stream record (`decode`: Pipes, SNS raw or enveloped,
 * EventBridge), hands them to the updater's apply code, and deletes only the
 * messages whose changes were applied.
 *
 * - A batch whose apply reports `firstFailedSequenceNumber` (OpenSearch or
 *   DynamoDB unavailable) leaves that message and the ones after it in the
 *   queue, visible again after a backoff (ChangeMessageVisibility): SQS
 *   delivers them again, as it does for a Lambda's partial batch failure.
 * - A message received more than `maxReceiveCount` times, or older than
 *   `maxRecordAgeSeconds`, is not tried again: it goes to the dead-letter
 *   place with its reason and the key it carries (`ddb2os verify --repair`
 *   heals the item from the table), then is deleted. What a redrive policy
 *   and a Lambda's on-failure destination do in the cloud.
 * - Messages come in any order and some twice (standard queues); the apply
 *   code keeps, per item, only a change newer than the index holds. Several
 *   pollers receive at once, as the event source mapping's do.
 * - A FIFO queue delivers a message group (one item) in order and holds the
 *   group while one of its messages is in flight: nothing more to do here.
 *
 * Paused = not receiving: messages wait in the queue (for its retention).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ApplyResult } from '../pipeline/apply/apply-stream';
import { UPDATER_MAX_RECORD_AGE_HOURS } from '../pipeline/apply/failed-batches';
import type { StreamBatchRecord } from '../pipeline/apply/stream-records';
import type { DeadLetterSink } from '../pipeline/dead-letter/dead-letter';
import { describeError } from '../pipeline/errors';
import type { FollowerBatchInfo } from './stream-follower';

/** Reads one message body as a change of the apply code (an unreadable one keeps its place, to be dead-lettered). */
export type SqsMessageDecoder = (body: string, messageId: string) => StreamBatchRecord;

export interface SqsFollowerOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** The table the changes belong to, for dead letters. */
  table: string;
  decode: SqsMessageDecoder;
  apply: (changes: StreamBatchRecord[]) => Promise<ApplyResult>;
  deadLetters: DeadLetterSink;
  /** Receives at once. @default 4 */
  pollers?: number;
  /**
   * Messages a poller gathers (ten a receive, while the queue has them)
   * before it applies them as one batch, as an event source mapping's batch
   * size does: the apply's cost per batch is shared. @default 100
   */
  batchSize?: number;
  /** Deliveries of one message before it goes to the dead-letter place (a redrive policy's maxReceiveCount). @default 10 */
  maxReceiveCount?: number;
  /** Age of a message after which it is not tried again. @default 22 hours, as the stream follower */
  maxRecordAgeSeconds?: number;
  /** How long a received message stays hidden while it is applied. @default 60 */
  visibilityTimeoutSeconds?: number;
  /** Backoff before a failed message is visible again: doubling from the base up to the cap. @default 1 s, 60 s */
  retry?: { baseDelaySeconds?: number; maxDelaySeconds?: number };
  /** Every batch applied (or tried). */
  onBatch?: (info: FollowerBatchInfo) => void;
  /** An error of a poll (the loop goes on). @default one line on stderr */
  onError?: (error: unknown) => void;
}

export class SqsFollower {
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: SqsFollowerOptions) {}

  /**
   * Applies every message in the queue, including those in flight or
   * waiting for a retry, then resolves: everything the fan-out delivered
   * before drain() was called is in the index or in the dead-letter place.
   */
  async drain(): Promise<{ records: number }> {
    let records = 0;
    for (;;) {
      const received = await Promise.all(
        Array.from({ length: this.options.pollers ?? 4 }, () => this.poll(0)),
      );
      records += received.reduce((sum, n) => sum + n, 0);
      if (received.some((n) => n > 0)) continue;
      if ((await this.messagesLeft()) === 0) return { records };
      // Messages in flight elsewhere or waiting out a retry's visibility: look again shortly.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Keeps receiving until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.options.pollers ?? 4 }, () => this.follow());
  }

  /** Stops receiving; resolves when the batches being applied are done. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async follow(): Promise<void> {
    while (this.running) {
      try {
        // A short long-poll: stop() waits for it.
        await this.poll(1);
      } catch (error) {
        (this.options.onError ?? reportError)(error);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private async messagesLeft(): Promise<number> {
    const { Attributes = {} } = await this.options.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.options.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  /** One receive, apply, delete; returns the messages received. */
  private async poll(waitSeconds: number): Promise<number> {
    const { sqs, queueUrl } = this.options;
    const Messages: Message[] = [];
    for (;;) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: Messages.length === 0 ? waitSeconds : 0,
          VisibilityTimeout: this.options.visibilityTimeoutSeconds ?? 60,
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        }),
      );
      Messages.push(...(received.Messages ?? []));
      if ((received.Messages?.length ?? 0) < 10 || Messages.length >= (this.options.batchSize ?? 100)) break;
    }
    if (Messages.length === 0) return 0;
    const expired = Messages.filter((message) => this.expiry(message) !== undefined);
    if (expired.length > 0) await this.deadLetter(expired);
    const live = Messages.filter((message) => this.expiry(message) === undefined);
    if (live.length > 0) await this.applyMessages(live);
    return Messages.length;
  }

  /** Why a message is not tried again, if it is not. */
  private expiry(message: Message): string | undefined {
    const received = receiveCount(message);
    const maxReceives = this.options.maxReceiveCount ?? 10;
    if (received > maxReceives) {
      return `message ${message.MessageId} was received ${received} times without being applied (max receive count ${maxReceives})`;
    }
    const sent = Number(message.Attributes?.SentTimestamp ?? Date.now());
    const ageSeconds = (Date.now() - sent) / 1000;
    const maxAge = this.options.maxRecordAgeSeconds ?? UPDATER_MAX_RECORD_AGE_HOURS * 3600;
    if (ageSeconds > maxAge) {
      return `message ${message.MessageId} is ${Math.round(ageSeconds)} s old, older than the max record age of ${maxAge} s`;
    }
    return undefined;
  }

  private async applyMessages(messages: Message[]): Promise<void> {
    const changes = messages.map((message) =>
      this.options.decode(message.Body ?? '', message.MessageId ?? ''),
    );
    // Positions to receive again; all of them when the apply threw.
    let retry = new Set(changes.map((_, position) => position));
    let failure: unknown;
    try {
      const result = await this.options.apply(changes);
      retry = new Set(result.retryPositions ?? prefixRetry(changes, result.firstFailedSequenceNumber));
      const newest = Math.max(...messages.map((message) => Number(message.Attributes?.SentTimestamp ?? 0)));
      this.options.onBatch?.({
        streamArn: this.options.queueUrl,
        shardId: 'queue',
        records: changes.length,
        result,
        attempt: Math.max(...messages.map(receiveCount)),
        lagSeconds: Math.max(0, (Date.now() - newest) / 1000),
      });
    } catch (error) {
      failure = error;
    }
    await this.delete(messages.filter((_, position) => !retry.has(position)));
    const again = messages.filter((_, position) => retry.has(position));
    if (again.length === 0) return;
    if (failure !== undefined) (this.options.onError ?? reportError)(failure);
    const base = this.options.retry?.baseDelaySeconds ?? 1;
    const cap = this.options.retry?.maxDelaySeconds ?? 60;
    for (const ten of byTen(again)) {
      await this.options.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: ten.map((message, i) => ({
            Id: String(i),
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: Math.round(Math.min(cap, base * 2 ** (receiveCount(message) - 1))),
          })),
        }),
      );
    }
  }

  private async deadLetter(messages: Message[]): Promise<void> {
    const at = new Date().toISOString();
    await this.options.deadLetters.put(
      messages.map((message) => {
        const change = this.options.decode(message.Body ?? '', message.MessageId ?? '');
        return {
          runId: 'updater',
          table: this.options.table,
          key: change.keys,
          reason: this.expiry(message) ?? 'not applied',
          errorType: 'MessageNotApplied',
          at,
        };
      }),
    );
    await this.delete(messages);
  }

  private async delete(messages: Message[]): Promise<void> {
    const Failed = [];
    for (const ten of byTen(messages)) {
      const answer = await this.options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: ten.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
      Failed.push(...(answer.Failed ?? []));
    }
    // A message not deleted comes back after its visibility timeout and is applied again: harmless.
    if (Failed.length > 0) {
      (this.options.onError ?? reportError)(
        new Error(
          `${Failed.length} applied messages were not deleted (${Failed[0]?.Message}); they come back`,
        ),
      );
    }
  }
}

/** SQS's batch calls take at most ten entries. */
function byTen<T>(values: T[]): T[][] {
  return Array.from({ length: Math.ceil(values.length / 10) }, (_, i) => values.slice(i * 10, i * 10 + 10));
}

function receiveCount(message: Message): number {
  return Number(message.Attributes?.ApproximateReceiveCount ?? 1);
}

/** An ordered apply's answer as positions: the first failed record and every one after it. */
function prefixRetry(changes: StreamBatchRecord[], failed: string | undefined): number[] {
  if (failed === undefined) return [];
  const first = changes.findIndex((change) => change.sequenceNumber === failed);
  // A sequence number that is not in the batch: nothing of it counts as applied.
  return changes.map((_, position) => position).filter((position) => first < 0 || position >= first);
}

function reportError(error: unknown): void {
  console.error(`queue follower: ${describeError(error)}; trying again`);
}
