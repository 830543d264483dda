/**
 * iommu-testdev through its public interface: a PCI bus over guest RAM, the
 * BAR reached through the system address space (bus rules included), DMA
 * through a test translator standing in for the IOMMU.  Every value here was
 * checked on QEMU 11.1 (see test/diff/iommu-testdev.test.ts for the transcripts).
 */
import { MSI_WINDOW } from '../../core/irq.js';
import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { DmaAccess, IommuPerm, type DmaRequester, type DmaTranslator, type IotlbEntry } from '../../memory/iommu.js';
import { createRam } from '../../memory/ram-backend.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { PciBus, type PciBusHost } from '../../pci/bus.js';
import { PciCommand, PciReg } from '../../pci/config.js';
import { iommuTestdevDeviceType, IommuTestdev } from './index.js';
import { ItdPci, ItdReg, ItdResult, patternByte } from './regs.js';
import { PATTERN_DMA_CHUNK } from './pattern-dma.js';

const BAR = 0xe000_0000;
const RAM_SIZE = 16 * 1024 * 1024;
const PAGE = 0x1000;

/** A translator mapping IOVA pages by a function (null: fault); records what it was asked. */
function pageTranslator(map: (page: number) => number | null, perm: IommuPerm = IommuPerm.ReadWrite) {
  const asked: number[] = [];
  const translator: DmaTranslator = {
    interruptWindow: MSI_WINDOW,
    translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
      asked.push(iova);
      const page = iova - (iova % PAGE);
      const to = map(page);
      if (to === null) return false;
      out.iova = page;
      out.translated = to;
      out.addrMask = PAGE - 1;
      out.perm = perm;
      return true;
    },
    interruptWrite() {},
  };
  return { translator, asked };
}

function setup(translator?: DmaTranslator, command = PciCommand.Memory) {
  const ram = createRam(RAM_SIZE, 'ts');
  const system = new ContainerRegion('system', 2 ** 64);
  system.add(new RamRegion('ram', RAM_SIZE, ram), 0);
  const memory = new AddressSpace('memory', system);
  const host: PciBusHost = {
    dmaMemory: memory,
    iommuGeneration: 0,
    translatorFor: (_r: DmaRequester) => translator ?? null,
    mapRootIrq: (_devfn, pin) => pin,
    setRootIrq: () => {},
    rootIrqCount: 8,
  };
  const bus = new PciBus('pcie.0', host, null, true, { memory: system, io: new ContainerRegion('io', 0x10000) });
  const dev = new IommuTestdev({ systemMemory: memory });
  bus.plug(dev, { devfn: 0x08 });
  dev.configWrite(PciReg.Bar0, 4, BAR);
  dev.configWrite(PciReg.Command, 2, command);
  const rd = (off: number) => memory.read(BAR + off, 4);
  const wr = (off: number, v: number) => memory.write(BAR + off, 4, v >>> 0);
  /** Programs a DMA, arms it and triggers it; returns the result register. */
  const run = (iova: bigint, gpa: bigint, len: number, attrs?: number) => {
    wr(ItdReg.IovaLo, Number(iova & 0xffff_ffffn));
    wr(ItdReg.IovaHi, Number(iova >> 32n));
    wr(ItdReg.GpaLo, Number(gpa & 0xffff_ffffn));
    wr(ItdReg.GpaHi, Number(gpa >> 32n));
    wr(ItdReg.Length, len);
    if (attrs !== undefined) wr(ItdReg.Attrs, attrs);
    wr(ItdReg.Doorbell, 1);
    expect(rd(ItdReg.Result)).toBe(ItdResult.Busy);
    expect(rd(ItdReg.Trigger)).toBe(0);
    return rd(ItdReg.Result);
  };
  /** RAM bytes [addr, addr+n) hold the pattern from phase `from`. */
  const holdsPattern = (addr: number, n: number, from = 0) => {
    for (let i = 0; i < n; i++) if (ram.readU8(addr + i) !== patternByte(from + i)) return false;
    return true;
  };
  return { ram, memory, dev, rd, wr, run, holdsPattern };
}

