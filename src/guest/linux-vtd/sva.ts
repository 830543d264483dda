/**
 * Shared virtual addressing as Linux's Intel IOMMU driver does it
 * (drivers/iommu/intel/{svm.c,prq.c,pasid.c,cache.c}, drivers/iommu/
 * {iommu-sva.c,io-pgfault.c}; VT-d spec 3.x 7.5 and 9.6; facts only):
 *
 *  - a process address space (`ProcessMm`): VMAs plus an x86 4-level CPU
 *    page table in guest RAM (P/RW/US/A/D leaves, 2 MiB PS leaves), whose
 *    top table is CR3; `fault` is handle_mm_fault (a page for an address
 *    inside a VMA with the access allowed, else the fault is invalid);
 *    `munmap` clears PTEs and tells the secondary-TLB notifiers;
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
 *    page-request drain, then the entry cleared;
 *  - the page-request queue (intel_iommu_enable_prq, prq_event_thread,
 *    io-pgfault's groups, intel_iommu_page_response): requests read from
 *    PQH to PQT, malformed ones answered Invalid Request at once, complete
 *    groups served through handle_mm_fault and answered with one
 *    page-group response (descriptor 9) each, PRS.PRO recovery.
 *
 * Every register and descriptor the code touches is logged.
 */
import type { GuestPlatform } from '../platform.js';
import { PAGE_SIZE, type GuestAllocator } from '../alloc.js';
import type { DeviceHandle } from './domain.js';
import { FIRST_STAGE, FIRST_STAGE_LEVELS, FsPte, IoPageTable, LARGE_PAGE, Pte, type MapPerm } from './pagetable.js';
import { PasidEntry, Pgtt, SmCtx, type PasidTable } from './pasid.js';
import { QiDesc, PcGran, PiotlbGran } from './invalidation.js';
import { FLPT_DEFAULT_DID, type VtdUnit } from './unit.js';
import type { SvaCapabilities } from './pcie-caps.js';

// ---- process address space ----------------------------------------------------

/** Index bits per level, entries per table, bytes per entry (x86 paging). */
const LEVEL_BITS = 9;
const ENTRIES = 512;
const PTE_SIZE = 8;
const PAGE_SHIFT = 12;
/** Bits 63:12 of an address or table entry: the 4 KiB page. */
const PAGE_BASE_MASK = ~0xfffn;
/** Lower canonical half of a 48-bit address space (user addresses are below it). */
const USER_VA_LIMIT = 2 ** 47;

/** A virtual memory area: [start, end) with its access rights. */
export interface Vma {
  readonly start: number;
  readonly end: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly name: string;
}

/** What a CPU page walk found for an address. */
export interface CpuWalk {
  /** Physical address of the byte. */
  readonly phys: number;
  readonly write: boolean;
  readonly user: boolean;
  /** Page size of the leaf (4 KiB or 2 MiB). */
  readonly pageSize: number;
}

/** Result of handle_mm_fault as iopf reports it. */
export type MmFaultResult = 'success' | 'invalid';

/** Called after PTEs of [start, end) were cleared (mmu_notifier arch_invalidate_secondary_tlbs). */
export type SecondaryTlbNotifier = (start: number, end: number) => Promise<void>;

/** A process's memory: VMAs and an x86 CPU page table in guest RAM. */
export class ProcessMm {
  readonly vmas: Vma[] = [];
  /** Lines describing each change. */
  readonly log: string[] = [];
  private readonly notifiers: SecondaryTlbNotifier[] = [];

  private constructor(private readonly p: GuestPlatform, private readonly alloc: GuestAllocator, readonly pt: IoPageTable, readonly name: string) {}

  /** An empty address space: the top-level table (CR3) allocated and zeroed. */
  static async create(p: GuestPlatform, alloc: GuestAllocator, name: string): Promise<ProcessMm> {
    const pt = await new IoPageTable(p, alloc, FIRST_STAGE_LEVELS, FIRST_STAGE).init();
    return new ProcessMm(p, alloc, pt, name);
  }

  /** Physical address of the top-level table (what CR3 and the PASID entry's FSPTPTR hold). */
  get cr3(): number {
    return this.pt.root;
  }

  /** The VMA holding `va`, if any (vma_lookup). */
  vmaAt(va: number): Vma | undefined {
    return this.vmas.find((v) => va >= v.start && va < v.end);
  }

