/**
 * The bridge/port capabilities on a bare PCI function: the PCI Express
 * capability (PCIe Base 4.0 §7.5.3) with and without a slot, slot control
 * side effects (command completed, electromechanical interlock), slot
 * power at reset, link status synchronisation with the function below,
 * and the small capabilities (SSVID, MSI-X, SHPC, slot ID, PM) and the AER
 * and ACS extended capabilities: values, write masks and W1C bits.
 * Complete ports are compared against QEMU in bridges.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PciConfig, PciReg, PciStatus } from './config.js';
import { PciDevice } from './device.js';
import {
  AER_SIZE,
  AerReg,
  CapId,
  ExpReg,
  ExtCapId,
  PCIE_CAP_V2_SIZE,
  type PcieCapSpec,
  PcieType,
  SLOT_CTL_POPULATED,
  SlotCtl,
  SlotSta,
  addAcsCap,
  addAerCap,
  addMsixCap,
  addPcieCap,
  addPmCap,
  addShpcCap,
  addSlotIdCap,
  addSsvidCap,
  pcieType,
  resetSlotPower,
  slotControlWritten,
  syncLinkStatus,
} from './pcie-cap.js';

/** A bare function: only the common header. */
class Fn extends PciDevice {
  constructor(express = true) {
    super({ typeName: 'fn', vendorId: 0x1234, deviceId: 0x11, revision: 0, classCode: 0, express });
  }
}

const AT = 0x60;

const SPEC: PcieCapSpec = {
  type: PcieType.RootPort,
  devCap: 0x0000_8000,
  devCtlWmask: 0x000f,
  linkCap: 0x0030_0604,
  linkSta: 0x0204,
  devCap2: 0x0030_0020,
  devCtl2Wmask: 0x8020,
};

/** Reads a register after the guest writes all-ones to it (then restores it). */
function ones(config: PciConfig, off: number, size: 2 | 4): number {
  const old = config.read(off, size);
  config.guestWrite(off, size, 0xffff_ffff);
  const v = config.read(off, size);
  if (size === 2) config.setWord(off, old);
  else config.setLong(off, old);
  return v;
}

describe('constants (PCI Code and ID Assignment 1.11; PCIe Base 4.0 §7.5.3, §7.6, §7.8.4)', () => {
  it('capability IDs and port types', () => {
    expect(CapId).toEqual({ PowerManagement: 1, SlotId: 4, Msi: 5, Ssvid: 0x0d, Shpc: 0x0c, Express: 0x10, Msix: 0x11 });
    expect(PcieType).toEqual({ Endpoint: 0, RootPort: 4, Upstream: 5, Downstream: 6, PcieToPciBridge: 7 });
    expect(ExtCapId).toEqual({ Aer: 1, Acs: 0x0d });
  });

  it('PCIe capability register offsets and size', () => {
    expect(ExpReg).toEqual({
      Flags: 0x02,
      DevCap: 0x04,
      DevCtl: 0x08,
      DevSta: 0x0a,
      LinkCap: 0x0c,
      LinkCtl: 0x10,
      LinkSta: 0x12,
      SlotCap: 0x14,
      SlotCtl: 0x18,
      SlotSta: 0x1a,
      RootCtl: 0x1c,
      DevCap2: 0x24,
      DevCtl2: 0x28,
      LinkCap2: 0x2c,
      LinkCtl2: 0x30,
    });
    expect(PCIE_CAP_V2_SIZE).toBe(0x3c);
  });

  it('slot control and status bits', () => {
    expect(SlotCtl).toEqual({ Reset: 0x07c0, Wmask: 0x07f9, Eic: 0x0800 });
    expect(SLOT_CTL_POPULATED).toBe(0x01c0);
    expect(SlotSta).toEqual({ CommandCompleted: 0x0010, Eis: 0x0080, W1c: 0x011f });
  });

  it('AER register offsets and size', () => {
    expect(AerReg).toEqual({
      UncStatus: 0x04,
      UncMask: 0x08,
      UncSeverity: 0x0c,
      CorStatus: 0x10,
      CorMask: 0x14,
      CapCtl: 0x18,
      RootCommand: 0x2c,
      RootStatus: 0x30,
    });
    expect(AER_SIZE).toBe(0x48);
  });
});