describe('iommu-testdev PCI identity', () => {
  it('has QEMU 11.1 IDs, class, subsystem, no pin, no capabilities and a 4 KiB 32-bit BAR', () => {
    const { dev } = setup();
    expect(dev.configRead(0x00, 4)).toBe(0x0005_1b36);
    expect(dev.configRead(0x08, 4)).toBe(0x00ff_0000);
    expect(dev.configRead(0x2c, 4)).toBe(0x1100_1af4);
    expect(dev.configRead(0x3c, 4)).toBe(0);
    expect(dev.configRead(0x06, 2)).toBe(0);
    expect(dev.configRead(0x34, 1)).toBe(0);
    dev.configWrite(PciReg.Bar0, 4, 0xffff_ffff);
    expect(dev.configRead(PciReg.Bar0, 4)).toBe(0xffff_f000);
    dev.configWrite(PciReg.Bar0 + 4, 4, 0xffff_ffff);
    expect(dev.configRead(PciReg.Bar0 + 4, 4)).toBe(0);
    expect(ItdPci.MmioSize).toBe(0x1000);
  });

  it('the device type: PCI, no properties, QEMU 11.1 listing, reads back through system memory', () => {
    expect(iommuTestdevDeviceType).toMatchObject({ name: 'iommu-testdev', bus: 'pci', qemuRelease: '11.1', description: 'A test device for IOMMU' });
    expect(Object.keys(iommuTestdevDeviceType.props)).toEqual([]);
  });
});

describe('iommu-testdev registers', () => {
  it('reset values: 0, result idle, attributes 0x2; the doorbell and unused offsets read 0', () => {
    const { rd } = setup();
    const expected: Record<number, number> = { [ItdReg.Result]: ItdResult.Idle, [ItdReg.Attrs]: 0x2 };
    for (let off = 0x04; off < 0x1000; off += 4) expect(rd(off), `0x${off.toString(16)}`).toBe(expected[off] ?? 0);
  });

  it('RW registers keep any value; the trigger and unused offsets ignore writes', () => {
    const { rd, wr } = setup();
    const rw = [ItdReg.IovaLo, ItdReg.IovaHi, ItdReg.Length, ItdReg.Result, ItdReg.Attrs, ItdReg.GpaLo, ItdReg.GpaHi];
    rw.forEach((off, i) => wr(off, 0xa5a5_0000 + i));
    rw.forEach((off, i) => expect(rd(off)).toBe(0xa5a5_0000 + i));
    wr(ItdReg.Trigger, 0x1234);
    wr(0x24, 0x5678);
    wr(0xffc, 0x9abc);
    expect([rd(0x24), rd(0xffc)]).toEqual([0, 0]);
    rw.forEach((off, i) => expect(rd(off)).toBe(0xa5a5_0000 + i));
  });

  it('doorbell: bit 0 arms (result busy), any value without it disarms (result idle); it reads 0', () => {
    const { rd, wr, dev } = setup();
    wr(ItdReg.Doorbell, 3);
    expect([dev.isArmed, rd(ItdReg.Result), rd(ItdReg.Doorbell)]).toEqual([true, ItdResult.Busy, 0]);
    wr(ItdReg.Doorbell, 2);
    expect([dev.isArmed, rd(ItdReg.Result)]).toEqual([false, ItdResult.Idle]);
    wr(ItdReg.Doorbell, 0xffff_ffff);
    expect(dev.isArmed).toBe(true);
    wr(ItdReg.Doorbell, 0);
    expect(dev.isArmed).toBe(false);
  });

  it('only aligned 4-byte accesses reach the registers; 8-byte byte-range accesses are split in two', () => {
    const { rd, wr, memory } = setup();
    // qtest readq/writeq are byte-range accesses (address_space_read/write): the bus splits them.
    const q = new Uint8Array(8);
    const readq = (off: number) => {
      memory.readBytes(BAR + off, q);
      return new DataView(q.buffer).getBigUint64(0, true);
    };
    const writeq = (off: number, v: bigint) => {
      new DataView(q.buffer).setBigUint64(0, v, true);
      memory.writeBytes(BAR + off, q);
    };
    wr(ItdReg.IovaLo, 0x1122_3344);
    expect([memory.read(BAR + 4, 1), memory.read(BAR + 4, 2), memory.read(BAR + 6, 2), memory.read(BAR + 6, 4)]).toEqual([0, 0, 0, 0]);
    memory.write(BAR + 4, 1, 0xaa);
    memory.write(BAR + 4, 2, 0xbbbb);
    memory.write(BAR + 6, 4, 0xffff_ffff);
    expect(rd(ItdReg.IovaLo)).toBe(0x1122_3344);
    expect(readq(4)).toBe(0x1122_3344n);
    writeq(4, 0x5566_7788_99aa_bbccn);
    expect([rd(ItdReg.IovaLo), rd(ItdReg.IovaHi)]).toEqual([0x99aa_bbcc, 0x5566_7788]);
    // readq at 0 reads the trigger, then IOVA lo: the trigger runs (here: not armed).
    expect(readq(0)).toBe(0x99aa_bbcc_0000_0000n);
    expect(rd(ItdReg.Result)).toBe(ItdResult.NotArmed);
    // A 1- or 2-byte read of the trigger does not run it.
    wr(ItdReg.Result, 7);
    memory.read(BAR, 1);
    memory.read(BAR, 2);
    expect(rd(ItdReg.Result)).toBe(7);
  });

  it('reset: registers back to their reset values, disarmed', () => {
    const { rd, wr, dev } = setup();
    for (const off of [ItdReg.IovaLo, ItdReg.IovaHi, ItdReg.Length, ItdReg.Attrs, ItdReg.GpaLo, ItdReg.GpaHi]) wr(off, 0xffff_ffff);
    wr(ItdReg.Doorbell, 1);
    dev.reset();
    dev.configWrite(PciReg.Bar0, 4, BAR);
    dev.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(dev.isArmed).toBe(false);
    for (let off = 0x04; off <= 0x20; off += 4) expect(rd(off)).toBe(off === ItdReg.Result ? ItdResult.Idle : off === ItdReg.Attrs ? 2 : 0);
  });
});

