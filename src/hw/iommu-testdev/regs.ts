/**
 * Register map of QEMU 11.1's IOMMU test device (`-device iommu-testdev`,
 * include/hw/misc/iommu-testdev.h and hw/misc/iommu-testdev.c).  BAR0 is a
 * 4 KiB 32-bit memory window of 4-byte registers:
 *
 *     0x00 RO  trigger: a read runs the armed DMA synchronously and returns 0
 *     0x04 RW  DMA IOVA bits 31:0   (QEMU ITD_REG_DMA_GVA_LO)
 *     0x08 RW  DMA IOVA bits 63:32  (ITD_REG_DMA_GVA_HI)
 *     0x0C RW  DMA length in bytes
 *     0x10 RW  result: idle, busy, 0 (success) or an 0xDEAD000x error
 *     0x14 WO  doorbell: bit 0 set arms (result busy), clear disarms (result idle); reads 0
 *     0x18 RW  attributes:  3        2   1       0
 *                          +---------+-------+--------+
 *                          | space   | space | secure |
 *                          | valid   | (ARM) |        |
 *                          +---------+-------+--------+
 *     0x1C RW  expected GPA bits 31:0
 *     0x20 RW  expected GPA bits 63:32
 *
 * Every other offset reads 0 and ignores writes.  Only 4-byte aligned
 * accesses are valid (QEMU .valid min = max = 4): a 1- or 2-byte or
 * unaligned access reads 0 and is dropped; an 8-byte one is split into two
 * 4-byte accesses by the bus (so `readq` at 0x00 triggers).
 *
 * A trigger writes the pattern 78 56 34 12 (0x12345678 little-endian,
 * repeating, cut at the length) through the device's IOMMU address space at
 * the IOVA, reads the same length back from system memory at the GPA and
 * compares.
 */

/** PCI identity (QEMU iommu_testdev_class_init, do_pci_register_device). */
export const ItdPci = {
  /** PCI_VENDOR_ID_REDHAT. */
  VendorId: 0x1b36,
  /** PCI_DEVICE_ID_REDHAT_TEST. */
  DeviceId: 0x0005,
  Revision: 0x00,
  /** PCI_CLASS_OTHERS (0xff) set as a 16-bit class: base 0x00, subclass 0xff, prog-if 0 (24-bit code). */
  ClassCode: 0x00ff00,
  /** QEMU's default subsystem for devices that set none (pci_default_sub_vendor_id / _sub_device_id). */
  SubsystemVendorId: 0x1af4,
  SubsystemId: 0x1100,
  /** BAR0 size (BAR0_SIZE). */
  MmioSize: 0x1000,
} as const;

/** BAR0 register offsets (QEMU ITD_REG_*). */
export const ItdReg = {
  Trigger: 0x00,
  IovaLo: 0x04,
  IovaHi: 0x08,
  Length: 0x0c,
  Result: 0x10,
  Doorbell: 0x14,
  Attrs: 0x18,
  GpaLo: 0x1c,
  GpaHi: 0x20,
} as const;

/** The only valid access size (QEMU iommu_testdev_mmio_ops .valid). */
export const ITD_ACCESS_SIZE = 4;

/** Result register values (QEMU ITD_DMA_RESULT_* and ITD_DMA_ERR_*). */
export const ItdResult = {
  /** All checks passed. */
  Ok: 0x0000_0000,
  /** Reset value, and after a disarming doorbell write. */
  Idle: 0xffff_ffff,
  /** Armed, waiting for a trigger read. */
  Busy: 0xffff_fffe,
  /** Length 0. */
  BadLength: 0xdead_0001,
  /** The write through the IOMMU address space failed (translation fault, nothing there). */
  TxFail: 0xdead_0002,
  /** The read-back from system memory failed. */
  ReadFail: 0xdead_0003,
  /** The read-back differs from the pattern. */
  Mismatch: 0xdead_0004,
  /** Triggered without arming. */
  NotArmed: 0xdead_0005,
  /** Attributes say space valid with a secure bit contradicting a Secure/Non-secure space. */
  BadAttrs: 0xdead_0006,
} as const;

/** Doorbell bits (QEMU ITD_DMA_DBELL_ARM): any value with bit 0 set arms, any other disarms. */
export const ItdDoorbell = {
  Arm: 0x1,
} as const;

/** Attribute register fields (QEMU ITD_ATTRS_*; the space is ARM's MemTxAttrs.space). */
export const ItdAttrs = {
  SecureBit: 0x1,
  SpaceShift: 1,
  SpaceMask: 0x3,
  SpaceValidBit: 0x8,
  /** ITD_ATTRS_SPACE_SECURE. */
  SpaceSecure: 0,
  /** ITD_ATTRS_SPACE_NONSECURE. */
  SpaceNonSecure: 1,
} as const;

/** Reset value of the attribute register: ITD_ATTRS_SET_SPACE(0, ITD_ATTRS_SPACE_NONSECURE). */
export const ITD_ATTRS_RESET = ItdAttrs.SpaceNonSecure << ItdAttrs.SpaceShift;

/** The word the DMA writes (ITD_DMA_WRITE_VAL), little-endian, repeating. */
export const ITD_DMA_WRITE_VAL = 0x1234_5678;

/** Bytes per pattern period. */
export const ITD_PATTERN_PERIOD = 4;

/** Byte `i` of the DMA pattern (QEMU: ITD_DMA_WRITE_VAL >> ((i % 4) * 8)). */
export function patternByte(i: number): number {
  return (ITD_DMA_WRITE_VAL >>> ((i & (ITD_PATTERN_PERIOD - 1)) * 8)) & 0xff;
}

/**
 * QEMU iommu_testdev_attrs_inconsistent: with space-valid set, a Secure
 * space needs the secure bit and a Non-secure space needs it clear; spaces
 * 2 and 3 (Root, Realm) and space-valid clear are never inconsistent.
 */
export function attrsInconsistent(cfg: number): boolean {
  if ((cfg & ItdAttrs.SpaceValidBit) === 0) return false;
  const space = (cfg >>> ItdAttrs.SpaceShift) & ItdAttrs.SpaceMask;
  const secure = (cfg & ItdAttrs.SecureBit) !== 0;
  if (space === ItdAttrs.SpaceSecure) return !secure;
  if (space === ItdAttrs.SpaceNonSecure) return secure;
  return false;
}
