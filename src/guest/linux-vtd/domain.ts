/**
 * IOMMU domains (Linux iommu_domain types) and context-entry programming.
 *  - identity: pass-through context (TT=2) when ECAP.PT, else the static
 *    identity domain (si_domain) mapping RAM 1:1;
 *  - dma: the DMA-API domain: an IOVA allocator and map/unmap with the
 *    invalidations Linux issues (caching-mode aware);
 *  - unmanaged: a vfio-like owner picks its IOVAs;
 *  - blocked: no context entry at all (every DMA faults).
 * In scalable mode the same domains live in the device's RID_PASID entry
 * (pasid.ts): DMA and unmanaged domains on first-stage tables when the unit
 * offers them, else second stage; identity as pass-through (DID 1).  Map
 * and unmap then invalidate as Linux's cache tags do: first-stage domains
 * never flush on map (caching mode covers second stage only) and unmap with
 * PASID-based IOTLB descriptors; second-stage domains as in legacy mode.
 */
import { PAGE_SIZE } from '../alloc.js';
import { FLPT_DEFAULT_DID, type VtdUnit } from './unit.js';
import { FIRST_STAGE, FIRST_STAGE_LEVELS, IovaAllocator, IoPageTable, SECOND_STAGE, type MapPerm } from './pagetable.js';
import { RID_PASID, type PasidTable } from './pasid.js';
import type { PcieSvaFunction } from './pcie-caps.js';
import type { DeviceSvaSupport } from './sva-support.js';

/** Domain kinds. */
export type DomainType = 'identity' | 'dma' | 'unmanaged' | 'blocked';

/** Legacy context entry fields (VT-d 9.3). */
export const Ctx = {
  P: 1n,
  FPD: 2n,
  TT_SHIFT: 2n,
  TT_MULTI_LEVEL: 0n,
  TT_DEV_IOTLB: 1n,
  TT_PASS_THROUGH: 2n,
  AW_MASK: 7n,
  DID_SHIFT: 8n,
} as const;
/** Root entry present bit. */
const ROOT_P = 1n;
const ENTRY_SIZE = 16;
const DEVFNS = 256;

/** A device as the driver addresses it: requester IDs it programs (own ID first, then DMA aliases). */
export interface DeviceHandle {
  readonly name: string;
  readonly sids: readonly number[];
  readonly unit: VtdUnit;
  /** RMRR ranges [base, limit] this device needs identity-mapped. */
  readonly rmrrs: ReadonlyArray<readonly [number, number]>;
  domain: Domain | undefined;
  /** Scalable mode: the device's PASID directory and tables (set up at probe). */
  pasidTable?: PasidTable | undefined;
  /** Scalable mode, PCI Express functions: the ATS / PASID / PRI capabilities read at probe. */
  pcie?: PcieSvaFunction | undefined;
  /** What the driver decided at probe to use of them (absent: nothing; sva-support.ts). */
  svaSupport?: DeviceSvaSupport | undefined;
}


/** DMA direction of a DMA-API mapping. */
export type DmaDirection = 'to-device' | 'from-device' | 'bidirectional';

/** One domain. */
export class Domain {
  pageTable: IoPageTable | undefined;
  /** The page table is first stage (scalable mode with ECAP.FLTS); decided with the table. */
  firstStage = false;
  iova: IovaAllocator | undefined;
  readonly devices = new Set<DeviceHandle>();
  /** Highest IOVA + 1 handed out by the DMA API (the smallest DMA mask of the devices). */
  dmaLimit = 2 ** 32;
  /** DID per unit. */
  private readonly dids = new Map<VtdUnit, number>();

  constructor(readonly type: DomainType, readonly name: string) {}

  /** The DID this domain uses on `unit` (allocated on first use; pass-through PASID entries use DID 1). */
  did(unit: VtdUnit): number {
    if (unit.scalable && this.passThrough(unit)) return FLPT_DEFAULT_DID;
    let d = this.dids.get(unit);
    if (d === undefined) { d = unit.allocDid(); this.dids.set(unit, d); }
    return d;
  }

  /** Units this domain is attached through. */
  units(): VtdUnit[] {
    return [...new Set([...this.devices].map((d) => d.unit))];
  }

  /** Whether this domain's context (legacy) or RID_PASID (scalable) entries use pass-through. */
  passThrough(unit: VtdUnit): boolean {
    return this.type === 'identity' && unit.ecapf('PT') === 1;
  }

