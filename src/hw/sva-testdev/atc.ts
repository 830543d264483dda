/**
 * The device-TLB (Address Translation Cache, PCIe Base 6.0 §10.2) of
 * `sva-testdev`: a small fully associative cache of ATS translation
 * completions, keyed by PASID (NO_PASID for translations requested without
 * one) and untranslated address range.
 *
 *  - An entry covers the naturally aligned range its completion named:
 *    4 KiB, 2 MiB, 1 GiB ... (the completion's addrMask + 1; anything that is
 *    not a power of two of at least 4 KiB counts as 4 KiB).
 *  - Inserting drops the entries of the same PASID that overlap the new one
 *    (a fresh completion replaces a stale one), then takes a free slot or
 *    replaces the oldest entry (first in, first out).
 *  - An invalidation (PCIe §10.3) drops every entry of the PASID (NO_PASID:
 *    the entries without one; ALL_PASIDS: every entry, with or without a
 *    PASID -- dropping too much is always safe) overlapping the naturally
 *    aligned range [addr, addr + size), where size may be 2^64.
 *
 * Addresses are numbers: page bases are exact up to 2^64 (multiples of
 * 4 KiB), and every range computation here works on page bases and
 * power-of-two sizes, whose remainders and sums doubles keep exact.
 * Lookups walk the slots without allocating.
 */
import { ALL_PASIDS, type AtsCompletion } from '../../memory/iommu.js';
import { SVA_ATC_ENTRIES } from './regs.js';

/** Smallest translation: one 4 KiB page. */
export const ATC_PAGE_SIZE = 0x1000;

/** One cached translation, as the device reads it. */
export interface AtcEntry {
  /** PASID of the translation request (NO_PASID: none). */
  readonly pasid: number;
  /** Untranslated base address (aligned to the entry's size). */
  readonly iova: number;
  /** Size - 1. */
  readonly addrMask: number;
  /** Translated base address (aligned to the entry's size). */
  readonly translated: number;
  readonly read: boolean;
  readonly write: boolean;
  /** U: the range must be accessed with untranslated requests. */
  readonly untranslatedOnly: boolean;
}

/** A slot of the cache. */
class Slot implements AtcEntry {
  valid = false;
  /** Insertion order (oldest replaced first). */
  seq = 0;
  pasid = 0;
  iova = 0;
  addrMask = 0;
  translated = 0;
  read = false;
  write = false;
  untranslatedOnly = false;

  /** True when [iova, iova + addrMask] overlaps [start, end). */
  overlaps(start: number, end: number): boolean {
    return this.iova < end && start < this.iova + this.addrMask + 1;
  }
}

/** `x` rounded down to a multiple of `size` (a power of two): exact for doubles. */
function alignDown(x: number, size: number): number {
  return x - (x % size);
}

/** The size a completion's addrMask names: a power of two of at least 4 KiB, else 4 KiB. */
export function translationSize(addrMask: number): number {
  const size = addrMask + 1;
  return size >= ATC_PAGE_SIZE && Number.isInteger(Math.log2(size)) ? size : ATC_PAGE_SIZE;
}

/** An invalidation size rounded up to a power of two of at least 4 KiB (Infinity: everything). */
function invalidationSize(size: number): number {
  if (!(size > ATC_PAGE_SIZE)) return ATC_PAGE_SIZE;
  return 2 ** Math.ceil(Math.log2(size));
}

/** The device-TLB. */
export class DeviceAtc {
  private readonly slots: Slot[];
  private nextSeq = 0;
  private valid = 0;

  constructor(readonly capacity: number = SVA_ATC_ENTRIES) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`device ATC: capacity ${capacity} is not a positive integer`);
    this.slots = Array.from({ length: capacity }, () => new Slot());
  }

  /** Valid entries. */
  get count(): number {
    return this.valid;
  }

  /** The entry of `pasid` covering `addr`, or null. */
  lookup(pasid: number, addr: number): AtcEntry | null {
    for (const s of this.slots) {
      if (s.valid && s.pasid === pasid && s.iova <= addr && addr <= s.iova + s.addrMask) return s;
    }
    return null;
  }

  /**
   * Caches completion `c` of a translation request of `pasid` for the page
   * at `addr`: the entry covers the aligned range of the completion's size
   * around `addr`.  Returns the entry.
   */
  insert(pasid: number, addr: number, c: AtsCompletion): AtcEntry {
    const size = translationSize(c.addrMask);
    const base = alignDown(addr, size);
    this.drop(pasid, base, base + size);
    const s = this.freeOrOldest();
    if (!s.valid) this.valid++;
    s.valid = true;
    s.seq = this.nextSeq++;
    s.pasid = pasid;
    s.iova = base;
    s.addrMask = size - 1;
    s.translated = alignDown(c.translated, size);
    s.read = c.read;
    s.write = c.write;
    s.untranslatedOnly = c.untranslatedOnly;
    return s;
  }

  /**
   * Drops the entries of `pasid` (NO_PASID: without a PASID; ALL_PASIDS:
   * all) overlapping the aligned range of `size` bytes holding `addr`.
   * Returns how many were dropped.
   */
  invalidate(pasid: number, addr: number, size: number): number {
    const span = invalidationSize(size);
    if (span === Infinity) return this.drop(pasid, 0, Infinity);
    const start = alignDown(addr, span);
    return this.drop(pasid, start, start + span);
  }

  /** Drops every entry. */
  flush(): void {
    for (const s of this.slots) s.valid = false;
    this.valid = 0;
  }

  /** Drops the entries of `pasid` overlapping [start, end); returns how many. */
  private drop(pasid: number, start: number, end: number): number {
    let n = 0;
    for (const s of this.slots) {
      if (!s.valid || (pasid !== ALL_PASIDS && s.pasid !== pasid) || !s.overlaps(start, end)) continue;
      s.valid = false;
      n++;
    }
    this.valid -= n;
    return n;
  }

  private freeOrOldest(): Slot {
    let oldest = this.slots[0]!;
    for (const s of this.slots) {
      if (!s.valid) return s;
      if (s.seq < oldest.seq) oldest = s;
    }
    return oldest;
  }
}
