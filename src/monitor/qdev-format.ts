/**
 * How QEMU prints qdev property values in `info qtree` (qdev-properties.c
 * print callbacks): integers as `N (0xHEX)` (signed ones in 64-bit two's
 * complement), sizes as `N (human size)` (util/cutils.c size_to_str:
 * three significant digits of the largest binary unit), strings and
 * on/off/auto in double quotes, booleans as true/false.
 */
import type { PropKind, PropValue } from '../machine/device-type.js';

const SIZE_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const U64 = 1n << 64n;

/** C's `%0.3g` for a non-negative number. */
export function g3(v: number): string {
  if (v === 0) return '0';
  const [mant, expText] = v.toExponential(2).split('e') as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 3) {
    const m = mant.replace(/\.?0+$/, '');
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = v.toFixed(Math.max(0, 2 - exp));
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

/** QEMU size_to_str: `128 MiB`, `0 B`, `16 EiB`. */
export function sizeToStr(bytes: bigint): string {
  const v = ((bytes % U64) + U64) % U64;
  const i = v === 0n ? 0 : Math.floor((v.toString(2).length - 1) / 10);
  return `${g3(Number(v) / 2 ** (10 * i))} ${SIZE_SUFFIXES[i]}B`;
}

/** An integer property: `N (0xHEX)`, negative values shown as 64-bit two's complement in hex. */
export function intValue(v: number | bigint): string {
  const b = BigInt(v);
  const h = b < 0n ? (b + U64).toString(16) : b.toString(16);
  return `${b} (0x${h})`;
}

/** A property value as `info qtree` prints it. */
export function formatPropValue(kind: PropKind, value: PropValue): string {
  switch (kind) {
    case 'bool':
      return value === true || value === 'on' ? 'true' : 'false';
    case 'str':
      return `"${String(value)}"`;
    case 'OnOffAuto':
      return `"${value === true ? 'on' : value === false ? 'off' : String(value)}"`;
    case 'size':
      return `${BigInt(value)} (${sizeToStr(BigInt(value))})`;
    default:
      return intValue(typeof value === 'bigint' ? value : Number(value));
  }
}
