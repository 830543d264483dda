/**
 * A PCI bus (QEMU PCIBus): 256 device/function slots, the memory and I/O
 * containers its devices' BARs map into, INTx routing towards the root and
 * the requester objects the IOMMU keys its per-device state on.
 *
 * The root bus belongs to a host bridge (host.ts); every other bus is the
 * secondary bus of a bridge (bridge.ts) whose bus numbers the guest programs.
 */
import { ContainerRegion } from '../memory/region.js';
import type { AddressSpace } from '../memory/address-space.js';
import type { AtsEndpoint, AtsPort, DmaRequester, DmaTranslator } from '../memory/iommu.js';
import { BridgeReg, PciHeaderType, PciReg } from './config.js';
import type { PciDevice } from './device.js';

/** Slots per bus (devfn = slot << 3 | function). */
export const PCI_SLOT_MAX = 32;
/** Functions per slot. */
export const PCI_FUNC_MAX = 8;
/** devfns per bus. */
export const PCI_DEVFN_MAX = 256;
/** Slot of a devfn. */
export const pciSlot = (devfn: number): number => devfn >>> 3;
/** Function of a devfn. */
export const pciFunc = (devfn: number): number => devfn & 7;
/** devfn of (slot, function). */
export const pciDevfn = (slot: number, fn: number): number => ((slot & 0x1f) << 3) | (fn & 7);

/** Size of a bus's memory container (QEMU: UINT64_MAX). */
const BUS_MEMORY_SIZE = 2 ** 64;
/** Size of a bus's I/O container. */
const BUS_IO_SIZE = 0x10000;

/** What every bus needs from the host bridge at the root of its hierarchy. */
export interface PciBusHost {
  /** System memory as device DMA reaches it after translation. */
  readonly dmaMemory: AddressSpace;
  /** Bumped whenever the IOMMU changes; devices re-fetch translators when it moves. */
  readonly iommuGeneration: number;
  /** The IOMMU translator for a requester and PASID (NO_PASID: none), or null without an IOMMU. */
  translatorFor(requester: DmaRequester, pasid?: number): DmaTranslator | null;
  /** The IOMMU's ATS/PRI port for a requester (absent or null: no IOMMU or no ATS). */
  atsPort?(requester: DmaRequester, endpoint: AtsEndpoint): AtsPort | null;
  /** Root-bus INTx mapping: (devfn, pin 0..3) to a root IRQ index (q35: PIRQ A-H). */
  mapRootIrq(devfn: number, pin: number): number;
  /** A root IRQ changed level (OR of every device routed to it). */
  setRootIrq(irq: number, level: boolean): void;
  /** Number of root IRQs. */
  readonly rootIrqCount: number;
  /** When true, DMA also needs the bus-master bit of every bridge above the device (default false, as QEMU 7.2). */
  readonly bridgeMasterGating?: boolean;
}

/** Options for plugging a device. */
export interface PlugOptions {
  /** devfn to use (QEMU addr=slot.fn); omitted: first free slot, function 0. */
  readonly devfn?: number;
  /** Sets the multi-function bit in the header type. */
  readonly multifunction?: boolean;
  /** The device's id= (only for error messages). */
  readonly id?: string;
}

/** One device on a bus, for enumeration (e.g. DMAR device scopes). */
export interface PciBusEntry {
  readonly devfn: number;
  readonly device: PciDevice;
  /** Type-1 header (DMAR scope type 2, PCI sub-hierarchy). */
  readonly isBridge: boolean;
}

/** A requester: a (bus, devfn) pair whose bus number is read when needed. */
class BusRequester implements DmaRequester {
  readonly key: object = this;
  constructor(
    private readonly bus: PciBus,
    readonly devfn: number,
  ) {}
  busNumber(): number {
    return this.bus.busNumber();
  }
}

