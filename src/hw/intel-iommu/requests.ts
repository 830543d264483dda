/**
 * The requests that pass between the unit's components: cache invalidations
 * (from the registers or the invalidation queue), page-group responses, and
 * the optional details of a fault.  Plain data, no behaviour; the components
 * that issue and the ones that act on them both import it, so it imports
 * nothing of the unit.
 */

/** Source ID used when the requester is unknown (QEMU: IOAPIC path, no MemTxAttrs.requester_id). */
export const SID_UNKNOWN = -1;

/** Who asked for an invalidation: the register interface, the queue, or the unit itself. */
export type InvalidationSource = 'register' | 'queue' | 'internal';

/** Context-cache invalidation granularities (CCMD.CIRG / QI G). */
export type ContextInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  | { readonly kind: 'device'; readonly did: number; readonly sid: number; readonly fm: number };

/** IOTLB invalidation granularities (IOTLB.IIRG / QI G). */
export type IotlbInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  /** Page-selective: `addr` (4 KiB aligned), 2^am pages, invalidation hint. */
  | { readonly kind: 'page'; readonly did: number; readonly addr: number; readonly am: number; readonly ih: boolean };

/**
 * PASID-based IOTLB invalidation granularities (descriptor 6, G 5:4):
 * G=2 every entry of (DID, PASID) whatever its PGTT; G=3 page-selective,
 * first-stage entries only (QEMU 11.1).
 */
export type PasidIotlbInvalidation =
  | { readonly kind: 'pasid'; readonly did: number; readonly pasid: number }
  | { readonly kind: 'page'; readonly did: number; readonly pasid: number; readonly addr: number; readonly am: number; readonly ih: boolean };

/** PASID-cache invalidation granularities (descriptor 7, G 5:4: 0 domain, 1 PASID, 3 global). */
export type PasidCacheInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  | { readonly kind: 'pasid'; readonly did: number; readonly pasid: number };

/** A page-group response (descriptor 9), passed on to the device that asked. */
export interface PageGroupResponse {
  /** Requester ID the response is for. */
  readonly rid: number;
  /** PASID present (PP) and its value. */
  readonly pasidPresent: boolean;
  readonly pasid: number;
  /** Response code (0 success, 1 invalid request, 0xF response failure). */
  readonly code: number;
  /** Page request group index. */
  readonly prgi: number;
}

/** Optional details of a fault. */
export interface FaultExtra {
  /** Fault processing disable bit of the entry that led to the fault (suppresses qualified faults). */
  readonly fpd?: boolean;
  /** Interrupt-remapping index (IR faults: stored in FRCD bits 63:48). */
  readonly irIndex?: number;
  /** PASID (PP/PV fields), when the request had one; without it PP and PV record 0. */
  readonly pasid?: number;
}
