import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { startEngines, startKinesisEngine, startSqsEngine } from '../../local/engines';
import { startDynamoDbLocal } from '../../local/engines/dynamodb-local';
import { startEngineProcess } from '../../local/engines/process-group';
import { dynamoClient, dynamodbEndpoint, openSearchClient, opensearchUrl } from '../support/engines';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it holds no memory or port, so it is not "left behind".
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

async function waitUntilGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let living = pids.filter(alive);
  while (living.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    living = living.filter(alive);
  }
  return living;
}

describe('the local engines', () => {
  const savedEnv = { ...process.env };
  afterEach(() => {
    process.env = { ...savedEnv };
  });

  it('serves the tests a real DynamoDB Local and a real OpenSearch 2.x', async () => {
    const tables = await dynamoClient().send(new ListTablesCommand({}));
    expect(Array.isArray(tables.TableNames)).toBe(true);

    const info = await openSearchClient().info();
    expect(info.body.version.distribution).toBe('opensearch');
    expect(info.body.version.number).toMatch(/^2\./);
  });

  it('uses DYNAMODB_ENDPOINT and OPENSEARCH_URL instead of starting engines', async () => {
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
    process.env.OPENSEARCH_URL = `${opensearchUrl()}/`;

    const engines = await startEngines();

    expect(engines.dynamodb).toMatchObject({ url: dynamodbEndpoint(), external: true });
    expect(engines.opensearch).toMatchObject({ url: opensearchUrl(), external: true });
    expect([engines.dynamodb.pid, engines.opensearch.pid]).toEqual([undefined, undefined]);
    expect(engines.describe()).toMatch(/OpenSearch \(external\) 2\.\d+\.\d+ at http/);
    await engines.stop();
  });

  it('starts no SQS or Kinesis engine unless asked, and uses SQS_ENDPOINT and KINESIS_ENDPOINT when asked', async () => {
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
    process.env.OPENSEARCH_URL = opensearchUrl();
    process.env.SQS_ENDPOINT = 'http://127.0.0.1:9324/';
    process.env.KINESIS_ENDPOINT = 'http://127.0.0.1:4567';

    const plain = await startEngines();
    const withSources = await startEngines({ sqs: true, kinesis: true });

    expect([plain.sqs, plain.kinesis]).toEqual([undefined, undefined]);
    expect(withSources.sqs).toMatchObject({ url: 'http://127.0.0.1:9324', external: true });
    expect(withSources.kinesis).toMatchObject({
      url: 'http://127.0.0.1:4567',
      external: true,
    });
    expect([withSources.sqs?.pid, withSources.kinesis?.pid]).toEqual([undefined, undefined]);
    expect(withSources.describe()).toMatch(
      /SQS \(external\) external at http:\/\/127\.0\.0\.1:9324; Kinesis \(external\) external at http:\/\/127\.0\.0\.1:4567$/,
    );
    await Promise.all([plain.stop(), withSources.stop()]);
  });

  it('names the variable when OPENSEARCH_URL does not answer', async () => {
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
    process.env.OPENSEARCH_URL = 'http://127.0.0.1:1';

    await expect(startEngines()).rejects.toThrow(/OPENSEARCH_URL=http:\/\/127\.0\.0\.1:1 does not answer/);
  });

  it('leaves no Java process behind after stop()', async () => {
    const engine = await startDynamoDbLocal();
    const pid = engine.pid as number;
    expect(alive(pid)).toBe(true);

    await engine.stop();

    expect(await waitUntilGone([pid], 5_000)).toEqual([]);
  });

  it('leaves no ElasticMQ or kinesalite process behind after stop()', async () => {
    const engines = await Promise.all([
      startSqsEngine({ ignoreEnvironment: true }),
      startKinesisEngine({ ignoreEnvironment: true }),
    ]);
    const pids = engines.map((engine) => engine.pid as number);
    expect(pids.every(alive)).toBe(true);

    await Promise.all(engines.map((engine) => engine.stop()));

    expect(await waitUntilGone(pids, 5_000)).toEqual([]);
  });

  it('reports an engine that exits while starting, with its output, and removes its folder', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'ddb2os-failing-engine-'));

    const start = startEngineProcess({
      name: 'ElasticMQ',
      version: '0',
      url: 'http://127.0.0.1:1',
      command: 'sh',
      args: ['-c', 'echo "Address already in use"; exit 3'],
      env: process.env,
      workDir,
      ready: async () => false,
      timeoutMs: 10_000,
    });

    await expect(start).rejects.toThrow(
      /ElasticMQ 0 exited during start-up \(code 3\):\nAddress already in use/,
    );
    expect(existsSync(workDir)).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'starts DynamoDB Local on the CPUs it is given, with its throughput collector, and it answers',
    async () => {
      const engine = await startDynamoDbLocal({ cpus: { dynamodb: '0' } });
      try {
        const pid = engine.pid as number;
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        expect(status).toMatch(/^Cpus_allowed_list:\s*0$/m);
        const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        expect(commandLine).toEqual(expect.arrayContaining(['-XX:+UseParallelGC', '-Xmx2g', '-Xmn1g']));
        const client = new DynamoDBClient({
          endpoint: engine.url,
          region: 'us-east-1',
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        });
        const tables = await client.send(new ListTablesCommand({}));
        expect(tables.TableNames).toEqual([]);
        client.destroy();
      } finally {
        await engine.stop();
      }
    },
  );

  it('leaves no engine process behind when the parent process is killed outright', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/local/fixtures/start-engines-and-wait.ts'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          DYNAMODB_ENDPOINT: '',
          OPENSEARCH_URL: '',
          SQS_ENDPOINT: '',
          KINESIS_ENDPOINT: '',
        },
      },
    );
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await once(lines, 'line')) as [string];
    const { pids } = JSON.parse(line) as { pids: number[] };
    expect(pids).toHaveLength(4);
    expect(pids.every(alive)).toBe(true);

    child.kill('SIGKILL');

    expect(await waitUntilGone(pids, 10_000)).toEqual([]);
  });
});
