/**
 * First-stage page walk (VT-d spec 3.6 / 9.7, QEMU 11.1 vtd_iova_to_fspte):
 * the canonical check from the PASID entry's AW, 4- and 5-level tables,
 * 4 KiB / 2 MiB / 1 GiB leaves, reserved bits per level, US and RW at every
 * level in QEMU's check order, A/D write-back (and its failure), the
 * interrupt window in scalable mode, nested translation through a second
 * stage, and a seeded property test against a small bigint reference model.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { IommuPerm } from '../../memory/iommu.js';
import { createRam } from '../../memory/ram-backend.js';
import { ContainerRegion, MmioRegion, RamRegion } from '../../memory/region.js';
import { Rng } from '../../../test/support/prng.js';
import { isQualifiedFault, VtdFault } from './fault-reasons.js';
import {
  FS_WIDTH_BASE,
  FS_WIDTH_PER_AW,
  FsLevels,
  FsPte,
  FsPteHi,
  FsWalkRules,
  walkFirstStage,
  type NestedSecondStage,
} from './first-stage-walk.js';
import { LEVEL_SIZE, newWalkResult, type WalkResult } from './page-walk.js';

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PAGE = 4 * KiB;
const RAM_SIZE = 64 * MiB;
/** First table page of the bump allocator. */
const TABLES = 16 * MiB;
/** Guest-physical address with nothing behind it. */
const HOLE = 0x8000_0000;
/** An output address in RAM (never read by the walk). */
const DATA = 0x200_0000;

const P = 0x1n;
const RW = 0x2n;
const US = 0x4n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const PAT_LARGE = 0x1000n;
const XD = 1n << 63n;
/** A usable entry: present, user, writable. */
const PUW = P | US | RW;
const PU = P | US;
const ALL_ONES = 0xffff_ffff_ffff_ffffn;
/** Bits a walk never looks at: PWT, PCD, G, 11:9, 62:52 and XD. */
const HARMLESS = 0x18n | 0x100n | 0xe00n | 0x7ff0_0000_0000_0000n | XD;

/** Default AW field for a walker: the widest the unit allows. */
const awFor = (awBits: number) => (awBits === 39 ? 1 : awBits === 48 ? 2 : 3);

/** Guest RAM at 0, nothing else, in a 2^40 system space. */
class Guest {
  readonly system = new ContainerRegion('system', 2 ** 40);
  readonly mem: AddressSpace;
  private next = TABLES;
  constructor() {
    const ram = createRam(RAM_SIZE, 'ts');
    this.system.add(new RamRegion('ram', RAM_SIZE, ram), 0);
    this.mem = new AddressSpace('memory', this.system);
  }
  /** A zeroed page for tables. */
  allocPage(): number {
    const p = this.next;
    this.next += PAGE;
    this.mem.fill(p, PAGE, 0);
    return p;
  }
  /** Restarts the allocator (property test: one tree per trial). */
  reset(): void {
    this.next = TABLES;
  }
  peek(addr: number): bigint {
    return this.mem.read64(addr);
  }
  poke(addr: number, v: bigint): void {
    this.mem.write64(addr, v);
  }
}

interface Outcome {
  r: number;
  translated: number;
  level: number;
  perm: number;
}

interface Walker {
  g: Guest;
  rules: FsWalkRules;
  /** The top table (host address). */
  top: number;
  levels: number;
  walk(iova: number, isWrite?: boolean, aw?: number, nested?: NestedSecondStage | null): Outcome;
  /** Maps iova -> phys with a leaf at `leafLevel`; table entries get `tableFlags` (fresh tables only). */
  map(iova: number, phys: number, flags?: bigint, leafLevel?: number, tableFlags?: bigint): void;
  /** Host address of the entry used for `iova` at `level` (after map). */
  at(iova: number, level: number): number;
  get(iova: number, level: number): bigint;
  put(iova: number, level: number, v: bigint): void;
  set(iova: number, level: number, bits: bigint): void;
  clear(iova: number, level: number, bits: bigint): void;
}

const indexAt = (iova: number, level: number) => Math.floor(iova / LEVEL_SIZE[level]!) % 512;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/**
 * A first-stage table tree in guest RAM.  With `bias`, table pointers (and
 * the top) are stored as host + bias: guest-physical addresses a nested
 * second stage translates back.
 */
function walker(awBits = 48, levels = 4, bias = 0): Walker {
  const g = new Guest();
  const rules = new FsWalkRules(awBits);
  const top = g.allocPage();
  const w: Walker = {
    g,
    rules,
    top,
    levels,
    walk(iova, isWrite = false, aw = awFor(awBits), nested = null) {
      const out = newWalkResult();
      const r = walkFirstStage(g.mem, rules, top + bias, levels, aw, iova, isWrite, out, nested);
      // fsWrite has its own test below.
      return { r, translated: out.translated, level: out.level, perm: out.perm };
    },
    map(iova, phys, flags = PUW, leafLevel = 1, tableFlags = PUW) {
      let table = top;
      for (let level = levels; level > leafLevel; level--) {
        const e = table + indexAt(iova, level) * 8;
        let v = g.peek(e);
        if ((v & P) === 0n) {
          v = BigInt(g.allocPage() + bias) | tableFlags;
          g.poke(e, v);
        }
        table = Number(v & ADDR_MASK) - bias;
      }
      g.poke(table + indexAt(iova, leafLevel) * 8, BigInt(phys) | flags | (leafLevel > 1 ? PS : 0n));
    },
    at(iova, level) {
      let table = top;
      for (let l = levels; l > level; l--) table = Number(g.peek(table + indexAt(iova, l) * 8) & ADDR_MASK) - bias;
      return table + indexAt(iova, level) * 8;
    },
    get: (iova, level) => g.peek(w.at(iova, level)),
    put: (iova, level, v) => g.poke(w.at(iova, level), v),
    set: (iova, level, bits) => w.put(iova, level, w.get(iova, level) | bits),
    clear: (iova, level, bits) => w.put(iova, level, w.get(iova, level) & ~bits),
  };
  return w;
}

const ok = (translated: number, level = 1, perm: IommuPerm = IommuPerm.ReadWrite): Outcome => ({ r: 0, translated, level, perm });
const fault = (r: number) => expect.objectContaining({ r });

