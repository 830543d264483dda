/**
 * Shared virtual addressing as Linux's Intel IOMMU driver does it
 * (drivers/iommu/intel/{svm.c,pasid.c,cache.c}, drivers/iommu/iommu-sva.c;
 * VT-d spec 3.x 9.6; facts only):
 *
 *  - PASIDs from one global allocator starting at 1 (IOMMU_FIRST_GLOBAL_PASID);
 *  - bind (iommu_sva_bind_device -> intel_svm_set_dev_pasid): the device's
 *    PASID entry as first stage (PGTT 1) on the mm's CR3, DID 1
 *    (FLPT_DEFAULT_DID, as every SVA domain), AW = the unit's AGAW, FLPM 0
 *    (4-level), SRE clear (a user mm), PWSNP with ECAP.SMPWC; then
 *    PASID-cache and PASID-IOTLB invalidation with caching mode, else a
 *    write-buffer flush (pasid_flush_caches);
 *  - an mm change (intel_arch_invalidate_secondary_tlbs -> cache_tag_flush_range):
 *    one batch of a page-selective PASID-based IOTLB invalidation (6) and a
 *    PASID-based device-TLB invalidation (8, S-bit size), then a wait;
 *  - unbind (intel_pasid_tear_down_entry): P cleared, PASID-cache (7),
 *    PASID-IOTLB (6, all of the PASID), device-TLB (8, whole range), the
 *    page-request drain (prq.ts), then the entry cleared.
 *
 * The process address space is process-mm.ts, the descriptor words
 * sva-descriptors.ts.  Every register and descriptor the code touches is
 * logged.
 */
import { PAGE_SIZE } from '../alloc.js';
import type { DeviceHandle } from './domain.js';
import { PasidEntry, Pgtt, type PasidTable } from './pasid.js';
import type { SvaCapabilities } from './pcie-caps.js';
import type { ProcessMm, SecondaryTlbNotifier } from './process-mm.js';
import type { PageRequestQueue } from './prq.js';
import {
  DEVTLB_ALL_ORDER, devTlbPasidDesc, pasidCacheDesc, piotlbDesc, sizeOrder, submitLogged, type QiDescriptor,
} from './sva-descriptors.js';
import { FLPT_DEFAULT_DID, type VtdUnit } from './unit.js';

// ---- PASIDs -------------------------------------------------------------------

/** Linux IOMMU_FIRST_GLOBAL_PASID: PASID 0 is RID_PASID. */
export const FIRST_GLOBAL_PASID = 1;

/** The global PASID space (Linux iommu_global_pasid_ida): lowest free first. */
export class PasidAllocator {
  private readonly used = new Set<number>();

  /** PASIDs [min, max] are handed out. */
  constructor(readonly max: number, readonly min = FIRST_GLOBAL_PASID) {}

  /** The lowest free PASID, or undefined when all are in use. */
  alloc(): number | undefined {
    for (let pasid = this.min; pasid <= this.max; pasid++) {
      if (!this.used.has(pasid)) { this.used.add(pasid); return pasid; }
    }
    return undefined;
  }

  /** Returns a PASID. */
  free(pasid: number): void {
    this.used.delete(pasid);
  }
}

// ---- the device side: bind, unbind ---------------------------------------------

/** What SVA needs of a function's PCIe state (pcie-caps.ts PcieSvaFunction). */
export interface SvaPcieState {
  readonly caps: SvaCapabilities;
  readonly atsEnabled: boolean;
  readonly priEnabled: boolean;
}

/** SVA facts of one device, as Linux's device_domain_info keeps them. */
export interface SvaDevice {
  readonly dev: DeviceHandle;
  readonly pcie: SvaPcieState;
  /** Requester ID (the device's own). */
  readonly sid: number;
}

/** The function's ATS invalidate queue depth (Linux info->ats_qdep), 0 without ATS. */
export function atsQdep(sva: SvaDevice): number {
  return sva.pcie.caps.ats?.qdep ?? 0;
}

/** Bytes of a qword; qwords of a (512-bit) PASID entry. */
const QWORD = 8;
const PASID_ENTRY_QWORDS = 8;

/** Invalidations an SVA step may leave out (test-only: proves each is needed). */
export type SvaSkip = 'unmap-piotlb' | 'unmap-devtlb';

/** A device bound to a process address space through a PASID. */
export class SvaBond {
  private readonly notifier: SecondaryTlbNotifier = (start, end) => this.flushRange(start, end);
  /** Log lines of the bond's invalidations. */
  readonly log: string[] = [];
  /** PASID entry address. */
  entry = 0;

  private constructor(readonly unit: VtdUnit, readonly sva: SvaDevice, readonly mm: ProcessMm, readonly pasid: number,
    private readonly table: PasidTable, private readonly skip: ReadonlySet<SvaSkip>) {}

  /**
   * iommu_sva_bind_device: a PASID from `pasids`, the first-stage PASID
   * entry on the mm's CR3, the caches Linux flushes, and the mm's notifier.
   */
  static async bind(unit: VtdUnit, sva: SvaDevice, mm: ProcessMm, pasids: PasidAllocator, skip: ReadonlySet<SvaSkip> = new Set()): Promise<SvaBond> {
    const table = sva.dev.pasidTable;
    if (!table) throw new Error(`SVA: ${sva.dev.name} has no PASID table (unit not in scalable mode?)`);
    const pasid = pasids.alloc();
    if (pasid === undefined) throw new Error('SVA: out of PASIDs');
    const bond = new SvaBond(unit, sva, mm, pasid, table, skip);
    await bond.program();
    mm.addNotifier(bond.notifier);
    return bond;
  }

