/**
 * The q35 host bridge: where the root bus sits in the CPU's memory map,
 * configuration mechanism #1 (CF8/CFC, PCI Local Bus 3.0 §3.2.2.3.2) and
 * ECAM (PCIe Base 4.0 §7.2.2) addressing at their edges — the enable bit,
 * reserved bits, byte lanes, the 256-byte and 4 KiB limits, the first and
 * last bus of each window size — the IOMMU hook, INTx to GSI/ISA routing,
 * enumeration and reset.  QEMU comparisons of register contents are in
 * ich9.test.ts, bridges.test.ts and device.test.ts.
 */
import { MSI_WINDOW } from '../core/irq.js';
import { describe, expect, it } from 'vitest';
import { AddressSpace, MemTx } from '../memory/address-space.js';
import type { DmaIommu, DmaRequester, DmaTranslator } from '../memory/iommu.js';
import { createTsRam } from '../memory/ram-ts.js';
import { ContainerRegion, RamRegion } from '../memory/region.js';
import type { IrqLine } from '../core/irq.js';
import { PciBridge } from './bridge.js';
import { PciePciBridge } from './bridges.js';
import { BridgeReg, PciCommand, PciHeaderType, PciReg } from './config.js';
import {
  ConfigAddress,
  Ecam,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_DATA_PORT,
  Q35Devfn,
  RstCnt,
  allowsExtendedConfig,
  createQ35PciHost,
} from './host.js';
import { TestEndpoint, cf8, cfgRead, cfgWrite, makeTestHost } from '../../test/support/pci-host.js';

const MCH_ID = 0x29c0_8086;
const LPC_ID = 0x2918_8086;
const AHCI_ID = 0x2922_8086;
const SMBUS_ID = 0x2930_8086;
const EP_ID = 0x5678_1234;

/** A bridge with a PCIe (default) or conventional secondary bus. */
class Bridge extends PciBridge {
  constructor(secondaryExpress = true, express = true) {
    super({ typeName: 'test-bridge', vendorId: 0x1234, deviceId: 0xb0, revision: 0, secondaryExpress, express });
  }
}

/** Enables ECAM through the MCH's PCIEXBAR (0x60) with CF8/CFC. */
function enableEcam(io: ReturnType<typeof makeTestHost>['io'], pciexbar: number, upper = 0): void {
  cfgWrite(io, 0, 0, 0x64, upper);
  cfgWrite(io, 0, 0, 0x60, pciexbar);
}

describe('constants', () => {
  it('ports, address fields and q35 devfns', () => {
    expect(PCI_CONFIG_ADDRESS_PORT).toBe(0xcf8);
    expect(PCI_CONFIG_DATA_PORT).toBe(0xcfc);
    expect(ConfigAddress).toEqual({ Enable: 0x8000_0000, BusShift: 16, DevfnShift: 8, RegMask: 0xfc });
    expect(Ecam).toEqual({ BusShift: 20, BusMask: 0x1ff, DevfnShift: 12, DevfnMask: 0xff, RegMask: 0xfff });
    expect(RstCnt).toEqual({ Port: 0xcf9, Offset: 1, SysRst: 0x02, ResetCpu: 0x04, FullRst: 0x08, Keep: 0x0a });
    expect(Q35Devfn).toEqual({ Mch: 0x00, Lpc: 0xf8, Ahci: 0xfa, Smbus: 0xfb });
  });
});

