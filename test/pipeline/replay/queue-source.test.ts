/**
 * replay from the stack's stream failure queue, on a real SQS engine
 * (ElasticMQ): the on-failure records are received in pages, a replayed
 * record's message is deleted, and a kept one (malformed here) is visible
 * again at once for the next replay and the queue's alarm.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { repairKeys } from '../../../pipeline/repair/repair-keys';
import { QueueFailedBatchSource } from '../../../pipeline/replay/failed-batch-sources';
import { replayFailedBatches } from '../../../pipeline/replay/replay-batches';
import { useChangeSourceEngines } from '../../support/change-source-engines';
import { useEngines } from '../../support/engines';
import { applyStreamDeps, readStream } from '../apply/apply-stream-fixtures';
import { batchInfo, failureRecord, sequenceOf } from './replay-fixtures';

const engines = useEngines();
const queues = useChangeSourceEngines({ sqs: true });
const keySchema = { partitionKey: 'pk' };

describe('replay from the stream failure queue (ElasticMQ)', () => {
  it('replays a record from the queue and deletes its message; keeps a malformed one visible', async () => {
    // Prepare: two changes the updater gave up on, as Lambda's on-failure record in the queue
    const table = await engines.createTable('replay-queue', { keySchema, stream: 'NEW_AND_OLD_IMAGES' });
    const index = engines.indexName('replay-queue');
    await engines.opensearch.indices.create({ index });
    for (const pk of ['a', 'b']) {
      await engines.dynamodb.send(
        new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, n: { N: '1.50' } } }),
      );
    }
    const records = await readStream(engines.streams, engines.dynamodb, table);
    const info = await batchInfo(engines, table, sequenceOf(records[0]!), sequenceOf(records.at(-1)!));
    const queueUrl = await queues.createQueue('stream-failures');
    await queues.sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(failureRecord(info)) }),
    );
    await queues.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"not":"a record"}' }));
    const deps = applyStreamDeps(engines, table, keySchema, { index });

    // Act
    const summary = await replayFailedBatches({
      source: new QueueFailedBatchSource(queues.sqs, queueUrl),
      streams: engines.streams,
      table,
      keySchema,
      applyKeys: (targets) => repairKeys(targets, { ...deps, runId: 'replay' }),
    });
    const left = await queues.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );

    // Assess
    expect(summary).toMatchObject({ replayed: 1, malformed: 1, remaining: 1 });
    await engines.opensearch.indices.refresh({ index });
    const { body } = await engines.opensearch.mget({ index, body: { ids: ['a', 'b'] } });
    expect((body.docs as { _source?: unknown }[]).map((doc) => doc._source)).toEqual([
      { pk: 'a', n: 1.5 },
      { pk: 'b', n: 1.5 },
    ]);
    expect((left.Messages ?? []).map((message) => message.Body)).toEqual(['{"not":"a record"}']);
  });
});
