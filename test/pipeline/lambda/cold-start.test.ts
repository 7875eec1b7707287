import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../pipeline/errors';
import { coldStart } from '../../../pipeline/lambda/cold-start';

describe('coldStart', () => {
  it('builds the dependencies once and shares them with the invocations after', async () => {
    // Prepare
    let builds = 0;
    const started = coldStart(async () => ({ build: ++builds }));

    // Act
    const [first, second] = await Promise.all([started(), started()]);
    const third = await started();

    // Assess
    expect(builds).toBe(1);
    expect(second).toBe(first);
    expect(third).toBe(first);
  });

  it('tries a failed start again on the next invocation instead of keeping the error', async () => {
    // Prepare: the first start finds a variable missing, the second finds it set
    let attempts = 0;
    const started = coldStart(async () => {
      attempts += 1;
      if (attempts === 1) throw new ConfigurationError('environment variable DDB2OS_TABLE_NAME is not set');
      return { table: 'orders' };
    });

    // Act
    const failure = await started().catch((error: unknown) => error);
    const deps = await started();

    // Assess
    expect(failure).toEqual(new ConfigurationError('environment variable DDB2OS_TABLE_NAME is not set'));
    expect(deps).toEqual({ table: 'orders' });
    expect(attempts).toBe(2);
  });
});
