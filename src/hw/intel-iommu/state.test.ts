/**
 * The unit's state record (state.ts): "translation enabled" is one fact —
 * the flag and GSTS.TES never disagree, whatever the guest writes — and
 * reset puts the record back to power-on.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { u32Stream } from '../../../test/support/prng.js';
import { Gcmd, Gsts, Reg } from './reg-layout.js';
import { RegisterFile } from './registers.js';
import { VtdState } from './state.js';

/** A register file with GSTS at its offset (raw, no masks needed). */
function file(): RegisterFile {
  return new RegisterFile(Reg.GSTS + 4);
}

const tes = (regs: RegisterFile) => (regs.get32(Reg.GSTS) & Gsts.TES) !== 0;

describe('VtdState', () => {
  it('starts with translation off, no root table, record 0 next, generation 1', () => {
    const s = new VtdState();
    expect([s.translationEnabled, s.rootTable, s.scalable, s.nextFrcd, s.contextGeneration, s.traceHits]).toEqual([
      false, 0, false, 0, 1, false,
    ]);
  });

  it('setTranslationEnabled writes the flag and GSTS.TES together, other GSTS bits kept', () => {
    const s = new VtdState();
    const regs = file();
    regs.set32(Reg.GSTS, Gsts.RTPS);
    s.setTranslationEnabled(regs, true);
    expect([s.translationEnabled, regs.get32(Reg.GSTS)]).toEqual([true, (Gsts.RTPS | Gsts.TES) >>> 0]);
    s.setTranslationEnabled(regs, false);
    expect([s.translationEnabled, regs.get32(Reg.GSTS)]).toEqual([false, Gsts.RTPS]);
  });

  it('reset: translation off (TES with it), root table and record index back; the generation moves on only through the caches', () => {
    const s = new VtdState();
    const regs = file();
    s.setTranslationEnabled(regs, true);
    s.rootTable = 0x1000;
    s.scalable = true;
    s.nextFrcd = 3;
    s.contextGeneration = 9;
    s.traceHits = true;
    s.reset(regs);
    expect([s.translationEnabled, tes(regs), s.rootTable, s.scalable, s.nextFrcd]).toEqual([false, false, 0, false, 0]);
    expect([s.contextGeneration, s.traceHits]).toEqual([9, true]);
  });
});

describe('translation enabled is one fact in the unit', () => {
  it('GSTS.TES equals the hot-path flag after every guest GCMD write, reset included', () => {
    for (const dmaTranslation of [true, false]) {
      const b = new VtdBench({ props: { 'dma-translation': dmaTranslation } });
      const next = u32Stream(dmaTranslation ? 7 : 8);
      let sawOn = false;
      for (let i = 0; i < 400; i++) {
        const r = next();
        if (r % 97 === 0) b.iommu.reset();
        else b.w32(Reg.GCMD, (r & (Gcmd.TE | Gcmd.SRTP | Gcmd.QIE | Gcmd.IRE | Gcmd.SIRTP | Gcmd.CFI)) >>> 0);
        const te = (b.r32(Reg.GSTS) & Gsts.TES) !== 0;
        expect(te, `step ${i}`).toBe(b.iommu.dmarEnabled);
        expect(b.iommu.state.translationEnabled).toBe(te);
        sawOn ||= te;
      }
      // dma-translation=off never enables translation; otherwise the walk must have turned it on.
      expect(sawOn).toBe(dmaTranslation);
    }
  });
});
