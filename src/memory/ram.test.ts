/**
 * ChunkedRam through its public interface, on every available backend:
 * hostile ranges, cross-chunk accesses and copies, sparse zero reads,
 * fill/compare/copyWithin.
 */
import { describe, expect, it } from 'vitest';
import { availableRamBackends, createRam } from './ram-backend.js';
import type { ChunkedRam } from './ram.js';
import { createTsRam } from './ram-ts.js';
import { Rng } from '../../test/support/prng.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** 2 GiB + 4 KiB: crosses a 1 GiB native chunk and many 2 MiB TS chunks, last chunk short. */
const SIZE = 2 * GiB + 4096;
/** A chunk boundary in both backends (1 GiB is a multiple of 2 MiB). */
const BOUNDARY = GiB;

/** `len` pseudo-random bytes, the same for the same seed. */
function pattern(len: number, seed: number): Uint8Array {
  return new Rng(seed).bytes(len);
}

describe.each(availableRamBackends())('ChunkedRam (%s backend)', (backend) => {
  const make = (size = SIZE): ChunkedRam => createRam(size, backend);

  it('reports its size and backend', () => {
    const ram = make();
    expect(ram.size).toBe(SIZE);
    expect(ram.backend).toBe(backend);
  });

  it('reads zeros everywhere before anything is written (sparse)', () => {
    const ram = make();
    for (const at of [0, 4096, BOUNDARY - 4, BOUNDARY, SIZE - 4]) {
      expect(ram.readU32(at)).toBe(0);
      expect(ram.readU16(at)).toBe(0);
      expect(ram.readU8(at)).toBe(0);
    }
    const out = new Uint8Array(8192).fill(0xaa);
    ram.copyOut(BOUNDARY - 4096, out);
    expect(out.every((b) => b === 0)).toBe(true);
    expect(ram.compare(SIZE - 4096, new Uint8Array(4096))).toBe(true);
  });

  it('stores 1/2/4-byte values little-endian and truncates them', () => {
    const ram = make();
    ram.writeU32(0x1000, 0x1234_5678);
    expect(ram.readU8(0x1000)).toBe(0x78);
    expect(ram.readU16(0x1002)).toBe(0x1234);
    ram.writeU32(0x2000, -1);
    expect(ram.readU32(0x2000)).toBe(0xffff_ffff);
    ram.writeU16(0x3000, 0x1_abcd);
    expect(ram.readU32(0x3000)).toBe(0xabcd);
    ram.writeU8(0x3003, 0x1ff);
    expect(ram.readU32(0x3000)).toBe(0xff00_abcd);
  });

  it('handles unaligned and chunk-straddling 2/4-byte accesses', () => {
    const ram = make();
    ram.writeU32(BOUNDARY - 2, 0xdead_beef);
    expect(ram.readU16(BOUNDARY - 2)).toBe(0xbeef);
    expect(ram.readU16(BOUNDARY)).toBe(0xdead);
    expect(ram.readU32(BOUNDARY - 2)).toBe(0xdead_beef);
    expect(ram.readU32(BOUNDARY - 1)).toBe(0x00de_adbe);
    ram.writeU16(BOUNDARY - 1, 0x5aa5);
    expect(ram.readU8(BOUNDARY - 1)).toBe(0xa5);
    expect(ram.readU8(BOUNDARY)).toBe(0x5a);
    ram.writeU32(0x101, 0x0403_0201);
    expect(ram.readU32(0x100)).toBe(0x0302_0100);
    expect(ram.readU16(0x103)).toBe(0x0403);
  });

  it('works at the very last bytes of RAM', () => {
    const ram = make();
    ram.writeU32(SIZE - 4, 0xcafe_f00d);
    expect(ram.readU32(SIZE - 4)).toBe(0xcafe_f00d);
    expect(ram.readU16(SIZE - 2)).toBe(0xcafe);
    expect(ram.readU8(SIZE - 1)).toBe(0xca);
  });

  it('copies in and out across a chunk boundary', () => {
    const ram = make();
    const data = pattern(3 * MiB + 17, 1);
    const at = BOUNDARY - MiB - 5;
    ram.copyIn(at, data);
    const back = new Uint8Array(data.length);
    ram.copyOut(at, back);
    expect(Buffer.compare(back, data)).toBe(0);
    expect(ram.compare(at, data)).toBe(true);
    expect(ram.readU8(at - 1)).toBe(0);
    expect(ram.readU8(at + data.length)).toBe(0);
    expect(ram.readU8(BOUNDARY)).toBe(data[BOUNDARY - at]);
  });

  it('compare finds a difference in any byte, on either side of a boundary', () => {
    const ram = make();
    const data = pattern(8192, 2);
    const at = BOUNDARY - 4096;
    ram.copyIn(at, data);
    for (const i of [0, 4095, 4096, 8191]) {
      const other = data.slice();
      other[i] = other[i]! ^ 1;
      expect(ram.compare(at, other)).toBe(false);
    }
    expect(ram.compare(at, data)).toBe(true);
    expect(ram.compare(at, new Uint8Array(0))).toBe(true);
  });

  it('fills, including with zero over written and unwritten memory', () => {
    const ram = make();
    ram.fill(BOUNDARY - 100, 200, 0x1ab);
    expect(ram.readU8(BOUNDARY - 101)).toBe(0);
    expect(ram.readU8(BOUNDARY - 100)).toBe(0xab);
    expect(ram.readU8(BOUNDARY + 99)).toBe(0xab);
    expect(ram.readU8(BOUNDARY + 100)).toBe(0);
    ram.fill(BOUNDARY - 50, 100, 0);
    expect(ram.compare(BOUNDARY - 50, new Uint8Array(100))).toBe(true);
    expect(ram.readU8(BOUNDARY - 51)).toBe(0xab);
    ram.fill(0x10_0000, 4096, 0); // never written: stays zero
    expect(ram.readU32(0x10_0000)).toBe(0);
  });

  it('a large unaligned zero fill clears exactly its range', () => {
    const ram = make();
    const start = BOUNDARY - 3 * MiB - 123;
    const len = 6 * MiB + 4000;
    ram.fill(start - 4096, len + 8192, 0x77);
    ram.fill(start, len, 0);
    expect(ram.readU8(start - 1)).toBe(0x77);
    expect(ram.readU8(start + len)).toBe(0x77);
    for (const at of [start, start + 1, start + 4095, BOUNDARY - 1, BOUNDARY, start + len - 1]) expect(ram.readU8(at)).toBe(0);
    expect(ram.compare(start, new Uint8Array(len))).toBe(true);
    ram.writeU32(start + 8192, 0x0102_0304); // discarded pages are usable again
    expect(ram.readU32(start + 8192)).toBe(0x0102_0304);
  });

  it('copyWithin behaves as memmove in both directions and across chunks', () => {
    const ram = make();
    const data = pattern(10_000, 3);
    const src = BOUNDARY - 6000;
    ram.copyIn(src, data);
    ram.copyWithin(src + 1000, src, data.length); // overlap, forwards
    const out = new Uint8Array(data.length);
    ram.copyOut(src + 1000, out);
    expect(Buffer.compare(out, data)).toBe(0);
    ram.copyIn(src, data);
    ram.copyWithin(src - 777, src, data.length); // overlap, backwards
    ram.copyOut(src - 777, out);
    expect(Buffer.compare(out, data)).toBe(0);
    ram.copyWithin(0, src - 777, 0); // length 0: nothing
    expect(ram.readU32(0)).toBe(0);
  });

  it('copies from a view of itself without corruption', () => {
    const ram = make(16 * MiB);
    const data = pattern(4096, 4);
    ram.copyIn(0, data);
    const view = new Uint8Array(4096);
    ram.copyOut(0, view);
    ram.copyIn(100, view);
    expect(ram.compare(100, data)).toBe(true);
  });

  describe('hostile ranges throw RangeError and touch nothing', () => {
    const bad: [string, number, number][] = [
      ['negative offset', -1, 1],
      ['negative length', 0, -1],
      ['NaN offset', Number.NaN, 1],
      ['NaN length', 0, Number.NaN],
      ['fractional offset', 1.5, 1],
      ['fractional length', 0, 1.5],
      ['Infinity', Number.POSITIVE_INFINITY, 1],
      ['2^53 offset', 2 ** 53, 1],
      ['2^53 length', 0, 2 ** 53],
      ['2^64 offset', 2 ** 64, 8],
      ['offset+length overflow past 2^53', 2 ** 53 - 1, 2],
      ['one byte past the end', SIZE - 1, 2],
      ['start at the end', SIZE, 1],
      ['length 0 past the end', SIZE + 1, 0],
      ['huge length', 4096, SIZE],
    ];
    it.each(bad)('%s', (_what, offset, length) => {
      const ram = make();
      expect(() => ram.checkRange(offset, length)).toThrow(RangeError);
      expect(() => ram.fill(offset, length, 0xff)).toThrow(RangeError);
      expect(() => ram.copyWithin(offset, 0, length)).toThrow(RangeError);
      expect(() => ram.copyWithin(0, offset, length)).toThrow(RangeError);
      const offsetIsBad = !(Number.isInteger(offset) && offset >= 0 && offset <= SIZE - 4);
      if (offsetIsBad) {
        expect(() => ram.copyOut(offset, new Uint8Array(16))).toThrow(RangeError);
        expect(() => ram.copyIn(offset, new Uint8Array(16).fill(1))).toThrow(RangeError);
        expect(() => ram.compare(offset, new Uint8Array(16))).toThrow(RangeError);
        expect(() => ram.readU32(offset)).toThrow(RangeError);
        expect(() => ram.writeU32(offset, 0x1234_5678)).toThrow(RangeError);
        expect(() => ram.writeU16(offset, 0x1234)).toThrow(RangeError);
      }
      // Nothing was written anywhere we can see.
      expect(ram.readU32(0)).toBe(0);
      expect(ram.readU32(SIZE - 4)).toBe(0);
      expect(ram.readU32(4096)).toBe(0);
    });

    it('length 0 at the end is fine', () => {
      const ram = make();
      expect(() => ram.checkRange(SIZE, 0)).not.toThrow();
      ram.copyOut(SIZE, new Uint8Array(0));
      ram.copyIn(SIZE, new Uint8Array(0));
      ram.fill(SIZE, 0, 1);
      expect(ram.compare(SIZE, new Uint8Array(0))).toBe(true);
    });

    it('a 4-byte write straddling the end writes no byte', () => {
      const ram = make();
      expect(() => ram.writeU32(SIZE - 2, 0xffff_ffff)).toThrow(RangeError);
      expect(() => ram.writeU16(SIZE - 1, 0xffff)).toThrow(RangeError);
      expect(ram.readU16(SIZE - 2)).toBe(0);
      expect(() => ram.readU32(SIZE - 3)).toThrow(RangeError);
    });
  });

  it('random operations agree with a flat Uint8Array model (seed 12345)', () => {
    const size = 8 * MiB; // four 2 MiB TS chunks
    const ram = make(size);
    const model = new Uint8Array(size);
    const r = new Rng(12345);
    const rnd = (n: number) => r.int(n);
    // Offsets cluster around chunk boundaries so pieces straddle them.
    const where = (len: number) => Math.max(0, Math.min(size - len, (1 + rnd(3)) * 2 * MiB - rnd(256) + rnd(256)));
    for (let step = 0; step < 2000; step++) {
      const op = rnd(7);
      const len = rnd(3) === 0 ? rnd(200_000) : rnd(80);
      const at = where(Math.max(len, 4));
      if (op === 0) {
        const data = pattern(len, step + 1);
        ram.copyIn(at, data);
        model.set(data, at);
      } else if (op === 1) {
        const out = new Uint8Array(len);
        ram.copyOut(at, out);
        expect(Buffer.compare(out, model.subarray(at, at + len))).toBe(0);
      } else if (op === 2) {
        const v = rnd(3) === 0 ? 0 : rnd(256);
        ram.fill(at, len, v);
        model.fill(v, at, at + len);
      } else if (op === 3) {
        const from = where(len);
        ram.copyWithin(at, from, len);
        model.copyWithin(at, from, from + len);
      } else if (op === 4) {
        const v = rnd(2 ** 32);
        ram.writeU32(at, v);
        model[at] = v & 0xff;
        model[at + 1] = (v >>> 8) & 0xff;
        model[at + 2] = (v >>> 16) & 0xff;
        model[at + 3] = v >>> 24;
      } else if (op === 5) {
        const want = (model[at]! | (model[at + 1]! << 8) | (model[at + 2]! << 16) | (model[at + 3]! << 24)) >>> 0;
        expect(ram.readU32(at)).toBe(want);
        expect(ram.readU16(at + 1)).toBe(model[at + 1]! | (model[at + 2]! << 8));
      } else {
        const probe = model.slice(at, at + len);
        expect(ram.compare(at, probe)).toBe(true);
        if (len > 0) {
          probe[rnd(len)]! ^= 0x80;
          expect(ram.compare(at, probe)).toBe(false);
        }
      }
    }
    const all = new Uint8Array(size);
    ram.copyOut(0, all);
    expect(Buffer.compare(all, model)).toBe(0);
  });

  it('copyOutAt/copyInAt copy spans of a buffer, page-sized pieces from many pages included', () => {
    const ram = make();
    // 2048 pages (twice the page-view cache), both sides of a chunk boundary; pages
    // 1024 apart share a cache slot, so a stale view would show the wrong page.
    const base = BOUNDARY - 1024 * 4096;
    const pages = 2048;
    const image = pattern(pages * 4096, 7);
    ram.copyIn(base, image);
    const dst = new Uint8Array(3 * 4096).fill(0xee);
    const r = new Rng(12345);
    for (let i = 0; i < 6000; i++) {
      const page = r.int(pages);
      const dstStart = r.int(2 * 4096);
      ram.copyOutAt(base + page * 4096, dst, dstStart, 4096);
      expect(Buffer.compare(dst.subarray(dstStart, dstStart + 4096), image.subarray(page * 4096, (page + 1) * 4096))).toBe(0);
    }
    // A page read through a cached view sees later writes (the view aliases RAM).
    ram.copyOutAt(base, dst, 0, 4096);
    const fresh = pattern(3 * 4096, 9);
    ram.copyInAt(base - 100, fresh, 100, 4096 + 100);
    ram.copyOutAt(base, dst, 4096, 4096);
    expect(Buffer.compare(dst.subarray(4096, 8192), fresh.subarray(200, 200 + 4096))).toBe(0);
    // Spans outside the buffer are caller bugs.
    expect(() => ram.copyOutAt(base, dst, -1, 16)).toThrow(RangeError);
    expect(() => ram.copyOutAt(base, dst, dst.length - 8, 16)).toThrow(RangeError);
    expect(() => ram.copyInAt(base, dst, 0.5, 16)).toThrow(RangeError);
    expect(() => ram.copyInAt(base, dst, 0, dst.length + 1)).toThrow(RangeError);
  });

  it('readU32Pair reads two little-endian halves, in a chunk and across a boundary', () => {
    const ram = make();
    const out = { lo: 0, hi: 0 };
    for (const at of [0x1000, BOUNDARY - 8, BOUNDARY - 4, BOUNDARY - 1, SIZE - 8]) {
      ram.copyIn(at, Uint8Array.from([1, 2, 3, 4, 0xf5, 6, 7, 0x88]));
      ram.readU32Pair(at, out);
      expect([out.lo, out.hi]).toEqual([0x0403_0201, 0x8807_06f5]);
    }
    expect(() => ram.readU32Pair(SIZE - 4, out)).toThrow(RangeError);
    expect(() => ram.readU32Pair(-8, out)).toThrow(RangeError);
    expect(() => ram.readU32Pair(0.5, out)).toThrow(RangeError);
  });

  it('rejects sizes that are not positive multiples of 4 KiB', () => {
    for (const size of [0, -4096, 4095, 4096.5, Number.NaN]) {
      expect(() => createRam(size, backend)).toThrow(RangeError);
    }
  });
});

describe('writes', () => {
  it('counts every write method and nothing else, per RAM', () => {
    const ram = createTsRam(0x10000);
    const other = createTsRam(0x10000);
    const before = ram.writes;
    ram.readU32(0);
    ram.copyOut(0, new Uint8Array(8));
    expect(ram.writes).toBe(before);
    ram.writeU8(0, 1);
    ram.writeU16(2, 1);
    ram.writeU32(4, 1);
    ram.copyIn(8, new Uint8Array(4));
    ram.copyInAt(16, new Uint8Array(8), 0, 4);
    ram.copyWithin(32, 0, 8);
    ram.fill(64, 8, 0xaa);
    expect(ram.writes - before).toBe(7);
    expect(other.writes).toBe(0);
  });
});
