/**
 * The queued invalidation engine (VT-d spec 6.5.2, registers 11.4.9),
 * behaving as QEMU 11.1's vtd_handle_gcmd_qie / vtd_handle_iqt_write /
 * vtd_fetch_inv_desc / vtd_process_inv_desc:
 *
 *  - GCMD.QIE enable sets GSTS.QIES (the queue is the one writer of QIES,
 *    which is also its "enabled" flag) and latches IQA: the base (masked to
 *    the host address width) and the size, 2^(QS+8) 128-bit or 2^(QS+7)
 *    256-bit entries (the DW in force at enable).  It processes at once
 *    when IQT is already non-zero (Windows does that).  IQA reads show the
 *    latched base (kept here and nowhere else) plus the written QS and DW
 *    bits.
 *  - Descriptor width: 256-bit while IQA.DW is set and the unit has
 *    ECAP.SMTS (scalable-mode=on); DW without SMTS reads back but does
 *    nothing.  Unlike base and size, DW is not latched: it acts from the
 *    IQA write on (QEMU vtd_update_iq_dw), so toggling it with QI on keeps
 *    the head index and the latched size and changes only the fetch width
 *    and the IQH/IQT units (32 bytes, index shift 5).
 *  - Disable is accepted only when IQH == IQT and the last descriptor
 *    fetched was a wait descriptor; IQH then returns to 0 and QIES clears.
 *  - An IQT write with DW in force and bit 4 set is a queue error at once
 *    (QI on or off), the previous tail kept.  Otherwise it latches the tail
 *    and, when QI is on and FSTS.IQE is clear, processes descriptors
 *    synchronously up to the tail, updating IQH after each.  A tail beyond
 *    the queue, an unreadable descriptor, an unknown type, a 256-bit type
 *    in a 128-bit queue, reserved bits or bad values set FSTS.IQE (fault
 *    event) and stop with IQH on the failing descriptor.  Clearing IQE does
 *    not restart the queue by itself: the next IQT write does (QEMU).
 *  - Wait descriptors: SW writes the status dword (failure = IQE), IF sets
 *    ICS.IWC (if clear) and IECTL.IP, and sends IEDATA to IEUADDR:IEADDR
 *    unless IECTL.IM; SW and IF may both be set (QEMU 7.2 asserts; we don't);
 *    FN alone is a no-op, as current QEMU.
 *  - Descriptors act through the unit's invalidation entry points
 *    (QueueUnit, roles.ts): context cache, IOTLB, the interrupt entry cache
 *    (IEC, the remapper's), PASID-IOTLB 6, PASID-cache 7, page-group
 *    response 9; the device-TLB descriptors (3, 8) go to the 'invalidate'
 *    event.
 *
 * Beyond QEMU, behind properties: `x-iqer` fills IQER (0xB0: IQEI, ITESID,
 * ICESID); `x-devtlb-timeout-sid` / `x-devtlb-error-sid` make device-TLB
 * invalidations (descriptors 3 and 8) for one SID time out (FSTS.ITE; wait
 * descriptors are then aborted while ITE stays set) or complete in error
 * (FSTS.ICE).
 */
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { MemTx } from '../../memory/address-space.js';
import { ALL_PASIDS, NO_PASID } from '../../memory/iommu.js';
import { deviceTlbRange } from './ats.js';
import { Ecap, ecapValue, MAMV } from './caps.js';
import type { IommuConfig } from './props.js';
import type { QueueUnit } from './roles.js';
import {
  DescType,
  decodeDescriptor,
  type DecodeOptions,
  type DeviceIotlbDesc,
  type InvDescriptor,
  type PasidDeviceIotlbDesc,
  type WaitDesc,
} from './descriptors.js';
import { Iqei, QueueErrors, iqeiFor, queueOptionsFrom, type QueueOptions } from './queue-errors.js';
import { EventCtl, Fsts, Gsts, Iqa, Ics, Reg } from './reg-layout.js';
import { TWO_POW_32 } from '../../memory/address.js';

export { Iqei, Iqer, NO_SID, queueOptionsFrom, type QueueOptions } from './queue-errors.js';

