/**
 * The IOTLB, modelled on QEMU's: a hash of leaf translations keyed by
 * {page number at the leaf level, source ID, PASID, level}, tagged with the
 * domain ID and the PASID-granular translation type (PGTT) that produced
 * them; at most 1024 entries, then everything is flushed; pass-through
 * translations are never cached.  Lookups try 4 KiB, 2 MiB then 1 GiB keys.
 * Legacy-mode entries have no PASID (NO_PASID); in scalable mode requests
 * without a PASID are keyed by PASID 0, as QEMU 11.1 keys them.
 *
 * Invalidation follows QEMU 11.1: a legacy IOTLB descriptor's page-selective
 * form drops every first-stage entry of the domain (first-stage entries are
 * PASID-tagged, so a page in the second-stage address space names none of
 * them exactly); a PASID-based page-selective invalidation only drops
 * first-stage entries.  Nested entries (x-nested) count as first-stage ones
 * for both, as the spec says.
 *
 * The hash is an open-addressing table (linear probing, at least 4 slots per
 * entry, backward-shift deletion) whose keys are integers: the page number as
 * two 32-bit halves (page numbers reach 2^45), the source ID and the level.
 * No strings, no bigint, no Map of boxed numbers.  Entries are pooled and
 * also kept in a dense list, so steady-state misses allocate nothing and a
 * flush touches only the live entries.
 *
 * Cost bound (issue 13): every invalidation (global, domain, page, PASID,
 * PASID page, one requester's space) scans at most the live entries, so at
 * most IOTLB_MAX_ENTRIES per descriptor whatever the guest asks; a full
 * queue of them costs what is cached, not the address range named.
 */
import { IommuPerm, NO_PASID } from '../../memory/iommu.js';
import { Geometry, LEVEL_SIZE } from './page-walk.js';
import { TWO_POW_32 } from '../../memory/address.js';

/** QEMU's VTD_IOTLB_MAX_SIZE. */
export const IOTLB_MAX_ENTRIES = 1024;
/** Leaf levels that can be cached (4 KiB, 2 MiB, 1 GiB). */
const MAX_CACHED_LEVEL = 3;
const PAGE_4K = 2 ** Geometry.PAGE_SHIFT;
/** log2 of the hash table size: 4096 slots, at most a quarter of them used. */
const SLOT_BITS = 12;
const SLOTS = 1 << SLOT_BITS;
const SLOT_MASK = SLOTS - 1;
/** Multipliers of the slot hash (odd 32-bit constants: golden ratio, Murmur3 twice). */
const HASH_MUL_A = 0x9e37_79b1;
const HASH_MUL_B = 0x85eb_ca6b;
const HASH_MUL_C = 0xc2b2_ae35;
/** PGTT of a first-stage entry (scalable-context.ts Pgtt.FirstStage; the IOTLB only tells it apart). */
export const PGTT_FIRST_STAGE = 1;
/** The PGTT tag of legacy-mode entries (second stage, no PASID table). */
export const PGTT_LEGACY = 0;
/** PGTT of a nested entry (vtemu's x-nested): first-stage tagged for invalidation, as the spec says. */
export const PGTT_NESTED = 3;

/** Entries whose input address is a first-stage one (first stage or nested). */
function firstStageTagged(pgtt: number): boolean {
  return pgtt === PGTT_FIRST_STAGE || pgtt === PGTT_NESTED;
}
/** Bits of the level in the hashed (sid, level) word. */
const LEVEL_BITS = 2;
/** IOVA bits below the page number of each cacheable level (index = level). */
const PAGE_SHIFT_OF_LEVEL: readonly number[] = [0, 12, 21, 30];

/** One cached translation. */
export interface VtdIotlbEntry {
  sid: number;
  /** PASID of the request space (NO_PASID in legacy mode). */
  pasid: number;
  did: number;
  /** PGTT of the translation (PGTT_LEGACY in legacy mode). */
  pgtt: number;
  /** FPD in force when the entry was built (faults raised on a hit use it). */
  fpd: boolean;
  /** The fault reason of a write hitting this entry (0 when it allows writes). */
  writeFault: number;
  /** 4 KiB frame number of the input page base (QEMU entry->gfn). */
  gfn: number;
  level: number;
  /** Page size in bytes. */
  size: number;
  /** Input page base. */
  iova: number;
  /** Output page base. */
  translated: number;
  perm: IommuPerm;
  /** Page number at the leaf level, low and high 32 bits (the key, with sid and level). */
  pageLo: number;
  pageHi: number;
  /** The slot the key hashes to. */
  home: number;
  /** The slot the entry sits in. */
  slot: number;
  /** Position in the dense list of live entries. */
  index: number;
}

