/**
 * The Page Request Interface capability on a bare PCIe function wired as a
 * device model wires it (configWritten after every config write, reset from
 * deviceReset), driven through the guest's config-write path: header and
 * reset values, write masks and write-1-to-clear status, the Enable / Reset
 * / Stopped rules, Response Failure, and the device-side request accounting
 * (allocation, capacity, retire).
 */
import { describe, expect, it } from 'vitest';
import { PciDevice } from './device.js';
import { addPriCap, PriCtrlBit, PriReg, PriStatusBit, type PriCap } from './pcie-pri.js';

/** A bare PCIe function with PRI's side effects wired. */
class Fn extends PciDevice {
  pri: PriCap | null = null;
  constructor() {
    super({ typeName: 'fn', vendorId: 0x1234, deviceId: 0x11, revision: 0, classCode: 0, express: true });
  }
  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    super.configWrite(offset, size, value);
    this.pri?.configWritten(offset, size, value);
  }
  protected override deviceReset(): void {
    this.pri?.reset();
  }
}

/** The guest writes all-ones to a register and reads it back. */
function ones(dev: PciDevice, off: number, size: 2 | 4): number {
  dev.configWrite(off, size, size === 4 ? 0xffff_ffff : 0xffff);
  return dev.configRead(off, size);
}

const AT = 0x100;

