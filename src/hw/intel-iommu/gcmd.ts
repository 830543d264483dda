/**
 * Global command handling (VT-d spec 10.4.4, QEMU vtd_handle_gcmd_write).
 * changed = GSTS ^ written.  Persistent bits act on change: TE (the state
 * record's translation flag, GSTS.TES with it), QIE (the invalidation queue,
 * which reports QIES), IRE (the interrupt remapper, which reports IRES; only
 * with intremap) and CFI (the remapper, which reports CFIS only with
 * `x-cfi`).  One-shot bits act whenever written as 1: SRTP (latch RTADDR,
 * set RTPS, flush caches), SIRTP (the remapper sets IRTPS and latches IRTA).
 * RTPS / IRTPS never clear except on reset, so the common `GSTS | bit`
 * write repeats SRTP / SIRTP.  SFL, EAFL and WBF are ignored.
 */
import { Trace } from './events.js';
import { Gcmd, Gsts, Reg } from './reg-layout.js';
import type { GcmdUnit } from './roles.js';

/** Address bits of the RTADDR low dword (bits 31:12). */
const RTADDR_LO_MASK = 0xffff_f000;
/** RTADDR bit 10: scalable-mode root table (spec 11.4.5, TTM = 01b). */
const RTADDR_SMT = 1 << 10;

/** Handles a write to GCMD (already stored through the masks). */
export function handleGcmdWrite(u: GcmdUnit): void {
  const status = u.regs.get32(Reg.GSTS);
  const val = u.regs.get32(Reg.GCMD);
  const changed = status ^ val;
  if (u.tracer.enabled(Trace.gcmd)) u.tracer.trace(Trace.gcmd, { status, val });
  if ((changed & Gcmd.TE) !== 0 && u.config.dmaTranslation) setTranslation(u, (val & Gcmd.TE) !== 0);
  if ((val & Gcmd.SRTP) !== 0) setRootTablePointer(u);
  if ((changed & Gcmd.QIE) !== 0) u.queue.onQieChange((val & Gcmd.QIE) !== 0);
  if ((val & Gcmd.SIRTP) !== 0) u.remapper.onSirtp();
  if ((changed & Gcmd.IRE) !== 0 && u.config.intremap) u.remapper.onIreChange((val & Gcmd.IRE) !== 0);
  if ((changed & Gcmd.CFI) !== 0) u.remapper.onCfiChange((val & Gcmd.CFI) !== 0);
}

function setTranslation(u: GcmdUnit, on: boolean): void {
  if (u.tracer.enabled(Trace.dmarEnable)) u.tracer.trace(Trace.dmarEnable, { en: on });
  u.state.setTranslationEnabled(u.regs, on);
  if (!on) u.state.nextFrcd = 0;
  u.resetCaches();
}

function setRootTablePointer(u: GcmdUnit): void {
  const state = u.state;
  const lo = (u.regs.get32(Reg.RTADDR) & RTADDR_LO_MASK) >>> 0;
  const hi = u.regs.get32(Reg.RTADDR + 4) & u.walkRules.hawHiMask;
  state.rootTable = lo + hi * 2 ** 32;
  state.scalable = u.config.scalableMode && (u.regs.get32(Reg.RTADDR) & RTADDR_SMT) !== 0;
  if (u.tracer.enabled(Trace.rootPointer)) u.tracer.trace(Trace.rootPointer, { root: state.rootTable, scalable: state.scalable });
  u.regs.setClear32(Reg.GSTS, Gsts.RTPS, 0);
  u.resetCaches();
}
