/** The address helpers: 32-bit halves and the one range check. */
import { describe, expect, it } from 'vitest';
import { hi32, inclusiveEnd, isAccessSize, join64, join64n, lo32, split64n } from './address.js';

describe('address helpers', () => {
  it('splits and joins 64-bit values', () => {
    const v = 0x1_2345_6789_abcd;
    expect(lo32(v)).toBe(0x6789_abcd);
    expect(hi32(v)).toBe(0x1_2345);
    expect(join64(lo32(v), hi32(v))).toBe(v);
    expect(join64n(0xffff_ffff, 0xffff_ffff)).toBe(0xffff_ffff_ffff_ffffn);
    expect(split64n(0xfedc_ba98_7654_3210n)).toEqual([0x7654_3210, 0xfedc_ba98]);
    expect(split64n(-1n)).toEqual([0xffff_ffff, 0xffff_ffff]);
    expect(hi32(2 ** 64 - 2 ** 12)).toBe(0xffff_ffff);
  });

  it('inclusiveEnd accepts exactly the ranges inside the limit', () => {
    expect(inclusiveEnd(0, 1)).toBe(0);
    expect(inclusiveEnd(4096, 4096, 8192)).toBe(8191);
    expect(inclusiveEnd(4096, 4097, 8192)).toBe(-1);
    for (const [s, l] of [[0, 0], [-1, 1], [0, -1], [0.5, 1], [0, 1.5], [Number.NaN, 1], [1, Number.NaN], [Number.POSITIVE_INFINITY, 1]]) {
      expect(inclusiveEnd(s!, l!)).toBe(-1);
    }
    expect(inclusiveEnd(2 ** 64 - 4096, 4096)).toBe(-1); // end rounds to 2^64
    expect(inclusiveEnd(2 ** 53, 2 ** 53, 2 ** 53)).toBe(-1);
  });

  it('join64 keeps the page of values above 2^53 (drops the bits a double cannot hold, never rounds up)', () => {
    for (const [lo, hi] of [[0xffff_fff0, 0xffff_ffff], [0x0000_1ff0, 0x8000_0000], [0xffff_ffff, 0x0020_0000], [0x1234_5fff, 0x0abc_def0]] as const) {
      const v = join64(lo, hi);
      const exact = join64n(lo, hi);
      expect(BigInt(v) <= exact && BigInt(v) >> 12n === exact >> 12n).toBe(true);
    }
    expect(join64(0x1234, 0x1f_ffff)).toBe(0x1f_ffff_0000_1234); // below 2^53: exact
  });

  it('knows the access sizes', () => {
    expect([1, 2, 4, 8].every(isAccessSize)).toBe(true);
    expect([0, 3, 16, 1.5].some(isAccessSize)).toBe(false);
  });
});
