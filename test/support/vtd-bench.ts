/**
 * A small bench for driving one VT-d unit without a machine: guest RAM in a
 * system address space, the unit's registers mapped at 0xFED90000, an MSI
 * recorder, fake PCI requesters with their DMA spaces, and a guest-side
 * builder of legacy root / context / second-stage tables, a recorder of the
 * unit's typed events, and queue helpers.  The unit is the whole one, with
 * its invalidation queue and interrupt remapper (`iommu.queue`,
 * `iommu.remapper`), as QEMU's always is.  The one VT-d unit of the test
 * suite: the intel-iommu unit tests, the whole-machine tests and the
 * benchmarks; never device code.
 */
import { AddressSpace } from '../../src/memory/address-space.js';
import { createRam } from '../../src/memory/ram-backend.js';
import { ContainerRegion, RamRegion } from '../../src/memory/region.js';
import { DmaSpace } from '../../src/memory/dma-space.js';
import { NO_PASID, type DmaRequester } from '../../src/memory/iommu.js';
import type { InterruptOrigin, MsiTarget } from '../../src/core/irq.js';
import { VirtualClock } from '../../src/core/clock.js';
import type { PropValues, Tracer } from '../../src/machine/device-type.js';
import { IntelIommu } from '../../src/hw/intel-iommu/device.js';
import type { FaultEvent, InvalidateEvent } from '../../src/hw/intel-iommu/events.js';
import { resolveIommuConfig, type KernelIrqchip } from '../../src/hw/intel-iommu/props.js';
import { DMAR_BASE, Gcmd, Gsts, Reg } from '../../src/hw/intel-iommu/reg-layout.js';

/** One recorded MSI. */
export interface RecordedMsi {
  address: number;
  data: number;
  origin: InterruptOrigin;
}

/** A fake requester on a bus whose number can change. */
export class FakeRequester implements DmaRequester {
  readonly key = {};
  constructor(
    public bus: number,
    readonly devfn: number,
  ) {}
  busNumber(): number {
    return this.bus;
  }
}

/** Options of a test unit. */
export interface VtdBenchOptions {
  props?: PropValues;
  kernelIrqchip?: KernelIrqchip;
  ramSize?: number;
  tracer?: Tracer;
}

/** What the unit announced since `recordEvents()`, in order. */
export interface RecordedEvents {
  /** Every 'fault' event: recorded, suppressed by FPD, collapsed, overflowed or dropped under PFO. */
  readonly faults: FaultEvent[];
  /** Every 'invalidate' event (register, queue or internal). */
  readonly invalidations: InvalidateEvent[];
}

const PAGE = 4096;
/** Size of a 128-bit invalidation descriptor. */
const DESC_SIZE = 16;
/** IQH / IQT hold the descriptor index from bit 4 (128-bit descriptors). */
const IQ_INDEX_SHIFT = 4;

/** A unit over guest RAM, with helpers. */
export class VtdBench {
  readonly system = new ContainerRegion('system', 2 ** 40);
  readonly memory: AddressSpace;
  readonly msis: RecordedMsi[] = [];
  readonly iommu: IntelIommu;
  readonly clock = new VirtualClock('qtest');
  /** Next free page for tables (bump allocator from 16 MiB). */
  private nextTablePage = 0x100_0000;

  constructor(opts: VtdBenchOptions = {}) {
    const ram = createRam(opts.ramSize ?? 64 * 1024 * 1024, 'ts');
    this.system.add(new RamRegion('ram', ram.size, ram), 0);
    this.memory = new AddressSpace('memory', this.system);
    const msi: MsiTarget = { deliverMsi: (address, data, origin) => this.msis.push({ address, data, origin }) };
    const config = resolveIommuConfig(opts.props ?? {}, opts.kernelIrqchip ?? 'off');
    this.iommu = new IntelIommu({ memory: this.memory, msi, clock: this.clock, tracer: opts.tracer }, config);
    this.system.add(this.iommu.region, DMAR_BASE);
  }

  /** 32-bit register read through the bus. */
  r32(off: number): number {
    return this.memory.read(DMAR_BASE + off, 4);
  }
  /** 64-bit register read through the bus. */
  r64(off: number): bigint {
    return this.memory.read64(DMAR_BASE + off);
  }
  /** 32-bit register write through the bus. */
  w32(off: number, v: number): void {
    this.memory.write(DMAR_BASE + off, 4, v >>> 0);
  }
  /** 64-bit register write through the bus. */
  w64(off: number, v: bigint): void {
    this.memory.write64(DMAR_BASE + off, v);
  }

  /** Guest memory qword write. */
  poke64(addr: number, v: bigint): void {
    this.memory.write64(addr, v);
  }
  /** Guest memory qword read. */
  peek64(addr: number): bigint {
    return this.memory.read64(addr);
  }

