/**
 * The DMA translator of one requester and PASID (QEMU's VTDAddressSpace
 * translate path, vtd_do_iommu_translate), orchestrating three stages:
 *
 *   cache    the IOTLB, keyed by the source ID computed now (the guest may
 *            renumber buses), the PASID and the page
 *   resolve  (source ID, PASID) to a translation config through the
 *            requester's context cache and the PASID table (resolve.ts)
 *   walk     the config's first-stage, second-stage or nested tables
 *            (walk-stage.ts)
 *
 * and deciding what happens to a fault: an untranslated request records it
 * (with the FPD in force and, for a request with a PASID, the PASID); an ATS
 * translation request only returns it.  Pass-through configs translate 1:1
 * and are not cached.  With translation disabled every address maps 1:1.
 *
 * Requests without a PASID see the interrupt window (0xFEE00000-0xFEEFFFFF,
 * remapped or passed to the APIC bus); in scalable mode they use PASID 0's
 * entry and IOTLB tag, as QEMU 11.1 does.  Requests with a PASID have no
 * interrupt window (spec 3.15: the range is translated; an output there
 * faults).  In legacy mode a request with a PASID is blocked without a
 * fault record (the unit has no PASID support to report it with).
 *
 * Translated requests (the device's ATC already translated them; PCIe AT
 * 10b) are checked as QEMU 11.1 does in scalable mode: without a PASID they
 * pass 1:1, with one they are refused without a record; in legacy mode they
 * are translated like untranslated ones (QEMU has no separate path there).
 * ATS translation requests are answered in ats.ts through `translate`.
 *
 * One place where vtemu follows the VT-d spec rather than QEMU (7.2 and
 * 11.1 alike): a write that hits a cached translation without write
 * permission faults (reason 5, or 0x85 for first stage) exactly as the same
 * write faults on an IOTLB miss; QEMU drops it without a record.
 *
 * The hit path allocates nothing.
 */
import { MSI_WINDOW } from '../../core/irq.js';
import {
  DmaAccess,
  DmaRequestKind,
  type DmaRequester,
  type DmaTranslator,
  type DmaWindow,
  type IotlbEntry,
  IommuPerm,
  NO_PASID,
} from '../../memory/iommu.js';
import type { Iova } from '../../memory/address.js';
import type { TranslatorUnit } from './roles.js';
import { Trace, type TranslateEvent } from './events.js';
import { VtdFault } from './fault-reasons.js';
import { PGTT_FIRST_STAGE, PGTT_LEGACY, PGTT_NESTED, type VtdIotlbEntry } from './iotlb.js';
import { LEVEL_SIZE, newWalkResult, type WalkResult } from './page-walk.js';
import { ContextCacheEntry, newTranslationConfig, resolveRequest } from './resolve.js';
import { Pgtt } from './scalable-context.js';
import { walkTranslation } from './walk-stage.js';

const PAGE_4K = LEVEL_SIZE[1]!;
const BYTE = 0xff;
const BUS_SHIFT = 8;

/** The interrupt window of requests without a PASID. */
export const VTD_INTERRUPT_WINDOW: DmaWindow = MSI_WINDOW;

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
  out.fault = 0;
}

/** Fills `out` from an IOTLB entry. */
function fromIotlb(hit: VtdIotlbEntry, out: IotlbEntry): void {
  out.iova = hit.iova;
  out.translated = hit.translated;
  out.addrMask = hit.size - 1;
  out.perm = hit.perm;
  out.fault = 0;
}

function fail(out: IotlbEntry, reason: number): void {
  out.iova = 0;
  out.translated = 0;
  out.addrMask = 0;
  out.perm = IommuPerm.None;
  out.fault = reason;
}

/**
 * The fault a later write hitting a translation gets (0 when it allows
 * writes): the reason the walk gives for that write, i.e. the first stage's
 * 0x85 when a first-stage entry denied it, else the second stage's 5.
 */
function writeFaultOf(pgtt: number, w: WalkResult): number {
  if ((w.perm & IommuPerm.Write) !== 0) return 0;
  if (pgtt === PGTT_FIRST_STAGE || (pgtt === PGTT_NESTED && !w.fsWrite)) return VtdFault.SM_WRITE;
  return VtdFault.WRITE;
}

