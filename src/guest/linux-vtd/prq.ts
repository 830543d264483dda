/**
 * The page-request queue and its handler as Linux runs them
 * (drivers/iommu/intel/prq.c: intel_iommu_enable_prq, prq_event_thread,
 * intel_iommu_page_response, intel_iommu_drain_pasid_prq; drivers/iommu/
 * io-pgfault.c's groups; VT-d spec 3.x 7.5; facts only): requests read
 * from PQH to PQT, malformed ones answered Invalid Request at once,
 * complete groups served through handle_mm_fault and answered with one
 * page-group response (descriptor 9) each, PRS.PRO recovery, and the
 * drain an unbind runs.  Every register and descriptor it touches is
 * logged.
 */
import { PAGE_SIZE } from '../alloc.js';
import type { ProcessMm } from './process-mm.js';
import {
  DEVTLB_ALL_ORDER, ResponseCode, devTlbPasidDesc, fenceWaitDesc, pageResponseDesc, piotlbDesc, submitLogged,
} from './sva-descriptors.js';
import { atsQdep, type SvaDevice } from './sva.js';
import { FLPT_DEFAULT_DID, type VtdUnit } from './unit.js';

const QWORD = 8;

/** Page-request registers (VT-d 11.4.11) from the unit's base. */
export const PrqReg = { PQH: 0xc0, PQT: 0xc8, PQA: 0xd0, PRS: 0xdc, PECTL: 0xe0, PEDATA: 0xe4, PEADDR: 0xe8, PEUADDR: 0xec } as const;
/** PRS bits (both write-1-to-clear): pending page request, overflow. */
export const PrsBit = { PPR: 1, PRO: 2 } as const;
/** Linux PRQ_ORDER: 2^4 pages, PQS 4 = 2^(4+7) descriptors of 32 bytes. */
export const PRQ_ORDER = 4;
const PRQ_BYTES = PAGE_SIZE * 2 ** PRQ_ORDER;
/** Bytes of one page request descriptor. */
const PR_DESC_SIZE = 32;
/** Linux PRQ_RING_MASK: PQH/PQT offsets within the ring, 32-byte aligned. */
const PRQ_RING_MASK = PRQ_BYTES - PR_DESC_SIZE;
/** Linux PRQ_DEPTH: descriptors in the ring (the PRI allocation asked for). */
export const PRQ_DEPTH = PRQ_BYTES / PR_DESC_SIZE;

/** Page request descriptor fields (spec 7.5.1.1; Linux struct page_req_dsc). */
export const PrDescBits = {
  PP: 1n << 8n, RID_SHIFT: 16n, RID_MASK: 0xffffn, PASID_SHIFT: 32n, PASID_MASK: 0xf_ffffn,
  EXE: 1n << 52n, PMR: 1n << 53n,
  RD: 1n, WR: 2n, LPIG: 4n, PRGI_SHIFT: 3n, PRGI_MASK: 0x1ffn, ADDR_MASK: ~0xfffn,
} as const;

/** One decoded page request. */
export interface PageRequestDesc {
  readonly index: number;
  readonly rid: number;
  readonly pasid: number | undefined;
  /** Page address (exact below 2^53; meaningful when `canonical` and in the lower half). */
  readonly addr: number;
  /** Bits 63:47 of the address all equal (x86 4-level canonical form). */
  readonly canonical: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly exec: boolean;
  readonly priv: boolean;
  readonly lpig: boolean;
  readonly prgi: number;
  readonly q0: bigint;
  readonly q1: bigint;
}

