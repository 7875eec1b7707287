/**
 * A smoke run of `npm run bench` on a tiny table against the suite's engines:
 * every measurement runs and the summary line has every figure. No timing is
 * asserted (the benchmark prints figures; tests must pass on a slow machine).
 * The table is small because the shared DynamoDB Local, busy with the other
 * test files, can take writes at a few dozen items per second: the load and
 * the stream updates are most of this test's time.
 */
import { describe, expect, it } from 'vitest';
import { runTypeScript } from '../../bench/phases';
import { ITEMS_PER_SECOND_PER_SEGMENT } from '../../cli/estimate';
import { dynamodbEndpoint, opensearchUrl } from '../support/engines';

function runBench(args: string[]) {
  return runTypeScript('bench/run.ts', args);
}

const SUMMARY_KEYS = [
  'items',
  'source_ceiling_items_per_s',
  'sink_ceiling_docs_per_s',
  'naive_docs_per_s',
  'backfill_docs_per_s',
  'stream_records_per_s',
  'rss_10k_mib',
  'rss_n_mib',
  'rss_growth_mib',
  'update_ceiling_docs_per_s',
  'opensearch_cpu_ratio',
  'dynamodb_cpu_ratio',
  'node_cpu_ms_per_1000_docs',
  'elapsed_s',
] as const;

describe('npm run bench (smoke, tiny table)', () => {
  it('runs every measurement and prints the table and one JSON summary line with every figure', async () => {
    const { code, stdout, stderr } = await runBench([
      '--items',
      '200',
      '--repeat',
      '1',
      '--rss-base-items',
      '100',
      '--stream-items',
      '50',
      '--warmup-documents',
      '0',
      '--warmup-scans',
      '0',
      '--naive-seconds',
      '5',
      '--warmup-backfills',
      '1',
      '--dynamodb-endpoint',
      dynamodbEndpoint(),
      '--opensearch-url',
      opensearchUrl(),
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
    for (const key of SUMMARY_KEYS) expect(typeof summary[key], key).toBe('number');
    expect(summary.items).toBe(200);
    expect(summary.rss_base_items).toBe(100);
    expect(summary.stream_items).toBe(50);
    expect(summary.cpu_layout).toBe('given');
    // The suite's engines run on this machine: their CPU is read from their processes, so the ratios are
    // measured. On 200 documents an engine may spend less than one clock tick (10 ms) in a phase, so a
    // ratio may be 0; other tests share those engines, so its value means nothing here, but it is there.
    const ratios = ['opensearch_cpu_ratio', 'dynamodb_cpu_ratio', 'opensearch_cpu_ratio_same_shape'];
    for (const key of ratios) expect(summary[key] as number, key).toBeGreaterThanOrEqual(0);
    for (const key of SUMMARY_KEYS.filter((name) => name !== 'rss_growth_mib' && !ratios.includes(name))) {
      expect(summary[key] as number, key).toBeGreaterThan(0);
    }
    expect(summary.rss_growth_scale_mib).toBeUndefined();
    const elapsed = summary.elapsed as Record<string, number>;
    expect(summary.elapsed_s).toBe(elapsed.total);
    // Every stage is timed (to 0.1 s: a tiny one may show 0), and the stages fit in the whole run.
    const steps = ['load', 'warm-up', 'source', 'sink', 'backfill', 'stream', 'update_ceiling'];
    for (const step of steps) expect(typeof elapsed[step], step).toBe('number');
    const staged = Object.entries(elapsed)
      .filter(([name]) => name !== 'total')
      .reduce((sum, [, seconds]) => sum + seconds, 0);
    expect(staged).toBeGreaterThan(0);
    expect(staged).toBeLessThanOrEqual((elapsed.total as number) + 1);
    const profile = summary.node_profile as { sharePercent: Record<string, number> };
    const shares = Object.values(profile.sharePercent).reduce((sum, share) => sum + share, 0);
    expect(shares).toBeGreaterThanOrEqual(97);
    expect(shares).toBeLessThanOrEqual(103);
    const requests = summary.backfill_requests as Record<string, unknown>;
    expect((requests.dynamodb as Record<string, number>).Scan).toBeGreaterThan(0);
    expect(requests.bulkRequests).toBeGreaterThan(0);
    const model = summary.model as Record<string, number>;
    expect(model.itemCount).toBe(200);
    // The plan's model for this table: one wave of 50 items per segment at the default rate.
    expect(model.itemsPerSecondPerSegment).toBe(ITEMS_PER_SECOND_PER_SEGMENT);
    expect(model.estimatedSeconds).toBeCloseTo(50 / ITEMS_PER_SECOND_PER_SEGMENT, 2);
    expect(model.measuredSeconds).toBeGreaterThan(0);
    expect(summary.rss_growth_mib).toBeCloseTo(
      (summary.rss_n_mib as number) - (summary.rss_10k_mib as number),
      1,
    );
    const targets = summary.targets as { name: string; pass: boolean }[];
    expect(targets.map((target) => target.name)).toEqual([
      'backfill / min(source, sink ceiling)',
      'OpenSearch CPU per document: backfill / sink ceiling',
      'DynamoDB CPU per item: backfill / raw scan',
      'stream updater / update ceiling',
      'peak RSS growth 100 → 200 items (MiB)',
    ]);
    const report = lines.slice(0, -1).join('\n');
    expect(report).toContain('source ceiling: raw parallel Scan');
    expect(report).toContain('ddb2os backfill (workflow, child)');
    expect(report).toContain('update ceiling: prebuilt bulk index over existing');
    expect(report).toMatch(/^targets$/m);
    expect(report).toMatch(
      /^ {2}(PASS|MISS) {2}stream updater \/ update ceiling: [\d.]+ \(target >= 0\.8\)$/m,
    );
    expect(report).toMatch(
      /^ {2}info {2}Node\.js CPU per 1,000 documents in the backfill: \d+ ms \(profile of a backfill/m,
    );
    expect(report).toMatch(/^elapsed: \d+ s in all/m);
    // The engines' run-queue wait is read from their threads, as their CPU is: 0 or more ms per 1,000.
    const phases = summary.phases as Record<string, { runQueueMsPer1000?: Record<string, number> }>;
    for (const phase of ['backfill', 'sink', 'sink_same_shape']) {
      expect(phases[phase]?.runQueueMsPer1000?.opensearch, phase).toBeGreaterThanOrEqual(0);
    }
    expect(report).toMatch(
      /^ {2}info {2}OpenSearch's threads waiting for a CPU \(run queue\), ms per 1,000 documents: backfill \d+, sink ceiling \d+, sink at the backfill's request shape \d+ /m,
    );
    // Measured on the shared engines while six other suites ran: the 300-item load at 22-25 items/s and one
    // 100-item backfill child at 6-24 s made the run take 40-124 s; it waits on DynamoDB Local, not on itself.
  }, 240_000);

  it('refuses a bad option with a message that names it, exit 2', async () => {
    const { code, stderr } = await runBench(['--items', '0']);
    expect(code).toBe(2);
    expect(stderr).toContain('--items must be a positive integer, not "0"');
    const layout = await runBench(['--cpu-layout', 'diagonal']);
    expect(layout.code).toBe(2);
    expect(layout.stderr).toContain('--cpu-layout must be split or shared, not "diagonal"');
  });
});
