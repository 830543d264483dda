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
import { Trace } from './events.js';
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

/** QEMU's PCI_NO_PASID as its FRCD.PV macro records it (16 bits kept). */
const NO_PASID_PV = 0xffff;
/** Fault details of page-walk faults (shared, never mutated). */
const WALK_FAULT = { fpd: false, pv: NO_PASID_PV } as const;
const WALK_FAULT_FPD = { fpd: true, pv: NO_PASID_PV } as const;

/** Source ID of a requester: bus << 8 | devfn. */
export function sourceId(req: DmaRequester): number {
  return ((req.busNumber() & BYTE) << BUS_SHIFT) | (req.devfn & BYTE);
}

function identity(iova: number, out: IotlbEntry): void {
  out.iova = iova - (iova % PAGE_4K);
  out.translated = out.iova;
  out.addrMask = PAGE_4K - 1;
  out.perm = IommuPerm.ReadWrite;
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

  constructor(
    private readonly u: IntelIommu,
    /** The requester this translator serves. */
    readonly requester: DmaRequester,
  ) {}

  /** Drops the cached context entry (device-selective context invalidation). */
  invalidateContextCache(): void {
    this.ccGen = 0;
  }

  /** True while a context entry is cached (tests). */
  get contextCached(): boolean {
    return this.ccGen !== 0 && this.ccGen === this.u.contextGeneration;
  }

  translate(iova: number, access: DmaAccess, out: IotlbEntry): boolean {
    const u = this.u;
    if (!u.dmarEnabled) {
      identity(iova, out);
      return true;
    }
    const sid = sourceId(this.requester);
    const isWrite = access === DmaAccess.Write;
    const hit = u.iotlb.lookup(sid, iova);
    if (hit !== undefined) {
      out.iova = hit.iova;
      out.translated = hit.translated;
      out.addrMask = hit.size - 1;
      out.perm = hit.perm;
      if (u.traceHits) u.tracer.trace(Trace.iotlbHit, { sid, addr: iova, did: hit.did });
      if (u.events.listenerCount('translate') > 0) this.emit(sid, iova, out, true, false);
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
      if (u.events.listenerCount('translate') > 0) this.emit(sid, iova, out, false, true);
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
    out.iova = iova - (iova % size);
    out.translated = w.translated;
    out.addrMask = size - 1;
    out.perm = w.perm;
    if (u.events.listenerCount('translate') > 0) this.emit(sid, iova, out, false, false);
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
