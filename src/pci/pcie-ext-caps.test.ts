/**
 * The ATS, PASID and ACS extended capabilities on a bare PCIe function,
 * driven through the guest's config-write path (PciDevice.configWrite):
 * headers and chaining, reset values, write masks (QEMU 11.1's where it has
 * them), width and option limits, and the extended-capability walk over
 * corrupt chains (PRI: pcie-pri.test.ts).  The QEMU-observable parts (ATS, the ports' ACS) are also compared
 * with QEMU 11.1 in test/diff/pcie-acs.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PciDevice } from './device.js';
import { addAcsCap, addAerCap, ExtCapId } from './pcie-cap.js';
import {
  AcsBit,
  addAtsCap,
  addFunctionAcsCap,
  addPasidCap,
  AtsReg,
  ATS_CTRL_WMASK,
  findExtCapability,
  LINUX_REQUIRED_ACS,
  linuxAcsControl,
  PasidReg,
  readAcs,
  SvaExtCapId,
  type AtsCap,
} from './pcie-ext-caps.js';

/** A bare PCIe function. */
class Fn extends PciDevice {
  constructor(express = true) {
    super({ typeName: 'fn', vendorId: 0x1234, deviceId: 0x11, revision: 0, classCode: 0, express });
  }
}

/** The guest writes all-ones to a register and reads it back. */
function ones(dev: PciDevice, off: number, size: 2 | 4): number {
  dev.configWrite(off, size, size === 4 ? 0xffff_ffff : 0xffff);
  return dev.configRead(off, size);
}

const AT = 0x100;

describe('extended capability walk', () => {
  it('finds capabilities along the chain and ends at next = 0', () => {
    const d = new Fn();
    addAerCap(d, 0x100, { multiHeader: false, root: false });
    addAtsCap(d, 0x148);
    addPasidCap(d, 0x150, { width: 20 });
    expect(findExtCapability(d, ExtCapId.Aer)).toBe(0x100);
    expect(findExtCapability(d, SvaExtCapId.Ats)).toBe(0x148);
    expect(findExtCapability(d, SvaExtCapId.Pasid)).toBe(0x150);
    expect(findExtCapability(d, SvaExtCapId.Pri)).toBe(0);
    // The chain: AER -> ATS -> PASID.
    expect(d.configRead(0x100, 4) >>> 20).toBe(0x148);
    expect(d.configRead(0x148, 4) >>> 20).toBe(0x150);
    expect(d.configRead(0x150, 4) >>> 20).toBe(0);
  });

  it('returns 0 on a conventional function, an empty list, and corrupt chains (loop, misaligned, below 0x100)', () => {
    expect(findExtCapability(new Fn(false), SvaExtCapId.Ats)).toBe(0);
    expect(findExtCapability(new Fn(), SvaExtCapId.Ats)).toBe(0);
    // A loop, and pointers that would land on an ATS-looking header misaligned (0x106) or in the legacy space (0x0fc).
    for (const next of [0x100, 0x106, 0x0fc]) {
      const d = new Fn();
      d.config.setLong(0x100, ((next << 20) | ExtCapId.Aer) >>> 0);
      d.config.setLong(0x104, SvaExtCapId.Ats << 16);
      d.config.setLong(0x0fc, SvaExtCapId.Ats);
      expect(findExtCapability(d, SvaExtCapId.Ats), `next 0x${next.toString(16)}`).toBe(0);
    }
    const d = new Fn();
    d.config.setLong(0x100, 0xffff_ffff);
    expect(findExtCapability(d, 0xffff)).toBe(0);
  });
});

