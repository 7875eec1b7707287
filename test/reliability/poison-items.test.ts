import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { runLocalBackfill } from '../../local/backfill';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { ITEM_FRIENDLY_MAPPINGS, prepareIndexForBackfill } from '../../pipeline/index/index-settings';
import type { DeadLetterRecord, Item } from '../../pipeline/table/types';
import { localBackfillOptions } from '../support/backfill-fixtures';
import { useEngines } from '../support/engines';
import {
  indexCount,
  recordFigures,
  reliabilityItem,
  reliabilityUpdater,
  secondsSince,
  seededTable,
  verify,
} from './support';

const ITEMS = 2_000;
/** Every 50th item is poison, of one of three kinds in turn; item 7 has a key too long for an id. */
const POISON_EVERY = 50;
const LONG_KEY_ITEM = 7;

type PoisonKind = 'scalar for an object' | 'immense keyword' | 'list of numbers and maps for an object';
const KINDS: PoisonKind[] = [
  'scalar for an object',
  'immense keyword',
  'list of numbers and maps for an object',
];

function poisonKind(i: number): PoisonKind | undefined {
  return i % POISON_EVERY === 3 ? KINDS[Math.floor(i / POISON_EVERY) % KINDS.length] : undefined;
}

function poisoned(item: Item, kind: PoisonKind): Item {
  switch (kind) {
    case 'scalar for an object':
      return { ...item, dimensions: { S: 'large' } };
    case 'immense keyword':
      return { ...item, sku: { S: 'x'.repeat(40_000) } };
    case 'list of numbers and maps for an object':
      return { ...item, dimensions: { L: [{ N: '1' }, { M: { cm: { N: '2' } } }] } };
  }
}

function catalogItem(i: number): Item {
  const item: Item = {
    ...reliabilityItem(i, 0, 100),
    price: { N: `${i}.99` },
    sku: { S: `SKU-${i}` },
  };
  if (i === LONG_KEY_ITEM) item.pk = { S: `customer#${'long'.repeat(150)}` };
  const kind = poisonKind(i);
  return kind ? poisoned(item, kind) : item;
}

const sortKeys = (records: DeadLetterRecord[]) =>
  records.map((record) => Number((record.key.sk as { N: string }).N)).sort((a, b) => a - b);

