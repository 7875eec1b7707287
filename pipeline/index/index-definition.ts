/**
 * Your own index definition (`--index-config FILE`, the construct's
 * `indexConfig`): settings and mappings that ddb2os applies when it creates a
 * missing index. The file is the body of `PUT /<index>` (`settings`,
 * `mappings`) or an index template (`template.settings`, `template.mappings`;
 * the template's own fields are ignored). It is checked before anything is
 * read: a file that is not JSON or not of that shape is one ConfigurationError
 * naming the file and the field. It combines with ddb2os's defaults key by
 * key (docs/mapping.md, "Your own index definition"): the user's settings win
 * over the item-friendly limits, the user's dynamic templates come before
 * ddb2os's (the first match wins), and ddb2os still adds its bulk-load
 * settings and `_meta.ddb2os`. Aliases are refused: ddb2os would attach them
 * to a half-filled index, which searches would then read.
 *
 * In the cloud the definition travels in the state machine definition (a
 * substitution into the "Plan segments" input), not in an environment
 * variable: Lambda allows 4 KB of those in all.
 */
import type { Client } from '@opensearch-project/opensearch';
import { ConfigurationError } from '../errors';
import {
  type IndexPreparation,
  ITEM_FRIENDLY_MAPPINGS,
  type PrepareIndexOptions,
  prepareIndexForBackfill,
} from './index-settings';

/** An index definition after its shape was checked. */
export interface IndexDefinition {
  /** Where it came from, for messages: `index config file x.json`, `the indexConfig prop`. */
  readonly source: string;
  /** Index settings with flat names and no `index.` prefix (`number_of_shards`, `analysis.analyzer.a.type`). */
  readonly settings: Record<string, unknown>;
  /** The mappings as given. */
  readonly mappings: Record<string, unknown>;
}

/**
 * Largest definition (compact JSON) ddb2os takes: in the cloud it is part of
 * the plan step's input, and a Step Functions state holds at most 256 KiB.
 */
export const MAX_INDEX_DEFINITION_BYTES = 128 * 1024;

const INDEX_BODY_FIELDS = ['settings', 'mappings', 'aliases'];
/** Fields of a composable (`_index_template`) or legacy (`_template`) index template besides its body. */
const TEMPLATE_FIELDS = [
  'template',
  'index_patterns',
  'priority',
  'version',
  '_meta',
  'composed_of',
  'order',
];

/** Parses a definition file's text; a JSON error names the line and column. */
export function parseIndexDefinitionText(text: string, source: string): IndexDefinition {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(`${source} is not valid JSON: ${jsonErrorWhere(error as Error, text)}`, {
      cause: error,
    });
  }
  return readIndexDefinition(raw, source);
}

/** Checks the shape of a parsed definition (an index body or an index template). */
export function readIndexDefinition(raw: unknown, source: string): IndexDefinition {
  const top = object(raw, source, 'the definition');
  if ('index_templates' in top) {
    throw new ConfigurationError(
      `${source} is the answer of GET _index_template: give one template's "index_template" object`,
    );
  }
  // data_stream is known so that it gets its own reason below.
  const known = [...INDEX_BODY_FIELDS, ...TEMPLATE_FIELDS, 'data_stream'];
  const unknown = Object.keys(top).filter((name) => !known.includes(name));
  if (unknown.length === 1 && Object.keys(top).length === 1) {
    const inner = top[unknown[0] as string];
    if (isObject(inner) && Object.keys(inner).some((name) => INDEX_BODY_FIELDS.includes(name))) {
      throw new ConfigurationError(
        `${source} looks like the answer of GET /${unknown[0]}: give the object under "${unknown[0]}" (its settings and mappings)`,
      );
    }
  }
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `${source} has unknown top-level field${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `"${name}"`).join(', ')} ` +
        '(known: settings, mappings; or an index template: template, index_patterns, priority, version, _meta, composed_of)',
    );
  }
  if ('data_stream' in top) {
    throw new ConfigurationError(
      `${source}: data_stream is not supported: ddb2os writes documents by id into an index`,
    );
  }
  const composedOf = top.composed_of;
  if (composedOf !== undefined && !(Array.isArray(composedOf) && composedOf.length === 0)) {
    throw new ConfigurationError(
      `${source}: composed_of is not supported: ddb2os does not resolve component templates; put their settings and mappings into "template"`,
    );
  }
  let body = top;
  let prefix = '';
  if (top.template !== undefined) {
    const inBoth = INDEX_BODY_FIELDS.filter((name) => name in top);
    if (inBoth.length > 0) {
      throw new ConfigurationError(
        `${source} has both "template" and top-level ${inBoth.map((name) => `"${name}"`).join(', ')}: give one of them`,
      );
    }
    body = object(top.template, source, 'template');
    prefix = 'template.';
    const extra = Object.keys(body).filter((name) => !INDEX_BODY_FIELDS.includes(name));
    if (extra.length > 0) {
      throw new ConfigurationError(
        `${source} has unknown field${extra.length > 1 ? 's' : ''} ${extra.map((name) => `"template.${name}"`).join(', ')} (known: template.settings, template.mappings)`,
      );
    }
  }
  if (body.aliases !== undefined && !(isObject(body.aliases) && Object.keys(body.aliases).length === 0)) {
    throw new ConfigurationError(
      `${source}: ${prefix}aliases are not applied by ddb2os: an alias would point at the index while the backfill is still filling it; add it after the backfill (POST _aliases)`,
    );
  }
  const settings = flatSettings(
    body.settings === undefined ? {} : object(body.settings, source, `${prefix}settings`),
    source,
    `${prefix}settings`,
  );
  const mappings = body.mappings === undefined ? {} : object(body.mappings, source, `${prefix}mappings`);
  checkMappings(mappings, source, `${prefix}mappings`);
  const definition = { source, settings, mappings };
  const bytes = Buffer.byteLength(JSON.stringify({ settings, mappings }), 'utf8');
  if (bytes > MAX_INDEX_DEFINITION_BYTES) {
    throw new ConfigurationError(
      `${source} is ${Math.ceil(bytes / 1024)} KiB as compact JSON; ddb2os takes at most ${MAX_INDEX_DEFINITION_BYTES / 1024} KiB ` +
        "(in the cloud it travels in the plan step's input, and a Step Functions state holds 256 KiB)",
    );
  }
  return definition;
}

