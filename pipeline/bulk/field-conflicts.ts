/**
 * What a writer does when OpenSearch refuses a document because of a field's
 * type: the one rule behind the backfill's BulkWriter and the updater's bulk
 * loop (docs/mapping.md, "Index defaults and heterogeneous data").
 *
 * An index that ddb2os creates already takes a value of another scalar type
 * in a mapped field (`index.mapping.ignore_malformed`, booleans mapped like
 * strings). What is left:
 *
 * - One document adds a field and disagrees with itself: a list that mixes
 *   numbers with strings or booleans, maps in a list whose members differ
 *   (`[{v:1},{v:"a"}]`), or a list that mixes maps and scalars. OpenSearch
 *   says "mapper [P] cannot be changed from type [A] to [B]" or "can't merge
 *   a non object mapping [P] with an object mapping". The resolver maps P as
 *   text with a keyword subfield (every scalar fits it, and a map in it is
 *   kept in `_source` without being indexed) and the document is sent again.
 *   The same words come from two requests that add one field at once with
 *   different types (a race): then the mapping put fails, because P is
 *   mapped by now, and the document is simply sent again.
 * - An object in the mapping and a scalar in the item ("object mapping for
 *   [e] tried to parse field [e] as object, but found a concrete value"), or
 *   a value a field of a user's index cannot take ("failed to parse field
 *   [P] of type [T]"). No mapping change keeps the body exact and lands it,
 *   so the document fails with a reason naming the field and both types, and
 *   a FieldConflict that the run's summary counts.
 *
 * Only an index whose mapping says ddb2os created it (`_meta.ddb2os`) gets a
 * mapping put: an index that existed before belongs to its owner, whose
 * dynamic templates would have chosen another type. There a self-conflicting
 * document is retried like a race and then fails with its reason.
 */
import type { Client } from '@opensearch-project/opensearch';
import { describeError } from '../errors';

/**
 * Mapping of a field that takes every scalar: strings, numbers and booleans
 * are all searchable as text and, up to 256 characters, as exact keywords.
 * Also the dynamic mapping of strings and booleans in a created index.
 */
export const ANY_SCALAR_MAPPING = {
  type: 'text',
  fields: { keyword: { type: 'keyword', ignore_above: 256 } },
} as const;

/**
 * Times a document may fail with a mapping conflict (a resolution or a race)
 * before it fails for good. Each resolution settles one field, so this also
 * bounds the mixed fields a single document can bring into the index at once.
 */
export const MAX_CONFLICT_ATTEMPTS = 5;

/** Attempts at a self-conflicting document in an index that ddb2os did not create (races settle within them). */
export const MAPPING_RACE_ATTEMPTS = 3;

/** A field whose type in the index mapping does not fit the item's value. */
export interface FieldConflict {
  /** The field's path as OpenSearch names it, e.g. `address.city`. */
  field: string;
  /** What the mapping holds: `object` or a field type such as `keyword`. */
  indexType: string;
  /** What the item holds there, in words: `a string`, `a list holding numbers and objects`, … */
  itemType: string;
}

/** The error of one bulk item, as OpenSearch sends it. */
export interface BulkItemError {
  type?: string;
  reason?: string | null;
}

export type ConflictVerdict =
  /** Send the document again (a mapping was put, or a race settles). */
  | { retry: true }
  /** The document fails for good, with this reason (and the field when it is a type conflict). */
  | { retry: false; reason: string; conflict?: FieldConflict };

interface Logger {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

const SELF_CONFLICT = /^mapper \[(.+)\] cannot be changed from type \[([^\]]+)\] to \[([^\]]+)\]$/;
const MIXED_OBJECT_LIST = /^can't merge a non object mapping \[(.+)\] with an object mapping/;
const OBJECT_GOT_SCALAR =
  /^object mapping for \[(.+?)\] tried to parse field \[.*\] as object, but found a concrete value/;
const FIELD_GOT_OTHER = /^failed to parse field \[(.+?)\] of type \[([^\]]+)\]/;
const NOT_SCALAR = new Set(['object', 'nested', 'flat_object']);
/** How long an answer about who created an index is trusted (an index can be deleted and made again). */
const OWNER_TTL_MS = 5 * 60_000;

