/**
 * PciBridge, the type-1 base class (PCI-to-PCI Bridge Architecture 1.2
 * §3.2; QEMU pci_bridge.c), on a minimal subclass: header values and write
 * masks, the PCIe port adjustments, window decoding (I/O 16/32-bit, memory,
 * prefetchable 64-bit) at its edges, forwarding of CPU accesses through the
 * windows to the secondary bus, and secondary bus reset on a 0->1 edge.
 * The concrete QEMU bridges are compared with QEMU in bridges.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { BridgeControl, BridgeWindow, PCIE_PORT_BRIDGE_CONTROL_RO, PciBridge } from './bridge.js';
import { BridgeReg, PciCommand, PciConfig, PciHeaderType, PciReg, PciStatus } from './config.js';
import { TestEndpoint, makeTestHost } from '../../test/support/pci-host.js';

/** A bare bridge; exposes the protected helpers the port classes use. */
class Bridge extends PciBridge {
  constructor(opts: { classCode?: number; busName?: string; express?: boolean } = {}) {
    super({
      typeName: 'test-bridge',
      vendorId: 0x1234,
      deviceId: 0x00b0,
      revision: 0,
      secondaryExpress: true,
      express: opts.express ?? true,
      classCode: opts.classCode,
      busName: opts.busName,
    });
  }
  pcieRegs(): void {
    this.initPcieBridgeRegs();
  }
  closeWindows(): void {
    this.disableBaseLimit();
  }
}

/** What the guest reads after writing all-ones, then zero, to a dword (then the old value is restored). */
function probe(c: PciConfig, off: number): [ones: number, zero: number] {
  const old = c.getLong(off);
  c.guestWrite(off, 4, 0xffff_ffff);
  const ones = c.getLong(off);
  c.guestWrite(off, 4, 0);
  const zero = c.getLong(off);
  c.setLong(off, old);
  return [ones, zero];
}

/** A q35 host with a bridge at 00:01.0 (secondary bus 1) and an endpoint at 01:00.0. */
function forwarding() {
  const t = makeTestHost();
  const bridge = new Bridge();
  t.host.rootBus.plug(bridge, { devfn: 0x08 });
  const ep = new TestEndpoint();
  bridge.secondaryBus.plug(ep);
  bridge.configWrite(BridgeReg.PrimaryBus, 4, 0x00_01_01_00);
  return { ...t, bridge, ep };
}

describe('constants', () => {
  it('bridge control bits (§3.2.5.18)', () => {
    expect(BridgeControl).toEqual({
      Parity: 1 << 0,
      Serr: 1 << 1,
      Isa: 1 << 2,
      Vga: 1 << 3,
      Vga16: 1 << 4,
      MasterAbort: 1 << 5,
      BusReset: 1 << 6,
      FastBack: 1 << 7,
      Discard: 1 << 8,
      SecDiscard: 1 << 9,
      DiscardStatus: 1 << 10,
      DiscardSerr: 1 << 11,
    });
    expect(PCIE_PORT_BRIDGE_CONTROL_RO).toBe(0x0fa0);
  });

  it('window register fields', () => {
    expect(BridgeWindow).toEqual({
      IoRangeMask: 0xf0,
      IoTypeMask: 0x0f,
      IoType32: 0x01,
      MemRangeMask: 0xfff0,
      PrefType64: 0x0001,
      PrefTypeMask: 0x000f,
      IoGranule: 0x1000,
      MemGranule: 0x10_0000,
    });
  });
});