/** A PCI bus. */
export class PciBus {
  /** Where BARs of devices on this bus map. */
  readonly memory: ContainerRegion;
  /** Where I/O BARs of devices on this bus map. */
  readonly io: ContainerRegion;
  private readonly slots: (PciDevice | undefined)[] = new Array(PCI_DEVFN_MAX);
  private readonly multifunction = new Uint8Array(PCI_DEVFN_MAX);
  private readonly requesters: (BusRequester | undefined)[] = new Array(PCI_DEVFN_MAX);
  private readonly ids: (string | undefined)[] = new Array(PCI_DEVFN_MAX);
  /** Secondary buses of bridges plugged here (kept sorted by devfn). */
  private readonly children: PciBus[] = [];
  /** Per root IRQ, how many device pins assert it (root bus only). */
  private readonly irqCount: Int32Array;

  constructor(
    readonly name: string,
    readonly host: PciBusHost,
    /** The bridge whose secondary bus this is; null for a root bus. */
    readonly parent: PciDevice | null,
    /** PCI Express bus (root complex, root port, switch port) or conventional PCI. */
    readonly isExpress: boolean,
    containers?: { memory: ContainerRegion; io: ContainerRegion },
  ) {
    this.memory = containers?.memory ?? new ContainerRegion(`${name}-mem`, BUS_MEMORY_SIZE);
    this.io = containers?.io ?? new ContainerRegion(`${name}-io`, BUS_IO_SIZE);
    this.irqCount = new Int32Array(parent ? 0 : host.rootIrqCount);
  }

  /** True for the root bus of a host bridge. */
  get isRoot(): boolean {
    return this.parent === null;
  }

  /** Current bus number: 0 for the root, else the bridge's secondary bus register. */
  busNumber(): number {
    return this.parent ? this.parent.config.getByte(BridgeReg.SecondaryBus) : 0;
  }

  /** Subordinate bus number (root: 255). */
  subordinate(): number {
    return this.parent ? this.parent.config.getByte(BridgeReg.SubordinateBus) : 0xff;
  }

  /** The device at devfn, if any. */
  device(devfn: number): PciDevice | undefined {
    return devfn >= 0 && devfn < PCI_DEVFN_MAX ? this.slots[devfn] : undefined;
  }

  /** Devices on this bus in devfn order. */
  devices(): PciBusEntry[] {
    const out: PciBusEntry[] = [];
    for (let devfn = 0; devfn < PCI_DEVFN_MAX; devfn++) {
      const d = this.slots[devfn];
      if (d) out.push({ devfn, device: d, isBridge: d.isBridge });
    }
    return out;
  }

  /** Secondary buses of the bridges on this bus, in devfn order. */
  childBuses(): readonly PciBus[] {
    return this.children;
  }

  /** First devfn with a free slot (function 0, whole slot empty), or -1. */
  firstFreeDevfn(): number {
    for (let devfn = 0; devfn < PCI_DEVFN_MAX; devfn += PCI_FUNC_MAX) {
      if (!this.slots[devfn]) return devfn;
    }
    return -1;
  }

  /**
   * Plugs `device` (QEMU do_pci_register_device + pci_init_multifunction),
   * then realizes it and records its reset state.  Throws QEMU-style errors
   * for configuration mistakes.
   */
  plug(device: PciDevice, options: PlugOptions = {}): number {
    let devfn = options.devfn ?? -1;
    if (devfn < 0) {
      devfn = this.firstFreeDevfn();
      if (devfn < 0) throw new Error(`PCI: no slot/function available for ${device.typeName}, all in use or reserved`);
    } else if (!Number.isInteger(devfn) || devfn >= PCI_DEVFN_MAX) {
      throw new Error(`PCI: devfn ${devfn} out of range for ${device.typeName}`);
    } else if (this.slots[devfn]) {
      const other = this.slots[devfn]!;
      throw new Error(
        `PCI: slot ${pciSlot(devfn)} function ${pciFunc(devfn)} not available for ${device.typeName}, in use by ${other.typeName},id=${this.ids[devfn] ?? '(null)'}`,
      );
    }
    const slot = pciSlot(devfn);
    const mf = options.multifunction === true;
    if (pciFunc(devfn)) {
      const f0 = this.slots[pciDevfn(slot, 0)];
      if (f0 && !this.multifunction[pciDevfn(slot, 0)]) {
        throw new Error(`PCI: single function device can't be populated in function ${slot.toString(16)}.${pciFunc(devfn).toString(16)}`);
      }
    } else if (!mf) {
      for (let fn = 1; fn < PCI_FUNC_MAX; fn++) {
        if (this.slots[pciDevfn(slot, fn)]) {
          throw new Error(`PCI: ${slot.toString(16)}.0 indicates single function, but ${slot.toString(16)}.${fn.toString(16)} is already populated.`);
        }
      }
    }
    if (mf) {
      const c = device.config;
      c.setByte(PciReg.HeaderType, c.getByte(PciReg.HeaderType) | PciHeaderType.MultiFunction);
    }
    this.slots[devfn] = device;
    this.multifunction[devfn] = mf ? 1 : 0;
    this.ids[devfn] = options.id;
    device.attach(this, devfn);
    device.realize();
    device.config.snapshotReset();
    const sec = device.isBridge ? (device as { secondaryBus?: PciBus }).secondaryBus : undefined;
    if (sec) {
      this.children.push(sec);
      this.children.sort((a, b) => a.parent!.devfn - b.parent!.devfn);
    }
    device.updateMappings();
    (this.parent as { secondaryDevicePlugged?: () => void } | null)?.secondaryDevicePlugged?.();
    return devfn;
  }