  /** Adds a VMA (mmap without MAP_POPULATE): no page is mapped until touched. */
  mmap(start: number, size: number, perm: MapPerm, name: string): Vma {
    if (start % PAGE_SIZE || size <= 0 || size % PAGE_SIZE || start + size > USER_VA_LIMIT) throw new Error(`mmap: bad range 0x${start.toString(16)}+0x${size.toString(16)}`);
    if (this.vmas.some((v) => start < v.end && v.start < start + size)) throw new Error(`mmap: 0x${start.toString(16)} overlaps a VMA`);
    const vma: Vma = { start, end: start + size, read: perm.read, write: perm.write, name };
    this.vmas.push(vma);
    this.log.push(`${this.name}: mmap ${name} 0x${start.toString(16)}-0x${(start + size - 1).toString(16)} ${permName(perm)}`);
    return vma;
  }

  /** Faults in every page of [va, va+size) now (MAP_POPULATE); each must lie in a VMA. */
  async populate(va: number, size: number): Promise<void> {
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const vma = this.vmaAt(va + off);
      if (!vma) throw new Error(`populate: 0x${(va + off).toString(16)} is outside every VMA`);
      await this.mapPage(va + off, vma);
    }
  }

  /** A 2 MiB anonymous huge page: a VMA and one PS leaf at level 2 over 2 MiB of contiguous RAM. */
  async mapHuge(va: number, perm: MapPerm, name: string): Promise<number> {
    if (va % LARGE_PAGE) throw new Error(`mapHuge: 0x${va.toString(16)} is not 2 MiB aligned`);
    this.mmap(va, LARGE_PAGE, perm, name);
    const phys = await this.alloc.alloc(LARGE_PAGE, LARGE_PAGE);
    await this.pt.mapLarge(va, phys, LARGE_PAGE, perm);
    this.log.push(`${this.name}: 2 MiB page 0x${va.toString(16)} -> 0x${phys.toString(16)} (PS leaf at level 2)`);
    return phys;
  }

  /**
   * handle_mm_fault for a device fault (iommu_sva_handle_mm): an address
   * outside every VMA, or an access the VMA does not allow, is invalid;
   * otherwise the page is mapped (already-present pages are left alone).
   */
  async fault(addr: number, write: boolean): Promise<MmFaultResult> {
    const vma = this.vmaAt(addr);
    if (!vma) {
      this.log.push(`${this.name}: fault at 0x${addr.toString(16)}: no VMA (not the process's memory)`);
      return 'invalid';
    }
    if (write ? !vma.write : !vma.read) {
      this.log.push(`${this.name}: fault at 0x${addr.toString(16)}: ${write ? 'write' : 'read'} not allowed in ${vma.name}`);
      return 'invalid';
    }
    const page = addr - (addr % PAGE_SIZE);
    const walk = await this.walk(page);
    if (walk && (!write || walk.write)) {
      this.log.push(`${this.name}: fault at 0x${addr.toString(16)}: already mapped`);
      return 'success';
    }
    const phys = await this.mapPage(page, vma);
    this.log.push(`${this.name}: fault at 0x${addr.toString(16)} (${write ? 'write' : 'read'}) in ${vma.name}: page 0x${page.toString(16)} -> 0x${phys.toString(16)}`);
    return 'success';
  }

  /** Removes [va, va+size) (4 KiB pages) from the VMAs and the page table, then runs the notifiers. */
  async munmap(va: number, size: number): Promise<void> {
    const end = va + size;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i]!;
      if (end <= v.start || va >= v.end) continue;
      this.vmas.splice(i, 1);
      if (v.start < va) this.vmas.push({ ...v, end: va });
      if (end < v.end) this.vmas.push({ ...v, start: end });
    }
    await this.pt.unmap(va, size);
    this.log.push(`${this.name}: munmap 0x${va.toString(16)}-0x${(end - 1).toString(16)}: PTEs cleared`);
    for (const n of this.notifiers) await n(va, end);
  }

  /** Registers a secondary-TLB notifier (an SVA bond). */
  addNotifier(n: SecondaryTlbNotifier): void {
    this.notifiers.push(n);
  }

  /** Removes a notifier. */
  removeNotifier(n: SecondaryTlbNotifier): void {
    const i = this.notifiers.indexOf(n);
    if (i >= 0) this.notifiers.splice(i, 1);
  }

  /** The CPU's page walk from CR3 (reads guest memory; a user access): undefined when not present. */
  async walk(va: number): Promise<CpuWalk | undefined> {
    let table = this.cr3;
    let write = true;
    let user = true;
    for (let level = FIRST_STAGE_LEVELS; level >= 1; level--) {
      const shift = PAGE_SHIFT + LEVEL_BITS * (level - 1);
      const e = await this.p.read64(table + (Math.floor(va / 2 ** shift) % ENTRIES) * PTE_SIZE);
      if (!(e & FsPte.P)) return undefined;
      write &&= (e & FsPte.RW) !== 0n;
      user &&= (e & FsPte.US) !== 0n;
      const base = Number(e & Pte.ADDR_MASK);
      if (level === 1 || (level === 2 && e & FsPte.PS)) {
        const size = 2 ** shift;
        return { phys: base - (base % size) + (va % size), write, user, pageSize: size };
      }
      table = base;
    }
    return undefined;
  }

  /** A CPU store of `bytes` at `va` (page by page through the walk); false when a page is not mapped. */
  async cpuWrite(va: number, bytes: Uint8Array): Promise<boolean> {
    for (let done = 0; done < bytes.length;) {
      const w = await this.walk(va + done);
      if (!w) return false;
      const n = Math.min(bytes.length - done, PAGE_SIZE - ((va + done) % PAGE_SIZE));
      await this.p.writeBytes(w.phys, bytes.subarray(done, done + n));
      done += n;
    }
    return true;
  }

  /** A CPU load of `length` bytes at `va`; undefined when a page is not mapped. */
  async cpuRead(va: number, length: number): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(length);
    for (let done = 0; done < length;) {
      const w = await this.walk(va + done);
      if (!w) return undefined;
      const n = Math.min(length - done, PAGE_SIZE - ((va + done) % PAGE_SIZE));
      out.set(await this.p.readBytes(w.phys, n), done);
      done += n;
    }
    return out;
  }

  private async mapPage(page: number, vma: Vma): Promise<number> {
    const phys = await this.alloc.page();
    await this.pt.map(page, phys, PAGE_SIZE, { read: vma.read, write: vma.write });
    return phys;
  }
}

