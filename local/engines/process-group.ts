/**
 * Engine processes. Every engine runs in its own process group, and a small
 * watchdog shell kills that group as soon as the parent process is gone, so a
 * crash of the parent (even SIGKILL) leaves no Java process behind.
 * (PR_SET_PDEATHSIG does not survive the uid change we need for OpenSearch,
 * so it is not used.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type Engine, EngineError } from './engine';

/** `command args` as is, or started on `cpuList` through taskset. */
export function onCpus(cpuList: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpuList ? ['taskset', ['--cpu-list', cpuList, command, ...args]] : [command, args];
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
export function spawnEngine(
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

/** Resolves once `probe` answers true; rejects with the engine's last output when it exits or times out. */
export async function waitUntil(
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

/**
 * Starts an engine's process in `workDir` (a folder made for it) and
 * resolves once `ready` answers true. The engine's `stop()` ends the process
 * group and removes the folder; a start that fails leaves neither behind.
 */
export async function startEngineProcess(engine: {
  name: Engine['name'];
  version: string;
  url: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  workDir: string;
  ready: () => Promise<boolean>;
  timeoutMs: number;
}): Promise<Engine> {
  const started = spawnEngine(engine.command, engine.args, {
    cwd: engine.workDir,
    env: engine.env,
    logFile: join(engine.workDir, 'engine.log'),
  });
  const stop = async (signal?: NodeJS.Signals) => {
    await started.stop(signal);
    rmSync(engine.workDir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      `${engine.name} ${engine.version}`,
      engine.ready,
      started.child,
      started.output,
      engine.timeoutMs,
    );
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  return {
    name: engine.name,
    url: engine.url,
    version: engine.version,
    external: false,
    pid: started.child.pid,
    stop: () => stop(),
  };
}

/**
 * One call to a local engine that speaks an AWS JSON protocol (`target`,
 * e.g. `DynamoDB_20120810.ListTables`). The local engines check no
 * signature, but kinesalite refuses a request without an Authorization
 * header and a date.
 */
export async function awsJsonRequest(
  url: string,
  target: string,
  contentType: string,
  input: unknown = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-amz-target': target,
      'x-amz-date': '20200101T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/local/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(input),
    signal: AbortSignal.timeout(5_000),
  });
}

/** Readiness probe: true once a harmless call (`target`) answers 200. */
export async function answersAwsJson(url: string, target: string, contentType: string): Promise<boolean> {
  const response = await awsJsonRequest(url, target, contentType);
  await response.body?.cancel();
  return response.ok;
}
