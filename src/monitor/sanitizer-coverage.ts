/**
 * What the invalidation sanitizer (sanitizer.ts) counts as a cached entry and
 * which invalidation drops it, after the VT-d spec (6.5) rather than after
 * any one implementation's cache:
 *
 *   context     root + context entry of a source ID: context-cache
 *               invalidation, global, domain-selective (the entry's DID; in
 *               scalable mode any) or device-selective (SID under FM).
 *   pasid       PASID directory + PASID table entry of (SID, PASID):
 *               PASID-cache invalidation, global, domain-selective (DID) or
 *               PASID-selective (DID, PASID).
 *   iotlb       a translation of one page (every entry on its walk, the
 *               IOTLB and the paging-structure caches together): IOTLB
 *               global; IOTLB domain-selective (DID); IOTLB page-selective
 *               (DID, range) for second-stage translations; PASID-based
 *               IOTLB PASID-selective (DID, PASID); PASID-based page-selective
 *               (DID, PASID, range) for first-stage translations.
 *   device-tlb  what an ATS device holds in its ATC: device-TLB invalidation
 *               (descriptor 3 without a PASID, 8 with one or global) of the
 *               SID covering the page.
 *   iec         an interrupt remapping table entry: IEC global or
 *               index-selective (2^IM entries).
 *
 * `required` names the invalidation that would have covered a change of one
 * structure: the narrowest the spec offers for it (any wider one also does).
 */
import type { InvalidateEvent } from '../hw/intel-iommu/events.js';
import { FM_DEVFN_MASK } from '../hw/intel-iommu/invalidation.js';
import type { Source } from './sanitizer-chain.js';

/** The caches the sanitizer follows. */
export type CacheKind = 'context' | 'pasid' | 'iotlb' | 'device-tlb' | 'iec';

/** The tags a cached entry carries (what an invalidation is matched against). */
export interface CacheTags {
  readonly cache: CacheKind;
  readonly sid: number;
  /** PASID of the request, null for none. */
  readonly pasid: number | null;
  /** PASID the caches tag the entry with: the request's, or 0 (RID2PASID) in scalable mode; -1 in legacy mode. */
  readonly tagPasid: number;
  /** Domain ID, or -1 when the entry has none (scalable-mode context entries). */
  readonly did: number;
  /** First-stage (or nested) translation. */
  readonly firstStage: boolean;
  /** Input page of a translation (iotlb, device-tlb). */
  readonly page: number;
  readonly size: number;
  /** IRTE index (iec). */
  readonly index: number;
}

/** The invalidation a change needed. */
export interface RequiredInvalidation {
  /** Descriptor type of the queued form (1 context, 2 IOTLB, 3 device-TLB, 4 IEC, 6 PASID-based IOTLB, 7 PASID cache, 8 PASID-based device-TLB). */
  readonly type: number;
  readonly descriptor: string;
  readonly granularity: string;
  readonly fields: Readonly<Record<string, number>>;
}

