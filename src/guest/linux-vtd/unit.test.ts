import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../alloc.js';
import { FakePlatform } from '../testing/fake-platform.js';
import { installFakeVtd } from '../testing/fake-vtd.js';
import { VtdUnit } from './unit.js';
import { InterruptRemapping } from './irq-remap.js';

const BASE = 0xfed90000;

async function bringUp(opts: ConstructorParameters<typeof VtdUnit>[3] = {}, fake: Parameters<typeof installFakeVtd>[2] = {}) {
  const p = new FakePlatform();
  const log = installFakeVtd(p, BASE, fake);
  const u = new VtdUnit(p, BASE, new GuestAllocator(p, 0x1000000, 0x2000000), opts);
  expect(await u.probe()).toBe(true);
  await u.enableQi();
  await u.initDmar();
  await u.enableTranslation();
  return { p, u, log };
}

describe('VtdUnit bring-up', () => {
  it('follows Linux order: QI, root table + SRTP, global invalidations through the queue, fault interrupt, TE', async () => {
    const { u, log } = await bringUp();
    const regs = log.filter((l) => !l.startsWith('QI')).map((l) => l.split(' ')[0]);
    expect(regs).toEqual(['IQT', 'IQA', 'GCMD', 'RTADDR', 'GCMD', 'IQT', 'IQT', 'FEDATA', 'FEADDR', 'FEUADDR', 'FSTS', 'FECTL', 'GCMD']);
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x4000000', 'GCMD 0x44000000', 'GCMD 0x84000000']);
    expect(log.filter((l) => l.startsWith('QI')).map((l) => l.split(' ')[2])).toEqual(['1', '5', '2', '5']);
    expect(log).toContain('FECTL 0x0');
    expect(u.levels).toBe(3);
    expect(u.invalidator.kind).toBe('queued');
  });

  it('uses register-based invalidation without QI and skips them with CAP.ESRTPS', async () => {
    const reg = await bringUp({ noQi: true });
    // global, with DR+DW because CAP.DRD/DWD are set
    expect(reg.log.filter((l) => /^(CCMD|IOTLB)/.test(l))).toEqual(['CCMD 0xa000000000000000', 'IOTLB 0x9003000000000000']);
    const es = await bringUp({ noQi: true }, { cap: 0x80d2008c22260206n });
    expect(es.log.some((l) => /^(CCMD|IOTLB)/.test(l))).toBe(false);
    expect(es.u.log.join('\n')).toContain('ESRTPS');
  });

  it('turns off translation left on by firmware and keeps persistent bits in the shadow', async () => {
    const { log } = await bringUp({ noQi: true }, { gsts: 0x80000000 });
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x0', 'GCMD 0x40000000', 'GCMD 0x80000000']);
  });

  it('skips a named invalidation only when asked', async () => {
    const { log, u } = await bringUp({ noQi: true, skip: new Set(['bringup-iotlb']) });
    expect(log.filter((l) => /^(CCMD|IOTLB)/.test(l))).toEqual(['CCMD 0xa000000000000000']);
    expect(u.log.join('\n')).toContain('skipped bringup-iotlb');
  });

  it('enables interrupt remapping: IRTA with S=0xF, SIRTP, global IEC, IRE', async () => {
    const p = new FakePlatform();
    const log = installFakeVtd(p, BASE);
    const u = new VtdUnit(p, BASE, new GuestAllocator(p, 0x1000000, 0x2000000));
    await u.probe();
    await u.enableQi();
    await new InterruptRemapping(u).enable();
    expect(log.find((l) => l.startsWith('IRTA'))).toMatch(/f$/);
    expect(log.filter((l) => l.startsWith('GCMD'))).toEqual(['GCMD 0x4000000', 'GCMD 0x5000000', 'GCMD 0x6000000']);
    expect(log.filter((l) => l.startsWith('QI')).map((l) => l.split(' ')[2])).toEqual(['4', '5']);
    expect(InterruptRemapping.msiFor(2)).toEqual({ address: 0xfee00050, data: 0 });
    expect(InterruptRemapping.msiFor(0x8001).address).toBe(0xfee00034);
  });
});
