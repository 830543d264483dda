/**
 * Address spaces over region trees, driven through read/write/readBytes:
 * QEMU's access rules (valid sizes and alignment, impl widening/splitting,
 * memory_access_size splitting), priorities, aliases, enable/disable and
 * unassigned accesses.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace, MemTx, mmioAccessSize } from './address-space.js';
import { createTsRam } from './ram-ts.js';
import { AliasRegion, ContainerRegion, type MemoryTracer, MmioRegion, RamRegion, REENTRANT_ACCESS_TRACE } from './region.js';
import { recorder } from '../../test/support/mmio-recorder.js';

function space(region: MmioRegion | RamRegion, at = 0x1000, unassignedByte?: number): AddressSpace {
  const root = new ContainerRegion('root', 2 ** 32);
  root.add(region, at);
  return new AddressSpace('test', root, unassignedByte === undefined ? {} : { unassignedByte });
}

describe('valid access rules', () => {
  it('refuses sizes outside valid: reads 0, drops the write, handler untouched', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 4, max: 4 } });
    const as = space(region);
    expect(as.read(0x1000, 1)).toBe(0);
    expect(as.read(0x1000, 2)).toBe(0);
    expect(as.write(0x1000, 1, 0xff)).toBe(MemTx.DecodeError);
    expect(as.read64(0x1000)).toBe(0n);
    expect(as.write64(0x1000, 1n)).toBe(MemTx.DecodeError);
    expect(calls).toEqual([]);
    expect(as.read(0x1004, 4)).toBe(0x0807_0605);
    expect(calls).toEqual([['r', 4, 4]]);
  });

  it('refuses unaligned accesses unless valid.unaligned', () => {
    const strict = recorder(0x100, { valid: { min: 1, max: 4 } });
    expect(space(strict.region).read(0x1002, 4)).toBe(0);
    expect(space(strict.region).write(0x1001, 2, 0xffff)).toBe(MemTx.DecodeError);
    expect(strict.calls).toEqual([]);
    const loose = recorder(0x100, { valid: { min: 1, max: 4, unaligned: true } });
    expect(space(loose.region).read(0x1002, 4)).toBe(0x0605_0403);
    expect(loose.calls).toEqual([['r', 2, 4]]);
  });

  it('a refused access reads 0 even where holes read all-ones (I/O space)', () => {
    const { region } = recorder(0x10, { valid: { min: 1, max: 1 } });
    const io = space(region, 0x500, 0xff);
    expect(io.read(0x500, 2)).toBe(0); // refused by the region
    expect(io.read(0x600, 2)).toBe(0xffff); // nothing there
    expect(io.read(0x600, 4)).toBe(0xffff_ffff);
    expect(io.read(0x600, 1)).toBe(0xff);
    expect(io.read64(0x600)).toBe(0xffff_ffff_ffff_ffffn);
    expect(io.read(0x500, 1)).toBe(1);
  });
});

describe('impl sizes (access_with_adjusted_size)', () => {
  it('widens a narrow access to impl.min at the same offset and masks the result', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 4 }, impl: { min: 4, max: 4 } });
    const as = space(region);
    expect(as.read(0x1001, 1)).toBe(0x02);
    expect(as.read(0x1002, 2)).toBe(0x0403);
    as.write(0x1003, 1, 0x1ab);
    expect(calls).toEqual([['r', 1, 4], ['r', 2, 4], ['w', 3, 4, 0xab]]);
  });

  it('splits a wide access into impl.max pieces, little-endian', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 4 }, impl: { min: 1, max: 1 } });
    const as = space(region);
    expect(as.read(0x1004, 4)).toBe(0x0807_0605);
    as.write(0x1008, 4, 0x4433_2211);
    expect(calls).toEqual([
      ['r', 4, 1], ['r', 5, 1], ['r', 6, 1], ['r', 7, 1],
      ['w', 8, 1, 0x11], ['w', 9, 1, 0x22], ['w', 10, 1, 0x33], ['w', 11, 1, 0x44],
    ]);
  });

  it('uses read64/write64 for 8-byte implementations and splits 8 into 4+4 otherwise', () => {
    const wide = recorder(0x100, { valid: { min: 4, max: 8 }, impl: { min: 4, max: 8 } });
    const as = space(wide.region);
    expect(as.read64(0x1008)).toBe(0x100f_0e0d_0c0b_0a09n);
    as.write64(0x1010, -1n);
    expect(wide.calls).toEqual([['r64', 8, 8], ['w64', 16, 8, 0xffff_ffff_ffff_ffffn]]);
    const narrow = recorder(0x100, { valid: { min: 4, max: 8 }, impl: { min: 4, max: 4 } });
    const as2 = space(narrow.region);
    expect(as2.read64(0x1000)).toBe(0x0807_0605_0403_0201n);
    as2.write64(0x1000, 0x1122_3344_5566_7788n);
    expect(narrow.calls).toEqual([['r', 0, 4], ['r', 4, 4], ['w', 0, 4, 0x5566_7788], ['w', 4, 4, 0x1122_3344]]);
  });

  it('passes write values truncated to the access size', () => {
    const { region, calls } = recorder(0x100);
    space(region).write(0x1000, 2, 0x12_3456);
    expect(calls).toEqual([['w', 0, 2, 0x3456]]);
  });

  it('masks handler results wider than the access', () => {
    const region = new MmioRegion('wide', 0x10, { read: () => 0xdead_beef, write: () => {} });
    expect(space(region).read(0x1000, 1)).toBe(0xef);
    expect(space(region).read(0x1000, 2)).toBe(0xbeef);
  });
});

describe('byte ranges on MMIO (memory_access_size)', () => {
  it('splits into the largest aligned sizes the region accepts', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 4 } });
    const out = new Uint8Array(7);
    expect(space(region).readBytes(0x1001, out)).toBe(MemTx.Ok);
    expect(Array.from(out)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(calls).toEqual([['r', 1, 1], ['r', 2, 2], ['r', 4, 4]]);
  });

  it('uses 8-byte accesses when valid.max is 8', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 8 } });
    const out = new Uint8Array(16);
    space(region).readBytes(0x1000, out);
    expect(out[15]).toBe(16);
    expect(calls).toEqual([['r64', 0, 8], ['r64', 8, 8]]);
    calls.length = 0;
    space(region).writeBytes(0x1008, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
    expect(calls).toEqual([['w64', 8, 8, 0x0807_0605_0403_0201n], ['w', 16, 1, 9]]);
  });

  it('does not split by alignment when impl.unaligned (QEMU checks impl, not valid)', () => {
    const a = recorder(0x100, { valid: { min: 1, max: 4, unaligned: true } });
    expect(mmioAccessSize(a.region, 4, 1)).toBe(1);
    const b = recorder(0x100, { valid: { min: 1, max: 4, unaligned: true }, impl: { min: 1, max: 4, unaligned: true } });
    expect(mmioAccessSize(b.region, 4, 1)).toBe(4);
    expect(mmioAccessSize(b.region, 3, 1)).toBe(2);
  });

  it('a refused piece reads 0 and reports DecodeError; the rest still happens', () => {
    const { region, calls } = recorder(0x100, { valid: { min: 4, max: 4 } });
    const out = new Uint8Array(6).fill(0xee);
    expect(space(region).readBytes(0x1002, out)).toBe(MemTx.DecodeError);
    expect(Array.from(out)).toEqual([0, 0, 5, 6, 7, 8]);
    expect(calls).toEqual([['r', 4, 4]]);
  });

  it('splits a CPU access that crosses from one region into another', () => {
    const ram = createTsRam(0x1000);
    ram.writeU16(0xffe, 0xbbaa);
    const { region } = recorder(0x100, { valid: { min: 1, max: 4 } });
    const root = new ContainerRegion('root', 2 ** 32);
    root.add(new RamRegion('ram', 0x1000, ram), 0);
    root.add(region, 0x1000);
    const as = new AddressSpace('x', root);
    expect(as.read(0xffe, 4)).toBe(0x0201_bbaa);
  });
});

describe('region tree rendering', () => {
  it('higher priority wins; among equals the later-added wins; lower shows through gaps', () => {
    const lo = recorder(0x100, undefined, 'lo');
    const hi = recorder(0x10, undefined, 'hi');
    const late = recorder(0x10, undefined, 'late');
    const root = new ContainerRegion('root', 0x10000);
    root.add(hi.region, 0x1010, 1);
    root.add(lo.region, 0x1000, 0);
    const as = new AddressSpace('x', root);
    expect(as.lookup(0x1010)!.leaf.name).toBe('hi');
    expect(as.lookup(0x100f)!.leaf.name).toBe('lo');
    expect(as.lookup(0x1020)!.leaf.name).toBe('lo');
    expect(as.lookup(0x1020)!.offset).toBe(0x20);
    root.add(late.region, 0x1030, 0);
    expect(as.lookup(0x1030)!.leaf.name).toBe('late');
    root.remove(lo.region);
    root.add(lo.region, 0x1000, 0); // re-added: now the later one
    expect(as.lookup(0x1030)!.leaf.name).toBe('lo');
    expect(as.lookup(0x1010)!.leaf.name).toBe('hi');
  });

  it('aliases show a window of their target at an offset, clipped to the alias', () => {
    const ram = createTsRam(0x10000);
    ram.writeU32(0x8000, 0x1111_1111);
    ram.writeU32(0x8ffc, 0x2222_2222);
    ram.writeU32(0x9000, 0x3333_3333);
    const block = new RamRegion('block', 0x10000, ram);
    const alias = new AliasRegion('win', 0x1000, block, 0x8000);
    const root = new ContainerRegion('root', 0x100000);
    root.add(alias, 0x4000);
    const as = new AddressSpace('x', root);
    expect(as.read(0x4000, 4)).toBe(0x1111_1111);
    expect(as.read(0x4ffc, 4)).toBe(0x2222_2222);
    expect(as.read(0x5000, 4)).toBe(0); // past the window: not the target's next bytes
    alias.setOffset(0x9000);
    expect(as.read(0x4000, 4)).toBe(0x3333_3333);
  });

  it('an alias of a container sees its children, priorities included', () => {
    const inner = new ContainerRegion('inner', 0x1000);
    const a = recorder(0x100, undefined, 'a');
    inner.add(a.region, 0x200);
    const root = new ContainerRegion('root', 0x100000);
    root.add(new AliasRegion('view', 0x400, inner, 0x100), 0x8000);
    const as = new AddressSpace('x', root);
    expect(as.lookup(0x8100)!.leaf.name).toBe('a');
    expect(as.lookup(0x8100)!.offset).toBe(0);
    expect(as.lookup(0x80ff)).toBeNull();
    expect(as.read(0x8104, 1)).toBe(5);
  });

  it('re-renders when regions are disabled, enabled, moved or removed', () => {
    const { region } = recorder(0x100);
    const root = new ContainerRegion('root', 0x100000);
    root.add(region, 0x1000);
    const as = new AddressSpace('x', root);
    expect(as.read(0x1000, 1)).toBe(1);
    region.setEnabled(false);
    expect(as.read(0x1000, 1)).toBe(0);
    expect(as.lookup(0x1000)).toBeNull();
    region.setEnabled(true);
    expect(as.read(0x1000, 1)).toBe(1);
    root.move(region, 0x2000);
    expect(as.lookup(0x1000)).toBeNull();
    expect(as.read(0x2001, 1)).toBe(2);
    root.remove(region);
    expect(as.flatView()).toEqual([]);
    expect(() => root.move(region, 0)).toThrow();
  });

  it('a disabled container hides all its children', () => {
    const inner = new ContainerRegion('inner', 0x1000);
    inner.add(recorder(0x10).region, 0);
    const root = new ContainerRegion('root', 0x10000);
    root.add(inner, 0x1000);
    const as = new AddressSpace('x', root);
    expect(as.lookup(0x1000)).not.toBeNull();
    inner.setEnabled(false);
    expect(as.lookup(0x1000)).toBeNull();
  });
});

describe('unassigned and RAM accesses', () => {
  it('unassigned reads 0 (memory) or all-ones (unassignedByte 0xff); writes report DecodeError', () => {
    const mem = new AddressSpace('mem', new ContainerRegion('root', 2 ** 32));
    expect(mem.read(0x1234, 4)).toBe(0);
    expect(mem.write(0x1234, 4, 1)).toBe(MemTx.DecodeError);
    const buf = new Uint8Array(4).fill(9);
    expect(mem.readBytes(0, buf)).toBe(MemTx.DecodeError);
    expect(Array.from(buf)).toEqual([0, 0, 0, 0]);
    const io = new AddressSpace('io', new ContainerRegion('root', 0x10000), { unassignedByte: 0xff });
    expect(io.read(0x80, 2)).toBe(0xffff);
    io.readBytes(0x80, buf);
    expect(Array.from(buf)).toEqual([0xff, 0xff, 0xff, 0xff]);
  });

  it('RAM regions with a RAM offset, bulk accesses across RAM and holes, fill and isRam', () => {
    const ram = createTsRam(0x4000);
    const root = new ContainerRegion('root', 0x100000);
    root.add(new RamRegion('hi', 0x2000, ram, 0x2000), 0x10000);
    root.add(new RamRegion('lo', 0x1000, ram, 0), 0x20000);
    const as = new AddressSpace('x', root);
    as.write(0x10000, 4, 0xaabb_ccdd);
    expect(ram.readU32(0x2000)).toBe(0xaabb_ccdd);
    as.write64(0x11ffc, 0x0102_0304_0506_0708n); // straddles the end of 'hi'
    expect(ram.readU32(0x3ffc)).toBe(0x0506_0708);
    expect(as.read64(0x11ffc)).toBe(0x0506_0708n);
    const out = new Uint8Array(8).fill(7);
    expect(as.readBytes(0x11ffe, out)).toBe(MemTx.DecodeError);
    expect(Array.from(out)).toEqual([6, 5, 0, 0, 0, 0, 0, 0]);
    expect(as.fill(0x20000, 0x1000, 0x5a)).toBe(MemTx.Ok);
    expect(ram.readU8(0xfff)).toBe(0x5a);
    expect(as.fill(0x20ff0, 0x20, 0x11)).toBe(MemTx.DecodeError);
    expect(ram.readU8(0xfff)).toBe(0x11);
    expect(as.isRam(0x10000, 0x2000)).toBe(true);
    expect(as.isRam(0x10000, 0x2001)).toBe(false);
  });
});

describe('spans of a buffer (readInto / writeFrom)', () => {
  /** RAM at 0..0x1000, a recorder MMIO device at 0x1000, a hole above 0x1100. */
  function mixed() {
    const ram = createTsRam(0x1000);
    const { region, calls } = recorder(0x100, { valid: { min: 1, max: 4 } });
    const root = new ContainerRegion('root', 2 ** 32);
    root.add(new RamRegion('ram', 0x1000, ram), 0);
    root.add(region, 0x1000);
    return { as: new AddressSpace('test', root), ram, calls };
  }

  it('fills exactly the span, across RAM, MMIO and a hole, as readBytes on a view would', () => {
    const { as, ram } = mixed();
    ram.fill(0, 0x1000, 0x5a);
    const whole = new Uint8Array(0x120);
    expect(as.readBytes(0xff0, whole)).toBe(MemTx.DecodeError);
    const dst = new Uint8Array(0x130).fill(0xee);
    expect(as.readInto(0xff0, dst, 7, 0x120)).toBe(MemTx.DecodeError);
    expect(dst.subarray(7, 7 + 0x120)).toEqual(whole);
    expect(dst.subarray(0, 7).every((b) => b === 0xee)).toBe(true);
    expect(dst.subarray(7 + 0x120).every((b) => b === 0xee)).toBe(true);
    expect(whole[0x10]).toBe(1); // first MMIO byte reads (offset + 1)
  });

  it('writes exactly the span, with the same MMIO calls as writeBytes on a view', () => {
    const a = mixed();
    const b = mixed();
    const src = Uint8Array.from({ length: 0x40 }, (_, i) => i + 1);
    expect(a.as.writeFrom(0xff8, src, 5, 0x20)).toBe(MemTx.Ok);
    expect(b.as.writeBytes(0xff8, src.subarray(5, 0x25))).toBe(MemTx.Ok);
    expect(a.calls).toEqual(b.calls);
    expect(a.ram.readU32(0xff8)).toBe(b.ram.readU32(0xff8));
    expect(a.ram.readU32(0xffc)).toBe(0x0d0c_0b0a);
  });

  it('rejects spans outside the buffer (a host bug)', () => {
    const { as } = mixed();
    const buf = new Uint8Array(16);
    expect(() => as.readInto(0, buf, 10, 8)).toThrow(RangeError);
    expect(() => as.writeFrom(0, buf, -1, 4)).toThrow(RangeError);
    expect(() => as.readInto(0, buf, 1.5, 4)).toThrow(RangeError);
  });
});

