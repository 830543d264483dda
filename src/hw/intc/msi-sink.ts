/**
 * The APIC bus, as far as a machine without CPUs needs one: every message
 * signalled interrupt that reaches it (device MSI without an IOMMU, IOAPIC
 * deliveries, IOMMU events, remapped interrupts) is decoded, recorded and
 * emitted as an `'interrupt'` event.
 *
 * Message layout (Intel SDM vol. 3, 11.11 "Message Signalled Interrupts";
 * VT-d spec 5.1.2 for the extended destination bits):
 *
 *     address  31..20 0xFEE | 19..12 dest ID | 11..5 ext dest ID | 4 format |
 *              3 redirection hint | 2 dest mode | 1..0 reserved
 *     address  63..40 (upper half 31..8): destination bits 31..8 (x2APIC)
 *     data     15 trigger | 14 level | 10..8 delivery mode | 7..0 vector
 *
 * The sink also provides the MMIO window 0xFEE00000-0xFEEFFFFF in system
 * memory, so that DMA without an IOMMU which writes there delivers (QEMU's
 * "apic-msi" region: 4-byte writes at offset 0 of a page-sized register
 * block index, or above 0xFFF, are messages; other offsets are local APIC
 * registers, which this machine has none of).
 */
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';
import type { InterruptOrigin, MsiTarget } from '../../core/irq.js';
import { hi32, lo32 } from '../../memory/address.js';
import { MmioRegion, type MmioOps } from '../../memory/region.js';

/** Fields of an MSI address (low 32 bits). */
export const MsiAddr = {
  /** Fixed interrupt address window base. */
  Base: 0xfee0_0000,
  /** Size of the window (1 MiB). */
  WindowSize: 0x10_0000,
  DestShift: 12,
  DestMask: 0xff,
  /** Extended destination ID bits 11:5 become destination bits 14:8. */
  ExtDestShift: 5,
  ExtDestMask: 0x7f,
  /** Bit 4: remappable (interrupt remapping) format. */
  Remappable: 1 << 4,
  /** Bit 3: redirection hint. */
  RedirectionHint: 1 << 3,
  /** Bit 2: destination mode (1 = logical). */
  DestModeLogical: 1 << 2,
  /** Upper address half: bits 31:8 carry destination bits 31:8. */
  HiDestMask: 0xffff_ff00,
} as const;

/** Fields of MSI data. */
export const MsiData = {
  VectorMask: 0xff,
  DeliveryModeShift: 8,
  DeliveryModeMask: 0x7,
  /** Bit 14: level asserted (level-triggered messages). */
  Level: 1 << 14,
  /** Bit 15: trigger mode (1 = level). */
  TriggerLevel: 1 << 15,
} as const;

/** APIC delivery modes (SDM 11.6.1). */
export const DeliveryMode = {
  Fixed: 0,
  LowestPriority: 1,
  Smi: 2,
  Nmi: 4,
  Init: 5,
  ExtInt: 7,
} as const;

/** Register index within the low 4 KiB that is a message, not a LAPIC register (QEMU apic_mem_write). */
const LAPIC_PAGE_LAST = 0xfff;
const LAPIC_INDEX_SHIFT = 4;
const LAPIC_INDEX_MASK = 0xff;

/** One interrupt as the APIC bus saw it. */
export interface MsiDelivery {
  readonly vector: number;
  /** Destination APIC ID (8 bits, plus extended bits 14:8 and x2APIC bits 31:8). */
  readonly destination: number;
  readonly destMode: 'physical' | 'logical';
  /** Delivery mode field (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT; others reserved). */
  readonly deliveryMode: number;
  readonly trigger: 'edge' | 'level';
  /** Data bit 14 (level assert). */
  readonly level: boolean;
  readonly redirectionHint: boolean;
  /** Address bit 4: the message was in remappable format when it reached the APIC bus. */
  readonly remappable: boolean;
  /** The raw message. */
  readonly address: number;
  readonly data: number;
  readonly origin: InterruptOrigin;
}

/** typed-emitter's interface (a CommonJS package: under nodenext its default export is a namespace member). */
type TypedEmitter<E extends TypedEmitterModule.EventMap> = TypedEmitterModule.default<E>;

