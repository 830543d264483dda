import { describe, expect, it } from 'vitest';
import { AliasRegion, ContainerRegion, MmioRegion, RamRegion } from '../memory/region.js';
import { renderFlat } from '../memory/address-space.js';
import { createTsRam } from '../memory/ram-ts.js';
import { formatFlatViews, formatMtree, RegionDescriber, type MtreeNode } from './info-mtree.js';

const OPS = { read: () => 0, write: () => {} };

/** A hand-built node. */
function node(name: string, size: bigint, type: string, children: MtreeNode['children'] = [], extra: Partial<MtreeNode> = {}): MtreeNode {
  return { name, size, type, enabled: true, children, addr: 0n, priority: 0, ...extra };
}

describe('formatMtree', () => {
  it('prints QEMU lines: 16-digit ranges, priority, type, indentation by level', () => {
    const leaf = node('dev', 0x1000n, 'i/o');
    const root = node('system', 1n << 64n, 'container', [{ node: leaf, offset: 0xfec0_0000n, priority: 0 }]);
    expect(formatMtree([{ name: 'memory', root, flat: [] }])).toBe(
      'address-space: memory\n' +
        '  0000000000000000-ffffffffffffffff (prio 0, container): system\n' +
        '    00000000fec00000-00000000fec00fff (prio 0, i/o): dev\n\n',
    );
  });

  it('orders children by address, then higher priority first, then list order', () => {
    const mk = (n: string) => node(n, 0x10n, 'i/o');
    const root = node('r', 0x1000n, 'container', [
      { node: mk('lo'), offset: 0x100n, priority: -1 },
      { node: mk('b'), offset: 0x200n, priority: 0 },
      { node: mk('hi-later'), offset: 0x100n, priority: 2 },
      { node: mk('a1'), offset: 0x0n, priority: 0 },
      { node: mk('a2'), offset: 0x0n, priority: 0 },
    ]);
    const names = formatMtree([{ name: 's', root, flat: [] }]).split('\n').slice(2, 7).map((l) => l.split(': ')[1]);
    expect(names).toEqual(['a1', 'a2', 'hi-later', 'lo', 'b']);
  });

  it('prints an alias with its target range and type, then the target in a memory-region section', () => {
    const ram = node('pc.ram', 0x800_0000n, 'ram');
    const inner = node('inner', 0x10n, 'rom', [], { addr: 0x40n, priority: 3 });
    const box = node('box', 0x100n, 'container', [{ node: inner, offset: 0x40n, priority: 3 }]);
    const root = node('system', 1n << 64n, 'container', [
      { node: node('ram-below-4g', 0x800_0000n, '?', [], { alias: { target: ram, offset: 0n } }), offset: 0n, priority: 0 },
      { node: node('win', 0x10n, '?', [], { alias: { target: box, offset: 0x40n } }), offset: 0x1000n, priority: 1 },
      { node: node('win2', 0x10n, '?', [], { alias: { target: inner, offset: 0n } }), offset: 0x2000n, priority: 0 },
    ]);
    expect(formatMtree([{ name: 'memory', root, flat: [] }]).split('\n')).toEqual([
      'address-space: memory',
      '  0000000000000000-ffffffffffffffff (prio 0, container): system',
      '    0000000000000000-0000000007ffffff (prio 0, ram): alias ram-below-4g @pc.ram 0000000000000000-0000000007ffffff',
      '    0000000000001000-000000000000100f (prio 1, container): alias win @box 0000000000000040-000000000000004f',
      '    0000000000002000-000000000000200f (prio 0, rom): alias win2 @inner 0000000000000000-000000000000000f',
      '',
      'memory-region: pc.ram',
      '  0000000000000000-0000000007ffffff (prio 0, ram): pc.ram',
      '',
      'memory-region: box',
      '  0000000000000000-00000000000000ff (prio 0, container): box',
      '    0000000000000040-000000000000004f (prio 3, rom): inner',
      '',
      'memory-region: inner',
      '  0000000000000040-000000000000004f (prio 3, rom): inner',
      '',
      '',
    ]);
  });

  it('hides disabled regions unless asked, then marks them', () => {
    const off = node('bar', 0x10n, 'i/o', [], { enabled: false });
    const root = node('r', 0x100n, 'container', [{ node: off, offset: 0n, priority: 1 }]);
    expect(formatMtree([{ name: 's', root, flat: [] }])).not.toContain('bar');
    expect(formatMtree([{ name: 's', root, flat: [] }], true)).toContain('    0000000000000000-000000000000000f (prio 1, i/o): bar [disabled]\n');
  });

  it('gives spaces over one root one section with a header each', () => {
    const root = node('bus master container', 1n << 64n, 'container');
    const out = formatMtree([{ name: 'a', root, flat: [] }, { name: 'b', root, flat: [] }]);
    expect(out).toBe('address-space: a\naddress-space: b\n  0000000000000000-ffffffffffffffff (prio 0, container): bus master container\n\n');
  });
});

describe('RegionDescriber and formatFlatViews', () => {
  it('describes a vtemu region tree and its flat view as QEMU prints them', () => {
    const ram = createTsRam(0x20_0000);
    const block = new RamRegion('pc.ram', 0x20_0000, ram);
    const system = new ContainerRegion('system', 2 ** 64);
    const pci = new ContainerRegion('pci', 2 ** 64);
    system.add(new AliasRegion('ram-below-4g', 0x20_0000, block, 0), 0);
    system.add(pci, 0, -1);
    const rom = new MmioRegion('pc.rom', 0x2_0000, OPS);
    system.add(rom, 0xc_0000, 1);
    const bar = new MmioRegion('edu-mmio', 0x10_0000, OPS);
    pci.add(bar, 0xfeb0_0000, 1);
    const d = new RegionDescriber([system], (r) => (r === pci ? 'i/o' : r === rom ? 'rom' : undefined));
    const root = d.node(system);
    const space = { name: 'memory', root, flat: d.flat(renderFlat(system)) };
    expect(formatMtree([space]).split('\n')).toEqual([
      'address-space: memory',
      '  0000000000000000-ffffffffffffffff (prio 0, container): system',
      '    0000000000000000-00000000001fffff (prio 0, ram): alias ram-below-4g @pc.ram 0000000000000000-00000000001fffff',
      '    0000000000000000-ffffffffffffffff (prio -1, i/o): pci',
      '      00000000feb00000-00000000febfffff (prio 1, i/o): edu-mmio',
      '    00000000000c0000-00000000000dffff (prio 1, rom): pc.rom',
      '',
      'memory-region: pc.ram',
      '  0000000000000000-00000000001fffff (prio 0, ram): pc.ram',
      '',
      '',
    ]);
    expect(formatFlatViews([space, { name: 'cpu-memory-0', root, flat: [] }]).split('\n')).toEqual([
      'FlatView #0',
      ' AS "memory", root: system',
      ' AS "cpu-memory-0", root: system',
      ' Root memory region: system',
      '  0000000000000000-00000000000bffff (prio 0, ram): pc.ram',
      '  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom',
      '  00000000000e0000-00000000001fffff (prio 0, ram): pc.ram @00000000000e0000',
      '  00000000feb00000-00000000febfffff (prio 1, i/o): edu-mmio',
      '',
      '',
    ]);
    expect(d.node(system)).toBe(root);
  });

  it('prints an empty flat view as QEMU does', () => {
    const root = node('system', 1n << 64n, 'container');
    expect(formatFlatViews([{ name: 'memory', root, flat: [] }])).toBe('FlatView #0\n AS "memory", root: system\n Root memory region: (none)\n  No rendered FlatView\n\n');
  });
});
