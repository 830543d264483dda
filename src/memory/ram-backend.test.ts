/**
 * Backend selection (VTEMU_RAM, fallback) and the memory cost of big RAM:
 * 64 GiB of guest RAM must cost (almost) nothing until it is written.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RAM_BACKENDS, availableRamBackends, createRam, defaultRamBackend, nativeRamAvailable } from './ram-backend.js';
import { nativeAddonPath, nativeRamLoadError } from './ram-native.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('backend selection', () => {
  const saved = process.env['VTEMU_RAM'];
  afterEach(() => {
    if (saved === undefined) delete process.env['VTEMU_RAM'];
    else process.env['VTEMU_RAM'] = saved;
  });

  it('lists ts always and native when built', () => {
    expect(RAM_BACKENDS).toEqual(['native', 'ts']);
    // The first look for the addon in this file: a built addon loads (a stale or broken build fails here).
    const path = nativeAddonPath();
    const built = path !== null && existsSync(path);
    expect(nativeRamAvailable()).toBe(built);
    expect(nativeRamLoadError() === '').toBe(built);
    const avail = availableRamBackends();
    expect(avail).toContain('ts');
    expect(avail.includes('native')).toBe(nativeRamAvailable());
  });

  it('prefers native when built, else ts', () => {
    delete process.env['VTEMU_RAM'];
    expect(defaultRamBackend()).toBe(nativeRamAvailable() ? 'native' : 'ts');
    expect(createRam(4096).backend).toBe(defaultRamBackend());
  });

  it('VTEMU_RAM=ts forces the TypeScript backend', () => {
    process.env['VTEMU_RAM'] = 'ts';
    expect(createRam(4096).backend).toBe('ts');
  });

  it('VTEMU_RAM=native forces native, failing loudly when it is not built', () => {
    process.env['VTEMU_RAM'] = 'native';
    if (nativeRamAvailable()) expect(createRam(4096).backend).toBe('native');
    else expect(() => createRam(4096)).toThrow(/native guest RAM addon/);
  });

  it('an explicit backend argument wins over VTEMU_RAM', () => {
    process.env['VTEMU_RAM'] = 'native';
    expect(createRam(4096, 'ts').backend).toBe('ts');
  });

  it('an empty VTEMU_RAM means no choice', () => {
    process.env['VTEMU_RAM'] = '';
    expect(defaultRamBackend()).toBe(nativeRamAvailable() ? 'native' : 'ts');
    expect(createRam(4096).backend).toBe(defaultRamBackend());
  });

  it('rejects an unknown VTEMU_RAM', () => {
    process.env['VTEMU_RAM'] = 'gpu';
    expect(() => createRam(4096)).toThrow(/VTEMU_RAM=gpu/);
  });
});

/** Resident set size now, after a GC when one is exposed. */
function rssNow(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage.rss();
}

describe.each(availableRamBackends())('64 GiB of %s RAM', (backend) => {
  it('costs < 100 MiB of RSS until touched, and grows when written', () => {
    // The TypeScript backend's chunks are ArrayBuffers: count them exactly (RSS
    // also moves with whatever the GC frees meanwhile).  The native backend's
    // pages are mmap'd: RSS is the only measure.
    const rss = backend === 'ts' ? () => process.memoryUsage().arrayBuffers : rssNow;
    const before = rss();
    const ram = createRam(64 * GiB, backend);
    expect(ram.size).toBe(64 * GiB);
    // Sparse reads all over the place, and a bulk read of untouched memory.
    let sum = 0;
    for (let at = 0; at < 64 * GiB; at += 256 * MiB) sum += ram.readU32(at);
    const big = new Uint8Array(4 * MiB);
    ram.copyOut(40 * GiB, big);
    expect(sum).toBe(0);
    expect(ram.compare(63 * GiB, big)).toBe(true);
    const untouched = rss() - before;
    expect(untouched).toBeLessThan(100 * MiB);
    // Writing one byte per 4 KiB page over 64 MiB (at the top of RAM) makes it resident.
    const touchedBytes = 64 * MiB;
    for (let at = 64 * GiB - touchedBytes; at < 64 * GiB; at += 4096) ram.writeU8(at, 1);
    const touched = rss() - before;
    expect(touched - untouched).toBeGreaterThan(touchedBytes * 0.75);
    if (backend === 'native') {
      // Zeroing gives the pages back (MADV_DONTNEED) instead of writing them.
      ram.fill(64 * GiB - touchedBytes, touchedBytes, 0);
      expect(rss() - before).toBeLessThan(untouched + touchedBytes / 4);
      expect(ram.readU8(64 * GiB - 4096)).toBe(0);
    }
    console.log(
      `[rss] ${backend}: 64 GiB RAM +${(untouched / MiB).toFixed(1)} MiB untouched, ` +
        `+${(touched / MiB).toFixed(1)} MiB after writing 64 MiB`,
    );
  });
});
