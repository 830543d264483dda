/**
 * A thin PCI layer over LibQtest in the style of libqos's QPCIBus /
 * QPCIDevice for the PC: configuration space through CONFIG_ADDRESS (0xCF8)
 * and CONFIG_DATA (0xCFC + byte lane), device lookup by devfn or by
 * vendor/device ID on bus 0, enabling decoding and bus mastering, and BAR
 * mapping (size the BAR with all-ones, place it at the next aligned address
 * of the memory hole from 0xE0000000 or the I/O hole from 0xC000).
 */
import { cf8 } from '../support/pci-host.js';
import type { LibQtest } from './libqtest.js';

/** Configuration header offsets and bits (PCI Local Bus 3.0, 6.1-6.2). */
export const PciCfg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  BAR0: 0x10,
} as const;

/** COMMAND register bits. */
export const PciCommand = {
  IO: 0x1,
  MEMORY: 0x2,
  MASTER: 0x4,
} as const;

/** BAR bits: I/O space indicator, 64-bit memory type. */
const BAR_IO = 0x1;
const BAR_MEM_TYPE_64 = 0x4;
const BAR_MEM_MASK = 0xffff_fff0;
const BAR_IO_MASK = 0xffff_fffc;

/** Where libqos's PC bus places BARs. */
export const PCI_MEM_HOLE_START = 0xe000_0000;
export const PCI_IO_HOLE_START = 0xc000;

/** A PCI bus (segment 0) reached through CF8/CFC of one LibQtest. */
export class QPciBus {
  private memNext = PCI_MEM_HOLE_START;
  private ioNext = PCI_IO_HOLE_START;

  constructor(readonly qts: LibQtest) {}

  private async select(devfn: number, reg: number, bus: number): Promise<void> {
    await this.qts.outl(0xcf8, cf8(bus, devfn, reg));
  }

  async configReadb(devfn: number, reg: number, bus = 0): Promise<number> {
    await this.select(devfn, reg, bus);
    return this.qts.inb(0xcfc + (reg & 3));
  }
  async configReadw(devfn: number, reg: number, bus = 0): Promise<number> {
    await this.select(devfn, reg, bus);
    return this.qts.inw(0xcfc + (reg & 2));
  }
  async configReadl(devfn: number, reg: number, bus = 0): Promise<number> {
    await this.select(devfn, reg, bus);
    return this.qts.inl(0xcfc);
  }
  async configWriteb(devfn: number, reg: number, v: number, bus = 0): Promise<void> {
    await this.select(devfn, reg, bus);
    await this.qts.outb(0xcfc + (reg & 3), v);
  }
  async configWritew(devfn: number, reg: number, v: number, bus = 0): Promise<void> {
    await this.select(devfn, reg, bus);
    await this.qts.outw(0xcfc + (reg & 2), v);
  }
  async configWritel(devfn: number, reg: number, v: number, bus = 0): Promise<void> {
    await this.select(devfn, reg, bus);
    await this.qts.outl(0xcfc, v);
  }

  /** The function at `devfn` of bus 0, or null when nothing answers there. */
  async device(devfn: number): Promise<QPciDevice | null> {
    return (await this.configReadw(devfn, PciCfg.VENDOR_ID)) === 0xffff ? null : new QPciDevice(this, devfn);
  }

  /** The first function on bus 0 with this vendor and device ID, or null. */
  async find(vendor: number, device: number): Promise<QPciDevice | null> {
    const want = ((device << 16) | vendor) >>> 0;
    for (let devfn = 0; devfn < 256; devfn++) {
      if ((await this.configReadl(devfn, PciCfg.VENDOR_ID)) === want) return new QPciDevice(this, devfn);
    }
    return null;
  }

  /** The next free `size`-aligned range of the memory (or I/O) hole. */
  allocate(size: number, io: boolean): number {
    const at = Math.ceil((io ? this.ioNext : this.memNext) / size) * size;
    if (io) this.ioNext = at + size;
    else this.memNext = at + size;
    return at;
  }
}

/** A mapped BAR: where it is and how large. */
export interface QPciBar {
  readonly addr: number;
  readonly size: number;
  readonly io: boolean;
}

/** One PCI function. */
export class QPciDevice {
  constructor(
    readonly bus: QPciBus,
    readonly devfn: number,
  ) {}

  /** Turns on I/O and memory decoding and bus mastering. */
  async enable(): Promise<void> {
    const cmd = await this.bus.configReadw(this.devfn, PciCfg.COMMAND);
    await this.bus.configWritew(this.devfn, PciCfg.COMMAND, cmd | PciCommand.IO | PciCommand.MEMORY | PciCommand.MASTER);
  }

  /** Sizes BAR `n` and maps it at the next free address of its hole; throws when the BAR is not implemented. */
  async iomap(n: number): Promise<QPciBar> {
    const reg = PciCfg.BAR0 + 4 * n;
    await this.bus.configWritel(this.devfn, reg, 0xffff_ffff);
    const probe = await this.bus.configReadl(this.devfn, reg);
    if (probe === 0) throw new Error(`BAR${n} of ${this.devfn.toString(16)} is not implemented`);
    const io = (probe & BAR_IO) !== 0;
    const size = (~(probe & (io ? BAR_IO_MASK : BAR_MEM_MASK)) + 1) >>> 0;
    const is64 = !io && (probe & 0x6) === BAR_MEM_TYPE_64;
    const addr = this.bus.allocate(size, io);
    await this.bus.configWritel(this.devfn, reg, addr);
    if (is64) await this.bus.configWritel(this.devfn, reg + 4, 0);
    return { addr, size, io };
  }
}
