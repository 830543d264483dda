/**
 * Reading VT-d structures from guest memory: 8 little-endian bytes as two
 * 32-bit halves; RAM (fast path, any placement of the RAM block), accepting
 * MMIO, and failures (holes, refused MMIO shapes, entries running off RAM)
 * that the callers turn into fault reasons.
 */
import { describe, expect, it, vi } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { createRam } from '../../memory/ram-backend.js';
import { AliasRegion, ContainerRegion, RamRegion } from '../../memory/region.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { lastReadRam, newQword, readEntry, readQword, type Qword } from './guest-mem.js';
import { DMAR_BASE, Reg } from './reg-layout.js';

const RAM = 64 * 1024 * 1024;
const HOLE = 0x8000_0000;

function read(mem: AddressSpace, addr: number): Qword | null {
  const q = { lo: 0xdead_beef, hi: 0xdead_beef };
  return readQword(mem, addr, q) ? q : null;
}

describe('newQword', () => {
  it('is a fresh zero qword each time', () => {
    const a = newQword();
    expect(a).toEqual({ lo: 0, hi: 0 });
    a.lo = 5;
    expect(newQword()).toEqual({ lo: 0, hi: 0 });
    expect(newQword()).not.toBe(newQword());
  });
});

describe('readQword over the bench memory map', () => {
  it('reads RAM little-endian into the two halves, bit 63 included', () => {
    const b = new VtdBench();
    b.poke64(0x1000, 0xfedc_ba98_7654_3210n);
    b.poke64(0x1008, 0x8000_0000_0000_0001n);
    expect(read(b.memory, 0x1000)).toEqual({ lo: 0x7654_3210, hi: 0xfedc_ba98 });
    expect(read(b.memory, 0x1008)).toEqual({ lo: 1, hi: 0x8000_0000 });
    // Unaligned in RAM is fine (RAM has no access rules).
    expect(read(b.memory, 0x1004)).toEqual({ lo: 0xfedc_ba98, hi: 1 });
    b.poke64(0x2000, 0xffff_ffff_ffff_ffffn);
    expect(read(b.memory, 0x2000)).toEqual({ lo: 0xffff_ffff, hi: 0xffff_ffff });
  });

  it('reads the last qword of RAM; one byte further fails', () => {
    const b = new VtdBench();
    b.poke64(RAM - 8, 0x1122_3344_5566_7788n);
    expect(read(b.memory, RAM - 8)).toEqual({ lo: 0x5566_7788, hi: 0x1122_3344 });
    expect(read(b.memory, RAM - 7)).toBeNull();
    expect(read(b.memory, RAM - 4)).toBeNull();
    expect(read(b.memory, RAM)).toBeNull();
  });

  it('reads RAM entries without a byte-range access (the allocation-free path), up to the last qword', () => {
    const b = new VtdBench();
    b.poke64(0x3000, 0x0102_0304_0506_0708n);
    b.poke64(RAM - 8, 0x1112_1314_1516_1718n);
    const bytes = vi.spyOn(b.memory, 'readBytes');
    expect(read(b.memory, 0x3000)).toEqual({ lo: 0x0506_0708, hi: 0x0102_0304 });
    expect(read(b.memory, RAM - 8)).toEqual({ lo: 0x1516_1718, hi: 0x1112_1314 });
    expect(bytes).not.toHaveBeenCalled();
    // Anything else takes the byte-range path.
    expect(read(b.memory, RAM - 4)).toBeNull();
    expect(read(b.memory, DMAR_BASE)).not.toBeNull();
    expect(bytes).toHaveBeenCalledTimes(2);
  });

  it('fails in a hole and leaves the output untouched', () => {
    const b = new VtdBench();
    const q = { lo: 0x1234, hi: 0x5678 };
    expect(readQword(b.memory, HOLE, q)).toBe(false);
    expect(q).toEqual({ lo: 0x1234, hi: 0x5678 });
    expect(readQword(b.memory, 2 ** 40 - 8, q)).toBe(false);
    expect(q).toEqual({ lo: 0x1234, hi: 0x5678 });
  });

  it('reads accepting MMIO (the unit\'s own CAP / ECAP registers)', () => {
    const b = new VtdBench();
    const cap = b.iommu.capability;
    const ecap = b.iommu.extendedCapability;
    expect(read(b.memory, DMAR_BASE + Reg.CAP)).toEqual({ lo: Number(cap & 0xffff_ffffn), hi: Number(cap >> 32n) });
    expect(read(b.memory, DMAR_BASE + Reg.ECAP)).toEqual({ lo: Number(ecap & 0xffff_ffffn), hi: Number(ecap >> 32n) });
    // Two 4-byte accesses across a qword boundary: CAP high dword, ECAP low dword.
    expect(read(b.memory, DMAR_BASE + Reg.CAP + 4)).toEqual({ lo: Number(cap >> 32n), hi: Number(ecap & 0xffff_ffffn) });
    // Unlisted register: reads 0 and succeeds.
    expect(read(b.memory, DMAR_BASE + 0x100)).toEqual({ lo: 0, hi: 0 });
  });

  it('fails where the MMIO refuses the shape or the entry runs off the region', () => {
    const b = new VtdBench();
    // 2-byte alignment: the unit only takes 4- and 8-byte accesses.
    expect(read(b.memory, DMAR_BASE + 2)).toBeNull();
    expect(read(b.memory, DMAR_BASE + 1)).toBeNull();
    // Last dword of the register file, then a hole.
    expect(read(b.memory, DMAR_BASE + b.iommu.region.size - 4)).toBeNull();
    expect(read(b.memory, DMAR_BASE + b.iommu.region.size - 8)).not.toBeNull();
  });
});

