/**
 * Base address registers on a bare PciConfig (PCI Local Bus 3.0 §6.2.5.1;
 * QEMU pci_register_bar / pci_bar_address): the type bits and sizing mask
 * `declareBar` sets up for 32-bit, 64-bit, prefetchable and I/O BARs, the
 * host mistakes it refuses, and where `barAddress` says a BAR decodes at
 * the edges (decode bits, address 0, the 4 GiB and 2^53 limits).
 * Mapping BARs into a bus is covered in device.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MmioRegion } from '../memory/region.js';
import { BAR_UNMAPPED, BarBits, type BarType, PCI_NUM_BARS, type PciBar, barAddress, barOffset, declareBar } from './bar.js';
import { PciCommand, PciConfig, PciReg } from './config.js';

const OPS = { read: () => 0, write: () => {} };
const region = (size: number, name = 'bar'): MmioRegion => new MmioRegion(name, size, OPS);

/** Declares one BAR on a fresh config (6 BARs) and returns both. */
function one(index: number, size: number, type: BarType, prefetchable = false) {
  const config = new PciConfig();
  const bars: (PciBar | undefined)[] = [];
  const bar = declareBar(config, bars, PCI_NUM_BARS, index, region(size), type, prefetchable, 'dev');
  bars[index] = bar;
  return { config, bars, bar };
}

/** What the guest reads back after writing all-ones (the sizing probe). */
function probe(config: PciConfig, off: number): number {
  config.guestWrite(off, 4, 0xffff_ffff);
  return config.getLong(off);
}

describe('constants', () => {
  it('BAR low bits and offsets', () => {
    expect(BarBits).toEqual({
      SpaceIo: 0x1,
      Mem64: 0x4,
      Prefetch: 0x8,
      IoAddrMask: 0xffff_fffc,
      MemAddrMask: 0xffff_fff0,
    });
    expect(BAR_UNMAPPED).toBe(-1);
    expect(PCI_NUM_BARS).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map(barOffset)).toEqual([0x10, 0x14, 0x18, 0x1c, 0x20, 0x24]);
  });
});

