/**
 * A device's DMA address space: what `pci_dma_read/write` go through.
 * Gated by the device's bus-master enable, then either straight into system
 * memory or through the IOMMU translator of its requester ID.  One IOVA range
 * may become several physical fragments: each piece is translated on its own
 * and a faulting piece reads zeros / drops its bytes, as QEMU does.  Pages
 * whose translations are cached and physically contiguous in RAM are copied
 * as one piece (`merge`), which nothing can tell apart from page-by-page.
 *
 * Device addresses are 64-bit.  The number entry points are exact below
 * 2^53, which is every address a device uses in practice; `readWide` /
 * `writeWide` take a bigint for the rest (VT-d with aw-bits=57 translates
 * IOVAs up to 2^57).  Inside, an access is a 4 KiB-aligned page base (exact
 * as a double up to 2^64) plus an offset: from 2^53 on the translator is
 * asked about the page base only and the in-page offset is added after
 * translation (physical addresses are below 2^52), so base + offset is never
 * formed as an inexact double.  Like QEMU's 64-bit address arithmetic, an
 * access running past 2^64 - 1 wraps around to address 0.
 *
 * A space carries one request kind: untranslated (the default), or
 * translated by the device's ATC (PCIe AT = 10b), which the IOMMU checks
 * rather than translates; translated spaces do not merge pages.
 */
import { AddressSpace, MemTx } from './address-space.js';
import type { Iova } from './address.js';
import { DmaAccess, DmaRequestKind, type DmaTranslator, IommuPerm, newIotlbEntry } from './iommu.js';

/** The memory interface a device sees for its DMA. */
export interface DmaMemory {
  /** Reads dst.length bytes at device address addr. */
  read(addr: number, dst: Uint8Array): MemTx;
  /** Writes src at device address addr. */
  write(addr: number, src: Uint8Array): MemTx;
  /** A 4-byte little-endian write (MSI messages use this). */
  writeU32(addr: number, value: number): MemTx;
  /** `read` at any 64-bit device address (exact above 2^53, where a number is not). */
  readWide(addr: bigint, dst: Uint8Array): MemTx;
  /** `write` at any 64-bit device address (exact above 2^53, where a number is not). */
  writeWide(addr: bigint, src: Uint8Array): MemTx;
}

/** The only access size the interrupt window accepts (QEMU vtd_mem_ir_ops). */
const INTERRUPT_ACCESS_SIZE = 4;
const INTERRUPT_ACCESS_ALIGN_MASK = INTERRUPT_ACCESS_SIZE - 1;
/** Granule of a failed translation that gave no page size. */
const PAGE_SIZE_4K = 4096;

/** Largest page mask whose offsets a 32-bit AND can take. */
const INT_MASK_LIMIT = 0x7fff_ffff;
/** Offset bits of a 4 KiB page. */
const PAGE_OFFSET_MASK_4K = PAGE_SIZE_4K - 1;
const PAGE_OFFSET_MASK_4K_N = BigInt(PAGE_OFFSET_MASK_4K);
/** 2^53: from here on a number no longer holds every integer. */
const EXACT_LIMIT = 2 ** 53;
const EXACT_LIMIT_N = BigInt(EXACT_LIMIT);
/** Device addresses are 64-bit and wrap around past the top. */
const ADDRESS_SPAN = 2 ** 64;
const ADDRESS_BITS = 64;

/**
 * `x` modulo `mask + 1` for a page mask (a power of two minus one): a bit
 * AND for masks below 2^31 (every VT-d leaf up to 1 GiB), so the per-page
 * loop does no floating-point remainder.
 */
function pageOffset(x: number, mask: number): number {
  return mask <= INT_MASK_LIMIT ? x & mask : x % (mask + 1);
}

/** Implementation over a system address space and an optional translator. */
export class DmaSpace implements DmaMemory {
  private readonly entry = newIotlbEntry();
  /** A translation obtained by `peek` (see `merge`). */
  private readonly peeked = newIotlbEntry();
  /** Set by `merge`: `peeked` translates the first byte after the merged run. */
  private carried = false;
  private readonly word = new Uint8Array(4);

