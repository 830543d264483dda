/**
 * The page-request queue (VT-d spec 7.5.1 "Page Request Queue" and 11.4.11
 * "Page Request Registers"), the IOMMU half of PCIe PRI, as QEMU 11.1's
 * vtd_pri_request_page implements it.  Only with ECAP.PRS (svm=on).
 *
 * The queue has no state of its own: everything lives in the registers,
 * which reset with the register file.
 *
 *   PQA  base 63:12, PQS 2:0: 2^(PQS+7) descriptors of 32 bytes
 *   PQH  read offset (bits 18:5), written by software as it consumes
 *   PQT  write offset, advanced by the hardware (QEMU stores it raw: a
 *        descriptor goes to PQA.base + PQT, the new tail wraps at the size)
 *   PRS  PPR (a descriptor was written), PRO (overflow), both W1C
 *   PECTL / PEDATA / PEADDR  the page-request event (IM / IP as FECTL)
 *
 * A page request descriptor (spec 7.5.1.1), two qwords then 128 bits of
 * private data (written as 0 here; QEMU leaves them uninitialised):
 *
 *   qw0:  7:0 type (1)   8 PP   31:16 RID   51:32 PASID   52 ERR   53 PMR
 *   qw1:  0 RDR   1 WRR   2 LPIG   11:3 PRGI   63:12 page address
 *
 * Order of checks (QEMU): an execute request without read is refused; with
 * PRO already set a request is dropped with no status and no event; a full
 * queue (new tail == PQH) sets PRO and raises the event; else the
 * descriptor is written, PQT advances, and PPR is set (with the event) if it
 * was clear.  The event is raised only when neither PPR nor PRO was set
 * before (spec 7.5.1.2), and goes to PEADDR/PEDATA only: QEMU ignores
 * PEUADDR, as vtd_generate_interrupt reads the 32-bit address register.
 *
 * Deliberately as QEMU, not as the spec: ERR (bit 52) is never set (QEMU
 * defines the field but does not fill it), and an overflowed request with
 * LPIG gets no automatic page-group response from here (the caller sees
 * 'overflow' and decides).  QEMU refuses requests without a PASID and
 * checks the context's PRE bit before reaching the queue: that is the
 * caller's policy; the queue encodes PP = 0 for a request without one.
 */
import { MemTx } from '../../memory/address-space.js';
import { EventCtl, Pqa, Prs, Reg } from './reg-layout.js';
import type { PageRequestUnit } from './roles.js';

/** One page request from a device (PCIe Page Request Message). */
export interface PageRequest {
  /** Requester ID (bus << 8 | devfn). */
  readonly sid: number;
  /** PASID of the request; absent: no PASID prefix (PP = 0). */
  readonly pasid?: number;
  /** Privileged-mode access requested (PMR). */
  readonly privileged?: boolean;
  /** Execute access requested (valid with read only). */
  readonly execute?: boolean;
  readonly read: boolean;
  readonly write: boolean;
  /** Page address (bits 11:0 ignored); below 2^53. */
  readonly addr: number;
  /** Page request group index, 9 bits. */
  readonly prgi: number;
  /** Last page in group (LPIG). */
  readonly last: boolean;
}

/**
 * What became of a page request:
 *   queued        written to the queue
 *   overflow      not written: the queue was full (PRO now set) or PRO was set
 *   invalid       execute without read, or refused by `beforeWrite` (QEMU -EINVAL): nothing happens
 *   write-failed  PQA + PQT is not writable memory (QEMU -EIO): nothing changes
 */
export type PageRequestOutcome = 'queued' | 'overflow' | 'invalid' | 'write-failed';

/** Page request descriptor fields (spec 7.5.1.1), per 32-bit half. */
export const PrDesc = {
  /** Size of one descriptor in bytes. */
  SIZE: 32,
  /** qw0 bits 7:0: the page request descriptor type. */
  TYPE: 0x1,
  /** qw0 bit 8: PASID present. */
  PP: 1 << 8,
  /** qw0 bits 31:16: requester ID. */
  RID_SHIFT: 16,
  RID_MASK: 0xffff,
  /** qw0 bits 51:32 (high dword 19:0): PASID. */
  PASID_MASK: 0xf_ffff,
  /** qw0 bit 52 (high dword bit 20): execute requested (never set, as QEMU). */
  ERR: 1 << 20,
  /** qw0 bit 53 (high dword bit 21): privileged mode requested. */
  PMR: 1 << 21,
  /** qw1 bit 0: read requested. */
  RDR: 1 << 0,
  /** qw1 bit 1: write requested. */
  WRR: 1 << 1,
  /** qw1 bit 2: last page in group. */
  LPIG: 1 << 2,
  /** qw1 bits 11:3: page request group index. */
  PRGI_SHIFT: 3,
  PRGI_MASK: 0x1ff,
  /** qw1 bits 63:12: the page address (low dword part). */
  ADDR_LO_MASK: 0xffff_f000,
} as const;

/** Descriptors in a queue of PQS 0 (one 4 KiB page): 2^(PQS + 7). */
const MIN_ENTRIES_SHIFT = 7;
const PAGE_MASK_LO = 0xffff_f000;
const TWO_32 = 2 ** 32;
const DW = 4;
const TRACE_REQUEST = 'vtd_page_request';
const TRACE_IRQ = 'vtd_irq_generate';