/** Decodes a page request descriptor from its two qwords. */
export function decodePageRequest(index: number, q0: bigint, q1: bigint): PageRequestDesc {
  return {
    index,
    rid: Number((q0 >> PrDescBits.RID_SHIFT) & PrDescBits.RID_MASK),
    pasid: q0 & PrDescBits.PP ? Number((q0 >> PrDescBits.PASID_SHIFT) & PrDescBits.PASID_MASK) : undefined,
    addr: Number(q1 & PrDescBits.ADDR_MASK),
    canonical: canonical48(q1 & PrDescBits.ADDR_MASK),
    read: (q1 & PrDescBits.RD) !== 0n,
    write: (q1 & PrDescBits.WR) !== 0n,
    exec: (q0 & PrDescBits.EXE) !== 0n,
    priv: (q0 & PrDescBits.PMR) !== 0n,
    lpig: (q1 & PrDescBits.LPIG) !== 0n,
    prgi: Number((q1 >> PrDescBits.PRGI_SHIFT) & PrDescBits.PRGI_MASK),
    q0,
    q1,
  };
}

/** A page-group response the handler sent. */
export interface SentResponse {
  readonly rid: number;
  readonly pasid: number | undefined;
  readonly prgi: number;
  readonly code: number;
}

/** What one run of the handler did. */
export interface PrqRun {
  readonly requests: PageRequestDesc[];
  readonly responses: SentResponse[];
  /** PRS.PRO was found set (and cleared if the queue had drained). */
  readonly overflow: boolean;
}

/** Where the handler finds the address space of a (RID, PASID). */
export type MmResolver = (rid: number, pasid: number) => ProcessMm | undefined;

/** Bits 63:47 of a 48-bit canonical address: all clear or all set. */
const CANONICAL_HIGH_SHIFT = 47n;
const CANONICAL_HIGH_ONES = (1n << 17n) - 1n;

/** The x86 canonical test of a 64-bit address with 48-bit virtual addresses (Linux is_canonical_address). */
function canonical48(addr: bigint): boolean {
  const high = addr >> CANONICAL_HIGH_SHIFT;
  return high === 0n || high === CANONICAL_HIGH_ONES;
}

/** The unit's page-request queue and its handler (Linux prq.c + io-pgfault.c). */
export class PageRequestQueue {
  /** Guest-physical base of the ring. */
  base = 0;
  readonly log: string[] = [];
  /** Requests of groups whose last request has not arrived (iopf partial list), by RID/PASID/PRGI. */
  private readonly partial = new Map<string, PageRequestDesc[]>();

  constructor(readonly unit: VtdUnit) {}

  private reg(off: number): number {
    return this.unit.base + off;
  }

  /**
   * intel_iommu_enable_prq: ring pages, the event MSI (PEDATA, PEADDR,
   * PEUADDR, then PECTL 0 to unmask, as the irq core does), then PQH = PQT = 0
   * and PQA = base | PRQ_ORDER.
   */
  async enable(vector: number, address: number): Promise<void> {
    const p = this.unit.p;
    this.base = await this.unit.alloc.alloc(PRQ_BYTES, PRQ_BYTES);
    await p.write(this.reg(PrqReg.PEDATA), 4, vector);
    await p.write(this.reg(PrqReg.PEADDR), 4, address);
    await p.write(this.reg(PrqReg.PEUADDR), 4, 0);
    await p.write(this.reg(PrqReg.PECTL), 4, 0);
    await p.write64(this.reg(PrqReg.PQH), 0n);
    await p.write64(this.reg(PrqReg.PQT), 0n);
    const pqa = BigInt(this.base) | BigInt(PRQ_ORDER);
    await p.write64(this.reg(PrqReg.PQA), pqa);
    this.log.push(`unit 0x${this.unit.base.toString(16)}: page-request queue at 0x${this.base.toString(16)} (${PRQ_DEPTH} descriptors): ` +
      `PEDATA 0x${vector.toString(16)} PEADDR 0x${address.toString(16)} PECTL 0 (unmasked), PQH 0 PQT 0 PQA 0x${pqa.toString(16)}`);
  }

  /** intel_iommu_finish_prq: PQH, PQT, PQA cleared. */
  async disable(): Promise<void> {
    const p = this.unit.p;
    await p.write64(this.reg(PrqReg.PQH), 0n);
    await p.write64(this.reg(PrqReg.PQT), 0n);
    await p.write64(this.reg(PrqReg.PQA), 0n);
    this.log.push(`unit 0x${this.unit.base.toString(16)}: page-request queue disabled (PQH, PQT, PQA 0)`);
  }

