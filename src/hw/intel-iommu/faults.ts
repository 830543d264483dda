/**
 * Primary fault logging (VT-d spec 7.2.1) as QEMU does it: FPD suppression of
 * qualified faults, primary fault overflow (PFO), collapse of faults from a
 * source ID that already has one pending, the fault recording registers
 * (FRCD: F, T, FR, SID, PP/PV, FI), PPF derived from the F bits, FRI, and the
 * fault event (FECTL.IP / IM, MSI via FEADDR/FEDATA straight to the APIC bus,
 * not through interrupt remapping).  The next record index lives in the
 * unit's state record (state.ts); the functions take the FaultUnit role.
 *
 *   FRCD[i] at FRO*16 + 16*i:  +0 FI (page address, or IR index << 48)
 *                              +8 SID 15:0, PP 31;  +12 FR 7:0, PV 27:8, T 30, F 31
 */
import { hi32 } from '../../memory/address.js';
import type { FaultExtra } from './requests.js';
import type { FaultUnit } from './roles.js';
import { isQualifiedFault } from './fault-reasons.js';
import { EventCtl, Frcd, FRCD_SIZE, Fsts, Reg } from './reg-layout.js';
import { Trace, type FaultEvent } from './events.js';

const PAGE_LO_MASK = 0xffff_f000;
const DW = 4;

/** Offset of fault recording register `index`. */
export function frcdOffset(index: number): number {
  return Reg.FRCD0 + index * FRCD_SIZE;
}

/** True when FRCD[index].F is set. */
export function frcdPending(u: FaultUnit, index: number): boolean {
  return (u.regs.get32(frcdOffset(index) + 3 * DW) & Frcd.F) !== 0;
}

/** Recomputes FSTS.PPF from the F bits (QEMU vtd_update_fsts_ppf). */
export function updatePpf(u: FaultUnit): void {
  let any = false;
  for (let i = 0; i < u.config.nfr && !any; i++) any = frcdPending(u, i);
  u.regs.setClear32(Reg.FSTS, any ? Fsts.PPF : 0, Fsts.PPF);
}

/**
 * Sends the event interrupt of a control/data/address group: sets IP; if IM
 * is clear delivers the MSI and clears IP (QEMU vtd_generate_interrupt).
 */
export function signalEvent(u: FaultUnit, ctlOff: number, dataOff: number, addrOff: number, uaddrOff: number): void {
  u.regs.setClear32(ctlOff, EventCtl.IP, 0);
  if ((u.regs.get32(ctlOff) & EventCtl.IM) !== 0) return;
  deliverEvent(u, ctlOff, dataOff, addrOff, uaddrOff);
}

/** Delivers the group's MSI now and clears IP. */
export function deliverEvent(u: FaultUnit, ctlOff: number, dataOff: number, addrOff: number, uaddrOff: number): void {
  const addr = u.regs.get32(addrOff) + u.regs.get32(uaddrOff) * 2 ** 32;
  const data = u.regs.get32(dataOff);
  if (u.tracer.enabled(Trace.irqGenerate)) u.tracer.trace(Trace.irqGenerate, { addr, data });
  u.msi.deliverMsi(addr, data, { kind: 'iommu' });
  u.regs.setClear32(ctlOff, 0, EventCtl.IP);
}

/**
 * Raises the fault event unless an earlier condition is still pending
 * (QEMU vtd_generate_fault_event; `preFsts` is FSTS before the update).
 */
export function generateFaultEvent(u: FaultUnit, preFsts: number): void {
  if ((preFsts & (Fsts.PPF | Fsts.PFO | Fsts.IQE)) !== 0) return;
  if (u.tracer.enabled(Trace.faultEvent)) u.tracer.trace(Trace.faultEvent, { fsts: preFsts });
  signalEvent(u, Reg.FECTL, Reg.FEDATA, Reg.FEADDR, Reg.FEUADDR);
}

