/**
 * The item → document mapping: which index, which id, which body. Every part
 * of ddb2os (backfill worker, updater, verify) maps through this module, so a
 * document written by one is found again by another. The contract for users
 * is docs/mapping.md.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { indexNameProblem } from '../contract/index-name';
import { ConfigurationError, MappingError } from '../errors.js';
import type { Item, KeySchema } from '../table/types.js';
import { attributeToJson, base64, keyPart, readNumber, toDocumentBody } from './attribute-values.js';
import { bundledTransformModule } from './bundled-transform.js';
import { compareDecimals } from './decimal.js';

export { attributeToJson, keyToString, toDocumentBody } from './attribute-values.js';

/** One document to write: where, under which id, with which body. */
export interface MappedDocument {
  index: string;
  id: string;
  document: Record<string, unknown>;
}

/**
 * A custom mapping: one item in, zero or more documents out. It must be
 * synchronous and deterministic (the updater and verify call it again on the
 * same item and must get the same ids). Returning null, undefined or [] skips
 * the item.
 */
export type TransformHook = (
  item: Item,
  context: { keySchema: KeySchema; defaultIndex: string },
) => MappedDocument[] | MappedDocument | null | undefined;

/** Which index, id and body an item becomes (docs/mapping.md); the JSON form is the `mapping` prop. */
export interface MappingConfig {
  /** The default index (or alias) that documents go to. */
  index: string;
  /** Items whose partition key (string form) starts with `prefix` go to `index`; the longest prefix wins. */
  routes?: { prefix: string; index: string }[];
  /**
   * What happens to an item that matches no route.
   * @default 'default' (the item goes to `index`)
   */
  unrouted?: 'default' | 'skip';
  /** One document per partition: the parent item's attributes plus the other items under `childrenField`. */
  aggregate?: { parentSortKey: string; childrenField: string };
  /** Replaces the built-in mapping entirely; cannot be combined with routes or aggregate. */
  transform?: TransformHook;
}

/** OpenSearch rejects a document id longer than this many UTF-8 bytes. */
export const MAX_ID_BYTES = 512;

const CONFIG_FIELDS = ['index', 'routes', 'unrouted', 'aggregate', 'transform', 'transformModule'];

/**
 * Validates JSON-ish config (from env var DDB2OS_MAPPING, CLI file, workflow
 * input): a JSON string, an object, or nothing (then only `defaults.index`).
 * `transformModule` (a path) is loaded by loadMappingConfig. Throws
 * ConfigurationError naming the bad field.
 */
export function parseMappingConfig(
  raw: unknown,
  defaults: { index?: string } = {},
): MappingConfig & { transformModule?: string } {
  const input = readRawConfig(raw);
  for (const name of Object.keys(input)) {
    if (!CONFIG_FIELDS.includes(name)) {
      throw new ConfigurationError(
        `mapping.${name} is not a known field (known: ${CONFIG_FIELDS.join(', ')})`,
      );
    }
  }

  const config: MappingConfig & { transformModule?: string } = {
    index: indexName(input.index ?? defaults.index, 'mapping.index'),
  };
  if (input.routes !== undefined) config.routes = readRoutes(input.routes);
  if (input.unrouted !== undefined) {
    if (input.unrouted !== 'default' && input.unrouted !== 'skip') {
      throw new ConfigurationError('mapping.unrouted must be "default" or "skip"');
    }
    if (input.unrouted === 'skip' && !config.routes?.length) {
      throw new ConfigurationError(
        'mapping.unrouted is "skip" but mapping.routes is empty, so every item would be skipped',
      );
    }
    config.unrouted = input.unrouted;
  }
  if (input.aggregate !== undefined) config.aggregate = readAggregate(input.aggregate);
  if (input.transform !== undefined) {
    if (typeof input.transform !== 'function') {
      throw new ConfigurationError(
        'mapping.transform must be a function (in JSON, name its module in mapping.transformModule)',
      );
    }
    config.transform = input.transform as TransformHook;
  }
  if (input.transformModule !== undefined) {
    config.transformModule = nonEmptyString(input.transformModule, 'mapping.transformModule');
  }

  const hook = config.transform ? 'transform' : config.transformModule ? 'transformModule' : undefined;
  if (config.transform && config.transformModule) {
    throw new ConfigurationError('mapping.transform and mapping.transformModule cannot both be set');
  }
  for (const other of ['routes', 'unrouted', 'aggregate'] as const) {
    if (hook && config[other] !== undefined) {
      throw new ConfigurationError(
        `mapping.${hook} cannot be combined with mapping.${other}: a transform decides index and id itself`,
      );
    }
  }
  return config;
}

