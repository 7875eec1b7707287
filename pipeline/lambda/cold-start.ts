/**
 * A Lambda builds its dependencies (settings, clients, mapping, key schema)
 * once per execution environment, on the first invocation, and the
 * invocations after share them. A start that fails (a missing variable,
 * DescribeTable throttled, a transform that does not load) is not kept: the
 * next invocation tries again, instead of every invocation of that
 * environment failing with the first error until Lambda recycles it.
 */

/** `prepare` run at most once at a time, its result kept once it succeeds; the four handlers start through this. */
export function coldStart<T>(prepare: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => {
    started ??= prepare().catch((error: unknown) => {
      started = undefined;
      throw error;
    });
    return started;
  };
}
