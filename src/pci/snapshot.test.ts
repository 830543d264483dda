import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { pciFunctions } from '../machine/snapshot.js';
import { SectionReader, type SnapshotSection } from '../core/snapshot-state.js';
import type { PciDevice } from './device.js';

const CF8 = 0xcf8;
const CFC = 0xcfc;

function cfgw(m: Machine, bus: number, devfn: number, reg: number, size: 1 | 2 | 4, v: number): void {
  m.io.write(CF8, 4, (0x8000_0000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  m.io.write(CFC + (reg & 3), size, v);
}
function cfgr(m: Machine, bus: number, devfn: number, reg: number): number {
  m.io.write(CF8, 4, (0x8000_0000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  return m.io.read(CFC, 4);
}
const load = (d: { loadState(r: SectionReader): void }, s: SnapshotSection): void => d.loadState(SectionReader.of(s, 'test'));

describe('PCI snapshot sections', () => {
  it('a function section restores config, masks and BAR mappings; save after load is identical', () => {
    const m = createMachine({ accel: 'qtest', devices: ['edu,addr=4.0'] });
    const edu = pciFunctions(m).get('04.0')!;
    cfgw(m, 0, 0x20, 0x10, 4, 0xe000_0000);
    cfgw(m, 0, 0x20, 0x04, 2, 0x6);
    m.memory.write(0xe000_0004, 4, 0x0f0f_0f0f);
    const saved = edu.saveState();
    cfgw(m, 0, 0x20, 0x10, 4, 0xd000_0000);
    cfgw(m, 0, 0x20, 0x3c, 1, 0x55);
    m.memory.write(0xd000_0004, 4, 0);
    load(edu, saved);
    expect(edu.saveState()).toEqual(saved);
    expect(cfgr(m, 0, 0x20, 0x10)).toBe(0xe000_0000);
    expect(m.memory.read(0xe000_0004, 4)).toBe(~0x0f0f_0f0f >>> 0);
    expect(m.memory.read(0xd000_0004, 4)).toBe(0); // the old mapping is gone
  });

  it('MCH: locked SMRAM masks, the SMRAM views and the F_SMBASE lock come back', () => {
    const m = createMachine({ accel: 'qtest' });
    const mch = pciFunctions(m).get('00.0')!;
    const fresh = mch.saveState();
    cfgw(m, 0, 0, 0x9d, 1, 0x4a); // D_OPEN | G_SMRAME | C_BASE_SEG: RAM shows at 0xa0000
    m.memory.write(0xa_0000, 4, 0x1234_5678);
    cfgw(m, 0, 0, 0x9c, 1, 0x02); // F_SMBASE lock
    cfgw(m, 0, 0, 0x9d, 1, 0x1a); // D_LCK: masks narrowed
    const locked = mch.saveState();
    load(mch, fresh);
    cfgw(m, 0, 0, 0x9d, 1, 0x4a);
    expect(m.memory.read(0xa_0000, 4)).toBe(0x1234_5678);
    load(mch, locked);
    expect(mch.saveState()).toEqual(locked);
    cfgw(m, 0, 0, 0x9d, 1, 0x4a); // ignored: locked
    expect(cfgr(m, 0, 0, 0x9c) >>> 8 & 0xff).toBe(0x1a);
    expect(m.memory.read(0x3_0000, 4)).toBe(0xffff_ffff); // SMBASE black hole
  });

  it('host: CONFIG_ADDRESS, ECAM window and INTx counts; bridges: windows and secondary bus', () => {
    const m = createMachine({ accel: 'qtest', devices: ['pcie-root-port,id=rp,chassis=1,addr=2.0', 'edu,bus=rp'] });
    const host = m.pci.host;
    const rp = pciFunctions(m).get('02.0') as PciDevice;
    cfgw(m, 0, 0x10, 0x18, 4, 0x0001_0100);
    cfgw(m, 0, 0x10, 0x20, 4, 0xe010_e000);
    cfgw(m, 0, 0x10, 0x04, 2, 0x6);
    cfgw(m, 1, 0, 0x10, 4, 0xe000_0000);
    cfgw(m, 1, 0, 0x04, 2, 0x6);
    cfgw(m, 0, 0, 0x60, 4, 0xb000_0001);
    m.io.write(CF8, 4, 0x8000_1234);
    const h = host.saveState();
    const r = rp.saveState();
    const mch = pciFunctions(m).get('00.0')!;
    const mchState = mch.saveState();
    cfgw(m, 0, 0, 0x60, 4, 0xc000_0001);
    cfgw(m, 0, 0x10, 0x20, 4, 0);
    load(rp, r);
    load(mch, mchState);
    load(host, h);
    expect(host.saveState()).toEqual(h);
    expect(m.io.read(CF8, 4)).toBe(0x8000_1234);
    expect(host.ecamWindow()).toEqual({ base: 0xb000_0000, length: 0x1000_0000 });
    expect(m.memory.read(0xb000_0000 + (1 << 20), 4)).toBe(0x11e8_1234); // edu's IDs through ECAM on bus 1
    expect(m.memory.read(0xc000_0000 + (1 << 20), 4)).toBe(0); // not at the moved base
    expect(m.memory.read(0xe000_0000, 4)).toBe(0x0100_00ed); // edu ident through the restored window
  });
});
