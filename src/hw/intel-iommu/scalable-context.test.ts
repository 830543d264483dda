/**
 * Scalable-mode resolution (VT-d spec 9.2-9.6, QEMU 11.1
 * vtd_dev_to_context_entry / vtd_ce_pasid_0_check / vtd_get_pe_from_pasid_table /
 * vtd_pe_type_check / vtd_ce_get_pasid_fpd): root halves, 32-byte context
 * entries, PASID directory and table indexing, every fault reason and the
 * order between them, the FPD that applies to each, PASID 0's validation
 * during the context fetch, and read failures.  Tables are built in guest RAM
 * of a small address space; the rules are given explicitly.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../test/support/prng.js';
import { AddressSpace } from '../../memory/address-space.js';
import { createRam } from '../../memory/ram-backend.js';
import { ContainerRegion, MmioRegion, RamRegion } from '../../memory/region.js';
import { VtdFault } from './fault-reasons.js';
import {
  FS_LEVEL_BASE,
  FS_LEVELS_5,
  lookupScalableContext,
  copyPasidConfig,
  newPasidConfig,
  newScalableContext,
  pasidEntriesRam,
  PasidDir,
  PasidEntry,
  Pgtt,
  resolvePasid,
  resolveScalable,
  smCtxFpd,
  smCtxPasidDir,
  smCtxPre,
  SmContext,
  SmRoot,
  SS_LEVEL_BASE,
  type PasidConfig,
  type ScalableContext,
  type ScalableRules,
} from './scalable-context.js';

const RAM = 64 * 1024 * 1024;
const HOLE = 0x8000_0000;
const PAGE = 0x1000;
const SS_TOP = 0x30_0000;
const FS_TOP = 0x40_0000;
const FOUR_G = 2 ** 32;

/** scalable-mode=on, aw-bits 48: SAGAW 39/48, ECAP.SSTS and ECAP.PT. */
const SM: ScalableRules = { hawHiMask: 0xffff, sagaw: 0x6, fsts: false, ssts: true, pt: true, nested: false, fs5lp: false };
/** scalable-mode=on,fsts=on: ECAP.FSTS and ECAP.PT, no SSTS. */
const SM_FS: ScalableRules = { ...SM, fsts: true, ssts: false };
/** Everything vtemu can enable. */
const ALL: ScalableRules = { ...SM, fsts: true, ssts: true, nested: true, fs5lp: true };

/** Qword 0 of a PASID entry. */
function q0(o: { p?: boolean; fpd?: boolean; aw?: number; pgtt?: number; ss?: number } = {}): bigint {
  return (
    BigInt(o.ss ?? SS_TOP) |
    (BigInt(o.pgtt ?? Pgtt.SecondStage) << 6n) |
    (BigInt(o.aw ?? 2) << 2n) |
    (o.fpd ? 2n : 0n) |
    (o.p === false ? 0n : 1n)
  );
}

/** Qword 2 of a PASID entry. */
function q2(o: { fspm?: number; sre?: boolean; wpe?: boolean; eafe?: boolean; fs?: number } = {}): bigint {
  return BigInt(o.fs ?? FS_TOP) | (o.eafe ? 0x80n : 0n) | (o.wpe ? 0x10n : 0n) | (BigInt(o.fspm ?? 0) << 2n) | (o.sre ? 1n : 0n);
}

/** Guest RAM with a root table and helpers to build scalable-mode tables. */
class Guest {
  readonly system = new ContainerRegion('system', 2 ** 40);
  readonly mem: AddressSpace;
  readonly root: number;
  private next = 0x10_0000;

  constructor() {
    const ram = createRam(RAM, 'ts');
    this.system.add(new RamRegion('ram', RAM, ram), 0);
    this.mem = new AddressSpace('memory', this.system);
    this.root = this.page();
  }

  /** `n` zeroed pages. */
  page(n = 1): number {
    const p = this.next;
    this.next += n * PAGE;
    this.mem.fill(p, n * PAGE, 0);
    return p;
  }

  poke(addr: number, v: bigint): void {
    this.mem.write64(addr, v);
  }

  peek(addr: number): bigint {
    return this.mem.read64(addr);
  }

  /** Address of the root half serving (bus, devfn). */
  rootHalf(bus: number, devfn: number): number {
    return this.root + bus * 16 + (devfn >= 0x80 ? 8 : 0);
  }

  /** The context table of (bus, devfn)'s root half, created (and the half made present) if needed. */
  ctxTable(bus: number, devfn: number): number {
    const at = this.rootHalf(bus, devfn);
    let v = this.peek(at);
    if ((v & 1n) === 0n) {
      v = BigInt(this.page()) | 1n;
      this.poke(at, v);
    }
    return Number(v & ~0xfffn);
  }

  /** Writes the context entry of (bus, devfn); returns its address. */
  setCtx(bus: number, devfn: number, v0: bigint, v1 = 0n, v2 = 0n, v3 = 0n): number {
    const at = this.ctxTable(bus, devfn) + (devfn & 0x7f) * 32;
    this.poke(at, v0);
    this.poke(at + 8, v1);
    this.poke(at + 16, v2);
    this.poke(at + 24, v3);
    return at;
  }

  /**
   * The PASID table of `pasid` under `dir`, created (directory entry present)
   * if needed; the directory entry's FPD set as given, else kept.
   */
  table(dir: number, pasid: number, dirFpd?: boolean): number {
    const at = dir + Math.floor(pasid / 64) * 8;
    let v = this.peek(at);
    if ((v & 1n) === 0n) v = BigInt(this.page()) | 1n;
    if (dirFpd !== undefined) v = (v & ~2n) | (dirFpd ? 2n : 0n);
    this.poke(at, v);
    return Number(v & ~0xfffn);
  }

  /** Writes the PASID entry of `pasid` under `dir`; returns its address. */
  setPe(dir: number, pasid: number, e0: bigint, did = 0n, e2 = 0n): number {
    const at = this.table(dir, pasid) + (pasid % 64) * 64;
    this.poke(at, e0);
    this.poke(at + 8, did);
    this.poke(at + 16, e2);
    return at;
  }

  /**
   * A device at (bus, devfn): a context entry naming a fresh 32-page PASID
   * directory (room for every 20-bit PASID), and PASID 0's entry second
   * stage, AW 2, DID 1.  Returns the directory.
   */
  device(bus: number, devfn: number, opts: { fpd?: boolean; pre?: boolean } = {}): number {
    const dir = this.page(32);
    this.setCtx(bus, devfn, BigInt(dir) | (opts.pre ? 0x10n : 0n) | (opts.fpd ? 2n : 0n) | 1n);
    this.setPe(dir, 0, q0(), 1n);
    return dir;
  }
}

interface Result {
  r: number;
  ce: ScalableContext;
  cfg: PasidConfig;
}

function resolve(g: Guest, bus: number, devfn: number, pasid = 0, rules = SM, rootTable = g.root): Result {
  const ce = newScalableContext();
  const cfg = newPasidConfig();
  const r = resolveScalable(g.mem, rootTable, bus, devfn, pasid, rules, ce, cfg);
  return { r, ce, cfg };
}