/** The 'translate' event's name of each request kind. */
const KIND_NAMES: Readonly<Record<number, TranslateEvent['kind']>> = {
  [DmaRequestKind.Untranslated]: 'untranslated',
  [DmaRequestKind.TranslationRequest]: 'translation-request',
  [DmaRequestKind.Translated]: 'translated',
};

/** Reusable fault details (the fields are read synchronously by recordFault). */
interface FaultDetails {
  fpd: boolean;
  pasid: number | undefined;
}

/** The translator of one requester's address space for one PASID (or none). */
export class VtdTranslator implements DmaTranslator {
  /** The requester's context-cache entry. */
  private readonly cc = new ContextCacheEntry();
  private readonly cfg = newTranslationConfig();
  private readonly walk = newWalkResult();
  private readonly details: FaultDetails = { fpd: false, pasid: undefined };
  /** QEMU's pass-through switch: DMA bypasses the IOMMU (pass-through.ts); requests without a PASID only. */
  private bypass: boolean;
  readonly interruptWindow: DmaWindow | null;

  constructor(
    private readonly u: TranslatorUnit,
    /** The requester this translator serves. */
    readonly requester: DmaRequester,
    /** The PASID of its requests (NO_PASID: requests without one). */
    readonly pasid: number = NO_PASID,
  ) {
    this.interruptWindow = pasid === NO_PASID ? VTD_INTERRUPT_WINDOW : null;
    this.bypass = pasid === NO_PASID && u.passThrough.isPassThrough(sourceId(requester));
  }

  /** Drops the cached context entry (device-selective context invalidation). */
  invalidateContextCache(): void {
    this.cc.invalidate();
  }

  /** Takes the unit's recorded pass-through decision for this requester's source ID. */
  refreshBypass(): void {
    this.bypass = this.pasid === NO_PASID && this.u.passThrough.isPassThrough(sourceId(this.requester));
  }

  /** The cached context entry while it is valid, else null (read-only view for the inspector). */
  cachedContext(): Readonly<ContextCacheEntry> | null {
    return this.cc.valid(this.u) ? this.cc : null;
  }

  /** Snapshot: whether this space bypasses the IOMMU now (QEMU's address-space switch). */
  get bypassed(): boolean {
    return this.bypass;
  }

  /** Snapshot: sets the switch as saved (requests without a PASID only). */
  loadBypass(on: boolean): void {
    this.bypass = this.pasid === NO_PASID && on;
  }

  /** True while a context entry is cached (tests). */
  get contextCached(): boolean {
    return this.cc.valid(this.u);
  }

  /** The PASID this space's requests resolve with, and their IOTLB tag: NO_PASID in legacy mode, PASID 0 for none. */
  private spacePasid(): number {
    if (!this.u.scalable) return NO_PASID;
    return this.pasid === NO_PASID ? 0 : this.pasid;
  }