/** Events of the MSI sink. */
export type MsiSinkEvents = {
  /** An interrupt reached the APIC bus. */
  interrupt: (irq: MsiDelivery) => void;
};

/** Decodes an MSI message (pure; no side effects). */
export function decodeMsi(address: number, data: number, origin: InterruptOrigin): MsiDelivery {
  const lo = lo32(address);
  const d = data >>> 0;
  const destination =
    (((lo >>> MsiAddr.DestShift) & MsiAddr.DestMask) |
      (((lo >>> MsiAddr.ExtDestShift) & MsiAddr.ExtDestMask) << 8) |
      (hi32(address) & MsiAddr.HiDestMask)) >>>
    0;
  return {
    vector: d & MsiData.VectorMask,
    destination,
    destMode: lo & MsiAddr.DestModeLogical ? 'logical' : 'physical',
    deliveryMode: (d >>> MsiData.DeliveryModeShift) & MsiData.DeliveryModeMask,
    trigger: d & MsiData.TriggerLevel ? 'level' : 'edge',
    level: (d & MsiData.Level) !== 0,
    redirectionHint: (lo & MsiAddr.RedirectionHint) !== 0,
    remappable: (lo & MsiAddr.Remappable) !== 0,
    address,
    data: d,
    origin,
  };
}

const CPU_WRITE_ORIGIN: InterruptOrigin = { kind: 'msi' };

/** The APIC bus: records and emits every interrupt delivered to it. */
export class MsiSink implements MsiTarget {
  /** Every interrupt delivered since creation or the last `clear()`, oldest first. */
  readonly delivered: MsiDelivery[] = [];
  /** Typed events ('interrupt'). */
  readonly events = new EventEmitter() as TypedEmitter<MsiSinkEvents>;
  /** Writes to local APIC register offsets (no LAPIC here: dropped). */
  droppedLapicWrites = 0;
  /** The MMIO window at 0xFEE00000 (map it in system memory at `MsiAddr.Base`). */
  readonly region: MmioRegion;
  /** Maximum number of recorded deliveries kept (the older half is dropped when full). */
  private readonly limit: number;

  constructor(options: { limit?: number } = {}) {
    this.limit = options.limit ?? 65536;
    const ops: MmioOps = {
      // No CPU, so no current local APIC: reads see nothing (QEMU returns 0 without a current CPU).
      read: () => 0,
      write: (offset, size, value) => this.windowWrite(offset, size, value),
    };
    this.region = new MmioRegion('apic-msi', MsiAddr.WindowSize, ops, { valid: { min: 1, max: 4 } });
  }

  /** Decodes, records and emits one interrupt message (the APIC bus accepting it). */
  deliverMsi(address: number, data: number, origin: InterruptOrigin): void {
    const irq = decodeMsi(address, data, origin);
    // Drop the older half at once when full: amortised O(1) per delivery.
    if (this.delivered.length >= this.limit) this.delivered.splice(0, Math.max(1, this.limit >>> 1));
    this.delivered.push(irq);
    this.events.emit('interrupt', irq);
  }

  /** Snapshot: the dropped-write count (the delivery record is the host's, not the machine's). */
  saveState(): SnapshotSection {
    return { droppedLapicWrites: this.droppedLapicWrites };
  }

  /** Loads what saveState saved. */
  loadState(r: SectionReader): void {
    this.droppedLapicWrites = r.int('droppedLapicWrites');
  }

  /** Forgets the recorded deliveries. */
  clear(): void {
    this.delivered.length = 0;
  }

  /** A CPU or un-remapped DMA write into the window. */
  private windowWrite(offset: number, size: number, value: number): void {
    if (size < 4) return;
    const index = (offset >>> LAPIC_INDEX_SHIFT) & LAPIC_INDEX_MASK;
    if (offset > LAPIC_PAGE_LAST || index === 0) {
      this.deliverMsi(MsiAddr.Base + offset, value >>> 0, CPU_WRITE_ORIGIN);
    } else {
      this.droppedLapicWrites++;
    }
  }
}
