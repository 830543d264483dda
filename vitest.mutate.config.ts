/**
 * The vitest configuration StrykerJS runs (npm run mutate): the unit and
 * property tests that exercise src/hw/intel-iommu and src/memory, without
 * the differential suites that spawn QEMU or the CLI (they need the oracles
 * and the global CLI build, and each mutant would pay for process start-ups).
 * The walk, first-stage and SVA property tests and the SVA fuzzer run fewer
 * random cases per mutant than in npm test.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'src/hw/intel-iommu/**/*.test.ts',
      'src/memory/**/*.test.ts',
      'src/pci/**/*.test.ts',
      'src/hw/edu/**/*.test.ts',
      'src/machine/**/*.test.ts',
      'test/*.test.ts',
      // The guest tests that run in-process only (the others spawn the CLI, which runs unmutated code).
      'test/guests/linux-vtd-driver.test.ts',
      'test/guests/linux-vtd-unit.test.ts',
    ],
    // vtd-reentrancy spawns QEMU and the CLI (a differential test: left out as the test/diff suites are).
    exclude: ['**/node_modules/**', 'src/memory/ram-layout.test.ts', 'test/vtd-reentrancy.test.ts'],
    // Instrumented code is many times slower: time bounds do not apply (VTEMU_TIMING=off), the
    // deterministic checks of those tests still run; the hostile fuzzer runs fewer cases.
    env: { VTEMU_WALK_CASES: '150', VTEMU_FS_CASES: '150', VTEMU_SVA_CASES: '20', VTEMU_SVA_FUZZ_CASES: '60', VTEMU_HOSTILE_CASES: '6', VTEMU_NOTIFIER_OPS: '800', VTEMU_TIMING: 'off' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
