/**
 * The queued invalidation engine (VT-d spec 6.5.2, registers 11.4.9),
 * behaving as QEMU's vtd_handle_gcmd_qie / vtd_handle_iqt_write /
 * vtd_fetch_inv_desc / vtd_process_inv_desc:
 *
 *  - GCMD.QIE enable latches IQA (base masked to the host address width,
 *    2^(QS+8) 128-bit entries) and processes at once when IQT is already
 *    non-zero (Windows does that).  IQA reads show the latched base plus the
 *    written QS and DW bits.  DW is stored and read back but honoured only
 *    with ECAP.SMTS: without scalable mode descriptors stay 128-bit (QEMU
 *    11.1; 7.2 read DW as 0).
 *  - Disable is accepted only when IQH == IQT and the last descriptor
 *    fetched was a wait descriptor; IQH then returns to 0.
 *  - An IQT write latches the tail and, when QI is on and FSTS.IQE is clear,
 *    processes descriptors synchronously up to the tail, updating IQH after
 *    each.  A tail beyond the queue, an unreadable descriptor, an unknown
 *    type, reserved bits or bad values set FSTS.IQE (fault event) and stop
 *    with IQH on the failing descriptor.  Clearing IQE does not restart the
 *    queue by itself: the next IQT write does (QEMU).
 *  - Wait descriptors: SW writes the status dword (failure = IQE), IF sets
 *    ICS.IWC (if clear) and IECTL.IP, and sends IEDATA to IEUADDR:IEADDR
 *    unless IECTL.IM; SW and IF may both be set (QEMU 7.2 asserts; we don't);
 *    FN alone is a no-op, as current QEMU.
 *
 * Beyond QEMU, behind properties: `x-iqer` fills IQER (0xB0: IQEI, ITESID,
 * ICESID); `x-devtlb-timeout-sid` / `x-devtlb-error-sid` make device-TLB
 * invalidations for one SID time out (FSTS.ITE; wait descriptors are then
 * aborted while ITE stays set) or complete in error (FSTS.ICE).
 */
import { MemTx } from '../../memory/address-space.js';
import { MAMV } from './caps.js';
import type { IommuCore } from './hooks.js';
import { DescType, decodeDescriptor, type InvDescriptor, type WaitDesc } from './descriptors.js';
import { Iqei, QueueErrors, iqeiFor, type QueueOptions } from './queue-errors.js';
import { EventCtl, Fsts, Iqa, Ics, Reg } from './reg-layout.js';
import { TWO_POW_32 } from '../../memory/address.js';

export { Iqei, Iqer, NO_SID, queueOptionsFrom, type QueueOptions } from './queue-errors.js';

/** Bytes per 128-bit descriptor; IQH/IQT hold index << 4. */
const DESC_SIZE = 16;
const QH_SHIFT = 4;
/** IQT/IQH index field (bits 18:4). */
const QT_INDEX_MASK = 0x7fff;
/** Base queue size: 2^(QS + 8) entries. */
const QS_BASE_SHIFT = 8;
/** Queue base: bits 31:12 of the low half. */
const IQA_BASE_LO_MASK = 0xffff_f000;
/**
 * IQA bits shown on reads next to the latched base: QS and DW.  DW reads back
 * as written even without scalable mode, where it has no effect (QEMU 11.1;
 * 7.2 read it as 0).
 */
const IQA_SHOWN_BITS = Iqa.QS_MASK | Iqa.DW;

/** What the queue needs besides the core: the interrupt entry cache of the IR module. */
export interface QueueClients {
  /** IEC invalidation: all entries, or 2^mask entries from index. */
  invalidateIec(global: boolean, index: number, mask: number): void;
}

/** The invalidation queue of one unit. */
export class InvalidationQueue {
  private enabled = false;
  private head = 0;
  private tail = 0;
  private size = 0;
  /** Latched queue base (at QIE enable), low/high halves. */
  private baseLo = 0;
  private baseHi = 0;
  private lastType = 0;
  private readonly buf = new Uint8Array(DESC_SIZE);
  private readonly view = new DataView(this.buf.buffer);
  private readonly status = new Uint8Array(4);
  private readonly statusView = new DataView(this.status.buffer);

  private readonly errors: QueueErrors;

  constructor(
    private readonly core: IommuCore,
    private readonly clients: QueueClients,
    opts: QueueOptions,
  ) {
    this.errors = new QueueErrors(core, opts);
  }