function newEntry(): VtdIotlbEntry {
  return {
    sid: 0,
    pasid: NO_PASID,
    did: 0,
    pgtt: PGTT_LEGACY,
    fpd: false,
    writeFault: 0,
    gfn: 0,
    level: 0,
    size: 0,
    iova: 0,
    translated: 0,
    perm: IommuPerm.None,
    pageLo: 0,
    pageHi: 0,
    home: 0,
    slot: 0,
    index: 0,
  };
}

/** Low 32 bits of the page number at `level` of an IOVA given as halves. */
function pageLoOf(lo: number, hi: number, level: number): number {
  const shift = PAGE_SHIFT_OF_LEVEL[level]!;
  return ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
}

/** Bits 63:32 of the page number at `level` of an IOVA given as halves. */
function pageHiOf(hi: number, level: number): number {
  return hi >>> PAGE_SHIFT_OF_LEVEL[level]!;
}

/** The home slot of a key. */
function slotOf(sid: number, pasid: number, level: number, pageLo: number, pageHi: number): number {
  const h =
    Math.imul(pageLo, HASH_MUL_A) ^ Math.imul(pageHi ^ ((sid << LEVEL_BITS) | level), HASH_MUL_B) ^ Math.imul(pasid, HASH_MUL_C);
  return Math.imul(h ^ (h >>> 16), HASH_MUL_A) >>> (32 - SLOT_BITS);
}

/** First 4 KiB frame of the 2^am-page block (`block` pages) holding `addr`. */
function blockGfn(addr: number, block: number): number {
  const gfnAddr = Math.floor(addr / PAGE_4K);
  return gfnAddr - (gfnAddr % block);
}

/** The entry's frame is in the block starting at frame `gfn`, or its (large) page holds `addr`. */
function inBlock(e: VtdIotlbEntry, addr: number, gfn: number, block: number): boolean {
  return e.gfn - (e.gfn % block) === gfn || Math.floor(addr / e.size) * e.size === e.iova;
}

/** The IOTLB of one unit. */
export class Iotlb {
  private readonly slots: (VtdIotlbEntry | null)[] = new Array<VtdIotlbEntry | null>(SLOTS).fill(null);
  /** Live entries in [0, count), in no particular order. */
  private readonly live: VtdIotlbEntry[] = [];
  private readonly pool: VtdIotlbEntry[] = [];
  private count = 0;

  /** Number of cached entries. */
  get size(): number {
    return this.count;
  }

  /** The entry translating `iova` for `sid` and `pasid` (NO_PASID in legacy mode), if cached. */
  lookup(sid: number, pasid: number, iova: number): VtdIotlbEntry | undefined {
    const lo = iova >>> 0;
    const hi = Math.floor(iova / TWO_POW_32);
    for (let level = 1; level <= MAX_CACHED_LEVEL; level++) {
      const e = this.find(sid, pasid, level, pageLoOf(lo, hi, level), pageHiOf(hi, level));
      if (e !== null) return e;
    }
    return undefined;
  }

  /** The entry of one key, or null (the table always has a free slot, so probing ends). */
  private find(sid: number, pasid: number, level: number, pageLo: number, pageHi: number): VtdIotlbEntry | null {
    const slots = this.slots;
    for (let i = slotOf(sid, pasid, level, pageLo, pageHi); ; i = (i + 1) & SLOT_MASK) {
      const e = slots[i]!;
      if (e === null) return null;
      if (e.pageLo === pageLo && e.sid === sid && e.level === level && e.pageHi === pageHi && e.pasid === pasid) return e;
    }
  }

