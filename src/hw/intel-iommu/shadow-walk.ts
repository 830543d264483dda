/**
 * Walking a range of a translation's page tables for the shadow (QEMU
 * vtd_page_walk / vtd_page_walk_level): every entry whose range meets
 * [start, end) is visited once, in IOVA order, and reported as
 *   leaf   a 4 KiB / 2 MiB / 1 GiB page a DMA may use: iova, size,
 *          translated address, permissions stacked over the levels
 *   hole   the entry's whole range translates nothing (not present, no
 *          permission, unreadable, reserved bits set, output in the
 *          interrupt window)
 * A table entry is followed down over the part of its range inside
 * [start, end); a leaf or a hole is reported with its whole range, which
 * may stick out of [start, end), as QEMU reports it.
 *
 * The rules are the translation's (page-walk.ts, first-stage-walk.ts), so
 * a leaf is exactly a page whose DMA translates: second stage (legacy and
 * scalable PGTT=2) with R/W stacked, first stage (PGTT=1) with P and US at
 * every level and RW stacked.  Unlike QEMU, which skips entries it cannot
 * read or that have reserved bits (leaving what it reported before) and
 * reports leaves in the interrupt window, such entries are holes here:
 * their DMA faults, so a shadow must not keep them.  The first stage is
 * walked over its lower canonical half only.  The walk reads guest memory
 * and writes nothing (no Accessed / Dirty bits).
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64 } from '../../memory/address.js';
import { IommuPerm } from '../../memory/iommu.js';
import { MSI_ADDRESS_BASE as WINDOW_BASE, MSI_ADDRESS_LAST as WINDOW_LAST } from '../../core/irq.js';
import { FS_WIDTH_BASE, FS_WIDTH_PER_AW, FsPte, LEAF_ADDR_LO, RSVD_PS_LO, type FsWalkRules } from './first-stage-walk.js';
import { newQword, readQword } from './guest-mem.js';
import { Geometry, LEVEL_SIZE, Pte, type WalkRules } from './page-walk.js';
import type { TranslationConfig } from './resolve.js';
import { Pgtt } from './scalable-context.js';
import type { WalkStageRules } from './walk-stage.js';

/** What a range walk reports. */
export interface ShadowVisitor {
  /** A page [iova, iova + size) -> translated with `perm` (Read, Write or both). */
  leaf(iova: number, size: number, translated: number, perm: IommuPerm): void;
  /** [iova, iova + size) translates nothing. */
  hole(iova: number, size: number): void;
}

/** Adjusted guest address width of AW: 30 + 9 * AW. */
const AGAW_BASE = 30;
const AGAW_PER_AW = 9;
const ALL_ONES = 0xffff_ffff;
const PS_LEVELS_MIN = 2;
const PS_LEVELS_MAX = 3;

/** True for the translation types the walk follows (second and first stage). */
export function walkable(cfg: TranslationConfig): boolean {
  return cfg.pgtt === Pgtt.SecondStage || cfg.pgtt === Pgtt.FirstStage;
}

/**
 * End of the IOVA range `cfg` translates from 0: 2^min(agaw, aw-bits) for
 * second stage, the lower canonical half 2^(min(30 + 9 * AW, aw-bits) - 1)
 * for first stage.
 */
export function walkSpan(rules: WalkStageRules, cfg: TranslationConfig): number {
  if (cfg.pgtt === Pgtt.FirstStage) return 2 ** (Math.min(FS_WIDTH_BASE + FS_WIDTH_PER_AW * cfg.aw, rules.fs.awBits) - 1);
  return 2 ** Math.min(AGAW_BASE + AGAW_PER_AW * cfg.aw, rules.ss.awBits);
}

/** True when a page [addr, addr + size) meets the interrupt window. */
function inWindow(addr: number, size: number): boolean {
  return addr <= WINDOW_LAST && addr + size - 1 >= WINDOW_BASE;
}

/** A walker over guest memory; one per unit (it keeps a scratch qword). */
export class ShadowWalker {
  private readonly q = newQword();

  constructor(
    private readonly mem: AddressSpace,
    private readonly rules: WalkStageRules,
  ) {}

  /** End of the IOVA range `cfg` translates from 0 (walkSpan). */
  span(cfg: TranslationConfig): number {
    return walkSpan(this.rules, cfg);
  }

