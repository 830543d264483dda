/**
 * Capabilities of the bridges and ports: the PCI Express capability
 * (PCIe Base 4.0 §7.5.3), bridge subsystem ID, slot ID, SHPC, power
 * management and a config-only MSI-X capability.  Values and write masks
 * follow what QEMU 7.2 shows for its ports (probed over CF8/CFC).
 */
import { rangesOverlap } from './config.js';
import type { PciDevice } from './device.js';
import { MSI_CAP_ID } from './msi.js';

/** Capability IDs (PCI Code and ID Assignment 1.11 §2). */
export const CapId = {
  PowerManagement: 0x01,
  SlotId: 0x04,
  Msi: MSI_CAP_ID,
  Ssvid: 0x0d,
  Shpc: 0x0c,
  Express: 0x10,
  Msix: 0x11,
} as const;

/** PCIe device/port types (capabilities register bits 7:4). */
export const PcieType = {
  Endpoint: 0x0,
  RootPort: 0x4,
  Upstream: 0x5,
  Downstream: 0x6,
  PcieToPciBridge: 0x7,
} as const;

/** Register offsets inside the PCIe capability. */
export const ExpReg = {
  Flags: 0x02,
  DevCap: 0x04,
  DevCtl: 0x08,
  DevSta: 0x0a,
  LinkCap: 0x0c,
  LinkCtl: 0x10,
  LinkSta: 0x12,
  SlotCap: 0x14,
  SlotCtl: 0x18,
  SlotSta: 0x1a,
  RootCtl: 0x1c,
  DevCap2: 0x24,
  DevCtl2: 0x28,
  LinkCap2: 0x2c,
  LinkCtl2: 0x30,
} as const;

/** Size of a version-2 PCIe capability. */
export const PCIE_CAP_V2_SIZE = 0x3c;
/** Capability version 2 in the flags register. */
const EXP_FLAGS_VERSION2 = 0x0002;
/** Device/port type field of the flags register (bits 7:4). */
const EXP_FLAGS_TYPE_MASK = 0x00f0;
const EXP_FLAGS_TYPE_SHIFT = 4;
/** Slot implemented (flags bit 8). */
const EXP_FLAGS_SLOT = 0x0100;

/** Slot control / status bits (PCIe Base 4.0 §7.5.3.10-11). */
export const SlotCtl = {
  /** Attention/power indicators off, power controller off: the reset value QEMU uses. */
  Reset: 0x07c0,
  /** Writable bits as QEMU 7.2 shows them. */
  Wmask: 0x07f9,
  /** Electromechanical interlock control (write-only, toggles EIS). */
  Eic: 0x0800,
} as const;

/** Slot control of a populated slot: power indicator on, power controller on (QEMU pcie_cap_slot_reset). */
export const SLOT_CTL_POPULATED = 0x01c0;
/** Slot control fields the populated/empty state decides: power indicator and power controller. */
const SLOT_CTL_POWER_FIELDS = 0x0700;

/** Slot status bits. */
export const SlotSta = {
  CommandCompleted: 0x0010,
  Eis: 0x0080,
  /** Write-1-to-clear: ABP, PFD, MRLSC, PDC, CC, DLLSC. */
  W1c: 0x011f,
} as const;

/** Slot capabilities of QEMU's hot-plug slots (ABP, PCP, AIP, PIP, HPS, HPC, EIP); slot number in bits 31:19. */
const SLOT_CAP_BASE = 0x0002_007b;
const SLOT_CAP_NUMBER_SHIFT = 19;
/** Port number in link capabilities bits 31:24. */
const LINK_CAP_PORT_SHIFT = 24;

/** The description of one PCIe capability. */
export interface PcieCapSpec {
  readonly type: number;
  readonly devCap: number;
  readonly devCtlWmask: number;
  readonly linkCap: number;
  readonly linkSta: number;
  readonly port?: number;
  /** Slot number (root and downstream ports have a slot). */
  readonly slot?: number;
  readonly rootCtlWmask?: number;
  readonly devCap2: number;
  readonly devCtl2Wmask: number;
  readonly linkCap2?: number;
  readonly linkCtl2?: number;
}

