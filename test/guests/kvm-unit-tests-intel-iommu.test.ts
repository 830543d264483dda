/**
 * The kvm-unit-tests x86/intel-iommu equivalent guest (src/guest/kvm-unit-tests)
 * on vtemu with kvm-unit-tests' own command line (`-M q35,kernel-irqchip=split
 * -device intel-iommu,intremap=on,eim=off -device edu`): QIE without
 * IQA/IQT, SRTP, IRTA and SIRTP, TE, IRE; the DMAR 4-byte memcpy through
 * edu; the edu interrupt remapped through the IOAPIC (IRTE 1 -> vector 0xED)
 * and through MSI (IRTE 2 -> vector 0xEE), observed at vtemu's MSI sink.
 * On vtemu nothing may be skipped: every check passes, in-process and through
 * the qtest front door (the client QEMU is driven with).
 *
 * QEMU 11.1 runs the same guest in test/guests/qemu-oracle.test.ts (MSIs are
 * not observable there, so its IR checks are skipped).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPlatform, type PlatformKind } from '../../src/demo/platforms.js';
import { KUT, runKvmUnitTests } from '../../src/guest/kvm-unit-tests/intel-iommu.js';
import { platformOptions } from '../harness/index.js';

/** kvm-unit-tests' machine, as a machine file. */
const dir = mkdtempSync(join(tmpdir(), 'vtemu-kut-'));
const MACHINE = join(dir, 'kvm-unit-tests.json');
writeFileSync(MACHINE, JSON.stringify({
  description: 'kvm-unit-tests x86/intel-iommu: -M q35,kernel-irqchip=split -device intel-iommu,intremap=on,eim=off -device edu',
  machine: 'q35,kernel-irqchip=split',
  devices: ['intel-iommu,intremap=on,eim=off', 'edu'],
}));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KINDS: PlatformKind[] = ['in-process', 'vtemu-qtest', 'vtemu-cli'];

describe('kvm-unit-tests x86/intel-iommu on vtemu', () => {
  for (const kind of KINDS) {
    it(`${kind}: every check passes, the remapped vectors reach the MSI sink`, async () => {
      const p = await createPlatform(kind, MACHINE, platformOptions());
      try {
        expect(p.interrupts.msi).toBe(true);
        const seen: number[] = [];
        p.onInterrupt('msi', KUT.IR_MSI_VECTOR, (irq) => seen.push(irq.vector));
        p.onInterrupt('msi', KUT.IR_IOAPIC_VECTOR, (irq) => seen.push(irq.vector));
        const reports = await runKvmUnitTests(p);
        expect(reports.filter((r) => r.result !== 'pass')).toEqual([]);
        expect(reports.map((r) => r.name)).toEqual(expect.arrayContaining(['DMAR 4B memcpy test', 'IR IOAPIC', 'IR MSI']));
        expect(seen).toEqual(expect.arrayContaining([KUT.IR_IOAPIC_VECTOR, KUT.IR_MSI_VECTOR]));
      } finally {
        await p.close();
      }
    }, 60_000);
  }
});