  /**
   * Walks `cfg`'s tables over [start, end) (clipped to walkSpan) and
   * reports to `v`; `cfg` must be walkable.
   */
  walk(cfg: TranslationConfig, start: number, end: number, v: ShadowVisitor): void {
    const stop = Math.min(end, walkSpan(this.rules, cfg));
    if (start >= stop) return;
    if (cfg.pgtt === Pgtt.FirstStage) this.fsLevel(this.rules.fs, cfg.fsRoot, cfg.fsLevels, start, stop, true, v);
    else this.ssLevel(this.rules.ss, cfg.ssRoot, cfg.ssLevels, start, stop, true, true, v);
  }

  /** The entries of the second-stage table at `table` (level `level`) meeting [start, end). */
  private ssLevel(rules: WalkRules, table: number, level: number, start: number, end: number, r: boolean, w: boolean, v: ShadowVisitor): void {
    const size = LEVEL_SIZE[level]!;
    const q = this.q;
    for (let at = start; at < end; ) {
      const base = at - (at % size);
      const next = base + size;
      const ok = readQword(this.mem, table + ((base / size) % Geometry.ENTRIES) * Geometry.PTE_SIZE, q);
      const lo = q.lo;
      const hi = q.hi;
      const rr = r && (lo & Pte.R) !== 0;
      const ww = w && (lo & Pte.W) !== 0;
      const large = level >= PS_LEVELS_MIN && level <= PS_LEVELS_MAX && (lo & Pte.PS) !== 0;
      const rsvd =
        (lo & (large ? rules.largeLo[level]! : rules.rsvdLo[level]!)) !== 0 || (hi & (large ? rules.largeHi[level]! : rules.rsvdHi[level]!)) !== 0;
      if (!ok || (lo === ALL_ONES && hi === ALL_ONES) || (!rr && !ww) || rsvd) {
        v.hole(base, size);
      } else {
        const addr = join64(lo & Pte.ADDR_LO, hi & rules.addrHiMask);
        if (level === 1 || (lo & Pte.PS) !== 0) {
          if (inWindow(addr, size)) v.hole(base, size);
          else v.leaf(base, size, addr, ((rr ? IommuPerm.Read : 0) | (ww ? IommuPerm.Write : 0)) as IommuPerm);
        } else {
          this.ssLevel(rules, addr, level - 1, at, Math.min(next, end), rr, ww, v);
        }
      }
      at = next;
    }
  }

  /** The entries of the first-stage table at `table` (level `level`) meeting [start, end). */
  private fsLevel(rules: FsWalkRules, table: number, level: number, start: number, end: number, w: boolean, v: ShadowVisitor): void {
    const size = LEVEL_SIZE[level]!;
    const q = this.q;
    for (let at = start; at < end; ) {
      const base = at - (at % size);
      const next = base + size;
      const ok = readQword(this.mem, table + ((base / size) % Geometry.ENTRIES) * Geometry.PTE_SIZE, q);
      const lo = q.lo;
      const hi = q.hi;
      const ps = (lo & FsPte.PS) !== 0;
      const valid =
        ok &&
        !(lo === ALL_ONES && hi === ALL_ONES) &&
        (lo & FsPte.P) !== 0 &&
        (lo & FsPte.US) !== 0 &&
        (hi & rules.rsvdHi) === 0 &&
        !(ps && (lo & RSVD_PS_LO[level]!) !== 0);
      if (!valid) {
        v.hole(base, size);
      } else {
        const ww = w && (lo & FsPte.RW) !== 0;
        const hiAddr = hi & rules.addrHiMask;
        const xlat = join64(lo & FsPte.ADDR_LO, hiAddr);
        if (level === 1 || ps) {
          // The translation checks the window with the entry's address bits, PAT of a large leaf included.
          if (inWindow(xlat, size)) v.hole(base, size);
          else v.leaf(base, size, level === 1 ? xlat : join64(lo & LEAF_ADDR_LO[level]!, hiAddr), ww ? IommuPerm.ReadWrite : IommuPerm.Read);
        } else {
          this.fsLevel(rules, xlat, level - 1, at, Math.min(next, end), ww, v);
        }
      }
      at = next;
    }
  }
}
