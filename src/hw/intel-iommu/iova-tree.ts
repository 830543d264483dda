/**
 * The mappings last reported to an address space's MAP notifiers (QEMU's
 * per-VTDAddressSpace iova_tree): disjoint [iova, iova + size) ranges, each
 * a page-table leaf (4 KiB, 2 MiB or 1 GiB: aligned powers of two, so two
 * of them are either disjoint or one holds the other), kept sorted by IOVA
 * in an array searched by bisection.
 */
import type { IommuPerm } from '../../memory/iommu.js';

/** One reported mapping. */
export interface ShadowMapping {
  readonly iova: number;
  readonly size: number;
  readonly translated: number;
  readonly perm: IommuPerm;
}

/** A range [start, end) of IOVAs (end exclusive). */
export interface IovaRange {
  start: number;
  end: number;
}

/** Sorted, disjoint mappings. */
export class IovaTree {
  private items: ShadowMapping[] = [];

  /** Number of mappings. */
  get count(): number {
    return this.items.length;
  }

  /** The mappings in IOVA order (a live array: do not keep it across changes). */
  entries(): readonly ShadowMapping[] {
    return this.items;
  }

  /** Drops every mapping. */
  clear(): void {
    this.items = [];
  }

  /** Index of the first mapping ending after `addr`. */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.items[mid]!;
      if (m.iova + m.size > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** True when some mapping overlaps [start, end). */
  overlaps(start: number, end: number): boolean {
    const i = this.firstEndingAfter(start);
    return i < this.items.length && this.items[i]!.iova < end;
  }

  /** True when exactly this mapping is present. */
  has(iova: number, size: number, translated: number, perm: IommuPerm): boolean {
    const i = this.firstEndingAfter(iova);
    const m = this.items[i];
    return m !== undefined && m.iova === iova && m.size === size && m.translated === translated && m.perm === perm;
  }

  /**
   * Widens `r` to cover every mapping it overlaps (one pass suffices: the
   * mappings are disjoint, so none overlaps the widened part but those).
   */
  widen(r: IovaRange): void {
    let i = this.firstEndingAfter(r.start);
    while (i < this.items.length && this.items[i]!.iova < r.end) {
      const m = this.items[i]!;
      if (m.iova < r.start) r.start = m.iova;
      if (m.iova + m.size > r.end) r.end = m.iova + m.size;
      i++;
    }
  }

  /**
   * Removes every mapping overlapping [start, end) and returns the range
   * the removed ones and [start, end) cover together, or null when none
   * overlapped.
   */
  remove(start: number, end: number): IovaRange | null {
    const i = this.firstEndingAfter(start);
    let j = i;
    while (j < this.items.length && this.items[j]!.iova < end) j++;
    if (j === i) return null;
    const first = this.items[i]!;
    const last = this.items[j - 1]!;
    this.items.splice(i, j - i);
    return { start: Math.min(start, first.iova), end: Math.max(end, last.iova + last.size) };
  }

  /** Inserts `m`, which must overlap no mapping (remove those first). */
  insert(m: ShadowMapping): void {
    const i = this.firstEndingAfter(m.iova);
    this.items.splice(i, 0, m);
  }
}
