/**
 * Builders of qtest transcript steps that lay out VT-d scalable-mode
 * structures in guest memory and program the unit to use them (VT-d spec
 * rev 4, chapter 9 "Translation Structure Formats", 11.4 registers, 6.5.2
 * invalidation descriptors).  For differential tests against QEMU 11.1: every
 * helper returns plain `Step`s (qtest lines), so one transcript runs
 * unchanged on QEMU and on vtemu.  The values are written independently of
 * vtemu's own encoders in src/, so a wrong constant there cannot hide here.
 *
 *   root entry (16 B per bus)       lo: lower context table | LP   hi: upper context table | UP
 *   context entry (32 B, devfn&0x7f) val0: PASID directory | PRE 4 | FPD 1 | P 0   val1: RID_PASID 19:0
 *   PASID directory entry (8 B, pasid >> 6)   PASID table | FPD 1 | P 0
 *   PASID table entry (64 B, pasid & 0x3f)
 *     qword 0: second-stage table 63:12 | PGTT 8:6 | AW 4:2 | FPD 1 | P 0
 *     qword 1: DID 15:0        qword 2: first-stage table 63:12 | FSPM 3:2
 *   second-stage entry: R 0, W 1, PS 7 (2 MiB at level 2, 1 GiB at level 3)
 *   first-stage entry:  P 0, RW 1, US 2, A 5, D 6, PS 7, XD 63
 *
 * Addresses are numbers (guest RAM is far below 2^53); entry values are
 * bigints because they carry bits 63:32.
 */
import { hex, type Step } from '../harness/index.js';
import { get32, get64, leHex, okValue, put32, put64, regR32, regR64, regW32, regW64, step, VTD_BASE } from './qtest-steps.js';

/** The shared qtest step builders, for the tests that take them from here with the tables. */
export { get32, get64, okValue, put32, put64, regR32, regR64, regW32, regW64, step, VTD_BASE };

// ---- registers --------------------------------------------------------------

/** Register offsets the scalable-mode tests use (spec 11.4). */
export const VtdReg = {
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  IVA: 0xf0,
  IOTLB: 0xf8,
  /** The only fault recording register of QEMU's unit (CAP.NFR = 0), low qword. */
  FRCD_LO: 0x220,
  /** High qword of FRCD 0. */
  FRCD_HI: 0x228,
  /** The dword of FRCD 0 holding F (bit 31 here, bit 127 of the record): write 1 to clear. */
  FRCD_F_DWORD: 0x22c,
} as const;

/** GCMD / GSTS bits (spec 11.4.4). */
export const Gcmd = {
  TE: 0x8000_0000,
  SRTP: 0x4000_0000,
  QIE: 0x0400_0000,
} as const;

/** RTADDR.TTM bits 11:10: 01b selects the scalable-mode root table (spec 11.4.5). */
export const RTADDR_SMT = 1 << 10;

/** FSTS bits (spec 11.4.7.1). */
export const Fsts = {
  PFO: 0x1,
  PPF: 0x2,
  IQE: 0x10,
} as const;

/** IQA.DW, bit 11: 256-bit descriptors (spec 11.4.9.3). */
export const IQA_DW = 1 << 11;
/** With IQA.DW set, IQT and IQH count 32-byte descriptors from bit 5. */
export const IQ_INDEX_SHIFT_256 = 5;
/** Size of one 256-bit descriptor. */
export const DESC_SIZE_256 = 32;

/** Writes consecutive qwords at `addr` with one qtest `write`. */
export const putQwords = (addr: number, qwords: readonly bigint[]): Step =>
  step(`write ${hex(addr)} ${hex(qwords.length * 8)} 0x${leHex(qwords)}`);
/** Zeroes one 4 KiB page. */
export const zeroPage = (addr: number): Step => step(`memset ${hex(addr)} 0x1000 0x0`);

/**
 * Points RTADDR at `root` (SMT set unless `legacy`), latches it with
 * GCMD.SRTP and enables translation with GCMD.TE, checking GSTS after each.
 */
export function enableTranslation(root: number, legacy = false): Step[] {
  return [
    regW64(VtdReg.RTADDR, BigInt(root) | (legacy ? 0n : BigInt(RTADDR_SMT))),
    regW32(VtdReg.GCMD, Gcmd.SRTP),
    regR32(VtdReg.GSTS, Gcmd.SRTP),
    regW32(VtdReg.GCMD, Gcmd.TE),
    regR32(VtdReg.GSTS, (Gcmd.TE | Gcmd.SRTP) >>> 0),
  ];
}

