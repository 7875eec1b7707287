/**
 * `ddb2os resync` as a user runs it, on the real engines: the rebuild under a
 * writer and a reader (the "Done when" at a small size), the one-time
 * move of a plain index behind an alias, --keep-old, --abort, resuming after
 * Ctrl-C, and the messages.
 */
import { describe, expect, it } from 'vitest';
import { startAliasReader, startTableWriter } from '../../bench/resync-load';
import { describeServingName } from '../../pipeline/index/alias';
import { ensureProgressTable } from '../../pipeline/progress/checkpoint';
import { startResync } from '../../pipeline/resync/resync-state';
import type { Item } from '../../pipeline/table/types';
import { indexCount, seedItems } from '../support/backfill-fixtures';
import { engineFlags, localRunArgs, useEngines } from '../support/engines';
import { lastJsonLine, runCli, runVerify } from './support';

function item(i: number): Item {
  return {
    id: { S: `order-${String(i).padStart(6, '0')}` },
    total: { N: `${i}.5` },
    note: { S: `order ${i}` },
  };
}

const engines = useEngines();
const { dynamodb, opensearch } = engines;
const progressTable = engines.tableName('resync-progress');
const deadLetterDir = engines.tempDir('resync');

/**
 * A table of `items` items with a stream, indexed by `ddb2os run` into the plain index `index`, or, `behindAlias`,
 * into `<index>-first` that the alias `index` points at (as a user who made the alias before resyncs existed).
 */
async function indexedTable(items: number, behindAlias = false): Promise<{ table: string; index: string }> {
  const table = await engines.createTable('resync', {
    keySchema: { partitionKey: 'id' },
    stream: 'NEW_AND_OLD_IMAGES',
  });
  const index = engines.indexName('resync-index');
  // The resync indices are `<index>-<runId>`: removed with the serving name's pattern.
  engines.deleteIndexAfter(`${index}-*`);
  await seedItems(
    dynamodb,
    table,
    Array.from({ length: items }, (_, i) => item(i)),
  );
  const first = behindAlias ? `${index}-first` : index;
  // --follow-for 0: the updater is caught up when the resync starts, as a live install's is.
  const run = await runCli([
    ...localRunArgs({ table, index: first, progressTable, deadLetterDir }),
    '--follow-for',
    '0',
  ]);
  expect(run.code, run.stderr).toBe(0);
  if (behindAlias) {
    await opensearch.indices.updateAliases({ body: { actions: [{ add: { index: first, alias: index } }] } });
  }
  return { table, index };
}

function resyncArgs(table: string, index: string): string[] {
  return [
    'resync',
    '--table',
    table,
    '--index',
    index,
    ...engineFlags(),
    '--progress-table',
    progressTable,
    '--dead-letter-dir',
    deadLetterDir,
  ];
}

function key(i: number): Item {
  return { id: { S: `order-${String(i).padStart(6, '0')}` } };
}