describe('the root complex', () => {
  it('a PCIe root bus pcie.0 with the built-in functions, LPC/AHCI/SMBus as one multi-function slot', () => {
    const { host } = makeTestHost();
    const bus = host.rootBus;
    expect(bus.name).toBe('pcie.0');
    expect(bus.isExpress).toBe(true);
    expect(bus.isRoot).toBe(true);
    expect(host.rootIrqCount).toBe(8);
    const fns = host.allFunctions();
    expect(fns.map((f) => [f.busNumber, f.devfn])).toEqual([
      [0, 0x00],
      [0, 0xf8],
      [0, 0xfa],
      [0, 0xfb],
    ]);
    expect(fns.map((f) => f.device)).toEqual([host.mch, host.lpc, host.ahci, host.smbus]);
    expect(host.mch.devfn).toBe(0x00);
    expect(host.lpc.devfn).toBe(0xf8);
    expect(host.ahci.devfn).toBe(0xfa);
    expect(host.smbus.devfn).toBe(0xfb);
    expect(host.mch.config.getByte(PciReg.HeaderType)).toBe(PciHeaderType.Normal);
    for (const d of [host.lpc, host.ahci, host.smbus]) {
      expect(d.config.getByte(PciReg.HeaderType) & PciHeaderType.MultiFunction).toBe(PciHeaderType.MultiFunction);
    }
  });

  it('maps QEMU-named regions: PCI memory at priority -1, CONFIG_ADDRESS and CONFIG_DATA as 4-byte ports', () => {
    const t = makeTestHost();
    const pci = t.system.subregions().find((s) => s.region === t.host.rootBus.memory)!;
    expect([pci.region.name, pci.offset, pci.priority, pci.region.size]).toEqual(['pci', 0, -1, 2 ** 64]);
    const ports = t.ioRoot.subregions().filter((s) => s.offset === 0xcf8 || s.offset === 0xcfc);
    expect(ports.map((s) => [s.region.name, s.offset, s.region.size]).sort()).toEqual([
      ['pci-conf-data', 0xcfc, 4],
      ['pci-conf-idx', 0xcf8, 4],
    ]);
    expect(t.host.ecam.name).toBe('pcie-mmcfg-mmio');
    expect(t.host.rootBus.io).toBe(t.ioRoot);
  });

  it('defaults without the optional context: no bridge master gating, INTx to nowhere, no reset handler', () => {
    const system = new ContainerRegion('system', 2 ** 64);
    const ioRoot = new ContainerRegion('io', 0x10000);
    const host = createQ35PciHost({ systemMemory: system, ioSpace: ioRoot, memory: new AddressSpace('m', system) });
    expect(host.bridgeMasterGating).toBe(false);
    expect(host.onResetRequest).toBeNull();
    const ep = new TestEndpoint();
    host.rootBus.plug(ep, { devfn: 0xe8 });
    host.configWrite(0, 0xf8, 0x60, 1, 0x0b); // PIRQA -> IRQ 11
    expect(() => ep.setIntx(true)).not.toThrow();
    expect(host.rootBus.irqLevel(0)).toBe(true);
    expect(() => new AddressSpace('io', ioRoot).write(0xcf9, 1, RstCnt.ResetCpu)).not.toThrow();
    const gated = createQ35PciHost({
      systemMemory: new ContainerRegion('s2', 2 ** 64),
      ioSpace: new ContainerRegion('i2', 0x10000),
      memory: new AddressSpace('m2', system),
      bridgeMasterGating: true,
    });
    expect(gated.bridgeMasterGating).toBe(true);
  });

  it('PCI memory sits below everything else in system memory (priority -1), ECAM above it', () => {
    const t = makeTestHost();
    const ep = new TestEndpoint();
    t.host.rootBus.plug(ep, { devfn: 0x08 });
    ep.configWrite(PciReg.Bar0, 4, 0xb000_0000);
    ep.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(t.mem.read(0xb000_0000, 4)).toBe(0x1234_0000); // the BAR
    enableEcam(t.io, 0xb000_0001);
    expect(t.mem.read(0xb000_0000, 4)).toBe(MCH_ID); // ECAM covers it
    ep.configWrite(PciReg.Bar0, 4, 0x8000_0000);
    expect(t.mem.read(0x8000_0004, 4)).toBe(0x1234_0004);
    const ram = createTsRam(0x1000);
    ram.writeU32(4, 0x5a5a_5a5a);
    t.system.add(new RamRegion('ram', 0x1000, ram), 0x8000_0000);
    expect(t.mem.read(0x8000_0004, 4)).toBe(0x5a5a_5a5a); // RAM at priority 0 wins
  });
});