describe('addPcieCap', () => {
  it('links a version-2 capability of type `type` and returns its offset', () => {
    const d = new Fn();
    expect(addPcieCap(d, AT, SPEC)).toBe(AT);
    expect(d.findCapability(CapId.Express)).toBe(AT);
    expect(d.config.getByte(PciReg.CapabilityList)).toBe(AT);
    expect(d.config.getWord(PciReg.Status) & PciStatus.CapList).toBe(PciStatus.CapList);
    expect(d.config.getWord(AT)).toBe(0x0010);
    expect(d.config.getWord(AT + ExpReg.Flags)).toBe(0x0042); // no slot
    expect(pcieType(d)).toBe(PcieType.RootPort);
  });

  it('device, link and device-2 registers as specified; only the declared control bits are writable', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, port: 0xff, linkCap2: 0x1e, linkCtl2: 0x4 });
    const c = d.config;
    expect(c.getLong(AT + ExpReg.DevCap)).toBe(0x0000_8000);
    expect(c.getLong(AT + ExpReg.LinkCap)).toBe(0xff30_0604); // port number in bits 31:24, unsigned
    expect(c.getWord(AT + ExpReg.LinkSta)).toBe(0x0204);
    expect(c.getLong(AT + ExpReg.DevCap2)).toBe(0x0030_0020);
    expect(c.getLong(AT + ExpReg.LinkCap2)).toBe(0x1e);
    expect(c.getWord(AT + ExpReg.LinkCtl2)).toBe(0x4);
    expect(ones(c, AT + ExpReg.DevCtl, 2)).toBe(0x000f);
    expect(ones(c, AT + ExpReg.DevCtl2, 2)).toBe(0x8020);
    // Everything else in the capability is read-only.
    for (let off = AT; off < AT + PCIE_CAP_V2_SIZE; off += 2) {
      if (off === AT + ExpReg.DevCtl || off === AT + ExpReg.DevCtl2) continue;
      const before = c.getWord(off);
      c.guestWrite(off, 2, 0xffff);
      c.guestWrite(off, 2, 0);
      expect(c.getWord(off), `offset 0x${off.toString(16)}`).toBe(before);
    }
  });

  it('without a slot: slot registers zero and read-only; link cap 2 / link control 2 default to 0', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, type: PcieType.Upstream });
    const c = d.config;
    expect(c.getWord(AT + ExpReg.Flags)).toBe(0x0052);
    expect(c.getLong(AT + ExpReg.SlotCap)).toBe(0);
    expect(c.getLong(AT + ExpReg.SlotCtl)).toBe(0);
    expect(c.getLong(AT + ExpReg.LinkCap)).toBe(0x0030_0604);
    expect(c.getLong(AT + ExpReg.LinkCap2)).toBe(0);
    expect(c.getWord(AT + ExpReg.LinkCtl2)).toBe(0);
    expect(c.getW1cmask(AT + ExpReg.SlotSta, 2)).toBe(0);
    expect(ones(c, AT + ExpReg.RootCtl, 2)).toBe(0);
  });

  it('with a slot: slot implemented flag, hot-plug slot capabilities with the slot number, QEMU reset control', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, slot: 5, rootCtlWmask: 0x7 });
    const c = d.config;
    expect(c.getWord(AT + ExpReg.Flags)).toBe(0x0142);
    expect(c.getLong(AT + ExpReg.SlotCap)).toBe(0x002a_007b);
    expect(c.getWord(AT + ExpReg.SlotCtl)).toBe(0x07c0);
    expect(c.getWord(AT + ExpReg.SlotSta)).toBe(0);
    expect(ones(c, AT + ExpReg.SlotCtl, 2)).toBe(0x07f9);
    expect(c.getW1cmask(AT + ExpReg.SlotSta, 2)).toBe(0x011f);
    expect(ones(c, AT + ExpReg.RootCtl, 2)).toBe(0x7);
  });

  it('slot number 0 still means a slot; the largest slot number fills bits 31:19', () => {
    const d0 = new Fn();
    addPcieCap(d0, AT, { ...SPEC, slot: 0 });
    expect(d0.config.getWord(AT + ExpReg.Flags) & 0x100).toBe(0x100);
    expect(d0.config.getLong(AT + ExpReg.SlotCap)).toBe(0x0002_007b);
    const dmax = new Fn();
    addPcieCap(dmax, AT, { ...SPEC, slot: 0x1fff });
    expect(dmax.config.getLong(AT + ExpReg.SlotCap)).toBe(0xfffa_007b);
  });

  it('slot status change bits are write-1-to-clear, the others read-only', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, slot: 1 });
    const c = d.config;
    c.setWord(AT + ExpReg.SlotSta, 0x01ff);
    c.guestWrite(AT + ExpReg.SlotSta, 2, 0);
    expect(c.getWord(AT + ExpReg.SlotSta)).toBe(0x01ff);
    c.guestWrite(AT + ExpReg.SlotSta, 2, 0x0010);
    expect(c.getWord(AT + ExpReg.SlotSta)).toBe(0x01ef);
    c.guestWrite(AT + ExpReg.SlotSta, 2, 0xffff);
    expect(c.getWord(AT + ExpReg.SlotSta)).toBe(0x00e0); // MRLSS, PDS, EIS are state, not events
  });
});

