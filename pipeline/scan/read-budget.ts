/**
 * A segment's read budget: at most `unitsPerSecond` read capacity units per
 * second on average, measured from the ConsumedCapacity that each Scan page
 * reports. The cost of a page is known only after it was read, so the budget
 * is kept by waiting before the next page: every page moves the earliest start
 * of the next one on by `consumed / unitsPerSecond` seconds. Whatever the
 * timing, the units consumed before a page starts never exceed
 * `unitsPerSecond × (that start − the first start)`.
 *
 * Throttling (a table or an account at its limit) is not a budget matter: it is
 * retried with backoff until DynamoDB answers, so a backfill never fails on it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A clock and a way to wait, replaceable in tests. */
export interface BudgetClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const systemClock: BudgetClock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, undefined, { signal }).catch((error: unknown) => {
      // An abort only cuts the wait short; the caller checks the signal itself.
      if (!(error instanceof Error && error.name === 'AbortError')) throw error;
    });
  },
};

export class ReadBudget {
  private nextStart: number | undefined;
  private consumedUnits = 0;

  /** `unitsPerSecond` undefined, null or 0: no limit. */
  constructor(
    readonly unitsPerSecond: number | undefined,
    private readonly clock: BudgetClock = systemClock,
  ) {}

  get limited(): boolean {
    return this.unitsPerSecond !== undefined && this.unitsPerSecond > 0;
  }

  /** Units consumed so far. */
  get consumed(): number {
    return this.consumedUnits;
  }

  /** Milliseconds to wait before the next page may start (0 when it may start now). */
  delayMs(): number {
    if (!this.limited || this.nextStart === undefined) return 0;
    return Math.max(0, Math.ceil(this.nextStart - this.clock.now()));
  }

  /**
   * Waits until the next page may start, then marks it as started. The wait
   * is cut into slices of at most a second so that `stop` (the Lambda's time
   * runs short, Ctrl-C) ends it early; then it resolves false and nothing is
   * marked.
   */
  async acquire(options: { signal?: AbortSignal; stop?: () => boolean } = {}): Promise<boolean> {
    for (let delay = this.delayMs(); delay > 0; delay = this.delayMs()) {
      if (options.signal?.aborted || options.stop?.()) return false;
      await this.clock.sleep(Math.min(delay, 1_000), options.signal);
    }
    // A budget is a ceiling on the average: an idle stretch does not bank units for a burst later.
    this.nextStart = Math.max(this.nextStart ?? 0, this.clock.now());
    return true;
  }

  /** Records what a page consumed (its ConsumedCapacity.CapacityUnits). */
  record(units: number | undefined): void {
    const value = Number.isFinite(units) && (units as number) > 0 ? (units as number) : 0;
    this.consumedUnits += value;
    if (!this.limited || this.nextStart === undefined) return;
    this.nextStart += (value / (this.unitsPerSecond as number)) * 1000;
  }
}

/** DynamoDB error names that mean "slow down", never "give up". */
export const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

/** Transient server-side errors, retried a bounded number of times. */
export const TRANSIENT_ERRORS = new Set([
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

export function isThrottling(error: unknown): boolean {
  return error instanceof Error && THROTTLING_ERRORS.has(error.name);
}

export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return (
    TRANSIENT_ERRORS.has(error.name) ||
    (code !== undefined && TRANSIENT_ERRORS.has(code)) ||
    (status !== undefined && status >= 500)
  );
}

/** Full-jitter exponential backoff: a random delay up to min(cap, base × 2^(attempt−1)). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