describe('CONFIG_ADDRESS (0xCF8)', () => {
  it('only a 4-byte write at 0xCF8 changes it; it reads back whole, reserved bits included', () => {
    const { host, io } = makeTestHost();
    io.write(0xcf8, 4, 0xff12_3457);
    expect(io.read(0xcf8, 4)).toBe(0xff12_3457);
    expect(host.configAddressRegister).toBe(0xff12_3457);
    io.write(0xcf8, 2, 0);
    io.write(0xcf8, 1, 0x0a);
    io.write(0xcfa, 2, 0);
    io.write(0xcfa, 1, 0x0a);
    io.write(0xcfb, 1, 0x0a);
    expect(io.read(0xcf9, 1)).toBe(0); // none of these is RST_CNT
    io.write(0xcf9, 1, 0x02); // RST_CNT
    expect(io.read(0xcf9, 1)).toBe(0x02);
    expect(host.configAddressRegister).toBe(0xff12_3457);
    expect(io.read(0xcf8, 2)).toBe(0x3457);
    expect(io.read(0xcf8, 1)).toBe(0x57);
  });

  it('resets to 0', () => {
    const { host, io } = makeTestHost();
    io.write(0xcf8, 4, 0x8000_0000);
    host.reset();
    expect(io.read(0xcf8, 4)).toBe(0);
    expect(io.read(0xcfc, 4)).toBe(0xffff_ffff);
  });
});

describe('CONFIG_DATA (0xCFC-0xCFF)', () => {
  it('without the enable bit (bit 31) reads all-ones at every width and drops writes', () => {
    const { host, io } = makeTestHost();
    const ep = new TestEndpoint();
    host.rootBus.plug(ep, { devfn: 0x08 });
    for (const a of [0x0000_0000, 0x0000_0844, 0x7fff_ffff]) {
      io.write(0xcf8, 4, a);
      expect(io.read(0xcfc, 4)).toBe(0xffff_ffff);
      expect(io.read(0xcfe, 2)).toBe(0xffff);
      expect(io.read(0xcff, 1)).toBe(0xff);
    }
    io.write(0xcf8, 4, 0x0000_0844);
    io.write(0xcfc, 4, 0x1234_5678);
    io.write(0xcfd, 1, 0x12);
    expect(ep.config.getLong(0x44)).toBe(0);
    io.write(0xcf8, 4, 0x8000_0844);
    io.write(0xcfc, 4, 0x1234_5678);
    expect(ep.config.getLong(0x44)).toBe(0x1234_5678);
  });

  it('bus in bits 23:16, devfn in 15:8, register in 7:2; reserved bits 30:24 ignored', () => {
    const { io } = makeTestHost();
    expect(cfgRead(io, 0, 0x00, 0)).toBe(MCH_ID);
    expect(cfgRead(io, 0, 0xf8, 0)).toBe(LPC_ID);
    expect(cfgRead(io, 0, 0xfa, 0)).toBe(AHCI_ID);
    expect(cfgRead(io, 0, 0xfb, 0)).toBe(SMBUS_ID);
    expect(cfgRead(io, 0, 0xff, 0)).toBe(0xffff_ffff);
    expect(cfgRead(io, 0, 0x08, 0)).toBe(0xffff_ffff);
    io.write(0xcf8, 4, (cf8(0, 0xfb, 0) | 0x7f00_0000) >>> 0);
    expect(io.read(0xcfc, 4)).toBe(SMBUS_ID);
    expect(cfgRead(io, 1, 0x00, 0)).toBe(0xffff_ffff);
    expect(cfgRead(io, 0xff, 0xfb, 0)).toBe(0xffff_ffff);
    expect(cfgRead(io, 0, 0x00, 0x08)).toBe(0x0600_0000);
    expect(cfgRead(io, 0, 0x00, 0xfc)).toBe(0);
  });

  it('each data port byte reaches its byte lane: CONFIG_ADDRESS bits 1:0 OR the port offset', () => {
    const { io } = makeTestHost();
    io.write(0xcf8, 4, 0x8000_0000);
    expect([0, 1, 2, 3].map((i) => io.read(0xcfc + i, 1))).toEqual([0x86, 0x80, 0xc0, 0x29]);
    expect(io.read(0xcfe, 2)).toBe(0x29c0);
    io.write(0xcf8, 4, 0x8000_0003);
    expect(io.read(0xcfd, 1)).toBe(0x29); // 3 | 1 = 3, not 3 + 1
    expect(io.read(0xcfc, 1)).toBe(0x29);
    io.write(0xcf8, 4, 0x8000_0001);
    expect(io.read(0xcfe, 1)).toBe(0x29); // 1 | 2
  });

  it('writes through each byte lane land on their byte only', () => {
    const { host, io } = makeTestHost();
    const ep = new TestEndpoint({ express: false });
    host.rootBus.plug(ep, { devfn: 0x10 });
    io.write(0xcf8, 4, cf8(0, 0x10, 0x44));
    io.write(0xcfd, 1, 0xaa);
    expect(ep.config.getLong(0x44)).toBe(0x0000_aa00);
    io.write(0xcfe, 2, 0xccbb);
    expect(ep.config.getLong(0x44)).toBe(0xccbb_aa00);
    io.write(0xcff, 1, 0xdd);
    io.write(0xcfc, 1, 0x11);
    expect(ep.config.getLong(0x44)).toBe(0xddbb_aa11);
  });

  it('the last dword of the 256-byte space, and nothing beyond it', () => {
    const { host, io } = makeTestHost();
    const ep = new TestEndpoint();
    host.rootBus.plug(ep, { devfn: 0x10 });
    cfgWrite(io, 0, 0x10, 0xfc, 0x8765_4321);
    expect(cfgRead(io, 0, 0x10, 0xfc)).toBe(0x8765_4321);
    expect(cfgRead(io, 0, 0x10, 0xff, 1)).toBe(0x87);
    expect(ep.config.getLong(0x100)).toBe(0); // extended space is out of CF8/CFC's reach
  });
});

