/**
 * PCI configuration mechanism #1 (ports 0xCF8/0xCFC) and the config-space
 * offsets a firmware and a driver need (PCI Local Bus 3.0 chapter 6,
 * PCI-to-PCI Bridge 1.2 chapter 3, PCIe 4.0 section 7.5.3).
 */
import type { GuestPlatform, AccessWidth } from '../platform.js';

/** CONFIG_ADDRESS port. */
export const CONFIG_ADDRESS_PORT = 0xcf8;
/** CONFIG_DATA port (plus offset & 3 for narrow accesses). */
export const CONFIG_DATA_PORT = 0xcfc;
/** CONFIG_ADDRESS enable bit and field shifts. */
const CFG_ENABLE = 0x8000_0000;
const CFG_BUS_SHIFT = 16;
const CFG_DEVFN_SHIFT = 8;
const CFG_REG_MASK = 0xfc;

/** Type 0 and common header offsets. */
export const PciCfg = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  Revision: 0x08,
  ClassProgIf: 0x09,
  HeaderType: 0x0e,
  Bar0: 0x10,
  CapPtr: 0x34,
  InterruptPin: 0x3d,
  // type 1 (bridge) header
  PrimaryBus: 0x18,
  SecondaryBus: 0x19,
  SubordinateBus: 0x1a,
  IoBase: 0x1c,
  IoLimit: 0x1d,
  MemBase: 0x20,
  MemLimit: 0x22,
  PrefBase: 0x24,
  PrefLimit: 0x26,
  PrefBaseUpper: 0x28,
  PrefLimitUpper: 0x2c,
  BridgeControl: 0x3e,
} as const;

/** Command register bits. */
export const PciCommand = { Io: 1 << 0, Memory: 1 << 1, BusMaster: 1 << 2, IntxDisable: 1 << 10 } as const;
/** Status register bits. */
export const PciStatus = { CapList: 1 << 4 } as const;
/** Header type field. */
export const PciHeader = { TypeMask: 0x7f, MultiFunction: 0x80, Normal: 0, Bridge: 1 } as const;
/** BAR low bits. */
export const PciBar = { Io: 0x1, MemTypeMask: 0x6, Mem64: 0x4, Prefetch: 0x8, MemAddrMask: 0xfffffff0, IoAddrMask: 0xfffffffc } as const;
/** Capability IDs. */
export const PciCapId = { Msi: 0x05, Express: 0x10, MsiX: 0x11 } as const;
/** MSI capability offsets (from the capability start) and control bits. */
export const MsiCap = { Control: 2, AddrLo: 4, AddrHi: 8, Data32: 8, Data64: 12, Enable: 1 << 0, Is64: 1 << 7 } as const;
/** PCIe capability: flags register and device/port types (bits 7:4). */
export const PcieCap = { Flags: 2, TypeShift: 4, TypeMask: 0xf } as const;
/** PCIe device/port types. */
export const PcieType = {
  Endpoint: 0, LegacyEndpoint: 1, RootPort: 4, SwitchUpstream: 5, SwitchDownstream: 6, PcieToPciBridge: 7,
  PciToPcieBridge: 8, RcIntegrated: 9, RcEventCollector: 0xa,
} as const;

/** A bus/device/function address. */
export interface Bdf { readonly bus: number; readonly dev: number; readonly fn: number }

/** 16-bit requester ID of a function. */
export function bdfId(b: Bdf): number {
  return (b.bus << 8) | (b.dev << 3) | b.fn;
}

/** "bb:dd.f" */
export function bdfName(b: Bdf): string {
  const h = (v: number, w: number): string => v.toString(16).padStart(w, '0');
  return `${h(b.bus, 2)}:${h(b.dev, 2)}.${b.fn}`;
}

/** Config-space access through CF8/CFC. */
export class PciConfigAccess {
  constructor(private readonly platform: GuestPlatform) {}

  private async select(b: Bdf, off: number): Promise<void> {
    const addr = CFG_ENABLE | (b.bus << CFG_BUS_SHIFT) | (((b.dev << 3) | b.fn) << CFG_DEVFN_SHIFT) | (off & CFG_REG_MASK);
    await this.platform.out(CONFIG_ADDRESS_PORT, 4, addr >>> 0);
  }

  /** Reads `size` bytes at `off` (naturally aligned). */
  async read(b: Bdf, off: number, size: AccessWidth): Promise<number> {
    await this.select(b, off);
    return this.platform.in(CONFIG_DATA_PORT + (off & 3), size);
  }

  /** Writes `size` bytes at `off` (naturally aligned). */
  async write(b: Bdf, off: number, size: AccessWidth, value: number): Promise<void> {
    await this.select(b, off);
    await this.platform.out(CONFIG_DATA_PORT + (off & 3), size, value);
  }

  /** Walks the capability list; returns id -> offset (first of each id). */
  async capabilities(b: Bdf): Promise<Map<number, number>> {
    const caps = new Map<number, number>();
    if (!((await this.read(b, PciCfg.Status, 2)) & PciStatus.CapList)) return caps;
    let ptr = (await this.read(b, PciCfg.CapPtr, 1)) & 0xfc;
    for (let guard = 0; ptr >= 0x40 && guard < 48; guard++) {
      const hdr = await this.read(b, ptr, 2);
      if (!caps.has(hdr & 0xff)) caps.set(hdr & 0xff, ptr);
      ptr = (hdr >> 8) & 0xfc;
    }
    return caps;
  }
}

/** Programs and enables the MSI capability of `b` (one vector); false when it has none. */
export async function enableMsi(cfg: PciConfigAccess, b: Bdf, address: number, data: number): Promise<boolean> {
  const cap = (await cfg.capabilities(b)).get(PciCapId.Msi);
  if (cap === undefined) return false;
  const ctl = await cfg.read(b, cap + MsiCap.Control, 2);
  await cfg.write(b, cap + MsiCap.AddrLo, 4, address >>> 0);
  if (ctl & MsiCap.Is64) {
    await cfg.write(b, cap + MsiCap.AddrHi, 4, 0);
    await cfg.write(b, cap + MsiCap.Data64, 2, data);
  } else {
    await cfg.write(b, cap + MsiCap.Data32, 2, data);
  }
  await cfg.write(b, cap + MsiCap.Control, 2, ctl | MsiCap.Enable);
  return true;
}