  /** The qwords of the SVA PASID entry (intel_pasid_setup_first_level). */
  entryQwords(): bigint[] {
    const q = new Array<bigint>(PASID_ENTRY_QWORDS).fill(0n);
    const agaw = BigInt(this.unit.levels - 2);
    q[0] = (agaw << PasidEntry.AW_SHIFT) | (BigInt(Pgtt.FIRST_STAGE) << PasidEntry.PGTT_SHIFT) | PasidEntry.P;
    q[1] = BigInt(FLPT_DEFAULT_DID) | (this.unit.ecapf('SMPWC') ? PasidEntry.PWSNP : 0n);
    q[2] = BigInt(this.mm.cr3); // FLPM 0 (4-level), SRE clear: a user address space
    return q;
  }

  private async program(): Promise<void> {
    const { unit, pasid } = this;
    this.entry = await this.table.entry(pasid);
    const q = this.entryQwords();
    for (let i = PASID_ENTRY_QWORDS - 1; i >= 1; i--) await unit.p.write64(this.entry + i * QWORD, q[i]!);
    await unit.p.write64(this.entry, q[0]!);
    this.table.record(pasid, { did: FLPT_DEFAULT_DID, pgtt: Pgtt.FIRST_STAGE });
    this.log.push(`${this.sva.dev.name} PASID ${pasid}: first-stage DID ${FLPT_DEFAULT_DID} on CR3 0x${this.mm.cr3.toString(16)} ` +
      `(entry 0x${this.entry.toString(16)}: 0x${q[0]!.toString(16)} 0x${q[1]!.toString(16)} 0x${q[2]!.toString(16)}; AW ${unit.levels - 2}, FLPM 0, SRE 0` +
      `${unit.ecapf('SMPWC') ? ', PWSNP' : ''})`);
    if (unit.cachingMode) {
      await submitLogged(unit, [pasidCacheDesc(FLPT_DEFAULT_DID, pasid)], this.log);
      await submitLogged(unit, [piotlbDesc(FLPT_DEFAULT_DID, pasid)], this.log);
    } else {
      await unit.flushWriteBuffer();
      this.log.push('  no caching mode: no invalidation after a not-present -> present change');
    }
  }

  /** cache_tag_flush_range for [start, end): PASID-IOTLB page-selective, then device-TLB, one batch. */
  private async flushRange(start: number, end: number): Promise<void> {
    const pages = Math.ceil((end - start) / PAGE_SIZE);
    const order = sizeOrder(pages);
    const aligned = start - (start % (PAGE_SIZE * 2 ** order));
    const batch: QiDescriptor[] = [];
    if (!this.skip.has('unmap-piotlb')) batch.push(piotlbDesc(FLPT_DEFAULT_DID, this.pasid, start, pages, false));
    else this.log.push('  (skipped the PASID-IOTLB invalidation)');
    if (this.sva.pcie.atsEnabled && !this.skip.has('unmap-devtlb')) {
      batch.push(devTlbPasidDesc(this.sva.sid, this.pasid, atsQdep(this.sva), aligned, order));
    } else if (this.sva.pcie.atsEnabled) {
      this.log.push('  (skipped the device-TLB invalidation)');
    }
    this.log.push(`mm change 0x${start.toString(16)}-0x${(end - 1).toString(16)}: invalidating PASID ${this.pasid}`);
    if (batch.length) await submitLogged(this.unit, batch, this.log);
  }

  /**
   * intel_pasid_tear_down_entry + the PRQ drain: P cleared, PASID-cache,
   * PASID-IOTLB (whole PASID), device-TLB (whole range), the drain batch,
   * the entry cleared; the PASID goes back to `pasids`.
   */
  async unbind(pasids: PasidAllocator, prq: PageRequestQueue | undefined): Promise<void> {
    const { unit, pasid } = this;
    this.mm.removeNotifier(this.notifier);
    const q0 = await unit.p.read64(this.entry);
    await unit.p.write64(this.entry, q0 & ~PasidEntry.P);
    this.log.push(`${this.sva.dev.name} PASID ${pasid}: entry 0x${this.entry.toString(16)} P cleared (qw0 0x${(q0 & ~PasidEntry.P).toString(16)})`);
    await submitLogged(unit, [pasidCacheDesc(FLPT_DEFAULT_DID, pasid)], this.log);
    await submitLogged(unit, [piotlbDesc(FLPT_DEFAULT_DID, pasid)], this.log);
    if (this.sva.pcie.atsEnabled) await submitLogged(unit, [devTlbPasidDesc(this.sva.sid, pasid, atsQdep(this.sva), 0, DEVTLB_ALL_ORDER)], this.log);
    if (prq && this.sva.pcie.priEnabled) await prq.drain(this.sva, pasid, this.log);
    for (let i = 0; i < PASID_ENTRY_QWORDS; i++) await unit.p.write64(this.entry + i * QWORD, 0n);
    this.table.record(pasid, undefined);
    pasids.free(pasid);
    this.log.push(`${this.sva.dev.name} PASID ${pasid}: entry cleared, PASID freed`);
  }
}