describe('configRead / configWrite limits (QEMU pci_host_config_read_common)', () => {
  function setup() {
    const t = makeTestHost();
    const pcie = new TestEndpoint();
    const conv = new TestEndpoint({ express: false });
    t.host.rootBus.plug(pcie, { devfn: 0x08 });
    t.host.rootBus.plug(conv, { devfn: 0x10 });
    pcie.config.setLong(0xfc, 0x4433_2211);
    pcie.config.setLong(0x100, 0x8877_6655);
    pcie.config.setLong(0xffc, 0xccbb_aa99);
    conv.config.setLong(0xfc, 0x4433_2211);
    return { ...t, pcie, conv };
  }

  it('absent buses and functions read all-ones of the access size; writes vanish', () => {
    const { host } = setup();
    expect(host.configRead(0, 0x18, 0, 1)).toBe(0xff);
    expect(host.configRead(0, 0x18, 0, 2)).toBe(0xffff);
    expect(host.configRead(0, 0x18, 0, 4)).toBe(0xffff_ffff);
    expect(host.configRead(9, 0x00, 0, 4, true)).toBe(0xffff_ffff);
    expect(() => host.configWrite(9, 0, 0, 4, 0)).not.toThrow();
    expect(() => host.configWrite(0, 0x18, 0, 4, 0, true)).not.toThrow();
  });

  it('CF8/CFC (not extended): 256 bytes; an access running past 0xff returns only the bytes inside, the rest 0', () => {
    const { host, pcie } = setup();
    expect(host.configRead(0, 0x08, 0xfc, 4)).toBe(0x4433_2211);
    expect(host.configRead(0, 0x08, 0xfe, 4)).toBe(0x0000_4433);
    expect(host.configRead(0, 0x08, 0xff, 2)).toBe(0x0044);
    expect(host.configRead(0, 0x08, 0xfd, 4)).toBe(0x0044_3322);
    expect(host.configRead(0, 0x08, 0x100, 4)).toBe(0xffff_ffff);
    expect(host.configRead(0, 0x08, 0x100, 1)).toBe(0xff);
    host.configWrite(0, 0x08, 0xfe, 4, 0xa1a2_a3a4);
    expect(pcie.config.getLong(0xfc)).toBe(0xa3a4_2211);
    expect(pcie.config.getLong(0x100)).toBe(0x8877_6655);
    host.configWrite(0, 0x08, 0x100, 4, 0);
    expect(pcie.config.getLong(0x100)).toBe(0x8877_6655);
  });

  it('ECAM (extended) on a PCIe function: 4 KiB, clipped the same way at 0xfff', () => {
    const { host, pcie } = setup();
    expect(host.configRead(0, 0x08, 0x100, 4, true)).toBe(0x8877_6655);
    expect(host.configRead(0, 0x08, 0xffc, 4, true)).toBe(0xccbb_aa99);
    expect(host.configRead(0, 0x08, 0xffe, 4, true)).toBe(0x0000_ccbb);
    expect(host.configRead(0, 0x08, 0x1000, 2, true)).toBe(0xffff);
    host.configWrite(0, 0x08, 0xfff, 4, 0x0102_0304, true);
    expect(pcie.config.getLong(0xffc)).toBe(0x04bb_aa99);
    host.configWrite(0, 0x08, 0x100, 4, 0x1357_9bdf, true);
    expect(pcie.config.getLong(0x100)).toBe(0x1357_9bdf);
  });

  it('ECAM on a conventional function stops at 256 bytes', () => {
    const { host, conv } = setup();
    expect(host.configRead(0, 0x10, 0xfc, 4, true)).toBe(0x4433_2211);
    expect(host.configRead(0, 0x10, 0xfe, 4, true)).toBe(0x0000_4433);
    expect(host.configRead(0, 0x10, 0x100, 4, true)).toBe(0xffff_ffff);
    host.configWrite(0, 0x10, 0xfd, 4, 0xddcc_bbaa, true);
    expect(conv.config.getLong(0xfc)).toBe(0xccbb_aa11);
  });

  it('ECAM behind a conventional bus stops at 256 bytes even for a PCIe function', () => {
    const { host } = makeTestHost();
    const br = new PciePciBridge();
    host.rootBus.plug(br, { devfn: 0x08 });
    br.configWrite(BridgeReg.PrimaryBus, 4, 0x00_01_01_00);
    const ep = new TestEndpoint();
    br.secondaryBus.plug(ep, { devfn: 0x00 });
    ep.config.setLong(0x100, 0x1111_1111);
    expect(host.configRead(1, 0, 0, 4, true)).toBe(EP_ID);
    expect(host.configRead(1, 0, 0x100, 4, true)).toBe(0xffff_ffff);
  });
});

