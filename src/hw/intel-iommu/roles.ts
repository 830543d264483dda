/**
 * The role interfaces of the VT-d unit: what each component and helper
 * module needs from the unit, and nothing more.  IntelIommu (device.ts)
 * satisfies every one of them and hands itself over; the components never
 * import device.ts, so the unit is assembled in one direction only:
 *
 *     device.ts ──► queue.ts, interrupt-remap.ts, posted-interrupts.ts,
 *                   mmio.ts + register-effects.ts, gcmd.ts, faults.ts,
 *                   invalidation.ts, pass-through.ts, translator.ts
 *     each of them ──► roles.ts (types only), state.ts, registers.ts, ...
 *
 *   FaultUnit         faults.ts: fault recording and the event registers
 *   InvalidationUnit  invalidation.ts: context / IOTLB / PASID caches, CCMD / IOTLB registers
 *   GcmdUnit          gcmd.ts: the global command's side effects
 *   QueueUnit         queue.ts: the invalidation queue
 *   RemapperUnit      interrupt-remap.ts: interrupt remapping
 *   PageRequestUnit   page-requests.ts: the page-request queue (svm=on)
 *   RegisterEffectsUnit  register-effects.ts: the rows of the register table
 *   TranslatorUnit    translator.ts: the DMA translation path
 *
 * (pass-through.ts and resolve.ts declare theirs next to their code.)
 */
import type { AddressSpace } from '../../memory/address-space.js';
import type { AtsInvalidationResult, DmaRequester } from '../../memory/iommu.js';
import type { MsiTarget } from '../../core/irq.js';
import type { Tracer } from '../../machine/device-type.js';
import type { IommuEmitter } from './events.js';
import type { Iotlb } from './iotlb.js';
import type { PassThroughSwitch } from './pass-through.js';
import type { IommuConfig } from './props.js';
import type { RegisterAccess } from './registers.js';
import type { ResolveUnit } from './resolve.js';
import type {
  ContextInvalidation,
  FaultExtra,
  IotlbInvalidation,
  PageGroupResponse,
  PasidCacheInvalidation,
  PasidIotlbInvalidation,
} from './requests.js';
import type { VtdState } from './state.js';
import type { WalkStageRules } from './walk-stage.js';

/** Raising the unit's fault status and recording faults (faults.ts behind the unit). */
export interface FaultReporter {
  /**
   * Records a fault (QEMU vtd_report_fault / vtd_report_frcd_fault): FPD
   * suppression of qualified faults, PFO, same-SID collapse, FRCD, PPF and
   * the fault event.  `addr` is the faulting address (page bits kept).
   */
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void;
  /**
   * Sets FSTS status bits (e.g. IQE, ITE, ICE) and raises the fault event
   * as QEMU's vtd_generate_fault_event does (only if no fault status was
   * pending before).
   */
  raiseFaultStatus(bits: number): void;
}

/** The cache invalidations the queue (and the register interface) ask of the unit. */
export interface CacheInvalidator {
  /** Invalidates context-cache entries (IOTLB entries survive, as in QEMU; domain-selective acts as global). */
  invalidateContext(inv: ContextInvalidation, source: 'register' | 'queue'): void;
  /** Invalidates IOTLB entries. */
  invalidateIotlb(inv: IotlbInvalidation, source: 'register' | 'queue'): void;
  /** PASID-based IOTLB invalidation (descriptor 6). */
  invalidatePasidIotlb(inv: PasidIotlbInvalidation): void;
  /** PASID-cache invalidation (descriptor 7): pass-through decisions of covered requesters taken again. */
  invalidatePasidCache(inv: PasidCacheInvalidation): void;
  /** A page-group response (descriptor 9) for the device `rid`. */
  pageGroupResponse(resp: PageGroupResponse): void;
  /**
   * A device-TLB invalidation (descriptors 3 and 8) sent to the function at
   * `sid`: `pasid` NO_PASID, a PASID or ALL_PASIDS, range [addr, addr + size).
   */
  invalidateDeviceTlb(sid: number, pasid: number, addr: number, size: number): AtsInvalidationResult;
}

