/**
 * Observable events of the VT-d unit (typed-emitter over Node's
 * EventEmitter) and the QEMU-like trace names emitted through the tracer.
 *
 * Events are only built when someone listens (`translateListened` on the
 * translation hot path, `listenerCount` elsewhere), so the translation hot
 * path stays allocation-free without listeners.
 */
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';
import type { PageGroupResponse } from './requests.js';

type TypedEmitter<E extends TypedEmitterModule.EventMap> = TypedEmitterModule.default<E>;

/** A DMA remapping or interrupt-remapping fault as seen by the unit. */
export interface FaultEvent {
  /** Source ID (bus << 8 | devfn). */
  readonly sid: number;
  /** VT-d fault reason (VtdFault). */
  readonly reason: number;
  /** Faulting address (DMA) or 0 (interrupt remapping). */
  readonly addr: number;
  /** True for a write request. */
  readonly isWrite: boolean;
  /** Interrupt remapping index for IR faults. */
  readonly irIndex?: number;
  /** PASID of the request, when the fault record carries one (PP=1). */
  readonly pasid?: number;
  /** What happened to it: recorded in FRCD[index], or why it was dropped. */
  readonly outcome: 'recorded' | 'fpd' | 'overflow' | 'collapsed' | 'pfo';
  /** FRCD index when recorded. */
  readonly index?: number;
}

/** A completed DMA translation. */
export interface TranslateEvent {
  readonly sid: number;
  readonly iova: number;
  readonly translated: number;
  /** Page size - 1. */
  readonly addrMask: number;
  readonly perm: number;
  /** Served from the IOTLB. */
  readonly cached: boolean;
  /** Pass-through (not cached). */
  readonly passthrough: boolean;
  /** PASID of the request, absent for a request without one. */
  readonly pasid?: number;
  /**
   * What the device sent: an ordinary (untranslated) request, an ATS
   * translation request (the answer goes to the device's ATC), or a request
   * the device's ATC already translated (`iova` is then the translated address).
   */
  readonly kind: 'untranslated' | 'translation-request' | 'translated';
}

/** A guest write to one of the unit's registers, after its side effects. */
export interface RegisterWriteEvent {
  /** Byte offset in the register block. */
  readonly offset: number;
  readonly size: 4 | 8;
  readonly value: bigint;
}

/** An interrupt request that went through the interrupt remapping table. */
export interface InterruptRemapEvent {
  /** Source ID of the requester (0xffff: not known, the IOAPIC path). */
  readonly sid: number;
  /** The IRTE index the request named. */
  readonly index: number;
  /** Guest-physical address of that IRTE (the table latched by SIRTP). */
  readonly irteAddr: number;
  /** Served from the interrupt entry cache. */
  readonly cached: boolean;
  /** The fault reason when the request was blocked, else 0. */
  readonly reason: number;
}

/** A cache invalidation performed by the unit (register, queue or internal). */
export interface InvalidateEvent {
  readonly cache: 'context' | 'iotlb' | 'iec' | 'pasid' | 'pasid-iotlb' | 'device-iotlb';
  readonly granularity: 'global' | 'domain' | 'device' | 'page' | 'index' | 'pasid';
  readonly did?: number;
  /** PASID of a PASID-granular invalidation (descriptors 6, 7, 8). */
  readonly pasid?: number;
  readonly sid?: number;
  readonly fm?: number;
  readonly addr?: number;
  readonly am?: number;
  readonly ih?: boolean;
  /** Bytes of a device-TLB invalidation's range (which starts at `addr`). */
  readonly size?: number;
  /** Who asked: 'register', 'queue' or 'internal' (GCMD side effects). */
  readonly source: 'register' | 'queue' | 'internal';
}

/** The event map of an IntelIommu. */
/**
 * A report of the invalidation sanitizer (`x-sanitize=on`, src/monitor/
 * sanitizer.ts): a request that may have used a cached entry whose source
 * changed in guest memory without the invalidation the spec requires.
 */
export interface SanitizerReport {
  /** 1 for the unit's first report, and so on. */
  readonly seq: number;
  readonly sid: number;
  /** `bb:dd.f` of the requester. */
  readonly device: string;
  readonly pasid: number | null;
  /** What used the entry: a DMA, an ATS translation request, a request the device's ATC translated, an interrupt. */
  readonly use: 'dma' | 'ats-request' | 'ats-translated' | 'interrupt';
  /** IOVA (dma, ats-request), translated address (ats-translated) or IRTE index (interrupt). */
  readonly address: number;
  /** The cache that may hold the stale entry. */
  readonly cache: 'context' | 'pasid' | 'iotlb' | 'device-tlb' | 'iec';
  /** The structure entry that changed: kind (`root`, `context`, `pasid-dir`, `pasid`, `L1`..`L5`, `irte`), address, qwords before and now. */
  readonly structure: { readonly kind: string; readonly gpa: number; readonly old: readonly string[]; readonly new: readonly string[] };
  /** The invalidation that would have covered the change (any wider one also would). */
  readonly required: { readonly type: number; readonly descriptor: string; readonly granularity: string; readonly fields: Readonly<Record<string, number>> };
  /** 'changed': a cached entry changed; 'caching-mode': with CAP.CM=1 an entry written since the last covering invalidation (not-present to present included). */
  readonly rule: 'changed' | 'caching-mode';
  /** One line saying all of the above. */
  readonly message: string;
}

