/**
 * Interrupt lines and messages: the machine's wiring between devices and
 * interrupt controllers (QEMU qemu_irq, MSI messages).
 */

/** A level-triggered line into an interrupt controller input. */
export interface IrqLine {
  set(level: boolean): void;
}

/** A line that goes nowhere. */
export const NO_IRQ: IrqLine = { set() {} };

/** A line that calls `fn` with its new level on every change. */
export class IrqWire implements IrqLine {
  private level = false;
  constructor(private readonly fn: (level: boolean) => void) {}
  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    this.fn(level);
  }
  get high(): boolean {
    return this.level;
  }
}

/**
 * The x86 interrupt address range (Intel SDM 10.11.1, VT-d spec 3.15): a
 * 4-byte write to 0xFEExxxxx is an interrupt message, not a memory write.
 */
export const MSI_ADDRESS_BASE = 0xfee0_0000;
export const MSI_ADDRESS_LAST = 0xfeef_ffff;
/** The same range as a DMA window ({ base, last }). */
export const MSI_WINDOW = Object.freeze({ base: MSI_ADDRESS_BASE, last: MSI_ADDRESS_LAST });

/** Where a message-signalled interrupt ends up (the APIC bus). */
export interface MsiTarget {
  /** Delivers an MSI write of `data` to `address` (32-bit data, 64-bit address). */
  deliverMsi(address: number, data: number, origin: InterruptOrigin): void;
}

/** Who raised an interrupt and how it got to the APIC bus. */
export interface InterruptOrigin {
  /** 'msi' for a device MSI, 'ioapic' for an IOAPIC pin, 'iommu' for an IOMMU event (fault, completion). */
  readonly kind: 'msi' | 'ioapic' | 'iommu';
  /** Requester ID of the device (MSI), or the IOAPIC pin number. */
  readonly source?: number;
  /** Set when interrupt remapping translated the message; the IRTE index used. */
  readonly remappedIndex?: number;
}