  /** Guest memory dword read (little-endian). */
  peek32(addr: number): number {
    return this.memory.read(addr, 4);
  }

  /**
   * Starts recording the unit's 'fault' and 'invalidate' events (typed
   * events of events.ts; the unit builds them only while someone listens).
   */
  recordEvents(): RecordedEvents {
    const rec: RecordedEvents = { faults: [], invalidations: [] };
    this.iommu.events.on('fault', (e) => rec.faults.push(e));
    this.iommu.events.on('invalidate', (e) => rec.invalidations.push(e));
    return rec;
  }

  /** Writes one 128-bit invalidation descriptor at `base + index * 16` of guest memory. */
  putDesc(base: number, index: number, qw0: bigint, qw1 = 0n): void {
    this.poke64(base + index * DESC_SIZE, qw0);
    this.poke64(base + index * DESC_SIZE + 8, qw1);
  }

  /** Programs IQA (`base | qs`) and sets GCMD.QIE; returns GSTS.QIES afterwards. */
  enableQueue(base: number, qs = 0): boolean {
    this.w64(Reg.IQA, BigInt(base) | BigInt(qs));
    return this.setQie(true);
  }

  /** Sets or clears GCMD.QIE (persistent bits kept); returns GSTS.QIES afterwards. */
  setQie(on: boolean): boolean {
    if (on) this.gcmd(Gcmd.QIE);
    else this.gcmd(0, Gcmd.QIE);
    return (this.r32(Reg.GSTS) & Gsts.QIES) !== 0;
  }

  /** Moves the queue tail to descriptor `index` (IQT = index << 4). */
  setTail(index: number): void {
    this.w32(Reg.IQT, index << IQ_INDEX_SHIFT);
  }

  /** IQH as a descriptor index. */
  queueHead(): number {
    return this.r32(Reg.IQH) >>> IQ_INDEX_SHIFT;
  }

  /** A zeroed 4 KiB page for tables. */
  allocPage(): number {
    const p = this.nextTablePage;
    this.nextTablePage += PAGE;
    this.memory.fill(p, PAGE, 0);
    return p;
  }

  /** A requester and its DMA space through the unit. */
  device(bus: number, devfn: number, pasid = NO_PASID): { req: FakeRequester; dma: DmaSpace } {
    const req = new FakeRequester(bus, devfn);
    // Like a PCI function plugged behind the unit (QEMU creates its address space at machine-done),
    // the requester's translator exists from now on, so refreshes decide its pass-through switch.
    this.iommu.translatorFor(req);
    const dma = new DmaSpace(this.memory, () => true, () => this.iommu.translatorFor(req, pasid));
    return { req, dma };
  }

  /** A DMA space of an existing requester for `pasid` (requests with a PASID prefix). */
  pasidSpace(req: FakeRequester, pasid: number): DmaSpace {
    return new DmaSpace(this.memory, () => true, () => this.iommu.translatorFor(req, pasid));
  }

  /** Root table with SRTP (does not enable translation); `scalable` sets RTADDR.SMT. */
  setRoot(root: number, scalable = false): void {
    this.w64(Reg.RTADDR, BigInt(root) | (scalable ? RTADDR_SMT : 0n));
    this.gcmd(Gcmd.SRTP);
  }

  /**
   * Writes the scalable-mode context entry of (bus, devfn) pointing at the
   * PASID directory `pasidDir`, creating the root half and context table if
   * needed.
   */
  setScalableContext(root: number, bus: number, devfn: number, pasidDir: number, opts: { fpd?: boolean; pre?: boolean } = {}): void {
    const half = root + bus * 16 + (devfn >= 0x80 ? 8 : 0);
    let rootHalf = this.peek64(half);
    if ((rootHalf & 1n) === 0n) {
      rootHalf = BigInt(this.allocPage()) | 1n;
      this.poke64(half, rootHalf);
    }
    const at = Number(rootHalf & ~0xfffn) + (devfn & 0x7f) * 32;
    this.poke64(at, BigInt(pasidDir) | (opts.pre ? 0x10n : 0n) | (opts.fpd ? 2n : 0n) | 1n);
    for (let i = 8; i < 32; i += 8) this.poke64(at + i, 0n);
  }

  /**
   * Writes PASID `pasid`'s entry under the directory `dir` (creating its
   * directory entry and PASID table if needed) and returns its address.
   */
  setPasidEntry(dir: number, pasid: number, e: PasidEntryFields): number {
    const dirAt = dir + (pasid >>> 6) * 8;
    let de = this.peek64(dirAt);
    if ((de & 1n) === 0n) {
      de = BigInt(this.allocPage()) | 1n;
      this.poke64(dirAt, de);
    }
    const at = Number(de & ~0xfffn) + (pasid & 0x3f) * 64;
    const q0 = BigInt(e.ss ?? 0) | (BigInt(e.pgtt) << 6n) | (BigInt(e.aw ?? 2) << 2n) | (e.fpd ? 2n : 0n) | (e.p === false ? 0n : 1n);
    this.poke64(at, q0);
    this.poke64(at + 8, BigInt(e.did ?? 0));
    this.poke64(at + 16, BigInt(e.fs ?? 0) | (BigInt(e.fspm ?? 0) << 2n));
    for (let i = 24; i < 64; i += 8) this.poke64(at + i, 0n);
    return at;
  }

