/**
 * The region tree (QEMU MemoryRegion in small): size and range checks at
 * construction, MMIO access rules as data, alias windows, container
 * children and their priority order, and the topology generation every
 * change must bump (exactly once, and never for a no-op) so that address
 * spaces re-render.  Rendering and dispatch are in address-space.test.ts;
 * here an AddressSpace is only used to see that a change became visible.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace } from './address-space.js';
import { createTsRam } from './ram-ts.js';
import {
  AliasRegion,
  ContainerRegion,
  DEFAULT_RULES,
  type MmioOps,
  MmioRegion,
  RamRegion,
  type Region,
  Topology,
} from './region.js';

const OPS: MmioOps = { read: () => 0, write: () => {} };
const OPS64: MmioOps = { ...OPS, read64: () => 0n, write64: () => {} };

/** How much the topology generation of `r`'s tree moved while `fn` ran. */
function bumps(r: Region, fn: () => void): number {
  const before = r.topology.generation;
  fn();
  return r.topology.generation - before;
}

const mmio = (name: string, size = 0x100): MmioRegion => new MmioRegion(name, size, OPS);

describe('topology generation', () => {
  it('starts positive (an address space at generation 0 renders on first use) and counts changes one by one', () => {
    const t = new Topology();
    expect(t.generation).toBeGreaterThan(0);
    const g = t.generation;
    t.changed();
    expect(t.generation).toBe(g + 1);
    t.changed();
    t.changed();
    expect(t.generation).toBe(g + 3);
  });

  it('a join makes one topology of two, newer than both with bump, at least both without', () => {
    const a = new Topology();
    const b = new Topology();
    for (let i = 0; i < 5; i++) b.changed();
    expect(a.join(b, true)).toBe(true);
    expect(a.resolve()).toBe(b.resolve());
    expect(a.generation).toBe(7);
    expect(a.join(b, true)).toBe(false);
    b.changed();
    expect(a.generation).toBe(8);
    const c = new Topology();
    const d = new Topology();
    d.changed();
    expect(c.join(d, false)).toBe(true);
    expect(c.generation).toBe(2);
    // A chain of joins resolves to one root, whichever member is asked.
    const e = new Topology();
    e.join(a, true);
    e.join(c, true);
    expect(c.resolve()).toBe(e.resolve());
    expect(a.resolve()).toBe(e.resolve());
    expect(d.generation).toBe(e.generation);
  });

  it('constructing regions is not a topology change, and separate trees do not see each other change', () => {
    const ram = createTsRam(0x2000);
    const c = new ContainerRegion('c', 0x1000);
    const other = new ContainerRegion('other', 0x1000);
    expect(
      bumps(c, () => {
        new RamRegion('r', 0x1000, ram);
        new MmioRegion('m', 0x10, OPS);
        new AliasRegion('a', 0x10, c, 0);
      }),
    ).toBe(0);
    expect(bumps(c, () => other.add(mmio('x'), 0))).toBe(0);
    expect(bumps(other, () => c.add(mmio('y'), 0))).toBe(0);
  });

  it('a change inside an aliased tree reaches the trees that alias it', () => {
    const target = new ContainerRegion('target', 0x1000);
    const sys = new ContainerRegion('sys', 0x10000);
    sys.add(new AliasRegion('win', 0x1000, target, 0), 0x4000);
    expect(bumps(sys, () => target.add(mmio('late'), 0x100))).toBe(1);
  });
});

