import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { BridgeReg, PciReg } from '../pci/config.js';
import type { PciDevice } from '../pci/device.js';
import { findBusNr, hex, infoPci } from './info-pci.js';
import { infoPciClass, pciClassName, qtreeClass } from './pci-class.js';

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});

function machine(devices: string[]): Machine {
  const m = createMachine({ devices, accel: 'qtest' });
  machines.push(m);
  return m;
}

const byId = (m: Machine, id: string): PciDevice => m.deviceById(id) as PciDevice;
const text = (m: Machine): string[] => infoPci(m.pci.rootBus, (d) => m.devices.find((x) => x.device === d)?.spec.id ?? '').split('\n');

/** Guest config write through the host (as CF8/CFC would deliver it). */
function cfg(m: Machine, d: PciDevice, reg: number, size: 1 | 2 | 4, value: number): void {
  m.pci.host.configWrite(d.bus.busNumber(), d.devfn, reg, size, value);
}

describe('PCI class names', () => {
  it('names the classes QEMU names and numbers the rest', () => {
    expect(pciClassName(0x0600)).toBe('Host bridge');
    expect(pciClassName(0x0c05)).toBe('SMBus');
    expect(pciClassName(0x0106)).toBe('SATA controller');
    expect(pciClassName(0x0403)).toBe('Audio controller');
    expect(pciClassName(0x00ff)).toBeUndefined();
    expect(infoPciClass(0x00ff)).toBe('Class 0255');
    expect(infoPciClass(0x0001)).toBe('VGA controller');
    expect(infoPciClass(0xff00)).toBe('Class 65280');
    expect(qtreeClass(0x00ff)).toBe('Class 00ff');
    expect(qtreeClass(0x0604)).toBe('PCI bridge');
  });
});

