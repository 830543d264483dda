/**
 * The guest's side of the PCI Express capabilities shared virtual
 * addressing needs, as Linux drivers/pci/{ats.c,pci.c} use them (facts:
 * PCIe Base 6.0 §7.6.3 extended capability header, §10.5.1 ATS, §7.8.8
 * PASID, §10.5.2 PRI; Linux pci_enable_pasid / pci_reset_pri /
 * pci_enable_pri / pci_enable_ats and their disable counterparts):
 *
 *  - extended configuration space (0x100-0xFFF) is reachable only through
 *    ECAM; when the MCH's PCIEXBAR is still off, it is programmed as
 *    SeaBIOS does at POST (base 0xB0000000, 256 buses, enable), since the
 *    guest firmware here leaves it off;
 *  - the extended-capability list is walked from 0x100 with Linux's bound
 *    ((4096 - 256) / 8 headers), stopping at a zero or all-ones header or a
 *    next pointer below 0x100;
 *  - PASID: Enable with Execute / Privileged Mode Enable when supported
 *    (Linux passes pci_pasid_features); PRI: Reset, then (Stopped must be
 *    set) allocation = min(capacity, requests), Enable; ATS: STU for 4 KiB
 *    (0), Enable, after checking Page Aligned Request.  Linux's order is
 *    PASID, PRI, ATS on enable and ATS, PRI, PASID on disable.
 *
 * Every config access is logged ("cfg 00:10.0 +0x126 w16 0x1") so the demo
 * can show the registers touched.  Guest-side only: no device model here.
 */
import type { AccessWidth, GuestPlatform } from '../platform.js';
import { PciConfigAccess, bdfName, type Bdf } from '../firmware/pci-config.js';

/** Extended capability IDs (PCI Code and ID Assignment). */
export const ExtCapId = { Ats: 0x000f, Pri: 0x0013, Pasid: 0x001b } as const;

/** Extended capability header fields (§7.6.3): ID 15:0, version 19:16, next 31:20. */
const EXT_HDR_ID_MASK = 0xffff;
const EXT_HDR_NEXT_SHIFT = 20;
const EXT_HDR_NEXT_MASK = 0xffc;
/** First extended capability and the end of config space. */
const EXT_CAP_START = 0x100;
const CONFIG_SPACE_END = 0x1000;
/** Linux's walk bound: (4096 - 256) / 8 headers. */
const EXT_CAP_TTL = (CONFIG_SPACE_END - EXT_CAP_START) / 8;
const ALL_ONES = 0xffff_ffff;

/** ATS registers (§10.5.1.2-3) as offsets from the capability. */
export const AtsRegs = { Cap: 0x04, Ctrl: 0x06 } as const;
/** ATS bits: capability QDEP 4:0 and Page Aligned Request 5; control STU 4:0 and Enable 15. */
export const AtsBits = { QDEP_MASK: 0x1f, PAGE_ALIGNED: 0x20, STU_MASK: 0x1f, ENABLE: 0x8000 } as const;
/** Linux PCI_ATS_MAX_QDEP: a QDEP field of 0 means 32. */
export const ATS_MAX_QDEP = 32;
/** Linux PCI_ATS_MIN_STU: page shift 12 is STU 0. */
const ATS_MIN_STU_SHIFT = 12;

/** PASID registers (§7.8.8.2-3). */
export const PasidRegs = { Cap: 0x04, Ctrl: 0x06 } as const;
/** PASID bits: capability Exec 1, Priv 2, Max PASID Width 12:8; control Enable 0, Exec 1, Priv 2. */
export const PasidBits = { EXEC: 0x2, PRIV: 0x4, WIDTH_MASK: 0x1f00, WIDTH_SHIFT: 8, ENABLE: 0x1 } as const;

/** PRI registers (§10.5.2.2-5). */
export const PriRegs = { Ctrl: 0x04, Status: 0x06, Capacity: 0x08, Allocation: 0x0c } as const;
/** PRI bits: control Enable 0, Reset 1; status RF 0, UPRGI 1, Stopped 8, PRG Response PASID Required 15. */
export const PriBits = { ENABLE: 0x1, RESET: 0x2, RF: 0x1, UPRGI: 0x2, STOPPED: 0x100, PASID_REQUIRED: 0x8000 } as const;