  /**
   * Caches a leaf translation (QEMU vtd_update_iotlb): when full, flushes
   * everything first.  Returns true when that flush happened.
   */
  insert(
    sid: number,
    pasid: number,
    did: number,
    iova: number,
    level: number,
    translated: number,
    perm: IommuPerm,
    pgtt: number = PGTT_LEGACY,
    fpd = false,
    writeFault = 0,
  ): boolean {
    let flushed = false;
    if (this.count >= IOTLB_MAX_ENTRIES) {
      this.clear();
      flushed = true;
    }
    const hi = Math.floor(iova / TWO_POW_32);
    const pageLo = pageLoOf(iova >>> 0, hi, level);
    const pageHi = pageHiOf(hi, level);
    let e = this.find(sid, pasid, level, pageLo, pageHi);
    if (e === null) {
      e = this.pool.pop() ?? newEntry();
      e.sid = sid;
      e.pasid = pasid;
      e.level = level;
      e.pageLo = pageLo;
      e.pageHi = pageHi;
      e.home = slotOf(sid, pasid, level, pageLo, pageHi);
      let i = e.home;
      while (this.slots[i] !== null) i = (i + 1) & SLOT_MASK;
      this.slots[i] = e;
      e.slot = i;
      e.index = this.count;
      this.live[this.count++] = e;
    }
    const size = LEVEL_SIZE[level]!;
    e.did = did;
    e.size = size;
    e.iova = (pageHi * TWO_POW_32 + pageLo) * size;
    e.gfn = e.iova / PAGE_4K;
    e.translated = translated;
    e.perm = perm;
    e.pgtt = pgtt;
    e.fpd = fpd;
    e.writeFault = writeFault;
    return flushed;
  }

  /** Removes every entry (global invalidation, TE/SRTP side effects). */
  clear(): void {
    for (let k = 0; k < this.count; k++) {
      const e = this.live[k]!;
      this.slots[e.slot] = null;
      this.pool.push(e);
    }
    this.count = 0;
  }

  /** Removes the entries of one domain (domain-selective invalidation). */
  removeDomain(did: number): number {
    return this.removeWhere((e) => e.did === did);
  }

  /**
   * Page-selective invalidation (QEMU vtd_hash_remove_by_page): removes the
   * entries of domain `did` whose frame falls in the 2^am-page block of
   * `addr`, or whose (large) page contains `addr`, and every first-stage
   * entry of the domain (QEMU 11.1).
   */
  removePages(did: number, addr: number, am: number): number {
    const block = 2 ** am;
    const gfn = blockGfn(addr, block);
    return this.removeWhere((e) => e.did === did && (firstStageTagged(e.pgtt) || inBlock(e, addr, gfn, block)));
  }

  /** PASID-selective invalidation (descriptor 6, G=2): every entry of (`did`, `pasid`). */
  removePasid(did: number, pasid: number): number {
    return this.removeWhere((e) => e.did === did && e.pasid === pasid);
  }

  /** PASID-based page-selective invalidation (descriptor 6, G=3): first-stage entries of (`did`, `pasid`) in the block. */
  removePasidPages(did: number, pasid: number, addr: number, am: number): number {
    const block = 2 ** am;
    const gfn = blockGfn(addr, block);
    return this.removeWhere((e) => e.did === did && e.pasid === pasid && firstStageTagged(e.pgtt) && inBlock(e, addr, gfn, block));
  }

  /** Every entry of one request space (a PASID entry that changed under a PASID-cache invalidation). */
  removeSpace(sid: number, pasid: number): number {
    return this.removeWhere((e) => e.sid === sid && e.pasid === pasid);
  }

  private removeWhere(pred: (e: VtdIotlbEntry) => boolean): number {
    let removed = 0;
    // Backwards: a removal moves the last live entry (already tested) into k.
    for (let k = this.count - 1; k >= 0; k--) {
      const e = this.live[k]!;
      if (pred(e)) {
        this.remove(e);
        removed++;
      }
    }
    return removed;
  }

  /** Unlinks one entry: backward-shift deletion in the table, swap-remove in the list. */
  private remove(e: VtdIotlbEntry): void {
    const slots = this.slots;
    let hole = e.slot;
    slots[hole] = null;
    for (let j = (hole + 1) & SLOT_MASK; ; j = (j + 1) & SLOT_MASK) {
      const f = slots[j]!;
      if (f === null) break;
      const home = f.home;
      // f stays when its home lies cyclically in (hole, j]; otherwise it moves into the hole.
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      slots[hole] = f;
      f.slot = hole;
      slots[j] = null;
      hole = j;
    }
    const last = this.live[--this.count]!;
    this.live[e.index] = last;
    last.index = e.index;
    this.pool.push(e);
  }

  /** Every cached entry (tests, dumps). */
  *entries(): IterableIterator<VtdIotlbEntry> {
    for (let k = 0; k < this.count; k++) yield this.live[k]!;
  }
}
