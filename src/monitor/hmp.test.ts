import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { runHmp } from './hmp.js';

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});
function machine(devices: string[] = []): Machine {
  const m = createMachine({ devices, accel: 'qtest' });
  machines.push(m);
  return m;
}

describe('runHmp', () => {
  it('ends every line in CRLF', () => {
    const m = machine(['edu']);
    for (const cmd of ['info pci', 'info mtree', 'info mtree -f', 'info qtree', 'info iommu', 'info', 'nope', 'info pci x']) {
      const out = runHmp(m, cmd);
      expect(out.endsWith('\r\n'), cmd).toBe(true);
      expect(out.replace(/\r\n/g, ''), cmd).not.toMatch(/[\r\n]/);
    }
  });

  it('lists the info sub-commands in QEMU help format', () => {
    expect(runHmp(null, 'info').split('\r\n')).toEqual([
      'info iommu [-a][-c][-q][-f][-i][-t bus:dev.fn [pasid] [iova] [w]] -- show Intel VT-d units, registers and address spaces (vtemu; -a: all views, -c: caches, -q: invalidation queue, -f: fault records, -i: interrupt remapping table, -t: translation path of a request)',
      'info mtree [-f][-d][-o][-D] -- show memory tree (-f: dump flat view for address spaces;-d: dump dispatch tree, valid with -f only);-o: dump region owners/parents;-D: dump disabled regions',
      'info pci  -- show PCI info',
      'info qtree [-b] -- show device tree (-b: brief, omit properties)',
      '',
    ]);
  });

  it('answers without a machine', () => {
    expect(runHmp(null, 'info pci')).toBe('');
    expect(runHmp(null, 'info qtree')).toBe('bus: main-system-bus\r\n  type System\r\n');
    expect(runHmp(null, 'info mtree')).toBe(
      'address-space: I/O\r\n  0000000000000000-000000000000ffff (prio 0, container): io\r\n\r\n' +
        'address-space: memory\r\n  0000000000000000-ffffffffffffffff (prio 0, container): system\r\n\r\n',
    );
    expect(runHmp(null, 'foo')).toBe("unknown command: 'foo'\r\n");
  });

  it('shows the bus-master spaces: the alias onto system memory appears with bus mastering', () => {
    const m = machine(['edu']);
    const alias = '    0000000000000000-ffffffffffffffff (prio 0, container): alias bus master @system 0000000000000000-ffffffffffffffff';
    const edu = (t: string): string[] => t.split('\r\n\r\n').find((s) => s.startsWith('address-space: edu\r\n'))!.split('\r\n');
    expect(edu(runHmp(m, 'info mtree'))).toEqual(['address-space: edu', '  0000000000000000-ffffffffffffffff (prio 0, container): bus master container']);
    expect(edu(runHmp(m, 'info mtree -D'))[2]).toBe(`${alias} [disabled]`);
    m.pci.host.configWrite(0, 0x08, 0x04, 2, 0x0004);
    expect(edu(runHmp(m, 'info mtree'))[2]).toBe(alias);
    expect(runHmp(m, 'info mtree')).toContain('memory-region: system\r\n');
  });

  it('names the IOMMU space of the requester behind an IOMMU', () => {
    const m = machine(['intel-iommu', 'edu']);
    m.pci.host.configWrite(0, 0x08, 0x04, 2, 0x0004);
    expect(runHmp(m, 'info mtree')).toContain('(prio 0, container): alias bus master @vtd-01.0 0000000000000000-ffffffffffffffff\r\n');
  });

  it('shows BARs inside the PCI region once they decode, and their flat ranges', () => {
    const m = machine(['edu']);
    m.pci.host.configWrite(0, 0x08, 0x10, 4, 0xfeb0_0000);
    m.pci.host.configWrite(0, 0x08, 0x04, 2, 0x0002);
    expect(runHmp(m, 'info mtree')).toContain(
      '    0000000000000000-ffffffffffffffff (prio -1, i/o): pci\r\n      00000000feb00000-00000000febfffff (prio 1, i/o): edu-mmio\r\n',
    );
    expect(runHmp(m, 'info mtree -f')).toContain('  00000000feb00000-00000000febfffff (prio 1, i/o): edu-mmio\r\n');
  });
});