describe('ATS (PCIe 6.0 §10.5.1, QEMU pcie_ats_init)', () => {
  const make = (opts = {}): [Fn, AtsCap] => {
    const d = new Fn();
    const ats = addAtsCap(d, AT, opts);
    d.config.snapshotReset();
    return [d, ats];
  };

  it('header: ID 0x000F, version 1; capability page-aligned, queue depth 32 (encoded 0); control 0', () => {
    const [d, ats] = make();
    expect(d.configRead(AT, 4)).toBe(0x0001_000f);
    expect(d.configRead(AT + 4, 4)).toBe(0x0000_0020);
    expect(ats.enabled()).toBe(false);
    expect(ats.stu()).toBe(0);
    expect(ats.invalidateQueueDepth()).toBe(32);
    expect(ats.pageAligned()).toBe(true);
    expect(ats.offset).toBe(AT);
  });

  it('capability options: queue depth, page aligned off, global invalidate, relaxed ordering', () => {
    const [d, ats] = make({ invalidateQueueDepth: 5, pageAligned: false, globalInvalidate: true, relaxedOrdering: true });
    expect(d.configRead(AT + AtsReg.Cap, 2)).toBe(0x00c5);
    expect(ats.invalidateQueueDepth()).toBe(5);
    expect(ats.pageAligned()).toBe(false);
    expect(make({ invalidateQueueDepth: 31 })[0].configRead(AT + AtsReg.Cap, 2)).toBe(0x003f);
  });

  it('rejects queue depths outside 1-32 at setup', () => {
    for (const q of [0, 33, 1.5, -1]) expect(() => addAtsCap(new Fn(), AT, { invalidateQueueDepth: q })).toThrow(RangeError);
  });

  it('control: Enable and STU bits 3:0 writable (QEMU 0x800F; STU bit 4 reads 0), capability read-only', () => {
    const [d, ats] = make();
    expect(ones(d, AT + AtsReg.Ctrl, 2)).toBe(ATS_CTRL_WMASK);
    expect(ats.enabled()).toBe(true);
    expect(ats.stu()).toBe(0xf);
    expect(ats.smallestTranslationBytes()).toBe(0x1000 * 2 ** 15);
    d.configWrite(AT + AtsReg.Ctrl, 2, 0x0010);
    expect(ats.stu()).toBe(0);
    expect(ats.enabled()).toBe(false);
    d.configWrite(AT + AtsReg.Ctrl, 2, 0x0002);
    expect(ats.smallestTranslationBytes()).toBe(0x4000);
    expect(ones(d, AT + AtsReg.Cap, 2)).toBe(0x0020);
    expect(ones(d, AT, 4)).toBe(0x0001_000f);
  });

  it('a byte write to the high control byte sets only Enable; reset clears the control', () => {
    const [d, ats] = make();
    d.configWrite(AT + AtsReg.Ctrl + 1, 1, 0xff);
    expect(d.configRead(AT + AtsReg.Ctrl, 2)).toBe(0x8000);
    d.configWrite(AT + AtsReg.Ctrl, 1, 0x03);
    expect(d.configRead(AT + 4, 4)).toBe(0x8003_0020);
    d.reset();
    expect(ats.enabled()).toBe(false);
    expect(d.configRead(AT + 4, 4)).toBe(0x0000_0020);
  });
});