/**
 * With TE already on: points RTADDR at `root` (SMT unless `legacy`) and
 * latches it with GCMD.SRTP, TE kept set (one command per GCMD write, as the
 * spec asks).  QEMU drops every cached context and translation on SRTP.
 */
export function latchRoot(root: number, legacy = false): Step[] {
  return [
    regW64(VtdReg.RTADDR, BigInt(root) | (legacy ? 0n : BigInt(RTADDR_SMT))),
    regW32(VtdReg.GCMD, (Gcmd.TE | Gcmd.SRTP) >>> 0),
    regR32(VtdReg.GSTS, (Gcmd.TE | Gcmd.SRTP) >>> 0),
  ];
}

// ---- fault records ------------------------------------------------------------

/** FRCD high-qword fields (spec 11.4.7.3). */
const Frcd = {
  F: 1n << 63n,
  /** T: 1 = read request, 0 = write. */
  T_READ: 1n << 62n,
  FR_SHIFT: 32n,
  PP: 1n << 31n,
  PV_SHIFT: 40n,
} as const;

/** What a fault record says. */
export interface FaultRecord {
  readonly reason: number;
  /** Source-id (bus << 8 | devfn). */
  readonly sid: number;
  readonly write?: boolean;
  /** The request's PASID (sets PP and PV); absent for requests without PASID. */
  readonly pasid?: number;
}

/** The high qword of a fault record. */
export function frcdHi(f: FaultRecord): bigint {
  let v = Frcd.F | (BigInt(f.reason) << Frcd.FR_SHIFT) | BigInt(f.sid);
  if (!f.write) v |= Frcd.T_READ;
  if (f.pasid !== undefined) v |= Frcd.PP | (BigInt(f.pasid) << Frcd.PV_SHIFT);
  return v;
}

/** Reads FSTS and FRCD 0 expecting exactly one pending fault `f` at page `iova`. */
export function expectFault(f: FaultRecord, iova: number | bigint): Step[] {
  return [
    regR32(VtdReg.FSTS, Fsts.PPF),
    regR64(VtdReg.FRCD_LO, BigInt(iova) & ~0xfffn),
    regR64(VtdReg.FRCD_HI, frcdHi(f)),
  ];
}

/** Reads FSTS and FRCD 0 expecting no fault ever recorded (FRCD 0 all zero). */
export function expectNoFault(): Step[] {
  return [regR32(VtdReg.FSTS, 0), regR64(VtdReg.FRCD_LO, 0), regR64(VtdReg.FRCD_HI, 0)];
}

/**
 * Expects no pending fault after earlier ones were cleared: FSTS is 0 (the
 * cleared record keeps its other fields, compared but not expected).
 */
export function expectNoNewFault(): Step[] {
  return [regR32(VtdReg.FSTS, 0), regR64(VtdReg.FRCD_HI)];
}

/** Clears FRCD 0's F bit (FSTS.PPF follows) and checks FSTS is clear. */
export function clearFault(): Step[] {
  return [regW32(VtdReg.FRCD_F_DWORD, 0x8000_0000), regR32(VtdReg.FSTS, 0)];
}

// ---- root, context, PASID directory and PASID table entries --------------------

/** Present bit of root halves, context, directory and PASID entries. */
export const PRESENT = 1n;
/** Fault processing disable of context, directory and PASID entries (bit 1). */
export const FPD = 2n;

/** Size of a scalable-mode root entry. */
export const SM_ROOT_SIZE = 16;
/** Size of a scalable-mode context entry. */
export const SM_CONTEXT_SIZE = 32;
/** First devfn served by the upper context table. */
export const UPPER_DEVFN = 0x80;
/** Size of a PASID directory entry. */
export const PASID_DIR_ENTRY_SIZE = 8;
/** Size of a PASID table entry. */
export const PASID_ENTRY_SIZE = 64;

/** PASID-granular translation types (PASID entry bits 8:6). */
export const Pgtt = {
  FirstStage: 1,
  SecondStage: 2,
  Nested: 3,
  PassThrough: 4,
} as const;

/** Writes root entry `bus` of the table at `root`: raw low and high halves. */
export function rootEntry(root: number, bus: number, lo: bigint, hi: bigint): Step[] {
  return [putQwords(root + bus * SM_ROOT_SIZE, [lo, hi])];
}

