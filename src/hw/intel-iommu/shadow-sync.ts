/**
 * One address space's notifiers and shadow (QEMU's VTDAddressSpace as far
 * as notifiers go): the registered notifiers, and while one of them wants
 * MAP events the mappings last reported to them (iova-tree.ts), which a
 * sync brings in line with the guest's tables (QEMU
 * vtd_sync_shadow_page_table_range / vtd_page_walk_one):
 *
 *   - the synced range is first widened to every reported mapping it
 *     overlaps, so a mapping is only ever unmapped whole (QEMU unmaps the
 *     new entry's range and forgets the rest of a larger old mapping);
 *   - each leaf the walk finds (shadow-walk.ts) is reported as MAP unless
 *     exactly that mapping was reported already; mappings it overlaps are
 *     unmapped first (one UNMAP over the larger of the leaf and the old
 *     mapping, which nest: they are aligned powers of two);
 *   - each hole unmaps the mappings it overlaps (one UNMAP over the hole,
 *     or over the old mapping when that holds the hole), and nothing when
 *     none was reported.
 *
 * `unmapAll` is QEMU's vtd_address_space_unmap: every notifier that wants
 * UNMAP hears one UNMAP per aligned power-of-two piece of its window below
 * 2^aw-bits, whatever was mapped, and the shadow is emptied.  Spaces without
 * a MAP notifier keep no shadow: `unmapRange` reports an invalidated range
 * as it is (what vhost needs).
 */
import {
  IOVA_SPACE_END,
  IommuNotifierFlag,
  IommuNotifierList,
  type IommuEvent,
  type IommuNotifier,
} from '../../memory/iommu-notifier.js';
import { IommuPerm, type DmaRequester } from '../../memory/iommu.js';
import { IovaTree, type IovaRange } from './iova-tree.js';
import type { TranslationConfig } from './resolve.js';
import type { ShadowVisitor, ShadowWalker } from './shadow-walk.js';

/** An event of this space. */
function event(type: IommuEvent['type'], iova: number, size: number, translated: number, perm: IommuPerm, pasid: number): IommuEvent {
  return { type, iova, size, addrMask: size - 1, translated, perm, pasid };
}

/**
 * The largest power of two `size` with `start` aligned to it and
 * start + size <= end (QEMU dma_aligned_pow2_mask), at most 2^maxBits.
 */
export function alignedPow2(start: number, end: number, maxBits: number): number {
  let size = 2 ** maxBits;
  while (size > 1 && (start % size !== 0 || start + size > end)) size /= 2;
  return size;
}

/** The notifiers and shadow of one requester's address space for one PASID. */
export class ShadowSpace implements ShadowVisitor {
  readonly list = new IommuNotifierList();
  /** The reported mappings while a notifier wants MAP events, else null. */
  private tree: IovaTree | null = null;
  /**
   * The domain the reported mappings came from (-1: none): invalidations of
   * it still reach the space after the guest moved it to another domain or
   * removed its entry.
   */
  shadowDid = -1;
  /** A notifier the sync must not tell (the one being replayed: it hears the result instead). */
  muted: IommuNotifier | null = null;
  /** Scratch range of a sync. */
  private readonly range: IovaRange = { start: 0, end: 0 };

  constructor(
    readonly requester: DmaRequester,
    readonly pasid: number,
    /** 2^awBits bounds every unmap (QEMU VTD_ADDRESS_SIZE). */
    private readonly awBits: number,
  ) {}

  /** True while some notifier wants MAP events (the space keeps a shadow). */
  get shadowing(): boolean {
    return this.tree !== null;
  }

  /** The reported mappings (empty without a MAP notifier). */
  mappings(): readonly { iova: number; size: number; translated: number; perm: IommuPerm }[] {
    return this.tree === null ? [] : this.tree.entries();
  }

  /** Adds a notifier (the unit checked its flags). */
  add(n: IommuNotifier): void {
    this.list.add(n);
    if (this.tree === null && (this.list.flags & IommuNotifierFlag.Map) !== 0) this.tree = new IovaTree();
  }