  /**
   * The cache stage only (DmaTranslator.peek): the identity while
   * translation is off or bypassed, else an IOTLB hit that allows the
   * access while hits are neither traced nor listened to.
   */
  peek(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean {
    const u = this.u;
    // A listened bypass goes through translate, which announces it.
    if (!u.dmarEnabled || (this.bypass && !u.events.translateListened)) {
      identity(iova, out);
      return true;
    }
    if (u.traceHits || u.events.translateListened) return false;
    if (this.pasid !== NO_PASID && !u.scalable) return false;
    const hit = u.iotlb.lookup(sourceId(this.requester), this.spacePasid(), iova);
    if (hit === undefined || (hit.perm & access) === 0) return false;
    fromIotlb(hit, out);
    return true;
  }

  translate(iova: Iova, access: DmaAccess, out: IotlbEntry, kind: DmaRequestKind = DmaRequestKind.Untranslated): boolean {
    const u = this.u;
    if (!u.dmarEnabled || this.bypass) {
      identity(iova, out);
      if (this.bypass && u.dmarEnabled && u.events.translateListened) this.emit(sourceId(this.requester), iova, out, false, true, kind);
      return true;
    }
    if (kind === DmaRequestKind.Translated && u.scalable) {
      // QEMU 11.1: translated requests pass through without a PASID and are refused (unrecorded) with one.
      if (this.pasid !== NO_PASID) {
        fail(out, 0);
        return false;
      }
      identity(iova, out);
      if (u.events.translateListened) this.emit(sourceId(this.requester), iova, out, false, false, kind);
      return true;
    }
    const sid = sourceId(this.requester);
    if (this.pasid !== NO_PASID && !u.scalable) {
      fail(out, 0);
      return false;
    }
    const record = kind !== DmaRequestKind.TranslationRequest;
    const isWrite = access === DmaAccess.Write;
    const pasid = this.spacePasid();
    const hit = u.iotlb.lookup(sid, pasid, iova);
    if (hit !== undefined) {
      if (u.traceHits) u.tracer.trace(Trace.iotlbHit, { sid, addr: iova, did: hit.did });
      if (isWrite && (hit.perm & IommuPerm.Write) === 0) {
        // The spec's answer (QEMU drops the write silently): the fault an uncached walk gives.
        return this.fault(sid, hit.writeFault, iova, isWrite, hit.fpd, record, out, true);
      }
      fromIotlb(hit, out);
      if (u.events.translateListened) this.emit(sid, iova, out, true, false, kind);
      return true;
    }
    const cfg = this.cfg;
    const r = resolveRequest(u, this.cc, sid, pasid === NO_PASID ? 0 : pasid, cfg);
    // Context and PASID-table faults are recorded without the PASID (PP=0), as QEMU 11.1 does.
    if (r !== 0) return this.fault(sid, r, iova, isWrite, cfg.fpd, record, out, false);
    if (cfg.pgtt === Pgtt.PassThrough) {
      identity(iova, out);
      // QEMU vtd_pt_enable_fast_path: re-decide from memory, usually switching to the bypass.
      if (this.pasid === NO_PASID) this.bypass = u.passThrough.decide(sid, true);
      if (u.events.translateListened) this.emit(sid, iova, out, false, true, kind);
      return true;
    }
    const w = this.walk;
    const wr = walkTranslation(u.memory, u.walkStageRules, cfg, u.config.scalableMode, iova, isWrite, w);
    if (wr !== 0) return this.fault(sid, wr, iova, isWrite, cfg.fpd, record, out, true);
    const did = cfg.did;
    const pgtt = u.scalable ? cfg.pgtt : PGTT_LEGACY;
    if (u.iotlb.insert(sid, pasid, did, iova, w.level, w.translated, w.perm, pgtt, cfg.fpd, writeFaultOf(pgtt, w)) && u.tracer.enabled(Trace.iotlbReset)) {
      u.tracer.trace(Trace.iotlbReset, { reason: 'iotlb exceeds size limit' });
    }
    if (u.tracer.enabled(Trace.iotlbUpdate)) u.tracer.trace(Trace.iotlbUpdate, { sid, addr: iova, did });
    const size = LEVEL_SIZE[w.level]!;
    out.iova = pageBase(iova, size);
    out.translated = w.translated;
    out.addrMask = size - 1;
    out.perm = w.perm;
    out.fault = 0;
    if (u.events.translateListened) this.emit(sid, iova, out, false, false, kind);
    return true;
  }

  interruptWrite(addr: number, data: number): void {
    this.u.interruptWrite(addr, data, sourceId(this.requester));
  }

  /**
   * A refused request: recorded unless it is a translation request (with the
   * request's PASID when `withPasid` and it has one); `out` carries the reason.
   */
  private fault(
    sid: number,
    reason: number,
    iova: number,
    isWrite: boolean,
    fpd: boolean,
    record: boolean,
    out: IotlbEntry,
    withPasid: boolean,
  ): false {
    if (record) {
      const d = this.details;
      d.fpd = fpd;
      d.pasid = withPasid && this.pasid !== NO_PASID ? this.pasid : undefined;
      this.u.recordFault(sid, reason, iova, isWrite, d);
    }
    fail(out, reason);
    return false;
  }

  private emit(sid: number, iova: number, out: IotlbEntry, cached: boolean, passthrough: boolean, kind: DmaRequestKind): void {
    this.u.events.emit('translate', {
      sid,
      iova,
      translated: out.translated + (iova - out.iova),
      addrMask: out.addrMask,
      perm: out.perm,
      cached,
      passthrough,
      ...(this.pasid !== NO_PASID ? { pasid: this.pasid } : {}),
      kind: KIND_NAMES[kind] ?? 'untranslated',
    });
  }
}
