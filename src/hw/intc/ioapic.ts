/**
 * The 82093AA I/O APIC as QEMU models it (hw/intc/ioapic.c): 24 input pins,
 * an indirect register window at 0xFEC00000, and delivery as an MSI write.
 *
 * Registers (82093AA datasheet §3.0; QEMU ioapic_internal.h):
 *
 *     0x00 IOREGSEL  (8 bits, any size)   selects the indirect register
 *     0x10 IOWIN     (4-byte only)        reads/writes the selected register
 *     0x40 EOI       (4-byte, version 0x20 only) clears remote IRR by vector
 *     (the 4 KiB window decodes address bits 7:0 only)
 *
 *     indirect 0x00 ID (bits 27:24), 0x01 VER (version | 23 << 16),
 *     0x02 ARB (reads the ID), 0x10 + 2n / 0x11 + 2n redirection entry n
 *
 * Redirection entry (64 bits):
 *
 *     63..56 destination | 55..48 reserved (in remappable format: 63..49
 *     index[14:0], 48 format) | 16 mask | 15 trigger (1 level) |
 *     14 remote IRR (RO) | 13 polarity | 12 delivery status (RO) |
 *     11 dest mode | 10..8 delivery mode | 7..0 vector
 *
 * Delivery builds the message QEMU's ioapic_service does: address
 * 0xFEE00000 | entry[63:48] << 4 | entry[11] << 2, data vector |
 * delivery mode << 8 | trigger << 15.  Bits 63:48 pass through untouched, so
 * a remappable-format entry becomes a remappable-format MSI (format bit 48 →
 * address bit 4, index[15] in entry bit 11 → address bit 2) for the
 * IOMMU's interrupt remapping to decode.  The machine supplies where the
 * message goes (`deliver`): the IOMMU's interrupt path or the APIC bus.
 *
 * There is no local APIC, so nothing broadcasts EOIs: a level-triggered
 * entry keeps remote IRR set (and further assertions coalesce) until the
 * guest writes the EOI register, calls `eoi()`, or flips the entry to edge.
 * Delivery status is never set (delivery is instantaneous), as in QEMU.
 * ExtINT entries use the entry's vector (there is no 8259 to ask).
 */
import { readTimerState, type Timer, type VirtualClock } from '../../core/clock.js';
import { toB64, u32ToB64, type SectionReader, type SnapshotSection } from '../../core/snapshot-state.js';
import type { InterruptOrigin, IrqLine } from '../../core/irq.js';
import type { Device, Tracer } from '../../machine/device-type.js';
import { join64n } from '../../memory/address.js';
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import {
  IOAPIC_DEFAULT_VERSION,
  IOAPIC_EOI_STORM_COUNT,
  IOAPIC_EOI_STORM_DELAY_NS,
  IOAPIC_NUM_PINS,
  IOAPIC_VER_ENTRIES_SHIFT,
  IOAPIC_WINDOW_SIZE,
  IoapicId,
  IoapicMmio,
  IoapicReg,
  IRQ0_PIN,
  Rte,
  RteMsi,
  type IoapicVersion,
} from './ioapic-regs.js';

export * from './ioapic-regs.js';

/** Where an IOAPIC message is written: the IOMMU's interrupt path or the APIC bus. */
export type IoapicDeliver = (address: number, data: number, origin: InterruptOrigin) => void;

/** Reports an input change while intercepted (qtest `irq_intercept_in`): input number and new level. */
export type IoapicIntercept = (input: number, level: boolean) => void;

/** Construction options. */
export interface IoapicOptions {
  /** Where messages go (machine wiring: IOMMU interrupt path, else the MSI sink). */
  readonly deliver: IoapicDeliver;
  /** QEMU property `version`: 0x20 (default, has the EOI register) or 0x11. */
  readonly version?: IoapicVersion;
  /** For the EOI storm delay; without it re-deliveries are never delayed. */
  readonly clock?: VirtualClock;
  /** Receives ioapic_* trace events (QEMU's names). */
  readonly tracer?: Tracer;
}