/** "rw-" style rights. */
function permName(perm: MapPerm): string {
  return `${perm.read ? 'r' : '-'}${perm.write ? 'w' : '-'}`;
}

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

// ---- descriptors --------------------------------------------------------------

/** One queued-invalidation descriptor (the two low qwords; 256-bit ones add zeros) and its name for logs. */
export interface QiDescriptor {
  readonly q0: bigint;
  readonly q1: bigint;
  readonly what: string;
}

/** Descriptor 9 (page-group response) and wait-descriptor fields not in invalidation.ts. */
export const PgrpDesc = {
  TYPE: 9n,
  /** qw0: PASID present 4, response code 15:12, RID 31:16, PASID 51:32. */
  PP: 1n << 4n,
  RC_SHIFT: 12n,
  RID_SHIFT: 16n,
  PASID_SHIFT: 32n,
  /** qw1: LPIG 2, PRGI 11:3. */
  LPIG: 1n << 2n,
  PRGI_SHIFT: 3n,
} as const;
/** Wait descriptor: fence (6) and page-request drain (7, with ECAP.PDS). */
export const WaitBits = { FN: 1n << 6n, PD: 1n << 7n } as const;
/** Linux QI_DONE: the status a wait writes. */
const QI_DONE = 2n;
/** Page-group response codes (PCIe §10.4.2). */
export const ResponseCode = { Success: 0, InvalidRequest: 1, Failure: 0xf } as const;
/** Largest device-TLB size order: 2^52 pages covers the 64-bit space (Linux MAX_AGAW_PFN_WIDTH). */
export const DEVTLB_ALL_ORDER = 64 - PAGE_SHIFT;

/** Descriptor 6 for `pages` pages at `addr` (qi_desc_piotlb; `pages` undefined: the whole PASID). */
export function piotlbDesc(did: number, pasid: number, addr?: number, pages?: number, ih = false): QiDescriptor {
  const base = QiDesc.PASID_IOTLB | (BigInt(did) << QiDesc.DID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT);
  if (addr === undefined || pages === undefined) return { q0: base | (PiotlbGran.PASID << QiDesc.GRAN_SHIFT), q1: 0n, what: `PASID-IOTLB DID ${did} PASID ${pasid} (all)` };
  const am = sizeOrder(pages);
  const aligned = addr - (addr % (PAGE_SIZE * 2 ** am));
  return {
    q0: base | (PiotlbGran.PAGE << QiDesc.GRAN_SHIFT),
    q1: BigInt(aligned) | (ih ? QiDesc.IH : 0n) | BigInt(am),
    what: `PASID-IOTLB DID ${did} PASID ${pasid} page-selective 0x${aligned.toString(16)} AM ${am}${ih ? ' IH' : ''}`,
  };
}

