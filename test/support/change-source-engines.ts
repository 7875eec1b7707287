/**
 * The engines of the change sources other than the table's stream: ElasticMQ
 * (SQS) and kinesalite (Kinesis). Most test files need neither, so the global
 * setup does not start them: a file that does calls
 * `useChangeSourceEngines`, which starts them for that file (or uses
 * SQS_ENDPOINT / KINESIS_ENDPOINT, e.g. from `npm run engines:serve -- --sqs
 * --kinesis`), and deletes the queues and streams it made, then stops them.
 */
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll } from 'vitest';
import type { Engine } from '../../local/engines/engine';
import { startKinesisEngine, startSqsEngine } from '../../local/engines/index';
import { awsJsonRequest } from '../../local/engines/process-group';
import { uniqueName } from './engines';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * One Kinesis API call over plain HTTP (AWS JSON 1.1): until
 * @aws-sdk/client-kinesis is a dependency, the tests speak the API this way.
 */
export async function kinesisCall<T = Record<string, unknown>>(
  endpoint: string,
  operation: string,
  input: Record<string, unknown>,
): Promise<T> {
  const response = await awsJsonRequest(
    endpoint,
    `Kinesis_20131202.${operation}`,
    'application/x-amz-json-1.1',
    input,
  );
  // Calls that return nothing (CreateStream, DeleteStream) answer an empty body, as Kinesis does.
  const text = await response.text();
  const body = (text ? JSON.parse(text) : {}) as T & { __type?: string; message?: string };
  if (!response.ok) throw new Error(`Kinesis ${operation}: ${body.__type}: ${body.message}`);
  return body;
}

export interface ChangeSourceEngines {
  /** The SQS engine; read it in a test or a later hook (it starts in this file's beforeAll). */
  readonly sqsEngine: Engine;
  readonly kinesisEngine: Engine;
  /** A client of the SQS engine. */
  readonly sqs: SQSClient;
  /** Creates a queue (a FIFO queue when `fifo`), deleted after the file's tests; returns its URL. */
  createQueue(
    prefix: string,
    options?: { fifo?: boolean; attributes?: Record<string, string> },
  ): Promise<string>;
  /** Creates a stream of `shards` shards and waits until it is ACTIVE; deleted after the file's tests. */
  createStream(prefix: string, shards: number): Promise<string>;
}

/** Starts the engines asked for before the file's tests, and stops them after. */
export function useChangeSourceEngines(which: { sqs?: boolean; kinesis?: boolean }): ChangeSourceEngines {
  let sqsEngine: Engine | undefined;
  let kinesisEngine: Engine | undefined;
  let sqs: SQSClient | undefined;
  const queues: string[] = [];
  const streams: string[] = [];
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined)
      throw new Error(`no ${what}: ask useChangeSourceEngines for it, and use it in a test`);
    return value;
  };
  beforeAll(async () => {
    const [sqsResult, kinesisResult] = await Promise.allSettled([
      which.sqs ? startSqsEngine() : undefined,
      which.kinesis ? startKinesisEngine() : undefined,
    ]);
    sqsEngine = sqsResult.status === 'fulfilled' ? sqsResult.value : undefined;
    kinesisEngine = kinesisResult.status === 'fulfilled' ? kinesisResult.value : undefined;
    for (const result of [sqsResult, kinesisResult]) if (result.status === 'rejected') throw result.reason;
    if (sqsEngine) sqs = new SQSClient({ endpoint: sqsEngine.url, region: 'us-east-1', credentials });
  });
  afterAll(async () => {
    await Promise.all([
      ...queues.map((QueueUrl) => sqs?.send(new DeleteQueueCommand({ QueueUrl })).catch(() => undefined)),
      ...streams.map((StreamName) =>
        kinesisCall(started(kinesisEngine, 'Kinesis engine').url, 'DeleteStream', { StreamName }).catch(
          () => undefined,
        ),
      ),
    ]);
    sqs?.destroy();
    await Promise.all([sqsEngine?.stop(), kinesisEngine?.stop()]);
  });
  return {
    get sqsEngine() {
      return started(sqsEngine, 'SQS engine');
    },
    get kinesisEngine() {
      return started(kinesisEngine, 'Kinesis engine');
    },
    get sqs() {
      return started(sqs, 'SQS engine');
    },
    async createQueue(prefix, options = {}) {
      const QueueName = `${uniqueName(prefix)}${options.fifo ? '.fifo' : ''}`;
      const attributes = { ...(options.fifo ? { FifoQueue: 'true' } : {}), ...options.attributes };
      const { QueueUrl } = await started(sqs, 'SQS engine').send(
        new CreateQueueCommand({ QueueName, Attributes: attributes }),
      );
      queues.push(QueueUrl as string);
      return QueueUrl as string;
    },
    async createStream(prefix, shards) {
      const url = started(kinesisEngine, 'Kinesis engine').url;
      const StreamName = uniqueName(prefix);
      await kinesisCall(url, 'CreateStream', { StreamName, ShardCount: shards });
      streams.push(StreamName);
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const { StreamDescriptionSummary } = await kinesisCall<{
          StreamDescriptionSummary: { StreamStatus: string };
        }>(url, 'DescribeStreamSummary', { StreamName });
        if (StreamDescriptionSummary.StreamStatus === 'ACTIVE') return StreamName;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`stream ${StreamName} is not ACTIVE after 30 s`);
    },
  };
}