/** Bytes per 128-bit descriptor; IQH/IQT hold index << 4. */
const DESC_SIZE = 16;
const QH_SHIFT = 4;
/** Bytes per 256-bit descriptor; IQH/IQT hold index << 5 (bit 4 reserved). */
const WIDE_DESC_SIZE = 32;
const WIDE_QH_SHIFT = 5;
/** IQT/IQH offset field (bits 18:4). */
const QH_FIELD_MASK = 0x7_fff0;
/** IQT bit 4: must be clear with 256-bit descriptors (QEMU VTD_IQT_QT_256_RSV_BIT). */
const IQT_WIDE_RSVD = 1 << 4;
/** Base queue size: 2^(QS + 8) 128-bit entries, half as many 256-bit ones (same bytes). */
const QS_BASE_SHIFT = 8;
/** Queue base: bits 31:12 of the low half. */
const IQA_BASE_LO_MASK = 0xffff_f000;
/**
 * IQA bits shown on reads next to the latched base: QS and DW.  DW reads back
 * as written even without scalable mode, where it has no effect (QEMU 11.1;
 * 7.2 read it as 0).
 */
const IQA_SHOWN_BITS = Iqa.QS_MASK | Iqa.DW;

/** How a unit's queue is built: its error options and what ECAP offers. */
export interface QueueConfig extends QueueOptions {
  /** ECAP.SMTS: IQA.DW is honoured (256-bit descriptors). */
  readonly smts: boolean;
  /** ECAP.PDS: the wait descriptor's PD bit is defined. */
  readonly pds: boolean;
}

/** The queue configuration of a unit with `config`. */
export function queueConfigFrom(config: IommuConfig): QueueConfig {
  const ecap = ecapValue(config);
  return { ...queueOptionsFrom(config.raw), smts: (ecap & Ecap.SMTS) !== 0n, pds: (ecap & Ecap.PDS) !== 0n };
}

/** The invalidation queue of one unit. */
export class InvalidationQueue {
  private head = 0;
  private tail = 0;
  private size = 0;
  /** Latched queue base (at QIE enable), low/high halves. */
  private baseLo = 0;
  private baseHi = 0;
  private lastType = 0;
  /** One descriptor: all 32 bytes in a 256-bit queue, the first 16 in a 128-bit one. */
  private readonly buf = new Uint8Array(WIDE_DESC_SIZE);
  private readonly narrowBuf = this.buf.subarray(0, DESC_SIZE);
  private readonly view = new DataView(this.buf.buffer);
  /** ECAP.SMTS: IQA.DW is honoured. */
  private readonly smts: boolean;
  /** Decoding options for 128-bit and 256-bit queues (ECAP.PDS: wait PD bit defined). */
  private readonly narrowOpts: DecodeOptions;
  private readonly wideOpts: DecodeOptions;
  private readonly status = new Uint8Array(4);
  private readonly statusView = new DataView(this.status.buffer);

  private readonly errors: QueueErrors;

  constructor(
    private readonly core: QueueUnit,
    config: QueueConfig,
  ) {
    this.errors = new QueueErrors(core, config);
    this.smts = config.smts;
    this.narrowOpts = { mamv: MAMV, wide: false, pds: config.pds };
    this.wideOpts = { mamv: MAMV, wide: true, pds: config.pds };
  }

  /** Device reset (after the register file's, which clears QIES): indexes and latched base cleared. */
  reset(): void {
    this.head = this.tail = this.size = 0;
    this.baseLo = this.baseHi = 0;
    this.lastType = 0;
  }

  /** Snapshot: indexes, latched base and size, last descriptor type (IQH/IQT/IQA are registers). */
  saveState(): SnapshotSection {
    return { head: this.head, tail: this.tail, size: this.size, baseLo: this.baseLo, baseHi: this.baseHi, lastType: this.lastType };
  }

  /** Loads what saveState saved. */
  loadState(r: SectionReader): void {
    const size = r.int('size', 0, 1 << 20);
    const head = r.int('head', 0, Math.max(0, size - 1));
    const tail = r.int('tail', 0, QH_FIELD_MASK >>> QH_SHIFT);
    const baseLo = r.u32('baseLo');
    const baseHi = r.u32('baseHi');
    const lastType = r.int('lastType', 0, 0xff);
    this.size = size;
    this.head = head;
    this.tail = tail;
    this.baseLo = baseLo;
    this.baseHi = baseHi;
    this.lastType = lastType;
  }

