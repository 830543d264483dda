/**
 * Interrupt remapping (VT-d spec 5.1), as QEMU's vtd_interrupt_remap_msi /
 * vtd_irte_get / vtd_remap_irq_get, with IR faults recorded as current QEMU
 * does (QEMU 7.2 only logs them):
 *
 *  - IRE off: every message passes unchanged.
 *  - Address bits 63:32 non-zero or bits 31:20 != 0xFEE: fault 0x20, dropped.
 *  - Compatibility format (address bit 4 clear): passes unchanged (QEMU).
 *    With `x-cfi` (beyond QEMU, spec 5.1.2.1) GSTS.CFIS follows GCMD.CFI and,
 *    while IRE is on and CFIS clear, such messages are blocked (fault 0x25).
 *  - Remappable format: handle = address bit 2 << 15 | bits 19:5; with SHV
 *    (bit 3) the data's low 16 bits are added (16-bit wrap, as QEMU).
 *    Index >= 2^(S+1): 0x21; table read failure: 0x23; then, suppressed by the
 *    IRTE's FPD: not present 0x22, reserved bits 0x24, source-ID mismatch
 *    0x26 (skipped when the requester is unknown, i.e. the IOAPIC path).
 *    With SHV, data bits 31:16 set: 0x20 after the lookup.
 *  - Output (x86_iommu_irq_to_msi_message): address 0xFEE | dest[7:0] << 12
 *    | RH << 3 | DM << 2 | the request's bits 1:0, upper address dest[31:8];
 *    data vector | DLM << 8 | 1 << 14 | TM << 15.  dest = DST[15:8] unless
 *    IRTA.EIME (and the eim property) give the full 32-bit DST.
 *  - Posted-format IRTEs (IM=1, with `x-pi`) go to posted-interrupts.ts.
 *
 * The remapper owns its status bits: GSTS.IRTPS (set at SIRTP), IRES
 * (follows GCMD.IRE) and, with `x-cfi`, CFIS; IRE is read back from IRES.
 *
 * Interrupt entry cache: validated IRTEs (present, no reserved bits) are
 * cached by index; an IEC invalidation (global or index/mask), SIRTP, an IRE
 * change and reset drop them.  A guest that rewrites an IRTE without an IEC
 * invalidation keeps getting the old entry, as on hardware (QEMU does not
 * cache, so there it would see the new one).
 */
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { MemTx } from '../../memory/address-space.js';
import type { InterruptOrigin } from '../../core/irq.js';
import { SID_UNKNOWN } from './requests.js';
import type { RemapperCommands, RemapperUnit } from './roles.js';
import { VtdFault } from './fault-reasons.js';
import {
  IRTE_SIZE, decodeIrte, irteDestination, irteHasReservedBits, newIrte, verifySourceId, type Irte,
} from './irte.js';
import { PostResult, type PostedInterrupts } from './posted-interrupts.js';
import { Gsts, Irta, Reg } from './reg-layout.js';
import { TWO_POW_32 } from '../../memory/address.js';

/** Remappable-format MSI address and data fields (spec 5.1.5.2). */
export const RemapMsi = {
  /** Address bits 31:20 must be 0xFEE. */
  HEAD_SHIFT: 20,
  HEAD_MASK: 0xfff,
  HEAD: 0xfee,
  /** Interrupt format: 1 = remappable. */
  FORMAT: 1 << 4,
  /** Sub-handle valid. */
  SHV: 1 << 3,
  /** Handle bit 15 at address bit 2. */
  HANDLE_15: 1 << 2,
  HANDLE_15_SHIFT: 15,
  /** Handle bits 14:0 at address bits 19:5. */
  HANDLE_LO_SHIFT: 5,
  HANDLE_LO_MASK: 0x7fff,
  /** Data bits 15:0: sub-handle; 31:16 must be zero with SHV. */
  SUBHANDLE_MASK: 0xffff,
  DATA_RESERVED: 0xffff_0000,
  /** Bits 1:0 of the request address are kept in the output (QEMU). */
  KEEP_MASK: 0x3,
} as const;

