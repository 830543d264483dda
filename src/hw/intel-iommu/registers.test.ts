import { describe, expect, it } from 'vitest';
import { DMAR_BASE, EventCtl, Iqa, PQ_INDEX_MASK, Prs, Reg, REG_FILE_SIZE } from './reg-layout.js';
import { defineVtdRegisters, RegisterFile } from './registers.js';
import { Ecap } from './caps.js';
import type { PropValues } from '../../machine/device-type.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';

/** Expected reset value, writable mask (after writing all-ones to a zeroed register), per register. */
const TABLE: [string, number, bigint, bigint][] = [
  ['VER', Reg.VER, 0x10n, 0n],
  ['CAP', Reg.CAP, 0x80d2008c222f0606n, 0n],
  ['ECAP', Reg.ECAP, 0xf00f4an, 0n],
  ['RTADDR', Reg.RTADDR, 0n, 0xffff_ffff_ffff_fc00n],
  ['FEDATA', Reg.FEDATA, 0n, 0xffffn],
  ['FEADDR', Reg.FEADDR, 0n, 0xffff_fffcn],
  ['FEUADDR', Reg.FEUADDR, 0n, 0n],
  ['PMEN', Reg.PMEN, 0n, 0n],
  ['IQH', Reg.IQH, 0n, 0n],
  ['IQT', Reg.IQT, 0n, 0x7fff0n],
  ['IEDATA', Reg.IEDATA, 0n, 0xffff_ffffn],
  ['IEADDR', Reg.IEADDR, 0n, 0xffff_fffcn],
  ['IEUADDR', Reg.IEUADDR, 0n, 0n],
  ['IRTA', Reg.IRTA, 0n, 0xffff_ffff_ffff_f80fn],
];

describe('register file', () => {
  it('applies wmask, w1c and write-only masks in one helper', () => {
    const f = new RegisterFile(16);
    f.define32(0, 0x8000_0001, 0x0000_ff00, 0x1, 0x0000_f000);
    f.write32(0, 0xffff_ffff);
    expect(f.get32(0)).toBe(0x8000_ff00);
    expect(f.read32(0)).toBe(0x8000_0f00);
    f.reset();
    expect(f.get32(0)).toBe(0x8000_0001);
    expect(() => f.get32(16)).toThrow(RangeError);
  });

  it('refuses a size that is not a positive multiple of 4, in one line (a setup mistake)', () => {
    for (const size of [0, -4, 6, 0x231]) {
      expect(() => new RegisterFile(size), String(size)).toThrow(`register file size ${size} must be a positive multiple of 4`);
    }
    expect(new RegisterFile(4).size).toBe(4);
  });

  it('refuses offsets outside the file or unaligned, naming the offset (a device bug, never guest input)', () => {
    const f = new RegisterFile(16);
    f.define32(12, 0x1234, 0, 0);
    expect(f.get32(12)).toBe(0x1234);
    for (const off of [16, -4, 2, 13]) {
      expect(() => f.get32(off), String(off)).toThrow(RangeError);
      expect(() => f.set32(off, 1), String(off)).toThrow(RangeError);
    }
    expect(() => f.get32(2)).toThrow('register offset 0x2 outside the file or unaligned');
    expect(() => f.get32(0x10)).toThrow('register offset 0x10 outside the file or unaligned');
  });

  it('resets every register as QEMU and applies its write masks', () => {
    const b = new VtdBench();
    for (const [name, off, reset] of TABLE) {
      expect(b.r64(off) & (name.endsWith('ADDR') || name.endsWith('DATA') || name === 'PMEN' ? 0xffff_ffffn : -1n), name).toBe(reset);
    }
    for (const [name, off, reset, wmask] of TABLE) {
      const wide = wmask > 0xffff_ffffn || [Reg.RTADDR, Reg.IQH, Reg.IQT, Reg.IRTA, Reg.CAP, Reg.ECAP].includes(off as never);
      if (wide) {
        b.w64(off, 0xffff_ffff_ffff_ffffn);
        expect(b.r64(off), name).toBe(reset | wmask);
      } else if (off !== Reg.VER) {
        b.w32(off, 0xffff_ffff);
        expect(BigInt(b.r32(off)), name).toBe((reset & 0xffff_ffffn) | wmask);
      }
    }
  });

  it('hides write-only bits: GCMD, CCMD SID/FM, IVA', () => {
    const b = new VtdBench();
    b.w32(Reg.GCMD, 0x0080_0000); // CFI only: no side effect in the core
    expect(b.r32(Reg.GCMD)).toBe(0);
    b.w32(Reg.CCMD, 0xffff_ffff);
    expect(b.r32(Reg.CCMD)).toBe(0xffff);
    b.w64(Reg.IVA, 0xffff_ffff_ffff_ffffn);
    expect(b.r64(Reg.IVA)).toBe(0n);
    expect(b.iommu.regs.get64(Reg.IVA)).toBe(0xffff_ffff_ffff_f07fn);
  });

  it('accepts only 4- and 8-byte aligned accesses', () => {
    const b = new VtdBench();
    expect(b.memory.read(DMAR_BASE + Reg.VER, 1)).toBe(0);
    expect(b.memory.read(DMAR_BASE + Reg.VER, 2)).toBe(0);
    expect(b.memory.read(DMAR_BASE + Reg.VER, 4)).toBe(0x10);
    expect(b.r32(Reg.CAP + 4)).toBe(0x80d2008c);
    b.memory.write(DMAR_BASE + Reg.FEDATA, 2, 0x1234);
    expect(b.r32(Reg.FEDATA)).toBe(0);
    expect(b.memory.read64(DMAR_BASE + Reg.GSTS)).toBe(0n); // unaligned 8-byte: refused
    expect(b.r64(Reg.GCMD)).toBe(0n);
  });

  it('reads unlisted offsets as 0 and ignores writes; the window is 0x230 bytes', () => {
    const b = new VtdBench();
    b.w32(0x58, 0xffff_ffff);
    b.w32(0x100, 0xffff_ffff);
    expect(b.r32(0x58)).toBe(0);
    expect(b.r32(0x100)).toBe(0);
    expect(b.iommu.region.size).toBe(REG_FILE_SIZE);
  });

  it('has the same register file after reset as at creation', () => {
    const b = new VtdBench();
    const dump = () => Array.from({ length: REG_FILE_SIZE / 4 }, (_, i) => b.r32(i * 4));
    const before = dump();
    b.w64(Reg.RTADDR, 0x1234000n);
    b.w32(Reg.GCMD, 0x4000_0000);
    b.w32(Reg.FECTL, 0);
    b.w32(Reg.FEDATA, 0x55);
    b.w64(Reg.IRTA, 0xabc00fn);
    expect(dump()).not.toEqual(before);
    b.iommu.reset();
    expect(dump()).toEqual(before);
  });

  it('grows the file for nfr > 1 with FRO kept at 0x22', () => {
    const b = new VtdBench({ props: { nfr: 4 } });
    expect(b.iommu.region.size).toBe(0x220 + 4 * 16);
    expect((b.r64(Reg.CAP) >> 24n) & 0x3ffn).toBe(0x22n);
    expect((b.r64(Reg.CAP) >> 40n) & 0xffn).toBe(3n);
    expect(b.iommu.regs.w1cMask(0x220 + 3 * 16 + 12)).toBe(0x8000_0000);
  });
});

