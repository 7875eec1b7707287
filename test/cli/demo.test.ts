import { afterEach, describe, expect, it } from 'vitest';
import { dynamodbEndpoint, opensearchUrl } from '../support/engines';
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
});