describe('constants', () => {
  it('PTE bits, levels and the input-width formula', () => {
    expect(FsPte).toEqual({
      P: 1,
      RW: 2,
      US: 4,
      PWT: 8,
      PCD: 0x10,
      A: 0x20,
      D: 0x40,
      PS: 0x80,
      G: 0x100,
      PAT_LARGE: 0x1000,
      ADDR_LO: 0xffff_f000,
    });
    expect(FsPteHi).toEqual({ IGNORED: 0x7ff0_0000, XD: 0x8000_0000 });
    expect(FsLevels).toEqual({ FOUR: 4, FIVE: 5 });
    expect([FS_WIDTH_BASE, FS_WIDTH_PER_AW]).toEqual([30, 9]);
  });

  it('the walk reports first-stage codes, every one of them qualified (QEMU vtd_qualified_faults)', () => {
    const codes = [
      VtdFault.FS_PAGING_ENTRY_INV,
      VtdFault.FS_PAGING_ENTRY_P,
      VtdFault.FS_PAGING_ENTRY_RSVD,
      VtdFault.PASID_ENTRY_FSPTPTR_INV,
      VtdFault.FS_NON_CANONICAL,
      VtdFault.FS_PAGING_ENTRY_US,
      VtdFault.SM_WRITE,
      VtdFault.SM_INTERRUPT_ADDR,
      VtdFault.FS_BIT_UPDATE_FAILED,
    ];
    expect(codes).toEqual([0x70, 0x71, 0x72, 0x73, 0x80, 0x81, 0x85, 0x87, 0x91]);
    for (const c of codes) expect(isQualifiedFault(c), c.toString(16)).toBe(true);
  });
});

describe('FsWalkRules', () => {
  for (const [awBits, addrHi, rsvdHi, canonHi, canonLo] of [
    // AW 0..7: width min(30 + 9 AW, aw-bits); the sign bit is width - 1.
    [39, 0x7f, 0xf_ff80, [0xffff_ffff, 0xffff_ffc0, 0xffff_ffc0, 0xffff_ffc0, 0xffff_ffc0, 0xffff_ffc0, 0xffff_ffc0, 0xffff_ffc0]],
    [48, 0xffff, 0xf_0000, [0xffff_ffff, 0xffff_ffc0, 0xffff_8000, 0xffff_8000, 0xffff_8000, 0xffff_8000, 0xffff_8000, 0xffff_8000]],
    [57, 0xf_ffff, 0, [0xffff_ffff, 0xffff_ffc0, 0xffff_8000, 0xff00_0000, 0xff00_0000, 0xff00_0000, 0xff00_0000, 0xff00_0000]],
  ].map((r) => [...r, [0xe000_0000, 0, 0, 0, 0, 0, 0, 0]]) as [number, number, number, number[], number[]][]) {
    it(`aw-bits ${awBits}: address, reserved and canonical masks`, () => {
      const r = new FsWalkRules(awBits);
      expect(r.awBits).toBe(awBits);
      expect(r.addrHiMask).toBe(addrHi);
      expect(r.rsvdHi).toBe(rsvdHi);
      expect([...r.canonHi]).toEqual(canonHi);
      expect([...r.canonLo]).toEqual(canonLo);
    });
  }
});

