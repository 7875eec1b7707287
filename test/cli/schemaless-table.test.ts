/**
 * The acceptance test of "every item lands, exactly, on both paths": a
 * schemaless table (test/support/schemaless-table.ts) goes through
 * `ddb2os run` and `ddb2os verify` as a user runs them, once by the backfill
 * alone and once with the stream replayed from its start by `--follow-for`.
 * Every item must land: nothing dead-lettered, and verify finds nothing
 * missing, extra or differing.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import type { Item } from '../../pipeline/table/types';
import { localRunArgs, useEngines } from '../support/engines';
import {
  applyChange,
  BIG_ITEM_KEY,
  bigItemDocument,
  createSchemalessTable,
  schemalessChanges,
} from '../support/schemaless-table';
import { type CliResult, lastJsonLine, runCli, runVerify } from './support';

const engines = useEngines();
const { dynamodb, opensearch } = engines;
let table: string;
let seeded: Item[];
const scratch = engines.tempDir('schemaless');

beforeAll(async () => {
  table = engines.tableName('schemaless');
  seeded = await createSchemalessTable(dynamodb, table);
});

/** A fresh index, progress table (so the stream is read from its start) and dead-letter folder. */
function freshTarget(): { index: string; deadLetterDir: string; args: string[] } {
  const index = engines.indexName('schemaless');
  const progressTable = engines.tableName('schemaless-progress');
  const deadLetterDir = join(scratch, index);
  const args = [
    ...localRunArgs({ table, index, progressTable, deadLetterDir }),
    '--segments',
    '4',
    '--concurrency',
    '2',
  ];
  return { index, deadLetterDir, args };
}

/** Every dead letter under the folder, one line each: run, key, reason (for assertion messages). */
async function deadLetters(directory: string): Promise<string[]> {
  const root = join(directory, 'dead-letter');
  const runs = existsSync(root) ? readdirSync(root) : [];
  const sink = new DirectoryDeadLetterSink(directory);
  const lines: string[] = [];
  for (const runId of runs) {
    for (const record of await sink.read(runId)) {
      const where = record.segment === undefined ? 'stream' : `segment ${record.segment}`;
      lines.push(
        `${where} ${JSON.stringify(record.key)} id=${JSON.stringify(record.id)}: [${record.errorType}] ${record.reason}`,
      );
    }
  }
  return lines;
}

/** What a failed expectation shows: the run's last stderr lines and the first 40 dead letters. */
async function explain(run: CliResult, directory: string): Promise<string> {
  const letters = await deadLetters(directory);
  return [
    `stderr: ${run.stderr.split('\n').slice(-5).join(' / ')}`,
    `${letters.length} dead letters:`,
    ...letters.slice(0, 40),
  ].join('\n');
}

/** `ddb2os verify --json`: its exit code, the JSON report, and the readable report for messages. */
async function verify(
  index: string,
): Promise<{ code: number; report: Record<string, unknown>; text: string }> {
  const result = await runVerify(table, ['--index', index, '--examples', '20', '--json']);
  const lines = result.stdout.trim().split('\n');
  return { code: result.code, report: lastJsonLine(result.stdout), text: lines.slice(0, -1).join('\n') };
}

function keyText(item: Item): string {
  return JSON.stringify([item.pk?.S, item.sk?.S]);
}

async function source(index: string, id: string): Promise<Record<string, unknown> | undefined> {
  const { body } = await opensearch.get({ index, id }, { ignore: [404] });
  return body.found ? (body._source as Record<string, unknown>) : undefined;
}

