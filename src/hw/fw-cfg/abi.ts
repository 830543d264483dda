/**
 * fw_cfg's guest-visible ABI (QEMU docs/specs/fw_cfg.rst): item keys,
 * selector bits, the ID feature bits, the DMA descriptor and the file
 * directory layout.
 */

/** Well-known item keys (docs/specs/fw_cfg.rst, include/standard-headers/linux/qemu_fw_cfg.h). */
export const FwCfgKey = {
  SIGNATURE: 0x00,
  ID: 0x01,
  UUID: 0x02,
  RAM_SIZE: 0x03,
  NOGRAPHIC: 0x04,
  NB_CPUS: 0x05,
  MACHINE_ID: 0x06,
  KERNEL_ADDR: 0x07,
  KERNEL_SIZE: 0x08,
  KERNEL_CMDLINE: 0x09,
  INITRD_ADDR: 0x0a,
  INITRD_SIZE: 0x0b,
  BOOT_DEVICE: 0x0c,
  NUMA: 0x0d,
  BOOT_MENU: 0x0e,
  MAX_CPUS: 0x0f,
  /** The file directory. */
  FILE_DIR: 0x19,
  /** First selector handed to files. */
  FILE_FIRST: 0x20,
  /** x86 arch-local items (FW_CFG_ARCH_LOCAL | n). */
  X86_ACPI_TABLES: 0x8000,
  X86_SMBIOS_ENTRIES: 0x8001,
  X86_IRQ0_OVERRIDE: 0x8002,
  X86_E820_TABLE: 0x8003,
  X86_HPET: 0x8004,
} as const;

/** Selector bits. */
export const FwCfgSelector = {
  /** Historic write channel bit (ignored by modern QEMU, masked off the index). */
  WRITE_CHANNEL: 0x4000,
  /** Selects the architecture-specific item table. */
  ARCH_LOCAL: 0x8000,
  /** Index bits. */
  ENTRY_MASK: 0x3fff,
  /** Selector value meaning "nothing selected". */
  INVALID: 0xffff,
} as const;

/** Bits of the ID item (key 1). */
export const FwCfgFeature = {
  /** The traditional data-port interface. */
  TRADITIONAL: 0x01,
  /** The DMA interface at 0x514. */
  DMA: 0x02,
} as const;

/** Control bits of an FWCfgDmaAccess descriptor (be32 control). */
export const FwCfgDmaCtl = {
  ERROR: 0x01,
  READ: 0x02,
  SKIP: 0x04,
  SELECT: 0x08,
  WRITE: 0x10,
  /** Selector in bits 31:16 when SELECT is set. */
  SELECTOR_SHIFT: 16,
} as const;

/** FWCfgDmaAccess layout: be32 control, be32 length, be64 address. */
export const FwCfgDmaDesc = {
  CONTROL: 0,
  LENGTH: 4,
  ADDRESS: 8,
  SIZE: 16,
} as const;

/** File directory layout: be32 count, then entries of {be32 size, be16 select, be16 reserved, char name[56]}. */
export const FwCfgDir = {
  COUNT_SIZE: 4,
  ENTRY_SIZE: 64,
  SIZE: 0,
  SELECT: 4,
  RESERVED: 6,
  NAME: 8,
  /** Name field length including the NUL terminator. */
  NAME_LEN: 56,
} as const;

/** Contents of key 0. */
export const FW_CFG_SIGNATURE = 'QEMU';
/** What reading the 8-byte DMA address register returns, in memory order. */
export const FW_CFG_DMA_SIGNATURE = 'QEMU CFG';

/** Default number of file slots (QEMU's x-file-slots for current machine types). */
export const FW_CFG_FILE_SLOTS = 0x20;
