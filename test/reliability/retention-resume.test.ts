/**
 * The retention guard across a resume. In the cloud a redrive keeps the
 * plan's output, so the guard measures the run from its first start. A local
 * run resumed with the same command must be measured the same way: a run
 * that failed and is resumed 30 hours later may have lost changes to stream
 * trimming, so the updater must stay paused.
 */
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackfillEvent, type LocalBackfillOptions, runLocalBackfill } from '../../local/backfill';
import { WorkflowFailedError } from '../../local/workflow';
import { SinkUnavailableError } from '../../pipeline/errors';
import {
  deleteIndex,
  deleteTable,
  dynamoClient,
  openSearchClient,
  streamsClient,
  uniqueName,
} from '../support/engines';
import { deadLetterFolder, recordFigures, seededTable } from './support';

describe('reliability: the retention guard measures a resumed run from its first start', () => {
  let dynamodb: DynamoDBClient;
  let streams: DynamoDBStreamsClient;
  let opensearch: Client;
  const progressTable = uniqueName('rel-progress');
  const cleanup: { tables: string[]; indices: string[] } = { tables: [progressTable], indices: [] };

  beforeAll(() => {
    dynamodb = dynamoClient();
    streams = streamsClient();
    opensearch = openSearchClient();
  });

  afterAll(async () => {
    for (const table of cleanup.tables) await deleteTable(dynamodb, table);
    for (const index of cleanup.indices) await deleteIndex(opensearch, index);
  });

  it('keeps the updater paused when the run, resumed, has taken longer than the budget since it first started', async () => {
    // Prepare: a run whose segment 1 fails every attempt, so the run fails and stays unfinished.
    const table = await seededTable(dynamodb, 'rel-retention', 200, { padding: 10 });
    const index = uniqueName('rel-retention');
    cleanup.tables.push(table);
    cleanup.indices.push(index);
    const options: LocalBackfillOptions = {
      dynamodb,
      streams,
      opensearch,
      table,
      index,
      mapping: { index },
      progressTable,
      deadLetterDir: deadLetterFolder(),
      input: { totalSegments: 2, retentionBudgetHours: 23 },
      segmentRetryIntervalMs: 10,
    };
    const first = await runLocalBackfill({
      ...options,
      restart: true,
      beforeSegmentAttempt: (segment) => {
        if (segment === 1) throw new SinkUnavailableError('OpenSearch did not answer');
      },
    }).catch((e: unknown) => e);
    expect(first).toMatchObject({ error: 'SinkUnavailableError' });
    // The run first started 30 hours ago (the run's marker in the progress table says when).
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: progressTable,
        Key: { runId: { S: `local#${table}#${index}` }, segment: { N: '0' } },
        UpdateExpression: 'SET startedAt = :t',
        ExpressionAttributeValues: { ':t': { S: new Date(Date.now() - 30 * 3_600_000).toISOString() } },
      }),
    );

    // Act: the same command again.
    const events: BackfillEvent[] = [];
    const resumed = await runLocalBackfill({ ...options, onEvent: (event) => events.push(event) }).catch(
      (e: unknown) => e,
    );

    // Assess: segment 1 was completed, but the updater stays paused.
    recordFigures('retention guard on resume', {
      resumed: events.some((event) => event.type === 'plan' && event.resumed),
      error: (resumed as WorkflowFailedError).error,
    });
    expect(events.some((event) => event.type === 'plan' && event.resumed)).toBe(true);
    expect(events.filter((event) => event.type === 'segment-done').map((event) => event.segment)).toContain(
      1,
    );
    expect(resumed).toBeInstanceOf(WorkflowFailedError);
    expect(resumed).toMatchObject({
      error: 'RetentionBudgetExceededError',
      causeText: expect.stringMatching(
        /^The backfill took 30(\.\d+)? hours, more than the retention budget of 23 hours/,
      ),
    });
    expect(events.some((event) => event.type === 'updater' && event.state === 'Enabled')).toBe(false);
  });
});