describe('allowsExtendedConfig (QEMU pci_bus_allows_extended_config_space)', () => {
  it('true only when every bus up to the root is PCI Express', () => {
    const { host } = makeTestHost();
    expect(allowsExtendedConfig(host.rootBus)).toBe(true);
    const port = new Bridge(true);
    host.rootBus.plug(port, { devfn: 0x08 });
    expect(allowsExtendedConfig(port.secondaryBus)).toBe(true);
    const toPci = new Bridge(false);
    port.secondaryBus.plug(toPci);
    expect(allowsExtendedConfig(toPci.secondaryBus)).toBe(false);
    const below = new Bridge(true, false);
    toPci.secondaryBus.plug(below);
    expect(below.secondaryBus.isExpress).toBe(true);
    expect(allowsExtendedConfig(below.secondaryBus)).toBe(false);
  });
});

describe('ECAM addressing (bus << 20 | devfn << 12 | register)', () => {
  it('maps PCIEXBAR length 256 MiB (buses 0-255), 128 MiB (0-127), 64 MiB (0-63)', () => {
    for (const [bits, length, lastBus] of [
      [0x1, 0x1000_0000, 255],
      [0x3, 0x0800_0000, 127],
      [0x5, 0x0400_0000, 63],
    ] as const) {
      const t = makeTestHost();
      const br = new Bridge();
      t.host.rootBus.plug(br, { devfn: 0x08 });
      br.configWrite(BridgeReg.PrimaryBus, 4, (lastBus << 8) | (lastBus << 16));
      const ep = new TestEndpoint();
      br.secondaryBus.plug(ep, { devfn: 0xff, multifunction: false });
      enableEcam(t.io, 0xc000_0000 | bits);
      expect(t.host.ecamWindow()).toEqual({ base: 0xc000_0000, length });
      expect(t.host.ecam.size).toBe(length);
      const last = 0xc000_0000 + length - 4; // bus lastBus, devfn 0xff, register 0xffc
      expect(t.mem.read(0xc000_0000 + (lastBus << 20) + (0xff << 12), 4)).toBe(EP_ID);
      t.mem.write(last, 4, 0xcafe_f00d);
      expect(ep.config.getLong(0xffc)).toBe(0xcafe_f00d);
      expect(t.mem.read(last, 4)).toBe(0xcafe_f00d);
      expect(t.mem.read(0xc000_0000 + length, 4)).toBe(0); // past the window: unassigned memory
      expect(t.mem.read(0xbfff_fffc, 4)).toBe(0);
      expect(t.mem.read(0xc000_0000, 4)).toBe(MCH_ID);
    }
  });

  it('the window may sit above 4 GiB (PCIEXBAR bits 35:32)', () => {
    const t = makeTestHost();
    enableEcam(t.io, 0xb000_0001, 0x0000_0003);
    expect(t.host.ecamWindow()).toEqual({ base: 0x3_b000_0000, length: 0x1000_0000 });
    expect(t.mem.read(0x3_b000_0000, 4)).toBe(MCH_ID);
    expect(t.mem.read(0x3_b000_0000 + (0xf8 << 12), 4)).toBe(LPC_ID);
    expect(t.mem.read(0xb000_0000, 4)).toBe(0);
  });

  it('an access running past register 0xfff stops at the end of the function', () => {
    const t = makeTestHost();
    const ep = new TestEndpoint();
    t.host.rootBus.plug(ep, { devfn: 0x09 });
    const ep2 = new TestEndpoint();
    t.host.rootBus.plug(ep2, { devfn: 0x0a });
    ep.config.setByte(0xfff, 0xab);
    enableEcam(t.io, 0xb000_0001);
    const at = 0xb000_0000 + (0x09 << 12) + 0xfff; // the next byte would be 00:01.2 register 0
    expect(t.mem.read(at, 2)).toBe(0x00ab);
    t.mem.write(at, 2, 0x3344);
    expect(ep.config.getByte(0xfff)).toBe(0x44);
    expect(ep2.config.getByte(0)).toBe(0x34); // vendor ID untouched
  });

  it('moving, disabling and a reserved length', () => {
    const t = makeTestHost();
    enableEcam(t.io, 0xb000_0001);
    enableEcam(t.io, 0xe000_0001);
    expect(t.mem.read(0xb000_0000, 4)).toBe(0);
    expect(t.mem.read(0xe000_0000, 4)).toBe(MCH_ID);
    cfgWrite(t.io, 0, 0, 0x60, 0xd000_0007); // reserved length: the mapping stays where it was
    expect(t.mem.read(0xe000_0000, 4)).toBe(MCH_ID);
    expect(t.mem.read(0xd000_0000, 4)).toBe(0);
    cfgWrite(t.io, 0, 0, 0x60, 0xe000_0000);
    expect(t.host.ecamWindow()).toBeNull();
    expect(t.mem.read(0xe000_0000, 4)).toBe(0);
    expect(t.mem.write(0xe000_0000, 4, 0)).toBe(MemTx.DecodeError);
  });
});