describe('successful walks', () => {
  for (const [awBits, levels, iovas] of [
    [39, 4, [0x5000, 0x20_2010_3abc, 2 ** 38 - PAGE, 2 ** 64 - 2 ** 38, 2 ** 64 - PAGE]],
    [48, 4, [0x5000, 0x80_4020_1123, 2 ** 47 - 1, 2 ** 64 - 2 ** 47, 2 ** 64 - 2 ** 47 + 0x1234_5000, 2 ** 64 - PAGE]],
    [57, 5, [0x5000, 2 ** 55 + 2 ** 40 + 0x20_3000, 2 ** 56 - PAGE, 2 ** 64 - 2 ** 56, 2 ** 64 - PAGE]],
  ] as const) {
    it(`${levels} levels, aw-bits ${awBits}: 4 KiB leaves, read and write, low and sign-extended IOVAs`, () => {
      const w = walker(awBits, levels);
      iovas.forEach((iova, i) => {
        const page = iova - (iova % PAGE);
        w.map(page, DATA + i * PAGE);
        expect(w.walk(iova), iova.toString(16)).toEqual(ok(DATA + i * PAGE));
        expect(w.walk(iova, true), iova.toString(16)).toEqual(ok(DATA + i * PAGE));
      });
    });
  }

  it('every table index bit counts at every level (neighbouring IOVAs map apart)', () => {
    const w = walker(57, 5);
    const base = 0x5000;
    w.map(base, DATA);
    for (let level = 1; level <= 5; level++) {
      for (const bit of [0, 7]) {
        const iova = base + LEVEL_SIZE[level]! * 2 ** bit;
        w.map(iova, DATA + (level * 2 + bit) * PAGE);
        expect(w.walk(iova), `level ${level} bit ${bit}`).toEqual(ok(DATA + (level * 2 + bit) * PAGE));
      }
    }
    expect(w.walk(base)).toEqual(ok(DATA));
  });

  it('2 MiB and 1 GiB leaves end the walk at levels 2 and 3, over the whole leaf', () => {
    const w = walker();
    w.map(GiB, 0x1_8000_0000, PUW, 3);
    w.map(2 * MiB, 0x60_0000, PUW, 2);
    expect(w.walk(GiB)).toEqual(ok(0x1_8000_0000, 3));
    expect(w.walk(2 * GiB - 1, true)).toEqual(ok(0x1_8000_0000, 3));
    expect(w.walk(2 * MiB)).toEqual(ok(0x60_0000, 2));
    expect(w.walk(4 * MiB - 1, true)).toEqual(ok(0x60_0000, 2));
    // Just outside each leaf: empty entries.
    expect(w.walk(4 * MiB)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
    expect(w.walk(2 * MiB - 1)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
    expect(w.walk(2 * GiB)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
  });

  it('4 KiB leaves at page boundaries', () => {
    const w = walker();
    w.map(0x7000, 0x3_0000);
    w.map(0x8000, 0x9_0000);
    expect(w.walk(0x7000)).toEqual(ok(0x3_0000));
    expect(w.walk(0x7fff)).toEqual(ok(0x3_0000));
    expect(w.walk(0x8000)).toEqual(ok(0x9_0000));
    expect(w.walk(0x6fff)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
    expect(w.walk(0x9000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
  });

  it('bit 12 of a large leaf is PAT (not part of the output); in a 4 KiB leaf it is an address bit', () => {
    const w = walker();
    w.map(2 * MiB, 0x60_0000 | 0x1000, PUW, 2);
    w.map(GiB, GiB | 0x1000, PUW, 3);
    w.map(0x5000, 0x1000);
    expect(w.walk(2 * MiB + 0x1000)).toEqual(ok(0x60_0000, 2));
    expect(w.walk(GiB)).toEqual(ok(GiB, 3));
    expect(w.walk(0x5000)).toEqual(ok(0x1000));
  });

  it('bit 7 of a 4 KiB leaf is PAT: still a leaf, not reserved', () => {
    const w = walker();
    w.map(0x3000, DATA, PUW | PS);
    expect(w.walk(0x3000)).toEqual(ok(DATA));
  });

  it('PWT, PCD, G, 11:9, 62:52 and XD change nothing at any level', () => {
    for (const leaf of [1, 2, 3]) {
      const w = walker();
      w.map(GiB, GiB, PUW, leaf);
      for (let level = leaf; level <= 4; level++) w.set(GiB, level, HARMLESS);
      expect(w.walk(GiB + 0x123, true), `leaf ${leaf}`).toEqual(ok(GiB, leaf));
    }
  });

  it('outputs keep their high dword up to the host address width', () => {
    const w = walker();
    w.map(0x5000, 0x12_3456_7000);
    w.map(0x6000, 2 ** 47 + PAGE);
    w.map(GiB, 0x7f_c000_0000, PUW, 3);
    expect(w.walk(0x5000)).toEqual(ok(0x12_3456_7000));
    expect(w.walk(0x6000)).toEqual(ok(2 ** 47 + PAGE));
    expect(w.walk(GiB)).toEqual(ok(0x7f_c000_0000, 3));
  });

  it('table pointers above 4 GiB are followed with their high dword', () => {
    // A table in a second RAM window at 4 GiB + 0x2000.
    const w = walker();
    w.g.system.add(new RamRegion('high', PAGE, createRam(PAGE, 'ts')), 0x1_0000_2000);
    w.map(0x5000, DATA);
    w.put(0x5000, 2, 0x1_0000_2000n | PUW);
    w.g.poke(0x1_0000_2000 + indexAt(0x5000, 1) * 8, BigInt(DATA + PAGE) | PUW);
    expect(w.walk(0x5000)).toEqual(ok(DATA + PAGE));
  });
});

describe('canonical input (fault 0x80)', () => {
  it('QEMU 11.1 evidence: 0x40000010 faults with AW=0, not with AW=1 or 2', () => {
    const w = walker();
    w.map(0x4000_0000, DATA);
    expect(w.walk(0x4000_0010, false, 0)).toEqual(fault(VtdFault.FS_NON_CANONICAL));
    expect(w.walk(0x4000_0010, false, 1)).toEqual(ok(DATA));
    expect(w.walk(0x4000_0010, false, 2)).toEqual(ok(DATA));
  });

  for (const [awBits, levels, aws] of [
    [39, 4, [0, 1, 2, 7]],
    [48, 4, [0, 1, 2, 3, 7]],
    [57, 5, [0, 1, 2, 3, 7]],
  ] as const) {
    for (const aw of aws) {
      const width = Math.min(30 + 9 * aw, awBits);
      it(`aw-bits ${awBits}, AW=${aw}: bits 63:${width - 1} must be equal`, () => {
        const w = walker(awBits, levels);
        const sign = 2 ** (width - 1);
        const low = [sign - PAGE, 2 ** 64 - sign, 2 ** 64 - PAGE, 0];
        low.forEach((iova, i) => w.map(iova, DATA + i * PAGE));
        low.forEach((iova, i) => expect(w.walk(iova, false, aw), iova.toString(16)).toEqual(ok(DATA + i * PAGE)));
        if (sign - 1 < 2 ** 53) expect(w.walk(sign - 1, false, aw)).toEqual(ok(DATA));
        for (const bad of [sign, 2 ** 64 - sign - PAGE, 2 ** width, 2 ** 63, 2 ** 64 - 2 ** 63 + PAGE, 2 ** 64]) {
          expect(w.walk(bad, false, aw), bad.toString(16)).toEqual(fault(VtdFault.FS_NON_CANONICAL));
          expect(w.walk(bad, true, aw), bad.toString(16)).toEqual(fault(VtdFault.FS_NON_CANONICAL));
        }
      });
    }
  }

  it('AW=0: a sign bit in the low dword (bit 29) with the high dword all clear or all set', () => {
    const w = walker();
    for (const iova of [0x1fff_f000, 0xffff_ffff_e000_0000, 0xffff_ffff_ffff_f000]) w.map(iova, DATA);
    expect(w.walk(0x1fff_ffff, false, 0)).toEqual(ok(DATA));
    expect(w.walk(0xffff_ffff_e000_0000, false, 0)).toEqual(ok(DATA));
    for (const bad of [0x2000_0000, 0x8000_0000, 0xe000_0000, 0x1_0000_0000, 0xffff_ffff_c000_0000, 0xffff_fffe_e000_0000, 0x8000_0000_e000_0000]) {
      expect(w.walk(bad, false, 0), bad.toString(16)).toEqual(fault(VtdFault.FS_NON_CANONICAL));
    }
  });

  it('checked before any table read (an unreadable top still gives 0x80)', () => {
    const g = new Guest();
    const rules = new FsWalkRules(48);
    const out = newWalkResult();
    expect(walkFirstStage(g.mem, rules, HOLE, 4, 2, 2 ** 47, false, out)).toBe(VtdFault.FS_NON_CANONICAL);
    expect(walkFirstStage(g.mem, rules, HOLE, 4, 2, 2 ** 47 - PAGE, false, out)).toBe(VtdFault.PASID_ENTRY_FSPTPTR_INV);
    expect(out).toEqual(newWalkResult());
  });
});

describe('table fetch failures (0x73 at the top, 0x70 below)', () => {
  it('an unreadable top-level table', () => {
    for (const levels of [4, 5]) {
      const g = new Guest();
      const rules = new FsWalkRules(57);
      const out = newWalkResult();
      for (const isWrite of [false, true]) {
        expect(walkFirstStage(g.mem, rules, HOLE, levels, 3, 0x1000, isWrite, out)).toBe(VtdFault.PASID_ENTRY_FSPTPTR_INV);
        expect(walkFirstStage(g.mem, rules, RAM_SIZE, levels, 3, 2 ** 56 - PAGE, isWrite, out)).toBe(
          VtdFault.PASID_ENTRY_FSPTPTR_INV,
        );
      }
      expect(out).toEqual(newWalkResult());
    }
  });

  it('an unreadable lower table, at every depth of 4 and 5 levels', () => {
    for (const levels of [4, 5]) {
      for (let level = levels; level >= 2; level--) {
        const w = walker(57, levels);
        w.map(0x5000, DATA);
        w.put(0x5000, level, BigInt(HOLE) | PUW);
        expect(w.walk(0x5000), `${levels}/${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_INV));
        expect(w.walk(0x5000, true), `${levels}/${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_INV));
      }
    }
  });

  it('an all-ones entry counts as a failed fetch; one half all-ones does not', () => {
    const w = walker();
    w.map(0x5000, DATA);
    w.put(0x5000, 1, ALL_ONES);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_INV));
    w.put(0x5000, 3, ALL_ONES);
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_INV));
    w.put(0x5000, 4, ALL_ONES);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.PASID_ENTRY_FSPTPTR_INV));
    for (const [level, v] of [
      [4, 0x0000_0000_ffff_ffffn],
      [4, 0xffff_ffff_0000_0007n],
      [1, 0xffff_ffff_0000_0007n],
      [2, 0xfff7_ffff_ffff_ffffn],
    ] as const) {
      const x = walker();
      x.map(0x5000, DATA);
      x.put(0x5000, level, v);
      expect(x.walk(0x5000), `${level} ${v.toString(16)}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
    }
  });
});

describe('check order within an entry: P, US, RW, reserved, A/D, then the window', () => {
  const RSVD_BIT = 1n << 50n;

  it('not present beats everything', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker();
      w.map(0x5000, DATA);
      w.put(0x5000, level, (w.get(0x5000, level) & ~(PUW | A)) | RSVD_BIT | PS);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
      expect(w.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
    }
  });

  it('US clear beats RW and reserved bits, for reads and writes', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker();
      w.map(0x5000, DATA);
      w.put(0x5000, level, (w.get(0x5000, level) & ~(US | RW)) | RSVD_BIT);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_US));
      expect(w.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_US));
    }
  });

  it('a write through RW=0 beats reserved bits; a read then sees the reserved bits', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker();
      w.map(0x5000, DATA);
      w.put(0x5000, level, (w.get(0x5000, level) & ~RW) | RSVD_BIT);
      expect(w.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.SM_WRITE));
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
    }
  });

  it('a higher level faults before a lower one is looked at', () => {
    const w = walker();
    w.map(0x5000, DATA);
    w.clear(0x5000, 1, P);
    w.clear(0x5000, 3, RW);
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.SM_WRITE));
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_P));
    w.clear(0x5000, 4, US);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_US));
  });
});

describe('permissions (US 0x81, RW 0x85)', () => {
  it('US clear at any level faults every access', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker();
      w.map(0x5000, DATA);
      w.clear(0x5000, level, US);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_US));
    }
  });

  it('RW clear at any level: reads allowed with perm Read, writes fault 0x85', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker();
      w.map(0x5000, DATA);
      w.clear(0x5000, level, RW);
      expect(w.walk(0x5000), `level ${level}`).toEqual(ok(DATA, 1, IommuPerm.Read));
      expect(w.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.SM_WRITE));
    }
  });

  it('large leaves carry the accumulated permissions', () => {
    const w = walker();
    w.map(GiB, GiB, PU, 3);
    w.map(2 * MiB, 0x40_0000, PUW, 2);
    expect(w.walk(GiB)).toEqual(ok(GiB, 3, IommuPerm.Read));
    expect(w.walk(GiB, true)).toEqual(fault(VtdFault.SM_WRITE));
    expect(w.walk(2 * MiB, true)).toEqual(ok(0x40_0000, 2));
    w.clear(2 * MiB, 4, RW);
    expect(w.walk(2 * MiB)).toEqual(ok(0x40_0000, 2, IommuPerm.Read));
  });
});

describe('reserved bits (fault 0x72)', () => {
  for (const [awBits, levels] of [
    [39, 4],
    [48, 4],
    [57, 5],
  ] as const) {
    it(`aw-bits ${awBits}: address bits ${awBits}..51 reserved at every level, bit ${awBits - 1} is an address bit`, () => {
      for (let level = 1; level <= levels; level++) {
        for (const b of awBits < 52 ? [awBits, 51] : []) {
          const w = walker(awBits, levels);
          w.map(0x5000, DATA);
          w.set(0x5000, level, 1n << BigInt(b));
          expect(w.walk(0x5000), `level ${level} bit ${b}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
        }
      }
      const w = walker(awBits, levels);
      const top = Math.min(awBits, 52) - 1;
      w.map(0x5000, DATA);
      w.set(0x5000, 1, 1n << BigInt(top));
      expect(w.walk(0x5000)).toEqual(ok(DATA + 2 ** top));
      // In a table pointer it points outside RAM: a failed fetch, not a reserved bit.
      w.set(0x5000, 2, 1n << BigInt(top));
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_INV));
    });
  }

  it('aw-bits 57: bits 56:52 are ignored, never address bits', () => {
    const w = walker(57, 5);
    w.map(0x5000, DATA);
    for (let level = 1; level <= 5; level++) w.set(0x5000, level, 0x01f0_0000_0000_0000n);
    expect(w.walk(0x5000)).toEqual(ok(DATA));
  });

  it('PS is reserved at level 4 (and 5), with or without the other bits of a large leaf', () => {
    for (const [levels, level] of [
      [4, 4],
      [5, 5],
      [5, 4],
    ] as const) {
      const w = walker(57, levels);
      w.map(0x5000, DATA);
      w.set(0x5000, level, PS);
      expect(w.walk(0x5000), `${levels}/${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
      expect(w.walk(0x5000, true), `${levels}/${level}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
    }
  });

  for (const [leaf, lowBit, highBit] of [
    [2, 13, 20],
    [3, 13, 29],
  ] as const) {
    it(`a ${leaf === 2 ? '2 MiB' : '1 GiB'} leaf: bits ${highBit}:${lowBit} reserved, 12 (PAT) and ${highBit + 1} not`, () => {
      for (let b = lowBit; b <= highBit; b++) {
        const w = walker();
        w.map(GiB, GiB, PUW, leaf);
        w.set(GiB, leaf, 1n << BigInt(b));
        expect(w.walk(GiB), `bit ${b}`).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
      }
      const w = walker();
      w.map(GiB, 4 * GiB, PUW, leaf);
      w.set(GiB, leaf, PAT_LARGE | (1n << BigInt(highBit + 1)));
      expect(w.walk(GiB)).toEqual(ok(4 * GiB + 2 ** (highBit + 1), leaf));
    });
  }

  it('the same bits in a table pointer (PS clear) are address bits', () => {
    const w = walker();
    w.map(0x5000, DATA);
    // Tables at addresses with bits 25:13 set, pointed to from levels 3 and 2.
    const t2 = 0x3ff_e000;
    const t1 = 0x3fd_e000;
    w.g.mem.fill(t2, PAGE, 0);
    w.g.mem.fill(t1, PAGE, 0);
    w.g.poke(t2 + indexAt(0x5000, 2) * 8, BigInt(t1) | PUW);
    w.g.poke(t1 + indexAt(0x5000, 1) * 8, BigInt(DATA + PAGE) | PUW);
    w.put(0x5000, 3, BigInt(t2) | PUW);
    expect(w.walk(0x5000)).toEqual(ok(DATA + PAGE));
  });
});