describe('reliability: poison items', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('rel-progress');
  const deadLetterDir = engines.tempDir('reliability');

  it('sends every poison item to the dead-letter folder with its reason, indexes every other item, and the counts add up', async () => {
    // Prepare: the index with an explicit mapping, a table in which every 50th item conflicts with it.
    const table = engines.deleteTableAfter(
      await seededTable(dynamodb, 'rel-poison', ITEMS, { item: catalogItem }),
    );
    const index = engines.indexName('rel-poison');
    await prepareIndexForBackfill(opensearch, index, {
      mappingBody: {
        ...ITEM_FRIENDLY_MAPPINGS,
        properties: {
          price: { type: 'double' },
          sku: { type: 'keyword' },
          dimensions: { properties: { cm: { type: 'double' } } },
        },
      },
    });
    const mapping = { index };
    const poison = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => poisonKind(i) !== undefined);

    // Act: the backfill, then changes through the stream: a good item turned poison, a new poison item, a good update.
    const started = Date.now();
    const result = await runLocalBackfill(
      localBackfillOptions(
        engines,
        { table, index, mapping, progressTable, deadLetterDir },
        { restart: true, input: { totalSegments: 4, maxConcurrency: 4 } },
      ),
    );
    const backfillSeconds = secondsSince(started);
    const turned = 10; // not poison in the backfill
    const fresh = ITEMS + 1;
    await dynamodb.send(
      new PutItemCommand({ TableName: table, Item: poisoned(catalogItem(turned), 'scalar for an object') }),
    );
    await dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: poisoned(catalogItem(fresh), 'list of numbers and maps for an object'),
      }),
    );
    await dynamodb.send(
      new PutItemCommand({ TableName: table, Item: { ...catalogItem(11), price: { N: '0.5' } } }),
    );
    const updater = await reliabilityUpdater(engines, { table, mapping, progressTable }, { deadLetterDir });
    await updater.drain();
    const report = await verify(dynamodb, opensearch, table, mapping);

    // Assess: the counts.
    const { summary } = result;
    const sink = new DirectoryDeadLetterSink(deadLetterDir);
    const backfillLetters = await sink.read(result.runId);
    const streamLetters = await sink.read('updater');
    const documents = await indexCount(opensearch, index);
    recordFigures('5 poison items', {
      items: ITEMS,
      poisonInBackfill: poison.length + 1,
      scanned: summary.scanned,
      created: summary.created,
      alreadyPresent: summary.alreadyPresent,
      failed: summary.failed,
      skipped: summary.skipped,
      deadLettersBackfill: backfillLetters.length,
      deadLettersStream: streamLetters.length,
      documents,
      missing: report.missing,
      unmappable: report.unmappable,
      extra: report.extra,
      differing: report.differing,
      backfillSeconds,
    });
    expect(summary.scanned).toBe(ITEMS);
    expect(summary.scanned).toBe(summary.created + summary.alreadyPresent + summary.failed + summary.skipped);
    expect(summary.failed).toBe(poison.length + 1);
    expect(summary.created).toBe(ITEMS - poison.length - 1);

    // Every poison item of the backfill is in the dead-letter folder once, with its key and reason.
    expect(sortKeys(backfillLetters)).toEqual([...poison, LONG_KEY_ITEM].sort((a, b) => a - b));
    for (const letter of backfillLetters) {
      const i = Number((letter.key.sk as { N: string }).N);
      const kind = poisonKind(i);
      expect(letter).toMatchObject({ runId: result.runId, table, index });
      if (i === LONG_KEY_ITEM) {
        expect(letter).toMatchObject({ errorType: 'MappingError', reason: expect.stringMatching(/512/) });
      } else if (kind === 'immense keyword') {
        expect(letter).toMatchObject({
          errorType: 'illegal_argument_exception',
          reason: expect.stringMatching(/immense term in field="sku"/),
        });
      } else {
        expect(letter).toMatchObject({
          errorType: 'mapper_parsing_exception',
          reason: `field dimensions is an object in the index mapping and ${kind === 'scalar for an object' ? 'a string' : 'a list holding numbers and objects'} in this item`,
        });
      }
    }
    // The summary names the object field once, with its items and the fix.
    const objectPoison = poison.filter((i) => poisonKind(i) !== 'immense keyword').length;
    expect(summary.fieldConflicts).toEqual([
      expect.objectContaining({ index, field: 'dimensions', indexType: 'object', items: objectPoison }),
    ]);
    // The stream's poison too; the item that turned poison lost its old document rather than keep a stale one.
    expect(sortKeys(streamLetters)).toEqual([turned, fresh]);
    expect(
      (await opensearch.get({ index, id: `customer#010|${turned}` }, { ignore: [404] })).body.found,
    ).toBe(false);
    expect((await opensearch.get({ index, id: `customer#011|11` })).body._source?.price).toBe(0.5);

    // Verify: every item not dead-lettered is indexed exactly; what is missing is exactly what was dead-lettered.
    expect({ extra: report.extra, differing: report.differing }).toEqual({ extra: 0, differing: 0 });
    expect(report.unmappable).toBe(1);
    expect(report.missing).toBe(poison.length + 2);
    const deadLettered = new Set([...sortKeys(backfillLetters), ...sortKeys(streamLetters)]);
    for (const example of report.examples.missing) expect(deadLettered).toContain(Number(example.key.sk));
    expect(documents).toBe(ITEMS + 1 - (poison.length + 1) - 2);
  });
});
