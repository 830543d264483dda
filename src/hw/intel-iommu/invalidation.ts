/**
 * Cache invalidation (VT-d spec 6.5): the operations shared by the register
 * interface and the invalidation queue, and the register-based interface
 * (CCMD at 0x28, IOTLB at IRO*16 + 8 with IVA) as QEMU implements it:
 * domain-selective context invalidation is performed as global; device-
 * selective uses SID + FM; IOTLB global / domain / page (AM <= MAMV, else the
 * request is not done: IAIG = 0); the actual granularity is written back
 * and ICC / IVT cleared.  While queued invalidation is enabled the registers
 * are ignored (ICC / IVT stay set).
 */
import type {
  ContextInvalidation,
  InvalidationSource,
  IotlbInvalidation,
  PasidCacheInvalidation,
  PasidIotlbInvalidation,
} from './requests.js';
import type { InvalidationUnit } from './roles.js';
import { MAMV } from './caps.js';
import { Trace, type InvalidateEvent } from './events.js';
import { CcmdHi, CcmdLo, CtxGranularity, IotlbGranularity, IotlbHi, Iva, Reg } from './reg-layout.js';

/** FM values -> devfn bits ignored when matching (spec 6.5.1.1: FM masks SID bits 2:0). */
export const FM_DEVFN_MASK: readonly number[] = [0, 0x4, 0x6, 0x7];
const PAGE_LO_MASK = 0xffff_f000;

/** Any invalidation request: its kind and the fields of that kind. */
type Request = ContextInvalidation | IotlbInvalidation | PasidIotlbInvalidation | PasidCacheInvalidation;

/**
 * Emits the 'invalidate' event of a performed request: its kind as the
 * granularity and its own fields (a global request has none).
 */
function report(u: InvalidationUnit, cache: InvalidateEvent['cache'], inv: Request, source: InvalidationSource): void {
  // A full queue of descriptors (32,768) must stay cheap: build nothing when no one listens.
  if (u.events.listenerCount('invalidate') === 0) return;
  const { kind, ...fields } = inv;
  u.events.emit('invalidate', { cache, granularity: kind, ...fields, source });
}

/** Invalidates context-cache entries (QEMU vtd_context_global/device_invalidate). */
export function invalidateContext(u: InvalidationUnit, inv: ContextInvalidation, source: InvalidationSource): void {
  if (inv.kind === 'device') {
    if (u.tracer.enabled(Trace.ccDevice)) u.tracer.trace(Trace.ccDevice, { sid: inv.sid, fm: inv.fm });
    const ignore = FM_DEVFN_MASK[inv.fm & 3]!;
    const bus = (inv.sid >>> 8) & 0xff;
    const devfn = inv.sid & 0xff & ~ignore;
    // QEMU also re-decides the pass-through switch of each matching device.
    u.passThrough.decideMatching(bus, devfn, ignore);
    for (const t of u.translators()) {
      if (t.requester.busNumber() === bus && (t.requester.devfn & ~ignore) === devfn) {
        t.invalidateContextCache();
        t.refreshBypass();
      }
    }
  } else {
    if (u.tracer.enabled(Trace.ccGlobal)) u.tracer.trace(Trace.ccGlobal, {});
    u.bumpContextGeneration();
    u.refreshAddressSpaces();
  }
  if (u.notifiers.active) u.notifiers.contextInvalidated(inv);
  report(u, 'context', inv, source);
}

/** Invalidates IOTLB entries (QEMU vtd_iotlb_global/domain/page_invalidate). */
export function invalidateIotlb(u: InvalidationUnit, inv: IotlbInvalidation, source: InvalidationSource): void {
  switch (inv.kind) {
    case 'global':
      if (u.tracer.enabled(Trace.iotlbGlobal)) u.tracer.trace(Trace.iotlbGlobal, {});
      u.iotlb.clear();
      break;
    case 'domain':
      if (u.tracer.enabled(Trace.iotlbDomain)) u.tracer.trace(Trace.iotlbDomain, { domain: inv.did });
      u.iotlb.removeDomain(inv.did);
      break;
    case 'page':
      if (u.tracer.enabled(Trace.iotlbPages)) u.tracer.trace(Trace.iotlbPages, { domain: inv.did, addr: inv.addr, mask: inv.am });
      u.iotlb.removePages(inv.did, inv.addr, inv.am);
      break;
  }
  if (u.notifiers.active) u.notifiers.iotlbInvalidated(inv);
  report(u, 'iotlb', inv, source);
}

