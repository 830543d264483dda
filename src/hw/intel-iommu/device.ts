/**
 * The intel-iommu device: a VT-d remapping hardware unit at 0xFED90000
 * (QEMU's q35 placement) that is the machine's DmaIommu.  It assembles the
 * unit from its parts and owns them:
 *
 *   state      the state record (state.ts): translation enabled, root table,
 *              next fault record, context-cache generation
 *   regs       the register file (registers.ts) and its table of side
 *              effects (mmio.ts, register-effects.ts)
 *   queue      the invalidation queue (queue.ts)
 *   remapper   interrupt remapping (interrupt-remap.ts), with posted
 *              interrupts (posted-interrupts.ts) under `x-pi`
 *   pageRequests  the page-request queue (page-requests.ts) under `svm`
 *   iotlb, passThrough, translators   the DMA side (translator.ts)
 *
 * QEMU's intel-iommu always has queued invalidation and interrupt
 * remapping, and so does every unit here.  The parts never import this
 * module: each is handed the unit through the role interface naming what
 * it needs (roles.ts), which IntelIommu implements.
 *
 * The machine maps `region` (done by the DeviceType's create), calls
 * `pciHost.setIommu(iommu)`, sends IOAPIC messages through
 * `interruptFromIoapic`, and builds the DMAR table from `dmarConfig()`.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import {
  NO_PASID,
  newIotlbEntry,
  type AtsCompletion,
  type AtsEndpoint,
  type AtsInvalidationResult,
  type AtsPort,
  type DmaIommu,
  type DmaRequester,
  type DevicePageRequest,
  type PageRequestStatus,
} from '../../memory/iommu.js';
import type { Iova } from '../../memory/address.js';
import type { IommuNotifierSource, IommuNotifierSpace } from '../../memory/iommu-notifier.js';
import { MmioRegion } from '../../memory/region.js';
import type { MsiTarget } from '../../core/irq.js';
import type { VirtualClock } from '../../core/clock.js';
import type { Device, DeviceContext, DeviceType, PropValues, Tracer } from '../../machine/device-type.js';
import { AtsEndpoints, answerTranslationRequest, answerUnsupported } from './ats.js';
import { Cap, capValue, Ecap, ecapValue, postedInterrupts, sagawFor } from './caps.js';
import { createIommuEmitter, Trace, type IommuEmitter } from './events.js';
import { generateFaultEvent, raiseFaultStatus, recordFault, signalEvent } from './faults.js';
import { InterruptRemapper } from './interrupt-remap.js';
import { invalidateContext, invalidateIotlb, invalidatePasidCache, invalidatePasidIotlb } from './invalidation.js';
import { Iotlb } from './iotlb.js';
import { RegisterTable, VtdMmio } from './mmio.js';
import { WalkRules } from './page-walk.js';
import { FsWalkRules } from './first-stage-walk.js';
import type { ScalableRules } from './scalable-context.js';
import type { WalkStageRules } from './walk-stage.js';
import { VtdNotifiers } from './notifiers.js';
import { PassThroughSwitch } from './pass-through.js';
import { PostedInterrupts } from './posted-interrupts.js';
import { INTEL_IOMMU_DEPRECATED_PROPS, INTEL_IOMMU_PROPS, resolveIommuConfig, type IommuConfig } from './props.js';
import { InvalidationQueue, queueConfigFrom } from './queue.js';
import { PageRequestQueue } from './page-requests.js';
import { submitPageRequest, type PriUnit } from './pri.js';
import { DMAR_BASE } from './reg-layout.js';
import { vtdRegisterRows } from './register-effects.js';
import { defineVtdRegisters, RegisterFile, registerFileSize } from './registers.js';
import {
  SID_UNKNOWN,
  type ContextInvalidation,
  type FaultExtra,
  type IotlbInvalidation,
  type PageGroupResponse,
  type PasidCacheInvalidation,
  type PasidIotlbInvalidation,
} from './requests.js';
import type { PageRequestUnit, QueueUnit, RegisterEffectsUnit, RemapperUnit, TranslatorUnit } from './roles.js';
import type { ContextRules } from './root-context.js';
import { VtdState } from './state.js';
import { loadVtdState, saveVtdState, type RequesterNames } from './snapshot.js';
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { sourceId, VtdTranslator } from './translator.js';

/** What the machine needs to build the DMAR ACPI table. */
export interface DmarConfig {
  /** Host address width in bits (the DMAR HAW field is this minus 1). */
  readonly hostAddressWidth: number;
  /** DMAR flags bit 0 (INTR_REMAP). */
  readonly intremap: boolean;
  /** An ATSR structure is present. */
  readonly deviceIotlb: boolean;
  /** Register base of the DRHD. */
  readonly base: number;
}