describe('RST_CNT (0xCF9)', () => {
  it('the reset request goes to the handler from the context; without one nothing happens', () => {
    let requests = 0;
    const system = new ContainerRegion('system', 2 ** 64);
    const ioRoot = new ContainerRegion('io', 0x10000);
    const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
    createQ35PciHost({ systemMemory: system, ioSpace: ioRoot, memory: new AddressSpace('m', system), onResetRequest: () => requests++ });
    io.write(0xcf9, 1, RstCnt.ResetCpu);
    expect(requests).toBe(1);
    const t = makeTestHost();
    expect(t.host.onResetRequest).toBeNull();
    t.io.write(0xcf9, 1, 0xff);
    expect(t.io.read(0xcf9, 1)).toBe(0x0a);
  });

  it('only bit 2 requests a reset', () => {
    const { host, io } = makeTestHost();
    let requests = 0;
    host.onResetRequest = () => requests++;
    io.write(0xcf9, 1, 0xfb);
    expect(requests).toBe(0);
    expect(io.read(0xcf9, 1)).toBe(0x0a);
    io.write(0xcf9, 1, 0x04);
    expect(requests).toBe(1);
    expect(io.read(0xcf9, 1)).toBe(0x00);
  });
});

describe('IOMMU hook (QEMU pci_setup_iommu)', () => {
  it('no translator without an IOMMU; the IOMMU gets the requester; every change bumps the generation', () => {
    const { host } = makeTestHost();
    const r = host.rootBus.requester(0x10);
    expect(host.iommuGeneration).toBe(0);
    expect(host.translatorFor(r)).toBeNull();
    const asked: DmaRequester[] = [];
    const t: DmaTranslator = { interruptWindow: MSI_WINDOW, translate: () => false, interruptWrite: () => {} };
    const iommu: DmaIommu = {
      translatorFor: (req) => {
        asked.push(req);
        return t;
      },
    };
    host.setIommu(iommu);
    expect(host.iommuGeneration).toBe(1);
    // Every plugged function gets its translator at once (QEMU: address spaces exist from machine-done).
    const plugged = host.allFunctions().map((f) => f.device.requester());
    expect(asked).toEqual(plugged);
    expect(host.translatorFor(r)).toBe(t);
    expect(asked.slice(plugged.length)).toEqual([r]);
    host.setIommu(iommu);
    expect(host.iommuGeneration).toBe(2);
    host.setIommu(null);
    expect(host.iommuGeneration).toBe(3);
    expect(host.translatorFor(r)).toBeNull();
  });
});

