/**
 * `ddb2os demo` (`npm start`): the whole mission on one machine, no AWS
 * account. Starts DynamoDB Local and OpenSearch (or uses DYNAMODB_ENDPOINT /
 * OPENSEARCH_URL), fills a demo table, backfills it through the same workflow
 * definition the cloud runs, turns the stream updater on, makes live changes
 * and shows them arrive, runs a search, verifies index = table, and stops the
 * engines. With `--change-source kinesis|sqs` the updater reads kinesalite or
 * ElasticMQ, fed by the change forwarder (the stand-in for the AWS feature).
 */
import { DynamoDBClient, UpdateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { Client } from '@opensearch-project/opensearch';
import { createLocalUpdater, runLocalBackfill } from '../../local/backfill';
import { createDemoTable, DEMO_KEY_SCHEMA, demoItems, demoMapping, liveChanges } from '../../local/demo-data';
import { type Engines, startEngines } from '../../local/engines';
import { loadItems } from '../../local/load-items';
import { WorkflowFailedError } from '../../local/workflow';
import { createOpenSearchClient } from '../../pipeline/index/opensearch';
import { targetIndices } from '../../pipeline/plan/plan-segments';
import { indexMatchesTable, verifyIndex } from '../../pipeline/verify/verify';
import { type CommandSpec, optionalInteger, optionalString } from '../args';
import { CHANGE_SOURCE_FLAGS, changeSourceFromArgs, checkChangeSourceArgs } from '../change-source';
import { EXIT } from '../cli-error';
import type { Command } from '../command';
import { INDEX_CONFIG_FLAGS, readIndexConfigFile } from '../endpoints';
import type { CliIo } from '../io';
import { duration, fmt } from '../progress';
import { progressReporter, summaryLines } from './run';

export const DEMO_TABLE = 'ddb2os-demo';
export const DEMO_INDEX = 'ddb2os-demo';

export const demoSpec: CommandSpec = {
  name: 'demo',
  summary: 'run the whole mission on local engines: backfill, live changes, search',
  usage:
    'ddb2os demo [--items N] [--segments N] [--concurrency N] [--index-config FILE] [--json] ' +
    '[--change-source stream|kinesis|sqs [--sqs-envelope E] [--fifo]]',
  flags: {
    items: { type: 'string', value: 'N', description: 'items in the demo table (default 50,000)' },
    segments: { type: 'string', value: 'N', description: 'parallel-scan segments (default 8)' },
    concurrency: { type: 'string', value: 'N', description: 'segments worked on at once (default 4)' },
    ...INDEX_CONFIG_FLAGS,
    json: { type: 'boolean', description: 'print one summary object as the last line of stdout' },
    'change-source': CHANGE_SOURCE_FLAGS['change-source']!,
    'sqs-envelope': CHANGE_SOURCE_FLAGS['sqs-envelope']!,
    fifo: CHANGE_SOURCE_FLAGS.fifo!,
  },
  details: [
    'Starts DynamoDB Local and OpenSearch on loopback (unless DYNAMODB_ENDPOINT / OPENSEARCH_URL point at running',
    `ones), creates the table "${DEMO_TABLE}" (a product catalog and a single-table customer design whose items`,
    `combine into one document), backfills it into "${DEMO_INDEX}-products" and "${DEMO_INDEX}-customers", enables`,
    'the stream updater, makes live changes, shows them arrive, searches, verifies, and stops the engines.',
    'With --index-config FILE, both indices are created with those settings and mappings (see `ddb2os run --help`).',
    'With --change-source kinesis or sqs it also starts kinesalite or ElasticMQ (unless KINESIS_ENDPOINT /',
    `SQS_ENDPOINT), creates "${DEMO_TABLE}-changes" there, and a change forwarder carries the table stream to it,`,
    'standing in for Kinesis Data Streams for DynamoDB or a fan-out (Pipes, SNS, EventBridge).',
  ].join('\n'),
  examples: [
    'ddb2os demo',
    'ddb2os demo --items 200000 --segments 16 --concurrency 8',
    'ddb2os demo --items 2000 --index-config my-index.json',
    'ddb2os demo --items 2000 --change-source sqs --sqs-envelope sns',
  ],
};

function say(io: CliIo, text = ''): void {
  io.stdout.write(`${text}\n`);
}

async function refreshAndGet(
  opensearch: Client,
  index: string,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  await opensearch.indices.refresh({ index });
  const response = await opensearch.get({ index, id }, { ignore: [404] });
  const body = response.body as { found?: boolean; _source?: Record<string, unknown> };
  return body.found ? body._source : undefined;
}

export const demoCommand: Command = {
  spec: demoSpec,
  async run(args, io) {
    const itemCount = optionalInteger(args, 'items', 10, 10_000_000) ?? 50_000;
    const segments = optionalInteger(args, 'segments', 1, 10_000) ?? 8;
    const concurrency = optionalInteger(args, 'concurrency', 1, 1_000) ?? 4;
    // Before the engines start: a bad file costs nothing.
    const indexConfig = await readIndexConfigFile(optionalString(args, 'index-config'));
    const sourceKind = checkChangeSourceArgs(args);
    const started = Date.now();
    const step = (text: string) => say(io, `\n== ${text}`);

    step('Starting the local engines');
    const engines: Engines = await startEngines({
      log: (line) => io.stderr.write(`   ${line}\n`),
      sqs: sourceKind === 'sqs',
      kinesis: sourceKind === 'kinesis',
    });
    say(io, `   ${engines.describe()}`);
    const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    const dynamodb = new DynamoDBClient({ endpoint: engines.dynamodb.url, region: 'us-east-1', credentials });
    const streams = new DynamoDBStreamsClient({
      endpoint: engines.dynamodb.url,
      region: 'us-east-1',
      credentials,
    });
    const opensearch = createOpenSearchClient({ endpoint: engines.opensearch.url, signing: 'none' });
    const mapping = demoMapping(DEMO_INDEX);
    const progressTable = 'ddb2os-demo-progress';
    const deadLetterDir = '.ddb2os/demo';
    let closeSource = async () => {};
    try {
      step(`Creating table ${DEMO_TABLE} with ${fmt(itemCount)} items`);
      await createDemoTable(dynamodb, DEMO_TABLE, { stream: false });
      const loadStarted = Date.now();
      await loadItems(dynamodb, DEMO_TABLE, demoItems(itemCount), { concurrency: 8 });
      // An existing table whose stream is switched on just before its backfill: the stream holds only what follows.
      await dynamodb.send(
        new UpdateTableCommand({
          TableName: DEMO_TABLE,
          StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
        }),
      );
      await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: DEMO_TABLE });
      say(
        io,
        `   ${fmt(itemCount)} items written in ${duration((Date.now() - loadStarted) / 1000)}; stream enabled`,
      );
      await opensearch.indices.delete({ index: targetIndices(mapping), ignore_unavailable: true });
      const changeSource = await changeSourceFromArgs(
        args,
        { ...io, env: { ...io.env, KINESIS_ENDPOINT: engines.kinesis?.url, SQS_ENDPOINT: engines.sqs?.url } },
        { client: dynamodb, url: engines.dynamodb.url, region: 'us-east-1', local: true },
        DEMO_TABLE,
        progressTable,
      );
      closeSource = changeSource.close;
      changeSource.forwarder?.start();

      step(
        `Backfill through statemachines/backfill.asl.json (${segments} segments, ${concurrency} at a time)`,
      );
      const reporter = progressReporter(io);
      let result: Awaited<ReturnType<typeof runLocalBackfill>>;
      try {
        result = await runLocalBackfill({
          dynamodb,
          streams,
          opensearch,
          table: DEMO_TABLE,
          index: DEMO_INDEX,
          mapping,
          progressTable,
          deadLetterDir,
          restart: true,
          indexConfig,
          input: { totalSegments: segments, maxConcurrency: concurrency },
          onEvent: reporter.onEvent,
          signal: io.signal,
          changeSource: changeSource.source,
        });
      } finally {
        reporter.display()?.finish();
      }
      for (const line of summaryLines(result)) say(io, `   ${line}`);

      step(`Stream updater on, reading ${changeSource.label}: live changes`);
      const updater = await createLocalUpdater({
        dynamodb,
        streams,
        opensearch,
        table: DEMO_TABLE,
        keySchema: DEMO_KEY_SCHEMA,
        mapping,
        progressTable,
        deadLetterDir,
        changeSource: changeSource.source,
      });
      const changes = liveChanges(DEMO_INDEX, Math.round(itemCount * 0.4));
      for (const change of changes) await change.apply(dynamodb, DEMO_TABLE);
      const changed = Date.now();
      await changeSource.forwarder?.drain();
      const applied = await updater.drain();
      let arrived = 0;
      for (const change of changes) {
        const document = await refreshAndGet(opensearch, change.index, change.id);
        const ok = change.expect(document);
        if (ok) arrived += 1;
        say(io, `   ${ok ? 'arrived ' : 'MISSING '} ${change.description}`);
      }
      say(
        io,
        `   ${arrived}/${changes.length} changes in the index ${duration((Date.now() - changed) / 1000)} after they were made ` +
          `(${fmt(applied.records)} stream records applied)`,
      );

      step('A search: garden products under 50.00, cheapest first');
      const search = await opensearch.search({
        index: `${DEMO_INDEX}-products`,
        body: {
          size: 5,
          query: {
            bool: { filter: [{ term: { 'category.keyword': 'garden' } }, { range: { price: { lt: 50 } } }] },
          },
          sort: [{ price: 'asc' }],
          track_total_hits: true,
        },
      });
      const hits = search.body.hits as {
        total: { value: number };
        hits: { _source: Record<string, unknown> }[];
      };
      for (const hit of hits.hits) {
        say(
          io,
          `   ${String(hit._source.price).padStart(7)}  ${String(hit._source.name)}  (gtin ${String(hit._source.gtin)})`,
        );
      }
      say(io, `   ${fmt(hits.total.value)} matching products`);

      step('Verify: every item against its document');
      const report = await verifyIndex({
        dynamodb,
        opensearch,
        table: { name: DEMO_TABLE, keySchema: DEMO_KEY_SCHEMA, keyTypes: { pk: 'S', sk: 'S' } },
        mapping,
      });
      say(
        io,
        `   ${fmt(report.items)} items, ${fmt(report.expectedDocuments)} documents expected: ${report.missing} missing, ` +
          `${report.extra} extra, ${report.differing} differing`,
      );

      const ok = indexMatchesTable(report) && arrived === changes.length;
      step(
        `Done in ${duration((Date.now() - started) / 1000)}: ${ok ? 'the index equals the table' : 'DIFFERENCES FOUND'}`,
      );
      if (args.values.json === true) {
        say(
          io,
          JSON.stringify({
            items: itemCount,
            ...result.summary,
            liveChanges: changes.length,
            liveChangesArrived: arrived,
            verify: { missing: report.missing, extra: report.extra, differing: report.differing },
            seconds: (Date.now() - started) / 1000,
          }),
        );
      }
      if (!ok) {
        io.stderr.write('ddb2os: the demo found differences between the table and the index (see above)\n');
        return EXIT.failed;
      }
      return EXIT.ok;
    } catch (error) {
      if (error instanceof WorkflowFailedError) {
        io.stderr.write(`ddb2os: the demo backfill failed: ${error.error}: ${error.causeText}\n`);
        return EXIT.failed;
      }
      throw error;
    } finally {
      await closeSource();
      dynamodb.destroy();
      streams.destroy();
      await opensearch.close();
      await engines.stop();
      io.stderr.write('   engines stopped\n');
    }
  },
};