/** Sets FSTS bits and raises the fault event as for an invalidation queue error. */
export function raiseFaultStatus(u: FaultUnit, bits: number): void {
  const pre = u.regs.get32(Reg.FSTS);
  u.regs.setClear32(Reg.FSTS, bits, 0);
  generateFaultEvent(u, pre);
}

/**
 * Records a fault (QEMU vtd_report_fault / vtd_report_frcd_fault).  Faults
 * are not a hot path: the 'fault' event is built whether or not anyone
 * listens; trace calls are made only when the tracer asks for them.
 */
export function recordFault(u: FaultUnit, sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void {
  const irIndex = extra?.irIndex;
  const eventPasid = extra?.pasid;
  const announce = (outcome: FaultEvent['outcome'], index?: number): void => {
    u.events.emit('fault', {
      sid, reason, addr, isWrite,
      ...(irIndex !== undefined ? { irIndex } : {}),
      ...(eventPasid !== undefined ? { pasid: eventPasid } : {}),
      outcome,
      ...(index !== undefined ? { index } : {}),
    });
  };
  if (extra?.fpd && isQualifiedFault(reason)) {
    if (u.tracer.enabled(Trace.faultFpd)) u.tracer.trace(Trace.faultFpd, { sid, reason });
    announce('fpd');
    return;
  }
  if (u.tracer.enabled(Trace.fault)) u.tracer.trace(Trace.fault, { sid, fault: reason, addr, is_write: isWrite });
  const fsts = u.regs.get32(Reg.FSTS);
  if ((fsts & Fsts.PFO) !== 0) {
    announce('pfo');
    return;
  }
  for (let i = 0; i < u.config.nfr; i++) {
    if (frcdPending(u, i) && (u.regs.get32(frcdOffset(i) + 2 * DW) & Frcd.SID_MASK) === sid) {
      if (u.tracer.enabled(Trace.faultCollapse)) u.tracer.trace(Trace.faultCollapse, { sid, index: i });
      announce('collapsed');
      return;
    }
  }
  const index = u.state.nextFrcd;
  if (frcdPending(u, index)) {
    u.regs.setClear32(Reg.FSTS, Fsts.PFO, 0);
    if (u.tracer.enabled(Trace.faultPpfOverflow)) u.tracer.trace(Trace.faultPpfOverflow, { index });
    announce('overflow');
    return;
  }
  const off = frcdOffset(index);
  // Low qword: the page address, or for IR faults the interrupt index in bits 63:48.
  if (irIndex !== undefined) {
    u.regs.set32(off, 0);
    u.regs.set32(off + DW, ((irIndex & 0xffff) << Frcd.FI_SHIFT) >>> 0);
  } else {
    u.regs.set32(off, (addr & PAGE_LO_MASK) >>> 0);
    u.regs.set32(off + DW, hi32(addr));
  }
  const pasid = extra?.pasid;
  u.regs.set32(off + 2 * DW, ((sid & Frcd.SID_MASK) | (pasid !== undefined ? Frcd.PP : 0)) >>> 0);
  let top = (reason & Frcd.FR_MASK) | (isWrite ? 0 : Frcd.T);
  if (pasid !== undefined) top |= (pasid & Frcd.PV_MASK) << Frcd.PV_SHIFT;
  u.regs.set32(off + 3 * DW, top >>> 0);
  if ((fsts & Fsts.PPF) === 0) {
    u.regs.setClear32(Reg.FSTS, (index << Fsts.FRI_SHIFT) >>> 0, Fsts.FRI_MASK);
  }
  u.regs.setClear32(off + 3 * DW, Frcd.F, 0);
  if (u.tracer.enabled(Trace.faultRecord)) u.tracer.trace(Trace.faultRecord, { index, hi: u.regs.get64(off + 8), lo: u.regs.get64(off) });
  updatePpf(u);
  u.state.nextFrcd = index + 1 === u.config.nfr ? 0 : index + 1;
  announce('recorded', index);
  // No event while an earlier record is pending (generateFaultEvent checks PPF in `fsts`).
  generateFaultEvent(u, fsts);
}