describe('pcieType', () => {
  it('-1 for conventional functions and PCIe functions without the capability; the type field otherwise', () => {
    expect(pcieType(new Fn(false))).toBe(-1);
    const conv = new Fn(false);
    addPcieCap(conv, AT, SPEC); // a capability in a 256-byte space does not make a PCIe function
    expect(pcieType(conv)).toBe(-1);
    expect(pcieType(new Fn(true))).toBe(-1);
    for (const t of [PcieType.Endpoint, PcieType.Upstream, PcieType.Downstream, PcieType.PcieToPciBridge]) {
      const d = new Fn();
      addPcieCap(d, AT, { ...SPEC, type: t, slot: 3 });
      expect(pcieType(d)).toBe(t);
    }
  });

  it('finds the PCIe capability behind others in the list', () => {
    const d = new Fn();
    addPcieCap(d, 0x80, { ...SPEC, type: PcieType.Downstream });
    addPmCap(d, 0x40);
    expect(pcieType(d)).toBe(PcieType.Downstream);
  });
});

describe('slotControlWritten (QEMU pcie_cap_slot_write_config)', () => {
  function port() {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, slot: 1 });
    const c = d.config;
    /** A guest write followed by the side effect, as a port's configWrite does. */
    const write = (off: number, size: 1 | 2 | 4, value: number) => {
      c.guestWrite(off, size, value);
      slotControlWritten(d, AT, off, size, value);
    };
    const sta = () => c.getWord(AT + ExpReg.SlotSta);
    return { d, c, write, sta };
  }

  it('any write touching slot control completes the command at once', () => {
    for (const [off, size] of [
      [AT + 0x18, 2],
      [AT + 0x18, 1],
      [AT + 0x19, 1],
      [AT + 0x18, 4],
      [AT + 0x16, 4],
      [AT + 0x17, 2],
    ] as const) {
      const { write, sta } = port();
      write(off, size, 0);
      expect(sta(), `write at +0x${(off - AT).toString(16)} size ${size}`).toBe(SlotSta.CommandCompleted);
    }
  });

  it('writes next to slot control leave slot status alone', () => {
    for (const [off, size] of [
      [AT + 0x14, 4],
      [AT + 0x17, 1],
      [AT + 0x1a, 2],
      [AT + 0x1a, 1],
    ] as const) {
      const { write, sta } = port();
      write(off, size, 0xffff_ffff);
      expect(sta(), `write at +0x${(off - AT).toString(16)} size ${size}`).toBe(0);
    }
  });

  it('writing EIC toggles the interlock status; EIC itself is write-only', () => {
    const { c, write, sta } = port();
    write(AT + ExpReg.SlotCtl, 2, SlotCtl.Eic);
    expect(sta()).toBe(SlotSta.CommandCompleted | SlotSta.Eis);
    expect(c.getWord(AT + ExpReg.SlotCtl) & SlotCtl.Eic).toBe(0);
    write(AT + ExpReg.SlotCtl, 2, SlotCtl.Eic);
    expect(sta()).toBe(SlotSta.CommandCompleted);
    write(AT + ExpReg.SlotCtl, 2, 0x07ff); // everything but EIC
    expect(sta()).toBe(SlotSta.CommandCompleted);
  });

  it('finds EIC in the written value whatever the access shape', () => {
    // High byte of slot control alone.
    const a = port();
    a.write(AT + 0x19, 1, 0x08);
    expect(a.sta()).toBe(SlotSta.CommandCompleted | SlotSta.Eis);
    // Dword starting at slot capabilities + 2: slot control is the upper half.
    const b = port();
    b.write(AT + 0x16, 4, 0x0800_0000);
    expect(b.sta()).toBe(SlotSta.CommandCompleted | SlotSta.Eis);
    const b2 = port();
    b2.write(AT + 0x16, 4, 0x0000_0800); // that bit is in slot capabilities
    expect(b2.sta()).toBe(SlotSta.CommandCompleted);
    // Dword at slot control: the low half; bit 11 of the status half is not EIC.
    const c = port();
    c.write(AT + 0x18, 4, 0x0800_0000);
    expect(c.sta()).toBe(SlotSta.CommandCompleted);
    // Word ending in slot control's low byte: EIC is not in it.
    const d = port();
    d.write(AT + 0x17, 2, 0xffff);
    expect(d.sta()).toBe(SlotSta.CommandCompleted);
  });

  it('keeps the other status bits', () => {
    const { c, write, sta } = port();
    c.setWord(AT + ExpReg.SlotSta, 0x0140);
    write(AT + ExpReg.SlotCtl, 2, SlotCtl.Eic);
    expect(sta()).toBe(0x01d0);
  });
});

