/**
 * The vitest configuration StrykerJS runs (npm run mutate): the unit and
 * property tests of this repository, without the differential suites that
 * spawn QEMU or the CLI (they need the oracle and the global CLI build, and
 * each mutant would cost seconds of process start-up).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/*.test.ts'],
    exclude: ['**/node_modules/**', 'src/memory/ram-layout.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
