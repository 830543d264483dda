/**
 * Global command handling (VT-d spec 10.4.4, QEMU vtd_handle_gcmd_write).
 * changed = GSTS ^ written.  Persistent bits act on change: TE, QIE, IRE
 * (and CFI, left to an extension).  One-shot bits act whenever written as 1:
 * SRTP (latch RTADDR, set RTPS, flush caches), SIRTP (set IRTPS, the
 * interrupt-remapping extension latches IRTA).  RTPS / IRTPS never clear
 * except on reset, so the common `GSTS | bit` write repeats SRTP / SIRTP.
 * SFL, EAFL and WBF are ignored.
 */
import type { IntelIommu } from './device.js';
import { Trace } from './events.js';
import { Gcmd, Gsts, Reg } from './reg-layout.js';

/** Address bits of RTADDR / IQA low dwords (bits 31:12). */
const RTADDR_LO_MASK = 0xffff_f000;
/** RTADDR bit 10: scalable-mode root table (spec 11.4.5, TTM = 01b). */
const RTADDR_SMT = 1 << 10;

/** Handles a write to GCMD (already stored through the masks). */
export function handleGcmdWrite(u: IntelIommu): void {
  const status = u.regs.get32(Reg.GSTS);
  const val = u.regs.get32(Reg.GCMD);
  const changed = status ^ val;
  if (u.tracer.enabled(Trace.gcmd)) u.tracer.trace(Trace.gcmd, { status, val });
  if ((changed & Gcmd.TE) !== 0 && u.config.dmaTranslation) setTranslation(u, (val & Gcmd.TE) !== 0);
  if ((val & Gcmd.SRTP) !== 0) setRootTablePointer(u);
  if ((changed & Gcmd.QIE) !== 0) setQueuedInvalidation(u, (val & Gcmd.QIE) !== 0);
  if ((val & Gcmd.SIRTP) !== 0) {
    u.regs.setClear32(Reg.GSTS, Gsts.IRTPS, 0);
    for (const h of u.hooks) h.onSirtp?.();
  }
  if ((changed & Gcmd.IRE) !== 0 && u.config.intremap) {
    const on = (val & Gcmd.IRE) !== 0;
    u.regs.setClear32(Reg.GSTS, on ? Gsts.IRES : 0, on ? 0 : Gsts.IRES);
    for (const h of u.hooks) h.onIreChange?.(on);
  }
  if ((changed & Gcmd.CFI) !== 0) for (const h of u.hooks) h.onCfiChange?.((val & Gcmd.CFI) !== 0);
}

function setTranslation(u: IntelIommu, on: boolean): void {
  if (u.tracer.enabled(Trace.dmarEnable)) u.tracer.trace(Trace.dmarEnable, { en: on });
  u.dmarEnabled = on;
  if (on) {
    u.regs.setClear32(Reg.GSTS, Gsts.TES, 0);
  } else {
    u.nextFrcd = 0;
    u.regs.setClear32(Reg.GSTS, 0, Gsts.TES);
  }
  u.resetCaches();
}

function setRootTablePointer(u: IntelIommu): void {
  const lo = (u.regs.get32(Reg.RTADDR) & RTADDR_LO_MASK) >>> 0;
  const hi = u.regs.get32(Reg.RTADDR + 4) & u.walkRules.hawHiMask;
  u.rootTable = lo + hi * 2 ** 32;
  u.scalable = u.config.scalableMode && (u.regs.get32(Reg.RTADDR) & RTADDR_SMT) !== 0;
  if (u.tracer.enabled(Trace.rootPointer)) u.tracer.trace(Trace.rootPointer, { root: u.rootTable, scalable: u.scalable });
  u.regs.setClear32(Reg.GSTS, Gsts.RTPS, 0);
  u.resetCaches();
}

function setQueuedInvalidation(u: IntelIommu, enable: boolean): void {
  // QEMU reports QIES before it processes a queue whose tail is already set.
  if (enable) u.regs.setClear32(Reg.GSTS, Gsts.QIES, 0);
  let accepted = true;
  for (const h of u.hooks) {
    if (h.onQieChange && !h.onQieChange(enable)) accepted = false;
  }
  if (enable && !accepted) u.regs.setClear32(Reg.GSTS, 0, Gsts.QIES);
  if (enable && accepted) {
    // IQA reads return the base latched here (QEMU s->iq), masked to the host address width.
    u.iqBase = ((u.regs.get32(Reg.IQA) & RTADDR_LO_MASK) >>> 0) + (u.regs.get32(Reg.IQA + 4) & u.walkRules.hawHiMask) * 2 ** 32;
  }
  if (!enable && accepted) u.regs.setClear32(Reg.GSTS, 0, Gsts.QIES);
}