describe('infoPci', () => {
  it('prints a function with its BAR where it decodes, its line and id', () => {
    const m = machine(['edu,id=e']);
    const e = byId(m, 'e');
    cfg(m, e, 0x10, 4, 0xfebf_0000);
    cfg(m, e, PciReg.InterruptLine, 1, 11);
    expect(text(m).slice(4, 10)).toEqual([
      '  Bus  0, device   1, function 0:',
      '    Class 0255: PCI device 1234:11e8',
      '      PCI subsystem 1af4:1100',
      '      IRQ 11, pin A',
      '      BAR0: 32 bit memory (not mapped)',
      '      id "e"',
    ]);
    cfg(m, e, PciReg.Command, 2, 0x0002);
    expect(text(m)[8]).toBe('      BAR0: 32 bit memory at 0xfeb00000 [0xfebfffff]');
  });

  it('prints I/O BARs with four digits', () => {
    const m = machine([]);
    const ahci = m.pci.host.ahci;
    cfg(m, ahci, 0x20, 4, 0xc040);
    cfg(m, ahci, PciReg.Command, 2, 0x0001);
    expect(text(m)).toContain('      BAR4: I/O at 0xc040 [0xc05f]');
    expect(text(m)).toContain('      BAR5: 32 bit memory (not mapped)');
  });

  it('prints bridge windows as programmed, 32-bit I/O and 64-bit prefetchable parts included', () => {
    const m = machine(['pcie-root-port,id=rp,chassis=1']);
    const rp = byId(m, 'rp');
    cfg(m, rp, BridgeReg.PrimaryBus, 4, 0x0003_0207);
    cfg(m, rp, BridgeReg.MemoryBase, 4, 0xfe10_fe00);
    cfg(m, rp, BridgeReg.PrefMemoryBase, 4, 0xc010_c000);
    cfg(m, rp, BridgeReg.PrefBaseUpper32, 4, 0xffff_ffff);
    cfg(m, rp, BridgeReg.PrefLimitUpper32, 4, 0xffff_ffff);
    // A 32-bit I/O window (read-only type bits set by the device side).
    rp.config.setByte(BridgeReg.IoBase, 0x21);
    rp.config.setByte(BridgeReg.IoLimit, 0x31);
    rp.config.setWord(BridgeReg.IoBaseUpper16, 0x0001);
    rp.config.setWord(BridgeReg.IoLimitUpper16, 0x0001);
    const t = text(m);
    const at = t.indexOf('    PCI bridge: PCI device 1b36:000c');
    expect(t.slice(at, at + 10)).toEqual([
      '    PCI bridge: PCI device 1b36:000c',
      '      IRQ 0, pin A',
      '      BUS 7.',
      '      secondary bus 2.',
      '      subordinate bus 3.',
      '      IO range [0x12000, 0x13fff]',
      '      memory range [0xfe000000, 0xfe1fffff]',
      '      prefetchable memory range [0xffffffffc0000000, 0xffffffffc01fffff]',
      '      BAR0: 32 bit memory (not mapped)',
      '      id "rp"',
    ]);
  });

  it('lists the functions behind a bridge once it has a secondary bus number', () => {
    const m = machine(['pcie-root-port,id=rp,chassis=1', 'edu,id=e,bus=rp']);
    const rp = byId(m, 'rp');
    expect(text(m).filter((l) => l.startsWith('  Bus'))).toHaveLength(5);
    cfg(m, rp, BridgeReg.SecondaryBus, 1, 4);
    cfg(m, rp, BridgeReg.SubordinateBus, 1, 4);
    const t = text(m);
    const at = t.indexOf('      id "rp"');
    expect(t.slice(at + 1, at + 3)).toEqual(['  Bus  4, device   0, function 0:', '    Class 0255: PCI device 1234:11e8']);
    expect(t[at + 6]).toBe('      id "e"');
  });

  it('ends the listing when guest-programmed bus numbers form a loop', () => {
    const m = machine(['pcie-root-port,id=rp,chassis=1', 'pcie-pci-bridge,id=br,bus=rp', 'edu,id=e,bus=br,addr=1']);
    const rp = byId(m, 'rp');
    const br = byId(m, 'br');
    cfg(m, rp, BridgeReg.PrimaryBus, 4, 0x0001_0100);
    // The bridge below says its secondary bus is the bus it sits on.
    cfg(m, br, BridgeReg.PrimaryBus, 4, 0x0001_0101);
    const ids = text(m).filter((l) => l.startsWith('      id '));
    expect(ids).toEqual(['      id ""', '      id "rp"', '      id "br"', '      id ""', '      id ""', '      id ""']);
  });
});

describe('findBusNr', () => {
  it('finds a bus through the bridge ranges and nothing outside them', () => {
    const m = machine(['pcie-root-port,id=rp,chassis=1', 'x3130-upstream,id=up,bus=rp', 'xio3130-downstream,id=dn,bus=up,chassis=2']);
    const [rp, up, dn] = ['rp', 'up', 'dn'].map((id) => byId(m, id)) as [PciDevice, PciDevice, PciDevice];
    cfg(m, rp, BridgeReg.PrimaryBus, 4, 0x0003_0100);
    cfg(m, up, BridgeReg.PrimaryBus, 4, 0x0003_0201);
    cfg(m, dn, BridgeReg.PrimaryBus, 4, 0x0003_0302);
    const root = m.pci.rootBus;
    expect(findBusNr(root, 0)).toBe(root);
    expect(findBusNr(root, 3)?.parent).toBe(dn);
    expect(findBusNr(root, 2)?.parent).toBe(up);
    expect(findBusNr(root, 9)).toBeNull();
    // From a non-root bus, numbers outside its bridge's range are not searched.
    expect(findBusNr(up.bus, 3)?.parent).toBe(dn);
    expect(findBusNr(dn.bus, 1)).toBeNull();
  });
});

describe('hex', () => {
  it('pads to a width and grows beyond it', () => {
    expect(hex(0xf, 4)).toBe('000f');
    expect(hex(0x12345, 4)).toBe('12345');
    expect(hex(2n ** 64n - 1n, 8)).toBe('ffffffffffffffff');
  });
});
