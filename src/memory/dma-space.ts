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
      if (at >= INTERRUPT_WINDOW_BASE && at <= INTERRUPT_WINDOW_LAST) {
        const len = Math.min(buf.length - done, INTERRUPT_WINDOW_LAST + 1 - at);
        if (access === DmaAccess.Write && len === 4 && done === 0 && buf.length === 4 && (at & 3) === 0) {
          t.interruptWrite(at, (buf[0]! | (buf[1]! << 8) | (buf[2]! << 16) | (buf[3]! << 24)) >>> 0);
        } else {
          if (access === DmaAccess.Read) buf.fill(0, done, done + len);
          result = MemTx.DecodeError;
        }
        done += len;
        continue;
      }
      const ok = t.translate(at, access, e);
      const pageOff = at % (e.addrMask + 1);
      let len = Math.min(buf.length - done, e.addrMask + 1 - pageOff);
      if (!ok || (e.perm & (access === DmaAccess.Read ? IommuPerm.Read : IommuPerm.Write)) === 0) {
        // A failed translation covers at most the rest of a 4 KiB page.
        if (!ok) len = Math.min(buf.length - done, 4096 - (at % 4096));
        if (access === DmaAccess.Read) buf.fill(0, done, done + len);
        result = MemTx.DecodeError;
        done += len;
        continue;
      }
      const phys = e.translated - (e.translated % (e.addrMask + 1)) + pageOff;
      const piece = buf.subarray(done, done + len);
      const r = access === DmaAccess.Read ? this.system.readBytes(phys, piece) : this.system.writeBytes(phys, piece);
      if (r !== MemTx.Ok) result = r;
      done += len;
    }
    return result;
  }
}
