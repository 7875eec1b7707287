/**
 * The real local engines: DynamoDB Local and OpenSearch, fetched with Maven
 * (engines/pom.xml), cached outside the work tree, started on free loopback
 * ports and stopped cleanly. Tests, the CLI and the benchmarks all use this
 * module. `DYNAMODB_ENDPOINT` and `OPENSEARCH_URL` replace the started engines
 * with existing ones.
 *
 * Orphans: every engine runs in its own process group, and a small watchdog
 * shell kills that group as soon as the parent process is gone, so a crash of
 * the parent (even SIGKILL) leaves no Java process behind. (PR_SET_PDEATHSIG
 * does not survive the uid change we need for OpenSearch, so it is not used.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const POM = join(REPO_ROOT, 'engines', 'pom.xml');
/** OpenSearch refuses to run as root; this is the unprivileged user it runs as then. */
const UNPRIVILEGED_UID = 65534;
const UNPRIVILEGED_GID = 65534;
const DYNAMODB_MAIN_CLASS = 'software.amazon.dynamodb.services.local.main.ServerRunner';

export class EngineError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
  }
}

/** A running engine, or an existing endpoint named by an environment variable. */
export interface Engine {
  name: 'DynamoDB Local' | 'OpenSearch' | 'DynamoDB' | 'OpenSearch (external)';
  url: string;
  /** Version as the engine reports it, or `external` when it is not known. */
  version: string;
  /** True when the endpoint came from DYNAMODB_ENDPOINT / OPENSEARCH_URL and was not started here. */
  external: boolean;
  /** Process id of the engine's JVM (and process group), when started here (it changes on a restart). */
  pid?: number;
  stop(): Promise<void>;
  /**
   * Stops the engine's process (a real stop: SIGTERM, or SIGKILL for a crash)
   * but keeps its data folder and port, so that `startAgain()` brings the
   * same engine back with the same data. Only on an engine started here
   * (OpenSearch); for fault injection in tests.
   */
  stopProcess?(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Starts the process that `stopProcess()` stopped, on the same port and data; resolves once it is healthy. */
  startAgain?(): Promise<void>;
  /** `stopProcess()`, an optional pause with the engine down, then `startAgain()`. */
  restart?(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downForMs?: number }): Promise<void>;
}

export interface Engines {
  dynamodb: Engine;
  opensearch: Engine;
  /** One line a person can read: which engines, which versions, where. */
  describe(): string;
  stop(): Promise<void>;
}

export interface EngineOptions {
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
  /** OpenSearch JVM heap, e.g. `1g` (default: DDB2OS_OPENSEARCH_HEAP or 1g). */
  openSearchHeap?: string;
  /** Ignore DYNAMODB_ENDPOINT / OPENSEARCH_URL and start both engines. */
  ignoreEnvironment?: boolean;
  /**
   * CPUs each engine is started on (taskset syntax, `0` or `2-3`). An engine
   * started on its CPUs sizes its garbage collector and thread pools to them;
   * one pinned after it started keeps those it sized for every CPU.
   */
  cpus?: { dynamodb?: string; opensearch?: string };
}

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

/** `command args` as is, or started on `cpuList` through taskset. */
function onCpus(cpuList: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpuList ? ['taskset', ['--cpu-list', cpuList, command, ...args]] : [command, args];
}

/** Cache folder for the unpacked engines: outside the work tree, readable by the unprivileged user. */
export function cacheDir(): string {
  if (process.env.DDB2OS_CACHE_DIR) return resolve(process.env.DDB2OS_CACHE_DIR);
  // root's home is usually 0700, and OpenSearch runs as nobody: use a shared cache.
  if (process.getuid?.() === 0) return '/var/cache/ddb2os';
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ddb2os');
}

function pomVersion(property: string): string {
  const match = readFileSync(POM, 'utf8').match(new RegExp(`<${property}>([^<]+)</${property}>`));
  if (!match?.[1]) throw new EngineError(`engines/pom.xml has no <${property}>`);
  return match[1];
}

export interface EngineArtifacts {
  dynamoDbLocalVersion: string;
  openSearchVersion: string;
  /** Folder with DynamoDBLocal's jars and its sqlite4java native libraries. */
  dynamoDbLocalDir: string;
  /** Unpacked OpenSearch distribution. */
  openSearchHome: string;
}