describe('PRI (PCIe 6.0 §10.5.2, QEMU pcie_pri_init)', () => {
  const CTRL = AT + PriReg.Ctrl;
  const STATUS = AT + PriReg.Status;
  const ALLOC = AT + PriReg.Allocation;
  const make = (capacity = 2048, prgResponsePasidRequired = false): [Fn, PriCap] => {
    const d = new Fn();
    d.pri = addPriCap(d, AT, { capacity, prgResponsePasidRequired });
    d.config.snapshotReset();
    return [d, d.pri];
  };
  /** Enables PRI with `alloc` requests allocated. */
  const enable = (d: Fn, alloc: number): void => {
    d.configWrite(ALLOC, 4, alloc);
    d.configWrite(CTRL, 2, PriCtrlBit.Enable);
  };

  it('header ID 0x0013 version 1; reset: disabled, Stopped, capacity as given, allocation 0', () => {
    const [d, pri] = make(2048);
    expect(d.configRead(AT, 4)).toBe(0x0001_0013);
    expect(d.configRead(AT + 4, 4)).toBe(0x0100_0000);
    expect(d.configRead(AT + PriReg.Capacity, 4)).toBe(2048);
    expect(d.configRead(ALLOC, 4)).toBe(0);
    expect([pri.enabled(), pri.stopped(), pri.prgResponsePasidRequired(), pri.outstanding()]).toEqual([false, true, false, 0]);
    expect(make(7, true)[0].configRead(STATUS, 2)).toBe(0x8100);
    expect(make(7, true)[1].prgResponsePasidRequired()).toBe(true);
  });

  it('capacity is read-only; allocation is fully writable; capacity outside 32 bits throws', () => {
    const [d, pri] = make(0xffff_ffff);
    expect(ones(d, AT + PriReg.Capacity, 4)).toBe(0xffff_ffff);
    const [d2] = make(16);
    d2.configWrite(AT + PriReg.Capacity, 4, 0);
    expect(d2.configRead(AT + PriReg.Capacity, 4)).toBe(16);
    expect(ones(d2, ALLOC, 4)).toBe(0xffff_ffff);
    expect(pri.capacity).toBe(0xffff_ffff);
    for (const capacity of [-1, 2 ** 32, 0.5]) expect(() => addPriCap(new Fn(), AT, { capacity })).toThrow(RangeError);
  });

  it('control: Enable writable, Reset reads 0, other bits read-only', () => {
    const [d, pri] = make();
    expect(ones(d, CTRL, 2)).toBe(PriCtrlBit.Enable);
    expect(pri.enabled()).toBe(true);
    d.configWrite(CTRL, 2, PriCtrlBit.Reset);
    expect(d.configRead(CTRL, 2)).toBe(0);
  });

  it('status: Response Failure and UPRGI are write-1-to-clear; Stopped and PASID Required are read-only', () => {
    const [d, pri] = make(8, true);
    pri.responseFailure();
    pri.unexpectedPrgIndex();
    expect(d.configRead(STATUS, 2)).toBe(0x8103);
    d.configWrite(STATUS, 2, PriStatusBit.UnexpectedPrgIndex);
    expect(d.configRead(STATUS, 2)).toBe(0x8101);
    d.configWrite(STATUS, 2, 0);
    expect(d.configRead(STATUS, 2)).toBe(0x8101);
    d.configWrite(STATUS, 2, 0xffff);
    expect(d.configRead(STATUS, 2)).toBe(0x8100);
  });

  it('Enable 0 -> 1 clears Stopped, Response Failure and UPRGI', () => {
    const [d, pri] = make();
    pri.responseFailure();
    pri.unexpectedPrgIndex();
    enable(d, 4);
    expect(pri.status()).toBe(0);
    // Writing Enable again while enabled clears nothing new.
    pri.unexpectedPrgIndex();
    d.configWrite(CTRL, 2, PriCtrlBit.Enable);
    expect(pri.status()).toBe(PriStatusBit.UnexpectedPrgIndex);
  });

  it('issue: only while enabled, up to the allocation, capped by the capacity', () => {
    const [d, pri] = make(2048);
    expect(pri.issue()).toBe(false);
    enable(d, 3);
    expect([pri.issue(), pri.issue(), pri.issue(), pri.issue()]).toEqual([true, true, true, false]);
    expect(pri.outstanding()).toBe(3);
    expect(pri.canIssue()).toBe(false);
    expect(pri.retire(1)).toBe(true);
    expect(pri.canIssue()).toBe(true);
    const [d2, small] = make(2);
    enable(d2, 100);
    expect(small.limit()).toBe(2);
    expect([small.issue(), small.issue(), small.issue()]).toEqual([true, true, false]);
    const [d3, none] = make(8);
    enable(d3, 0);
    expect(none.issue()).toBe(false);
  });

  it('Stopped: set at once on disable with nothing outstanding', () => {
    const [d, pri] = make();
    enable(d, 4);
    expect(pri.stopped()).toBe(false);
    d.configWrite(CTRL, 2, 0);
    expect(pri.stopped()).toBe(true);
  });

  it('Stopped: on disable with requests outstanding, set when the last one retires (not while enabled)', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    pri.issue();
    pri.retire(2);
    expect(pri.stopped()).toBe(false);
    pri.issue();
    pri.issue();
    d.configWrite(CTRL, 2, 0);
    expect(pri.stopped()).toBe(false);
    expect(pri.issue()).toBe(false);
    pri.retire(1);
    expect(pri.stopped()).toBe(false);
    pri.retire(1);
    expect(pri.stopped()).toBe(true);
    expect(pri.outstanding()).toBe(0);
  });

  it('retire never goes below 0 and ignores negative or fractional counts', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    pri.issue();
    pri.retire(-5);
    expect(pri.outstanding()).toBe(2);
    pri.retire(1.9);
    expect(pri.outstanding()).toBe(1);
    pri.retire(10);
    expect(pri.outstanding()).toBe(0);
  });

  it('Response Failure: no further requests and PRG responses are ignored until re-enabled', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    pri.issue();
    pri.responseFailure();
    expect(pri.canIssue()).toBe(false);
    expect(pri.issue()).toBe(false);
    expect(pri.retire(2)).toBe(false);
    expect(pri.outstanding()).toBe(2);
    // Disabling does not stop it while requests are outstanding; Reset forgets them.
    d.configWrite(CTRL, 2, 0);
    expect(pri.stopped()).toBe(false);
    d.configWrite(CTRL, 2, PriCtrlBit.Reset);
    expect([pri.outstanding(), pri.stopped()]).toEqual([0, true]);
    enable(d, 4);
    expect(pri.status() & PriStatusBit.ResponseFailure).toBe(0);
    expect(pri.issue()).toBe(true);
  });

  it('Reset acts only with Enable clear or being cleared in the same write', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    d.configWrite(CTRL, 2, PriCtrlBit.Enable | PriCtrlBit.Reset);
    expect(pri.outstanding()).toBe(1);
    expect(pri.enabled()).toBe(true);
    d.configWrite(CTRL, 2, PriCtrlBit.Reset);
    expect([pri.enabled(), pri.outstanding(), pri.stopped()]).toEqual([false, 0, true]);
    expect(d.configRead(CTRL, 2)).toBe(0);
  });

  it('Reset through a byte write and through a dword write covering control and status, not through bytes beside it', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    d.configWrite(CTRL, 2, 0);
    d.configWrite(CTRL + 1, 1, 0xff);
    // An unaligned word over the control high byte and the status low byte: bit 1 of its value is status.
    d.configWrite(CTRL + 1, 2, 0x0200);
    expect(pri.outstanding()).toBe(1);
    d.configWrite(CTRL, 1, PriCtrlBit.Reset);
    expect(pri.outstanding()).toBe(0);
    enable(d, 4);
    pri.issue();
    pri.unexpectedPrgIndex();
    d.configWrite(AT + 4, 4, 0x0002_0002);
    expect([pri.enabled(), pri.outstanding(), pri.status()]).toEqual([false, 0, PriStatusBit.Stopped]);
  });

  it('writes elsewhere have no PRI side effect', () => {
    const [d, pri] = make();
    enable(d, 4);
    pri.issue();
    d.configWrite(CTRL, 2, 0);
    d.configWrite(ALLOC, 4, 2);
    d.configWrite(AT, 4, 0xffff_ffff);
    expect([pri.outstanding(), pri.stopped()]).toEqual([1, false]);
  });

  it('device reset: registers back to their reset values and nothing outstanding', () => {
    const [d, pri] = make(64, true);
    enable(d, 8);
    pri.issue();
    pri.responseFailure();
    d.reset();
    expect(d.configRead(AT + 4, 4)).toBe(0x8100_0000);
    expect(d.configRead(ALLOC, 4)).toBe(0);
    expect([pri.enabled(), pri.outstanding(), pri.stopped()]).toEqual([false, 0, true]);
    // After the reset a fresh enable is a 0 -> 1 transition again.
    pri.unexpectedPrgIndex();
    enable(d, 8);
    expect(pri.status()).toBe(PriStatusBit.PasidRequired);
  });
});
