/**
 * The extension interface of the VT-d core: how the queued-invalidation and
 * interrupt-remapping modules (written separately) plug into the unit without
 * editing the core's files.
 *
 * An extension is a factory `(core) => hooks`.  The core owns the register
 * file (reset values and masks of IQH/IQT/IQA/ICS/IECTL/IEDATA/IEADDR/
 * IEUADDR/IRTA included) and calls the hooks after it has stored a guest
 * write with the masks applied; the extension owns the behaviour.  Every hook
 * is optional.  Extensions are passed to the IntelIommu constructor, or
 * registered once at module load with `registerIommuExtension` (the device
 * type uses the registered list).
 *
 * Stable contract: add members, never change or remove them.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import type { MsiTarget } from '../../core/irq.js';
import type { VirtualClock } from '../../core/clock.js';
import type { Tracer } from '../../machine/device-type.js';
import type { IommuEmitter } from './events.js';
import type { IommuConfig } from './props.js';

/** Source ID used when the requester is unknown (QEMU: IOAPIC path, no MemTxAttrs.requester_id). */
export const SID_UNKNOWN = -1;

/**
 * Raw access to the register file: no masks, no side effects (the device's
 * own view, QEMU vtd_get/set_*_raw).  Offsets are byte offsets of the MMIO
 * page; 64-bit registers are accessed as two 32-bit halves (low at off,
 * high at off + 4).
 */
export interface RegisterAccess {
  /** Reads 32 bits at `off` (unsigned). */
  get32(off: number): number;
  /** Stores 32 bits at `off`. */
  set32(off: number, value: number): void;
  /** `reg = (reg & ~clear) | set` on the 32 bits at `off`. */
  setClear32(off: number, set: number, clear: number): void;
  /** Reads 64 bits at `off` as a bigint (API edge only, never on a hot path). */
  get64(off: number): bigint;
  /** Stores 64 bits at `off` from halves. */
  set64(off: number, lo: number, hi: number): void;
  /**
   * (Re)defines a 32-bit register's reset value and masks (QEMU
   * vtd_define_long/_wo): writable bits, write-1-to-clear bits and
   * write-only bits (read back as 0).  For registers beyond the core's list
   * (e.g. IQER).  Takes effect at once and at every reset.
   */
  define32(off: number, reset: number, wmask: number, w1cmask: number, womask?: number): void;
}

/** Context-cache invalidation granularities (CCMD.CIRG / QI G). */
export type ContextInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  | { readonly kind: 'device'; readonly did: number; readonly sid: number; readonly fm: number };

/** IOTLB invalidation granularities (IOTLB.IIRG / QI G). */
export type IotlbInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  /** Page-selective: `addr` (4 KiB aligned), 2^am pages, invalidation hint. */
  | { readonly kind: 'page'; readonly did: number; readonly addr: number; readonly am: number; readonly ih: boolean };

/**
 * PASID-based IOTLB invalidation granularities (descriptor 6, G 5:4):
 * G=2 every entry of (DID, PASID) whatever its PGTT; G=3 page-selective,
 * first-stage entries only (QEMU 11.1).
 */
export type PasidIotlbInvalidation =
  | { readonly kind: 'pasid'; readonly did: number; readonly pasid: number }
  | { readonly kind: 'page'; readonly did: number; readonly pasid: number; readonly addr: number; readonly am: number; readonly ih: boolean };

/** PASID-cache invalidation granularities (descriptor 7, G 5:4: 0 domain, 1 PASID, 3 global). */
export type PasidCacheInvalidation =
  | { readonly kind: 'global' }
  | { readonly kind: 'domain'; readonly did: number }
  | { readonly kind: 'pasid'; readonly did: number; readonly pasid: number };

/** A page-group response (descriptor 9), passed on to the device that asked. */
export interface PageGroupResponse {
  /** Requester ID the response is for. */
  readonly rid: number;
  /** PASID present (PP) and its value. */
  readonly pasidPresent: boolean;
  readonly pasid: number;
  /** Response code (0 success, 1 invalid request, 0xF response failure). */
  readonly code: number;
  /** Page request group index. */
  readonly prgi: number;
}

/** Optional details of a fault. */
export interface FaultExtra {
  /** Fault processing disable bit of the entry that led to the fault (suppresses qualified faults). */
  readonly fpd?: boolean;
  /** Interrupt-remapping index (IR faults: stored in FRCD bits 63:48). */
  readonly irIndex?: number;
  /** PASID (PP/PV fields), when the request had one; without it PP and PV record 0. */
  readonly pasid?: number;
}

