import { describe, expect, it, vi } from 'vitest';
import { Gcmd, Gsts, Reg } from './reg-layout.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import type { Tracer } from '../../machine/device-type.js';

const u32 = (v: number) => v >>> 0;

describe('GCMD', () => {
  it('TE sets / clears TES; SRTP latches RTADDR and sets RTPS for good', () => {
    const b = new VtdBench();
    b.w64(Reg.RTADDR, 0x1_2345_6000n | 0xc00n);
    b.w32(Reg.GCMD, Gcmd.SRTP);
    expect(b.iommu.rootTable).toBe(0x1_2345_6000);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.RTPS);
    b.w32(Reg.GCMD, u32(Gcmd.TE));
    expect(b.r32(Reg.GSTS)).toBe(u32(Gsts.TES | Gsts.RTPS));
    expect(b.iommu.dmarEnabled).toBe(true);
    b.w32(Reg.GCMD, 0);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.RTPS);
    expect(b.r32(Reg.GCMD)).toBe(0);
  });

  it('repeats SRTP on every `GSTS | bit` write (kvm-unit-tests style), flushing caches', () => {
    const b = new VtdBench();
    b.w32(Reg.GCMD, Gcmd.SRTP);
    let flushes = 0;
    const orig = b.iommu.resetCaches.bind(b.iommu);
    b.iommu.resetCaches = () => {
      flushes++;
      orig();
    };
    b.w32(Reg.GCMD, u32(b.r32(Reg.GSTS) | Gcmd.TE));
    expect(flushes).toBe(2); // TE change + SRTP again
    expect(b.r32(Reg.GSTS)).toBe(u32(Gsts.TES | Gsts.RTPS));
  });

  it('ignores TE with dma-translation=off, IRE without intremap; SFL/EAFL/WBF/CFI ignored', () => {
    const b = new VtdBench({ props: { 'dma-translation': false } });
    b.w32(Reg.GCMD, u32(Gcmd.TE));
    expect(b.r32(Reg.GSTS)).toBe(0);
    const c = new VtdBench({ props: { intremap: 'off' } });
    c.w32(Reg.GCMD, Gcmd.IRE);
    expect(c.r32(Reg.GSTS)).toBe(0);
    const d = new VtdBench();
    d.w32(Reg.GCMD, Gcmd.SFL | Gcmd.EAFL | Gcmd.WBF | Gcmd.CFI);
    expect(d.r32(Reg.GSTS)).toBe(0);
    d.w32(Reg.GCMD, Gcmd.IRE | Gcmd.SIRTP);
    expect(d.r32(Reg.GSTS)).toBe(Gsts.IRES | Gsts.IRTPS);
    d.w32(Reg.GCMD, 0);
    expect(d.r32(Reg.GSTS)).toBe(Gsts.IRTPS);
  });

  it('hands QIE, SIRTP, IRE and CFI to the queue and the remapper, which report QIES / IRTPS / IRES', () => {
    const b = new VtdBench({ props: { intremap: 'on' } });
    const { queue, remapper } = b.iommu;
    const spies = {
      qie: vi.spyOn(queue, 'onQieChange'),
      sirtp: vi.spyOn(remapper, 'onSirtp'),
      ire: vi.spyOn(remapper, 'onIreChange'),
      cfi: vi.spyOn(remapper, 'onCfiChange'),
    };
    /** The calls of every spy, in call order: "name" or "name:argument". */
    const calls = () =>
      Object.entries(spies)
        .flatMap(([name, spy]) => spy.mock.calls.map((args, i) => [spy.mock.invocationCallOrder[i]!, args.length ? `${name}:${args[0]}` : name] as const))
        .sort((x, y) => x[0] - y[0])
        .map(([, c]) => c);
    b.w32(Reg.GCMD, Gcmd.QIE);
    b.w32(Reg.GCMD, Gcmd.QIE | Gcmd.SIRTP);
    b.w32(Reg.GCMD, Gcmd.QIE | Gcmd.IRE | Gcmd.CFI);
    b.w32(Reg.GCMD, Gcmd.QIE | Gcmd.IRE | Gcmd.CFI);
    b.w32(Reg.GCMD, 0);
    // Changes of persistent bits only, one-shot SIRTP whenever written; GCMD order: QIE, SIRTP, IRE, CFI.
    // CFI is not modelled without x-cfi: CFIS stays clear, so every write with CFI set is a change.
    expect(calls()).toEqual(['qie:true', 'sirtp', 'ire:true', 'cfi:true', 'cfi:true', 'qie:false', 'ire:false']);
    // The queue itself ran: it reported QIES and refused the disable (no wait descriptor fetched yet).
    expect(b.r32(Reg.GSTS) & Gsts.QIES).toBe(Gsts.QIES);
  });

  it('a refused QIE disable leaves QIES set; an accepted one clears it', () => {
    const b = new VtdBench();
    b.w32(Reg.GCMD, Gcmd.QIE);
    expect(b.iommu.qiEnabled()).toBe(true);
    b.w32(Reg.GCMD, 0); // no wait descriptor fetched yet: refused
    expect(b.iommu.qiEnabled()).toBe(true);
    b.putDesc(0, 0, 0x25n, 0x1000n); // a wait descriptor with status write at IQA 0
    b.setTail(1);
    b.w32(Reg.GCMD, 0);
    expect(b.iommu.qiEnabled()).toBe(false);
  });

  it('SIRTP and IRE reach the remapper; the status bits are the remapper\'s', () => {
    const b = new VtdBench({ props: { intremap: 'on' } });
    b.w32(Reg.GCMD, Gcmd.SIRTP | Gcmd.IRE);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.IRTPS | Gsts.IRES);
    expect(b.iommu.irEnabled()).toBe(true);
    b.w32(Reg.GCMD, 0);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.IRTPS);
    expect(b.iommu.irEnabled()).toBe(false);
  });

  it('signals invalidation completion events through IECTL with IM/IP', () => {
    const b = new VtdBench();
    b.w32(Reg.IEDATA, 0x99);
    b.w32(Reg.IEADDR, 0xfee0_0000);
    b.iommu.signalEvent(Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
    expect(b.msis.length).toBe(0);
    expect(b.r32(Reg.IECTL)).toBe(0xc000_0000);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x99, origin: { kind: 'iommu' } }]);
    b.iommu.raiseFaultStatus(1 << 4);
    expect(b.r32(Reg.FSTS)).toBe(1 << 4);
    expect(b.r32(Reg.FECTL)).toBe(0xc000_0000);
  });
});