describe('type-1 header', () => {
  it('class 06:04:00 by default, header type 1, 66 MHz and fast back-to-back on both sides', () => {
    const b = new Bridge();
    const c = b.config;
    expect(b.isBridge).toBe(true);
    expect(c.getByte(PciReg.HeaderType)).toBe(PciHeaderType.Bridge);
    expect(c.getLong(PciReg.RevisionId) >>> 8).toBe(0x060400);
    expect(c.getWord(PciReg.Status)).toBe(0x00a0);
    expect(c.getWord(BridgeReg.SecStatus)).toBe(0x00a0);
    expect(new Bridge({ classCode: 0x060401 }).config.getLong(PciReg.RevisionId) >>> 8).toBe(0x060401);
  });

  it('the secondary bus exists only once plugged', () => {
    expect(() => new Bridge().secondaryBus).toThrow('pci bridge test-bridge: not plugged yet');
  });

  it('write masks (QEMU pci_init_mask_bridge)', () => {
    const c = new Bridge().config;
    expect(probe(c, BridgeReg.PrimaryBus)).toEqual([0xffff_ffff, 0]); // primary, secondary, subordinate, latency
    expect(probe(c, BridgeReg.IoBase)).toEqual([0x00a0_f0f0, 0x00a0_0000]); // secondary status read-only
    expect(probe(c, BridgeReg.MemoryBase)).toEqual([0xfff0_fff0, 0]);
    expect(probe(c, BridgeReg.PrefMemoryBase)).toEqual([0xfff1_fff1, 0x0001_0001]); // 64-bit type bits
    expect(probe(c, BridgeReg.PrefBaseUpper32)).toEqual([0xffff_ffff, 0]);
    expect(probe(c, BridgeReg.PrefLimitUpper32)).toEqual([0xffff_ffff, 0]);
    expect(probe(c, BridgeReg.IoBaseUpper16)).toEqual([0, 0]);
    expect(probe(c, PciReg.InterruptLine)).toEqual([0x0bff_00ff, 0]); // bridge control in the upper half
  });

  it('discard timer status is write-1-to-clear', () => {
    const c = new Bridge().config;
    c.setWord(BridgeReg.BridgeControl, BridgeControl.DiscardStatus);
    c.guestWrite(BridgeReg.BridgeControl, 2, 0);
    expect(c.getWord(BridgeReg.BridgeControl)).toBe(BridgeControl.DiscardStatus);
    c.guestWrite(BridgeReg.BridgeControl, 2, BridgeControl.DiscardStatus | BridgeControl.Serr);
    expect(c.getWord(BridgeReg.BridgeControl)).toBe(BridgeControl.Serr);
  });

  it('PCIe ports: status keeps only the capability list bit, secondary status 0, conventional-only control bits read-only', () => {
    const b = new Bridge();
    const c = b.config;
    c.setWord(PciReg.Status, 0xffff);
    b.pcieRegs();
    expect(c.getWord(PciReg.Status)).toBe(PciStatus.CapList);
    expect(c.getWord(BridgeReg.SecStatus)).toBe(0);
    expect(c.getWmask(BridgeReg.BridgeControl, 2)).toBe(0x005f);
    expect(c.getW1cmask(BridgeReg.BridgeControl, 2)).toBe(BridgeControl.DiscardStatus);
  });
});

