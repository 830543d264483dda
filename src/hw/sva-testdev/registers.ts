/**
 * Register state of `sva-testdev`'s BAR0 (the map is in regs.ts): the
 * values the guest programs (ADDR, LENGTH, PASID, IRQ_ENABLE, CONTROL,
 * PRGI), what the device reports (COMMAND as last written, RESULT, the
 * counters, LAST_ATS, XLAT, LAST_PRG), IRQ_STATUS, and the data buffer.
 *
 * BAR0's decoding (bar0.ts) reads and writes these fields with the
 * registers' masks; the command engine and the ATS endpoint side update
 * the device-owned ones and raise interrupts here.  Counters wrap at 2^32.
 */
import { toB64, type SectionReader, type SnapshotSection } from '../../core/snapshot-state.js';
import { SVA_BUFFER_SIZE, SvaControl, SvaIrq, SvaResult } from './regs.js';

/** Writable bits of the masked registers (PRGI's mask also cuts a page-group response's index). */
export const SvaRegMask = {
  /** PASID bits 19:0. */
  Pasid: 0xf_ffff,
  /** PRGI bits 8:0. */
  Prgi: 0x1ff,
  IrqEnable: SvaIrq.Done | SvaIrq.PageResponse | SvaIrq.AtcInvalidated,
  Control: SvaControl.Stall | SvaControl.Fail,
} as const;

/** The MSI vector every interrupt of the device uses (it has one). */
const MSI_VECTOR = 0;

/** How the device signals an interrupt: its MSI capability (the PCI function provides it). */
export interface SvaMsi {
  msiEnabled(): boolean;
  msiNotify(vector: number): void;
}

/** BAR0's registers and data buffer. */
export class SvaRegisters {
  /** The data buffer (BAR0 0x1000-0x1FFF). */
  readonly buffer = new Uint8Array(SVA_BUFFER_SIZE);

  /** COMMAND: the last value written. */
  command = 0;
  result: number = SvaResult.Ok;
  addrLo = 0;
  addrHi = 0;
  length = 0;
  pasid = 0;
  invCount = 0;
  prqCount = 0;
  prgCount = 0;
  lastAts = 0;
  irqStatus = 0;
  irqEnable = 0;
  control = 0;
  xlatLo = 0;
  xlatHi = 0;
  prgi = 0;
  lastPrg = 0;

  constructor(private readonly msi: SvaMsi) {}

  /** Sets IRQ_STATUS bits; an enabled one sends the MSI (edu-style: no INTx). */
  raiseIrq(bits: number): void {
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (bits & this.irqEnable && this.msi.msiEnabled()) this.msi.msiNotify(MSI_VECTOR);
  }

  /** Snapshot: every register and the buffer. */
  saveState(): SnapshotSection {
    return {
      command: this.command,
      result: this.result,
      addrLo: this.addrLo,
      addrHi: this.addrHi,
      length: this.length,
      pasid: this.pasid,
      invCount: this.invCount,
      prqCount: this.prqCount,
      prgCount: this.prgCount,
      lastAts: this.lastAts,
      irqStatus: this.irqStatus,
      irqEnable: this.irqEnable,
      control: this.control,
      xlatLo: this.xlatLo,
      xlatHi: this.xlatHi,
      prgi: this.prgi,
      lastPrg: this.lastPrg,
      buffer: toB64(this.buffer),
    };
  }

  /** Loads what saveState saved. */
  loadState(r: SectionReader): void {
    const command = r.u32('command');
    const result = r.u32('result');
    const addrLo = r.u32('addrLo');
    const addrHi = r.u32('addrHi');
    const length = r.u32('length');
    const pasid = r.u32('pasid');
    const invCount = r.u32('invCount');
    const prqCount = r.u32('prqCount');
    const prgCount = r.u32('prgCount');
    const lastAts = r.u32('lastAts');
    const irqStatus = r.u32('irqStatus');
    const irqEnable = r.u32('irqEnable');
    const control = r.u32('control');
    const xlatLo = r.u32('xlatLo');
    const xlatHi = r.u32('xlatHi');
    const prgi = r.u32('prgi');
    const lastPrg = r.u32('lastPrg');
    const buffer = r.bytes('buffer', this.buffer.length);
    this.command = command;
    this.result = result;
    this.addrLo = addrLo;
    this.addrHi = addrHi;
    this.length = length;
    this.pasid = pasid;
    this.invCount = invCount;
    this.prqCount = prqCount;
    this.prgCount = prgCount;
    this.lastAts = lastAts;
    this.irqStatus = irqStatus;
    this.irqEnable = irqEnable;
    this.control = control;
    this.xlatLo = xlatLo;
    this.xlatHi = xlatHi;
    this.prgi = prgi;
    this.lastPrg = lastPrg;
    this.buffer.set(buffer);
  }

  /** Power-on values: every register 0 (RESULT OK) and the buffer zeroed. */
  reset(): void {
    this.buffer.fill(0);
    this.command = 0;
    this.result = SvaResult.Ok;
    this.addrLo = 0;
    this.addrHi = 0;
    this.length = 0;
    this.pasid = 0;
    this.invCount = 0;
    this.prqCount = 0;
    this.prgCount = 0;
    this.lastAts = 0;
    this.irqStatus = 0;
    this.irqEnable = 0;
    this.control = 0;
    this.xlatLo = 0;
    this.xlatHi = 0;
    this.prgi = 0;
    this.lastPrg = 0;
  }
}
