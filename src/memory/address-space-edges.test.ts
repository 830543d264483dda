/**
 * Address spaces at the edges of their fast paths: CPU accesses that end
 * exactly at a region's end or cross into the next region, MMIO reached
 * through aliases at a non-zero offset, 8-byte accesses on RAM and split
 * across regions, holes followed by RAM, fills over MMIO, spans of a buffer
 * over MMIO and holes, the exported dispatch helpers called directly, and the
 * flat view of overlapping regions.
 */
import { describe, expect, it } from 'vitest';
import {
  AddressSpace,
  MemTx,
  MMIO_REFUSED,
  mmioAccessSize,
  mmioRead,
  mmioReadSmall,
  mmioWrite,
  mmioWriteSmall,
  renderFlat,
} from './address-space.js';
import { createTsRam } from './ram-ts.js';
import { AliasRegion, ContainerRegion, type MemoryTracer, MmioRegion, RamRegion, type Region } from './region.js';
import { recorder } from '../../test/support/mmio-recorder.js';

/** An address space over `regions` mapped at the given addresses (later ones win where they overlap). */
function spaceOf(...mapped: [Region, number][]): AddressSpace {
  const root = new ContainerRegion('root', 2 ** 32);
  for (const [r, at] of mapped) root.add(r, at);
  return new AddressSpace('test', root);
}

describe('CPU accesses at region ends', () => {
  it('an access ending exactly at the end of a 1-byte-only region is refused whole', () => {
    const { region, calls } = recorder(0x10, { valid: { min: 1, max: 1 } });
    const as = spaceOf([region, 0x500]);
    expect(as.read(0x50c, 4)).toBe(0);
    expect(as.read(0x50e, 2)).toBe(0);
    expect(as.write(0x50c, 4, 0x1234_5678)).toBe(MemTx.DecodeError);
    expect(as.write(0x50e, 2, 0x1234)).toBe(MemTx.DecodeError);
    expect(calls).toEqual([]);
    expect(as.read(0x50f, 1)).toBe(0x10);
  });

  it('an unaligned-valid access ending at the region end is one access, not split', () => {
    const { region, calls } = recorder(0x6, { valid: { min: 1, max: 8, unaligned: true }, impl: { min: 1, max: 8 } });
    const as = spaceOf([region, 0x1000]);
    expect(as.read(0x1002, 4)).toBe(0x0605_0403);
    as.write(0x1002, 4, 0xaabb_ccdd);
    const wide = recorder(0xc, { valid: { min: 1, max: 8, unaligned: true }, impl: { min: 1, max: 8 } });
    const as8 = spaceOf([wide.region, 0x2000]);
    expect(as8.read64(0x2004)).toBe(0x0c0b_0a09_0807_0605n);
    expect(as8.write64(0x2004, 5n)).toBe(MemTx.Ok);
    expect(calls).toEqual([['r', 2, 4], ['w', 2, 4, 0xaabb_ccdd]]);
    expect(wide.calls).toEqual([['r64', 4, 8], ['w64', 4, 8, 5n]]);
  });

  it('accesses crossing from MMIO into RAM are split between them', () => {
    const ram = createTsRam(0x1000);
    ram.fill(0, 0x1000, 0x5a);
    const { region, calls } = recorder(0x10, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 8 } });
    const as = spaceOf([region, 0x1000], [new RamRegion('ram', 0x1000, ram), 0x1010]);
    expect(as.read64(0x100c)).toBe(0x5a5a_5a5a_100f_0e0dn);
    expect(as.read(0x100e, 4)).toBe(0x5a5a_100f);
    expect(as.write(0x100e, 4, 0x4433_2211)).toBe(MemTx.Ok);
    expect(ram.readU32(0)).toBe(0x5a5a_4433);
    expect(as.write64(0x100c, 0x8877_6655_4433_2211n)).toBe(MemTx.Ok);
    expect(ram.readU32(0)).toBe(0x8877_6655);
    expect(calls).toEqual([['r', 12, 4], ['r', 14, 2], ['w', 14, 2, 0x2211], ['w', 12, 4, 0x4433_2211]]);
  });

  it('a CPU write crossing two RAM regions stores every byte little-endian', () => {
    const a = createTsRam(0x1000);
    const b = createTsRam(0x1000);
    const as = spaceOf([new RamRegion('a', 0x1000, a), 0], [new RamRegion('b', 0x1000, b), 0x1000]);
    expect(as.write(0xffd, 4, 0x4433_2211)).toBe(MemTx.Ok);
    expect([a.readU8(0xffd), a.readU8(0xffe), a.readU8(0xfff), b.readU8(0)]).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(as.read(0xffd, 4)).toBe(0x4433_2211);
    expect(as.write(0xfff, 2, 0xbbaa)).toBe(MemTx.Ok);
    expect(as.read(0xfff, 2)).toBe(0xbbaa);
    expect(as.write64(0xffc, 0x0807_0605_0403_0201n)).toBe(MemTx.Ok);
    expect(as.read64(0xffc)).toBe(0x0807_0605_0403_0201n);
  });

  it('1-, 2-, 4- and 8-byte RAM accesses touch exactly their bytes', () => {
    const ram = createTsRam(0x1000);
    const as = spaceOf([new RamRegion('ram', 0x1000, ram), 0x4000]);
    ram.fill(0, 0x20, 0xee);
    expect(as.write(0x4001, 1, 0x1ff)).toBe(MemTx.Ok);
    expect(ram.readU32(0)).toBe(0xeeee_ffee);
    expect(as.write(0x4002, 2, 0x1_2233)).toBe(MemTx.Ok);
    expect(ram.readU32(0)).toBe(0x2233_ffee);
    expect(ram.readU16(4)).toBe(0xeeee);
    expect(as.read(0x4002, 2)).toBe(0x2233);
    expect(as.read(0x4001, 1)).toBe(0xff);
    expect(as.write64(0x4008, 0x0102_0304_0506_0708n)).toBe(MemTx.Ok);
    expect(as.read64(0x4008)).toBe(0x0102_0304_0506_0708n);
    expect(ram.readU8(0x10)).toBe(0xee);
  });

  it('8-byte accesses to nothing read as the hole and report DecodeError', () => {
    const as = spaceOf();
    expect(as.read64(0x9000)).toBe(0n);
    expect(as.write64(0x9000, 1n)).toBe(MemTx.DecodeError);
  });
});