describe('ddb2os resync', () => {
  it('rebuilds the index under a writer while a reader never sees fewer hits, then verify finds no drift', async () => {
    // Prepare: 2,000 items in a plain index, a writer and a reader running.
    const initial = 500;
    const { table, index } = await indexedTable(initial, true);
    const writer = startTableWriter({ dynamodb, table, initial, itemOf: item, keyOf: key });
    const reader = startAliasReader({
      opensearch,
      index,
      initial,
      deletesSoFar: () => writer.counts.deletes,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Act: the writer stops once the alias is swapped and the updater follows; --follow-for drains the rest.
    let writerStopped: Promise<void> | undefined;
    let result: Awaited<ReturnType<typeof runCli>>;
    try {
      result = await runCli([...resyncArgs(table, index), '--segments', '2', '--follow-for', '2', '--json'], {
        onStderr: (text) => {
          if (text.includes('following the table stream')) writerStopped ??= writer.stop();
        },
      });
    } finally {
      // Also when the resync throws: neither may outlive the test (its table is deleted after the file).
      await (writerStopped ?? writer.stop());
      await reader.stop();
    }

    // Assess
    expect(result.code, result.stderr).toBe(0);
    const summary = lastJsonLine(result.stdout);
    const target = (summary.targets as Record<string, string>)[index] as string;
    expect(target).toMatch(new RegExp(`^${index}-resync-`));
    expect(await describeServingName(opensearch, index)).toEqual({ kind: 'alias', indices: [target] });
    expect(writer.counts.deletes).toBeGreaterThan(10);
    expect(reader.seen.queries).toBeGreaterThan(5);
    expect(reader.seen.errors).toEqual([]);
    expect(reader.seen.markers).toBe(0);
    expect(reader.seen.minMargin).toBeGreaterThanOrEqual(0);
    const verify = await runVerify(table, ['--index', index, '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(lastJsonLine(verify.stdout)).toMatchObject({ missing: 0, extra: 0, differing: 0 });
    expect(await indexCount(opensearch, index)).toBe(initial + writer.counts.puts - writer.counts.deletes);
  });

  it('moves a plain index behind an alias of its name once, saying so, and deletes nothing else', async () => {
    const { table, index } = await indexedTable(50);

    const first = await runCli([...resyncArgs(table, index), '--json']);
    const second = await runCli([...resyncArgs(table, index), '--json']);

    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(
      `ddb2os: ${index} is a plain index: this first resync moves it behind an alias of the same name.`,
    );
    expect(first.stderr).toContain(`(the plain index ${index} was removed by the same call`);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('is a plain index');
    const firstTarget = (lastJsonLine(first.stdout).targets as Record<string, string>)[index] as string;
    const secondTarget = (lastJsonLine(second.stdout).targets as Record<string, string>)[index] as string;
    expect(lastJsonLine(second.stdout)).toMatchObject({
      scanned: 50,
      created: 50,
      deletedIndices: [firstTarget],
    });
    expect(second.stderr).toContain(`swapped ${index} → ${secondTarget} in one _aliases call`);
    expect(second.stderr).toContain(`old index ${firstTarget} deleted`);
    expect((await opensearch.indices.exists({ index: firstTarget })).body).toBe(false);
    expect(await indexCount(opensearch, index)).toBe(50);
  });

  it('--keep-old leaves the old index in place, out of the alias', async () => {
    const { table, index } = await indexedTable(30);
    expect((await runCli(resyncArgs(table, index))).code).toBe(0);
    const before = await describeServingName(opensearch, index);

    const result = await runCli([...resyncArgs(table, index), '--keep-old', '--json']);

    expect(result.code, result.stderr).toBe(0);
    const old = (before as { indices: string[] }).indices[0] as string;
    expect(lastJsonLine(result.stdout)).toMatchObject({ deletedIndices: [] });
    expect(result.stderr).toContain(`old index ${old} kept (--keep-old)`);
    expect(await indexCount(opensearch, old)).toBe(30);
    const after = await describeServingName(opensearch, index);
    expect(after.kind === 'alias' && after.indices).not.toContain(old);
  });

  it('stops on Ctrl-C with the alias still on the old index (exit 130), and the same command resumes', async () => {
    // Prepare
    const { table, index } = await indexedTable(600, true);
    const controller = new AbortController();

    // Act
    const interrupted = await runCli([...resyncArgs(table, index), '--segments', '6', '--concurrency', '1'], {
      signal: controller.signal,
      onStderr: (text) => {
        if (text.includes('segment 0 done')) controller.abort();
      },
    });
    const during = await describeServingName(opensearch, index);
    const resumed = await runCli([...resyncArgs(table, index), '--segments', '6', '--json']);

    // Assess
    expect(interrupted.code, interrupted.stderr).toBe(130);
    expect(interrupted.stderr).toContain(
      `search still reads ${index} as before, kept current by the stream updater`,
    );
    expect(during).toEqual({ kind: 'alias', indices: [`${index}-first`] });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming resync resync-\S+: new index/);
    expect(resumed.stderr).toMatch(/resuming run resync-/);
    const summary = lastJsonLine(resumed.stdout);
    expect(summary).toMatchObject({ scanned: 600, deletedIndices: [`${index}-first`] });
    expect((summary.created as number) + (summary.alreadyPresent as number)).toBe(600);
    expect(await indexCount(opensearch, index)).toBe(600);
  });

  it('--abort removes the new index and the state, search untouched; a second --abort says there is none', async () => {
    // Prepare: a resync of the table in progress, its new index half filled.
    const { table, index } = await indexedTable(20, true);
    await ensureProgressTable(dynamodb, progressTable);
    const next = `${index}-resync-half`;
    await opensearch.indices.create({ index: next });
    await startResync(dynamodb, progressTable, table, 'resync-half', { [index]: next });
    const abortArgs = [
      'resync',
      '--table',
      table,
      '--abort',
      ...engineFlags(),
      '--progress-table',
      progressTable,
    ];

    // Act
    const other = await runCli(resyncArgs(table, `${index}-other`));
    const aborted = await runCli(abortArgs);
    const again = await runCli(abortArgs);

    // Assess
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      new RegExp(
        `^ddb2os: table ${table} has a resync in progress for index ${index} \\(run resync-half, phase FILLING, ` +
          `since \\S+\\), not for ${index}-other: finish it with ddb2os resync --table ${table} --index ${index}, ` +
          `or remove it with ddb2os resync --table ${table} --abort\n$`,
      ),
    );
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toBe(
      `aborted resync resync-half of ${table}: deleted ${next}; search still reads the index it read before\n`,
    );
    expect((await opensearch.indices.exists({ index: next })).body).toBe(false);
    expect(await describeServingName(opensearch, index)).toEqual({
      kind: 'alias',
      indices: [`${index}-first`],
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`ddb2os: table ${table} has no resync in progress: nothing to abort\n`);
  });

  it('--help shows the flags shared with run, the resync flags and examples', async () => {
    const result = await runCli(['resync', '--help']);

    expect(result.code).toBe(0);
    for (const flag of [
      '--table',
      '--index',
      '--dynamodb-endpoint',
      '--opensearch-url',
      '--mapping',
      '--index-config',
      '--segments',
      '--follow',
      '--follow-for',
      '--keep-old',
      '--abort',
      '--json',
    ]) {
      expect(result.stdout).toContain(`  ${flag} `);
    }
    expect(result.stdout).toContain('Examples:\n  ddb2os resync --table orders --index orders');
    expect(result.stdout).toContain('--abort');
  });

  it('rejects bad usage in one line, exit 2', async () => {
    const noIndex = await runCli(['resync', '--table', 't', ...engineFlags()]);
    const both = await runCli(['resync', '--table', 't', '--index', 'i', '--follow', '--follow-for', '3']);
    const abortFollow = await runCli(['resync', '--table', 't', '--abort', '--follow']);

    expect([noIndex.code, both.code, abortFollow.code]).toEqual([2, 2, 2]);
    expect(noIndex.stderr).toBe('ddb2os: --index is required (see `ddb2os resync --help`)\n');
    expect(both.stderr).toBe('ddb2os: --follow and --follow-for exclude each other: give one\n');
    expect(abortFollow.stderr).toBe('ddb2os: --abort and --follow exclude each other\n');
  });
});

describe('the commands a user runs after a swap, on the alias', () => {
  it('run backfills through the alias (no index created over it), verify --repair repairs through it', async () => {
    // Prepare: a resynced table (the alias on its new index), then drift made through the alias.
    const { table, index } = await indexedTable(40);
    expect((await runCli(resyncArgs(table, index))).code).toBe(0);
    const serving = await describeServingName(opensearch, index);
    await opensearch.delete({ index, id: 'order-000001', refresh: true });
    await opensearch.index({
      index,
      id: 'order-000002',
      body: { id: 'order-000002', note: 'drifted' },
      refresh: true,
    });
    await opensearch.index({ index, id: 'stray', body: { id: 'stray' }, refresh: true });

    // Act
    const run = await runCli([...localRunArgs({ table, index, progressTable, deadLetterDir }), '--json']);
    const repair = await runVerify(table, ['--index', index, '--repair', '--dead-letter-dir', deadLetterDir]);
    const verify = await runVerify(table, ['--index', index, '--json']);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(lastJsonLine(run.stdout)).toMatchObject({ scanned: 40, created: 1, alreadyPresent: 39 });
    expect(await describeServingName(opensearch, index)).toEqual(serving);
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    expect(repair.stdout).toContain(`differs from table "${table}": 0 missing, 1 extra, 1 differing`);
    expect(repair.stdout).toContain('Result: every difference found is repaired');
    expect(verify.code).toBe(0);
    expect(lastJsonLine(verify.stdout)).toMatchObject({ missing: 0, extra: 0, differing: 0, matched: 40 });
  });
});
