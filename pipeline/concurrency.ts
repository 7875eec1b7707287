/**
 * Bounded concurrency, the one way the project writes it: `concurrency`
 * workers share one iterator, so each takes the next item the moment it is
 * free and a slow item never holds a slot empty. The iterator is read lazily,
 * so a generator of a million items is never held in memory.
 */

/**
 * Runs `work` on every item of `items`, at most `concurrency` at once.
 * Rejects with the first error as soon as it is thrown; the worker that threw
 * stops, the others go on with the items left (the callers' behaviour before
 * this helper: a failed load or scan is reported at once).
 */
export async function eachWithConcurrency<T>(
  items: Iterable<T>,
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async (): Promise<void> => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await work(next.value);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

/** 0, 1, …, count - 1: the items of `eachWithConcurrency` when the work is numbered. */
export function* range(count: number): Generator<number> {
  for (let i = 0; i < count; i += 1) yield i;
}

/** `eachWithConcurrency` that keeps what `work` returns, in the order of `items`. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  await eachWithConcurrency(range(items.length), concurrency, async (i) => {
    results[i] = await work(items[i] as T);
  });
  return results;
}
