import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../../machine/q35.js';
import { SectionReader } from '../../core/snapshot-state.js';
import { EduDevice } from '../edu/edu.js';

const VTD = 0xfed9_0000;
const EDU = 0xfe00_0000;
const ROOT = 0x10_0000;
const CTX = 0x10_1000;
const L3 = 0x10_2000;
const L2 = 0x10_3000;
const L1 = 0x10_4000;
const EDU_DEVFN = 0x18;

function cfgw(m: Machine, devfn: number, reg: number, v: number): void {
  m.io.write(0xcf8, 4, (0x8000_0000 | (devfn << 8) | reg) >>> 0);
  m.io.write(0xcfc, 4, v);
}

/** edu behind the unit, IOVA 0 mapped to `page` by legacy 3-level tables, translation on. */
function setup(): { m: Machine; edu: EduDevice } {
  const m = createMachine({ accel: 'qtest', devices: ['intel-iommu,aw-bits=39', 'edu,addr=3.0'] });
  const edu = m.devices.find((d) => d.spec.type.name === 'edu')!.device as EduDevice;
  cfgw(m, EDU_DEVFN, 0x10, EDU);
  cfgw(m, EDU_DEVFN, 0x04, 0x6);
  m.memory.write(ROOT, 4, CTX | 1);
  m.memory.write(CTX + EDU_DEVFN * 16, 4, L3 | 1);
  m.memory.write(CTX + EDU_DEVFN * 16 + 8, 4, 1 | (1 << 8));
  m.memory.write(L3, 4, L2 | 3);
  m.memory.write(L2, 4, L1 | 3);
  m.memory.write(L1, 4, 0x20_0000 | 3);
  m.memory.write(VTD + 0x20, 4, ROOT);
  m.memory.write(VTD + 0x18, 4, 0x4000_0000);
  m.memory.write(VTD + 0x18, 4, 0x8000_0000);
  return { m, edu };
}

/** edu DMA of its buffer's first 4 bytes to IOVA 0. */
function dmaToIova0(m: Machine): void {
  m.memory.write(EDU + 0x80, 4, 0x40000);
  m.memory.write(EDU + 0x88, 4, 0);
  m.memory.write(EDU + 0x90, 4, 4);
  m.memory.write(EDU + 0x98, 4, 3);
  m.clock.step(200_000_000);
}

describe('intel-iommu snapshot section', () => {
  it('registers, state, queue and remapper come back; the IOTLB does not (a stale entry is gone after load)', () => {
    const { m, edu } = setup();
    edu.buffer.set([1, 2, 3, 4]);
    dmaToIova0(m);
    expect(m.memory.read(0x20_0000, 4)).toBe(0x0403_0201);
    // The guest moves the page without invalidating: the cached translation still wins.
    m.memory.write(L1, 4, 0x30_0000 | 3);
    edu.buffer.set([5, 6, 7, 8]);
    dmaToIova0(m);
    expect(m.memory.read(0x20_0000, 4)).toBe(0x0807_0605);
    expect(m.memory.read(0x30_0000, 4)).toBe(0);
    // A fault record (a requester with no context entry) and queue setup, then save.
    m.memory.write(VTD + 0x90, 4, 0x40_0000);
    m.memory.write(VTD + 0x18, 4, 0x8400_0000);
    const u = m.iommus[0]!;
    u.translatorFor(m.pci.rootBus.requester(0x28)).translate(0x1000 as never, 1, { iova: 0, translated: 0, addrMask: 0, perm: 0 } as never);
    const saved = u.saveState({ nameOf: () => null, find: () => null });
    expect(u.iotlb.size).toBeGreaterThan(0);
    // Mutate everything the section holds, then load.
    m.memory.write(VTD + 0x34, 4, 0xffff_ffff); // clear fault status
    m.memory.write(VTD + 0xa0, 4, 0); // IECTL unmasked (TE stays on: turning it off would flush the caches itself)
    const iotlbBefore = u.iotlb.size;
    const resets: string[] = [];
    u.events.on('reset', (e) => resets.push(e.why));
    u.loadState(SectionReader.of(saved, 'iommu:0'), { nameOf: () => null, find: () => null });
    expect(resets).toEqual(['load']); // listeners (the sanitizer) learn that every cache is empty
    expect(u.saveState({ nameOf: () => null, find: () => null })).toEqual(saved);
    expect(iotlbBefore).toBeGreaterThan(0);
    expect(u.iotlb.size).toBe(0);
    expect(m.memory.read(VTD + 0x1c, 4)).toBe((0x8400_0000 | 0x4000_0000) >>> 0); // TES | QIES | RTPS
    expect(m.memory.read(VTD + 0x34, 4) & 0x2).toBe(0x2); // PPF: the fault record is back
    expect(m.memory.read(VTD + 0x90, 4)).toBe(0x40_0000);
    edu.buffer.set([9, 9, 9, 9]);
    dmaToIova0(m);
    expect(m.memory.read(0x30_0000, 4)).toBe(0x0909_0909);
    m.dispose();
  });

  it('refuses a section with a wrong register count', () => {
    const { m } = setup();
    const u = m.iommus[0]!;
    const names = { nameOf: () => null, find: () => null };
    const saved = { ...u.saveState(names), regs: 'AAAA' };
    expect(() => u.loadState(SectionReader.of(saved, 'iommu:0'), names)).toThrow(/iommu:0\.regs/);
    m.dispose();
  });
});
