import { describe, expect, it } from 'vitest';
import { createMachine } from './q35.js';
import { ConfigError } from './registry.js';
import type { MsiDelivery } from '../hw/intc/msi-sink.js';

const CF8 = 0xcf8;
const CFC = 0xcfc;
const EDU_BAR = 0xe000_0000;

/** Config write/read through CF8/CFC as a guest does. */
function cfg(m: ReturnType<typeof createMachine>, devfn: number) {
  const sel = (reg: number): void => {
    m.io.write(CF8, 4, (0x8000_0000 | (devfn << 8) | (reg & 0xfc)) >>> 0);
  };
  return {
    read(reg: number): number {
      sel(reg);
      return m.io.read(CFC, 4);
    },
    write(reg: number, v: number): void {
      sel(reg);
      m.io.write(CFC, 4, v);
    },
  };
}

function eduUp(m: ReturnType<typeof createMachine>, devfn: number): void {
  const c = cfg(m, devfn);
  c.write(0x10, EDU_BAR);
  c.write(0x04, 0x6);
}

describe('q35 machine', () => {
  it('maps RAM in the q35 layout and answers unassigned accesses', () => {
    const m = createMachine({ memory: '3G', accel: 'qtest' });
    expect(m.ramBelow4g).toBe(0x8000_0000);
    expect(m.ramAbove4g).toBe(0x4000_0000);
    m.memory.write(0x1_0000_0000, 4, 0xcafe);
    expect(m.ram.readU32(0x8000_0000)).toBe(0xcafe);
    expect(m.memory.read(0xe000_0000, 4)).toBe(0);
    expect(m.io.read(0x1234, 1)).toBe(0xff);
    expect(m.clock.mode).toBe('qtest');
    expect(createMachine({}).clock.mode).toBe('real');
    expect(createMachine({ qtest: true }).clock.mode).toBe('qtest');
  });

  it('plugs PCI devices in the first free slot, honours addr= and refuses taken slots', () => {
    const m = createMachine({ devices: ['edu,id=a', 'edu,id=b', 'edu,id=c,addr=5.0'] });
    const [a, b, c] = m.devices;
    expect(b!.devfn).toBe(a!.devfn! + 8);
    expect(c!.devfn).toBe(5 << 3);
    expect(cfg(m, c!.devfn!).read(0)).toBe(0x11e81234);
    expect(m.deviceById('b')).toBe(b!.device);
    expect(() => createMachine({ devices: ['edu,addr=5', 'edu,addr=5'] })).toThrow(ConfigError);
  });

  it('edu DMA without an IOMMU reaches RAM', () => {
    const m = createMachine({ accel: 'qtest', devices: ['edu'] });
    eduUp(m, m.devices[0]!.devfn!);
    m.memory.write(0x10_0000, 4, 0x11223344);
    m.memory.write(EDU_BAR + 0x80, 4, 0x10_0000);
    m.memory.write(EDU_BAR + 0x88, 4, 0x40000);
    m.memory.write(EDU_BAR + 0x90, 4, 4);
    m.memory.write(EDU_BAR + 0x98, 4, 1);
    m.clock.step(200_000_000);
    m.memory.write(EDU_BAR + 0x80, 4, 0x40000);
    m.memory.write(EDU_BAR + 0x88, 4, 0x20_0000);
    m.memory.write(EDU_BAR + 0x90, 4, 4);
    m.memory.write(EDU_BAR + 0x98, 4, 3);
    m.clock.step(200_000_000);
    expect(m.memory.read(0x20_0000, 4)).toBe(0x11223344);
  });

  it('edu DMA goes through intel-iommu: untranslated DMA faults with the edu source id', () => {
    const m = createMachine({ accel: 'qtest', devices: ['intel-iommu,aw-bits=39', 'edu'] });
    expect(m.iommus.length).toBe(1);
    const devfn = m.devices[1]!.devfn!;
    eduUp(m, devfn);
    // Root table at 16 MiB: present context for the edu bus, 3-level table with nothing mapped.
    m.memory.write64(0x100_0000, 0x100_1000n | 1n);
    m.memory.write64(0x100_1000 + devfn * 16, 0x100_2000n | 1n);
    m.memory.write64(0x100_1000 + devfn * 16 + 8, 0x101n);
    m.memory.write64(0xfed9_0020, 0x100_0000n);
    m.memory.write(0xfed9_0018, 4, 0x4000_0000); // GCMD.SRTP
    m.memory.write(0xfed9_0018, 4, 0x8000_0000); // GCMD.TE
    m.memory.write(EDU_BAR + 0x80, 4, 0x10_0000);
    m.memory.write(EDU_BAR + 0x88, 4, 0x40000);
    m.memory.write(EDU_BAR + 0x90, 4, 4);
    m.memory.write(EDU_BAR + 0x98, 4, 1);
    m.clock.step(200_000_000);
    expect(m.memory.read(0xfed9_0034, 4) & 0x2).toBe(0x2); // FSTS.PPF
    const hi = m.memory.read64(0xfed9_0228);
    expect(Number(hi & 0xffffn)).toBe(devfn);
  });

  it('IOAPIC messages go to the APIC bus (and through the IOMMU when there is one)', () => {
    for (const devices of [[], ['intel-iommu']]) {
      const m = createMachine({ accel: 'qtest', devices });
      const seen: MsiDelivery[] = [];
      m.events.on('interrupt', (d) => seen.push(d));
      // RTE 3: vector 0x33, edge, unmasked.
      m.memory.write(0xfec0_0000, 4, 0x10 + 2 * 3);
      m.memory.write(0xfec0_0010, 4, 0x33);
      m.ioapic.pins[3]!.set(true);
      expect(seen.map((d) => d.vector)).toEqual([0x33]);
    }
  });

  it('publishes a DMAR listing root-bus devices when there is an IOMMU', () => {
    const m = createMachine({ devices: ['intel-iommu,aw-bits=39', 'edu'] });
    const dmar = m.firmware.acpi.index.find((t) => t.signature === 'DMAR');
    expect(dmar).toBeDefined();
    expect(createMachine({}).firmware.acpi.index.find((t) => t.signature === 'DMAR')).toBeUndefined();
  });

  it('reset puts devices back to their power-on state and emits reset', () => {
    const m = createMachine({ accel: 'qtest', devices: ['intel-iommu', 'edu'] });
    const devfn = m.devices[1]!.devfn!;
    eduUp(m, devfn);
    m.memory.write(0xfed9_0040, 4, 0x1234);
    m.memory.write(EDU_BAR + 4, 4, 0x5);
    let resets = 0;
    m.events.on('reset', () => resets++);
    m.reset();
    expect(resets).toBe(1);
    expect(m.memory.read(0xfed9_0040, 4)).toBe(0);
    expect(cfg(m, devfn).read(0x04) & 0x7).toBe(0);
    expect(cfg(m, devfn).read(0x10)).toBe(0);
  });

  it('several DRHD units (machine file): requesters go to the unit whose scope claims them', () => {
    const m = createMachine({
      accel: 'qtest',
      devices: ['intel-iommu,id=vtd0', 'intel-iommu,id=vtd1', 'edu,id=edu0', 'edu,id=edu1'],
      dmar: {
        units: [
          { iommu: 'vtd1', base: '0xfed91000', includePciAll: true },
          { iommu: 'vtd0', base: 0xfed90000, devices: ['edu0'] },
        ],
      },
    });
    expect(m.memory.read(0xfed9_1000, 4)).toBe(0x10);
    // Translation on in vtd1 only, with an empty root table: edu1 faults there, edu0 is untranslated.
    m.memory.write(0xfed9_1018, 4, 0x4000_0000);
    m.memory.write(0xfed9_1018, 4, 0x8000_0000);
    const run = (devfn: number, dst: number): void => {
      const c = cfg(m, devfn);
      c.write(0x10, EDU_BAR);
      c.write(0x04, 0x6);
      m.memory.write(EDU_BAR + 0x80, 4, 0x40000);
      m.memory.write(EDU_BAR + 0x88, 4, dst);
      m.memory.write(EDU_BAR + 0x90, 4, 4);
      m.memory.write(EDU_BAR + 0x98, 4, 3);
      m.clock.step(200_000_000);
      c.write(0x04, 0);
    };
    m.memory.write(0x30_0000, 4, 0x5a5a5a5a);
    m.memory.write(0x30_1000, 4, 0x5a5a5a5a);
    run(m.devices[2]!.devfn!, 0x30_0000);
    run(m.devices[3]!.devfn!, 0x30_1000);
    expect(m.memory.read(0x30_0000, 4)).toBe(0);
    expect(m.memory.read(0x30_1000, 4)).toBe(0x5a5a5a5a);
    expect(m.memory.read(0xfed9_0034, 4)).toBe(0);
    expect(m.memory.read(0xfed9_1034, 4) & 2).toBe(2);
    const dmar = m.firmware.acpi.index.find((t) => t.signature === 'DMAR')!;
    expect(dmar.length).toBeGreaterThan(48);
  });

  it('a DRHD scoped to a root port claims the devices behind it (bus numbers as the guest programs them)', () => {
    const m = createMachine({
      accel: 'qtest',
      devices: ['intel-iommu,id=vtd0', 'intel-iommu,id=vtd1', 'pcie-root-port,id=rp1,chassis=1', 'edu,id=edu1,bus=rp1'],
      dmar: { units: [{ iommu: 'vtd0', base: 0xfed90000, devices: ['rp1'] }, { iommu: 'vtd1', base: 0xfed91000, includePciAll: true }] },
    });
    const rp = cfg(m, m.devices[2]!.devfn!);
    rp.write(0x18, 0x00_01_01_00); // primary 0, secondary 1, subordinate 1
    rp.write(0x20, 0xe000_e000); // memory window 0xE0000000-0xE00FFFFF
    rp.write(0x04, 0x6);
    const sel = (reg: number): void => {
      m.io.write(CF8, 4, (0x8000_0000 | (1 << 16) | reg) >>> 0);
    };
    sel(0x10);
    m.io.write(CFC, 4, EDU_BAR);
    sel(0x04);
    m.io.write(CFC, 4, 0x6);
    expect(m.memory.read(EDU_BAR, 4)).toBe(0x010000ed);
    m.memory.write(0xfed9_0018, 4, 0x4000_0000);
    m.memory.write(0xfed9_0018, 4, 0x8000_0000);
    m.memory.write(EDU_BAR + 0x80, 4, 0x40000);
    m.memory.write(EDU_BAR + 0x88, 4, 0x30_0000);
    m.memory.write(EDU_BAR + 0x90, 4, 4);
    m.memory.write(EDU_BAR + 0x98, 4, 3);
    m.clock.step(200_000_000);
    expect(m.memory.read(0xfed9_0034, 4) & 2).toBe(2);
    expect(Number(m.memory.read64(0xfed9_0228) & 0xffffn)).toBe(0x100); // SID 01:00.0
    expect(m.memory.read(0xfed9_1034, 4)).toBe(0);
  });

  it('refuses bad configurations with QEMU wording', () => {
    expect(() => createMachine({ machine: ['q35,foo=1'] })).toThrow("Property 'pc-q35-11.1-machine.foo' not found");
    expect(() => createMachine({ memory: '1X' })).toThrow(/expects a non-negative number/);
    expect(() => createMachine({ devices: ['intel-iommu', 'intel-iommu'] })).toThrow(/multiple vIOMMUs/);
    expect(() => createMachine({ devices: ['edu', 'intel-iommu,aw-bits=300'] })).toThrow(/uint8_t/);
  });

  it('kernel-irqchip reaches intel-iommu (intremap/eim resolution)', () => {
    // QEMU 11.1 without KVM: eim=on is accepted, eim needs intremap.
    expect(createMachine({ devices: ['intel-iommu,intremap=on,eim=on'] }).iommus[0]!.config.eim).toBe(true);
    expect(() => createMachine({ devices: ['intel-iommu,intremap=off,eim=on'] })).toThrow('eim=on cannot be selected without intremap=on');
    const m = createMachine({ machine: ['q35,kernel-irqchip=split'], devices: ['intel-iommu,intremap=on'] });
    expect(m.iommus[0]!.config.intremap).toBe(true);
    expect(m.iommus[0]!.config.kernelIrqchip).toBe('split');
  });

  it('deprecated intel-iommu property names warn once each and still apply', () => {
    const warnings: string[] = [];
    const m = createMachine({ devices: ['intel-iommu,x-buggy-eim=on,pt=off,dma-drain=off'], warn: (w) => warnings.push(w) });
    const c = m.iommus[0]!.config;
    expect([c.eim, c.pt, c.dmaDrain]).toEqual([true, false, false]);
    expect(warnings.map((w) => w.split(': warning: ')[1]!.split(' ')[2])).toEqual(["'x-buggy-eim'", "'pt'", "'dma-drain'"]);
    expect(warnings.every((w) => w.startsWith('-device intel-iommu,x-buggy-eim=on,pt=off,dma-drain=off: warning: ') && !w.includes('\n'))).toBe(true);
    const none: string[] = [];
    createMachine({ devices: ['intel-iommu,eim=on,intremap=on'], warn: (w) => none.push(w) });
    expect(none).toEqual([]);
  });
});
