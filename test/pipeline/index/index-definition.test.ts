import { describe, expect, it } from 'vitest';
import { loadDefinition } from '../../../local/workflow';
import {
  indexDefinitionFromPlanInput,
  indexDefinitionSubstitution,
  indexOptionsFor,
  MAX_INDEX_DEFINITION_BYTES,
  parseIndexDefinitionText,
  readIndexDefinition,
} from '../../../pipeline/index/index-definition';
import { ITEM_FRIENDLY_MAPPINGS } from '../../../pipeline/index/index-settings';

const SOURCE = 'index config file x.json';
const read = (raw: unknown) => readIndexDefinition(raw, SOURCE);
const ddb2osTemplateNames = ITEM_FRIENDLY_MAPPINGS.dynamic_templates.map(
  (template) => Object.keys(template)[0],
);

describe('the index definition file', () => {
  it('takes the body of PUT /<index>, with settings flattened to index.* names without the prefix', () => {
    const definition = read({
      settings: {
        index: { number_of_shards: 3, mapping: { total_fields: { limit: 500 } } },
        'index.refresh_interval': '30s',
        analysis: { analyzer: { folded: { type: 'custom', tokenizer: 'standard', filter: ['lowercase'] } } },
      },
      mappings: { properties: { sku: { type: 'keyword' } } },
    });

    expect(definition.settings).toEqual({
      number_of_shards: 3,
      'mapping.total_fields.limit': 500,
      refresh_interval: '30s',
      'analysis.analyzer.folded.type': 'custom',
      'analysis.analyzer.folded.tokenizer': 'standard',
      'analysis.analyzer.folded.filter': ['lowercase'],
    });
    expect(definition.mappings).toEqual({ properties: { sku: { type: 'keyword' } } });
  });

  it('takes a composable index template and uses its template part', () => {
    const definition = read({
      index_patterns: ['orders-*'],
      priority: 5,
      version: 2,
      _meta: { owner: 'search team' },
      composed_of: [],
      template: { settings: { number_of_shards: 1 }, mappings: { dynamic: 'strict' }, aliases: {} },
    });

    expect(definition).toEqual({
      source: SOURCE,
      settings: { number_of_shards: 1 },
      mappings: { dynamic: 'strict' },
    });
  });

  it('takes a legacy template (index_patterns and order beside settings and mappings)', () => {
    expect(read({ index_patterns: ['x*'], order: 1, settings: { number_of_shards: 1 } }).settings).toEqual({
      number_of_shards: 1,
    });
  });

  it.each([
    [[], `${SOURCE}: the definition must be a JSON object, not an array`],
    [{ setting: {} }, `${SOURCE} has unknown top-level field "setting" (known: settings, mappings;`],
    [{ a: 1, b: 2 }, `${SOURCE} has unknown top-level fields "a", "b"`],
    [
      { orders: { settings: {}, mappings: {} } },
      `${SOURCE} looks like the answer of GET /orders: give the object under "orders"`,
    ],
    [{ index_templates: [] }, `${SOURCE} is the answer of GET _index_template`],
    [
      { template: {}, mappings: {} },
      `${SOURCE} has both "template" and top-level "mappings": give one of them`,
    ],
    [{ template: { mapping: {} } }, `${SOURCE} has unknown field "template.mapping"`],
    [
      { aliases: { search: {} } },
      `${SOURCE}: aliases are not applied by ddb2os: an alias would point at the index while the backfill is still filling it`,
    ],
    [{ template: { aliases: { search: {} } } }, `${SOURCE}: template.aliases are not applied by ddb2os`],
    [{ template: {}, composed_of: ['base'] }, `${SOURCE}: composed_of is not supported`],
    [
      { template: {}, data_stream: {} },
      `${SOURCE}: data_stream is not supported: ddb2os writes documents by id`,
    ],
    [{ settings: 'x' }, `${SOURCE}: settings must be a JSON object, not "x"`],
    [
      { settings: { index: { number_of_shards: 1 }, number_of_shards: 2 } },
      `${SOURCE}: settings gives index.number_of_shards twice`,
    ],
    [{ mappings: { properties: [] } }, `${SOURCE}: mappings.properties must be a JSON object, not an array`],
    [{ mappings: { dynamic_templates: {} } }, `${SOURCE}: mappings.dynamic_templates must be an array`],
    [
      { mappings: { dynamic_templates: [{ a: {}, b: {} }] } },
      `${SOURCE}: mappings.dynamic_templates[0] must be one named template`,
    ],
  ])('refuses %j, naming the field', (raw, message) => {
    expect(() => read(raw)).toThrow(message);
  });

  it('refuses a definition over 128 KiB, saying why', () => {
    const properties = Object.fromEntries(
      Array.from({ length: 5_000 }, (_, i) => [`field_with_a_long_name_${i}`, { type: 'keyword' }]),
    );
    expect(() => read({ mappings: { properties } })).toThrow(
      new RegExp(
        `takes at most ${MAX_INDEX_DEFINITION_BYTES / 1024} KiB .*a Step Functions state holds 256 KiB`,
      ),
    );
  });

  it.each([
    ['{\n  "mappings": {\n    "dynamic": strict\n  }\n}', "Unexpected token 's' at line 3, column 16"],
    ['{\n  "settings": { "number_of_shards": 1, }\n}', 'at line 2, column 40'],
    ['{} x', 'at line 1, column 4'],
    ['{"mappings": ', 'Unexpected end of JSON input'],
  ])('names the line and column of a JSON error in %j, on one line', (text, where) => {
    expect(() => parseIndexDefinitionText(text, SOURCE)).toThrow(
      new RegExp(`^${SOURCE} is not valid JSON: [^\\n]*${where.replace(/[()]/g, '\\$&')}$`),
    );
  });
});

