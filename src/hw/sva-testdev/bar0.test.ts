/**
 * BAR0's decoding (bar0.ts) through the bus: the region mapped in an
 * address space (its access rules apply), the register state of
 * registers.ts, and a fake rest-of-device that records COMMAND writes and
 * supplies STATUS and the busy flag.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion } from '../../memory/region.js';
import { SvaBar0, type SvaBar0Device } from './bar0.js';
import { SvaRegisters } from './registers.js';
import { SVA_ID, SvaIrq, SvaPci, SvaReg } from './regs.js';

const BASE = 0x1000_0000;

/** The rest of the device, as BAR0 sees it. */
class FakeDevice implements SvaBar0Device {
  busy = false;
  statusValue = 0xb;
  statusReads = 0;
  readonly commands: number[] = [];
  status(): number {
    this.statusReads++;
    return this.statusValue;
  }
  runCommand(cmd: number): void {
    this.commands.push(cmd);
  }
}

function setup() {
  const regs = new SvaRegisters({ msiEnabled: () => false, msiNotify: () => {} });
  const device = new FakeDevice();
  const atc = { count: 5 };
  const bar = new SvaBar0(regs, atc, device);
  const system = new ContainerRegion('system', 2 ** 32);
  system.add(bar.region, BASE);
  const memory = new AddressSpace('memory', system);
  const rd = (off: number, size: 1 | 2 | 4 = 4) => memory.read(BASE + off, size);
  const wr = (off: number, v: number, size: 1 | 2 | 4 = 4) => memory.write(BASE + off, size, v >>> 0);
  return { regs, device, atc, bar, memory, rd, wr };
}

/** The guest-writable registers with the value a write of all-ones leaves. */
const WRITABLE: readonly [number, number][] = [
  [SvaReg.AddrLo, 0xffff_ffff],
  [SvaReg.AddrHi, 0xffff_ffff],
  [SvaReg.Length, 0xffff_ffff],
  [SvaReg.Pasid, 0xf_ffff],
  [SvaReg.IrqEnable, 0x7],
  [SvaReg.Control, 0x3],
  [SvaReg.Prgi, 0x1ff],
];

describe('BAR0 region', () => {
  it('is 8 KiB, takes 1..8 bytes at any alignment, implemented as pieces of up to 4', () => {
    const { bar } = setup();
    expect(bar.region.size).toBe(SvaPci.MmioSize);
    expect(bar.region.rules).toEqual({ valid: { min: 1, max: 8, unaligned: true }, impl: { min: 1, max: 4 } });
  });
});

