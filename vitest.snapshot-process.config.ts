/**
 * The vitest configuration of `npm run test:snapshot-process`: every test
 * file that runs differential scenarios (through test/harness/diff.ts), with
 * VTEMU_SNAPSHOT_PROCESS=all, so that every scenario is also restored into a
 * fresh vtemu process at each cut (test/harness/snapshot-process.ts); the
 * extra global setup prints the counts at the end and fails the run when no
 * scenario was checked.  `npm test` checks one scenario per file.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/diff/**/*.test.ts', 'test/machine/diff-*.test.ts', 'test/vtd-reentrancy.test.ts'],
    // `VTEMU_SNAPSHOT_PROCESS=sample npm run test:snapshot-process` shows what npm test's sample costs.
    env: { VTEMU_SNAPSHOT_PROCESS: process.env['VTEMU_SNAPSHOT_PROCESS'] || 'all' },
    // A fuzz test runs many scenarios in one `it`, each now with a few process start-ups.
    testTimeout: 900_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/harness/global-setup.ts', 'test/harness/snapshot-process-setup.ts'],
  },
});