/** IOAPIC-generated data fields checked against the IRTE (no SHV). */
const IoapicData = {
  VECTOR_MASK: 0xff,
  /** Trigger mode bit 15: 1 = level. */
  LEVEL: 1 << 15,
} as const;

/** Output MSI fields (compatibility format, spec 5.1.1). */
export const OutMsi = {
  BASE: 0xfee0_0000,
  DEST_SHIFT: 12,
  DEST_MASK: 0xff,
  RH_SHIFT: 3,
  DM_SHIFT: 2,
  /** x2APIC destination bits 31:8 in the upper address. */
  DEST_HI_MASK: 0xffff_ff00,
  DLM_SHIFT: 8,
  /** Level-assert bit 14: QEMU always sets it. */
  LEVEL: 1 << 14,
  TM_SHIFT: 15,
} as const;

/** The SID recorded for faults whose requester is unknown (QEMU X86_IOMMU_SID_INVALID). */
export const FAULT_SID_UNKNOWN = 0xffff;
/** Largest interrupt remapping table: 2^16 entries. */
const MAX_ENTRIES = 0x1_0000;
const U16 = 0xffff;
/** IRTA table base: low-half bits 31:12. */
const IRTA_BASE_LO_MASK = 0xffff_f000;
const IRTE_DWORDS = 4;

/** The result of remapping one message (for callers and tests). */
export interface RemapOutcome {
  /** 'delivered', 'posted', or the fault reason that dropped it (0 = dropped without a fault). */
  status: 'delivered' | 'posted' | 'dropped';
  /** Fault reason when dropped (VtdFault), else 0. */
  reason: number;
  /** Output message. */
  address: number;
  data: number;
}

/** How a unit's remapper is built. */
export interface RemapperOptions {
  /** The eim property: IRTA.EIME may select x2APIC destinations. */
  readonly eim: boolean;
  /** `x-cfi`: model GCMD.CFI / GSTS.CFIS and block compatibility format without it. */
  readonly cfi: boolean;
}

/** The interrupt remapping unit of one IOMMU. */
export class InterruptRemapper implements RemapperCommands {
  private root = 0;
  private entries = 0;
  private eime = false;
  private readonly irte: Irte = newIrte();
  private readonly raw = new Uint8Array(IRTE_SIZE);
  private readonly rawView = new DataView(this.raw.buffer);
  /** The interrupt entry cache (allocated on first use). */
  private cacheValid: Uint8Array | null = null;
  private cacheWords: Uint32Array | null = null;
  /** Entries cached now: an invalidation costs nothing once the cache is empty. */
  private cachedCount = 0;
  private readonly words = new Uint32Array(IRTE_DWORDS);
  /** IRTE index used by the last remap (-1: none, the message passed unchanged). */
  private lastIndex = -1;
  /** Last outcome (reused object). */
  readonly last: RemapOutcome = { status: 'dropped', reason: 0, address: 0, data: 0 };

  private readonly eimAllowed: boolean;
  private readonly cfiModelled: boolean;

  constructor(
    private readonly core: RemapperUnit,
    private readonly posted: PostedInterrupts | null,
    opts: RemapperOptions,
  ) {
    this.eimAllowed = opts.eim;
    this.cfiModelled = opts.cfi;
  }

  /** GSTS.IRES: interrupt remapping is on. */
  get enabled(): boolean {
    return (this.core.regs.get32(Reg.GSTS) & Gsts.IRES) !== 0;
  }

  /** The table latched by SIRTP: base, entries (2^(S+1); 0 before SIRTP) and whether x2APIC destinations are in force. */
  get table(): { readonly base: number; readonly entries: number; readonly eime: boolean } {
    return { base: this.root, entries: this.entries, eime: this.eime };
  }