/**
 * A warning of the strict programming-model checks (`x-strict=on`,
 * src/monitor/strict-checks.ts): something the VT-d spec calls a programming
 * error or undefined that the model (like hardware) tolerates silently.
 */
export interface StrictWarning {
  /** 1 for the unit's first warning, and so on. */
  readonly seq: number;
  /** A stable rule id, e.g. 'te-before-srtp'. */
  readonly rule: string;
  /** The register (name, byte offset) or the structure entry (kind, guest-physical address, qwords as hex) concerned. */
  readonly what:
    | { readonly register: string; readonly offset: number }
    | { readonly entry: string; readonly gpa: number; readonly raw: readonly string[] };
  /** The VT-d spec section (rev 4.x/5.0 numbering). */
  readonly section: string;
  /** One line saying all of the above. */
  readonly message: string;
}

export type IommuEventMap = {
  fault: (e: FaultEvent) => void;
  translate: (e: TranslateEvent) => void;
  invalidate: (e: InvalidateEvent) => void;
  /** A page-group response (descriptor 9) the guest sent to a device. */
  pageGroupResponse: (e: PageGroupResponse) => void;
  /** A register write (listen only when needed: it fires for every guest MMIO write). */
  registerWrite: (e: RegisterWriteEvent) => void;
  /** An interrupt remapped (or blocked) through an IRTE. */
  interruptRemap: (e: InterruptRemapEvent) => void;
  /** The unit was reset or loaded from a snapshot: every cache is empty. */
  reset: (e: { readonly why: 'reset' | 'load' }) => void;
  /** An invalidation sanitizer report (x-sanitize=on). */
  sanitizer: (r: SanitizerReport) => void;
  /** A strict programming-model warning (x-strict=on). */
  strict: (w: StrictWarning) => void;
};

/** The unit's emitter type. */
export type IommuEmitter = TypedEmitter<IommuEventMap> & {
  /**
   * True while 'translate' has a listener: what the translation hot path
   * checks instead of `listenerCount` (a field read, not a call per DMA page).
   */
  readonly translateListened: boolean;
  /** True while 'registerWrite' has a listener (checked on every MMIO write). */
  readonly registerListened: boolean;
};

type Listener = (...args: unknown[]) => void;

/** An EventEmitter that keeps `translateListened` current on every add and remove. */
class UnitEmitter extends EventEmitter {
  translateListened = false;
  registerListened = false;

  override on(name: string | symbol, listener: Listener): this {
    return this.track(super.on(name, listener));
  }
  override addListener(name: string | symbol, listener: Listener): this {
    return this.track(super.addListener(name, listener));
  }
  override prependListener(name: string | symbol, listener: Listener): this {
    return this.track(super.prependListener(name, listener));
  }
  override once(name: string | symbol, listener: Listener): this {
    return this.track(super.once(name, listener));
  }
  override prependOnceListener(name: string | symbol, listener: Listener): this {
    return this.track(super.prependOnceListener(name, listener));
  }
  override off(name: string | symbol, listener: Listener): this {
    return this.track(super.off(name, listener));
  }
  override removeListener(name: string | symbol, listener: Listener): this {
    return this.track(super.removeListener(name, listener));
  }
  override removeAllListeners(name?: string | symbol): this {
    return this.track(name === undefined ? super.removeAllListeners() : super.removeAllListeners(name));
  }

  private track(self: this): this {
    this.translateListened = super.listenerCount('translate') > 0;
    this.registerListened = super.listenerCount('registerWrite') > 0;
    return self;
  }
}

/** Creates an emitter for one unit. */
export function createIommuEmitter(): IommuEmitter {
  return new UnitEmitter() as unknown as IommuEmitter;
}

/** Trace event names, as QEMU's hw/i386/trace-events spells them. */
export const Trace = {
  fault: 'vtd_dmar_fault',
  faultRecord: 'vtd_frr_new',
  faultPpfOverflow: 'vtd_err_dmar_fault_overflow',
  faultCollapse: 'vtd_fault_collapse',
  faultFpd: 'vtd_fault_disabled',
  faultEvent: 'vtd_fault_event',
  irqGenerate: 'vtd_irq_generate',
  regRead: 'vtd_reg_read',
  regWrite: 'vtd_reg_write',
  gcmd: 'vtd_reg_write_gcmd',
  dmarEnable: 'vtd_dmar_enable',
  rootPointer: 'vtd_reg_dmar_root',
  irRootPointer: 'vtd_reg_ir_root',
  translate: 'vtd_dmar_translate',
  iotlbHit: 'vtd_iotlb_page_hit',
  iotlbUpdate: 'vtd_iotlb_page_update',
  iotlbReset: 'vtd_iotlb_reset',
  ccHit: 'vtd_iotlb_cc_hit',
  ccUpdate: 'vtd_iotlb_cc_update',
  ccGlobal: 'vtd_inv_desc_cc_global',
  ccDomain: 'vtd_inv_desc_cc_domain',
  ccDevice: 'vtd_inv_desc_cc_device',
  iotlbGlobal: 'vtd_inv_desc_iotlb_global',
  iotlbDomain: 'vtd_inv_desc_iotlb_domain',
  iotlbPages: 'vtd_inv_desc_iotlb_pages',
  ptTranslate: 'vtd_pt_enable_fast_path',
  fstsClearIp: 'vtd_fsts_clear_ip',
  fectlWrite: 'vtd_reg_write_fectl',
} as const;
