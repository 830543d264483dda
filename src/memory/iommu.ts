/**
 * The contract between a bus that carries device DMA and an IOMMU
 * (QEMU's IOMMUMemoryRegion / pci_setup_iommu, in small).
 *
 * A bus asks its IOMMU for one `DmaTranslator` per requester (a bus object
 * and a devfn, as QEMU keys its VTDAddressSpace); the translator computes the
 * source ID from the requester at translation time because a guest may
 * renumber buses.  `translate` fills a caller-owned entry (no allocation on the
 * hot path) and returns false when the access faults; the IOMMU has then
 * already recorded the fault (or, for an ATS translation request, returned
 * it in the entry instead).
 *
 * A request carries attributes: the PASID is a property of the address
 * space (a device has one DMA space per requester and PASID, as PCIe
 * requests with a PASID prefix are translated in that PASID's space); the
 * kind (untranslated, translated by the device's ATC, or an ATS translation
 * request) is passed per request.  The interrupt window is the translator's
 * answer too: `interruptWindow` names the IOVA range whose 4-byte writes are
 * interrupt requests instead of memory accesses.
 */
import type { Iova } from './address.js';

/** Access kind of a DMA transaction. */
export const DmaAccess = {
  Read: 1,
  Write: 2,
} as const;
export type DmaAccess = (typeof DmaAccess)[keyof typeof DmaAccess];

/** Permission bits of a translation (QEMU IOMMUAccessFlags). */
export const IommuPerm = {
  None: 0,
  Read: 1,
  Write: 2,
  ReadWrite: 3,
} as const;
export type IommuPerm = (typeof IommuPerm)[keyof typeof IommuPerm];

/**
 * One translation: [iova & ~addrMask, +addrMask] maps to
 * [translated & ~addrMask, ...] with `perm`.  addrMask is page size - 1.
 * After a refused translation `fault` holds the IOMMU's fault reason (0 when
 * the IOMMU gave none), whether or not the IOMMU also recorded it.
 */
export interface IotlbEntry {
  iova: number;
  translated: number;
  addrMask: number;
  perm: IommuPerm;
  fault: number;
}

/** A fresh entry to hand to `translate`. */
export function newIotlbEntry(): IotlbEntry {
  return { iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 };
}

/** The PASID of a request without a PASID prefix. */
export const NO_PASID = -1;

/** Largest PASID (20 bits, PCIe). */
export const MAX_PASID = 0xf_ffff;

/**
 * What a DMA request is, for the IOMMU (PCIe AT field):
 * - Untranslated: an ordinary DMA whose address the IOMMU translates;
 *   a refusal is recorded as a fault.
 * - Translated: the device already translated the address through its ATC;
 *   the IOMMU lets it through where it allows translated requests.
 * - TranslationRequest: an ATS translation request; the answer (or the
 *   fault reason) is returned in the entry and nothing is recorded.
 */
export const DmaRequestKind = {
  Untranslated: 0,
  Translated: 1,
  TranslationRequest: 2,
} as const;
export type DmaRequestKind = (typeof DmaRequestKind)[keyof typeof DmaRequestKind];

/** An address range [base, last] of a device's DMA address space. */
export interface DmaWindow {
  readonly base: number;
  readonly last: number;
}

/** Who issued a DMA: resolved to a source ID when the IOMMU needs one. */
export interface DmaRequester {
  /** Current bus number of the requester's bus (guest-programmable). */
  busNumber(): number;
  /** Device/function number on that bus (or the alias devfn). */
  readonly devfn: number;
  /** A stable key for caches of per-requester state. */
  readonly key: object;
}

