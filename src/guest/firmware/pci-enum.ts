/**
 * BIOS-style PCI enumeration: depth-first scan from bus 0, bus numbers
 * assigned to bridges as they are found (primary/secondary/subordinate),
 * BARs sized (write all-ones) and assigned from an MMIO window, bridge
 * memory windows programmed to cover their children, then memory/IO decode
 * and bus mastering enabled.
 */
import type { GuestPlatform } from '../platform.js';
import {
  PciCapId, PciBar, PciCfg, PciCommand, PciConfigAccess, PciHeader, PcieCap, PcieType, bdfName, type Bdf,
} from './pci-config.js';

/** One sized (and possibly assigned) BAR. */
export interface PciBarInfo {
  readonly index: number;
  readonly kind: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly size: number;
  address: number;
}

/** One function found by the scan. */
export interface PciFunction extends Bdf {
  readonly name: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly headerType: number;
  readonly isBridge: boolean;
  readonly caps: ReadonlyMap<number, number>;
  /** PCIe device/port type, undefined for conventional PCI. */
  readonly pcieType: number | undefined;
  readonly bars: PciBarInfo[];
  /** The bridge this function sits behind (undefined on bus 0). */
  readonly parent: PciFunction | undefined;
  secondaryBus: number;
  subordinateBus: number;
  readonly children: PciFunction[];
}

/** Where BARs go. */
export interface PciWindows {
  readonly memBase: number;
  readonly memLimit: number;
  readonly ioBase: number;
  readonly ioLimit: number;
}

/** Default windows: MMIO 0xE0000000..0xFE000000, I/O 0xC000..0xFFFF. */
export const DEFAULT_WINDOWS: PciWindows = { memBase: 0xe000_0000, memLimit: 0xfe00_0000, ioBase: 0xc000, ioLimit: 0x1_0000 };

/** Bridge windows are 1 MiB (memory) granular. */
const BRIDGE_MEM_ALIGN = 0x10_0000;
const BRIDGE_MEM_SHIFT = 16;
/** Closed windows: base above limit. */
const CLOSED_MEM_BASE = 0xfff0;
const CLOSED_IO_BASE = 0xf0;
const MAX_DEVICES = 32;
const MAX_FUNCTIONS = 8;
const BAR_COUNT_NORMAL = 6;
const BAR_COUNT_BRIDGE = 2;
const ABSENT_VENDOR = 0xffff;
const MAX_BUS = 0xff;

/** The whole scan. */
export interface PciTopology {
  readonly functions: readonly PciFunction[];
  readonly roots: readonly PciFunction[];
  find(vendorId: number, deviceId: number): PciFunction[];
  at(bus: number, dev: number, fn: number): PciFunction | undefined;
}

