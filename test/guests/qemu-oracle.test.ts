/**
 * The guests against QEMU 11.1 through the qtest client (`-accel qtest`:
 * virtual time, INTx only): the oracle that our guests program VT-d the way
 * real hardware models accept.  One guest run stays on QEMU 7.2 (its
 * describe says why): a unit without ECAP.PT, which QEMU 11.1 cannot build
 * (it removed `pt` and always sets ECAP.PT).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { QtestClient } from '../../src/guest/qtest-client.js';
import { runKvmUnitTests } from '../../src/guest/kvm-unit-tests/intel-iommu.js';
import { domainSwitchProbe, runLinuxGuest } from '../../src/guest/linux-guest.js';
import { loadMachineFile, qemuArgs } from '../../src/demo/machine-file.js';
import { runDemo } from '../../src/demo/report.js';
import { needQemu, qemuClient, type QemuVersion } from '../harness/index.js';

const qemu = needQemu('11.1', 'QEMU oracle tests for the guests');
const qemu72 = needQemu('7.2', 'QEMU oracle tests for the guests (pt=off: QEMU 7.2 only)');
const MACHINES = join(import.meta.dirname, '../../machines');

async function withQemu<T>(args: string[], fn: (c: QtestClient) => Promise<T>, version: QemuVersion = '11.1'): Promise<T> {
  const c = await qemuClient(version, args);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

describe.skipIf(!qemu)('guests on QEMU 11.1 (qtest)', () => {
  it('the qtest client sees QEMU 11.1 as a virtual-time target with INTx only', async () => {
    await withQemu(['-machine', 'q35', '-device', 'intel-iommu'], async (c) => {
      expect(c.timeMode).toBe('virtual');
      expect(c.interrupts).toEqual({ intx: true, msi: false });
      expect(await c.read(0xfed90000, 4)).toBe(0x10);
    });
  });

  it('kvm-unit-tests-like guest: init checks and the DMAR 4B memcpy pass', async () => {
    const reports = await withQemu(['-machine', 'q35,kernel-irqchip=split', '-device', 'intel-iommu,intremap=on,eim=off', '-device', 'edu'], runKvmUnitTests);
    expect(reports.filter((r) => r.result === 'fail')).toEqual([]);
    expect(reports.find((r) => r.name === 'DMAR 4B memcpy test')?.result).toBe('pass');
    expect(reports.find((r) => r.name === 'IR enablement')?.result).toBe('pass');
    // QEMU's qtest has no MSI stream: those checks are reported as skipped, not passed.
    expect(reports.find((r) => r.name === 'IR MSI')?.result).toBe('skip');
  });

  for (const file of ['q35-vtd.json', 'q35-topology.json']) {
    it(`Linux-like guest on ${file}: bring-up, DMA, scatter, isolation, fault`, async () => {
      const def = loadMachineFile(join(MACHINES, file));
      const r = await withQemu(qemuArgs(def), (c) => runLinuxGuest(c));
      expect(r.checks.filter((c) => !c.ok)).toEqual([]);
      const names = r.checks.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['bring-up', 'edu DMA round trip', 'contiguous IOVA over scattered pages',
        'same IOVA, two domains, kept apart', 'fault provoked and decoded']));
    });
  }

  it('Linux-like guest with register-based invalidation and iommu=pt', async () => {
    const args = qemuArgs(loadMachineFile(join(MACHINES, 'q35-vtd.json')));
    const r = await withQemu(args, (c) => runLinuxGuest(c, { noQi: true, passThrough: true }));
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.log.join('\n')).toContain('register-based invalidation');
  });

  it('the demo report on QEMU: every section printed, every check passed', async () => {
    const lines: string[] = [];
    const out = await withQemu(qemuArgs(loadMachineFile(join(MACHINES, 'q35-vtd.json'))), (c) => runDemo(c, (l) => lines.push(l)));
    expect(out.passed).toBe(true);
    for (const s of ['== firmware ==', '== PCI enumeration ==', '== DMAR (decoded) ==', '== VT-d bring-up ==', '== IOMMU groups and default domains ==', '== checks ==']) {
      expect(lines).toContain(s);
    }
    expect(lines.some((l) => l.startsWith('== summary: ') && !l.includes(' 0/'))).toBe(true);
  });

  it('caching-mode=on: skipping the old-domain IOTLB flush leaves a stale translation', async () => {
    const args = ['-machine', 'q35', '-device', 'intel-iommu,intremap=on,caching-mode=on', '-device', 'edu'];
    const good = await withQemu(args, (c) => domainSwitchProbe(c));
    expect([good.cachingMode, good.stale, good.fresh]).toEqual([true, false, true]);
    const bad = await withQemu(args, (c) => domainSwitchProbe(c, { skip: new Set(['detach-iotlb']) }));
    expect([bad.cachingMode, bad.stale, bad.fresh]).toEqual([true, true, false]);
  });
});

describe.skipIf(!qemu72)('guests on QEMU 7.2 (QEMU 7.2 only: a unit without ECAP.PT; 11.1 removed pt and always sets it)', () => {
  it('iommu=pt on a unit without ECAP.PT: the static identity domain maps RAM with superpages', async () => {
    const args = ['-machine', 'q35', '-device', 'intel-iommu,pt=off', '-device', 'edu'];
    const r = await withQemu(args, (c) => runLinuxGuest(c, { passThrough: true }), '7.2');
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.log.join('\n')).toMatch(/si_domain: RAM 0-0x8000000 identity-mapped/);
    expect(r.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['identity-mapped DMA', 'fault provoked and decoded']));
  });
});
