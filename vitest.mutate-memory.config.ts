/**
 * The vitest configuration for the mutation run over src/memory alone
 * (npm run mutate:memory). Nearly every test in the project goes through an
 * address space, so with the intel-iommu configuration each src/memory mutant
 * pays for most of the unit suite. This one keeps the layers at and below the
 * PCI bus: memory, PCI, edu and the machine. The score it gives is a lower
 * bound of what the whole suite kills.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'src/memory/**/*.test.ts',
      'src/pci/**/*.test.ts',
      'src/hw/edu/**/*.test.ts',
      'src/machine/**/*.test.ts',
    ],
    // ram-layout-host.test.ts spawns QEMU: not a mutant killer (its pure
    // counterpart, ram-layout.test.ts, runs here).
    exclude: ['**/node_modules/**', 'src/memory/ram-layout-host.test.ts'],
    env: { VTEMU_TIMING: 'off' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