  constructor(
    private readonly system: AddressSpace,
    /** Bus-master enable (and every bridge's above it). */
    private readonly masterEnabled: () => boolean,
    /** The IOMMU translator, or a getter for it (null: no IOMMU). */
    private readonly translator: () => DmaTranslator | null,
    /** What the requests are (PCIe AT): untranslated, or translated by the device's ATC. */
    private readonly kind: DmaRequestKind = DmaRequestKind.Untranslated,
  ) {}

  read(addr: number, dst: Uint8Array): MemTx {
    return this.number(addr, dst, DmaAccess.Read);
  }

  write(addr: number, src: Uint8Array): MemTx {
    return this.number(addr, src, DmaAccess.Write);
  }

  writeU32(addr: number, value: number): MemTx {
    const w = this.word;
    w[0] = value & 0xff;
    w[1] = (value >>> 8) & 0xff;
    w[2] = (value >>> 16) & 0xff;
    w[3] = (value >>> 24) & 0xff;
    return this.number(addr, w, DmaAccess.Write);
  }

  readWide(addr: bigint, dst: Uint8Array): MemTx {
    return this.wide(addr, dst, DmaAccess.Read);
  }

  writeWide(addr: bigint, src: Uint8Array): MemTx {
    return this.wide(addr, src, DmaAccess.Write);
  }

  /**
   * A number address: as it is while the whole access stays below 2^53;
   * otherwise split into its page and offset like a bigint one (an address
   * of 2^53 or more may already have lost low bits in whoever computed it).
   */
  private number(addr: number, buf: Uint8Array, access: DmaAccess): MemTx {
    if (addr + buf.length <= EXACT_LIMIT) return this.access(0, addr, buf, access);
    const off = addr % PAGE_SIZE_4K;
    return this.access(addr - off, off, buf, access);
  }

  /** A bigint address (the API edge): split into an exact page base and the offset in it. */
  private wide(addr: bigint, buf: Uint8Array, access: DmaAccess): MemTx {
    const a = BigInt.asUintN(ADDRESS_BITS, addr);
    if (a + BigInt(buf.length) <= EXACT_LIMIT_N) return this.access(0, Number(a), buf, access);
    const off = Number(a & PAGE_OFFSET_MASK_4K_N);
    return this.access(Number(a - BigInt(off)), off, buf, access);
  }

  /**
   * The access at device address base + offset, where `base` is 0 or 4 KiB
   * aligned and `offset` a safe integer.  While the current address is below
   * 2^53 it is one exact number `at`; from 2^53 on `at` is its 4 KiB page
   * (what the translator sees) and `inPage` the offset into that page.
   */
  private access(base: number, offset: number, buf: Uint8Array, access: DmaAccess): MemTx {
    if (!this.masterEnabled()) {
      if (access === DmaAccess.Read) buf.fill(0);
      return MemTx.DecodeError;
    }
    const t = this.translator();
    if (!t) {
      // No IOMMU: the system address space takes numbers.  Nothing is mapped at 2^53 and above
      // (past every host address width; BARs there stay unmapped), so nothing is there to be exact about.
      const addr = base + offset;
      return access === DmaAccess.Read ? this.system.readBytes(addr, buf) : this.system.writeBytes(addr, buf);
    }
    let result: MemTx = MemTx.Ok;
    let done = 0;
    const need = access === DmaAccess.Read ? IommuPerm.Read : IommuPerm.Write;
    // The translator's interrupt window (none: an empty range above every address).
    const win = t.interruptWindow;
    const winBase = win === null ? Infinity : win.base;
    const winLast = win === null ? -1 : win.last;
    // True when `this.peeked` holds the translation of the current address, from a peek.
    let carried = false;
    while (done < buf.length) {
      const rel = offset + done;
      let at = base + rel;
      let inPage = 0;
      if (at >= EXACT_LIMIT) {
        // Page and offset apart: both parts and their sum below are exact multiples of 4 KiB.
        inPage = rel & PAGE_OFFSET_MASK_4K;
        at = base + (rel - inPage);
        if (at >= ADDRESS_SPAN) at -= ADDRESS_SPAN;
        if (at < EXACT_LIMIT) {
          at += inPage;
          inPage = 0;
        }
      }
      let len = buf.length - done;
      if (at >= winBase && at <= winLast) {
        len = Math.min(len, winLast + 1 - at);
        if (this.interruptWindow(t, at, buf, done, len, access) !== MemTx.Ok) result = MemTx.DecodeError;
        done += len;
        continue;
      }
      // A translated piece never runs into the interrupt window.
      if (at < winBase) len = Math.min(len, winBase - at);
      const e = carried ? this.peeked : this.entry;
      const ok = carried || t.translate(at as Iova, access, e, this.kind);
      carried = false;
      if (!ok || (e.perm & need) === 0) {
        // A fault covers at most the rest of its page (4 KiB when the IOMMU gave none).
        const mask = ok ? e.addrMask : PAGE_OFFSET_MASK_4K;
        len = Math.min(len, mask + 1 - (pageOffset(at, mask) + inPage));
        if (access === DmaAccess.Read) buf.fill(0, done, done + len);
        result = MemTx.DecodeError;
        done += len;
        continue;
      }
      const room = len;
      const mask = e.addrMask;
      const pageOff = pageOffset(at, mask) + inPage;
      len = Math.min(len, mask + 1 - pageOff);
      const phys = e.translated - pageOffset(e.translated, mask) + pageOff;
      // Above 2^53 (rare) pages are copied one by one: no merging, so no peek can pass 2^64.
      if (len < room && t.peek !== undefined && at < EXACT_LIMIT && this.kind === DmaRequestKind.Untranslated) {
        len = this.merge(t, access, need, at, phys, len, room);
        carried = this.carried;
      }
      // The piece is passed as a span of buf: no view per page.
      const r =
        access === DmaAccess.Read ? this.system.readInto(phys, buf, done, len) : this.system.writeFrom(phys, buf, done, len);
      if (r !== MemTx.Ok) result = r;
      done += len;
    }
    return result;
  }

