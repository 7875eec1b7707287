/**
 * A single-node OpenSearch on free loopback ports (as an unprivileged user
 * when we are root), that tests can stop and start again on the same data,
 * or an existing OpenSearch endpoint.
 */
import {
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Engine, EngineError, type EngineOptions } from './engine';
import { fetchEngines, javaHome } from './fetch';
import { freePort, onCpus, spawnEngine, waitUntil } from './process-group';

/** OpenSearch refuses to run as root; this is the unprivileged user it runs as then. */
const UNPRIVILEGED_UID = 65534;
const UNPRIVILEGED_GID = 65534;

async function httpOk(url: string, init?: RequestInit): Promise<Response | undefined> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  return response.ok ? response : undefined;
}

/** Starts a single-node OpenSearch on free loopback ports, as an unprivileged user when we are root. */
export async function startOpenSearch(options: EngineOptions = {}): Promise<Engine> {
  const log = options.log ?? (() => {});
  const artifacts = fetchEngines(log);
  const [httpPort, transportPort] = [await freePort(), await freePort()];
  const runDir = mkdtempSync(join(tmpdir(), 'ddb2os-opensearch-'));
  const configDir = join(runDir, 'config');
  cpSync(join(artifacts.openSearchHome, 'config'), configDir, { recursive: true });
  mkdirSync(join(runDir, 'data'));
  mkdirSync(join(runDir, 'logs'));
  // The launcher changes into the install folder, so relative paths in jvm.options would point into the
  // shared (read-only) cache: send GC logs, error files and heap dumps to this run's folder instead.
  const jvmOptionsFile = join(configDir, 'jvm.options');
  writeFileSync(
    jvmOptionsFile,
    readFileSync(jvmOptionsFile, 'utf8')
      .replaceAll('file=logs/gc.log', `file=${runDir}/logs/gc.log`)
      .replaceAll('HeapDumpPath=data', `HeapDumpPath=${runDir}/data`)
      .replaceAll('ErrorFile=logs/', `ErrorFile=${runDir}/logs/`),
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownTree(runDir, UNPRIVILEGED_UID, UNPRIVILEGED_GID);
  const heap = options.openSearchHeap ?? process.env.DDB2OS_OPENSEARCH_HEAP ?? '1g';
  const launcher = join(artifacts.openSearchHome, 'bin', 'opensearch');
  const settings = [
    'discovery.type=single-node',
    'http.host=127.0.0.1',
    'transport.host=127.0.0.1',
    `http.port=${httpPort}`,
    `transport.port=${transportPort}`,
    `path.data=${runDir}/data`,
    `path.logs=${runDir}/logs`,
    // A nearly full shared disk must not turn the test indices read-only.
    'cluster.routing.allocation.disk.threshold_enabled=false',
    'node.name=ddb2os-local',
  ].map((setting) => `-E${setting}`);
  const env = {
    ...process.env,
    OPENSEARCH_JAVA_HOME: javaHome(),
    OPENSEARCH_PATH_CONF: configDir,
    OPENSEARCH_JAVA_OPTS: `-Xms${heap} -Xmx${heap}`,
  };
  const [program, programArgs]: [string, string[]] = asRoot
    ? [
        'setpriv',
        [
          `--reuid=${UNPRIVILEGED_UID}`,
          `--regid=${UNPRIVILEGED_GID}`,
          '--clear-groups',
          '--',
          launcher,
          ...settings,
        ],
      ]
    : [launcher, settings];
  const [command, args] = onCpus(options.cpus?.opensearch, program, programArgs);
  const url = `http://127.0.0.1:${httpPort}`;
  // One launch of the process; stopProcess/startAgain launch it again on the same port and data folder.
  const launch = async () => {
    const engine = spawnEngine(command as string, args as string[], {
      cwd: runDir,
      env,
      logFile: join(tmpdir(), `ddb2os-opensearch-${httpPort}.log`),
    });
    try {
      await waitUntil(
        `OpenSearch ${artifacts.openSearchVersion}`,
        async () => (await httpOk(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`)) !== undefined,
        engine.child,
        engine.output,
        180_000,
      );
    } catch (error) {
      await engine.stop('SIGKILL');
      throw error;
    }
    return engine;
  };
  let current: Awaited<ReturnType<typeof launch>> | undefined = await launch();
  const version = await openSearchVersion(url);
  log(`OpenSearch ${version} on ${url}`);
  const stopProcess = async (options: { signal?: 'SIGTERM' | 'SIGKILL' } = {}) => {
    const engine = current;
    current = undefined;
    await engine?.stop(options.signal ?? 'SIGTERM');
  };
  const startAgain = async () => {
    if (current) return;
    current = await launch();
    log(`OpenSearch ${version} on ${url} (started again)`);
  };
  return {
    name: 'OpenSearch',
    url,
    version,
    external: false,
    get pid() {
      return current?.child.pid;
    },
    stop: async () => {
      await stopProcess();
      rmSync(runDir, { recursive: true, force: true });
    },
    stopProcess,
    startAgain,
    restart: async (options = {}) => {
      await stopProcess(options);
      if (options.downForMs) await new Promise((resolve) => setTimeout(resolve, options.downForMs));
      await startAgain();
    },
  };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
  }
}

async function openSearchVersion(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new EngineError(`OpenSearch at ${url} answered ${response.status}`);
  const body = (await response.json()) as { version?: { number?: string; distribution?: string } };
  return body.version?.number ?? 'unknown';
}

/** Checks that an existing OpenSearch endpoint answers, and reads its version. */
export async function existingOpenSearch(url: string): Promise<Engine> {
  const clean = url.replace(/\/+$/, '');
  let version: string;
  try {
    version = await openSearchVersion(clean);
  } catch (error) {
    throw new EngineError(`OPENSEARCH_URL=${url} does not answer: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { name: 'OpenSearch (external)', url: clean, version, external: true, stop: async () => {} };
}
