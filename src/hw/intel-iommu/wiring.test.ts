/**
 * How the unit is wired: what its components (the invalidation queue and the
 * interrupt remapper) are handed, and when the unit calls their entry
 * points — what it has already done by then — checked with spies on a real
 * unit.  (These were the extension-hook contract before the components
 * became the unit's own.)
 */
import { describe, expect, it, vi } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { SID_UNKNOWN } from './requests.js';
import { EventCtl, Fsts, Gcmd, Gsts, Reg } from './reg-layout.js';

const QUEUE = 0x30_0000;
const STATUS = 0x31_0000;
/** Wait descriptor writing status `data` to STATUS. */
const waitSw = (data: number): [bigint, bigint] => [0x25n | (BigInt(data) << 32n), BigInt(STATUS)];

describe('SID_UNKNOWN', () => {
  it('is -1, never a real source ID', () => {
    expect(SID_UNKNOWN).toBe(-1);
  });
});

describe('what the components are handed', () => {
  it('the register file, defined before the queue defines its own registers', () => {
    const b = new VtdBench({ props: { 'x-iqer': true, 'x-devtlb-error-sid': 3 } });
    expect(b.iommu.regs.writableMask(Reg.IQER)).toBe(0);
    expect(b.iommu.regs.w1cMask(Reg.FSTS)).toBe(Fsts.PFO | Fsts.IQE | Fsts.ICE | Fsts.ITE);
    expect(b.r32(Reg.VER)).toBe(0x10);
  });

  it('the unit\'s memory, MSI target and events: a wait descriptor writes guest RAM, signals the APIC bus, an IOTLB one is announced', () => {
    const b = new VtdBench();
    const rec = b.recordEvents();
    b.w32(Reg.IEADDR, 0xfee0_1000);
    b.w32(Reg.IEDATA, 0x21);
    b.w32(Reg.IECTL, 0);
    expect(b.enableQueue(QUEUE)).toBe(true);
    b.putDesc(QUEUE, 0, 0x12n); // IOTLB global
    b.putDesc(QUEUE, 1, 0x35n | (0x77n << 32n), BigInt(STATUS)); // wait: SW + IF
    b.setTail(2);
    expect(b.peek32(STATUS)).toBe(0x77);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x21, origin: { kind: 'iommu' } }]);
    expect(rec.invalidations.map((e) => [e.cache, e.granularity, e.source])).toEqual([['iotlb', 'global', 'queue']]);
  });

  it('the unit\'s fault recording: a queue error sets FSTS.IQE, an IR fault fills FRCD', () => {
    const b = new VtdBench({ props: { intremap: 'on' } });
    b.enableQueue(QUEUE);
    b.putDesc(QUEUE, 0, 0xfn);
    b.setTail(1);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    b.w32(Reg.FSTS, Fsts.IQE);
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.IRE);
    b.iommu.interruptWrite((0xfee0_0000 | (5 << 5) | 0x10) >>> 0, 0, 0x18); // index 5 of a 2-entry table
    expect(b.r32(Reg.FSTS) & Fsts.PPF).toBe(Fsts.PPF);
    expect(b.r64(Reg.FRCD0)).toBe(5n << 48n);
  });

  it('the unit\'s tracer', () => {
    const events: string[] = [];
    const b = new VtdBench({ tracer: { enabled: (e) => e.startsWith('vtd_inv_qi') || e === 'vtd_reg_ir_root', trace: (e) => void events.push(e) } });
    b.enableQueue(QUEUE);
    b.gcmd(Gcmd.SIRTP);
    expect(events).toEqual(['vtd_inv_qi_enable', 'vtd_reg_ir_root']);
  });

  it('raw register access: no masks, no side effects; 64-bit as halves', () => {
    const b = new VtdBench();
    const regs = b.iommu.regs;
    regs.set32(Reg.GSTS, Gsts.QIES);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.QIES);
    regs.set64(Reg.IQH, 0x30, 0x1);
    expect(regs.get64(Reg.IQH)).toBe(0x1_0000_0030n);
    expect(b.r64(Reg.IQH)).toBe(0x1_0000_0030n);
    regs.set32(Reg.FEDATA, 0xffff_ffff);
    regs.setClear32(Reg.FEDATA, 0x1, 0xff);
    expect(regs.get32(Reg.FEDATA)).toBe(0xffff_ff01);
    expect(b.msis).toEqual([]);
  });

  it('define32 takes effect at once and at every reset', () => {
    const b = new VtdBench();
    const regs = b.iommu.regs;
    regs.define32(Reg.IQER, 0x5, 0xf0, 0x1);
    expect(b.r32(Reg.IQER)).toBe(0x5);
    b.w32(Reg.IQER, 0xff);
    expect(b.r32(Reg.IQER)).toBe(0xf4);
    b.iommu.reset();
    expect(b.r32(Reg.IQER)).toBe(0x5);
    regs.define32(Reg.IQER + 4, 0xab, 0, 0, 0xff);
    expect(regs.get32(Reg.IQER + 4)).toBe(0xab);
    expect(b.r32(Reg.IQER + 4)).toBe(0); // write-only bits read 0
  });
});