/**
 * Where the transform hook of mapping.transformModule comes from: `import`
 * the path at run time (local runs, resolved against the working directory),
 * or the module that synth `bundle`d into this Lambda function
 * (pipeline/mapping/bundled-transform.ts).
 */
export type TransformSource = 'import' | 'bundle';

/**
 * parseMappingConfig, then loads `transformModule` and uses its default
 * export, or else its export named `transform`, as the transform hook.
 */
export async function loadMappingConfig(
  raw: unknown,
  defaults?: { index?: string },
  options: { transformSource?: TransformSource } = {},
): Promise<MappingConfig> {
  const { transformModule, ...config } = parseMappingConfig(raw, defaults);
  if (transformModule === undefined) return config;

  const loaded =
    options.transformSource === 'bundle'
      ? bundledExports(transformModule)
      : await importTransformModule(transformModule);
  const hook = typeof loaded.default === 'function' ? loaded.default : loaded.transform;
  if (typeof hook !== 'function') {
    throw new ConfigurationError(
      `mapping.transformModule ${transformModule} exports neither a default function nor a function named transform`,
    );
  }
  return { ...config, transform: hook as TransformHook };
}

async function importTransformModule(transformModule: string): Promise<Record<string, unknown>> {
  const url = /^file:/.test(transformModule) ? transformModule : pathToFileURL(resolve(transformModule)).href;
  try {
    return await import(url);
  } catch (error) {
    throw new ConfigurationError(`mapping.transformModule ${transformModule} could not be loaded`, {
      cause: error,
    });
  }
}

function bundledExports(transformModule: string): Record<string, unknown> {
  const bundled = bundledTransformModule();
  if (bundled === undefined) {
    throw new ConfigurationError(
      `mapping.transformModule names ${transformModule}, but no transform module is bundled into this function; ` +
        'deploy with the transformModule prop of BackfillWorkflow (or -c transformModule=PATH), which bundles it',
    );
  }
  if (bundled.source !== transformModule) {
    throw new ConfigurationError(
      `mapping.transformModule names ${transformModule}, but this function was bundled with ${bundled.source}; ` +
        'deploy again so that the two agree',
    );
  }
  return bundled.exports;
}

/**
 * Checks what only the table can tell: aggregation needs a sort key, and the
 * children field must not shadow a key attribute. Call it once per run, before
 * mapping anything. Throws ConfigurationError.
 */
export function checkMappingForTable(config: MappingConfig, keySchema: KeySchema): void {
  if (!config.aggregate) return;
  if (keySchema.sortKey === undefined) {
    throw new ConfigurationError(
      `mapping.aggregate needs a table with a sort key, and this table has only the partition key ${keySchema.partitionKey}`,
    );
  }
  const field = config.aggregate.childrenField;
  if (field === keySchema.partitionKey || field === keySchema.sortKey) {
    throw new ConfigurationError(`mapping.aggregate.childrenField must not be the key attribute ${field}`);
  }
}

/**
 * The document id, the one rule every path (backfill, updater, verify) uses:
 * the partition key's value for a table without a sort key; with a sort key,
 * `<partition>|<sort>`, each part with `\` written `\\` and `|` written `\|`.
 * Escaping keeps two keys from sharing an id (`a|b` + `c` against `a` +
 * `b|c`) while a key without those characters keeps the plain
 * `<partition>|<sort>` id that other tools (zero-ETL) write. A single part
 * needs no escaping: within one table it is a key of one type. Throws
 * MappingError when a key attribute is missing or not S/N/B, or the id
 * exceeds OpenSearch's 512 bytes.
 */
export function documentId(item: Item, keySchema: KeySchema): string {
  const partition = keyPart(item[keySchema.partitionKey], keySchema.partitionKey);
  if (keySchema.sortKey === undefined) return checkedId(partition);
  const sort = keyPart(item[keySchema.sortKey], keySchema.sortKey);
  return checkedId(`${escapeIdPart(partition)}|${escapeIdPart(sort)}`);
}

/** After this, the `|` between the two parts is the only one not preceded by an escaping `\`. */
function escapeIdPart(part: string): string {
  return part.replace(/[\\|]/g, '\\$&');
}

