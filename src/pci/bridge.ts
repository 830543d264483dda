/**
 * PCI-to-PCI bridges (PCI-to-PCI Bridge Architecture 1.2; QEMU pci_bridge.c):
 * a type-1 header with guest-programmed primary/secondary/subordinate bus
 * numbers, I/O, memory and prefetchable memory windows that forward CPU
 * accesses from the parent bus to the secondary bus, bridge control with
 * secondary bus reset, and the secondary PciBus itself.
 */
import { TWO_POW_32 } from '../memory/address.js';
import { AliasRegion, type ContainerRegion } from '../memory/region.js';
import { BridgeReg, PciCommand, PciHeaderType, PciReg, PciStatus, rangesOverlap } from './config.js';
import { PciBus } from './bus.js';
import { PciDevice, type PciDeviceInit } from './device.js';

/** Bridge control bits (PCI-to-PCI Bridge Architecture 1.2 §3.2.5.18). */
export const BridgeControl = {
  Parity: 0x0001,
  Serr: 0x0002,
  Isa: 0x0004,
  Vga: 0x0008,
  Vga16: 0x0010,
  MasterAbort: 0x0020,
  BusReset: 0x0040,
  FastBack: 0x0080,
  Discard: 0x0100,
  SecDiscard: 0x0200,
  DiscardStatus: 0x0400,
  DiscardSerr: 0x0800,
} as const;

/** Window register fields. */
export const BridgeWindow = {
  /** I/O base/limit: address bits 15:12 in bits 7:4; bits 3:0 the addressing type. */
  IoRangeMask: 0xf0,
  IoTypeMask: 0x0f,
  IoType32: 0x01,
  /** Memory base/limit: address bits 31:20 in bits 15:4. */
  MemRangeMask: 0xfff0,
  /** Prefetchable: bits 3:0 = 1 for 64-bit. */
  PrefType64: 0x0001,
  PrefTypeMask: 0x000f,
  IoGranule: 0x1000,
  MemGranule: 0x10_0000,
} as const;

/** Writable bits of bridge control on a conventional bridge (QEMU pci_init_mask_bridge). */
const BRIDGE_CONTROL_WMASK =
  BridgeControl.Parity |
  BridgeControl.Serr |
  BridgeControl.Isa |
  BridgeControl.Vga |
  BridgeControl.Vga16 |
  BridgeControl.MasterAbort |
  BridgeControl.BusReset |
  BridgeControl.FastBack |
  BridgeControl.Discard |
  BridgeControl.SecDiscard |
  BridgeControl.DiscardSerr;

/** Bits that do not apply to PCI Express ports (PCIe Base 4.0 §7.5.1.3.13; QEMU pcie_port_init_reg). */
export const PCIE_PORT_BRIDGE_CONTROL_RO =
  BridgeControl.MasterAbort |
  BridgeControl.FastBack |
  BridgeControl.Discard |
  BridgeControl.SecDiscard |
  BridgeControl.DiscardStatus |
  BridgeControl.DiscardSerr;

/** What a bridge is created with. */
export interface PciBridgeInit extends Omit<PciDeviceInit, 'headerType' | 'classCode'> {
  /** Class code (default 0x060400, PCI-to-PCI bridge). */
  readonly classCode?: number;
  /** Secondary bus is PCI Express (root/switch ports) rather than conventional PCI. */
  readonly secondaryExpress: boolean;
  /** Name of the secondary bus (QEMU: the bridge's id). */
  readonly busName?: string;
}

/** One forwarding window. */
interface Window {
  alias: AliasRegion | null;
  parent: ContainerRegion | null;
}

/** A PCI-to-PCI bridge with its secondary bus. */
export abstract class PciBridge extends PciDevice {
  private secondary: PciBus | null = null;
  private readonly secondaryExpress: boolean;
  private readonly busName: string | undefined;
  private readonly windows: { io: Window; mem: Window; pref: Window } = {
    io: { alias: null, parent: null },
    mem: { alias: null, parent: null },
    pref: { alias: null, parent: null },
  };