describe('when the unit calls its components', () => {
  it('reset: after the unit reset its registers and state', () => {
    const b = new VtdBench();
    const log: string[] = [];
    const seen = () => `fedata=${b.iommu.regs.get32(Reg.FEDATA)} gsts=${b.iommu.regs.get32(Reg.GSTS)} te=${b.iommu.dmarEnabled}`;
    vi.spyOn(b.iommu.queue, 'reset').mockImplementation(() => void log.push(`queue ${seen()}`));
    vi.spyOn(b.iommu.remapper, 'reset').mockImplementation(() => void log.push(`remapper ${seen()}`));
    b.w32(Reg.FEDATA, 0x55);
    b.w64(Reg.RTADDR, 0x1000n);
    b.gcmd(Gcmd.SRTP | Gcmd.TE);
    b.iommu.reset();
    expect(log).toEqual(['queue fedata=0 gsts=0 te=false', 'remapper fedata=0 gsts=0 te=false']);
  });

  it('QIE enable: QIES is reported before a queue whose tail is already set runs; the base is latched', () => {
    const b = new VtdBench();
    let qiesWhileRunning: boolean | undefined;
    const inv = b.iommu.invalidateIotlb.bind(b.iommu);
    vi.spyOn(b.iommu, 'invalidateIotlb').mockImplementation((i, source) => {
      qiesWhileRunning = b.iommu.qiEnabled();
      inv(i, source);
    });
    b.putDesc(QUEUE, 0, 0x12n);
    b.setTail(1); // QI off: latched only
    expect(b.queueHead()).toBe(0);
    expect(b.enableQueue(QUEUE)).toBe(true);
    expect(qiesWhileRunning).toBe(true);
    expect(b.queueHead()).toBe(1);
    expect(b.iommu.queue.base).toBe(QUEUE);
  });

  it('QIE disable: refused while busy (QIES kept, base kept), accepted after a wait descriptor', () => {
    const b = new VtdBench();
    const qie = vi.spyOn(b.iommu.queue, 'onQieChange');
    b.enableQueue(QUEUE);
    b.putDesc(QUEUE, 0, 0x12n);
    b.setTail(1);
    expect(b.setQie(false)).toBe(true);
    expect(b.iommu.queue.base).toBe(QUEUE);
    b.putDesc(QUEUE, 1, ...waitSw(1));
    b.setTail(2);
    expect(b.setQie(false)).toBe(false);
    expect(qie.mock.calls).toEqual([[true], [false], [false]]);
    expect(qie.mock.results.map((r) => r.value)).toEqual([true, false, true]);
    // Writing GCMD without a QIE change does not ask.
    b.gcmd(0);
    expect(qie).toHaveBeenCalledTimes(3);
  });

  it('IQT: the value is already stored with its mask applied', () => {
    const b = new VtdBench();
    const log: string[] = [];
    vi.spyOn(b.iommu.queue, 'onIqtWrite').mockImplementation(() => void log.push(`iqt=${b.iommu.regs.get32(Reg.IQT).toString(16)}`));
    b.w64(Reg.IQT, 0xffff_ffffn);
    b.w64(Reg.IQA, 0xffff_ffff_ffff_ffffn);
    expect(log).toEqual(['iqt=7fff0']);
    expect(b.iommu.regs.get64(Reg.IQA)).toBe(0xffff_ffff_ffff_f807n);
  });

  it('FSTS: W1C applied and FECTL.IP already handled when the queue hears of it', () => {
    const b = new VtdBench();
    const log: string[] = [];
    const regs = b.iommu.regs;
    vi.spyOn(b.iommu.queue, 'onFstsWrite').mockImplementation(
      () => void log.push(`fsts=${regs.get32(Reg.FSTS)} fectl=${regs.get32(Reg.FECTL).toString(16)}`),
    );
    b.iommu.raiseFaultStatus(Fsts.IQE);
    expect(b.r32(Reg.FECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(log).toEqual(['fsts=0 fectl=80000000']);
  });

  it('SIRTP: every SIRTP write, as a one-shot; the remapper sets GSTS.IRTPS', () => {
    const b = new VtdBench();
    const sirtp = vi.spyOn(b.iommu.remapper, 'onSirtp');
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(0);
    expect(sirtp).toHaveBeenCalledTimes(2);
    expect(b.r32(Reg.GSTS) & Gsts.IRTPS).toBe(Gsts.IRTPS);
  });

  it('IRE: on a change only, only with intremap; the remapper reports IRES', () => {
    const b = new VtdBench({ props: { intremap: 'on' } });
    const ire = vi.spyOn(b.iommu.remapper, 'onIreChange');
    b.gcmd(Gcmd.IRE);
    expect(b.iommu.irEnabled()).toBe(true);
    b.gcmd(Gcmd.IRE);
    b.gcmd(0, Gcmd.IRE);
    expect(b.iommu.irEnabled()).toBe(false);
    expect(ire.mock.calls).toEqual([[true], [false]]);
    const off = new VtdBench({ props: { intremap: 'off' } });
    const never = vi.spyOn(off.iommu.remapper, 'onIreChange');
    off.gcmd(Gcmd.IRE);
    expect(never).not.toHaveBeenCalled();
    expect(off.r32(Reg.GSTS) & Gsts.IRES).toBe(0);
  });

  it('CFI: whenever GCMD.CFI differs from GSTS.CFIS, which only x-cfi sets', () => {
    const b = new VtdBench();
    const cfi = vi.spyOn(b.iommu.remapper, 'onCfiChange');
    b.w32(Reg.GCMD, Gcmd.CFI);
    b.w32(Reg.GCMD, Gcmd.CFI);
    b.w32(Reg.GCMD, 0);
    expect(cfi.mock.calls).toEqual([[true], [true]]);
    expect(b.r32(Reg.GSTS)).toBe(0);
    // With x-cfi the remapper reports CFIS, so only changes reach it.
    const m = new VtdBench({ props: { 'x-cfi': true } });
    const mcfi = vi.spyOn(m.iommu.remapper, 'onCfiChange');
    m.w32(Reg.GCMD, Gcmd.CFI);
    m.w32(Reg.GCMD, Gcmd.CFI);
    expect(m.r32(Reg.GSTS)).toBe(Gsts.CFIS);
    m.w32(Reg.GCMD, 0);
    m.w32(Reg.GCMD, 0);
    expect(mcfi.mock.calls).toEqual([[true], [false]]);
  });

  it('interrupt writes: the requester\'s source ID, SID_UNKNOWN for the IOAPIC', () => {
    const b = new VtdBench();
    const irq = vi.spyOn(b.iommu.remapper, 'interruptWrite');
    b.iommu.translatorFor(b.device(1, 2).req).interruptWrite(0xfee0_0010, 9);
    b.iommu.interruptFromIoapic(0xfee0_0020, 10);
    expect(irq.mock.calls).toEqual([[0xfee0_0010, 9, 0x102], [0xfee0_0020, 10, SID_UNKNOWN]]);
    expect(b.msis).toEqual([
      { address: 0xfee0_0010, data: 9, origin: { kind: 'msi', source: 0x102 } },
      { address: 0xfee0_0020, data: 10, origin: { kind: 'ioapic' } },
    ]);
  });

  it('a fresh unit takes a write to every register with a side effect, and reset, without throwing', () => {
    const b = new VtdBench();
    expect(() => {
      b.w32(Reg.IQT, 0x10);
      b.w32(Reg.IQA, 0);
      b.w32(Reg.ICS, 1);
      b.w32(Reg.IECTL, 0);
      b.w32(Reg.FSTS, 0);
      b.gcmd(Gcmd.SIRTP | Gcmd.IRE | Gcmd.QIE | Gcmd.CFI);
      b.r64(Reg.IQA);
      b.iommu.interruptFromIoapic(0xfee0_0000, 1);
      b.iommu.reset();
    }).not.toThrow();
    expect(b.iommu.qiEnabled()).toBe(false); // reset
    expect(b.msis).toHaveLength(1);
  });
});
