/**
 * `info mtree` in QEMU's format (memory.c mtree_info): one section per
 * address space (spaces over the same root share it, one header line each),
 * each region on a line
 *
 *     <indent>START-END (prio P, TYPE): NAME[ [disabled]]
 *     <indent>START-END (prio P, TYPE): alias NAME @TARGET TSTART-TEND
 *
 * with two blanks of indent per level, children in address order (higher
 * priority first at one address), disabled regions only with `-D`, then a
 * `memory-region:` section for every alias target, in the order they were
 * first met.  `-f` prints each space's flat view instead.
 *
 * The printer works on MtreeNode, a plain description of a region tree, so
 * that it can be fed hand-built trees; `regionNode` describes a vtemu
 * region tree.
 */
import type { Region } from '../memory/region.js';
import type { FlatRange } from '../memory/address-space.js';
import { hex } from './info-pci.js';

/** A region as `info mtree` prints it. */
export interface MtreeNode {
  readonly name: string;
  readonly size: bigint;
  /** 'ram', 'rom', 'i/o' or 'container' (an alias prints its target's type). */
  readonly type: string;
  readonly enabled: boolean;
  /** Set for an alias: the region it shows and from which offset. */
  readonly alias?: { readonly target: MtreeNode; readonly offset: bigint };
  /** Subregions, highest priority first, newest first among equals (QEMU's list order). */
  readonly children: readonly MtreeChild[];
  /** Address and priority in its own container (0, 0 when unmapped): what a `memory-region:` section starts from. */
  readonly addr: bigint;
  readonly priority: number;
}

/** One subregion of a container. */
export interface MtreeChild {
  readonly node: MtreeNode;
  readonly offset: bigint;
  readonly priority: number;
}

/** One piece of a flat view. */
export interface MtreeFlatRange {
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
  readonly node: MtreeNode;
  /** Offset into the region (printed as ` @OFFSET` when not 0). */
  readonly offset: bigint;
  readonly priority: number;
}

/** An address space: its name, root and (for `-f`) flat view. */
export interface MtreeSpace {
  readonly name: string;
  readonly root: MtreeNode;
  readonly flat: readonly MtreeFlatRange[];
}

const U64_MASK = (1n << 64n) - 1n;
const addr16 = (a: bigint): string => hex(a & U64_MASK, 16);

/** The type an entry prints: an alias takes its target's. */
function typeOf(n: MtreeNode): string {
  for (let x = n, depth = 0; depth < 64; depth++) {
    if (!x.alias) return x.type;
    x = x.alias.target;
  }
  return n.type;
}

/** Prints `node` at `start` (absolute) and its subregions, collecting alias targets into `targets`. */
function printNode(node: MtreeNode, level: number, start: bigint, priority: number, out: string[], targets: MtreeNode[], disabled: boolean, path: Set<MtreeNode>): void {
  if (!node.enabled && !disabled) return;
  const indent = '  '.repeat(level);
  const range = `${addr16(start)}-${addr16(start + node.size - 1n)}`;
  const off = node.enabled ? '' : ' [disabled]';
  if (node.alias) {
    const t = node.alias.target;
    if (!targets.includes(t)) targets.push(t);
    const a = node.alias.offset;
    out.push(`${indent}${range} (prio ${priority}, ${typeOf(node)}): alias ${node.name} @${t.name} ${addr16(a)}-${addr16(a + node.size - 1n)}${off}`);
  } else {
    out.push(`${indent}${range} (prio ${priority}, ${typeOf(node)}): ${node.name}${off}`);
  }
  if (path.has(node)) return;
  path.add(node);
  const kids = node.children
    .map((c, i) => ({ c, i }))
    .sort((x, y) => (x.c.offset < y.c.offset ? -1 : x.c.offset > y.c.offset ? 1 : y.c.priority - x.c.priority || x.i - y.i));
  for (const { c } of kids) printNode(c.node, level + 1, start + c.offset, c.priority, out, targets, disabled, path);
  path.delete(node);
}

/** Spaces grouped by root, in the order their roots first appear. */
function byRoot<T extends { root: unknown }>(spaces: readonly T[], key: (s: T) => unknown = (s) => s.root): T[][] {
  const groups = new Map<unknown, T[]>();
  for (const s of spaces) {
    const k = key(s);
    const g = groups.get(k);
    if (g) g.push(s);
    else groups.set(k, [s]);
  }
  return [...groups.values()];
}

