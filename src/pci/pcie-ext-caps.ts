/**
 * The PCI Express extended capabilities of shared virtual addressing, for
 * device models (a device that issues ATS translation requests and
 * PASID-tagged requests), the ACS register layout IOMMU grouping reads, and
 * the extended-capability walk:
 *
 *   ATS    Address Translation Services (PCIe Base 6.0 §10.5.1), ID 0x000F, 8 bytes
 *   PASID  Process Address Space ID (§7.8.8), ID 0x001B, 8 bytes
 *   ACS    Access Control Services (§7.7.8), ID 0x000D, 8 bytes
 *   (PRI, the Page Request Interface, ID 0x0013, is in pcie-pri.ts.)
 *
 * Register values, write masks and reset values follow QEMU 11.1's helpers
 * (hw/pci/pcie.c pcie_ats_init, pcie_pasid_init, pcie_acs_init), except:
 *
 *   ATS    control write mask 0x800F as QEMU (observed on virtio-net-pci,ats=on):
 *          Enable and STU bits 3:0; the spec's STU bit 4 reads 0.
 *   PASID  Execute/Privileged Mode Enable are writable only when their
 *          Supported bit is set (the spec: RsvdP otherwise); QEMU makes all
 *          three control bits writable regardless.  No QEMU 11.1 device
 *          exposes PASID, so this is the spec's rule over QEMU's source.
 *
 * ATS and the root ports' ACS are compared with QEMU 11.1 in
 * test/diff/pcie-acs.test.ts.  Each `add*Cap` returns a small handle with
 * typed accessors over the device's config space; ATS and PASID have no
 * config-write side effects, only masks.
 */
import { PCI_CONFIG_SPACE_SIZE, PCIE_CONFIG_SPACE_SIZE, type PciConfig } from './config.js';
import type { PciDevice } from './device.js';
import { ExtCapId } from './pcie-cap.js';

/** Extended capability IDs of this module (PCI Code and ID Assignment 1.11 §3). */
export const SvaExtCapId = {
  Ats: 0x000f,
  /** See pcie-pri.ts. */
  Pri: 0x0013,
  Pasid: 0x001b,
} as const;

/** Extended capability header: ID 15:0, version 19:16, next 31:20 (PCIe Base 6.0 §7.6.3). */
const EXT_CAP_ID_MASK = 0xffff;
const EXT_CAP_NEXT_SHIFT = 20;
/** Linux's bound on an extended-capability walk: (4096 - 256) / 8 headers. */
const EXT_CAP_TTL = (PCIE_CONFIG_SPACE_SIZE - PCI_CONFIG_SPACE_SIZE) / 8;
/** Extended capabilities are dword aligned. */
const EXT_CAP_ALIGN_MASK = 0x3;

/**
 * Offset of the first extended capability with `id` in `dev`'s config
 * space, or 0.  Guest-safe: a corrupt chain (misaligned, pointing below
 * 0x100, looping) ends the walk.
 */
export function findExtCapability(dev: PciDevice, id: number): number {
  const c = dev.config;
  if (c.size <= PCI_CONFIG_SPACE_SIZE) return 0;
  let at = PCI_CONFIG_SPACE_SIZE;
  for (let ttl = EXT_CAP_TTL; ttl > 0; ttl--) {
    const header = c.getLong(at);
    if (header === 0 || header === 0xffff_ffff) return 0;
    if ((header & EXT_CAP_ID_MASK) === id) return at;
    const next = header >>> EXT_CAP_NEXT_SHIFT;
    if (next < PCI_CONFIG_SPACE_SIZE || next & EXT_CAP_ALIGN_MASK) return 0;
    at = next;
  }
  return 0;
}

// ---- ATS -------------------------------------------------------------------

/** ATS register offsets inside the capability (PCIe Base 6.0 §10.5.1.2-3). */
export const AtsReg = {
  Cap: 0x04,
  Ctrl: 0x06,
} as const;

/** ATS capability register bits (§10.5.1.2). */
export const AtsCapBit = {
  /** Invalidate Queue Depth, bits 4:0 (0 encodes 32). */
  QueueDepthMask: 0x001f,
  PageAligned: 0x0020,
  GlobalInvalidate: 0x0040,
  RelaxedOrdering: 0x0080,
} as const;

/** ATS control register bits (§10.5.1.3). */
export const AtsCtrlBit = {
  /** Smallest Translation Unit: 2^STU 4 KiB pages; the spec's field is bits 4:0. */
  StuMask: 0x001f,
  Enable: 0x8000,
} as const;

/** Writable control bits as QEMU 11.1 has them: Enable and STU bits 3:0 (spec: 4:0). */
export const ATS_CTRL_WMASK = 0x800f;
/** Size and version of the ATS capability. */
const ATS_SIZE = 8;
const ATS_VERSION = 1;
/** Largest invalidate queue depth (encoded as 0). */
export const ATS_MAX_QUEUE_DEPTH = 32;
/** Bytes in one translation unit (STU 0). */
const ATS_UNIT = 0x1000;

