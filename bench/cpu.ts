/**
 * CPU time of the engines, from /proc: where a phase's time goes on a machine
 * whose cores the engines and the benchmark share. An engine runs in its own
 * process group (local/engines/process-group.ts), so its CPU is the sum over that group.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of every live process in process group `pgid` (0 off Linux). */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const fields of groupStats(pgid)) ticks += Number(fields[11]) + Number(fields[12]);
  return ticks / TICKS_PER_SECOND;
}

/**
 * Seconds the threads of every live process in process group `pgid` spent
 * ready to run while another thread held their CPU (the run queue: the
 * second field of /proc/<pid>/task/<tid>/schedstat; 0 off Linux or without
 * schedstats). Threads waiting at once add up, so it can exceed the wall
 * time. It tells whether an engine's CPU per document was measured while its
 * CPUs were shared: the same work costs a JVM more CPU when other processes
 * run on its CPU between its threads (docs/benchmarks.md).
 */
export function groupRunQueueSeconds(pgid: number): number {
  let seconds = 0;
  for (const waited of groupRunQueueByThread(pgid).values()) seconds += waited;
  return seconds;
}

/** The run-queue seconds of each live thread of process group `pgid`, by `pid/tid`. */
function groupRunQueueByThread(pgid: number): Map<string, number> {
  const threads = new Map<string, number>();
  for (const fields of groupStats(pgid)) {
    const pid = fields.pid;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const task of tasks) {
      try {
        const nanoseconds = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[1]);
        threads.set(`${pid}/${task}`, (nanoseconds || 0) / 1e9);
      } catch {
        // the thread ended meanwhile, or the kernel keeps no schedstats
      }
    }
  }
  return threads;
}

/** The stat fields of every live process in process group `pgid`, with its pid (none off Linux). */
function groupStats(pgid: number): (string[] & { pid: string })[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: (string[] & { pid: string })[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined || Number(fields[2]) !== pgid) continue;
    members.push(Object.assign(fields, { pid: entry }));
  }
  return members;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * The process groups of the engines listening at the two URLs, each
 * undefined when it cannot be told apart: two engines started in one group
 * (a script without job control), or an engine in the benchmark's own group,
 * would count each other's CPU, or the benchmark's, as their own.
 */
export function engineProcessGroups(
  dynamodbUrl: string,
  opensearchUrl: string,
): { dynamodb?: number; opensearch?: number } {
  const dynamodb = listenerProcessGroup(dynamodbUrl);
  const opensearch = listenerProcessGroup(opensearchUrl);
  const own = Number(statFields('self')?.[2]);
  const apart = (pgid: number | undefined, other: number | undefined) =>
    pgid !== undefined && pgid !== other && pgid !== own ? pgid : undefined;
  return { dynamodb: apart(dynamodb, opensearch), opensearch: apart(opensearch, dynamodb) };
}

/**
 * The process group of the process that listens on `url`'s port on this
 * machine (from /proc/net/tcp*, the socket's inode, and the processes' open
 * files), or undefined (another machine, another PID namespace, or no
 * access). It lets the benchmark read the CPU of engines it did not start:
 * their whole processes, so whatever else uses them at the time counts too.
 */
export function listenerProcessGroup(url: string): number | undefined {
  let port: number;
  try {
    const parsed = new URL(url);
    if (!['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname)) return undefined;
    port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  } catch {
    return undefined;
  }
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      // sl local_address rem_address st … inode: st 0A is LISTEN.
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(portHex) && fields[3] === '0A' && fields[9])
        inodes.add(`socket:[${fields[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (inodes.has(target)) {
        const pgid = Number(statFields(pid)?.[2]);
        return Number.isInteger(pgid) && pgid > 0 ? pgid : undefined;
      }
    }
  }
  return undefined;
}

/** CPU seconds of this process (user + system). */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** CPU seconds each part spent during one phase. */
export interface CpuShare {
  dynamodb?: number;
  opensearch?: number;
  /** The Node.js process that did the phase's work (the benchmark, or the backfill's child). */
  node: number;
}

/** Seconds each engine spent on something during one phase (undefined: its process is unknown). */
export type EngineSeconds = Omit<CpuShare, 'node'>;

/** Reads a per-process-group counter of each engine before a phase and returns the difference after it. */
function engineMeter(
  pids: { dynamodb?: number; opensearch?: number },
  counter: (pgid: number) => number,
): () => EngineSeconds {
  const read = () => ({
    dynamodb: pids.dynamodb === undefined ? undefined : counter(pids.dynamodb),
    opensearch: pids.opensearch === undefined ? undefined : counter(pids.opensearch),
  });
  const before = read();
  return () => {
    const after = read();
    return {
      ...(after.dynamodb === undefined ? {} : { dynamodb: after.dynamodb - (before.dynamodb ?? 0) }),
      ...(after.opensearch === undefined ? {} : { opensearch: after.opensearch - (before.opensearch ?? 0) }),
    };
  };
}

/** Reads the engines' CPU counters before a phase and returns the difference after it. */
export function cpuMeter(pids: { dynamodb?: number; opensearch?: number }): () => EngineSeconds {
  return engineMeter(pids, groupCpuSeconds);
}

/**
 * Reads the engines' run-queue waits before a phase and returns what they
 * waited during it, thread by thread: a thread's counter only grows, but a
 * thread that ends takes its count with it (a JVM ends pool threads all the
 * time), so a difference of group sums could fall below zero. A thread that
 * ended during the phase counts for nothing: the figure is a lower bound.
 */
export function runQueueMeter(pids: { dynamodb?: number; opensearch?: number }): () => EngineSeconds {
  const read = (pid?: number) => (pid === undefined ? undefined : groupRunQueueByThread(pid));
  const before = { dynamodb: read(pids.dynamodb), opensearch: read(pids.opensearch) };
  const waited = (start: Map<string, number> | undefined, end: Map<string, number> | undefined) => {
    if (end === undefined) return undefined;
    let seconds = 0;
    for (const [thread, value] of end) seconds += Math.max(0, value - (start?.get(thread) ?? 0));
    return seconds;
  };
  return () => {
    const dynamodb = waited(before.dynamodb, read(pids.dynamodb));
    const opensearch = waited(before.opensearch, read(pids.opensearch));
    return {
      ...(dynamodb === undefined ? {} : { dynamodb }),
      ...(opensearch === undefined ? {} : { opensearch }),
    };
  };
}

/**
 * Where each engine runs. `split`: DynamoDB Local on the first half of the
 * CPUs, OpenSearch on the second half, as the two services run on machines of
 * their own in AWS; Node.js (the benchmark and the backfill) is not pinned.
 * `shared`: all three share every CPU.
 */
export type CpuLayout = 'split' | 'shared';

/** The CPU lists of a split layout on `cpus` CPUs (at least 2). */
export function splitCpus(cpus: number): { dynamodb: string; opensearch: string } {
  const half = Math.max(1, Math.floor(cpus / 2));
  const list = (from: number, to: number) => (to - from === 1 ? `${from}` : `${from}-${to - 1}`);
  return { dynamodb: list(0, half), opensearch: list(half, cpus) };
}

/** taskset (util-linux) can pin processes here. */
export function canPin(): boolean {
  return spawnSync('taskset', ['--version'], { encoding: 'utf8' }).status === 0;
}
