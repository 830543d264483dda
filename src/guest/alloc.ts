/**
 * A guest-physical page allocator: a bump allocator over a RAM range the
 * guest owns (firmware scratch, ACPI tables, IOMMU structures, DMA buffers),
 * with a free list of single pages so DMA-API unmaps can recycle memory.
 */
import type { GuestPlatform } from './platform.js';

/** Guest page size. */
export const PAGE_SIZE = 0x1000;

/** Hands out zeroed, aligned guest-physical memory from [base, limit). */
export class GuestAllocator {
  private next: number;
  private readonly freePages: number[] = [];

  /** `base` and `limit` are guest-physical addresses of RAM the guest owns. */
  constructor(private readonly platform: GuestPlatform, base: number, readonly limit: number) {
    if (base >= limit) throw new Error(`allocator: empty range ${base.toString(16)}-${limit.toString(16)}`);
    this.next = base;
  }

  /** Allocates `size` bytes aligned to `align` (a power of two), zeroed. */
  async alloc(size: number, align = PAGE_SIZE): Promise<number> {
    if (size === PAGE_SIZE && align <= PAGE_SIZE && this.freePages.length > 0) {
      const page = this.freePages.pop()!;
      await this.platform.fill(page, PAGE_SIZE, 0);
      return page;
    }
    const addr = Math.ceil(this.next / align) * align;
    if (addr + size > this.limit) throw new Error(`guest allocator out of memory (${size} bytes)`);
    this.next = addr + size;
    await this.platform.fill(addr, size, 0);
    return addr;
  }

  /** Allocates one zeroed page. */
  page(): Promise<number> {
    return this.alloc(PAGE_SIZE, PAGE_SIZE);
  }

  /** Returns one page to the allocator. */
  freePage(addr: number): void {
    this.freePages.push(addr);
  }

  /** First address not yet handed out. */
  get top(): number {
    return this.next;
  }
}

/** Little-endian helpers over host copies of guest bytes. */
export const le = {
  u16: (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8),
  u32: (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0,
  u64: (b: Uint8Array, o: number): bigint => BigInt(le.u32(b, o)) | (BigInt(le.u32(b, o + 4)) << 32n),
  /** u64 as a number (callers know the value is below 2^53). */
  u64n: (b: Uint8Array, o: number): number => le.u32(b, o) + le.u32(b, o + 4) * 0x1_0000_0000,
  /** Zero-terminated ASCII of at most `max` bytes. */
  str: (b: Uint8Array, o: number, max: number): string => {
    let s = '';
    for (let i = 0; i < max && o + i < b.length; i++) {
      const c = b[o + i]!;
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  },
  setU32: (b: Uint8Array, o: number, v: number): void => {
    b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; b[o + 2] = (v >>> 16) & 0xff; b[o + 3] = (v >>> 24) & 0xff;
  },
  setU64: (b: Uint8Array, o: number, v: bigint): void => {
    le.setU32(b, o, Number(v & 0xffffffffn));
    le.setU32(b, o + 4, Number((v >> 32n) & 0xffffffffn));
  },
};
