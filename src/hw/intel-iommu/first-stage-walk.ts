/**
 * First-stage page walk of scalable mode (VT-d spec 3.6, 9.7): x86-style
 * 4-level tables (PML4 / PDPT / PD / PT; 5 levels as the vtemu extension
 * x-fs5lp) of 512 8-byte entries, 2 MiB and 1 GiB leaves, the canonical
 * input check, user / write permission at every level, reserved bits per
 * level, Accessed / Dirty write-back, and the interrupt-range output rule,
 * with QEMU 11.1's fault reasons and check order (vtd_iova_to_fspte,
 * vtd_iova_fs_check_canonical, vtd_fspte_nonzero_rsvd, vtd_set_flag_in_pte;
 * the window check of vtd_do_iommu_translate).
 *
 *   PTE: bit 0 P, 1 RW, 2 US, 3 PWT, 4 PCD, 5 A, 6 D (leaf), 7 PS (levels 2-3;
 *        reserved at 4-5, PAT in a 4 KiB leaf), 8 G (leaf), 12 PAT (large
 *        leaf), bits 51:12 address (51:HAW reserved), 62:52 ignored, 63 XD
 *
 * Nested translation (vtemu extension x-nested): an optional second stage
 * translates the address of every first-stage entry read (as a read; the
 * A/D write-back as a write) and the output address; its faults are returned
 * as they are.  Without it the walk costs one null test per level.
 */
import { MemTx, type AddressSpace } from '../../memory/address-space.js';
import { hi32, join64, lo32, TWO_POW_32 } from '../../memory/address.js';
import { IommuPerm } from '../../memory/iommu.js';
import { MSI_ADDRESS_BASE as INTERRUPT_WINDOW_BASE, MSI_ADDRESS_LAST as INTERRUPT_WINDOW_LAST } from '../../core/irq.js';
import { VtdFault } from './fault-reasons.js';
import { newQword, readQword } from './guest-mem.js';
import { Geometry, LEVEL_SIZE, newWalkResult, type WalkResult } from './page-walk.js';

/** First-stage PTE bits, low dword (spec 9.7). */
export const FsPte = {
  /** Present. */
  P: 1 << 0,
  /** Read/write: writes allowed when set at every level. */
  RW: 1 << 1,
  /** User/supervisor: every DMA is a user access, so it must be set. */
  US: 1 << 2,
  PWT: 1 << 3,
  PCD: 1 << 4,
  /** Accessed: set by the walk at every level. */
  A: 1 << 5,
  /** Dirty: set by the walk in the leaf for writes. */
  D: 1 << 6,
  /** Page size: a 2 MiB (level 2) or 1 GiB (level 3) leaf; reserved at levels 4-5. */
  PS: 1 << 7,
  G: 1 << 8,
  /** PAT of a large leaf (bit 12): not an address bit. */
  PAT_LARGE: 1 << 12,
  ADDR_LO: 0xffff_f000,
} as const;

/** First-stage PTE bits, high dword. */
export const FsPteHi = {
  /** Bits 62:52, ignored (protection key / available). */
  IGNORED: 0x7ff0_0000,
  /** Execute disable, bit 63: about instruction fetches, ignored for DMA. */
  XD: 0x8000_0000,
} as const;

/** Levels of a first-stage table (PASID entry FSPM: 0 = 4-level, 1 = 5-level). */
export const FsLevels = { FOUR: 4, FIVE: 5 } as const;

/**
 * Input width selected by a PASID entry's AW field, before the unit's
 * aw-bits cap: 30 + 9 * AW (QEMU vtd_get_iova_agaw in scalable mode, which
 * QEMU also applies to first stage).
 */
export const FS_WIDTH_BASE = 30;
export const FS_WIDTH_PER_AW = 9;
/** Every value of the 3-bit PASID-entry AW field. */
const AW_FIELD: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7];
const TWO_POW_64 = TWO_POW_32 * TWO_POW_32;

/** Address bits 51:32 of a PTE (high dword). */
const PTE_ADDR_HI = 0x000f_ffff;
/**
 * Reserved low-dword bits of an entry with PS set, by level (1..5): bits
 * 20:13 of a 2 MiB leaf, 29:13 of a 1 GiB leaf (bit 12 is PAT), PS itself at
 * levels 4-5; bit 7 of a 4 KiB leaf is PAT.  With PS clear no low-dword bit
 * is reserved at any level.
 */
