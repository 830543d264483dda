/**
 * The in-process GuestPlatform: binds the guest interface to a vtemu
 * machine by direct calls (CPU-view memory and I/O address spaces, the
 * virtual clock, MSIs from the machine's MSI sink, INTx from the IOAPIC's
 * input intercept).  Lives outside src/guest because it imports the machine.
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { VirtualClock } from '../core/clock.js';
import type { MsiSink, MsiDelivery } from '../hw/intc/msi-sink.js';
import type { Ioapic } from '../hw/intc/ioapic.js';
import { InterruptHub } from '../guest/interrupt-hub.js';
import type { AccessWidth, GuestInterrupt, GuestPlatform, InterruptHandler, TimeMode } from '../guest/platform.js';

/** What the adapter needs from a machine. */
export interface InProcessMachine {
  /** The CPU's view of memory (RAM + MMIO). */
  readonly memory: AddressSpace;
  /** The CPU's port I/O space. */
  readonly io: AddressSpace;
  readonly clock: VirtualClock;
  /** The APIC bus (after any interrupt remapping). */
  readonly msiSink?: MsiSink;
  /** The IOAPIC (its inputs are observed as INTx). */
  readonly ioapic?: Ioapic;
}

/** A GuestPlatform over an in-process machine. */
export class InProcessPlatform implements GuestPlatform {
  readonly name: string;
  readonly interrupts: { msi: boolean; intx: boolean };
  readonly timeMode: TimeMode;
  private readonly hub = new InterruptHub();
  private readonly onMsi = (d: MsiDelivery): void => {
    this.hub.deliver({ kind: 'msi', vector: d.vector, address: d.address, data: d.data });
  };

  constructor(private readonly m: InProcessMachine, name = 'in-process vtemu') {
    this.name = name;
    this.interrupts = { msi: m.msiSink !== undefined, intx: m.ioapic !== undefined };
    this.timeMode = m.clock.mode === 'qtest' ? 'virtual' : 'real';
    m.msiSink?.events.on('interrupt', this.onMsi);
    m.ioapic?.setIntercept((pin, level) => this.hub.deliver({ kind: 'intx', vector: pin, level }));
  }

  async read(addr: number, size: AccessWidth): Promise<number> { return this.m.memory.read(addr, size); }
  async write(addr: number, size: AccessWidth, value: number): Promise<void> { this.m.memory.write(addr, size, value >>> 0); }
  async read64(addr: number): Promise<bigint> { return this.m.memory.read64(addr); }
  async write64(addr: number, value: bigint): Promise<void> { this.m.memory.write64(addr, BigInt.asUintN(64, value)); }
  async in(port: number, size: AccessWidth): Promise<number> { return this.m.io.read(port, size); }
  async out(port: number, size: AccessWidth, value: number): Promise<void> { this.m.io.write(port, size, value >>> 0); }
  async readBytes(addr: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    this.m.memory.readBytes(addr, out);
    return out;
  }
  async writeBytes(addr: number, bytes: Uint8Array): Promise<void> { this.m.memory.writeBytes(addr, bytes); }
  async fill(addr: number, length: number, byte: number): Promise<void> { this.m.memory.fill(addr, length, byte); }
  onInterrupt(kind: 'msi' | 'intx', vector: number, handler: InterruptHandler): void { this.hub.on(kind, vector, handler); }
  takeInterrupts(): GuestInterrupt[] { return this.hub.take(); }

  async sleep(ns: number): Promise<void> {
    if (this.timeMode === 'virtual') this.m.clock.step(Math.max(0, Math.round(ns)));
    else await new Promise((r) => setTimeout(r, Math.ceil(ns / 1e6)));
  }
  async now(): Promise<number> { return this.m.clock.now(); }

  async close(): Promise<void> {
    this.m.msiSink?.events.off('interrupt', this.onMsi);
    this.m.ioapic?.setIntercept(null);
  }
}