  /** The interrupt entry cache: each cached index with its four dwords (read-only view for the inspector; allocates). */
  cachedIrtes(): { readonly index: number; readonly words: readonly number[] }[] {
    const valid = this.cacheValid;
    const words = this.cacheWords;
    const out: { index: number; words: number[] }[] = [];
    if (!valid || !words || this.cachedCount === 0) return out;
    for (let i = 0; i < MAX_ENTRIES; i++) {
      if (valid[i] === 1) out.push({ index: i, words: Array.from(words.subarray(i * IRTE_DWORDS, (i + 1) * IRTE_DWORDS)) });
    }
    return out;
  }

  /** GCMD.CFI changed: with `x-cfi`, GSTS.CFIS reports it. */
  onCfiChange(on: boolean): void {
    if (!this.cfiModelled) return;
    this.core.regs.setClear32(Reg.GSTS, on ? Gsts.CFIS : 0, on ? 0 : Gsts.CFIS);
  }

  /** Snapshot: the table latched by SIRTP (the interrupt entry cache is not saved). */
  saveState(): SnapshotSection {
    return { root: this.root, entries: this.entries, eime: this.eime };
  }

  /** Loads what saveState saved and empties the interrupt entry cache (QEMU vtd_post_load drops caches). */
  loadState(r: SectionReader): void {
    const root = r.num('root', 0, 2 ** 64);
    const entries = r.int('entries', 0, MAX_ENTRIES);
    const eime = r.bool('eime');
    this.root = root;
    this.entries = entries;
    this.eime = eime;
    this.invalidateIec(true, 0, 0);
  }

  /** Device reset: no table, empty cache. */
  reset(): void {
    this.root = this.entries = 0;
    this.eime = false;
    this.invalidateIec(true, 0, 0);
  }

  /** GCMD.SIRTP: set IRTPS, latch IRTA (base, size, EIME) and flush the cache. */
  onSirtp(): void {
    const regs = this.core.regs;
    regs.setClear32(Reg.GSTS, Gsts.IRTPS, 0);
    const lo = regs.get32(Reg.IRTA);
    const hi = regs.get32(Reg.IRTA + 4);
    const hiMask = this.core.haw > 32 ? 2 ** (this.core.haw - 32) - 1 : 0;
    this.root = (hi & hiMask) * TWO_POW_32 + ((lo & IRTA_BASE_LO_MASK) >>> 0);
    this.entries = 2 ** ((lo & Irta.S_MASK) + 1);
    this.eime = (lo & Irta.EIME) !== 0 && this.eimAllowed;
    this.trace('vtd_reg_ir_root', { addr: this.root, size: this.entries, eime: this.eime });
    this.invalidateIec(true, 0, 0);
  }

  /** GCMD.IRE changed: IRES follows and the cache is flushed. */
  onIreChange(on: boolean): void {
    this.core.regs.setClear32(Reg.GSTS, on ? Gsts.IRES : 0, on ? 0 : Gsts.IRES);
    this.invalidateIec(true, 0, 0);
  }

  /**
   * IEC invalidation: everything, or the 2^mask entries of the aligned block
   * holding index.  Bounded by what is cached: nothing to do once the cache
   * is empty (a queue full of IEC descriptors costs one pass at most), and a
   * selective pass stops at the last cached entry.
   */
  invalidateIec(global: boolean, index: number, mask: number): void {
    const valid = this.cacheValid;
    if (!valid || this.cachedCount === 0) return;
    if (global) {
      valid.fill(0);
      this.cachedCount = 0;
      return;
    }
    const count = 2 ** mask;
    const first = index & ~(count - 1) & U16;
    const end = Math.min(MAX_ENTRIES, first + count);
    for (let i = first; i < end && this.cachedCount > 0; i++) {
      if (valid[i] === 1) {
        valid[i] = 0;
        this.cachedCount--;
      }
    }
  }

