/**
 * Property tests: random register writes and random guest tables never
 * throw, and the unit's invariants hold (PPF == some FRCD.F, RTPS once set
 * stays set, translation results stay inside their pages).
 */
import { describe, expect, it } from 'vitest';
import { DmaAccess, IommuPerm, newIotlbEntry } from '../../memory/iommu.js';
import { Fsts, Gsts, Reg } from './reg-layout.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { iova as iovaOf } from '../../memory/address.js';
import { u32Stream } from '../../../test/support/prng.js';

describe('VT-d under random input', () => {
  it('random register writes never throw and keep PPF consistent (seeds 1-20)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = u32Stream(seed);
      const b = new VtdBench({ props: { nfr: 1 + (seed % 4) } });
      const size = b.iommu.regs.size;
      let rtps = false;
      for (let i = 0; i < 400; i++) {
        const off = (r() % (size / 4)) * 4;
        const v = r();
        if (r() & 1 && off % 8 === 0) b.w64(off, (BigInt(r()) << 32n) | BigInt(v));
        else b.w32(off, v);
        const fsts = b.r32(Reg.FSTS);
        let anyF = false;
        for (let k = 0; k < b.iommu.config.nfr; k++) anyF ||= (b.r32(Reg.FRCD0 + 16 * k + 12) & 0x8000_0000) !== 0;
        expect((fsts & Fsts.PPF) !== 0).toBe(anyF);
        const rtpsNow = (b.r32(Reg.GSTS) & Gsts.RTPS) !== 0;
        if (rtps) expect(rtpsNow).toBe(true);
        rtps = rtpsNow;
      }
    }
  });

  it('random root/context/page tables never throw; successful translations are consistent (seeds 7919 * 1-10)', () => {
    const e = newIotlbEntry();
    for (let seed = 1; seed <= 10; seed++) {
      const r = u32Stream(seed * 7919);
      const b = new VtdBench({ props: { 'aw-bits': [39, 48, 57][seed % 3]!, nfr: 2 } });
      const root = b.allocPage();
      const pages = [root];
      for (let i = 0; i < 16; i++) pages.push(b.allocPage());
      // Fill the tables with random entries that mostly point at other table pages.
      for (const p of pages) {
        for (let i = 0; i < 64; i++) {
          const idx = r() % 512;
          const target = pages[r() % pages.length]!;
          const low = r() & 0xfff;
          const hi = r() % 8 === 0 ? BigInt(r()) << 32n : 0n;
          b.poke64(p + idx * 8, hi | BigInt(target) | BigInt(low));
        }
      }
      b.setRoot(root);
      b.gcmd(0x8000_0000);
      for (let i = 0; i < 2000; i++) {
        const req = b.device(r() % 4, r() % 256).req;
        const iova = (r() % 0x4000) * 0x1000 + (r() & 0xfff);
        const t = b.iommu.translatorFor(req);
        const ok = t.translate(iovaOf(iova), r() & 1 ? DmaAccess.Write : DmaAccess.Read, e);
        if (ok) {
          expect(iova - e.iova).toBeGreaterThanOrEqual(0);
          expect(iova - e.iova).toBeLessThanOrEqual(e.addrMask);
          expect(e.translated % (e.addrMask + 1)).toBe(0);
          expect(e.perm & ~IommuPerm.ReadWrite).toBe(0);
        }
        if (r() % 50 === 0) b.w32(Reg.FRCD0 + 12, 0x8000_0000);
        if (r() % 100 === 0) b.w32(Reg.FSTS, 0xffff_ffff);
      }
    }
  });
});