/** What fault recording (faults.ts) needs. */
export interface FaultUnit {
  readonly config: Pick<IommuConfig, 'nfr'>;
  readonly regs: RegisterAccess;
  /** The APIC bus: fault and invalidation-completion events go straight to it. */
  readonly msi: MsiTarget;
  readonly tracer: Tracer;
  readonly events: IommuEmitter;
  readonly state: Pick<VtdState, 'nextFrcd'>;
}

/** What the invalidation queue's error reporting (queue-errors.ts) needs. */
export interface QueueErrorsUnit {
  readonly regs: RegisterAccess;
  readonly tracer: Tracer;
  raiseFaultStatus(bits: number): void;
}

/** What the invalidation queue (queue.ts) needs. */
export interface QueueUnit extends QueueErrorsUnit, CacheInvalidator {
  /** Guest memory: descriptors and wait status dwords. */
  readonly memory: AddressSpace;
  /** The APIC bus: invalidation completion events. */
  readonly msi: MsiTarget;
  readonly events: IommuEmitter;
  /** Host address width in bits: the queue base is masked to it. */
  readonly haw: number;
  /** IEC invalidation (the interrupt remapper's cache): all entries, or 2^mask entries from index. */
  invalidateIec(global: boolean, index: number, mask: number): void;
}

/** What interrupt remapping (interrupt-remap.ts) needs. */
export interface RemapperUnit {
  readonly regs: RegisterAccess;
  /** Guest memory: the interrupt remapping table. */
  readonly memory: AddressSpace;
  /** The APIC bus: remapped and passed-through interrupts. */
  readonly msi: MsiTarget;
  readonly tracer: Tracer;
  /** Host address width in bits: IRTA is masked to it. */
  readonly haw: number;
  /** 'interruptRemap' events. */
  readonly events: IommuEmitter;
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void;
}

/** What the page-request queue (page-requests.ts) needs. */
export interface PageRequestUnit {
  /** PQH / PQT / PQA / PRS and the PECTL event group. */
  readonly regs: RegisterAccess;
  /** Guest memory: the queue's descriptors. */
  readonly memory: AddressSpace;
  /** The APIC bus: the page-request event. */
  readonly msi: MsiTarget;
  readonly tracer: Tracer;
}

/** The page-request queue's register entry points (register-effects.ts). */
export interface PageRequestRegisters {
  /** PRS was written (W1C applied). */
  onPrsWrite(): void;
  /** PECTL was written. */
  onPectlWrite(): void;
}

/** One requester's translator, as invalidation sees it. */
export interface TranslatorHandle {
  readonly requester: DmaRequester;
  /** The PASID of its requests (NO_PASID: requests without one). */
  readonly pasid: number;
  /** Drops the cached context entry. */
  invalidateContextCache(): void;
  /** Takes the unit's recorded pass-through decision again. */
  refreshBypass(): void;
}

/**
 * The IOMMU notifiers' invalidation entry points (notifiers.ts): called
 * after the caches were invalidated, and only while `active` (some address
 * space has a notifier), so invalidation costs nothing more without one.
 */
export interface NotifierHooks {
  readonly active: boolean;
  contextInvalidated(inv: ContextInvalidation): void;
  iotlbInvalidated(inv: IotlbInvalidation): void;
  pasidIotlbInvalidated(inv: PasidIotlbInvalidation): void;
  pasidCacheInvalidated(inv: PasidCacheInvalidation): void;
}