/** [result, fpd, suppressed] of a resolution. */
function outcome(x: Result): [number, boolean, boolean] {
  return [x.r, x.cfg.fpd, x.cfg.suppressed];
}

/** Adds `size` bytes of RAM at 4 GiB (a hole behind it). */
function ramAt4G(g: Guest, size: number): void {
  g.system.add(new RamRegion(`${size} bytes`, size, createRam(PAGE, 'ts')), FOUR_G);
}

describe('layout constants', () => {
  it('root, context, directory and PASID entry bits; PGTT values; level bases', () => {
    expect(SmRoot).toEqual({ SIZE: 16, P: 1, RSVD_LO: 0xffe, ADDR_LO: 0xffff_f000, UPPER_DEVFN: 0x80 });
    expect(SmContext).toEqual({
      SIZE: 32,
      INDEX_MASK: 0x7f,
      P: 1,
      FPD: 2,
      PRE: 0x10,
      RSVD0_LO: 0x1e0,
      RSVD1_LO: 0xffe0_0000,
      ADDR_LO: 0xffff_f000,
    });
    expect(PasidDir).toEqual({ SIZE: 8, INDEX_SHIFT: 6, INDEX_MASK: 0x3fff, P: 1, FPD: 2, ADDR_LO: 0xffff_f000 });
    expect(PasidEntry).toEqual({
      SIZE: 64,
      INDEX_MASK: 0x3f,
      P: 1,
      FPD: 2,
      AW_SHIFT: 2,
      AW_MASK: 7,
      PGTT_SHIFT: 6,
      PGTT_MASK: 7,
      ADDR_LO: 0xffff_f000,
      DID_MASK: 0xffff,
      SRE: 1,
      FSPM_SHIFT: 2,
      FSPM_MASK: 3,
      WPE: 0x10,
      EAFE: 0x80,
    });
    expect(Pgtt).toEqual({ FirstStage: 1, SecondStage: 2, Nested: 3, PassThrough: 4 });
    expect([SS_LEVEL_BASE, FS_LEVEL_BASE, FS_LEVELS_5]).toEqual([2, 4, 5]);
  });

  it('fresh records are zero, unread and own their qwords', () => {
    const ce = newScalableContext();
    expect(ce).toEqual({
      val0: { lo: 0, hi: 0 },
      val1: { lo: 0, hi: 0 },
      val2: { lo: 0, hi: 0 },
      val3: { lo: 0, hi: 0 },
      read: false,
    });
    expect(new Set([ce.val0, ce.val1, ce.val2, ce.val3, newScalableContext().val0]).size).toBe(5);
    expect(newPasidConfig()).toEqual({
      pasid: 0,
      did: 0,
      pgtt: 0,
      aw: 0,
      ssLevels: 0,
      ssRoot: 0,
      fsLevels: 0,
      fsRoot: 0,
      sre: false,
      wpe: false,
      eafe: false,
      pre: false,
      fpd: false,
      suppressed: false,
      peRead: false,
    });
    expect(newPasidConfig()).not.toBe(newPasidConfig());
  });
});

describe('context accessors', () => {
  it('FPD, PRE and the PASID directory each read only their bits', () => {
    const ce = newScalableContext();
    ce.val0.lo = 0x1234_5000 | 0x10 | 0x2 | 1;
    ce.val0.hi = 0xab;
    expect([smCtxFpd(ce), smCtxPre(ce), smCtxPasidDir(ce)]).toEqual([true, true, 0xab_1234_5000]);
    ce.val0.lo = 0xfff & ~0x12;
    ce.val0.hi = 0;
    ce.val1.lo = ce.val2.lo = ce.val3.lo = 0xffff_ffff;
    expect([smCtxFpd(ce), smCtxPre(ce), smCtxPasidDir(ce)]).toEqual([false, false, 0]);
    ce.val0.lo = 0xffff_f000;
    ce.val0.hi = 0xffff;
    expect([smCtxFpd(ce), smCtxPre(ce), smCtxPasidDir(ce)]).toEqual([false, false, 2 ** 48 - PAGE]);
  });
});

describe('resolveScalable: success', () => {
  it('fills the config from the context, directory and PASID entries', () => {
    const g = new Guest();
    const dir = g.device(3, 0x11, { pre: true });
    g.setPe(dir, 0, q0({ aw: 1, ss: 0x12_3456_7000 }), 0xbeefn, q2({ fspm: 1, sre: true, wpe: true, eafe: true, fs: 0x7654_3000 }));
    const x = resolve(g, 3, 0x11);
    expect(x.r).toBe(0);
    expect(x.cfg).toEqual({
      pasid: 0,
      did: 0xbeef,
      pgtt: Pgtt.SecondStage,
      aw: 1,
      ssLevels: 3,
      ssRoot: 0x12_3456_7000,
      fsLevels: 5,
      fsRoot: 0x7654_3000,
      sre: true,
      wpe: true,
      eafe: true,
      pre: true,
      fpd: false,
      suppressed: false,
      peRead: true,
    });
    expect(x.ce.read).toBe(true);
    expect(x.ce.val0).toEqual({ lo: dir | 0x11, hi: 0 });
    expect(smCtxPasidDir(x.ce)).toBe(dir);
  });

  it('a first-stage entry under FSTS: levels and table from qword 2', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 0, q0({ pgtt: Pgtt.FirstStage, aw: 0, ss: 0 }), 7n, q2({ fs: 0x1_2345_6000 }));
    const x = resolve(g, 0, 8, 0, SM_FS);
    expect(x.r).toBe(0);
    expect([x.cfg.pgtt, x.cfg.fsLevels, x.cfg.fsRoot, x.cfg.aw, x.cfg.ssLevels, x.cfg.ssRoot, x.cfg.did]).toEqual([
      1,
      4,
      0x1_2345_6000,
      0,
      2,
      0,
      7,
    ]);
    expect([x.cfg.sre, x.cfg.wpe, x.cfg.eafe, x.cfg.pre]).toEqual([false, false, false, false]);
  });

  it('each PASID-entry field reads only its bits; no reserved bits anywhere in the 64 bytes', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    const at = g.setPe(dir, 0, 0xffff_ffff_ffff_fe3fn & ~(7n << 6n) | (4n << 6n), 0xffff_ffff_ffff_0000n | 0x1234n, 0xffff_ffff_ffff_ff62n);
    for (let i = 3; i < 8; i++) g.poke(at + i * 8, ~0n & 0xffff_ffff_ffff_ffffn);
    // PGTT 4 (pass-through), AW 7 (ignored for pass-through), FSPM 0, SRE/WPE/EAFE clear.
    const x = resolve(g, 0, 8);
    expect(x.r).toBe(0);
    expect(x.cfg).toMatchObject({
      did: 0x1234,
      pgtt: 4,
      aw: 7,
      ssLevels: 9,
      ssRoot: 2 ** 64 - PAGE,
      fsLevels: 4,
      fsRoot: 2 ** 64 - PAGE,
      sre: false,
      wpe: false,
      eafe: false,
      fpd: true,
    });
    g.poke(at + 16, 0xfffn & ~0x1cn);
    g.poke(at + 8, 0xffffn << 16n);
    const y = resolve(g, 0, 8);
    expect(y.cfg).toMatchObject({ did: 0, fsLevels: 4, fsRoot: 0, sre: true, wpe: false, eafe: true });
    g.poke(at + 16, 0x10n | 0xcn);
    expect(resolve(g, 0, 8).cfg).toMatchObject({ fsLevels: 7, sre: false, wpe: true, eafe: false });
  });

  it('AW and PGTT fields: AW 2 with PGTT 2 is 4 levels; bit 5 and bit 9 belong to neither', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 0, q0({ aw: 2 }) | 0x20n | 0x200n, 1n);
    const x = resolve(g, 0, 8);
    expect([x.r, x.cfg.aw, x.cfg.ssLevels, x.cfg.pgtt, x.cfg.ssRoot]).toEqual([0, 2, 4, 2, SS_TOP]);
  });
});