describe('Accessed and Dirty write-back', () => {
  const levelsOf = (w: Walker, iova: number, leaf = 1) => {
    const out: bigint[] = [];
    for (let l = w.levels; l >= leaf; l--) out.push(w.get(iova, l) & (A | D));
    return out;
  };

  it('a read sets A on every level and no D; the rest of each entry is unchanged', () => {
    const w = walker();
    w.map(0x5000, 0x12_3456_7000);
    w.set(0x5000, 1, HARMLESS);
    const before = [4, 3, 2, 1].map((l) => w.get(0x5000, l));
    expect(w.walk(0x5000)).toEqual(ok(0x12_3456_7000));
    expect([4, 3, 2, 1].map((l) => w.get(0x5000, l))).toEqual(before.map((v) => v | A));
  });

  for (const leaf of [1, 2, 3]) {
    it(`a write sets A on every level and D only in the leaf (level ${leaf})`, () => {
      const w = walker();
      w.map(GiB, GiB, PUW, leaf);
      expect(w.walk(GiB, true)).toEqual(ok(GiB, leaf));
      const want = [A, A, A, A].slice(0, 4 - leaf);
      expect(levelsOf(w, GiB, leaf)).toEqual([...want, A | D]);
      // A read afterwards changes nothing.
      expect(w.walk(GiB)).toEqual(ok(GiB, leaf));
      expect(w.get(GiB, leaf) & (A | D)).toBe(A | D);
    });
  }

  it('5 levels: A on all five', () => {
    const w = walker(57, 5);
    w.map(0x5000, DATA);
    expect(w.walk(0x5000, true)).toEqual(ok(DATA));
    expect(levelsOf(w, 0x5000)).toEqual([A, A, A, A, A | D]);
  });

  it('levels walked before a fault keep their A; the faulting level and below get none', () => {
    const w = walker();
    w.map(0x5000, DATA);
    w.set(0x5000, 2, 1n << 50n);
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
    expect(levelsOf(w, 0x5000)).toEqual([A, A, 0n, 0n]);
    const x = walker();
    x.map(0x5000, DATA, PU);
    expect(x.walk(0x5000, true)).toEqual(fault(VtdFault.SM_WRITE));
    expect(levelsOf(x, 0x5000)).toEqual([A, A, A, 0n]);
  });

  it('QEMU 11.1: the leaf is written only when none of the bits to set is set (A set, D clear: no D)', () => {
    const w = walker();
    w.map(0x5000, DATA, PUW | A);
    expect(w.walk(0x5000, true)).toEqual(ok(DATA));
    expect(w.get(0x5000, 1) & (A | D)).toBe(A);
    // D set, A clear: a write leaves A clear, a read sets it.
    w.put(0x5000, 1, BigInt(DATA) | PUW | D);
    expect(w.walk(0x5000, true)).toEqual(ok(DATA));
    expect(w.get(0x5000, 1) & (A | D)).toBe(D);
    expect(w.walk(0x5000)).toEqual(ok(DATA));
    expect(w.get(0x5000, 1) & (A | D)).toBe(A | D);
  });

  describe('through the address space', () => {
    /** A 4 KiB MMIO table read from `entries`, every write recorded; `eightOnly` refuses the 4-byte write-back. */
    function mmioTable(g: Guest, at: number, eightOnly: boolean) {
      const entries = new Map<number, bigint>();
      const writes: [number, number, number | bigint][] = [];
      const region = new MmioRegion(
        'table',
        PAGE,
        {
          read: (off, size) => Number(((entries.get(off & ~7) ?? 0n) >> BigInt((off & 7) * 8)) & (2n ** BigInt(size * 8) - 1n)),
          write: (off, size, v) => void writes.push([off, size, v]),
          read64: (off) => entries.get(off) ?? 0n,
          write64: (off, v) => void writes.push([off, 8, v]),
        },
        eightOnly ? { valid: { min: 8, max: 8 }, impl: { min: 8, max: 8 } } : undefined,
      );
      g.system.add(region, at);
      return { entries, writes };
    }

    it('A is written as one 4-byte write of the low dword', () => {
      const w = walker();
      w.map(0x5000, DATA);
      const t = mmioTable(w.g, 0x1_0000_0000, false);
      const idx = indexAt(0x5000, 2) * 8;
      t.entries.set(idx, 0x40_1220_0000n | PUW | PS);
      w.put(0x5000, 3, 0x1_0000_0000n | PUW | A);
      expect(w.walk(0x5000, true)).toEqual(ok(0x40_1220_0000, 2));
      expect(t.writes).toEqual([[idx, 4, 0x1220_00e7]]);
      t.writes.length = 0;
      t.entries.set(idx, 0x40_1220_0000n | PUW | PS | A | D);
      expect(w.walk(0x5000, true)).toEqual(ok(0x40_1220_0000, 2));
      expect(t.writes).toEqual([]);
    });

    it('a write-back that fails faults 0x91 (top and lower levels), none needed: no fault', () => {
      const w = walker();
      w.map(0x5000, DATA);
      const t = mmioTable(w.g, 0x1_0000_0000, true);
      const idx = indexAt(0x5000, 1) * 8;
      t.entries.set(idx, BigInt(DATA) | PUW);
      w.put(0x5000, 2, 0x1_0000_0000n | PUW);
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_BIT_UPDATE_FAILED));
      expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.FS_BIT_UPDATE_FAILED));
      // A already set: a read needs no write-back; a write needs D.
      t.entries.set(idx, BigInt(DATA) | PUW | A);
      expect(w.walk(0x5000)).toEqual(ok(DATA));
      expect(w.walk(0x5000, true)).toEqual(ok(DATA));
      t.entries.set(idx, BigInt(DATA) | PUW | D);
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_BIT_UPDATE_FAILED));
      expect(w.walk(0x5000, true)).toEqual(ok(DATA));
      expect(t.writes).toEqual([]);
      // The top table itself in the refusing region.
      const g = new Guest();
      const top = mmioTable(g, 0x1_0000_0000, true);
      top.entries.set(indexAt(0x5000, 4) * 8, BigInt(HOLE) | PUW);
      const out = newWalkResult();
      expect(walkFirstStage(g.mem, new FsWalkRules(48), 0x1_0000_0000, 4, 2, 0x5000, false, out)).toBe(VtdFault.FS_BIT_UPDATE_FAILED);
      top.entries.set(indexAt(0x5000, 4) * 8, BigInt(HOLE) | PUW | A);
      expect(walkFirstStage(g.mem, new FsWalkRules(48), 0x1_0000_0000, 4, 2, 0x5000, false, out)).toBe(VtdFault.FS_PAGING_ENTRY_INV);
    });

    it('reserved bits are reported before a failing write-back, a failing write-back before the window', () => {
      const w = walker();
      w.map(0x5000, DATA);
      const t = mmioTable(w.g, 0x1_0000_0000, true);
      const idx = indexAt(0x5000, 1) * 8;
      w.put(0x5000, 2, 0x1_0000_0000n | PUW | A);
      t.entries.set(idx, 0xfee0_0000n | PUW | (1n << 50n));
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_PAGING_ENTRY_RSVD));
      t.entries.set(idx, 0xfee0_0000n | PUW);
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.FS_BIT_UPDATE_FAILED));
      t.entries.set(idx, 0xfee0_0000n | PUW | A);
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.SM_INTERRUPT_ADDR));
    });
  });
});

