/**
 * Address Translation Services, the IOMMU half (VT-d spec 4.2 "Device-TLB"
 * and PCIe ATS): answering a function's translation requests, and sending
 * it the device-TLB invalidations (descriptors 3 and 8) and page-group
 * responses (descriptor 9) the guest queues for it.
 *
 * Translation requests (`answerTranslationRequest`) go through the
 * requester's translator as kind TranslationRequest, so they share the
 * IOTLB and the walk with untranslated DMA but record no fault.  The
 * completion, per page:
 *   - translated: Success with R, and W when the function asked for write
 *     access (NW clear) and the tables allow it; a page that allows only
 *     reads answers R alone, it does not fail (QEMU 11.1 likewise);
 *   - not present / no permission at the page-table level: Success with
 *     R = W = 0, the answer that lets the function issue a page request;
 *   - no context, PASID directory or PASID entry, or a request with a PASID
 *     to a unit without PASID support: Unsupported Request;
 *   - anything malformed (reserved bits, unreadable tables, bad programming,
 *     an output in the interrupt range): Completer Abort.
 * A request without a PASID for an address in the interrupt range
 * (0xFEE00000-0xFEEFFFFF) is answered as the VT-d spec says (4.2.3): R = 0,
 * W = 1, U = 1, untranslated.  QEMU 11.1 differs here: it records fault
 * 0x87 and answers an error.  No QEMU device issues translation requests,
 * so the difference is not observable against it; it is written down in
 * ats.test.ts.
 *
 * Device-TLB invalidations reach the functions registered through
 * `AtsPort` (PciDevice.atsPort) whose current source ID matches; each
 * answers done / timeout / error, which the queue turns into nothing / ITE
 * / ICE.  The range of a descriptor with the S bit is decoded as PCIe ATS
 * invalidations are: the number of trailing 1 bits of address bits 63:12
 * gives the size, 8 KiB << count, and the address is aligned down to it.
 */
import { MSI_ADDRESS_BASE, MSI_ADDRESS_LAST } from '../../core/irq.js';
import type { Iova } from '../../memory/address.js';
import {
  AtsStatus,
  DmaAccess,
  DmaRequestKind,
  IommuPerm,
  NO_PASID,
  type AtsCompletion,
  type AtsEndpoint,
  type AtsInvalidationResult,
  type DmaRequester,
  type IotlbEntry,
} from '../../memory/iommu.js';
import { VtdFault } from './fault-reasons.js';
import type { PageGroupResponse } from './requests.js';
import { sourceId } from './translator.js';

const PAGE_4K = 0x1000;
const PAGE_MASK_4K = PAGE_4K - 1;
/** Addresses are 64-bit: a range of 2^64 covers everything. */
const ADDRESS_SPAN = 2 ** 64;
/** Page-number bits of a 64-bit address (63:12). */
const PAGE_NUMBER_BITS = 52;

/** Fault reasons that mean "not mapped here": the completion grants nothing but succeeds. */
const NOT_PRESENT = new Set<number>([
  VtdFault.READ,
  VtdFault.WRITE,
  VtdFault.ADDR_BEYOND_MGAW,
  VtdFault.FS_PAGING_ENTRY_P,
  VtdFault.FS_PAGING_ENTRY_US,
  VtdFault.FS_NON_CANONICAL,
  VtdFault.SM_WRITE,
]);

/** Fault reasons of a missing context or PASID entry (and 0: no PASID support): Unsupported Request. */
const UNSUPPORTED = new Set<number>([
  0,
  VtdFault.ROOT_ENTRY_P,
  VtdFault.CONTEXT_ENTRY_P,
  VtdFault.PASID_DIR_ENTRY_P,
  VtdFault.PASID_ENTRY_P,
]);

/** A write the tables refuse while allowing the read (the request is retried as a read). */
function isWriteDenial(reason: number): boolean {
  return reason === VtdFault.WRITE || reason === VtdFault.SM_WRITE;
}

/** The status a refused translation request completes with. */
export function atsStatusOf(reason: number): AtsStatus {
  if (NOT_PRESENT.has(reason)) return AtsStatus.Success;
  if (UNSUPPORTED.has(reason)) return AtsStatus.UnsupportedRequest;
  return AtsStatus.CompleterAbort;
}

/** What a translation request translates through: one requester's translator for one PASID. */
export interface AtsTranslator {
  readonly pasid: number;
  translate(iova: Iova, access: DmaAccess, out: IotlbEntry, kind?: DmaRequestKind): boolean;
}

function pageOf(iova: number): number {
  return iova - (iova % PAGE_4K);
}