describe('window decoding', () => {
  it('reset values: I/O [0, 0xfff], memory [0, 0xfffff], prefetchable 64-bit [0, 0xfffff]', () => {
    const b = new Bridge();
    expect(b.ioWindow()).toEqual([0, 0xfff]);
    expect(b.memWindow()).toEqual([0, 0xf_ffff]);
    expect(b.prefWindow()).toEqual([0, 0xf_ffff]);
  });

  it('disableBaseLimit closes every window (base above limit), keeping the type bits', () => {
    const b = new Bridge();
    const c = b.config;
    c.setByte(BridgeReg.IoBase, BridgeWindow.IoType32);
    c.setByte(BridgeReg.IoLimit, 0xf1);
    c.setLong(BridgeReg.MemoryBase, 0xfff0_0000);
    c.setLong(BridgeReg.PrefBaseUpper32, 7);
    c.setLong(BridgeReg.PrefLimitUpper32, 7);
    b.closeWindows();
    expect(c.getByte(BridgeReg.IoBase)).toBe(0xf1);
    expect(c.getByte(BridgeReg.IoLimit)).toBe(0x01);
    expect(c.getLong(BridgeReg.MemoryBase)).toBe(0x0000_fff0);
    expect(c.getLong(BridgeReg.PrefMemoryBase)).toBe(0x0001_fff1);
    expect(c.getLong(BridgeReg.PrefBaseUpper32)).toBe(0);
    expect(c.getLong(BridgeReg.PrefLimitUpper32)).toBe(0);
    expect(b.memWindow()).toEqual([0xfff0_0000, 0xf_ffff]);
    expect(b.prefWindow()).toEqual([0xfff0_0000, 0xf_ffff]);
    const [ioBase, ioLimit] = b.ioWindow();
    expect(ioLimit).toBeLessThan(ioBase);
  });

  it('I/O: 4 KiB granules from bits 7:4; the low nibble is read-only type', () => {
    const b = new Bridge();
    b.configWrite(BridgeReg.IoBase, 2, 0x3f2f);
    expect(b.config.getWord(BridgeReg.IoBase)).toBe(0x3020);
    expect(b.ioWindow()).toEqual([0x2000, 0x3fff]);
    b.configWrite(BridgeReg.IoBase, 2, 0xf0f0);
    expect(b.ioWindow()).toEqual([0xf000, 0xffff]);
    b.configWrite(BridgeReg.IoBase, 2, 0x1020);
    expect(b.ioWindow()).toEqual([0x2000, 0x1fff]); // closed
  });

  it('32-bit I/O (type 1) adds the upper 16 bits; other types ignore them', () => {
    const b = new Bridge();
    const c = b.config;
    c.setByte(BridgeReg.IoBase, 0x21);
    c.setByte(BridgeReg.IoLimit, 0x21);
    c.setWord(BridgeReg.IoBaseUpper16, 0x0001);
    c.setWord(BridgeReg.IoLimitUpper16, 0x0002);
    expect(b.ioWindow()).toEqual([0x1_2000, 0x2_2fff]);
    c.setByte(BridgeReg.IoBase, 0x23);
    expect(b.ioWindow()).toEqual([0x2000, 0x2fff]);
    c.setByte(BridgeReg.IoBase, 0x20);
    expect(b.ioWindow()).toEqual([0x2000, 0x2fff]);
  });

  it('memory: 1 MiB granules from bits 15:4, up to the last MiB below 4 GiB', () => {
    const b = new Bridge();
    b.configWrite(BridgeReg.MemoryBase, 4, 0xe02f_e01f);
    expect(b.config.getLong(BridgeReg.MemoryBase)).toBe(0xe020_e010);
    expect(b.memWindow()).toEqual([0xe010_0000, 0xe02f_ffff]);
    b.configWrite(BridgeReg.MemoryBase, 4, 0xfff0_fff0);
    expect(b.memWindow()).toEqual([0xfff0_0000, 0xffff_ffff]);
  });

  it('prefetchable: 64-bit by default with the upper dwords; a 32-bit type ignores them', () => {
    const b = new Bridge();
    const c = b.config;
    b.configWrite(BridgeReg.PrefMemoryBase, 4, 0x8010_8000);
    b.configWrite(BridgeReg.PrefBaseUpper32, 4, 1);
    b.configWrite(BridgeReg.PrefLimitUpper32, 4, 2);
    expect(b.prefWindow()).toEqual([0x1_8000_0000, 0x2_801f_ffff]);
    c.setWord(BridgeReg.PrefMemoryBase, 0x8000); // the base register's type decides for both
    expect(b.prefWindow()).toEqual([0x8000_0000, 0x801f_ffff]);
    c.setWord(BridgeReg.PrefMemoryBase, 0x8003);
    expect(b.prefWindow()).toEqual([0x8000_0000, 0x801f_ffff]);
  });
});

