import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../pipeline/errors';
import { type DeploymentLimits, resolveRunInput } from '../../../pipeline/plan/run-input';

const defaults = {
  totalSegments: null,
  maxConcurrency: 10,
  readUnitsPerSecond: null,
  index: 'orders',
  retentionBudgetHours: 20,
  mode: 'backfill',
  keepOld: false,
  abort: false,
};
const limits: DeploymentLimits = { workerMaxConcurrency: 16, updaterIndex: 'orders' };

function refusal(input: unknown, deployment = limits): string {
  try {
    resolveRunInput(input, defaults, deployment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('the input was accepted');
}

describe('resolveRunInput', () => {
  it('fills every key from the defaults for {}, and lets the input win; null keeps the default', () => {
    expect(resolveRunInput({}, defaults, limits)).toEqual(defaults);
    expect(
      resolveRunInput(
        { totalSegments: 8, maxConcurrency: null, readUnitsPerSecond: 50, index: 'orders' },
        defaults,
        limits,
      ),
    ).toEqual({ ...defaults, totalSegments: 8, readUnitsPerSecond: 50 });
  });

  it.each([
    [{ maxConcurency: 4 }, /^the workflow input field maxConcurency is not known \(known: totalSegments, /],
    [{ totalSegments: '8' }, /^totalSegments must be an integer from 1 to 1,000,000, not "8"$/],
    [{ readUnitsPerSecond: -1 }, /^readUnitsPerSecond must be a positive number/],
    [{ retentionBudgetHours: 25 }, /^retentionBudgetHours must be a number of hours above 0 and at most 24/],
    ['{"totalSegments": 8}', /^the workflow input must be a JSON object$/],
    [{ mode: 'rebuild' }, /^mode must be "backfill" or "resync", not "rebuild"$/],
    [{ mode: 'resync', keepOld: 'yes' }, /^keepOld must be true or false, not "yes"$/],
    [{ keepOld: true }, /^keepOld applies to a resync only: give it with "mode": "resync"$/],
    [{ mode: 'backfill', abort: true }, /^abort applies to a resync only: give it with "mode": "resync"$/],
  ])('refuses %j, naming the field', (input, message) => {
    expect(refusal(input)).toMatch(message);
  });

  it('takes a resync, with keepOld or abort, over the backfill default', () => {
    expect(resolveRunInput({ mode: 'resync', keepOld: true }, defaults, limits)).toEqual({
      ...defaults,
      mode: 'resync',
      keepOld: true,
    });
    expect(resolveRunInput({ mode: 'resync', abort: true }, defaults, limits)).toMatchObject({
      mode: 'resync',
      abort: true,
    });
  });

  it("refuses a maxConcurrency above the worker's deployed concurrency, saying what happens and what to do", () => {
    expect(refusal({ maxConcurrency: 17 })).toBe(
      "maxConcurrency 17 is more than the worker's deployed concurrency of 16, so segments would wait in the " +
        'queue without heartbeats until they time out: give at most 16, or deploy with a higher workerMaxConcurrency',
    );
    expect(resolveRunInput({ maxConcurrency: 16 }, defaults, limits).maxConcurrency).toBe(16);
  });

  it("refuses an index that is not the updater's: index changes go through a resync", () => {
    expect(refusal({ index: 'orders-v2' })).toBe(
      'index "orders-v2" is not the index the stream updater writes to ("orders"), so the backfill would fill one ' +
        'index while the updater keeps the other: leave index out of the input (to change an index, deploy the new definition and start a resync)',
    );
    expect(resolveRunInput({ index: 'orders' }, defaults, limits).index).toBe('orders');
  });

  it('explains, with mapping routes, that index replaces only the default index', () => {
    expect(
      refusal({ index: 'orders-v2' }, { ...limits, routeIndices: ['orders', 'archive', 'audit'] }),
    ).toMatch(
      /start a resync\); index only replaces the default index, the mapping's routes write to archive, audit either way$/,
    );
  });
});