  /** Device reset: QI off, indexes and latched base cleared. */
  reset(): void {
    this.enabled = false;
    this.head = this.tail = this.size = 0;
    this.baseLo = this.baseHi = 0;
    this.lastType = 0;
  }

  /** Current head index (descriptors, not bytes). */
  get headIndex(): number {
    return this.head;
  }

  /** GCMD.QIE changed; returns whether the change is accepted. */
  onQieChange(enable: boolean): boolean {
    const regs = this.core.regs;
    if (enable) {
      const iqaLo = regs.get32(Reg.IQA);
      this.baseLo = (iqaLo & IQA_BASE_LO_MASK) >>> 0;
      this.baseHi = this.core.haw > 32 ? regs.get32(Reg.IQA + 4) & (2 ** (this.core.haw - 32) - 1) : 0;
      this.size = 1 << ((iqaLo & Iqa.QS_MASK) + QS_BASE_SHIFT);
      this.enabled = true;
      this.trace('vtd_inv_qi_enable', { enable: true, base: this.baseHi * TWO_POW_32 + this.baseLo, size: this.size });
      if (this.tail !== 0 && (regs.get32(Reg.FSTS) & Fsts.IQE) === 0) this.fetch();
      return true;
    }
    if (this.enabled && this.head === this.tail && this.lastType === DescType.Wait) {
      this.head = 0;
      regs.set64(Reg.IQH, 0, 0);
      this.enabled = false;
      this.trace('vtd_inv_qi_enable', { enable: false });
      return true;
    }
    this.trace('vtd_err_qi_disable', { head: this.head, tail: this.tail, lastType: this.lastType });
    return false;
  }

  /**
   * Guest reads of IQA show the base latched at QIE enable next to the
   * written QS and DW bits (QEMU 11.1 vtd_mem_read); other registers read as stored.
   */
  readOverride(off: number): number | undefined {
    if (off === Reg.IQA) return (this.baseLo | (this.core.regs.get32(Reg.IQA) & IQA_SHOWN_BITS)) >>> 0;
    if (off === Reg.IQA + 4) return this.baseHi;
    return undefined;
  }

  /** IQT was written: latch the tail and process when allowed. */
  onIqtWrite(): void {
    const regs = this.core.regs;
    this.tail = (regs.get32(Reg.IQT) >>> QH_SHIFT) & QT_INDEX_MASK;
    this.trace('vtd_inv_qi_tail', { tail: this.tail });
    if (this.enabled && (regs.get32(Reg.FSTS) & Fsts.IQE) === 0) this.fetch();
  }

  /** ICS was written: IWC clear drops a pending completion interrupt. */
  onIcsWrite(): void {
    const regs = this.core.regs;
    if ((regs.get32(Reg.IECTL) & EventCtl.IP) !== 0 && (regs.get32(Reg.ICS) & Ics.IWC) === 0) {
      regs.setClear32(Reg.IECTL, 0, EventCtl.IP);
    }
  }

  /** IECTL was written: unmasking with IP set sends the deferred interrupt. */
  onIectlWrite(): void {
    const regs = this.core.regs;
    const ctl = regs.get32(Reg.IECTL);
    if ((ctl & EventCtl.IP) !== 0 && (ctl & EventCtl.IM) === 0) {
      this.sendCompletionMsi();
      regs.setClear32(Reg.IECTL, 0, EventCtl.IP);
    }
  }

  /** FSTS was written: clearing an error clears its IQER field. */
  onFstsWrite(): void {
    this.errors.onFstsWrite();
  }

  private fetch(): void {
    if (this.tail >= this.size) {
      this.trace('vtd_err_qi_tail', { tail: this.tail, size: this.size });
      this.queueError(Iqei.InvalidTail);
      return;
    }
    const regs = this.core.regs;
    while (this.head !== this.tail) {
      if (!this.processOne()) return;
      this.head = this.head + 1 === this.size ? 0 : this.head + 1;
      regs.set64(Reg.IQH, (this.head << QH_SHIFT) >>> 0, 0);
    }
  }

