/**
 * `info pci` (QEMU hmp_info_pci over qmp_query_pci): every function reachable
 * from the root bus in devfn order, with its class, IDs, INTx pin and line,
 * BARs where they decode now, and for a bridge its bus numbers, forwarding
 * windows and, once the guest gave it a secondary bus number, the functions
 * behind it.  Everything is read from configuration space and the BAR
 * mappings at the moment of the command, as QEMU does.
 */
import type { PciBus } from '../pci/bus.js';
import { BAR_UNMAPPED, type PciDevice } from '../pci/device.js';
import { BridgeReg, PciHeaderType, PciReg } from '../pci/config.js';
import { BridgeWindow } from '../pci/bridge.js';
import { infoPciClass } from './pci-class.js';

/** Header type without the multi-function bit. */
const HEADER_TYPE_MASK = 0x7f;

/** `n` in hex, zero-padded to `width` digits (more digits when it needs them). */
export function hex(n: number | bigint, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** A bridge window as QEMU's pci_bridge_get_base/limit compute it. */
interface Range {
  readonly base: bigint;
  readonly limit: bigint;
}

/** I/O window: bits 15:12 from base/limit, bits 31:16 from the upper registers when that register says 32-bit. */
function ioRange(d: PciDevice): Range {
  const c = d.config;
  const part = (reg: number, upper: number): bigint => {
    const v = c.getByte(reg);
    let a = BigInt((v & BridgeWindow.IoRangeMask) << 8);
    if (v & BridgeWindow.IoType32) a |= BigInt(c.getWord(upper)) << 16n;
    return a;
  };
  return { base: part(BridgeReg.IoBase, BridgeReg.IoBaseUpper16), limit: part(BridgeReg.IoLimit, BridgeReg.IoLimitUpper16) | BigInt(BridgeWindow.IoGranule - 1) };
}

/** Memory window (32-bit). */
function memRange(d: PciDevice): Range {
  const c = d.config;
  const at = (reg: number): bigint => BigInt(c.getWord(reg) & BridgeWindow.MemRangeMask) << 16n;
  return { base: at(BridgeReg.MemoryBase), limit: at(BridgeReg.MemoryLimit) | BigInt(BridgeWindow.MemGranule - 1) };
}

/** Prefetchable window: bits 63:32 from the upper registers when that register says 64-bit. */
function prefRange(d: PciDevice): Range {
  const c = d.config;
  const part = (reg: number, upper: number): bigint => {
    const v = c.getWord(reg);
    let a = BigInt(v & BridgeWindow.MemRangeMask) << 16n;
    if (v & BridgeWindow.PrefType64) a |= BigInt(c.getLong(upper)) << 32n;
    return a;
  };
  return {
    base: part(BridgeReg.PrefMemoryBase, BridgeReg.PrefBaseUpper32),
    limit: part(BridgeReg.PrefMemoryLimit, BridgeReg.PrefLimitUpper32) | BigInt(BridgeWindow.MemGranule - 1),
  };
}

/** True when `n` lies in the bridge's [secondary, subordinate] bus range (QEMU pci_secondary_bus_in_range). */
function inRange(bridge: PciDevice, n: number): boolean {
  const c = bridge.config;
  return n >= c.getByte(BridgeReg.SecondaryBus) && n <= c.getByte(BridgeReg.SubordinateBus);
}

/**
 * The bus numbered `n` at or below `bus` (QEMU pci_find_bus_nr): `bus`
 * itself, else a descent through the first child bus whose number is `n`
 * or whose bridge's range holds it.  A non-root bus whose bridge's range
 * does not hold `n` finds nothing.
 */
export function findBusNr(bus: PciBus, n: number): PciBus | null {
  if (bus.busNumber() === n) return bus;
  if (bus.parent && !inRange(bus.parent, n)) return null;
  for (let b: PciBus | null = bus; b; ) {
    let next: PciBus | null = null;
    for (const child of b.childBuses()) {
      if (child.busNumber() === n) return child;
      if (inRange(child.parent!, n)) {
        next = child;
        break;
      }
    }
    b = next;
  }
  return null;
}

/** The BAR lines of `d` (`      BARn: ...`). */
function barLines(d: PciDevice): string[] {
  const out: string[] = [];
  for (const bar of d.bars) {
    if (!bar) continue;
    const size = bar.region.size;
    const mapped = bar.addr !== BAR_UNMAPPED;
    let text: string;
    if (bar.type === 'io') {
      text = mapped ? `I/O at 0x${hex(bar.addr, 4)} [0x${hex(bar.addr + size - 1, 4)}]` : 'I/O (not mapped)';
    } else {
      const kind = `${bar.type === 'mem64' ? 64 : 32} bit${bar.prefetchable ? ' prefetchable' : ''} memory`;
      text = mapped ? `${kind} at 0x${hex(bar.addr, 8)} [0x${hex(bar.addr + size - 1, 8)}]` : `${kind} (not mapped)`;
    }
    out.push(`      BAR${bar.index}: ${text}`);
  }
  return out;
}

/**
 * Appends the lines of `d` on bus number `busNr` (and of what sits behind
 * it) to `out`.  `seen` holds the buses being listed, so that bus numbers
 * a guest programmed into a loop end the listing instead of recursing.
 */
function deviceLines(d: PciDevice, busNr: number, idOf: (d: PciDevice) => string, out: string[], seen: Set<PciBus>): void {
  const c = d.config;
  const slot = d.devfn >>> 3;
  out.push(`  Bus ${String(busNr).padStart(2)}, device ${String(slot).padStart(3)}, function ${d.devfn & 7}:`);
  out.push(`    ${infoPciClass(c.getWord(PciReg.ClassDevice))}: PCI device ${hex(c.getWord(PciReg.VendorId), 4)}:${hex(c.getWord(PciReg.DeviceId), 4)}`);
  const header = c.getByte(PciReg.HeaderType) & HEADER_TYPE_MASK;
  if (header === PciHeaderType.Normal) {
    out.push(`      PCI subsystem ${hex(c.getWord(PciReg.SubsystemVendorId), 4)}:${hex(c.getWord(PciReg.SubsystemId), 4)}`);
  }
  const pin = c.getByte(PciReg.InterruptPin);
  if (pin) out.push(`      IRQ ${c.getByte(PciReg.InterruptLine)}, pin ${String.fromCharCode(0x40 + pin)}`);
  const bridge = header === PciHeaderType.Bridge;
  if (bridge) {
    const io = ioRange(d);
    const mem = memRange(d);
    const pref = prefRange(d);
    out.push(`      BUS ${c.getByte(BridgeReg.PrimaryBus)}.`);
    out.push(`      secondary bus ${c.getByte(BridgeReg.SecondaryBus)}.`);
    out.push(`      subordinate bus ${c.getByte(BridgeReg.SubordinateBus)}.`);
    out.push(`      IO range [0x${hex(io.base, 4)}, 0x${hex(io.limit, 4)}]`);
    out.push(`      memory range [0x${hex(mem.base, 8)}, 0x${hex(mem.limit, 8)}]`);
    out.push(`      prefetchable memory range [0x${hex(pref.base, 8)}, 0x${hex(pref.limit, 8)}]`);
  }
  out.push(...barLines(d));
  out.push(`      id "${idOf(d)}"`);
  const sec = c.getByte(BridgeReg.SecondaryBus);
  if (bridge && sec !== 0) {
    const child = findBusNr(d.bus, sec);
    if (child) busLines(child, sec, idOf, out, seen);
  }
}

function busLines(bus: PciBus, busNr: number, idOf: (d: PciDevice) => string, out: string[], seen: Set<PciBus>): void {
  if (seen.has(bus)) return;
  seen.add(bus);
  for (const e of bus.devices()) deviceLines(e.device, busNr, idOf, out, seen);
  seen.delete(bus);
}

/**
 * The text of `info pci` for the hierarchy under `rootBus`; `idOf` gives a
 * function's `id=` ('' for none).  Lines end in '\n'.
 */
export function infoPci(rootBus: PciBus, idOf: (d: PciDevice) => string): string {
  const out: string[] = [];
  busLines(rootBus, rootBus.busNumber(), idOf, out, new Set());
  return out.map((l) => l + '\n').join('');
}