describe('regions reached through aliases at an offset', () => {
  it('MMIO: CPU accesses of every size and byte ranges see the alias offset', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 8 } });
    const as = spaceOf([new AliasRegion('window', 0x40, region, 0x20), 0x3000]);
    expect(as.read64(0x3008)).toBe(0x302f_2e2d_2c2b_2a29n);
    expect(as.write64(0x3010, 9n)).toBe(MemTx.Ok);
    expect(as.read(0x3004, 4)).toBe(0x2827_2625);
    expect(as.write(0x3002, 2, 0x55)).toBe(MemTx.Ok);
    expect(calls).toEqual([['r64', 0x28, 8], ['w64', 0x30, 8, 9n], ['r', 0x24, 4], ['w', 0x22, 2, 0x55]]);
  });

  it('RAM: fill and isRam through an alias at an offset', () => {
    const ram = createTsRam(0x2000);
    const block = new RamRegion('block', 0x2000, ram);
    const as = spaceOf([new AliasRegion('upper', 0x1000, block, 0x1000), 0x8000]);
    expect(as.fill(0x8010, 0x10, 0x77)).toBe(MemTx.Ok);
    expect(ram.readU8(0x1010)).toBe(0x77);
    expect(ram.readU8(0x10)).toBe(0);
    expect(as.read(0x8010, 4)).toBe(0x7777_7777);
  });
});

