/**
 * libqtest's probes (qtest_has_machine / qtest_has_device) on QEMU 11.1 and
 * vtemu: each starts the binary with `-machine none` and asks
 * query-machines or qom-list-types (concrete devices only).
 */
import { describe, expect, it } from 'vitest';
import { hasDevice, hasMachine } from '../harness/libqtest-probes.js';
import { libqtestTargets } from '../harness/libqtest-targets.js';

const TARGETS = libqtestTargets('test/libqtest/probes.test.ts');

describe.each(TARGETS)('libqtest probes on $name', ({ binary }) => {
  it.skipIf(!binary)('machines: q35 (an alias) and pc-q35-11.1 exist, bogus does not', async () => {
    expect(await hasMachine(binary!, 'q35')).toBe(true);
    expect(await hasMachine(binary!, 'pc-q35-11.1')).toBe(true);
    expect(await hasMachine(binary!, 'none')).toBe(true);
    expect(await hasMachine(binary!, 'bogus')).toBe(false);
  });

  it.skipIf(!binary)('devices: intel-iommu, edu, iommu-testdev exist; bogus and abstract types do not', async () => {
    expect(await hasDevice(binary!, 'intel-iommu')).toBe(true);
    expect(await hasDevice(binary!, 'edu')).toBe(true);
    expect(await hasDevice(binary!, 'iommu-testdev')).toBe(true);
    expect(await hasDevice(binary!, 'bogus')).toBe(false);
    expect(await hasDevice(binary!, 'pci-device')).toBe(false);
    expect(await hasDevice(binary!, 'device')).toBe(false);
  });
});