describe('region sizes', () => {
  it('takes any positive size, up to the whole 64-bit space', () => {
    expect(new ContainerRegion('all', 2 ** 64).size).toBe(2 ** 64);
    expect(mmio('one', 1).size).toBe(1);
  });

  it('rejects zero, negative and NaN sizes at construction, naming the region', () => {
    for (const size of [0, -1, -0x1000, Number.NaN]) {
      expect(() => new ContainerRegion('c0', size)).toThrow(RangeError);
      expect(() => new MmioRegion('m0', size, OPS)).toThrow('memory region m0: size must be positive');
      expect(() => new AliasRegion('a0', size, mmio('t'), 0)).toThrow(RangeError);
    }
  });

  it('resize changes the size and bumps the topology; a bad size throws and changes nothing', () => {
    const c = new ContainerRegion('c', 0x1000);
    expect(bumps(c, () => c.resize(0x2000))).toBe(1);
    expect(c.size).toBe(0x2000);
    for (const size of [0, -1, Number.NaN]) {
      expect(bumps(c, () => expect(() => c.resize(size)).toThrow('memory region c: size must be positive'))).toBe(0);
      expect(c.size).toBe(0x2000);
    }
  });

  it('a resized alias window is what an address space sees, first and last byte included', () => {
    const ram = createTsRam(0x4000);
    ram.writeU8(0x1fff, 0xaa);
    ram.writeU8(0x2000, 0xbb);
    const alias = new AliasRegion('win', 0x1000, new RamRegion('ram', 0x4000, ram), 0x1000);
    const root = new ContainerRegion('root', 0x10_0000);
    root.add(alias, 0x8000);
    const as = new AddressSpace('x', root);
    expect(as.read(0x8fff, 1)).toBe(0xaa);
    expect(as.lookup(0x9000)).toBeNull();
    alias.resize(0x1001);
    expect(as.read(0x9000, 1)).toBe(0xbb);
    expect(as.lookup(0x9001)).toBeNull();
    expect(as.lookup(0x7fff)).toBeNull();
  });
});

describe('enabling and disabling', () => {
  it('regions start enabled; only a real change bumps the topology', () => {
    const m = mmio('m');
    expect(m.enabled).toBe(true);
    expect(bumps(m, () => m.setEnabled(true))).toBe(0);
    expect(bumps(m, () => m.setEnabled(false))).toBe(1);
    expect(m.enabled).toBe(false);
    expect(bumps(m, () => m.setEnabled(false))).toBe(0);
    expect(bumps(m, () => m.setEnabled(true))).toBe(1);
    expect(m.enabled).toBe(true);
  });
});

describe('RamRegion', () => {
  it('is a window of `size` bytes of guest RAM from `ramOffset` (default 0)', () => {
    const ram = createTsRam(0x3000);
    const whole = new RamRegion('whole', 0x3000, ram);
    expect(whole.kind).toBe('ram');
    expect(whole.name).toBe('whole');
    expect(whole.ram).toBe(ram);
    expect(whole.ramOffset).toBe(0);
    const tail = new RamRegion('tail', 0x1000, ram, 0x2000);
    expect(tail.ramOffset).toBe(0x2000);
    expect(tail.size).toBe(0x1000);
  });

  it('must lie inside the RAM: one byte past the end throws', () => {
    const ram = createTsRam(0x3000);
    expect(() => new RamRegion('over', 0x3001, ram)).toThrow(RangeError);
    expect(() => new RamRegion('shifted', 0x1000, ram, 0x2001)).toThrow(RangeError);
    expect(() => new RamRegion('past', 0x1000, ram, 0x3000)).toThrow(RangeError);
    expect(() => new RamRegion('neg', 0x1000, ram, -1)).toThrow(RangeError);
    expect(new RamRegion('last', 1, ram, 0x2fff).ramOffset).toBe(0x2fff);
  });
});

