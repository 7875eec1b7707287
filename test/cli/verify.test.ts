/**
 * `ddb2os verify` as a user runs it, on the real engines: exit codes, the
 * one-line stderr summary, the report on stdout and the --json object.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import type { Item, KeySchema } from '../../pipeline/table/types';
import {
  buildTableAndIndex,
  catalogItems,
  driftCatalog,
  orderItems,
} from '../pipeline/verify/verify-fixtures';
import { dynamodbEndpoint, engineFlags, opensearchUrl, uniqueName, useEngines } from '../support/engines';
import { lastJsonLine, runCli, runVerify } from './support';

const shared = useEngines();
const { dynamodb, opensearch: search } = shared;
const scratch = shared.tempDir('verify');

async function fixture(
  items: Item[],
  options: { keySchema?: KeySchema; mapping?: (index: string) => MappingConfig } = {},
): Promise<{ table: string; index: string }> {
  const keySchema = options.keySchema ?? { partitionKey: 'pk' };
  const table = await shared.createTable('verify-cli', { keySchema });
  const index = shared.indexName('verify-cli');
  await buildTableAndIndex(dynamodb, search, table, keySchema, options.mapping?.(index) ?? { index }, items);
  return { table, index };
}

describe('ddb2os verify', () => {
  it('exits 0 with the counts when the index equals the table', async () => {
    const { table, index } = await fixture(catalogItems(50));

    const result = await runVerify(table, ['--index', index, '--json']);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `Result: index "${index}" equals table "${table}" (50 documents checked)`,
    );
    expect(lastJsonLine(result.stdout)).toMatchObject({
      table,
      index,
      items: 50,
      expectedDocuments: 50,
      checked: 50,
      matched: 50,
      missing: 0,
      extra: 0,
      differing: 0,
      examples: { missing: [], extra: [], differing: [] },
      sampled: false,
    });
  });

  it('exits 1 with a one-line summary on stderr and examples on stdout when the index differs', async () => {
    const { table, index } = await fixture(catalogItems(20));
    await driftCatalog(search, index);

    const result = await runVerify(table, ['--index', index, '--json']);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `ddb2os: index "${index}" differs from table "${table}": 2 missing, 1 extra, 1 differing\n`,
    );
    expect(result.stdout).toContain(`${index}/product#3  at active: expected false, found true`);
    expect(result.stdout).toContain(`${index}/stray`);
    expect(result.stdout).toMatch(new RegExp(`Missing \\(2\\):\\n  ${index}/product#[12]  key`));
    const json = lastJsonLine(result.stdout);
    expect(json).toMatchObject({ missing: 2, extra: 1, differing: 1, matched: 17 });
    expect((json.examples as { differing: unknown[] }).differing).toEqual([
      { index, id: 'product#3', key: { pk: 'product#3' }, path: 'active', expected: 'false', actual: 'true' },
    ]);
  });

  it('reads an aggregating mapping from --mapping FILE', async () => {
    const { table, index } = await fixture(orderItems(10, 2), {
      keySchema: { partitionKey: 'pk', sortKey: 'sk' },
      mapping: (base) => ({ index: base, aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } }),
    });
    const file = join(scratch, 'aggregate.json');
    writeFileSync(
      file,
      JSON.stringify({ index, aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } }),
    );

    const result = await runVerify(table, ['--mapping', file, '--json']);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(lastJsonLine(result.stdout)).toMatchObject({ items: 30, expectedDocuments: 10, matched: 10 });
  });

  it('checks a random sample with --sample N and marks the report sampled', async () => {
    const { table, index } = await fixture(catalogItems(100));

    const result = await runVerify(table, ['--index', index, '--sample', '10', '--json']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Sampled table ${table}`);
    expect(result.stdout).toContain('extras are estimated');
    const json = lastJsonLine(result.stdout);
    expect(json).toMatchObject({ sampled: true, checked: 10, matched: 10, extra: 0 });
    expect(json.sample).toMatchObject({ requested: 10, documentsSampled: 10, documentsInIndices: 100 });
  });

  it('names a missing table in one line, exit 1', async () => {
    const missing = uniqueName('no-such-table');

    const result = await runVerify(missing, ['--index', 'whatever']);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`ddb2os: table ${missing} does not exist at ${dynamodbEndpoint()}\n`);
  });

  it('says that the index does not exist and counts every item missing, exit 1', async () => {
    const { table } = await fixture(catalogItems(5));
    const absent = uniqueName('no-such-index');

    const result = await runVerify(table, ['--index', absent]);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`index ${absent} does not exist`);
    expect(result.stderr).toBe(
      `ddb2os: index "${absent}" differs from table "${table}": 5 missing, 0 extra, 0 differing (index ${absent} does not exist)\n`,
    );
  });

  it('names an unreachable DynamoDB or OpenSearch endpoint, exit 1', async () => {
    const { table, index } = await fixture(catalogItems(1));

    const target = ['verify', '--table', table, '--index', index];
    const noDynamo = await runCli([...target, ...engineFlags({ dynamodb: 'http://127.0.0.1:1' })]);
    const noSearch = await runCli([...target, ...engineFlags({ opensearch: 'http://127.0.0.1:1' })]);

    expect(noDynamo.code).toBe(1);
    expect(noDynamo.stderr).toBe(
      'ddb2os: cannot reach DynamoDB at http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n',
    );
    expect(noSearch.code).toBe(1);
    expect(noSearch.stderr).toBe(
      'ddb2os: cannot reach OpenSearch at http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });

  it('stops when interrupted (Ctrl-C), exit 130', async () => {
    const { table, index } = await fixture(catalogItems(1));
    const interrupt = new AbortController();
    interrupt.abort(new Error('interrupted'));

    const result = await runVerify(table, ['--index', index], {
      signal: interrupt.signal,
    });

    expect(result.code).toBe(130);
  });

  it('rejects bad flags and a bad mapping file in one line, exit 2, before any request', async () => {
    const badJson = join(scratch, 'bad.json');
    writeFileSync(badJson, '{ "index": "orders", ');
    const badField = join(scratch, 'bad-field.json');
    writeFileSync(badField, JSON.stringify({ index: 'orders', routes: [{ prefix: '', index: 'x' }] }));
    const cases: [string[], RegExp][] = [
      [['--index', 'i'], /^ddb2os: --table is required \(see `ddb2os verify --help`\)\n$/],
      [
        ['--table', 't'],
        /^ddb2os: --index is required \(or name the index in the mapping file's "index"\)\n$/,
      ],
      [
        ['--table', 't', '--index', 'i', '--sample', 'ten'],
        /^ddb2os: --sample must be a whole number from 1 to/,
      ],
      [['--table', 't', '--index', 'i', '--segmnts', '4'], /^ddb2os: Unknown option '--segmnts'/],
      [
        ['--table', 't', '--index', 'Orders'],
        /^ddb2os: --index "Orders" is not a valid index name: it must be lowercase\n$/,
      ],
      [['--table', 't', '--mapping', badJson], /^ddb2os: mapping file .*bad\.json is not valid JSON: /],
      [
        ['--table', 't', '--mapping', badField],
        /^ddb2os: mapping file .*bad-field\.json: mapping\.routes\[0\]\.prefix must be a non-empty string\n$/,
      ],
      [
        ['--table', 't', '--index', 'i', '--dynamodb-endpoint', 'localhost:8000'],
        /^ddb2os: --dynamodb-endpoint "localhost:8000" is not an http\(s\) URL\n$/,
      ],
    ];

    for (const [flags, expected] of cases) {
      const result = await runCli(['verify', ...flags, '--opensearch-url', opensearchUrl()]);

      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr, flags.join(' ')).toMatch(expected);
      expect(result.stderr.trim().split('\n'), flags.join(' ')).toHaveLength(1);
    }
  });

  it('rejects an aggregating mapping for a table without a sort key, exit 2', async () => {
    const { table, index } = await fixture(catalogItems(1));
    const file = join(scratch, 'aggregate-simple.json');
    writeFileSync(
      file,
      JSON.stringify({ index, aggregate: { parentSortKey: 'ORDER', childrenField: 'lines' } }),
    );

    const result = await runVerify(table, ['--mapping', file]);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `ddb2os: mapping file ${file}: mapping.aggregate needs a table with a sort key, and this table has only the partition key pk\n`,
    );
  });
});
