/**
 * The DMA translator of one requester (QEMU's VTDAddressSpace translate
 * path, vtd_do_iommu_translate): IOTLB first (keyed by the source ID computed
 * now, since the guest may renumber buses), then the requester's context-
 * cache entry (valid while its generation matches the unit's), then root /
 * context lookup and the second-stage walk; faults are recorded with the
 * context entry's FPD.  Pass-through contexts translate 1:1 and are not
 * cached in the IOTLB.  With translation disabled every address maps 1:1.
 *
 * The hit path allocates nothing.
 */
import { DmaAccess, type DmaRequester, type DmaTranslator, type IotlbEntry, IommuPerm } from '../../memory/iommu.js';
import type { IntelIommu } from './device.js';
import type { VtdIotlbEntry } from './iotlb.js';
import { Trace } from './events.js';
import type { Iova } from '../../memory/address.js';
import { LEVEL_SIZE, newWalkResult, walkSecondStage } from './page-walk.js';
import {
  ctxAgaw,
  ctxDid,
  ctxFpd,
  ctxLevels,
  ctxTableBase,
  ctxType,
  lookupContext,
  newContextEntry,
  TranslationType,
} from './root-context.js';

const PAGE_4K = LEVEL_SIZE[1]!;
const BYTE = 0xff;
const BUS_SHIFT = 8;

/**
 * Fault details of page-walk faults (shared, never mutated).  A request
 * without PASID records PP=0 and PV=0 (spec 11.4.11, QEMU 11.1; QEMU 7.2
 * wrote its PCI_NO_PASID, 0xFFFF, into PV).
 */
const WALK_FAULT = { fpd: false } as const;
const WALK_FAULT_FPD = { fpd: true } as const;

/** Source ID of a requester: bus << 8 | devfn. */
export function sourceId(req: DmaRequester): number {
  return ((req.busNumber() & BYTE) << BUS_SHIFT) | (req.devfn & BYTE);
}

/** Base of the page of `size` bytes (a power of two up to 1 GiB) holding `addr`: integer AND, no float remainder. */
function pageBase(addr: number, size: number): number {
  return addr - (addr & (size - 1));
}

function identity(iova: number, out: IotlbEntry): void {
  out.iova = pageBase(iova, PAGE_4K);
  out.translated = out.iova;
  out.addrMask = PAGE_4K - 1;
  out.perm = IommuPerm.ReadWrite;
}

/** Fills `out` from an IOTLB entry. */
function fromIotlb(hit: VtdIotlbEntry, out: IotlbEntry): void {
  out.iova = hit.iova;
  out.translated = hit.translated;
  out.addrMask = hit.size - 1;
  out.perm = hit.perm;
}

function fail(out: IotlbEntry): void {
  out.iova = 0;
  out.translated = 0;
  out.addrMask = 0;
  out.perm = IommuPerm.None;
}

/** The translator of one requester. */
export class VtdTranslator implements DmaTranslator {
  /** Context-cache generation of `ce` (0: invalid). */
  private ccGen = 0;
  private readonly ce = newContextEntry();
  private readonly walk = newWalkResult();
  /** QEMU's pass-through switch: DMA bypasses the IOMMU (pass-through.ts). */
  private bypass: boolean;

  constructor(
    private readonly u: IntelIommu,
    /** The requester this translator serves. */
    readonly requester: DmaRequester,
  ) {
    this.bypass = u.passThrough.isPassThrough(sourceId(requester));
  }

  /** Drops the cached context entry (device-selective context invalidation). */
  invalidateContextCache(): void {
    this.ccGen = 0;
  }

  /** Takes the unit's recorded pass-through decision for this requester's source ID. */
  refreshBypass(): void {
    this.bypass = this.u.passThrough.isPassThrough(sourceId(this.requester));
  }

  /** True while a context entry is cached (tests). */
  get contextCached(): boolean {
    return this.ccGen !== 0 && this.ccGen === this.u.contextGeneration;
  }

