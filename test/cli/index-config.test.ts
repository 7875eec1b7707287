/**
 * `--index-config FILE` on `run` and `plan`, against DynamoDB Local and the
 * real OpenSearch: the index ddb2os creates has the user's settings and
 * mappings (with ddb2os's dynamic templates after the user's), and a file or
 * a setting that cannot work stops the run before any item is read.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ITEM_FRIENDLY_LIMITS, ITEM_FRIENDLY_MAPPINGS } from '../../pipeline/index/index-settings';
import { seedItems } from '../support/backfill-fixtures';
import { dynamodbEndpoint, localRunArgs, opensearchUrl, useEngines } from '../support/engines';
import { lastJsonLine, runCli } from './support';

const ITEMS = 120;

/** What a user would put in orders-index.json: their own types for some fields, a template for the rest. */
const USER_DEFINITION = {
  settings: { index: { number_of_shards: 2, mapping: { total_fields: { limit: 2000 } } } },
  mappings: {
    properties: {
      note: { type: 'keyword' },
      total: { type: 'float' },
    },
    dynamic_templates: [{ comments_as_keywords: { match: 'comment*', mapping: { type: 'keyword' } } }],
  },
};

describe('--index-config', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('cfg-progress');
  const dir = engines.tempDir('index-config');

  function file(name: string, content: unknown): string {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return path;
  }

  async function fixture(): Promise<{ table: string; index: string; args: string[] }> {
    const table = await engines.createTable('cfg', {
      keySchema: { partitionKey: 'id' },
      stream: 'NEW_AND_OLD_IMAGES',
    });
    const index = engines.indexName('cfg-index');
    await seedItems(
      dynamodb,
      table,
      Array.from({ length: ITEMS }, (_, i) => ({
        id: { S: `order-${String(i).padStart(4, '0')}` },
        total: { N: `${i}.25` },
        note: { S: `Note ${i % 3}` },
        comment_text: { S: `Comment ${i}` },
        quantity: { N: String(i) },
      })),
    );
    const args = [
      ...localRunArgs({ table, index, progressTable, deadLetterDir: join(dir, 'dead-letters') }),
      '--segments',
      '2',
    ];
    return { table, index, args };
  }

  interface IndexSettings {
    number_of_shards: string;
    number_of_replicas: string;
    refresh_interval: string;
    mapping: { total_fields: { limit: string }; depth: { limit: string } };
  }

  interface IndexMapping {
    properties: Record<string, Record<string, unknown>>;
    dynamic_templates: Record<string, unknown>[];
  }

  async function mappingOf(index: string): Promise<IndexMapping> {
    const body = (await opensearch.indices.getMapping({ index })).body as Record<
      string,
      { mappings: IndexMapping }
    >;
    return (body[index] as { mappings: IndexMapping }).mappings;
  }

  /** The index's settings as OpenSearch nests them, without the `index` level. */
  async function settingsOf(index: string): Promise<IndexSettings> {
    const body = (await opensearch.indices.getSettings({ index })).body as Record<
      string,
      { settings: { index: IndexSettings } }
    >;
    return (body[index] as { settings: { index: IndexSettings } }).settings.index;
  }

  async function indexExists(index: string): Promise<boolean> {
    return (await opensearch.indices.exists({ index })).body === true;
  }

  /** Progress rows of the table's runs (segment checkpoints), apart from the run-id bookmark. */
  async function segmentCheckpoints(table: string): Promise<number> {
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: progressTable }));
    return Items.filter((item) => item.runId?.S?.startsWith(`${table}-`)).length;
  }

  it('run creates the index with the user mapping, ddb2os dynamic templates after the user ones, and the documents land', async () => {
    const { index, args } = await fixture();
    const config = file('orders-index.json', USER_DEFINITION);

    const result = await runCli([...args, '--index-config', config, '--json']);

    expect(result.stderr).not.toContain('warning');
    expect(result.code).toBe(0);
    expect(lastJsonLine(result.stdout)).toMatchObject({ scanned: ITEMS, created: ITEMS, failed: 0 });
    const mapping = await mappingOf(index);
    expect(mapping.properties.note).toEqual({ type: 'keyword' });
    expect(mapping.properties.total).toEqual({ type: 'float' });
    expect(mapping.properties.comment_text).toEqual({ type: 'keyword' });
    // quantity matched no user template: ddb2os's number template made it a double.
    expect(mapping.properties.quantity).toEqual({ type: 'double' });
    const templateNames = mapping.dynamic_templates.map((template) => Object.keys(template)[0]);
    const ddb2osNames = ITEM_FRIENDLY_MAPPINGS.dynamic_templates.map((template) => Object.keys(template)[0]);
    expect(templateNames).toEqual(['comments_as_keywords', ...ddb2osNames]);
    const settings = await settingsOf(index);
    expect(settings.number_of_shards).toBe('2');
    expect(settings.mapping.total_fields.limit).toBe('2000');
    expect(settings.mapping.depth.limit).toBe(String(ITEM_FRIENDLY_LIMITS['mapping.depth.limit']));
    // The bulk-load settings were restored after the backfill.
    expect(settings.refresh_interval).toBe('1s');
    expect(settings.number_of_replicas).toBe('1');
    await opensearch.indices.refresh({ index });
    expect((await opensearch.count({ index })).body.count).toBe(ITEMS);
    const exact = await opensearch.search({ index, body: { query: { term: { note: 'Note 1' } } } });
    expect((exact.body.hits.total as { value: number }).value).toBe(ITEMS / 3);
    const doc = await opensearch.get({ index, id: 'order-0007' });
    expect(doc.body._source).toEqual({
      id: 'order-0007',
      total: 7.25,
      note: 'Note 1',
      comment_text: 'Comment 7',
      quantity: 7,
    });
  });

  it('an index template works the same way: its template part is applied', async () => {
    const { index, args } = await fixture();
    const config = file('template.json', {
      index_patterns: ['orders-*'],
      priority: 10,
      template: { mappings: { properties: { note: { type: 'keyword' } } } },
    });

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(0);
    const mapping = await mappingOf(index);
    expect(mapping.properties.note).toEqual({ type: 'keyword' });
  });

  it('a file that is not JSON: exit 2, one line naming the file and where, and nothing read or created', async () => {
    const { table, index, args } = await fixture();
    const config = file('broken.json', '{\n  "settings": { "number_of_shards": 1, }\n}\n');

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `ddb2os: index config file ${config} is not valid JSON: Expected double-quoted property name at line 2, column 40\n`,
    );
    expect(result.stdout).toBe('');
    expect(await indexExists(index)).toBe(false);
    expect(await segmentCheckpoints(table)).toBe(0);
  });

  it('a field ddb2os does not know: exit 2 naming it', async () => {
    const { args } = await fixture();
    const config = file('unknown.json', { settings: {}, mapping: { properties: {} } });

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`index config file ${config} has unknown top-level field "mapping"`);
  });

  it('a setting OpenSearch refuses: exit 1 with its reason, before any item is read (no document, no checkpoint)', async () => {
    const { table, index, args } = await fixture();
    const config = file('zero-shards.json', { settings: { number_of_shards: 0 } });

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      `ddb2os: backfill of ${table} stopped before any item was read: OpenSearch refused to create index ${index} ` +
        `with index config file ${config}: Failed to parse value [0] for setting [index.number_of_shards] must be >= 1`,
    ]);
    expect(await indexExists(index)).toBe(false);
    expect(await segmentCheckpoints(table)).toBe(0);
  });

  it('a mapping type OpenSearch does not know: exit 1 with its reason, and no index', async () => {
    const { table, index, args } = await fixture();
    const config = file('bad-type.json', { mappings: { properties: { note: { type: 'text-ish' } } } });

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `stopped before any item was read: OpenSearch refused to create index ${index} with index config file ${config}: ` +
        'No handler for type [text-ish] declared on field [note]',
    );
    expect(await indexExists(index)).toBe(false);
    expect(await segmentCheckpoints(table)).toBe(0);
  });

  it('an index that exists is used as it is, with one warning line', async () => {
    const { index, args } = await fixture();
    await opensearch.indices.create({
      index,
      body: { mappings: { properties: { note: { type: 'text' } } } },
    });
    const config = file('orders-index-2.json', USER_DEFINITION);

    const result = await runCli([...args, '--index-config', config]);

    expect(result.code).toBe(0);
    const warnings = result.stderr.split('\n').filter((line) => line.includes('warning'));
    expect(warnings).toEqual([
      `ddb2os: warning: index ${index} already exists: index config file ${config} is not applied to it ` +
        '(ddb2os applies it only when it creates an index)',
    ]);
    const mapping = await mappingOf(index);
    expect(mapping.properties.note?.type).toBe('text');
    await opensearch.indices.refresh({ index });
    expect((await opensearch.count({ index })).body.count).toBe(ITEMS);
  });

  describe('plan', () => {
    let planArgs: string[];

    beforeAll(async () => {
      const table = await engines.createTable('cfg-plan', {
        keySchema: { partitionKey: 'id' },
        stream: 'NEW_IMAGE',
      });
      planArgs = ['plan', '--table', table, '--dynamodb-endpoint', dynamodbEndpoint(), '--json'];
    });

    async function scratchIndices(): Promise<string[]> {
      const answer = await opensearch.cat.indices({ index: 'ddb2os-index-config-check-*', format: 'json' });
      return (answer.body as { index: string }[]).map((entry) => entry.index);
    }

    it('has OpenSearch check the file with a scratch index that it deletes', async () => {
      const config = file('plan-ok.json', USER_DEFINITION);

      const result = await runCli([
        ...planArgs,
        '--index-config',
        config,
        '--opensearch-url',
        opensearchUrl(),
      ]);

      expect(result.code).toBe(0);
      expect(lastJsonLine(result.stdout).indexConfig).toEqual({
        file: config,
        checkedBy: 'opensearch',
        opensearch: opensearchUrl(),
      });
      expect(await scratchIndices()).toEqual([]);
    });

    it("reports a setting OpenSearch refuses with OpenSearch's reason (exit 1), leaving no index", async () => {
      const config = file('plan-zero-shards.json', { settings: { index: { number_of_shards: 0 } } });

      const result = await runCli([
        ...planArgs,
        '--index-config',
        config,
        '--opensearch-url',
        opensearchUrl(),
      ]);

      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        new RegExp(
          `^ddb2os: OpenSearch refused to create index ddb2os-index-config-check-\\w+ with index config file ${config.replaceAll('/', '\\/')}: ` +
            'Failed to parse value \\[0\\] for setting \\[index.number_of_shards\\] must be >= 1\\n$',
        ),
      );
      expect(await scratchIndices()).toEqual([]);
    });

    it('without an OpenSearch, checks the shape only and says so', async () => {
      const config = file('plan-shape.json', USER_DEFINITION);
      const { OPENSEARCH_URL: _url, ...env } = process.env;

      const json = await runCli([...planArgs, '--index-config', config], { env });
      const text = await runCli(planArgs.filter((arg) => arg !== '--json').concat('--index-config', config), {
        env,
      });

      expect(json.code).toBe(0);
      expect(lastJsonLine(json.stdout).indexConfig).toEqual({ file: config, checkedBy: 'shape' });
      expect(text.stdout).toContain(
        'give --opensearch-url to have OpenSearch check its settings and mappings',
      );
    });

    it('refuses --opensearch-url without --index-config (exit 2): it is there only to check the file', async () => {
      const result = await runCli([...planArgs, '--opensearch-url', opensearchUrl()]);

      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        'ddb2os: --opensearch-url is used only to check --index-config: give both, or neither\n',
      );
    });

    it('refuses a file that is not JSON (exit 2)', async () => {
      const config = file('plan-broken.json', '{"mappings": ');

      const result = await runCli([...planArgs, '--index-config', config]);

      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `ddb2os: index config file ${config} is not valid JSON: Unexpected end of JSON input\n`,
      );
    });
  });
});
