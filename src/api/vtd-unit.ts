/**
 * The public view of one Intel VT-d remapping unit (`-device intel-iommu`):
 * what an embedder may see and use, and nothing of how the unit is built.
 *
 * The model's unit (src/hw/intel-iommu/device.ts) carries its register file,
 * caches, queue and translators as fields that the unit's parts share; a
 * package user gets this narrower interface instead, which the model's class
 * satisfies as it is (machine.ts checks that at compile time).  Guest-visible
 * state is read through the registers (`machine.memory`) or `inspectIommu`,
 * mappings are followed through `notifierSpace`, and what the unit does is
 * observed through `events`.
 */
import type { DmaRequester } from '../memory/iommu.js';
import type { IommuNotifierSpace } from '../memory/iommu-notifier.js';
import type {
  FaultEvent, InterruptRemapEvent, InvalidateEvent, IommuEventMap, RegisterWriteEvent, SanitizerReport, StrictWarning, TranslateEvent,
} from '../hw/intel-iommu/events.js';
import type { PageGroupResponse } from '../hw/intel-iommu/requests.js';
import type { TypedEmitter } from './emitter.js';

export type { FaultEvent, InterruptRemapEvent, InvalidateEvent, RegisterWriteEvent, SanitizerReport, StrictWarning, TranslateEvent, PageGroupResponse };

/** A unit's configuration after QEMU 11.1's property resolution (`auto` values decided), as read-only data. */
export interface VtdConfig {
  /** Host address width in bits (`aw-bits`: 39, 48 or 57). */
  readonly awBits: number;
  /** `caching-mode` (CAP.CM): the guest also invalidates after creating mappings. */
  readonly cachingMode: boolean;
  /** Interrupt remapping offered (ECAP.IR), after `auto` resolution. */
  readonly intremap: boolean;
  /** Extended interrupt mode (ECAP.EIM), after `auto` resolution. */
  readonly eim: boolean;
  /** `device-iotlb` (ECAP.DT): ATS translation requests and device-TLB invalidations. */
  readonly deviceIotlb: boolean;
  /** ECAP.PT: pass-through context entries. */
  readonly pt: boolean;
  /** CAP.DRD / CAP.DWD: read and write draining. */
  readonly dmaDrain: boolean;
  /** `dma-translation`: DMA remapping offered at all. */
  readonly dmaTranslation: boolean;
  /** `snoop-control` (ECAP.SC). */
  readonly snoopControl: boolean;
  /** `scalable-mode` (ECAP.SMTS): scalable-mode root and context tables. */
  readonly scalableMode: boolean;
  /** PASID width in bits (`pasid-bits`); 0: no PASID support. */
  readonly pasidBits: number;
  /** First-stage translation (`fsts`, formerly `x-flts`). */
  readonly fsts: boolean;
  /** 1 GiB first-stage pages (CAP.FS1GP). */
  readonly fs1gp: boolean;
  /** `svm`: page requests (ECAP.PRS) and shared virtual memory. */
  readonly svm: boolean;
  /** `stale-tm`: the TM bit of second-stage leaves is accepted. */
  readonly staleTm: boolean;
  /** CAP.FS5LP: 5-level first stage (vtemu's `x-fs5lp`). */
  readonly fs5lp: boolean;
  /** ECAP.NEST: nested translation (vtemu's `x-nested`). */
  readonly nested: boolean;
  /** ECAP.SMPWC: scalable-mode page-walk coherency (vtemu's `x-smpwc`). */
  readonly smpwc: boolean;
  /** VER register value. */
  readonly version: number;
  /** Number of fault recording registers. */
  readonly nfr: number;
}

/** What a VT-d unit reports, `unit.events.on(name, listener)`: the model's own event map (events.ts). */
export type { IommuEventMap as VtdEventMap };

/** One VT-d unit, as a package user sees it. */
export interface VtdUnit {
  /** Always `intel-iommu`. */
  readonly typeName: 'intel-iommu';
  /** The resolved configuration. */
  readonly config: VtdConfig;
  /** CAP register value. */
  readonly capability: bigint;
  /** ECAP register value. */
  readonly extendedCapability: bigint;
  /** DMA remapping is on (GSTS.TES). */
  readonly dmarEnabled: boolean;
  /** Root table address latched by the last SRTP. */
  readonly rootTable: number;
  /** The latched root table is a scalable-mode one (RTADDR.SMT at the last SRTP). */
  readonly scalable: boolean;
  /** The unit's events. */
  readonly events: TypedEmitter<IommuEventMap>;
  /**
   * The IOMMU notifier space of `requester`'s DMA address space for `pasid`
   * (default: requests without a PASID): register MAP / UNMAP /
   * DEVIOTLB_UNMAP notifiers there and replay the current mappings, as
   * QEMU's vfio does.
   */
  notifierSpace(requester: DmaRequester, pasid?: number): IommuNotifierSpace;
}

/** A unit of a machine with its `id=` and where its register window is mapped. */
export interface VtdUnitRef {
  readonly unit: VtdUnit;
  /** The `id=` it was created with ('' without one). */
  readonly id: string;
  /** Guest-physical base of its register window (null: not mapped). */
  readonly base: number | null;
}
