/**
 * The pure TypeScript RAM backend: which sizes it takes, that storage is
 * allocated in 2 MiB chunks only when written (a short last chunk only as
 * large as what is left), and that the chunk edges are invisible to users.
 * Generic ChunkedRam behaviour on every backend is in ram.test.ts.
 *
 * Allocation is observed through process.memoryUsage().arrayBuffers, which
 * Node updates synchronously on every ArrayBuffer allocation.
 */
import { describe, expect, it } from 'vitest';
import { createTsRam } from './ram-ts.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** The backend's chunk size. */
const CHUNK = 2 * MiB;
/** Slack for unrelated allocations inside a measurement. */
const SLACK = 64 * KiB;

/**
 * ArrayBuffer bytes `step` allocates on fresh state from `setup`.  A garbage
 * collection inside the window can only make one measurement smaller (it
 * frees, never allocates), so the largest of three tries on fresh state is
 * the allocation.
 */
function allocation<T>(setup: () => T, step: (state: T) => void): number {
  let most = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const state = setup();
    const before = process.memoryUsage().arrayBuffers;
    step(state);
    most = Math.max(most, process.memoryUsage().arrayBuffers - before);
  }
  return most;
}

/** Asserts that `step` on fresh `setup()` state allocates `bytes` of ArrayBuffer storage (within SLACK). */
function expectAllocates<T>(setup: () => T, step: (state: T) => void, bytes: number): void {
  const got = allocation(setup, step);
  expect(got).toBeGreaterThan(bytes - SLACK);
  expect(got).toBeLessThan(bytes + SLACK);
}

describe('createTsRam sizes', () => {
  it('accepts positive multiples of 4 KiB, from one page up to 64 GiB', () => {
    for (const size of [4096, 8192, CHUNK - 4096, CHUNK, CHUNK + 4096, 64 * GiB]) {
      const ram = createTsRam(size);
      expect(ram.size).toBe(size);
      expect(ram.backend).toBe('ts');
    }
  });

  it('rejects zero, negative, non-page-multiple and non-integer sizes with a RangeError naming the size', () => {
    for (const size of [0, -4096, 1, 2048, 4095, 4097, 6144, 4096.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createTsRam(size)).toThrow(RangeError);
      expect(() => createTsRam(size)).toThrow(`guest RAM: size ${size} must be a positive multiple of 4096`);
    }
    expect(() => createTsRam('4096' as unknown as number)).toThrow(RangeError);
  });
});

describe('sparse 2 MiB chunks', () => {
  const fresh = (size = 4 * CHUNK) => () => createTsRam(size);

  it('allocates nothing to be created or read, and untouched RAM reads zeros', () => {
    expectAllocates(() => null, () => void createTsRam(4 * CHUNK), 0);
    const out = new Uint8Array(64);
    const zeros = new Uint8Array(128);
    expectAllocates(fresh(), (ram) => {
      expect(ram.readU8(0)).toBe(0);
      expect(ram.readU16(CHUNK - 1)).toBe(0);
      expect(ram.readU32(CHUNK - 2)).toBe(0);
      expect(ram.readU32(4 * CHUNK - 4)).toBe(0);
      out.fill(0xaa);
      ram.copyOut(2 * CHUNK - 32, out);
      expect(out.every((b) => b === 0)).toBe(true);
      expect(ram.compare(3 * CHUNK, zeros)).toBe(true);
    }, 0);
  });

  it('a zero fill of untouched RAM allocates nothing', () => {
    expectAllocates(fresh(), (ram) => ram.fill(0, 4 * CHUNK, 0), 0);
  });

  it('the first write into a chunk allocates exactly that 2 MiB chunk, once', () => {
    expectAllocates(fresh(), (ram) => ram.writeU8(0, 1), CHUNK);
    // More writes anywhere in the same chunk, first and last byte included, allocate nothing.
    const first = () => {
      const ram = createTsRam(4 * CHUNK);
      ram.writeU8(0, 1);
      return ram;
    };
    expectAllocates(first, (ram) => {
      ram.writeU8(CHUNK - 1, 2);
      ram.writeU32(0x1000, 0xdead_beef);
    }, 0);
    // The next byte is in the next chunk.
    expectAllocates(first, (ram) => ram.writeU8(CHUNK, 3), CHUNK);
    const ram = first();
    ram.writeU8(CHUNK - 1, 2);
    ram.writeU32(0x1000, 0xdead_beef);
    ram.writeU8(CHUNK, 3);
    expect(ram.readU8(0)).toBe(1);
    expect(ram.readU8(CHUNK - 1)).toBe(2);
    expect(ram.readU32(0x1000)).toBe(0xdead_beef);
    expect(ram.readU8(CHUNK)).toBe(3);
  });

  it('a write straddling a chunk edge allocates both chunks and reads back whole', () => {
    expectAllocates(fresh(), (ram) => ram.writeU32(CHUNK - 2, 0x4433_2211), 2 * CHUNK);
    const ram = createTsRam(4 * CHUNK);
    ram.writeU32(CHUNK - 2, 0x4433_2211);
    expect(ram.readU32(CHUNK - 2)).toBe(0x4433_2211);
    expect(ram.readU16(CHUNK - 2)).toBe(0x2211);
    expect(ram.readU16(CHUNK)).toBe(0x4433);
    const big = Uint8Array.from({ length: 3 * 4096 }, (_, i) => (i * 13 + 7) & 0xff);
    expectAllocates(fresh(), (r) => r.copyIn(3 * CHUNK - 4096, big), 2 * CHUNK); // chunks 2 and 3
    ram.copyIn(3 * CHUNK - 4096, big);
    expect(ram.compare(3 * CHUNK - 4096, big)).toBe(true);
  });

  it('the last chunk of a size that is not a multiple of 2 MiB is only as large as what is left', () => {
    expectAllocates(fresh(CHUNK + 4096), (ram) => ram.writeU8(CHUNK + 4095, 0x5a), 4096);
    const ram = createTsRam(CHUNK + 4096);
    ram.writeU8(CHUNK + 4095, 0x5a);
    expect(ram.readU8(CHUNK + 4095)).toBe(0x5a);
    expect(ram.readU32(CHUNK + 4092)).toBe(0x5a00_0000);
    expect(() => ram.writeU8(CHUNK + 4096, 1)).toThrow(RangeError);
    expectAllocates(fresh(4096), (small) => small.writeU32(4092, 0xffff_ffff), 4096);
    const small = createTsRam(4096);
    small.writeU32(4092, 0xffff_ffff);
    expect(small.readU32(4092)).toBe(0xffff_ffff);
  });

  it('64 GiB: writing the first and the last byte costs two chunks, not the RAM size', () => {
    expectAllocates(fresh(64 * GiB), (ram) => {
      ram.writeU8(0, 0x11);
      ram.writeU8(64 * GiB - 1, 0x22);
    }, 2 * CHUNK);
    const ram = createTsRam(64 * GiB);
    ram.writeU8(0, 0x11);
    ram.writeU8(64 * GiB - 1, 0x22);
    expect(ram.readU8(0)).toBe(0x11);
    expect(ram.readU8(64 * GiB - 1)).toBe(0x22);
    expect(ram.readU8(32 * GiB)).toBe(0);
  });
});
