/**
 * ElasticMQ, the SQS engine: fetched from Maven Central, started in memory on
 * a free loopback port, or an existing SQS endpoint (SQS_ENDPOINT).
 *
 * Its quirks are settled here, in the configuration it starts with:
 * - Queue URLs are built from `node-address`, not from the request, and the
 *   AWS SDK sends each call to its queue's URL: the default
 *   (`http://localhost:9324`) would send every call to another port. So the
 *   node address is the port it is bound to.
 * - ARNs carry `aws.region`, by default `elasticmq`, which no ARN parser
 *   accepts as a region: it is the region the clients use.
 * - `sqs-limits = strict` keeps SQS's limits (10 messages a batch, the
 *   message size), so what passes here passes on SQS.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Engine, type EngineOptions, existingEndpoint, LOCAL_ACCOUNT_ID, localRegion } from './engine';
import { fetchElasticMq, javaHome } from './fetch';
import { answersAwsJson, freePort, startEngineProcess } from './process-group';

const ELASTICMQ_MAIN_CLASS = 'org.elasticmq.server.Main';

/**
 * A test's queues hold a few thousand small messages at most, and every test
 * file that asks for an SQS engine pays its start. A serial collector and the
 * first JIT tier only start it in 3.2-3.5 s of CPU instead of 5.8-5.9 s with
 * the JVM's defaults (two shared cores), and it holds 130 MB instead of 150-180.
 */
export const ELASTICMQ_JVM_OPTIONS = ['-Xms64m', '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'];

/** ElasticMQ's configuration (HOCON) for a server on loopback `port` whose ARNs name `region`. */
export function elasticMqConfig(port: number, region: string): string {
  return [
    // Keeps the pekko settings the server ships with (request timeout above SQS's 20 s long poll).
    'include classpath("application.conf")',
    `node-address { protocol = "http", host = "127.0.0.1", port = ${port}, context-path = "" }`,
    `rest-sqs { enabled = true, bind-port = ${port}, bind-hostname = "127.0.0.1", sqs-limits = strict }`,
    'generate-node-address = false',
    `aws { region = ${JSON.stringify(region)}, accountId = "${LOCAL_ACCOUNT_ID}" }`,
    '',
  ].join('\n');
}

/** Starts ElasticMQ (in memory) on a free loopback port. */
export async function startElasticMq(options: EngineOptions = {}): Promise<Engine> {
  const log = options.log ?? (() => {});
  const artifacts = fetchElasticMq(log);
  const port = await freePort();
  const workDir = mkdtempSync(join(tmpdir(), 'ddb2os-elasticmq-'));
  const configFile = join(workDir, 'elasticmq.conf');
  writeFileSync(configFile, elasticMqConfig(port, localRegion()));
  const url = `http://127.0.0.1:${port}`;
  const engine = await startEngineProcess({
    name: 'ElasticMQ',
    version: artifacts.elasticMqVersion,
    url,
    command: join(javaHome(), 'bin', 'java'),
    args: [
      ...ELASTICMQ_JVM_OPTIONS,
      `-Dconfig.file=${configFile}`,
      '-cp',
      `${artifacts.elasticMqDir}/*`,
      ELASTICMQ_MAIN_CLASS,
    ],
    env: process.env,
    workDir,
    ready: () => answersAwsJson(url, 'AmazonSQS.ListQueues', 'application/x-amz-json-1.0'),
    timeoutMs: 120_000,
  });
  log(`ElasticMQ ${artifacts.elasticMqVersion} on ${url}`);
  return engine;
}

/** An existing SQS endpoint (SQS_ENDPOINT), used as it is. */
export function existingSqs(url: string): Engine {
  return existingEndpoint('SQS (external)', url);
}