describe('GCMD.TE and the fault recording index (QEMU vtd_handle_gcmd_te)', () => {
  /** An IR fault (index beyond the 2-entry table) from `sid`; returns its outcome and FRCD index. */
  function irFault(b: VtdBench, sid: number, faults: { outcome: string; index?: number }[]): { outcome: string; index?: number } {
    b.iommu.interruptWrite(0xfee0_0000 | (5 << 5) | 0x10, 0, sid);
    const f = faults[faults.length - 1]!;
    return { outcome: f.outcome, index: f.index };
  }
  const clearF = (b: VtdBench, index: number) => b.w32(Reg.FRCD0 + index * 16 + 12, 0x8000_0000);

  it('enabling translation keeps the next fault recording register; disabling it starts again at FRCD0', () => {
    const b = new VtdBench({ props: { intremap: 'on', nfr: 4 } });
    b.w64(Reg.IRTA, 0x40_0000n);
    b.gcmd(Gcmd.SIRTP | Gcmd.IRE);
    const { faults } = b.recordEvents();
    expect(irFault(b, 0x10, faults)).toEqual({ outcome: 'recorded', index: 0 });
    b.gcmd(Gcmd.TE);
    expect(irFault(b, 0x18, faults)).toEqual({ outcome: 'recorded', index: 1 });
    b.gcmd(0, Gcmd.TE);
    clearF(b, 0);
    clearF(b, 1);
    expect(irFault(b, 0x20, faults)).toEqual({ outcome: 'recorded', index: 0 });
  });
});

describe('GCMD trace lines', () => {
  function traced(): { tracer: Tracer; lines: [string, Readonly<Record<string, unknown>>][] } {
    const lines: [string, Readonly<Record<string, unknown>>][] = [];
    return { tracer: { enabled: () => true, trace: (e, f) => void lines.push([e, f]) }, lines };
  }

  it('vtd_reg_write_gcmd (status before, value written), vtd_dmar_enable and vtd_reg_dmar_root', () => {
    const t = traced();
    const b = new VtdBench({ props: { 'scalable-mode': true }, tracer: t.tracer });
    b.w64(Reg.RTADDR, 0x1_2345_6000n | 0x400n);
    t.lines.length = 0;
    b.w32(Reg.GCMD, Gcmd.SRTP);
    b.w32(Reg.GCMD, u32(Gsts.RTPS | Gcmd.TE));
    b.w32(Reg.GCMD, 0);
    const mine = t.lines.filter(([e]) => ['vtd_reg_write_gcmd', 'vtd_dmar_enable', 'vtd_reg_dmar_root'].includes(e));
    expect(mine).toEqual([
      ['vtd_reg_write_gcmd', { status: 0, val: Gcmd.SRTP }],
      ['vtd_reg_dmar_root', { root: 0x1_2345_6000, scalable: true }],
      ['vtd_reg_write_gcmd', { status: Gsts.RTPS, val: u32(Gsts.RTPS | Gcmd.TE) }],
      ['vtd_dmar_enable', { en: true }],
      ['vtd_reg_dmar_root', { root: 0x1_2345_6000, scalable: true }],
      ['vtd_reg_write_gcmd', { status: u32(Gsts.RTPS | Gsts.TES), val: 0 }],
      ['vtd_dmar_enable', { en: false }],
    ]);
  });
});