/** The IOAPIC. */
export class Ioapic implements Device {
  /** Device type name (a machine built-in, not a -device). */
  readonly typeName = 'ioapic';
  /** The MMIO window (map at IOAPIC_BASE). */
  readonly region: MmioRegion;
  /** Input lines 0..23 (GSIs); input 0 drives pin 2, as in QEMU. */
  readonly pins: readonly IrqLine[];
  /** Version register value (0x20 or 0x11). */
  readonly version: IoapicVersion;
  private id = 0;
  private regSel = 0;
  /** Interrupt request register: one bit per pin. */
  private irr = 0;
  private readonly rteLo = new Uint32Array(IOAPIC_NUM_PINS);
  private readonly rteHi = new Uint32Array(IOAPIC_NUM_PINS);
  private readonly eoiCount = new Uint32Array(IOAPIC_NUM_PINS);
  private readonly origins: readonly InterruptOrigin[];
  private readonly deliver: IoapicDeliver;
  private readonly tracer: Tracer | undefined;
  private readonly stormTimer: Timer | null;
  private readonly clock: VirtualClock | undefined;
  private intercept: IoapicIntercept | null = null;
  /** Last level reported per input while intercepted (QEMU qtest irq_levels). */
  private readonly interceptLevels = new Uint8Array(IOAPIC_NUM_PINS);