describe('iommu-testdev DMA, no IOMMU', () => {
  it('writes 78 56 34 12 repeating, cut at the length, reads back at the GPA: result 0, disarmed', () => {
    const { ram, rd, run, dev } = setup();
    ram.fill(0x10_0000, 16, 0xee);
    expect(run(0x10_0000n, 0x10_0000n, 7)).toBe(ItdResult.Ok);
    expect(Array.from({ length: 8 }, (_, i) => ram.readU8(0x10_0000 + i))).toEqual([0x78, 0x56, 0x34, 0x12, 0x78, 0x56, 0x34, 0xee]);
    expect(dev.isArmed).toBe(false);
    expect(rd(ItdReg.Trigger)).toBe(0);
    expect(rd(ItdReg.Result)).toBe(ItdResult.NotArmed);
  });

  it('not armed: 0xDEAD0005 and nothing written', () => {
    const { ram, rd, wr } = setup();
    wr(ItdReg.IovaLo, 0x10_0000);
    wr(ItdReg.Length, 4);
    expect(rd(ItdReg.Trigger)).toBe(0);
    expect(rd(ItdReg.Result)).toBe(ItdResult.NotArmed);
    expect(ram.readU32(0x10_0000)).toBe(0);
  });

  it('length 0: 0xDEAD0001, disarmed', () => {
    const { run, dev } = setup();
    expect(run(0x10_0000n, 0x10_0000n, 0)).toBe(ItdResult.BadLength);
    expect(dev.isArmed).toBe(false);
  });

  it('attributes: space valid with a contradicting secure bit is 0xDEAD0006 (nothing written); the rest run', () => {
    const { ram, run, dev } = setup();
    const bad = [0x8, 0xb, 0xffff_fff8, 0x18];
    for (const a of bad) {
      expect(run(0x10_0000n, 0x10_0000n, 4, a), `attrs 0x${a.toString(16)}`).toBe(ItdResult.BadAttrs);
      expect(dev.isArmed).toBe(false);
    }
    expect(ram.readU32(0x10_0000)).toBe(0);
    for (const a of [0, 1, 2, 3, 4, 5, 6, 7, 9, 0xa, 0xc, 0xd, 0xe, 0xf, 0x10, 0xffff_fff7, 0xffff_fffa]) {
      expect(run(0x10_0000n, 0x10_0000n, 4, a), `attrs 0x${a.toString(16)}`).toBe(ItdResult.Ok);
    }
  });

  it('runs with bus mastering disabled (QEMU uses the IOMMU address space, not the bus-master one)', () => {
    const { run, holdsPattern } = setup(undefined, PciCommand.Memory);
    expect(run(0x20_0000n, 0x20_0000n, 16)).toBe(ItdResult.Ok);
    expect(holdsPattern(0x20_0000, 16)).toBe(true);
  });

  it('a GPA that does not hold the pattern: 0xDEAD0004; an unassigned one: 0xDEAD0003', () => {
    const { run } = setup();
    expect(run(0x10_0000n, 0x20_0000n, 8)).toBe(ItdResult.Mismatch);
    expect(run(0x10_0000n, 0x10_0001n, 7)).toBe(ItdResult.Mismatch);
    expect(run(0x10_0000n, BigInt(RAM_SIZE), 4)).toBe(ItdResult.ReadFail);
    // Partly RAM, partly nothing: the failed read wins over the mismatch.
    expect(run(0x10_0000n, BigInt(RAM_SIZE - 4), 8)).toBe(ItdResult.ReadFail);
  });

  it('a write running off RAM: 0xDEAD0002, the RAM part written', () => {
    const { run, holdsPattern } = setup();
    expect(run(BigInt(RAM_SIZE - 4), 0n, 8)).toBe(ItdResult.TxFail);
    expect(holdsPattern(RAM_SIZE - 4, 4)).toBe(true);
  });

  it('a DMA into its own BAR is blocked (QEMU re-entrancy guard): 0xDEAD0002 / 0xDEAD0003, registers untouched', () => {
    const { rd, run } = setup();
    expect(run(BigInt(BAR), 0x10_0000n, 4)).toBe(ItdResult.TxFail);
    expect(run(BigInt(BAR + ItdReg.IovaLo), 0x10_0000n, 4)).toBe(ItdResult.TxFail);
    expect(rd(ItdReg.IovaLo)).toBe(BAR + ItdReg.IovaLo);
    // Reading back the trigger does not run a nested DMA; reading the result register fails too.
    expect(run(0x10_0000n, BigInt(BAR), 4)).toBe(ItdResult.ReadFail);
    expect(run(0x10_0000n, BigInt(BAR + ItdReg.Result), 4)).toBe(ItdResult.ReadFail);
    // BAR0 answers again afterwards.
    expect(rd(ItdReg.GpaLo)).toBe(BAR + ItdReg.Result);
  });

  it('addresses wrap past 2^64 (IOVA: written at 0; GPA: a failed read)', () => {
    const { ram, run, holdsPattern } = setup();
    expect(run(0xffff_ffff_ffff_fffcn, 0n, 8)).toBe(ItdResult.TxFail);
    expect(holdsPattern(0, 4, 4)).toBe(true);
    expect(run(0x10_0000n, 0xffff_ffff_ffff_fffcn, 8)).toBe(ItdResult.ReadFail);
    expect(run(0x10_0000n, 2n ** 53n - 4n, 8)).toBe(ItdResult.ReadFail);
    expect(ram.readU32(0x4)).toBe(0);
  });

  it('long transfers: the pattern phase carries across pieces from an unaligned start', () => {
    const { run, holdsPattern } = setup();
    const start = PATTERN_DMA_CHUNK * 3 - 3;
    const len = PATTERN_DMA_CHUNK * 2 + 9;
    expect(run(BigInt(start), BigInt(start), len)).toBe(ItdResult.Ok);
    expect(holdsPattern(start, len)).toBe(true);
  });
});