/** Writes the context entry of `devfn` in the context table at `table` (the four raw qwords). */
export function contextEntry(table: number, devfn: number, val: readonly [bigint, bigint, bigint, bigint]): Step[] {
  return [putQwords(table + (devfn & 0x7f) * SM_CONTEXT_SIZE, val)];
}

/** Writes the directory entry of `pasid` in the PASID directory at `dir`. */
export function pasidDirEntry(dir: number, pasid: number, v: bigint): Step {
  return put64(dir + (pasid >> 6) * PASID_DIR_ENTRY_SIZE, v);
}

/** The fields of a PASID table entry (unset fields are 0, except P which defaults to present). */
export interface PasidEntryFields {
  readonly present?: boolean;
  readonly fpd?: boolean;
  readonly pgtt: number;
  /** AW, bits 4:2: second stage walks AW + 2 levels; QEMU also derives the canonical width from it. */
  readonly aw: number;
  readonly did: number;
  /** Second-stage table (qword 0 bits 63:12). */
  readonly ssTable?: number;
  /** First-stage table (qword 2 bits 63:12). */
  readonly fsTable?: number;
  /** First-stage paging mode, qword 2 bits 3:2 (0: 4 levels). */
  readonly fspm?: number;
}

/** The eight qwords of a PASID table entry. */
export function pasidEntryQwords(f: PasidEntryFields): bigint[] {
  const q0 =
    BigInt(f.ssTable ?? 0) | (BigInt(f.pgtt) << 6n) | (BigInt(f.aw) << 2n) | (f.fpd ? FPD : 0n) | (f.present === false ? 0n : PRESENT);
  const q2 = BigInt(f.fsTable ?? 0) | (BigInt(f.fspm ?? 0) << 2n);
  return [q0, BigInt(f.did), q2, 0n, 0n, 0n, 0n, 0n];
}

/** Writes the PASID table entry of `pasid` in the table at `table` (all eight qwords). */
export function pasidEntry(table: number, pasid: number, qwords: readonly bigint[]): Step[] {
  return [putQwords(table + (pasid & 0x3f) * PASID_ENTRY_SIZE, qwords)];
}

/** Where the structures of one device's translation live. */
export interface SmLayout {
  readonly root: number;
  /** Context table for devfn 0x00-0x7f (root lo) and 0x80-0xff (root hi). */
  readonly lowerContext: number;
  readonly upperContext: number;
  readonly pasidDir: number;
  readonly pasidTable: number;
}

/** Optional raw overrides of a chain's entries (for breaking one link). */
export interface SmChainOverrides {
  readonly rootLo?: bigint;
  readonly rootHi?: bigint;
  readonly context?: readonly [bigint, bigint, bigint, bigint];
  readonly pasidDir?: bigint;
}

/**
 * Zeroes the root, both context tables, the PASID directory and table, then
 * writes the chain root → context (devfn) → PASID directory → PASID entry
 * of PASID 0 (what requests without PASID use): present entries unless
 * overridden.  The root entry of bus 0 gets both halves present.
 */
export function smChain(l: SmLayout, devfn: number, pe: readonly bigint[], o: SmChainOverrides = {}): Step[] {
  const ctx = devfn >= UPPER_DEVFN ? l.upperContext : l.lowerContext;
  return [
    ...[l.root, l.lowerContext, l.upperContext, l.pasidDir, l.pasidTable].map(zeroPage),
    ...rootEntry(l.root, 0, o.rootLo ?? (BigInt(l.lowerContext) | PRESENT), o.rootHi ?? (BigInt(l.upperContext) | PRESENT)),
    ...contextEntry(ctx, devfn, o.context ?? [BigInt(l.pasidDir) | PRESENT, 0n, 0n, 0n]),
    pasidDirEntry(l.pasidDir, 0, o.pasidDir ?? (BigInt(l.pasidTable) | PRESENT)),
    ...pasidEntry(l.pasidTable, 0, pe),
  ];
}

// ---- page tables ----------------------------------------------------------------

/** Second-stage entry bits (spec 9.8). */
export const Ss = {
  R: 1n,
  W: 2n,
  PS: 0x80n,
} as const;

