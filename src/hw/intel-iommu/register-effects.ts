/**
 * The rows of the VT-d register table (mmio.ts): which guest write has which
 * side effect and which read comes from somewhere other than the register
 * file, as QEMU 11.1's vtd_mem_write / vtd_mem_read decide by the exact
 * offset accessed.
 *
 *   GCMD              the global command (gcmd.ts), 4- or 8-byte write
 *   CCMD, IOTLB       register-based invalidation (invalidation.ts): an
 *                     8-byte write, or a write of the high half
 *   FSTS              FECTL.IP drops once nothing is pending; IQER follows
 *   FECTL, IECTL      unmasking with IP set sends the deferred event; an
 *                     8-byte write stores the control register only (QEMU
 *                     11.1 logs and truncates; 7.2 asserted), PECTL too
 *   ICS               clearing IWC drops IECTL.IP
 *   IQT               the invalidation queue runs (queue.ts)
 *   IQA (read)        the base latched at QIE enable, from the queue
 *   PRS, PECTL        with svm=on, the page-request queue (page-requests.ts):
 *                     PRS with PPR and PRO clear drops PECTL.IP; unmasking
 *                     PECTL with IP set sends the deferred event.  PQH, PQT
 *                     and PQA have no side effect (the queue reads them when
 *                     a request comes)
 *   FRCD high dwords  a write that may clear F recomputes FSTS.PPF: the
 *                     last dword, or an 8-byte write of the high qword
 *
 * QEMU truncates 8-byte writes at GCMD and IEADDR too, but their upper
 * neighbours, GSTS and IEUADDR, are read-only: not observable, no row.
 */
import { Trace } from './events.js';
import { deliverEvent, frcdOffset, updatePpf } from './faults.js';
import { handleGcmdWrite } from './gcmd.js';
import { handleCcmdWrite, handleIotlbWrite } from './invalidation.js';
import type { RegisterRow } from './mmio.js';
import { EventCtl, Fsts, Ics, Reg } from './reg-layout.js';
import type { RegisterEffectsUnit } from './roles.js';

const DW = 4;
/** Fault status bits that keep FECTL.IP pending (QEMU vtd_handle_fsts_write). */
const FSTS_PENDING = Fsts.PFO | Fsts.PPF | Fsts.IQE;

/** FSTS written (W1C applied): IP drops when nothing is pending any more; the queue's IQER follows. */
function fstsWritten(u: RegisterEffectsUnit): void {
  const regs = u.regs;
  if ((regs.get32(Reg.FECTL) & EventCtl.IP) !== 0 && (regs.get32(Reg.FSTS) & FSTS_PENDING) === 0) {
    regs.setClear32(Reg.FECTL, 0, EventCtl.IP);
    if (u.tracer.enabled(Trace.fstsClearIp)) u.tracer.trace(Trace.fstsClearIp, {});
  }
  u.queue.onFstsWrite();
}

/** FECTL written: unmasking with IP set sends the deferred fault event. */
function fectlWritten(u: RegisterEffectsUnit): void {
  const v = u.regs.get32(Reg.FECTL);
  if (u.tracer.enabled(Trace.fectlWrite)) u.tracer.trace(Trace.fectlWrite, { value: v });
  if ((v & EventCtl.IP) !== 0 && (v & EventCtl.IM) === 0) deliverEvent(u, Reg.FECTL, Reg.FEDATA, Reg.FEADDR, Reg.FEUADDR);
}

/** ICS written (W1C applied): IWC clear drops a pending completion interrupt (clearing a clear IP changes nothing). */
function icsWritten(u: RegisterEffectsUnit): void {
  if ((u.regs.get32(Reg.ICS) & Ics.IWC) === 0) u.regs.setClear32(Reg.IECTL, 0, EventCtl.IP);
}

/** IECTL written: unmasking with IP set sends the deferred completion event. */
function iectlWritten(u: RegisterEffectsUnit): void {
  const v = u.regs.get32(Reg.IECTL);
  if ((v & EventCtl.IP) !== 0 && (v & EventCtl.IM) === 0) deliverEvent(u, Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
}

/** The register table rows of unit `u` (built once, at creation). */
export function vtdRegisterRows(u: RegisterEffectsUnit): RegisterRow[] {
  const ppf = (): void => updatePpf(u);
  const rows: RegisterRow[] = [
    { off: Reg.GCMD, write: () => handleGcmdWrite(u) },
    { off: Reg.CCMD, write: () => handleCcmdWrite(u), qwordOnly: true },
    { off: Reg.CCMD_HI, write: () => handleCcmdWrite(u) },
    { off: Reg.IOTLB, write: () => handleIotlbWrite(u), qwordOnly: true },
    { off: Reg.IOTLB_HI, write: () => handleIotlbWrite(u) },
    { off: Reg.FSTS, write: () => fstsWritten(u) },
    { off: Reg.FECTL, write: () => fectlWritten(u), truncate64: true },
    { off: Reg.IQT, write: () => u.queue.onIqtWrite() },
    { off: Reg.IQA, read: () => u.queue.iqaLow() },
    { off: Reg.IQA + DW, read: () => u.queue.iqaHigh() },
    { off: Reg.ICS, write: () => icsWritten(u) },
    { off: Reg.IECTL, write: () => iectlWritten(u), truncate64: true },
  ];
  // Without the queue (no ECAP.PRS) the page-request registers are not defined: they read 0 and
  // ignore writes, so an 8-byte write at PECTL needs no truncation row there.
  const pr = u.pageRequests;
  if (pr !== null) {
    rows.push({ off: Reg.PRS, write: () => pr.onPrsWrite() }, { off: Reg.PECTL, write: () => pr.onPectlWrite(), truncate64: true });
  }
  for (let i = 0; i < u.config.nfr; i++) {
    const off = frcdOffset(i);
    rows.push({ off: off + 2 * DW, write: ppf, qwordOnly: true }, { off: off + 3 * DW, write: ppf });
  }
  return rows;
}