/** The tree form of `info mtree` (`-D`: disabled regions too).  Lines end in '\n'. */
export function formatMtree(spaces: readonly MtreeSpace[], disabled = false): string {
  const out: string[] = [];
  const targets: MtreeNode[] = [];
  for (const group of byRoot(spaces)) {
    for (const s of group) out.push(`address-space: ${s.name}`);
    const root = group[0]!.root;
    printNode(root, 1, 0n, root.priority, out, targets, disabled, new Set());
    out.push('');
  }
  // The list grows while it is printed: targets of aliases inside targets come after.
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    out.push(`memory-region: ${t.name}`);
    printNode(t, 1, t.addr, t.priority, out, targets, disabled, new Set());
    out.push('');
  }
  return out.map((l) => l + '\n').join('');
}

/** The `-f` form: one section per distinct flat view, naming every space that shares it.  Lines end in '\n'. */
export function formatFlatViews(spaces: readonly MtreeSpace[]): string {
  const out: string[] = [];
  byRoot(spaces).forEach((group, i) => {
    out.push(`FlatView #${i}`);
    for (const s of group) out.push(` AS "${s.name}", root: ${s.root.name}`);
    const flat = group[0]!.flat;
    if (flat.length === 0) {
      out.push(' Root memory region: (none)', '  No rendered FlatView');
    } else {
      out.push(` Root memory region: ${group[0]!.root.name}`);
      for (const r of flat) {
        const at = r.offset !== 0n ? ` @${addr16(r.offset)}` : '';
        out.push(`  ${addr16(r.start)}-${addr16(r.last)} (prio ${r.priority}, ${typeOf(r.node)}): ${r.node.name}${at}`);
      }
    }
    out.push('');
  });
  return out.map((l) => l + '\n').join('');
}

/** How a vtemu region prints: its kind's type unless `types` names another (QEMU's ROMs, its `pci` region). */
export type RegionTypes = (region: Region) => string | undefined;

const KIND_TYPE = { ram: 'ram', mmio: 'i/o', container: 'container', alias: 'container' } as const;

/**
 * Describes vtemu region trees as MtreeNodes: one node per region (so an
 * alias target met twice is the same node), placed where the trees under
 * `roots` map it.
 */
export class RegionDescriber {
  private readonly nodes = new Map<Region, MtreeNode>();
  private readonly placement = new Map<Region, { addr: bigint; priority: number }>();

  constructor(
    roots: readonly Region[],
    private readonly types: RegionTypes = () => undefined,
  ) {
    const seen = new Set<Region>();
    const walk = (r: Region): void => {
      if (seen.has(r)) return;
      seen.add(r);
      if (r.kind !== 'container') return;
      for (const c of r.subregions()) {
        if (!this.placement.has(c.region)) this.placement.set(c.region, { addr: BigInt(c.offset), priority: c.priority });
        walk(c.region);
      }
    };
    for (const r of roots) walk(r);
  }

  /** The node of `region`. */
  node(region: Region): MtreeNode {
    const known = this.nodes.get(region);
    if (known) return known;
    const place = this.placement.get(region) ?? { addr: 0n, priority: 0 };
    const children: MtreeChild[] = [];
    const node: MtreeNode = {
      name: region.name,
      size: BigInt(region.size),
      type: this.types(region) ?? KIND_TYPE[region.kind],
      enabled: region.enabled,
      children,
      addr: place.addr,
      priority: place.priority,
      ...(region.kind === 'alias' ? { alias: { target: this.node(region.target), offset: BigInt(region.offset) } } : {}),
    };
    this.nodes.set(region, node);
    if (region.kind === 'container') {
      for (const c of region.subregions()) children.push({ node: this.node(c.region), offset: BigInt(c.offset), priority: c.priority });
    }
    return node;
  }

  /** A flat view as MtreeFlatRanges. */
  flat(ranges: readonly FlatRange[]): MtreeFlatRange[] {
    return ranges.map((r) => ({
      start: BigInt(r.start),
      last: BigInt(r.end) - 1n,
      node: this.node(r.leaf),
      offset: BigInt(r.offset),
      priority: this.placement.get(r.leaf)?.priority ?? 0,
    }));
  }
}