export const RSVD_PS_LO: readonly number[] = [0, 0, 0x001f_e000, 0x3fff_e000, FsPte.PS, FsPte.PS];
/** Address bits of a leaf's low dword by level: the PAT bit 12 of large leaves is not one. */
export const LEAF_ADDR_LO: readonly number[] = [0, 0xffff_f000, 0xffe0_0000, 0xc000_0000];
/** Bits of an IOVA's low dword that select the 4 KiB page inside a leaf, by level. */
const LEAF_PAGE_LO: readonly number[] = [0, 0, 0x001f_f000, 0x3fff_f000];

/** Walk parameters fixed by the unit's configuration. */
export class FsWalkRules {
  /** Reserved bits of the high dword at every level: address bits 51:HAW. */
  readonly rsvdHi: number;
  /** Mask of the high dword of a PTE's address field: bits (HAW-1):32, never above 51. */
  readonly addrHiMask: number;
  /**
   * By AW field (0..7): the IOVA bits (low / high dword) from the sign bit
   * up, bit min(30 + 9 * AW, aw-bits) - 1 to 63, which must be all equal.
   */
  readonly canonLo: Uint32Array;
  readonly canonHi: Uint32Array;

  constructor(
    /** The unit's host address width (aw-bits: 39, 48 or 57). */
    readonly awBits: number,
  ) {
    const hawHi = 2 ** (awBits - 32) - 1;
    this.addrHiMask = (hawHi & PTE_ADDR_HI) >>> 0;
    // Bits 51:HAW (QEMU VTD_FPTE_*_RSVD_MASK: ~HAW mask & ~upper-ignored 63:52).
    this.rsvdHi = (~hawHi & PTE_ADDR_HI) >>> 0;
    this.canonLo = Uint32Array.from(AW_FIELD, (aw) => lo32(fromSignBit(aw, awBits)));
    this.canonHi = Uint32Array.from(AW_FIELD, (aw) => hi32(fromSignBit(aw, awBits)));
  }
}

/**
 * Bits (width - 1)..63 set, width = min(30 + 9 * AW, aw-bits), as a number:
 * exact (at most 64 - 29 significant bits).
 */
function fromSignBit(aw: number, awBits: number): number {
  const width = Math.min(FS_WIDTH_BASE + FS_WIDTH_PER_AW * aw, awBits);
  return TWO_POW_64 - 2 ** (width - 1);
}

/**
 * A second stage under the first (nested translation): `translate` returns
 * 0 and fills `out` (out.translated = base of the out.level page holding
 * `gpa`, out.perm), or a fault reason.  Called with the guest-physical
 * address of each entry read (isWrite false; again with true before an A/D
 * write-back) and of the output's 4 KiB page (the request's isWrite); it
 * must not call back into the first-stage walk (one shared scratch result).
 */
export interface NestedSecondStage {
  translate(gpa: number, isWrite: boolean, out: WalkResult): number;
}

const pte = newQword();
const stage2 = newWalkResult();
const ALL_ONES = 0xffff_ffff;
/** Bits of an IOVA below each level's index field (index = level, 1..5). */
const LEVEL_SHIFT: readonly number[] = [0, 12, 21, 30, 39, 48];
/** Levels whose index field starts in the IOVA's low dword (shifts 12, 21, 30). */
const LOW_DWORD_LEVELS = 3;
/** Shift of the index field within the IOVA's high dword, levels 4-5 (IOVA bits 39 and 48). */
const HI_DWORD_SHIFT: readonly number[] = [0, 0, 0, 0, 7, 16];
const INDEX_MASK = Geometry.ENTRIES - 1;
/** First address above the interrupt window (spec 3.15). */
const WINDOW_END = INTERRUPT_WINDOW_LAST + 1;

/** Index of an IOVA, given as 32-bit halves, in a table at `level` (integer arithmetic only). */
function tableIndex(lo: number, hi: number, level: number): number {
  const shift = LEVEL_SHIFT[level]!;
  const index = level <= LOW_DWORD_LEVELS ? (lo >>> shift) | (hi << (32 - shift)) : hi >>> HI_DWORD_SHIFT[level]!;
  return index & INDEX_MASK;
}

/** Host address of `gpa` through the second stage (result in `stage2`). */
function through(gpa: number): number {
  return stage2.translated + (gpa % LEVEL_SIZE[stage2.level]!);
}

/**
 * Walks the first-stage table at `base` (PASID entry qword 2, bits 63:12)
 * with `levels` levels (4 or 5) for `iova`; `aw` is the PASID entry's AW
 * field (0..7), which bounds the canonical check.  Returns 0 and fills
 * `out`, or a fault reason; `out` is untouched on a fault, while the A/D
 * bits of the levels walked before it stay set in guest memory.
 */
