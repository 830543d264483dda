/**
 * An address space: a root region rendered into a sorted flat view, with
 * dispatch of single accesses and of byte ranges.  Used for the CPU's memory
 * and I/O spaces and as the target of device DMA (after the IOMMU, if any).
 *
 * Semantics follow QEMU: an access a region does not accept reads 0 (or the
 * space's `unassigned` value) and drops the write; byte-range accesses to MMIO
 * are split into the largest aligned sizes the region accepts
 * (memory_access_size); narrower or wider accesses than a region implements
 * are widened or split (access_with_adjusted_size).  An access to a window
 * whose device is already handling one (its re-entrancy guard, region.ts)
 * is refused like an access the region does not accept, and traced as
 * `memory_region_reentrant_access` when the space has a tracer.
 */
import { type AccessSize } from './address.js';
import type { ChunkedRam } from './ram.js';
import { REENTRANT_ACCESS_TRACE, type LeafRegion, type MemoryTracer, type MmioRegion, type Region } from './region.js';

/** Result of a memory transaction. */
export const MemTx = {
  Ok: 0,
  /** Nothing there, or the region refused the access shape. */
  DecodeError: 1,
} as const;
export type MemTx = (typeof MemTx)[keyof typeof MemTx];

/** One piece of the flat view: [start, end) maps to `leaf` at `offset`. */
export interface FlatRange {
  readonly start: number;
  readonly end: number;
  readonly leaf: LeafRegion;
  readonly offset: number;
}

/** Options of an address space. */
export interface AddressSpaceOptions {
  /** What an unassigned read returns, per byte (QEMU: 0 for memory, 0xff for I/O ports). */
  readonly unassignedByte?: number;
  /** Where refused re-entrant accesses are traced (REENTRANT_ACCESS_TRACE); none: not traced. */
  readonly tracer?: MemoryTracer;
}

/** Value masks of 1-, 2- and 4-byte accesses, by size. */
const SIZE_MASK = [0, 0xff, 0xffff, 0, 0xffffffff];
/** What `mmioReadSmall` answers for a refused access (never a valid value). */
export const MMIO_REFUSED = -1;

/** A CPU- or device-visible address space over a region tree. */
export class AddressSpace {
  private ranges: FlatRange[] = [];
  private generation = 0;
  private last: FlatRange | null = null;
  private readonly unassignedByte: number;
  private readonly scratch = new Uint8Array(8);
  /** Traces refusals of the re-entrancy guard (null: none). */
  private readonly tracer: MemoryTracer | null;

  constructor(
    readonly name: string,
    readonly root: Region,
    options: AddressSpaceOptions = {},
  ) {
    this.unassignedByte = options.unassignedByte ?? 0;
    this.tracer = options.tracer ?? null;
  }

  /** The current flat view (re-rendered when the topology changed). */
  flatView(): readonly FlatRange[] {
    const generation = this.root.topology.generation;
    if (this.generation !== generation) {
      this.ranges = renderFlat(this.root);
      this.generation = generation;
      this.last = null;
    }
    return this.ranges;
  }

  /** The flat range containing addr, or null. */
  lookup(addr: number): FlatRange | null {
    const ranges = this.flatView();
    const last = this.last;
    if (last && addr >= last.start && addr < last.end) return last;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = ranges[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return (this.last = r);
    }
    return null;
  }