/**
 * The options prepareIndexForBackfill creates an index with: the user's
 * settings over ddb2os's (key by key), and the user's mappings with ddb2os's
 * dynamic templates after the user's (a user template of the same name
 * replaces ddb2os's).
 */
export function indexOptionsFor(definition: IndexDefinition): PrepareIndexOptions {
  const defaults = ITEM_FRIENDLY_MAPPINGS as unknown as Record<string, unknown>;
  const user = definition.mappings;
  const userTemplates = (user.dynamic_templates ?? []) as Record<string, unknown>[];
  const userNames = new Set(userTemplates.flatMap((template) => Object.keys(template)));
  const ownTemplates = ((defaults.dynamic_templates ?? []) as Record<string, unknown>[]).filter(
    (template) => !Object.keys(template).some((name) => userNames.has(name)),
  );
  const mappingBody: Record<string, unknown> = {
    ...defaults,
    ...user,
    dynamic_templates: [...userTemplates, ...ownTemplates],
  };
  if (defaults.properties !== undefined || user.properties !== undefined) {
    mappingBody.properties = {
      ...((defaults.properties ?? {}) as Record<string, unknown>),
      ...((user.properties ?? {}) as Record<string, unknown>),
    };
  }
  return { settings: definition.settings, mappingBody };
}

/**
 * The text that replaces `${IndexConfig}` in statemachines/backfill.asl.json,
 * which sits inside a JSON string: the definition as JSON (or `null`),
 * escaped for that string. The stack and the local runner both use it.
 */
export function indexDefinitionSubstitution(definition: IndexDefinition | undefined): string {
  const json = JSON.stringify(
    definition === undefined
      ? null
      : { source: definition.source, settings: definition.settings, mappings: definition.mappings },
  );
  return JSON.stringify(json).slice(1, -1);
}