describe('forwarding through the windows', () => {
  it('memory: exactly [base, limit] reaches the secondary bus, while memory decode is on', () => {
    const { bridge, ep, mem } = forwarding();
    // Endpoint BAR0 (4 KiB) in the last page of the window, then just past it.
    ep.configWrite(PciReg.Bar0, 4, 0xe00f_f000);
    ep.configWrite(PciReg.Command, 2, PciCommand.Memory);
    bridge.configWrite(BridgeReg.MemoryBase, 4, 0xe000_e000); // [0xe0000000, 0xe00fffff]
    expect(mem.read(0xe00f_fffc, 4)).toBe(0); // bridge memory decode off
    bridge.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(mem.read(0xe00f_f000, 4)).toBe(0x1234_0000);
    expect(mem.read(0xe00f_fffc, 4)).toBe(0x1234_0ffc);
    ep.configWrite(PciReg.Bar0, 4, 0xe010_0000); // outside the window
    expect(mem.read(0xe010_0000, 4)).toBe(0);
    bridge.configWrite(BridgeReg.MemoryLimit, 2, 0xe010); // grow the window by 1 MiB
    expect(mem.read(0xe010_0000, 4)).toBe(0x1234_0000);
    bridge.configWrite(BridgeReg.MemoryBase, 2, 0xe020); // base above limit: closed
    expect(mem.read(0xe010_0000, 4)).toBe(0);
  });

  it('prefetchable memory above 4 GiB opens once the last register is written', () => {
    const { bridge, ep, mem } = forwarding();
    ep.configWrite(PciReg.Bar0 + 16, 4, 0x0001_0000); // BAR4: 64 KiB 64-bit at 0x1_0001_0000
    ep.configWrite(PciReg.Bar0 + 20, 4, 1);
    ep.configWrite(PciReg.Command, 2, PciCommand.Memory);
    bridge.configWrite(PciReg.Command, 2, PciCommand.Memory);
    bridge.configWrite(BridgeReg.PrefMemoryBase, 4, 0x0000_0000);
    bridge.configWrite(BridgeReg.PrefBaseUpper32, 4, 1);
    expect(mem.read(0x1_0001_0008, 4)).toBe(0); // limit still 0x000fffff: closed
    bridge.configWrite(BridgeReg.PrefLimitUpper32, 4, 1);
    expect(bridge.prefWindow()).toEqual([0x1_0000_0000, 0x1_000f_ffff]);
    expect(mem.read(0x1_0001_0008, 4)).toBe(0x1234_0008);
    bridge.configWrite(PciReg.Command, 2, PciCommand.Io); // memory decode off closes it again
    expect(mem.read(0x1_0001_0008, 4)).toBe(0);
  });

  it('a window may end at 2^53 - 1; one reaching past it is not mapped (and nothing throws)', () => {
    const { bridge, ep, mem } = forwarding();
    const top = 2 ** 53 - 0x10000; // BAR4 (64 KiB) in the last 64 KiB below 2^53
    ep.configWrite(PciReg.Bar0 + 16, 4, 0xffff_0000);
    ep.configWrite(PciReg.Bar0 + 20, 4, 0x001f_ffff);
    ep.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(ep.bars[4]!.addr).toBe(top);
    bridge.configWrite(PciReg.Command, 2, PciCommand.Memory);
    bridge.configWrite(BridgeReg.PrefMemoryBase, 4, 0xfff0_fff0);
    bridge.configWrite(BridgeReg.PrefBaseUpper32, 4, 0x001f_ffff);
    bridge.configWrite(BridgeReg.PrefLimitUpper32, 4, 0x001f_ffff);
    expect(bridge.prefWindow()).toEqual([2 ** 53 - 0x10_0000, Number.MAX_SAFE_INTEGER]);
    expect(mem.read(top + 8, 4)).toBe(0x1234_0008);
    bridge.configWrite(BridgeReg.PrefLimitUpper32, 4, 0x0020_0000);
    expect(mem.read(top + 8, 4)).toBe(0);
    bridge.configWrite(BridgeReg.PrefLimitUpper32, 4, 0xffff_ffff);
    expect(bridge.prefWindow()[1]).toBeGreaterThan(2 ** 63);
    expect(mem.read(top + 8, 4)).toBe(0);
  });

  it('I/O: forwarded while I/O decode is on; memory decode does not open it', () => {
    const { bridge, ep, io } = forwarding();
    ep.configWrite(PciReg.Bar0 + 8, 4, 0x3ff0); // BAR2: 16 bytes of I/O, the last of the window
    ep.configWrite(PciReg.Command, 2, PciCommand.Io);
    bridge.configWrite(BridgeReg.IoBase, 2, 0x3030); // [0x3000, 0x3fff]
    bridge.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(io.read(0x3ffc, 4)).toBe(0xffff_ffff);
    bridge.configWrite(PciReg.Command, 2, PciCommand.Io);
    expect(io.read(0x3ffc, 4)).toBe(0x1234_000c);
    bridge.configWrite(BridgeReg.IoLimit, 1, 0x20); // closed
    expect(io.read(0x3ffc, 4)).toBe(0xffff_ffff);
  });

  it('a bridge that is not plugged has no windows to update and no bus to reset', () => {
    const b = new Bridge();
    b.configWrite(PciReg.Command, 2, PciCommand.Memory | PciCommand.Io);
    b.updateWindows();
    expect(() => b.configWrite(BridgeReg.BridgeControl, 2, BridgeControl.BusReset)).not.toThrow();
    expect(b.config.getWord(BridgeReg.BridgeControl)).toBe(BridgeControl.BusReset);
    expect(() => b.reset()).not.toThrow();
    expect(b.plugged).toBe(false);
  });
});