const PAGE_SHIFT = 12;
const LEVEL_STRIDE = 9;

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/** Whether invalidation `ev` drops the cached entry tagged `t`. */
export function covers(t: CacheTags, ev: InvalidateEvent): boolean {
  switch (t.cache) {
    case 'context': {
      if (ev.cache !== 'context') return false;
      if (ev.granularity === 'global') return true;
      if (ev.granularity === 'domain') return t.did < 0 || ev.did === t.did;
      if (ev.granularity !== 'device' || ev.sid === undefined) return false;
      const ignore = FM_DEVFN_MASK[(ev.fm ?? 0) & 3]!;
      return ev.sid >>> 8 === t.sid >>> 8 && ((ev.sid & 0xff) & ~ignore) === ((t.sid & 0xff) & ~ignore);
    }
    case 'pasid':
      if (ev.cache !== 'pasid') return false;
      if (ev.granularity === 'global') return true;
      if (ev.did !== t.did) return false;
      return ev.granularity === 'domain' || ev.pasid === t.tagPasid;
    case 'iotlb':
      if (ev.cache === 'iotlb') {
        if (ev.granularity === 'global') return true;
        if (ev.did !== t.did) return false;
        if (ev.granularity === 'domain') return true;
        return !t.firstStage && overlaps(ev.addr ?? 0, 2 ** (PAGE_SHIFT + (ev.am ?? 0)), t.page, t.size);
      }
      if (ev.cache === 'pasid-iotlb') {
        if (ev.did !== t.did || ev.pasid !== t.tagPasid) return false;
        if (ev.granularity === 'pasid') return true;
        return t.firstStage && overlaps(ev.addr ?? 0, 2 ** (PAGE_SHIFT + (ev.am ?? 0)), t.page, t.size);
      }
      return false;
    case 'device-tlb':
      if (ev.cache !== 'device-iotlb' || ev.sid !== t.sid) return false;
      if (!overlaps(ev.addr ?? 0, ev.size ?? 2 ** PAGE_SHIFT, t.page, t.size)) return false;
      if (ev.granularity === 'global') return true;
      if (ev.granularity === 'pasid') return ev.pasid === t.pasid;
      return t.pasid === null;
    case 'iec': {
      if (ev.cache !== 'iec') return false;
      if (ev.granularity === 'global') return true;
      const count = 2 ** (ev.am ?? 0);
      const first = (ev.addr ?? 0) - ((ev.addr ?? 0) % count);
      return t.index >= first && t.index < first + count;
    }
  }
}

/** Input range an entry at paging level `level` maps around `addr`: base and AM (4 KiB << AM bytes). */
function rangeOf(addr: number, level: number): { addr: number; am: number } {
  const am = LEVEL_STRIDE * Math.max(0, level - 1);
  const size = 2 ** (PAGE_SHIFT + am);
  return { addr: addr - (addr % size), am };
}

/** The narrowest invalidation that drops entry `t` after source `s` changed (the request was at `addr`). */
export function required(t: CacheTags, s: Source, addr: number): RequiredInvalidation {
  switch (t.cache) {
    case 'context':
      return {
        type: 1, descriptor: 'context-cache invalidation', granularity: 'device-selective',
        fields: { sid: t.sid, fm: 0, ...(t.did >= 0 ? { did: t.did } : {}) },
      };
    case 'pasid':
      return { type: 7, descriptor: 'PASID-cache invalidation', granularity: 'PASID-selective', fields: { did: t.did, pasid: t.tagPasid } };
    case 'iotlb': {
      if (s.kind === 'root' || s.kind === 'context') {
        return { type: 2, descriptor: 'IOTLB invalidation', granularity: 'domain-selective', fields: { did: t.did } };
      }
      if (s.kind === 'pasid-dir' || s.kind === 'pasid') {
        return { type: 6, descriptor: 'PASID-based IOTLB invalidation', granularity: 'PASID-selective', fields: { did: t.did, pasid: t.tagPasid } };
      }
      const r = rangeOf(addr, s.level);
      if (t.firstStage) {
        return { type: 6, descriptor: 'PASID-based IOTLB invalidation', granularity: 'page-selective', fields: { did: t.did, pasid: t.tagPasid, addr: r.addr, am: r.am } };
      }
      return { type: 2, descriptor: 'IOTLB invalidation', granularity: 'page-selective', fields: { did: t.did, addr: r.addr, am: r.am } };
    }
    case 'device-tlb':
      return t.pasid === null
        ? { type: 3, descriptor: 'device-TLB invalidation', granularity: 'page', fields: { sid: t.sid, addr: t.page, size: t.size } }
        : { type: 8, descriptor: 'PASID-based device-TLB invalidation', granularity: 'PASID', fields: { sid: t.sid, pasid: t.pasid, addr: t.page, size: t.size } };
    case 'iec':
      return { type: 4, descriptor: 'interrupt entry cache invalidation', granularity: 'index-selective', fields: { index: t.index, im: 0 } };
  }
}

/** The sources of a chain a cache depends on. */
export function sourcesFor(cache: CacheKind, sources: readonly Source[]): Source[] {
  switch (cache) {
    case 'context':
      return sources.filter((s) => s.kind === 'root' || s.kind === 'context');
    case 'pasid':
      return sources.filter((s) => s.kind === 'pasid-dir' || s.kind === 'pasid');
    default:
      return [...sources];
  }
}