  /** PRS (PPR bit 0, PRO bit 1). */
  status(): Promise<number> {
    return this.unit.p.read(this.reg(PrqReg.PRS), 4);
  }

  /**
   * prq_event_thread: clear PRS.PPR, read PQT and PQH, decode each request
   * and hand it to iopf (malformed ones answered Invalid Request at once),
   * PQH = PQT, PRO recovery; then the iopf work runs: each complete group
   * is served through `resolve` (handle_mm_fault per request, errors sticky)
   * and answered with one page-group response.
   */
  async handle(resolve: MmResolver): Promise<PrqRun> {
    const p = this.unit.p;
    const requests: PageRequestDesc[] = [];
    const responses: SentResponse[] = [];
    const groups: PageRequestDesc[][] = [];
    await p.write(this.reg(PrqReg.PRS), 4, PrsBit.PPR);
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    let head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK;
    this.log.push(`page-request event: PRS.PPR cleared, PQH 0x${head.toString(16)} PQT 0x${tail.toString(16)}`);
    while (head !== tail) {
      const at = this.base + head;
      const req = decodePageRequest(head / PR_DESC_SIZE, await p.read64(at), await p.read64(at + QWORD));
      requests.push(req);
      this.log.push(`  page request ${req.index}: ${describeRequest(req)} (qw0 0x${req.q0.toString(16)} qw1 0x${req.q1.toString(16)})`);
      const bad = badRequest(req);
      if (bad) {
        this.log.push(`  ${bad}: Invalid Request`);
        if (req.lpig) responses.push(await this.respond(req, ResponseCode.InvalidRequest));
      } else if (req.lpig && !req.read && !req.write) {
        this.log.push('  stop marker: dropped, no response');
      } else {
        const key = `${req.rid}:${req.pasid ?? -1}:${req.prgi}`;
        const list = this.partial.get(key) ?? [];
        list.push(req);
        if (req.lpig) { this.partial.delete(key); groups.push(list); } else this.partial.set(key, list);
      }
      head = (head + PR_DESC_SIZE) & PRQ_RING_MASK;
    }
    await p.write64(this.reg(PrqReg.PQH), BigInt(tail));
    this.log.push(`  PQH <- 0x${tail.toString(16)}`);
    const overflow = await this.recoverOverflow();
    for (const g of groups) responses.push(await this.serveGroup(g, resolve));
    return { requests, responses, overflow };
  }

  /** PRS.PRO set: clear it once the queue is empty (PQH == PQT), dropping partial groups (iopf_queue_discard_partial). */
  private async recoverOverflow(): Promise<boolean> {
    const p = this.unit.p;
    if (!((await this.status()) & PrsBit.PRO)) return false;
    const head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK;
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    this.log.push(`  PRQ overflow detected (PRS.PRO)`);
    if (head === tail) {
      this.partial.clear();
      await p.write(this.reg(PrqReg.PRS), 4, PrsBit.PRO);
      this.log.push('  PRQ overflow cleared (PRS.PRO written 1)');
    }
    return true;
  }

  /** iopf_handler: every request of the group through handle_mm_fault (errors sticky), one response. */
  private async serveGroup(group: readonly PageRequestDesc[], resolve: MmResolver): Promise<SentResponse> {
    const last = group[group.length - 1]!;
    let code: number = ResponseCode.Success;
    for (const req of group) {
      if (code !== ResponseCode.Success) break;
      const mm = req.pasid === undefined ? undefined : resolve(req.rid, req.pasid);
      if (!mm) {
        this.log.push(`  iopf: no SVA domain for RID 0x${req.rid.toString(16)} PASID ${req.pasid ?? '-'}`);
        code = ResponseCode.InvalidRequest;
        continue;
      }
      const r = await mm.fault(req.addr, req.write);
      this.log.push(...mm.log.splice(0).map((l) => `  ${l}`));
      if (r !== 'success') code = ResponseCode.InvalidRequest;
    }
    return this.respond(last, code);
  }

