/**
 * The MSI capability (PCI Local Bus 3.0 §6.8.1), laid out and masked as QEMU's
 * msi_init does, with per-vector masking and pending bits.
 *
 *   +0  cap id 0x05 | next | message control (word)
 *   +4  message address (low 32 bits, bits 1:0 reserved)
 *   +8  (64-bit) message upper address
 *   +8 / +0xc  message data (word)
 *   +0xc / +0x10  mask bits      (per-vector masking only)
 *   +0x10 / +0x14 pending bits   (per-vector masking only)
 */
import { TWO_POW_32 } from '../memory/address.js';
import { rangesOverlap, type PciConfig } from './config.js';

/** Capability ID of MSI. */
export const MSI_CAP_ID = 0x05;

/** Message control bits. */
export const MsiFlags = {
  Enable: 0x0001,
  /** Multiple message capable: log2 of the vectors supported, bits 3:1. */
  QMask: 0x000e,
  QMaskShift: 1,
  /** Multiple message enable: log2 of the vectors enabled, bits 6:4. */
  QSize: 0x0070,
  QSizeShift: 4,
  Is64: 0x0080,
  MaskBit: 0x0100,
} as const;

/** Register offsets inside the capability. */
export const MsiReg = {
  Flags: 0x02,
  AddressLo: 0x04,
  AddressHi: 0x08,
  Data32: 0x08,
  Data64: 0x0c,
  Mask32: 0x0c,
  Mask64: 0x10,
  Pending32: 0x10,
  Pending64: 0x14,
} as const;

/** Most vectors MSI can have. */
export const MSI_VECTORS_MAX = 32;

/** Writable bits of the address low dword. */
const ADDRESS_LO_MASK = 0xfffffffc;

/** The MSI capability of one device, over its config space. */
export class MsiCap {
  private readonly dataOff: number;
  private readonly maskOff: number;
  private readonly pendingOff: number;

  /** Capability size for the given layout (QEMU msi_cap_sizeof). */
  static capSize(is64: boolean, perVectorMask: boolean): number {
    if (perVectorMask) return is64 ? 0x18 : 0x14;
    return is64 ? 0x0e : 0x0a;
  }

  constructor(
    private readonly config: PciConfig,
    /** Offset of the capability in config space. */
    readonly offset: number,
    readonly maxVectors: number,
    readonly is64: boolean,
    readonly perVectorMask: boolean,
  ) {
    if (!Number.isInteger(maxVectors) || maxVectors < 1 || maxVectors > MSI_VECTORS_MAX || maxVectors & (maxVectors - 1)) {
      throw new RangeError(`msi: vectors must be a power of two from 1 to 32, got ${maxVectors}`);
    }
    this.dataOff = offset + (is64 ? MsiReg.Data64 : MsiReg.Data32);
    this.maskOff = offset + (is64 ? MsiReg.Mask64 : MsiReg.Mask32);
    this.pendingOff = offset + (is64 ? MsiReg.Pending64 : MsiReg.Pending32);
    let flags = (Math.log2(maxVectors) << MsiFlags.QMaskShift) & MsiFlags.QMask;
    if (is64) flags |= MsiFlags.Is64;
    if (perVectorMask) flags |= MsiFlags.MaskBit;
    config.setWord(offset + MsiReg.Flags, flags);
    config.setWmask(offset + MsiReg.Flags, 2, MsiFlags.QSize | MsiFlags.Enable);
    config.setWmask(offset + MsiReg.AddressLo, 4, ADDRESS_LO_MASK);
    if (is64) config.setWmask(offset + MsiReg.AddressHi, 4, 0xffffffff);
    config.setWmask(this.dataOff, 2, 0xffff);
    if (perVectorMask) config.setWmask(this.maskOff, 4, 0xffffffff >>> (MSI_VECTORS_MAX - maxVectors));
  }

  private flags(): number {
    return this.config.getWord(this.offset + MsiReg.Flags);
  }

  /** MSI enable bit. */
  enabled(): boolean {
    return (this.flags() & MsiFlags.Enable) !== 0;
  }

  /** Vectors the guest enabled (1 << multiple message enable). */
  vectors(): number {
    return 1 << ((this.flags() & MsiFlags.QSize) >>> MsiFlags.QSizeShift);
  }

  /** Message address (64-bit as a number). */
  address(): number {
    const lo = this.config.getLong(this.offset + MsiReg.AddressLo);
    return this.is64 ? this.config.getLong(this.offset + MsiReg.AddressHi) * TWO_POW_32 + lo : lo;
  }

  /** Message data for `vector` (QEMU msi_get_message: low bits replaced by the vector). */
  data(vector: number): number {
    const n = this.vectors();
    let d = this.config.getWord(this.dataOff);
    if (n > 1) d = (d & ~(n - 1)) | (vector & (n - 1));
    return d;
  }

  /** True when `vector` is masked. */
  masked(vector: number): boolean {
    return this.perVectorMask && ((this.config.getLong(this.maskOff) >>> vector) & 1) === 1;
  }

  /**
   * For msi_notify: false when the message should be sent; true when the
   * vector is out of range (dropped) or masked (pending bit set instead).
   */
  maskedOrPend(vector: number): boolean {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors()) return true;
    if (!this.masked(vector)) return false;
    this.config.setLong(this.pendingOff, (this.config.getLong(this.pendingOff) | (1 << vector)) >>> 0);
    return true;
  }

  /** True when a config write of `size` bytes at `off` touches the capability. */
  overlaps(off: number, size: number): boolean {
    return rangesOverlap(off, size, this.offset, MsiCap.capSize(this.is64, this.perVectorMask));
  }

  /**
   * After a guest write touching the capability (QEMU msi_write_config):
   * clamp the enabled vector count to the capable count, drop pending bits
   * beyond it and send pending vectors that are now unmasked.
   */
  afterWrite(notify: (vector: number) => void): void {
    let flags = this.flags();
    if (!(flags & MsiFlags.Enable)) return;
    const logNum = (flags & MsiFlags.QSize) >>> MsiFlags.QSizeShift;
    const logMax = (flags & MsiFlags.QMask) >>> MsiFlags.QMaskShift;
    if (logNum > logMax) {
      flags = (flags & ~MsiFlags.QSize) | (logMax << MsiFlags.QSizeShift);
      this.config.setWord(this.offset + MsiReg.Flags, flags);
    }
    if (!this.perVectorMask) return;
    const n = this.vectors();
    let pending = this.config.getLong(this.pendingOff) & (0xffffffff >>> (MSI_VECTORS_MAX - n));
    this.config.setLong(this.pendingOff, pending);
    for (let v = 0; v < n; v++) {
      if (this.masked(v) || !((pending >>> v) & 1)) continue;
      pending &= ~(1 << v);
      this.config.setLong(this.pendingOff, pending >>> 0);
      notify(v);
    }
  }
}