/**
 * Fetches both engines with Maven (once) and unpacks OpenSearch (once).
 * A second call finds the marker files and does nothing.
 */
export function fetchEngines(log: (line: string) => void = () => {}): EngineArtifacts {
  const dynamoDbLocalVersion = pomVersion('dynamodb-local.version');
  const openSearchVersion = pomVersion('opensearch.version');
  const root = cacheDir();
  const stage = join(root, `artifacts-ddb${dynamoDbLocalVersion}-os${openSearchVersion}`);
  const openSearchHome = join(root, `opensearch-${openSearchVersion}`);
  const artifacts = { dynamoDbLocalVersion, openSearchVersion, dynamoDbLocalDir: stage, openSearchHome };

  if (existsSync(join(stage, '.complete')) && existsSync(join(openSearchHome, '.complete'))) return artifacts;

  mkdirSync(root, { recursive: true, mode: 0o755 });
  if (!existsSync(join(stage, '.complete'))) {
    log(`fetching DynamoDB Local ${dynamoDbLocalVersion} and OpenSearch ${openSearchVersion} with Maven…`);
    rmSync(stage, { recursive: true, force: true });
    try {
      execFileSync(
        'mvn',
        [
          '-q',
          '-B',
          '-f',
          POM,
          'dependency:copy-dependencies',
          `-DoutputDirectory=${stage}`,
          '-Dmdep.includeScope=runtime',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 },
      );
    } catch (error) {
      const output = (error as { stdout?: Buffer; stderr?: Buffer }).stdout?.toString() ?? '';
      throw new EngineError(
        `Maven could not fetch the engines (is mvn installed and Maven Central reachable?): ${output.slice(-2000)}`,
        { cause: error },
      );
    }
    writeFileSync(join(stage, '.complete'), new Date().toISOString());
  }
  if (!existsSync(join(openSearchHome, '.complete'))) {
    log(`unpacking OpenSearch ${openSearchVersion} into ${openSearchHome}…`);
    const zip = join(stage, `opensearch-${openSearchVersion}.zip`);
    if (!existsSync(zip)) throw new EngineError(`${zip} is missing after the Maven fetch`);
    const unpack = mkdtempSync(join(root, '.unpack-'));
    try {
      if (hasCommand('unzip')) execFileSync('unzip', ['-q', zip, '-d', unpack]);
      else execFileSync('jar', ['xf', zip], { cwd: unpack });
      rmSync(openSearchHome, { recursive: true, force: true });
      cpSync(join(unpack, `opensearch-${openSearchVersion}`), openSearchHome, { recursive: true });
    } finally {
      rmSync(unpack, { recursive: true, force: true });
    }
    for (const script of readdirSync(join(openSearchHome, 'bin'))) {
      execFileSync('chmod', ['0755', join(openSearchHome, 'bin', script)]);
    }
    execFileSync('chmod', ['-R', 'a+rX', openSearchHome]);
    writeFileSync(join(openSearchHome, '.complete'), new Date().toISOString());
  }
  return artifacts;
}

function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function javaHome(): string {
  if (process.env.JAVA_HOME && existsSync(join(process.env.JAVA_HOME, 'bin', 'java')))
    return process.env.JAVA_HOME;
  try {
    const java = execFileSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).trim();
    return dirname(dirname(realpathSync(java)));
  } catch (error) {
    throw new EngineError('Java 17 or newer is needed to run the local engines, and no `java` is on PATH', {
      cause: error,
    });
  }
}

/** A free TCP port on loopback (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new EngineError('could not pick a free port');
  return address.port;
}

/** Processes this module started and has not stopped yet: killed on exit whatever happens. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Starts `command` in its own process group, with a watchdog that kills the
 * group when this process dies, and returns the child plus a stop function.
 */