  /**
   * A 4-byte write into the interrupt window by `sid` (SID_UNKNOWN: the
   * IOAPIC): remapped, or passed on unchanged while IRE is off, to the APIC
   * bus tagged with its origin.
   */
  interruptWrite(addr: number, data: number, sid: number): void {
    const o = this.remap(addr, data, sid);
    if (o.status === 'delivered') this.core.msi.deliverMsi(o.address, o.data, this.origin(sid, this.lastIndex >= 0));
  }

  private origin(sid: number, remapped: boolean): InterruptOrigin {
    const kind = sid === SID_UNKNOWN ? 'ioapic' : 'msi';
    if (!remapped) return sid === SID_UNKNOWN ? { kind } : { kind, source: sid };
    return sid === SID_UNKNOWN ? { kind, remappedIndex: this.lastIndex } : { kind, source: sid, remappedIndex: this.lastIndex };
  }

  /**
   * Remaps one message without delivering it (faults are recorded).  The
   * returned object is reused by the next call.
   */
  remap(addr: number, data: number, sid: number): RemapOutcome {
    const out = this.last;
    out.address = addr;
    out.data = data >>> 0;
    out.reason = 0;
    this.lastIndex = -1;
    if (!this.enabled) {
      out.status = 'delivered';
      return out;
    }
    if (addr >= TWO_POW_32 || addr < 0 || ((addr >>> RemapMsi.HEAD_SHIFT) & RemapMsi.HEAD_MASK) !== RemapMsi.HEAD) {
      return this.drop(sid, VtdFault.IR_REQ_RSVD, 0, false);
    }
    if ((addr & RemapMsi.FORMAT) === 0) {
      if (this.cfiModelled && (this.core.regs.get32(Reg.GSTS) & Gsts.CFIS) === 0) {
        return this.drop(sid, VtdFault.IR_COMPAT_BLOCKED, 0, false);
      }
      out.status = 'delivered';
      return out;
    }
    let index = ((addr & RemapMsi.HANDLE_15) !== 0 ? 1 << RemapMsi.HANDLE_15_SHIFT : 0) |
      ((addr >>> RemapMsi.HANDLE_LO_SHIFT) & RemapMsi.HANDLE_LO_MASK);
    const shv = (addr & RemapMsi.SHV) !== 0;
    if (shv) index = (index + (data & RemapMsi.SUBHANDLE_MASK)) & U16;
    this.lastIndex = index;
    const cached = this.cacheValid !== null && index < this.entries && this.cacheValid[index] === 1;
    const reason = this.fetch(index, sid);
    if (this.core.events.listenerCount('interruptRemap') > 0) {
      this.core.events.emit('interruptRemap', { sid, index, irteAddr: this.root + index * IRTE_SIZE, cached, reason });
    }
    if (reason !== 0) return this.drop(sid, reason, index, this.irte.fpd);
    const e = this.irte;
    if (shv && (data & RemapMsi.DATA_RESERVED) !== 0) return this.drop(sid, VtdFault.IR_REQ_RSVD, 0, false);
    if (!shv) this.checkIoapicData(data, index);
    if (e.posted) {
      const r = this.posted ? this.posted.post(e.pidAddr, e.vector, e.urgent, this.eime, sid, index) : PostResult.AccessError;
      out.status = r === PostResult.AccessError ? 'dropped' : 'posted';
      return out;
    }
    const dest = irteDestination(e, this.eime);
    const lo = (OutMsi.BASE | ((dest & OutMsi.DEST_MASK) << OutMsi.DEST_SHIFT) | (Number(e.redirHint) << OutMsi.RH_SHIFT) |
      (Number(e.destLogical) << OutMsi.DM_SHIFT) | (addr & RemapMsi.KEEP_MASK)) >>> 0;
    out.address = ((dest & OutMsi.DEST_HI_MASK) >>> 0) * TWO_POW_32 + lo;
    out.data = (e.vector | (e.deliveryMode << OutMsi.DLM_SHIFT) | OutMsi.LEVEL | (Number(e.levelTriggered) << OutMsi.TM_SHIFT)) >>> 0;
    out.status = 'delivered';
    this.trace('vtd_ir_remap_msi', { addr, data, outAddr: out.address, outData: out.data, index });
    return out;
  }