  /** The requester object for devfn on this bus (stable: the IOMMU keys caches on it). */
  requester(devfn: number): DmaRequester {
    const i = devfn & 0xff;
    let r = this.requesters[i];
    if (!r) this.requesters[i] = r = new BusRequester(this, i);
    return r;
  }

  /**
   * Bus-master enable of every bridge between this bus and the root, when
   * the host gates on it (PCIe spec behaviour); always true otherwise, as in
   * QEMU 7.2 where only the device's own bit gates its DMA.
   */
  upstreamMasterEnabled(): boolean {
    if (!this.host.bridgeMasterGating) return true;
    for (let bus: PciBus = this; bus.parent; bus = bus.parent.bus) {
      if (!bus.parent.busMasterEnabled()) return false;
    }
    return true;
  }

  /**
   * A device pin (0 = INTA) changed by `change` (+1 asserted, -1 deasserted):
   * swizzle through bridges up to the root, then count per root IRQ (QEMU
   * pci_change_irq_level).
   */
  changeIrqLevel(device: PciDevice, pin: number, change: number): void {
    let dev = device;
    let bus: PciBus = this;
    while (bus.parent) {
      pin = (pin + pciSlot(dev.devfn)) % 4;
      dev = bus.parent;
      bus = dev.bus;
    }
    const irq = bus.host.mapRootIrq(dev.devfn, pin);
    if (irq < 0 || irq >= bus.irqCount.length) return;
    bus.irqCount[irq] += change;
    bus.host.setRootIrq(irq, bus.irqCount[irq]! !== 0);
  }

  /** Current level of root IRQ `irq` (root bus only; QEMU pci_bus_get_irq_level). */
  irqLevel(irq: number): boolean {
    return (this.irqCount[irq] ?? 0) !== 0;
  }

  /**
   * The bus with number `busNumber` in this hierarchy (QEMU
   * pci_find_bus_nr): this bus, or a bridge's secondary bus whose
   * [secondary, subordinate] range contains it.
   */
  findBus(busNumber: number): PciBus | null {
    if (this.busNumber() === busNumber) return this;
    for (const child of this.childBuses()) {
      const sec = child.busNumber();
      const sub = child.subordinate();
      if (busNumber >= sec && busNumber <= sub) return child.findBus(busNumber);
    }
    return null;
  }

  /** Snapshot: per root IRQ, how many device pins assert it (root bus only; empty elsewhere). */
  saveIrqCounts(): number[] {
    return Array.from(this.irqCount);
  }

  /** Snapshot: sets the counts saveIrqCounts returned (no line is driven: the IOAPIC has its own state). */
  loadIrqCounts(counts: readonly number[]): void {
    if (counts.length !== this.irqCount.length) throw new RangeError(`pci bus ${this.name}: ${counts.length} IRQ counts for ${this.irqCount.length} IRQs`);
    this.irqCount.set(counts);
  }

  /** Resets every device on this bus (and below, through bridge resets). */
  reset(): void {
    for (const d of this.slots) if (d) d.reset();
  }
}
