/**
 * The SQS follower on the real ElasticMQ, applying with the updater's code to
 * the real OpenSearch (or to a closed port, for an outage): applied messages
 * are deleted, a failing one comes back after a backoff, and one received
 * more than the max receive count goes to the dead-letter place with its key.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { envelope, RecordEncoder } from '../../local/change-forwarder';
import { SqsFollower, type SqsFollowerOptions } from '../../local/sqs-follower';
import { type ApplyStreamDeps, applyStreamRecords } from '../../pipeline/apply/apply-stream';
import { readSqsMessage, type StreamChange } from '../../pipeline/apply/stream-records';
import { createOpenSearchClient } from '../../pipeline/index/opensearch';
import type { KeySchema } from '../../pipeline/table/types';
import { applyStreamDeps, FAST_BULK, UNREACHABLE_OPENSEARCH } from '../pipeline/apply/apply-stream-fixtures';
import { useChangeSourceEngines } from '../support/change-source-engines';
import { useEngines } from '../support/engines';

const keySchema: KeySchema = { partitionKey: 'pk' };
const sources = useChangeSourceEngines({ sqs: true });
const engines = useEngines();

/** Sends one Pipes-format message per change, as the fan-out would. */
async function send(queueUrl: string, table: string, changes: StreamChange[]): Promise<void> {
  const encoder = new RecordEncoder({
    table,
    region: 'us-east-1',
    streamArn: `arn:aws:dynamodb:us-east-1:000000000000:table/${table}/stream/2026-12-01T00:00:00.000`,
    viewType: 'NEW_AND_OLD_IMAGES',
  });
  await sources.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: changes.map((change, i) => ({
        Id: String(i),
        MessageBody: JSON.stringify(envelope('pipes', encoder.encode(change))),
      })),
    }),
  );
}

function insert(pk: string, sequenceNumber: string): StreamChange {
  const image = { pk: { S: pk }, note: { S: `note of ${pk}` } };
  return { eventName: 'INSERT', sequenceNumber, keys: { pk: { S: pk } }, newImage: image };
}

async function messagesLeft(queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sources.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible)
  );
}

/** The follower of `queueUrl`, applying with the updater's code and `deps`. */
function queueFollower(
  queueUrl: string,
  table: string,
  deps: ApplyStreamDeps,
  more: Partial<SqsFollowerOptions> = {},
): SqsFollower {
  return new SqsFollower({
    sqs: sources.sqs,
    queueUrl,
    table,
    decode: readSqsMessage,
    apply: (changes) => applyStreamRecords(changes, deps),
    deadLetters: deps.deadLetters,
    ...more,
  });
}

describe('SqsFollower', () => {
  it('drains the queue: the items the messages name are indexed from the table, the messages deleted', async () => {
    const table = await engines.createTable('sqs-follower', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
    const index = engines.indexName('sqs-follower');
    const queueUrl = await sources.createQueue('sqs-follower');
    const deps = applyStreamDeps(engines, table, keySchema, { index }, { ordering: 'unordered' });
    // The backfill creates the index before the updater runs.
    await engines.opensearch.indices.create({ index });
    for (const pk of ['a', 'b']) {
      await engines.dynamodb.send(
        new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, note: { S: `note of ${pk}` } } }),
      );
    }
    // b twice, as a standard queue may deliver it.
    await send(queueUrl, table, [insert('a', '100'), insert('b', '200'), insert('b', '200')]);
    const follower = queueFollower(queueUrl, table, deps);

    const drained = await follower.drain();

    expect(drained.records).toBe(3);
    expect(await messagesLeft(queueUrl)).toBe(0);
    await engines.opensearch.indices.refresh({ index });
    const b = await engines.opensearch.get({ index, id: 'b' });
    expect(b.body._source).toEqual({ pk: 'b', note: 'note of b' });
    expect((await engines.opensearch.count({ index })).body.count).toBe(2);
  });

  it('a message that cannot be applied comes back, and past the max receive count goes to the dead-letter place with its key', async () => {
    const table = await engines.createTable('sqs-outage', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
    const queueUrl = await sources.createQueue('sqs-outage');
    const unreachable = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH, signing: 'none' });
    const deps = applyStreamDeps(
      { ...engines, opensearch: unreachable },
      table,
      keySchema,
      { index: 'nowhere' },
      {
        ordering: 'unordered',
        bulk: FAST_BULK,
      },
    );
    await send(queueUrl, table, [insert('lost', '300')]);
    const attempts: number[] = [];
    const follower = queueFollower(queueUrl, table, deps, {
      maxReceiveCount: 2,
      retry: { baseDelaySeconds: 0 },
      onBatch: (info) => attempts.push(info.attempt),
      onError: () => {},
    });

    try {
      await follower.drain();
    } finally {
      await unreachable.close();
    }

    expect(attempts).toEqual([1, 2]);
    expect(await messagesLeft(queueUrl)).toBe(0);
    const dead = await deps.deadLetters.read('updater');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      table,
      key: { pk: { S: 'lost' } },
      errorType: 'MessageNotApplied',
    });
    expect(dead[0]?.reason).toMatch(
      /^message \S+ was received 3 times without being applied \(max receive count 2\)$/,
    );
  });
});
