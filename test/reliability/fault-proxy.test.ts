/**
 * test/support/fault-proxy.ts in front of the real engines: the faults look to the
 * clients exactly like the engines' own (the AWS SDK sees DynamoDB's
 * throttling error, OpenSearch's client a 429 bulk item), and everything
 * else passes through untouched.
 */
import { DynamoDBClient, ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { Client } from '@opensearch-project/opensearch';
import { afterAll, describe, expect, it } from 'vitest';
import { isThrottling } from '../../pipeline/scan/read-budget';
import {
  deleteIndex,
  dynamodbEndpoint,
  openSearchClient,
  opensearchUrl,
  uniqueName,
} from '../support/engines';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';

describe('the fault proxy', () => {
  const proxies: FaultProxy[] = [];
  const indices: string[] = [];

  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
    for (const index of indices) await deleteIndex(openSearchClient(), index);
  });

  it('answers a share of DynamoDB Scan calls as the throttled table does: 400 ProvisionedThroughputExceededException', async () => {
    const proxy = await startFaultProxy(dynamodbEndpoint(), { throttleShare: 0.5 });
    proxies.push(proxy);
    const client = new DynamoDBClient({
      endpoint: proxy.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });

    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await client
          .send(new ScanCommand({ TableName: 'no-such-table-for-the-proxy', Limit: 1 }))
          .then(() => 'ok')
          .catch((error: Error & { $metadata?: { httpStatusCode?: number } }) =>
            isThrottling(error) ? `throttled ${error.$metadata?.httpStatusCode}` : error.name,
          ),
      );
    }
    const other = await client.send(new ListTablesCommand({ Limit: 1 }));

    // Every second Scan is throttled; the others reach DynamoDB Local (which does not know the table).
    expect(outcomes).toEqual([
      'ResourceNotFoundException',
      'throttled 400',
      'ResourceNotFoundException',
      'throttled 400',
    ]);
    expect(other.TableNames).toBeDefined();
    expect(proxy.stats).toMatchObject({ throttled: 2, operations: { Scan: 4, ListTables: 1 } });
  });

  it('answers a share of bulk items 429 es_rejected_execution_exception, each document at most once, and passes the rest', async () => {
    const proxy = await startFaultProxy(opensearchUrl(), { bulkItemRejectShare: 0.5 });
    proxies.push(proxy);
    const client = new Client({ node: proxy.url });
    const index = uniqueName('rel-proxy');
    indices.push(index);
    const body = Array.from({ length: 10 }, (_, i) => [
      { create: { _index: index, _id: `d${i}` } },
      { n: i },
    ]).flat();

    const first = await client.bulk({ body, refresh: true });
    const second = await client.bulk({ body, refresh: true });

    const statuses = (response: typeof first) =>
      (response.body.items as { create: { status: number; error?: { type: string } } }[]).map(
        (item) => item.create.status,
      );
    expect(statuses(first)).toEqual([201, 429, 201, 429, 201, 429, 201, 429, 201, 429]);
    expect(first.body.errors).toBe(true);
    expect(statuses(second)).toEqual([409, 201, 409, 201, 409, 201, 409, 201, 409, 201]);
    expect((await client.count({ index })).body.count).toBe(10);
    expect(proxy.stats).toMatchObject({ bulkRequests: 2, bulkActions: 20, rejectedItems: 5 });
  });
});
