/**
 * The contract between a bus that carries device DMA and an IOMMU
 * (QEMU's IOMMUMemoryRegion / pci_setup_iommu, in small).
 *
 * A bus asks its IOMMU for one `DmaTranslator` per requester (a bus object
 * and a devfn, as QEMU keys its VTDAddressSpace); the translator computes the
 * source ID from the requester at translation time because a guest may
 * renumber buses.  `translate` fills a caller-owned entry (no allocation on the
 * hot path) and returns false when the access faults; the IOMMU has then
 * already recorded the fault.
 */
import type { Iova } from './address.js';

/** Access kind of a DMA transaction. */
export const enum DmaAccess {
  Read = 1,
  Write = 2,
}

/** Permission bits of a translation (QEMU IOMMUAccessFlags). */
export const enum IommuPerm {
  None = 0,
  Read = 1,
  Write = 2,
  ReadWrite = 3,
}

/**
 * One translation: [iova & ~addrMask, +addrMask] maps to
 * [translated & ~addrMask, ...] with `perm`.  addrMask is page size - 1.
 */
export interface IotlbEntry {
  iova: number;
  translated: number;
  addrMask: number;
  perm: IommuPerm;
}

/** A fresh entry to hand to `translate`. */
export function newIotlbEntry(): IotlbEntry {
  return { iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None };
}

/** Who issued a DMA: resolved to a source ID when the IOMMU needs one. */
export interface DmaRequester {
  /** Current bus number of the requester's bus (guest-programmable). */
  busNumber(): number;
  /** Device/function number on that bus (or the alias devfn). */
  readonly devfn: number;
  /** A stable key for caches of per-requester state. */
  readonly key: object;
}

/** The translating side of one requester's DMA address space. */
export interface DmaTranslator {
  /**
   * Translates one access at `iova`; fills `out` and returns true when
   * allowed.  Returns false (and records the fault) when not.
   *
   * Below 2^53 `iova` is the exact address of the access.  From 2^53 on
   * (where a number cannot hold every integer) it is the exact base of the
   * 4 KiB page holding it: the DMA space adds the offset into the page after
   * translation, so a translator must only ever need the page (table
   * indices, range checks, cache keys, fault addresses) and must never take
   * an address at or above 2^53 for anything but a page base.
   */
  translate(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean;
  /**
   * Optional: fills `out` and returns true only when `translate` would give
   * this very entry with no effect anyone could observe (a cached
   * translation or translation off, nothing traced, no listener, no fault);
   * otherwise returns false having done nothing.  A DMA space uses it to
   * merge physically contiguous pages into one RAM copy without reordering
   * anything visible.  Only called below 2^53.
   */
  peek?(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean;
  /**
   * A 4-byte DMA write into the interrupt window 0xFEE00000-0xFEEFFFFF:
   * an MSI to remap (or pass through).  Other sizes and reads are dropped /
   * read 0 by the caller.
   */
  interruptWrite(addr: number, data: number): void;
}

/** What a bus needs from an IOMMU. */
export interface DmaIommu {
  translatorFor(requester: DmaRequester): DmaTranslator;
}

/** Base and limit of the interrupt address window seen by device DMA. */
export const INTERRUPT_WINDOW_BASE = 0xfee0_0000;
export const INTERRUPT_WINDOW_LAST = 0xfeef_ffff;
