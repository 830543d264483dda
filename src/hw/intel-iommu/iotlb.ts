/**
 * The IOTLB, modelled on QEMU's: a hash of second-stage leaf translations
 * keyed by {page number at the leaf level, source ID, level}, tagged with the
 * domain ID; at most 1024 entries, then everything is flushed; pass-through
 * translations are never cached.  Lookups try 4 KiB, 2 MiB then 1 GiB keys.
 *
 * Keys avoid string building and the 2^53 limit: one map per source ID,
 * keyed by pageNumber * 4 + level (page numbers stay below 2^45).
 * Entries are pooled, so steady-state misses do not allocate.
 */
import { IommuPerm } from '../../memory/iommu.js';
import { Geometry, LEVEL_SIZE } from './page-walk.js';

/** QEMU's VTD_IOTLB_MAX_SIZE. */
export const IOTLB_MAX_ENTRIES = 1024;
/** Leaf levels that can be cached (4 KiB, 2 MiB, 1 GiB). */
const MAX_CACHED_LEVEL = 3;
const LEVEL_KEYS = 4;
const PAGE_4K = 2 ** Geometry.PAGE_SHIFT;

/** One cached translation. */
export interface VtdIotlbEntry {
  sid: number;
  did: number;
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
  key: number;
}

function newEntry(): VtdIotlbEntry {
  return { sid: 0, did: 0, gfn: 0, level: 0, size: 0, iova: 0, translated: 0, perm: IommuPerm.None, key: 0 };
}

/** The IOTLB of one unit. */
export class Iotlb {
  private readonly bySid = new Map<number, Map<number, VtdIotlbEntry>>();
  private readonly pool: VtdIotlbEntry[] = [];
  private count = 0;

  /** Number of cached entries. */
  get size(): number {
    return this.count;
  }

  /** The entry translating `iova` for `sid`, if cached. */
  lookup(sid: number, iova: number): VtdIotlbEntry | undefined {
    const m = this.bySid.get(sid);
    if (m === undefined) return undefined;
    for (let level = 1; level <= MAX_CACHED_LEVEL; level++) {
      const e = m.get(Math.floor(iova / LEVEL_SIZE[level]!) * LEVEL_KEYS + level);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /**
   * Caches a leaf translation (QEMU vtd_update_iotlb): when full, flushes
   * everything first.  Returns true when that flush happened.
   */
  insert(sid: number, did: number, iova: number, level: number, translated: number, perm: IommuPerm): boolean {
    let flushed = false;
    if (this.count >= IOTLB_MAX_ENTRIES) {
      this.clear();
      flushed = true;
    }
    let m = this.bySid.get(sid);
    if (m === undefined) {
      m = new Map();
      this.bySid.set(sid, m);
    }
    const size = LEVEL_SIZE[level]!;
    const page = Math.floor(iova / size);
    const key = page * LEVEL_KEYS + level;
    let e = m.get(key);
    if (e === undefined) {
      e = this.pool.pop() ?? newEntry();
      m.set(key, e);
      this.count++;
    }
    e.sid = sid;
    e.did = did;
    e.level = level;
    e.size = size;
    e.iova = page * size;
    e.gfn = e.iova / PAGE_4K;
    e.translated = translated;
    e.perm = perm;
    e.key = key;
    return flushed;
  }

  /** Removes every entry (global invalidation, TE/SRTP side effects). */
  clear(): void {
    for (const m of this.bySid.values()) {
      for (const e of m.values()) this.pool.push(e);
      m.clear();
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
   * `addr`, or whose (large) page contains `addr`.
   */
  removePages(did: number, addr: number, am: number): number {
    const block = 2 ** am;
    const gfnAddr = Math.floor(addr / PAGE_4K);
    const gfn = gfnAddr - (gfnAddr % block);
    return this.removeWhere((e) => {
      if (e.did !== did) return false;
      if (e.gfn - (e.gfn % block) === gfn) return true;
      return Math.floor(addr / e.size) * e.size === e.iova;
    });
  }

  private removeWhere(pred: (e: VtdIotlbEntry) => boolean): number {
    let removed = 0;
    for (const m of this.bySid.values()) {
      for (const [k, e] of m) {
        if (pred(e)) {
          m.delete(k);
          this.pool.push(e);
          removed++;
        }
      }
    }
    this.count -= removed;
    return removed;
  }

  /** Every cached entry (tests, dumps). */
  *entries(): IterableIterator<VtdIotlbEntry> {
    for (const m of this.bySid.values()) yield* m.values();
  }
}