/**
 * True for the words of a dynamic-mapping conflict (a race between two
 * requests, or one document that disagrees with itself): worth another try.
 */
export function isDynamicMappingRace(error: BulkItemError | undefined): boolean {
  return (
    error?.type === 'illegal_argument_exception' &&
    (SELF_CONFLICT.test(error.reason ?? '') || MIXED_OBJECT_LIST.test(error.reason ?? ''))
  );
}

export class FieldConflictResolver {
  private readonly owners = new Map<string, { created: Promise<boolean>; at: number }>();
  /** Mapping puts in flight, per index and field: a batch of documents with one mixed field puts once. */
  private readonly puts = new Map<string, Promise<void>>();

  constructor(private readonly client: Client) {}

  /**
   * What to do with a document that `index` refused with `error`, after it
   * already failed `conflicts` times with a mapping conflict. `document`
   * gives its body (parsed only on this rare path). Undefined: not a field
   * type problem; the caller keeps its own verdict.
   */
  async settle(
    index: string,
    error: BulkItemError | undefined,
    conflicts: number,
    document: () => unknown,
    logger?: Logger,
  ): Promise<ConflictVerdict | undefined> {
    const reason = error?.reason ?? '';
    if (error?.type === 'illegal_argument_exception') {
      const self = SELF_CONFLICT.exec(reason);
      const mixed = self ? undefined : MIXED_OBJECT_LIST.exec(reason);
      const field = self?.[1] ?? mixed?.[1];
      if (field === undefined) return undefined;
      const scalars = self ? !NOT_SCALAR.has(self[2] as string) && !NOT_SCALAR.has(self[3] as string) : true;
      const values = valuesAt(document(), field);
      // A mixed list of maps and scalars is this document's own; the same words for a plain value are a race.
      const resolvable = scalars && (self !== null || values.some(mixesMapsAndScalars));
      const limit =
        resolvable && (await this.createdByDdb2os(index, logger))
          ? MAX_CONFLICT_ATTEMPTS
          : MAPPING_RACE_ATTEMPTS;
      if (conflicts + 1 >= limit) {
        return {
          retry: false,
          reason: `field ${field} holds ${describeValues(values)} in this item and the index could not give it one type after ${conflicts + 1} attempts (OpenSearch: ${reason})`,
        };
      }
      if (limit === MAX_CONFLICT_ATTEMPTS) {
        // OpenSearch names one field per refusal: settle every field that mixes types in this document at once.
        const fields = new Set([field, ...mixedFields(document())]);
        await Promise.all([...fields].map((name) => this.mapAsAnyScalar(index, name, logger)));
      }
      return { retry: true };
    }
    if (error?.type === 'mapper_parsing_exception') {
      const object = OBJECT_GOT_SCALAR.exec(reason);
      const other = object ? undefined : FIELD_GOT_OTHER.exec(reason);
      const field = object?.[1] ?? other?.[1];
      if (field === undefined) return undefined;
      const conflict: FieldConflict = {
        field,
        indexType: object ? 'object' : (other?.[2] as string),
        itemType: describeValues(valuesAt(document(), field)),
      };
      // OpenSearch's words on a field that refuses a value quote the value: kept for the dead letter, which may hold it.
      const words = object ? '' : ` (OpenSearch: ${reason})`;
      return { retry: false, reason: `${conflictReason(conflict)}${words}`, conflict };
    }
    return undefined;
  }

  /** Whether every index behind `index` (an alias may stand for several) has ddb2os's `_meta`. */
  private createdByDdb2os(index: string, logger: Logger | undefined): Promise<boolean> {
    const known = this.owners.get(index);
    if (known && Date.now() - known.at < OWNER_TTL_MS) return known.created;
    const created = this.client.indices
      .getMapping({ index })
      .then((response) => {
        const entries = Object.values(response.body as Record<string, { mappings?: { _meta?: unknown } }>);
        return (
          entries.length > 0 &&
          entries.every((entry) => (entry.mappings?._meta as { ddb2os?: unknown } | undefined)?.ddb2os)
        );
      })
      .catch((error: unknown) => {
        // Not knowing is not a reason to touch the mapping; the next conflict asks again.
        this.owners.delete(index);
        logger?.warn('could not read the index mapping to settle a field conflict', {
          index,
          error: describeError(error),
        });
        return false;
      });
    this.owners.set(index, { created, at: Date.now() });
    return created;
  }

