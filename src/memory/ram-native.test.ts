/**
 * The native addon's own guarantees, below ChunkedRam's checks: it refuses
 * every hostile argument itself, hands out chunks of the right size, keeps
 * its mapping alive while a chunk is referenced and unmaps after.
 *
 * Skipped when the addon is not built, unless VTEMU_REQUIRE_NATIVE is set
 * (then a missing addon fails the run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createNativeRam, loadNativeRamAddon, nativeAddonPath, nativeRamLoadError } from './ram-native.js';

const GiB = 2 ** 30;
const addon = loadNativeRamAddon();
const required = !!process.env['VTEMU_REQUIRE_NATIVE'];

describe('native addon availability', () => {
  it('loads exactly when it was built (and must be built under VTEMU_REQUIRE_NATIVE)', () => {
    const path = nativeAddonPath();
    const built = path !== null && existsSync(path);
    if (required) expect(built).toBe(true);
    expect(addon !== null).toBe(built);
    expect(nativeRamLoadError() === '').toBe(built);
    if (!built) console.warn('SKIPPED: the native guest RAM addon is not built (no C++ toolchain at npm install): its tests do not run');
  });

  it('a fresh copy of the module loads the addon exactly when it was built', async () => {
    // A new module instance looks for the addon again, inside this test.
    vi.resetModules();
    const fresh = await import('./ram-native.js');
    const path = fresh.nativeAddonPath();
    const built = path !== null && existsSync(path);
    expect(fresh.nativeRamAvailable()).toBe(built);
    expect(fresh.nativeRamLoadError()).toBe(built ? '' : `${join('build', 'Release', 'vtemu_ram.node')} not found (npm install builds it)`);
    const raw = fresh.loadNativeRamAddon();
    if (built) expect(typeof raw?.NativeRam).toBe('function');
    else expect(raw).toBeNull();
    if (built) expect(fresh.createNativeRam(4096).backend).toBe('native');
    else expect(() => fresh.createNativeRam(4096)).toThrow('vtemu: the native guest RAM addon is unavailable: ');
  });

  it('createNativeRam checks the size before anything else, built or not', () => {
    for (const size of [0, -4096, 4095, 4096.5, Number.NaN]) {
      expect(() => createNativeRam(size)).toThrow(`guest RAM: size ${size} must be a positive multiple of 4096`);
    }
  });
});

describe.skipIf(!addon)('native addon', () => {
  const A = addon!;
  const SIZE = 2 * GiB + 8192;

  it('refuses bad sizes when reserving', () => {
    for (const size of [0, -4096, 4095, 1.5 * 4096, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53 + 4096]) {
      expect(() => new A.NativeRam(size)).toThrow(RangeError);
    }
    expect(() => new A.NativeRam('4096' as unknown as number)).toThrow(TypeError);
    // Address space that cannot exist: a clean Error, not a crash.
    expect(() => new A.NativeRam(2 ** 52)).toThrow(/cannot reserve/);
  });

  it('hands out 1 GiB chunks and a short last one, sharing one mapping', () => {
    const ram = new A.NativeRam(SIZE);
    expect(ram.size).toBe(SIZE);
    expect(ram.chunkCount).toBe(3);
    expect(A.chunkShift).toBe(30);
    expect(ram.chunk(0).byteLength).toBe(GiB);
    expect(ram.chunk(2).byteLength).toBe(8192);
    const a = new Uint8Array(ram.chunk(1));
    const b = new Uint8Array(ram.chunk(1));
    a[7] = 99;
    expect(b[7]).toBe(99);
    const out = new Uint8Array(1);
    ram.copyOut(GiB + 7, out);
    expect(out[0]).toBe(99);
    for (const index of [-1, 3, 1.5, Number.NaN, 2 ** 53]) expect(() => ram.chunk(index)).toThrow(RangeError);
  });

  it('checks every range itself (bypassing ChunkedRam)', () => {
    const ram = new A.NativeRam(SIZE);
    const buf = new Uint8Array(16);
    const badOffsets = [-1, -0.5, 0.5, Number.NaN, Number.POSITIVE_INFINITY, -Number.POSITIVE_INFINITY, 2 ** 53 + 2, 2 ** 64, SIZE - 15, SIZE + 1];
    for (const off of badOffsets) {
      expect(() => ram.copyOut(off, buf)).toThrow(RangeError);
      expect(() => ram.copyIn(off, buf)).toThrow(RangeError);
      expect(() => ram.compare(off, buf)).toThrow(RangeError);
      expect(() => ram.fill(off, 16, 1)).toThrow(RangeError);
      expect(() => ram.copyWithin(off, 0, 16)).toThrow(RangeError);
      expect(() => ram.copyWithin(0, off, 16)).toThrow(RangeError);
    }
    // Lengths whose sum with the offset overflows 64 bits or passes the end.
    for (const [off, len] of [
      [1, 2 ** 53],
      [2 ** 53, 2 ** 53],
      [SIZE, 1],
      [8, SIZE - 7],
      [0, SIZE + 1],
      [0, -1],
      [0, 0.25],
    ] as const) {
      expect(() => ram.fill(off, len, 0xff)).toThrow(RangeError);
      expect(() => ram.copyWithin(0, off, len)).toThrow(RangeError);
      expect(() => ram.copyWithin(off, 0, len)).toThrow(RangeError);
    }
    // Wrong types.
    expect(() => ram.copyOut(0, new Uint16Array(4) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => ram.copyIn(0, [1, 2, 3] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => ram.copyOut('0' as unknown as number, buf)).toThrow(TypeError);
    expect(() => ram.fill(0, 1, undefined as unknown as number)).toThrow(TypeError);
    expect(() => (ram.copyOut as unknown as (o: number) => void)(0)).toThrow(TypeError);
    // Nothing was touched.
    const check = new Uint8Array(16);
    ram.copyOut(SIZE - 16, check);
    expect(check.every((x) => x === 0)).toBe(true);
    ram.copyOut(0, check);
    expect(check.every((x) => x === 0)).toBe(true);
  });

  it('allows empty ranges up to the end and no further', () => {
    const ram = new A.NativeRam(SIZE);
    const empty = new Uint8Array(0);
    ram.copyOut(SIZE, empty);
    ram.copyIn(SIZE, empty);
    ram.fill(SIZE, 0, 1);
    ram.copyWithin(SIZE, 0, 0);
    expect(ram.compare(SIZE, empty)).toBe(true);
    expect(() => ram.copyOut(SIZE + 4096, empty)).toThrow(RangeError);
  });

  it('does the bulk operations (a subarray view is honoured)', () => {
    const ram = new A.NativeRam(SIZE);
    const src = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
    ram.copyIn(GiB - 32, src.subarray(8, 40));
    const out = new Uint8Array(34);
    ram.copyOut(GiB - 33, out);
    expect(out[0]).toBe(0);
    expect(Array.from(out.subarray(1, 33))).toEqual(Array.from(src.subarray(8, 40)));
    expect(out[33]).toBe(0);
    expect(ram.compare(GiB - 32, src.subarray(8, 40))).toBe(true);
    expect(ram.compare(GiB - 32, src.subarray(9, 41))).toBe(false);
    ram.fill(GiB - 1, 2, 0x1ee);
    ram.copyOut(GiB - 1, out.subarray(0, 2));
    expect([out[0], out[1]]).toEqual([0xee, 0xee]);
    ram.copyWithin(100, GiB - 32, 32);
    expect(ram.compare(100, src.subarray(8, 39))).toBe(true);
  });

  it('keeps the mapping while a chunk lives and unmaps when both are gone', () => {
    // In a child process with --expose-gc; reads VmSize from /proc.
    const script = `
      const { NativeRam } = require(${JSON.stringify(nativeAddonPath())});
      const fs = require('fs');
      const vm = () => Number(/VmSize:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const settle = async () => { for (let i = 0; i < 6; i++) { gc(); await new Promise((r) => setImmediate(r)); } };
      (async () => {
        const base = vm();
        let ram = new NativeRam(64 * 2 ** 30);
        let chunk = new Uint8Array(ram.chunk(63));
        chunk[12345] = 42;
        const mapped = vm() - base;
        ram = null;
        await settle();
        const afterRam = vm() - base;
        chunk[12346] = 43;
        const alive = chunk[12345] === 42 && chunk[12346] === 43;
        chunk = null;
        await settle();
        const afterAll = vm() - base;
        console.log(JSON.stringify({ mapped, afterRam, alive, afterAll }));
      })();`;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    const r = JSON.parse(out) as { mapped: number; afterRam: number; alive: boolean; afterAll: number };
    expect(r.mapped).toBeGreaterThanOrEqual(64 * GiB);
    expect(r.afterRam).toBeGreaterThanOrEqual(64 * GiB);
    expect(r.alive).toBe(true);
    expect(r.afterAll).toBeLessThan(GiB);
  });

  it('builds a ChunkedRam over the addon', () => {
    const ram = createNativeRam(SIZE);
    expect(ram.backend).toBe('native');
    ram.writeU32(GiB - 2, 0x1122_3344);
    expect(ram.readU32(GiB - 2)).toBe(0x1122_3344);
    expect(() => createNativeRam(4097)).toThrow(RangeError);
  });
});
