/**
 * The register window's MMIO handlers (QEMU vtd_mem_read / vtd_mem_write):
 * 4- and 8-byte accesses (the bus refuses other widths and unaligned ones),
 * stores through the register file's masks, then the side effect chosen by
 * the exact offset written:
 *   GCMD -> gcmd.ts; CCMD / IOTLB: only a 64-bit write or a write of the high
 *   half triggers; FSTS / FECTL -> fault event rules; FRCD high dwords ->
 *   PPF; IQT / IQA / ICS / IECTL -> extension hooks (ICS / IECTL IP rules are
 *   applied here too, as QEMU does).
 * An 8-byte write to FECTL, IECTL or PECTL stores the 32-bit register only and
 * leaves the data register after it alone (QEMU 11.1 logs and truncates it;
 * 7.2 asserted).  QEMU truncates at GCMD and IEADDR too, but their upper
 * neighbours, GSTS and IEUADDR, are read-only: not observable.  IQA reads
 * return the latched base plus QS and DW (11.1: DW is writable and read
 * back even in legacy mode, where the queue stays 128-bit).
 * Accesses running past the end of the file read all-ones and are dropped.
 */
import type { MmioOps } from '../../memory/region.js';
import type { IntelIommu } from './device.js';
import { Trace } from './events.js';
import { deliverEvent, updatePpf } from './faults.js';
import { handleGcmdWrite } from './gcmd.js';
import { handleCcmdWrite, handleIotlbWrite } from './invalidation.js';
import { EventCtl, FRCD_SIZE, Fsts, Ics, Iqa, Reg } from './reg-layout.js';

const DW = 4;
const QW = 8;
const ALL_ONES_32 = 0xffff_ffff;
const ALL_ONES_64 = 0xffff_ffff_ffff_ffffn;
const LO_MASK = 0xffff_ffffn;

/** 32-bit registers whose 8-byte writes are truncated to them (the writable data register follows). */
const DWORD_REGS: ReadonlySet<number> = new Set([Reg.FECTL, Reg.IECTL, Reg.PECTL]);
/** The IQA low-word fields a read returns besides the latched base. */
const IQA_FIELDS = Iqa.QS_MASK | Iqa.DW;

/** The MMIO ops of one unit. */
export class VtdMmio implements MmioOps {
  constructor(private readonly u: IntelIommu) {}

  private word(off: number): number {
    for (const h of this.u.hooks) {
      const v = h.readOverride?.(off);
      if (v !== undefined) return v >>> 0;
    }
    // IQA reads the base latched at QIE enable plus the live QS and DW fields (QEMU 11.1 vtd_mem_read).
    if (off === Reg.IQA) return ((this.u.iqBase >>> 0) | (this.u.regs.read32(Reg.IQA) & IQA_FIELDS)) >>> 0;
    if (off === Reg.IQA + DW) return Math.floor(this.u.iqBase / 2 ** 32) >>> 0;
    return this.u.regs.read32(off);
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (this.u.tracer.enabled(Trace.regRead)) this.u.tracer.trace(Trace.regRead, { addr: offset, size });
    if (offset + size > this.u.regs.size || size !== DW) return ALL_ONES_32;
    return this.word(offset);
  }

  read64(offset: number): bigint {
    if (this.u.tracer.enabled(Trace.regRead)) this.u.tracer.trace(Trace.regRead, { addr: offset, size: QW });
    if (offset + QW > this.u.regs.size) return ALL_ONES_64;
    return (BigInt(this.word(offset + DW)) << 32n) | BigInt(this.word(offset));
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.u.tracer.enabled(Trace.regWrite)) this.u.tracer.trace(Trace.regWrite, { addr: offset, size, val: value });
    if (offset + size > this.u.regs.size || size !== DW) return;
    this.u.regs.write32(offset, value);
    this.after(offset, DW);
  }

  write64(offset: number, value: bigint): void {
    if (this.u.tracer.enabled(Trace.regWrite)) this.u.tracer.trace(Trace.regWrite, { addr: offset, size: QW, val: value });
    if (offset + QW > this.u.regs.size) return;
    this.u.regs.write32(offset, Number(value & LO_MASK));
    if (DWORD_REGS.has(offset)) {
      this.after(offset, DW);
      return;
    }
    this.u.regs.write32(offset + DW, Number((value >> 32n) & LO_MASK));
    this.after(offset, QW);
  }

  /** Side effects of a write that started at `off`. */
  private after(off: number, size: number): void {
    const u = this.u;
    switch (off) {
      case Reg.GCMD:
        handleGcmdWrite(u);
        return;
      case Reg.CCMD:
        if (size === QW) handleCcmdWrite(u);
        return;
      case Reg.CCMD_HI:
        handleCcmdWrite(u);
        return;
      case Reg.IOTLB:
        if (size === QW) handleIotlbWrite(u);
        return;
      case Reg.IOTLB_HI:
        handleIotlbWrite(u);
        return;
      case Reg.FSTS: {
        const pending = Fsts.PFO | Fsts.PPF | Fsts.IQE;
        if ((u.regs.get32(Reg.FECTL) & EventCtl.IP) !== 0 && (u.regs.get32(Reg.FSTS) & pending) === 0) {
          u.regs.setClear32(Reg.FECTL, 0, EventCtl.IP);
          if (u.tracer.enabled(Trace.fstsClearIp)) u.tracer.trace(Trace.fstsClearIp, {});
        }
        for (const h of u.hooks) h.onFstsWrite?.();
        return;
      }
      case Reg.FECTL: {
        const v = u.regs.get32(Reg.FECTL);
        if (u.tracer.enabled(Trace.fectlWrite)) u.tracer.trace(Trace.fectlWrite, { value: v });
        if ((v & EventCtl.IP) !== 0 && (v & EventCtl.IM) === 0) deliverEvent(u, Reg.FECTL, Reg.FEDATA, Reg.FEADDR, Reg.FEUADDR);
        return;
      }
      case Reg.IQT:
        for (const h of u.hooks) h.onIqtWrite?.();
        return;
      case Reg.IQA:
        for (const h of u.hooks) h.onIqaWrite?.();
        return;
      case Reg.ICS:
        if ((u.regs.get32(Reg.IECTL) & EventCtl.IP) !== 0 && (u.regs.get32(Reg.ICS) & Ics.IWC) === 0) {
          u.regs.setClear32(Reg.IECTL, 0, EventCtl.IP);
        }
        for (const h of u.hooks) h.onIcsWrite?.();
        return;
      case Reg.IECTL: {
        const v = u.regs.get32(Reg.IECTL);
        if ((v & EventCtl.IP) !== 0 && (v & EventCtl.IM) === 0) deliverEvent(u, Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
        for (const h of u.hooks) h.onIectlWrite?.();
        return;
      }
    }
    // Fault recording registers: writes that may clear F update PPF.
    const rel = off - Reg.FRCD0;
    if (rel >= 0 && rel < u.config.nfr * FRCD_SIZE) {
      const within = rel % FRCD_SIZE;
      if ((within === 2 * DW && size === QW) || within === 3 * DW) updatePpf(u);
    }
  }
}