/** The index an item goes to by the routes, or undefined when it is skipped. Needs only the partition key. */
export function indexFor(item: Item, keySchema: KeySchema, config: MappingConfig): string | undefined {
  const partition = keyPart(item[keySchema.partitionKey], keySchema.partitionKey);
  let best: { prefix: string; index: string } | undefined;
  for (const route of config.routes ?? []) {
    if (partition.startsWith(route.prefix) && (!best || route.prefix.length > best.prefix.length))
      best = route;
  }
  if (best) return best.index;
  return config.unrouted === 'skip' ? undefined : config.index;
}

/**
 * Non-aggregated mapping of one item: [] when skipped. Throws MappingError for
 * an item that cannot be mapped, ConfigurationError for an aggregated config
 * (use aggregateCollection).
 */
export function mapItem(item: Item, keySchema: KeySchema, config: MappingConfig): MappedDocument[] {
  if (config.aggregate) {
    throw new ConfigurationError(
      'mapping.aggregate is set: map whole partitions with aggregateCollection, not mapItem',
    );
  }
  if (config.transform) return runTransform(config.transform, item, keySchema, config.index);
  const index = indexFor(item, keySchema, config);
  if (index === undefined) return [];
  return [{ index, id: documentId(item, keySchema), document: toDocumentBody(item) }];
}

/**
 * Aggregation: all items of one partition (any order) → the single aggregated
 * document (or [] when routed nowhere, or for no items). Throws MappingError
 * when the items do not share one partition key or repeat a sort key.
 */
export function aggregateCollection(
  items: Item[],
  keySchema: KeySchema,
  config: MappingConfig,
): MappedDocument[] {
  if (!config.aggregate) throw new ConfigurationError('aggregateCollection needs mapping.aggregate');
  checkMappingForTable(config, keySchema);
  const first = items[0];
  if (first === undefined) return [];
  const { partitionKey } = keySchema;
  const sortKey = keySchema.sortKey!;
  const { parentSortKey, childrenField } = config.aggregate;

  const partition = keyPart(first[partitionKey], partitionKey);
  const keyed = items.map((item) => {
    const other = keyPart(item[partitionKey], partitionKey);
    if (other !== partition) {
      throw new MappingError(
        `items of partitions ${partition} and ${other} cannot be aggregated into one document`,
      );
    }
    const sortValue = item[sortKey];
    return { item, sortValue, sort: keyPart(sortValue, sortKey) };
  });
  keyed.sort((a, b) => compareSortKeys(a.sortValue!, b.sortValue!, sortKey));
  for (let i = 1; i < keyed.length; i++) {
    if (keyed[i - 1]!.sort === keyed[i]!.sort) {
      throw new MappingError(`partition ${partition} holds two items with ${sortKey} ${keyed[i]!.sort}`);
    }
  }

  const index = indexFor(first, keySchema, config);
  if (index === undefined) return [];
  const parent = keyed.find((entry) => entry.sort === parentSortKey);
  const document: Record<string, unknown> = parent
    ? toDocumentBody(parent.item)
    : { [partitionKey]: attributeToJson(first[partitionKey]!) };
  if (Object.hasOwn(document, childrenField)) {
    throw new MappingError(
      `the parent item of partition ${partition} has an attribute ${childrenField}, the name of mapping.aggregate.childrenField`,
    );
  }
  // defineProperty: a children field named __proto__ must stay data.
  Object.defineProperty(document, childrenField, {
    enumerable: true,
    writable: true,
    configurable: true,
    value: keyed.filter((entry) => entry !== parent).map((entry) => toDocumentBody(entry.item)),
  });
  // One document per partition: its id is the partition key's value alone, as for a table without a sort key.
  return [{ index, id: checkedId(partition), document }];
}

/**
 * A document as the JSON of a bulk line. Plain JSON.stringify is enough: the
 * built-in bodies hold only strings, safe numbers, booleans, null, arrays and
 * objects. What a transform returns may not (a BigInt), and that is the item's
 * problem: a MappingError, not a failed batch.
 */