  /** Current head index (descriptors, not bytes). */
  get headIndex(): number {
    return this.head;
  }

  /** Current tail index (descriptors, not bytes) latched by the last accepted IQT write. */
  get tailIndex(): number {
    return this.tail;
  }

  /** Type of the last descriptor fetched (0: none, or its fetch failed). */
  get lastDescriptorType(): number {
    return this.lastType;
  }

  /** GSTS.QIES: queued invalidation is on. */
  get enabled(): boolean {
    return (this.core.regs.get32(Reg.GSTS) & Gsts.QIES) !== 0;
  }

  /** The queue base latched at QIE enable (0 before the first enable). */
  get base(): number {
    return this.baseHi * TWO_POW_32 + this.baseLo;
  }

  /** Queue size latched at QIE enable, in descriptors (0 before the first enable). */
  get sizeEntries(): number {
    return this.size;
  }

  /**
   * True while descriptors are 256-bit: IQA.DW set (as last written) on a
   * unit with ECAP.SMTS.  Read live, as QEMU re-derives it at every IQA write.
   */
  get wide(): boolean {
    return this.smts && (this.core.regs.get32(Reg.IQA) & Iqa.DW) !== 0;
  }

  /**
   * GCMD.QIE changed; returns whether the change is accepted.  Enable always
   * is, and sets QIES before a queue whose tail is already set runs (QEMU
   * reports QIES first); disable is refused while busy, QIES kept.
   */
  onQieChange(enable: boolean): boolean {
    const regs = this.core.regs;
    if (enable) {
      regs.setClear32(Reg.GSTS, Gsts.QIES, 0);
      const iqaLo = regs.get32(Reg.IQA);
      this.baseLo = (iqaLo & IQA_BASE_LO_MASK) >>> 0;
      this.baseHi = this.core.haw > 32 ? regs.get32(Reg.IQA + 4) & (2 ** (this.core.haw - 32) - 1) : 0;
      this.size = 1 << ((iqaLo & Iqa.QS_MASK) + QS_BASE_SHIFT - (this.wide ? 1 : 0));
      this.trace('vtd_inv_qi_enable', { enable: true, base: this.base, size: this.size });
      if (this.tail !== 0 && (regs.get32(Reg.FSTS) & Fsts.IQE) === 0) this.fetch();
      return true;
    }
    if (this.enabled && this.head === this.tail && this.lastType === DescType.Wait) {
      this.head = 0;
      regs.set64(Reg.IQH, 0, 0);
      regs.setClear32(Reg.GSTS, 0, Gsts.QIES);
      this.trace('vtd_inv_qi_enable', { enable: false });
      return true;
    }
    this.trace('vtd_err_qi_disable', { head: this.head, tail: this.tail, lastType: this.lastType });
    return false;
  }

  /**
   * IQA's low dword as a guest reads it: the base latched at QIE enable next
   * to the written QS and DW bits (QEMU 11.1 vtd_mem_read).
   */
  iqaLow(): number {
    return (this.baseLo | (this.core.regs.get32(Reg.IQA) & IQA_SHOWN_BITS)) >>> 0;
  }

  /** IQA's high dword as a guest reads it: the latched base's. */
  iqaHigh(): number {
    return this.baseHi;
  }

  /** IQT was written: latch the tail and process when allowed. */
  onIqtWrite(): void {
    const regs = this.core.regs;
    const iqt = regs.get32(Reg.IQT);
    const wide = this.wide;
    if (wide && (iqt & IQT_WIDE_RSVD) !== 0) {
      // Not 256-bit aligned: an error whether QI is on or not; the tail stays.
      this.trace('vtd_err_qi_tail_rsvd', { iqt });
      this.queueError(Iqei.InvalidTail);
      return;
    }
    this.tail = (iqt & QH_FIELD_MASK) >>> (wide ? WIDE_QH_SHIFT : QH_SHIFT);
    this.trace('vtd_inv_qi_tail', { tail: this.tail });
    if (this.enabled && (regs.get32(Reg.FSTS) & Fsts.IQE) === 0) this.fetch();
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
    const wide = this.wide;
    const shift = wide ? WIDE_QH_SHIFT : QH_SHIFT;
    while (this.head !== this.tail) {
      if (!this.processOne(wide)) return;
      this.head = this.head + 1 === this.size ? 0 : this.head + 1;
      regs.set64(Reg.IQH, ((this.head << shift) & QH_FIELD_MASK) >>> 0, 0);
    }
  }