describe('resetSlotPower (QEMU pcie_cap_slot_reset)', () => {
  it('populated: power indicator on and power controller on; empty: indicator off, controller off', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, slot: 1 });
    const ctl = () => d.config.getWord(AT + ExpReg.SlotCtl);
    resetSlotPower(d, AT, true);
    expect(ctl()).toBe(0x01c0);
    resetSlotPower(d, AT, false);
    expect(ctl()).toBe(0x07c0);
  });

  it('touches only the power indicator and power controller fields', () => {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, slot: 1 });
    d.config.setWord(AT + ExpReg.SlotCtl, 0xf8ff);
    resetSlotPower(d, AT, true);
    expect(d.config.getWord(AT + ExpReg.SlotCtl)).toBe(0xf9ff);
    d.config.setWord(AT + ExpReg.SlotCtl, 0x0000);
    resetSlotPower(d, AT, false);
    expect(d.config.getWord(AT + ExpReg.SlotCtl)).toBe(0x0700);
  });
});

describe('syncLinkStatus (QEMU pcie_sync_bridge_lnk)', () => {
  /** A port with link capability x`width` at speed `speed`, link status 0x2000 (DLL active) | 0x0011. */
  function port(width: number, speed: number) {
    const d = new Fn();
    addPcieCap(d, AT, { ...SPEC, linkCap: (width << 4) | speed | 0x0030_0000, linkSta: 0x2011, slot: 1 });
    return d;
  }
  function endpoint(linkSta: number) {
    const d = new Fn();
    addPcieCap(d, 0x80, { ...SPEC, type: PcieType.Endpoint, linkSta });
    return d;
  }
  const sta = (d: Fn) => d.config.getWord(AT + ExpReg.LinkSta);

  it('nothing below: the port reports its own capability, other status bits kept', () => {
    const p = port(16, 4);
    syncLinkStatus(p, AT, undefined);
    expect(sta(p)).toBe(0x2104);
  });

  it('a conventional function below counts as nothing below', () => {
    const p = port(8, 3);
    syncLinkStatus(p, AT, new Fn(false));
    expect(sta(p)).toBe(0x2083);
  });

  it('a PCIe function below: its width and speed when the port can do them', () => {
    const p = port(16, 4);
    syncLinkStatus(p, AT, endpoint(0x0041)); // x4 2.5 GT/s
    expect(sta(p)).toBe(0x2041);
    syncLinkStatus(p, AT, endpoint(0x0104)); // x16 16 GT/s: exactly the port's
    expect(sta(p)).toBe(0x2104);
  });

  it('capped at the port capability, width and speed separately; other bits of the function ignored', () => {
    const p = port(4, 2);
    syncLinkStatus(p, AT, endpoint(0x0083)); // x8 8 GT/s
    expect(sta(p)).toBe(0x2042);
    syncLinkStatus(p, AT, endpoint(0x0081)); // x8 2.5 GT/s
    expect(sta(p)).toBe(0x2041);
    syncLinkStatus(p, AT, endpoint(0xc023)); // x2 8 GT/s, with status bits 15:14
    expect(sta(p)).toBe(0x2022);
  });
});

