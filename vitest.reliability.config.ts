import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config';

/**
 * `npm run test:reliability`: only the reliability cases (test/reliability),
 * on the same real engines as `npm test` (which runs them too). Each case
 * prints a `[reliability] …` figures line.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/reliability/**/*.test.ts'],
      testTimeout: 300_000,
    },
  }),
);
