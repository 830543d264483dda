/**
 * The queued-invalidation descriptors of shared virtual addressing as
 * Linux builds them (drivers/iommu/intel/{dmar.c,cache.c,prq.c}: qi_desc_piotlb,
 * qi_desc_dev_iotlb_pasid, pasid_cache_invalidation_with_pasid,
 * intel_iommu_page_response; VT-d spec 3.x 6.5.2; facts only): PASID-based
 * IOTLB (6), PASID-cache (7), PASID-based device-TLB (8, S-bit size),
 * page-group response (9) and the drain's fenced wait (5), each with a
 * readable name, and `submitLogged`, which queues a batch (its status wait
 * with PD when the batch drains page requests) and logs every descriptor
 * word it wrote.
 */
import { PAGE_SIZE } from '../alloc.js';
import { QiDesc, PcGran, PiotlbGran, type SubmitOptions } from './invalidation.js';
import type { VtdUnit } from './unit.js';

const PAGE_SHIFT = 12;
/** Bits 63:12 of an address: the 4 KiB page. */
const PAGE_BASE_MASK = ~0xfffn;

/** One queued-invalidation descriptor (the two low qwords; 256-bit ones add zeros) and its name for logs. */
export interface QiDescriptor {
  readonly q0: bigint;
  readonly q1: bigint;
  readonly what: string;
}

/** Descriptor 9 (page-group response) and wait-descriptor fields not in invalidation.ts. */
export const PgrpDesc = {
  TYPE: 9n,
  /** qw0: PASID present 4, response code 15:12, RID 31:16, PASID 51:32. */
  PP: 1n << 4n,
  RC_SHIFT: 12n,
  RID_SHIFT: 16n,
  PASID_SHIFT: 32n,
  /** qw1: LPIG 2, PRGI 11:3. */
  LPIG: 1n << 2n,
  PRGI_SHIFT: 3n,
} as const;
/** Linux QI_DONE: the status a wait writes. */
const QI_DONE = 2n;
/** Page-group response codes (PCIe §10.4.2). */
export const ResponseCode = { Success: 0, InvalidRequest: 1, Failure: 0xf } as const;
/** Largest device-TLB size order: 2^52 pages covers the 64-bit space (Linux MAX_AGAW_PFN_WIDTH). */
export const DEVTLB_ALL_ORDER = 64 - PAGE_SHIFT;

/** Descriptor 6 for `pages` pages at `addr` (qi_desc_piotlb; `pages` undefined: the whole PASID). */
export function piotlbDesc(did: number, pasid: number, addr?: number, pages?: number, ih = false): QiDescriptor {
  const base = QiDesc.PASID_IOTLB | (BigInt(did) << QiDesc.DID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT);
  if (addr === undefined || pages === undefined) return { q0: base | (PiotlbGran.PASID << QiDesc.GRAN_SHIFT), q1: 0n, what: `PASID-IOTLB DID ${did} PASID ${pasid} (all)` };
  const am = sizeOrder(pages);
  const aligned = addr - (addr % (PAGE_SIZE * 2 ** am));
  return {
    q0: base | (PiotlbGran.PAGE << QiDesc.GRAN_SHIFT),
    q1: BigInt(aligned) | (ih ? QiDesc.IH : 0n) | BigInt(am),
    what: `PASID-IOTLB DID ${did} PASID ${pasid} page-selective 0x${aligned.toString(16)} AM ${am}${ih ? ' IH' : ''}`,
  };
}

/** Descriptor 7, PASID-selective (pasid_cache_invalidation_with_pasid). */
export function pasidCacheDesc(did: number, pasid: number): QiDescriptor {
  return {
    q0: QiDesc.PASID_CACHE | (PcGran.PASID << QiDesc.GRAN_SHIFT) | (BigInt(did) << QiDesc.DID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT),
    q1: 0n,
    what: `PASID-cache DID ${did} PASID ${pasid}`,
  };
}

/**
 * Descriptor 8 (qi_desc_dev_iotlb_pasid): `order` 0 is the page at `addr`;
 * n > 0 sets S and the address bits 12..12+n-2 so the lowest clear bit
 * (12+n-1) marks a 2^n-page range.  QDEP is the ATS queue depth mod 32;
 * PFSID stays 0 (meaningful only with ECAP.DIT).
 */