export function encodeDocument(document: Record<string, unknown>): string {
  try {
    return JSON.stringify(document);
  } catch (error) {
    throw new MappingError(`the document cannot be written as JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** DynamoDB's own sort key order: S by UTF-8 bytes, N by value, B by unsigned bytes. */
function compareSortKeys(a: AttributeValue, b: AttributeValue, name: string): number {
  if (typeof a.S === 'string' && typeof b.S === 'string')
    return Buffer.compare(Buffer.from(a.S), Buffer.from(b.S));
  if (a.N !== undefined && b.N !== undefined)
    return compareDecimals(readNumber(a.N, name), readNumber(b.N, name));
  if (a.B !== undefined && b.B !== undefined) {
    return Buffer.compare(Buffer.from(base64(a.B, name), 'base64'), Buffer.from(base64(b.B, name), 'base64'));
  }
  throw new MappingError(`sort key ${name} has values of different types in one partition`);
}

function runTransform(
  hook: TransformHook,
  item: Item,
  keySchema: KeySchema,
  defaultIndex: string,
): MappedDocument[] {
  let result: unknown;
  try {
    result = hook(item, { keySchema, defaultIndex });
  } catch (error) {
    if (error instanceof MappingError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new MappingError(`the transform failed: ${reason}`, { cause: error });
  }
  if (result === null || result === undefined) return [];
  if (typeof (result as { then?: unknown }).then === 'function') {
    // The hook broke the contract; do not leave an unhandled rejection behind.
    (result as Promise<unknown>).then(undefined, () => {});
    throw new MappingError('the transform returned a Promise; it must return its documents synchronously');
  }
  const documents = Array.isArray(result) ? result : [result];
  return documents.map((document, i) => checkedDocument(document, `transform result [${i}]`));
}

function checkedDocument(value: unknown, path: string): MappedDocument {
  if (!isPlainObject(value)) throw new MappingError(`${path} is not an object { index, id, document }`);
  const { index, id, document } = value;
  if (typeof index !== 'string' || index === '') {
    throw new MappingError(`${path}.index must be a non-empty string`);
  }
  const problem = indexNameProblem(index);
  if (problem) {
    throw new MappingError(`${path}.index ${JSON.stringify(index)} is not a valid index name: it ${problem}`);
  }
  if (typeof id !== 'string' || id === '') throw new MappingError(`${path}.id must be a non-empty string`);
  if (!isPlainObject(document)) throw new MappingError(`${path}.document must be an object`);
  return { index, id: checkedId(id), document };
}

function checkedId(id: string): string {
  const bytes = Buffer.byteLength(id);
  if (bytes > MAX_ID_BYTES) {
    throw new MappingError(
      `document id is ${bytes} bytes long, more than OpenSearch's limit of ${MAX_ID_BYTES}`,
    );
  }
  return id;
}

function readRawConfig(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  let value = raw;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return {};
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new ConfigurationError(`mapping is not valid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (!isPlainObject(value)) throw new ConfigurationError('mapping must be a JSON object');
  return value;
}

function readRoutes(value: unknown): { prefix: string; index: string }[] {
  if (!Array.isArray(value)) {
    throw new ConfigurationError('mapping.routes must be an array of { prefix, index }');
  }
  const seen = new Map<string, number>();
  return value.map((route: unknown, i) => {
    const path = `mapping.routes[${i}]`;
    if (!isPlainObject(route)) throw new ConfigurationError(`${path} must be an object { prefix, index }`);
    rejectUnknownFields(route, ['prefix', 'index'], path);
    const prefix = nonEmptyString(route.prefix, `${path}.prefix`);
    const index = indexName(route.index, `${path}.index`);
    const earlier = seen.get(prefix);
    if (earlier !== undefined) {
      throw new ConfigurationError(
        `${path}.prefix repeats mapping.routes[${earlier}].prefix ${JSON.stringify(prefix)}`,
      );
    }
    seen.set(prefix, i);
    return { prefix, index };
  });
}

function readAggregate(value: unknown): { parentSortKey: string; childrenField: string } {
  if (!isPlainObject(value)) {
    throw new ConfigurationError('mapping.aggregate must be an object { parentSortKey, childrenField }');
  }
  rejectUnknownFields(value, ['parentSortKey', 'childrenField'], 'mapping.aggregate');
  return {
    parentSortKey: nonEmptyString(value.parentSortKey, 'mapping.aggregate.parentSortKey'),
    childrenField: nonEmptyString(value.childrenField, 'mapping.aggregate.childrenField'),
  };
}

function rejectUnknownFields(value: Record<string, unknown>, known: string[], path: string): void {
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      throw new ConfigurationError(`${path}.${name} is not a known field (known: ${known.join(', ')})`);
    }
  }
}

function nonEmptyString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigurationError(`${path} must be a non-empty string`);
  }
  return value;
}

function indexName(value: unknown, path: string): string {
  const name = nonEmptyString(value, path);
  const problem = indexNameProblem(name);
  if (problem) {
    throw new ConfigurationError(`${path} ${JSON.stringify(name)} is not a valid index name: it ${problem}`);
  }
  return name;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