/** What an ATS capability offers. */
export interface AtsOptions {
  /** Invalidations the function accepts at once, 1-32 (default 32). */
  readonly invalidateQueueDepth?: number;
  /** Untranslated addresses in translation requests are page aligned (default true, QEMU's x-ats-page-aligned). */
  readonly pageAligned?: boolean;
  /** Global Invalidate Supported (default false). */
  readonly globalInvalidate?: boolean;
  /** Relaxed Ordering for translation requests (default false). */
  readonly relaxedOrdering?: boolean;
}

/** A function's ATS capability. */
export class AtsCap {
  constructor(
    private readonly config: PciConfig,
    /** Offset of the capability header. */
    readonly offset: number,
  ) {}

  /** Enable (control bit 15): the function may issue translation requests and use translated addresses. */
  enabled(): boolean {
    return (this.config.getWord(this.offset + AtsReg.Ctrl) & AtsCtrlBit.Enable) !== 0;
  }

  /** The Smallest Translation Unit field as programmed. */
  stu(): number {
    return this.config.getWord(this.offset + AtsReg.Ctrl) & AtsCtrlBit.StuMask;
  }

  /** Smallest translation the function caches, in bytes: 4 KiB << STU. */
  smallestTranslationBytes(): number {
    return ATS_UNIT * 2 ** this.stu();
  }

  /** Invalidate queue depth, 1-32. */
  invalidateQueueDepth(): number {
    return this.config.getWord(this.offset + AtsReg.Cap) & AtsCapBit.QueueDepthMask || ATS_MAX_QUEUE_DEPTH;
  }

  /** Page Aligned Request. */
  pageAligned(): boolean {
    return (this.config.getWord(this.offset + AtsReg.Cap) & AtsCapBit.PageAligned) !== 0;
  }
}

/** Adds an ATS capability at `offset` (QEMU pcie_ats_init): disabled, STU 0 at reset. */
export function addAtsCap(dev: PciDevice, offset: number, opts: AtsOptions = {}): AtsCap {
  const depth = opts.invalidateQueueDepth ?? ATS_MAX_QUEUE_DEPTH;
  if (!Number.isInteger(depth) || depth < 1 || depth > ATS_MAX_QUEUE_DEPTH) {
    throw new RangeError(`pci device ${dev.typeName}: ATS invalidate queue depth ${depth} outside 1-${ATS_MAX_QUEUE_DEPTH}`);
  }
  const at = dev.addExtCapability(SvaExtCapId.Ats, ATS_VERSION, offset, ATS_SIZE);
  const c = dev.config;
  const cap =
    (depth & AtsCapBit.QueueDepthMask) |
    ((opts.pageAligned ?? true) ? AtsCapBit.PageAligned : 0) |
    (opts.globalInvalidate ? AtsCapBit.GlobalInvalidate : 0) |
    (opts.relaxedOrdering ? AtsCapBit.RelaxedOrdering : 0);
  c.setWord(at + AtsReg.Cap, cap);
  c.setWord(at + AtsReg.Ctrl, 0);
  c.setWmask(at + AtsReg.Ctrl, 2, ATS_CTRL_WMASK);
  return new AtsCap(c, at);
}

// ---- PASID -----------------------------------------------------------------

/** PASID register offsets (PCIe Base 6.0 §7.8.8.2-3). */
export const PasidReg = {
  Cap: 0x04,
  Ctrl: 0x06,
} as const;

/** PASID capability register bits (§7.8.8.2). */
export const PasidCapBit = {
  ExecuteSupported: 0x0002,
  PrivilegedSupported: 0x0004,
  /** Max PASID Width, bits 12:8. */
  WidthMask: 0x1f00,
} as const;
/** Shift of Max PASID Width. */
export const PASID_WIDTH_SHIFT = 8;
/** Widest PASID (20 bits); wider values are reserved. */
export const PASID_MAX_WIDTH = 20;

/** PASID control register bits (§7.8.8.3). */
export const PasidCtrlBit = {
  Enable: 0x0001,
  ExecuteEnable: 0x0002,
  PrivilegedEnable: 0x0004,
} as const;

const PASID_SIZE = 8;
const PASID_VERSION = 1;

/** What a PASID capability offers. */
export interface PasidOptions {
  /** Max PASID Width, 0-20: PASIDs 0 .. 2^width - 1. */
  readonly width: number;
  /** Execute Permission Supported (default false). */
  readonly execute?: boolean;
  /** Privileged Mode Supported (default false). */
  readonly privileged?: boolean;
}

/** A function's PASID capability. */
export class PasidCap {
  constructor(
    private readonly config: PciConfig,
    /** Offset of the capability header. */
    readonly offset: number,
    /** Max PASID Width. */
    readonly width: number,
  ) {}