describe('byte ranges over holes, RAM and MMIO', () => {
  /** A hole below 0x1000, RAM 0x1000..0x40000, a recorder device at 0x40000..0x40010, a hole above. */
  function holeRamDev() {
    const ram = createTsRam(0x3f000);
    const { region, calls } = recorder(0x10, { valid: { min: 1, max: 4 } });
    const as = spaceOf([new RamRegion('ram', 0x3f000, ram), 0x1000], [region, 0x40000]);
    return { as, ram, calls };
  }

  it('reads and writes starting in a hole reach the RAM after it', () => {
    const { as, ram } = holeRamDev();
    ram.fill(0, 0x1000, 0x5a);
    const out = new Uint8Array(0x1000).fill(0xee);
    expect(as.readBytes(0x800, out)).toBe(MemTx.DecodeError);
    expect(out[0x7ff]).toBe(0);
    expect(out[0x800]).toBe(0x5a);
    expect(out[0xfff]).toBe(0x5a);
    const src = new Uint8Array(0x1000).fill(0x33);
    expect(as.writeBytes(0x800, src)).toBe(MemTx.DecodeError);
    expect(ram.readU8(0)).toBe(0x33);
    expect(ram.readU8(0x7ff)).toBe(0x33);
    expect(ram.readU8(0x800)).toBe(0x5a);
  });

  it('a read that ends in RAM after MMIO copies only what was asked', () => {
    const ram = createTsRam(0x10000);
    ram.fill(0, 0x10000, 0x5a);
    const { region } = recorder(0x10, { valid: { min: 1, max: 4 } });
    const as = spaceOf([region, 0x1000], [new RamRegion('ram', 0x10000, ram), 0x1010]);
    const dst = new Uint8Array(0x30).fill(0xee);
    expect(as.readInto(0x1008, dst, 4, 0x20)).toBe(MemTx.Ok);
    expect(Array.from(dst.subarray(0, 4))).toEqual([0xee, 0xee, 0xee, 0xee]);
    expect(Array.from(dst.subarray(4, 12))).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    expect(dst.subarray(12, 0x24).every((b) => b === 0x5a)).toBe(true);
    expect(dst.subarray(0x24).every((b) => b === 0xee)).toBe(true);
  });

  it('an MMIO read ending a span leaves the buffer past it alone (4- and 8-byte pieces)', () => {
    const small = recorder(0x10, { valid: { min: 1, max: 4 } });
    const dst = new Uint8Array(8).fill(0xee);
    expect(spaceOf([small.region, 0x1000]).readInto(0x1000, dst, 0, 4)).toBe(MemTx.Ok);
    expect(Array.from(dst)).toEqual([1, 2, 3, 4, 0xee, 0xee, 0xee, 0xee]);
    const wide = recorder(0x10, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 8 } });
    const dst8 = new Uint8Array(12).fill(0xee);
    expect(spaceOf([wide.region, 0x1000]).readInto(0x1000, dst8, 0, 8)).toBe(MemTx.Ok);
    expect(Array.from(dst8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee, 0xee, 0xee]);
  });

  it('a refused 8-byte piece reads 0 and reports DecodeError', () => {
    // impl.unaligned: no split at the offset's alignment; valid refuses the unaligned 8 bytes.
    const { region, calls } = recorder(0x20, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 8, unaligned: true } });
    const as = spaceOf([region, 0x1000]);
    const dst = new Uint8Array(8).fill(0xee);
    expect(as.readBytes(0x1004, dst)).toBe(MemTx.DecodeError);
    expect(Array.from(dst)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(as.writeBytes(0x1004, dst)).toBe(MemTx.DecodeError);
    expect(calls).toEqual([]);
  });

  it('fill over MMIO writes the device and reports Ok; over RAM after a hole, exactly the range', () => {
    const { as, ram, calls } = holeRamDev();
    expect(as.fill(0x40000, 0x8, 0xab)).toBe(MemTx.Ok);
    expect(calls).toEqual([['w', 0, 4, 0xabab_abab], ['w', 4, 4, 0xabab_abab]]);
    calls.length = 0;
    expect(as.fill(0x3fffc, 0x8, 0xcd)).toBe(MemTx.Ok);
    expect(calls).toEqual([['w', 0, 4, 0xcdcd_cdcd]]);
    expect(ram.readU32(0x3effc)).toBe(0xcdcd_cdcd);
    expect(as.fill(0x800, 0x1000, 0x11)).toBe(MemTx.DecodeError);
    expect(ram.readU8(0x7ff)).toBe(0x11);
    expect(ram.readU8(0x800)).toBe(0);
  });

  it('fill longer than 64 KiB starting in a hole reaches all of the RAM after it', () => {
    const { as, ram } = holeRamDev();
    expect(as.fill(0, 0x30000, 0x42)).toBe(MemTx.DecodeError);
    expect(ram.readU8(0)).toBe(0x42);
    expect(ram.readU8(0x2efff)).toBe(0x42);
    expect(ram.readU8(0x2f000)).toBe(0);
  });

  it('isRam is false over MMIO', () => {
    const { as } = holeRamDev();
    expect(as.isRam(0x1000, 0x3f000)).toBe(true);
    expect(as.isRam(0x40000, 4)).toBe(false);
    expect(as.isRam(0x3fff0, 0x20)).toBe(false);
  });

  it('spans outside the buffer throw even where no RAM is reached (holes, MMIO)', () => {
    const { as } = holeRamDev();
    const buf = new Uint8Array(8);
    for (const addr of [0x100, 0x40000]) {
      expect(() => as.readInto(addr, buf, 4, 8)).toThrow('address space: span 4+8 outside a buffer of 8');
      expect(() => as.writeFrom(addr, buf, 4, 8)).toThrow(RangeError);
      expect(() => as.readInto(addr, buf, 0.5, 2)).toThrow(RangeError);
      expect(() => as.readInto(addr, buf, -1, 2)).toThrow(RangeError);
      expect(() => as.writeFrom(addr, buf, 2, -1)).toThrow(RangeError);
      expect(() => as.readInto(addr, buf, 0, 9)).toThrow(RangeError);
      expect(as.readInto(addr, buf, 8, 0)).toBe(MemTx.Ok);
      expect(as.writeFrom(addr, buf, 0, 0)).toBe(MemTx.Ok);
    }
  });
});