describe('iommu-testdev DMA through an IOMMU', () => {
  it('writes at the translated address; the GPA is read from system memory, not translated', () => {
    const { translator, asked } = pageTranslator((page) => (page < 0x4000 ? 0x40_0000 + page : null));
    const { run, holdsPattern } = setup(translator);
    expect(run(0x1ffcn, 0x40_1ffcn, 8)).toBe(ItdResult.Ok);
    expect(holdsPattern(0x40_1ffc, 8)).toBe(true);
    expect(asked).toEqual([0x1ffc, 0x2000]);
    expect(run(0x1000n, 0x1000n, 4)).toBe(ItdResult.Mismatch);
  });

  it('a fault: 0xDEAD0002; pages after the faulting one are still written (as QEMU)', () => {
    const { translator } = pageTranslator((page) => (page === 0x1000 ? null : 0x40_0000 + page));
    const { ram, run, holdsPattern } = setup(translator);
    expect(run(0n, 0x40_0000n, 0x3000)).toBe(ItdResult.TxFail);
    expect(holdsPattern(0x40_0000, 0x1000)).toBe(true);
    expect(ram.readU32(0x40_1000)).toBe(0);
    expect(holdsPattern(0x40_2000, 0x1000, 0x2000)).toBe(true);
  });

  it('a read-only mapping faults the write', () => {
    const { translator } = pageTranslator((page) => 0x40_0000 + page, IommuPerm.Read);
    const { ram, run } = setup(translator);
    expect(run(0n, 0x40_0000n, 4)).toBe(ItdResult.TxFail);
    expect(ram.readU32(0x40_0000)).toBe(0);
  });

  it('a mismatch beyond the first piece is found', () => {
    // Identity except one page in the third piece, which lands elsewhere.
    const odd = PATTERN_DMA_CHUNK * 2 + 0x3000;
    const { translator } = pageTranslator((page) => (page === odd ? 0x80_0000 : page));
    const { run } = setup(translator);
    expect(run(0x100n, 0x100n, PATTERN_DMA_CHUNK * 3)).toBe(ItdResult.Mismatch);
    expect(run(0x100n, 0x100n, PATTERN_DMA_CHUNK * 2)).toBe(ItdResult.Ok);
  });

  it('an IOVA of 2^53 and above reaches the translator as exact pages', () => {
    const { translator, asked } = pageTranslator((page) => 0x40_0000 + (page % 0x10_0000));
    const { run, holdsPattern } = setup(translator);
    expect(run(2n ** 60n + 0xffcn, 0x40_0ffcn, 8)).toBe(ItdResult.Ok);
    expect(asked).toEqual([2 ** 60, 2 ** 60 + 0x1000]);
    expect(holdsPattern(0x40_0ffc, 8)).toBe(true);
  });
});
