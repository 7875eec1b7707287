/**
 * The updater Lambda's logic (handleStreamEvent) with Lambda-shaped events
 * made from DynamoDB Local's real stream records (binary as base64, as Lambda
 * delivers them), against the real OpenSearch.
 */

import { Metrics } from '@aws-lambda-powertools/metrics';
import { DeleteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler, handleStreamEvent } from '../../handlers/updater';
import type { ApplyStreamDeps } from '../../pipeline/apply/apply-stream';
import { createOpenSearchClient } from '../../pipeline/index/opensearch';
import type { Item, KeySchema } from '../../pipeline/table/types';
import {
  applyStreamDeps,
  expectIndexEqualsTable,
  FAST_BULK,
  readStream,
  toLambdaRecord,
  UNREACHABLE_OPENSEARCH,
} from '../pipeline/apply/apply-stream-fixtures';
import { createTable, deleteIndex, deleteTable, uniqueName, useEngines } from '../support/engines';

const keySchema: KeySchema = { partitionKey: 'pk', sortKey: 'sk' };

describe('handleStreamEvent', () => {
  const engines = useEngines();
  const { dynamodb, streams, opensearch: search } = engines;
  const table = uniqueName('updater');
  const index = uniqueName('updater');
  let deps: ApplyStreamDeps;
  let seen: string | undefined;

  /** The stream's records since the last call, in the Lambda event's form. */
  async function newRecords(): Promise<DynamoDBRecord[]> {
    const records = await readStream(streams, dynamodb, table, seen);
    if (records.length > 0) seen = records[records.length - 1]!.dynamodb!.SequenceNumber;
    return records.map(toLambdaRecord);
  }
  const put = (item: Item) => dynamodb.send(new PutItemCommand({ TableName: table, Item: item }));
  const binary = (...values: number[]) => new Uint8Array(values);

  beforeAll(async () => {
    await createTable(dynamodb, table, { keySchema, sortKeyType: 'B', stream: 'NEW_AND_OLD_IMAGES' });
    deps = applyStreamDeps(engines, table, keySchema, { index }, { runId: 'updater-test' });
  });

  afterAll(async () => {
    await deleteTable(dynamodb, table);
    await deleteIndex(search, index);
  });

  it('Lambda-shaped batches of the real stream (binary keys and sets as base64; updates, deletes, a re-create): the index equals the table', async () => {
    // Prepare
    for (let i = 0; i < 8; i++) {
      await put({
        pk: { S: 'file' },
        sk: { B: binary(i, 255) },
        blob: { B: binary(0, i, 254) },
        parts: { BS: [binary(i), binary(1, 2)] },
        size: { N: `0.${i}000000000000001` },
      });
    }
    for (let i = 0; i < 5; i++)
      await put({ pk: { S: 'file' }, sk: { B: binary(1, 255) }, blob: { B: binary(i) } });
    await dynamodb.send(
      new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'file' }, sk: { B: binary(3, 255) } } }),
    );
    await put({ pk: { S: 'file' }, sk: { B: binary(3, 255) }, recreated: { BOOL: true } });
    await dynamodb.send(
      new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'file' }, sk: { B: binary(2, 255) } } }),
    );
    const records = await newRecords();
    expect(records[0]!.dynamodb!.Keys!.sk!.B).toBe(Buffer.from([0, 255]).toString('base64'));
    const metrics = new Metrics({ namespace: 'ddb2os-test', serviceName: 'updater-test' });

    // Act: batches of 4, as an event source mapping would deliver them
    const responses = [];
    for (let i = 0; i < records.length; i += 4) {
      responses.push(await handleStreamEvent({ Records: records.slice(i, i + 4) }, { ...deps, metrics }));
    }

    // Assess
    expect(responses.every((response) => response.batchItemFailures.length === 0)).toBe(true);
    await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, deps.mapping, ['parts']);
    const emitted = metrics.serializeMetrics() as unknown as Record<string, unknown>;
    expect(records.length).toBe(16);
    expect(emitted.StreamRecordsApplied).toEqual([4, 4, 4, 4]);
    expect(emitted.StreamRecordsDeadLettered).toEqual([0, 0, 0, 0]);
    expect((emitted.StreamLagSeconds as number[]).every((lag) => lag >= 0 && lag < 600)).toBe(true);
    metrics.clearMetrics();
  });

  it('OpenSearch unreachable: batchItemFailures names the first record, and re-delivery from it converges', async () => {
    await put({ pk: { S: 'later' }, sk: { B: binary(1) }, v: { N: '1' } });
    await put({ pk: { S: 'later' }, sk: { B: binary(2) }, v: { N: '2' } });
    const records = await newRecords();
    const down = createOpenSearchClient({ endpoint: UNREACHABLE_OPENSEARCH });

    const failed = await handleStreamEvent(
      { Records: records },
      { ...deps, opensearch: down, bulk: FAST_BULK },
    );
    await down.close();

    expect(failed).toEqual({ batchItemFailures: [{ itemIdentifier: records[0]!.dynamodb!.SequenceNumber }] });
    const redelivered = await handleStreamEvent({ Records: records }, deps);
    expect(redelivered).toEqual({ batchItemFailures: [] });
    await expectIndexEqualsTable({ search, dynamodb, table, index }, keySchema, deps.mapping, ['parts']);
  });

  it('an empty event is answered with no failures', async () => {
    expect(await handleStreamEvent({ Records: [] }, deps)).toEqual({ batchItemFailures: [] });
  });
});

describe('updater configuration', () => {
  it('the handler fails the batch, naming the missing variable, when the function is not configured', async () => {
    const saved = process.env.DDB2OS_TABLE_NAME;
    delete process.env.DDB2OS_TABLE_NAME;
    try {
      await expect(handler({ Records: [] }, {} as Context)).rejects.toThrow(
        'environment variable DDB2OS_TABLE_NAME is not set',
      );
    } finally {
      if (saved !== undefined) process.env.DDB2OS_TABLE_NAME = saved;
    }
  });
});
