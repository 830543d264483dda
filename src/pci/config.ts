/**
 * PCI configuration space as data with masks (QEMU PCIDevice config/wmask/
 * w1cmask/cmask; cloud-hypervisor PciConfiguration.writable_bits).
 *
 * Every guest write goes through one helper, `guestWrite`, which applies the
 * masks byte by byte:
 *
 *     new = (old & ~wmask) | (value & wmask)       writable bits take the value
 *     new &= ~(value & w1cmask)                     write-1-to-clear bits clear
 *
 * Device code sets values with the raw setters (no masks) and declares masks
 * with `setWmask` / `setW1cmask`.  Reads of any size at any offset are safe:
 * bytes outside the space read all-ones.
 */

/** Size of a conventional PCI configuration space (PCI Local Bus 3.0 §6.1). */
export const PCI_CONFIG_SPACE_SIZE = 0x100;
/** Size of a PCI Express configuration space (PCIe Base 4.0 §7.2). */
export const PCIE_CONFIG_SPACE_SIZE = 0x1000;

/** Offsets of the type-0/type-1 common header (PCI Local Bus 3.0 §6.1, §6.2). */
export const PciReg = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  RevisionId: 0x08,
  ClassProg: 0x09,
  ClassDevice: 0x0a,
  CacheLineSize: 0x0c,
  LatencyTimer: 0x0d,
  HeaderType: 0x0e,
  Bist: 0x0f,
  Bar0: 0x10,
  CardbusCis: 0x28,
  SubsystemVendorId: 0x2c,
  SubsystemId: 0x2e,
  RomAddress: 0x30,
  CapabilityList: 0x34,
  InterruptLine: 0x3c,
  InterruptPin: 0x3d,
  MinGnt: 0x3e,
  MaxLat: 0x3f,
} as const;

/** Type-1 (bridge) header offsets (PCI-to-PCI Bridge Architecture 1.2 §3.2). */
export const BridgeReg = {
  PrimaryBus: 0x18,
  SecondaryBus: 0x19,
  SubordinateBus: 0x1a,
  SecLatencyTimer: 0x1b,
  IoBase: 0x1c,
  IoLimit: 0x1d,
  SecStatus: 0x1e,
  MemoryBase: 0x20,
  MemoryLimit: 0x22,
  PrefMemoryBase: 0x24,
  PrefMemoryLimit: 0x26,
  PrefBaseUpper32: 0x28,
  PrefLimitUpper32: 0x2c,
  IoBaseUpper16: 0x30,
  IoLimitUpper16: 0x32,
  RomAddress1: 0x38,
  BridgeControl: 0x3e,
} as const;

/** Command register bits (PCI Local Bus 3.0 §6.2.2). */
export const PciCommand = {
  Io: 0x0001,
  Memory: 0x0002,
  Master: 0x0004,
  Special: 0x0008,
  Invalidate: 0x0010,
  VgaPalette: 0x0020,
  Parity: 0x0040,
  Wait: 0x0080,
  Serr: 0x0100,
  FastBack: 0x0200,
  IntxDisable: 0x0400,
} as const;

/** Status register bits (PCI Local Bus 3.0 §6.2.3). */
export const PciStatus = {
  Interrupt: 0x0008,
  CapList: 0x0010,
  Mhz66: 0x0020,
  FastBack: 0x0080,
  ParityError: 0x0100,
  DevselMedium: 0x0200,
  SigTargetAbort: 0x0800,
  RecTargetAbort: 0x1000,
  RecMasterAbort: 0x2000,
  SigSystemError: 0x4000,
  DetectedParity: 0x8000,
} as const;

/** Header type register values (bit 7: multi-function). */
export const PciHeaderType = {
  Normal: 0x00,
  Bridge: 0x01,
  Cardbus: 0x02,
  MultiFunction: 0x80,
} as const;

/** True when a `size`-byte access at `offset` touches any byte of [reg, reg + len) (QEMU ranges_overlap). */
export function rangesOverlap(offset: number, size: number, reg: number, len: number): boolean {
  return offset < reg + len && offset + size > reg;
}

/** A configuration space: values, writable bits, write-1-to-clear bits. */
export class PciConfig {
  /** Current values. */
  readonly bytes: Uint8Array;
  /** Bits a guest write may change. */
  readonly wmask: Uint8Array;
  /** Bits a guest clears by writing 1. */
  readonly w1cmask: Uint8Array;
  /** Bits checked on migration in QEMU; kept as data (read-only registers). */
  readonly cmask: Uint8Array;
  /** Values at reset (snapshot taken by `snapshotReset`). */
  private readonly resetBytes: Uint8Array;