describe('small capabilities', () => {
  it('SSVID: subsystem vendor and ID, read-only', () => {
    const d = new Fn();
    expect(addSsvidCap(d, 0x40, 0x1b36, 0xbeef)).toBe(0x40);
    const c = d.config;
    expect(c.getLong(0x40) & 0xff).toBe(CapId.Ssvid);
    expect(c.getWord(0x44)).toBe(0x1b36);
    expect(c.getWord(0x46)).toBe(0xbeef);
    expect(ones(c, 0x44, 4)).toBe(0xbeef_1b36);
    expect(d.findCapability(CapId.Ssvid)).toBe(0x40);
  });

  it('MSI-X: table size N-1, enable and function mask writable, BIR in the table and PBA dwords', () => {
    const d = new Fn();
    addMsixCap(d, 0x48, 4, 2, 0x1000, 0x1800);
    const c = d.config;
    expect(c.getByte(0x48)).toBe(CapId.Msix);
    expect(c.getWord(0x4a)).toBe(3);
    expect(ones(c, 0x4a, 2)).toBe(0xc003);
    expect(c.getLong(0x4c)).toBe(0x1002);
    expect(c.getLong(0x50)).toBe(0x1802);
    expect(ones(c, 0x4c, 4)).toBe(0x1002);
    expect(ones(c, 0x50, 4)).toBe(0x1802);
    const big = new Fn();
    addMsixCap(big, 0x48, 2048, 0, 0x8000_0000, 0xffff_f000);
    expect(big.config.getWord(0x4a)).toBe(0x07ff);
    expect(big.config.getLong(0x4c)).toBe(0x8000_0000);
    expect(big.config.getLong(0x50)).toBe(0xffff_f000);
  });

  it('SHPC: only the dword select byte is writable', () => {
    const d = new Fn();
    addShpcCap(d, 0x40);
    const c = d.config;
    expect(c.getByte(0x40)).toBe(CapId.Shpc);
    expect(ones(c, 0x40, 4) >>> 16).toBe(0x00ff);
    expect(ones(c, 0x44, 4)).toBe(0);
  });

  it('slot ID: first-in-chassis set, chassis number writable', () => {
    const d = new Fn();
    addSlotIdCap(d, 0x48, 3);
    const c = d.config;
    expect(c.getLong(0x48)).toBe(0x0320_0004);
    expect(ones(c, 0x48, 4)).toBe(0xff20_0004);
  });

  it('power management: version 3 capabilities, no writable PMCSR bits', () => {
    const d = new Fn();
    addPmCap(d, 0x40);
    const c = d.config;
    expect(c.getLong(0x40)).toBe(0x0003_0001);
    expect(ones(c, 0x40, 4)).toBe(0x0003_0001);
    expect(ones(c, 0x44, 4)).toBe(0);
  });

  it('capabilities chain newest first', () => {
    const d = new Fn();
    addPmCap(d, 0x40);
    addSsvidCap(d, 0x48, 1, 2);
    addPcieCap(d, 0x50, SPEC);
    const c = d.config;
    expect(c.getByte(PciReg.CapabilityList)).toBe(0x50);
    expect(c.getByte(0x51)).toBe(0x48);
    expect(c.getByte(0x49)).toBe(0x40);
    expect(c.getByte(0x41)).toBe(0);
  });
});

