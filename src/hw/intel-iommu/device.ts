/**
 * The intel-iommu device: a VT-d remapping hardware unit at 0xFED90000
 * (QEMU's q35 placement) that is the machine's DmaIommu.  It owns the
 * register file, the IOTLB and context-cache generation, the per-requester
 * translators, fault recording, and the extension hooks through which queued
 * invalidation and interrupt remapping plug in (hooks.ts).
 *
 * The machine maps `region` (done by the DeviceType's create), calls
 * `pciHost.setIommu(iommu)`, sends IOAPIC messages through
 * `interruptFromIoapic`, and builds the DMAR table from `dmarConfig()`.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { NO_PASID, type DmaIommu, type DmaRequester } from '../../memory/iommu.js';
import { MmioRegion } from '../../memory/region.js';
import type { MsiTarget } from '../../core/irq.js';
import type { VirtualClock } from '../../core/clock.js';
import type { Device, DeviceContext, DeviceType, PropValues, Tracer } from '../../machine/device-type.js';
import { Cap, capValue, Ecap, ecapValue, sagawFor } from './caps.js';
import { createIommuEmitter, Trace, type IommuEmitter } from './events.js';
import { generateFaultEvent, raiseFaultStatus, recordFault, signalEvent } from './faults.js';
import {
  registeredIommuExtensions,
  SID_UNKNOWN,
  type ContextInvalidation,
  type FaultExtra,
  type IommuCore,
  type IommuExtension,
  type IommuHooks,
  type IotlbInvalidation,
  type PageGroupResponse,
  type PasidCacheInvalidation,
  type PasidIotlbInvalidation,
} from './hooks.js';
import { invalidateContext, invalidateIotlb, invalidatePasidCache, invalidatePasidIotlb } from './invalidation.js';
import { Iotlb } from './iotlb.js';
import { VtdMmio } from './mmio.js';
import { WalkRules } from './page-walk.js';
import { FsWalkRules } from './first-stage-walk.js';
import type { ScalableRules } from './scalable-context.js';
import type { WalkStageRules } from './walk-stage.js';
import { PassThroughSwitch } from './pass-through.js';
import { INTEL_IOMMU_DEPRECATED_PROPS, INTEL_IOMMU_PROPS, resolveIommuConfig, type IommuConfig } from './props.js';
import { DMAR_BASE, Gsts, Reg } from './reg-layout.js';
import { defineVtdRegisters, RegisterFile, registerFileSize } from './registers.js';
import type { ContextRules } from './root-context.js';
import { VtdTranslator } from './translator.js';
// Queued invalidation and interrupt remapping register themselves as extensions.
import './queue-ir-extension.js';

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
export class IntelIommu implements Device, DmaIommu, IommuCore {
  readonly typeName = 'intel-iommu';
  readonly config: IommuConfig;
  readonly regs: RegisterFile;
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
  /** Installed extensions' hooks. */
  readonly hooks: readonly IommuHooks[];
  /** Per-requester pass-through decisions (QEMU's address-space switch). */
  readonly passThrough: PassThroughSwitch;
  /** GSTS.TES, as a field for the translation hot path. */
  dmarEnabled = false;
  /** Root table address latched by SRTP. */
  rootTable = 0;
  /** RTADDR.SMT latched by SRTP with scalable-mode=on: the root table is a scalable-mode one. */
  scalable = false;
  /** Next fault recording register to use. */
  nextFrcd = 0;
  /** Invalidation queue base latched at QIE enable (what IQA reads return). */
  iqBase = 0;
  /** Whether IOTLB hits are traced (computed at creation; see refreshTracing). */
  traceHits = false;
  private ccGen = 1;
  /** Translators by requester key, then PASID (NO_PASID for requests without one). */
  private readonly byKey = new Map<object, Map<number, VtdTranslator>>();
  private readonly cap: bigint;
  private readonly ecap: bigint;

  constructor(host: IntelIommuHost, config: IommuConfig, extensions: readonly IommuExtension[] = registeredIommuExtensions()) {
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
    this.walkRules = new WalkRules(config.awBits, config.snoopControl, config.staleTm && config.deviceIotlb);
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
    this.region = new MmioRegion('intel_iommu', this.regs.size, new VtdMmio(this), {
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 8 },
    });
    this.refreshTracing();
    this.hooks = extensions.map((ext) => ext(this));
  }

  /** CAP register value. */
  get capability(): bigint {
    return this.cap;
  }

  /** ECAP register value. */
  get extendedCapability(): bigint {
    return this.ecap;
  }

  /** Re-reads which hot-path trace events are enabled. */
  refreshTracing(): void {
    this.traceHits = this.tracer.enabled(Trace.iotlbHit);
  }

  /** The unit's context-cache generation (a translator's cached entry is valid while equal). */
  get contextGeneration(): number {
    return this.ccGen;
  }

  /** Invalidates every context-cache entry. */
  bumpContextGeneration(): void {
    this.ccGen++;
  }

  /** Flushes the IOTLB and the context cache, then refreshes the address spaces (TE, SRTP, reset). */
  resetCaches(): void {
    this.iotlb.clear();
    this.bumpContextGeneration();
    this.refreshAddressSpaces();
  }

  /**
   * Re-decides every requester's pass-through switch from the context
   * entries in memory (QEMU vtd_address_space_refresh_all).
   */
  refreshAddressSpaces(): void {
    this.passThrough.decideAll();
    for (const t of this.translators()) t.refreshBypass();
  }

  /** The translators created so far. */
  *translators(): IterableIterator<VtdTranslator> {
    for (const spaces of this.byKey.values()) yield* spaces.values();
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
      t = new VtdTranslator(this, requester, pasid);
      spaces.set(pasid, t);
    }
    return t;
  }

  qiEnabled(): boolean {
    return (this.regs.get32(Reg.GSTS) & Gsts.QIES) !== 0;
  }

  irEnabled(): boolean {
    return (this.regs.get32(Reg.GSTS) & Gsts.IRES) !== 0;
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

  pageGroupResponse(resp: PageGroupResponse): void {
    this.events.emit('pageGroupResponse', resp);
  }

  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void {
    recordFault(this, sid, reason, addr, isWrite, extra);
  }

  raiseFaultStatus(bits: number): void {
    raiseFaultStatus(this, bits);
  }

  signalEvent(ctlOff: number, dataOff: number, addrOff: number, uaddrOff: number): void {
    signalEvent(this, ctlOff, dataOff, addrOff, uaddrOff);
  }

  /** Raises the fault event given FSTS before an update (for extensions that set FSTS bits themselves). */
  generateFaultEvent(preFsts: number): void {
    generateFaultEvent(this, preFsts);
  }

  /**
   * A 4-byte write into the interrupt window by `sid`: offered to the
   * extensions (interrupt remapping); unhandled, passed to the APIC bus.
   */
  interruptWrite(addr: number, data: number, sid: number): void {
    for (const h of this.hooks) if (h.interruptWrite?.(addr, data, sid)) return;
    this.msi.deliverMsi(addr, data, sid === SID_UNKNOWN ? { kind: 'ioapic' } : { kind: 'msi', source: sid });
  }

  /** An IOAPIC interrupt message (requester unknown, as QEMU's IOAPIC path). */
  interruptFromIoapic(addr: number, data: number): void {
    this.interruptWrite(addr, data, SID_UNKNOWN);
  }

  /** The hooks of the extension called `name`. */
  extension(name: string): IommuHooks | undefined {
    return this.hooks.find((h) => h.name === name);
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

  /** Device reset (QEMU vtd_reset -> vtd_init). */
  reset(): void {
    this.regs.reset();
    this.dmarEnabled = false;
    this.rootTable = 0;
    this.scalable = false;
    this.nextFrcd = 0;
    this.iqBase = 0;
    this.resetCaches();
    for (const h of this.hooks) h.reset?.();
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