/** The translating side of one requester's DMA address space. */
export interface DmaTranslator {
  /**
   * Translates one access at `iova`; fills `out` and returns true when
   * allowed.  Returns false (and records the fault) when not.
   *
   * Below 2^53 `iova` is the exact address of the access.  From 2^53 on
   * (where a number cannot hold every integer) it is the exact base of the
   * 4 KiB page holding it: the DMA space adds the offset into the page after
   * translation, so a translator must only ever need the page (table
   * indices, range checks, cache keys, fault addresses) and must never take
   * an address at or above 2^53 for anything but a page base.
   */
  translate(iova: Iova, access: DmaAccess, out: IotlbEntry, kind?: DmaRequestKind): boolean;
  /**
   * Optional: fills `out` and returns true only when `translate` would give
   * this very entry with no effect anyone could observe (a cached
   * translation or translation off, nothing traced, no listener, no fault);
   * otherwise returns false having done nothing.  A DMA space uses it to
   * merge physically contiguous pages into one RAM copy without reordering
   * anything visible.  Only called below 2^53.
   */
  peek?(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean;
  /**
   * The IOVA range of this address space where DMA is not translated but
   * signals interrupts (x86: 0xFEE00000-0xFEEFFFFF), or null when there is
   * none.  An aligned 4-byte write there goes to `interruptWrite`; other
   * sizes and reads are dropped / read 0 by the caller.
   */
  readonly interruptWindow: DmaWindow | null;
  /** A 4-byte DMA write into the interrupt window: an MSI to remap (or pass through). */
  interruptWrite(addr: number, data: number): void;
}

/** Status of an ATS translation completion (PCIe Base 6.0 §10.2.3). */
export const AtsStatus = {
  /** Translated: `read`/`write` give the access allowed (both false: not present, a page request may help). */
  Success: 0,
  /** Unsupported Request: the function may not use ATS here (no context, no PASID entry, ATS off). */
  UnsupportedRequest: 1,
  /** Completer Abort: the IOMMU found its tables malformed. */
  CompleterAbort: 4,
} as const;
export type AtsStatus = (typeof AtsStatus)[keyof typeof AtsStatus];

/**
 * One ATS translation completion entry: [iova & ~addrMask, +addrMask] maps
 * to [translated & ~addrMask, ...] with read / write permission; U
 * (`untranslatedOnly`) asks the device to use untranslated requests there.
 */
export interface AtsCompletion {
  status: AtsStatus;
  iova: number;
  translated: number;
  addrMask: number;
  read: boolean;
  write: boolean;
  untranslatedOnly: boolean;
}

/** A fresh completion to hand to `AtsPort.translationRequest`. */
export function newAtsCompletion(): AtsCompletion {
  return { status: AtsStatus.Success, iova: 0, translated: 0, addrMask: 0, read: false, write: false, untranslatedOnly: false };
}

/** A PCIe Page Request Message (PRI, §10.4.1) as the function issues it. */
export interface DevicePageRequest {
  /** Page address (bits 11:0 ignored; from 2^53 on, the exact page base). */
  readonly addr: number;
  readonly read: boolean;
  readonly write: boolean;
  /** Execute access (valid with read only). */
  readonly execute?: boolean;
  /** Privileged-mode access. */
  readonly privileged?: boolean;
  /** Page request group index, 9 bits. */
  readonly prgi: number;
  /** Last request of its group (LPIG): the host answers the group with one response. */
  readonly last: boolean;
}

/**
 * What the host did with a page request: `queued` for software; `overflow`
 * dropped because the host's queue is full (no response will come);
 * `refused` not accepted at all (no PRI on the host, no PASID, PRE clear,
 * malformed: no response will come either).
 */
export type PageRequestStatus = 'queued' | 'overflow' | 'refused';

/** How a function completed an ATS invalidation request (PCIe §10.3). */
export type AtsInvalidationResult = 'done' | 'timeout' | 'error';

/** Every PASID of a function (a global PASID-based invalidation). */
export const ALL_PASIDS = -2;

/**
 * The function side of ATS and PRI, registered with the host through
 * `AtsPort`: what the IOMMU sends to the device (QEMU's DEVIOTLB_UNMAP
 * notifier and PRI notifier).
 */
export interface AtsEndpoint {
  /**
   * Invalidate the ATC entries of `pasid` (NO_PASID: requests without one;
   * ALL_PASIDS: every PASID) overlapping [addr, addr + size); `size` is a
   * power of two of at least 4 KiB and may be 2^64.
   */
  invalidateAtc(pasid: number, addr: number, size: number): AtsInvalidationResult;
  /** A Page Request Group response (code 0 success, 1 invalid request, 0xF failure); pasid NO_PASID without one. */
  pageGroupResponse(pasid: number, prgi: number, code: number): void;
}

/** The host side of ATS and PRI for one function (QEMU PCIIOMMUOps ats_request_translation / pri_request_page). */
export interface AtsPort {
  /** Answers an ATS translation request for the page holding `iova` (NO_PASID: without a PASID prefix). */
  translationRequest(pasid: number, iova: Iova, noWrite: boolean, out: AtsCompletion): void;
  /** A page request (PRI) with `pasid` (NO_PASID: without one). */
  pageRequest(pasid: number, req: DevicePageRequest): PageRequestStatus;
}

/** What a bus needs from an IOMMU. */
export interface DmaIommu {
  /** The translator of `requester`'s DMA address space for `pasid` (NO_PASID: requests without a PASID). */
  translatorFor(requester: DmaRequester, pasid?: number): DmaTranslator;
  /**
   * Optional: the ATS/PRI port of `requester`, registering `endpoint` as the
   * function that receives its invalidations and page-group responses
   * (replacing an earlier one of the same requester).  Absent or null: the
   * IOMMU has no ATS (translation requests get Unsupported Request).
   */
  atsPort?(requester: DmaRequester, endpoint: AtsEndpoint): AtsPort | null;
}