/** MCH (00:00.0) PCIEXBAR (Q35: config 0x60, upper half 0x64). */
const MCH: Bdf = { bus: 0, dev: 0, fn: 0 };
const PCIEXBAR = 0x60;
const PCIEXBAR_HI = 0x64;
const PCIEXBAR_ENABLE = 0x1;
/** Length field bits 2:1 -> base bits of the low dword (0: 256 MiB, 1: 128 MiB, 2: 64 MiB; 3 reserved). */
const PCIEXBAR_LENGTH_SHIFT = 1;
const PCIEXBAR_LENGTH_MASK = 0x3;
/** The upper dword holds address bits 35:32. */
const PCIEXBAR_HI_MASK = 0xf;
const PCIEXBAR_BASE_MASKS: readonly number[] = [0xf000_0000, 0xf800_0000, 0xfc00_0000];
/** SeaBIOS's ECAM base on q35 (Q35_HOST_BRIDGE_PCIEXBAR_ADDR). */
export const SEABIOS_ECAM_BASE = 0xb000_0000;
/** ECAM address: bus << 20 | devfn << 12 | offset. */
const ECAM_BUS_SHIFT = 20;
const ECAM_DEVFN_SHIFT = 12;

/** Config-space access through ECAM, logging every access it makes on request. */
export class EcamAccess {
  /** Config writes made and the steps of callers sharing this access, in order. */
  readonly log: string[] = [];

  constructor(private readonly p: GuestPlatform, readonly base: number) {}

  /** The ECAM address of `off` in `b`'s config space. */
  address(b: Bdf, off: number): number {
    return this.base + ((b.bus << ECAM_BUS_SHIFT) | (((b.dev << 3) | b.fn) << ECAM_DEVFN_SHIFT) | off);
  }

  /** Reads `size` bytes at `off`. */
  read(b: Bdf, off: number, size: AccessWidth): Promise<number> {
    return this.p.read(this.address(b, off), size);
  }

  /** Writes `size` bytes at `off` (logged). */
  async write(b: Bdf, off: number, size: AccessWidth, value: number): Promise<void> {
    this.log.push(`  cfg ${bdfName(b)} +0x${off.toString(16)} w${size * 8} 0x${(value >>> 0).toString(16)}`);
    await this.p.write(this.address(b, off), size, value);
  }
}

/**
 * Makes extended config space reachable: when PCIEXBAR is off, programs it
 * as SeaBIOS's mch_mmconfig_setup does (upper dword 0, then base | enable,
 * 256 buses); returns the ECAM window either way (its log says which).
 */
export async function ensureEcam(p: GuestPlatform): Promise<EcamAccess> {
  const cfg = new PciConfigAccess(p);
  const lo = await cfg.read(MCH, PCIEXBAR, 4);
  const mask = PCIEXBAR_BASE_MASKS[(lo >>> PCIEXBAR_LENGTH_SHIFT) & PCIEXBAR_LENGTH_MASK];
  if (lo & PCIEXBAR_ENABLE && mask !== undefined) {
    const hi = (await cfg.read(MCH, PCIEXBAR_HI, 4)) & PCIEXBAR_HI_MASK;
    const base = (lo & mask) >>> 0;
    const ecam = new EcamAccess(p, hi * 2 ** 32 + base);
    ecam.log.push(`ECAM: PCIEXBAR already enabled at 0x${ecam.base.toString(16)}`);
    return ecam;
  }
  await cfg.write(MCH, PCIEXBAR_HI, 4, 0);
  const value = (SEABIOS_ECAM_BASE | PCIEXBAR_ENABLE) >>> 0;
  await cfg.write(MCH, PCIEXBAR, 4, value);
  const ecam = new EcamAccess(p, SEABIOS_ECAM_BASE);
  ecam.log.push(`ECAM: PCIEXBAR (00:00.0 +0x60) = 0x${value.toString(16)}: 256 buses at 0x${SEABIOS_ECAM_BASE.toString(16)}`);
  return ecam;
}

/** Offsets of the extended capabilities found (first of each ID), Linux's walk. */
export async function extCapabilities(ecam: EcamAccess, b: Bdf): Promise<Map<number, number>> {
  const found = new Map<number, number>();
  let at = EXT_CAP_START;
  for (let ttl = EXT_CAP_TTL; ttl > 0; ttl--) {
    const header = await ecam.read(b, at, 4);
    if (header === 0 || header === ALL_ONES) break;
    const id = header & EXT_HDR_ID_MASK;
    if (!found.has(id)) found.set(id, at);
    const next = (header >>> EXT_HDR_NEXT_SHIFT) & EXT_HDR_NEXT_MASK;
    if (next < EXT_CAP_START) break;
    at = next;
  }
  return found;
}

/** What a function offers for SVA, read from its capabilities. */
export interface SvaCapabilities {
  readonly ats?: { readonly offset: number; readonly qdep: number; readonly pageAligned: boolean };
  readonly pasid?: { readonly offset: number; readonly width: number; readonly exec: boolean; readonly priv: boolean };
  readonly pri?: { readonly offset: number; readonly capacity: number; readonly pasidRequired: boolean };
}