export function walkFirstStage(
  mem: AddressSpace,
  rules: FsWalkRules,
  base: number,
  levels: number,
  aw: number,
  iova: number,
  isWrite: boolean,
  out: WalkResult,
  nested: NestedSecondStage | null = null,
): number {
  const iovaLo = iova >>> 0;
  const iovaHi = Math.floor(iova / TWO_POW_32);
  // Bits (sign bit)..63 all clear or all set (QEMU vtd_iova_fs_check_canonical); 2^64 and up never are.
  const signLo = rules.canonLo[aw]!;
  const signHi = rules.canonHi[aw]!;
  const upperLo = (iovaLo & signLo) >>> 0;
  const upperHi = (iovaHi & signHi) >>> 0;
  const canonical = (upperLo === 0 && upperHi === 0) || (upperLo === signLo && upperHi === signHi);
  if (!canonical || iovaHi > ALL_ONES) return VtdFault.FS_NON_CANONICAL;
  let writes = true;
  let table = base;
  let level = levels;
  for (;;) {
    const gpa = table + tableIndex(iovaLo, iovaHi, level) * Geometry.PTE_SIZE;
    let at = gpa;
    if (nested !== null) {
      const r = nested.translate(gpa, false, stage2);
      if (r !== 0) return r;
      at = through(gpa);
    }
    // QEMU reads a failed fetch as all-ones and treats an all-ones entry the same way.
    const ok = readQword(mem, at, pte);
    if (!ok || (pte.lo === ALL_ONES && pte.hi === ALL_ONES)) {
      return level === levels ? VtdFault.PASID_ENTRY_FSPTPTR_INV : VtdFault.FS_PAGING_ENTRY_INV;
    }
    const lo = pte.lo;
    const hi = pte.hi;
    if ((lo & FsPte.P) === 0) return VtdFault.FS_PAGING_ENTRY_P;
    if ((lo & FsPte.US) === 0) return VtdFault.FS_PAGING_ENTRY_US;
    const rw = (lo & FsPte.RW) !== 0;
    writes = writes && rw;
    if (isWrite && !rw) return VtdFault.SM_WRITE;
    const ps = (lo & FsPte.PS) !== 0;
    if ((hi & rules.rsvdHi) !== 0 || (ps && (lo & RSVD_PS_LO[level]!) !== 0)) return VtdFault.FS_PAGING_ENTRY_RSVD;
    const leaf = level === 1 || ps;
    // QEMU 11.1 writes A (| D in a leaf written to) only when none of those bits is set yet.
    const flags = leaf && isWrite ? FsPte.A | FsPte.D : FsPte.A;
    if ((lo & flags) === 0) {
      if (nested !== null) {
        // Only the permission: the entry's host address is the one just read.
        const r = nested.translate(gpa, true, stage2);
        if (r !== 0) return r;
      }
      if (mem.write(at, 4, (lo | flags) >>> 0) !== MemTx.Ok) return VtdFault.FS_BIT_UPDATE_FAILED;
    }
    const hiAddr = hi & rules.addrHiMask;
    if (leaf) {
      // QEMU checks the window with the entry's address bits, PAT of a large leaf included.
      let xlat = join64(lo & FsPte.ADDR_LO, hiAddr);
      // A 4 KiB leaf has no PAT bit among its address bits: the same value.
      let translated = level === 1 ? xlat : join64(lo & LEAF_ADDR_LO[level]!, hiAddr);
      let outLevel = level;
      let perm: IommuPerm = writes ? IommuPerm.ReadWrite : IommuPerm.Read;
      if (nested !== null) {
        const r = nested.translate(translated + (iovaLo & LEAF_PAGE_LO[level]!), isWrite, stage2);
        if (r !== 0) return r;
        // The smaller page of the two; a leaf's base is aligned to it, so this also holds when stage 2's is smaller.
        translated = stage2.translated + (translated % LEVEL_SIZE[stage2.level]!);
        outLevel = Math.min(level, stage2.level);
        xlat = translated;
        perm = (perm & stage2.perm) as IommuPerm;
      }
      if (xlat < WINDOW_END && xlat + LEVEL_SIZE[outLevel]! > INTERRUPT_WINDOW_BASE) {
        return VtdFault.SM_INTERRUPT_ADDR;
      }
      out.translated = translated;
      out.level = outLevel;
      out.perm = perm;
      out.fsWrite = writes;
      return 0;
    }
    table = join64(lo & FsPte.ADDR_LO, hiAddr);
    level--;
  }
}