/** What an IntelIommu needs from the machine (a subset of DeviceContext). */
export interface IntelIommuHost {
  readonly memory: AddressSpace;
  readonly msi: MsiTarget;
  readonly clock: VirtualClock;
  readonly tracer?: Tracer;
}

const NO_TRACER: Tracer = { enabled: () => false, trace: () => {} };

/** One VT-d unit. */
export class IntelIommu
  implements Device, DmaIommu, IommuNotifierSource, QueueUnit, RemapperUnit, RegisterEffectsUnit, TranslatorUnit, PageRequestUnit, PriUnit
{
  readonly typeName = 'intel-iommu';
  readonly config: IommuConfig;
  readonly regs: RegisterFile;
  /** The unit's mutable architectural state (state.ts). */
  readonly state = new VtdState();
  /** The register window (map it at `DMAR_BASE`). */
  readonly region: MmioRegion;
  readonly iotlb = new Iotlb();
  readonly walkRules: WalkRules;
  readonly ctxRules: ContextRules;
  /** What scalable-mode entries may ask for (from CAP/ECAP). */
  readonly smRules: ScalableRules;
  /** Second- and first-stage walk rules. */
  readonly walkStageRules: WalkStageRules;
  readonly events: IommuEmitter = createIommuEmitter();
  readonly memory: AddressSpace;
  readonly msi: MsiTarget;
  readonly clock: VirtualClock;
  readonly tracer: Tracer;
  readonly haw: number;
  /** Per-requester pass-through decisions (QEMU's address-space switch). */
  readonly passThrough: PassThroughSwitch;
  /** Posted interrupts (`x-pi` with intremap), else null. */
  readonly posted: PostedInterrupts | null;
  /** Interrupt remapping: every interrupt-window write goes through it. */
  readonly remapper: InterruptRemapper;
  /** The invalidation queue. */
  readonly queue: InvalidationQueue;
  /** The page-request queue (ECAP.PRS, i.e. `svm=on`), else null. */
  readonly pageRequests: PageRequestQueue | null;
  /** The functions registered for ATS / PRI (ats.ts). */
  readonly atsEndpoints = new AtsEndpoints();
  /** IOMMU notifiers per requester and PASID, and the shadows they follow (notifiers.ts). */
  readonly notifiers: VtdNotifiers = new VtdNotifiers(this);
  /** Scratch entry of translation requests. */
  private readonly atsScratch = newIotlbEntry();
  /** Translators by requester key, then PASID (NO_PASID for requests without one). */
  private readonly byKey = new Map<object, Map<number, VtdTranslator>>();
  /** The same translators in creation order. */
  private readonly all: VtdTranslator[] = [];
  private readonly cap: bigint;
  private readonly ecap: bigint;

  constructor(host: IntelIommuHost, config: IommuConfig) {
    this.config = config;
    this.memory = host.memory;
    this.msi = host.msi;
    this.clock = host.clock;
    this.tracer = host.tracer ?? NO_TRACER;
    this.haw = config.awBits;
    this.cap = capValue(config);
    this.ecap = ecapValue(config);
    this.regs = new RegisterFile(registerFileSize(config.nfr));
    defineVtdRegisters(this.regs, this.cap, this.ecap, config.nfr);
    // QEMU 11.1 accepts SNP (bit 11) in second-stage leaves with snoop-control or in scalable mode.
    this.walkRules = new WalkRules(config.awBits, config.snoopControl || config.scalableMode, config.staleTm && config.deviceIotlb);
    this.ctxRules = {
      hawHiMask: this.walkRules.hawHiMask,
      sagaw: Number(sagawFor(config)),
      deviceIotlb: config.deviceIotlb,
      passThrough: config.pt,
    };
    this.smRules = {
      hawHiMask: this.walkRules.hawHiMask,
      sagaw: Number(sagawFor(config)),
      fsts: (this.ecap & Ecap.FSTS) !== 0n,
      ssts: (this.ecap & Ecap.SSTS) !== 0n,
      pt: (this.ecap & Ecap.PT) !== 0n,
      nested: (this.ecap & Ecap.NEST) !== 0n,
      fs5lp: (this.cap & Cap.FS5LP) !== 0n,
    };
    this.walkStageRules = { ss: this.walkRules, fs: new FsWalkRules(config.awBits) };
    this.passThrough = new PassThroughSwitch(this);
    this.posted = postedInterrupts(config) ? new PostedInterrupts(this.memory, this.msi, this.tracer) : null;
    this.remapper = new InterruptRemapper(this, this.posted, { eim: config.eim, cfi: config.raw['x-cfi'] === true });
    // The queue may define registers of its own (IQER, FSTS.ITE/ICE): after the file, before the table.
    this.queue = new InvalidationQueue(this, queueConfigFrom(config));
    // Its registers are the file's (defined with ECAP.PRS); it keeps no state of its own, so reset is the file's.
    this.pageRequests = (this.ecap & Ecap.PRS) !== 0n ? new PageRequestQueue(this) : null;
    const table = new RegisterTable(this.regs.size, vtdRegisterRows(this));
    this.region = new MmioRegion('intel_iommu', this.regs.size, new VtdMmio(this.regs, this.tracer, table, this.events), {
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 8 },
    });
    this.refreshTracing();
  }

  /** CAP register value. */
  get capability(): bigint {
    return this.cap;
  }

  /** ECAP register value. */
  get extendedCapability(): bigint {
    return this.ecap;
  }

  /** GCMD.TE accepted (the state record's flag; GSTS.TES reads the same). */
  get dmarEnabled(): boolean {
    return this.state.translationEnabled;
  }

  /** Root table address latched by SRTP. */
  get rootTable(): number {
    return this.state.rootTable;
  }

  /** RTADDR.SMT latched by SRTP: the root table is a scalable-mode one. */
  get scalable(): boolean {
    return this.state.scalable;
  }

  /** Whether IOTLB hits are traced (see refreshTracing). */
  get traceHits(): boolean {
    return this.state.traceHits;
  }

  /** Re-reads which hot-path trace events are enabled. */
  refreshTracing(): void {
    this.state.traceHits = this.tracer.enabled(Trace.iotlbHit);
  }

  /** The unit's context-cache generation (a translator's cached entry is valid while equal). */
  get contextGeneration(): number {
    return this.state.contextGeneration;
  }

  /** Invalidates every context-cache entry. */
  bumpContextGeneration(): void {
    this.state.contextGeneration++;
  }

  /** Flushes the IOTLB and the context cache, then refreshes the address spaces (TE, SRTP, reset). */
  resetCaches(): void {
    this.iotlb.clear();
    this.bumpContextGeneration();
    this.refreshAddressSpaces();
    this.notifiers.cachesReset();
  }

  /**
   * Re-decides every requester's pass-through switch from the context
   * entries in memory (QEMU vtd_address_space_refresh_all): the requesters
   * whose address space exists, not every possible source ID, so a refresh
   * costs O(translators) (pass-through.ts).
   */
  refreshAddressSpaces(): void {
    this.passThrough.decideAll();
    const all = this.all;
    for (let i = 0; i < all.length; i++) all[i]!.refreshBypass();
  }

  /** The translators created so far, in creation order (a live list: iterating it allocates nothing). */
  translators(): readonly VtdTranslator[] {
    return this.all;
  }

  /** The translator of `requester`'s address space for `pasid` (NO_PASID: requests without a PASID). */
  translatorFor(requester: DmaRequester, pasid: number = NO_PASID): VtdTranslator {
    let spaces = this.byKey.get(requester.key);
    if (spaces === undefined) {
      spaces = new Map();
      this.byKey.set(requester.key, spaces);
    }
    let t = spaces.get(pasid);
    if (t === undefined) {
      // A new no-PASID address space is switched at once (QEMU vtd_find_add_as), and kept switched by refreshes.
      if (pasid === NO_PASID) this.passThrough.track(requester);
      t = new VtdTranslator(this, requester, pasid);
      spaces.set(pasid, t);
      this.all.push(t);
    }
    return t;
  }

  /**
   * The IOMMU notifier space of `requester`'s address space for `pasid`
   * (NO_PASID: requests without one): register MAP / UNMAP /
   * DEVIOTLB_UNMAP notifiers there and replay the current mappings
   * (notifiers.ts).
   */
  notifierSpace(requester: DmaRequester, pasid: number = NO_PASID): IommuNotifierSpace {
    return this.notifiers.space(requester, pasid);
  }

  /** GSTS.QIES (written by the queue alone). */
  qiEnabled(): boolean {
    return this.queue.enabled;
  }

  /** GSTS.IRES (written by the remapper alone). */
  irEnabled(): boolean {
    return this.remapper.enabled;
  }

  invalidateContext(inv: ContextInvalidation, source: 'register' | 'queue'): void {
    invalidateContext(this, inv, source);
  }

  invalidateIotlb(inv: IotlbInvalidation, source: 'register' | 'queue'): void {
    invalidateIotlb(this, inv, source);
  }

  invalidatePasidIotlb(inv: PasidIotlbInvalidation): void {
    invalidatePasidIotlb(this, inv);
  }

  invalidatePasidCache(inv: PasidCacheInvalidation): void {
    invalidatePasidCache(this, inv);
  }

  /** IEC invalidation (interrupt entry cache, the remapper's). */
  invalidateIec(global: boolean, index: number, mask: number): void {
    this.remapper.invalidateIec(global, index, mask);
  }

  pageGroupResponse(resp: PageGroupResponse): void {
    this.events.emit('pageGroupResponse', resp);
    this.atsEndpoints.respond(resp);
  }

  invalidateDeviceTlb(sid: number, pasid: number, addr: number, size: number): AtsInvalidationResult {
    if (this.notifiers.active) this.notifiers.deviceTlbInvalidated(sid, pasid, addr, size);
    return this.atsEndpoints.invalidate(sid, pasid, addr, size);
  }

  /**
   * The ATS / PRI port of `requester` (DmaIommu.atsPort), registering
   * `endpoint` for its device-TLB invalidations and page-group responses.
   * Null when the unit offers neither device-TLBs (ECAP.DT) nor page
   * requests (ECAP.PRS).  Without DT translation requests complete as
   * Unsupported Request; without PRS page requests are refused.
   */
  atsPort(requester: DmaRequester, endpoint: AtsEndpoint): AtsPort | null {
    const dt = (this.ecap & Ecap.DT) !== 0n;
    if (!dt && this.pageRequests === null) return null;
    this.atsEndpoints.register(requester, endpoint);
    return {
      translationRequest: (pasid: number, iova: Iova, noWrite: boolean, out: AtsCompletion): void => {
        if (dt) answerTranslationRequest(this.translatorFor(requester, pasid), iova, noWrite, out, this.atsScratch);
        else answerUnsupported(iova, out);
      },
      pageRequest: (pasid: number, req: DevicePageRequest): PageRequestStatus => submitPageRequest(this, sourceId(requester), pasid, req),
    };
  }

  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void {
    recordFault(this, sid, reason, addr, isWrite, extra);
  }

  raiseFaultStatus(bits: number): void {
    raiseFaultStatus(this, bits);
  }

  /**
   * Sends an event interrupt through a control/data/address register group
   * (FECTL or IECTL): sets IP when masked, else delivers the MSI straight
   * to the APIC bus.
   */
  signalEvent(ctlOff: number, dataOff: number, addrOff: number, uaddrOff: number): void {
    signalEvent(this, ctlOff, dataOff, addrOff, uaddrOff);
  }

  /** Raises the fault event given FSTS before an update. */
  generateFaultEvent(preFsts: number): void {
    generateFaultEvent(this, preFsts);
  }

  /**
   * A 4-byte write into the interrupt window by `sid` (SID_UNKNOWN: the
   * IOAPIC): through interrupt remapping (unchanged while IRE is off) to
   * the APIC bus.
   */
  interruptWrite(addr: number, data: number, sid: number): void {
    this.remapper.interruptWrite(addr, data, sid);
  }

  /** An IOAPIC interrupt message (requester unknown, as QEMU's IOAPIC path). */
  interruptFromIoapic(addr: number, data: number): void {
    this.interruptWrite(addr, data, SID_UNKNOWN);
  }

  /** DMAR facts for the ACPI builder. */
  dmarConfig(): DmarConfig {
    return {
      hostAddressWidth: this.config.awBits,
      intremap: this.config.intremap,
      deviceIotlb: this.config.deviceIotlb,
      base: DMAR_BASE,
    };
  }

  /** Snapshot section of this unit (snapshot.ts); `names` names requesters by their place in the machine. */
  saveState(names: RequesterNames): SnapshotSection {
    return saveVtdState(this, names);
  }

  /** Loads a section saveState produced; caches are dropped (snapshot.ts). */
  loadState(r: SectionReader, names: RequesterNames): void {
    loadVtdState(this, r, names);
    this.events.emit('reset', { why: 'load' });
  }

  /** Device reset (QEMU vtd_reset -> vtd_init). */
  reset(): void {
    this.regs.reset();
    this.state.reset(this.regs);
    this.resetCaches();
    this.queue.reset();
    this.remapper.reset();
    this.events.emit('reset', { why: 'reset' });
  }
}

/** The `intel-iommu` device type. */
export const intelIommuDeviceType: DeviceType<IntelIommu> = {
  name: 'intel-iommu',
  description: 'Intel IOMMU (VT-d) DMA Remapping device',
  bus: 'system',
  // -device intel-iommu,help and the property errors follow QEMU 11.1, the oracle.
  qemuRelease: '11.1',
  props: INTEL_IOMMU_PROPS,
  deprecatedProps: INTEL_IOMMU_DEPRECATED_PROPS,
  create(ctx: DeviceContext, props: PropValues): IntelIommu {
    const config = resolveIommuConfig(props, ctx.kernelIrqchip ?? 'off');
    const iommu = new IntelIommu(ctx, config);
    ctx.systemMemory.add(iommu.region, DMAR_BASE);
    return iommu;
  },
};