/** What the core offers to extensions. */
export interface IommuCore {
  /** Resolved configuration (properties after QEMU's defaulting and validation). */
  readonly config: Readonly<IommuConfig>;
  /** The register file, raw. */
  readonly regs: RegisterAccess;
  /** Guest memory for table and queue reads / status writes (QEMU: address_space_memory). */
  readonly memory: AddressSpace;
  /** The APIC bus: fault / invalidation-completion events and remapped interrupts go here. */
  readonly msi: MsiTarget;
  readonly clock: VirtualClock;
  readonly tracer: Tracer;
  readonly events: IommuEmitter;
  /** Host address width in bits (aw-bits): addresses the unit reads are masked to it. */
  readonly haw: number;
  /** Invalidation queue base latched by the core at QIE enable (HAW-masked, 4 KiB aligned). */
  readonly iqBase?: number;
  /** GSTS.QIES. */
  qiEnabled(): boolean;
  /** GSTS.IRES. */
  irEnabled(): boolean;
  /** Invalidates context-cache entries (IOTLB entries survive, as in QEMU; domain-selective acts as global). */
  invalidateContext(inv: ContextInvalidation, source: 'register' | 'queue'): void;
  /** Invalidates IOTLB entries. */
  invalidateIotlb(inv: IotlbInvalidation, source: 'register' | 'queue'): void;
  /** PASID-based IOTLB invalidation (descriptor 6). */
  invalidatePasidIotlb(inv: PasidIotlbInvalidation): void;
  /** PASID-cache invalidation (descriptor 7): PASID entries re-read, IOTLB entries of changed PASIDs dropped. */
  invalidatePasidCache(inv: PasidCacheInvalidation): void;
  /** A page-group response (descriptor 9) for the device `rid`. */
  pageGroupResponse(resp: PageGroupResponse): void;
  /**
   * Records a fault (QEMU vtd_report_fault / vtd_report_frcd_fault): FPD
   * suppression of qualified faults, PFO, same-SID collapse, FRCD, PPF and
   * the fault event.  `addr` is the faulting address (page bits kept).
   */
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void;
  /**
   * Sets FSTS status bits (e.g. IQE, ITE, ICE) and raises the fault event
   * as QEMU's vtd_generate_fault_event does (only if no fault status was
   * pending before).
   */
  raiseFaultStatus(bits: number): void;
  /**
   * Sends an event interrupt through a control/data/address register group
   * (FECTL or IECTL): sets IP when masked, else delivers the MSI
   * (`dataOff`, `addrOff`, `uaddrOff`) straight to the APIC bus.
   */
  signalEvent(ctlOff: number, dataOff: number, addrOff: number, uaddrOff: number): void;
}

/** What an extension provides.  All members optional. */
export interface IommuHooks {
  /** Name, for `IntelIommu.extension(name)`. */
  readonly name: string;
  /** After the core has reset the register file and caches (device reset). */
  reset?(): void;
  /**
   * A guest read of the 32-bit word at `off` (4-aligned; 8-byte reads ask
   * for both words): return a value to replace the stored one, or undefined
   * to leave it.  (The core already makes IQA read the base latched at QIE
   * enable plus QS, as QEMU 7.2 does; see IommuCore.iqBase.)
   */
  readOverride?(off: number): number | undefined;
  /**
   * GCMD.QIE changed.  Return whether the change is accepted.  On enable the
   * core sets GSTS.QIES before calling (so a queue with a non-zero tail can
   * be processed at once, as QEMU does) and clears it again if refused; on
   * disable it clears QIES only when accepted (QEMU refuses while busy).
   */
  onQieChange?(enable: boolean): boolean;
  /** IQT was written (value already stored with wmask applied). */
  onIqtWrite?(): void;
  /** IQA was written. */
  onIqaWrite?(): void;
  /** ICS was written (W1C already applied). */
  onIcsWrite?(): void;
  /** IECTL was written. */
  onIectlWrite?(): void;
  /** FSTS was written (W1C already applied; the core handled FECTL.IP). */
  onFstsWrite?(): void;
  /** GCMD.SIRTP: the core set GSTS.IRTPS; latch IRTA and flush interrupt caches. */
  onSirtp?(): void;
  /** GCMD.IRE changed (the core already updated GSTS.IRES; only called when intremap is on). */
  onIreChange?(on: boolean): void;
  /** GCMD.CFI changed (the core does not set CFIS, as QEMU; an extension may). */
  onCfiChange?(on: boolean): void;
  /**
   * A 4-byte write into the interrupt window by requester `sid` (SID_UNKNOWN
   * for the IOAPIC).  Return true when handled; if no extension handles it,
   * the core passes the message to the APIC bus unchanged.
   */
  interruptWrite?(addr: number, data: number, sid: number): boolean;
}

/** An extension factory. */
export type IommuExtension = (core: IommuCore) => IommuHooks;

const registered: IommuExtension[] = [];

/** Registers an extension used by every IntelIommu created afterwards without an explicit list. */
export function registerIommuExtension(ext: IommuExtension): void {
  if (!registered.includes(ext)) registered.push(ext);
}

/** The registered extensions, in registration order. */
export function registeredIommuExtensions(): readonly IommuExtension[] {
  return registered;
}