describe('root entry', () => {
  it('an unreadable root table: 0x8, nothing read, no FPD', () => {
    const g = new Guest();
    const x = resolve(g, 0, 0, 0, SM, HOLE);
    expect(outcome(x)).toEqual([VtdFault.ROOT_TABLE_INV, false, false]);
    expect(x.ce.read).toBe(false);
  });

  it('a root entry whose upper half is unreadable: 0x8 for both halves', () => {
    const g = new Guest();
    // Bus 2's entry: lower half is the last qword of RAM, upper half in the hole behind it.
    const rootTable = RAM - 8 - 2 * 16;
    g.poke(RAM - 8, 0x5000n | 1n);
    expect(resolve(g, 2, 0, 0, SM, rootTable).r).toBe(VtdFault.ROOT_TABLE_INV);
    expect(resolve(g, 2, 0x80, 0, SM, rootTable).r).toBe(VtdFault.ROOT_TABLE_INV);
    expect(resolve(g, 1, 0, 0, SM, rootTable).r).toBe(VtdFault.ROOT_ENTRY_P);
  });

  it('devfn 0x00-0x7f use the lower half, 0x80-0xff the upper half: each half\'s present bit', () => {
    const g = new Guest();
    g.device(4, 0x7f);
    expect(resolve(g, 4, 0x7f).r).toBe(0);
    expect(resolve(g, 4, 0x80).r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(resolve(g, 4, 0xff).r).toBe(VtdFault.ROOT_ENTRY_P);
    const h = new Guest();
    h.device(4, 0x80);
    expect(resolve(h, 4, 0x80).r).toBe(0);
    expect(resolve(h, 4, 0x7f).r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(resolve(h, 4, 0).r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(resolve(h, 5, 0x80).r).toBe(VtdFault.ROOT_ENTRY_P);
  });

  it('the upper context table is indexed by devfn & 0x7f, 32-byte entries', () => {
    const g = new Guest();
    const d80 = g.device(1, 0x80);
    const dff = g.device(1, 0xff);
    const d00 = g.device(1, 0x00);
    const d7f = g.device(1, 0x7f);
    const d01 = g.device(1, 0x01);
    let did = 10n;
    for (const d of [d80, dff, d00, d7f, d01]) g.setPe(d, 0, q0(), did++);
    const lower = g.ctxTable(1, 0);
    const upper = g.ctxTable(1, 0x80);
    expect(upper).not.toBe(lower);
    expect(Number(g.peek(upper) & ~0xfffn)).toBe(d80);
    expect(Number(g.peek(upper + 0x7f * 32) & ~0xfffn)).toBe(dff);
    expect(Number(g.peek(lower + 32) & ~0xfffn)).toBe(d01);
    expect([0x80, 0xff, 0x00, 0x7f, 0x01].map((devfn) => resolve(g, 1, devfn).cfg.did)).toEqual([10, 11, 12, 13, 14]);
    expect(resolve(g, 1, 0x81).r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(resolve(g, 1, 0x02).r).toBe(VtdFault.CONTEXT_ENTRY_P);
  });

  it('a context table above 4 GiB is found through the half\'s high dword (both halves)', () => {
    const g = new Guest();
    g.poke(g.rootHalf(0, 0), (1n << 32n) | 0x5000n | 1n);
    g.poke(g.rootHalf(0, 0x80), (1n << 32n) | 0x6000n | 1n);
    expect(resolve(g, 0, 0).r).toBe(VtdFault.CONTEXT_TABLE_INV);
    expect(resolve(g, 0, 0x80).r).toBe(VtdFault.CONTEXT_TABLE_INV);
  });

  it('not present wins over reserved bits in either half', () => {
    const g = new Guest();
    g.poke(g.rootHalf(0, 0), 0xffen | (1n << 63n));
    g.poke(g.rootHalf(0, 0x80), 0xffen | (1n << 63n) | 0x5000n | 1n);
    expect(resolve(g, 0, 0).r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(resolve(g, 0, 0x80).r).toBe(VtdFault.ROOT_ENTRY_RSVD);
  });

  for (const [what, bit] of [
    ['bit 1', 1n],
    ['bit 11', 11n],
    ['bit 48 (HAW 48)', 48n],
    ['bit 63', 63n],
  ] as const) {
    for (const [half, other] of [
      ['lower', 'upper'],
      ['upper', 'lower'],
    ] as const) {
      it(`root reserved ${what} in the ${half} half: 0xA for devfns of both halves, nothing read`, () => {
        const g = new Guest();
        g.device(5, 0);
        g.device(5, 0x80);
        const at = g.rootHalf(5, half === 'lower' ? 0 : 0x80);
        g.poke(at, g.peek(at) | (1n << bit));
        for (const devfn of [0, 0x80]) {
          const x = resolve(g, 5, devfn);
          expect(outcome(x), `${other} devfn ${devfn}`).toEqual([VtdFault.ROOT_ENTRY_RSVD, false, false]);
          expect(x.ce.read).toBe(false);
        }
      });
    }
  }

  it('a non-present half is still checked for reserved bits when the other half is used', () => {
    const g = new Guest();
    g.device(5, 0);
    g.poke(g.rootHalf(5, 0x80), 0x800n);
    expect(resolve(g, 5, 0).r).toBe(VtdFault.ROOT_ENTRY_RSVD);
    g.poke(g.rootHalf(5, 0x80), 0xfffn << 48n);
    expect(resolve(g, 5, 0).r).toBe(VtdFault.ROOT_ENTRY_RSVD);
    g.poke(g.rootHalf(5, 0x80), 0xffff_f000n | (0xffffn << 32n));
    expect(resolve(g, 5, 0).r).toBe(0);
  });

  it('address bits below the host width are not reserved (HAW 39: bit 38 ok, bit 39 reserved)', () => {
    const g = new Guest();
    const haw39: ScalableRules = { ...SM, hawHiMask: 0x7f, sagaw: 0x2 };
    g.poke(g.rootHalf(0, 0), (1n << 38n) | 0x5000n | 1n);
    g.poke(g.rootHalf(0, 0x80), (1n << 38n) | 0x5000n | 1n);
    expect(resolve(g, 0, 0, 0, haw39).r).toBe(VtdFault.CONTEXT_TABLE_INV);
    expect(resolve(g, 0, 0x80, 0, haw39).r).toBe(VtdFault.CONTEXT_TABLE_INV);
    g.poke(g.rootHalf(0, 0x80), (1n << 39n) | 0x5000n | 1n);
    expect(resolve(g, 0, 0, 0, haw39).r).toBe(VtdFault.ROOT_ENTRY_RSVD);
    expect(resolve(g, 0, 0, 0, SM).r).toBe(VtdFault.CONTEXT_TABLE_INV);
  });
});

describe('context entry', () => {
  it('an unreadable context table: 0x9, the entry not read', () => {
    const g = new Guest();
    g.poke(g.rootHalf(1, 0x90), BigInt(HOLE) | 1n);
    const x = resolve(g, 1, 0x90);
    expect(outcome(x)).toEqual([VtdFault.CONTEXT_TABLE_INV, false, false]);
    expect(x.ce.read).toBe(false);
  });

  for (const bytes of [8, 16, 24]) {
    it(`a context entry with only ${bytes} of its 32 bytes readable: 0x9`, () => {
      const g = new Guest();
      ramAt4G(g, bytes);
      g.poke(g.rootHalf(0, 0), (1n << 32n) | 1n);
      const x = resolve(g, 0, 0);
      expect(outcome(x)).toEqual([VtdFault.CONTEXT_TABLE_INV, false, false]);
      expect(x.ce.read).toBe(false);
    });
  }

  it('a context entry of exactly 32 readable bytes is read', () => {
    const g = new Guest();
    ramAt4G(g, 32);
    g.poke(g.rootHalf(0, 0), (1n << 32n) | 1n);
    const x = resolve(g, 0, 0);
    expect(x.r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(x.ce.read).toBe(true);
  });

  it('context not present: 0x2, read, its FPD suppresses it', () => {
    const g = new Guest();
    g.setCtx(0, 8, 0x5000n);
    const x = resolve(g, 0, 8);
    expect(outcome(x)).toEqual([VtdFault.CONTEXT_ENTRY_P, false, false]);
    expect(x.ce.read).toBe(true);
    g.setCtx(0, 8, 0x5000n | 2n);
    expect(outcome(resolve(g, 0, 8))).toEqual([VtdFault.CONTEXT_ENTRY_P, true, true]);
    // Not present wins over reserved bits everywhere.
    g.setCtx(0, 8, 0x1e0n | (1n << 63n), ~0n & 0xffff_ffff_ffff_ffffn, 1n, 1n);
    expect(resolve(g, 0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_P);
  });

  const RSVD: [string, number, bigint][] = [
    ['val0 bit 5', 0, 1n << 5n],
    ['val0 bit 8', 0, 1n << 8n],
    ['val0 bit 48 (HAW 48)', 0, 1n << 48n],
    ['val0 bit 63', 0, 1n << 63n],
    ['val1 bit 21', 1, 1n << 21n],
    ['val1 bit 31', 1, 1n << 31n],
    ['val1 bit 32', 1, 1n << 32n],
    ['val1 bit 63', 1, 1n << 63n],
    ['val2 bit 0', 2, 1n],
    ['val2 bit 31', 2, 1n << 31n],
    ['val2 bit 32', 2, 1n << 32n],
    ['val2 bit 63', 2, 1n << 63n],
    ['val3 bit 0', 3, 1n],
    ['val3 bit 31', 3, 1n << 31n],
    ['val3 bit 32', 3, 1n << 32n],
    ['val3 bit 63', 3, 1n << 63n],
  ];
  for (const [what, qw, bit] of RSVD) {
    it(`context reserved ${what}: 0xB, read, not suppressed by its FPD`, () => {
      const g = new Guest();
      const dir = g.device(0, 8, { fpd: true });
      const at = g.setCtx(0, 8, BigInt(dir) | 3n);
      g.poke(at + qw * 8, g.peek(at + qw * 8) | bit);
      const x = resolve(g, 0, 8);
      expect(outcome(x)).toEqual([VtdFault.CONTEXT_ENTRY_RSVD, true, false]);
      expect(x.ce.read).toBe(true);
    });
  }

  it('accepted: DTE, PASIDE, PRE, PDTS (val0 bits 4:2, 11:9) and RID_PASID/RID_PRIV (val1 bits 20:0)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setCtx(0, 8, BigInt(dir) | 0xe1cn | 1n, 0x1f_ffffn);
    const x = resolve(g, 0, 8);
    expect(x.r).toBe(0);
    expect(x.cfg.pre).toBe(true);
    expect(x.ce.val1).toEqual({ lo: 0x1f_ffff, hi: 0 });
  });

  it('directory address bits below the host width are not reserved (HAW 48: bit 47 reaches the directory read)', () => {
    const g = new Guest();
    g.setCtx(0, 8, (1n << 47n) | 1n);
    expect(resolve(g, 0, 8).r).toBe(VtdFault.PASID_DIR_ACCESS_ERR);
    const haw39: ScalableRules = { ...SM, hawHiMask: 0x7f };
    expect(resolve(g, 0, 8, 0, haw39).r).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
    g.setCtx(0, 8, (1n << 38n) | 1n);
    expect(resolve(g, 0, 8, 0, haw39).r).toBe(VtdFault.PASID_DIR_ACCESS_ERR);
  });

  it('reserved bits are checked before PASID 0', () => {
    const g = new Guest();
    g.setCtx(0, 8, BigInt(HOLE) | 0x20n | 1n);
    expect(resolve(g, 0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
    g.setCtx(0, 8, BigInt(HOLE) | 1n);
    expect(resolve(g, 0, 8).r).toBe(VtdFault.PASID_DIR_ACCESS_ERR);
  });

  it('lookupScalableContext clears the read flag of a reused entry', () => {
    const g = new Guest();
    g.device(0, 8);
    const ce = newScalableContext();
    expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
    expect(ce.read).toBe(true);
    expect(lookupScalableContext(g.mem, g.root, 9, 8, SM, ce)).toBe(VtdFault.ROOT_ENTRY_P);
    expect(ce.read).toBe(false);
  });
});

describe('PASID 0 during the context fetch', () => {
  /** A device whose PASID 5 entry is valid (DID 5), so faults come from PASID 0 alone. */
  function withPasid5(opts: { fpd?: boolean } = {}): { g: Guest; dir: number } {
    const g = new Guest();
    const dir = g.device(0, 8, opts);
    g.setPe(dir, 5, q0(), 5n);
    return { g, dir };
  }

  it('each PASID 0 fault fails the context fetch, for requests with any PASID', () => {
    const cases: [string, (g: Guest, dir: number) => void, number][] = [
      ['directory unreadable', (g) => g.setCtx(0, 8, BigInt(HOLE) | 1n), VtdFault.PASID_DIR_ACCESS_ERR],
      ['directory entry not present', (g, dir) => g.poke(dir, g.peek(dir) & ~1n), VtdFault.PASID_DIR_ENTRY_P],
      ['PASID table unreadable', (g, dir) => g.poke(dir, BigInt(HOLE) | 1n), VtdFault.PASID_TABLE_ACCESS_ERR],
      ['PGTT 0', (g, dir) => g.setPe(dir, 0, q0({ pgtt: 0 }), 1n), VtdFault.PASID_TABLE_ENTRY_INV],
      ['AW 3 not in SAGAW', (g, dir) => g.setPe(dir, 0, q0({ aw: 3 }), 1n), VtdFault.PASID_TABLE_ENTRY_INV],
      ['not present', (g, dir) => g.setPe(dir, 0, q0({ p: false }), 1n), VtdFault.PASID_ENTRY_P],
    ];
    for (const [what, breakIt, reason] of cases) {
      const { g, dir } = withPasid5();
      expect(resolve(g, 0, 8, 5).r, what).toBe(0);
      breakIt(g, dir);
      const ce = newScalableContext();
      expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce), what).toBe(reason);
      expect(ce.read).toBe(true);
      for (const pasid of [0, 5]) {
        const x = resolve(g, 0, 8, pasid);
        expect(outcome(x), `${what}, PASID ${pasid}`).toEqual([reason, false, false]);
        expect(x.cfg.pasid).toBe(pasid);
        expect(x.cfg.peRead).toBe(false);
        expect(x.cfg.did).toBe(0);
      }
    }
  });

  it('only the context entry\'s FPD applies: directory and PASID-entry FPD bits do not', () => {
    const { g, dir } = withPasid5();
    // Directory entry 0 not present, FPD set.
    g.poke(dir, (g.peek(dir) & ~1n) | 2n);
    expect(outcome(resolve(g, 0, 8, 5))).toEqual([VtdFault.PASID_DIR_ENTRY_P, false, false]);
    // PASID 0's entry not present, FPD set.
    g.poke(dir, g.peek(dir) | 1n);
    g.poke(dir, g.peek(dir) & ~2n);
    g.setPe(dir, 0, q0({ p: false, fpd: true }), 1n);
    expect(outcome(resolve(g, 0, 8, 0))).toEqual([VtdFault.PASID_ENTRY_P, false, false]);
    expect(outcome(resolve(g, 0, 8, 5))).toEqual([VtdFault.PASID_ENTRY_P, false, false]);
    // With the context entry's FPD, the qualified ones are suppressed.
    const f = withPasid5({ fpd: true });
    f.g.setPe(f.dir, 0, q0({ p: false }), 1n);
    expect(outcome(resolve(f.g, 0, 8, 5))).toEqual([VtdFault.PASID_ENTRY_P, true, true]);
    f.g.setPe(f.dir, 0, q0({ pgtt: 7 }), 1n);
    expect(outcome(resolve(f.g, 0, 8, 5))).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, true, true]);
    f.g.poke(f.dir, f.g.peek(f.dir) & ~1n);
    expect(outcome(resolve(f.g, 0, 8, 5))).toEqual([VtdFault.PASID_DIR_ENTRY_P, true, true]);
    f.g.poke(f.dir, BigInt(HOLE) | 1n);
    expect(outcome(resolve(f.g, 0, 8, 5))).toEqual([VtdFault.PASID_TABLE_ACCESS_ERR, true, false]);
    f.g.setCtx(0, 8, BigInt(HOLE) | 3n);
    expect(outcome(resolve(f.g, 0, 8, 5))).toEqual([VtdFault.PASID_DIR_ACCESS_ERR, true, false]);
  });

  it('RID_PASID is ignored: requests without a PASID use PASID 0, whatever val1 names', () => {
    const { g, dir } = withPasid5();
    g.setCtx(0, 8, BigInt(dir) | 1n, 5n);
    const x = resolve(g, 0, 8, 0);
    expect([x.r, x.cfg.did, x.cfg.pasid]).toEqual([0, 1, 0]);
    // PASID 0 broken, the entry RID_PASID names valid: the fetch fails.
    g.setPe(dir, 0, q0({ p: false }), 1n);
    expect(resolve(g, 0, 8, 0).r).toBe(VtdFault.PASID_ENTRY_P);
    expect(resolve(g, 0, 8, 5).r).toBe(VtdFault.PASID_ENTRY_P);
  });

  it('PASID 0 is validated with the rules given (PGTT first stage needs FSTS)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 0, q0({ pgtt: Pgtt.FirstStage }), 1n, q2());
    g.setPe(dir, 1, q0(), 2n);
    // SSTS only: PASID 0 fails the context fetch (nothing of PASID 1 read).
    const ss = resolve(g, 0, 8, 1, SM);
    expect([ss.r, ss.cfg.peRead]).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, false]);
    // FSTS only: the fetch passes, PASID 1 (second stage) is refused.
    const fs = resolve(g, 0, 8, 1, SM_FS);
    expect([fs.r, fs.cfg.peRead, fs.cfg.did]).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, true, 2]);
    expect(resolve(g, 0, 8, 1, { ...SM, fsts: true }).r).toBe(0);
  });
});