function spawnEngine(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
): { child: ChildProcess; stop: (signal?: NodeJS.Signals) => Promise<void>; output: () => string } {
  const chunks: string[] = [];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (data: Buffer) => {
    chunks.push(data.toString());
    if (chunks.length > 400) chunks.splice(0, chunks.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  running.add(child);
  const watchdog = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 -${child.pid} 2>/dev/null`,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  let exited = child.exitCode !== null;
  const exitPromise = once(child, 'exit').then(() => {
    exited = true;
    running.delete(child);
  });
  // The engines must not keep the parent alive: streams and handle are unref'd.
  child.unref();
  (child.stdout as unknown as { unref?: () => void })?.unref?.();
  (child.stderr as unknown as { unref?: () => void })?.unref?.();
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!exited) {
      killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
      await exitPromise;
      clearTimeout(timer);
    }
    killGroup(child, 'SIGKILL'); // anything the group forked
    try {
      if (watchdog.pid) process.kill(-watchdog.pid, 'SIGKILL');
    } catch {
      // The watchdog ends by itself once the child is gone.
    }
    writeFileSync(options.logFile, chunks.join(''));
  };
  return { child, stop, output: () => chunks.join('') };
}

async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  child: ChildProcess,
  output: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EngineError(
        `${what} exited during start-up (code ${child.exitCode}):\n${output().slice(-3000)}`,
      );
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new EngineError(
    `${what} did not become healthy within ${timeoutMs / 1000} s:\n${output().slice(-3000)}`,
  );
}

async function httpOk(url: string, init?: RequestInit): Promise<Response | undefined> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  return response.ok ? response : undefined;
}

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
  const engine = spawnEngine(command, args, {
    cwd: workDir,
    env: process.env,
    logFile: join(workDir, 'dynamodb-local.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    `DynamoDB Local ${artifacts.dynamoDbLocalVersion}`,
    async () => {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.ListTables',
          authorization:
            'AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
        },
        body: '{}',
        signal: AbortSignal.timeout(5_000),
      });
      return response.ok;
    },
    engine.child,
    engine.output,
    120_000,
  );
  log(`DynamoDB Local ${artifacts.dynamoDbLocalVersion} on ${url}`);
  return {
    name: 'DynamoDB Local',
    url,
    version: artifacts.dynamoDbLocalVersion,
    external: false,
    pid: engine.child.pid,
    stop: async () => {
      await engine.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
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
async function existingOpenSearch(url: string): Promise<Engine> {
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

function existingDynamoDb(url: string): Engine {
  return {
    name: 'DynamoDB',
    url: url.replace(/\/+$/, ''),
    version: 'external',
    external: true,
    stop: async () => {},
  };
}

/**
 * Starts whatever the environment does not already provide: DynamoDB Local
 * unless DYNAMODB_ENDPOINT is set, OpenSearch unless OPENSEARCH_URL is set.
 * The two start side by side.
 */
export async function startEngines(options: EngineOptions = {}): Promise<Engines> {
  const dynamoEnv = options.ignoreEnvironment ? undefined : process.env.DYNAMODB_ENDPOINT;
  const openSearchEnv = options.ignoreEnvironment ? undefined : process.env.OPENSEARCH_URL;
  if (!dynamoEnv || !openSearchEnv) fetchEngines(options.log);
  const results = await Promise.allSettled([
    dynamoEnv ? Promise.resolve(existingDynamoDb(dynamoEnv)) : startDynamoDbLocal(options),
    openSearchEnv ? existingOpenSearch(openSearchEnv) : startOpenSearch(options),
  ]);
  const [dynamoResult, openSearchResult] = results as [
    PromiseSettledResult<Engine>,
    PromiseSettledResult<Engine>,
  ];
  if (dynamoResult.status === 'rejected' || openSearchResult.status === 'rejected') {
    for (const result of results) if (result.status === 'fulfilled') await result.value.stop();
    const failure = (
      dynamoResult.status === 'rejected' ? dynamoResult : openSearchResult
    ) as PromiseRejectedResult;
    throw failure.reason;
  }
  const dynamodb = dynamoResult.value;
  const opensearch = openSearchResult.value;
  return {
    dynamodb,
    opensearch,
    describe: () =>
      `${dynamodb.name} ${dynamodb.version} at ${dynamodb.url}; ${opensearch.name} ${opensearch.version} at ${opensearch.url}`,
    stop: async () => {
      await Promise.all([dynamodb.stop(), opensearch.stop()]);
    },
  };
}
