/**
 * Where the workflow definition is: the file the stack deploys and the local
 * runner executes. Kept apart from the other contract modules because it
 * resolves a path from this file's URL, which only makes sense in the source
 * tree (the stack and the local runner), never inside a bundled Lambda.
 */
import { fileURLToPath } from 'node:url';

/** statemachines/backfill.asl.json, with `${Placeholder}`s the stack (or the local runner) fills. */
export const DEFINITION_PATH = fileURLToPath(
  new URL('../../statemachines/backfill.asl.json', import.meta.url),
);