describe('interrupt window (fault 0x87 in scalable mode)', () => {
  it('4 KiB leaves: the window pages fault, their neighbours do not', () => {
    const w = walker();
    const cases: [number, boolean][] = [
      [0xfed_ff000, false],
      [0xfee_00000, true],
      [0xfee_ff000, true],
      [0xfef_00000, false],
      [0x1_fee0_0000, false],
    ];
    cases.forEach(([phys], i) => w.map(0x10_0000 + i * PAGE, phys));
    cases.forEach(([phys, bad], i) => {
      const got = w.walk(0x10_0000 + i * PAGE, true);
      expect(got, phys.toString(16)).toEqual(bad ? fault(VtdFault.SM_INTERRUPT_ADDR) : ok(phys));
    });
  });

  it('large leaves that overlap the window fault; QEMU checks with the PAT bit in the address', () => {
    const cases: [number, number, bigint, boolean][] = [
      [2, 0xfee0_0000, 0n, true],
      [2, 0xfec0_0000, 0n, false],
      // 0xfec01000 + 2 MiB - 1 reaches into the window (QEMU's xlat keeps bit 12).
      [2, 0xfec0_0000, PAT_LARGE, true],
      [2, 0xff00_0000, 0n, false],
      [2, 0xff00_0000, PAT_LARGE, false],
      [3, 0xc000_0000, 0n, true],
      [3, 0x8000_0000, 0n, false],
      [3, 0x8000_0000, PAT_LARGE, false],
      [3, 0x1_0000_0000, 0n, false],
    ];
    for (const [leaf, phys, pat, bad] of cases) {
      const w = walker();
      w.map(GiB, phys, PUW | pat, leaf);
      const got = w.walk(GiB);
      expect(got, `${leaf} ${phys.toString(16)} ${pat}`).toEqual(bad ? fault(VtdFault.SM_INTERRUPT_ADDR) : ok(phys, leaf));
    }
  });

  it('the window fault comes after the A/D write-back and leaves the result untouched', () => {
    const w = walker();
    w.map(0x5000, 0xfee0_0000);
    const out = newWalkResult();
    expect(walkFirstStage(w.g.mem, w.rules, w.top, 4, 2, 0x5000, true, out)).toBe(VtdFault.SM_INTERRUPT_ADDR);
    expect(out).toEqual(newWalkResult());
    expect(w.get(0x5000, 1) & (A | D)).toBe(A | D);
  });
});

