/**
 * A process address space as the SVA guest binds it to a device (Linux
 * mm_struct + handle_mm_fault + munmap's mmu_notifier call; facts only):
 * VMAs plus an x86 4-level CPU page table in guest RAM (P/RW/US/A/D
 * leaves, 2 MiB PS leaves) whose top table is CR3.  `fault` is
 * handle_mm_fault as iommu_sva_handle_mm calls it (a page for an address
 * inside a VMA with the access allowed, else the fault is invalid);
 * `munmap` clears PTEs and tells the secondary-TLB notifiers (the SVA
 * bonds, sva.ts).  The CPU side (`walk`, `cpuRead`, `cpuWrite`) reads the
 * same tables the IOMMU walks as first stage.
 */
import type { GuestPlatform } from '../platform.js';
import { PAGE_SIZE, type GuestAllocator } from '../alloc.js';
import { FIRST_STAGE, FIRST_STAGE_LEVELS, FsPte, IoPageTable, LARGE_PAGE, Pte, type MapPerm } from './pagetable.js';

/** Index bits per level, entries per table, bytes per entry (x86 paging). */
const LEVEL_BITS = 9;
const ENTRIES = 512;
const PTE_SIZE = 8;
const PAGE_SHIFT = 12;
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