describe('declareBar: type bits and sizing masks', () => {
  it('32-bit memory: type bits 0, all-ones reads back ~(size - 1)', () => {
    const { config, bar } = one(0, 0x1000, 'mem32');
    expect(config.getLong(0x10)).toBe(0);
    expect(config.getWmask(0x10, 4)).toBe(0xffff_f000);
    expect(probe(config, 0x10)).toBe(0xffff_f000);
    expect(bar).toEqual({
      index: 0,
      region: bar.region,
      type: 'mem32',
      prefetchable: false,
      typeBits: 0,
      addr: BAR_UNMAPPED,
      container: null,
    });
  });

  it('a 32-bit BAR leaves the next register alone (a 64-bit one takes it)', () => {
    const { config } = one(0, 0x1000, 'mem32');
    config.setLong(0x14, 0x1234_5678);
    expect(config.getWmask(0x14, 4)).toBe(0);
    const five = one(5, 0x1000, 'mem32').config; // BAR5: the next dword is the CardBus CIS pointer
    expect(five.getWmask(0x28, 4)).toBe(0);
    expect(probe(five, 0x28)).toBe(0);
  });

  it('32-bit prefetchable memory keeps bit 3 through the probe', () => {
    const { config, bar } = one(1, 0x10, 'mem32', true);
    expect(bar.typeBits).toBe(BarBits.Prefetch);
    expect(config.getLong(0x14)).toBe(0x8);
    expect(probe(config, 0x14)).toBe(0xffff_fff8);
    config.guestWrite(0x14, 4, 0);
    expect(config.getLong(0x14)).toBe(0x8);
  });

  it('the smallest memory BAR is 16 bytes, the largest 32-bit one 4 GiB', () => {
    expect(probe(one(0, 16, 'mem32').config, 0x10)).toBe(0xffff_fff0);
    expect(probe(one(0, 2 ** 31, 'mem32').config, 0x10)).toBe(0x8000_0000);
    expect(probe(one(0, 2 ** 32, 'mem32').config, 0x10)).toBe(0);
  });

  it('I/O: bit 0 set, address bits from ~(size - 1); prefetchable does not apply', () => {
    const { config, bar } = one(2, 0x20, 'io', true);
    expect(bar.typeBits).toBe(BarBits.SpaceIo);
    expect(config.getLong(0x18)).toBe(0x1);
    expect(probe(config, 0x18)).toBe(0xffff_ffe1);
    expect(probe(one(0, 4, 'io').config, 0x10)).toBe(0xffff_fffd);
  });

  it('64-bit memory: type bits 0b100 (0b1100 prefetchable) and an all-writable upper dword', () => {
    const { config, bar } = one(4, 0x1_0000, 'mem64', true);
    expect(bar.typeBits).toBe(BarBits.Mem64 | BarBits.Prefetch);
    expect(config.getLong(0x20)).toBe(0xc);
    expect(config.getLong(0x24)).toBe(0);
    expect(probe(config, 0x20)).toBe(0xffff_000c);
    expect(probe(config, 0x24)).toBe(0xffff_ffff);
    expect(one(0, 0x1000, 'mem64').bar.typeBits).toBe(BarBits.Mem64);
    expect(one(0, 2 ** 31, 'mem64').config.getWmask(0x14, 4)).toBe(0xffff_ffff);
  });

  it('64-bit BARs of 4 GiB and more size through the upper dword', () => {
    const at4g = one(0, 2 ** 32, 'mem64').config;
    expect(probe(at4g, 0x10)).toBe(0x4);
    expect(probe(at4g, 0x14)).toBe(0xffff_ffff);
    const at8g = one(0, 2 ** 33, 'mem64').config;
    expect(probe(at8g, 0x10)).toBe(0x4);
    expect(probe(at8g, 0x14)).toBe(0xffff_fffe);
    const at2t = one(2, 2 ** 41, 'mem64', true).config;
    expect(probe(at2t, 0x18)).toBe(0xc);
    expect(probe(at2t, 0x1c)).toBe(0xffff_fe00);
  });

  it('overwrites whatever was in the registers with the type bits', () => {
    const config = new PciConfig();
    config.setLong(0x10, 0xdead_beef);
    config.setLong(0x14, 0xdead_beef);
    declareBar(config, [], PCI_NUM_BARS, 0, region(0x100), 'mem64', false, 'dev');
    expect(config.getLong(0x10)).toBe(0x4);
    expect(config.getLong(0x14)).toBe(0);
  });
});