/** Enumerates and configures every function below bus 0. */
export async function enumeratePci(platform: GuestPlatform, windows: PciWindows = DEFAULT_WINDOWS): Promise<PciTopology> {
  const cfg = new PciConfigAccess(platform);
  const all: PciFunction[] = [];
  let nextBus = 1;
  let mem = windows.memBase;
  let io = windows.ioBase;

  async function probe(b: Bdf, parent: PciFunction | undefined): Promise<PciFunction | undefined> {
    const id = await cfg.read(b, PciCfg.VendorId, 4);
    if ((id & 0xffff) === ABSENT_VENDOR) return undefined;
    const headerType = await cfg.read(b, PciCfg.HeaderType, 1);
    const classCode = (await cfg.read(b, PciCfg.Revision, 4)) >>> 8;
    const caps = await cfg.capabilities(b);
    const exp = caps.get(PciCapId.Express);
    const pcieType = exp === undefined ? undefined : ((await cfg.read(b, exp + PcieCap.Flags, 2)) >> PcieCap.TypeShift) & PcieCap.TypeMask;
    const isBridge = (headerType & PciHeader.TypeMask) === PciHeader.Bridge;
    const f: PciFunction = {
      ...b, name: bdfName(b), vendorId: id & 0xffff, deviceId: id >>> 16, classCode, headerType, isBridge, caps, pcieType,
      bars: await sizeBars(cfg, b, isBridge ? BAR_COUNT_BRIDGE : BAR_COUNT_NORMAL), parent,
      secondaryBus: 0, subordinateBus: 0, children: [],
    };
    all.push(f);
    return f;
  }

  async function scanBus(bus: number, parent: PciFunction | undefined): Promise<PciFunction[]> {
    const found: PciFunction[] = [];
    for (let dev = 0; dev < MAX_DEVICES; dev++) {
      const f0 = await probe({ bus, dev, fn: 0 }, parent);
      if (!f0) continue;
      found.push(f0);
      if (f0.headerType & PciHeader.MultiFunction) {
        for (let fn = 1; fn < MAX_FUNCTIONS; fn++) {
          const f = await probe({ bus, dev, fn }, parent);
          if (f) found.push(f);
        }
      }
    }
    for (const f of found) {
      await assignBars(f);
      if (f.isBridge) await setupBridge(f);
      await enable(f);
    }
    return found;
  }

  async function assignBars(f: PciFunction): Promise<void> {
    for (const bar of f.bars) {
      const off = PciCfg.Bar0 + 4 * bar.index;
      if (bar.kind === 'io') {
        if (f.bus !== 0) continue; // I/O behind bridges is not routed (windows closed)
        const a = Math.ceil(io / bar.size) * bar.size;
        if (a + bar.size > windows.ioLimit) continue;
        io = a + bar.size;
        bar.address = a;
        await cfg.write(f, off, 4, a);
      } else {
        const a = Math.ceil(mem / bar.size) * bar.size;
        if (a + bar.size > windows.memLimit) continue;
        mem = a + bar.size;
        bar.address = a;
        await cfg.write(f, off, 4, a >>> 0);
        if (bar.kind === 'mem64') await cfg.write(f, off + 4, 4, 0);
      }
    }
  }

  async function setupBridge(f: PciFunction): Promise<void> {
    const secondary = nextBus++;
    f.secondaryBus = secondary;
    await cfg.write(f, PciCfg.PrimaryBus, 1, f.bus);
    await cfg.write(f, PciCfg.SecondaryBus, 1, secondary);
    await cfg.write(f, PciCfg.SubordinateBus, 1, MAX_BUS);
    mem = Math.ceil(mem / BRIDGE_MEM_ALIGN) * BRIDGE_MEM_ALIGN;
    const start = mem;
    f.children.push(...(await scanBus(secondary, f)));
    mem = Math.ceil(mem / BRIDGE_MEM_ALIGN) * BRIDGE_MEM_ALIGN;
    f.subordinateBus = nextBus - 1;
    await cfg.write(f, PciCfg.SubordinateBus, 1, f.subordinateBus);
    if (mem > start) {
      await cfg.write(f, PciCfg.MemBase, 2, (start >>> BRIDGE_MEM_SHIFT) & 0xfff0);
      await cfg.write(f, PciCfg.MemLimit, 2, ((mem - 1) >>> BRIDGE_MEM_SHIFT) & 0xfff0);
    } else {
      await cfg.write(f, PciCfg.MemBase, 2, CLOSED_MEM_BASE);
      await cfg.write(f, PciCfg.MemLimit, 2, 0);
    }
    await cfg.write(f, PciCfg.PrefBase, 2, CLOSED_MEM_BASE);
    await cfg.write(f, PciCfg.PrefLimit, 2, 0);
    await cfg.write(f, PciCfg.PrefBaseUpper, 4, 0);
    await cfg.write(f, PciCfg.PrefLimitUpper, 4, 0);
    await cfg.write(f, PciCfg.IoBase, 1, CLOSED_IO_BASE);
    await cfg.write(f, PciCfg.IoLimit, 1, 0);
  }

  async function enable(f: PciFunction): Promise<void> {
    let cmd = (await cfg.read(f, PciCfg.Command, 2)) | PciCommand.BusMaster;
    if (f.isBridge || f.bars.some((b) => b.kind !== 'io' && b.address)) cmd |= PciCommand.Memory;
    if (f.bars.some((b) => b.kind === 'io' && b.address)) cmd |= PciCommand.Io;
    await cfg.write(f, PciCfg.Command, 2, cmd);
  }

  const roots = await scanBus(0, undefined);
  return {
    functions: all,
    roots,
    find: (v, d) => all.filter((f) => f.vendorId === v && f.deviceId === d),
    at: (bus, dev, fn) => all.find((f) => f.bus === bus && f.dev === dev && f.fn === fn),
  };
}

/** Sizes the BARs of one function (restoring their values). */
async function sizeBars(cfg: PciConfigAccess, b: Bdf, count: number): Promise<PciBarInfo[]> {
  const bars: PciBarInfo[] = [];
  for (let i = 0; i < count; i++) {
    const off = PciCfg.Bar0 + 4 * i;
    const orig = await cfg.read(b, off, 4);
    await cfg.write(b, off, 4, 0xffff_ffff);
    const probe = await cfg.read(b, off, 4);
    await cfg.write(b, off, 4, orig);
    if (probe === 0) continue;
    if (probe & PciBar.Io) {
      const size = (~(probe & PciBar.IoAddrMask) & 0xffff) + 1;
      bars.push({ index: i, kind: 'io', prefetchable: false, size, address: 0 });
      continue;
    }
    const is64 = (probe & PciBar.MemTypeMask) === PciBar.Mem64;
    const size = (~(probe & PciBar.MemAddrMask) >>> 0) + 1;
    bars.push({ index: i, kind: is64 ? 'mem64' : 'mem32', prefetchable: (probe & PciBar.Prefetch) !== 0, size, address: 0 });
    if (is64) i++;
  }
  return bars;
}

/** True for a PCIe-to-PCI bridge (its secondary bus is conventional PCI). */
export function isPcieToPciBridge(f: PciFunction): boolean {
  return f.isBridge && f.pcieType === PcieType.PcieToPciBridge;
}