/** Descriptor 7, PASID-selective (pasid_cache_invalidation_with_pasid). */
export function pasidCacheDesc(did: number, pasid: number): QiDescriptor {
  return {
    q0: QiDesc.PASID_CACHE | (PcGran.PASID << QiDesc.GRAN_SHIFT) | (BigInt(did) << QiDesc.DID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT),
    q1: 0n,
    what: `PASID-cache DID ${did} PASID ${pasid}`,
  };
}

/**
 * Descriptor 8 (qi_desc_dev_iotlb_pasid): `order` 0 is the page at `addr`;
 * n > 0 sets S and the address bits 12..12+n-2 so the lowest clear bit
 * (12+n-1) marks a 2^n-page range.  QDEP is the ATS queue depth mod 32;
 * PFSID stays 0 (meaningful only with ECAP.DIT).
 */
export function devTlbPasidDesc(sid: number, pasid: number, qdep: number, addr: number, order: number): QiDescriptor {
  const q0 = QiDesc.PASID_DEVTLB | (BigInt(sid) << QiDesc.PDEVTLB_SID_SHIFT) | (BigInt(pasid) << QiDesc.PASID_SHIFT) |
    ((BigInt(qdep) & QiDesc.PDEVTLB_QDEP_MASK) << QiDesc.PDEVTLB_QDEP_SHIFT);
  const page = BigInt(addr) & PAGE_BASE_MASK;
  const q1 = order > 0 ? page | QiDesc.PDEVTLB_S | (((1n << BigInt(order - 1)) - 1n) << BigInt(PAGE_SHIFT)) : page;
  const size = order >= DEVTLB_ALL_ORDER ? 'all' : `${2 ** order} page${order ? 's' : ''} at 0x${addr.toString(16)}`;
  return { q0, q1, what: `PASID device-TLB SID 0x${sid.toString(16)} PASID ${pasid} ${size}${order ? ' (S)' : ''}` };
}

/** Descriptor 9 (intel_iommu_page_response / handle_bad_prq_event). */
export function pageResponseDesc(rid: number, pasid: number | undefined, prgi: number, code: number, lpig: boolean): QiDescriptor {
  const q0 = PgrpDesc.TYPE | (BigInt(code) << PgrpDesc.RC_SHIFT) | (BigInt(rid) << PgrpDesc.RID_SHIFT) |
    (pasid !== undefined ? PgrpDesc.PP | (BigInt(pasid) << PgrpDesc.PASID_SHIFT) : 0n);
  const q1 = (BigInt(prgi) << PgrpDesc.PRGI_SHIFT) | (lpig ? PgrpDesc.LPIG : 0n);
  return { q0, q1, what: `page-group response RID 0x${rid.toString(16)}${pasid !== undefined ? ` PASID ${pasid}` : ''} PRGI ${prgi} ${responseName(code)}` };
}

/** A wait descriptor with fence and status data but no status write (the drain's first descriptor). */
export function fenceWaitDesc(drain: boolean): QiDescriptor {
  return { q0: QiDesc.WAIT | WaitBits.FN | (drain ? WaitBits.PD : 0n) | (QI_DONE << QiDesc.WAIT_STATUS_SHIFT), q1: 0n, what: `wait FN${drain ? ' PD' : ''}` };
}

/** "Success" / "Invalid Request" / "Response Failure". */
export function responseName(code: number): string {
  return code === ResponseCode.Success ? 'Success' : code === ResponseCode.InvalidRequest ? 'Invalid Request' : code === ResponseCode.Failure ? 'Response Failure' : `code ${code}`;
}

/** log2 of `pages` rounded up to a power of two (Linux ilog2(__roundup_pow_of_two)). */
function sizeOrder(pages: number): number {
  let order = 0;
  while (2 ** order < pages) order++;
  return order;
}

/** Descriptor type bits: 3:0 and, shifted down by 5, 6:4 (from qw0 bits 11:9). */
const DESC_TYPE_LO_MASK = 0xfn;
const DESC_TYPE_HI_SHIFT = 5n;
const DESC_TYPE_HI_MASK = 0x70n;

/** The type of a queued-invalidation descriptor from its qword 0. */
export function descType(q0: bigint): number {
  return Number((q0 & DESC_TYPE_LO_MASK) | ((q0 >> DESC_TYPE_HI_SHIFT) & DESC_TYPE_HI_MASK));
}

