/**
 * Reliability case 3: the worker process killed in the middle of a segment.
 * `ddb2os run` runs as a child process (node bin/ddb2os.mjs run …) against
 * the real engines; when its stderr progress shows items indexed but no
 * segment finished, it gets SIGKILL: no handler runs, no checkpoint is
 * written on the way out. The same command run again must resume from the
 * checkpoints: no gap, no item counted twice, and exactly the documents
 * written after the last checkpoint found already present.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@opensearch-project/opensearch';
import { afterAll, describe, expect, it } from 'vitest';
import { SegmentCheckpointStore } from '../../pipeline/progress/checkpoint';
import type { RunSummary } from '../../pipeline/summarize/summarize-run';
import { localRunArgs, useEngines } from '../support/engines';
import { expectClean, indexCount, recordFigures, secondsSince, seededTable, verify } from './support';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ITEMS = 4_000;
const SEGMENTS = 2;

interface ChildRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/ddb2os.mjs …` as a user would start it, with its output collected as it comes. */
function ddb2os(args: string[], onStderr: (text: string) => void = () => {}): ChildRun {
  const child = spawn(process.execPath, ['bin/ddb2os.mjs', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    onStderr(err);
  });
  const exit = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Waits until OpenSearch runs no bulk request that touches `index` (its task descriptions name the indices). */
async function bulksSettled(opensearch: Client, index: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let quiet = 0; quiet < 2 && Date.now() < deadline; ) {
    const { body } = await opensearch.tasks.list({ actions: 'indices:data/write/bulk*', detailed: true });
    const running = Object.values(
      (body as { nodes?: Record<string, { tasks?: Record<string, { description?: string }> }> }).nodes ?? {},
    ).flatMap((node) => Object.values(node.tasks ?? {}));
    quiet = running.some((task) => task.description?.includes(index)) ? 0 : quiet + 1;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('reliability: the worker process killed in the middle of a segment', () => {
  const engines = useEngines();
  const { dynamodb, opensearch } = engines;
  const progressTable = engines.tableName('rel-progress');
  const deadLetterDir = engines.tempDir('reliability');
  const cleanup: { children: ChildProcess[] } = { children: [] };

  afterAll(() => {
    for (const child of cleanup.children) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('resumes from the checkpoints after SIGKILL: every item once, no gap, verify clean', async () => {
    // Prepare: segments of several pages, paced by a read budget so that one takes several seconds.
    const table = engines.deleteTableAfter(await seededTable(dynamodb, 'rel-killed', ITEMS));
    const index = engines.indexName('rel-killed');
    const args = [
      ...localRunArgs({ table, index, progressTable, deadLetterDir }),
      '--segments',
      String(SEGMENTS),
      '--concurrency',
      String(SEGMENTS),
      '--read-units-per-second',
      '30',
    ];

    // Act: kill the run once its progress line shows items indexed and no segment done.
    const started = Date.now();
    let killedAt: string | undefined;
    const first = ddb2os(args, (stderr) => {
      const progress = [...stderr.matchAll(/segments (\d+)\/(\d+)\s+items ([\d,]+)/g)].at(-1);
      if (killedAt || !progress) return;
      const [line, done, , items] = progress;
      if (Number(done) === 0 && Number((items as string).replaceAll(',', '')) > 0) {
        killedAt = line;
        first.child.kill('SIGKILL');
      }
    });
    cleanup.children.push(first.child);
    const firstExit = await first.exit;
    const killSeconds = secondsSince(started);
    const runId = /(?:starting|resuming) run (\S+):/.exec(first.stderr())?.[1];
    // Bulk requests that OpenSearch had received whole still finish after the kill: count once they have.
    await bulksSettled(opensearch, index);
    const checkpoints = await new SegmentCheckpointStore(dynamodb, progressTable).listCheckpoints(
      runId ?? '',
    );
    const checkpointed = checkpoints.reduce((sum, checkpoint) => sum + checkpoint.counts.created, 0);
    const documentsAtKill = await indexCount(opensearch, index);

    const second = ddb2os([...args, '--json']);
    cleanup.children.push(second.child);
    const secondExit = await second.exit;
    const totalSeconds = secondsSince(started);
    const report = await verify(dynamodb, opensearch, table, { index });

    // Assess
    expect(firstExit, first.stderr()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(killedAt, first.stderr()).toBeDefined();
    expect(runId).toBeDefined();
    expect(checkpoints.map((checkpoint) => checkpoint.status)).not.toContain('COMPLETED');
    expect(checkpointed).toBeGreaterThan(0);
    expect(secondExit, second.stderr()).toEqual({ code: 0, signal: null });
    expect(second.stderr()).toContain(`resuming run ${runId}:`);
    const summary = JSON.parse(second.stdout().trim().split('\n').at(-1) as string) as RunSummary;
    const documents = await indexCount(opensearch, index);
    recordFigures('3 worker killed', {
      items: ITEMS,
      killSeconds,
      checkpointedAtKill: checkpointed,
      documentsAtKill,
      scanned: summary.scanned,
      created: summary.created,
      alreadyPresent: summary.alreadyPresent,
      documents,
      missing: report.missing,
      extra: report.extra,
      differing: report.differing,
      totalSeconds,
    });
    // Every item once: scanned is the table, nothing counted twice.
    expect(summary).toMatchObject({ scanned: ITEMS, failed: 0, skipped: 0 });
    expect(summary.created + summary.alreadyPresent).toBe(ITEMS);
    // What the killed run wrote after its last checkpoint is exactly what the rerun found already there.
    expect(summary.alreadyPresent).toBe(documentsAtKill - checkpointed);
    expect(documents).toBe(ITEMS);
    expectClean(report);
  });
});
