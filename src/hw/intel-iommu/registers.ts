/**
 * The VT-d register file as data with masks (STYLE #7; QEMU's csr / wmask /
 * w1cmask / womask arrays): one write helper applies
 *   new = ((old & ~wmask) | (val & wmask)) & ~(w1cmask & val)
 * and reads hide write-only bits.  Stored as 32-bit words; 64-bit registers
 * are two words (low at the lower offset).  No behaviour here: the MMIO layer
 * (mmio.ts) decides which writes trigger what.
 *
 * The layout and reset values follow QEMU 11.1's vtd_init (spec chapter 11),
 * the page-request registers included (only with ECAP.PRS, i.e. svm=on).
 * Scalable mode changes no other mask: RTADDR's bits 11:10 (TTM) are
 * writable in both modes (SRTP latches SMT, bit 10, only in scalable mode)
 * and IQA.DW (bit 11) is writable and read back in both (honoured only in
 * scalable mode).
 */
import { Ecap } from './caps.js';
import { EventCtl, FRCD_SIZE, PQ_INDEX_MASK, Prs, Reg, REG_FILE_SIZE, VER_VALUE } from './reg-layout.js';

const WORD = 4;
const ALL = 0xffff_ffff;
/** PQA's writable bits: the base, 63:12, and PQS, 2:0. */
const PQA_WMASK = 0xffff_ffff_ffff_f007n;

/**
 * Raw access to the register file: no masks, no side effects (the device's
 * own view, QEMU vtd_get/set_*_raw).  Offsets are byte offsets of the MMIO
 * page; 64-bit registers are accessed as two 32-bit halves (low at off,
 * high at off + 4).  What the unit's components are handed instead of the
 * RegisterFile itself.
 */
export interface RegisterAccess {
  /** Reads 32 bits at `off` (unsigned). */
  get32(off: number): number;
  /** Stores 32 bits at `off`. */
  set32(off: number, value: number): void;
  /** `reg = (reg & ~clear) | set` on the 32 bits at `off`. */
  setClear32(off: number, set: number, clear: number): void;
  /** Reads 64 bits at `off` as a bigint (API edge only, never on a hot path). */
  get64(off: number): bigint;
  /** Stores 64 bits at `off` from halves. */
  set64(off: number, lo: number, hi: number): void;
  /**
   * (Re)defines a 32-bit register's reset value and masks (QEMU
   * vtd_define_long/_wo): writable bits, write-1-to-clear bits and
   * write-only bits (read back as 0).  For registers defined by a component
   * (e.g. IQER).  Takes effect at once and at every reset.
   */
  define32(off: number, reset: number, wmask: number, w1cmask: number, womask?: number): void;
}

/** Reset value and masks of one 32-bit word. */
interface WordDef {
  reset: number;
  wmask: number;
  w1c: number;
  wo: number;
}

/** A register file of `size` bytes (a multiple of 4). */
export class RegisterFile implements RegisterAccess {
  /** Byte size of the file. */
  readonly size: number;
  private readonly csr: Uint32Array;
  private readonly wmask: Uint32Array;
  private readonly w1c: Uint32Array;
  private readonly wo: Uint32Array;
  private readonly defs = new Map<number, WordDef>();

  constructor(size: number) {
    if (size <= 0 || size % WORD !== 0) throw new RangeError(`register file size ${size} must be a positive multiple of 4`);
    this.size = size;
    const n = size / WORD;
    this.csr = new Uint32Array(n);
    this.wmask = new Uint32Array(n);
    this.w1c = new Uint32Array(n);
    this.wo = new Uint32Array(n);
  }

  private index(off: number): number {
    if (off < 0 || off + WORD > this.size || off % WORD !== 0) {
      throw new RangeError(`register offset 0x${off.toString(16)} outside the file or unaligned`);
    }
    return off / WORD;
  }