/** svm=on as QEMU 11.1 accepts it: ECAP.PRS, so the page-request registers exist. */
const SVM = { 'scalable-mode': true, svm: true, 'device-iotlb': true, fsts: true, 'pasid-bits': 20 } as const;

/** [name, offset, width, wmask] of the page-request registers (QEMU 11.1 vtd_init, spec 11.4.11). */
const PAGE_REQUEST: [string, number, 4 | 8, bigint][] = [
  ['PQH', Reg.PQH, 8, 0x7_ffe0n],
  ['PQT', Reg.PQT, 8, 0x7_ffe0n],
  ['PQA', Reg.PQA, 8, 0xffff_ffff_ffff_f007n],
  ['PRS', Reg.PRS, 4, 0n],
  ['PECTL', Reg.PECTL, 4, 0x8000_0000n],
  ['PEDATA', Reg.PEDATA, 4, 0xffffn],
  ['PEADDR', Reg.PEADDR, 4, 0xffff_fffcn],
  ['PEUADDR', Reg.PEUADDR, 4, 0xffff_ffffn],
];

describe('page-request registers (svm=on)', () => {
  it('sit at 0xC0-0xEC as spec 11.4.11 places them', () => {
    expect([Reg.PQH, Reg.PQT, Reg.PQA, Reg.PRS, Reg.PECTL, Reg.PEDATA, Reg.PEADDR, Reg.PEUADDR]).toEqual([0xc0, 0xc8, 0xd0, 0xdc, 0xe0, 0xe4, 0xe8, 0xec]);
    expect([Prs.PPR, Prs.PRO, PQ_INDEX_MASK]).toEqual([1, 2, 0x7_ffe0]);
  });

  it('reset to 0 (PECTL.IM included) and take their QEMU 11.1 write masks', () => {
    const b = new VtdBench({ props: SVM });
    for (const [name, off, width] of PAGE_REQUEST) expect(width === 8 ? b.r64(off) : BigInt(b.r32(off)), name).toBe(0n);
    for (const [name, off, width, wmask] of PAGE_REQUEST) {
      if (width === 8) {
        b.w64(off, 0xffff_ffff_ffff_ffffn);
        expect(b.r64(off), name).toBe(wmask);
        b.w64(off, 0n);
        expect(b.r64(off), name).toBe(0n);
      } else {
        b.w32(off, 0xffff_ffff);
        expect(BigInt(b.r32(off)), name).toBe(wmask);
        b.w32(off, 0);
        expect(b.r32(off), name).toBe(0);
      }
      const w = width === 8 ? [off, off + 4] : [off];
      for (const o of w) expect(b.iommu.regs.w1cMask(o), name).toBe(o === Reg.PRS ? Prs.PPR | Prs.PRO : 0);
    }
    // FECTL and IECTL reset with IM set; PECTL does not (QEMU 11.1).
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
    expect(b.r32(Reg.IECTL)).toBe(EventCtl.IM >>> 0);
  });

  it('PRS.PPR / PRO are write-1-to-clear', () => {
    const b = new VtdBench({ props: SVM });
    b.iommu.regs.set32(Reg.PRS, Prs.PPR | Prs.PRO);
    b.w32(Reg.PRS, Prs.PRO);
    expect(b.r32(Reg.PRS)).toBe(Prs.PPR);
    b.w32(Reg.PRS, 0);
    expect(b.r32(Reg.PRS)).toBe(Prs.PPR);
    b.w32(Reg.PRS, 0xffff_ffff);
    expect(b.r32(Reg.PRS)).toBe(0);
  });

  it('come back to 0 on reset', () => {
    const b = new VtdBench({ props: SVM });
    for (const [, off, width] of PAGE_REQUEST) {
      if (width === 8) b.w64(off, 0xffff_ffff_ffff_ffffn);
      else b.w32(off, 0xffff_ffff);
    }
    b.iommu.regs.set32(Reg.PRS, Prs.PPR);
    b.iommu.reset();
    for (const [name, off, width] of PAGE_REQUEST) expect(width === 8 ? b.r64(off) : BigInt(b.r32(off)), name).toBe(0n);
  });

  it('exist only with ECAP.PRS: without svm the offsets read 0 and ignore writes', () => {
    const sets: PropValues[] = [{}, { 'scalable-mode': true }, { ...SVM, svm: false }];
    for (const props of sets) {
      const b = new VtdBench({ props });
      for (const [name, off] of PAGE_REQUEST) {
        b.w32(off, 0xffff_ffff);
        expect(b.r32(off), name).toBe(0);
        expect(b.iommu.regs.writableMask(off), name).toBe(0);
        expect(b.iommu.regs.w1cMask(off), name).toBe(0);
      }
    }
    // Keyed on the ECAP value handed to defineVtdRegisters, nothing else.
    const f = new RegisterFile(REG_FILE_SIZE);
    defineVtdRegisters(f, 0n, Ecap.PRS, 1);
    expect(f.writableMask(Reg.PECTL)).toBe(EventCtl.IM >>> 0);
    const g = new RegisterFile(REG_FILE_SIZE);
    defineVtdRegisters(g, 0n, ~Ecap.PRS & 0xffff_ffff_ffff_ffffn, 1);
    expect(g.writableMask(Reg.PECTL)).toBe(0);
  });
});

