/**
 * CPU time of the engines, from /proc: where a phase's time goes on a machine
 * whose cores the engines and the benchmark share. An engine runs in its own
 * process group (local/engines/process-group.ts), so its CPU is the sum over that group.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of every live process in process group `pgid` (0 off Linux). */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
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

/** Reads the engines' CPU counters before a phase and returns the difference after it. */
export function cpuMeter(pids: { dynamodb?: number; opensearch?: number }): () => Omit<CpuShare, 'node'> {
  const read = () => ({
    dynamodb: pids.dynamodb === undefined ? undefined : groupCpuSeconds(pids.dynamodb),
    opensearch: pids.opensearch === undefined ? undefined : groupCpuSeconds(pids.opensearch),
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
