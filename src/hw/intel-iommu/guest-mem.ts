/**
 * Reading VT-d structures (root, context and paging entries) from guest
 * memory: 64-bit little-endian reads as two 32-bit halves, allocation-free
 * when the entry lies in RAM.  A read of anything that is not RAM or
 * accepting MMIO fails, as QEMU's dma_memory_read on address_space_memory
 * does (the caller turns that into a fault reason).
 */
import { MemTx, type AddressSpace } from '../../memory/address-space.js';

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

/** Whether the last successful readQword / readEntry read RAM (not MMIO). */
let fromRam = false;

/** True when the last successful readQword / readEntry was served by RAM (its value can only change by a RAM write). */
export function lastReadFromRam(): boolean {
  return fromRam;
}

/** Reads 8 bytes at `addr` into `out`; returns false when the read failed. */
export function readQword(mem: AddressSpace, addr: number, out: Qword): boolean {
  const r = mem.lookup(addr);
  if (r !== null && r.leaf.kind === 'ram' && addr + 8 <= r.end) {
    r.leaf.ram.readU32Pair(r.leaf.ramOffset + (addr - r.start + r.offset), out);
    fromRam = true;
    return true;
  }
  fromRam = false;
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
    fromRam = true;
    return true;
  }
  let ram = true;
  for (let i = 0; i < size / 8; i++) {
    if (!readQword(mem, addr + i * 8, i < out.length ? out[i]! : scratchQword)) return false;
    ram = ram && fromRam;
  }
  fromRam = ram;
  return true;
}

const scratchQword = newQword();
