/**
 * BAR0's register state (registers.ts) through its interface: interrupts
 * (IRQ_STATUS accumulates; the MSI goes out only for an enabled bit with
 * MSI enabled), power-on reset, and the writable masks.
 */
import { describe, expect, it } from 'vitest';
import { SvaRegisters, SvaRegMask, type SvaMsi } from './registers.js';
import { SVA_BUFFER_SIZE, SvaControl, SvaIrq, SvaResult } from './regs.js';

/** An MSI capability that records the vectors it sent. */
class FakeMsi implements SvaMsi {
  enabled = true;
  readonly sent: number[] = [];
  msiEnabled(): boolean {
    return this.enabled;
  }
  msiNotify(vector: number): void {
    this.sent.push(vector);
  }
}

describe('SvaRegisters.raiseIrq', () => {
  it('sets IRQ_STATUS bits, keeping the ones already set', () => {
    const regs = new SvaRegisters(new FakeMsi());
    regs.raiseIrq(SvaIrq.Done);
    regs.raiseIrq(SvaIrq.AtcInvalidated);
    expect(regs.irqStatus).toBe(SvaIrq.Done | SvaIrq.AtcInvalidated);
  });

  it('sends MSI vector 0 for an enabled bit, nothing for a disabled one', () => {
    const msi = new FakeMsi();
    const regs = new SvaRegisters(msi);
    regs.irqEnable = SvaIrq.PageResponse;
    regs.raiseIrq(SvaIrq.Done);
    expect(msi.sent).toEqual([]);
    regs.raiseIrq(SvaIrq.PageResponse);
    regs.raiseIrq(SvaIrq.PageResponse);
    expect(msi.sent).toEqual([0, 0]);
  });

  it('sends nothing while MSI is disabled (no INTx either), but still sets the status', () => {
    const msi = new FakeMsi();
    msi.enabled = false;
    const regs = new SvaRegisters(msi);
    regs.irqEnable = SvaRegMask.IrqEnable;
    regs.raiseIrq(SvaIrq.Done);
    expect([msi.sent, regs.irqStatus]).toEqual([[], SvaIrq.Done]);
  });
});

describe('SvaRegisters.reset', () => {
  it('every register back to 0 (RESULT OK), the buffer zeroed in place', () => {
    const regs = new SvaRegisters(new FakeMsi());
    const buffer = regs.buffer;
    buffer.fill(0xa5);
    const fields = ['command', 'result', 'addrLo', 'addrHi', 'length', 'pasid', 'invCount', 'prqCount', 'prgCount', 'lastAts', 'irqStatus', 'irqEnable', 'control', 'xlatLo', 'xlatHi', 'prgi', 'lastPrg'] as const;
    fields.forEach((f, i) => (regs[f] = i + 1));
    regs.reset();
    expect(fields.map((f) => regs[f])).toEqual(fields.map(() => 0));
    expect(regs.result).toBe(SvaResult.Ok);
    expect(regs.buffer).toBe(buffer);
    expect(buffer.length).toBe(SVA_BUFFER_SIZE);
    expect(buffer.every((b) => b === 0)).toBe(true);
  });
});

describe('SvaRegMask', () => {
  it('PASID 20 bits, PRGI 9 bits, IRQ_ENABLE the three interrupts, CONTROL STALL and FAIL', () => {
    expect(SvaRegMask).toEqual({ Pasid: 0xf_ffff, Prgi: 0x1ff, IrqEnable: 0b111, Control: SvaControl.Stall | SvaControl.Fail });
  });
});
