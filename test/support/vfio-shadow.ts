/**
 * A vfio-like consumer of IOMMU notifiers, for tests: it keeps a host-side
 * mapping table (what vfio would hand to VFIO_IOMMU_MAP_DMA / UNMAP_DMA)
 * from the notifications alone, never reading guest memory.  It registers
 * a MAP | UNMAP notifier on one address space and replays the space's
 * current mappings, as vfio does when a section of an IOMMU region appears.
 *
 * It also checks the contract a real vfio container enforces: a MAP over
 * an existing mapping fails there (EEXIST), and so does an UNMAP that cuts
 * a mapping in two (type1 v2); both are recorded in `violations`.
 */
import {
  IommuNotifier,
  IommuNotifierFlag,
  type IommuEvent,
  type IommuNotifierSpace,
} from '../../src/memory/iommu-notifier.js';

/** One host mapping: [iova, iova + size) -> translated with perm. */
export interface HostMapping {
  readonly iova: number;
  readonly size: number;
  readonly translated: number;
  readonly perm: number;
}

/** The host side of one shadowed address space. */
export class VfioShadow {
  readonly notifier: IommuNotifier;
  /** Contract violations (see the file comment), as text. */
  readonly violations: string[] = [];
  /** Events seen, by type. */
  readonly counts = { map: 0, unmap: 0, devIotlbUnmap: 0 };
  /** Host mappings by IOVA. */
  private readonly table = new Map<number, HostMapping>();

  constructor(
    /** The shadowed address space. */
    readonly space: IommuNotifierSpace,
    flags: number = IommuNotifierFlag.IotlbEvents,
  ) {
    this.notifier = new IommuNotifier(flags);
    this.notifier.on('map', (e) => this.map(e));
    this.notifier.on('unmap', (e) => this.unmap(e));
    this.notifier.on('devIotlbUnmap', () => this.counts.devIotlbUnmap++);
    space.registerNotifier(this.notifier);
    space.replay(this.notifier);
  }

  /** Unregisters (the table stays as it was). */
  detach(): void {
    this.space.unregisterNotifier(this.notifier);
  }

  /** The host mappings in IOVA order. */
  mappings(): HostMapping[] {
    return [...this.table.values()].sort((a, b) => a.iova - b.iova);
  }

  /** The mapping holding `iova`, if any. */
  lookup(iova: number): HostMapping | undefined {
    for (const m of this.table.values()) if (iova >= m.iova && iova < m.iova + m.size) return m;
    return undefined;
  }

  private map(e: IommuEvent): void {
    this.counts.map++;
    for (const m of this.table.values()) {
      if (m.iova < e.iova + e.size && e.iova < m.iova + m.size) {
        this.violations.push(`map 0x${e.iova.toString(16)}+0x${e.size.toString(16)} over 0x${m.iova.toString(16)}+0x${m.size.toString(16)}`);
        return;
      }
    }
    this.table.set(e.iova, { iova: e.iova, size: e.size, translated: e.translated, perm: e.perm });
  }

  private unmap(e: IommuEvent): void {
    this.counts.unmap++;
    const end = e.iova + e.size;
    for (const m of [...this.table.values()]) {
      const mEnd = m.iova + m.size;
      if (mEnd <= e.iova || m.iova >= end) continue;
      if (m.iova < e.iova || mEnd > end) {
        this.violations.push(`unmap 0x${e.iova.toString(16)}+0x${e.size.toString(16)} cuts 0x${m.iova.toString(16)}+0x${m.size.toString(16)}`);
        continue;
      }
      this.table.delete(m.iova);
    }
  }
}
