/**
 * Address kinds.  Addresses are plain numbers at run time; an I/O virtual
 * address has its own branded type so that the IOMMU contract
 * (`DmaTranslator.translate(iova: Iova, ...)`) cannot be handed a
 * guest-physical number without an explicit `iova(...)`.
 *
 * Addresses are non-negative integers.  Below 2^53 every value is exact;
 * above it only values with their low bits clear are (page-aligned IOVAs up
 * to 2^64 are exact), which is all the IOMMU range checks need.  Bit
 * operations are only ever applied to the low 32 bits (see `lo32`/`hi32`).
 */

/** An I/O virtual address: what a device puts on the bus before the IOMMU. */
export type Iova = number & { readonly __kind: 'iova' };

/** Marks a number as an IOVA. */
export const iova = (n: number): Iova => n as Iova;

/** 2^32 as a number, for splitting 64-bit values into halves. */
export const TWO_POW_32 = 0x1_0000_0000;

/** Low 32 bits of a non-negative integer, as an unsigned number. */
export function lo32(n: number): number {
  return n >>> 0;
}

/** Bits 63:32 of a non-negative integer, as an unsigned number. */
export function hi32(n: number): number {
  return Math.floor(n / TWO_POW_32) >>> 0;
}

/** Largest high half whose joined value is below 2^53 (every integer exact). */
const EXACT_HI_LIMIT = 0x20_0000;
/** Significand bits of a double minus 32: the ulp of hi * 2^32 + lo is 2^(log2(hi) - this). */
const ULP_SHIFT = 20;

/**
 * Joins two 32-bit halves into a number: exact below 2^53; above, the low
 * bits a double cannot hold are dropped (rounded toward zero, never up to
 * the next page), so the page (any alignment of 4 KiB or more) is exact.
 */
export function join64(lo: number, hi: number): number {
  if (hi < EXACT_HI_LIMIT) return hi * TWO_POW_32 + (lo >>> 0);
  const ulp = 2 ** (31 - Math.clz32(hi) - ULP_SHIFT);
  const l = lo >>> 0;
  return hi * TWO_POW_32 + (l - (l % ulp));
}

/** Joins two 32-bit halves into a bigint (always exact). */
export function join64n(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Splits a bigint into its low and high 32-bit halves. */
export function split64n(v: bigint): [lo: number, hi: number] {
  return [Number(v & 0xffff_ffffn), Number((v >> 32n) & 0xffff_ffffn)];
}

/**
 * Validates a range once: returns the inclusive end address, or -1 when the
 * range is empty, negative, not an integer or would pass `limit` (exclusive,
 * default 2^64).  Every caller that accepts a (start, length) pair from a guest
 * or a host user goes through here rather than checking by hand.
 */
export function inclusiveEnd(start: number, length: number, limit = 2 ** 64): number {
  if (!Number.isInteger(start) || !Number.isInteger(length)) return -1;
  if (start < 0 || length <= 0) return -1;
  const end = start + length - 1;
  if (end >= limit || end < start) return -1;
  return end;
}

/** Access sizes the bus understands, in bytes. */
export type AccessSize = 1 | 2 | 4 | 8;

export function isAccessSize(n: number): n is AccessSize {
  return n === 1 || n === 2 || n === 4 || n === 8;
}