/** PCIe device/port type of `dev` from its PCIe capability (a `PcieType`), or -1 without one. */
export function pcieType(dev: PciDevice): number {
  if (!dev.isExpress) return -1;
  const cap = dev.findCapability(CapId.Express);
  if (!cap) return -1;
  return (dev.config.getWord(cap + ExpReg.Flags) & EXP_FLAGS_TYPE_MASK) >>> EXP_FLAGS_TYPE_SHIFT;
}

/** Adds a version-2 PCIe capability at `offset`; returns the offset. */
export function addPcieCap(dev: PciDevice, offset: number, spec: PcieCapSpec): number {
  const at = dev.addCapability(CapId.Express, offset, PCIE_CAP_V2_SIZE);
  const c = dev.config;
  const hasSlot = spec.slot !== undefined;
  c.setWord(at + ExpReg.Flags, EXP_FLAGS_VERSION2 | (spec.type << EXP_FLAGS_TYPE_SHIFT) | (hasSlot ? EXP_FLAGS_SLOT : 0));
  c.setLong(at + ExpReg.DevCap, spec.devCap);
  c.setWmask(at + ExpReg.DevCtl, 2, spec.devCtlWmask);
  c.setLong(at + ExpReg.LinkCap, (spec.linkCap | ((spec.port ?? 0) << LINK_CAP_PORT_SHIFT)) >>> 0);
  c.setWord(at + ExpReg.LinkSta, spec.linkSta);
  if (hasSlot) {
    c.setLong(at + ExpReg.SlotCap, (SLOT_CAP_BASE | (spec.slot! << SLOT_CAP_NUMBER_SHIFT)) >>> 0);
    c.setWord(at + ExpReg.SlotCtl, SlotCtl.Reset);
    c.setWmask(at + ExpReg.SlotCtl, 2, SlotCtl.Wmask);
    c.setW1cmask(at + ExpReg.SlotSta, 2, SlotSta.W1c);
  }
  if (spec.rootCtlWmask) c.setWmask(at + ExpReg.RootCtl, 2, spec.rootCtlWmask);
  c.setLong(at + ExpReg.DevCap2, spec.devCap2);
  c.setWmask(at + ExpReg.DevCtl2, 2, spec.devCtl2Wmask);
  c.setLong(at + ExpReg.LinkCap2, spec.linkCap2 ?? 0);
  c.setWord(at + ExpReg.LinkCtl2, spec.linkCtl2 ?? 0);
  return at;
}

/**
 * After a config write touching slot control (QEMU
 * pcie_cap_slot_write_config): the command completes at once, and writing
 * EIC toggles the interlock status.
 */
export function slotControlWritten(dev: PciDevice, cap: number, offset: number, size: number, value: number): void {
  const ctl = cap + ExpReg.SlotCtl;
  if (!rangesOverlap(offset, size, ctl, 2)) return;
  const c = dev.config;
  let sta = c.getWord(cap + ExpReg.SlotSta) | SlotSta.CommandCompleted;
  // Bits of the written value that land in slot control.
  const shift = 8 * (ctl - offset);
  const written = shift >= 0 ? (value >>> shift) & 0xffff : (value << -shift) & 0xffff;
  if (written & SlotCtl.Eic) sta ^= SlotSta.Eis;
  c.setWord(cap + ExpReg.SlotSta, sta);
}

/** Sets slot power as QEMU does at reset: on when the slot is populated, off when empty. */
export function resetSlotPower(dev: PciDevice, cap: number, populated: boolean): void {
  const c = dev.config;
  const ctl = c.getWord(cap + ExpReg.SlotCtl) & ~SLOT_CTL_POWER_FIELDS;
  c.setWord(cap + ExpReg.SlotCtl, ctl | ((populated ? SLOT_CTL_POPULATED : SlotCtl.Reset) & SLOT_CTL_POWER_FIELDS));
}

