/**
 * Where guest RAM appears on a q35 machine, and how `-m` is parsed.
 *
 * Layout (QEMU pc_q35_init, checked against QEMU 7.2 `info mtree`): one RAM
 * block "pc.ram" is shown through two aliases.  "ram-below-4g" covers the
 * first `below4g` bytes at guest-physical 0; when RAM does not fit below the
 * PCI hole, "ram-above-4g" shows the rest at 4 GiB.  RAM of 0xB0000000
 * (2.75 GiB) bytes or more is split at 2 GiB so that 1 GiB-aligned guest
 * addresses stay 1 GiB-aligned in the block; smaller RAM sits entirely below
 * 4 GiB.
 *
 * `-m` parsing follows QEMU 7.2 (vl.c parse_memory_options and cutils.c
 * qemu_strtosz): `[size=]N[suffix][,slots=N][,maxmem=SIZE]`, suffixes
 * B/K/M/G/T/P/E (binary, case-insensitive), a number ending in a digit means
 * MiB, fractions need a suffix, 0 means the default 128 MiB, and the result
 * is rounded up to 8 KiB.
 */
import type { ChunkedRam } from './ram.js';
import { AliasRegion, RamRegion } from './region.js';

/** q35 layout constants (QEMU hw/i386/pc_q35.c). */
export const Q35Ram = {
  /** RAM at or above this size is split at `SPLIT_BELOW_4G`. */
  SPLIT_THRESHOLD: 0xb000_0000,
  /** Below-4G RAM when split: 2 GiB, keeping 1 GiB alignment. */
  SPLIT_BELOW_4G: 0x8000_0000,
  /** Guest-physical start of the RAM above the PCI hole. */
  ABOVE_4G_BASE: 0x1_0000_0000,
} as const;

/** One region to map into system memory at guest-physical `at`. */
export interface RamMapping {
  readonly region: AliasRegion;
  readonly at: number;
}

/** The RAM of a q35 machine as it is mapped. */
export interface Q35RamLayout {
  /** Bytes of RAM mapped at guest-physical 0. */
  readonly below4g: number;
  /** Bytes of RAM mapped at 4 GiB (0 when none). */
  readonly above4g: number;
  /** The whole RAM block ("pc.ram"); not mapped itself. */
  readonly block: RamRegion;
  /** The aliases to map, below-4G first. */
  readonly regions: readonly RamMapping[];
}

/** Splits `ram` as q35 does and returns the aliases to map. */
export function q35RamLayout(ram: ChunkedRam): Q35RamLayout {
  const size = ram.size;
  const lowmem = size >= Q35Ram.SPLIT_THRESHOLD ? Q35Ram.SPLIT_BELOW_4G : Q35Ram.SPLIT_THRESHOLD;
  const below4g = Math.min(size, lowmem);
  const above4g = size - below4g;
  const block = new RamRegion('pc.ram', size, ram);
  const regions: RamMapping[] = [{ region: new AliasRegion('ram-below-4g', below4g, block, 0), at: 0 }];
  if (above4g > 0) {
    regions.push({ region: new AliasRegion('ram-above-4g', above4g, block, below4g), at: Q35Ram.ABOVE_4G_BASE });
  }
  return { below4g, above4g, block, regions };
}

/** QEMU's default RAM size: 128 MiB. */
export const DEFAULT_RAM_SIZE = 128 * 1024 * 1024;
/** RAM sizes are rounded up to a multiple of this (QEMU: 8 KiB). */
export const RAM_SIZE_ALIGN = 8192;

/** A `-m` (or size) argument QEMU would reject; the message is QEMU's. */
export class MemSizeError extends Error {
  override readonly name = 'MemSizeError';
}

const SIZE_HINT =
  'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.';
const U64_LIMIT = 1n << 64n;
const SUFFIX_POWER: Readonly<Record<string, bigint>> = { B: 0n, K: 1n, M: 2n, G: 3n, T: 4n, P: 5n, E: 6n };

/** How `parseSize` failed: not a size at all, or not below 2^64. */
export type SizeParseFailure = 'invalid' | 'range';

/** Multiplier of suffix letter `c` (binary units), or 0n when it is not one. */
function suffixMul(c: string | undefined): bigint {
  const p = c === undefined ? undefined : SUFFIX_POWER[c.toUpperCase()];
  return p === undefined ? 0n : 1024n ** p;
}