describe('scalable mode leaves the other masks as in legacy mode (QEMU 11.1)', () => {
  it('RTADDR bits 11:10 (TTM) and IQA.DW are writable with and without scalable-mode', () => {
    const sets: PropValues[] = [{}, { 'scalable-mode': true }, SVM];
    for (const props of sets) {
      const b = new VtdBench({ props });
      expect(b.iommu.regs.writableMask(Reg.RTADDR)).toBe(0xffff_fc00);
      expect(b.iommu.regs.writableMask(Reg.IQA) & Iqa.DW).toBe(Iqa.DW);
    }
  });

  it('every register but CAP, ECAP and the page-request ones has the legacy reset value and masks', () => {
    const legacy = new VtdBench();
    const pr = new Set(PAGE_REQUEST.flatMap(([, off, width]) => (width === 8 ? [off, off + 4] : [off])));
    const sets: PropValues[] = [{ 'scalable-mode': true }, { 'scalable-mode': true, fsts: true, 'x-nested': true, 'x-smpwc': true, 'x-fs5lp': true }, SVM];
    for (const props of sets) {
      const b = new VtdBench({ props });
      for (let off = 0; off < REG_FILE_SIZE; off += 4) {
        if (off >= Reg.CAP && off < Reg.ECAP + 8) continue;
        if (pr.has(off) && props === SVM) continue;
        const what = `${JSON.stringify(props)} 0x${off.toString(16)}`;
        expect(b.iommu.regs.get32(off), what).toBe(legacy.iommu.regs.get32(off));
        expect(b.iommu.regs.writableMask(off), what).toBe(legacy.iommu.regs.writableMask(off));
        expect(b.iommu.regs.w1cMask(off), what).toBe(legacy.iommu.regs.w1cMask(off));
      }
    }
  });
});
