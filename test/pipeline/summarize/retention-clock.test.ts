/**
 * The retention guard's clock. Where the updater was is read from Lambda's
 * GetEventSourceMapping and CloudWatch's IteratorAge, which have no local
 * engine: the tests that read them stub both and say so.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import {
  oldestUnappliedAt,
  readUpdaterPosition,
  retentionNeed,
} from '../../../pipeline/summarize/retention-clock';

const HOUR = 3_600_000;
const runStart = new Date('2026-12-01T12:00:00.000Z');

/** GetEventSourceMapping and GetMetricStatistics, stubbed; records the metric windows asked for. */
function stubs(mapping: { State: string; LastModified?: Date }, maxima: number[]) {
  const windows: { start: Date; end: Date; functionName?: string; metricName?: string }[] = [];
  const lambda = { send: async () => mapping } as unknown as LambdaClient;
  const cloudwatch = {
    send: async (command: {
      input: { StartTime: Date; EndTime: Date; MetricName: string; Dimensions: { Value: string }[] };
    }) => {
      windows.push({
        start: command.input.StartTime,
        end: command.input.EndTime,
        functionName: command.input.Dimensions[0]?.Value,
        ...(command.input.MetricName === 'IteratorAge' ? {} : { metricName: command.input.MetricName }),
      });
      return { Datapoints: maxima.map((Maximum) => ({ Maximum })) };
    },
  } as unknown as CloudWatchClient;
  return { lambda, cloudwatch, windows };
}

/** Where the clock starts for that mapping and those metric maxima; an SQS source reads its queue's. */
async function clock(
  mapping: { State: string; LastModified?: Date },
  maxima: number[],
  everEnabled: boolean,
  changeQueueName?: string,
) {
  const { lambda, cloudwatch, windows } = stubs(mapping, maxima);
  const position = await readUpdaterPosition({
    lambda,
    cloudwatch,
    mappingUuid: 'uuid-1',
    updaterFunctionName: 'ddb2os-updater',
    ...(changeQueueName ? { changeQueueName } : {}),
    everEnabled,
    now: runStart,
  });
  return { oldest: oldestUnappliedAt(position, runStart), windows };
}

describe('where the retention clock starts (Lambda and CloudWatch stubs)', () => {
  it('an enabled updater: now minus the largest iterator age of the last 15 minutes', async () => {
    const { oldest, windows } = await clock({ State: 'Enabled' }, [0.5 * HOUR, 2 * HOUR, HOUR], true);

    expect(oldest).toEqual(new Date(runStart.getTime() - 2 * HOUR));
    expect(windows).toEqual([
      { start: new Date(runStart.getTime() - 15 * 60_000), end: runStart, functionName: 'ddb2os-updater' },
    ]);
  });

  it('an enabled updater with nothing to read (no IteratorAge): the run start', async () => {
    const { oldest } = await clock({ State: 'Enabled' }, [], true);

    expect(oldest).toEqual(runStart);
  });

  it('a paused updater that a backfill enabled before: when it was paused minus its iterator age then', async () => {
    const pausedAt = new Date(runStart.getTime() - 5 * HOUR);

    const { oldest, windows } = await clock({ State: 'Disabled', LastModified: pausedAt }, [HOUR], true);

    expect(oldest).toEqual(new Date(runStart.getTime() - 6 * HOUR));
    expect(windows[0]).toMatchObject({ start: new Date(pausedAt.getTime() - 15 * 60_000), end: pausedAt });
  });

  it('an updater no backfill ever enabled: the run start, without reading the metric', async () => {
    const { oldest, windows } = await clock(
      { State: 'Disabled', LastModified: new Date(runStart.getTime() - 48 * HOUR) },
      [HOUR],
      false,
    );

    expect(oldest).toEqual(runStart);
    expect(windows).toEqual([]);
  });
});

describe('where the retention clock starts for an SQS source (Lambda and CloudWatch stubs)', () => {
  const queueClock = (
    mapping: { State: string; LastModified?: Date },
    maxima: number[],
    everEnabled: boolean,
  ) => clock(mapping, maxima, everEnabled, 'orders-changes');

  it("a paused updater: now minus the queue's oldest message (seconds), not when it was paused", async () => {
    const pausedAt = new Date(runStart.getTime() - 5 * HOUR);

    const { oldest, windows } = await queueClock(
      { State: 'Disabled', LastModified: pausedAt },
      [3 * 3600],
      true,
    );

    expect(oldest).toEqual(new Date(runStart.getTime() - 3 * HOUR));
    expect(windows).toEqual([
      {
        start: new Date(runStart.getTime() - 15 * 60_000),
        end: runStart,
        functionName: 'orders-changes',
        metricName: 'ApproximateAgeOfOldestMessage',
      },
    ]);
  });

  it('an enabled updater with an empty queue: the run start', async () => {
    const { oldest } = await queueClock({ State: 'Enabled' }, [], true);

    expect(oldest).toEqual(runStart);
  });

  it('an updater no backfill ever enabled: the run start, without reading the metric', async () => {
    const { oldest, windows } = await queueClock({ State: 'Disabled' }, [3600], false);

    expect(oldest).toEqual(runStart);
    expect(windows).toEqual([]);
  });
});

describe('retentionNeed', () => {
  it('adds a drain margin of 15 minutes plus a tenth of the backlog age', () => {
    const need = retentionNeed(new Date(runStart.getTime() - 10 * HOUR).toISOString(), runStart);

    expect(need).toMatchObject({ unappliedHours: 10, drainMarginHours: 1.25, retentionHours: 11.25 });
  });

  it('puts the default 20-hour budget at a backlog of about 17.95 hours', () => {
    expect(
      retentionNeed(new Date(runStart.getTime() - 17.9 * HOUR).toISOString(), runStart).retentionHours,
    ).toBeLessThan(20);
    expect(
      retentionNeed(new Date(runStart.getTime() - 18 * HOUR).toISOString(), runStart).retentionHours,
    ).toBeGreaterThan(20);
  });
});