/** Submits a batch (plus the queue's own status wait) and logs each descriptor with its qwords. */
export async function submitLogged(unit: VtdUnit, descs: readonly QiDescriptor[], log: string[]): Promise<void> {
  for (const d of descs) log.push(`  QI desc ${descType(d.q0)}: ${d.what} (qw0 0x${d.q0.toString(16)} qw1 0x${d.q1.toString(16)})`);
  await unit.qi.submit(descs.map((d) => [d.q0, d.q1] as const));
  log.push('  QI wait (SW, status 2) completed');
}

// ---- the device side: context bits, bind, unbind ------------------------------

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
function atsQdep(sva: SvaDevice): number {
  return sva.pcie.caps.ats?.qdep ?? 0;
}

/** Root-entry and context-entry geometry of scalable mode. */
const ROOT_ENTRY_SIZE = 16;
const SM_CONTEXT_SIZE = 32;
const DEVFN_HALF = 0x80;
const DEVFN_MASK = 0xff;
const BUS_SHIFT = 8;
const QWORD = 8;
const PASID_ENTRY_QWORDS = 8;

/**
 * The scalable context entry of a device that supports ATS, PASID and PRI
 * has DTE, PASIDE and PRE set (Linux context_entry_set_pasid_table with
 * info->ats_supported / pasid_supported / pri_supported).  The driver here
 * writes device contexts at probe without them, so this sets them on the
 * present entry and invalidates the device's context-cache entry.
 */
export async function setContextSvaBits(unit: VtdUnit, sva: SvaDevice, log: string[]): Promise<void> {
  const { sid } = sva;
  const bus = sid >> BUS_SHIFT;
  const devfn = sid & DEVFN_MASK;
  const root = await unit.p.read64(unit.rootTable + bus * ROOT_ENTRY_SIZE + (devfn >= DEVFN_HALF ? QWORD : 0));
  if (!(root & SmCtx.P)) throw new Error(`SVA: no context table for SID 0x${sid.toString(16)}`);
  const ctx = Number(root & PAGE_BASE_MASK) + (devfn % DEVFN_HALF) * SM_CONTEXT_SIZE;
  const lo = await unit.p.read64(ctx);
  const bits = (sva.pcie.caps.ats ? SmCtx.DTE : 0n) | (sva.pcie.caps.pasid ? SmCtx.PASIDE : 0n) | (sva.pcie.caps.pri ? SmCtx.PRE : 0n);
  await unit.p.write64(ctx, lo | bits);
  const names = [[SmCtx.DTE, 'DTE'], [SmCtx.PASIDE, 'PASIDE'], [SmCtx.PRE, 'PRE']] as const;
  log.push(`${sva.dev.name} SID 0x${sid.toString(16)}: scalable context 0x${ctx.toString(16)} lo 0x${lo.toString(16)} -> 0x${(lo | bits).toString(16)} ` +
    `(${names.filter(([b]) => bits & b).map(([, n]) => n).join(' ') || 'no SVA bits'})`);
  await unit.flushContext('attach-context', { kind: 'device', did: 0, sid, fm: 0 });
  log.push('  context-cache invalidation, device-selective');
}

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

// ---- the page-request queue ----------------------------------------------------

/** Page-request registers (VT-d 11.4.11) from the unit's base. */
export const PrqReg = { PQH: 0xc0, PQT: 0xc8, PQA: 0xd0, PRS: 0xdc, PECTL: 0xe0, PEDATA: 0xe4, PEADDR: 0xe8, PEUADDR: 0xec } as const;
/** PRS bits (both write-1-to-clear): pending page request, overflow. */
export const PrsBit = { PPR: 1, PRO: 2 } as const;
/** Linux PRQ_ORDER: 2^4 pages, PQS 4 = 2^(4+7) descriptors of 32 bytes. */
export const PRQ_ORDER = 4;
const PRQ_BYTES = PAGE_SIZE * 2 ** PRQ_ORDER;
/** Bytes of one page request descriptor. */
const PR_DESC_SIZE = 32;
/** Linux PRQ_RING_MASK: PQH/PQT offsets within the ring, 32-byte aligned. */
const PRQ_RING_MASK = PRQ_BYTES - PR_DESC_SIZE;
/** Linux PRQ_DEPTH: descriptors in the ring (the PRI allocation asked for). */
export const PRQ_DEPTH = PRQ_BYTES / PR_DESC_SIZE;

/** Page request descriptor fields (spec 7.5.1.1; Linux struct page_req_dsc). */
export const PrDescBits = {
  PP: 1n << 8n, RID_SHIFT: 16n, RID_MASK: 0xffffn, PASID_SHIFT: 32n, PASID_MASK: 0xf_ffffn,
  EXE: 1n << 52n, PMR: 1n << 53n,
  RD: 1n, WR: 2n, LPIG: 4n, PRGI_SHIFT: 3n, PRGI_MASK: 0x1ffn, ADDR_MASK: ~0xfffn,
} as const;

