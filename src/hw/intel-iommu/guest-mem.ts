/**
 * Reading VT-d structures (root, context and paging entries) from guest
 * memory: 64-bit little-endian reads as two 32-bit halves, allocation-free
 * when the entry lies in RAM.  A read of anything that is not RAM or
 * accepting MMIO fails, as QEMU's dma_memory_read on address_space_memory
 * does (the caller turns that into a fault reason).
 */
import { MemTx, type AddressSpace } from '../../memory/address-space.js';
import type { ChunkedRam } from '../../memory/ram.js';

/** A 64-bit value as two unsigned 32-bit halves. */
export interface Qword {
  lo: number;
  hi: number;
}

/** A fresh qword. */
export function newQword(): Qword {
  return { lo: 0, hi: 0 };
}

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

/**
 * The RAM the last successful readQword / readEntry read (null: not RAM
 * alone).  Transient: set by each read and taken right after it, within
 * the same call; it carries nothing from one call to the next.
 */
let lastRam: ChunkedRam | null = null;

/** The RAM that served the last successful readQword / readEntry, or null when it was not (only) RAM: the value can then only change by a write to that RAM. */
export function lastReadRam(): ChunkedRam | null {
  return lastRam;
}

/** Reads 8 bytes at `addr` into `out`; returns false when the read failed. */
export function readQword(mem: AddressSpace, addr: number, out: Qword): boolean {
  const r = mem.lookup(addr);
  if (r !== null && r.leaf.kind === 'ram' && addr + 8 <= r.end) {
    r.leaf.ram.readU32Pair(r.leaf.ramOffset + (addr - r.start + r.offset), out);
    lastRam = r.leaf.ram;
    return true;
  }
  lastRam = null;
  if (mem.readBytes(addr, scratch) !== MemTx.Ok) return false;
  out.lo = scratchView.getUint32(0, true);
  out.hi = scratchView.getUint32(4, true);
  return true;
}

/**
 * Reads an entry of `size` bytes at `addr` (a multiple of 8) and keeps its
 * first `out.length` qwords in `out`; returns false when any byte of the
 * entry cannot be read (as reading every qword would).  An entry inside one
 * RAM range costs one lookup, however many qwords it has.
 */
export function readEntry(mem: AddressSpace, addr: number, size: number, out: readonly Qword[]): boolean {
  const r = mem.lookup(addr);
  if (r !== null && r.leaf.kind === 'ram' && addr + size <= r.end) {
    const base = r.leaf.ramOffset + (addr - r.start + r.offset);
    for (let i = 0; i < out.length; i++) r.leaf.ram.readU32Pair(base + i * 8, out[i]!);
    lastRam = r.leaf.ram;
    return true;
  }
  // Split over ranges: one RAM only if every qword came from the same one.
  let ram: ChunkedRam | null | undefined;
  for (let i = 0; i < size / 8; i++) {
    if (!readQword(mem, addr + i * 8, i < out.length ? out[i]! : scratchQword)) return false;
    ram = ram === undefined || ram === lastRam ? lastRam : null;
  }
  lastRam = ram ?? null;
  return true;
}

const scratchQword = newQword();