describe('PASID directory and table indexing', () => {
  it('pasid >> 6 picks the directory entry, pasid & 0x3f the 64-byte table entry (63/64, 0xfffff)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    const pasids = [1, 63, 64, 65, 127, 128, 0xfffc0, 0xfffff, 0xfffbf, 0xfff80];
    pasids.forEach((p, i) => g.setPe(dir, p, q0(), BigInt(0x100 + i)));
    pasids.forEach((p, i) => {
      const x = resolve(g, 0, 8, p);
      expect([x.r, x.cfg.did, x.cfg.pasid], `PASID 0x${p.toString(16)}`).toEqual([0, 0x100 + i, p]);
    });
    expect(Number(g.peek(dir + 0x3fff * 8) & 1n)).toBe(1);
    const t = g.table(dir, 0xfffff);
    expect(g.peek(t + 63 * 64 + 8)).toBe(BigInt(0x100 + 7));
    // Unwritten entries of existing tables are all-zero (PGTT 0).
    for (const p of [2, 62, 66, 0xfffbe, 0xfff81]) expect(resolve(g, 0, 8, p).r).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
    expect(resolve(g, 0, 8, 192).r).toBe(VtdFault.PASID_DIR_ENTRY_P);
    expect(resolve(g, 0, 8, 0xfff7f).r).toBe(VtdFault.PASID_DIR_ENTRY_P);
  });

  it('the directory index keeps 14 bits, as QEMU\'s VTD_PASID_DIR_INDEX (a PASID above 20 bits wraps)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 0x41, q0(), 0x41n);
    g.setPe(dir, 0xfffff, q0(), 0xfffn);
    expect([resolve(g, 0, 8, 0x10_0041).r, resolve(g, 0, 8, 0x10_0041).cfg.did]).toEqual([0, 0x41]);
    expect(resolve(g, 0, 8, 0x1f_ffff).cfg.did).toBe(0xfff);
    expect(resolve(g, 0, 8, 0x10_0081).r).toBe(VtdFault.PASID_DIR_ENTRY_P);
  });

  it('PASIDs 0-63 share directory entry 0; PASID 64 needs entry 1', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 63, q0(), 63n);
    expect(resolve(g, 0, 8, 63).cfg.did).toBe(63);
    expect(resolve(g, 0, 8, 64).r).toBe(VtdFault.PASID_DIR_ENTRY_P);
    g.poke(dir + 8, BigInt(HOLE) | 1n);
    expect(resolve(g, 0, 8, 64).r).toBe(VtdFault.PASID_TABLE_ACCESS_ERR);
    expect(resolve(g, 0, 8, 63).r).toBe(0);
  });

  it('the directory and table addresses use their high dwords', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 64, q0(), 9n);
    g.poke(dir + 8, g.peek(dir + 8) | (1n << 32n));
    expect(resolve(g, 0, 8, 64).r).toBe(VtdFault.PASID_TABLE_ACCESS_ERR);
    ramAt4G(g, PAGE);
    g.poke(FOUR_G + 8, 0x5000n | 1n);
    g.poke(0x5000, q0());
    g.poke(0x5008, 0x77n);
    const ce = newScalableContext();
    const cfg = newPasidConfig();
    expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
    ce.val0.hi = 1;
    ce.val0.lo = 1;
    expect(resolvePasid(g.mem, ce, 64, SM, cfg)).toBe(0);
    expect(cfg.did).toBe(0x77);
  });

  it('the directory is read at its 4 KiB-aligned base (val0 bits 11:0 are not address)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.setPe(dir, 1, q0(), 0x42n);
    g.setCtx(0, 8, BigInt(dir) | 0xe1en | 1n);
    expect(resolve(g, 0, 8, 1).cfg.did).toBe(0x42);
    // Directory entry bits 11:2 are not address either.
    g.poke(dir, g.peek(dir) | 0xffcn);
    expect(resolve(g, 0, 8, 1).cfg.did).toBe(0x42);
  });
});

