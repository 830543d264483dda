/**
 * The Linux-like VT-d driver (src/guest/linux-vtd/driver.ts) on a FakePlatform
 * with fake PCI functions and two real VT-d units (test/support/vtd-on-fake-
 * platform.ts): device binding, RMRR identity maps, context entries.  (Here
 * rather than beside the driver: src/guest imports nothing outside
 * src/guest, tests included; see src/guest/isolation.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../support/guest-fakes/fake-platform.js';
import { fakeFn, installFakePci } from '../support/guest-fakes/fake-pci.js';
import { enumeratePci } from '../../src/guest/firmware/pci-enum.js';
import { PcieType } from '../../src/guest/firmware/pci-config.js';
import type { Dmar } from '../../src/guest/firmware/dmar.js';
import type { FirmwareInfo } from '../../src/guest/firmware/boot.js';
import { LinuxVtd, RMRR_REFUSAL } from '../../src/guest/linux-vtd/driver.js';
import { Fsts, Gsts, Reg } from '../../src/hw/intel-iommu/reg-layout.js';
import { mountVtd, type MountedVtd } from '../support/vtd-on-fake-platform.js';

const RMRR_BASE = 0x7800000;

async function machine(opts: { passThrough?: boolean } = {}): Promise<{ p: FakePlatform; drv: LinuxVtd; units: MountedVtd[] }> {
  const p = new FakePlatform();
  const behind = fakeFn(0, 0, { bars: [[0, { size: 0x100000 }]] });
  installFakePci(p, [
    fakeFn(0, 0, { vendor: 0x8086, device: 0x29c0 }),
    fakeFn(1, 0, { bars: [[0, { size: 0x100000 }]] }),
    fakeFn(2, 0, { bridge: true, pcieType: PcieType.RootPort, children: [behind] }),
    fakeFn(3, 0, { bars: [[0, { size: 0x100000 }]] }),
  ]);
  const units = [mountVtd(p, 0xfed90000), mountVtd(p, 0xfed91000)];
  const pci = await enumeratePci(p);
  const dmar: Dmar = {
    hostAddressWidth: 39, flags: 1, problems: [],
    structures: [
      { type: 0, flags: 0, size: 0, segment: 0, base: 0xfed90000, scopes: [{ type: 2, enumerationId: 0, startBus: 0, path: [[2, 0]] }] },
      { type: 0, flags: 1, size: 0, segment: 0, base: 0xfed91000, scopes: [{ type: 3, enumerationId: 0, startBus: 0xff, path: [[0, 0]] }] },
      { type: 1, segment: 0, base: RMRR_BASE, limit: RMRR_BASE + 0xffff, scopes: [{ type: 1, enumerationId: 0, startBus: 0, path: [[1, 0]] }] },
    ],
  };
  const fw: FirmwareInfo = { fwCfgFiles: [], acpi: undefined, dmar, pci, log: [] };
  return { p, drv: await LinuxVtd.boot(p, fw, opts), units };
}

describe('LinuxVtd', () => {
  it('binds devices to the scoped unit or the INCLUDE_PCI_ALL unit', async () => {
    const { drv, units } = await machine();
    const f = (b: number, d: number) => drv.fw.pci.at(b, d, 0)!;
    expect(drv.units.map((u) => u.base)).toEqual([0xfed90000, 0xfed91000]);
    expect(drv.unitFor(f(1, 0))!.base).toBe(0xfed90000);
    expect(drv.unitFor(f(0, 1))!.base).toBe(0xfed91000);
    expect(drv.unitFor(f(0, 3))!.base).toBe(0xfed91000);
    expect(drv.ir.size).toBe(2);
    // Both units are up: translation, queue and interrupt remapping on, no queue errors.
    const on = (Gsts.TES | Gsts.QIES | Gsts.IRES) >>> 0;
    for (const u of units) {
      expect((u.iommu.regs.get32(Reg.GSTS) & on) >>> 0).toBe(on);
      expect(u.iommu.regs.get32(Reg.FSTS) & Fsts.IQE).toBe(0);
    }
  });

  it('identity-maps RMRRs in the default DMA domain and refuses unmanaged domains for that device', async () => {
    const { drv } = await machine();
    const fn = drv.fw.pci.at(0, 1, 0)!;
    const dev = drv.device(fn);
    expect(dev.rmrrs).toEqual([[RMRR_BASE, RMRR_BASE + 0xffff]]);
    expect(await dev.domain!.pageTable!.lookup(RMRR_BASE + 0x1234)).toBe(RMRR_BASE + 0x1234);
    const before = dev.domain;
    const r = await drv.attach(dev, drv.newDomain('unmanaged'));
    expect(r).toEqual({ ok: false, message: RMRR_REFUSAL });
    expect(dev.domain).toBe(before);
    expect(await drv.attachGroup(drv.groupOf(fn)!, drv.newDomain('unmanaged'))).toEqual({ ok: false, message: RMRR_REFUSAL });
    expect(drv.drainLog().join('\n')).toContain(`00:01.0: ${RMRR_REFUSAL}`);
    // other devices may be handed to an unmanaged domain
    expect(await drv.attach(drv.device(drv.fw.pci.at(0, 3, 0)!), drv.newDomain('unmanaged'))).toEqual({ ok: true });
  });

  it('writes context entries (DID, AW, TT, P) for each requester ID and clears them when blocked', async () => {
    const { p, drv } = await machine({ passThrough: true });
    const dev = drv.device(drv.fw.pci.at(0, 3, 0)!);
    const unit = dev.unit;
    const rootLo = await p.read64(unit.rootTable + 0 * 16);
    const ctx = Number(rootLo & ~0xfffn) + 0x18 * 16;
    const lo = await p.read64(ctx);
    const hi = await p.read64(ctx + 8);
    expect(lo & 0xfn).toBe((2n << 2n) | 1n); // pass-through, present
    expect(hi & 7n).toBe(1n); // AW 39-bit
    expect(Number((hi >> 8n) & 0xffffn)).toBe(dev.domain!.did(unit));
    await drv.attach(dev, drv.newDomain('blocked'));
    expect(await p.read64(ctx)).toBe(0n);
  });
});