  private mapAsAnyScalar(index: string, field: string, logger: Logger | undefined): Promise<void> {
    const name = `${index}\n${field}`;
    const known = this.puts.get(name);
    if (known) return known;
    const put = this.client.indices
      .putMapping({ index, body: { properties: nestedProperties(field, ANY_SCALAR_MAPPING) } } as never)
      .then(() => {
        logger?.info('mapped a field whose values mix types as text with a keyword subfield', {
          index,
          field,
        });
      })
      .catch(() => {
        // Mapped meanwhile (a race, or another writer's put): the document is sent again either way.
      })
      // Not remembered once done: the index may be deleted and made again under the same name.
      .finally(() => this.puts.delete(name));
    this.puts.set(name, put);
    return put;
  }
}

const resolvers = new WeakMap<Client, FieldConflictResolver>();

/** The resolver of a client: one per client, so what it learned about indices serves every batch. */
export function fieldConflictResolverFor(client: Client): FieldConflictResolver {
  let resolver = resolvers.get(client);
  if (!resolver) {
    resolver = new FieldConflictResolver(client);
    resolvers.set(client, resolver);
  }
  return resolver;
}

/**
 * `field e is an object in the index mapping and a string in this item`, or,
 * for a run's summary, `… and a string in 3 items`.
 */
export function conflictReason(conflict: FieldConflict, items?: number): string {
  const where =
    items === undefined ? 'this item' : `${items.toLocaleString('en-US')} item${items === 1 ? '' : 's'}`;
  return `field ${conflict.field} is ${typeInWords(conflict.indexType)} in the index mapping and ${conflict.itemType} in ${where}`;
}

/** The explicit mapping that makes every such item land, for the summary and the docs. */
export function conflictFix(conflict: Pick<FieldConflict, 'field' | 'indexType'>): string {
  const name = JSON.stringify(conflict.field);
  // flat_object is no fix here: it refuses a scalar as an object field does (checked on OpenSearch 2.19).
  return conflict.indexType === 'object'
    ? `map it explicitly in the index definition, e.g. ${name}: {"type": "object", "enabled": false} (every value kept, none searchable)`
    : `set "index.mapping.ignore_malformed": true in the index definition (the value is kept, not indexed), or map it as ${name}: {"type": "object", "enabled": false} (every value kept, none searchable)`;
}

function typeInWords(type: string): string {
  return type === 'object' ? 'an object' : `a ${type} field`;
}

/** `{properties: {a: {properties: {b: mapping}}}}` for `a.b`. */
function nestedProperties(field: string, mapping: object): Record<string, unknown> {
  const parts = field.split('.');
  let properties: Record<string, unknown> = { [parts.at(-1) as string]: mapping };
  for (const part of parts.slice(0, -1).reverse()) properties = { [part]: { properties } };
  return properties;
}

/**
 * The values at an OpenSearch field path in a document: lists are looked
 * through, as OpenSearch does, and an attribute name may itself hold dots.
 */
