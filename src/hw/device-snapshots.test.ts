/**
 * Save / mutate / load / compare for the device sections outside PCI core
 * and VT-d: IOAPIC, APIC bus, fw_cfg, edu, iommu-testdev, sva-testdev.
 */
import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { SectionReader, type SnapshotSection } from '../core/snapshot-state.js';
import { EduDevice } from './edu/edu.js';
import { IommuTestdev } from './iommu-testdev/iommu-testdev.js';
import { SvaTestdev } from './sva-testdev/sva-testdev.js';

const load = (d: { loadState(r: SectionReader): void }, s: SnapshotSection): void => d.loadState(SectionReader.of(s, 'test'));

function cfgw(m: Machine, devfn: number, reg: number, v: number): void {
  m.io.write(0xcf8, 4, (0x8000_0000 | (devfn << 8) | reg) >>> 0);
  m.io.write(0xcfc, 4, v);
}

function device<T>(m: Machine, type: string): T {
  return m.devices.find((d) => d.spec.type.name === type)!.device as T;
}

describe('device snapshot sections', () => {
  it('IOAPIC: ID, IOREGSEL, IRR, entries (remote IRR too); nothing is delivered on load', () => {
    const m = createMachine({ accel: 'qtest' });
    const io = m.ioapic;
    const fresh = io.saveState();
    m.memory.write(0xfec0_0000, 4, 0x00);
    m.memory.write(0xfec0_0010, 4, 0x0500_0000);
    m.memory.write(0xfec0_0000, 4, 0x10 + 2 * 10);
    m.memory.write(0xfec0_0010, 4, 0x0000_8031); // level, vector 0x31
    io.pins[10]!.set(true); // delivered: remote IRR set
    const busy = io.saveState();
    const before = m.msiSink.delivered.length;
    load(io, fresh);
    expect(io.redirectionEntry(10)).toBe(0x10000n);
    load(io, busy);
    expect(m.msiSink.delivered.length).toBe(before);
    expect(io.saveState()).toEqual(busy);
    expect(io.redirectionEntry(10) & 0x4000n).toBe(0x4000n);
    expect(m.memory.read(0xfec0_0010, 4)).toBe(0x0000_c031);
    m.memory.write(0xfec0_0000, 4, 0);
    expect(m.memory.read(0xfec0_0010, 4)).toBe(0x0500_0000);
    m.dispose();
  });

  it('fw_cfg: selector, offset and writable files', () => {
    const m = createMachine({ accel: 'qtest' });
    const fw = m.firmware.fwCfg;
    m.io.write(0x510, 2, 0);
    expect(m.io.read(0x511, 1)).toBe(0x51); // 'Q'
    const s = fw.saveState();
    m.io.write(0x510, 2, 1);
    load(fw, s);
    expect(fw.saveState()).toEqual(s);
    expect(m.io.read(0x511, 1)).toBe(0x45); // 'E': the offset came back too
    expect(Object.keys(s['writableFiles'] as object)).toEqual(['etc/smi/requested-features']);
    m.dispose();
  });

  it('edu: registers, buffer, dma_mask and a pending DMA whose timer is re-armed', () => {
    const m = createMachine({ accel: 'qtest', devices: ['edu,addr=3.0'] });
    const edu = device<EduDevice>(m, 'edu');
    cfgw(m, 0x18, 0x10, 0xfe00_0000);
    cfgw(m, 0x18, 0x04, 0x6);
    edu.buffer.set([0xaa, 0xbb]);
    edu.dmaMask = 0xfff_ffffn;
    m.memory.write(0xfe00_0004, 4, 0x1111_1111);
    m.memory.write(0xfe00_0080, 4, 0x40000);
    m.memory.write(0xfe00_0088, 4, 0x5000);
    m.memory.write(0xfe00_0090, 4, 2);
    m.memory.write(0xfe00_0098, 4, 3);
    const s = edu.saveState();
    m.clock.step(200_000_000); // the DMA runs
    expect(m.memory.read(0x5000, 2)).toBe(0xbbaa);
    m.memory.write(0x5000, 2, 0);
    edu.buffer.fill(0);
    edu.dmaMask = 0n;
    m.clock.loadState({ time: '1000', seq: 0 });
    load(edu, s);
    expect(edu.saveState()).toEqual(s);
    expect(edu.dmaPending).toBe(true);
    m.clock.step(200_000_000);
    expect(m.memory.read(0x5000, 2)).toBe(0xbbaa);
    expect(m.memory.read(0xfe00_0004, 4)).toBe(~0x1111_1111 >>> 0);
    m.dispose();
  });

  it('iommu-testdev: registers and an armed doorbell', () => {
    const m = createMachine({ accel: 'qtest', devices: ['iommu-testdev,addr=4.0'] });
    const d = device<IommuTestdev>(m, 'iommu-testdev');
    cfgw(m, 0x20, 0x10, 0xfe00_0000);
    cfgw(m, 0x20, 0x04, 0x2);
    m.memory.write(0xfe00_0008, 4, 0x1000); // IOVA lo
    m.memory.write(0xfe00_0010, 4, 0x80); // length
    m.memory.write(0xfe00_0014, 4, 1); // doorbell: armed
    const s = d.saveState();
    m.memory.write(0xfe00_0014, 4, 0);
    m.memory.write(0xfe00_0008, 4, 0);
    load(d, s);
    expect(d.saveState()).toEqual(s);
    expect(d.isArmed).toBe(true);
    expect(m.memory.read(0xfe00_0008, 4)).toBe(0x1000);
    m.dispose();
  });

  it('sva-testdev: BAR0 registers, buffer and PRI accounting; the ATC is dropped', () => {
    const m = createMachine({ accel: 'qtest', devices: ['sva-testdev,addr=5.0'] });
    const d = device<SvaTestdev>(m, 'sva-testdev');
    cfgw(m, 0x28, 0x10, 0xfe00_0000);
    cfgw(m, 0x28, 0x04, 0x6);
    d.buffer.set([1, 2, 3]);
    d.atc.insert(0, 0x1000, { status: 0, translated: 0x2000, addrMask: 0xfff, read: true, write: true, untranslatedOnly: false } as never);
    const s = d.saveState();
    d.buffer.fill(0);
    load(d, s);
    expect(d.saveState()).toEqual(s);
    expect(d.buffer.subarray(0, 3)).toEqual(Uint8Array.of(1, 2, 3));
    expect(d.atc.count).toBe(0);
    m.dispose();
  });

  it('the APIC bus keeps its dropped-write count', () => {
    const m = createMachine({ accel: 'qtest' });
    m.msiSink.droppedLapicWrites = 3;
    const s = m.msiSink.saveState();
    m.msiSink.droppedLapicWrites = 0;
    load(m.msiSink, s);
    expect(m.msiSink.droppedLapicWrites).toBe(3);
    m.dispose();
  });
});