/** A function's ATS / PASID / PRI, driven as Linux's PCI core does; every step logged. */
export class PcieSvaFunction {
  /** Linux's pdev->ats_enabled / pasid_enabled / pri_enabled. */
  atsEnabled = false;
  pasidEnabled = false;
  priEnabled = false;
  /** PASID features enabled (Exec / Priv control bits). */
  pasidFeatures = 0;
  /** Outstanding page requests allocated to the function. */
  priAllocation = 0;

  private constructor(private readonly ecam: EcamAccess, readonly bdf: Bdf, readonly caps: SvaCapabilities) {}

  /** Lines of every step (shared with the ECAM access's config-write lines). */
  get log(): string[] {
    return this.ecam.log;
  }

  /** Reads the ATS, PASID and PRI capabilities of `b`. */
  static async probe(ecam: EcamAccess, b: Bdf): Promise<PcieSvaFunction> {
    const ids = await extCapabilities(ecam, b);
    const caps: { -readonly [K in keyof SvaCapabilities]: SvaCapabilities[K] } = {};
    const ats = ids.get(ExtCapId.Ats);
    if (ats !== undefined) {
      const cap = await ecam.read(b, ats + AtsRegs.Cap, 2);
      caps.ats = { offset: ats, qdep: cap & AtsBits.QDEP_MASK || ATS_MAX_QDEP, pageAligned: (cap & AtsBits.PAGE_ALIGNED) !== 0 };
    }
    const pasid = ids.get(ExtCapId.Pasid);
    if (pasid !== undefined) {
      const cap = await ecam.read(b, pasid + PasidRegs.Cap, 2);
      caps.pasid = { offset: pasid, width: (cap & PasidBits.WIDTH_MASK) >> PasidBits.WIDTH_SHIFT, exec: (cap & PasidBits.EXEC) !== 0, priv: (cap & PasidBits.PRIV) !== 0 };
    }
    const pri = ids.get(ExtCapId.Pri);
    if (pri !== undefined) {
      const status = await ecam.read(b, pri + PriRegs.Status, 2);
      caps.pri = { offset: pri, capacity: await ecam.read(b, pri + PriRegs.Capacity, 4), pasidRequired: (status & PriBits.PASID_REQUIRED) !== 0 };
    }
    const f = new PcieSvaFunction(ecam, b, caps);
    f.log.push(`${bdfName(b)}: extended capabilities ${describeCaps(ids, caps)}`);
    return f;
  }

  /** Largest number of PASIDs the function takes (Linux pci_max_pasids: 2^width), 0 without PASID. */
  get maxPasids(): number {
    return this.caps.pasid ? 2 ** this.caps.pasid.width : 0;
  }

  /** Linux pci_enable_pasid(pdev, pci_pasid_features(pdev)): Enable plus the supported Exec / Priv. */
  async enablePasid(): Promise<boolean> {
    const c = this.caps.pasid;
    if (!c || this.pasidEnabled) return false;
    const features = (c.exec ? PasidBits.EXEC : 0) | (c.priv ? PasidBits.PRIV : 0);
    await this.ecam.write(this.bdf, c.offset + PasidRegs.Ctrl, 2, PasidBits.ENABLE | features);
    this.pasidEnabled = true;
    this.pasidFeatures = features;
    this.log.push(`${bdfName(this.bdf)}: PASID enabled (width ${c.width}${c.exec ? ', execute' : ''}${c.priv ? ', privileged' : ''})`);
    return true;
  }

  /**
   * Linux pci_reset_pri then pci_enable_pri(pdev, requests): Reset, then
   * with Stopped set the allocation min(capacity, requests), then Enable.
   * False (nothing enabled) when PRI is absent, already on, or not stopped.
   */
  async enablePri(requests: number): Promise<boolean> {
    const c = this.caps.pri;
    if (!c || this.priEnabled) return false;
    const ctl = c.offset + PriRegs.Ctrl;
    await this.ecam.write(this.bdf, ctl, 2, PriBits.RESET);
    const status = await this.ecam.read(this.bdf, c.offset + PriRegs.Status, 2);
    if (!(status & PriBits.STOPPED)) {
      this.log.push(`${bdfName(this.bdf)}: PRI not stopped (status 0x${status.toString(16)}): not enabled`);
      return false;
    }
    const capacity = await this.ecam.read(this.bdf, c.offset + PriRegs.Capacity, 4);
    this.priAllocation = Math.min(capacity, requests);
    await this.ecam.write(this.bdf, c.offset + PriRegs.Allocation, 4, this.priAllocation);
    await this.ecam.write(this.bdf, ctl, 2, PriBits.ENABLE);
    this.priEnabled = true;
    this.log.push(`${bdfName(this.bdf)}: PRI reset, ${this.priAllocation} outstanding page requests allocated (capacity ${capacity}), enabled`);
    return true;
  }