  /** One CPU-style access of 1, 2 or 4 bytes; returns the value read. */
  read(addr: number, size: 1 | 2 | 4): number {
    const r = this.lookup(addr);
    if (r && addr + size <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.leaf.kind === 'ram') {
        const ram = r.leaf.ram;
        const at = r.leaf.ramOffset + off;
        return size === 4 ? ram.readU32(at) : size === 2 ? ram.readU16(at) : ram.readU8(at);
      }
      // A refused access reads 0 (QEMU unassigned_mem_read), not the hole value.
      const v = mmioReadSmall(r.leaf, off, size, this);
      return v === MMIO_REFUSED ? 0 : v;
    }
    const bytes = this.scratch.subarray(0, size);
    this.readBytes(addr, bytes);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
    return v;
  }

  /** One CPU-style 8-byte access. */
  read64(addr: number): bigint {
    const r = this.lookup(addr);
    if (r && addr + 8 <= r.end && r.leaf.kind === 'mmio') {
      return mmioRead(r.leaf, addr - r.start + r.offset, 8, this) ?? 0n;
    }
    const bytes = this.scratch;
    this.readBytes(addr, bytes);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    return v;
  }

  /** One CPU-style access of 1, 2 or 4 bytes. */
  write(addr: number, size: 1 | 2 | 4, value: number): MemTx {
    const r = this.lookup(addr);
    if (r && addr + size <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.leaf.kind === 'ram') {
        const ram = r.leaf.ram;
        const at = r.leaf.ramOffset + off;
        if (size === 4) ram.writeU32(at, value);
        else if (size === 2) ram.writeU16(at, value);
        else ram.writeU8(at, value);
        return MemTx.Ok;
      }
      return mmioWriteSmall(r.leaf, off, size, value, this);
    }
    const bytes = this.scratch.subarray(0, size);
    for (let i = 0; i < size; i++) bytes[i] = (value >>> (8 * i)) & 0xff;
    return this.writeBytes(addr, bytes);
  }

  /** One CPU-style 8-byte access. */
  write64(addr: number, value: bigint): MemTx {
    const r = this.lookup(addr);
    if (r && addr + 8 <= r.end && r.leaf.kind === 'mmio') {
      return mmioWrite(r.leaf, addr - r.start + r.offset, 8, BigInt.asUintN(64, value), this);
    }
    const bytes = this.scratch;
    let v = BigInt.asUintN(64, value);
    for (let i = 0; i < 8; i++, v >>= 8n) bytes[i] = Number(v & 0xffn);
    return this.writeBytes(addr, bytes);
  }

  /** Reads dst.length bytes at addr in memory order. */
  readBytes(addr: number, dst: Uint8Array): MemTx {
    return this.readInto(addr, dst, 0, dst.length);
  }

  /**
   * Reads `length` bytes at addr into dst[start, start+length), in memory
   * order.  A part of a buffer needs no view of it (DMA pieces): RAM is one
   * copy per flat range, MMIO is split as QEMU does.
   */
  readInto(addr: number, dst: Uint8Array, start: number, length: number): MemTx {
    checkSpan(dst, start, length);
    let result: MemTx = MemTx.Ok;
    let done = 0;
    while (done < length) {
      const at = addr + done;
      const p = start + done;
      const r = this.lookup(at);
      if (!r) {
        const next = this.nextStart(at);
        const len = Math.min(length - done, next - at);
        dst.fill(this.unassignedByte, p, p + len);
        done += len;
        result = MemTx.DecodeError;
        continue;
      }
      const off = at - r.start + r.offset;
      const room = Math.min(length - done, r.end - at);
      if (r.leaf.kind === 'ram') {
        r.leaf.ram.copyOutAt(r.leaf.ramOffset + off, dst, p, room);
        done += room;
        continue;
      }
      const l = mmioAccessSize(r.leaf, room, off);
      if (l === 8) {
        const v = mmioRead(r.leaf, off, l, this);
        let bits = v ?? 0n;
        if (v === null) result = MemTx.DecodeError;
        for (let i = 0; i < l; i++, bits >>= 8n) dst[p + i] = Number(bits & 0xffn);
      } else {
        let v = mmioReadSmall(r.leaf, off, l, this);
        if (v === MMIO_REFUSED) {
          v = 0;
          result = MemTx.DecodeError;
        }
        for (let i = 0; i < l; i++, v >>>= 8) dst[p + i] = v & 0xff;
      }
      done += l;
    }
    return result;
  }

  /** Writes src at addr in memory order. */
  writeBytes(addr: number, src: Uint8Array): MemTx {
    return this.writeFrom(addr, src, 0, src.length);
  }

  /** Writes src[start, start+length) at addr in memory order (see `readInto`). */
  writeFrom(addr: number, src: Uint8Array, start: number, length: number): MemTx {
    checkSpan(src, start, length);
    let result: MemTx = MemTx.Ok;
    let done = 0;
    while (done < length) {
      const at = addr + done;
      const p = start + done;
      const r = this.lookup(at);
      if (!r) {
        done += Math.min(length - done, this.nextStart(at) - at);
        result = MemTx.DecodeError;
        continue;
      }
      const off = at - r.start + r.offset;
      const room = Math.min(length - done, r.end - at);
      if (r.leaf.kind === 'ram') {
        r.leaf.ram.copyInAt(r.leaf.ramOffset + off, src, p, room);
        done += room;
        continue;
      }
      const l = mmioAccessSize(r.leaf, room, off);
      let tx: MemTx;
      if (l === 8) {
        let v = 0n;
        for (let i = l - 1; i >= 0; i--) v = (v << 8n) | BigInt(src[p + i]!);
        tx = mmioWrite(r.leaf, off, l, v, this);
      } else {
        let v = 0;
        for (let i = l - 1; i >= 0; i--) v = v * 256 + src[p + i]!;
        tx = mmioWriteSmall(r.leaf, off, l, v, this);
      }
      if (tx !== MemTx.Ok) result = MemTx.DecodeError;
      done += l;
    }
    return result;
  }

  /** Fills [addr, addr+length) with a byte value (qtest memset). */
  fill(addr: number, length: number, value: number): MemTx {
    let result: MemTx = MemTx.Ok;
    let done = 0;
    const chunk = new Uint8Array(Math.min(length, 1 << 16)).fill(value & 0xff);
    while (done < length) {
      const at = addr + done;
      const r = this.lookup(at);
      if (r && r.leaf.kind === 'ram') {
        const room = Math.min(length - done, r.end - at);
        r.leaf.ram.fill(r.leaf.ramOffset + at - r.start + r.offset, room, value);
        done += room;
        continue;
      }
      const len = Math.min(length - done, chunk.length, r ? r.end - at : this.nextStart(at) - at);
      if (this.writeBytes(at, chunk.subarray(0, len)) !== MemTx.Ok) result = MemTx.DecodeError;
      done += len;
    }
    return result;
  }

  /**
   * The RAM and offset in it of [addr, addr+length) when that range lies in
   * one RAM range, else null (an observer's way from a guest-physical address
   * to the bytes a RAM write watcher sees).
   */
  ramAt(addr: number, length: number): { readonly ram: ChunkedRam; readonly offset: number } | null {
    const r = this.lookup(addr);
    if (r === null || r.leaf.kind !== 'ram' || addr + length > r.end) return null;
    return { ram: r.leaf.ram, offset: r.leaf.ramOffset + (addr - r.start + r.offset) };
  }

  /** True when [addr, addr+length) is entirely RAM (no MMIO, no hole). */
  isRam(addr: number, length: number): boolean {
    let at = addr;
    const end = addr + length;
    while (at < end) {
      const r = this.lookup(at);
      if (!r || r.leaf.kind !== 'ram') return false;
      at = r.end;
    }
    return true;
  }

  /**
   * A re-entrant access to `region` was refused (see engage): traced when
   * the space has a tracer with REENTRANT_ACCESS_TRACE enabled.
   */
  traceRefused(region: MmioRegion, offset: number, size: AccessSize, write: boolean): void {
    const t = this.tracer;
    if (t === null || !t.enabled(REENTRANT_ACCESS_TRACE)) return;
    t.trace(REENTRANT_ACCESS_TRACE, { space: this.name, region: region.name, offset, size, write });
  }

  private nextStart(addr: number): number {
    for (const r of this.flatView()) if (r.start > addr) return r.start;
    return Number.POSITIVE_INFINITY;
  }
}

