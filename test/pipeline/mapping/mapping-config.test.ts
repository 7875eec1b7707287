import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../pipeline/errors.js';
import { loadMappingConfig, mapItem, parseMappingConfig } from '../../../pipeline/mapping/mapping.js';

describe('parseMappingConfig', () => {
  it('takes the index from the defaults when the JSON has none (DDB2OS_MAPPING + DDB2OS_INDEX_NAME)', () => {
    expect(parseMappingConfig(undefined, { index: 'items' })).toEqual({ index: 'items' });
    expect(parseMappingConfig('', { index: 'items' })).toEqual({ index: 'items' });
    expect(parseMappingConfig('{}', { index: 'items' })).toEqual({ index: 'items' });
  });

  it('lets the config name its own index', () => {
    expect(parseMappingConfig({ index: 'mine' }, { index: 'items' })).toEqual({ index: 'mine' });
  });

  it('reads a full JSON config', () => {
    const raw = JSON.stringify({
      index: 'main',
      routes: [{ prefix: 'user#', index: 'users' }],
      unrouted: 'skip',
      aggregate: { parentSortKey: 'META', childrenField: 'children' },
    });
    expect(parseMappingConfig(raw)).toEqual({
      index: 'main',
      routes: [{ prefix: 'user#', index: 'users' }],
      unrouted: 'skip',
      aggregate: { parentSortKey: 'META', childrenField: 'children' },
    });
  });

  it('keeps a transformModule path and a transform function given in code', () => {
    expect(parseMappingConfig({ index: 'a', transformModule: './t.mjs' })).toEqual({
      index: 'a',
      transformModule: './t.mjs',
    });
    const transform = () => null;
    expect(parseMappingConfig({ index: 'a', transform }).transform).toBe(transform);
  });

  it.each([
    [42, 'mapping must be a JSON object'],
    [[], 'mapping must be a JSON object'],
    ['[1]', 'mapping must be a JSON object'],
    ['{"index":', /^mapping is not valid JSON: /],
    [{}, 'mapping.index must be a non-empty string'],
    [{ index: '' }, 'mapping.index must be a non-empty string'],
    [{ index: 7 }, 'mapping.index must be a non-empty string'],
    [{ index: 'Items' }, 'mapping.index "Items" is not a valid index name: it must be lowercase'],
    [{ index: 'a b' }, /mapping\.index "a b" is not a valid index name: it must not contain/],
    [{ index: 'a|b' }, /mapping\.index "a\|b" is not a valid index name/],
    [{ index: '_a' }, 'mapping.index "_a" is not a valid index name: it must not start with -, _ or +'],
    [{ index: '..' }, 'mapping.index ".." is not a valid index name: it must not be . or ..'],
    [{ index: 'a'.repeat(256) }, /it must be at most 255 bytes long/],
    [{ index: 'a', indexName: 'b' }, /^mapping\.indexName is not a known field \(known: index, routes/],
    [{ index: 'a', routes: {} }, 'mapping.routes must be an array of { prefix, index }'],
    [{ index: 'a', routes: ['x'] }, 'mapping.routes[0] must be an object { prefix, index }'],
    [
      {
        index: 'a',
        routes: [
          { prefix: 'a', index: 'b' },
          { prefix: '', index: 'c' },
        ],
      },
      'mapping.routes[1].prefix must be a non-empty string',
    ],
    [{ index: 'a', routes: [{ prefix: 'a' }] }, 'mapping.routes[0].index must be a non-empty string'],
    [
      { index: 'a', routes: [{ prefix: 'a', index: 'B' }] },
      /^mapping\.routes\[0\]\.index "B" is not a valid index name/,
    ],
    [
      { index: 'a', routes: [{ prefix: 'a', index: 'b', weight: 1 }] },
      'mapping.routes[0].weight is not a known field (known: prefix, index)',
    ],
    [
      {
        index: 'a',
        routes: [
          { prefix: 'x', index: 'b' },
          { prefix: 'y', index: 'c' },
          { prefix: 'x', index: 'd' },
        ],
      },
      'mapping.routes[2].prefix repeats mapping.routes[0].prefix "x"',
    ],
    [{ index: 'a', unrouted: 'drop' }, 'mapping.unrouted must be "default" or "skip"'],
    [{ index: 'a', unrouted: 'skip' }, /^mapping\.unrouted is "skip" but mapping\.routes is empty/],
    [{ index: 'a', aggregate: true }, 'mapping.aggregate must be an object { parentSortKey, childrenField }'],
    [
      { index: 'a', aggregate: { childrenField: 'c' } },
      'mapping.aggregate.parentSortKey must be a non-empty string',
    ],
    [
      { index: 'a', aggregate: { parentSortKey: 'P' } },
      'mapping.aggregate.childrenField must be a non-empty string',
    ],
    [
      { index: 'a', aggregate: { parentSortKey: 'P', childrenField: 'c', order: 'desc' } },
      'mapping.aggregate.order is not a known field (known: parentSortKey, childrenField)',
    ],
    [
      { index: 'a', transform: 'x.mjs' },
      /^mapping\.transform must be a function \(in JSON, name its module in/,
    ],
    [{ index: 'a', transformModule: '' }, 'mapping.transformModule must be a non-empty string'],
    [
      { index: 'a', transform: (): null => null, transformModule: 'x.mjs' },
      'mapping.transform and mapping.transformModule cannot both be set',
    ],
    [
      { index: 'a', transformModule: 'x.mjs', routes: [{ prefix: 'a', index: 'b' }] },
      'mapping.transformModule cannot be combined with mapping.routes: a transform decides index and id itself',
    ],
    [
      { index: 'a', transform: (): null => null, aggregate: { parentSortKey: 'P', childrenField: 'c' } },
      'mapping.transform cannot be combined with mapping.aggregate: a transform decides index and id itself',
    ],
  ])('rejects %j: %s', (raw, message) => {
    const act = () => parseMappingConfig(raw);
    expect(act).toThrow(ConfigurationError);
    expect(act).toThrow(message);
  });
});

describe('loadMappingConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ddb2os-mapping-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, source: string) => {
    const path = join(dir, name);
    writeFileSync(path, source);
    return path;
  };
  const item = { pk: { S: 'p' }, n: { N: '2' } };
  const keySchema = { partitionKey: 'pk' };

  it('loads the default export of a transform module and uses it', async () => {
    const path = write(
      'default.mjs',
      `export default (item, { defaultIndex }) => ({ index: defaultIndex, id: 'x-' + item.pk.S, document: { n: Number(item.n.N) * 2 } });`,
    );
    const config = await loadMappingConfig(JSON.stringify({ transformModule: path }), { index: 'main' });
    expect(config).not.toHaveProperty('transformModule');
    expect(mapItem(item, keySchema, config)).toEqual([{ index: 'main', id: 'x-p', document: { n: 4 } }]);
  });

  it('falls back to a named export transform, and resolves a relative path against the working directory', async () => {
    const path = write('named.mjs', `export const transform = () => [];\nexport const other = 1;`);
    const config = await loadMappingConfig({ index: 'main', transformModule: relative(process.cwd(), path) });
    expect(mapItem(item, keySchema, config)).toEqual([]);
  });

  it('loads a TypeScript module where TypeScript can be imported (tsx, vitest)', async () => {
    const path = write(
      'typed.ts',
      `import type { TransformHook } from ${JSON.stringify(join(process.cwd(), 'handlers/lib/mapping.ts'))};
       const hook: TransformHook = (item) => ({ index: 'typed', id: item.pk!.S!, document: {} });
       export default hook;`,
    );
    const config = await loadMappingConfig({ index: 'main', transformModule: path });
    expect(mapItem(item, keySchema, config)).toEqual([{ index: 'typed', id: 'p', document: {} }]);
  });

  it('passes a config without a transform module through', async () => {
    await expect(loadMappingConfig(undefined, { index: 'main' })).resolves.toEqual({ index: 'main' });
  });

  it('fails with a ConfigurationError when the module cannot be loaded', async () => {
    const missing = join(dir, 'missing.mjs');
    await expect(loadMappingConfig({ index: 'a', transformModule: missing })).rejects.toThrow(
      new ConfigurationError(`mapping.transformModule ${missing} could not be loaded`),
    );
    const broken = write('broken.mjs', 'export default (;');
    await expect(loadMappingConfig({ index: 'a', transformModule: broken })).rejects.toThrow(
      ConfigurationError,
    );
  });

  it('fails with a ConfigurationError when the module exports no function', async () => {
    const path = write('nothing.mjs', 'export default 42; export const transform = "no";');
    await expect(loadMappingConfig({ index: 'a', transformModule: path })).rejects.toThrow(
      new ConfigurationError(
        `mapping.transformModule ${path} exports neither a default function nor a function named transform`,
      ),
    );
  });
});