/** One decoded page request. */
export interface PageRequestDesc {
  readonly index: number;
  readonly rid: number;
  readonly pasid: number | undefined;
  /** Page address (exact below 2^53; meaningful when `canonical` and in the lower half). */
  readonly addr: number;
  /** Bits 63:47 of the address all equal (x86 4-level canonical form). */
  readonly canonical: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly exec: boolean;
  readonly priv: boolean;
  readonly lpig: boolean;
  readonly prgi: number;
  readonly q0: bigint;
  readonly q1: bigint;
}

/** Decodes a page request descriptor from its two qwords. */
export function decodePageRequest(index: number, q0: bigint, q1: bigint): PageRequestDesc {
  return {
    index,
    rid: Number((q0 >> PrDescBits.RID_SHIFT) & PrDescBits.RID_MASK),
    pasid: q0 & PrDescBits.PP ? Number((q0 >> PrDescBits.PASID_SHIFT) & PrDescBits.PASID_MASK) : undefined,
    addr: Number(q1 & PrDescBits.ADDR_MASK),
    canonical: canonical48(q1 & PrDescBits.ADDR_MASK),
    read: (q1 & PrDescBits.RD) !== 0n,
    write: (q1 & PrDescBits.WR) !== 0n,
    exec: (q0 & PrDescBits.EXE) !== 0n,
    priv: (q0 & PrDescBits.PMR) !== 0n,
    lpig: (q1 & PrDescBits.LPIG) !== 0n,
    prgi: Number((q1 >> PrDescBits.PRGI_SHIFT) & PrDescBits.PRGI_MASK),
    q0,
    q1,
  };
}

/** A page-group response the handler sent. */
export interface SentResponse {
  readonly rid: number;
  readonly pasid: number | undefined;
  readonly prgi: number;
  readonly code: number;
}

/** What one run of the handler did. */
export interface PrqRun {
  readonly requests: PageRequestDesc[];
  readonly responses: SentResponse[];
  /** PRS.PRO was found set (and cleared if the queue had drained). */
  readonly overflow: boolean;
}

/** Where the handler finds the address space of a (RID, PASID). */
export type MmResolver = (rid: number, pasid: number) => ProcessMm | undefined;

/** Bits 63:47 of a 48-bit canonical address: all clear or all set. */
const CANONICAL_HIGH_SHIFT = 47n;
const CANONICAL_HIGH_ONES = (1n << 17n) - 1n;

/** The x86 canonical test of a 64-bit address with 48-bit virtual addresses (Linux is_canonical_address). */
function canonical48(addr: bigint): boolean {
  const high = addr >> CANONICAL_HIGH_SHIFT;
  return high === 0n || high === CANONICAL_HIGH_ONES;
}

/** The unit's page-request queue and its handler (Linux prq.c + io-pgfault.c). */
export class PageRequestQueue {
  /** Guest-physical base of the ring. */
  base = 0;
  readonly log: string[] = [];
  /** Requests of groups whose last request has not arrived (iopf partial list), by RID/PASID/PRGI. */
  private readonly partial = new Map<string, PageRequestDesc[]>();

  constructor(readonly unit: VtdUnit) {}

  private reg(off: number): number {
    return this.unit.base + off;
  }

  /**
   * intel_iommu_enable_prq: ring pages, the event MSI (PEDATA, PEADDR,
   * PEUADDR, then PECTL 0 to unmask, as the irq core does), then PQH = PQT = 0
   * and PQA = base | PRQ_ORDER.
   */
  async enable(vector: number, address: number): Promise<void> {
    const p = this.unit.p;
    this.base = await this.unit.alloc.alloc(PRQ_BYTES, PRQ_BYTES);
    await p.write(this.reg(PrqReg.PEDATA), 4, vector);
    await p.write(this.reg(PrqReg.PEADDR), 4, address);
    await p.write(this.reg(PrqReg.PEUADDR), 4, 0);
    await p.write(this.reg(PrqReg.PECTL), 4, 0);
    await p.write64(this.reg(PrqReg.PQH), 0n);
    await p.write64(this.reg(PrqReg.PQT), 0n);
    const pqa = BigInt(this.base) | BigInt(PRQ_ORDER);
    await p.write64(this.reg(PrqReg.PQA), pqa);
    this.log.push(`unit 0x${this.unit.base.toString(16)}: page-request queue at 0x${this.base.toString(16)} (${PRQ_DEPTH} descriptors): ` +
      `PEDATA 0x${vector.toString(16)} PEADDR 0x${address.toString(16)} PECTL 0 (unmasked), PQH 0 PQT 0 PQA 0x${pqa.toString(16)}`);
  }