  /** Fetches and runs the descriptor at the head; false on a queue error. */
  private processOne(wide: boolean): boolean {
    const at = this.baseHi * TWO_POW_32 + this.baseLo + this.head * (wide ? WIDE_DESC_SIZE : DESC_SIZE);
    if (this.core.memory.readBytes(at, wide ? this.buf : this.narrowBuf) !== MemTx.Ok) {
      this.lastType = 0;
      this.queueError(Iqei.FetchError);
      return false;
    }
    const v = this.view;
    const upperNonZero =
      wide && (v.getUint32(16, true) | v.getUint32(20, true) | v.getUint32(24, true) | v.getUint32(28, true)) !== 0;
    const r = decodeDescriptor(
      v.getUint32(0, true),
      v.getUint32(4, true),
      v.getUint32(8, true),
      v.getUint32(12, true),
      wide ? this.wideOpts : this.narrowOpts,
      upperNonZero,
    );
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
        this.deviceIotlb(d);
        return true;
      case DescType.Iec:
        core.invalidateIec(d.global, d.index, d.indexMask);
        if (core.events.listenerCount('invalidate') > 0) {
          core.events.emit('invalidate', d.global
            ? { cache: 'iec', granularity: 'global', source: 'queue' }
            : { cache: 'iec', granularity: 'index', addr: d.index, am: d.indexMask, source: 'queue' });
        }
        return true;
      case DescType.Wait:
        return this.wait(d);
      case DescType.PasidIotlb:
        core.invalidatePasidIotlb(d.granularity === 'pasid'
          ? { kind: 'pasid', did: d.did, pasid: d.pasid }
          : { kind: 'page', did: d.did, pasid: d.pasid, addr: d.addr, am: d.am, ih: d.ih });
        return true;
      case DescType.PasidCache:
        if (d.granularity === 'global') core.invalidatePasidCache({ kind: 'global' });
        else if (d.granularity === 'domain') core.invalidatePasidCache({ kind: 'domain', did: d.did });
        else core.invalidatePasidCache({ kind: 'pasid', did: d.did, pasid: d.pasid });
        return true;
      case DescType.PasidDeviceIotlb:
        this.pasidDeviceIotlb(d);
        return true;
      case DescType.PageGroupResponse:
        core.pageGroupResponse({ rid: d.rid, pasidPresent: true, pasid: d.pasid, code: d.code, prgi: d.prgi });
        return true;
    }
  }

  /**
   * Device-TLB invalidation (descriptor 3): the function at the SID drops
   * the range (requests without a PASID); its answer may time out or fail.
   */
  private deviceIotlb(d: DeviceIotlbDesc): void {
    const core = this.core;
    const sid = d.sid;
    const range = deviceTlbRange(d.addr, d.sizeBit);
    if (core.events.listenerCount('invalidate') > 0) {
      core.events.emit('invalidate', { cache: 'device-iotlb', granularity: 'page', sid, addr: range.addr, size: range.size, source: 'queue' });
    }
    this.errors.deviceIotlbDone(sid, core.invalidateDeviceTlb(sid, NO_PASID, range.addr, range.size));
  }

  /**
   * PASID-based device-TLB invalidation: announced as granularity 'pasid'
   * (the entries of `pasid` in the range) or, with G, 'global' (every
   * PASID's entries in the range); the SID may time out or fail as for
   * descriptor 3.
   */
  private pasidDeviceIotlb(d: PasidDeviceIotlbDesc): void {
    const core = this.core;
    const range = deviceTlbRange(d.addr, d.sizeBit);
    if (core.events.listenerCount('invalidate') > 0) {
      core.events.emit('invalidate', d.global
        ? { cache: 'device-iotlb', granularity: 'global', sid: d.sid, addr: range.addr, size: range.size, source: 'queue' }
        : { cache: 'device-iotlb', granularity: 'pasid', sid: d.sid, pasid: d.pasid, addr: range.addr, size: range.size, source: 'queue' });
    }
    this.errors.deviceIotlbDone(d.sid, core.invalidateDeviceTlb(d.sid, d.global ? ALL_PASIDS : d.pasid, range.addr, range.size));
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
