/**
 * BAR0 of `sva-testdev`: its MMIO region and the decoding of guest
 * accesses into the register file (registers.ts; the map is in regs.ts).
 *
 *  - One 8 KiB region for registers and buffer: accesses of 1..8 bytes at
 *    any alignment, which the bus splits into pieces of at most 4 bytes.
 *  - The buffer (0x1000-0x1FFF) takes any size and alignment, little
 *    endian; the bytes of a piece beyond its end read 0 and are dropped.
 *  - Registers take aligned dwords only (an 8-byte access is the pair at
 *    the lower dword); other shapes, and offsets with no register, read 0
 *    and ignore writes, as do the read-only registers.
 *  - Writes apply the registers' masks: PASID bits 19:0, IRQ_ENABLE and
 *    CONTROL their defined bits, PRGI 9 bits; IRQ_STATUS is write 1 to
 *    clear; a COMMAND write runs the command.
 *  - While a command executes every access is refused (reads 0, writes
 *    dropped): the device's own DMA hitting its BAR, or host code run from
 *    a translation or page request (QEMU's MMIO re-entrancy guard).
 */
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import { SvaRegMask, type SvaRegisters } from './registers.js';
import { SVA_BUFFER_SIZE, SVA_ID, SvaPci, SvaReg } from './regs.js';

/** Access size of the registers (8-byte accesses are split by the bus). */
const REG_SIZE = 4;
const REG_ALIGN_MASK = REG_SIZE - 1;
/** Bits per byte and the byte mask, for the little-endian buffer. */
const BYTE_BITS = 8;
const BYTE_MASK = 0xff;

/** What BAR0's decoding asks of the rest of the device. */
export interface SvaBar0Device {
  /** True while a command executes: BAR0 refuses every access. */
  readonly busy: boolean;
  /** The STATUS register. */
  status(): number;
  /** A COMMAND write: records it and runs the command. */
  runCommand(cmd: number): void;
}

/** The ATC as ATC_COUNT sees it. */
export interface SvaAtcCount {
  /** Valid entries. */
  readonly count: number;
}

/** BAR0: the region and its decoding. */
export class SvaBar0 {
  /** The region the PCI function registers as BAR0. */
  readonly region: MmioRegion;

  constructor(
    private readonly regs: SvaRegisters,
    private readonly atc: SvaAtcCount,
    private readonly device: SvaBar0Device,
  ) {
    const ops: MmioOps = {
      read: (offset, size) => this.read(offset, size),
      write: (offset, size, value) => this.write(offset, size, value),
    };
    this.region = new MmioRegion('sva-testdev.bar0', SvaPci.MmioSize, ops, {
      valid: { min: 1, max: 8, unaligned: true },
      impl: { min: 1, max: 4 },
    });
  }

  /** A read of `size` bytes at `offset` (a piece the bus split off). */
  read(offset: number, size: 1 | 2 | 4): number {
    if (this.device.busy) return 0;
    if (offset >= SvaReg.Buffer) return this.readBuffer(offset - SvaReg.Buffer, size);
    if (size !== REG_SIZE || offset & REG_ALIGN_MASK) return 0;
    const r = this.regs;
    switch (offset) {
      case SvaReg.Id:
        return SVA_ID;
      case SvaReg.Status:
        return this.device.status();
      case SvaReg.Command:
        return r.command;
      case SvaReg.Result:
        return r.result;
      case SvaReg.AddrLo:
        return r.addrLo;
      case SvaReg.AddrHi:
        return r.addrHi;
      case SvaReg.Length:
        return r.length;
      case SvaReg.Pasid:
        return r.pasid;
      case SvaReg.AtcCount:
        return this.atc.count;
      case SvaReg.InvCount:
        return r.invCount;
      case SvaReg.PrqCount:
        return r.prqCount;
      case SvaReg.PrgCount:
        return r.prgCount;
      case SvaReg.LastAts:
        return r.lastAts;
      case SvaReg.IrqStatus:
        return r.irqStatus;
      case SvaReg.IrqEnable:
        return r.irqEnable;
      case SvaReg.Control:
        return r.control;
      case SvaReg.XlatLo:
        return r.xlatLo;
      case SvaReg.XlatHi:
        return r.xlatHi;
      case SvaReg.Prgi:
        return r.prgi;
      case SvaReg.LastPrg:
        return r.lastPrg;
      default:
        return 0;
    }
  }

  /** A write of `size` bytes at `offset` (a piece the bus split off). */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.device.busy) return;
    if (offset >= SvaReg.Buffer) {
      this.writeBuffer(offset - SvaReg.Buffer, size, value);
      return;
    }
    if (size !== REG_SIZE || offset & REG_ALIGN_MASK) return;
    const v = value >>> 0;
    const r = this.regs;
    switch (offset) {
      case SvaReg.Command:
        this.device.runCommand(v);
        break;
      case SvaReg.AddrLo:
        r.addrLo = v;
        break;
      case SvaReg.AddrHi:
        r.addrHi = v;
        break;
      case SvaReg.Length:
        r.length = v;
        break;
      case SvaReg.Pasid:
        r.pasid = v & SvaRegMask.Pasid;
        break;
      case SvaReg.IrqStatus:
        r.irqStatus = (r.irqStatus & ~v) >>> 0;
        break;
      case SvaReg.IrqEnable:
        r.irqEnable = v & SvaRegMask.IrqEnable;
        break;
      case SvaReg.Control:
        r.control = v & SvaRegMask.Control;
        break;
      case SvaReg.Prgi:
        r.prgi = v & SvaRegMask.Prgi;
        break;
    }
  }

  /** Little-endian bytes of the buffer (bytes past its end read 0). */
  private readBuffer(at: number, size: number): number {
    const buf = this.regs.buffer;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << BYTE_BITS) | (at + i < SVA_BUFFER_SIZE ? buf[at + i]! : 0);
    return v >>> 0;
  }

  /** Little-endian bytes into the buffer (bytes past its end are dropped). */
  private writeBuffer(at: number, size: number, value: number): void {
    const buf = this.regs.buffer;
    for (let i = 0; i < size && at + i < SVA_BUFFER_SIZE; i++) buf[at + i] = (value >>> (BYTE_BITS * i)) & BYTE_MASK;
  }
}