  /** Linux pci_enable_ats(pdev, VTD_PAGE_SHIFT) after pci_ats_page_aligned: STU 0 (4 KiB), Enable. */
  async enableAts(pageShift = ATS_MIN_STU_SHIFT): Promise<boolean> {
    const c = this.caps.ats;
    if (!c || this.atsEnabled || !c.pageAligned || pageShift < ATS_MIN_STU_SHIFT) return false;
    const stu = (pageShift - ATS_MIN_STU_SHIFT) & AtsBits.STU_MASK;
    await this.ecam.write(this.bdf, c.offset + AtsRegs.Ctrl, 2, AtsBits.ENABLE | stu);
    this.atsEnabled = true;
    this.log.push(`${bdfName(this.bdf)}: ATS enabled (STU ${stu}: ${2 ** pageShift / 1024} KiB, invalidate queue depth ${c.qdep})`);
    return true;
  }

  /** Linux pci_disable_ats: Enable cleared (read-modify-write). */
  async disableAts(): Promise<void> {
    const c = this.caps.ats;
    if (!c || !this.atsEnabled) return;
    const ctl = await this.ecam.read(this.bdf, c.offset + AtsRegs.Ctrl, 2);
    await this.ecam.write(this.bdf, c.offset + AtsRegs.Ctrl, 2, ctl & ~AtsBits.ENABLE);
    this.atsEnabled = false;
    this.log.push(`${bdfName(this.bdf)}: ATS disabled`);
  }

  /** Linux pci_disable_pri: Enable cleared (read-modify-write). */
  async disablePri(): Promise<void> {
    const c = this.caps.pri;
    if (!c || !this.priEnabled) return;
    const ctl = await this.ecam.read(this.bdf, c.offset + PriRegs.Ctrl, 2);
    await this.ecam.write(this.bdf, c.offset + PriRegs.Ctrl, 2, ctl & ~PriBits.ENABLE);
    this.priEnabled = false;
    this.log.push(`${bdfName(this.bdf)}: PRI disabled`);
  }

  /** Linux pci_disable_pasid: control written 0. */
  async disablePasid(): Promise<void> {
    const c = this.caps.pasid;
    if (!c || !this.pasidEnabled) return;
    await this.ecam.write(this.bdf, c.offset + PasidRegs.Ctrl, 2, 0);
    this.pasidEnabled = false;
    this.pasidFeatures = 0;
    this.log.push(`${bdfName(this.bdf)}: PASID disabled`);
  }

  /** Linux's enable order for an SVA-capable device: PASID, PRI, ATS; true when all three are on. */
  async enableAll(priRequests: number): Promise<boolean> {
    await this.enablePasid();
    await this.enablePri(priRequests);
    await this.enableAts();
    return this.pasidEnabled && this.priEnabled && this.atsEnabled;
  }

  /** Linux's disable order: ATS, PRI, PASID. */
  async disableAll(): Promise<void> {
    await this.disableAts();
    await this.disablePri();
    await this.disablePasid();
  }
}

/** "ATS@0x100 (QDEP 32) PASID@0x110 (width 20) PRI@0x120 (capacity 32)". */
function describeCaps(ids: ReadonlyMap<number, number>, caps: SvaCapabilities): string {
  const parts: string[] = [];
  if (caps.ats) parts.push(`ATS@0x${caps.ats.offset.toString(16)} (QDEP ${caps.ats.qdep}${caps.ats.pageAligned ? ', page aligned' : ''})`);
  if (caps.pasid) parts.push(`PASID@0x${caps.pasid.offset.toString(16)} (width ${caps.pasid.width}${caps.pasid.exec ? ', exec' : ''}${caps.pasid.priv ? ', priv' : ''})`);
  if (caps.pri) parts.push(`PRI@0x${caps.pri.offset.toString(16)} (capacity ${caps.pri.capacity}${caps.pri.pasidRequired ? ', PRG response PASID required' : ''})`);
  const others = [...ids.keys()].filter((id) => id !== ExtCapId.Ats && id !== ExtCapId.Pasid && id !== ExtCapId.Pri);
  if (others.length) parts.push(`others ${others.map((id) => '0x' + id.toString(16)).join(' ')}`);
  return parts.length ? parts.join(' ') : 'none';
}
