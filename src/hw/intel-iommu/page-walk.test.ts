/**
 * Second-stage page walk (VT-d spec 3.7 / 9.8, QEMU vtd_iova_to_sspte): 3-,
 * 4- and 5-level tables, 2 MiB / 1 GiB leaves, reserved bits per level (QEMU
 * VTD_SPTE_*_RSVD_MASK with SNP / TM relaxations), R/W accumulated over the
 * levels, the input-range check, fetch failures, and the interrupt-window
 * rule, each with its fault reason and in QEMU's check order.
 */
import { describe, expect, it } from 'vitest';
import { IommuPerm } from '../../memory/iommu.js';
import { Rng } from '../../../test/support/prng.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { VtdFault } from './fault-reasons.js';
import { Geometry, LEVEL_SIZE, newWalkResult, Pte, PteHi, walkSecondStage, WalkRules } from './page-walk.js';

const DATA = 0x200_0000;
const HOLE = 0x8000_0000;
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const R = 1;
const W = 2;
const RW = 3;

/** Levels and AGAW of a context entry with AW = levels - 2. */
const agawOf = (levels: number) => 30 + 9 * (levels - 2);

interface Walker {
  b: VtdBench;
  rules: WalkRules;
  top: number;
  levels: number;
  /** Walks `iova`; the fault reason (0 on success) and the result. */
  walk(iova: number, isWrite?: boolean, agaw?: number): { r: number; translated: number; level: number; perm: number };
  map(iova: number, phys: number, flags?: number, leafLevel?: number): void;
  /** ORs `bits` into the PTE used for `iova` at `level`. */
  set(iova: number, level: number, bits: bigint): void;
  /** Replaces the PTE used for `iova` at `level`. */
  put(iova: number, level: number, value: bigint): void;
}

function walker(awBits: number, levels: number, opts: { snoop?: boolean; tm?: boolean } = {}): Walker {
  const b = new VtdBench();
  const rules = new WalkRules(awBits, opts.snoop ?? false, opts.tm ?? false);
  const top = b.allocPage();
  return {
    b,
    rules,
    top,
    levels,
    walk(iova, isWrite = false, agaw = agawOf(levels)) {
      const out = newWalkResult();
      const r = walkSecondStage(b.memory, rules, top, levels, agaw, iova, isWrite, out);
      return { r, translated: out.translated, level: out.level, perm: out.perm };
    },
    map(iova, phys, flags = RW, leafLevel = 1) {
      b.map(top, levels, iova, phys, flags, leafLevel);
    },
    set(iova, level, bits) {
      const at = b.pteAddr(top, levels, iova, level);
      b.poke64(at, b.peek64(at) | bits);
    },
    put(iova, level, value) {
      b.poke64(b.pteAddr(top, levels, iova, level), value);
    },
  };
}

const ok = (translated: number, level = 1, perm: IommuPerm = IommuPerm.ReadWrite) => ({ r: 0, translated, level, perm });
const fault = (r: number) => expect.objectContaining({ r });

describe('constants', () => {
  it('PTE bits, geometry and level sizes', () => {
    expect(Pte).toEqual({ R: 1, W: 2, PS: 0x80, SNP: 0x800, ADDR_LO: 0xffff_f000 });
    expect(PteHi).toEqual({ IGNORED: 0xbff0_0000, TM: 0x4000_0000 });
    expect(Geometry).toEqual({ PAGE_SHIFT: 12, LEVEL_BITS: 9, ENTRIES: 512, PTE_SIZE: 8, MAX_LEVELS: 5 });
    expect(LEVEL_SIZE).toEqual([0, 4096, 2 * MiB, GiB, 2 ** 39, 2 ** 48]);
  });

  it('a fresh walk result is empty', () => {
    expect(newWalkResult()).toEqual({ translated: 0, level: 0, perm: IommuPerm.None, fsWrite: false });
    expect(newWalkResult()).not.toBe(newWalkResult());
  });
});

describe('WalkRules', () => {
  for (const [aw, haw, addr] of [
    [39, 0x7f, 0x7f],
    [48, 0xffff, 0xffff],
    [57, 0x1ff_ffff, 0xf_ffff],
  ] as const) {
    it(`aw-bits ${aw}: address masks of the high dword`, () => {
      const r = new WalkRules(aw, false, false);
      expect(r.awBits).toBe(aw);
      expect(r.hawHiMask).toBe(haw);
      expect(r.addrHiMask).toBe(addr);
    });
  }
});