describe('MmioRegion access rules', () => {
  it('defaults to QEMU: 1-4 bytes valid and implemented, aligned only', () => {
    expect(DEFAULT_RULES).toEqual({ valid: { min: 1, max: 4 } });
    const m = mmio('m');
    expect(m.kind).toBe('mmio');
    expect(m.ops).toBe(OPS);
    expect(m.rules).toStrictEqual({ valid: { unaligned: false, min: 1, max: 4 }, impl: { min: 1, max: 4 } });
  });

  it('keeps declared valid and impl rules; valid.unaligned defaults to false', () => {
    const strict = new MmioRegion('s', 0x10, OPS, { valid: { min: 4, max: 4 } });
    expect(strict.rules).toStrictEqual({ valid: { unaligned: false, min: 4, max: 4 }, impl: { min: 1, max: 4 } });
    const loose = new MmioRegion('l', 0x10, OPS, {
      valid: { min: 1, max: 2, unaligned: true },
      impl: { min: 2, max: 2, unaligned: true },
    });
    expect(loose.rules).toStrictEqual({
      valid: { min: 1, max: 2, unaligned: true },
      impl: { min: 2, max: 2, unaligned: true },
    });
  });

  it('an 8-byte implementation needs both read64 and write64 (a host mistake otherwise)', () => {
    const rules = { valid: { min: 8, max: 8 }, impl: { min: 8, max: 8 } } as const;
    const msg = 'memory region wide: 8-byte implementation needs read64/write64';
    expect(() => new MmioRegion('wide', 0x10, OPS, rules)).toThrow(msg);
    expect(() => new MmioRegion('wide', 0x10, { ...OPS, read64: () => 0n }, rules)).toThrow(msg);
    expect(() => new MmioRegion('wide', 0x10, { ...OPS, write64: () => {} }, rules)).toThrow(msg);
    expect(new MmioRegion('wide', 0x10, OPS64, rules).rules.impl.max).toBe(8);
    // 8-byte valid accesses split into 4-byte ones need no 64-bit handlers.
    expect(new MmioRegion('split', 0x10, OPS, { valid: { min: 1, max: 8 }, impl: { min: 1, max: 4 } }).rules.valid.max).toBe(8);
  });
});

describe('AliasRegion', () => {
  it('shows its target from an offset; moving the offset bumps the topology', () => {
    const target = mmio('t', 0x1000);
    const a = new AliasRegion('a', 0x100, target, 0x800);
    expect(a.kind).toBe('alias');
    expect(a.target).toBe(target);
    expect(a.offset).toBe(0x800);
    expect(bumps(a, () => a.setOffset(0x900))).toBe(1);
    expect(a.offset).toBe(0x900);
  });
});

