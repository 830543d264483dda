import { describe, expect, it } from 'vitest';
import { DMAR_BASE, Reg, REG_FILE_SIZE } from './reg-layout.js';
import { RegisterFile } from './registers.js';
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