  /** Defines one 32-bit word (QEMU vtd_define_long + _wo). */
  define32(off: number, reset: number, wmask: number, w1cmask: number, womask = 0): void {
    const def = { reset: reset >>> 0, wmask: wmask >>> 0, w1c: w1cmask >>> 0, wo: womask >>> 0 };
    this.defs.set(off, def);
    this.apply(off, def);
  }

  /** Defines a 64-bit register from bigint values (QEMU vtd_define_quad + _wo). */
  define64(off: number, reset: bigint, wmask: bigint, w1cmask = 0n, womask = 0n): void {
    const lo = (v: bigint) => Number(v & 0xffff_ffffn);
    const hi = (v: bigint) => Number((v >> 32n) & 0xffff_ffffn);
    this.define32(off, lo(reset), lo(wmask), lo(w1cmask), lo(womask));
    this.define32(off + WORD, hi(reset), hi(wmask), hi(w1cmask), hi(womask));
  }

  private apply(off: number, def: WordDef): void {
    const i = this.index(off);
    this.csr[i] = def.reset;
    this.wmask[i] = def.wmask;
    this.w1c[i] = def.w1c;
    this.wo[i] = def.wo;
  }

  /** Back to the defined reset values (undefined words: 0, read-only). */
  reset(): void {
    this.csr.fill(0);
    this.wmask.fill(0);
    this.w1c.fill(0);
    this.wo.fill(0);
    for (const [off, def] of this.defs) this.apply(off, def);
  }

  /** Raw 32-bit value (device view). */
  get32(off: number): number {
    return this.csr[this.index(off)]!;
  }

  /** Raw store. */
  set32(off: number, value: number): void {
    this.csr[this.index(off)] = value >>> 0;
  }

  /** `reg = (reg & ~clear) | set`; returns the new value. */
  setClear32(off: number, set: number, clear: number): number {
    const i = this.index(off);
    const v = ((this.csr[i]! & ~clear) | set) >>> 0;
    this.csr[i] = v;
    return v;
  }

  /** Raw 64-bit value as a bigint. */
  get64(off: number): bigint {
    return (BigInt(this.get32(off + WORD)) << 32n) | BigInt(this.get32(off));
  }

  /** Raw 64-bit store from halves. */
  set64(off: number, lo: number, hi: number): void {
    this.set32(off, lo);
    this.set32(off + WORD, hi);
  }

  /** Guest read of one word: write-only bits read 0. */
  read32(off: number): number {
    const i = this.index(off);
    return (this.csr[i]! & ~this.wo[i]!) >>> 0;
  }

  /** Guest write of one word through the masks. */
  write32(off: number, value: number): void {
    const i = this.index(off);
    const old = this.csr[i]!;
    const wm = this.wmask[i]!;
    this.csr[i] = (((old & ~wm) | (value & wm)) & ~(this.w1c[i]! & value)) >>> 0;
  }

  /** Snapshot: a copy of every word's raw value (masks are defined at creation and not saved). */
  saveWords(): Uint32Array {
    return this.csr.slice();
  }

  /** Snapshot: sets every word's raw value (no side effects). */
  loadWords(words: Uint32Array): void {
    if (words.length !== this.csr.length) throw new RangeError(`register file: ${words.length} words for ${this.csr.length}`);
    this.csr.set(words);
  }

  /** Writable mask of one word (for tests and dumps). */
  writableMask(off: number): number {
    return this.wmask[this.index(off)]!;
  }

  /** Write-1-to-clear mask of one word. */
  w1cMask(off: number): number {
    return this.w1c[this.index(off)]!;
  }
}

/** Byte size of the register file for `nfr` fault recording registers. */
export function registerFileSize(nfr: number): number {
  return Math.max(REG_FILE_SIZE, Reg.FRCD0 + nfr * FRCD_SIZE);
}

/**
 * Defines the VT-d registers as QEMU's vtd_init does (reset values, wmask,
 * w1c, write-only), with `nfr` fault recording registers from FRCD0.
 */