/** Throws unless [start, start+length) is a span of `buf` (a host bug, never guest input). */
function checkSpan(buf: Uint8Array, start: number, length: number): void {
  if (!(Math.floor(start) === start && start >= 0 && length >= 0 && start + length <= buf.length)) {
    throw new RangeError(`address space: span ${start}+${length} outside a buffer of ${buf.length}`);
  }
}

/**
 * QEMU's memory_access_size: the largest power of two no bigger than `len`,
 * the region's valid maximum and (unless its implementation takes unaligned
 * accesses: impl.unaligned, as in QEMU) the alignment of `offset`.
 */
export function mmioAccessSize(region: MmioRegion, len: number, offset: number): AccessSize {
  let max: number = region.rules.valid.max;
  if (!region.rules.impl.unaligned) {
    const align = offset === 0 ? 0 : offset & -offset;
    if (align !== 0 && align < max) max = align;
  }
  let l = Math.min(len, max);
  let p = 1;
  while (p * 2 <= l) p *= 2;
  l = p;
  return l as AccessSize;
}

function accessValid(region: MmioRegion, offset: number, size: number): boolean {
  const v = region.rules.valid;
  if (size < v.min || size > v.max) return false;
  if (!v.unaligned && offset % size !== 0) return false;
  return true;
}