describe('resolvePasid: directory entry', () => {
  it('directory entry unreadable: 0x50, never suppressed, FPD from the context entry', () => {
    const g = new Guest();
    ramAt4G(g, 8);
    g.poke(FOUR_G, 0x5000n | 1n);
    g.poke(0x5000, q0());
    const ce = newScalableContext();
    const cfg = newPasidConfig();
    ce.val0.lo = 1;
    ce.val0.hi = 1;
    expect(resolvePasid(g.mem, ce, 0, SM, cfg)).toBe(0);
    expect(resolvePasid(g.mem, ce, 63, SM, cfg)).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
    expect([resolvePasid(g.mem, ce, 64, SM, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.PASID_DIR_ACCESS_ERR, false, false]);
    ce.val0.lo |= 2;
    expect([resolvePasid(g.mem, ce, 64, SM, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.PASID_DIR_ACCESS_ERR, true, false]);
    expect(cfg.peRead).toBe(false);
  });

  it('directory entry not present: 0x51, suppressed by the context or the directory entry FPD', () => {
    for (const [ctxFpd, dirFpd] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const g = new Guest();
      const dir = g.device(0, 8, { fpd: ctxFpd });
      g.poke(dir + 8, dirFpd ? 2n : 0n);
      const x = resolve(g, 0, 8, 64);
      const fpd = ctxFpd || dirFpd;
      expect(outcome(x), `ctx ${ctxFpd} dir ${dirFpd}`).toEqual([VtdFault.PASID_DIR_ENTRY_P, fpd, fpd]);
      expect(x.cfg.peRead).toBe(false);
    }
  });
});

describe('resolvePasid: PASID table entry', () => {
  it('a PASID table entry not fully readable: 0x58 (all 64 bytes are read), never suppressed', () => {
    for (const bytes of [8, 24, 56]) {
      const g = new Guest();
      const dir = g.device(0, 8);
      ramAt4G(g, bytes);
      g.poke(dir + 8, (1n << 32n) | 3n);
      g.poke(FOUR_G, q0({ fpd: true }));
      const x = resolve(g, 0, 8, 64);
      expect(outcome(x), `${bytes} bytes`).toEqual([VtdFault.PASID_TABLE_ACCESS_ERR, true, false]);
      expect(x.cfg.peRead).toBe(false);
    }
    const g = new Guest();
    const dir = g.device(0, 8);
    ramAt4G(g, 64);
    g.poke(dir + 8, (1n << 32n) | 1n);
    g.poke(FOUR_G, q0());
    g.poke(FOUR_G + 8, 3n);
    const x = resolve(g, 0, 8, 64);
    expect([x.r, x.cfg.did, x.cfg.peRead]).toEqual([0, 3, true]);
  });

  it('an all-zero PASID entry reports 0x5B (PGTT before present)', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    g.table(dir, 1);
    const x = resolve(g, 0, 8, 1);
    expect(outcome(x)).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, false, false]);
    expect(x.cfg.peRead).toBe(true);
    for (const rules of [SM, SM_FS, ALL]) expect(resolve(g, 0, 8, 1, rules).r).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
  });

  // [rules, PGTTs accepted]
  const MATRIX: [string, ScalableRules, number[]][] = [
    ['scalable-mode=on (SSTS, PT)', SM, [2, 4]],
    ['fsts=on (FSTS, PT)', SM_FS, [1, 4]],
    ['SSTS without PT', { ...SM, pt: false }, [2]],
    ['FSTS without PT', { ...SM_FS, pt: false }, [1]],
    ['PT only', { ...SM, ssts: false }, [4]],
    ['nothing', { ...SM, ssts: false, pt: false }, []],
    ['FSTS and SSTS', { ...SM, fsts: true }, [1, 2, 4]],
    ['x-nested', { ...SM, fsts: true, nested: true }, [1, 2, 3, 4]],
    ['x-nested alone', { ...SM, ssts: false, pt: false, nested: true }, [3]],
  ];
  for (const [what, rules, accepted] of MATRIX) {
    it(`PGTT with ${what}: ${JSON.stringify(accepted)} accepted, the rest 0x5B`, () => {
      const g = new Guest();
      const dir = g.device(0, 8);
      const ce = newScalableContext();
      const cfg = newPasidConfig();
      expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
      for (let pgtt = 0; pgtt < 8; pgtt++) {
        g.setPe(dir, 1, q0({ pgtt, aw: 2 }), 1n, q2({ fspm: 0 }));
        expect(resolvePasid(g.mem, ce, 1, rules, cfg), `PGTT ${pgtt}`).toBe(accepted.includes(pgtt) ? 0 : VtdFault.PASID_TABLE_ENTRY_INV);
        expect([cfg.pgtt, cfg.peRead]).toEqual([pgtt, true]);
      }
    });
  }

  it('rules from QEMU 11.1\'s ECAP values (reference table): SSTS bit 46, FSTS bit 47, PT bit 6', () => {
    const fromEcap = (ecap: bigint): ScalableRules => ({
      ...SM,
      ssts: ((ecap >> 46n) & 1n) === 1n,
      fsts: ((ecap >> 47n) & 1n) === 1n,
      pt: ((ecap >> 6n) & 1n) === 1n,
    });
    const g = new Guest();
    const dir = g.device(0, 8);
    const accepted = (rules: ScalableRules): number[] => {
      const out: number[] = [];
      const ce = newScalableContext();
      const cfg = newPasidConfig();
      expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
      for (let pgtt = 0; pgtt < 8; pgtt++) {
        g.setPe(dir, 1, q0({ pgtt }), 1n, q2());
        if (resolvePasid(g.mem, ce, 1, rules, cfg) === 0) out.push(pgtt);
      }
      return out;
    };
    expect(accepted(fromEcap(0x0000_4800_80f0_0f4an))).toEqual([2, 4]);
    expect(accepted(fromEcap(0x0000_8800_00f0_0f4an))).toEqual([1, 4]);
    expect(accepted(fromEcap(0x0000_8d9a_20f0_0f4en))).toEqual([1, 4]);
  });

  for (const [sagaw, accepted] of [
    [0x2, [1]],
    [0x6, [1, 2]],
    [0xe, [1, 2, 3]],
    [0x1f, [0, 1, 2, 3, 4]],
    [0, []],
  ] as const) {
    it(`second stage with SAGAW 0x${sagaw.toString(16)}: AW ${JSON.stringify(accepted)} accepted, other AW 0x5B`, () => {
      const g = new Guest();
      const dir = g.device(0, 8);
      const ce = newScalableContext();
      const cfg = newPasidConfig();
      expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
      for (let aw = 0; aw < 8; aw++) {
        for (const pgtt of [Pgtt.SecondStage, Pgtt.Nested]) {
          g.setPe(dir, 1, q0({ aw, pgtt, p: true }), 1n, q2());
          const ok = (accepted as readonly number[]).includes(aw);
          expect(resolvePasid(g.mem, ce, 1, { ...ALL, sagaw }, cfg), `AW ${aw} PGTT ${pgtt}`).toBe(
            ok ? 0 : VtdFault.PASID_TABLE_ENTRY_INV,
          );
          expect([cfg.aw, cfg.ssLevels]).toEqual([aw, aw + 2]);
        }
        // First stage and pass-through ignore AW.
        for (const pgtt of [Pgtt.FirstStage, Pgtt.PassThrough]) {
          g.setPe(dir, 1, q0({ aw, pgtt }), 1n, q2());
          expect(resolvePasid(g.mem, ce, 1, { ...ALL, sagaw }, cfg), `AW ${aw} PGTT ${pgtt}`).toBe(0);
        }
      }
    });
  }

  for (const fs5lp of [false, true]) {
    it(`first-stage levels ${fs5lp ? 'with' : 'without'} x-fs5lp: FSPM 0${fs5lp ? ' and 1' : ''} accepted, other FSPM 0x5B`, () => {
      const g = new Guest();
      const dir = g.device(0, 8);
      const ce = newScalableContext();
      const cfg = newPasidConfig();
      expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
      const rules = { ...ALL, fs5lp };
      for (let fspm = 0; fspm < 4; fspm++) {
        const ok = fspm === 0 || (fs5lp && fspm === 1);
        for (const pgtt of [Pgtt.FirstStage, Pgtt.Nested]) {
          g.setPe(dir, 1, q0({ pgtt }), 1n, q2({ fspm }));
          expect(resolvePasid(g.mem, ce, 1, rules, cfg), `FSPM ${fspm} PGTT ${pgtt}`).toBe(ok ? 0 : VtdFault.PASID_TABLE_ENTRY_INV);
          expect(cfg.fsLevels).toBe(4 + fspm);
        }
        // Second stage and pass-through ignore FSPM.
        for (const pgtt of [Pgtt.SecondStage, Pgtt.PassThrough]) {
          g.setPe(dir, 1, q0({ pgtt }), 1n, q2({ fspm }));
          expect(resolvePasid(g.mem, ce, 1, rules, cfg), `FSPM ${fspm} PGTT ${pgtt}`).toBe(0);
        }
      }
    });
  }

  it('check order: PGTT, then second-stage level, then first-stage level, then present', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    const at = (e0: bigint, e2 = 0n) => {
      g.setPe(dir, 1, e0, 1n, e2);
      return outcome(resolve(g, 0, 8, 1, SM));
    };
    const inv = [VtdFault.PASID_TABLE_ENTRY_INV, false, false];
    expect(at(q0({ pgtt: 0, p: false }))).toEqual(inv);
    expect(at(q0({ pgtt: Pgtt.FirstStage, p: false }))).toEqual(inv);
    expect(at(q0({ aw: 0, p: false }))).toEqual(inv);
    expect(at(q0({ aw: 3, p: false, fpd: true }))).toEqual(inv);
    expect(at(q0({ p: false }))).toEqual([VtdFault.PASID_ENTRY_P, false, false]);
    expect(at(q0({ p: false, fpd: true }))).toEqual([VtdFault.PASID_ENTRY_P, true, true]);
    expect(at(q0({ pgtt: Pgtt.PassThrough, aw: 7, p: false }), q2({ fspm: 3 }))).toEqual([VtdFault.PASID_ENTRY_P, false, false]);
    g.setPe(dir, 0, q0({ pgtt: Pgtt.FirstStage }), 1n, q2());
    const fs = (e0: bigint, e2: bigint) => {
      g.setPe(dir, 1, e0, 1n, e2);
      return resolve(g, 0, 8, 1, SM_FS).r;
    };
    expect(fs(q0({ pgtt: Pgtt.FirstStage, p: false }), q2({ fspm: 2 }))).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
    expect(fs(q0({ pgtt: Pgtt.FirstStage, p: false }), q2())).toBe(VtdFault.PASID_ENTRY_P);
  });

  it('FPD: 0x5B ignores the PASID entry\'s own FPD; 0x59 and success take context | directory | entry', () => {
    for (let bits = 0; bits < 8; bits++) {
      const [ctxFpd, dirFpd, peFpd] = [(bits & 1) !== 0, (bits & 2) !== 0, (bits & 4) !== 0];
      const g = new Guest();
      const dir = g.device(0, 8, { fpd: ctxFpd });
      g.table(dir, 64, dirFpd);
      const tag = `ctx ${ctxFpd} dir ${dirFpd} pe ${peFpd}`;
      g.setPe(dir, 64, q0({ pgtt: 5, fpd: peFpd }), 1n);
      const early = ctxFpd || dirFpd;
      expect(outcome(resolve(g, 0, 8, 64)), tag).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, early, early]);
      g.setPe(dir, 64, q0({ aw: 4, fpd: peFpd }), 1n);
      expect(outcome(resolve(g, 0, 8, 64)), tag).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, early, early]);
      const all = early || peFpd;
      g.setPe(dir, 64, q0({ p: false, fpd: peFpd }), 1n);
      expect(outcome(resolve(g, 0, 8, 64)), tag).toEqual([VtdFault.PASID_ENTRY_P, all, all]);
      g.setPe(dir, 64, q0({ fpd: peFpd }), 1n);
      expect(outcome(resolve(g, 0, 8, 64)), tag).toEqual([0, all, false]);
    }
  });

  it('PASID 0 after a cached context fetch: its directory and entry FPD bits apply like any PASID\'s', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    const ce = newScalableContext();
    const cfg = newPasidConfig();
    expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
    g.setPe(dir, 0, q0({ p: false, fpd: true }), 1n);
    expect([resolvePasid(g.mem, ce, 0, SM, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.PASID_ENTRY_P, true, true]);
    g.poke(dir, (g.peek(dir) & ~1n) | 2n);
    expect([resolvePasid(g.mem, ce, 0, SM, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.PASID_DIR_ENTRY_P, true, true]);
  });

  it('resolvePasid resets a reused config, whatever it held', () => {
    const g = new Guest();
    const dir = g.device(0, 8, { pre: true });
    g.setPe(dir, 0, q0({ fpd: true }), 0x55n, q2({ sre: true, wpe: true, eafe: true, fspm: 1 }));
    const x = resolve(g, 0, 8, 0, ALL);
    expect(x.r).toBe(0);
    expect(x.cfg).toMatchObject({ did: 0x55, fpd: true, sre: true, pre: true, peRead: true });
    g.setPe(dir, 64, q0(), 1n);
    g.poke(dir + 8, 0n);
    expect(resolvePasid(g.mem, x.ce, 64, ALL, x.cfg)).toBe(VtdFault.PASID_DIR_ENTRY_P);
    expect(x.cfg).toEqual({ ...newPasidConfig(), pasid: 64, pre: true });
    // A context-stage fault resets it too.
    const y = resolve(g, 0, 8, 0, ALL);
    expect(y.r).toBe(0);
    expect(resolveScalable(g.mem, g.root, 7, 8, 3, ALL, y.ce, y.cfg)).toBe(VtdFault.ROOT_ENTRY_P);
    expect(y.cfg).toEqual({ ...newPasidConfig(), pasid: 3 });
  });

  it('a reused context entry with FPD set lends no FPD to a later fault found before any context entry is read', () => {
    const g = new Guest();
    const dir = g.device(0, 8, { fpd: true });
    g.setPe(dir, 0, q0({ p: false }), 1n);
    const ce = newScalableContext();
    const cfg = newPasidConfig();
    expect([resolveScalable(g.mem, g.root, 0, 8, 0, SM, ce, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.PASID_ENTRY_P, true, true]);
    expect(smCtxFpd(ce)).toBe(true);
    // Context-entry P is qualified: a stale FPD would suppress it.
    g.poke(g.rootHalf(0, 0x80), BigInt(HOLE) | 1n);
    expect([resolveScalable(g.mem, g.root, 0, 0x80, 0, SM, ce, cfg), cfg.fpd, cfg.suppressed]).toEqual([
      VtdFault.CONTEXT_TABLE_INV,
      false,
      false,
    ]);
    expect([resolveScalable(g.mem, g.root, 9, 0, 0, SM, ce, cfg), cfg.fpd, cfg.suppressed]).toEqual([VtdFault.ROOT_ENTRY_P, false, false]);
    expect(smCtxFpd(ce)).toBe(true);
    expect(ce.read).toBe(false);
  });
});

