/**
 * Both guests on every machine in machines/, on vtemu: in-process (direct
 * calls) and through the qtest front door (the same client that drives
 * QEMU), and the spawned CLI compiled from the current sources.  A platform
 * that cannot be created fails the test.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPlatform, packageRoot, type PlatformKind } from '../../src/demo/platforms.js';
import { domainSwitchProbe, runLinuxGuest } from '../../src/guest/linux-guest.js';
import { runKvmUnitTests } from '../../src/guest/kvm-unit-tests/intel-iommu.js';
import { RMRR_REFUSAL } from '../../src/guest/linux-vtd/driver.js';
import type { GuestPlatform } from '../../src/guest/platform.js';
import { loadMachineFile } from '../../src/demo/machine-file.js';
import { runDemo } from '../../src/demo/report.js';
import { platformOptions } from '../harness/index.js';

const MACHINES = readdirSync(join(packageRoot(), 'machines')).filter((f) => f.endsWith('.json')).sort();

const KINDS = ['in-process', 'vtemu-qtest', 'vtemu-cli'] as const satisfies readonly PlatformKind[];

async function on<T>(kind: PlatformKind, file: string, fn: (p: GuestPlatform) => Promise<T>, iommuOptions?: string): Promise<T> {
  const p = await createPlatform(kind, `machines/${file}`, platformOptions({ iommuOptions }));
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}

for (const kind of KINDS) {
  describe(`guests on vtemu (${kind})`, () => {
    for (const file of MACHINES) {
      it(`Linux-like guest on ${file}`, async () => {
        const r = await on(kind, file, (p) => runLinuxGuest(p));
        expect(r.checks.filter((c) => !c.ok)).toEqual([]);
        const names = r.checks.map((c) => c.name);
        expect(names).toContain('bring-up');
        if (file.includes('rmrr')) {
          expect(names).toEqual(expect.arrayContaining(['RMRR identity mapping', 'RMRR device refused by unmanaged domain']));
          expect(r.log.join('\n')).toContain(RMRR_REFUSAL);
        } else {
          expect(names).toEqual(expect.arrayContaining(['edu DMA round trip', 'fault provoked and decoded']));
        }
        // MSIs are observable on every vtemu path (sink events in-process, the
        // server's msi_intercept extension over qtest): remapping is checked, not skipped.
        expect(names).toEqual(expect.arrayContaining(['edu MSI remapped', 'fault event interrupt']));
        if (file.includes('multi-drhd')) expect(r.driver!.units.length).toBe(2);
        if (file.includes('topology')) expect(r.log.join('\n')).toMatch(/iommu group \d+: 02:01\.0 02:02\.0/);
      });

      it(`kvm-unit-tests-like guest on ${file}`, async () => {
        // kvm-unit-tests programs one hard-coded unit; with several, use the INCLUDE_PCI_ALL one (IOAPIC and the root-bus edu).
        const all = loadMachineFile(join(packageRoot(), 'machines', file)).dmar?.units?.find((u) => u.includePciAll);
        const reports = await on(kind, file, (p) => runKvmUnitTests(p, all ? Number(all.base) : undefined));
        expect(reports.filter((r) => r.result === 'fail')).toEqual([]);
        expect(reports.find((r) => r.name === 'DMAR 4B memcpy test')?.result).toBe('pass');
        expect(reports.find((r) => r.name === 'IR MSI')?.result).toBe('pass');
        expect(reports.find((r) => r.name === 'IR IOAPIC')?.result).toBe('pass');
      });
    }

    it('caching-mode=on: skipping the old-domain IOTLB flush makes a DMA use a stale translation', async () => {
      const good = await on(kind, 'q35-vtd.json', (p) => domainSwitchProbe(p), 'caching-mode=on');
      expect([good.cachingMode, good.stale, good.fresh]).toEqual([true, false, true]);
      const bad = await on(kind, 'q35-vtd.json', (p) => domainSwitchProbe(p, { skip: new Set(['detach-iotlb']) }), 'caching-mode=on');
      expect([bad.cachingMode, bad.stale, bad.fresh]).toEqual([true, true, false]);
    });
  });
}

describe('the npm start demo (in-process)', () => {
  for (const file of ['q35-vtd.json', 'q35-rmrr.json']) {
    it(`prints every section and passes on ${file}`, async () => {
      const lines: string[] = [];
      const out = await on('in-process', file, (p) => runDemo(p, (l) => lines.push(l)));
      expect(out.passed).toBe(true);
      for (const s of ['== DMAR (decoded) ==', '== VT-d bring-up ==', '== IOMMU groups and default domains ==', '== checks ==', '== fault handler ==']) {
        expect(lines).toContain(s);
      }
      const text = lines.join('\n');
      expect(text).toMatch(/\[PASS\] fault provoked and decoded: DMAR: \[DMA Write NO_PASID\] .* \[fault reason 0x05\] PTE Write access is not set/);
      if (file === 'q35-rmrr.json') {
        expect(text).toContain(`[PASS] RMRR device refused by unmanaged domain: 00:02.0: ${RMRR_REFUSAL}`);
        expect(text).toMatch(/RMRR 0x07800000-0x0780FFFF/);
      } else {
        expect(text).toMatch(/\[PASS\] same IOVA, two domains, kept apart/);
        expect(text).toMatch(/\[PASS\] contiguous IOVA over scattered pages/);
      }
    });
  }
});