/**
 * Parses a size like QEMU's qemu_strtosz: decimal (or 0x hex) digits, an
 * optional fraction, an optional suffix, nothing after it.  Without a suffix
 * the unit is `defaultSuffix`.  Returns the exact byte count, or the kind of
 * failure.  `onHexSuffix` is told about a suffix on a hex number (QEMU 7.2
 * accepts it with a deprecation warning).
 */
export function parseSize(
  text: string,
  defaultSuffix = 'B',
  onHexSuffix?: () => void,
): bigint | SizeParseFailure {
  const m = /^[\t\n\v\f\r ]*\+?(?:(0[xX])([0-9a-fA-F]+)|([0-9]+)(\.[0-9]*)?)(.*)$/s.exec(text);
  if (!m) return 'invalid';
  const [, hexPrefix, hexDigits, decDigits, fraction, rest = ''] = m;
  const val = hexPrefix ? BigInt('0x' + hexDigits) : BigInt(decDigits!);
  if (val >= U64_LIMIT) return 'range';
  if (fraction !== undefined && /^\.[0-9]*[eE][+-]?[0-9]/.test(fraction + rest)) return 'invalid';
  let mul = suffixMul(rest[0]);
  if (mul > 0n) {
    if (rest.length !== 1) return 'invalid';
    if (hexPrefix) onHexSuffix?.();
  } else {
    if (rest.length !== 0) return 'invalid';
    mul = suffixMul(defaultSuffix);
    if (mul === 0n) throw new Error(`parseSize: bad default suffix ${defaultSuffix}`);
  }
  // The fraction as a 64-bit binary fixed-point number, as QEMU does.
  const f = fraction && fraction.length > 1 ? Number(fraction) : 0;
  const valf = f > 0 ? BigInt(Math.min(Math.floor(f * 2 ** 64), 2 ** 64 - 2 ** 11)) : 0n;
  if (mul === 1n) return valf !== 0n ? 'invalid' : val;
  const frac = valf * mul;
  const total = val * mul + (frac >> 64n) + ((frac >> 63n) & 1n);
  return total >= U64_LIMIT ? 'range' : total;
}

/** The QEMU message for a size option that failed to parse. */
function sizeError(optarg: string, name: string, value: string, why: SizeParseFailure): MemSizeError {
  if (why === 'range') return new MemSizeError(`-m ${optarg}: Value '${value}' is out of range for parameter '${name}'`);
  return new MemSizeError(`-m ${optarg}: Parameter '${name}' expects a non-negative number below 2^64\n${SIZE_HINT}`);
}

/**
 * Parses the argument of `-m` into the RAM size in bytes, as QEMU 7.2 does:
 * `64G`, `512M`, `2048` (MiB), `1T`, `1.5G`, `size=4G,slots=2,maxmem=8G`.
 * 0 means the default 128 MiB; the result is rounded up to 8 KiB.  Throws a
 * MemSizeError carrying QEMU's message for input QEMU rejects, and for sizes
 * a JavaScript number cannot hold exactly ("ram size too large").  `warn`
 * receives QEMU's warnings (a suffix on a hex number).
 */
export function parseMemSize(optarg: string, warn?: (message: string) => void): number {
  let sizeText: string | undefined;
  const parts = optarg === '' ? [] : optarg.split(',');
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    const key = eq < 0 ? (i === 0 ? 'size' : part) : part.slice(0, eq);
    const value = eq < 0 ? (i === 0 ? part : 'on') : part.slice(eq + 1);
    if (key === 'size' || key === 'maxmem') {
      const r = parseSize(value);
      if (typeof r === 'string') throw sizeError(optarg, key, value, r);
      if (key === 'size') sizeText = value;
    } else if (key === 'slots') {
      if (!/^\s*\+?(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(value)) {
        throw new MemSizeError(`-m ${optarg}: Parameter 'slots' expects a number`);
      }
    } else {
      throw new MemSizeError(`-m ${optarg}: Invalid parameter '${key}'`);
    }
  });
  let bytes = 0n;
  if (sizeText !== undefined) {
    // Legacy form: a size ending in a digit is in MiB.
    const legacy = /[0-9]$/.test(sizeText);
    const text = legacy ? sizeText + 'M' : sizeText;
    const r = parseSize(text, 'B', () => warn?.(`Using a multiplier suffix on hex numbers is deprecated: ${text}`));
    if (typeof r === 'string') throw sizeError(optarg, 'size', text, r);
    bytes = r;
  }
  if (bytes === 0n) bytes = BigInt(DEFAULT_RAM_SIZE);
  const align = BigInt(RAM_SIZE_ALIGN);
  bytes = ((bytes + align - 1n) / align) * align;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new MemSizeError('ram size too large');
  return Number(bytes);
}
