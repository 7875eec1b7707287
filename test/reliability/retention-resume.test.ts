/**
 * The retention guard across a resume. In the cloud a redrive keeps the
 * plan's output, so the guard measures the run from its first start. A local
 * run resumed with the same command must be measured the same way: a run
 * that failed and is resumed 30 hours later may have lost changes to stream
 * trimming, so the updater must stay paused.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type BackfillEvent, runLocalBackfill } from '../../local/backfill';
import { WorkflowFailedError } from '../../local/workflow';
import { SinkUnavailableError } from '../../pipeline/errors';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { useEngines } from '../support/engines';
import { deadLetterFolder, recordFigures, seededTable } from './support';

describe('reliability: the retention guard measures a resumed run from its first start', () => {
  const engines = useEngines();
  const { dynamodb } = engines;
  const progressTable = engines.tableName('rel-progress');

  it('keeps the updater paused when the run, resumed, has taken longer than the budget since it first started', async () => {
    // Prepare: a run whose segment 1 fails every attempt, so the run fails and stays unfinished.
    const table = engines.deleteTableAfter(
      await seededTable(dynamodb, 'rel-retention', 200, { padding: 10 }),
    );
    const index = engines.indexName('rel-retention');
    const options = localBackfillOptions(
      engines,
      { table, index, progressTable, deadLetterDir: deadLetterFolder() },
      { input: { totalSegments: 2, retentionBudgetHours: 23 }, segmentRetryIntervalMs: 10 },
    );
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
        /^The stream updater stays paused: the oldest change it has not applied is 30(\.\d+)? hours old and draining needs about 3\.25\d* hours more, beyond the retention budget of 23 hours/,
      ),
    });
    expect(events.some((event) => event.type === 'updater' && event.state === 'Enabled')).toBe(false);
  });
});
