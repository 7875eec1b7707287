/**
 * The serving name and the alias swap of a resync. Search reads one name (the
 * configured index name). A resync fills a new index, `<name>-<runId>`, and
 * then points the name at it in ONE `_aliases` call, so a reader sees either
 * the old index or the new one, never neither:
 *
 * - the name is an alias: it moves from the indices it pointed at to the new
 *   index (the old indices stay, for the caller to delete or keep);
 * - the name is a plain index (an install from before resyncs existed): the
 *   same call removes that index (`remove_index`) and adds the alias of the
 *   same name, the one-time move behind an alias. Its documents are gone
 *   with it: the new index holds them all by then, and it cannot be kept,
 *   because an index and an alias cannot share a name.
 */
import type { Client } from '@opensearch-project/opensearch';
import { ConfigurationError, SinkUnavailableError } from '../errors';

/** What the serving name is in OpenSearch. */
export type ServingName =
  | { kind: 'missing' }
  | { kind: 'index' }
  | {
      kind: 'alias';
      /** The indices it points at, sorted. */
      indices: string[];
    };

/** OpenSearch's longest index name, in bytes. */
const MAX_INDEX_NAME_BYTES = 255;

/**
 * The index a resync of `name` fills: `<name>-<runId>`, lowercased, with the characters an index name
 * cannot hold replaced by `-`. Throws when the result is too long to be an index name.
 */
export function resyncIndexName(name: string, runId: string): string {
  const suffix = runId.toLowerCase().replace(/[\\/*?"<>| ,#:]/g, '-');
  const index = `${name}-${suffix}`;
  if (Buffer.byteLength(index) > MAX_INDEX_NAME_BYTES) {
    throw new ConfigurationError(
      `the resync index name "${index}" is longer than OpenSearch's ${MAX_INDEX_NAME_BYTES} bytes: use a shorter run id`,
    );
  }
  return index;
}

/** Whether `name` is an alias, a plain index, or nothing yet. */
export async function describeServingName(client: Client, name: string): Promise<ServingName> {
  const alias = await request(`tell whether ${name} is an alias`, () =>
    client.indices.getAlias({ name }, { ignore: [404] }),
  );
  if (alias.statusCode !== 404) {
    return { kind: 'alias', indices: Object.keys(alias.body as Record<string, unknown>).sort() };
  }
  const index = await request(`tell whether index ${name} exists`, () =>
    client.indices.exists({ index: name }),
  );
  return index.body === true ? { kind: 'index' } : { kind: 'missing' };
}

/** What a swap changed. */
export interface AliasSwap {
  /** The alias, now on `index`. */
  alias: string;
  index: string;
  /** The indices the alias left (still there). */
  previousIndices: string[];
  /** The plain index of the alias's name, removed by the same call (the one-time move behind an alias). */
  removedPlainIndex: boolean;
}

/**
 * Points `alias` at `index` alone, atomically (one `_aliases` call), as the file header describes.
 * Swapping to the index the alias already names alone changes nothing.
 */
export async function swapAlias(client: Client, alias: string, index: string): Promise<AliasSwap> {
  const serving = await describeServingName(client, alias);
  if (serving.kind === 'alias' && serving.indices.length === 1 && serving.indices[0] === index) {
    return { alias, index, previousIndices: [], removedPlainIndex: false };
  }
  const previousIndices = serving.kind === 'alias' ? serving.indices.filter((name) => name !== index) : [];
  const actions: Record<string, unknown>[] = [
    ...(serving.kind === 'index' ? [{ remove_index: { index: alias } }] : []),
    ...previousIndices.map((name) => ({ remove: { index: name, alias } })),
    { add: { index, alias } },
  ];
  await request(`point alias ${alias} at ${index}`, () =>
    client.indices.updateAliases({ body: { actions } } as never),
  );
  return { alias, index, previousIndices, removedPlainIndex: serving.kind === 'index' };
}

async function request<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new SinkUnavailableError(`OpenSearch could not ${what}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
