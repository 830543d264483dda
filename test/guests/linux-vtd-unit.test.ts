/**
 * The Linux-like driver's bring-up of one remapping unit (src/guest/linux-vtd/
 * unit.ts, irq-remap.ts) against a real VT-d unit mounted on a FakePlatform:
 * the order of register writes and queued descriptors, and the state the
 * unit ends in.  (Here rather than beside the driver: src/guest imports
 * nothing outside src/guest, tests included; see src/guest/isolation.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../../src/guest/alloc.js';
import { FakePlatform } from '../support/guest-fakes/fake-platform.js';
import { VtdUnit } from '../../src/guest/linux-vtd/unit.js';
import { InterruptRemapping } from '../../src/guest/linux-vtd/irq-remap.js';
import { Cap } from '../../src/hw/intel-iommu/caps.js';
import { Gcmd, Gsts, Reg } from '../../src/hw/intel-iommu/reg-layout.js';
import { mountVtd, type MountVtdOptions } from '../support/vtd-on-fake-platform.js';

const BASE = 0xfed90000;
/** A unit that does not advertise ESRTPS: the driver must invalidate globally after SRTP. */
const NO_ESRTPS: MountVtdOptions = { capClear: Cap.ESRTPS };

async function bringUp(opts: ConstructorParameters<typeof VtdUnit>[3] = {}, vtdOpts: MountVtdOptions = {}) {
  const p = new FakePlatform();
  const vtd = mountVtd(p, BASE, vtdOpts);
  const u = new VtdUnit(p, BASE, new GuestAllocator(p, 0x1000000, 0x2000000), opts);
  expect(await u.probe()).toBe(true);
  await u.enableQi();
  await u.initDmar();
  await u.enableTranslation();
  return { p, u, log: vtd.log, vtd };
}

describe('VtdUnit bring-up', () => {
  it('follows Linux order: QI, root table + SRTP, global invalidations through the queue, fault interrupt, TE', async () => {
    const { u, log, vtd } = await bringUp({}, NO_ESRTPS);
    const regs = log.filter((l) => !l.startsWith('QI')).map((l) => l.split(' ')[0]);
    expect(regs).toEqual(['IQT', 'IQA', 'GCMD', 'RTADDR', 'GCMD', 'IQT', 'IQT', 'FEDATA', 'FEADDR', 'FEUADDR', 'FSTS', 'FECTL', 'GCMD']);
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x4000000', 'GCMD 0x44000000', 'GCMD 0x84000000']);
    expect(log.filter((l) => l.startsWith('QI')).map((l) => l.split(' ')[2])).toEqual(['1', '5', '2', '5']);
    expect(log).toContain('FECTL 0x0');
    expect(u.levels).toBe(3);
    expect(u.invalidator.kind).toBe('queued');
    // The unit took it all: translation and the queue on, the root table latched, no errors.
    expect(vtd.iommu.regs.get32(Reg.GSTS)).toBe((Gsts.TES | Gsts.QIES | Gsts.RTPS) >>> 0);
    expect(vtd.iommu.rootTable).toBe(u.rootTable);
    expect(vtd.iommu.regs.get32(Reg.FSTS)).toBe(0);
  });

  it('uses register-based invalidation without QI and skips them with CAP.ESRTPS', async () => {
    const reg = await bringUp({ noQi: true }, NO_ESRTPS);
    // global, with DR+DW because CAP.DRD/DWD are set
    expect(reg.log.filter((l) => /^(CCMD|IOTLB)/.test(l))).toEqual(['CCMD 0xa000000000000000', 'IOTLB 0x9003000000000000']);
    // The unit completed both: ICC / IVT clear, actual granularity (CAIG / IAIG) global.
    const ccmd = reg.vtd.iommu.regs.get64(Reg.CCMD);
    expect([ccmd >> 63n, (ccmd >> 59n) & 3n]).toEqual([0n, 1n]);
    const iotlb = reg.vtd.iommu.regs.get64(Reg.IOTLB);
    expect([iotlb >> 63n, (iotlb >> 57n) & 3n]).toEqual([0n, 1n]);
    const es = await bringUp({ noQi: true }); // the unit advertises ESRTPS
    expect(es.log.some((l) => /^(CCMD|IOTLB)/.test(l))).toBe(false);
    expect(es.u.log.join('\n')).toContain('ESRTPS');
  });

  it('turns off translation left on by firmware and keeps persistent bits in the shadow', async () => {
    const { log } = await bringUp({ noQi: true }, { firmwareGcmd: Gcmd.TE });
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x0', 'GCMD 0x40000000', 'GCMD 0x80000000']);
  });

  it('skips a named invalidation only when asked', async () => {
    const { log, u } = await bringUp({ noQi: true, skip: new Set(['bringup-iotlb']) }, NO_ESRTPS);
    expect(log.filter((l) => /^(CCMD|IOTLB)/.test(l))).toEqual(['CCMD 0xa000000000000000']);
    expect(u.log.join('\n')).toContain('skipped bringup-iotlb');
  });

  it('enables interrupt remapping: IRTA with S=0xF, SIRTP, global IEC, IRE', async () => {
    const p = new FakePlatform();
    const vtd = mountVtd(p, BASE);
    const log = vtd.log;
    const u = new VtdUnit(p, BASE, new GuestAllocator(p, 0x1000000, 0x2000000));
    await u.probe();
    await u.enableQi();
    await new InterruptRemapping(u).enable();
    expect(log.find((l) => l.startsWith('IRTA'))).toMatch(/f$/);
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x4000000', 'GCMD 0x5000000', 'GCMD 0x6000000']);
    expect(log.filter((l) => l.startsWith('QI')).map((l) => l.split(' ')[2])).toEqual(['4', '5']);
    expect(vtd.iommu.regs.get32(Reg.GSTS) & (Gsts.IRES | Gsts.IRTPS)).toBe((Gsts.IRES | Gsts.IRTPS) >>> 0);
    expect(InterruptRemapping.msiFor(2)).toEqual({ address: 0xfee00050, data: 0 });
    expect(InterruptRemapping.msiFor(0x8001).address).toBe(0xfee00034);
  });
});