describe('nested translation (x-nested)', () => {
  /** Table pointers are guest-physical: host + BIAS. */
  const BIAS = 2 ** 38;
  /** Outputs below BIAS are moved up by OUT_SHIFT by the second stage. */
  const OUT_SHIFT = 2 ** 32;

  class Stage2 implements NestedSecondStage {
    calls: [number, boolean][] = [];
    level = 1;
    perm: IommuPerm = IommuPerm.ReadWrite;
    failAt = -1;
    failWith = 0;
    translate(gpa: number, isWrite: boolean, out: WalkResult): number {
      this.calls.push([gpa, isWrite]);
      if (this.calls.length - 1 === this.failAt) return this.failWith;
      const host = gpa >= BIAS ? gpa - BIAS : gpa + OUT_SHIFT;
      const size = LEVEL_SIZE[this.level]!;
      out.translated = host - (host % size);
      out.level = this.level;
      out.perm = this.perm;
      return 0;
    }
  }

  it('every entry address is translated (as a read, and as a write for the A/D write-back), then the output', () => {
    const w = walker(48, 4, BIAS);
    w.map(0x5123_4000, DATA);
    const s = new Stage2();
    expect(w.walk(0x5123_4567, true, 2, s)).toEqual(ok(DATA + OUT_SHIFT));
    const e = [4, 3, 2, 1].map((l) => w.at(0x5123_4000, l) + BIAS);
    expect(s.calls).toEqual([
      [e[0], false],
      [e[0], true],
      [e[1], false],
      [e[1], true],
      [e[2], false],
      [e[2], true],
      [e[3], false],
      [e[3], true],
      [DATA, true],
    ]);
    expect([4, 3, 2, 1].map((l) => w.get(0x5123_4000, l) & (A | D))).toEqual([A, A, A, A | D]);
    // A and D set: no write-back translations; a read passes isWrite=false for the output.
    s.calls = [];
    expect(w.walk(0x5123_4567, false, 2, s)).toEqual(ok(DATA + OUT_SHIFT));
    expect(s.calls).toEqual([...e.map((x) => [x, false]), [DATA, false]]);
  });

  it('the output of a large first-stage leaf: the 4 KiB page holding the IOVA is translated', () => {
    const w = walker(48, 4, BIAS);
    w.map(GiB, 0x4000_0000, PUW | A, 3);
    for (let l = 4; l >= 3; l--) w.set(GiB, l, A);
    const s = new Stage2();
    expect(w.walk(GiB + 0x1234_5678, false, 2, s)).toEqual(ok(0x4000_0000 + OUT_SHIFT + 0x1234_5000, 1));
    expect(s.calls.at(-1)).toEqual([0x4000_0000 + 0x1234_5000, false]);
  });

  it('the result is the smaller of the two page sizes, with both stages\' permissions', () => {
    const w = walker(48, 4, BIAS);
    w.map(2 * MiB, 0x60_0000, PUW | A, 2);
    w.map(0x5000, 0x1_2345_6000, PUW | A);
    for (const iova of [2 * MiB, 0x5000]) for (let l = 4; l >= 2; l--) w.set(iova, l, A);
    const s = new Stage2();
    // Second stage 1 GiB pages: a first-stage 2 MiB leaf stays 2 MiB, placed inside the GiB.
    s.level = 3;
    expect(w.walk(2 * MiB + 0x1_2345, false, 2, s)).toEqual(ok(OUT_SHIFT + 0x60_0000, 2));
    expect(w.walk(0x5000, false, 2, s)).toEqual(ok(0x1_2345_6000 + OUT_SHIFT, 1));
    // Second stage 2 MiB pages under a 2 MiB leaf: 2 MiB.
    s.level = 2;
    expect(w.walk(2 * MiB + 0x1f_ffff, false, 2, s)).toEqual(ok(OUT_SHIFT + 0x60_0000, 2));
    // Second stage 4 KiB pages: 4 KiB.
    s.level = 1;
    expect(w.walk(2 * MiB + 0x1f_f123, false, 2, s)).toEqual(ok(OUT_SHIFT + 0x7f_f000, 1));
    // Permissions intersect.
    s.perm = IommuPerm.Read;
    expect(w.walk(0x5000, false, 2, s)).toEqual(ok(0x1_2345_6000 + OUT_SHIFT, 1, IommuPerm.Read));
    s.perm = IommuPerm.Write;
    w.clear(0x5000, 1, RW);
    expect(w.walk(0x5000, false, 2, s)).toEqual(ok(0x1_2345_6000 + OUT_SHIFT, 1, IommuPerm.None));
  });

  it('a second-stage fault is returned as it is, wherever it happens, and the walk stops there', () => {
    for (let n = 0; n < 9; n++) {
      const w = walker(48, 4, BIAS);
      w.map(0x5000, DATA);
      const s = new Stage2();
      s.failAt = n;
      s.failWith = n === 8 ? VtdFault.WRITE : VtdFault.PAGING_ENTRY_RSVD;
      const out = newWalkResult();
      expect(walkFirstStage(w.g.mem, w.rules, w.top + BIAS, 4, 2, 0x5000, true, out, s), `call ${n}`).toBe(s.failWith);
      expect(s.calls.length).toBe(n + 1);
      expect(out).toEqual(newWalkResult());
      // A failed write-back translation writes nothing.
      const level = 4 - Math.floor(n / 2);
      if (n < 8 && n % 2 === 1) expect(w.get(0x5000, level) & (A | D), `call ${n}`).toBe(0n);
    }
  });

  it('the window applies to the final output, not the intermediate address', () => {
    const w = walker(48, 4, BIAS);
    w.map(0x5000, 0xfee0_0000, PUW | A | D);
    w.map(0x6000, 0xfee0_0000 + BIAS, PUW | A | D);
    for (const iova of [0x5000, 0x6000]) for (let l = 4; l >= 2; l--) w.set(iova, l, A);
    const s = new Stage2();
    expect(w.walk(0x5000, false, 2, s)).toEqual(ok(0xfee0_0000 + OUT_SHIFT));
    expect(w.walk(0x6000, false, 2, s)).toEqual(fault(VtdFault.SM_INTERRUPT_ADDR));
    // With 1 GiB second-stage pages the 4 KiB result still lands in the window.
    s.level = 3;
    expect(w.walk(0x6000, false, 2, s)).toEqual(fault(VtdFault.SM_INTERRUPT_ADDR));
  });

  it('the window is checked over the combined page, not the first-stage leaf', () => {
    const w = walker(48, 4, BIAS);
    // A 2 MiB first-stage leaf whose last 4 KiB page is 0xfedff000 on the host, right below the window.
    w.map(2 * MiB, 0xfec0_0000 + BIAS, PUW | A, 2);
    for (let l = 4; l >= 3; l--) w.set(2 * MiB, l, A);
    const s = new Stage2();
    expect(w.walk(4 * MiB - 1, false, 2, s)).toEqual(ok(0xfed_ff000, 1));
    // Larger second-stage pages: the 2 MiB result 0xfec00000-0xfedfffff stays below the window.
    s.level = 2;
    expect(w.walk(4 * MiB - 1, false, 2, s)).toEqual(ok(0xfec0_0000, 2));
    s.level = 3;
    expect(w.walk(4 * MiB - 1, false, 2, s)).toEqual(ok(0xfec0_0000, 2));
  });

  it('without a second stage (null or omitted) the walk reads the tables directly', () => {
    const w = walker();
    w.map(0x5000, DATA);
    const out = newWalkResult();
    expect(walkFirstStage(w.g.mem, w.rules, w.top, 4, 2, 0x5000, false, out, null)).toBe(0);
    expect(out).toEqual({ translated: DATA, level: 1, perm: IommuPerm.ReadWrite, fsWrite: true });
  });
});

