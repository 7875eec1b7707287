/**
 * A smoke run of `npm run bench` on a tiny table against the suite's engines:
 * every measurement runs and the summary line has every figure. No timing is
 * asserted (the benchmark prints figures; tests must pass on a slow machine).
 */
import { describe, expect, it } from 'vitest';
import { runTypeScript } from '../../bench/phases';
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
] as const;

describe('npm run bench (smoke, tiny table)', () => {
  it('runs every measurement and prints the table and one JSON summary line with every figure', async () => {
    const { code, stdout, stderr } = await runBench([
      '--items',
      '400',
      '--repeat',
      '1',
      '--rss-base-items',
      '200',
      '--stream-items',
      '100',
      '--warmup-documents',
      '0',
      '--warmup-scans',
      '0',
      '--naive-seconds',
      '5',
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
    expect(summary.items).toBe(400);
    expect(summary.rss_base_items).toBe(200);
    expect(summary.stream_items).toBe(100);
    expect(summary.cpu_layout).toBe('given');
    for (const key of SUMMARY_KEYS.filter((name) => name !== 'rss_growth_mib')) {
      expect(summary[key] as number, key).toBeGreaterThan(0);
    }
    expect(summary.rss_growth_mib).toBeCloseTo(
      (summary.rss_n_mib as number) - (summary.rss_10k_mib as number),
      1,
    );
    const targets = summary.targets as { name: string; pass: boolean }[];
    expect(targets.map((target) => target.name)).toEqual([
      'backfill / min(source, sink ceiling)',
      'backfill / naive baseline',
      'peak RSS growth 200 → 400 items (MiB)',
      'stream updater / sink ceiling',
    ]);
    const report = lines.slice(0, -1).join('\n');
    expect(report).toContain('source ceiling: raw parallel Scan');
    expect(report).toContain('ddb2os backfill (workflow, child)');
    expect(report).toMatch(/^targets$/m);
  });

  it('refuses a bad option with a message that names it, exit 2', async () => {
    const { code, stderr } = await runBench(['--items', '0']);
    expect(code).toBe(2);
    expect(stderr).toContain('--items must be a positive integer, not "0"');
    const layout = await runBench(['--cpu-layout', 'diagonal']);
    expect(layout.code).toBe(2);
    expect(layout.stderr).toContain('--cpu-layout must be split or shared, not "diagonal"');
  });
});