  /**
   * Extends a translated piece [at, at+len) -> phys over the following
   * pages while they are cached translations (`peek`: nothing observable
   * happens) continuing phys contiguously inside one RAM range, up to
   * `room` bytes; returns the merged length.  Copying RAM has no effect on
   * translations and peeking has no effect at all, so one copy of the merged
   * run is indistinguishable from a copy per page.  When a peeked page is
   * cached but not contiguous, its translation is kept in `peeked` for the
   * next piece (`carried`), so no page is looked up twice.
   */
  private merge(t: DmaTranslator, access: DmaAccess, need: IommuPerm, at: number, phys: number, len: number, room: number): number {
    this.carried = false;
    // Peeking ahead is only invisible when this piece's copy is: RAM, never MMIO.
    const r = this.system.lookup(phys);
    if (r === null || r.leaf.kind !== 'ram') return len;
    const p = this.peeked;
    let total = len;
    while (total < room && t.peek!((at + total) as Iova, access, p)) {
      if ((p.perm & need) === 0) return total;
      const next = at + total;
      const mask = p.addrMask;
      const off = pageOffset(next, mask);
      const n = Math.min(room - total, mask + 1 - off);
      if (p.translated - pageOffset(p.translated, mask) + off !== phys + total || phys + total + n > r.end) {
        this.carried = true;
        return total;
      }
      total += n;
    }
    return total;
  }

  /**
   * [at, at+len) inside the translator's interrupt window, as QEMU's VT-d interrupt
   * region sees it (valid and implemented size 4 only): the piece is split
   * like memory_access_size does; each aligned 4-byte write is an interrupt
   * request, an aligned 4-byte read returns 0 (accepted), any other piece is
   * refused (reads 0, write dropped).
   */
  private interruptWindow(t: DmaTranslator, at: number, buf: Uint8Array, done: number, len: number, access: DmaAccess): MemTx {
    let result: MemTx = MemTx.Ok;
    let i = 0;
    while (i < len) {
      const a = at + i;
      const p = done + i;
      const rest = len - i;
      if ((a & INTERRUPT_ACCESS_ALIGN_MASK) === 0 && rest >= INTERRUPT_ACCESS_SIZE) {
        if (access === DmaAccess.Write) {
          t.interruptWrite(a, (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0);
        } else {
          buf.fill(0, p, p + INTERRUPT_ACCESS_SIZE);
        }
        i += INTERRUPT_ACCESS_SIZE;
        continue;
      }
      // The largest power of two within the rest and the address alignment.
      const l = (a & 1) !== 0 || rest < 2 ? 1 : 2;
      if (access === DmaAccess.Read) buf.fill(0, p, p + l);
      result = MemTx.DecodeError;
      i += l;
    }
    return result;
  }
}
