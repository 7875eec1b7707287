/**
 * Index settings around a backfill. A bulk load goes faster without refreshes
 * and replicas, so an index that ddb2os creates starts with
 * `refresh_interval: -1` and `number_of_replicas: 0`, and records in its
 * mapping's `_meta.ddb2os` the settings it is meant to have afterwards. After
 * the backfill, restoreIndexAfterBackfill applies those settings and
 * refreshes. An index that existed before is left exactly as it is: its
 * owner chose its settings. Both functions are idempotent and take every
 * index the mapping writes to (routes included).
 */
import type { Client } from '@opensearch-project/opensearch';
import { ANY_SCALAR_MAPPING } from '../bulk/field-conflicts';
import { ConfigurationError, SinkUnavailableError } from '../errors';

/** Settings a created index gets after the backfill, unless the caller says otherwise. */
export const DEFAULT_SETTINGS_AFTER_BACKFILL = { number_of_replicas: 1, refresh_interval: '1s' } as const;

/**
 * Index settings of a created index for documents made from arbitrary items:
 * DynamoDB nests up to 32 levels (an aggregated document adds one), and a
 * table has no schema that bounds its attribute names. `ignore_malformed`
 * lets a value that does not fit a numeric field (a string or a boolean in a
 * field first seen as a number) be kept in `_source` without being indexed,
 * instead of rejecting the whole document (docs/mapping.md, "Index defaults
 * and heterogeneous data").
 */
export const ITEM_FRIENDLY_LIMITS = {
  'mapping.depth.limit': 64,
  'mapping.total_fields.limit': 10_000,
  'mapping.ignore_malformed': true,
} as const;

/**
 * Mappings of an index ddb2os creates: any DynamoDB item fits, whatever
 * order the items come in. Every JSON number is a `double` (OpenSearch would
 * otherwise map the first number it sees as `long` and reject a later `0.1`
 * in the same field, e.g. in a number set `[1000, 0.1]`; numbers beyond 2^53
 * are strings in the document anyway). Strings and booleans get one mapping,
 * text with a keyword subfield, so a field that holds both never conflicts,
 * and a number in such a field is indexed as its text. Strings are never
 * guessed to be dates.
 */
export const ITEM_FRIENDLY_MAPPINGS = {
  date_detection: false,
  dynamic_templates: [
    { integers_as_double: { match_mapping_type: 'long', mapping: { type: 'double' } } },
    { decimals_as_double: { match_mapping_type: 'double', mapping: { type: 'double' } } },
    { booleans_as_text: { match_mapping_type: 'boolean', mapping: ANY_SCALAR_MAPPING } },
    { strings_as_text: { match_mapping_type: 'string', mapping: ANY_SCALAR_MAPPING } },
  ],
} as const;

export interface PrepareIndexOptions {
  /** The `mappings` of a created index (properties, dynamic_templates, …). */
  mappingBody?: Record<string, unknown>;
  /** Further index settings of a created index, e.g. number_of_shards (flat `index.*` names or nested). */
  settings?: Record<string, unknown>;
  /** Settings after the backfill. @default replicas 1, refresh "1s" */
  after?: { number_of_replicas?: number; refresh_interval?: string };
}

export interface IndexPreparation {
  index: string;
  /** created: with bulk-load settings, restored after the backfill; existing: left alone. */
  action: 'created' | 'existing';
}

export interface IndexRestoration {
  index: string;
  /** restored: the recorded settings are back; untouched: not created by a backfill or already restored. */
  action: 'restored' | 'untouched' | 'missing';
}

interface BackfillMeta {
  state: 'BACKFILLING' | 'READY';
  createdAt: string;
  restoredAt?: string;
  settingsAfterBackfill: { number_of_replicas: number; refresh_interval: string };
}

