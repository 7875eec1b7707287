import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEMO_INDEX } from '../../cli/commands/demo';
import { dynamodbEndpoint, openSearchClient, opensearchUrl } from '../support/engines';
import { lastJsonLine, runCli } from './support';

describe('ddb2os demo (npm start)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('backfills, shows live changes arrive, searches, verifies index = table and exits 0', async () => {
    // The demo starts engines unless these point at running ones: use the suite's.
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
    process.env.OPENSEARCH_URL = opensearchUrl();

    const result = await runCli(['demo', '--items', '3000', '--segments', '4', '--json']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('3,000 items written');
    expect(result.stdout).toMatch(/items scanned +3,000/);
    expect(result.stdout).toContain('5/5 changes in the index');
    expect(result.stdout).toMatch(/matching products/);
    expect(result.stdout).toMatch(/0 missing, 0 extra, 0 differing/);
    expect(result.stdout).toContain('the index equals the table');
    expect(lastJsonLine(result.stdout)).toMatchObject({
      items: 3000,
      scanned: 3000,
      failed: 0,
      liveChangesArrived: 5,
      verify: { missing: 0, extra: 0, differing: 0 },
    });
  });

  it('--change-source sqs: the updater reads a queue fed through an EventBridge envelope, and the changes arrive', async () => {
    process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
    process.env.OPENSEARCH_URL = opensearchUrl();

    const result = await runCli([
      'demo',
      '--items',
      '200',
      '--segments',
      '2',
      '--change-source',
      'sqs',
      '--sqs-envelope',
      'eventbridge',
      '--json',
    ]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('change forwarder: standing in for a fan-out of the table');
    expect(result.stdout).toContain('Stream updater on, reading queue ');
    expect(result.stdout).toContain('5/5 changes in the index');
    expect(lastJsonLine(result.stdout)).toMatchObject({
      items: 200,
      liveChangesArrived: 5,
      verify: { missing: 0, extra: 0, differing: 0 },
    });
  });

  describe('--index-config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ddb2os-demo-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('creates both demo indices with the file (exit 0, index = table)', async () => {
      process.env.DYNAMODB_ENDPOINT = dynamodbEndpoint();
      process.env.OPENSEARCH_URL = opensearchUrl();
      const config = join(dir, 'demo-index.json');
      writeFileSync(config, JSON.stringify({ mappings: { properties: { type: { type: 'keyword' } } } }));

      const result = await runCli([
        'demo',
        '--items',
        '200',
        '--segments',
        '2',
        '--index-config',
        config,
        '--json',
      ]);

      expect(result.code).toBe(0);
      expect(lastJsonLine(result.stdout)).toMatchObject({ items: 200, failed: 0, verify: { missing: 0 } });
      const opensearch = openSearchClient();
      for (const index of [`${DEMO_INDEX}-products`, `${DEMO_INDEX}-customers`]) {
        const mapping = (await opensearch.indices.getMapping({ index })).body as Record<
          string,
          { mappings: { properties: Record<string, { type?: string }> } }
        >;
        expect(mapping[index]?.mappings.properties.type).toEqual({ type: 'keyword' });
      }
      await opensearch.close();
    });

    it('refuses a file that is not JSON before starting anything (exit 2, one line)', async () => {
      const config = join(dir, 'broken.json');
      writeFileSync(config, '{ "mappings": }');

      const result = await runCli(['demo', '--index-config', config]);

      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `ddb2os: index config file ${config} is not valid JSON: Unexpected token '}' at line 1, column 15\n`,
      );
      expect(result.stdout).toBe('');
    });
  });
});
