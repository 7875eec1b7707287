/**
 * One ddb2os backfill in a process of its own, so that its peak RSS is the
 * backfill's and not the benchmark's (which holds prebuilt documents). Reads
 * a BackfillChildRequest (JSON) from argv[2], prints a BackfillChildResult as
 * its last stdout line.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { runLocalBackfill } from '../local/backfill';
import { limitHeapGrowth } from '../local/heap';
import { createOpenSearchClient } from '../pipeline/index/opensearch';
import type { BackfillChildRequest, BackfillChildResult } from './phases';
import { profileWhile } from './profile';

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

// As `ddb2os run` does (bin/ddb2os.mjs): the peak RSS measured is the CLI's.
limitHeapGrowth();
const request = JSON.parse(process.argv[2] ?? '{}') as BackfillChildRequest;
const local = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
const dynamodb = new DynamoDBClient({ endpoint: request.dynamodbEndpoint, ...local });
const streams = new DynamoDBStreamsClient({ endpoint: request.dynamodbEndpoint, ...local });
const opensearch = createOpenSearchClient({ endpoint: request.opensearchUrl, signing: 'none' });
await opensearch.indices.delete({ index: request.index, ignore_unavailable: true });

// What the backfill asks of each engine: the requests beyond the raw scan's Scan pages and the sink
// ceiling's bulk requests (checkpoints, run lock, markers; request sizes) are where their extra CPU goes.
const dynamodbRequests: Record<string, number> = {};
dynamodb.middlewareStack.add(
  (next, context) => (args) => {
    const command = (context.commandName ?? 'unknown').replace(/Command$/, '');
    dynamodbRequests[command] = (dynamodbRequests[command] ?? 0) + 1;
    return next(args);
  },
  { step: 'initialize', name: 'benchRequestCount' },
);
let bulkRequests = 0;
let bulkBytes = 0;
opensearch.on('request', (_error, event) => {
  const params = event?.meta?.request?.params;
  if (!params?.path?.endsWith('/_bulk')) return;
  bulkRequests += 1;
  const body = params.body as unknown;
  bulkBytes += Buffer.isBuffer(body) ? body.length : typeof body === 'string' ? Buffer.byteLength(body) : 0;
});
const startRssMiB = Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;

const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
const backfill = () =>
  runLocalBackfill({
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
let summary: Awaited<ReturnType<typeof backfill>>['summary'];
if (request.cpuProfileDir === undefined) ({ summary } = await backfill());
else {
  const profiled = await profileWhile(backfill);
  ({ summary } = profiled.result);
  writeFileSync(join(request.cpuProfileDir, 'backfill.cpuprofile'), JSON.stringify(profiled.profile));
}
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
  dynamodbRequests,
  bulkRequests,
  bulkBytes,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
dynamodb.destroy();
streams.destroy();
await opensearch.close();
