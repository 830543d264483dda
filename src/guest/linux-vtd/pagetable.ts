/**
 * I/O page tables as Linux builds them, in two formats sharing one shape
 * (512 entries of 8 bytes per table, address from bit 12, PS bit 7 at
 * level 2 for a 2 MiB leaf):
 *  - second stage (legacy and scalable PGTT=2), levels = agaw + 2: PTE R
 *    bit 0, W bit 1, SNP bit 11; intermediate entries R|W;
 *  - first stage (scalable PGTT=1), the x86 4-level format: P bit 0, RW
 *    bit 1, US bit 2, A bit 5, D bit 6.  Linux pre-sets A everywhere and D
 *    on writable leaves so the unit never has to write them back, and sets
 *    US because the unit treats every DMA as a user access.
 * The driver remembers which tables it allocated (a shadow of the non-leaf
 * levels) so walks need no guest reads.
 */
import type { GuestPlatform } from '../platform.js';
import { PAGE_SIZE, type GuestAllocator } from '../alloc.js';

/** Second-stage PTE bits. */
export const Pte = { R: 1n, W: 2n, PS: 1n << 7n, SNP: 1n << 11n, ADDR_MASK: 0x000f_ffff_ffff_f000n } as const;
/** First-stage (x86) PTE bits. */
export const FsPte = { P: 1n, RW: 2n, US: 4n, A: 1n << 5n, D: 1n << 6n, PS: 1n << 7n } as const;
/** First-stage tables are always 4-level here (5-level needs CAP.FS5LP, which QEMU does not offer). */
export const FIRST_STAGE_LEVELS = 4;

/** Access a mapping grants. */
export interface MapPerm { readonly read: boolean; readonly write: boolean }

/** How one page-table format encodes its entries. */
export interface PageTableFormat {
  readonly name: 'second-stage' | 'first-stage';
  /** Bits of an entry pointing at a next-level table. */
  readonly tableBits: bigint;
  /** Bits of a leaf granting `perm` (PS excluded). */
  leafBits(perm: MapPerm): bigint;
  /** Bits meaning "this entry maps something" (a lookup's present test). */
  readonly presentMask: bigint;
}

/** Second stage: R/W per the mapping; SNP only on request. */
export const SECOND_STAGE: PageTableFormat = {
  name: 'second-stage',
  tableBits: Pte.R | Pte.W,
  leafBits: (perm) => (perm.read ? Pte.R : 0n) | (perm.write ? Pte.W : 0n),
  presentMask: Pte.R | Pte.W,
};

/** First stage: present (reads always allowed), RW for writes, US, A, and D on writable leaves. */
export const FIRST_STAGE: PageTableFormat = {
  name: 'first-stage',
  tableBits: FsPte.P | FsPte.RW | FsPte.US | FsPte.A,
  leafBits: (perm) => FsPte.P | FsPte.US | FsPte.A | (perm.write ? FsPte.RW | FsPte.D : 0n),
  presentMask: FsPte.P,
};
/** Index bits per level and entries per table. */
const LEVEL_BITS = 9;
const ENTRIES = 512;
const PAGE_SHIFT = 12;
const PTE_SIZE = 8;
/** Size of a level-2 superpage. */
export const LARGE_PAGE = 0x20_0000;

/** One domain's page-table tree. */
export class IoPageTable {
  /** Guest-physical address of the top-level table. */
  root = 0;
  /** table address -> (index -> child table address) */
  private readonly children = new Map<number, Map<number, number>>();
  /** Page-table pages allocated so far (root included). */
  tablePages = 0;

  /** `levels` is 3, 4 or 5 (AW field 1, 2, 3); first stage uses 4. */
  constructor(private readonly p: GuestPlatform, private readonly alloc: GuestAllocator, readonly levels: number,
    readonly format: PageTableFormat = SECOND_STAGE) {}

  /** Allocates the root table. */
  async init(): Promise<this> {
    this.root = await this.alloc.page();
    this.children.set(this.root, new Map());
    this.tablePages = 1;
    return this;
  }

  private index(iova: number, level: number): number {
    return Math.floor(iova / 2 ** (PAGE_SHIFT + LEVEL_BITS * (level - 1))) % ENTRIES;
  }

  /** Returns the level-1 table holding iova's leaf, creating tables when `create`. */
  private async leafTable(iova: number, create: boolean): Promise<number | undefined> {
    let table = this.root;
    for (let level = this.levels; level > 1; level--) {
      const idx = this.index(iova, level);
      const kids = this.children.get(table)!;
      let next = kids.get(idx);
      if (next === undefined) {
        if (!create) return undefined;
        next = await this.alloc.page();
        this.tablePages++;
        this.children.set(next, new Map());
        kids.set(idx, next);
        await this.p.write64(table + idx * PTE_SIZE, BigInt(next) | this.format.tableBits);
      }
      table = next;
    }
    return table;
  }