export function defineVtdRegisters(file: RegisterFile, cap: bigint, ecap: bigint, nfr: number): void {
  file.define32(Reg.VER, VER_VALUE, 0, 0);
  file.define64(Reg.CAP, cap, 0n);
  file.define64(Reg.ECAP, ecap, 0n);
  file.define32(Reg.GCMD, 0, 0xff80_0000, 0, 0xff80_0000);
  file.define32(Reg.GSTS, 0, 0, 0);
  file.define64(Reg.RTADDR, 0n, 0xffff_ffff_ffff_fc00n);
  file.define64(Reg.CCMD, 0n, 0xe000_0003_ffff_ffffn, 0n, 0x3_ffff_0000n);
  // Advanced fault logging not supported: PFO and IQE are W1C.
  file.define32(Reg.FSTS, 0, 0, 0x11);
  file.define32(Reg.FECTL, 0x8000_0000, 0x8000_0000, 0);
  file.define32(Reg.FEDATA, 0, 0xffff, 0);
  file.define32(Reg.FEADDR, 0, 0xffff_fffc, 0);
  // RsvdZ without ECAP.EIM (QEMU keeps it read-only even with EIM).
  file.define32(Reg.FEUADDR, 0, 0, 0);
  // Read-only: CAP.PLMR/PHMR are clear.
  file.define32(Reg.PMEN, 0, 0, 0);
  file.define64(Reg.IQH, 0n, 0n);
  file.define64(Reg.IQT, 0n, 0x7fff0n);
  file.define64(Reg.IQA, 0n, 0xffff_ffff_ffff_f807n);
  file.define32(Reg.ICS, 0, 0, 0x1);
  file.define32(Reg.IECTL, 0x8000_0000, 0x8000_0000, 0);
  file.define32(Reg.IEDATA, 0, ALL, 0);
  file.define32(Reg.IEADDR, 0, 0xffff_fffc, 0);
  file.define32(Reg.IEUADDR, 0, 0, 0);
  file.define64(Reg.IOTLB, 0n, 0xb003_ffff_0000_0000n);
  file.define64(Reg.IVA, 0n, 0xffff_ffff_ffff_f07fn, 0n, 0xffff_ffff_ffff_f07fn);
  for (let i = 0; i < nfr; i++) {
    const base = Reg.FRCD0 + i * FRCD_SIZE;
    file.define64(base, 0n, 0n);
    file.define64(base + 8, 0n, 0n, 0x8000_0000_0000_0000n);
  }
  file.define64(Reg.IRTA, 0n, 0xffff_ffff_ffff_f80fn);
  if ((ecap & Ecap.PRS) !== 0n) definePageRequestRegisters(file);
}

/**
 * The page-request registers (spec 11.4.11), defined only with ECAP.PRS
 * (svm=on), as QEMU 11.1 defines them: everything resets to 0 (PECTL.IM
 * too, unlike FECTL and IECTL), PRS.PPR/PRO are write-1-to-clear and
 * PEUADDR is fully writable.  Without ECAP.PRS the offsets read 0 and
 * ignore writes.
 */
function definePageRequestRegisters(file: RegisterFile): void {
  file.define64(Reg.PQH, 0n, BigInt(PQ_INDEX_MASK));
  file.define64(Reg.PQT, 0n, BigInt(PQ_INDEX_MASK));
  file.define64(Reg.PQA, 0n, PQA_WMASK);
  file.define32(Reg.PRS, 0, 0, Prs.PPR | Prs.PRO);
  file.define32(Reg.PECTL, 0, EventCtl.IM, 0);
  file.define32(Reg.PEDATA, 0, 0xffff, 0);
  file.define32(Reg.PEADDR, 0, 0xffff_fffc, 0);
  file.define32(Reg.PEUADDR, 0, ALL, 0);
}
