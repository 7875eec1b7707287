import { beforeAll, describe, expect, it } from 'vitest';
import { processSegmentMessage } from '../../handlers/worker';
import { applyStreamRecords, type StreamChange } from '../../pipeline/apply/apply-stream';
import { DirectoryDeadLetterSink } from '../../pipeline/dead-letter/dead-letter';
import { ITEM_FRIENDLY_MAPPINGS } from '../../pipeline/index/index-settings';
import type { TelemetryLogger } from '../../pipeline/observability';
import { ensureProgressTable, SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import type { Item } from '../../pipeline/table/types';
import { useEngines } from '../support/engines';
import { KEY_SCHEMA, reliabilityItem, seededTable } from './support';

const MARKER = 'ITEM-CONTENT-7f3a';
const ITEMS = 200;

function item(i: number, poison = i % 20 === 5): Item {
  return {
    ...reliabilityItem(i, 0, 10),
    secret: { S: `${MARKER} ${i}` },
    price: poison ? { S: `${MARKER} is not a price` } : { N: `${i}.5` },
  };
}

/** Records every log call with its level, as the Powertools logger would print it. */
function recordingLogger(): { logger: TelemetryLogger; lines: { level: string; text: string }[] } {
  const lines: { level: string; text: string }[] = [];
  const at =
    (level: string) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      lines.push({ level, text: JSON.stringify({ message, attributes }) });
  return { logger: { debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') }, lines };
}

describe('reliability: no item content in logs at INFO and above', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  let table: string;
  const index = engines.indexName('rel-logs');
  const progressTable = engines.tableName('rel-progress');
  const deadLetterDir = engines.tempDir('reliability');

  beforeAll(async () => {
    table = engines.deleteTableAfter(
      await seededTable(dynamodb, 'rel-logs', ITEMS, { item: (i) => item(i) }),
    );
    // The user's own index: without ddb2os's ignore_malformed, a word in price is refused and quoted back.
    await opensearch.indices.create({
      index,
      body: { mappings: { ...ITEM_FRIENDLY_MAPPINGS, properties: { price: { type: 'double' } } } } as never,
    });
    await ensureProgressTable(dynamodb, progressTable);
  });

  it('the worker (a segment with poison items, and a message it refuses) and the updater (poison records)', async () => {
    const { logger, lines } = recordingLogger();
    const deadLetters = new DirectoryDeadLetterSink(deadLetterDir);
    const stepFunctions = { send: async () => ({}) };
    const deps = {
      dynamodb,
      opensearch,
      checkpoints: new SegmentCheckpointStore(dynamodb, progressTable),
      deadLetters,
      mapping: { index },
      stepFunctions,
      sqs: { send: async () => ({}) },
      queueUrl: 'https://sqs.local/segments',
      table,
      keySchemas: new Map(),
      telemetry: { logger },
    };
    const context = { getRemainingTimeInMillis: () => 600_000 };
    const message = { taskToken: 'token', runId: 'rel-logs-run', table, index, segment: 0, totalSegments: 1 };

    const scanned = await processSegmentMessage(JSON.stringify(message), deps, context);
    await processSegmentMessage(JSON.stringify({ ...message, segment: 'x' }), deps, context);
    const changes: StreamChange[] = [5, 6, 25].map((i, n) => ({
      eventName: 'MODIFY',
      sequenceNumber: String(100 + n),
      keys: { pk: item(i).pk as Item[string], sk: item(i).sk as Item[string] },
      newImage: item(i, i !== 6),
      oldImage: item(i),
    }));
    const applied = await applyStreamRecords(changes, {
      opensearch,
      dynamodb,
      table,
      keySchema: KEY_SCHEMA,
      mapping: { index },
      deadLetters,
      telemetry: { logger },
    });

    // The poison items were dead-lettered with OpenSearch's reason, which quotes the value.
    expect(scanned).toMatchObject({ action: 'succeeded', result: { scanned: ITEMS, failed: ITEMS / 20 } });
    expect(applied).toMatchObject({ applied: 3, deadLettered: 2 });
    const letters = [...(await deadLetters.read('rel-logs-run')), ...(await deadLetters.read('updater'))];
    expect(letters).toHaveLength(ITEMS / 20 + 2);
    expect(letters.some((letter) => letter.reason.includes(MARKER))).toBe(true);
    // Logs: plenty at INFO and above, none with item content; the reasons only at DEBUG.
    const visible = lines.filter((line) => line.level !== 'DEBUG');
    expect(visible.map((line) => line.level)).toEqual(expect.arrayContaining(['INFO', 'WARN', 'ERROR']));
    for (const line of visible) expect(line.text, line.text).not.toContain(MARKER);
    expect(lines.some((line) => line.level === 'DEBUG' && line.text.includes(MARKER))).toBe(true);
  });
});