describe('a schemaless table through ddb2os run and verify', () => {
  it('the backfill indexes every item exactly, and verify finds 0 missing, 0 extra, 0 differing', async () => {
    const { index, deadLetterDir, args } = freshTarget();

    const run = await runCli([...args, '--json']);

    // Soft from here on: one run reports every promise broken, not only the first.
    const why = await explain(run, deadLetterDir);
    expect(run.code, why).toBe(0);
    expect.soft(lastJsonLine(run.stdout), why).toMatchObject({
      scanned: seeded.length,
      created: seeded.length,
      alreadyPresent: 0,
      skipped: 0,
      failed: 0,
    });
    const { code, report, text } = await verify(index);
    expect.soft(code, text).toBe(0);
    expect.soft(report, text).toMatchObject({
      items: seeded.length,
      expectedDocuments: seeded.length,
      matched: seeded.length,
      missing: 0,
      extra: 0,
      differing: 0,
      unmappable: 0,
    });
    // Keys holding "|" and "\": each part escapes "\" as "\\" and "|" as "\|", so no two keys share an id.
    expect.soft(await source(index, 'a\\|b|c')).toEqual({ pk: 'a|b', sk: 'c', which: 0, raw: 'a|b + c' });
    expect.soft(await source(index, 'a|b\\|c')).toEqual({ pk: 'a', sk: 'b|c', which: 1, raw: 'a + b|c' });
    expect.soft(await source(index, 'x\\\\|\\|y')).toMatchObject({ pk: 'x\\', sk: '|y' });
    expect.soft(await source(index, 'x\\\\\\||y')).toMatchObject({ pk: 'x\\|', sk: 'y' });
    // Compared whole, reported in one word: a 350 KB diff helps nobody.
    const big = await source(index, `${BIG_ITEM_KEY.pk}|${BIG_ITEM_KEY.sk}`);
    const bigState = !big ? 'missing' : isDeepStrictEqual(big, bigItemDocument()) ? 'equal' : 'different';
    expect.soft(bigState, 'the 350 KB item in the index').toBe('equal');
    await opensearch.indices.refresh({ index });
    expect.soft((await opensearch.count({ index })).body.count).toBe(seeded.length);
  });

  it('replaying the stream from its start with --follow-for, changes included, leaves the index equal to the table', async () => {
    const { index, deadLetterDir, args } = freshTarget();
    const changes = schemalessChanges();
    // Half the changes while the backfill runs, half while the stream is followed.
    const half = Math.ceil(changes.length / 2);
    const writes: Promise<{ error?: unknown; doneAt: number }>[] = [];
    const write = (batch: typeof changes) =>
      (async () => {
        for (const change of batch) await applyChange(dynamodb, table, change);
      })().then(
        () => ({ doneAt: Date.now() }),
        (error: unknown) => ({ error, doneAt: Date.now() }),
      );

    const run = await runCli([...args, '--follow-for', '2', '--json'], {
      onStderr: (text) => {
        if (text.includes('starting run') && writes.length === 0) writes.push(write(changes.slice(0, half)));
        if (text.includes('following the table stream') && writes.length === 1)
          writes.push(write(changes.slice(half)));
      },
    });
    const runEndedAt = Date.now();

    expect(writes).toHaveLength(2);
    for (const { error, doneAt } of await Promise.all(writes)) {
      expect(error).toBeUndefined();
      expect(doneAt, 'the changes were still being written when the run ended').toBeLessThan(runEndedAt);
    }
    const why = await explain(run, deadLetterDir);
    expect(run.code, why).toBe(0);
    const summary = lastJsonLine(run.stdout);
    expect.soft(summary, why).toMatchObject({ failed: 0 });
    // The stream held every seeded item's INSERT and the changes: all of them were applied.
    const stream = summary.stream as { records: number };
    expect.soft(stream.records, why).toBeGreaterThanOrEqual(seeded.length + changes.length);
    expect.soft((await deadLetters(deadLetterDir)).length, why).toBe(0);
    const { code, report, text } = await verify(index);
    const seededKeys = new Set(seeded.map(keyText));
    const inserted = changes.filter(
      (change) => change.put && !seededKeys.has(keyText(change.put.Item)),
    ).length;
    const deleted = changes.filter((change) => change.delete).length;
    expect.soft(code, text).toBe(0);
    expect.soft(report, text).toMatchObject({
      items: seeded.length + inserted - deleted,
      missing: 0,
      extra: 0,
      differing: 0,
      unmappable: 0,
    });
    expect
      .soft(await source(index, 'a\\|b|c'))
      .toEqual({ pk: 'a|b', sk: 'c', which: 'changed', raw: 'a|b + c' });
    expect.soft(await source(index, 'a|b\\|c')).toBeUndefined();
  });
});