describe('combining the definition with the defaults', () => {
  it("puts the user's dynamic templates first, then ddb2os's; a user template of the same name replaces ddb2os's", () => {
    const replaced = ddb2osTemplateNames[0] as string;
    const options = indexOptionsFor(
      read({
        mappings: {
          dynamic_templates: [
            { strings: { match_mapping_type: 'string', mapping: { type: 'keyword' } } },
            { [replaced]: { match_mapping_type: 'long', mapping: { type: 'long' } } },
          ],
        },
      }),
    );

    const templates = (options.mappingBody?.dynamic_templates ?? []) as Record<string, unknown>[];
    const names = templates.map((template) => Object.keys(template)[0]);
    expect(names).toEqual(['strings', replaced, ...ddb2osTemplateNames.filter((name) => name !== replaced)]);
    expect(templates[1]).toEqual({
      [replaced]: { match_mapping_type: 'long', mapping: { type: 'long' } },
    });
  });

  it("lets the user's date_detection, dynamic and _meta win and keeps their properties as given", () => {
    const options = indexOptionsFor(
      read({
        settings: { number_of_replicas: 2 },
        mappings: {
          date_detection: true,
          dynamic: 'strict',
          _meta: { team: 'search' },
          properties: { at: { type: 'date' } },
        },
      }),
    );

    expect(options.mappingBody).toMatchObject({
      date_detection: true,
      dynamic: 'strict',
      _meta: { team: 'search' },
      properties: { at: { type: 'date' } },
    });
    expect(options.settings).toEqual({ number_of_replicas: 2 });
  });

  it("without user mappings, a created index gets exactly ddb2os's defaults", () => {
    expect(indexOptionsFor(read({ settings: { number_of_shards: 1 } })).mappingBody).toEqual(
      ITEM_FRIENDLY_MAPPINGS,
    );
  });
});

describe('the definition in the state machine', () => {
  it('survives the substitution into the definition file, quotes, backslashes, unicode and placeholders included', () => {
    const definition = read({
      settings: {
        'analysis.char_filter.quotes.mappings': ['" => \'', '\\\\ => /', ['$', '{TableName} => y'].join('')],
      },
      mappings: { _meta: { note: 'größe “quoted” \u2028 line' } },
    });

    const asl = loadDefinition({
      ...Object.fromEntries(
        [
          'TableName',
          'IndexName',
          'MaxConcurrency',
          'RetentionBudgetHours',
          'HeartbeatSeconds',
          'SegmentTimeoutSeconds',
          'UpdaterMappingUuid',
          'PlanFunctionArn',
          'SummarizeFunctionArn',
          'RunLockFunctionArn',
          'WorkerMaxConcurrency',
          'SegmentQueueUrl',
          'BucketName',
          'ResyncFunctionArn',
          'ResyncCreateWaitSeconds',
          'ResyncDrainSeconds',
        ].map((name) => [name, '1']),
      ),
      IndexConfig: indexDefinitionSubstitution(definition),
    }) as { States: Record<string, { Parameters: { indexConfig: string } }> };
    const passed = asl.States['Plan segments']?.Parameters.indexConfig;

    expect(indexDefinitionFromPlanInput(passed)).toEqual(definition);
  });

  it('is null without a definition, which the plan step reads as none', () => {
    expect(indexDefinitionSubstitution(undefined)).toBe('null');
    expect(indexDefinitionFromPlanInput('null')).toBeUndefined();
    expect(indexDefinitionFromPlanInput(undefined)).toBeUndefined();
  });
});