describe('BAR0 registers', () => {
  it('ID, STATUS from the device, ATC_COUNT from the ATC, the rest from the register state', () => {
    const { regs, device, atc, rd } = setup();
    regs.result = 0x13;
    regs.lastAts = 0xc13;
    regs.xlatHi = 0x12;
    regs.lastPrg = 0x01a5_0000;
    atc.count = 7;
    expect([rd(SvaReg.Id), rd(SvaReg.Status), rd(SvaReg.AtcCount)]).toEqual([SVA_ID, 0xb, 7]);
    expect([rd(SvaReg.Result), rd(SvaReg.LastAts), rd(SvaReg.XlatHi), rd(SvaReg.LastPrg)]).toEqual([0x13, 0xc13, 0x12, 0x01a5_0000]);
    expect(device.statusReads).toBe(1);
  });

  it('the writable registers keep their masked bits', () => {
    const { rd, wr } = setup();
    for (const [off] of WRITABLE) wr(off, 0xffff_ffff);
    expect(WRITABLE.map(([off]) => rd(off))).toEqual(WRITABLE.map(([, v]) => v));
  });

  it('the read-only registers ignore writes', () => {
    const { regs, rd, wr } = setup();
    const ro = [SvaReg.Id, SvaReg.Status, SvaReg.Result, SvaReg.AtcCount, SvaReg.InvCount, SvaReg.PrqCount, SvaReg.PrgCount, SvaReg.LastAts, SvaReg.XlatLo, SvaReg.XlatHi, SvaReg.LastPrg];
    const before = ro.map((off) => rd(off));
    for (const off of ro) wr(off, 0x5a5a_5a5a);
    expect(ro.map((off) => rd(off))).toEqual(before);
    expect([regs.result, regs.invCount, regs.prqCount, regs.prgCount, regs.lastAts, regs.xlatLo, regs.lastPrg]).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('IRQ_STATUS is write 1 to clear', () => {
    const { regs, rd, wr } = setup();
    regs.irqStatus = SvaIrq.Done | SvaIrq.PageResponse | SvaIrq.AtcInvalidated;
    wr(SvaReg.IrqStatus, SvaIrq.PageResponse);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done | SvaIrq.AtcInvalidated);
  });

  it('a COMMAND write goes to the device unmasked and is not stored here; reading COMMAND runs nothing', () => {
    const { regs, device, rd, wr } = setup();
    wr(SvaReg.Command, 0xdead_beef);
    expect(device.commands).toEqual([0xdead_beef]);
    expect(rd(SvaReg.Command)).toBe(0);
    regs.command = 0x201;
    expect(rd(SvaReg.Command)).toBe(0x201);
    expect(device.commands).toHaveLength(1);
  });

  it('8-byte accesses reach the pair at the lower dword', () => {
    const { memory, rd } = setup();
    memory.write64(BASE + SvaReg.AddrLo, 0x1234_5678_9abc_def0n);
    expect([rd(SvaReg.AddrLo), rd(SvaReg.AddrHi)]).toEqual([0x9abc_def0, 0x1234_5678]);
    expect(memory.read64(BASE + SvaReg.AddrLo)).toBe(0x1234_5678_9abc_def0n);
  });

  it('narrow or misaligned register accesses read 0 and are dropped; so are offsets without a register', () => {
    const { device, rd, wr } = setup();
    wr(SvaReg.AddrLo, 0x1111_1111);
    expect([rd(SvaReg.Id, 1), rd(SvaReg.Id, 2), rd(SvaReg.AddrLo + 1), rd(SvaReg.AddrLo, 2)]).toEqual([0, 0, 0, 0]);
    wr(SvaReg.AddrLo, 0xff, 1);
    wr(SvaReg.AddrLo, 0xffff, 2);
    wr(SvaReg.AddrLo + 2, 0xffff_ffff);
    wr(SvaReg.Command, 1, 2);
    wr(SvaReg.Command + 1, 1);
    expect([rd(SvaReg.AddrLo), device.commands]).toEqual([0x1111_1111, []]);
    wr(0x50, 0xffff_ffff);
    wr(0xffc, 0xffff_ffff);
    expect([rd(0x50), rd(0xffc)]).toEqual([0, 0]);
  });
});

describe('BAR0 decoding called directly (shapes the bus may not produce)', () => {
  it('a misaligned dword at a register reads 0 and is dropped', () => {
    const { bar, regs, device } = setup();
    regs.addrLo = 0x1111_1111;
    expect([bar.read(SvaReg.AddrLo + 1, 4), bar.read(SvaReg.Id + 2, 4)]).toEqual([0, 0]);
    bar.write(SvaReg.AddrLo + 2, 4, 0xffff_ffff);
    bar.write(SvaReg.Command + 1, 4, 1);
    expect([regs.addrLo, regs.addrHi, device.commands]).toEqual([0x1111_1111, 0, []]);
  });

  it('a buffer piece running past the buffer\'s end reads 0 for the missing bytes and drops them', () => {
    const { bar, regs } = setup();
    regs.buffer.fill(0xab, -2);
    expect(bar.read(SvaPci.MmioSize - 2, 4)).toBe(0xabab);
    bar.write(SvaPci.MmioSize - 1, 4, 0x4433_2211);
    expect(Array.from(regs.buffer.subarray(-2))).toEqual([0xab, 0x11]);
  });
});

describe('BAR0 buffer', () => {
  it('little-endian bytes at any size and alignment', () => {
    const { regs, rd, wr } = setup();
    wr(SvaReg.Buffer + 1, 0x4433_2211);
    wr(SvaReg.Buffer + 6, 0x66_55, 2);
    wr(SvaReg.Buffer + 8, 0x77, 1);
    expect(Array.from(regs.buffer.subarray(0, 10))).toEqual([0, 0x11, 0x22, 0x33, 0x44, 0, 0x55, 0x66, 0x77, 0]);
    expect([rd(SvaReg.Buffer + 3), rd(SvaReg.Buffer + 5, 2), rd(SvaReg.Buffer + 8, 1)]).toEqual([0x5500_4433, 0x5500, 0x77]);
  });

  it('the last bytes of the BAR are the buffer\'s last bytes', () => {
    const { regs, rd, wr } = setup();
    wr(SvaPci.MmioSize - 4, 0xa1b2_c3d4);
    expect(Array.from(regs.buffer.subarray(-4))).toEqual([0xd4, 0xc3, 0xb2, 0xa1]);
    expect(rd(SvaPci.MmioSize - 2, 2)).toBe(0xa1b2);
  });
});

describe('BAR0 while a command executes', () => {
  it('refuses every access: registers and buffer read 0, writes are dropped, no command runs', () => {
    const { regs, device, rd, wr } = setup();
    regs.buffer[0] = 0x42;
    regs.addrLo = 0x1000;
    device.busy = true;
    expect([rd(SvaReg.Id), rd(SvaReg.AddrLo), rd(SvaReg.Status), rd(SvaReg.Buffer, 1)]).toEqual([0, 0, 0, 0]);
    wr(SvaReg.AddrLo, 0x2000);
    wr(SvaReg.Command, 1);
    wr(SvaReg.Buffer, 0x99, 1);
    expect([regs.addrLo, regs.buffer[0], device.commands.length, device.statusReads]).toEqual([0x1000, 0x42, 0, 0]);
    device.busy = false;
    expect([rd(SvaReg.AddrLo), rd(SvaReg.Buffer, 1)]).toEqual([0x1000, 0x42]);
  });
});