/** The page-request queue of one unit. */
export class PageRequestQueue {
  private readonly desc = new Uint8Array(PrDesc.SIZE);
  private readonly view = new DataView(this.desc.buffer);

  constructor(private readonly u: PageRequestUnit) {}

  /** Queue size in bytes from PQA.PQS. */
  sizeBytes(): number {
    return PrDesc.SIZE << ((this.u.regs.get32(Reg.PQA) & Pqa.PQS_MASK) + MIN_ENTRIES_SHIFT);
  }

  /**
   * A device's page request (QEMU vtd_pri_request_page after its PASID and
   * PRE checks).  `beforeWrite`, when given, runs once the queue has room
   * and before the descriptor is written (the implicit invalidation, pri.ts);
   * false refuses the request ('invalid') with nothing written.
   */
  submit(req: PageRequest, beforeWrite?: () => boolean): PageRequestOutcome {
    const regs = this.u.regs;
    if (req.execute === true && !req.read) return this.traced(req, 'invalid');
    const prs = regs.get32(Reg.PRS);
    if ((prs & Prs.PRO) !== 0) return this.traced(req, 'overflow');
    const tail = regs.get32(Reg.PQT);
    const next = (tail + PrDesc.SIZE) % this.sizeBytes();
    if (next === regs.get32(Reg.PQH)) {
      regs.setClear32(Reg.PRS, Prs.PRO, 0);
      this.raiseEvent(prs);
      return this.traced(req, 'overflow');
    }
    if (beforeWrite !== undefined && !beforeWrite()) return this.traced(req, 'invalid');
    const base = ((regs.get32(Reg.PQA) & PAGE_MASK_LO) >>> 0) + regs.get32(Reg.PQA + DW) * TWO_32;
    this.encode(req);
    if (this.u.memory.writeBytes(base + tail, this.desc) !== MemTx.Ok) return this.traced(req, 'write-failed');
    regs.set64(Reg.PQT, next, 0);
    // PRS read again after the write, as QEMU does. With PPR (or PRO) already set, setting PPR
    // changes nothing and raiseEvent sends nothing.
    const now = regs.get32(Reg.PRS);
    regs.setClear32(Reg.PRS, Prs.PPR, 0);
    this.raiseEvent(now);
    return this.traced(req, 'queued');
  }

  /** PRS written (W1C applied): with PPR and PRO both clear, a deferred event is dropped. */
  onPrsWrite(): void {
    if ((this.u.regs.get32(Reg.PRS) & (Prs.PPR | Prs.PRO)) === 0) this.u.regs.setClear32(Reg.PECTL, 0, EventCtl.IP);
  }

  /** PECTL written: unmasking with IP set sends the deferred event and clears IP. */
  onPectlWrite(): void {
    const v = this.u.regs.get32(Reg.PECTL);
    if ((v & EventCtl.IP) !== 0 && (v & EventCtl.IM) === 0) this.deliver();
  }

  /** The page-request event given PRS before the update (spec 7.5.1.2, QEMU vtd_generate_page_request_event). */
  private raiseEvent(prePrs: number): void {
    if ((prePrs & (Prs.PPR | Prs.PRO)) !== 0) return;
    this.u.regs.setClear32(Reg.PECTL, EventCtl.IP, 0);
    if ((this.u.regs.get32(Reg.PECTL) & EventCtl.IM) === 0) this.deliver();
  }

  /** Sends the event MSI (PEADDR / PEDATA, straight to the APIC bus) and clears IP. */
  private deliver(): void {
    const regs = this.u.regs;
    regs.setClear32(Reg.PECTL, 0, EventCtl.IP);
    const addr = regs.get32(Reg.PEADDR);
    const data = regs.get32(Reg.PEDATA);
    if (this.u.tracer.enabled(TRACE_IRQ)) this.u.tracer.trace(TRACE_IRQ, { addr, data });
    this.u.msi.deliverMsi(addr, data, { kind: 'iommu' });
  }

  /** Fills the descriptor buffer for `req` (bytes 16..31 stay 0). */
  private encode(req: PageRequest): void {
    const pasid = req.pasid;
    const lo0 = PrDesc.TYPE | (pasid !== undefined ? PrDesc.PP : 0) | ((req.sid & PrDesc.RID_MASK) << PrDesc.RID_SHIFT);
    const hi0 = ((pasid ?? 0) & PrDesc.PASID_MASK) | (req.privileged === true ? PrDesc.PMR : 0);
    const lo1 =
      (req.read ? PrDesc.RDR : 0) |
      (req.write ? PrDesc.WRR : 0) |
      (req.last ? PrDesc.LPIG : 0) |
      ((req.prgi & PrDesc.PRGI_MASK) << PrDesc.PRGI_SHIFT) |
      (req.addr & PrDesc.ADDR_LO_MASK);
    const hi1 = Math.floor(req.addr / TWO_32);
    this.view.setUint32(0, lo0 >>> 0, true);
    this.view.setUint32(4, hi0 >>> 0, true);
    this.view.setUint32(8, lo1 >>> 0, true);
    this.view.setUint32(12, hi1 >>> 0, true);
  }

  private traced(req: PageRequest, outcome: PageRequestOutcome): PageRequestOutcome {
    if (this.u.tracer.enabled(TRACE_REQUEST)) {
      this.u.tracer.trace(TRACE_REQUEST, { sid: req.sid, pasid: req.pasid ?? -1, addr: req.addr, prgi: req.prgi, outcome });
    }
    return outcome;
  }
}
