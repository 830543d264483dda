import { describe, expect, it } from 'vitest';
import type { IommuCore, IommuHooks } from './hooks.js';
import { SID_UNKNOWN } from './hooks.js';
import { Gcmd, Gsts, Reg } from './reg-layout.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';

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

  it('calls extension hooks and honours a refused QIE change', () => {
    const calls: string[] = [];
    let allowDisable = false;
    let core: IommuCore | null = null;
    const ext = (c: IommuCore): IommuHooks => {
      core = c;
      return {
        name: 'probe',
        onQieChange: (en) => (calls.push(`qie:${en}:${c.qiEnabled()}`), en || allowDisable),
        onSirtp: () => calls.push('sirtp'),
        onIreChange: (on) => calls.push(`ire:${on}`),
        onIqtWrite: () => calls.push(`iqt:${c.regs.get32(Reg.IQT).toString(16)}`),
        onIqaWrite: () => calls.push('iqa'),
        onIcsWrite: () => calls.push('ics'),
        onIectlWrite: () => calls.push('iectl'),
        onFstsWrite: () => calls.push('fsts'),
        reset: () => calls.push('reset'),
        readOverride: (off) => (off === Reg.IQA ? 0xabc000 : undefined),
        interruptWrite: (addr, data, sid) => (calls.push(`irq:${addr.toString(16)}:${data}:${sid}`), data === 1),
      };
    };
    const b = new VtdBench({ extensions: [ext] });
    expect(core).toBe(b.iommu);
    expect(b.iommu.extension('probe')?.name).toBe('probe');
    b.w32(Reg.GCMD, Gcmd.QIE);
    expect(b.iommu.qiEnabled()).toBe(true);
    b.w32(Reg.GCMD, 0);
    expect(b.iommu.qiEnabled()).toBe(true);
    allowDisable = true;
    b.w32(Reg.GCMD, 0);
    expect(b.iommu.qiEnabled()).toBe(false);
    b.w32(Reg.GCMD, Gcmd.SIRTP | Gcmd.IRE);
    b.w64(Reg.IQT, 0x120n);
    b.w32(Reg.IQA, 0x5000);
    expect(b.r32(Reg.IQA)).toBe(0xabc000);
    b.w32(Reg.ICS, 1);
    b.w32(Reg.IECTL, 0);
    b.w32(Reg.FSTS, 0);
    b.iommu.interruptFromIoapic(0xfee0_0000, 1);
    b.device(0, 8).dma.writeU32(0xfee0_1000, 2);
    b.iommu.reset();
    expect(calls).toEqual([
      'qie:true:true',
      'qie:false:true',
      'qie:false:true',
      'sirtp',
      'ire:true',
      'iqt:120',
      'iqa',
      'ics',
      'iectl',
      'fsts',
      `irq:fee00000:1:${SID_UNKNOWN}`,
      'irq:fee01000:2:8',
      'reset',
    ]);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 2, origin: { kind: 'msi', source: 8 } }]);
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