  /** Removes a notifier; the shadow goes with the last MAP notifier. */
  remove(n: IommuNotifier): void {
    this.list.remove(n);
    if ((this.list.flags & IommuNotifierFlag.Map) === 0) {
      this.tree = null;
      this.shadowDid = -1;
    }
  }

  /** Every UNMAP notifier hears its whole window unmapped; the shadow is emptied (QEMU vtd_address_space_unmap). */
  unmapAll(): void {
    const limit = 2 ** this.awBits;
    for (const n of this.list.notifiers) {
      if ((n.flags & IommuNotifierFlag.Unmap) === 0) continue;
      const end = Math.min(n.end, limit);
      for (let at = n.start; at < end; ) {
        const size = alignedPow2(at, end, this.awBits);
        n.deliver(event('unmap', at, size, 0, IommuPerm.None, this.pasid));
        at += size;
      }
    }
    this.tree?.clear();
    this.shadowDid = -1;
  }

  /**
   * An invalidated range without a shadow: every UNMAP notifier hears
   * [start, end) (null: its own whole window, QEMU
   * memory_region_unmap_iommu_notifier_range).
   */
  unmapRange(start: number | null, end: number): void {
    for (const n of this.list.notifiers) {
      if (start === null) n.deliver(event('unmap', n.start, n.end - n.start, 0, IommuPerm.None, this.pasid));
      else n.deliver(event('unmap', start, end - start, 0, IommuPerm.None, this.pasid));
    }
  }

  /** A device-TLB invalidation of [addr, addr + size) (QEMU DEVIOTLB_UNMAP). */
  devIotlbUnmap(addr: number, size: number): void {
    this.list.notify(event('devIotlbUnmap', addr, size, 0, IommuPerm.None, this.pasid));
  }

  /**
   * Brings the shadow of [start, end) in line with `cfg`'s tables (see the
   * file comment).  Only for a shadowing space and a walkable config.
   */
  sync(walker: ShadowWalker, cfg: TranslationConfig, start: number, end: number): void {
    const tree = this.tree;
    if (tree === null) return;
    this.shadowDid = cfg.did;
    const r = this.range;
    r.start = start;
    r.end = end;
    tree.widen(r);
    walker.walk(cfg, r.start, r.end, this);
    // Past the tables' span nothing translates (the entry may have shrunk its address width).
    const from = Math.max(r.start, walker.span(cfg));
    if (from < r.end) this.hole(from, r.end - from);
  }

  /** Reports every mapping of `cfg`'s tables to `n` alone, without a shadow (replay of a space that keeps none). */
  replayWalk(walker: ShadowWalker, cfg: TranslationConfig, n: IommuNotifier): void {
    const pasid = this.pasid;
    walker.walk(cfg, 0, IOVA_SPACE_END, {
      leaf: (iova, size, translated, perm) => n.deliver(event('map', iova, size, translated, perm, pasid)),
      hole: () => {},
    });
  }

  /** Reports the shadow to `n` alone as MAP events. */
  replayShadow(n: IommuNotifier): void {
    for (const m of this.mappings()) n.deliver(event('map', m.iova, m.size, m.translated, m.perm, this.pasid));
  }

  /** ShadowVisitor: a page of the tables. */
  leaf(iova: number, size: number, translated: number, perm: IommuPerm): void {
    const tree = this.tree!;
    if (tree.has(iova, size, translated, perm)) return;
    const gone = tree.remove(iova, iova + size);
    if (gone !== null) this.list.notify(event('unmap', gone.start, gone.end - gone.start, 0, IommuPerm.None, this.pasid), this.muted);
    tree.insert({ iova, size, translated, perm });
    this.list.notify(event('map', iova, size, translated, perm, this.pasid), this.muted);
  }

  /** ShadowVisitor: a range of the tables that translates nothing. */
  hole(iova: number, size: number): void {
    const gone = this.tree!.remove(iova, iova + size);
    if (gone !== null) this.list.notify(event('unmap', gone.start, gone.end - gone.start, 0, IommuPerm.None, this.pasid), this.muted);
  }
}
