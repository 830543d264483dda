import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import type { PciDevice } from '../pci/device.js';
import { formatQtree, machineQtree, pciBusLines, type QtreeBus } from './info-qtree.js';

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});
function machine(devices: string[]): Machine {
  const m = createMachine({ devices, accel: 'qtest', memory: '128M' });
  machines.push(m);
  return m;
}

describe('formatQtree', () => {
  const tree: QtreeBus = {
    name: 'main-system-bus',
    type: 'System',
    devices: [
      {
        type: 'hostbridge',
        id: '',
        preLines: ['gpio-in "" 2'],
        props: [['size', '4096 (4 KiB)']],
        busLines: ['mmio 0000000000001000/0000000000000100'],
        buses: [{ name: 'pci.0', type: 'PCI', devices: [{ type: 'dev', id: 'd0', props: [['x', 'true']], busLines: ['class X'], buses: [] }] }],
      },
    ],
  };
  it('indents buses and devices two blanks per level', () => {
    expect(formatQtree(tree).split('\n')).toEqual([
      'bus: main-system-bus',
      '  type System',
      '  dev: hostbridge, id ""',
      '    gpio-in "" 2',
      '    size = 4096 (4 KiB)',
      '    mmio 0000000000001000/0000000000000100',
      '    bus: pci.0',
      '      type PCI',
      '      dev: dev, id "d0"',
      '        x = true',
      '        class X',
      '',
    ]);
  });
  it('-b keeps only buses and devices', () => {
    expect(formatQtree(tree, true)).toBe('bus: main-system-bus\n  type System\n  dev: hostbridge, id ""\n    bus: pci.0\n      type PCI\n      dev: dev, id "d0"\n');
  });
});

describe('machineQtree', () => {
  it('lists devices newest first, bridges with their buses, intel-iommu with resolved on/off values', () => {
    const m = machine(['intel-iommu,intremap=on,x-smpwc=off', 'edu,id=e', 'pcie-root-port,id=rp,chassis=3', 'edu,id=f,bus=rp']);
    const out = formatQtree(machineQtree(m));
    const devs = out.split('\n').filter((l) => l.includes('dev: ')).map((l) => l.trim());
    expect(devs).toEqual([
      'dev: intel-iommu, id ""',
      'dev: ioapic, id ""',
      'dev: q35-pcihost, id ""',
      'dev: pcie-root-port, id "rp"',
      'dev: edu, id "f"',
      'dev: edu, id "e"',
      'dev: ICH9-SMB, id ""',
      'dev: ich9-ahci, id ""',
      'dev: ICH9-LPC, id ""',
      'dev: mch, id ""',
      'dev: fw_cfg_io, id ""',
    ]);
    expect(out).toContain('    eim = "off"\n');
    expect(out).toContain('    intremap = "on"\n');
    expect(out).toContain('    aw-bits = 48 (0x30)\n');
    expect(out).toContain('        chassis = 3 (0x3)\n');
    expect(out).toContain('        bus: rp\n          type PCIE\n          dev: edu, id "f"\n            addr = 00.0\n');
    expect(out).toContain('    below-4g-mem-size = 134217728 (128 MiB)\n');
    expect(out).not.toContain('dma_mask');
    // QEMU's props come first, vtemu's own after them.
    expect(out.indexOf('dma-translation = true')).toBeLessThan(out.indexOf('x-smpwc = false'));
    expect(out).toContain('        multifunction = true\n        x-pcie-lnksta-dllla');
  });

  it('prints the PCI bus lines: class, address, ids, BARs (unmapped at all-ones)', () => {
    const m = machine(['edu,id=e']);
    const e = m.deviceById('e') as PciDevice;
    expect(pciBusLines(e)).toEqual(['class Class 00ff, addr 00:01.0, pci id 1234:11e8 (sub 1af4:1100)', 'bar 0: mem at 0xffffffffffffffff [0xffffe]']);
    m.pci.host.configWrite(0, e.devfn, 0x10, 4, 0xfeb0_0000);
    m.pci.host.configWrite(0, e.devfn, 0x04, 2, 0x0002);
    expect(pciBusLines(e)[1]).toBe('bar 0: mem at 0xfeb00000 [0xfebfffff]');
    expect(pciBusLines(m.pci.host.smbus)).toEqual(['class SMBus, addr 00:1f.3, pci id 8086:2930 (sub 1af4:1100)', 'bar 4: i/o at 0xffffffffffffffff [0x3e]']);
  });
});