describe('PASID (PCIe 6.0 §7.8.8, QEMU pcie_pasid_init)', () => {
  it('header ID 0x001B version 1; capability: width in bits 12:8, execute bit 1, privileged bit 2; control 0', () => {
    const d = new Fn();
    addPasidCap(d, AT, { width: 20, execute: true, privileged: true });
    expect(d.configRead(AT, 4)).toBe(0x0001_001b);
    expect(d.configRead(AT + PasidReg.Cap, 2)).toBe(0x1406);
    expect(d.configRead(AT + PasidReg.Ctrl, 2)).toBe(0);
    expect(ones(d, AT + PasidReg.Cap, 2)).toBe(0x1406);
  });

  it('Execute / Privileged Mode Enable are writable only when supported (the spec; QEMU: always)', () => {
    const cases: [boolean, boolean, number][] = [
      [false, false, 0x0001],
      [true, false, 0x0003],
      [false, true, 0x0005],
      [true, true, 0x0007],
    ];
    for (const [execute, privileged, mask] of cases) {
      const d = new Fn();
      const p = addPasidCap(d, AT, { width: 8, execute, privileged });
      expect(ones(d, AT + PasidReg.Ctrl, 2), `exec ${execute} priv ${privileged}`).toBe(mask);
      expect(p.enabled()).toBe(true);
      expect(p.executeEnabled()).toBe(execute);
      expect(p.privilegedEnabled()).toBe(privileged);
    }
  });

  it('enable bits follow the control register and reset clears them', () => {
    const d = new Fn();
    const p = addPasidCap(d, AT, { width: 16, execute: true, privileged: true });
    d.config.snapshotReset();
    d.configWrite(AT + PasidReg.Ctrl, 2, 0x0004);
    expect([p.enabled(), p.executeEnabled(), p.privilegedEnabled()]).toEqual([false, false, true]);
    d.configWrite(AT + PasidReg.Ctrl, 2, 0x0003);
    expect([p.enabled(), p.executeEnabled(), p.privilegedEnabled()]).toEqual([true, true, false]);
    d.reset();
    expect([p.enabled(), p.executeEnabled(), p.privilegedEnabled()]).toEqual([false, false, false]);
  });

  it('width limits: 0 (PASID 0 only) to 20 (2^20 - 1); others throw at setup', () => {
    const p0 = addPasidCap(new Fn(), AT, { width: 0 });
    expect(p0.maxPasid()).toBe(0);
    expect([p0.accepts(0), p0.accepts(1)]).toEqual([true, false]);
    const p20 = addPasidCap(new Fn(), AT, { width: 20 });
    expect(p20.maxPasid()).toBe(0xfffff);
    expect([p20.accepts(0xfffff), p20.accepts(0x100000), p20.accepts(-1), p20.accepts(1.5)]).toEqual([true, false, false, false]);
    const p5 = addPasidCap(new Fn(), AT, { width: 5 });
    expect([p5.accepts(31), p5.accepts(32)]).toEqual([true, false]);
    for (const width of [21, -1, 2.5]) expect(() => addPasidCap(new Fn(), AT, { width })).toThrow(RangeError);
  });
});

describe('ACS (PCIe 6.0 §7.7.8)', () => {
  it('Linux enables SV, RR, CR and UF where offered (pci_std_enable_acs)', () => {
    expect(LINUX_REQUIRED_ACS).toBe(0x001d);
    expect(linuxAcsControl(0x005f)).toBe(0x001d);
    expect(linuxAcsControl(AcsBit.SourceValidation | AcsBit.TranslationBlocking)).toBe(AcsBit.SourceValidation);
    expect(linuxAcsControl(0)).toBe(0);
  });

  it('readAcs: null without the capability; the registers of a port ACS as the guest left them', () => {
    const d = new Fn();
    expect(readAcs(d)).toBeNull();
    addAerCap(d, 0x100, { multiHeader: true, root: true });
    addAcsCap(d, 0x148);
    expect(readAcs(d)).toEqual({ cap: 0x005f, ctrl: 0 });
    d.configWrite(0x14e, 2, 0xffff);
    expect(readAcs(d)).toEqual({ cap: 0x005f, ctrl: 0x005f });
  });

  it('a function ACS offers nothing by default (QEMU endpoint), and makes offered controls writable', () => {
    const d = new Fn();
    expect(addFunctionAcsCap(d, AT)).toBe(AT);
    expect(d.configRead(AT, 4)).toBe(0x0001_000d);
    expect(ones(d, AT + 4, 4)).toBe(0);
    const e = new Fn();
    addFunctionAcsCap(e, AT, AcsBit.SourceValidation | AcsBit.RequestRedirect);
    expect(ones(e, AT + 4, 4)).toBe(0x0005_0005);
  });
});