describe('successful walks', () => {
  for (const [aw, levels, iovas] of [
    [39, 3, [0x5000, 0x1_4020_1000, 2 ** 39 - 0x1000, 0x7fff_f123]],
    [48, 4, [0x5000, 0x80_4020_1000, 2 ** 48 - 0x1000, 0x1_c000_0abc]],
    [57, 5, [0x5000, 2 ** 56 + 2 ** 40 + 0x20_3000, 2 ** 57 - 0x1000, 0x1_0000_0000]],
  ] as const) {
    it(`${levels} levels (aw-bits ${aw}): 4 KiB leaves for read and write`, () => {
      const w = walker(aw, levels);
      iovas.forEach((iova, i) => {
        const page = iova - (iova % 4096);
        w.map(page, DATA + i * 0x1000);
        expect(w.walk(iova), iova.toString(16)).toEqual(ok(DATA + i * 0x1000));
        expect(w.walk(iova, true), iova.toString(16)).toEqual(ok(DATA + i * 0x1000));
      });
    });
  }

  it('2 MiB and 1 GiB leaves end the walk at levels 2 and 3', () => {
    const w = walker(48, 4);
    w.map(0x4000_0000, 0x1_0000_0000, RW, 3);
    w.map(0x20_0000, 0x60_0000, RW, 2);
    expect(w.walk(0x4000_0000 + 0x1234_5678)).toEqual(ok(0x1_0000_0000, 3));
    expect(w.walk(0x20_0000 + 0x1f_ffff, true)).toEqual(ok(0x60_0000, 2));
  });

  it('a 2 MiB leaf at the top of a 3-level walk, and a 2-level (AW=0) walk', () => {
    const w = walker(39, 3);
    w.map(0x7fe0_0000, 0xa0_0000, RW, 2);
    expect(w.walk(0x7fe0_0000 + 0x1000)).toEqual(ok(0xa0_0000, 2));
    const two = walker(39, 2);
    two.map(0x3fe0_0000, 0xc0_0000, RW, 2);
    two.map(0x1000, DATA);
    expect(two.walk(0x3fe0_0000)).toEqual(ok(0xc0_0000, 2));
    expect(two.walk(0x1fff)).toEqual(ok(DATA));
    expect(two.walk(2 ** 30)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
  });

  it('bit 7 of a 4 KiB leaf is ignored (not a page size there)', () => {
    const w = walker(48, 4);
    w.map(0x3000, DATA);
    w.set(0x3000, 1, 0x80n);
    expect(w.walk(0x3000)).toEqual(ok(DATA));
  });

  it('ignored and available bits change nothing: 6:2, 10:8, 61:52, 63', () => {
    const w = walker(48, 4);
    w.map(0x3000, DATA);
    for (let level = 1; level <= 4; level++) w.set(0x3000, level, 0x77cn | 0xbff0_0000_0000_0000n);
    expect(w.walk(0x3000)).toEqual(ok(DATA));
  });

  it('outputs above 4 GiB keep the high dword (below the host address width)', () => {
    const w = walker(48, 4);
    w.map(0x5000, 0x12_3456_7000);
    w.map(0x6000, 2 ** 47 + 0x1000);
    expect(w.walk(0x5000)).toEqual(ok(0x12_3456_7000));
    expect(w.walk(0x6000)).toEqual(ok(2 ** 47 + 0x1000));
  });

  it('random mappings translate to what was mapped, at every index (seeded)', () => {
    const seed = 0x9a9e_3a1c;
    const rng = new Rng(seed);
    for (const [aw, levels] of [
      [39, 3],
      [48, 4],
      [57, 5],
    ] as const) {
      const w = walker(aw, levels);
      for (let n = 0; n < 150; n++) {
        const page = Number(rng.bits(aw) & ~0xfffn);
        const phys = DATA + rng.int(0x1000) * 0x1000;
        const leaf = rng.weighted([
          [6, 1],
          [2, 2],
          [1, 3],
        ] as const);
        const size = LEVEL_SIZE[leaf]!;
        const base = page - (page % size);
        const out = phys - (phys % size);
        // Fresh tables per mapping: a large leaf must not be taken for a table by a later mapping.
        const top = w.b.allocPage();
        w.b.map(top, levels, base, out, RW, leaf);
        const off = page < 2 ** 52 ? rng.int(0x1000) : 0;
        const res = newWalkResult();
        const r = walkSecondStage(w.b.memory, w.rules, top, levels, aw, page + off, rng.chance(0.5), res);
        expect({ r, translated: res.translated, level: res.level, perm: res.perm }, `seed ${seed} aw ${aw} #${n} iova ${page.toString(16)}`).toEqual(ok(out, leaf));
      }
    }
  });
});

describe('input address range (fault 0x4)', () => {
  it('is 2^min(AGAW, aw-bits), checked before any table read', () => {
    const a = walker(48, 3);
    a.map(2 ** 39 - 0x1000, DATA);
    expect(a.walk(2 ** 39 - 1)).toEqual(ok(DATA));
    expect(a.walk(2 ** 39)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
    // AGAW 48 but aw-bits 39.
    const b = walker(39, 4);
    b.map(2 ** 39 - 0x1000, DATA);
    expect(b.walk(2 ** 39 - 1)).toEqual(ok(DATA));
    expect(b.walk(2 ** 39)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
    expect(b.walk(2 ** 47)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
  });

  for (const [aw, levels] of [
    [39, 3],
    [48, 4],
    [57, 5],
  ] as const) {
    it(`aw-bits ${aw}, ${levels} levels: 2^${aw} faults, 2^${aw} - 1 does not`, () => {
      const w = walker(aw, levels);
      w.map(2 ** aw - 0x1000, DATA);
      if (2 ** aw - 1 < 2 ** 53) expect(w.walk(2 ** aw - 1)).toEqual(ok(DATA));
      expect(w.walk(2 ** aw - 0x1000)).toEqual(ok(DATA));
      expect(w.walk(2 ** aw)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
      expect(w.walk(2 ** 64 - 0x1000)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
      expect(w.walk(2 ** 63, true)).toEqual(fault(VtdFault.ADDR_BEYOND_MGAW));
    });
  }

  it('beyond the range the tables are not read (an unreadable top gives 0x4, not 0x3)', () => {
    const w = walker(48, 4);
    const out = newWalkResult();
    expect(walkSecondStage(w.b.memory, w.rules, HOLE, 4, 48, 2 ** 48, false, out)).toBe(VtdFault.ADDR_BEYOND_MGAW);
    expect(walkSecondStage(w.b.memory, w.rules, HOLE, 4, 48, 2 ** 48 - 0x1000, false, out)).toBe(VtdFault.CONTEXT_ENTRY_INV);
  });
});

describe('table fetch failures', () => {
  it('an unreadable top-level table: 0x3 (context entry invalid)', () => {
    for (const levels of [3, 4, 5]) {
      const w = walker(57, levels);
      const out = newWalkResult();
      expect(walkSecondStage(w.b.memory, w.rules, HOLE, levels, agawOf(levels), 0x1000, false, out)).toBe(VtdFault.CONTEXT_ENTRY_INV);
      expect(walkSecondStage(w.b.memory, w.rules, HOLE, levels, agawOf(levels), 0x1000, true, out)).toBe(VtdFault.CONTEXT_ENTRY_INV);
      expect(out).toEqual(newWalkResult());
    }
  });

  it('an unreadable lower table: 0x7 (paging entry invalid), at every depth', () => {
    for (let level = 4; level >= 2; level--) {
      const w = walker(48, 4);
      w.map(0x5000, DATA);
      w.put(0x5000, level, BigInt(HOLE) | 3n);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_INV));
    }
  });

  it('an all-ones entry counts as a failed fetch: 0x3 at the top, 0x7 below', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA);
    w.put(0x5000, 1, 0xffff_ffff_ffff_ffffn);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_INV));
    w.put(0x5000, 3, 0xffff_ffff_ffff_ffffn);
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.PAGING_ENTRY_INV));
    w.put(0x5000, 4, 0xffff_ffff_ffff_ffffn);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.CONTEXT_ENTRY_INV));
  });

  it('only all 64 bits set is a failed fetch; one half all-ones is a reserved-bit fault', () => {
    for (const [level, value] of [
      [4, 0x0000_0000_ffff_ffffn],
      [2, 0x0000_0000_ffff_ffffn],
      [4, 0xffff_ffff_0000_0003n],
      [3, 0xffff_ffff_0000_0003n],
      [1, 0xffff_ffff_0000_0003n],
      // All-ones but one bit (63, ignored; 2, EMT): reserved bits, not a failed fetch.
      [4, 0x7fff_ffff_ffff_ffffn],
      [1, 0xffff_ffff_ffff_fffbn],
    ] as const) {
      const w = walker(48, 4);
      w.map(0x9000, DATA);
      w.put(0x9000, level, value);
      expect(w.walk(0x9000), `level ${level} ${value.toString(16)}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });
});

describe('permissions (faults 0x5 / 0x6)', () => {
  it('a leaf without W: reads allowed (perm R), writes fault 0x5', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA, R);
    expect(w.walk(0x5000)).toEqual(ok(DATA, 1, IommuPerm.Read));
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.WRITE));
  });

  it('a leaf without R: writes allowed (perm W), reads fault 0x6', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA, W);
    expect(w.walk(0x5000, true)).toEqual(ok(DATA, 1, IommuPerm.Write));
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.READ));
  });

  it('a non-present entry (R=W=0) faults as the access: 0x6 read, 0x5 write, at every level', () => {
    for (let level = 1; level <= 4; level++) {
      const w = walker(48, 4);
      w.map(0x5000, DATA);
      const at = w.b.pteAddr(w.top, 4, 0x5000, level);
      w.b.poke64(at, w.b.peek64(at) & ~3n);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.READ));
      expect(w.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.WRITE));
    }
    // An empty table: the top entry is not present.
    const e = walker(39, 3);
    expect(e.walk(0x1000)).toEqual(fault(VtdFault.READ));
    expect(e.walk(0x1000, true)).toEqual(fault(VtdFault.WRITE));
  });

  it('permissions accumulate over the levels', () => {
    for (let level = 2; level <= 4; level++) {
      const noW = walker(48, 4);
      noW.map(0x5000, DATA);
      noW.put(0x5000, level, (noW.b.peek64(noW.b.pteAddr(noW.top, 4, 0x5000, level)) & ~3n) | 1n);
      expect(noW.walk(0x5000), `level ${level}`).toEqual(ok(DATA, 1, IommuPerm.Read));
      expect(noW.walk(0x5000, true), `level ${level}`).toEqual(fault(VtdFault.WRITE));
      const noR = walker(48, 4);
      noR.map(0x5000, DATA);
      noR.put(0x5000, level, (noR.b.peek64(noR.b.pteAddr(noR.top, 4, 0x5000, level)) & ~3n) | 2n);
      expect(noR.walk(0x5000, true), `level ${level}`).toEqual(ok(DATA, 1, IommuPerm.Write));
      expect(noR.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.READ));
    }
  });

  it('large leaves carry the accumulated permissions too', () => {
    const w = walker(48, 4);
    w.map(0x4000_0000, 0x8000_0000, R, 3);
    w.map(0x20_0000, 0x40_0000, W, 2);
    expect(w.walk(0x4000_0000)).toEqual(ok(0x8000_0000, 3, IommuPerm.Read));
    expect(w.walk(0x4000_0000, true)).toEqual(fault(VtdFault.WRITE));
    expect(w.walk(0x20_0000, true)).toEqual(ok(0x40_0000, 2, IommuPerm.Write));
    expect(w.walk(0x20_0000)).toEqual(fault(VtdFault.READ));
  });

  it('the permission check comes before the reserved-bit check', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA, R);
    w.set(0x5000, 1, 0x800n | (1n << 50n));
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.WRITE));
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    w.put(0x5000, 3, 0x800n);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.READ));
  });
});

describe('reserved bits (fault 0xC)', () => {
  for (const [aw, levels] of [
    [39, 3],
    [48, 4],
  ] as const) {
    it(`aw-bits ${aw}: address bits ${aw}..51 at every level`, () => {
      for (let level = 1; level <= levels; level++) {
        for (const b of [aw, 51]) {
          const w = walker(aw, levels);
          w.map(0x5000, DATA);
          w.set(0x5000, level, 1n << BigInt(b));
          expect(w.walk(0x5000), `level ${level} bit ${b}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
        }
      }
    });

    it(`aw-bits ${aw}: bit ${aw - 1} is an address bit`, () => {
      const w = walker(aw, levels);
      w.map(0x5000, DATA);
      w.set(0x5000, 1, 1n << BigInt(aw - 1));
      expect(w.walk(0x5000)).toEqual(ok(DATA + 2 ** (aw - 1)));
      // In a table pointer it points outside RAM: a failed fetch, not a reserved bit.
      w.set(0x5000, 2, 1n << BigInt(aw - 1));
      expect(w.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_INV));
    });
  }

  it('aw-bits 57: bits 56:52 are ignored (never address bits), only TM is reserved above', () => {
    const w = walker(57, 5);
    w.map(0x5000, DATA);
    for (let level = 1; level <= 5; level++) w.set(0x5000, level, 0x01f0_0000_0000_0000n);
    expect(w.walk(0x5000)).toEqual(ok(DATA));
    w.set(0x5000, 1, 1n << 51n);
    expect(w.walk(0x5000)).toEqual(ok(DATA + 2 ** 51));
    for (let level = 1; level <= 5; level++) {
      const t = walker(57, 5);
      t.map(0x5000, DATA);
      t.set(0x5000, level, 1n << 62n);
      expect(t.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });

  it('SNP (bit 11) is reserved at every level without snoop control', () => {
    for (let level = 1; level <= 5; level++) {
      const w = walker(57, 5);
      w.map(0x5000, DATA);
      w.set(0x5000, level, 0x800n);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
    for (const leaf of [2, 3]) {
      const w = walker(48, 4);
      w.map(0x4000_0000, 0x4000_0000, RW, leaf);
      w.set(0x4000_0000, leaf, 0x800n);
      expect(w.walk(0x4000_0000), `leaf ${leaf}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });

  it('with snoop control SNP is allowed in leaves (4 KiB, 2 MiB, 1 GiB) only', () => {
    const w = walker(48, 4, { snoop: true });
    w.map(0x5000, DATA);
    w.set(0x5000, 1, 0x800n);
    expect(w.walk(0x5000)).toEqual(ok(DATA));
    w.map(0x4000_0000, 0x4000_0000, RW, 3);
    w.set(0x4000_0000, 3, 0x800n);
    expect(w.walk(0x4000_0000)).toEqual(ok(0x4000_0000, 3));
    w.map(0x20_0000, 0x20_0000, RW, 2);
    w.set(0x20_0000, 2, 0x800n);
    expect(w.walk(0x20_0000)).toEqual(ok(0x20_0000, 2));
    for (let level = 2; level <= 5; level++) {
      const t = walker(57, 5, { snoop: true });
      t.map(0x5000, DATA);
      t.set(0x5000, level, 0x800n);
      expect(t.walk(0x5000), `table level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });

  it('PS (bit 7) is reserved at levels 4 and 5', () => {
    for (const level of [4, 5]) {
      const w = walker(57, 5);
      w.map(0x5000, DATA);
      w.set(0x5000, level, 0x80n);
      expect(w.walk(0x5000), `level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });

  it('a 2 MiB leaf reserves bits 20:12; a 1 GiB leaf bits 29:12', () => {
    for (const [leaf, bits, free] of [
      [2, [12, 16, 20], 21],
      [3, [12, 20, 21, 29], 30],
    ] as const) {
      for (const b of bits) {
        const w = walker(48, 4);
        w.map(0x4000_0000, 0x4000_0000, RW, leaf);
        w.set(0x4000_0000, leaf, 1n << BigInt(b));
        expect(w.walk(0x4000_0000), `leaf ${leaf} bit ${b}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
      }
      const w = walker(48, 4);
      w.map(0x4000_0000, 0x1_0000_0000, RW, leaf);
      w.set(0x4000_0000, leaf, 1n << BigInt(free));
      expect(w.walk(0x4000_0000), `leaf ${leaf} bit ${free}`).toEqual(ok(0x1_0000_0000 + 2 ** free, leaf));
    }
  });

  it('table pointers at levels 2 and 3 may use bits 29:12 (only large leaves reserve them)', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA);
    // The level-2 and level-3 tables sit at 16 MiB+: bits 12..23 of their pointers are set or clear freely.
    expect(w.b.peek64(w.b.pteAddr(w.top, 4, 0x5000, 3)) & 0x3fff_f000n).not.toBe(0n);
    expect(w.walk(0x5000)).toEqual(ok(DATA));
  });

  it('large leaves reserve the address bits above the host width too', () => {
    for (const leaf of [2, 3]) {
      const w = walker(39, 3);
      w.map(0x4000_0000, 0x4000_0000, RW, leaf);
      w.set(0x4000_0000, leaf, 1n << 39n);
      expect(w.walk(0x4000_0000), `leaf ${leaf}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
  });

  it('TM (bit 62) is reserved unless stale-tm with device-iotlb, and then only in leaves', () => {
    const off = walker(48, 4);
    off.map(0x5000, DATA);
    off.set(0x5000, 1, 1n << 62n);
    expect(off.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    for (const leaf of [2, 3]) {
      const l = walker(48, 4);
      l.map(0x4000_0000, 0x4000_0000, RW, leaf);
      l.set(0x4000_0000, leaf, 1n << 62n);
      expect(l.walk(0x4000_0000), `leaf ${leaf}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }

    const on = walker(48, 4, { tm: true });
    on.map(0x5000, DATA);
    on.set(0x5000, 1, 1n << 62n);
    expect(on.walk(0x5000)).toEqual(ok(DATA));
    for (const leaf of [2, 3]) {
      const l = walker(48, 4, { tm: true });
      l.map(0x4000_0000, 0x4000_0000, RW, leaf);
      l.set(0x4000_0000, leaf, 1n << 62n);
      expect(l.walk(0x4000_0000), `leaf ${leaf}`).toEqual(ok(0x4000_0000, leaf));
    }
    for (let level = 2; level <= 5; level++) {
      const t = walker(57, 5, { tm: true });
      t.map(0x5000, DATA);
      t.set(0x5000, level, 1n << 62n);
      expect(t.walk(0x5000), `table level ${level}`).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    }
    // TM does not relax the address bits above the host width.
    const hi = walker(48, 4, { tm: true });
    hi.map(0x5000, DATA);
    hi.set(0x5000, 1, 1n << 48n);
    expect(hi.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
    // Nor does snoop control.
    const sn = walker(48, 4, { snoop: true });
    sn.map(0x5000, DATA);
    sn.set(0x5000, 1, 1n << 62n);
    expect(sn.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
  });
});

describe('interrupt window output (fault 0xE)', () => {
  const cases: [string, number, number, boolean][] = [
    // [what, leaf level, output, faults]
    ['4 KiB at 0xFEE00000', 1, 0xfee0_0000, true],
    ['4 KiB at 0xFEE80000', 1, 0xfee8_0000, true],
    ['4 KiB at 0xFEEFF000', 1, 0xfeef_f000, true],
    ['4 KiB just below', 1, 0xfedf_f000, false],
    ['4 KiB just above', 1, 0xfef0_0000, false],
    ['4 KiB above 4 GiB', 1, 0x1_fee0_0000, false],
    ['2 MiB at 0xFEE00000', 2, 0xfee0_0000, true],
    ['2 MiB ending below', 2, 0xfec0_0000, false],
    ['2 MiB above', 2, 0xff00_0000, false],
    ['1 GiB covering it', 3, 0xc000_0000, true],
    ['1 GiB below', 3, 0x8000_0000, false],
    ['1 GiB above 4 GiB', 3, 0x1_0000_0000, false],
  ];
  for (const [what, leaf, out, faults] of cases) {
    it(`${what}: ${faults ? 'faults' : 'translates'}`, () => {
      const w = walker(48, 4);
      const iova = 0x4000_0000;
      w.map(iova, out, RW, leaf);
      expect(w.walk(iova)).toEqual(faults ? fault(VtdFault.INTERRUPT_ADDR) : ok(out, leaf));
      expect(w.walk(iova, true)).toEqual(faults ? fault(VtdFault.INTERRUPT_ADDR) : ok(out, leaf));
    });
  }

  it('is checked after permissions and reserved bits', () => {
    const w = walker(48, 4);
    w.map(0x5000, 0xfee0_0000, R);
    expect(w.walk(0x5000, true)).toEqual(fault(VtdFault.WRITE));
    w.set(0x5000, 1, 0x800n);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_RSVD));
  });

  it('a table pointer into the window is not an output: it is fetched (a hole here: 0x7)', () => {
    const w = walker(48, 4);
    w.map(0x5000, DATA);
    w.put(0x5000, 2, 0xfee0_0000n | 3n);
    expect(w.walk(0x5000)).toEqual(fault(VtdFault.PAGING_ENTRY_INV));
  });
});