  /** Allocates the page table for a translating domain (first stage when the unit prefers it). */
  async ensurePageTable(unit: VtdUnit): Promise<IoPageTable> {
    if (!this.pageTable) {
      this.firstStage = unit.firstStage;
      this.pageTable = this.firstStage
        ? await new IoPageTable(unit.p, unit.alloc, FIRST_STAGE_LEVELS, FIRST_STAGE).init()
        : await new IoPageTable(unit.p, unit.alloc, unit.levels, SECOND_STAGE).init();
    }
    if (!this.iova && this.type === 'dma') this.iova = new IovaAllocator(2 ** Math.min(unit.addressWidth, 32));
    return this.pageTable;
  }

  /** Maps [iova, +size) -> phys and issues the invalidation Linux issues after a map. */
  async map(iova: number, phys: number, size: number, perm: MapPerm): Promise<void> {
    if (!this.pageTable) throw new Error(`domain ${this.name}: no page table`);
    await this.pageTable.map(iova, phys, size, perm);
    await this.afterMap(iova, size);
  }

  /** Maps scattered pages at consecutive IOVAs. */
  async mapPages(iova: number, pages: readonly number[], perm: MapPerm): Promise<void> {
    if (!this.pageTable) throw new Error(`domain ${this.name}: no page table`);
    await this.pageTable.mapPages(iova, pages, perm);
    await this.afterMap(iova, pages.length * PAGE_SIZE);
  }

  /** After map: caching mode -> PSI per unit (second stage only); otherwise a write-buffer flush. */
  async afterMap(iova: number, size: number): Promise<void> {
    for (const unit of this.units()) {
      if (unit.cachingMode && !this.firstStage) await unit.flushIotlb('map-iotlb', psi(this.did(unit), iova, size, false));
      else await unit.flushWriteBuffer();
    }
  }

  /** Unmaps and invalidates (PSI, IH=1: no page-table pages were freed); first stage: PASID-based PSI on RID_PASID. */
  async unmap(iova: number, size: number): Promise<void> {
    if (!this.pageTable) return;
    await this.pageTable.unmap(iova, size);
    for (const unit of this.units()) {
      const scope = psi(this.did(unit), iova, size, true);
      if (this.firstStage) await unit.flushPasidIotlb('unmap-iotlb', { ...scope, pasid: RID_PASID });
      else await unit.flushIotlb('unmap-iotlb', scope);
    }
  }

  /**
   * Rewrites the present 4 KiB leaf of `iova` in place to `phys` (no clear
   * first: one 64-bit store, which the spec allows for a leaf) and
   * invalidates that page: PSI (IH=0) on second stage, PASID-based PSI on
   * RID_PASID on first stage.  Linux never does this (it unmaps, then
   * maps); it exists so a test can leave the invalidation out.
   */
  async remapInPlace(iova: number, phys: number, perm: MapPerm): Promise<void> {
    if (!this.pageTable) throw new Error(`domain ${this.name}: no page table`);
    await this.pageTable.map(iova, phys, PAGE_SIZE, perm);
    for (const unit of this.units()) {
      const scope = psi(this.did(unit), iova, PAGE_SIZE, false);
      if (this.firstStage) await unit.flushPasidIotlb('remap-iotlb', { ...scope, pasid: RID_PASID });
      else await unit.flushIotlb('remap-iotlb', scope);
    }
  }

  /** DMA API: map a physically contiguous buffer, returns its IOVA. */
  async dmaMap(phys: number, size: number, dir: DmaDirection): Promise<number> {
    if (this.type !== 'dma' || !this.iova) throw new Error(`domain ${this.name}: not a DMA domain`);
    const offset = phys % PAGE_SIZE;
    const span = Math.ceil((offset + size) / PAGE_SIZE) * PAGE_SIZE;
    const iova = this.iova.alloc(span, this.dmaLimit);
    if (iova === undefined) throw new Error('IOVA space exhausted');
    await this.map(iova, phys - offset, span, dirPerm(dir, this.zlr()));
    return iova + offset;
  }

  /** DMA API: map scattered pages as one contiguous IOVA range (dma_map_sg with merging). */
  async dmaMapPages(pages: readonly number[], dir: DmaDirection): Promise<number> {
    if (this.type !== 'dma' || !this.iova) throw new Error(`domain ${this.name}: not a DMA domain`);
    const iova = this.iova.alloc(pages.length * PAGE_SIZE, this.dmaLimit);
    if (iova === undefined) throw new Error('IOVA space exhausted');
    await this.mapPages(iova, pages, dirPerm(dir, this.zlr()));
    return iova;
  }