export function devTlbPasidDesc(sid: number, pasid: number, qdep: number, addr: number, order: number): QiDescriptor {
  const q0 = QiDesc.PASID_DEVTLB | (BigInt(sid) << QiDesc.PDEVTLB_SID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT) |
    ((BigInt(qdep) & QiDesc.PDEVTLB_QDEP_MASK) << QiDesc.PDEVTLB_QDEP_SHIFT);
  const page = BigInt(addr) & PAGE_BASE_MASK;
  const q1 = order > 0 ? page | QiDesc.PDEVTLB_S | (((1n << BigInt(order - 1)) - 1n) << BigInt(PAGE_SHIFT)) : page;
  const size = order >= DEVTLB_ALL_ORDER ? 'all' : `${2 ** order} page${order ? 's' : ''} at 0x${addr.toString(16)}`;
  return { q0, q1, what: `PASID device-TLB SID 0x${sid.toString(16)} PASID ${pasid} ${size}${order ? ' (S)' : ''}` };
}

/** Descriptor 9 (intel_iommu_page_response / handle_bad_prq_event). */
export function pageResponseDesc(rid: number, pasid: number | undefined, prgi: number, code: number, lpig: boolean): QiDescriptor {
  const q0 = PgrpDesc.TYPE | (BigInt(code) << PgrpDesc.RC_SHIFT) | (BigInt(rid) << PgrpDesc.RID_SHIFT) |
    (pasid !== undefined ? PgrpDesc.PP | (BigInt(pasid) << PgrpDesc.PASID_SHIFT) : 0n);
  const q1 = (BigInt(prgi) << PgrpDesc.PRGI_SHIFT) | (lpig ? PgrpDesc.LPIG : 0n);
  return { q0, q1, what: `page-group response RID 0x${rid.toString(16)}${pasid !== undefined ? ` PASID ${pasid}` : ''} PRGI ${prgi} ${responseName(code)}` };
}

/** A wait descriptor with fence and status data but no status write (the drain's first descriptor). */
export function fenceWaitDesc(): QiDescriptor {
  return { q0: QiDesc.WAIT | QiDesc.WAIT_FN | (QI_DONE << QiDesc.WAIT_STATUS_SHIFT), q1: 0n, what: 'wait FN' };
}

/** "Success" / "Invalid Request" / "Response Failure". */
export function responseName(code: number): string {
  return code === ResponseCode.Success ? 'Success' : code === ResponseCode.InvalidRequest ? 'Invalid Request' : code === ResponseCode.Failure ? 'Response Failure' : `code ${code}`;
}

/** log2 of `pages` rounded up to a power of two (Linux ilog2(__roundup_pow_of_two)). */
export function sizeOrder(pages: number): number {
  let order = 0;
  while (2 ** order < pages) order++;
  return order;
}

/** Descriptor type bits: 3:0 and, shifted down by 5, 6:4 (from qw0 bits 11:9). */
const DESC_TYPE_LO_MASK = 0xfn;
const DESC_TYPE_HI_SHIFT = 5n;
const DESC_TYPE_HI_MASK = 0x70n;

/** The type of a queued-invalidation descriptor from its qword 0. */
export function descType(q0: bigint): number {
  return Number((q0 & DESC_TYPE_LO_MASK) | ((q0 >> DESC_TYPE_HI_SHIFT) & DESC_TYPE_HI_MASK));
}

/** Submits a batch (plus the queue's own status wait, PD on it as `opts` says) and logs each descriptor with its qwords. */
export async function submitLogged(unit: VtdUnit, descs: readonly QiDescriptor[], log: string[], opts: SubmitOptions = {}): Promise<void> {
  for (const d of descs) log.push(`  QI desc ${descType(d.q0)}: ${d.what} (qw0 0x${d.q0.toString(16)} qw1 0x${d.q1.toString(16)})`);
  await unit.qi.submit(descs.map((d) => [d.q0, d.q1] as const), opts);
  log.push(`  QI wait (SW${opts.drainPageRequests ? ' PD' : ''}, status 2; qw0 0x${unit.qi.statusWait(opts).toString(16)}) completed`);
}
