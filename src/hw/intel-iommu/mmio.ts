/**
 * The register window's MMIO handlers (QEMU vtd_mem_read / vtd_mem_write):
 * 4- and 8-byte accesses (the bus refuses other widths and unaligned ones),
 * stores through the register file's masks, then the side effect the
 * register table names for the exact offset written (register-effects.ts
 * lists the unit's rows).  Accesses running past the end of the file read
 * all-ones and are dropped.
 *
 * The table is built once, when the unit is created, from rows:
 *
 *   off        the dword the row is about
 *   write      what a write starting there does after the value is stored
 *   qwordOnly  ... only when that write is 8 bytes wide
 *   truncate64 an 8-byte write there stores this 32-bit register only
 *   read       where a guest read of the dword comes from instead of the file
 *
 * so adding a register with a side effect is adding a row.  Rows are looked
 * up by dword index: no search and no allocation per access.
 */
import type { MmioOps } from '../../memory/region.js';
import type { Tracer } from '../../machine/device-type.js';
import { Trace, type IommuEmitter } from './events.js';
import type { RegisterFile } from './registers.js';

const DW = 4;
const QW = 8;
const DW_SHIFT = 2;
const DW_ALIGN = DW - 1;
const ALL_ONES_32 = 0xffff_ffff;
const ALL_ONES_64 = 0xffff_ffff_ffff_ffffn;
const LO_MASK = 0xffff_ffffn;

/** One row of the register table (see the file comment). */
export interface RegisterRow {
  /** Byte offset of the dword (4-aligned, inside the file). */
  readonly off: number;
  /** Side effect of a write starting at `off`, run after the value is stored. */
  readonly write?: () => void;
  /** The side effect needs an 8-byte write (a 4-byte one stores without it). */
  readonly qwordOnly?: boolean;
  /** An 8-byte write at `off` stores this 32-bit register only; the dword after it is left alone. */
  readonly truncate64?: boolean;
  /** The value a guest read of this dword returns, instead of the stored one. */
  readonly read?: () => number;
}

type Effect = (() => void) | undefined;
type Source = (() => number) | undefined;

/** The rows of a register file of `size` bytes, indexed by dword. */
export class RegisterTable {
  private readonly onWrite: Effect[];
  private readonly onQwordWrite: Effect[];
  private readonly reads: Source[];
  private readonly truncated: Uint8Array;

  /** Throws on a row outside the file, unaligned, or repeating an offset (setup mistakes). */
  constructor(size: number, rows: readonly RegisterRow[]) {
    const n = size >>> DW_SHIFT;
    this.onWrite = new Array<Effect>(n).fill(undefined);
    this.onQwordWrite = new Array<Effect>(n).fill(undefined);
    this.reads = new Array<Source>(n).fill(undefined);
    this.truncated = new Uint8Array(n);
    const seen = new Set<number>();
    for (const row of rows) {
      if ((row.off & DW_ALIGN) !== 0 || row.off < 0 || row.off + DW > size || seen.has(row.off)) {
        throw new RangeError(`register table: bad or repeated row at 0x${row.off.toString(16)}`);
      }
      seen.add(row.off);
      const i = row.off >>> DW_SHIFT;
      // Offsets never repeat, so a row without an effect or a source stores the undefined already there.
      (row.qwordOnly ? this.onQwordWrite : this.onWrite)[i] = row.write;
      this.reads[i] = row.read;
      if (row.truncate64) this.truncated[i] = 1;
    }
  }

  /** Runs the side effect of a `size`-byte write that started at `off` (already stored). */
  written(off: number, size: number): void {
    if ((off & DW_ALIGN) !== 0) return;
    const i = off >>> DW_SHIFT;
    const any = this.onWrite[i];
    if (any !== undefined) any();
    if (size === QW) {
      const q = this.onQwordWrite[i];
      if (q !== undefined) q();
    }
  }

  /** True when an 8-byte write at `off` stores the low dword only. */
  truncates(off: number): boolean {
    return (off & DW_ALIGN) === 0 && this.truncated[off >>> DW_SHIFT] === 1;
  }

  /** The read source of the dword at `off`, if a row names one. */
  source(off: number): Source {
    return (off & DW_ALIGN) === 0 ? this.reads[off >>> DW_SHIFT] : undefined;
  }
}

/** The MMIO ops of one unit. */
export class VtdMmio implements MmioOps {
  constructor(
    private readonly regs: RegisterFile,
    private readonly tracer: Tracer,
    private readonly table: RegisterTable,
    /** 'registerWrite' events, after each write's side effects (checked by a field read). */
    private readonly events: IommuEmitter | null = null,
  ) {}

  private word(off: number): number {
    const src = this.table.source(off);
    return src !== undefined ? src() >>> 0 : this.regs.read32(off);
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (this.tracer.enabled(Trace.regRead)) this.tracer.trace(Trace.regRead, { addr: offset, size });
    if (offset + size > this.regs.size || size !== DW) return ALL_ONES_32;
    return this.word(offset);
  }

  read64(offset: number): bigint {
    if (this.tracer.enabled(Trace.regRead)) this.tracer.trace(Trace.regRead, { addr: offset, size: QW });
    if (offset + QW > this.regs.size) return ALL_ONES_64;
    return (BigInt(this.word(offset + DW)) << 32n) | BigInt(this.word(offset));
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.tracer.enabled(Trace.regWrite)) this.tracer.trace(Trace.regWrite, { addr: offset, size, val: value });
    if (offset + size > this.regs.size || size !== DW) return;
    this.regs.write32(offset, value);
    this.table.written(offset, DW);
    if (this.events !== null && this.events.registerListened) this.events.emit('registerWrite', { offset, size: DW, value: BigInt(value >>> 0) });
  }

  write64(offset: number, value: bigint): void {
    if (this.tracer.enabled(Trace.regWrite)) this.tracer.trace(Trace.regWrite, { addr: offset, size: QW, val: value });
    if (offset + QW > this.regs.size) return;
    this.regs.write32(offset, Number(value & LO_MASK));
    if (this.table.truncates(offset)) {
      this.table.written(offset, DW);
    } else {
      this.regs.write32(offset + DW, Number((value >> 32n) & LO_MASK));
      this.table.written(offset, QW);
    }
    if (this.events !== null && this.events.registerListened) this.events.emit('registerWrite', { offset, size: QW, value: BigInt.asUintN(64, value) });
  }
}