  private ctrl(): number {
    return this.config.getWord(this.offset + PasidReg.Ctrl);
  }

  /** PASID Enable: the function may send requests with a PASID TLP prefix. */
  enabled(): boolean {
    return (this.ctrl() & PasidCtrlBit.Enable) !== 0;
  }

  /** Execute Permission Enable (never set unless supported). */
  executeEnabled(): boolean {
    return (this.ctrl() & PasidCtrlBit.ExecuteEnable) !== 0;
  }

  /** Privileged Mode Enable (never set unless supported). */
  privilegedEnabled(): boolean {
    return (this.ctrl() & PasidCtrlBit.PrivilegedEnable) !== 0;
  }

  /** Largest PASID the function may use: 2^width - 1. */
  maxPasid(): number {
    return 2 ** this.width - 1;
  }

  /** True when `pasid` fits the capability's width. */
  accepts(pasid: number): boolean {
    return Number.isInteger(pasid) && pasid >= 0 && pasid <= this.maxPasid();
  }
}

/**
 * Adds a PASID capability at `offset` (QEMU pcie_pasid_init): all enables
 * clear at reset; Execute/Privileged Mode Enable writable only when
 * supported (the spec; QEMU makes them writable regardless).
 */
export function addPasidCap(dev: PciDevice, offset: number, opts: PasidOptions): PasidCap {
  if (!Number.isInteger(opts.width) || opts.width < 0 || opts.width > PASID_MAX_WIDTH) {
    throw new RangeError(`pci device ${dev.typeName}: PASID width ${opts.width} outside 0-${PASID_MAX_WIDTH}`);
  }
  const at = dev.addExtCapability(SvaExtCapId.Pasid, PASID_VERSION, offset, PASID_SIZE);
  const c = dev.config;
  const cap =
    (opts.width << PASID_WIDTH_SHIFT) |
    (opts.execute ? PasidCapBit.ExecuteSupported : 0) |
    (opts.privileged ? PasidCapBit.PrivilegedSupported : 0);
  c.setWord(at + PasidReg.Cap, cap);
  c.setWord(at + PasidReg.Ctrl, 0);
  const wmask =
    PasidCtrlBit.Enable |
    (opts.execute ? PasidCtrlBit.ExecuteEnable : 0) |
    (opts.privileged ? PasidCtrlBit.PrivilegedEnable : 0);
  c.setWmask(at + PasidReg.Ctrl, 2, wmask);
  return new PasidCap(c, at, opts.width);
}

// ---- ACS -------------------------------------------------------------------

const ACS_SIZE = 8;
const ACS_VERSION = 1;

/** ACS register offsets (PCIe Base 6.0 §7.7.8.2-3). */
export const AcsReg = {
  Cap: 0x04,
  Ctrl: 0x06,
} as const;

/** ACS capability / control bits (the same positions in both registers). */
export const AcsBit = {
  SourceValidation: 0x0001,
  TranslationBlocking: 0x0002,
  RequestRedirect: 0x0004,
  CompletionRedirect: 0x0008,
  UpstreamForwarding: 0x0010,
  EgressControl: 0x0020,
  DirectTranslatedP2p: 0x0040,
} as const;

/** The ACS controls Linux requires on a path before it isolates the devices below (REQ_ACS_FLAGS). */
export const LINUX_REQUIRED_ACS =
  AcsBit.SourceValidation | AcsBit.RequestRedirect | AcsBit.CompletionRedirect | AcsBit.UpstreamForwarding;

/**
 * The ACS control value Linux programs at enumeration when an IOMMU asked
 * for ACS (pci_std_enable_acs): the required controls the port implements.
 * (Translation Blocking is added only for external-facing ports.)
 */
export function linuxAcsControl(cap: number): number {
  return cap & LINUX_REQUIRED_ACS;
}

/** ACS capability and control of `dev`, or null without an ACS capability. */
export function readAcs(dev: PciDevice): { readonly cap: number; readonly ctrl: number } | null {
  const at = findExtCapability(dev, ExtCapId.Acs);
  if (!at) return null;
  return { cap: dev.config.getWord(at + AcsReg.Cap), ctrl: dev.config.getWord(at + AcsReg.Ctrl) };
}

/**
 * Adds an ACS capability to a function of a multi-function device (QEMU
 * pcie_acs_init on a non-port): by default no capability bits, which Linux
 * reads as every control hard-wired on, so the function is isolated from its
 * siblings.  Controls that are offered are writable.  (Ports use
 * pcie-cap.ts addAcsCap.)
 */
export function addFunctionAcsCap(dev: PciDevice, offset: number, cap = 0): number {
  const at = dev.addExtCapability(ExtCapId.Acs, ACS_VERSION, offset, ACS_SIZE);
  dev.config.setWord(at + AcsReg.Cap, cap);
  dev.config.setWmask(at + AcsReg.Ctrl, 2, cap);
  return at;
}
