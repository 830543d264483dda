/**
 * The whole machine's DMAR against QEMU 11.1's, read the way a firmware
 * reads it on both (fw_cfg DMA, table loader, RSDP -> RSDT -> DMAR) for
 * several topologies: the root-bus device scopes come from what the machine
 * plugged, so slot placement, built-ins and bridge scopes are all checked.
 * Both sides get the same arguments (11.1's default aw-bits is vtemu's, 48).
 */
import { describe, expect, it } from 'vitest';
import { readAcpiTables } from '../../src/hw/acpi/reader.js';
import { needQemu, QemuRunner, qtestBus, VtemuRunner, type QtestRunner } from '../harness/index.js';

const qemu = needQemu('11.1', 'test/machine/diff-dmar.test.ts');

async function dmarOf(r: QtestRunner): Promise<string> {
  const acpi = await readAcpiTables(qtestBus(r));
  expect(acpi.errors).toEqual([]);
  const t = acpi.tables.find((x) => x.signature === 'DMAR');
  expect(t).toBeDefined();
  return Buffer.from(t!.bytes).toString('hex');
}

const TOPOLOGIES: [string, string[]][] = [
  ['default', ['-device', 'intel-iommu']],
  ['intremap=off, two edu', ['-device', 'intel-iommu,intremap=off', '-device', 'edu', '-device', 'edu']],
  ['device-iotlb=on', ['-device', 'intel-iommu,device-iotlb=on', '-device', 'edu']],
  ['aw-bits=39', ['-device', 'intel-iommu,aw-bits=39', '-device', 'edu']],
  ['root port with edu behind', ['-device', 'intel-iommu', '-device', 'pcie-root-port,id=rp1,chassis=1', '-device', 'edu,bus=rp1']],
  ['pcie-pci-bridge with edu behind, edu at addr=5', ['-device', 'intel-iommu', '-device', 'pcie-pci-bridge,id=br', '-device', 'edu,bus=br,addr=3', '-device', 'edu,addr=5']],
];

describe.skipIf(!qemu)('machine DMAR vs QEMU 11.1', () => {
  it.each(TOPOLOGIES)('%s', async (_name, args) => {
    const q = QemuRunner.start(args);
    const v = VtemuRunner.start(args);
    try {
      const [a, b] = await Promise.all([dmarOf(q), dmarOf(v)]);
      expect(b).toBe(a);
    } finally {
      await Promise.all([q.close(), v.close()]);
    }
  });
});
