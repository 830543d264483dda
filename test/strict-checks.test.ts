/**
 * The strict programming-model checks (x-strict=on) on the project's own
 * guests: the Linux-like driver and the kvm-unit-tests-like guest run
 * in-process on every machine file (legacy and scalable mode) with no
 * warning, and the checker is really attached and listening (a deliberate
 * programming error on the same machine does warn).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPlatform, packageRoot } from '../src/demo/platforms.js';
import { runLinuxGuest } from '../src/guest/linux-guest.js';
import { runKvmUnitTests } from '../src/guest/kvm-unit-tests/intel-iommu.js';
import { loadMachineFile } from '../src/demo/machine-file.js';
import type { Machine } from '../src/machine/q35.js';
import type { StrictWarning } from '../src/hw/intel-iommu/events.js';
import { strictOf } from '../src/monitor/strict-checks.js';
import { Gcmd, Reg } from '../src/hw/intel-iommu/reg-layout.js';
import { platformOptions } from './harness/index.js';

const MACHINES = readdirSync(join(packageRoot(), 'machines')).filter((f) => f.endsWith('.json')).sort();

/** Runs a guest in-process on `file` with x-strict=on; returns the guest's failures, every unit's warnings and how many units had a checker. */
async function guestWarnings(file: string, guest: 'linux' | 'kut', extra = ''): Promise<{ failures: number; warnings: StrictWarning[]; units: number; scalable: boolean; paths: number; entries: number }> {
  const p = await createPlatform('in-process', `machines/${file}`, platformOptions({ iommuOptions: `x-strict=on${extra}` }));
  // The in-process platform keeps its machine private; the test reaches it to listen.
  const m = (p as unknown as { m: Machine }).m;
  const warnings: StrictWarning[] = [];
  for (const u of m.iommus) u.events.on('strict', (w) => warnings.push(w));
  const units = m.iommus.filter((u) => strictOf(u) !== undefined).length;
  try {
    let failures: number;
    if (guest === 'linux') {
      failures = (await runLinuxGuest(p)).checks.filter((c) => !c.ok).length;
    } else {
      const all = loadMachineFile(join(packageRoot(), 'machines', file)).dmar?.units?.find((u) => u.includePciAll);
      failures = (await runKvmUnitTests(p, all ? Number(all.base) : undefined)).filter((x) => x.result === 'fail').length;
    }
    const scalable = m.iommus.some((u) => u.scalable);
    // Guest stores after the last unit event are settled by `warnings`.
    let paths = 0;
    let entries = 0;
    for (const u of m.iommus) {
      const s = strictOf(u)!;
      void s.warnings;
      paths += s.coverage.paths;
      entries += s.coverage.entries;
    }
    return { failures, warnings, units, scalable, paths, entries };
  } finally {
    await p.close();
  }
}

describe('strict checks on the project\'s own guests', () => {
  for (const file of MACHINES) {
    for (const guest of ['linux', 'kut'] as const) {
      it(`${file}: no warning for the ${guest === 'linux' ? 'Linux-like' : 'kvm-unit-tests-like'} guest`, async () => {
        const r = await guestWarnings(file, guest);
        expect(r.units).toBeGreaterThan(0);
        expect(r.failures).toBe(0);
        expect(r.warnings.map((w) => w.message)).toEqual([]);
        // The checker saw the guest's requests and tracked their context (and PASID) entries.
        expect(r.paths).toBeGreaterThan(0);
        expect(r.entries).toBeGreaterThan(0);
        if (file === 'q35-vtd-sm.json' && guest === 'linux') {
          expect(r.scalable).toBe(true);
          expect(r.entries).toBeGreaterThanOrEqual(2); // context and PASID entries
        }
      });
    }
  }

  for (const file of ['q35-vtd.json', 'q35-vtd-sm.json']) {
    it(`${file}, caching mode on: no warning for the Linux-like guest`, async () => {
      const r = await guestWarnings(file, 'linux', ',caching-mode=on');
      expect(r.failures).toBe(0);
      expect(r.paths).toBeGreaterThan(0);
      expect(r.warnings.map((w) => w.message)).toEqual([]);
    });
  }

  it('the checker is live on the same machine: TE with RTADDR changed and no SRTP warns', async () => {
    const p = await createPlatform('in-process', 'machines/q35-vtd.json', platformOptions({ iommuOptions: 'x-strict=on' }));
    const m = (p as unknown as { m: Machine }).m;
    try {
      const u = m.iommus[0]!;
      const base = 0xfed9_0000;
      await p.write64(base + Reg.RTADDR, 0x10_0000n);
      await p.write(base + Reg.GCMD, 4, Gcmd.SRTP);
      await p.write64(base + Reg.RTADDR, 0x20_0000n);
      await p.write(base + Reg.GCMD, 4, Gcmd.TE >>> 0);
      expect(strictOf(u)!.warnings.map((w) => [w.rule, w.what, w.section])).toEqual([
        ['rtaddr-without-srtp', { register: 'RTADDR', offset: 0x20 }, '11.4.5'],
      ]);
    } finally {
      await p.close();
    }
  });
});