describe('readQword with RAM placed at offsets', () => {
  /** A RAM block whose bytes are their own offset (u32 at k holds k). */
  function space() {
    const ram = createRam(0x1_0000, 'ts');
    for (let k = 0; k < 0x1_0000; k += 4) ram.writeU32(k, k * 0x1_0001 + 0x0101_0101);
    const root = new ContainerRegion('root', 2 ** 32);
    // A window of the block starting at block offset 0x2000, mapped at 0x40000.
    const win = new RamRegion('win', 0x4000, ram, 0x2000);
    root.add(win, 0x4_0000);
    // An alias onto that window, 0x1000 into it, mapped at 0x90000.
    root.add(new AliasRegion('alias', 0x2000, win, 0x1000), 0x9_0000);
    // Two adjacent windows: [0x50000, 0x51000) -> block 0x8000, [0x51000, 0x52000) -> block 0xc000.
    root.add(new RamRegion('a', 0x1000, ram, 0x8000), 0x5_0000);
    root.add(new RamRegion('b', 0x1000, ram, 0xc000), 0x5_1000);
    return { mem: new AddressSpace('t', root), ram };
  }
  const word = (k: number) => (k * 0x1_0001 + 0x0101_0101) >>> 0;

  it('adds the region start, flat offset and block offset', () => {
    const { mem } = space();
    expect(read(mem, 0x4_0000)).toEqual({ lo: word(0x2000), hi: word(0x2004) });
    expect(read(mem, 0x4_0ff8)).toEqual({ lo: word(0x2ff8), hi: word(0x2ffc) });
    expect(read(mem, 0x4_3ff8)).toEqual({ lo: word(0x5ff8), hi: word(0x5ffc) });
    expect(read(mem, 0x9_0000)).toEqual({ lo: word(0x3000), hi: word(0x3004) });
    expect(read(mem, 0x9_0010)).toEqual({ lo: word(0x3010), hi: word(0x3014) });
  });

  it('agrees with a byte read everywhere', () => {
    const { mem } = space();
    const bytes = new Uint8Array(8);
    const dv = new DataView(bytes.buffer);
    for (const at of [0x4_0000, 0x4_0004, 0x4_1230, 0x4_3ff8, 0x9_0000, 0x9_1ff8, 0x5_0000, 0x5_0ff8, 0x5_1ff8]) {
      mem.readBytes(at, bytes);
      expect(read(mem, at), at.toString(16)).toEqual({ lo: dv.getUint32(0, true), hi: dv.getUint32(4, true) });
    }
  });

  it('reads an entry split over two adjacent RAM ranges', () => {
    const { mem } = space();
    expect(read(mem, 0x5_0ffc)).toEqual({ lo: word(0x8ffc), hi: word(0xc000) });
  });

  it('fails when the entry runs past the last range into a hole', () => {
    const { mem } = space();
    expect(read(mem, 0x4_3ffc)).toBeNull();
    expect(read(mem, 0x9_1ffc)).toBeNull();
    expect(read(mem, 0x5_1ffc)).toBeNull();
    expect(read(mem, 0x3_fffc)).toBeNull();
  });
});