  constructor(init: PciBridgeInit) {
    super({ ...init, classCode: init.classCode ?? 0x060400, headerType: PciHeaderType.Bridge });
    this.secondaryExpress = init.secondaryExpress;
    this.busName = init.busName;
    const c = this.config;
    // QEMU pci_bridge_initfn: 66 MHz and fast back-to-back on both sides.
    c.setWord(PciReg.Status, PciStatus.Mhz66 | PciStatus.FastBack);
    c.setWord(BridgeReg.SecStatus, PciStatus.Mhz66 | PciStatus.FastBack);
    // QEMU pci_init_mask_bridge.
    for (let i = 0; i < 4; i++) c.setWmask(BridgeReg.PrimaryBus + i, 1, 0xff);
    c.setWmask(BridgeReg.IoBase, 1, BridgeWindow.IoRangeMask);
    c.setWmask(BridgeReg.IoLimit, 1, BridgeWindow.IoRangeMask);
    c.setWmask(BridgeReg.MemoryBase, 2, BridgeWindow.MemRangeMask);
    c.setWmask(BridgeReg.MemoryLimit, 2, BridgeWindow.MemRangeMask);
    c.setWmask(BridgeReg.PrefMemoryBase, 2, BridgeWindow.MemRangeMask);
    c.setWmask(BridgeReg.PrefMemoryLimit, 2, BridgeWindow.MemRangeMask);
    c.setWmask(BridgeReg.PrefBaseUpper32, 4, 0xffffffff);
    c.setWmask(BridgeReg.PrefLimitUpper32, 4, 0xffffffff);
    c.setWord(BridgeReg.PrefMemoryBase, BridgeWindow.PrefType64);
    c.setWord(BridgeReg.PrefMemoryLimit, BridgeWindow.PrefType64);
    c.setWmask(BridgeReg.BridgeControl, 2, BRIDGE_CONTROL_WMASK);
    c.setW1cmask(BridgeReg.BridgeControl, 2, BridgeControl.DiscardStatus);
  }

  override get isBridge(): boolean {
    return true;
  }

  /** The secondary bus (created when the bridge is plugged). */
  get secondaryBus(): PciBus {
    if (!this.secondary) throw new Error(`pci bridge ${this.typeName}: not plugged yet`);
    return this.secondary;
  }

  /** Called after a device was plugged on the secondary bus (ports update their slot state). */
  secondaryDevicePlugged(): void {}

  /** Marks the ports that must drop the conventional-only bridge control and status bits. */
  protected initPcieBridgeRegs(): void {
    const c = this.config;
    c.setWord(PciReg.Status, c.getWord(PciReg.Status) & PciStatus.CapList);
    c.setWord(BridgeReg.SecStatus, 0);
    c.setWmask(BridgeReg.BridgeControl, 2, c.getWmask(BridgeReg.BridgeControl, 2) & ~PCIE_PORT_BRIDGE_CONTROL_RO);
  }

  /** Closes every window in the reset values (QEMU pci_bridge_disable_base_limit; root ports). */
  protected disableBaseLimit(): void {
    const c = this.config;
    c.setByte(BridgeReg.IoBase, c.getByte(BridgeReg.IoBase) | BridgeWindow.IoRangeMask);
    c.setByte(BridgeReg.IoLimit, c.getByte(BridgeReg.IoLimit) & ~BridgeWindow.IoRangeMask);
    c.setWord(BridgeReg.MemoryBase, c.getWord(BridgeReg.MemoryBase) | BridgeWindow.MemRangeMask);
    c.setWord(BridgeReg.MemoryLimit, c.getWord(BridgeReg.MemoryLimit) & ~BridgeWindow.MemRangeMask);
    c.setWord(BridgeReg.PrefMemoryBase, c.getWord(BridgeReg.PrefMemoryBase) | BridgeWindow.MemRangeMask);
    c.setWord(BridgeReg.PrefMemoryLimit, c.getWord(BridgeReg.PrefMemoryLimit) & ~BridgeWindow.MemRangeMask);
    c.setLong(BridgeReg.PrefBaseUpper32, 0);
    c.setLong(BridgeReg.PrefLimitUpper32, 0);
  }

  /** Creates the secondary bus once the bridge knows its own bus. */
  override realize(): void {
    super.realize();
    const name = this.busName ?? `${this.typeName}.${this.bus.name}.${this.devfn.toString(16)}`;
    this.secondary = new PciBus(name, this.bus.host, this, this.secondaryExpress);
    this.updateWindows();
  }