describe('the dispatch helpers called directly', () => {
  it('mmioRead / mmioWrite of an implemented 1-, 2- or 4-byte size make one call of that size', () => {
    const { region, calls } = recorder(0x10);
    expect(mmioRead(region, 4, 4)).toBe(0x0807_0605n);
    expect(mmioRead(region, 2, 2)).toBe(0x0403n);
    expect(mmioWrite(region, 8, 4, 0x1_2345_6789n)).toBe(MemTx.Ok);
    expect(mmioWrite(region, 1, 1, 0x1abn)).toBe(MemTx.Ok);
    expect(calls).toEqual([['r', 4, 4], ['r', 2, 2], ['w', 8, 4, 0x2345_6789], ['w', 1, 1, 0xab]]);
  });

  it('split accesses mask each piece to its size (handlers may answer wider values)', () => {
    const calls: number[] = [];
    const region = new MmioRegion('wide-answers', 0x10, {
      read: (off) => (calls.push(off), 0xdead_be00 | off),
      write: () => {},
    }, { valid: { min: 1, max: 4 }, impl: { min: 1, max: 1 } });
    expect(mmioRead(region, 4, 4)).toBe(0x0706_0504n);
    expect(spaceOf([region, 0x1000]).read(0x1008, 2)).toBe(0x0908);
    expect(calls).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('an engaged guard refuses every helper without an origin to tell, and counts it', () => {
    const { region, calls } = recorder(0x10, { valid: { min: 1, max: 4 }, impl: { min: 4, max: 4 } });
    region.guard.engaged = true;
    expect(mmioRead(region, 0, 4)).toBeNull();
    expect(mmioReadSmall(region, 0, 1)).toBe(MMIO_REFUSED);
    expect(mmioReadSmall(region, 0, 4)).toBe(MMIO_REFUSED);
    expect(mmioWrite(region, 0, 4, 1n)).toBe(MemTx.DecodeError);
    expect(mmioWriteSmall(region, 0, 1, 1)).toBe(MemTx.DecodeError);
    expect(region.guard.blocked).toBe(5);
    expect(calls).toEqual([]);
    region.guard.engaged = false;
    expect(mmioReadSmall(region, 1, 1)).toBe(2);
    expect(calls).toEqual([['r', 1, 4]]);
  });

  it('a refused widened access inside a byte range reports DecodeError', () => {
    const { region } = recorder(0x10, { valid: { min: 1, max: 4 }, impl: { min: 4, max: 4 } });
    const as = spaceOf([region, 0x1000]);
    region.guard.engaged = true;
    const dst = new Uint8Array(1).fill(0xee);
    expect(as.readBytes(0x1001, dst)).toBe(MemTx.DecodeError);
    expect(dst[0]).toBe(0);
    region.guard.engaged = false;
    expect(as.readBytes(0x1001, dst)).toBe(MemTx.Ok);
    expect(dst[0]).toBe(2);
  });

  it('refusals of widened or 8-byte accesses are traced with the right direction', () => {
    const lines: string[] = [];
    const tracer: MemoryTracer = { enabled: () => true, trace: (_e, f) => lines.push(`${String(f.offset)}/${String(f.size)}/${String(f.write)}`) };
    const { region } = recorder(0x10, { valid: { min: 1, max: 8 }, impl: { min: 4, max: 8 } });
    const root = new ContainerRegion('root', 0x10000);
    root.add(region, 0x1000);
    const as = new AddressSpace('traced', root, { tracer });
    region.guard.engaged = true;
    as.read64(0x1008);
    as.write64(0x1008, 1n);
    as.read(0x1001, 1);
    as.write(0x1002, 2, 1);
    expect(lines).toEqual(['8/8/false', '8/8/true', '1/1/false', '2/2/true']);
  });

  it('mmioAccessSize splits at the alignment of odd and even offsets', () => {
    const { region } = recorder(0x100, { valid: { min: 1, max: 8 } });
    expect(mmioAccessSize(region, 8, 6)).toBe(2);
    expect(mmioAccessSize(region, 8, 12)).toBe(4);
    expect(mmioAccessSize(region, 8, 0)).toBe(8);
    expect(mmioAccessSize(region, 8, 3)).toBe(1);
    const { region: r4, calls } = recorder(0x100, { valid: { min: 1, max: 4 } });
    const out = new Uint8Array(4);
    spaceOf([r4, 0x1000]).readBytes(0x1006, out);
    expect(calls).toEqual([['r', 6, 2], ['r', 8, 2]]);
  });
});

describe('flat view of overlapping regions', () => {
  const ramLeaf = (name: string, size: number) => new RamRegion(name, size, createTsRam(0x10000));

  it('a low-priority region shows through every gap between higher ones, whatever order they were added in', () => {
    const root = new ContainerRegion('root', 0x100000);
    const low = ramLeaf('low', 0x5000);
    const a = ramLeaf('a', 0x1000);
    const b = ramLeaf('b', 0x1000);
    root.add(low, 0x10000, 0);
    root.add(a, 0x13000, 2);
    root.add(b, 0x11000, 1);
    const flat = renderFlat(root).map((r) => [r.leaf.name, r.start, r.end, r.offset]);
    expect(flat).toEqual([
      ['low', 0x10000, 0x11000, 0],
      ['b', 0x11000, 0x12000, 0],
      ['low', 0x12000, 0x13000, 0x2000],
      ['a', 0x13000, 0x14000, 0],
      ['low', 0x14000, 0x15000, 0x4000],
    ]);
    const as = new AddressSpace('x', root);
    expect(as.flatView().length).toBe(5);
    expect(as.lookup(0x11800)?.leaf).toBe(b);
    expect(as.lookup(0x12800)?.leaf).toBe(low);
  });

  it('a region covered to its end by a higher one leaves no empty piece', () => {
    const root = new ContainerRegion('root', 0x100000);
    root.add(ramLeaf('low', 0x2000), 0x1000, 0);
    root.add(ramLeaf('top', 0x1000), 0x2000, 1);
    root.add(ramLeaf('over', 0x3000), 0x0, -1);
    expect(renderFlat(root).map((r) => [r.leaf.name, r.start, r.end, r.offset])).toEqual([
      ['over', 0, 0x1000, 0],
      ['low', 0x1000, 0x2000, 0],
      ['top', 0x2000, 0x3000, 0],
    ]);
  });
});
