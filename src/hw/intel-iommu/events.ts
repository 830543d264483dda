/**
 * Observable events of the VT-d unit (typed-emitter over Node's
 * EventEmitter) and the QEMU-like trace names emitted through the tracer.
 *
 * Events are only built when someone listens (`listenerCount`), so the
 * translation hot path stays allocation-free without listeners.
 */
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';

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
  readonly cache: 'context' | 'iotlb' | 'iec' | 'pasid' | 'device-iotlb';
  readonly granularity: 'global' | 'domain' | 'device' | 'page' | 'index';
  readonly did?: number;
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
};

/** The unit's emitter type. */
export type IommuEmitter = TypedEmitter<IommuEventMap>;

/** Creates an emitter for one unit. */
export function createIommuEmitter(): IommuEmitter {
  return new EventEmitter() as unknown as IommuEmitter;
}

/** Trace event names, as QEMU's hw/i386/trace-events spells them. */
export const Trace = {
  fault: 'vtd_dmar_fault',
  faultRecord: 'vtd_frr_new',
  faultPpfOverflow: 'vtd_err_dmar_fault_overflow',
  faultCollapse: 'vtd_fault_collapse',
  faultFpd: 'vtd_fault_disabled',
  faultEvent: 'vtd_fault_event',
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