  /** I/O window [base, limit] (limit < base: closed). */
  ioWindow(): [number, number] {
    const c = this.config;
    let base = (c.getByte(BridgeReg.IoBase) & BridgeWindow.IoRangeMask) << 8;
    let limit = ((c.getByte(BridgeReg.IoLimit) & BridgeWindow.IoRangeMask) << 8) | (BridgeWindow.IoGranule - 1);
    if ((c.getByte(BridgeReg.IoBase) & BridgeWindow.IoTypeMask) === BridgeWindow.IoType32) {
      base += c.getWord(BridgeReg.IoBaseUpper16) * 0x10000;
      limit += c.getWord(BridgeReg.IoLimitUpper16) * 0x10000;
    }
    return [base, limit];
  }

  /** Memory window [base, limit]. */
  memWindow(): [number, number] {
    const c = this.config;
    const base = (c.getWord(BridgeReg.MemoryBase) & BridgeWindow.MemRangeMask) * 0x10000;
    const limit = (c.getWord(BridgeReg.MemoryLimit) & BridgeWindow.MemRangeMask) * 0x10000 + (BridgeWindow.MemGranule - 1);
    return [base, limit];
  }

  /** Prefetchable memory window [base, limit] (64-bit). */
  prefWindow(): [number, number] {
    const c = this.config;
    let base = (c.getWord(BridgeReg.PrefMemoryBase) & BridgeWindow.MemRangeMask) * 0x10000;
    let limit = (c.getWord(BridgeReg.PrefMemoryLimit) & BridgeWindow.MemRangeMask) * 0x10000 + (BridgeWindow.MemGranule - 1);
    if ((c.getWord(BridgeReg.PrefMemoryBase) & BridgeWindow.PrefTypeMask) === BridgeWindow.PrefType64) {
      base += c.getLong(BridgeReg.PrefBaseUpper32) * TWO_POW_32;
      limit += c.getLong(BridgeReg.PrefLimitUpper32) * TWO_POW_32;
    }
    return [base, limit];
  }

  /** Re-creates the forwarding windows from config space (QEMU pci_bridge_update_mappings). */
  updateWindows(): void {
    if (!this.secondary || !this.plugged) return;
    const cmd = this.config.getWord(PciReg.Command);
    const sec = this.secondary;
    this.setWindow(this.windows.io, 'pci_bridge_io', sec.io, this.bus.io, this.ioWindow(), (cmd & PciCommand.Io) !== 0);
    this.setWindow(this.windows.mem, 'pci_bridge_mem', sec.memory, this.bus.memory, this.memWindow(), (cmd & PciCommand.Memory) !== 0);
    this.setWindow(this.windows.pref, 'pci_bridge_pref_mem', sec.memory, this.bus.memory, this.prefWindow(), (cmd & PciCommand.Memory) !== 0);
  }

  private setWindow(
    w: Window,
    name: string,
    target: ContainerRegion,
    parent: ContainerRegion,
    [base, limit]: [number, number],
    enabled: boolean,
  ): void {
    if (w.alias && w.parent) w.parent.remove(w.alias);
    w.alias = null;
    w.parent = null;
    if (!enabled || limit < base || limit > Number.MAX_SAFE_INTEGER) return;
    const alias = new AliasRegion(name, limit + 1 - base, target, base);
    parent.add(alias, base, 1);
    w.alias = alias;
    w.parent = parent;
  }

  /** QEMU pci_bridge_write_config: windows follow command/base/limit; bus reset on a 0->1 edge. */
  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const oldCtl = this.config.getWord(BridgeReg.BridgeControl);
    super.configWrite(offset, size, value);
    if (
      rangesOverlap(offset, size, PciReg.Command, 2) ||
      rangesOverlap(offset, size, BridgeReg.IoBase, 2) ||
      rangesOverlap(offset, size, BridgeReg.MemoryBase, 20) ||
      rangesOverlap(offset, size, BridgeReg.BridgeControl, 2)
    ) {
      this.updateWindows();
    }
    const newCtl = this.config.getWord(BridgeReg.BridgeControl);
    if (~oldCtl & newCtl & BridgeControl.BusReset) this.secondary?.reset();
  }

  /** Snapshot: the forwarding windows follow the loaded config space. */
  protected override afterLoad(): void {
    super.afterLoad();
    this.updateWindows();
  }

  protected override deviceReset(): void {
    this.updateWindows();
    this.secondary?.reset();
  }
}