export function valuesAt(document: unknown, field: string): unknown[] {
  const found: unknown[] = [];
  const walk = (value: unknown, parts: string[]): void => {
    if (Array.isArray(value)) {
      for (const element of value) walk(element, parts);
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (let take = 1; take <= parts.length; take++) {
      const name = parts.slice(0, take).join('.');
      if (!Object.hasOwn(value, name)) continue;
      const inner = (value as Record<string, unknown>)[name];
      if (take === parts.length) found.push(inner);
      else walk(inner, parts.slice(take));
    }
  };
  walk(document, field.split('.'));
  return found;
}

/**
 * The field paths at which one document holds values that dynamic mapping
 * would give different types: a number and a string or boolean, or a map and
 * a scalar. Unmapped, each makes the document fail; mapped already, the put
 * fails harmlessly.
 */
export function mixedFields(document: unknown): string[] {
  const kinds = new Map<string, Set<'number' | 'text' | 'object'>>();
  const note = (path: string, kind: 'number' | 'text' | 'object') => {
    const known = kinds.get(path);
    if (known) known.add(kind);
    else kinds.set(path, new Set([kind]));
  };
  const walk = (value: unknown, path: string): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      for (const element of value) walk(element, path);
      return;
    }
    if (typeof value === 'object') {
      if (path !== '') note(path, 'object');
      for (const [name, inner] of Object.entries(value)) walk(inner, path === '' ? name : `${path}.${name}`);
      return;
    }
    note(path, typeof value === 'number' ? 'number' : 'text');
  };
  walk(document, '');
  return [...kinds].filter(([, found]) => found.size > 1).map(([path]) => path);
}

function mixesMapsAndScalars(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  const kinds = new Set(value.filter((element) => element !== null).map((element) => kindOf(element)));
  return kinds.has('object') && [...kinds].some((kind) => kind !== 'object');
}

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'list';

function kindOf(value: unknown): Kind {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'list';
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean' ? type : 'object';
}

const ARTICLE: Record<Kind, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'a boolean',
  null: 'null',
  object: 'an object',
  list: 'a list',
};
const PLURAL: Record<Kind, string> = {
  string: 'strings',
  number: 'numbers',
  boolean: 'booleans',
  null: 'nulls',
  object: 'objects',
  list: 'lists',
};

/** The item's value(s) at a field in words: `a string`, `a list holding numbers and objects`. */
export function describeValues(values: unknown[]): string {
  const words = new Set(values.map(describeValue));
  return words.size === 0 ? 'no value' : [...words].join(' and ');
}

function describeValue(value: unknown): string {
  const kind = kindOf(value);
  if (kind !== 'list') return ARTICLE[kind];
  const kinds = [...new Set((value as unknown[]).map(kindOf))].sort();
  return kinds.length === 0 ? 'an empty list' : `a list holding ${kinds.map((k) => PLURAL[k]).join(' and ')}`;
}

/** One field's conflicts in a run: the summary lists each field once. A type literal, so that it fits JSON-shaped types. */
export type FieldConflictCount = {
  index: string;
  field: string;
  /** What the index mapping holds (`object`, `keyword`, …). */
  indexType: string;
  /** What the items held there, in words, each once. */
  itemTypes: string[];
  /** Items dead-lettered for it. */
  items: number;
};

/** Fields kept per checkpoint and per summary: enough to act on, small enough for a DynamoDB item and a state's output. */
export const MAX_FIELD_CONFLICTS = 100;

/** The two lists merged: one entry per index, field and mapping type, counts added. */
export function addFieldConflicts(
  into: readonly FieldConflictCount[],
  more: readonly FieldConflictCount[],
): FieldConflictCount[] {
  const merged = new Map<string, FieldConflictCount>();
  for (const entry of [...into, ...more]) {
    const name = `${entry.index}\n${entry.field}\n${entry.indexType}`;
    const known = merged.get(name);
    if (known) {
      known.items += entry.items;
      known.itemTypes = [...new Set([...known.itemTypes, ...entry.itemTypes])];
    } else if (merged.size < MAX_FIELD_CONFLICTS) {
      merged.set(name, { ...entry, itemTypes: [...entry.itemTypes] });
    }
  }
  return [...merged.values()];
}

/**
 * The run summary's field conflicts as lines a person reads (`ddb2os run`,
 * `ddb2os status`); none when there were none.
 */
export function fieldConflictLines(conflicts: readonly (FieldConflictCount & { fix?: string })[]): string[] {
  if (conflicts.length === 0) return [];
  return [
    'fields whose type in the index does not fit some items (those items are dead-lettered):',
    ...conflicts.map(
      (c) =>
        `  index ${c.index}: ${conflictReason({ ...c, itemType: c.itemTypes.join(' or ') }, c.items)}; ${c.fix ?? conflictFix(c)}`,
    ),
  ];
}