describe('INTx routing', () => {
  /** Every set() on every GSI line, even without a level change. */
  function lines() {
    const log: [gsi: number, level: boolean][] = [];
    const line = (gsi: number): IrqLine => ({ set: (level) => log.push([gsi, level]) });
    return { log, line };
  }

  it('slots 0-24 go to PIRQ E-H by (slot + pin) % 4; slots 25-31 use D25IR-D31IR (INTA-D to PIRQ A-D)', () => {
    const { host } = makeTestHost();
    expect(host.mapRootIrq(0x00, 0)).toBe(4);
    expect(host.mapRootIrq(0x08, 0)).toBe(5);
    expect(host.mapRootIrq(0x08, 3)).toBe(4);
    expect(host.mapRootIrq(0xc7, 1)).toBe(5); // slot 24
    expect(host.mapRootIrq(0xc8, 0)).toBe(0); // slot 25
    expect(host.mapRootIrq(0xc8, 3)).toBe(3);
    expect(host.mapRootIrq(0xff, 2)).toBe(2);
  });

  it('PIRQ n drives GSI 16 + n', () => {
    const { log, line } = lines();
    const { host } = makeTestHost(line);
    const ep = new TestEndpoint();
    host.rootBus.plug(ep, { devfn: 0xe8 }); // slot 29, INTA -> PIRQA
    ep.setIntx(true);
    expect(log).toEqual([[16, true]]);
    ep.setIntx(false);
    expect(log).toEqual([
      [16, true],
      [16, false],
    ]);
    const other = new TestEndpoint();
    host.rootBus.plug(other, { devfn: 0x18 }); // slot 3, INTA -> PIRQH
    other.setIntx(true);
    expect(log.at(-1)).toEqual([23, true]);
  });

  it('an enabled PIRQ route drives its ISA IRQ, except IRQs 0, 1, 2, 8 and 13', () => {
    const valid: number[] = [];
    for (let isa = 0; isa < 16; isa++) {
      const { log, line } = lines();
      const { host, io } = makeTestHost(line);
      const ep = new TestEndpoint();
      host.rootBus.plug(ep, { devfn: 0xe8 });
      cfgWrite(io, 0, 0xf8, 0x60, isa, 1); // PIRQA_ROUT
      ep.setIntx(true);
      if (log.some(([gsi]) => gsi === isa)) valid.push(isa);
      expect(log[0]).toEqual([16, true]);
    }
    expect(valid).toEqual([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15]);
  });

  it('a disabled route (bit 7) leaves the ISA IRQ low', () => {
    const { log, line } = lines();
    const { host, io } = makeTestHost(line);
    const ep = new TestEndpoint();
    host.rootBus.plug(ep, { devfn: 0xe8 });
    cfgWrite(io, 0, 0xf8, 0x60, 0x8b, 1);
    ep.setIntx(true);
    expect(log).toEqual([[16, true]]);
    cfgWrite(io, 0, 0xf8, 0x60, 0x0b, 1);
    ep.setIntx(false);
    ep.setIntx(true);
    ep.setIntx(false);
    expect(log.slice(1)).toEqual([
      [16, false],
      [16, true],
      [11, true],
      [16, false],
      [11, false],
    ]);
  });
});