/** CCMD written with ICC set (a 64-bit write or its high half): run the request. */
export function handleCcmdWrite(u: InvalidationUnit): void {
  const lo = u.regs.get32(Reg.CCMD);
  const hi = u.regs.get32(Reg.CCMD_HI);
  if ((hi & CcmdHi.ICC) === 0) return;
  if (u.qiEnabled()) return;
  const cirg = (hi >>> CcmdHi.CIRG_SHIFT) & CcmdHi.GRANULARITY_MASK;
  let caig = 0; // reserved granularities are not done
  switch (cirg) {
    case CtxGranularity.Domain:
    case CtxGranularity.Global:
      caig = CtxGranularity.Global;
      invalidateContext(u, { kind: 'global' }, 'register');
      break;
    case CtxGranularity.Device:
      caig = CtxGranularity.Device;
      invalidateContext(
        u,
        { kind: 'device', did: lo & CcmdLo.DID_MASK, sid: lo >>> CcmdLo.SID_SHIFT, fm: hi & CcmdHi.FM_MASK },
        'register',
      );
      break;
  }
  const caigMask = CcmdHi.GRANULARITY_MASK << CcmdHi.CAIG_SHIFT;
  u.regs.setClear32(Reg.CCMD_HI, (caig << CcmdHi.CAIG_SHIFT) >>> 0, (CcmdHi.ICC | caigMask) >>> 0);
}

/** IOTLB written with IVT set (a 64-bit write or its high half): run the request. */
export function handleIotlbWrite(u: InvalidationUnit): void {
  const hi = u.regs.get32(Reg.IOTLB_HI);
  if ((hi & IotlbHi.IVT) === 0) return;
  if (u.qiEnabled()) return;
  const did = hi & IotlbHi.DID_MASK;
  let iaig = 0; // reserved granularities and AM > MAMV are not done
  switch ((hi >>> IotlbHi.IIRG_SHIFT) & IotlbHi.GRANULARITY_MASK) {
    case IotlbGranularity.Global:
      iaig = IotlbGranularity.Global;
      invalidateIotlb(u, { kind: 'global' }, 'register');
      break;
    case IotlbGranularity.Domain:
      iaig = IotlbGranularity.Domain;
      invalidateIotlb(u, { kind: 'domain', did }, 'register');
      break;
    case IotlbGranularity.Page: {
      const ivaLo = u.regs.get32(Reg.IVA);
      const am = ivaLo & Iva.AM_MASK;
      if (am > MAMV) break;
      iaig = IotlbGranularity.Page;
      // Unsigned: IVA bit 31 set must not make the address negative.
      const addr = ((ivaLo & PAGE_LO_MASK) >>> 0) + u.regs.get32(Reg.IVA + 4) * 2 ** 32;
      invalidateIotlb(u, { kind: 'page', did, addr, am, ih: (ivaLo & Iva.IH) !== 0 }, 'register');
      break;
    }
  }
  const iaigMask = IotlbHi.GRANULARITY_MASK << IotlbHi.IAIG_SHIFT;
  u.regs.setClear32(Reg.IOTLB_HI, (iaig << IotlbHi.IAIG_SHIFT) >>> 0, (IotlbHi.IVT | iaigMask) >>> 0);
}

/** Whether a PASID-cache invalidation covers the PASID 0 entry of a requester whose entry holds `did`. */
function pasidCacheCovers(inv: PasidCacheInvalidation, did: number): boolean {
  if (inv.kind === 'global') return true;
  if (inv.did !== did) return false;
  return inv.kind === 'domain' || inv.pasid === 0;
}

/** PASID-based IOTLB invalidation (descriptor 6, QEMU vtd_piotlb_pasid/page_invalidate). */
export function invalidatePasidIotlb(u: InvalidationUnit, inv: PasidIotlbInvalidation): void {
  if (inv.kind === 'pasid') u.iotlb.removePasid(inv.did, inv.pasid);
  else u.iotlb.removePasidPages(inv.did, inv.pasid, inv.addr, inv.am);
  if (u.notifiers.active) u.notifiers.pasidIotlbInvalidated(inv);
  report(u, 'pasid-iotlb', inv, 'queue');
}

/**
 * PASID-cache invalidation (descriptor 7).  QEMU 11.1 keeps no PASID-cache
 * state for emulated devices (PASID entries are re-read on every IOTLB
 * miss), so cached translations stay until an IOTLB or PASID-based IOTLB
 * invalidation; what it does act on is the pass-through switch: requesters
 * a refresh put in pass-through, whose PASID 0 domain then the invalidation
 * covers (global; the domain; the domain and PASID 0), are decided again
 * (pass-through.ts).
 */
export function invalidatePasidCache(u: InvalidationUnit, inv: PasidCacheInvalidation): void {
  // In legacy mode no requester has a remembered PASID 0 domain: nothing is re-decided.
  u.passThrough.redecideCovered((did) => pasidCacheCovers(inv, did));
  for (const t of u.translators()) t.refreshBypass();
  if (u.notifiers.active) u.notifiers.pasidCacheInvalidated(inv);
  report(u, 'pasid', inv, 'queue');
}
