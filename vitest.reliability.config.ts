import { defineConfig } from 'vitest/config';
import base from './vitest.config';

/**
 * `npm run test:reliability`: only the reliability cases (test/reliability),
 * on the same real engines as `npm test` (which runs them too). Each case
 * prints a `[reliability] …` figures line.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/reliability/**/*.test.ts'],
  },
});
