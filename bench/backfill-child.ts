/**
 * One ddb2os backfill in a process of its own, so that its peak RSS is the
 * backfill's and not the benchmark's (which holds prebuilt documents). Reads
 * a BackfillChildRequest (JSON) from argv[2], prints a BackfillChildResult as
 * its last stdout line.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { runLocalBackfill } from '../local/backfill';
import { limitHeapGrowth } from '../local/heap';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import type { BackfillChildRequest, BackfillChildResult } from './phases';

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

// As `ddb2os run` does (bin/ddb2os.mjs): the peak RSS measured is the CLI's.
limitHeapGrowth();
const request = JSON.parse(process.argv[2] ?? '{}') as BackfillChildRequest;
const local = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
const dynamodb = new DynamoDBClient({ endpoint: request.dynamodbEndpoint, ...local });
const streams = new DynamoDBStreamsClient({ endpoint: request.dynamodbEndpoint, ...local });
const opensearch = createOpenSearchClient({ endpoint: request.opensearchUrl, signing: 'none' });
await opensearch.indices.delete({ index: request.index, ignore_unavailable: true });
const startRssMiB = Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;

const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
const { summary } = await runLocalBackfill({
  dynamodb,
  streams,
  opensearch,
  table: request.table,
  index: request.index,
  mapping: { index: request.index },
  progressTable: request.progressTable,
  deadLetterDir: request.deadLetterDir,
  restart: true,
  input: { totalSegments: request.segments, maxConcurrency: request.concurrency },
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);

const result: BackfillChildResult = {
  scanned: summary.scanned,
  created: summary.created,
  failed: summary.failed,
  seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  startRssMiB,
  peakRssMiB: mib(process.resourceUsage().maxRSS),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
dynamodb.destroy();
streams.destroy();
await opensearch.close();