describe('property: random PASID entries against the rules', () => {
  it('matches the order PGTT -> SS level -> FS level -> present, with the FPD rule (seeded)', () => {
    const seed = 0x5ca1ab1e;
    const rng = new Rng(seed);
    const g = new Guest();
    const dir = g.device(0, 8);
    const ce = newScalableContext();
    const cfg = newPasidConfig();
    expect(lookupScalableContext(g.mem, g.root, 0, 8, SM, ce)).toBe(0);
    for (let i = 0; i < 400; i++) {
      const rules: ScalableRules = {
        hawHiMask: 0xffff,
        sagaw: rng.int(32),
        fsts: rng.chance(0.5),
        ssts: rng.chance(0.5),
        pt: rng.chance(0.5),
        nested: rng.chance(0.5),
        fs5lp: rng.chance(0.5),
      };
      const pasid = rng.int(0x10_0000);
      const dirFpd = rng.chance(0.3);
      const lo0 = rng.u32();
      const lo2 = rng.u32();
      const did = rng.bits(64);
      g.table(dir, pasid, dirFpd);
      g.setPe(dir, pasid, BigInt(lo0) | (rng.bits(32) << 32n), did, BigInt(lo2) | (rng.bits(32) << 32n));
      const pgtt = (lo0 >>> 6) & 7;
      const aw = (lo0 >>> 2) & 7;
      const fspm = (lo2 >>> 2) & 3;
      const legal = [false, rules.fsts, rules.ssts, rules.nested, rules.pt, false, false, false][pgtt]!;
      const ssBad = (pgtt === 2 || pgtt === 3) && ((rules.sagaw >> aw) & 1) === 0;
      const fsBad = (pgtt === 1 || pgtt === 3) && !(fspm === 0 || (fspm === 1 && rules.fs5lp));
      const peFpd = (lo0 & 2) !== 0;
      const ctx = `seed 0x${seed.toString(16)} iteration ${i}`;
      const r = resolvePasid(g.mem, ce, pasid, rules, cfg);
      if (!legal || ssBad || fsBad) {
        expect([r, cfg.fpd, cfg.suppressed], ctx).toEqual([VtdFault.PASID_TABLE_ENTRY_INV, dirFpd, dirFpd]);
      } else if ((lo0 & 1) === 0) {
        expect([r, cfg.fpd, cfg.suppressed], ctx).toEqual([VtdFault.PASID_ENTRY_P, dirFpd || peFpd, dirFpd || peFpd]);
      } else {
        expect([r, cfg.fpd, cfg.suppressed], ctx).toEqual([0, dirFpd || peFpd, false]);
      }
      expect([cfg.pgtt, cfg.aw, cfg.fsLevels, cfg.pasid, cfg.did], ctx).toEqual([pgtt, aw, 4 + fspm, pasid, Number(did & 0xffffn)]);
    }
  });
});