describe('re-entrancy guard (QEMU MemReentrancyGuard)', () => {
  /** A system with two register windows; `a` runs `onWrite` inside its write callback. */
  function rig(shared: boolean, tracer?: MemoryTracer) {
    const root = new ContainerRegion('system', 0x10_0000);
    const as = new AddressSpace('memory', root, tracer ? { tracer } : {});
    const seen: string[] = [];
    let onWrite: () => void = () => {};
    const a = new MmioRegion('a', 0x100, {
      read: (off) => {
        seen.push(`a read ${off}`);
        return 0x11;
      },
      write: (off, _size, v) => {
        seen.push(`a write ${off}=${v}`);
        onWrite();
      },
    });
    const b = new MmioRegion(
      'b',
      0x100,
      { read: () => 0x22, write: (off, _size, v) => seen.push(`b write ${off}=${v}`) },
      undefined,
      shared ? a.guard : undefined,
    );
    root.add(a, 0x1000);
    root.add(b, 0x2000);
    return { as, a, b, seen, set: (f: () => void) => (onWrite = f) };
  }

  it('an access to a region from inside its own callback is refused (reads 0) and counted', () => {
    const { as, a, seen, set } = rig(false);
    const inner: unknown[] = [];
    set(() => {
      inner.push(as.write(0x1004, 4, 7), as.read(0x1008, 4));
      const buf = new Uint8Array(4);
      inner.push(as.readBytes(0x1000, buf), as.writeBytes(0x1000, buf));
    });
    expect(as.write(0x1000, 4, 1)).toBe(MemTx.Ok);
    expect(inner).toEqual([MemTx.DecodeError, 0, MemTx.DecodeError, MemTx.DecodeError]);
    expect(seen).toEqual(['a write 0=1']);
    expect(a.guard.blocked).toBe(4);
    expect(a.guard.engaged).toBe(false);
    expect(as.read(0x1000, 4)).toBe(0x11);
  });

  it('another region is reached; a region sharing the guard is refused', () => {
    const own = rig(false);
    own.set(() => own.as.write(0x2000, 4, 5));
    own.as.write(0x1000, 4, 1);
    expect(own.seen).toEqual(['a write 0=1', 'b write 0=5']);
    const shared = rig(true);
    shared.set(() => shared.as.write(0x2000, 4, 5));
    shared.as.write(0x1000, 4, 1);
    expect(shared.seen).toEqual(['a write 0=1']);
    expect(shared.a.guard.blocked).toBe(1);
  });

  it('each refusal is traced as memory_region_reentrant_access when the tracer enables it', () => {
    const lines: string[] = [];
    const asked: string[] = [];
    const tracer: MemoryTracer = {
      enabled: (e) => (asked.push(e), true),
      trace: (e, f) => lines.push(`${e} ${Object.entries(f).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`),
    };
    const { as, set } = rig(false, tracer);
    set(() => {
      as.write(0x1004, 4, 7);
      as.read(0x1008, 2);
      as.writeBytes(0x10f8, new Uint8Array(8));
    });
    as.write(0x1000, 4, 1);
    expect(REENTRANT_ACCESS_TRACE).toBe('memory_region_reentrant_access');
    expect(lines).toEqual([
      'memory_region_reentrant_access space=memory region=a offset=4 size=4 write=true',
      'memory_region_reentrant_access space=memory region=a offset=8 size=2 write=false',
      'memory_region_reentrant_access space=memory region=a offset=248 size=4 write=true',
      'memory_region_reentrant_access space=memory region=a offset=252 size=4 write=true',
    ]);
    expect(new Set(asked)).toEqual(new Set([REENTRANT_ACCESS_TRACE]));
    // Accepted accesses are not traced; a disabled event is asked about but not built.
    lines.length = 0;
    set(() => {});
    as.write(0x1000, 4, 2);
    expect(lines).toEqual([]);
    const quiet = rig(false, { enabled: () => false, trace: () => lines.push('traced') });
    quiet.set(() => quiet.as.write(0x1004, 4, 7));
    quiet.as.write(0x1000, 4, 1);
    expect(quiet.a.guard.blocked).toBe(1);
    expect(lines).toEqual([]);
  });

  it('the guard is released when a callback throws', () => {
    const { as, a, set } = rig(false);
    set(() => {
      throw new Error('device bug');
    });
    expect(() => as.write(0x1000, 4, 1)).toThrow('device bug');
    expect(a.guard.engaged).toBe(false);
    set(() => {});
    expect(as.write(0x1000, 4, 2)).toBe(MemTx.Ok);
  });
});