  /**
   * Without SHV the data carries the IOAPIC RTE's vector and trigger mode,
   * which must agree with the IRTE (spec 5.1.5.1); QEMU only traces a
   * mismatch, and so do we.
   */
  private checkIoapicData(data: number, index: number): void {
    const e = this.irte;
    const vector = data & IoapicData.VECTOR_MASK;
    if (vector !== e.vector) this.trace('vtd_warn_ir_vector', { index, vector, irteVector: e.vector });
    const level = (data & IoapicData.LEVEL) !== 0;
    if (level !== e.levelTriggered) this.trace('vtd_warn_ir_trigger', { index, level, irteLevel: e.levelTriggered });
  }

  /** Loads IRTE `index` into this.irte and validates it; returns 0 or a fault reason. */
  private fetch(index: number, sid: number): number {
    if (index >= this.entries) {
      this.irte.fpd = false;
      return VtdFault.IR_INDEX_OVER;
    }
    const w = this.words;
    if (!this.cacheValid) {
      this.cacheValid = new Uint8Array(MAX_ENTRIES);
      this.cacheWords = new Uint32Array(MAX_ENTRIES * IRTE_DWORDS);
    }
    const cw = this.cacheWords!;
    const at = index * IRTE_DWORDS;
    if (this.cacheValid[index] === 1) {
      w[0] = cw[at]!; w[1] = cw[at + 1]!; w[2] = cw[at + 2]!; w[3] = cw[at + 3]!;
      decodeIrte(w[0]!, w[1]!, w[2]!, w[3]!, this.irte);
    } else {
      if (this.core.memory.readBytes(this.root + index * IRTE_SIZE, this.raw) !== MemTx.Ok) {
        this.irte.fpd = false;
        return VtdFault.IR_ROOT_INVAL;
      }
      const v = this.rawView;
      for (let i = 0; i < IRTE_DWORDS; i++) w[i] = v.getUint32(i * 4, true);
      decodeIrte(w[0]!, w[1]!, w[2]!, w[3]!, this.irte);
      if (!this.irte.present) return VtdFault.IR_ENTRY_P;
      if (irteHasReservedBits(w[0]!, w[1]!, w[2]!, w[3]!, this.posted !== null)) return VtdFault.IR_IRTE_RSVD;
      cw[at] = w[0]!; cw[at + 1] = w[1]!; cw[at + 2] = w[2]!; cw[at + 3] = w[3]!;
      this.cacheValid[index] = 1;
      this.cachedCount++;
    }
    if (this.core.tracer.enabled('vtd_ir_irte_get')) {
      // QEMU prints the entry as its two 64-bit halves.
      this.trace('vtd_ir_irte_get', { index, lo: (BigInt(w[1]!) << 32n) | BigInt(w[0]!), hi: (BigInt(w[3]!) << 32n) | BigInt(w[2]!) });
    }
    if (sid !== SID_UNKNOWN && !verifySourceId(this.irte, sid)) return VtdFault.IR_SID_ERR;
    return 0;
  }

  private drop(sid: number, reason: number, index: number, fpd: boolean): RemapOutcome {
    const out = this.last;
    out.status = 'dropped';
    out.reason = reason;
    const faultSid = sid === SID_UNKNOWN ? FAULT_SID_UNKNOWN : sid & U16;
    this.trace('vtd_ir_fault', { sid: faultSid, reason, index, fpd });
    // IR faults carry no address; T is clear (QEMU records them like writes).
    this.core.recordFault(faultSid, reason, 0, true, { fpd, irIndex: index });
    return out;
  }

  private trace(event: string, fields: Record<string, number | bigint | boolean>): void {
    if (this.core.tracer.enabled(event)) this.core.tracer.trace(event, fields);
  }
}
