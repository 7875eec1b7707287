/**
 * Where `ddb2os replay` finds the updater's on-failure records: the stack's
 * stream failure queue (SQS, cloud) or the local follower's failed-batches
 * folder. Both give the same messages; a message is removed only when replay
 * says so, after every key of its batch is applied.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type FailedStreamBatch, failedBatchesDir, parseFailedBatch } from '../apply/failed-batches';
import { describeError } from '../errors';

/** One on-failure record as its source holds it. */
export interface FailedBatchMessage {
  /** Names the message for a person: the file path, or `message <id>`. */
  name: string;
  /** The record; absent when the message is not one (then `problem` says why). */
  batch?: FailedStreamBatch;
  problem?: string;
  /** The source's handle (SQS receipt handle, file path). */
  handle: string;
}

export interface FailedBatchSource {
  /** Where the records are, for messages: the folder, the queue URL. */
  readonly location: string;
  /** Up to `max` messages, each taken for this replay (a queue hides them from other readers meanwhile). */
  receive(max: number): Promise<FailedBatchMessage[]>;
  /** Deletes a message for good: its batch is applied (or the user discards it). */
  remove(message: FailedBatchMessage): Promise<void>;
  /** Gives back the messages this replay keeps, so the next replay (and the queue's alarm) sees them at once. */
  release(messages: FailedBatchMessage[]): Promise<void>;
}

/** The local follower's folder, `failedBatchesDir(deadLetterDir)`: one `<name>.json` file per record. */
export class FolderFailedBatchSource implements FailedBatchSource {
  readonly location: string;

  constructor(deadLetterDir: string) {
    this.location = failedBatchesDir(deadLetterDir);
  }

  async receive(max: number): Promise<FailedBatchMessage[]> {
    let files: string[];
    try {
      files = await readdir(this.location);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const messages: FailedBatchMessage[] = [];
    for (const file of files.filter((name) => name.endsWith('.json')).sort()) {
      if (messages.length >= max) break;
      const path = join(this.location, file);
      messages.push(parsed(await readFile(path, 'utf8'), path, path));
    }
    return messages;
  }

  async remove(message: FailedBatchMessage): Promise<void> {
    await rm(message.handle, { force: true });
  }

  async release(): Promise<void> {}
}

/**
 * The stack's stream failure queue. Messages received stay hidden from other
 * readers for `visibilitySeconds` (a replay that dies leaves them to come
 * back then); the ones this replay keeps are made visible again at its end.
 */
export class QueueFailedBatchSource implements FailedBatchSource {
  constructor(
    private readonly sqs: SQSClient,
    readonly location: string,
    private readonly visibilitySeconds = 3600,
  ) {}

  async receive(max: number): Promise<FailedBatchMessage[]> {
    const messages: FailedBatchMessage[] = [];
    while (messages.length < max) {
      const answer = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.location,
          MaxNumberOfMessages: Math.min(10, max - messages.length),
          VisibilityTimeout: this.visibilitySeconds,
          // A short long-poll asks every SQS server, so an empty answer means an empty queue.
          WaitTimeSeconds: 1,
        }),
      );
      const received = answer.Messages ?? [];
      if (received.length === 0) break;
      for (const message of received) {
        if (!message.ReceiptHandle) continue;
        messages.push(
          parsed(message.Body ?? '', `message ${message.MessageId ?? '(no id)'}`, message.ReceiptHandle),
        );
      }
    }
    return messages;
  }

  async remove(message: FailedBatchMessage): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.location, ReceiptHandle: message.handle }));
  }

  async release(messages: FailedBatchMessage[]): Promise<void> {
    for (const message of messages) {
      await this.sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: this.location,
            ReceiptHandle: message.handle,
            VisibilityTimeout: 0,
          }),
        )
        // It comes back anyway when its visibility timeout ends.
        .catch(() => undefined);
    }
  }
}

function parsed(text: string, name: string, handle: string): FailedBatchMessage {
  try {
    return { name, handle, batch: parseFailedBatch(text, name) };
  } catch (error) {
    return { name, handle, problem: describeError(error) };
  }
}
