/**
 * Second-stage (legacy "second-level") page walk (VT-d spec 3.7, 9.8):
 * 3-, 4- and 5-level tables of 512 8-byte entries, 2 MiB and 1 GiB leaves,
 * reserved-bit masks per level, read/write permission at every level, the
 * input range check and the interrupt-range output rule, with QEMU's fault
 * reasons and check order (vtd_iova_to_sspte).
 *
 *   PTE: bit 0 R, bit 1 W, bit 7 PS (levels 2-3 only), bit 11 SNP,
 *        bits 51:12 address (below the host address width), bit 62 TM,
 *        bits 61:52 and 63 ignored
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64, TWO_POW_32 } from '../../memory/address.js';
import { IommuPerm } from '../../memory/iommu.js';
import { MSI_ADDRESS_BASE as INTERRUPT_WINDOW_BASE, MSI_ADDRESS_LAST as INTERRUPT_WINDOW_LAST } from '../../core/irq.js';
import { VtdFault } from './fault-reasons.js';
import { newQword, readQword } from './guest-mem.js';

/** PTE bits (low dword). */
export const Pte = {
  R: 1 << 0,
  W: 1 << 1,
  /** Page size: a 2 MiB (level 2) or 1 GiB (level 3) leaf. */
  PS: 1 << 7,
  /** Snoop behaviour (reserved unless snoop control). */
  SNP: 1 << 11,
  ADDR_LO: 0xffff_f000,
} as const;

/** High-dword bits of a PTE. */
export const PteHi = {
  /** Ignored bits 61:52 and 63 (QEMU VTD_SL_IGN_COM >> 32). */
  IGNORED: 0xbff0_0000,
  /** Transient mapping, bit 62. */
  TM: 0x4000_0000,
} as const;

/** Page-table geometry. */
export const Geometry = {
  PAGE_SHIFT: 12,
  LEVEL_BITS: 9,
  ENTRIES: 512,
  PTE_SIZE: 8,
  MAX_LEVELS: 5,
} as const;

/** Bytes mapped by one entry at each level (index = level, 1..5). */
export const LEVEL_SIZE: readonly number[] = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48];

/** Address bits 51:32 of a PTE (high dword). */
const PTE_ADDR_HI = 0x000f_ffff;
/** Reserved-bit masks (low dword) per level, before SNP relaxation. */
const RSVD_LO = [0, 0x800, 0x800, 0x800, 0x880, 0x880];
/** Reserved-bit masks (low dword) of large leaves at levels 2 and 3. */
const RSVD_LARGE_LO = [0, 0, 0x1f_f800, 0x3fff_f800];

/** Walk parameters fixed by the unit's configuration. */
export class WalkRules {
  /** Low/high reserved masks per level, and for large leaves. */
  readonly rsvdLo = new Uint32Array(Geometry.MAX_LEVELS + 1);
  readonly rsvdHi = new Uint32Array(Geometry.MAX_LEVELS + 1);
  readonly largeLo = new Uint32Array(4);
  readonly largeHi = new Uint32Array(4);
  /** Mask of the high dword of an address below the host address width. */
  readonly hawHiMask: number;
  /**
   * Mask of the high dword of a PTE's address field: bits (HAW-1):32, never
   * above bit 51 (bits 61:52 are ignored, spec 9.8; matters for aw-bits=57).
   */
  readonly addrHiMask: number;

  constructor(
    readonly awBits: number,
    /** SNP allowed in leaves (snoop-control). */
    snoop: boolean,
    /** TM allowed in leaves (stale-tm with device-iotlb). */
    tm: boolean,
  ) {
    this.hawHiMask = (2 ** (awBits - 32) - 1) >>> 0;
    this.addrHiMask = (this.hawHiMask & PTE_ADDR_HI) >>> 0;
    const above = ~(this.hawHiMask | PteHi.IGNORED) >>> 0;
    const aboveTm = tm ? (above & ~PteHi.TM) >>> 0 : above;
    for (let l = 1; l <= Geometry.MAX_LEVELS; l++) {
      this.rsvdLo[l] = RSVD_LO[l]!;
      this.rsvdHi[l] = l === 1 ? aboveTm : above;
    }
    for (let l = 2; l <= 3; l++) {
      this.largeLo[l] = RSVD_LARGE_LO[l]!;
      this.largeHi[l] = aboveTm;
    }
    if (snoop) {
      this.rsvdLo[1] = (this.rsvdLo[1]! & ~Pte.SNP) >>> 0;
      this.largeLo[2] = (this.largeLo[2]! & ~Pte.SNP) >>> 0;
      this.largeLo[3] = (this.largeLo[3]! & ~Pte.SNP) >>> 0;
    }
  }
}