/** Completion of the page holding `iova` with the given status and no access. */
function noAccess(iova: number, status: AtsStatus, out: AtsCompletion): void {
  out.status = status;
  out.iova = pageOf(iova);
  out.translated = 0;
  out.addrMask = PAGE_MASK_4K;
  out.read = false;
  out.write = false;
  out.untranslatedOnly = false;
}

/** A translation request to a unit without device-TLBs (ECAP.DT clear): Unsupported Request. */
export function answerUnsupported(iova: number, out: AtsCompletion): void {
  noAccess(iova, AtsStatus.UnsupportedRequest, out);
}

/**
 * Answers an ATS translation request for the page holding `iova` through
 * `t` (see the module comment); `scratch` is a caller-owned entry.
 */
export function answerTranslationRequest(t: AtsTranslator, iova: Iova, noWrite: boolean, out: AtsCompletion, scratch: IotlbEntry): void {
  if (t.pasid === NO_PASID && iova >= MSI_ADDRESS_BASE && iova <= MSI_ADDRESS_LAST) {
    noAccess(iova, AtsStatus.Success, out);
    out.translated = out.iova;
    out.write = true;
    out.untranslatedOnly = true;
    return;
  }
  let ok = t.translate(iova, noWrite ? DmaAccess.Read : DmaAccess.Write, scratch, DmaRequestKind.TranslationRequest);
  if (!ok && !noWrite && isWriteDenial(scratch.fault)) {
    ok = t.translate(iova, DmaAccess.Read, scratch, DmaRequestKind.TranslationRequest);
  }
  if (!ok) {
    noAccess(iova, atsStatusOf(scratch.fault), out);
    return;
  }
  out.status = AtsStatus.Success;
  out.iova = scratch.iova;
  out.translated = scratch.translated;
  out.addrMask = scratch.addrMask;
  out.read = (scratch.perm & IommuPerm.Read) !== 0;
  out.write = !noWrite && (scratch.perm & IommuPerm.Write) !== 0;
  out.untranslatedOnly = false;
}

/**
 * The range a device-TLB invalidation covers: one 4 KiB page, or with the S
 * bit 8 KiB << (trailing 1 bits of address bits 63:12), aligned down (2^64:
 * everything).
 */
export function deviceTlbRange(addr: number, sizeBit: boolean): { readonly addr: number; readonly size: number } {
  const page = pageOf(addr);
  if (!sizeBit) return { addr: page, size: PAGE_4K };
  let pfn = page / PAGE_4K;
  let ones = 0;
  while (ones < PAGE_NUMBER_BITS && pfn % 2 === 1) {
    ones++;
    pfn = (pfn - 1) / 2;
  }
  const size = 2 * PAGE_4K * 2 ** ones;
  if (size >= ADDRESS_SPAN) return { addr: 0, size: ADDRESS_SPAN };
  return { addr: page - (page % size), size };
}

/**
 * The functions that registered for ATS / PRI with the unit, by requester.
 * Cost bound (issue 13): a device-TLB invalidation or a page-group response
 * visits each registered function once (at most one per plugged function),
 * and each function's ATC bounds its own work (sva-testdev: 64 entries).
 */
export class AtsEndpoints {
  private readonly byKey = new Map<object, { readonly requester: DmaRequester; readonly endpoint: AtsEndpoint }>();

  /** Registers `endpoint` as `requester`'s function (replacing an earlier one). */
  register(requester: DmaRequester, endpoint: AtsEndpoint): void {
    this.byKey.set(requester.key, { requester, endpoint });
  }

  /**
   * Sends a device-TLB invalidation to every function whose source ID is
   * `sid` now: `pasid` NO_PASID (descriptor 3), a PASID or ALL_PASIDS
   * (descriptor 8).  The worst answer wins (timeout over error over done);
   * no function at that SID: done, as QEMU completes it.
   */
  invalidate(sid: number, pasid: number, addr: number, size: number): AtsInvalidationResult {
    let result: AtsInvalidationResult = 'done';
    for (const { requester, endpoint } of this.byKey.values()) {
      if (sourceId(requester) !== sid) continue;
      const r = endpoint.invalidateAtc(pasid, addr, size);
      if (r === 'timeout' || (r === 'error' && result === 'done')) result = r;
    }
    return result;
  }

  /** Delivers a page-group response to the function(s) at its RID (QEMU's PRI notifier). */
  respond(resp: PageGroupResponse): void {
    for (const { requester, endpoint } of this.byKey.values()) {
      if (sourceId(requester) !== resp.rid) continue;
      endpoint.pageGroupResponse(resp.pasidPresent ? resp.pasid : NO_PASID, resp.prgi, resp.code);
    }
  }
}