describe('AER extended capability (QEMU pcie_aer_init)', () => {
  it('header: ID 1, version 2, at the given offset', () => {
    const d = new Fn();
    expect(addAerCap(d, 0x100, { multiHeader: false, root: false })).toBe(0x100);
    expect(d.config.getLong(0x100)).toBe(0x0002_0001);
  });

  it('defaults and write masks of an endpoint-style AER (no multiple header, not a root)', () => {
    const d = new Fn();
    addAerCap(d, 0x100, { multiHeader: false, root: false });
    const c = d.config;
    expect(c.getLong(0x100 + AerReg.UncSeverity)).toBe(0x0046_2030);
    expect(ones(c, 0x100 + AerReg.UncSeverity, 4)).toBe(0x03ff_f030);
    expect(c.getLong(0x100 + AerReg.CorMask)).toBe(0x0000_e000);
    expect(ones(c, 0x100 + AerReg.CorMask, 4)).toBe(0x0000_f1c1);
    expect(c.getLong(0x100 + AerReg.CapCtl)).toBe(0x0000_00a0);
    expect(ones(c, 0x100 + AerReg.CapCtl, 4)).toBe(0x0000_01e0);
    expect(ones(c, 0x100 + AerReg.RootCommand, 4)).toBe(0);
    expect(ones(c, 0x100 + AerReg.UncMask, 4)).toBe(0);
  });

  it('multiple header recording and root error command for root ports', () => {
    const d = new Fn();
    addAerCap(d, 0x100, { multiHeader: true, root: true });
    const c = d.config;
    expect(c.getLong(0x100 + AerReg.CapCtl)).toBe(0x0000_02a0);
    expect(ones(c, 0x100 + AerReg.CapCtl, 4)).toBe(0x0000_07e0);
    expect(ones(c, 0x100 + AerReg.RootCommand, 4)).toBe(0x7);
    const r = new Fn();
    addAerCap(r, 0x100, { multiHeader: false, root: true });
    expect(ones(r.config, 0x100 + AerReg.CapCtl, 4)).toBe(0x0000_01e0);
    expect(ones(r.config, 0x100 + AerReg.RootCommand, 4)).toBe(0x7);
  });

  it('error status bits are write-1-to-clear for the supported errors only', () => {
    const d = new Fn();
    addAerCap(d, 0x100, { multiHeader: false, root: false });
    const c = d.config;
    c.setLong(0x100 + AerReg.UncStatus, 0xffff_ffff);
    c.setLong(0x100 + AerReg.CorStatus, 0xffff_ffff);
    c.guestWrite(0x100 + AerReg.UncStatus, 4, 0);
    expect(c.getLong(0x100 + AerReg.UncStatus)).toBe(0xffff_ffff);
    c.guestWrite(0x100 + AerReg.UncStatus, 4, 0xffff_ffff);
    c.guestWrite(0x100 + AerReg.CorStatus, 4, 0xffff_ffff);
    expect(c.getLong(0x100 + AerReg.UncStatus)).toBe(0xfc00_0fcf);
    expect(c.getLong(0x100 + AerReg.CorStatus)).toBe(0xffff_0e3e);
  });

  it('needs a PCIe function and extended space', () => {
    expect(() => addAerCap(new Fn(false), 0x100, { multiHeader: false, root: false })).toThrow(RangeError);
    expect(() => addAerCap(new Fn(), 0xfc0, { multiHeader: false, root: false })).toThrow(RangeError);
  });
});

describe('ACS extended capability', () => {
  it('ID 0xd version 1; capability bits SV TB RR CR UF DT; control writable as capable', () => {
    const d = new Fn();
    expect(addAcsCap(d, 0x148)).toBe(0x148);
    const c = d.config;
    expect(c.getLong(0x148)).toBe(0x0001_000d);
    expect(c.getLong(0x14c)).toBe(0x0000_005f);
    expect(ones(c, 0x14c, 4)).toBe(0x005f_005f);
  });

  it('is linked after an AER capability at 0x100', () => {
    const d = new Fn();
    addAerCap(d, 0x100, { multiHeader: true, root: true });
    addAcsCap(d, 0x148);
    expect(d.config.getLong(0x100)).toBe(0x1482_0001);
  });
});