describe('readEntry', () => {
  it('keeps the first qwords of an entry in RAM', () => {
    const b = new VtdBench();
    for (let i = 0; i < 8; i++) b.poke64(0x2000 + i * 8, BigInt(i + 1) * 0x1_0000_0001n);
    const out = [newQword(), newQword(), newQword()];
    expect(readEntry(b.memory, 0x2000, 64, out)).toBe(true);
    expect(out).toEqual([{ lo: 1, hi: 1 }, { lo: 2, hi: 2 }, { lo: 3, hi: 3 }]);
  });

  it('fails when any byte of the entry is unreadable, even beyond the qwords kept', () => {
    const b = new VtdBench({ ramSize: 0x10_0000 });
    const out = [newQword()];
    // The first qword is the last one of RAM; the rest of the 64 bytes lies in the hole.
    expect(readEntry(b.memory, 0x10_0000 - 8, 64, out)).toBe(false);
    expect(readEntry(b.memory, 0x10_0000 - 64, 64, out)).toBe(true);
    expect(readEntry(b.memory, HOLE, 64, out)).toBe(false);
  });
});

describe('lastReadRam', () => {
  it('tells RAM from MMIO after readQword', () => {
    const b = new VtdBench();
    const q = newQword();
    expect(readQword(b.memory, DMAR_BASE + Reg.CAP, q)).toBe(true);
    expect(lastReadRam()).toBe(null);
    expect(readQword(b.memory, 0x1000, q)).toBe(true);
    expect(lastReadRam()).not.toBeNull();
  });

  it('tells RAM from MMIO after readEntry, in one RAM range or split over two', () => {
    const b = new VtdBench();
    const out = [newQword()];
    expect(readEntry(b.memory, DMAR_BASE + Reg.CAP, 16, out)).toBe(true);
    expect(lastReadRam()).toBe(null);
    expect(readEntry(b.memory, 0x2000, 64, out)).toBe(true);
    expect(lastReadRam()).not.toBeNull();
    const { mem } = splitRam();
    expect(readQword(mem, 0x6_0000, newQword())).toBe(false);
    expect(readEntry(mem, 0x5_0ff0, 32, out)).toBe(true);
    expect(lastReadRam()).not.toBeNull();
  });
});

/** Two adjacent RAM windows, [0x50000, 0x51000) and [0x51000, 0x52000), then a hole. */
function splitRam(): { mem: AddressSpace } {
  const ram = createRam(0x1_0000, 'ts');
  const root = new ContainerRegion('root', 2 ** 32);
  root.add(new RamRegion('a', 0x1000, ram, 0x8000), 0x5_0000);
  root.add(new RamRegion('b', 0x1000, ram, 0xc000), 0x5_1000);
  return { mem: new AddressSpace('t', root) };
}

describe('readEntry cost and extent', () => {
  it('an entry inside one RAM range costs one lookup, up to the range\'s last byte', () => {
    const b = new VtdBench({ ramSize: 0x10_0000 });
    const lookups = vi.spyOn(b.memory, 'lookup');
    const out = [newQword(), newQword()];
    expect(readEntry(b.memory, 0x2000, 64, out)).toBe(true);
    expect(readEntry(b.memory, 0x10_0000 - 64, 64, out)).toBe(true);
    expect(lookups).toHaveBeenCalledTimes(2);
  });

  it('an entry over two RAM ranges reads exactly its own bytes (it may end where a hole begins)', () => {
    const { mem } = splitRam();
    const out = [newQword()];
    expect(readEntry(mem, 0x5_0000, 0x2000, out)).toBe(true);
    expect(readEntry(mem, 0x5_0ff8, 0x1008, out)).toBe(true);
    expect(readEntry(mem, 0x5_0ff8, 0x1010, out)).toBe(false);
  });
});