/** The result of a successful walk. */
export interface WalkResult {
  /** Output address of the leaf page (page aligned). */
  translated: number;
  /** Level of the leaf (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB). */
  level: number;
  /** Permissions accumulated over all levels. */
  perm: IommuPerm;
  /** First stage (and nested): whether the first-stage entries allowed writes (the second stage may still deny them). */
  fsWrite: boolean;
}

/** A fresh walk result. */
export function newWalkResult(): WalkResult {
  return { translated: 0, level: 0, perm: IommuPerm.None, fsWrite: false };
}

const pte = newQword();
const ALL_ONES = 0xffff_ffff;
/** Bits of an IOVA below each level's index field (index = level, 1..5). */
const LEVEL_SHIFT: readonly number[] = [0, 12, 21, 30, 39, 48];
/** 2^n for every address width a walk can check against (no Math.pow per walk). */
const POW2: readonly number[] = Array.from({ length: 64 }, (_, n) => 2 ** n);
const INDEX_MASK = Geometry.ENTRIES - 1;

/**
 * Index of an IOVA, given as 32-bit halves, in a table at `level`: IOVA
 * bits [shift+8:shift] with shift = 12 + 9 * (level - 1), in integer
 * arithmetic (no floating-point division or remainder per level).
 */
function tableIndex(lo: number, hi: number, level: number): number {
  const shift = LEVEL_SHIFT[level]!;
  return (shift < 32 ? (lo >>> shift) | (hi << (32 - shift)) : hi >>> (shift - 32)) & INDEX_MASK;
}

/**
 * Walks from the table at `base` with `levels` levels for `iova`.  `agaw` is
 * the context entry's adjusted guest address width.  Returns 0 and fills
 * `out`, or a fault reason.
 */
export function walkSecondStage(
  mem: AddressSpace,
  rules: WalkRules,
  base: number,
  levels: number,
  agaw: number,
  iova: number,
  isWrite: boolean,
  out: WalkResult,
): number {
  const widthBits = Math.min(agaw, rules.awBits);
  if (iova >= (POW2[widthBits] ?? 2 ** widthBits)) return VtdFault.ADDR_BEYOND_MGAW;
  const iovaLo = iova >>> 0;
  const iovaHi = Math.floor(iova / TWO_POW_32);
  const need = isWrite ? Pte.W : Pte.R;
  let reads = true;
  let writes = true;
  let table = base;
  let level = levels;
  for (;;) {
    const index = tableIndex(iovaLo, iovaHi, level);
    // QEMU reads a failed fetch as all-ones and treats an all-ones entry the same way.
    const ok = readQword(mem, table + index * Geometry.PTE_SIZE, pte);
    if (!ok || (pte.lo === ALL_ONES && pte.hi === ALL_ONES)) {
      return level === levels ? VtdFault.CONTEXT_ENTRY_INV : VtdFault.PAGING_ENTRY_INV;
    }
    const lo = pte.lo;
    reads = reads && (lo & Pte.R) !== 0;
    writes = writes && (lo & Pte.W) !== 0;
    if ((lo & need) === 0) return isWrite ? VtdFault.WRITE : VtdFault.READ;
    const large = (level === 2 || level === 3) && (lo & Pte.PS) !== 0;
    const rLo = large ? rules.largeLo[level]! : rules.rsvdLo[level]!;
    const rHi = large ? rules.largeHi[level]! : rules.rsvdHi[level]!;
    if ((lo & rLo) !== 0 || (pte.hi & rHi) !== 0) return VtdFault.PAGING_ENTRY_RSVD;
    const next = join64(lo & Pte.ADDR_LO, pte.hi & rules.addrHiMask);
    if (level === 1 || (lo & Pte.PS) !== 0) {
      const size = LEVEL_SIZE[level]!;
      if (!(next > INTERRUPT_WINDOW_LAST || next + size - 1 < INTERRUPT_WINDOW_BASE)) return VtdFault.INTERRUPT_ADDR;
      out.translated = next;
      out.level = level;
      out.perm = ((reads ? IommuPerm.Read : 0) | (writes ? IommuPerm.Write : 0)) as IommuPerm;
      return 0;
    }
    table = next;
    level--;
  }
}
