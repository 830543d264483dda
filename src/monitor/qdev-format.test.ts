import { describe, expect, it } from 'vitest';
import { formatPropValue, g3, intValue, sizeToStr } from './qdev-format.js';

describe('qdev value formatting', () => {
  it.each([
    [0, '0'], [4, '4'], [32, '32'], [128, '128'], [1.5, '1.5'], [2.25, '2.25'], [1.0009765625, '1'],
    [999.4, '999'], [999.7, '1e+03'], [1023.9, '1.02e+03'], [12.345, '12.3'],
  ])('%%0.3g of %d is %s', (v, s) => expect(g3(v)).toBe(s));

  it.each([
    [0n, '0 B'], [1n, '1 B'], [1023n, '1.02e+03 B'], [4096n, '4 KiB'], [134217728n, '128 MiB'],
    [34359738368n, '32 GiB'], [3n * 2n ** 29n, '1.5 GiB'], [2n ** 64n - 1n, '16 EiB'], [-1n, '16 EiB'],
  ])('size_to_str(%s) is %s', (v, s) => expect(sizeToStr(v)).toBe(s));

  it('prints integers with their hex, negatives in 64-bit two\'s complement', () => {
    expect(intValue(0)).toBe('0 (0x0)');
    expect(intValue(48)).toBe('48 (0x30)');
    expect(intValue(-1)).toBe('-1 (0xffffffffffffffff)');
    expect(intValue(2n ** 64n - 1n)).toBe('18446744073709551615 (0xffffffffffffffff)');
  });

  it('prints each kind as QEMU does', () => {
    expect(formatPropValue('bool', true)).toBe('true');
    expect(formatPropValue('bool', false)).toBe('false');
    expect(formatPropValue('str', '')).toBe('""');
    expect(formatPropValue('str', 'rp1')).toBe('"rp1"');
    expect(formatPropValue('OnOffAuto', 'auto')).toBe('"auto"');
    expect(formatPropValue('OnOffAuto', true)).toBe('"on"');
    expect(formatPropValue('uint8', 48)).toBe('48 (0x30)');
    expect(formatPropValue('int32', -1)).toBe('-1 (0xffffffffffffffff)');
    expect(formatPropValue('uint64', 2n ** 40n)).toBe('1099511627776 (0x10000000000)');
    expect(formatPropValue('size', 4096)).toBe('4096 (4 KiB)');
  });
});
