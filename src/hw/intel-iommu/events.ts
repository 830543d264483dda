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
  /** Who asked: 'register', 'queue' or 'internal' (GCMD side effects). */
  readonly source: 'register' | 'queue' | 'internal';
}

/** The event map of an IntelIommu. */
export type IommuEventMap = {
  fault: (e: FaultEvent) => void;
  translate: (e: TranslateEvent) => void;
  invalidate: (e: InvalidateEvent) => void;
  /** A page-group response (descriptor 9) the guest sent to a device. */
  pageGroupResponse: (e: PageGroupResponse) => void;
};

/** The unit's emitter type. */
export type IommuEmitter = TypedEmitter<IommuEventMap> & {
  /**
   * True while 'translate' has a listener: what the translation hot path
   * checks instead of `listenerCount` (a field read, not a call per DMA page).
   */
  readonly translateListened: boolean;
};

type Listener = (...args: unknown[]) => void;

/** An EventEmitter that keeps `translateListened` current on every add and remove. */
class UnitEmitter extends EventEmitter {
  translateListened = false;

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