  constructor(options: IoapicOptions) {
    this.deliver = options.deliver;
    this.version = options.version ?? IOAPIC_DEFAULT_VERSION;
    if (this.version !== 0x11 && this.version !== 0x20) {
      throw new Error(`IOAPIC only supports version 0x11 or 0x20 (default: 0x${IOAPIC_DEFAULT_VERSION.toString(16)}).`);
    }
    this.tracer = options.tracer;
    this.clock = options.clock;
    this.stormTimer = options.clock ? options.clock.timer(() => this.service()) : null;
    const pins: IrqLine[] = [];
    const origins: InterruptOrigin[] = [];
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) {
      pins.push({ set: (level: boolean) => this.input(i, level) });
      origins.push({ kind: 'ioapic', source: i });
    }
    this.pins = pins;
    this.origins = origins;
    const ops: MmioOps = {
      read: (offset, size) => this.mmioRead(offset, size),
      write: (offset, size, value) => this.mmioWrite(offset, size, value),
    };
    this.region = new MmioRegion('ioapic', IOAPIC_WINDOW_SIZE, ops);
    this.reset();
  }

  /** Power-on state (QEMU ioapic_reset_common): every entry masked, ID 0. */
  reset(): void {
    this.id = 0;
    this.regSel = 0;
    this.irr = 0;
    this.rteLo.fill(Rte.Masked);
    this.rteHi.fill(0);
    this.eoiCount.fill(0);
    this.stormTimer?.cancel();
  }

  /**
   * Snapshot (QEMU vmstate_ioapic_common: id, ioregsel, irr, ioredtbl; plus
   * the EOI-storm counts and timer, and the levels last reported to a qtest
   * intercept, so a restored session reports the same changes).
   */
  saveState(): SnapshotSection {
    return {
      id: this.id,
      regSel: this.regSel,
      irr: this.irr >>> 0,
      rteLo: u32ToB64(this.rteLo),
      rteHi: u32ToB64(this.rteHi),
      eoiCount: u32ToB64(this.eoiCount),
      stormTimer: this.stormTimer?.saveState() ?? null,
      interceptLevels: toB64(this.interceptLevels),
    } as SnapshotSection;
  }

  /** Loads what saveState saved; nothing is delivered. */
  loadState(r: SectionReader): void {
    const id = r.int('id', 0, IoapicId.Mask);
    const regSel = r.int('regSel', 0, 0xff);
    const irr = r.u32('irr');
    const rteLo = r.words('rteLo', IOAPIC_NUM_PINS);
    const rteHi = r.words('rteHi', IOAPIC_NUM_PINS);
    const eoiCount = r.words('eoiCount', IOAPIC_NUM_PINS);
    const storm = readTimerState(r, 'stormTimer');
    const levels = r.bytes('interceptLevels', IOAPIC_NUM_PINS);
    this.id = id;
    this.regSel = regSel;
    this.irr = irr;
    this.rteLo.set(rteLo);
    this.rteHi.set(rteHi);
    this.eoiCount.set(eoiCount);
    this.stormTimer?.loadState(storm);
    this.interceptLevels.set(levels);
  }

  /**
   * Installs (or with null removes) the qtest intercept: every input change
   * is reported with its new level.  Inputs keep being delivered, as in
   * QEMU, whose intercept handler forwards to the original one.
   */
  setIntercept(fn: IoapicIntercept | null): void {
    this.intercept = fn;
  }

  /** Redirection entry `pin` as a 64-bit value (inspection). */
  redirectionEntry(pin: number): bigint {
    return join64n(this.rteLo[pin] ?? 0, this.rteHi[pin] ?? 0);
  }

  /** The interrupt request register (bit n = pin n asserted / pending). */
  get pending(): number {
    return this.irr >>> 0;
  }

  /**
   * An EOI broadcast for `vector` (what a local APIC does on EOI of a
   * level-triggered interrupt; QEMU ioapic_eoi_broadcast).
   */
  eoi(vector: number): void {
    const v = vector & Rte.VectorMask;
    if (this.tracing('ioapic_eoi_broadcast')) this.tracer!.trace('ioapic_eoi_broadcast', { vector: v });
    for (let n = 0; n < IOAPIC_NUM_PINS; n++) {
      const lo = this.rteLo[n]!;
      if ((lo & Rte.VectorMask) !== v || (lo & Rte.TriggerLevel) === 0) continue;
      if ((lo & Rte.RemoteIrr) === 0) continue;
      if (this.tracing('ioapic_clear_remote_irr')) {
        this.tracer!.trace('ioapic_clear_remote_irr', { n, vector: v });
      }
      this.rteLo[n] = lo & ~Rte.RemoteIrr;
      if ((lo & Rte.Masked) === 0 && this.irr & (1 << n)) {
        if (++this.eoiCount[n]! >= IOAPIC_EOI_STORM_COUNT && this.stormTimer && this.clock) {
          this.eoiCount[n] = 0;
          const at = this.clock.now() + IOAPIC_EOI_STORM_DELAY_NS;
          if (!this.stormTimer.pending || this.stormTimer.deadline > at) this.stormTimer.arm(at);
          if (this.tracing('ioapic_eoi_delayed_reassert')) {
            this.tracer!.trace('ioapic_eoi_delayed_reassert', { pin: n });
          }
        } else {
          this.service();
        }
      } else {
        this.eoiCount[n] = 0;
      }
    }
  }

  /** An input line changed (QEMU ioapic_set_irq). */
  private input(n: number, level: boolean): void {
    this.setIrq(n, level);
    // QEMU's qtest intercept forwards to the original handler, then reports a change.
    if (this.intercept && this.interceptLevels[n] !== (level ? 1 : 0)) {
      this.interceptLevels[n] = level ? 1 : 0;
      this.intercept(n, level);
    }
  }

  private setIrq(n: number, level: boolean): void {
    if (this.tracing('ioapic_set_irq')) this.tracer!.trace('ioapic_set_irq', { vector: n, level: level ? 1 : 0 });
    const pin = n === 0 ? IRQ0_PIN : n;
    const mask = 1 << pin;
    const lo = this.rteLo[pin]!;
    if (lo & Rte.TriggerLevel) {
      if (level) {
        this.irr |= mask;
        if ((lo & Rte.RemoteIrr) === 0) this.service();
      } else {
        this.irr &= ~mask;
      }
    } else if (level && (lo & Rte.Masked) === 0) {
      // 82093AA: edge requests on a masked pin are ignored.
      this.irr |= mask;
      this.service();
    }
  }

  /** Delivers every pending, unmasked pin (QEMU ioapic_service). */
  private service(): void {
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) {
      const mask = 1 << i;
      if ((this.irr & mask) === 0) continue;
      const lo = this.rteLo[i]!;
      if (lo & Rte.Masked) continue;
      if (lo & Rte.TriggerLevel) {
        const coalesce = (lo & Rte.RemoteIrr) !== 0;
        if (this.tracing('ioapic_set_remote_irr')) this.tracer!.trace('ioapic_set_remote_irr', { n: i });
        this.rteLo[i] = lo | Rte.RemoteIrr;
        if (coalesce) continue;
      } else {
        this.irr &= ~mask;
      }
      const hi = this.rteHi[i]!;
      const address =
        (RteMsi.AddressBase |
          ((hi >>> Rte.HiDestIndexShift) << RteMsi.DestIndexShift) |
          (((lo >>> Rte.DestModeShift) & 1) << RteMsi.DestModeShift)) >>>
        0;
      const data =
        ((lo & Rte.VectorMask) |
          (((lo >>> Rte.TriggerShift) & 1) << RteMsi.TriggerShift) |
          (((lo >>> Rte.DeliveryModeShift) & Rte.DeliveryModeMask) << RteMsi.DeliveryModeShift)) >>>
        0;
      this.deliver(address, data, this.origins[i]!);
    }
  }

  private mmioRead(offset: number, size: 1 | 2 | 4): number {
    let val = 0;
    switch (offset & IoapicMmio.Decode) {
      case IoapicMmio.RegSel:
        val = this.regSel;
        break;
      case IoapicMmio.Window:
        if (size === 4) val = this.indirectRead();
        break;
    }
    const result = size === 4 ? val >>> 0 : val & ((1 << (8 * size)) - 1);
    if (this.tracing('ioapic_mem_read')) {
      this.tracer!.trace('ioapic_mem_read', { addr: offset & IoapicMmio.Decode, regsel: this.regSel, size, val: result });
    }
    return result;
  }

  private indirectRead(): number {
    switch (this.regSel) {
      case IoapicReg.Id:
      case IoapicReg.Arbitration:
        return (this.id << IoapicId.Shift) >>> 0;
      case IoapicReg.Version:
        return this.version | ((IOAPIC_NUM_PINS - 1) << IOAPIC_VER_ENTRIES_SHIFT);
      default: {
        const index = (this.regSel - IoapicReg.RedirectionBase) >> 1;
        if (index < 0 || index >= IOAPIC_NUM_PINS) return 0;
        return this.regSel & 1 ? this.rteHi[index]! : this.rteLo[index]!;
      }
    }
  }

  private mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.tracing('ioapic_mem_write')) {
      this.tracer!.trace('ioapic_mem_write', { addr: offset & IoapicMmio.Decode, regsel: this.regSel, size, val: value >>> 0 });
    }
    switch (offset & IoapicMmio.Decode) {
      case IoapicMmio.RegSel:
        this.regSel = value & 0xff;
        break;
      case IoapicMmio.Window:
        if (size === 4) this.indirectWrite(value >>> 0);
        break;
      case IoapicMmio.Eoi:
        if (size === 4 && this.version === 0x20) this.eoi(value);
        break;
    }
  }

  private indirectWrite(value: number): void {
    switch (this.regSel) {
      case IoapicReg.Id:
        this.id = (value >>> IoapicId.Shift) & IoapicId.Mask;
        return;
      case IoapicReg.Version:
      case IoapicReg.Arbitration:
        return;
    }
    const index = (this.regSel - IoapicReg.RedirectionBase) >> 1;
    if (index < 0 || index >= IOAPIC_NUM_PINS) return;
    if (this.regSel & 1) {
      this.rteHi[index] = value;
    } else {
      const ro = this.rteLo[index]! & Rte.ReadOnly;
      let lo = (value & ~Rte.ReadOnly) | ro;
      // Edge entries never keep remote IRR (QEMU ioapic_fix_edge_remote_irr; Linux's EOI-by-retrigger hack).
      if ((lo & Rte.TriggerLevel) === 0) lo &= ~Rte.RemoteIrr;
      this.rteLo[index] = lo >>> 0;
    }
    this.eoiCount[index] = 0;
    this.service();
  }

  /** True when `event` is traced (checked before building the fields: no allocation otherwise). */
  private tracing(event: string): boolean {
    return this.tracer !== undefined && this.tracer.enabled(event);
  }
}