describe('enumeration and reset', () => {
  it('findDevice and allFunctions follow bridges depth first with current bus numbers', () => {
    const { host } = makeTestHost();
    const a = new Bridge();
    host.rootBus.plug(a, { devfn: 0x08 });
    const ep = new TestEndpoint();
    a.secondaryBus.plug(ep, { devfn: 0x00 });
    const b = new TestEndpoint();
    host.rootBus.plug(b, { devfn: 0x10 });
    a.configWrite(BridgeReg.PrimaryBus, 4, 0x00_04_04_00);
    expect(host.findDevice(4, 0)).toBe(ep);
    expect(host.findDevice(0, 0x10)).toBe(b);
    expect(host.findDevice(4, 1)).toBeUndefined();
    expect(host.findDevice(5, 0)).toBeUndefined();
    expect(host.allFunctions().map((f) => [f.busNumber, f.devfn])).toEqual([
      [0, 0x00],
      [0, 0x08],
      [4, 0x00],
      [0, 0x10],
      [0, 0xf8],
      [0, 0xfa],
      [0, 0xfb],
    ]);
    const behind = host.allFunctions()[2]!;
    expect(behind.device).toBe(ep);
    expect(behind.bus).toBe(a.secondaryBus);
  });

  it('reset puts every function back, behind bridges too', () => {
    const { host } = makeTestHost();
    const a = new Bridge();
    host.rootBus.plug(a, { devfn: 0x08 });
    const ep = new TestEndpoint();
    a.secondaryBus.plug(ep);
    a.configWrite(BridgeReg.PrimaryBus, 4, 0x00_01_01_00);
    ep.configWrite(PciReg.InterruptLine, 1, 10);
    host.reset();
    expect(ep.resets).toBe(1);
    expect(ep.config.getByte(PciReg.InterruptLine)).toBe(0);
    expect(a.config.getByte(BridgeReg.SecondaryBus)).toBe(0);
  });
});