  /** Maps [iova, iova+size) to [phys, ...) in 4 KiB pages (`snoop`: SNP, second stage only). */
  async map(iova: number, phys: number, size: number, perm: MapPerm, snoop = false): Promise<void> {
    const bits = this.format.leafBits(perm) | (snoop && this.format === SECOND_STAGE ? Pte.SNP : 0n);
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const table = (await this.leafTable(iova + off, true))!;
      await this.p.write64(table + this.index(iova + off, 1) * PTE_SIZE, BigInt(phys + off) | bits);
    }
  }

  /** Maps [iova, iova+size) with 2 MiB superpages (PS at level 2); all three must be 2 MiB aligned. */
  async mapLarge(iova: number, phys: number, size: number, perm: MapPerm): Promise<void> {
    const bits = this.format.leafBits(perm) | Pte.PS;
    for (let off = 0; off < size; off += LARGE_PAGE) {
      let table = this.root;
      for (let level = this.levels; level > 2; level--) {
        const idx = this.index(iova + off, level);
        const kids = this.children.get(table)!;
        let next = kids.get(idx);
        if (next === undefined) {
          next = await this.alloc.page();
          this.tablePages++;
          this.children.set(next, new Map());
          kids.set(idx, next);
          await this.p.write64(table + idx * PTE_SIZE, BigInt(next) | this.format.tableBits);
        }
        table = next;
      }
      await this.p.write64(table + this.index(iova + off, 2) * PTE_SIZE, BigInt(phys + off) | bits);
    }
  }

  /** Maps each 4 KiB page of `pages` at consecutive IOVAs from `iova`. */
  async mapPages(iova: number, pages: readonly number[], perm: MapPerm): Promise<void> {
    for (let i = 0; i < pages.length; i++) await this.map(iova + i * PAGE_SIZE, pages[i]!, PAGE_SIZE, perm);
  }

  /** Clears the leaves of [iova, iova+size); page-table pages are kept (so IH may be set). */
  async unmap(iova: number, size: number): Promise<void> {
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const table = await this.leafTable(iova + off, false);
      if (table !== undefined) await this.p.write64(table + this.index(iova + off, 1) * PTE_SIZE, 0n);
    }
  }

  /** Software walk (reads the leaf from guest memory): physical address or undefined. */
  async lookup(iova: number): Promise<number | undefined> {
    const table = await this.leafTable(iova, false);
    if (table === undefined) return undefined;
    const pte = await this.p.read64(table + this.index(iova, 1) * PTE_SIZE);
    if (!(pte & this.format.presentMask)) return undefined;
    return Number(pte & Pte.ADDR_MASK) + (iova % PAGE_SIZE);
  }
}

/**
 * IOVA allocator: top-down first fit below a limit (Linux alloc_iova with
 * size alignment), never handing out page 0 or the interrupt window.
 */
export class IovaAllocator {
  private readonly used: Array<[start: number, end: number]> = [];

  /** `reserved` ranges are [start, end) never allocated. */
  constructor(private readonly limit: number, reserved: ReadonlyArray<readonly [number, number]> = DEFAULT_RESERVED) {
    for (const [s, e] of reserved) this.used.push([s, e]);
    this.used.sort((a, b) => a[0] - b[0]);
  }

  /** Allocates `size` bytes below `limit` (the device's DMA mask + 1), rounded to a power of two of pages, aligned to it). */
  alloc(size: number, limit = this.limit): number | undefined {
    let span = PAGE_SIZE;
    while (span < size) span *= 2;
    let top = Math.min(limit, this.limit);
    for (let i = this.used.length - 1; i >= -1; i--) {
      const floor = i >= 0 ? this.used[i]![1] : PAGE_SIZE;
      const start = Math.floor((top - span) / span) * span;
      if (start >= floor && start + span <= top) {
        this.used.push([start, start + span]);
        this.used.sort((a, b) => a[0] - b[0]);
        return start;
      }
      if (i >= 0) top = Math.min(top, this.used[i]![0]);
    }
    return undefined;
  }

  /** Frees a range returned by `alloc`. */
  free(start: number): void {
    const i = this.used.findIndex(([s]) => s === start);
    if (i >= 0) this.used.splice(i, 1);
  }
}

/** The MSI window is never an IOVA (Linux reserves it in every DMA domain). */
export const DEFAULT_RESERVED: ReadonlyArray<readonly [number, number]> = [[0xfee0_0000, 0xfef0_0000]];