  /**
   * Maps `iova` -> `phys` in first-stage tables rooted at `top` (`levels`
   * levels), leaf at `leafLevel`, leaf flags `flags` (default P|RW|US);
   * intermediate entries P|RW|US.
   */
  mapFs(top: number, levels: number, iova: number, phys: number, flags = FS_PRESENT_RW_US, leafLevel = 1): void {
    let table = top;
    for (let level = levels; level > leafLevel; level--) {
      const idx = Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512;
      const at = table + idx * 8;
      let e = this.peek64(at);
      if ((e & 1n) === 0n) {
        e = BigInt(this.allocPage()) | BigInt(FS_PRESENT_RW_US);
        this.poke64(at, e);
      }
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    const idx = Math.floor(iova / 2 ** (12 + 9 * (leafLevel - 1))) % 512;
    this.poke64(table + idx * 8, BigInt(phys) | BigInt(flags) | (leafLevel > 1 ? 0x80n : 0n));
  }

  /** Sets GCMD from the current status plus/minus persistent bits (Linux style). */
  gcmd(set: number, clear = 0): void {
    const persistent = this.r32(Reg.GSTS) & (Gcmd.TE | Gcmd.QIE | Gcmd.IRE | Gcmd.CFI);
    this.w32(Reg.GCMD, ((persistent | set) & ~clear) >>> 0);
  }

  /**
   * Writes the legacy context entry of (bus, devfn), creating the root entry
   * and context table if needed.
   */
  setContext(root: number, bus: number, devfn: number, lo: bigint, hi: bigint): void {
    let rootLo = this.peek64(root + bus * 16);
    if ((rootLo & 1n) === 0n) {
      rootLo = BigInt(this.allocPage()) | 1n;
      this.poke64(root + bus * 16, rootLo);
    }
    const ctx = Number(rootLo & ~0xfffn);
    this.poke64(ctx + devfn * 16, lo);
    this.poke64(ctx + devfn * 16 + 8, hi);
  }

  /**
   * Maps `iova` -> `phys` in the tables rooted at `top` (`levels` levels) with
   * a leaf at `leafLevel` (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB) and PTE low bits
   * `flags` (R=1, W=2).  Intermediate entries are R|W.
   */
  map(top: number, levels: number, iova: number, phys: number, flags = 3, leafLevel = 1): void {
    let table = top;
    for (let level = levels; level > leafLevel; level--) {
      const idx = Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512;
      const at = table + idx * 8;
      let e = this.peek64(at);
      if ((e & 3n) === 0n) {
        e = BigInt(this.allocPage()) | 3n;
        this.poke64(at, e);
      }
      table = Number(e & 0x000f_ffff_ffff_f000n);
    }
    const idx = Math.floor(iova / 2 ** (12 + 9 * (leafLevel - 1))) % 512;
    this.poke64(table + idx * 8, BigInt(phys) | BigInt(flags) | (leafLevel > 1 ? 0x80n : 0n));
  }

  /** Address of the PTE for `iova` at `level` (after map). */
  pteAddr(top: number, levels: number, iova: number, level: number): number {
    let table = top;
    for (let l = levels; l > level; l--) {
      const idx = Math.floor(iova / 2 ** (12 + 9 * (l - 1))) % 512;
      table = Number(this.peek64(table + idx * 8) & 0x000f_ffff_ffff_f000n);
    }
    return table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
  }
}

/** RTADDR bit 10: scalable-mode root table. */
const RTADDR_SMT = 1n << 10n;
/** First-stage PTE bits P (0), RW (1), US (2). */
export const FS_PRESENT_RW_US = 0x7;

/** Fields of a PASID table entry (spec 9.6); unset ones are 0, P defaults to 1, AW to 2. */
export interface PasidEntryFields {
  pgtt: number;
  did?: number;
  aw?: number;
  ss?: number;
  fs?: number;
  fspm?: number;
  fpd?: boolean;
  p?: boolean;
}

/** Context entry halves for a multi-level (TT=0) entry. */
export function ctxEntry(table: number, did: number, aw: number, opts: { fpd?: boolean; tt?: number } = {}): [bigint, bigint] {
  const lo = BigInt(table) | (BigInt(opts.tt ?? 0) << 2n) | (opts.fpd ? 2n : 0n) | 1n;
  const hi = BigInt(aw) | (BigInt(did) << 8n);
  return [lo, hi];
}