/** Link status fields: current link speed (3:0) and negotiated width (9:4). */
const LNKSTA_SPEED = 0x000f;
const LNKSTA_WIDTH = 0x03f0;

/**
 * A downstream port's link status follows the PCIe function at devfn 0
 * below it, capped by the port's own link capabilities (QEMU
 * pcie_sync_bridge_lnk, run when the guest reads link status).
 */
export function syncLinkStatus(port: PciDevice, cap: number, target: PciDevice | undefined): void {
  const c = port.config;
  const lnkcap = c.getWord(cap + ExpReg.LinkCap);
  const targetCap = target ? target.findCapability(CapId.Express) : 0;
  let lnksta = lnkcap;
  if (target && targetCap) {
    lnksta = target.config.getWord(targetCap + ExpReg.LinkSta);
    if ((lnksta & LNKSTA_WIDTH) > (lnkcap & LNKSTA_WIDTH)) lnksta = (lnksta & ~LNKSTA_WIDTH) | (lnkcap & LNKSTA_WIDTH);
    if ((lnksta & LNKSTA_SPEED) > (lnkcap & LNKSTA_SPEED)) lnksta = (lnksta & ~LNKSTA_SPEED) | (lnkcap & LNKSTA_SPEED);
  }
  const keep = c.getWord(cap + ExpReg.LinkSta) & ~(LNKSTA_SPEED | LNKSTA_WIDTH);
  c.setWord(cap + ExpReg.LinkSta, keep | (lnksta & (LNKSTA_SPEED | LNKSTA_WIDTH)));
}

/** Bridge subsystem vendor ID capability (8 bytes). */
export function addSsvidCap(dev: PciDevice, offset: number, ssvid: number, ssid: number): number {
  const at = dev.addCapability(CapId.Ssvid, offset, 8);
  dev.config.setWord(at + 4, ssvid);
  dev.config.setWord(at + 6, ssid);
  return at;
}

/** MSI-X capability (12 bytes) without a functional table: enable and function mask are writable. */
export function addMsixCap(dev: PciDevice, offset: number, vectors: number, tableBir: number, tableOffset: number, pbaOffset: number): number {
  const at = dev.addCapability(CapId.Msix, offset, 12);
  const MSIX_ENABLE_AND_MASK = 0xc000;
  dev.config.setWord(at + 2, vectors - 1);
  dev.config.setWmask(at + 2, 2, MSIX_ENABLE_AND_MASK);
  dev.config.setLong(at + 4, (tableOffset | tableBir) >>> 0);
  dev.config.setLong(at + 8, (pbaOffset | tableBir) >>> 0);
  return at;
}

/** Standard hot-plug controller capability (8 bytes): only the dword select is writable. */
export function addShpcCap(dev: PciDevice, offset: number): number {
  const at = dev.addCapability(CapId.Shpc, offset, 8);
  const SHPC_DWORD_SELECT = 2;
  dev.config.setWmask(at + SHPC_DWORD_SELECT, 1, 0xff);
  return at;
}

/** Slot identification capability (4 bytes): first-in-chassis, chassis number writable. */
export function addSlotIdCap(dev: PciDevice, offset: number, chassis: number): number {
  const at = dev.addCapability(CapId.SlotId, offset, 4);
  const SLOTID_FIRST_IN_CHASSIS = 0x20;
  dev.config.setByte(at + 2, SLOTID_FIRST_IN_CHASSIS);
  dev.config.setByte(at + 3, chassis);
  dev.config.setWmask(at + 3, 1, 0xff);
  return at;
}

/** Power management capability (8 bytes), PMC version 3, no writable PMCSR bits. */
export function addPmCap(dev: PciDevice, offset: number): number {
  const at = dev.addCapability(CapId.PowerManagement, offset, 8);
  const PMC_VERSION_3 = 0x0003;
  dev.config.setWord(at + 2, PMC_VERSION_3);
  return at;
}