describe('secondary bus', () => {
  it('is named after the bridge and its bus unless a name is given, and hangs off the same host', () => {
    const { host } = makeTestHost();
    const a = new Bridge();
    host.rootBus.plug(a, { devfn: 0x10 });
    expect(a.secondaryBus.name).toBe('test-bridge.pcie.0.10');
    expect(a.secondaryBus.parent).toBe(a);
    expect(a.secondaryBus.host).toBe(host);
    expect(a.secondaryBus.isExpress).toBe(true);
    const b = new Bridge({ busName: 'port9' });
    host.rootBus.plug(b, { devfn: 0x18 });
    expect(b.secondaryBus.name).toBe('port9');
  });

  it('bus reset on the 0->1 edge of the bridge control bit only', () => {
    const { bridge, ep } = forwarding();
    const ctl = (v: number) => bridge.configWrite(BridgeReg.BridgeControl, 2, v);
    ctl(BridgeControl.Serr);
    expect(ep.resets).toBe(0);
    ctl(BridgeControl.BusReset);
    expect(ep.resets).toBe(1);
    ctl(BridgeControl.BusReset); // held
    ctl(BridgeControl.BusReset | BridgeControl.Serr);
    expect(ep.resets).toBe(1);
    ctl(0); // released
    expect(ep.resets).toBe(1);
    bridge.configWrite(BridgeReg.BridgeControl, 1, BridgeControl.BusReset); // byte write
    expect(ep.resets).toBe(2);
    bridge.configWrite(PciReg.InterruptLine, 4, 0); // dword at 0x3c releases it
    bridge.configWrite(PciReg.InterruptLine, 4, BridgeControl.BusReset << 16); // and sets it again
    expect(ep.resets).toBe(3);
  });

  it('resetting the bridge resets the devices below and closes the windows it had open', () => {
    const { bridge, ep, mem, host } = forwarding();
    ep.configWrite(PciReg.Bar0, 4, 0xe000_0000);
    ep.configWrite(PciReg.Command, 2, PciCommand.Memory);
    bridge.configWrite(BridgeReg.MemoryBase, 4, 0xe000_e000);
    bridge.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(mem.read(0xe000_0000, 4)).toBe(0x1234_0000);
    bridge.reset();
    expect(ep.resets).toBe(1);
    expect(mem.read(0xe000_0000, 4)).toBe(0);
    expect(host.findDevice(1, 0)).toBeUndefined(); // bus numbers back to 0
  });
});