describe('ContainerRegion', () => {
  it('starts empty; add bumps the topology and records offset, priority (default 0) and insertion order', () => {
    const c = new ContainerRegion('c', 0x10000);
    expect(c.kind).toBe('container');
    expect(c.subregions()).toEqual([]);
    const a = mmio('a');
    const b = mmio('b');
    expect(bumps(c, () => c.add(a, 0x100))).toBe(1);
    expect(bumps(c, () => c.add(b, 0x200, -3))).toBe(1);
    expect(c.subregions()).toEqual([
      { region: a, offset: 0x100, priority: 0, order: 0 },
      { region: b, offset: 0x200, priority: -3, order: 1 },
    ]);
    expect(c.has(a)).toBe(true);
    expect(c.has(mmio('a'))).toBe(false);
  });

  it('orders children by priority, highest first, then the later-added first', () => {
    const c = new ContainerRegion('c', 0x10000);
    const [lo, mid1, hi, mid2, neg] = ['lo', 'mid1', 'hi', 'mid2', 'neg'].map((n) => mmio(n));
    c.add(lo!, 0);
    c.add(mid1!, 0, 1);
    c.add(hi!, 0, 2);
    c.add(mid2!, 0, 1);
    c.add(neg!, 0, -1);
    expect(c.subregions().map((s) => s.region.name)).toEqual(['hi', 'mid2', 'mid1', 'lo', 'neg']);
    expect(c.subregions().map((s) => s.order)).toEqual([2, 3, 1, 0, 4]);
  });

  it('subregions() is a copy: sorting or changing it does not touch the container', () => {
    const c = new ContainerRegion('c', 0x10000);
    c.add(mmio('a'), 0);
    c.add(mmio('b'), 0x100);
    const list = c.subregions() as unknown as unknown[];
    list.length = 0;
    expect(c.subregions()).toHaveLength(2);
  });

  it('refuses to map the same region twice in one container, but it may sit in two containers', () => {
    const c = new ContainerRegion('parent', 0x10000);
    const d = new ContainerRegion('other', 0x10000);
    const m = mmio('dev');
    c.add(m, 0);
    expect(bumps(c, () => expect(() => c.add(m, 0x100, 5)).toThrow('memory region dev is already mapped in parent'))).toBe(0);
    expect(c.subregions()).toHaveLength(1);
    d.add(m, 0x100);
    expect(d.has(m)).toBe(true);
  });

  it('remove unmaps only that region and bumps once; removing an unmapped region is a silent no-op', () => {
    const c = new ContainerRegion('c', 0x10000);
    const a = mmio('a');
    const b = mmio('b');
    c.add(a, 0);
    c.add(b, 0x100);
    expect(bumps(c, () => c.remove(a))).toBe(1);
    expect(c.has(a)).toBe(false);
    expect(c.has(b)).toBe(true);
    expect(c.subregions().map((s) => s.region)).toEqual([b]);
    expect(bumps(c, () => c.remove(a))).toBe(0);
    expect(bumps(c, () => c.remove(mmio('never')))).toBe(0);
    expect(c.subregions()).toHaveLength(1);
  });

  it('a region removed and added again gets a new, later insertion order', () => {
    const c = new ContainerRegion('c', 0x10000);
    const a = mmio('a');
    const b = mmio('b');
    c.add(a, 0);
    c.add(b, 0);
    c.remove(a);
    c.add(a, 0);
    expect(c.subregions().map((s) => [s.region.name, s.order])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('move changes only the offset (priority and order stay) and bumps; same offset is a no-op', () => {
    const c = new ContainerRegion('c', 0x10000);
    const a = mmio('a');
    const b = mmio('b');
    c.add(a, 0x100, 4);
    c.add(b, 0x200);
    expect(bumps(c, () => c.move(a, 0x300))).toBe(1);
    expect(c.subregions()).toEqual([
      { region: a, offset: 0x300, priority: 4, order: 0 },
      { region: b, offset: 0x200, priority: 0, order: 1 },
    ]);
    expect(bumps(c, () => c.move(a, 0x300))).toBe(0);
    expect(() => c.move(mmio('stray'), 0)).toThrow('memory region stray is not mapped in c');
  });
});

describe('bounds as an address space renders them', () => {
  it('a child covers exactly [offset, offset + size): first and last byte in, the neighbours out', () => {
    const root = new ContainerRegion('root', 0x10000);
    root.add(mmio('dev', 0x100), 0x1000);
    const as = new AddressSpace('x', root);
    expect(as.lookup(0xfff)).toBeNull();
    const r = as.lookup(0x1000)!;
    expect([r.leaf.name, r.start, r.end, r.offset]).toEqual(['dev', 0x1000, 0x1100, 0]);
    expect(as.lookup(0x10ff)).toBe(r);
    expect(as.lookup(0x1100)).toBeNull();
  });

  it('a child is clipped to its container; one placed at the container end is not there at all', () => {
    const root = new ContainerRegion('root', 0x2000);
    root.add(mmio('straddle', 0x200), 0x1f00);
    root.add(mmio('outside', 0x100), 0x2000);
    const as = new AddressSpace('x', root);
    expect(as.flatView().map((r) => [r.leaf.name, r.start, r.end])).toEqual([['straddle', 0x1f00, 0x2000]]);
  });

  it('the top page of the 64-bit space ends exactly at 2^64', () => {
    const ram = createTsRam(0x1000);
    const root = new ContainerRegion('root', 2 ** 64);
    root.add(new RamRegion('top', 0x1000, ram), 2 ** 64 - 0x1000);
    const as = new AddressSpace('x', root);
    expect(as.flatView().map((r) => [r.start, r.end])).toEqual([[2 ** 64 - 0x1000, 2 ** 64]]);
    as.write(2 ** 64 - 0x1000, 4, 0x1234_5678);
    expect(ram.readU32(0)).toBe(0x1234_5678);
    expect(as.lookup(2 ** 64 - 0x2000)).toBeNull();
  });

  it('a disabled child hides and a re-enabled one shows again, through the generation bump', () => {
    const root = new ContainerRegion('root', 0x10000);
    const hi = mmio('hi', 0x10);
    root.add(mmio('lo', 0x100), 0x1000);
    root.add(hi, 0x1000, 1);
    const as = new AddressSpace('x', root);
    expect(as.lookup(0x1000)!.leaf.name).toBe('hi');
    hi.setEnabled(false);
    expect(as.lookup(0x1000)!.leaf.name).toBe('lo');
    hi.setEnabled(true);
    expect(as.lookup(0x1000)!.leaf.name).toBe('hi');
  });
});
