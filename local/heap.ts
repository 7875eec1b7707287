/**
 * The JavaScript heap of every `ddb2os` process (bin/ddb2os.mjs sets it
 * before any command, so `verify` and the cloud commands get it too, though
 * it matters for `run` and `demo`) and of the benchmark's backfill child.
 *
 * A backfill allocates a lot and keeps little: every Scan page becomes
 * documents, bulk bodies and answers that are garbage a moment later, while
 * what is live stays bounded (two pages and a few bulk requests per segment).
 * V8 lets the old generation grow up to four times what survived its last
 * full collection when the program allocates fast, so the process kept
 * growing for the first few hundred thousand items: peak RSS went from
 * ~190 MiB at 10,000 items to ~330 MiB at 100,000. Growing it by 10 % instead
 * holds the heap near what is live: 175-194 and 213-237 MiB in child runs, in
 * about the same elapsed time but for ~15 ms more Node.js CPU per 1,000
 * documents spent collecting (docs/benchmarks.md). The Lambda functions are
 * not concerned: each runs one segment within the memory it is given.
 */
import { setFlagsFromString } from 'node:v8';

/** How much V8 grows the old generation over what survived a full collection (its default is adaptive, up to 300). */
export const LOCAL_HEAP_GROWING_PERCENT = 10;

/** Called once at start-up by bin/ddb2os.mjs (before any command) and the benchmark's backfill child. */
export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${LOCAL_HEAP_GROWING_PERCENT}`);
}