describe('copyPasidConfig', () => {
  it('copies every field', () => {
    const from = newPasidConfig();
    let n = 1;
    for (const k of Object.keys(from) as (keyof typeof from)[]) {
      (from as unknown as Record<string, number | boolean>)[k] = typeof from[k] === 'boolean' ? true : n++;
    }
    const to = newPasidConfig();
    copyPasidConfig(from, to);
    expect(to).toEqual(from);
  });
});

describe('pasidEntriesRam (what resolve.ts may memoize)', () => {
  /** Serves the page at `page` from a device that mirrors its current RAM contents (reads only). */
  function mirrorAsMmio(g: Guest, page: number): void {
    const words = new Map<number, number>();
    for (let off = 0; off < PAGE; off += 4) words.set(off, g.mem.read(page + off, 4));
    g.system.add(new MmioRegion(`mirror ${page.toString(16)}`, PAGE, { read: (off) => words.get(off) ?? 0, write: () => {} }), page, 1);
  }

  it('names the RAM after a resolution whose directory and PASID entries are both RAM', () => {
    const g = new Guest();
    g.device(0, 8);
    expect(resolve(g, 0, 8).r).toBe(0);
    expect(pasidEntriesRam()).not.toBeNull();
  });

  it('is null when the PASID table is served by MMIO', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    mirrorAsMmio(g, g.table(dir, 0));
    expect(resolve(g, 0, 8).r).toBe(0);
    expect(pasidEntriesRam()).toBeNull();
  });

  it('is null when only the PASID directory is served by MMIO', () => {
    const g = new Guest();
    const dir = g.device(0, 8);
    mirrorAsMmio(g, dir);
    expect(resolve(g, 0, 8).r).toBe(0);
    expect(pasidEntriesRam()).toBeNull();
    // Back to a RAM-only resolution.
    g.device(1, 8);
    expect(resolve(g, 1, 8).r).toBe(0);
    expect(pasidEntriesRam()).not.toBeNull();
  });
});