/** Who dispatches an access: told when the re-entrancy guard refuses it (AddressSpace.traceRefused). */
export interface DispatchOrigin {
  traceRefused(region: MmioRegion, offset: number, size: AccessSize, write: boolean): void;
}

/**
 * Dispatches one read of `size` bytes at `offset` (QEMU
 * memory_region_dispatch_read): null when the region refuses the access.
 * `origin` (the dispatching address space) hears of a re-entrancy refusal.
 */
export function mmioRead(region: MmioRegion, offset: number, size: AccessSize, origin?: DispatchOrigin): bigint | null {
  if (!accessValid(region, offset, size) || !engage(region, offset, size, false, origin)) return null;
  try {
    return guardedRead(region, offset, size);
  } finally {
    region.guard.engaged = false;
  }
}

/**
 * Engages `region`'s re-entrancy guard for one access; false (counted, and
 * reported to `origin`) when it already is: the access re-enters the device
 * and is refused.  The caller releases it (`guard.engaged = false`) in a
 * finally block.
 */
function engage(region: MmioRegion, offset: number, size: AccessSize, write: boolean, origin: DispatchOrigin | undefined): boolean {
  const guard = region.guard;
  if (guard.engaged) {
    guard.blocked++;
    origin?.traceRefused(region, offset, size, write);
    return false;
  }
  guard.engaged = true;
  return true;
}

function guardedRead(region: MmioRegion, offset: number, size: AccessSize): bigint {
  const impl = region.rules.impl;
  const step = Math.max(Math.min(size, impl.max), impl.min) as AccessSize;
  // One access of the implemented size (the usual case): no shifting or masking loop.
  if (step === size) {
    return step === 8
      ? BigInt.asUintN(64, region.ops.read64!(offset))
      : BigInt((region.ops.read(offset, step) & SIZE_MASK[step]!) >>> 0);
  }
  const mask = step === 8 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(step * 8)) - 1n;
  let value = 0n;
  for (let i = 0; i < size; i += step) {
    const part = step === 8 ? region.ops.read64!(offset + i) : BigInt(region.ops.read(offset + i, step) >>> 0);
    value |= (part & mask) << BigInt(i * 8);
  }
  return size === 8 ? BigInt.asUintN(64, value) : value & ((1n << BigInt(size * 8)) - 1n);
}

/**
 * One read of 1, 2 or 4 bytes as a number, without bigints when the region
 * implements that size: the common case of register accesses.  Returns
 * MMIO_REFUSED when the region refuses the access.
 */
export function mmioReadSmall(region: MmioRegion, offset: number, size: 1 | 2 | 4, origin?: DispatchOrigin): number {
  if (!accessValid(region, offset, size)) return MMIO_REFUSED;
  const impl = region.rules.impl;
  if (size < impl.min || size > impl.max) {
    const v = mmioRead(region, offset, size, origin);
    return v === null ? MMIO_REFUSED : Number(v);
  }
  if (!engage(region, offset, size, false, origin)) return MMIO_REFUSED;
  try {
    return (region.ops.read(offset, size) & SIZE_MASK[size]!) >>> 0;
  } finally {
    region.guard.engaged = false;
  }
}

