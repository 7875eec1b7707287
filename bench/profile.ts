/**
 * Where the backfill's Node.js CPU goes: the self time of a V8 CPU profile
 * (taken around the backfill alone, `.cpuprofile` format) split into the parts the issue
 * asks about. V8 attributes a builtin such as JSON.parse to the function that
 * called it, so a part is named by the code that does the work:
 *
 * - json: reading DynamoDB's answers (`pipeline/table/sdk-json.ts`, which
 *   parses the Scan page with JSON.parse and decodes it in place) and writing
 *   a document as JSON (`encodeDocument`);
 * - mapping: an item becoming a document (`pipeline/mapping/`, exact numbers
 *   included) and its bulk action line;
 * - http: sockets, streams and the two clients' transport code (Node's
 *   http, net and stream modules and their native socket writes, the AWS
 *   SDK's and OpenSearch's clients);
 * - gc: V8's garbage collector;
 * - pipeline: the rest of ddb2os's code (scan loop, bulk writer,
 *   checkpoints, the local runner);
 * - workflow: the local Step Functions interpreter (aws-local-stepfunctions
 *   and the JSON schemas it compiles), which a deployment does not run;
 * - other: everything else (V8's own work, timers, microtasks).
 *
 * Idle time (waiting for the engines) is counted apart; shares are of the
 * busy time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

/** The parts of a profile, in the order they are printed. */
export const PROFILE_PARTS = ['mapping', 'json', 'http', 'gc', 'pipeline', 'workflow', 'other'] as const;
export type ProfilePart = (typeof PROFILE_PARTS)[number];

/** A V8 CPU profile as `--cpu-prof` writes it (only what the split reads). */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  /** Microseconds since the previous sample, one per sample. */
  timeDeltas: number[];
}

export interface ProfileSplit {
  /** Milliseconds of self time per part. */
  busyMs: Record<ProfilePart, number>;
  idleMs: number;
  /** Each part's share of the busy time, in percent (rounded). */
  sharePercent: Record<ProfilePart, number>;
}

/** Native frames (no URL) of socket writes and of decoding an answer's bytes to text. */
const NATIVE_HTTP = new Set([
  'writev',
  'writeBuffer',
  'writeUtf8String',
  'writeLatin1String',
  'connect',
  'shutdown',
]);
const NATIVE_JSON = new Set(['decode']);

/** The part a call frame's self time belongs to. */
export function profilePart(functionName: string, url: string): ProfilePart | 'idle' {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (url === '' && NATIVE_HTTP.has(functionName)) return 'http';
  if (url === '' && NATIVE_JSON.has(functionName)) return 'json';
  if (url.includes('/pipeline/table/sdk-json.') || functionName === 'encodeDocument') return 'json';
  if (url.includes('/pipeline/mapping/') || functionName === 'bulkLine' || functionName === 'bulkCreateLine')
    return 'mapping';
  if (
    /^node:(_http_|https?$|net$|tls$|_tls_|stream|zlib|dns|internal\/(streams|stream_base_commons|http|net|tls|dns))/.test(
      url,
    ) ||
    /\/node_modules\/(@smithy|@aws-sdk|@opensearch-project|undici|hpagent)\//.test(url)
  )
    return 'http';
  if (/\/node_modules\/(aws-local-stepfunctions|ajv|fast-uri|jsonpath-plus)\//.test(url)) return 'workflow';
  if (/\/(pipeline|local|handlers|bench)\//.test(url) && !url.includes('/node_modules/')) return 'pipeline';
  return 'other';
}

/** Self time per part of one profile. */
export function splitProfile(profile: CpuProfile): ProfileSplit {
  const partOf = new Map<number, ProfilePart | 'idle'>();
  for (const node of profile.nodes) {
    partOf.set(node.id, profilePart(node.callFrame.functionName, node.callFrame.url));
  }
  const busyUs = Object.fromEntries(PROFILE_PARTS.map((part) => [part, 0])) as Record<ProfilePart, number>;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    const part = partOf.get(id) ?? 'other';
    // A sample's delta is the time since the previous one: the time this sample stands for.
    const delta = profile.timeDeltas[i] ?? 0;
    if (part === 'idle') idleUs += delta;
    else busyUs[part] += delta;
  });
  const busyTotal = PROFILE_PARTS.reduce((sum, part) => sum + busyUs[part], 0);
  const toMs = (us: number) => Math.round(us / 100) / 10;
  return {
    busyMs: Object.fromEntries(PROFILE_PARTS.map((part) => [part, toMs(busyUs[part])])) as Record<
      ProfilePart,
      number
    >,
    idleMs: toMs(idleUs),
    sharePercent: Object.fromEntries(
      PROFILE_PARTS.map((part) => [part, busyTotal > 0 ? Math.round((busyUs[part] / busyTotal) * 100) : 0]),
    ) as Record<ProfilePart, number>,
  };
}

/** The split of the one `.cpuprofile` file in `dir` (the backfill child writes one). */
export function splitProfileIn(dir: string): ProfileSplit {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile file in ${dir}`);
  return splitProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile);
}

/**
 * Runs `work` under V8's CPU profiler (the inspector's, in this process) and
 * returns the profile of that work alone: unlike `node --cpu-prof`, the
 * process's start (module loading, compiling TypeScript) is not in it.
 */
export async function profileWhile<T>(work: () => Promise<T>): Promise<{ result: T; profile: CpuProfile }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const outcome = await work().then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    // Stopped whatever the work's outcome, so a failed backfill leaves no profiler running.
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.result, profile };
  } finally {
    session.disconnect();
  }
}