/**
 * Reference model, in bigints and independent of the module's tricks: the
 * expected fault or result, and the entries as they should be afterwards.
 */
function model(
  g: Guest,
  awBits: number,
  base: number,
  levels: number,
  aw: number,
  iova: bigint,
  isWrite: boolean,
): { out: Outcome | { r: number }; visited: Map<number, bigint> } {
  /** Every entry read, with its value after the walk. */
  const visited = new Map<number, bigint>();
  const width = BigInt(Math.min(30 + 9 * aw, awBits));
  const upper = iova >> (width - 1n);
  if (upper !== 0n && upper !== (1n << (65n - width)) - 1n) return { out: { r: 0x80 }, visited };
  const haw = BigInt(Math.min(awBits, 52));
  const addrMask = ((1n << haw) - 1n) & ~0xfffn;
  const aboveHaw = ((1n << 52n) - 1n) & ~((1n << haw) - 1n);
  let table = BigInt(base);
  let writable = true;
  for (let level = levels; ; level--) {
    const shift = BigInt(12 + 9 * (level - 1));
    const addr = table + ((iova >> shift) & 511n) * 8n;
    const at = Number(addr);
    if (addr + 8n <= BigInt(RAM_SIZE) && !visited.has(at)) visited.set(at, g.peek(at));
    const e = visited.get(at) ?? ALL_ONES;
    if (e === ALL_ONES) return { out: { r: level === levels ? 0x73 : 0x70 }, visited };
    if ((e & P) === 0n) return { out: { r: 0x71 }, visited };
    if ((e & US) === 0n) return { out: { r: 0x81 }, visited };
    writable &&= (e & RW) !== 0n;
    if (isWrite && (e & RW) === 0n) return { out: { r: 0x85 }, visited };
    const ps = (e & PS) !== 0n;
    let rsvd = aboveHaw | (level >= 4 ? PS : 0n);
    if (ps && level === 2) rsvd |= 0x1f_e000n;
    if (ps && level === 3) rsvd |= 0x3fff_e000n;
    if ((e & rsvd) !== 0n) return { out: { r: 0x72 }, visited };
    const leaf = level === 1 || ps;
    const flags = leaf && isWrite ? A | D : A;
    if ((e & flags) === 0n) visited.set(at, e | flags);
    if (leaf) {
      const xlat = e & addrMask;
      const size = 1n << shift;
      if (xlat <= 0xfeef_ffffn && xlat + size - 1n >= 0xfee0_0000n) return { out: { r: 0x87 }, visited };
      const translated = Number(xlat & ~(size - 1n));
      return { out: { r: 0, translated, level, perm: writable ? 3 : 1 }, visited };
    }
    table = e & addrMask;
  }
}