/** One write of 1, 2 or 4 bytes from a number (the value is truncated to the size). */
export function mmioWriteSmall(region: MmioRegion, offset: number, size: 1 | 2 | 4, value: number, origin?: DispatchOrigin): MemTx {
  if (!accessValid(region, offset, size)) return MemTx.DecodeError;
  const impl = region.rules.impl;
  if (size < impl.min || size > impl.max) return mmioWrite(region, offset, size, BigInt((value & SIZE_MASK[size]!) >>> 0), origin);
  if (!engage(region, offset, size, true, origin)) return MemTx.DecodeError;
  try {
    region.ops.write(offset, size, (value & SIZE_MASK[size]!) >>> 0);
  } finally {
    region.guard.engaged = false;
  }
  return MemTx.Ok;
}

/**
 * Dispatches one write (QEMU memory_region_dispatch_write); refused while
 * the region's re-entrancy guard is engaged (reported to `origin`).
 */
export function mmioWrite(region: MmioRegion, offset: number, size: AccessSize, value: bigint, origin?: DispatchOrigin): MemTx {
  if (!accessValid(region, offset, size) || !engage(region, offset, size, true, origin)) return MemTx.DecodeError;
  try {
    guardedWrite(region, offset, size, value);
  } finally {
    region.guard.engaged = false;
  }
  return MemTx.Ok;
}

function guardedWrite(region: MmioRegion, offset: number, size: AccessSize, value: bigint): void {
  const impl = region.rules.impl;
  const step = Math.max(Math.min(size, impl.max), impl.min) as AccessSize;
  if (step === size) {
    if (step === 8) region.ops.write64!(offset, BigInt.asUintN(64, value));
    else region.ops.write(offset, step, Number(BigInt.asUintN(step * 8, value)));
    return;
  }
  const mask = step === 8 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(step * 8)) - 1n;
  for (let i = 0; i < size; i += step) {
    const part = (value >> BigInt(i * 8)) & mask;
    if (step === 8) region.ops.write64!(offset + i, part);
    else region.ops.write(offset + i, step, Number(part));
  }
}

/** Renders a region tree into sorted, non-overlapping flat ranges. */
export function renderFlat(root: Region): FlatRange[] {
  const out: FlatRange[] = [];
  render(root, 0, 0, root.size, 0, out);
  out.sort((a, b) => a.start - b.start);
  return out;
}

/**
 * Renders `region` placed at `base`, clipped to [clipStart, clipEnd) and
 * starting `skip` bytes into the region, into the gaps `out` leaves.
 */
function render(region: Region, base: number, clipStart: number, clipEnd: number, skip: number, out: FlatRange[]): void {
  if (!region.enabled) return;
  const start = Math.max(base, clipStart);
  const end = Math.min(base + region.size - skip, clipEnd);
  if (start >= end) return;
  switch (region.kind) {
    case 'ram':
    case 'mmio':
      addGaps(out, start, end, region, start - base + skip);
      return;
    case 'alias':
      render(region.target, base - region.offset - skip, start, end, 0, out);
      return;
    case 'container':
      for (const c of region.subregions()) render(c.region, base - skip + c.offset, start, end, 0, out);
      return;
  }
}

/** Adds the parts of [start, end) that no range in `out` covers yet. */
function addGaps(out: FlatRange[], start: number, end: number, leaf: LeafRegion, offset: number): void {
  const taken = out.filter((r) => r.end > start && r.start < end).sort((a, b) => a.start - b.start);
  let at = start;
  for (const r of taken) {
    if (r.start > at) out.push({ start: at, end: r.start, leaf, offset: offset + (at - start) });
    at = Math.max(at, r.end);
    if (at >= end) return;
  }
  if (at < end) out.push({ start: at, end, leaf, offset: offset + (at - start) });
}
