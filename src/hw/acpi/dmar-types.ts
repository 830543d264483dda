/**
 * The DMA Remapping Reporting table (DMAR): layout constants and the plain
 * data shapes that `buildDmar` takes and `parseDmar` returns.
 *
 * Layout from the Intel VT-d specification, chapter 8 ("BIOS
 * Considerations"): a 36-byte ACPI header, HAW, flags, 10 reserved bytes,
 * then remapping structures, each starting with {u16 type, u16 length}.
 * The shapes carry no dependency on the PCI code: the machine describes its
 * topology as data.
 */

/** Offsets inside the DMAR after the common header (VT-d 8.1, table 8-1). */
export const DmarOff = {
  /** Host address width minus one. */
  HAW: 36,
  FLAGS: 37,
  /** 10 reserved bytes. */
  RESERVED: 38,
  /** First remapping structure. */
  STRUCTURES: 48,
} as const;

/** DMAR flags byte (VT-d 8.1). */
export const DmarFlag = {
  INTR_REMAP: 0x01,
  X2APIC_OPT_OUT: 0x02,
  DMA_CTRL_PLATFORM_OPT_IN: 0x04,
} as const;

/** Remapping structure types (VT-d 8.2, table 8-2), in the order they must appear. */
export const DmarType = {
  DRHD: 0,
  RMRR: 1,
  ATSR: 2,
  RHSA: 3,
  ANDD: 4,
  SATC: 5,
} as const;

/** Fixed sizes of each structure before its device scopes / name. */
export const DmarFixedLen = {
  /** DRHD (VT-d 8.3): type, length, flags, size, segment, u64 base. */
  DRHD: 16,
  /** RMRR (8.4): type, length, reserved, segment, u64 base, u64 limit. */
  RMRR: 24,
  /** ATSR (8.5): type, length, flags, reserved, segment. */
  ATSR: 8,
  /** RHSA (8.6): type, length, reserved u32, u64 base, u32 proximity domain. */
  RHSA: 20,
  /** ANDD (8.7): type, length, 3 reserved, device number; then the name. */
  ANDD: 8,
  /** SATC (8.8): type, length, flags, reserved, segment. */
  SATC: 8,
} as const;

/** Field offsets inside a remapping structure. */
export const DmarStructOff = {
  TYPE: 0,
  LENGTH: 2,
  /** DRHD/ATSR/SATC flags byte. */
  FLAGS: 4,
  /** DRHD register-set size byte (2^(n) pages; QEMU writes 0). */
  DRHD_SIZE: 5,
  /** DRHD/RMRR/ATSR/SATC PCI segment. */
  SEGMENT: 6,
  /** DRHD register base, RMRR region base, RHSA register base. */
  BASE: 8,
  /** RMRR region limit (inclusive). */
  RMRR_LIMIT: 16,
  /** RHSA proximity domain. */
  RHSA_DOMAIN: 16,
  /** ANDD ACPI device number. */
  ANDD_NUMBER: 7,
  /** ANDD object name (NUL-terminated). */
  ANDD_NAME: 8,
} as const;

/** Flag bits of the structures that have them. */
export const DmarStructFlag = {
  /** DRHD: this unit covers every device of its segment not claimed by another. */
  INCLUDE_PCI_ALL: 0x01,
  /** ATSR: every root port of the segment supports ATS. */
  ALL_PORTS: 0x01,
  /** SATC: devices listed must have ATS enabled. */
  ATC_REQUIRED: 0x01,
} as const;

/** Device scope entry layout (VT-d 8.3.1). */
export const ScopeOff = {
  TYPE: 0,
  LENGTH: 1,
  FLAGS: 2,
  RESERVED: 3,
  ENUM_ID: 4,
  START_BUS: 5,
  /** First {device, function} pair. */
  PATH: 6,
} as const;

/** Device scope type codes (VT-d table 8-3). */
export const ScopeTypeCode = {
  endpoint: 1,
  bridge: 2,
  ioapic: 3,
  hpet: 4,
  'acpi-namespace': 5,
} as const;

/** Kinds of device scope. */
export type DeviceScopeType = keyof typeof ScopeTypeCode;

/** One hop of a device path: a device and function number on the current bus. */
export interface DevicePathEntry {
  readonly dev: number;
  readonly fn: number;
}

/** A device scope: which device(s) a structure applies to. */
export interface DeviceScope {
  readonly type: DeviceScopeType;
  /** IOAPIC id, HPET number or ANDD device number; 0 for PCI devices. */
  readonly enumId: number;
  /** Bus number where the path starts. */
  readonly startBus: number;
  /** Path from startBus down to the device, at least one entry. */
  readonly path: readonly DevicePathEntry[];
}

/** A DMA remapping hardware unit definition (DRHD). */
export interface DrhdUnit {
  /** Register base address (QEMU: 0xFED90000). */
  readonly base: number;
  readonly segment: number;
  /** INCLUDE_PCI_ALL: must be the last DRHD of its segment. */
  readonly includePciAll: boolean;
  /** Further flag bits ORed in (reserved today; 0). */
  readonly flags?: number;
  /** Register-set size field (VT-d 3.x "Size", 0 = 4 KiB); QEMU writes 0. */
  readonly size?: number;
  readonly scopes: readonly DeviceScope[];
}

/** A reserved memory region reporting structure (RMRR). */
export interface Rmrr {
  readonly segment: number;
  /** 4 KiB aligned base. */
  readonly base: number;
  /** Inclusive limit (ends in 0xFFF). */
  readonly limit: number;
  readonly scopes: readonly DeviceScope[];
}

/** A root port ATS capability reporting structure (ATSR). */
export interface Atsr {
  readonly segment: number;
  readonly allPorts: boolean;
  readonly scopes: readonly DeviceScope[];
}

/** A remapping hardware static affinity structure (RHSA). */
export interface Rhsa {
  readonly base: number;
  readonly proximityDomain: number;
}

/** An ACPI name-space device declaration (ANDD). */
export interface Andd {
  /** Device number used as enumId by ACPI-namespace scopes. */
  readonly deviceNumber: number;
  /** Fully qualified ACPI object name, e.g. "\\_SB.PCI0.SDMA". */
  readonly name: string;
}

/** An SoC integrated address translation cache structure (SATC). */
export interface Satc {
  readonly segment: number;
  readonly atcRequired: boolean;
  readonly scopes: readonly DeviceScope[];
}

/** Everything a DMAR says, as plain data (input of buildDmar). */
export interface DmarOptions {
  /** DMA physical addressing capability in bits (QEMU: aw-bits, 39 or 48); HAW field = this - 1. */
  readonly hostAddressWidth: number;
  /** Flags bit 0: interrupt remapping supported. */
  readonly intremap: boolean;
  /** Flags bit 1 (QEMU 7.2 never sets it). */
  readonly x2apicOptOut?: boolean;
  /** Flags bit 2 (QEMU never sets it). */
  readonly dmaCtrlOptIn?: boolean;
  /** Adds an ATSR with ALL_PORTS for segment 0, as QEMU does for device-iotlb=on. */
  readonly deviceIotlb: boolean;
  readonly units: readonly DrhdUnit[];
  readonly rmrr?: readonly Rmrr[];
  /** Explicit ATSRs (after the device-iotlb one, if any). */
  readonly atsr?: readonly Atsr[];
  readonly rhsa?: readonly Rhsa[];
  readonly andd?: readonly Andd[];
  readonly satc?: readonly Satc[];
  /** Header identity override (defaults: QEMU's BOCHS/BXPC). */
  readonly oemId?: string;
  readonly oemTableId?: string;
}