/** Creates every missing index with bulk-load settings; leaves existing ones (and aliases) alone. */
export async function prepareIndexForBackfill(
  client: Client,
  index: string | string[],
  options: PrepareIndexOptions = {},
): Promise<IndexPreparation[]> {
  const results: IndexPreparation[] = [];
  for (const name of unique(index)) {
    const exists = await call(client, name, () => client.indices.exists({ index: name }));
    if (exists.body === true) {
      results.push({ index: name, action: 'existing' });
      continue;
    }
    const userSettings = flattenIndexSettings(options.settings ?? {});
    const after = {
      number_of_replicas: Number(
        options.after?.number_of_replicas ??
          userSettings.number_of_replicas ??
          DEFAULT_SETTINGS_AFTER_BACKFILL.number_of_replicas,
      ),
      refresh_interval: String(
        options.after?.refresh_interval ??
          userSettings.refresh_interval ??
          DEFAULT_SETTINGS_AFTER_BACKFILL.refresh_interval,
      ),
    };
    const meta: BackfillMeta = {
      state: 'BACKFILLING',
      createdAt: new Date().toISOString(),
      settingsAfterBackfill: after,
    };
    const mappings: Record<string, unknown> = options.mappingBody ?? ITEM_FRIENDLY_MAPPINGS;
    const existingMeta = (mappings._meta ?? {}) as Record<string, unknown>;
    try {
      await call(
        client,
        name,
        () =>
          client.indices.create({
            index: name,
            body: {
              settings: {
                index: {
                  ...ITEM_FRIENDLY_LIMITS,
                  ...userSettings,
                  refresh_interval: '-1',
                  number_of_replicas: 0,
                },
              },
              mappings: { ...mappings, _meta: { ...existingMeta, ddb2os: meta } },
            } as never,
          }),
        ['resource_already_exists_exception'],
      );
      results.push({ index: name, action: 'created' });
    } catch (error) {
      // Another planner created it a moment ago: the same as existing.
      if (errorType(error) === 'resource_already_exists_exception') {
        results.push({ index: name, action: 'existing' });
      } else throw error;
    }
  }
  return results;
}

/**
 * Puts back the settings a created index recorded, marks it READY and
 * refreshes every index so the documents are searchable. An index that
 * ddb2os did not create, or already restored, keeps its settings.
 */
export async function restoreIndexAfterBackfill(
  client: Client,
  index: string | string[],
): Promise<IndexRestoration[]> {
  const results: IndexRestoration[] = [];
  for (const name of unique(index)) {
    let mappings: Record<string, { mappings?: { _meta?: Record<string, unknown> } }>;
    try {
      const response = await call(client, name, () => client.indices.getMapping({ index: name }), [
        'index_not_found_exception',
      ]);
      mappings = response.body as typeof mappings;
    } catch (error) {
      if (errorType(error) === 'index_not_found_exception') {
        results.push({ index: name, action: 'missing' });
        continue;
      }
      throw error;
    }
    // `name` may be an alias: restore the concrete indices behind it.
    for (const [concrete, entry] of Object.entries(mappings)) {
      const allMeta = entry.mappings?._meta ?? {};
      const meta = allMeta.ddb2os as BackfillMeta | undefined;
      if (meta?.state !== 'BACKFILLING') {
        results.push({ index: concrete, action: 'untouched' });
        continue;
      }
      await call(client, concrete, () =>
        client.indices.putSettings({
          index: concrete,
          body: { index: { ...meta.settingsAfterBackfill } },
        } as never),
      );
      const restored: BackfillMeta = { ...meta, state: 'READY', restoredAt: new Date().toISOString() };
      await call(client, concrete, () =>
        client.indices.putMapping({
          index: concrete,
          body: { _meta: { ...allMeta, ddb2os: restored } },
        } as never),
      );
      results.push({ index: concrete, action: 'restored' });
    }
    await call(client, name, () => client.indices.refresh({ index: name }));
  }
  return results;
}

function unique(index: string | string[]): string[] {
  return [...new Set(Array.isArray(index) ? index : [index])];
}

/** `{ index: { number_of_replicas: 2 } }`, `{ "index.number_of_replicas": 2 }` → `{ number_of_replicas: 2 }`. */
function flattenIndexSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (name === 'index' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      Object.assign(flat, flattenIndexSettings(value as Record<string, unknown>));
    } else {
      flat[name.startsWith('index.') ? name.slice('index.'.length) : name] = value;
    }
  }
  return flat;
}

function errorType(error: unknown): string | undefined {
  const body = (error as { meta?: { body?: { error?: { type?: string } } } })?.meta?.body;
  return body?.error?.type;
}

/**
 * An OpenSearch call whose failure reads as one sentence naming the index and
 * the endpoint: unreachable or 5xx → SinkUnavailableError (retryable), another
 * refusal (403, a bad mapping) → ConfigurationError. The error types in
 * `expected` come back as they are, for the caller to handle.
 */
async function call<T>(
  client: Client,
  index: string,
  work: () => Promise<T>,
  expected: string[] = [],
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const type = errorType(error);
    if (type !== undefined && expected.includes(type)) throw error;
    const node = (client as { connectionPool?: { connections?: { url?: URL }[] } }).connectionPool
      ?.connections?.[0]?.url?.origin;
    const where = `OpenSearch${node ? ` at ${node}` : ''}`;
    const status = (error as { statusCode?: number }).statusCode;
    const detail = (error as Error).message;
    if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
      throw new ConfigurationError(`${where} refused to set up index ${index} (HTTP ${status}): ${detail}`, {
        cause: error,
      });
    }
    throw new SinkUnavailableError(`${where} could not be reached to set up index ${index}: ${detail}`, {
      cause: error,
    });
  }
}