  constructor(readonly size: number = PCI_CONFIG_SPACE_SIZE) {
    if (size !== PCI_CONFIG_SPACE_SIZE && size !== PCIE_CONFIG_SPACE_SIZE) {
      throw new RangeError(`pci config: size must be 256 or 4096, got ${size}`);
    }
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.cmask = new Uint8Array(size);
    this.resetBytes = new Uint8Array(size);
  }

  /** Byte at `off` (0xff outside the space). */
  getByte(off: number): number {
    return off >= 0 && off < this.size ? this.bytes[off]! : 0xff;
  }

  /** Little-endian word at `off` (bytes outside the space read 0xff). */
  getWord(off: number): number {
    return this.getByte(off) | (this.getByte(off + 1) << 8);
  }

  /** Little-endian dword at `off`, unsigned (bytes outside the space read 0xff). */
  getLong(off: number): number {
    return (this.getByte(off) | (this.getByte(off + 1) << 8) | (this.getByte(off + 2) << 16) | (this.getByte(off + 3) << 24)) >>> 0;
  }

  /** A read of 1, 2 or 4 bytes. */
  read(off: number, size: 1 | 2 | 4): number {
    return size === 1 ? this.getByte(off) : size === 2 ? this.getWord(off) : this.getLong(off);
  }

  /** Sets a byte without masks (device side).  Offsets outside are a host bug. */
  setByte(off: number, v: number): void {
    this.check(off, 1);
    this.bytes[off] = v & 0xff;
  }

  /** Sets a little-endian word without masks. */
  setWord(off: number, v: number): void {
    this.setN(this.bytes, off, 2, v);
  }

  /** Sets a little-endian dword without masks. */
  setLong(off: number, v: number): void {
    this.setN(this.bytes, off, 4, v);
  }

  /** Declares the writable bits of `size` bytes at `off`. */
  setWmask(off: number, size: 1 | 2 | 4, mask: number): void {
    this.setN(this.wmask, off, size, mask);
  }

  /** Declares write-1-to-clear bits of `size` bytes at `off`. */
  setW1cmask(off: number, size: 1 | 2 | 4, mask: number): void {
    this.setN(this.w1cmask, off, size, mask);
  }

  /** Declares checked (read-only) bits of `size` bytes at `off`. */
  setCmask(off: number, size: 1 | 2 | 4, mask: number): void {
    this.setN(this.cmask, off, size, mask);
  }

  /** Writable mask of `size` bytes at `off`. */
  getWmask(off: number, size: 1 | 2 | 4): number {
    return this.getN(this.wmask, off, size);
  }

  /** Write-1-to-clear mask of `size` bytes at `off`. */
  getW1cmask(off: number, size: 1 | 2 | 4): number {
    return this.getN(this.w1cmask, off, size);
  }

  /**
   * The guest write helper: applies wmask and w1cmask to `size` bytes of
   * `value` at `off`.  Bytes outside the space are dropped.
   */
  guestWrite(off: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = off + i;
      if (at < 0 || at >= this.size) continue;
      const v = (value >>> (8 * i)) & 0xff;
      const w = this.wmask[at]!;
      const c = this.w1cmask[at]!;
      this.bytes[at] = ((this.bytes[at]! & ~w) | (v & w)) & ~(v & c);
    }
  }

  /** Records the current values as the reset state. */
  snapshotReset(): void {
    this.resetBytes.set(this.bytes);
  }

  /** Restores the values recorded by `snapshotReset` (masks are unchanged). */
  restoreReset(): void {
    this.bytes.set(this.resetBytes);
  }

  private check(off: number, size: number): void {
    if (!Number.isInteger(off) || off < 0 || off + size > this.size) {
      throw new RangeError(`pci config: offset 0x${off.toString(16)} size ${size} outside ${this.size}-byte space`);
    }
  }

  private setN(arr: Uint8Array, off: number, size: number, v: number): void {
    this.check(off, size);
    for (let i = 0; i < size; i++) arr[off + i] = (v >>> (8 * i)) & 0xff;
  }

  private getN(arr: Uint8Array, off: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const at = off + i;
      v |= (at >= 0 && at < this.size ? arr[at]! : 0) << (8 * i);
    }
    return v >>> 0;
  }
}