/** First-stage entry bits (spec 9.7). */
export const Fs = {
  P: 1n,
  RW: 2n,
  US: 4n,
  A: 0x20n,
  D: 0x40n,
  PS: 0x80n,
  XD: 1n << 63n,
} as const;

/** Leaf levels: 4 KiB, 2 MiB, 1 GiB. */
export const Leaf = {
  K4: 1,
  M2: 2,
  G1: 3,
} as const;

/** A bump allocator of 4 KiB guest pages for tables. */
export class PageAllocator {
  private next: number;
  constructor(
    base: number,
    private readonly limit: number,
  ) {
    this.next = base;
  }
  /** The next free page (the caller zeroes it). */
  page(): number {
    if (this.next >= this.limit) throw new Error('test page allocator exhausted');
    const p = this.next;
    this.next += 0x1000;
    return p;
  }
}

const ENTRIES_PER_TABLE = 512;
const LEVEL_BITS = 9;
const PAGE_SHIFT = 12;

/** Index of `iova` in a table of `level` (1 = last level). */
function levelIndex(iova: number, level: number): number {
  return Math.floor(iova / 2 ** (PAGE_SHIFT + LEVEL_BITS * (level - 1))) % ENTRIES_PER_TABLE;
}

/**
 * A second- or first-stage page-table tree in guest memory: `map` returns
 * the steps that write it (zeroing each new table once), and remembers each
 * entry so a test can patch one (`entryAt`, `patch`).  Non-leaf entries get
 * R|W (second stage) or P|RW|US (first stage).
 */
export class PageTables {
  /** The top-level table (the PASID entry's SSPTPTR / FSPTPTR). */
  readonly top: number;
  private readonly children = new Map<number, number>();
  private readonly entries = new Map<number, bigint>();
  private topZeroed = false;

  constructor(
    private readonly alloc: PageAllocator,
    readonly stage: 'second' | 'first',
    readonly levels: number,
  ) {
    this.top = alloc.page();
  }

  /** Flags of a non-leaf entry. */
  private get tableFlags(): bigint {
    return this.stage === 'second' ? Ss.R | Ss.W : Fs.P | Fs.RW | Fs.US;
  }

  /** Default flags of a leaf: R|W, or P|RW|US. */
  get leafFlags(): bigint {
    return this.tableFlags;
  }

  /** Maps the page (of `leaf` level) holding `iova` to `phys` with `flags` (PS added for large leaves). */
  map(iova: number, phys: number, leaf: number = Leaf.K4, flags: bigint = this.leafFlags): Step[] {
    const steps: Step[] = [];
    if (!this.topZeroed) {
      steps.push(zeroPage(this.top));
      this.topZeroed = true;
    }
    let table = this.top;
    for (let level = this.levels; level > leaf; level--) {
      const at = table + levelIndex(iova, level) * 8;
      let next = this.children.get(at);
      if (next === undefined) {
        next = this.alloc.page();
        this.children.set(at, next);
        steps.push(zeroPage(next), ...this.set(at, BigInt(next) | this.tableFlags));
      }
      table = next;
    }
    const at = table + levelIndex(iova, leaf) * 8;
    steps.push(...this.set(at, BigInt(phys) | flags | (leaf > Leaf.K4 ? Ss.PS : 0n)));
    return steps;
  }

  /** Guest address of the entry of `level` on the walk of `iova` (the walk must exist down to it). */
  entryAt(iova: number, level: number): number {
    let table = this.top;
    for (let l = this.levels; l > level; l--) {
      const next = this.children.get(table + levelIndex(iova, l) * 8);
      if (next === undefined) throw new Error(`no level-${l - 1} table on the walk of ${hex(iova)}`);
      table = next;
    }
    return table + levelIndex(iova, level) * 8;
  }

  /** The value last written to the entry of `level` on the walk of `iova`. */
  entry(iova: number, level: number): bigint {
    const v = this.entries.get(this.entryAt(iova, level));
    if (v === undefined) throw new Error(`no level-${level} entry for ${hex(iova)}`);
    return v;
  }

  /** Rewrites that entry with bits `clear` cleared and `set` set. */
  patch(iova: number, level: number, change: { readonly set?: bigint; readonly clear?: bigint }): Step[] {
    const v = (this.entry(iova, level) & ~(change.clear ?? 0n)) | (change.set ?? 0n);
    return this.set(this.entryAt(iova, level), v);
  }

