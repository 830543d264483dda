/**
 * Register layout of the 82093AA I/O APIC as QEMU models it
 * (82093AA datasheet §3.0; QEMU ioapic_internal.h).  See ioapic.ts for the
 * behaviour.
 */
/** Guest-physical base of the IOAPIC window. */
export const IOAPIC_BASE = 0xfec0_0000;
/** Size of the window. */
export const IOAPIC_WINDOW_SIZE = 0x1000;
/** Number of input pins / redirection entries. */
export const IOAPIC_NUM_PINS = 24;

/** Direct registers (offset within the window, after masking with `Decode`). */
export const IoapicMmio = {
  RegSel: 0x00,
  Window: 0x10,
  Eoi: 0x40,
  /** The window decodes address bits 7:0 only. */
  Decode: 0xff,
} as const;

/** Indirect registers selected through IOREGSEL. */
export const IoapicReg = {
  Id: 0x00,
  Version: 0x01,
  Arbitration: 0x02,
  RedirectionBase: 0x10,
} as const;

/** ID register layout. */
export const IoapicId = {
  Shift: 24,
  Mask: 0xf,
} as const;

/** Version register: entries field (max redirection entry index). */
export const IOAPIC_VER_ENTRIES_SHIFT = 16;

/** Supported versions (QEMU property `version`). */
export type IoapicVersion = 0x11 | 0x20;
/** QEMU's default version; the only one with an EOI register. */
export const IOAPIC_DEFAULT_VERSION: IoapicVersion = 0x20;

/** Bits of the low half of a redirection entry. */
export const Rte = {
  VectorMask: 0xff,
  DeliveryModeShift: 8,
  DeliveryModeMask: 0x7,
  DestModeShift: 11,
  DestModeLogical: 1 << 11,
  DeliveryStatus: 1 << 12,
  Polarity: 1 << 13,
  RemoteIrr: 1 << 14,
  TriggerShift: 15,
  TriggerLevel: 1 << 15,
  Masked: 1 << 16,
  /** Read-only bits (QEMU IOAPIC_RO_BITS); all in the low half. */
  ReadOnly: (1 << 14) | (1 << 12),
  /** High half: bits 63:48 (destination + reserved / remappable index + format) shift. */
  HiDestIndexShift: 16,
} as const;

/** How the pieces of an entry land in the MSI message (QEMU ioapic_entry_parse). */
export const RteMsi = {
  AddressBase: 0xfee0_0000,
  /** entry[63:48] lands at address bit 4. */
  DestIndexShift: 4,
  DestModeShift: 2,
  TriggerShift: 15,
  DeliveryModeShift: 8,
} as const;

/** After this many back-to-back re-deliveries on EOI, delay the next one (QEMU SUCCESSIVE_IRQ_MAX_COUNT). */
export const IOAPIC_EOI_STORM_COUNT = 10000;
/** The delay: 10 ms of virtual time (NANOSECONDS_PER_SECOND / 100). */
export const IOAPIC_EOI_STORM_DELAY_NS = 10_000_000;

/** QEMU ioapic_set_irq: ISA IRQ 0 (the PIT) is wired to pin 2. */
export const IRQ0_PIN = 2;
