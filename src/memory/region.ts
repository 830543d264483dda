/**
 * Memory regions, modelled on QEMU's MemoryRegion: RAM, MMIO with declared
 * access rules, aliases and containers with priorities.  A region tree is
 * rendered into a flat view by an address space (address-space.ts); any
 * change to the tree (mapping, unmapping, enabling, moving) bumps the
 * tree's topology generation so that its address spaces re-render lazily.
 *
 * Generations belong to trees, not to the process: regions that can see one
 * another (one mapped in the other, an alias and its target) share one
 * `Topology`, joined when they meet, so two machines in one process never
 * invalidate each other's views.
 */
import type { AccessSize } from './address.js';
import type { ChunkedRam } from './ram.js';

/**
 * The topology generation of a set of connected regions (a union-find
 * node: a joined topology forwards to the one it was joined into).
 */
export class Topology {
  private gen = 1;
  private into: Topology | null = null;

  /** The topology this one stands for now (after joins). */
  resolve(): Topology {
    let root: Topology = this;
    while (root.into !== null) root = root.into;
    for (let t: Topology = this; t.into !== null && t.into !== root; ) {
      const next: Topology = t.into;
      t.into = root;
      t = next;
    }
    return root;
  }

  /** Current generation; an address space compares it to the one of its rendered view. */
  get generation(): number {
    return this.resolve().gen;
  }

  /** Marks every view rendered from these regions stale. */
  changed(): void {
    this.resolve().gen++;
  }

  /**
   * Joins `other`'s regions to these.  The joined generation is at least
   * both (with `bump`, above both: every view of either becomes stale).
   * Returns false when they were joined already.
   */
  join(other: Topology, bump: boolean): boolean {
    const a = this.resolve();
    const b = other.resolve();
    if (a === b) return false;
    b.into = a;
    a.gen = Math.max(a.gen, b.gen) + (bump ? 1 : 0);
    return true;
  }
}

/**
 * Which access sizes a region accepts (`valid`, checked by the bus: a
 * rejected access reads 0 and drops the write, as QEMU's q35 does) and which
 * it implements (`impl`: the bus widens or splits accesses to fit, as QEMU's
 * access_with_adjusted_size does).
 */
export interface AccessRules {
  readonly valid: { readonly min: AccessSize; readonly max: AccessSize; readonly unaligned?: boolean };
  /**
   * `unaligned` here (QEMU impl.unaligned) lets byte-range accesses skip
   * splitting at the offset's alignment (memory_access_size).
   */
  readonly impl?: { readonly min: AccessSize; readonly max: AccessSize; readonly unaligned?: boolean };
}

/** QEMU's defaults: 1 to 4 bytes valid and implemented, aligned only. */
export const DEFAULT_RULES: AccessRules = { valid: { min: 1, max: 4 } };

/**
 * The handlers of an MMIO or port-I/O region.  They only ever see accesses
 * of an implemented size inside the region.  Values of 8-byte accesses are
 * bigints (regions whose impl.max is 8 must provide read64/write64).
 */
export interface MmioOps {
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
  read64?(offset: number): bigint;
  write64?(offset: number, value: bigint): void;
}

abstract class RegionBase {
  /** Disabled regions are not rendered (PCI BARs with decoding off, gated aliases). */
  private enabledFlag = true;
  private readonly topo = new Topology();
  constructor(
    readonly name: string,
    private sizeBytes: number,
  ) {
    if (!(sizeBytes > 0)) throw new RangeError(`memory region ${name}: size must be positive`);
  }
  get size(): number {
    return this.sizeBytes;
  }
  get enabled(): boolean {
    return this.enabledFlag;
  }
  /** The topology this region belongs to (shared with every region it is connected to). */
  get topology(): Topology {
    return this.topo.resolve();
  }
  setEnabled(on: boolean): void {
    if (on !== this.enabledFlag) {
      this.enabledFlag = on;
      this.topo.changed();
    }
  }
  /** Changes the size (a PCI BAR never does; an alias window may). */
  resize(size: number): void {
    if (!(size > 0)) throw new RangeError(`memory region ${this.name}: size must be positive`);
    this.sizeBytes = size;
    this.topo.changed();
  }
}

/** A window onto guest RAM. */
export class RamRegion extends RegionBase {
  readonly kind = 'ram' as const;
  constructor(
    name: string,
    size: number,
    readonly ram: ChunkedRam,
    /** Offset of the region's first byte in `ram`. */
    readonly ramOffset = 0,
  ) {
    super(name, size);
    ram.checkRange(ramOffset, size);
  }
}