  /** DMA API: unmap what dmaMap/dmaMapPages returned. */
  async dmaUnmap(iova: number, size: number): Promise<void> {
    const base = iova - (iova % PAGE_SIZE);
    await this.unmap(base, Math.ceil((iova - base + size) / PAGE_SIZE) * PAGE_SIZE);
    this.iova?.free(base);
  }

  private zlr(): boolean {
    return this.units().every((u) => u.capf('ZLR') === 1);
  }
}

/** Page-selective invalidation covering [iova, +size): AM = log2(roundup_pow2(pages)), address aligned to it. */
export function psi(did: number, iova: number, size: number, ih: boolean): { kind: 'page'; did: number; addr: number; am: number; ih: boolean } {
  const pages = Math.max(1, Math.ceil(size / PAGE_SIZE));
  let am = 0;
  while (2 ** am < pages) am++;
  let span = 2 ** am * PAGE_SIZE;
  let addr = Math.floor(iova / span) * span;
  while (addr + span < iova + size) { am++; span *= 2; addr = Math.floor(iova / span) * span; }
  return { kind: 'page', did, addr, am, ih };
}

/** Linux: READ for to-device/bidirectional, or always when CAP.ZLR is 0. */
export function dirPerm(dir: DmaDirection, zlr: boolean): MapPerm {
  return { read: dir !== 'from-device' || !zlr, write: dir !== 'to-device' };
}

/** The context table of `bus` on `unit`, created (root entry set) when missing. */
async function contextTable(unit: VtdUnit, bus: number, tables: Map<number, number>): Promise<number> {
  let t = tables.get(bus);
  if (t === undefined) {
    t = await unit.alloc.page();
    tables.set(bus, t);
    await unit.p.write64(unit.rootTable + bus * ENTRY_SIZE + 8, 0n);
    await unit.p.write64(unit.rootTable + bus * ENTRY_SIZE, BigInt(t) | ROOT_P);
    await unit.flushWriteBuffer();
  }
  return t;
}

/** Context tables per unit (bus -> table). */
const contextTables = new WeakMap<VtdUnit, Map<number, number>>();

/** Programs one requester's context entry for `domain` with Linux's invalidation sequence. */
export async function setContext(unit: VtdUnit, sid: number, domain: Domain): Promise<void> {
  let tables = contextTables.get(unit);
  if (!tables) { tables = new Map(); contextTables.set(unit, tables); }
  const ctx = (await contextTable(unit, sid >> 8, tables)) + (sid % DEVFNS) * ENTRY_SIZE;
  const did = domain.did(unit);
  let lo: bigint;
  if (domain.passThrough(unit)) {
    lo = (Ctx.TT_PASS_THROUGH << Ctx.TT_SHIFT) | Ctx.P;
  } else {
    const pt = await domain.ensurePageTable(unit);
    lo = BigInt(pt.root) | (Ctx.TT_MULTI_LEVEL << Ctx.TT_SHIFT) | Ctx.P;
  }
  const hi = (BigInt(did) << Ctx.DID_SHIFT) | BigInt(unit.levels - 2);
  await unit.p.write64(ctx + 8, hi);
  await unit.p.write64(ctx, lo);
  if (unit.cachingMode) {
    await unit.flushContext('attach-context', { kind: 'device', did: 0, sid, fm: 0 });
    await unit.flushIotlb('attach-iotlb', { kind: 'domain', did });
  } else {
    await unit.flushWriteBuffer();
  }
}

/** Clears one requester's context entry, then context-cache (old DID) and IOTLB DSI. */
export async function clearContext(unit: VtdUnit, sid: number, oldDid: number): Promise<void> {
  const tables = contextTables.get(unit);
  const t = tables?.get(sid >> 8);
  if (t === undefined) return;
  const ctx = t + (sid % DEVFNS) * ENTRY_SIZE;
  await unit.p.write64(ctx, 0n);
  await unit.p.write64(ctx + 8, 0n);
  await unit.flushContext('detach-context', { kind: 'device', did: oldDid, sid, fm: 0 });
  await unit.flushIotlb('detach-iotlb', { kind: 'domain', did: oldDid });
}
