/**
 * ChunkedRam over a small test chunk source (4 KiB chunks, so every chunk
 * boundary is cheap to reach), with and without backend bulk operations:
 * spans of a caller's buffer that start or end away from its edges, chunks
 * never written, copies from a view of RAM's own storage, the chunk-shift
 * limits, and which accesses allocate chunk storage (reads never do).
 */
import { describe, expect, it } from 'vitest';
import { ChunkedRam, type BulkOps, type ChunkSource } from './ram.js';

const CHUNK = 4096;

/** Sparse chunks of 2^shift bytes that remember every `chunk()` call asking to create one. */
class TestChunks implements ChunkSource {
  readonly buffers = new Map<number, ArrayBuffer>();
  /** Indices of chunks created so far, in order. */
  readonly created: number[] = [];
  constructor(
    readonly size: number,
    readonly chunkShift = 12,
  ) {}

  chunk(index: number, create: boolean): ArrayBuffer | null {
    let buf = this.buffers.get(index);
    if (!buf && create) {
      buf = new ArrayBuffer(2 ** this.chunkShift);
      this.buffers.set(index, buf);
      this.created.push(index);
    }
    return buf ?? null;
  }
}

/** Bulk operations working on the same chunk buffers (as the native addon does on its mapping). */
class TestBulk implements BulkOps {
  calls = 0;
  constructor(private readonly src: TestChunks) {}
  private byte(at: number, create: boolean): { buf: Uint8Array; i: number } | null {
    const size = 2 ** this.src.chunkShift;
    const b = this.src.chunk(Math.floor(at / size), create);
    return b ? { buf: new Uint8Array(b), i: at % size } : null;
  }
  copyOut(offset: number, dst: Uint8Array): void {
    this.calls++;
    for (let k = 0; k < dst.length; k++) {
      const p = this.byte(offset + k, false);
      dst[k] = p ? p.buf[p.i]! : 0;
    }
  }
  copyIn(offset: number, src: Uint8Array): void {
    this.calls++;
    for (let k = 0; k < src.length; k++) {
      const p = this.byte(offset + k, true)!;
      p.buf[p.i] = src[k]!;
    }
  }
  copyWithin(dstOffset: number, srcOffset: number, length: number): void {
    const tmp = new Uint8Array(length);
    this.copyOut(srcOffset, tmp);
    this.copyIn(dstOffset, tmp);
  }
  fill(offset: number, length: number, value: number): void {
    this.calls++;
    for (let k = 0; k < length; k++) {
      const p = this.byte(offset + k, value !== 0); // zero over nothing stays nothing
      if (p) p.buf[p.i] = value;
    }
  }
  compare(offset: number, bytes: Uint8Array): boolean {
    const tmp = new Uint8Array(bytes.length);
    this.copyOut(offset, tmp);
    return tmp.every((b, k) => b === bytes[k]);
  }
}

/** Bytes 1, 2, 3, ... (never 0, so zeros show what was not copied). */
function ramp(len: number, first = 1): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => ((first + i) % 255) + 1);
}