/**
 * QEMU's MemReentrancyGuard: engaged while one of a device's register
 * windows handles an access; another access to a window with the same
 * guard in the meantime (the device's own DMA, or another device's DMA the
 * access set off, landing on its registers) is refused instead of
 * recursing.  Windows of one device may share a guard.  Each refusal is
 * counted here and traced by the address space that dispatched it
 * (REENTRANT_ACCESS_TRACE).
 */
export class ReentrancyGuard {
  engaged = false;
  /** Accesses refused so far (QEMU prints "Blocked re-entrant IO on MemoryRegion"). */
  blocked = 0;
}

/**
 * The trace event of a refused re-entrant access, one line per refused
 * piece: `memory_region_reentrant_access space=S region=R offset=O size=N
 * write=0|1` (the address space that dispatched it, the refused window, the
 * offset in it, the access size, and whether it was a write).  QEMU's
 * counterpart is the "Blocked re-entrant IO on MemoryRegion" warning of
 * memory_region_access_valid, printed once per process; the trace prints
 * every refusal while enabled.
 */
export const REENTRANT_ACCESS_TRACE = 'memory_region_reentrant_access';

/**
 * A trace sink as the memory layer sees it: the machine's `-trace` tracer
 * (machine/device-type.ts Tracer has this shape), named here so that the
 * memory layer imports nothing above it.
 */
export interface MemoryTracer {
  enabled(event: string): boolean;
  trace(event: string, fields: Readonly<Record<string, number | string | bigint | boolean>>): void;
}

/** A device register window. */
export class MmioRegion extends RegionBase {
  readonly kind = 'mmio' as const;
  readonly rules: Required<AccessRules>;
  constructor(
    name: string,
    size: number,
    readonly ops: MmioOps,
    rules: AccessRules = DEFAULT_RULES,
    /** The device's re-entrancy guard (default: one of its own). */
    readonly guard: ReentrancyGuard = new ReentrancyGuard(),
  ) {
    super(name, size);
    const impl = rules.impl ?? { min: 1, max: 4 };
    this.rules = { valid: { unaligned: false, ...rules.valid }, impl };
    if (impl.max === 8 && (!ops.read64 || !ops.write64)) {
      throw new Error(`memory region ${name}: 8-byte implementation needs read64/write64`);
    }
  }
}

/** A view of part of another region. */
export class AliasRegion extends RegionBase {
  readonly kind = 'alias' as const;
  constructor(
    name: string,
    size: number,
    readonly target: Region,
    private targetOffset: number,
  ) {
    super(name, size);
    // Views through the alias depend on the target's tree (constructing it changes no view).
    this.topology.join(target.topology, false);
  }
  get offset(): number {
    return this.targetOffset;
  }
  setOffset(offset: number): void {
    this.targetOffset = offset;
    this.topology.changed();
  }
}

/** One child of a container. */
export interface Subregion {
  readonly region: Region;
  readonly offset: number;
  readonly priority: number;
  /** Insertion order: among equal priorities the later one wins, as in QEMU. */
  readonly order: number;
}

/** A region made of subregions; transparent where it has none. */
export class ContainerRegion extends RegionBase {
  readonly kind = 'container' as const;
  private children: Subregion[] = [];
  private nextOrder = 0;

  /** Maps `region` at `offset`; a higher priority wins where two overlap. */
  add(region: Region, offset: number, priority = 0): void {
    if (this.children.some((c) => c.region === region)) {
      throw new Error(`memory region ${region.name} is already mapped in ${this.name}`);
    }
    this.children.push({ region, offset, priority, order: this.nextOrder++ });
    if (!this.topology.join(region.topology, true)) this.topology.changed();
  }

  /** Unmaps `region` (no-op when it is not mapped here). */
  remove(region: Region): void {
    const before = this.children.length;
    this.children = this.children.filter((c) => c.region !== region);
    if (this.children.length !== before) this.topology.changed();
  }

  /** Moves an already mapped region (a BAR being reprogrammed). */
  move(region: Region, offset: number): void {
    const i = this.children.findIndex((c) => c.region === region);
    if (i < 0) throw new Error(`memory region ${region.name} is not mapped in ${this.name}`);
    const c = this.children[i]!;
    if (c.offset === offset) return;
    this.children[i] = { ...c, offset };
    this.topology.changed();
  }

  /** True when region is a direct child. */
  has(region: Region): boolean {
    return this.children.some((c) => c.region === region);
  }

  /** Children, highest priority first (the order rendering uses). */
  subregions(): readonly Subregion[] {
    return [...this.children].sort((a, b) => b.priority - a.priority || b.order - a.order);
  }
}

/** Any region. */
export type Region = RamRegion | MmioRegion | AliasRegion | ContainerRegion;
/** The regions that accesses end up in. */
export type LeafRegion = RamRegion | MmioRegion;
