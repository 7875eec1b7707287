/**
 * The backfill with the change sources that spare the table's stream, on the
 * real local engines: the table's changes reach kinesalite or ElasticMQ
 * through the change forwarder (the stand-in for Kinesis Data Streams for
 * DynamoDB and for a fan-out), the updater stays paused (not consuming)
 * during the backfill, then replays the source, and `verify` finds the index
 * equal to the table, deletes included. For Kinesis and a standard queue the
 * forwarder shuffles and duplicates (seeded), as those sources may.
 */
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { type BackfillEvent, createLocalUpdater, runLocalBackfill } from '../../local/backfill';
import {
  type ChangeForwarderOptions,
  createChangeForwarder,
  type SqsEnvelope,
} from '../../local/change-forwarder';
import type { MappingConfig } from '../../pipeline/mapping/mapping';
import type { ChangeSource } from '../../pipeline/summarize/source-retention';
import type { Item, KeySchema } from '../../pipeline/table/types';
import { verifyIndex } from '../../pipeline/verify/verify';
import { KEY_SCHEMA, seededTable } from '../reliability/support';
import { churnTable } from '../support/backfill-fixtures';
import { useChangeSourceEngines } from '../support/change-source-engines';
import { useEngines } from '../support/engines';

const keySchema: KeySchema = KEY_SCHEMA;
const ITEMS = 200;
/** Changes made while the backfill runs: puts, updates and deletes of the loaded items and new ones. */
const CHURN = 150;

function key(i: number): Item {
  return { pk: { S: `user#${i % 300}` }, sk: { N: String(i) } };
}

function item(i: number): Item {
  return { ...key(i), name: { S: `item ${i}` }, amount: { N: `${i}.25` }, tags: { SS: ['a', `t${i % 7}`] } };
}

const sources = useChangeSourceEngines({ sqs: true, kinesis: true });
const engines = useEngines();
const { dynamodb, streams, opensearch } = engines;
const progressTable = engines.tableName('sources-progress');
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** A loaded table whose stream is switched on afterwards: the sources carry only what follows. */
async function loadedTable(): Promise<{ table: string; index: string; mapping: MappingConfig }> {
  const table = engines.deleteTableAfter(await seededTable(dynamodb, 'sources', ITEMS, { item }));
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: table });
  const index = engines.indexName('sources');
  return { table, index, mapping: { index } };
}

/**
 * The whole scenario on one source: forwarder on, backfill with churn (the
 * updater paused), updater on, everything drained, then verify.
 */
async function backfillThrough(
  source: ChangeSource,
  target: ChangeForwarderOptions['target'],
  disorder?: ChangeForwarderOptions['disorder'],
) {
  const { table, index, mapping } = await loadedTable();
  const lines: string[] = [];
  const forwarder = await createChangeForwarder({
    streams,
    dynamodb,
    table,
    progressTable,
    target,
    ...(disorder ? { disorder } : {}),
    pollIntervalMs: 50,
    log: (line) => lines.push(line),
  });
  forwarder.start();
  const events: BackfillEvent[] = [];
  let backfillDone = false;
  const writer = churnTable(
    dynamodb,
    table,
    { key, item, count: ITEMS },
    { done: () => backfillDone, max: CHURN, renameNew: true },
  );
  const result = await runLocalBackfill({
    dynamodb,
    streams,
    opensearch,
    table,
    index,
    mapping,
    progressTable,
    restart: true,
    changeSource: source,
    input: { totalSegments: 4, maxConcurrency: 2 },
    onEvent: (event) => events.push(event),
  });
  backfillDone = true;
  const writes = await writer;
  await forwarder.stop();
  // Everything the table's stream holds reaches the source before the updater drains it.
  await forwarder.drain();

  const updater = await createLocalUpdater({
    dynamodb,
    streams,
    opensearch,
    table,
    keySchema,
    mapping,
    progressTable,
    changeSource: source,
  });
  const applied = await updater.drain();
  const report = await verifyIndex({
    dynamodb,
    opensearch,
    table: { name: table, keySchema, keyTypes: { pk: 'S', sk: 'N' } },
    mapping,
  });
  return { result, events, writes, applied, report, counts: forwarder.counts, lines };
}

function verdict(report: { missing: number; extra: number; differing: number }) {
  return { missing: report.missing, extra: report.extra, differing: report.differing };
}

describe('a backfill whose updater reads another change source than the table stream', () => {
  it('kinesis: changes during the backfill, shuffled and duplicated on the way, end in the index: verify 0/0/0', async () => {
    const kinesis = new KinesisClient({
      endpoint: sources.kinesisEngine.url,
      region: 'us-east-1',
      credentials,
    });
    try {
      const stream = await sources.createStream('sources', 2);
      const run = await backfillThrough(
        { kind: 'kinesis', kinesis, stream },
        { kind: 'kinesis', kinesis, stream },
        { seed: 16, duplicates: 0.3 },
      );

      expect(run.events.filter((event) => event.type === 'updater').map((event) => event.state)).toEqual([
        'Disabled',
        'Enabled',
      ]);
      expect(run.result.summary.scanned).toBeGreaterThanOrEqual(ITEMS - CHURN);
      expect(run.writes).toBeGreaterThan(0);
      expect(run.counts.changes).toBeGreaterThan(run.writes);
      expect(run.counts.sent).toBeGreaterThan(run.counts.changes);
      expect(run.applied.records).toBe(run.counts.sent);
      expect(run.lines[0]).toContain('standing in for Kinesis Data Streams for DynamoDB');
      expect(verdict(run.report)).toEqual({ missing: 0, extra: 0, differing: 0 });
    } finally {
      kinesis.destroy();
    }
  });

  it.each([
    ['standard queue, SNS envelope, shuffled and duplicated', false, 'sns' as SqsEnvelope],
    ['FIFO queue, EventBridge Pipes', true, 'pipes' as SqsEnvelope],
  ])('sqs, %s: changes during the backfill end in the index: verify 0/0/0', async (_name, fifo, envelope) => {
    const queueUrl = await sources.createQueue('sources', { fifo });
    const sqs = sources.sqs;
    const run = await backfillThrough(
      { kind: 'sqs', sqs, queueUrl },
      { kind: 'sqs', sqs, queueUrl, envelope, fifo },
      fifo ? undefined : { seed: 16, duplicates: 0.3 },
    );

    expect(run.writes).toBeGreaterThan(0);
    expect(run.counts.changes).toBeGreaterThan(run.writes);
    if (fifo) expect(run.counts.sent).toBe(run.counts.changes);
    else expect(run.counts.sent).toBeGreaterThan(run.counts.changes);
    expect(run.applied.records).toBe(run.counts.sent);
    expect(run.lines[0]).toContain('standing in for a fan-out');
    expect(verdict(run.report)).toEqual({ missing: 0, extra: 0, differing: 0 });
  });
});