  /** Rewrites that entry with a raw value. */
  replace(iova: number, level: number, v: bigint): Step[] {
    return this.set(this.entryAt(iova, level), v);
  }

  private set(at: number, v: bigint): Step[] {
    this.entries.set(at, v);
    return [put64(at, v)];
  }
}

// ---- 256-bit invalidation queue --------------------------------------------------

/** A 256-bit descriptor: four qwords (unset ones 0). */
export type Desc256 = readonly bigint[];

/** Descriptor builders (spec 6.5.2; QEMU's type = lo bits 11:9 << 4 | bits 3:0). */
export const Desc = {
  /** Invalidation wait with status write of `data` to `addr` (type 5, SW). */
  wait: (data: number, addr: number): Desc256 => [0x25n | (BigInt(data) << 32n), BigInt(addr)],
  /** Context-cache, global (type 1, G=1). */
  contextGlobal: (): Desc256 => [0x11n],
  /** Context-cache, device-selective (type 1, G=3). */
  contextDevice: (did: number, sid: number): Desc256 => [0x31n | (BigInt(did) << 16n) | (BigInt(sid) << 32n)],
  /** IOTLB, global (type 2, G=1). */
  iotlbGlobal: (): Desc256 => [0x12n],
  /** IOTLB, domain-selective (type 2, G=2). */
  iotlbDomain: (did: number): Desc256 => [0x22n | (BigInt(did) << 16n)],
  /** IOTLB, page-selective (type 2, G=3): `addr` | AM. */
  iotlbPage: (did: number, addr: number, am = 0): Desc256 => [0x32n | (BigInt(did) << 16n), BigInt(addr) | BigInt(am)],
  /** PASID-based IOTLB (type 6), G=2: everything of (DID, PASID). */
  piotlbPasid: (did: number, pasid: number): Desc256 => [0x6n | (2n << 4n) | (BigInt(did) << 16n) | (BigInt(pasid) << 32n)],
  /** PASID-based IOTLB (type 6), G=3: the pages `addr` | AM of (DID, PASID). */
  piotlbPage: (did: number, pasid: number, addr: number, am = 0): Desc256 =>
    [0x6n | (3n << 4n) | (BigInt(did) << 16n) | (BigInt(pasid) << 32n), BigInt(addr) | BigInt(am)],
  /** PASID-cache (type 7): G 0 domain, 1 PASID, 3 global. */
  pasidCache: (g: number, did: number, pasid: number): Desc256 =>
    [0x7n | (BigInt(g) << 4n) | (BigInt(did) << 16n) | (BigInt(pasid) << 32n)],
} as const;

/**
 * A 256-bit invalidation queue at `base` (QS = 0: 128 descriptors, one
 * page).  `submit` appends descriptors plus a wait whose status write is
 * checked, so the transcript shows the queue got past them.
 */
export class Queue256 {
  private tail = 0;
  private token = 0;
  constructor(
    readonly base: number,
    readonly status: number,
  ) {}

  /** Zeroes the queue, sets IQA (DW=1) and IQT 0, enables QI (GSTS `before` plus QIES). */
  enable(gstsBefore: number): Step[] {
    return [
      zeroPage(this.base),
      regW64(VtdReg.IQA, BigInt(this.base) | BigInt(IQA_DW)),
      regW64(VtdReg.IQT, 0),
      regW32(VtdReg.GCMD, (gstsBefore | Gcmd.QIE) >>> 0),
      regR32(VtdReg.GSTS, (gstsBefore | Gcmd.QIE) >>> 0),
      regR64(VtdReg.IQA, BigInt(this.base) | BigInt(IQA_DW)),
    ];
  }

  /** Writes `descs` and a status wait at the tail, moves IQT, checks IQH, the status dword and that FSTS stayed 0. */
  submit(...descs: Desc256[]): Step[] {
    this.token++;
    const all = [...descs, Desc.wait(this.token, this.status)];
    const qwords = all.flatMap((d) => [0, 1, 2, 3].map((i) => d[i] ?? 0n));
    const at = this.base + this.tail * DESC_SIZE_256;
    this.tail += all.length;
    return [
      putQwords(at, qwords),
      regW64(VtdReg.IQT, this.tail << IQ_INDEX_SHIFT_256),
      regR64(VtdReg.IQH, this.tail << IQ_INDEX_SHIFT_256),
      get32(this.status, this.token),
      regR32(VtdReg.FSTS, 0),
    ];
  }
}