/** Trials of the property test: every outcome is reached well before this (checked below). */
const TRIALS = 1000;

describe('property: random trees against the reference model (seeded)', () => {
  it('results, faults and A/D bits agree', () => {
    const seed = 0x5eed_f5a1;
    const rng = new Rng(seed);
    const g = new Guest();
    const rulesOf = new Map([39, 48, 57].map((b) => [b, new FsWalkRules(b)]));
    const seen = new Set<number>();
    for (let n = 0; n < TRIALS; n++) {
      g.reset();
      const awBits = rng.pick([39, 48, 57]);
      const levels = rng.pick([4, 5]);
      const aw = rng.int(8);
      const width = Math.min(30 + 9 * aw, awBits);
      const isWrite = rng.chance(0.5);
      // Mostly canonical IOVAs (either sign), sometimes random 64-bit ones; page bases from 2^53 on.
      let iova = rng.bits(width - 1);
      if (rng.chance(0.4)) iova |= ((1n << 64n) - 1n) & ~((1n << BigInt(width - 1)) - 1n);
      if (rng.chance(0.1)) iova = rng.bits(64);
      if (iova >= 1n << 53n) iova &= ~0xfffn;
      const top = g.allocPage();
      let table = top;
      for (let level = levels; level >= 1; level--) {
        const at = table + Number((iova >> BigInt(12 + 9 * (level - 1))) & 511n) * 8;
        const leaf = level === 1 || (level <= 3 && rng.chance(0.3));
        const size = 1n << BigInt(12 + 9 * (level - 1));
        let e = P | US | (rng.chance(0.85) ? RW : 0n) | (rng.chance(0.3) ? A : 0n) | (rng.chance(0.2) ? D : 0n);
        if (rng.chance(0.3)) e |= rng.bits(64) & HARMLESS;
        let next = 0;
        if (leaf) {
          const out = rng.chance(0.2)
            ? rng.pick([0xfee0_0000n, 0xfec0_0000n, 0xc000_0000n, 0xfedf_f000n, 0xfef0_0000n])
            : rng.bits(Math.min(awBits, 52));
          e |= (out & ~(size - 1n) & ADDR_MASK) | (level > 1 ? PS | (rng.chance(0.3) ? PAT_LARGE : 0n) : 0n);
        } else {
          next = g.allocPage();
          e |= BigInt(next);
        }
        // One corruption now and then.
        const c = rng.int(40);
        if (c === 0) e &= ~P;
        else if (c === 1) e &= ~US;
        else if (c === 2) e &= ~RW;
        else if (c === 3) e |= 1n << BigInt(rng.range(Math.min(awBits, 52), 52));
        else if (c === 4) e |= 1n << BigInt(rng.range(12, 29));
        else if (c === 5) e |= PS;
        else if (c === 6 && !leaf) e = (e & ~ADDR_MASK) | BigInt(HOLE);
        else if (c === 7) e = ALL_ONES;
        g.poke(at, e);
        if (leaf || c === 6 || c === 7 || (e & PS) !== 0n) break;
        table = next;
      }
      const want = model(g, awBits, top, levels, aw, iova, isWrite);
      const out = newWalkResult();
      const r = walkFirstStage(g.mem, rulesOf.get(awBits)!, top, levels, aw, Number(iova), isWrite, out);
      const what = `seed ${seed.toString(16)} #${n} aw-bits ${awBits} levels ${levels} AW ${aw} iova ${iova.toString(16)} ${isWrite ? 'W' : 'R'}`;
      expect(r === 0 ? { r, translated: out.translated, level: out.level, perm: out.perm } : { r }, what).toEqual(want.out);
      for (const [at, v] of want.visited) expect(g.peek(at), `${what} entry ${at.toString(16)}`).toBe(v);
      seen.add(r);
    }
    // The generator reaches every outcome.
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 0x70, 0x71, 0x72, 0x73, 0x80, 0x81, 0x85, 0x87]);
  });
});

describe('fsWrite: whether the first stage allowed writes (what a later write hit faults with)', () => {
  it('is true through RW entries, false when any first-stage level lacks RW', () => {
    const rules = new FsWalkRules(48);
    const g = new Guest();
    const top = g.allocPage();
    const out = newWalkResult();
    // P|US|RW tables, then a leaf with and without RW.
    let table = top;
    for (let level = 4; level > 1; level--) {
      const next = g.allocPage();
      g.poke(table, BigInt(next) | 0x7n); // IOVA 0x5000 uses index 0 at levels 4-2
      table = next;
    }
    g.poke(table + 5 * 8, 0x20_0000n | 0x7n);
    expect(walkFirstStage(g.mem, rules, top, 4, 2, 0x5000, false, out)).toBe(0);
    expect([out.perm, out.fsWrite]).toEqual([IommuPerm.ReadWrite, true]);
    g.poke(table + 5 * 8, 0x20_0000n | 0x5n);
    expect(walkFirstStage(g.mem, rules, top, 4, 2, 0x5000, false, out)).toBe(0);
    expect([out.perm, out.fsWrite]).toEqual([IommuPerm.Read, false]);
  });
});