  /** intel_iommu_finish_prq: PQH, PQT, PQA cleared. */
  async disable(): Promise<void> {
    const p = this.unit.p;
    await p.write64(this.reg(PrqReg.PQH), 0n);
    await p.write64(this.reg(PrqReg.PQT), 0n);
    await p.write64(this.reg(PrqReg.PQA), 0n);
    this.log.push(`unit 0x${this.unit.base.toString(16)}: page-request queue disabled (PQH, PQT, PQA 0)`);
  }

  /** PRS (PPR bit 0, PRO bit 1). */
  status(): Promise<number> {
    return this.unit.p.read(this.reg(PrqReg.PRS), 4);
  }

  /**
   * prq_event_thread: clear PRS.PPR, read PQT and PQH, decode each request
   * and hand it to iopf (malformed ones answered Invalid Request at once),
   * PQH = PQT, PRO recovery; then the iopf work runs: each complete group
   * is served through `resolve` (handle_mm_fault per request, errors sticky)
   * and answered with one page-group response.
   */
  async handle(resolve: MmResolver): Promise<PrqRun> {
    const p = this.unit.p;
    const requests: PageRequestDesc[] = [];
    const responses: SentResponse[] = [];
    const groups: PageRequestDesc[][] = [];
    await p.write(this.reg(PrqReg.PRS), 4, PrsBit.PPR);
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    let head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK;
    this.log.push(`page-request event: PRS.PPR cleared, PQH 0x${head.toString(16)} PQT 0x${tail.toString(16)}`);
    while (head !== tail) {
      const at = this.base + head;
      const req = decodePageRequest(head / PR_DESC_SIZE, await p.read64(at), await p.read64(at + QWORD));
      requests.push(req);
      this.log.push(`  page request ${req.index}: ${describeRequest(req)} (qw0 0x${req.q0.toString(16)} qw1 0x${req.q1.toString(16)})`);
      const bad = badRequest(req);
      if (bad) {
        this.log.push(`  ${bad}: Invalid Request`);
        if (req.lpig) responses.push(await this.respond(req, ResponseCode.InvalidRequest));
      } else if (req.lpig && !req.read && !req.write) {
        this.log.push('  stop marker: dropped, no response');
      } else {
        const key = `${req.rid}:${req.pasid ?? -1}:${req.prgi}`;
        const list = this.partial.get(key) ?? [];
        list.push(req);
        if (req.lpig) { this.partial.delete(key); groups.push(list); } else this.partial.set(key, list);
      }
      head = (head + PR_DESC_SIZE) & PRQ_RING_MASK;
    }
    await p.write64(this.reg(PrqReg.PQH), BigInt(tail));
    this.log.push(`  PQH <- 0x${tail.toString(16)}`);
    const overflow = await this.recoverOverflow();
    for (const g of groups) responses.push(await this.serveGroup(g, resolve));
    return { requests, responses, overflow };
  }

  /** PRS.PRO set: clear it once the queue is empty (PQH == PQT), dropping partial groups (iopf_queue_discard_partial). */
  private async recoverOverflow(): Promise<boolean> {
    const p = this.unit.p;
    if (!((await this.status()) & PrsBit.PRO)) return false;
    const head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK;
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    this.log.push(`  PRQ overflow detected (PRS.PRO)`);
    if (head === tail) {
      this.partial.clear();
      await p.write(this.reg(PrqReg.PRS), 4, PrsBit.PRO);
      this.log.push('  PRQ overflow cleared (PRS.PRO written 1)');
    }
    return true;
  }

  /** iopf_handler: every request of the group through handle_mm_fault (errors sticky), one response. */
  private async serveGroup(group: readonly PageRequestDesc[], resolve: MmResolver): Promise<SentResponse> {
    const last = group[group.length - 1]!;
    let code: number = ResponseCode.Success;
    for (const req of group) {
      if (code !== ResponseCode.Success) break;
      const mm = req.pasid === undefined ? undefined : resolve(req.rid, req.pasid);
      if (!mm) {
        this.log.push(`  iopf: no SVA domain for RID 0x${req.rid.toString(16)} PASID ${req.pasid ?? '-'}`);
        code = ResponseCode.InvalidRequest;
        continue;
      }
      const r = await mm.fault(req.addr, req.write);
      this.log.push(...mm.log.splice(0).map((l) => `  ${l}`));
      if (r !== 'success') code = ResponseCode.InvalidRequest;
    }
    return this.respond(last, code);
  }

