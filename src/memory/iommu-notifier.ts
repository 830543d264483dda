/**
 * IOMMU notifiers: how whoever caches the translations of one DMA address
 * space follows the guest's mappings (QEMU's IOMMUNotifier,
 * memory_region_register_iommu_notifier and memory_region_iommu_replay,
 * which vfio and vhost use to shadow a guest's IOMMU).
 *
 * A DMA address space is one requester's space for one PASID (NO_PASID:
 * requests without one).  A consumer builds an `IommuNotifier` with the
 * events it wants (flags) and an optional IOVA window, listens to it (a
 * typed emitter: 'map', 'unmap', 'devIotlbUnmap'), and registers it with the
 * space an IOMMU hands out (`IommuNotifierSource.notifierSpace`).  The IOMMU
 * may refuse a registration (`IommuNotifierError`, QEMU's wording): VT-d,
 * for one, only reports MAP events with caching-mode=on.
 *
 *   map             a translation appeared: [iova, iova + size) -> translated, perm
 *   unmap           every translation in [iova, iova + size) is gone
 *   devIotlbUnmap   the guest invalidated a device-TLB range (for an ATC or vhost)
 *
 * `replay(n)` reports every current mapping of the space to `n` alone, as
 * MAP events (what a consumer does right after registering).
 *
 * Addresses and sizes are numbers: page bases are exact up to 2^64 and every
 * size is exact (a power of two, or a notifier window's length); `addrMask`
 * (QEMU's addr_mask, size - 1) is exact below 2^53, so a consumer of ranges
 * that large should use `size`.
 */
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';
import type { DmaRequester, IommuPerm } from './iommu.js';

type TypedEmitter<E extends TypedEmitterModule.EventMap> = TypedEmitterModule.default<E>;

/** Notifier flags (QEMU IOMMUNotifierFlag, same values): what a notifier wants to hear. */
export const IommuNotifierFlag = {
  None: 0,
  /** Translations removed (QEMU IOMMU_NOTIFIER_UNMAP). */
  Unmap: 1,
  /** Translations added (QEMU IOMMU_NOTIFIER_MAP): a shadow of the guest's tables. */
  Map: 2,
  /** Device-TLB invalidations (QEMU IOMMU_NOTIFIER_DEVIOTLB_UNMAP). */
  DevIotlbUnmap: 4,
  /** Map | Unmap (QEMU IOMMU_NOTIFIER_IOTLB_EVENTS): what a vfio-like shadow registers. */
  IotlbEvents: 3,
} as const;
export type IommuNotifierFlag = (typeof IommuNotifierFlag)[keyof typeof IommuNotifierFlag];

/** The kind of one notification, also its event name on the notifier. */
export type IommuEventType = 'map' | 'unmap' | 'devIotlbUnmap';

/** The flag a notifier needs to receive events of `type`. */
export function flagOf(type: IommuEventType): number {
  return type === 'map' ? IommuNotifierFlag.Map : type === 'unmap' ? IommuNotifierFlag.Unmap : IommuNotifierFlag.DevIotlbUnmap;
}

/** One notification (QEMU IOMMUTLBEvent). */
export interface IommuEvent {
  readonly type: IommuEventType;
  /** First IOVA of the range (aligned to `size` for map events). */
  readonly iova: number;
  /** Bytes covered: the page size of a map, the range of an unmap (2^64: everything). */
  readonly size: number;
  /** size - 1 (QEMU addr_mask; exact below 2^53). */
  readonly addrMask: number;
  /** Translated (guest-physical) address of `iova`; 0 for unmaps. */
  readonly translated: number;
  /** Access the translation allows; IommuPerm.None for unmaps. */
  readonly perm: IommuPerm;
  /** PASID of the address space (NO_PASID: requests without one). */
  readonly pasid: number;
}

/** The events of a notifier, by type. */
export type IommuNotifierEvents = {
  map: (e: IommuEvent) => void;
  unmap: (e: IommuEvent) => void;
  devIotlbUnmap: (e: IommuEvent) => void;
};

/** IOVAs are 64-bit: a window ending here covers everything. */
export const IOVA_SPACE_END = 2 ** 64;

/** An IOVA window [start, end) of a notifier (end exclusive; IOVA_SPACE_END for the top). */
export interface IovaWindow {
  readonly start: number;
  readonly end: number;
}

const EMITTER = EventEmitter as unknown as new () => TypedEmitter<IommuNotifierEvents>;

