/** DynamoDB Local, started in memory on a free loopback port, or an existing DynamoDB endpoint. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Engine, type EngineOptions, existingEndpoint } from './engine';
import { fetchEngines, javaHome } from './fetch';
import { answersAwsJson, freePort, onCpus, startEngineProcess } from './process-group';

const DYNAMODB_MAIN_CLASS = 'software.amazon.dynamodb.services.local.main.ServerRunner';

/**
 * DynamoDB Local's JVM settings. Its data is in SQLite (native memory), so
 * the Java heap holds little but the garbage of requests, and a lot of it: a
 * 1 MB Scan page is many short-lived objects. The default (G1, a young
 * generation sized for short pauses) spent a third of its CPU in the
 * collector during a parallel Scan. A throughput collector with a 1 GB young
 * generation collects a tenth as often: a parallel Scan of 100,000 items of
 * 1 KiB cost 52-56 ms of CPU per 1,000 items instead of 71-89
 * (docs/benchmarks.md). The old generation keeps the 1 GB the heap had.
 */
export const DYNAMODB_LOCAL_JVM_OPTIONS = ['-XX:+UseParallelGC', '-Xmx2g', '-Xmn1g'];

/** Starts DynamoDB Local (in memory) on a free loopback port. */
export async function startDynamoDbLocal(options: EngineOptions = {}): Promise<Engine> {
  const log = options.log ?? (() => {});
  const artifacts = fetchEngines(log);
  const port = await freePort();
  const workDir = mkdtempSync(join(tmpdir(), 'ddb2os-dynamodb-'));
  const java = join(javaHome(), 'bin', 'java');
  const [command, args] = onCpus(options.cpus?.dynamodb, java, [
    ...DYNAMODB_LOCAL_JVM_OPTIONS,
    `-Djava.library.path=${artifacts.dynamoDbLocalDir}`,
    '-cp',
    `${artifacts.dynamoDbLocalDir}/*`,
    DYNAMODB_MAIN_CLASS,
    '-inMemory',
    '-port',
    String(port),
    '-disableTelemetry',
  ]);
  const url = `http://127.0.0.1:${port}`;
  const engine = await startEngineProcess({
    name: 'DynamoDB Local',
    version: artifacts.dynamoDbLocalVersion,
    url,
    command,
    args,
    env: process.env,
    workDir,
    ready: () => answersAwsJson(url, 'DynamoDB_20120810.ListTables', 'application/x-amz-json-1.0'),
    timeoutMs: 120_000,
  });
  log(`DynamoDB Local ${artifacts.dynamoDbLocalVersion} on ${url}`);
  return engine;
}

/** An existing DynamoDB endpoint (DYNAMODB_ENDPOINT), used as it is. */
export function existingDynamoDb(url: string): Engine {
  return existingEndpoint('DynamoDB', url);
}