describe('declareBar: host mistakes', () => {
  const declare = (bars: (PciBar | undefined)[], maxBars: number, index: number, size: number, type: BarType) =>
    declareBar(new PciConfig(), bars, maxBars, index, region(size), type, false, 'my-dev');

  it('refuses indices outside the header (6 BARs type 0, 2 BARs type 1)', () => {
    for (const index of [-1, 6, 7, 1.5, Number.NaN]) {
      expect(() => declare([], 6, index, 0x1000, 'mem32')).toThrow(RangeError);
    }
    expect(() => declare([], 6, 6, 0x1000, 'mem32')).toThrow('pci device my-dev: bad BAR index 6');
    expect(declare([], 6, 5, 0x1000, 'mem32').index).toBe(5);
    expect(declare([], 2, 1, 0x1000, 'mem32').index).toBe(1);
    expect(() => declare([], 2, 2, 0x1000, 'mem32')).toThrow(RangeError);
  });

  it('a 64-bit BAR needs the next index too', () => {
    expect(() => declare([], 6, 5, 0x1000, 'mem64')).toThrow('pci device my-dev: bad BAR index 5');
    expect(declare([], 6, 4, 0x1000, 'mem64').index).toBe(4);
    expect(() => declare([], 2, 1, 0x1000, 'mem64')).toThrow(RangeError);
    expect(declare([], 2, 0, 0x1000, 'mem64').index).toBe(0);
  });

  it('refuses BARs that overlap a registered one (either half of a 64-bit BAR)', () => {
    const lo = one(2, 0x1000, 'mem64').bar;
    const bars: (PciBar | undefined)[] = [];
    bars[2] = lo;
    expect(() => declare(bars, 6, 2, 0x1000, 'mem32')).toThrow('pci device my-dev: BAR 2 overlaps a registered BAR');
    expect(() => declare(bars, 6, 3, 0x1000, 'mem32')).toThrow(/BAR 3 overlaps/); // upper half
    expect(() => declare(bars, 6, 1, 0x1000, 'mem64')).toThrow(/BAR 1 overlaps/); // would cover BAR 2
    expect(declare(bars, 6, 1, 0x1000, 'mem32').index).toBe(1); // next to it is fine
    expect(declare(bars, 6, 4, 0x1000, 'mem64').index).toBe(4);
    const bars32: (PciBar | undefined)[] = [];
    bars32[2] = one(2, 0x1000, 'mem32').bar;
    expect(declare(bars32, 6, 3, 0x1000, 'mem32').index).toBe(3); // below is 32-bit: no overlap
  });

  it('refuses sizes that are not powers of two, too small, or too large for 32 bits', () => {
    expect(() => declare([], 6, 0, 0x1800, 'mem32')).toThrow('pci device my-dev: BAR 0 size 0x1800 is not a valid power of two');
    expect(() => declare([], 6, 0, 8, 'mem32')).toThrow(RangeError);
    expect(() => declare([], 6, 0, 8, 'mem64')).toThrow(RangeError);
    expect(() => declare([], 6, 0, 2, 'io')).toThrow(RangeError);
    expect(() => declare([], 6, 0, 12, 'io')).toThrow(RangeError);
    expect(() => declare([], 6, 0, 2 ** 33, 'mem32')).toThrow(RangeError);
    expect(() => declare([], 6, 0, 2 ** 33, 'io')).toThrow(RangeError);
    expect(declare([], 6, 0, 8, 'io').type).toBe('io');
    expect(declare([], 6, 0, 2 ** 33, 'mem64').type).toBe('mem64');
    // 64-bit sizes whose low 32 bits are zero but which are not powers of two.
    expect(() => declare([], 6, 0, 3 * 2 ** 32, 'mem64')).toThrow('pci device my-dev: BAR 0 size 0x300000000 is not a valid power of two');
    expect(() => declare([], 6, 0, 2 ** 40 + 2 ** 33, 'mem64')).toThrow(RangeError);
    expect(declare([], 6, 0, 2 ** 40, 'mem64').type).toBe('mem64');
  });
});

