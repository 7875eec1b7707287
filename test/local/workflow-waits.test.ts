/**
 * The definition's bounded waits for the updater's state, run by the local
 * interpreter (waits of 0 s). The local updater binding stands in for an event
 * source mapping that never settles, which no local engine can make happen.
 */
import { describe, expect, it } from 'vitest';
import { type LocalTaskBindings, runWorkflowLocally, WorkflowFailedError } from '../../local/workflow';
import { resolveRunInput } from '../../pipeline/plan/run-input';
import { retentionNeed } from '../../pipeline/summarize/retention-clock';

async function notInABackfill(): Promise<never> {
  throw new Error('a backfill ran a resync step');
}

/** Bindings for a one-segment run whose updater reports `paused` after the pause and `enabled` after the enable. */
function bindings(states: { paused: string; enabled: string }) {
  let state = 'Enabled';
  const calls = { stateChecks: 0, segments: 0, released: 0 };
  const bound: LocalTaskBindings = {
    startRun: async (event) => ({
      config: resolveRunInput(event.input, event.defaults, {
        workerMaxConcurrency: event.deployment.workerMaxConcurrency,
        updaterIndex: event.deployment.index,
      }),
      oldestUnappliedAt: new Date().toISOString(),
    }),
    releaseLock: async () => {
      calls.released += 1;
    },
    pauseUpdater: async () => {
      state = states.paused;
    },
    enableUpdater: async () => {
      state = states.enabled;
    },
    updaterState: () => {
      calls.stateChecks += 1;
      return state;
    },
    describeTable: async () => ({}),
    planSegments: async (input) =>
      ({
        runId: input.runId,
        table: 'orders',
        index: 'orders',
        totalSegments: 1,
        startedAt: new Date().toISOString(),
      }) as never,
    processSegment: async () => {
      calls.segments += 1;
      return {} as never;
    },
    summarize: async (input) => ({
      runId: input.runId,
      segments: 1,
      segmentsCompleted: 1,
      scanned: 0,
      created: 0,
      alreadyPresent: 0,
      failed: 0,
      skipped: 0,
      retried: 0,
      fieldConflicts: [],
      durationSeconds: 1,
      durationHours: 0.0003,
      ...retentionNeed(input.oldestUnappliedAt, new Date()),
    }),
    // A backfill never reaches the resync steps: reaching one fails the run.
    startResync: notInABackfill,
    drainResync: notInABackfill,
    removeTombstones: notInABackfill,
    swapAliases: notInABackfill,
    abortResync: notInABackfill,
  };
  return { bound, calls };
}

async function failure(states: { paused: string; enabled: string }) {
  const { bound, calls } = bindings(states);
  const error = await runWorkflowLocally({
    runId: 'run-1',
    table: 'orders',
    index: 'orders',
    bindings: bound,
  }).catch((e: unknown) => e);
  return { error: error as WorkflowFailedError, calls };
}

describe('waiting for the updater', () => {
  it('gives up on a mapping that stays Disabling after 60 checks, naming the mapping and its state, before any segment', async () => {
    const { error, calls } = await failure({ paused: 'Disabling', enabled: 'Enabled' });

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(error.error).toBe('UpdaterStateTimeoutError');
    expect(error.causeText).toBe(
      'The stream updater (event source mapping local-stream-follower) is still Disabling after 60 checks 5 seconds ' +
        'apart, so the backfill stopped before scanning anything; look at it with aws lambda get-event-source-mapping ' +
        '--uuid local-stream-follower and start a new execution once it is Disabled or Enabled.',
    );
    expect(calls).toEqual({ stateChecks: 61, segments: 0, released: 0 });
  });

  it('gives up on a mapping that stays Enabling after 60 checks, and keeps the run lock', async () => {
    const { error, calls } = await failure({ paused: 'Disabled', enabled: 'Enabling' });

    expect(error.error).toBe('UpdaterStateTimeoutError');
    expect(error.causeText).toMatch(
      /^The stream updater \(event source mapping local-stream-follower\) is still Enabling after 60 checks 5 seconds apart, although every segment is backfilled; /,
    );
    expect(calls).toEqual({ stateChecks: 62, segments: 1, released: 0 });
  });

  it('goes on as soon as the mapping settles, and releases the lock after the updater is enabled', async () => {
    const { bound, calls } = bindings({ paused: 'Disabled', enabled: 'Enabled' });

    await runWorkflowLocally({ runId: 'run-1', table: 'orders', index: 'orders', bindings: bound });

    expect(calls).toEqual({ stateChecks: 2, segments: 1, released: 1 });
  });
});