/**
 * One listener of an address space (QEMU IOMMUNotifier): the events it
 * wants and the IOVA window it cares about; listen with `on('map', ...)` etc.
 */
export class IommuNotifier extends EMITTER {
  readonly start: number;
  readonly end: number;

  constructor(
    /** IommuNotifierFlag bits. */
    readonly flags: number,
    window: IovaWindow = { start: 0, end: IOVA_SPACE_END },
  ) {
    super();
    if ((flags & ~(IommuNotifierFlag.IotlbEvents | IommuNotifierFlag.DevIotlbUnmap)) !== 0 || flags === 0) {
      throw new RangeError(`IommuNotifier: bad flags ${flags}`);
    }
    if (!(window.start >= 0 && window.start < window.end && window.end <= IOVA_SPACE_END)) {
      throw new RangeError(`IommuNotifier: bad window [${window.start}, ${window.end})`);
    }
    this.start = window.start;
    this.end = window.end;
  }

  /**
   * Emits `e` when this notifier wants its type and its range overlaps the
   * window (QEMU memory_region_notify_iommu_one); returns whether it did.
   */
  deliver(e: IommuEvent): boolean {
    if ((this.flags & flagOf(e.type)) === 0) return false;
    if (e.iova >= this.end || e.iova + e.size <= this.start) return false;
    this.emit(e.type, e);
    return true;
  }
}

/** A registration the IOMMU refuses (QEMU's notify_flag_changed error). */
export class IommuNotifierError extends Error {
  override readonly name = 'IommuNotifierError';
}

/** The notifier side of one DMA address space (QEMU's IOMMUMemoryRegion, as far as notifiers go). */
export interface IommuNotifierSpace {
  /** The requester whose space this is. */
  readonly requester: DmaRequester;
  /** Its PASID (NO_PASID: requests without one). */
  readonly pasid: number;
  /** The union of the registered notifiers' flags (QEMU iommu_notify_flags). */
  readonly notifierFlags: number;
  /** Registers `n`; throws IommuNotifierError when the IOMMU cannot serve its flags (nothing changes then). */
  registerNotifier(n: IommuNotifier): void;
  /** Unregisters `n` (no effect when it is not registered). */
  unregisterNotifier(n: IommuNotifier): void;
  /**
   * Reports every current mapping of the space to `n` alone as 'map' events
   * (nothing when `n` lacks the Map flag): for a notifier that holds no
   * mapping yet, typically right after registering it.
   */
  replay(n: IommuNotifier): void;
}

/** An IOMMU that hands out notifier spaces. */
export interface IommuNotifierSource {
  /** The notifier side of `requester`'s address space for `pasid` (NO_PASID: requests without one). */
  notifierSpace(requester: DmaRequester, pasid?: number): IommuNotifierSpace;
}

/**
 * The notifiers of one address space, for IOMMU implementations: a
 * copy-on-write list (a listener may register or unregister notifiers while
 * an event is being delivered) and the union of their flags.
 */
export class IommuNotifierList {
  private list: readonly IommuNotifier[] = [];
  private union = 0;

  /** Union of the flags of the listed notifiers. */
  get flags(): number {
    return this.union;
  }

  /** The listed notifiers (a snapshot: later changes make a new array). */
  get notifiers(): readonly IommuNotifier[] {
    return this.list;
  }

  /** The flags the list would have with `n` added. */
  flagsWith(n: IommuNotifier): number {
    return this.union | n.flags;
  }

  /** The flags the list would have with `n` removed. */
  flagsWithout(n: IommuNotifier): number {
    let f = 0;
    for (const m of this.list) if (m !== n) f |= m.flags;
    return f;
  }

  /** Adds `n` (once). */
  add(n: IommuNotifier): void {
    if (this.list.includes(n)) return;
    this.list = [...this.list, n];
    this.union |= n.flags;
  }

  /** Removes `n`; returns whether it was listed. */
  remove(n: IommuNotifier): boolean {
    if (!this.list.includes(n)) return false;
    this.union = this.flagsWithout(n);
    this.list = this.list.filter((m) => m !== n);
    return true;
  }

  /** Delivers `e` to every listed notifier that wants it but `except` (QEMU memory_region_notify_iommu). */
  notify(e: IommuEvent, except: IommuNotifier | null = null): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i] !== except) list[i]!.deliver(e);
  }
}