  /** Fetches and runs the descriptor at the head; false on a queue error. */
  private processOne(): boolean {
    const at = this.baseHi * TWO_POW_32 + this.baseLo + this.head * DESC_SIZE;
    if (this.core.memory.readBytes(at, this.buf) !== MemTx.Ok) {
      this.lastType = 0;
      this.queueError(Iqei.FetchError);
      return false;
    }
    const v = this.view;
    const r = decodeDescriptor(v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true), { mamv: MAMV });
    this.lastType = r.ok ? r.desc.type : r.type;
    if (!r.ok) {
      this.trace('vtd_err_inv_desc', { head: this.head, type: r.type, error: r.error });
      this.queueError(iqeiFor(r.error));
      return false;
    }
    this.trace('vtd_inv_desc', { head: this.head, type: r.desc.type });
    if (!this.run(r.desc)) {
      this.queueError(Iqei.NotAvailable);
      return false;
    }
    return true;
  }

  private run(d: InvDescriptor): boolean {
    const core = this.core;
    switch (d.type) {
      case DescType.ContextCache:
        if (d.granularity === 'global') core.invalidateContext({ kind: 'global' }, 'queue');
        else if (d.granularity === 'domain') core.invalidateContext({ kind: 'domain', did: d.did }, 'queue');
        else core.invalidateContext({ kind: 'device', did: d.did, sid: d.sid, fm: d.fm }, 'queue');
        return true;
      case DescType.Iotlb:
        if (d.granularity === 'global') core.invalidateIotlb({ kind: 'global' }, 'queue');
        else if (d.granularity === 'domain') core.invalidateIotlb({ kind: 'domain', did: d.did }, 'queue');
        else core.invalidateIotlb({ kind: 'page', did: d.did, addr: d.addr, am: d.am, ih: d.ih }, 'queue');
        return true;
      case DescType.DeviceIotlb:
        this.deviceIotlb(d.sid, d.addr);
        return true;
      case DescType.Iec:
        this.clients.invalidateIec(d.global, d.index, d.indexMask);
        if (core.events.listenerCount('invalidate') > 0) {
          core.events.emit('invalidate', d.global
            ? { cache: 'iec', granularity: 'global', source: 'queue' }
            : { cache: 'iec', granularity: 'index', addr: d.index, am: d.indexMask, source: 'queue' });
        }
        return true;
      case DescType.Wait:
        return this.wait(d);
    }
  }

  private deviceIotlb(sid: number, addr: number): void {
    const core = this.core;
    if (core.events.listenerCount('invalidate') > 0) {
      core.events.emit('invalidate', { cache: 'device-iotlb', granularity: 'page', sid, addr, source: 'queue' });
    }
    this.errors.deviceIotlbDone(sid);
  }

  private wait(d: WaitDesc): boolean {
    if (this.errors.timedOut()) {
      // Spec 6.5.2.10: pending wait descriptors are aborted while ITE is set.
      this.trace('vtd_inv_desc_wait_abort', { head: this.head });
      return true;
    }
    if (d.statusWrite) {
      this.statusView.setUint32(0, d.statusData, true);
      this.trace('vtd_inv_desc_wait_sw', { addr: d.statusAddr, data: d.statusData });
      if (this.core.memory.writeBytes(d.statusAddr, this.status) !== MemTx.Ok) return false;
    }
    if (d.interrupt) this.completionEvent();
    return true;
  }

  /** ICS.IWC and the invalidation completion event (QEMU vtd_generate_completion_event). */
  private completionEvent(): void {
    const regs = this.core.regs;
    if ((regs.get32(Reg.ICS) & Ics.IWC) !== 0) return;
    regs.setClear32(Reg.ICS, Ics.IWC, 0);
    regs.setClear32(Reg.IECTL, EventCtl.IP, 0);
    if ((regs.get32(Reg.IECTL) & EventCtl.IM) !== 0) return;
    this.sendCompletionMsi();
    regs.setClear32(Reg.IECTL, 0, EventCtl.IP);
  }

  private sendCompletionMsi(): void {
    const regs = this.core.regs;
    const addr = regs.get32(Reg.IEUADDR) * TWO_POW_32 + regs.get32(Reg.IEADDR);
    this.trace('vtd_inv_desc_wait_irq', { addr, data: regs.get32(Reg.IEDATA) });
    this.core.msi.deliverMsi(addr, regs.get32(Reg.IEDATA), { kind: 'iommu' });
  }

  private queueError(iqei: number): void {
    this.errors.queueError(iqei);
  }

  private trace(event: string, fields: Record<string, number | string | boolean>): void {
    if (this.core.tracer.enabled(event)) this.core.tracer.trace(event, fields);
  }
}
