/**
 * Both guests on every machine in machines/, on vtemu: in-process (direct
 * calls) and through the qtest front door (the same client that drives
 * QEMU).  Skips loudly when a platform cannot be created.
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

const MACHINES = readdirSync(join(packageRoot(), 'machines')).filter((f) => f.endsWith('.json')).sort();

async function probe(kind: PlatformKind): Promise<string | undefined> {
  try {
    const p = await createPlatform(kind, 'machines/q35-vtd.json');
    await p.close();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
const KINDS = ['in-process', 'vtemu-qtest', 'vtemu-cli'] as const;
type VtemuKind = (typeof KINDS)[number];
const unavailable: Record<VtemuKind, string | undefined> = {
  'in-process': await probe('in-process'),
  'vtemu-qtest': await probe('vtemu-qtest'),
  'vtemu-cli': await probe('vtemu-cli'),
};
for (const [k, why] of Object.entries(unavailable)) if (why) console.warn(`SKIPPED: guests on vtemu ${k}: ${why.split('\n')[0]}`);

/** Machine features not built yet are skipped loudly; any other creation error fails the test. */
const MISSING_FEATURE = /not a valid device model name|not supported|multiple vIOMMUs/;
async function missingFeature(kind: PlatformKind, file: string): Promise<string | undefined> {
  if (unavailable[kind as VtemuKind]) return undefined;
  try {
    const p = await createPlatform(kind, `machines/${file}`);
    await p.close();
    return undefined;
  } catch (e) {
    const msg = (e as Error).message;
    if (!MISSING_FEATURE.test(msg)) return undefined;
    console.warn(`SKIPPED: ${file} on vtemu ${kind}: the machine lacks a feature: ${msg.split('\n')[0]}`);
    return msg;
  }
}
const missing = new Map<string, string | undefined>();
for (const kind of KINDS) {
  for (const file of MACHINES) missing.set(`${kind}:${file}`, await missingFeature(kind, file));
}

async function on<T>(kind: PlatformKind, file: string, fn: (p: GuestPlatform) => Promise<T>, iommuOptions?: string): Promise<T> {
  const p = await createPlatform(kind, `machines/${file}`, { iommuOptions });
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}

for (const kind of KINDS) {
  describe.skipIf(unavailable[kind] !== undefined)(`guests on vtemu (${kind})`, () => {
    for (const file of MACHINES) {
      const skip = missing.get(`${kind}:${file}`) !== undefined;
      it.skipIf(skip)(`Linux-like guest on ${file}`, async () => {
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

      it.skipIf(skip)(`kvm-unit-tests-like guest on ${file}`, async () => {
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

describe.skipIf(unavailable['in-process'] !== undefined)('the npm start demo (in-process)', () => {
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
