/**
 * Base address registers (PCI Local Bus 3.0 §6.2.5.1; QEMU pci_register_bar
 * and pci_bar_address): declaration with the sizing write mask, and the
 * address a BAR decodes at given the command register.
 */
import type { ContainerRegion, MmioRegion } from '../memory/region.js';
import { join64, TWO_POW_32 } from '../memory/address.js';
import { PciCommand, PciReg, type PciConfig } from './config.js';

/** Kinds of BAR. */
export type BarType = 'mem32' | 'mem64' | 'io';

/** BAR register low bits. */
export const BarBits = {
  SpaceIo: 0x01,
  Mem64: 0x04,
  Prefetch: 0x08,
  IoAddrMask: 0xfffffffc,
  MemAddrMask: 0xfffffff0,
} as const;

/** Sentinel for an unmapped BAR (QEMU PCI_BAR_UNMAPPED). */
export const BAR_UNMAPPED = -1;

/** Number of BARs of a type-0 header; a type-1 header has 2. */
export const PCI_NUM_BARS = 6;

const U32_MAX = 0xffff_ffff;
/** Smallest BARs: 16 bytes of memory, 4 bytes of I/O. */
const MIN_MEM_BAR = 16;
const MIN_IO_BAR = 4;
/** Largest BAR end we map: beyond 2^53 numbers lose precision, so such BARs stay unmapped. */
const MAX_MAPPABLE = Number.MAX_SAFE_INTEGER;

/** One registered BAR. */
export interface PciBar {
  /** BAR number (0-5; a 64-bit BAR also takes index + 1). */
  readonly index: number;
  /** The registers the BAR maps. */
  readonly region: MmioRegion;
  readonly type: BarType;
  /** Prefetchable memory (bit 3). */
  readonly prefetchable: boolean;
  /** Low bits written at reset (space/type/prefetch). */
  readonly typeBits: number;
  /** Current address, or BAR_UNMAPPED. */
  addr: number;
  /** Container it is mapped in while addr !== BAR_UNMAPPED. */
  container: ContainerRegion | null;
}

/** Config offset of BAR `index` (0x10 + 4 * index). */
export function barOffset(index: number): number {
  return PciReg.Bar0 + 4 * index;
}

/** True for 2^k (k >= 0): exact for any number, 64-bit BAR sizes included (a 32-bit AND would only see the low half). */
function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * Validates and declares a BAR: type bits as the reset value, write mask
 * ~(size - 1) over 32 or 64 bits (so writing all-ones reads back the size).
 * Throws for host mistakes (bad index, overlap, size not a power of two).
 */
export function declareBar(
  config: PciConfig,
  bars: readonly (PciBar | undefined)[],
  maxBars: number,
  index: number,
  region: MmioRegion,
  type: BarType,
  prefetchable: boolean,
  owner: string,
): PciBar {
  if (!Number.isInteger(index) || index < 0 || index >= maxBars || (type === 'mem64' && index + 1 >= maxBars)) {
    throw new RangeError(`pci device ${owner}: bad BAR index ${index}`);
  }
  const below = bars[index - 1];
  if (bars[index] || (below && below.type === 'mem64') || (type === 'mem64' && bars[index + 1])) {
    throw new Error(`pci device ${owner}: BAR ${index} overlaps a registered BAR`);
  }
  const size = region.size;
  if (!isPowerOfTwo(size) || size < (type === 'io' ? MIN_IO_BAR : MIN_MEM_BAR) || (type !== 'mem64' && size > TWO_POW_32)) {
    throw new RangeError(`pci device ${owner}: BAR ${index} size 0x${size.toString(16)} is not a valid power of two`);
  }
  const typeBits =
    type === 'io' ? BarBits.SpaceIo : (type === 'mem64' ? BarBits.Mem64 : 0) | (prefetchable ? BarBits.Prefetch : 0);
  const off = barOffset(index);
  config.setLong(off, typeBits);
  if (type === 'mem64') {
    config.setLong(off + 4, 0);
    config.setWmask(off, 4, size >= TWO_POW_32 ? 0 : ~(size - 1) >>> 0);
    config.setWmask(off + 4, 4, size >= TWO_POW_32 ? ~(size / TWO_POW_32 - 1) >>> 0 : U32_MAX);
  } else {
    config.setWmask(off, 4, ~(size - 1) >>> 0);
  }
  return { index, region, type, prefetchable, typeBits, addr: BAR_UNMAPPED, container: null };
}

/**
 * Where `bar` decodes now (QEMU pci_bar_address), or BAR_UNMAPPED: decoding
 * must be enabled in the command register, and the address must be non-zero,
 * not wrap, and (32-bit memory and I/O) end below 4 GiB - 1.
 */
export function barAddress(config: PciConfig, bar: PciBar): number {
  const cmd = config.getWord(PciReg.Command);
  const off = barOffset(bar.index);
  const size = bar.region.size;
  if (bar.type === 'io') {
    if (!(cmd & PciCommand.Io)) return BAR_UNMAPPED;
    const raw = config.getLong(off);
    const addr = raw - (raw % size);
    if (addr + size - 1 >= U32_MAX || addr === 0) return BAR_UNMAPPED;
    return addr;
  }
  if (!(cmd & PciCommand.Memory)) return BAR_UNMAPPED;
  const raw = bar.type === 'mem64' ? join64(config.getLong(off), config.getLong(off + 4)) : config.getLong(off);
  const addr = raw - (raw % size);
  const last = addr + size - 1;
  if (addr === 0) return BAR_UNMAPPED;
  if (bar.type === 'mem32' && last >= U32_MAX) return BAR_UNMAPPED;
  if (last > MAX_MAPPABLE) return BAR_UNMAPPED;
  return addr;
}