  /** Queues the group's response; a unit refusing it (IQE: QEMU refuses PP=0) is logged, as Linux's qi_submit_sync returns -EINVAL. */
  private async respond(req: PageRequestDesc, code: number): Promise<SentResponse> {
    try {
      await submitLogged(this.unit, [pageResponseDesc(req.rid, req.pasid, req.prgi, code, true)], this.log);
    } catch (e) {
      this.log.push(`  page-group response refused: ${(e as Error).message}`);
    }
    return { rid: req.rid, pasid: req.pasid, prgi: req.prgi, code };
  }

  /**
   * intel_iommu_drain_pasid_prq: with nothing of the device's PASID left in
   * the ring, one batch of a fenced wait, PASID-IOTLB (all of the PASID,
   * with the DID of the device's DMA domain as Linux takes it),
   * device-TLB (whole range) and a wait with PD, retried while PRS.PRO
   * is set.  (Linux sets PD on the queue's own status wait; this driver's
   * queue appends its status wait itself, so PD goes on a fenced wait just
   * before it: the same drain point.)
   */
  async drain(sva: SvaDevice, pasid: number, log: string[]): Promise<void> {
    const unit = this.unit;
    if (await this.pendingFor(sva.sid, pasid)) {
      // Linux waits for the handler thread; the PASID has no address space any more, so they are answered Invalid.
      log.push(`drain: requests of PASID ${pasid} still queued: handler run first`);
      await this.handle(() => undefined);
      log.push(...this.log.splice(0));
    }
    const pds = ((unit.ecap >> ECAP_PDS_SHIFT) & 1n) === 1n;
    const did = sva.dev.domain ? sva.dev.domain.did(unit) : FLPT_DEFAULT_DID;
    const batch = [fenceWaitDesc(false), piotlbDesc(did, pasid)];
    if (sva.pcie.atsEnabled) batch.push(devTlbPasidDesc(sva.sid, pasid, atsQdep(sva), 0, DEVTLB_ALL_ORDER));
    if (pds) batch.push(fenceWaitDesc(true));
    log.push(`drain page requests of PASID ${pasid}${pds ? '' : ' (no ECAP.PDS: without the PD wait)'}`);
    for (let tries = 0; tries < DRAIN_RETRIES; tries++) {
      await submitLogged(unit, batch, log);
      if (!((await this.status()) & PrsBit.PRO)) return;
      log.push('  PRS.PRO set after the drain: retrying');
      await this.recoverOverflow();
    }
  }

  /** True when a request of (`rid`, `pasid`) sits between PQH and PQT. */
  private async pendingFor(rid: number, pasid: number): Promise<boolean> {
    const p = this.unit.p;
    if (!this.base) return false;
    const tail = Number(await p.read64(this.reg(PrqReg.PQT))) & PRQ_RING_MASK;
    for (let head = Number(await p.read64(this.reg(PrqReg.PQH))) & PRQ_RING_MASK; head !== tail; head = (head + PR_DESC_SIZE) & PRQ_RING_MASK) {
      const req = decodePageRequest(head / PR_DESC_SIZE, await p.read64(this.base + head), await p.read64(this.base + head + QWORD));
      if (req.rid === rid && req.pasid === pasid) return true;
    }
    return false;
  }
}

/** ECAP.PDS (page-request drain support), bit 42 (not among regs.ts's fields). */
const ECAP_PDS_SHIFT = 42n;
/** Drain attempts while overflow persists. */
const DRAIN_RETRIES = 4;

/** Linux's reasons to answer a request Invalid without iopf (prq_event_thread). */
function badRequest(req: PageRequestDesc): string | undefined {
  if (!req.canonical) return 'address is not canonical';
  if (req.priv && (req.read || req.write)) return 'page request in privileged mode';
  if (req.exec && req.read) return 'execution request not supported';
  return undefined;
}

/** "RID 0x10 PASID 1 addr 0x... R W LPIG PRGI 3". */
export function describeRequest(req: PageRequestDesc): string {
  const acc = `${req.read ? 'R' : ''}${req.write ? 'W' : ''}${req.exec ? 'X' : ''}${req.priv ? ' PMR' : ''}` || '-';
  return `RID 0x${req.rid.toString(16)} PASID ${req.pasid ?? '-'} addr 0x${req.addr.toString(16)} ${acc}${req.lpig ? ' LPIG' : ''} PRGI ${req.prgi}`;
}
