/**
 * kinesalite, the Kinesis engine: an npm package (a devDependency) started in
 * its own Node process on a free loopback port, or an existing Kinesis
 * endpoint (KINESIS_ENDPOINT).
 *
 * Its quirks are settled here, in the options it starts with:
 * - Storage is in memory (memdown). Its LevelDB store (`--path`) would load
 *   the native `leveldown`, an optional dependency whose build script npm may
 *   skip; nothing here uses it.
 * - Its command line listens on every interface, and it speaks only
 *   HTTP/1.1 while @aws-sdk/client-kinesis speaks HTTP/2:
 *   kinesalite-server.mjs listens on loopback and serves both.
 * - It refuses to create a stream once the shards of all its streams pass
 *   `shardLimit`, 10 by default: the test files that share one engine pass
 *   that. 500 is the shard quota of a new AWS account in us-east-1.
 * - A stream stays CREATING (DELETING, UPDATING) for `createStreamMs`, 500
 *   by default, here 100: a short while but not none, so that code which
 *   forgets to wait for ACTIVE fails here as it would on AWS.
 * - ARNs carry AWS_REGION and AWS_ACCOUNT_ID of its process: here the
 *   clients' region and the account ElasticMQ uses.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Engine,
  EngineError,
  type EngineOptions,
  existingEndpoint,
  LOCAL_ACCOUNT_ID,
  localRegion,
} from './engine';
import { answersAwsJson, freePort, startEngineProcess } from './process-group';

/** The options kinesalite starts with (see the header for each one's reason). */
export const KINESALITE_OPTIONS = {
  shardLimit: 500,
  createStreamMs: 100,
  deleteStreamMs: 100,
  updateStreamMs: 100,
};

const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'kinesalite-server.mjs');

function resolveKinesalite(): { modulePath: string; version: string } {
  const require = createRequire(import.meta.url);
  try {
    const modulePath = require.resolve('kinesalite');
    const { version } = JSON.parse(readFileSync(require.resolve('kinesalite/package.json'), 'utf8')) as {
      version: string;
    };
    return { modulePath, version };
  } catch (error) {
    throw new EngineError(
      'kinesalite (the local Kinesis engine, a devDependency) is not installed: run `npm install`',
      { cause: error },
    );
  }
}

/** Starts kinesalite (in memory) on a free loopback port. */
export async function startKinesalite(options: EngineOptions = {}): Promise<Engine> {
  const log = options.log ?? (() => {});
  const { modulePath, version } = resolveKinesalite();
  const port = await freePort();
  const workDir = mkdtempSync(join(tmpdir(), 'ddb2os-kinesalite-'));
  const url = `http://127.0.0.1:${port}`;
  const engine = await startEngineProcess({
    name: 'kinesalite',
    version,
    url,
    command: process.execPath,
    args: [SERVER_SCRIPT, modulePath, String(port), JSON.stringify(KINESALITE_OPTIONS)],
    env: { ...process.env, AWS_REGION: localRegion(), AWS_ACCOUNT_ID: LOCAL_ACCOUNT_ID },
    workDir,
    ready: () => answersAwsJson(url, 'Kinesis_20131202.ListStreams', 'application/x-amz-json-1.1'),
    timeoutMs: 60_000,
  });
  log(`kinesalite ${version} on ${url}`);
  return engine;
}

/** An existing Kinesis endpoint (KINESIS_ENDPOINT), used as it is. */
export function existingKinesis(url: string): Engine {
  return existingEndpoint('Kinesis (external)', url);
}