/** The definition the plan step received (`indexConfig`: that JSON text, or the object), or undefined. */
export function indexDefinitionFromPlanInput(value: unknown): IndexDefinition | undefined {
  let raw = value;
  if (typeof value === 'string') {
    try {
      raw = JSON.parse(value);
    } catch (error) {
      throw new ConfigurationError(
        `the plan input's indexConfig is not valid JSON: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
  if (raw === undefined || raw === null) return undefined;
  const { source, ...body } = object(raw, "the plan input's indexConfig", 'indexConfig');
  return readIndexDefinition(body, typeof source === 'string' && source !== '' ? source : 'the index config');
}

/**
 * Creates each missing index with the definition (or ddb2os's defaults
 * without one). OpenSearch's refusal of a setting or mapping is one
 * ConfigurationError with OpenSearch's reason, naming the index and the
 * definition's source.
 */
export async function createIndicesWithDefinition(
  client: Client,
  indices: string[],
  definition: IndexDefinition | undefined,
  fallback: PrepareIndexOptions | undefined,
): Promise<IndexPreparation[]> {
  const options = definition ? indexOptionsFor(definition) : fallback;
  const results: IndexPreparation[] = [];
  for (const index of [...new Set(indices)]) {
    try {
      results.push(...(await prepareIndexForBackfill(client, index, options)));
    } catch (error) {
      const reason = refusalReason(error);
      if (definition === undefined || reason === undefined) throw error;
      throw new ConfigurationError(
        `OpenSearch refused to create index ${index} with ${definition.source}: ${reason}`,
        { cause: error },
      );
    }
  }
  return results;
}

/** One warning line for the indices that existed, so the definition was not applied to them; else undefined. */
export function definitionNotAppliedWarning(
  definition: IndexDefinition | undefined,
  indices: IndexPreparation[],
): string | undefined {
  const existing = indices.filter((index) => index.action === 'existing').map((index) => index.index);
  if (definition === undefined || existing.length === 0) return undefined;
  return (
    `index${existing.length > 1 ? 'es' : ''} ${existing.join(', ')} already exist${existing.length > 1 ? '' : 's'}: ` +
    `${definition.source} is not applied to ${existing.length > 1 ? 'them' : 'it'} (ddb2os applies it only when it creates an index)`
  );
}

/**
 * Has OpenSearch check the definition without leaving anything behind: a
 * scratch index is created with it, exactly as a backfill would create its
 * index, and deleted. A refusal is the same ConfigurationError a run gives.
 */
export async function checkDefinitionWithOpenSearch(
  client: Client,
  definition: IndexDefinition,
  scratchIndex: string,
): Promise<void> {
  try {
    await createIndicesWithDefinition(client, [scratchIndex], definition, undefined);
  } finally {
    await client.indices.delete({ index: scratchIndex }, { ignore: [404] });
  }
}

/** OpenSearch's reason when it refused a request as invalid (HTTP 400), else undefined. */
function refusalReason(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const meta = (current as { meta?: { statusCode?: number; body?: unknown } }).meta;
    if (meta?.statusCode === 400) {
      const body = meta.body as { error?: OpenSearchError } | undefined;
      let cause = body?.error;
      while (cause?.caused_by?.reason) cause = cause.caused_by;
      return cause?.reason ?? body?.error?.root_cause?.[0]?.reason ?? current.message;
    }
    current = current.cause;
  }
  return undefined;
}

interface OpenSearchError {
  reason?: string;
  caused_by?: OpenSearchError;
  root_cause?: { reason?: string }[];
}

/** `{ index: { mapping: { depth: { limit: 64 } } } }` → `{ "mapping.depth.limit": 64 }`. */
function flatSettings(
  settings: Record<string, unknown>,
  source: string,
  where: string,
): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  const visit = (value: Record<string, unknown>, path: string) => {
    for (const [name, inner] of Object.entries(value)) {
      const full = path === '' ? name : `${path}.${name}`;
      if (isObject(inner)) {
        visit(inner, full);
        continue;
      }
      const key = full.startsWith('index.') ? full.slice('index.'.length) : full;
      if (key in flat) {
        throw new ConfigurationError(`${source}: ${where} gives index.${key} twice (nested and with dots)`);
      }
      flat[key] = inner;
    }
  };
  visit(settings, '');
  return flat;
}

function checkMappings(mappings: Record<string, unknown>, source: string, where: string): void {
  if (mappings.properties !== undefined) object(mappings.properties, source, `${where}.properties`);
  if (mappings._meta !== undefined) object(mappings._meta, source, `${where}._meta`);
  const templates = mappings.dynamic_templates;
  if (templates === undefined) return;
  if (!Array.isArray(templates)) {
    throw new ConfigurationError(
      `${source}: ${where}.dynamic_templates must be an array of { "name": { … } } objects`,
    );
  }
  templates.forEach((template, i) => {
    if (!isObject(template) || Object.keys(template).length !== 1 || !isObject(Object.values(template)[0])) {
      throw new ConfigurationError(
        `${source}: ${where}.dynamic_templates[${i}] must be one named template, like { "strings_as_keywords": { "match_mapping_type": "string", "mapping": { "type": "keyword" } } }`,
      );
    }
  });
}

function object(value: unknown, source: string, what: string): Record<string, unknown> {
  if (!isObject(value)) {
    throw new ConfigurationError(
      `${source}: ${what} must be a JSON object, not ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
    );
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON.parse's message on one line with the line and column of the error.
 * Node.js 20 names no position for an unexpected token (it quotes the text
 * around it instead), so the position is found as the shortest prefix of the
 * text that is wrong rather than merely unfinished.
 */
function jsonErrorWhere(error: Error, text: string): string {
  const message = error.message
    .replace(/ \(line \d+ column \d+\)$/, '')
    .replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
  if (/end of JSON input/.test(message)) return message;
  const stated = / in JSON at position (\d+)/.exec(message);
  const position = stated ? Number(stated[1]) : firstWrongPrefix(text) - 1;
  const before = text.slice(0, position).split('\n');
  const column = (before[before.length - 1]?.length ?? 0) + 1;
  return `${stated ? message.slice(0, stated.index) : message} at line ${before.length}, column ${column}`;
}

function firstWrongPrefix(text: string): number {
  const wrong = (length: number): boolean => {
    try {
      JSON.parse(text.slice(0, length));
      return false;
    } catch (error) {
      const message = (error as Error).message;
      if (/end of JSON input/.test(message)) return false;
      const at = / at position (\d+)/.exec(message);
      return at === null || Number(at[1]) < length;
    }
  };
  let low = 1;
  let high = text.length;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (wrong(middle)) high = middle;
    else low = middle + 1;
  }
  return low;
}