  /**
   * The part of `translate` nobody can observe (DmaTranslator.peek): the
   * identity while translation is off or bypassed, else an IOTLB hit while
   * hits are neither traced nor listened to.  Keep in step with the first
   * branches of `translate`.
   */
  peek(iova: Iova, _access: DmaAccess, out: IotlbEntry): boolean {
    const u = this.u;
    if (!u.dmarEnabled || this.bypass) {
      identity(iova, out);
      return true;
    }
    if (u.traceHits || u.events.translateListened) return false;
    const hit = u.iotlb.lookup(sourceId(this.requester), iova);
    if (hit === undefined) return false;
    fromIotlb(hit, out);
    return true;
  }

  translate(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean {
    const u = this.u;
    if (!u.dmarEnabled || this.bypass) {
      identity(iova, out);
      return true;
    }
    const sid = sourceId(this.requester);
    const isWrite = access === DmaAccess.Write;
    const hit = u.iotlb.lookup(sid, iova);
    if (hit !== undefined) {
      fromIotlb(hit, out);
      if (u.traceHits) u.tracer.trace(Trace.iotlbHit, { sid, addr: iova, did: hit.did });
      if (u.events.translateListened) this.emit(sid, iova, out, true, false);
      return true;
    }
    const ce = this.ce;
    if (this.ccGen !== u.contextGeneration) {
      const bus = sid >>> BUS_SHIFT;
      const r = lookupContext(u.memory, u.rootTable, bus, sid & BYTE, u.ctxRules, ce);
      if (r !== 0) {
        u.recordFault(sid, r, iova, isWrite, { fpd: ce.read && ctxFpd(ce) });
        fail(out);
        return false;
      }
      if (u.tracer.enabled(Trace.ccUpdate)) u.tracer.trace(Trace.ccUpdate, { bus, devfn: sid & BYTE, hi: ce.hi.lo, lo: ce.lo.lo });
      this.ccGen = u.contextGeneration;
    }
    if (ctxType(ce) === TranslationType.PassThrough) {
      identity(iova, out);
      // QEMU vtd_pt_enable_fast_path: re-decide from memory, usually switching to the bypass.
      this.bypass = u.passThrough.decide(sid);
      if (u.events.translateListened) this.emit(sid, iova, out, false, true);
      return true;
    }
    const w = this.walk;
    const r = walkSecondStage(u.memory, u.walkRules, ctxTableBase(ce), ctxLevels(ce), ctxAgaw(ce), iova, isWrite, w);
    if (r !== 0) {
      u.recordFault(sid, r, iova, isWrite, ctxFpd(ce) ? WALK_FAULT_FPD : WALK_FAULT);
      fail(out);
      return false;
    }
    const did = ctxDid(ce);
    if (u.iotlb.insert(sid, did, iova, w.level, w.translated, w.perm) && u.tracer.enabled(Trace.iotlbReset)) {
      u.tracer.trace(Trace.iotlbReset, { reason: 'iotlb exceeds size limit' });
    }
    if (u.tracer.enabled(Trace.iotlbUpdate)) u.tracer.trace(Trace.iotlbUpdate, { sid, addr: iova, did });
    const size = LEVEL_SIZE[w.level]!;
    out.iova = pageBase(iova, size);
    out.translated = w.translated;
    out.addrMask = size - 1;
    out.perm = w.perm;
    if (u.events.translateListened) this.emit(sid, iova, out, false, false);
    return true;
  }

  interruptWrite(addr: number, data: number): void {
    this.u.interruptWrite(addr, data, sourceId(this.requester));
  }

  private emit(sid: number, iova: number, out: IotlbEntry, cached: boolean, passthrough: boolean): void {
    this.u.events.emit('translate', {
      sid,
      iova,
      translated: out.translated + (iova - out.iova),
      addrMask: out.addrMask,
      perm: out.perm,
      cached,
      passthrough,
    });
  }
}
