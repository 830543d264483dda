/**
 * A device's DMA address space: what `pci_dma_read/write` go through.
 * Gated by the device's bus-master enable, then either straight into system
 * memory or through the IOMMU translator of its requester ID.  One IOVA range
 * may become several physical fragments: each piece is translated on its own
 * and a faulting piece reads zeros / drops its bytes, as QEMU does.
 */
import { AddressSpace, MemTx } from './address-space.js';
import {
  DmaAccess,
  type DmaTranslator,
  INTERRUPT_WINDOW_BASE,
  INTERRUPT_WINDOW_LAST,
  IommuPerm,
  newIotlbEntry,
} from './iommu.js';

/** The memory interface a device sees for its DMA. */
export interface DmaMemory {
  /** Reads dst.length bytes at device address addr. */
  read(addr: number, dst: Uint8Array): MemTx;
  /** Writes src at device address addr. */
  write(addr: number, src: Uint8Array): MemTx;
  /** A 4-byte little-endian write (MSI messages use this). */
  writeU32(addr: number, value: number): MemTx;
}

/** The only access size the interrupt window accepts (QEMU vtd_mem_ir_ops). */
const INTERRUPT_ACCESS_SIZE = 4;
const INTERRUPT_ACCESS_ALIGN_MASK = INTERRUPT_ACCESS_SIZE - 1;
/** Granule of a failed translation that gave no page size. */
const PAGE_SIZE_4K = 4096;

/** Implementation over a system address space and an optional translator. */
export class DmaSpace implements DmaMemory {
  private readonly entry = newIotlbEntry();
  private readonly word = new Uint8Array(4);

  constructor(
    private readonly system: AddressSpace,
    /** Bus-master enable (and every bridge's above it). */
    private readonly masterEnabled: () => boolean,
    /** The IOMMU translator, or a getter for it (null: no IOMMU). */
    private readonly translator: () => DmaTranslator | null,
  ) {}

  read(addr: number, dst: Uint8Array): MemTx {
    return this.access(addr, dst, DmaAccess.Read);
  }

  write(addr: number, src: Uint8Array): MemTx {
    return this.access(addr, src, DmaAccess.Write);
  }

  writeU32(addr: number, value: number): MemTx {
    const w = this.word;
    w[0] = value & 0xff;
    w[1] = (value >>> 8) & 0xff;
    w[2] = (value >>> 16) & 0xff;
    w[3] = (value >>> 24) & 0xff;
    return this.access(addr, w, DmaAccess.Write);
  }

  private access(addr: number, buf: Uint8Array, access: DmaAccess): MemTx {
    if (!this.masterEnabled()) {
      if (access === DmaAccess.Read) buf.fill(0);
      return MemTx.DecodeError;
    }
    const t = this.translator();
    if (!t) {
      return access === DmaAccess.Read ? this.system.readBytes(addr, buf) : this.system.writeBytes(addr, buf);
    }
    let result = MemTx.Ok;
    let done = 0;
    const e = this.entry;
    while (done < buf.length) {
      const at = addr + done;
      let len = buf.length - done;
      if (at >= INTERRUPT_WINDOW_BASE && at <= INTERRUPT_WINDOW_LAST) {
        len = Math.min(len, INTERRUPT_WINDOW_LAST + 1 - at);
        if (this.interruptWindow(t, at, buf, done, len, access) !== MemTx.Ok) result = MemTx.DecodeError;
        done += len;
        continue;
      }
      // A translated piece never runs into the interrupt window.
      if (at < INTERRUPT_WINDOW_BASE) len = Math.min(len, INTERRUPT_WINDOW_BASE - at);
      const ok = t.translate(at, access, e);
      if (!ok || (e.perm & (access === DmaAccess.Read ? IommuPerm.Read : IommuPerm.Write)) === 0) {
        // A fault covers at most the rest of its page (4 KiB when the IOMMU gave none).
        const page = ok ? e.addrMask + 1 : PAGE_SIZE_4K;
        len = Math.min(len, page - (at % page));
        if (access === DmaAccess.Read) buf.fill(0, done, done + len);
        result = MemTx.DecodeError;
        done += len;
        continue;
      }
      const page = e.addrMask + 1;
      const pageOff = at % page;
      len = Math.min(len, page - pageOff);
      const phys = e.translated - (e.translated % page) + pageOff;
      const piece = len === buf.length ? buf : buf.subarray(done, done + len);
      const r = access === DmaAccess.Read ? this.system.readBytes(phys, piece) : this.system.writeBytes(phys, piece);
      if (r !== MemTx.Ok) result = r;
      done += len;
    }
    return result;
  }

  /**
   * [at, at+len) inside the interrupt window, as QEMU's VT-d interrupt
   * region sees it (valid and implemented size 4 only): the piece is split
   * like memory_access_size does; each aligned 4-byte write is an interrupt
   * request, an aligned 4-byte read returns 0 (accepted), any other piece is
   * refused (reads 0, write dropped).
   */
  private interruptWindow(t: DmaTranslator, at: number, buf: Uint8Array, done: number, len: number, access: DmaAccess): MemTx {
    let result = MemTx.Ok;
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