/** What cache invalidation (invalidation.ts) needs. */
export interface InvalidationUnit {
  readonly regs: RegisterAccess;
  /** The notifiers that follow invalidations (IOMMU notifiers, shadows). */
  readonly notifiers: NotifierHooks;
  readonly tracer: Tracer;
  readonly events: IommuEmitter;
  readonly iotlb: Pick<Iotlb, 'clear' | 'removeDomain' | 'removePages' | 'removePasid' | 'removePasidPages'>;
  readonly passThrough: Pick<PassThroughSwitch, 'decideMatching' | 'redecideCovered'>;
  readonly state: Readonly<Pick<VtdState, 'scalable'>>;
  /** The translators created so far. */
  translators(): Iterable<TranslatorHandle>;
  /** Invalidates every cached context entry. */
  bumpContextGeneration(): void;
  /** Re-decides every requester's pass-through switch. */
  refreshAddressSpaces(): void;
  /** GSTS.QIES: the register interface is ignored while queued invalidation is on. */
  qiEnabled(): boolean;
}

/** The queue's GCMD.QIE entry point. */
export interface QueueCommand {
  /** GCMD.QIE changed: the queue sets or clears GSTS.QIES itself; returns whether the change was accepted. */
  onQieChange(enable: boolean): boolean;
}

/** The remapper's GCMD entry points. */
export interface RemapperCommands {
  /** GCMD.SIRTP: GSTS.IRTPS set, IRTA latched, the interrupt entry cache flushed. */
  onSirtp(): void;
  /** GCMD.IRE changed (only called with intremap): GSTS.IRES follows, the cache is flushed. */
  onIreChange(on: boolean): void;
  /** GCMD.CFI changed: GSTS.CFIS follows with `x-cfi`. */
  onCfiChange(on: boolean): void;
}

/** What the global command (gcmd.ts) needs. */
export interface GcmdUnit {
  readonly config: Pick<IommuConfig, 'dmaTranslation' | 'scalableMode' | 'intremap'>;
  readonly regs: RegisterAccess;
  readonly tracer: Tracer;
  /** RTADDR's high half is masked to the host address width. */
  readonly walkRules: { readonly hawHiMask: number };
  readonly state: VtdState;
  readonly queue: QueueCommand;
  readonly remapper: RemapperCommands;
  /** Flushes the IOTLB and the context cache and refreshes the address spaces. */
  resetCaches(): void;
}

/** The queue's register entry points (register-effects.ts). */
export interface QueueRegisters extends QueueCommand {
  /** IQT was written. */
  onIqtWrite(): void;
  /** FSTS was written (its IQER fields follow). */
  onFstsWrite(): void;
  /** IQA's low dword as a guest reads it (the latched base with the written QS and DW). */
  iqaLow(): number;
  /** IQA's high dword as a guest reads it (the latched base). */
  iqaHigh(): number;
}

/** What the register table's rows (register-effects.ts) need: the helpers' roles and the queue's registers. */
export interface RegisterEffectsUnit extends FaultUnit, InvalidationUnit, Omit<GcmdUnit, 'queue'> {
  readonly config: Pick<IommuConfig, 'nfr' | 'dmaTranslation' | 'scalableMode' | 'intremap'>;
  readonly regs: RegisterAccess;
  readonly tracer: Tracer;
  readonly state: VtdState;
  readonly queue: QueueRegisters;
  /** The page-request queue (svm=on), else null. */
  readonly pageRequests: PageRequestRegisters | null;
}

/** What a requester's DMA translator (translator.ts) reads from the unit. */
export interface TranslatorUnit extends ResolveUnit {
  /** GCMD.TE accepted. */
  readonly dmarEnabled: boolean;
  /** IOTLB hits are traced. */
  readonly traceHits: boolean;
  readonly events: IommuEmitter;
  readonly iotlb: Iotlb;
  readonly passThrough: Pick<PassThroughSwitch, 'isPassThrough' | 'decide'>;
  readonly walkStageRules: WalkStageRules;
  readonly config: Pick<IommuConfig, 'scalableMode'>;
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void;
  /** A 4-byte write into the interrupt window by requester `sid`. */
  interruptWrite(addr: number, data: number, sid: number): void;
}