/** Extended capability IDs (PCIe Base 4.0 §7.6). */
export const ExtCapId = {
  Aer: 0x0001,
  Acs: 0x000d,
} as const;

/** AER register offsets (PCIe Base 4.0 §7.8.4). */
export const AerReg = {
  UncStatus: 0x04,
  UncMask: 0x08,
  UncSeverity: 0x0c,
  CorStatus: 0x10,
  CorMask: 0x14,
  CapCtl: 0x18,
  RootCommand: 0x2c,
  RootStatus: 0x30,
} as const;

/** Size QEMU gives the AER capability. */
export const AER_SIZE = 0x48;
/** Uncorrectable errors QEMU supports (DLP, SDN, poisoned TLP ... TLP prefix blocked). */
const AER_UNC_SUPPORTED = 0x03fff030;
/** Default uncorrectable severity: DLP, SDN, FCP, RX overflow, malformed TLP, internal error. */
const AER_UNC_SEVERITY_DEFAULT = 0x00462030;
/** Correctable errors QEMU supports (RE, BAD TLP, BAD DLLP, REP ROLL, REP TIMER, ADV NONFATAL, INTERNAL, HLO). */
const AER_COR_SUPPORTED = 0xf1c1;
/** Default correctable mask: advisory non-fatal, internal, header log overflow. */
const AER_COR_MASK_DEFAULT = 0xe000;
/** Capabilities and control: ECRC generation/check capable, plus multiple header recording on ports. */
const AER_CAP_ECRC = 0x00a0;
const AER_CAP_MHRC = 0x0200;
/** Writable: ECRC generation/check enable, multiple header recording enable. */
const AER_CTL_ECRC_EN = 0x0140;
const AER_CTL_MHRE = 0x0400;
/** Root error command: correctable/non-fatal/fatal reporting enables. */
const AER_ROOT_CMD_EN = 0x7;

/** Adds QEMU's AER extended capability (version 2). */
export function addAerCap(dev: PciDevice, offset: number, opts: { multiHeader: boolean; root: boolean }): number {
  const at = dev.addExtCapability(ExtCapId.Aer, 2, offset, AER_SIZE);
  const c = dev.config;
  c.setW1cmask(at + AerReg.UncStatus, 4, AER_UNC_SUPPORTED);
  c.setLong(at + AerReg.UncSeverity, AER_UNC_SEVERITY_DEFAULT);
  c.setWmask(at + AerReg.UncSeverity, 4, AER_UNC_SUPPORTED);
  c.setW1cmask(at + AerReg.CorStatus, 4, AER_COR_SUPPORTED);
  c.setLong(at + AerReg.CorMask, AER_COR_MASK_DEFAULT);
  c.setWmask(at + AerReg.CorMask, 4, AER_COR_SUPPORTED);
  c.setLong(at + AerReg.CapCtl, AER_CAP_ECRC | (opts.multiHeader ? AER_CAP_MHRC : 0));
  c.setWmask(at + AerReg.CapCtl, 4, AER_CTL_ECRC_EN | (opts.multiHeader ? AER_CTL_MHRE : 0));
  if (opts.root) c.setWmask(at + AerReg.RootCommand, 4, AER_ROOT_CMD_EN);
  return at;
}

/** ACS capability bits QEMU's root ports offer: SV, TB, RR, CR, UF, DT (PCIe Base 4.0 §7.7.7). */
const ACS_ROOT_PORT_CAPS = 0x005f;

/** Adds QEMU's ACS extended capability (version 1, 8 bytes): control bits as capable are writable. */
export function addAcsCap(dev: PciDevice, offset: number): number {
  const at = dev.addExtCapability(ExtCapId.Acs, 1, offset, 8);
  dev.config.setWord(at + 4, ACS_ROOT_PORT_CAPS);
  dev.config.setWmask(at + 6, 2, ACS_ROOT_PORT_CAPS);
  return at;
}