  /** Queues the group's response; a unit refusing it (IQE: QEMU refuses PP=0) is logged, as Linux's qi_submit_sync returns -EINVAL. */
  private async respond(req: PageRequestDesc, code: number): Promise<SentResponse> {
    try {
      await submitLogged(this.unit, [pageResponseDesc(req.rid, req.pasid, req.prgi, code, true)], this.log);
    } catch (e) {
      this.log.push(`  page-group response refused: ${(e as Error).message}`);
    }
    return { rid: req.rid, pasid: req.pasid, prgi: req.prgi, code };
  }

  /**
   * intel_iommu_drain_pasid_prq: with nothing of the device's PASID left in
   * the ring, one batch of a fenced wait, PASID-IOTLB (all of the PASID,
   * with the DID of the device's DMA domain as Linux takes it) and
   * device-TLB (whole range), submitted with PD on the queue's own status
   * wait (QI_OPT_WAIT_DRAIN), retried while PRS.PRO is set.  A unit without
   * ECAP.PDS gets the batch without PD (Linux never drains there: it does
   * not use PRI on such a unit).
   */
  async drain(sva: SvaDevice, pasid: number, log: string[]): Promise<void> {
    const unit = this.unit;
    if (await this.pendingFor(sva.sid, pasid)) {
      // Linux waits for the handler thread; the PASID has no address space any more, so they are answered Invalid.
      log.push(`drain: requests of PASID ${pasid} still queued: handler run first`);
      await this.handle(() => undefined);
      log.push(...this.log.splice(0));
    }
    const pds = unit.ecapf('PDS') === 1;
    const did = sva.dev.domain ? sva.dev.domain.did(unit) : FLPT_DEFAULT_DID;
    const batch = [fenceWaitDesc(), piotlbDesc(did, pasid)];
    if (sva.pcie.atsEnabled) batch.push(devTlbPasidDesc(sva.sid, pasid, atsQdep(sva), 0, DEVTLB_ALL_ORDER));
    log.push(`drain page requests of PASID ${pasid}${pds ? ' (PD on the status wait)' : ' (no ECAP.PDS: without PD)'}`);
    for (let tries = 0; tries < DRAIN_RETRIES; tries++) {
      await submitLogged(unit, batch, log, { drainPageRequests: pds });
      if (!((await this.status()) & PrsBit.PRO)) return;
      log.push('  PRS.PRO set after the drain: retrying');
      await this.recoverOverflow();
    }
  }

  /** True when a request of (`rid`, `pasid`) sits between PQH and PQT. */
  private async pendingFor(rid: number, pasid: number): Promise<boolean> {
    const p = this.unit.p;
    if (!this.base) return false;
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    for (let head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK; head !== tail; head = (head + PR_DESC_SIZE) & PRQ_RING_MASK) {
      const req = decodePageRequest(head / PR_DESC_SIZE, await p.read64(this.base + head), await p.read64(this.base + head + QWORD));
      if (req.rid === rid && req.pasid === pasid) return true;
    }
    return false;
  }
}

/** Drain attempts while overflow persists. */
const DRAIN_RETRIES = 4;

/** Linux's reasons to answer a request Invalid without iopf (prq_event_thread). */
function badRequest(req: PageRequestDesc): string | undefined {
  if (!req.canonical) return 'address is not canonical';
  if (req.priv && (req.read || req.write)) return 'page request in privileged mode';
  if (req.exec && req.read) return 'execution request not supported';
  return undefined;
}

/** "RID 0x10 PASID 1 addr 0x... R W LPIG PRGI 3". */
export function describeRequest(req: PageRequestDesc): string {
  const acc = `${req.read ? 'R' : ''}${req.write ? 'W' : ''}${req.exec ? 'X' : ''}${req.priv ? ' PMR' : ''}` || '-';
  return `RID 0x${req.rid.toString(16)} PASID ${req.pasid ?? '-'} addr 0x${req.addr.toString(16)} ${acc}${req.lpig ? ' LPIG' : ''} PRGI ${req.prgi}`;
}