describe('barAddress (QEMU pci_bar_address)', () => {
  /** A declared BAR with its register(s) set to `lo`/`hi` and the command register to `cmd`. */
  function at(type: BarType, size: number, lo: number, hi: number, cmd: number): number {
    const { config, bar } = one(0, size, type);
    config.setLong(0x10, lo);
    if (type === 'mem64') config.setLong(0x14, hi);
    config.setWord(PciReg.Command, cmd);
    return barAddress(config, bar);
  }
  const MEM = PciCommand.Memory;
  const IO = PciCommand.Io;

  it('memory BARs decode only with the memory bit, I/O BARs only with the I/O bit', () => {
    expect(at('mem32', 0x1000, 0xe000_0000, 0, 0)).toBe(BAR_UNMAPPED);
    expect(at('mem32', 0x1000, 0xe000_0000, 0, IO | PciCommand.Master)).toBe(BAR_UNMAPPED);
    expect(at('mem32', 0x1000, 0xe000_0000, 0, MEM)).toBe(0xe000_0000);
    expect(at('mem64', 0x1000, 0xe000_0000, 0, IO)).toBe(BAR_UNMAPPED);
    expect(at('mem64', 0x1000, 0xe000_0000, 0, MEM)).toBe(0xe000_0000);
    expect(at('io', 0x10, 0xc001, 0, MEM)).toBe(BAR_UNMAPPED);
    expect(at('io', 0x10, 0xc001, 0, IO)).toBe(0xc000);
    expect(at('io', 0x10, 0xc001, 0, IO | MEM)).toBe(0xc000);
  });

  it('drops the type bits and any address bits below the size', () => {
    expect(at('mem32', 0x1000, 0xe000_0fff, 0, MEM)).toBe(0xe000_0000);
    expect(at('mem32', 0x10, 0xe000_001f, 0, MEM)).toBe(0xe000_0010);
    expect(at('io', 0x100, 0xc0fd, 0, IO)).toBe(0xc000);
    expect(at('io', 0x4, 0x1005, 0, IO)).toBe(0x1004);
  });

  it('address 0 is unmapped (BIOS has not programmed it)', () => {
    expect(at('mem32', 0x1000, 0, 0, MEM)).toBe(BAR_UNMAPPED);
    expect(at('mem32', 0x1000, 0x0fff, 0, MEM)).toBe(BAR_UNMAPPED);
    expect(at('io', 0x10, 0x1, 0, IO)).toBe(BAR_UNMAPPED);
    expect(at('mem64', 0x1000, 0, 0, MEM)).toBe(BAR_UNMAPPED);
    expect(at('mem32', 0x10, 0x10, 0, MEM)).toBe(0x10);
    expect(at('io', 0x4, 0x5, 0, IO)).toBe(0x4);
  });

  it('32-bit memory and I/O must end below 0xFFFFFFFF (the sizing pattern never decodes)', () => {
    expect(at('mem32', 0x10, 0xffff_ffe0, 0, MEM)).toBe(0xffff_ffe0); // last byte 0xffffffef
    expect(at('mem32', 0x10, 0xffff_fff0, 0, MEM)).toBe(BAR_UNMAPPED); // last byte 0xffffffff
    expect(at('mem32', 0x1000, 0xffff_f000, 0, MEM)).toBe(BAR_UNMAPPED);
    expect(at('mem32', 0x1000, 0xffff_e000, 0, MEM)).toBe(0xffff_e000);
    expect(at('io', 0x10, 0xffff_ffe1, 0, IO)).toBe(0xffff_ffe0);
    expect(at('io', 0x10, 0xffff_fff1, 0, IO)).toBe(BAR_UNMAPPED);
  });

  it('32-bit memory ignores the next register, whatever it holds', () => {
    const { config, bar } = one(0, 0x1000, 'mem32');
    config.setLong(0x10, 0xe000_0000);
    config.setLong(0x14, 0x1);
    config.setWord(PciReg.Command, MEM);
    expect(barAddress(config, bar)).toBe(0xe000_0000);
  });

  it('64-bit memory joins both dwords and may cross 4 GiB', () => {
    expect(at('mem64', 0x1000, 0xffff_f000, 0, MEM)).toBe(0xffff_f000);
    expect(at('mem64', 0x1000, 0, 1, MEM)).toBe(0x1_0000_0000);
    expect(at('mem64', 0x1000, 0x1234_5004, 0xab, MEM)).toBe(0xab_1234_5000);
    expect(at('mem64', 2 ** 33, 0x4, 0x3, MEM)).toBe(0x2_0000_0000);
  });

  it('64-bit memory ending past 2^53 - 1 stays unmapped (numbers lose precision there)', () => {
    expect(at('mem64', 0x1000, 0xffff_f000, 0x1f_ffff, MEM)).toBe(2 ** 53 - 0x1000); // last byte 2^53 - 1
    expect(at('mem64', 0x1000, 0, 0x20_0000, MEM)).toBe(BAR_UNMAPPED);
    expect(at('mem64', 0x1000, 0xffff_f000, 0xffff_ffff, MEM)).toBe(BAR_UNMAPPED); // the sizing pattern
  });

  it('reads the register as the guest left it: sizing with all-ones then restoring', () => {
    const { config, bar } = one(0, 0x1000, 'mem32');
    config.setWord(PciReg.Command, MEM);
    config.guestWrite(0x10, 4, 0xffff_ffff);
    expect(barAddress(config, bar)).toBe(BAR_UNMAPPED);
    config.guestWrite(0x10, 4, 0xfebf_0000);
    expect(barAddress(config, bar)).toBe(0xfebf_0000);
  });
});