describe.each([false, true])('ChunkedRam over 4 KiB test chunks (bulk ops: %s)', (withBulk) => {
  const make = (chunks = 4) => {
    const src = new TestChunks(chunks * CHUNK);
    const bulk = withBulk ? new TestBulk(src) : null;
    return { src, bulk, ram: new ChunkedRam(src, 'test', bulk) };
  };

  it('copyOutAt across chunks fills exactly the span of dst, unwritten chunks as zeros', () => {
    const { ram } = make();
    ram.copyIn(CHUNK - 8, ramp(8));
    for (const [dstStart, length] of [[3, 16], [0, 16], [3, 13]]) {
      const dst = new Uint8Array(24).fill(0xee);
      ram.copyOutAt(CHUNK - 8, dst, dstStart!, length!);
      const want = new Uint8Array(24).fill(0xee);
      want.set(ramp(8), dstStart!);
      want.fill(0, dstStart! + 8, dstStart! + length!);
      expect([...dst]).toEqual([...want]);
    }
  });

  it('copyOutAt inside an unwritten chunk writes zeros to exactly the span', () => {
    const { ram } = make();
    for (const length of [8, 100, CHUNK]) {
      const dst = new Uint8Array(length + 10).fill(0xee);
      ram.copyOutAt(CHUNK, dst, 5, length);
      expect(dst.subarray(0, 5).every((b) => b === 0xee)).toBe(true);
      expect(dst.subarray(5, 5 + length).every((b) => b === 0)).toBe(true);
      expect(dst.subarray(5 + length).every((b) => b === 0xee)).toBe(true);
    }
  });

  it('copyInAt across chunks takes exactly the span of src', () => {
    const { ram } = make();
    const src = ramp(40);
    for (const [srcStart, length] of [[4, 16], [0, 16], [4, 36]]) {
      ram.fill(0, 4 * CHUNK, 0);
      ram.copyInAt(CHUNK - 8, src, srcStart!, length!);
      const out = new Uint8Array(64);
      ram.copyOut(CHUNK - 24, out);
      const want = new Uint8Array(64);
      want.set(src.subarray(srcStart!, srcStart! + length!), 16);
      expect([...out]).toEqual([...want]);
    }
  });

  it('copies from a view of its own chunk storage (overlapping) as memmove', () => {
    const { src, ram } = make();
    ram.copyIn(0, ramp(CHUNK));
    const own = new Uint8Array(src.buffers.get(0)!);
    for (const [from, to, len] of [[0, 1, 16], [10, 0, 16], [0, 8, 200]]) {
      const before = new Uint8Array(CHUNK);
      ram.copyOut(0, before);
      ram.copyInAt(to!, own, from!, len!);
      const want = before.slice();
      want.copyWithin(to!, from!, from! + len!);
      const after = new Uint8Array(CHUNK);
      ram.copyOut(0, after);
      expect([...after.subarray(0, 256)]).toEqual([...want.subarray(0, 256)]);
    }
  });

  it('copyWithin inside one never-written chunk, across chunks, and of nothing', () => {
    const { ram } = make();
    ram.copyWithin(CHUNK + 16, CHUNK, 32);
    expect(ram.compare(CHUNK, new Uint8Array(64))).toBe(true);
    ram.copyIn(CHUNK - 4, ramp(8));
    ram.copyWithin(3 * CHUNK - 2, CHUNK - 4, 8);
    const out = new Uint8Array(8);
    ram.copyOut(3 * CHUNK - 2, out);
    expect([...out]).toEqual([...ramp(8)]);
    ram.copyWithin(CHUNK + 1, CHUNK - 4, 8);
    ram.copyOut(CHUNK + 1, out);
    expect([...out]).toEqual([...ramp(8)]);
  });

  it('2- and 4-byte accesses at the last bytes of a chunk, and across it', () => {
    const { ram } = make();
    for (const at of [CHUNK - 2, CHUNK - 4, CHUNK - 1, CHUNK - 3, 2 * CHUNK - 6]) {
      ram.writeU32(at, 0x8899_aabb);
      expect(ram.readU32(at)).toBe(0x8899_aabb);
      expect(ram.readU16(at)).toBe(0xaabb);
      expect(ram.readU16(at + 2)).toBe(0x8899);
      ram.writeU16(at, 0x1234);
      expect(ram.readU16(at)).toBe(0x1234);
      expect(ram.readU8(at + 1)).toBe(0x12);
      const pair = { lo: 0, hi: 0 };
      ram.readU32Pair(at - 4, pair);
      expect(pair.hi).toBe(0x8899_1234);
    }
  });

  it('reads data that only the bulk operations wrote, whichever read comes first', () => {
    const b = ramp(16);
    const u32 = (i: number) => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
    const reads: [string, (ram: ChunkedRam) => number, number][] = [
      ['readU32Pair', (ram) => {
        const pair = { lo: 0, hi: 0 };
        ram.readU32Pair(CHUNK, pair);
        return pair.lo;
      }, u32(4)],
      ['readU16', (ram) => ram.readU16(CHUNK + 2), b[6]! | (b[7]! << 8)],
      ['readU8', (ram) => ram.readU8(CHUNK + 4), b[8]!],
      ['readU32', (ram) => ram.readU32(CHUNK + 8), u32(12)],
    ];
    for (const [, read, want] of reads) {
      const { ram } = make();
      ram.copyIn(CHUNK - 4, b); // across a chunk: bulk copyIn when there is one
      expect(read(ram)).toBe(want);
    }
  });

  it('reads, zero fills and empty copies allocate no chunk storage', () => {
    const { src, ram } = make();
    ram.readU8(0);
    ram.readU16(CHUNK);
    ram.readU32(2 * CHUNK);
    ram.readU32Pair(3 * CHUNK, { lo: 0, hi: 0 });
    ram.copyOut(CHUNK - 8, new Uint8Array(16));
    ram.copyOutAt(CHUNK, new Uint8Array(CHUNK), 0, CHUNK);
    expect(ram.compare(0, new Uint8Array(4 * CHUNK))).toBe(true);
    ram.fill(CHUNK - 8, 16, 0);
    ram.copyIn(CHUNK, new Uint8Array(0));
    ram.copyInAt(4 * CHUNK, new Uint8Array(4), 2, 0);
    ram.copyWithin(CHUNK, 2 * CHUNK, 0);
    ram.copyWithin(CHUNK, CHUNK + 8, 0);
    ram.copyWithin(CHUNK, CHUNK, 64);
    expect(src.created).toEqual([]);
    ram.writeU8(2 * CHUNK + 1, 1);
    expect(src.created).toEqual([2]);
  });

  it('a 2- or 4-byte write inside one chunk counts as one RAM write, at the chunk end too', () => {
    const { ram } = make();
    const before = ram.writes;
    ram.writeU16(CHUNK - 2, 1);
    ram.writeU32(CHUNK - 4, 1);
    ram.writeU16(0, 1);
    ram.writeU32(0, 1);
    expect(ram.writes - before).toBe(4);
    const again = ram.writes;
    ram.copyWithin(0, 2 * CHUNK, 0); // a memmove of nothing is still one write call
    ram.copyWithin(CHUNK, CHUNK, 16);
    ram.copyWithin(CHUNK + 16, CHUNK, 16); // inside one chunk: one memmove
    ram.copyWithin(CHUNK + 1, CHUNK + 40, 8);
    ram.copyWithin(2 * CHUNK - 16, CHUNK + 8, 16); // the destination ends at the chunk's end
    ram.copyWithin(CHUNK + 8, 2 * CHUNK - 16, 16); // the source ends at the chunk's end
    expect(ram.writes - again).toBe(6);
    if (withBulk) {
      const bulkOnce = ram.writes;
      ram.copyWithin(3 * CHUNK - 4, CHUNK - 4, 16); // across chunks: one bulk call
      expect(ram.writes - bulkOnce).toBe(1);
    }
  });

  it('out-of-range accesses throw RangeErrors that name the range', () => {
    const { ram } = make();
    expect(() => ram.checkRange(-1, 0)).toThrow(RangeError);
    expect(() => ram.checkRange(-4, 0)).toThrow(RangeError);
    expect(() => ram.checkRange(4 * CHUNK - 4, 8)).toThrow(`guest RAM: range ${4 * CHUNK - 4}+8 outside 0..${4 * CHUNK}`);
    expect(() => ram.copyOutAt(0, new Uint8Array(8), 4, 8)).toThrow('guest RAM: span 4+8 outside a buffer of 8');
    expect(() => ram.copyInAt(0, new Uint8Array(8), -1, 2)).toThrow('guest RAM: span -1+2 outside a buffer of 8');
  });
});

describe('ChunkedRam chunk shift', () => {
  it('accepts 2^12 to 2^30 byte chunks and rejects others', () => {
    for (const shift of [12, 30]) expect(new ChunkedRam(new TestChunks(4096, shift), 't').size).toBe(4096);
    for (const shift of [11, 31]) {
      expect(() => new ChunkedRam(new TestChunks(4096, shift), 't')).toThrow(`guest RAM: chunk shift ${shift} out of range`);
    }
  });

  it('a last chunk shorter than the chunk size is still reachable', () => {
    const ram = new ChunkedRam(new TestChunks(3 * CHUNK, 13), 't');
    ram.writeU32(3 * CHUNK - 4, 0xdead_beef);
    expect(ram.readU32(3 * CHUNK - 4)).toBe(0xdead_beef);
  });
});
