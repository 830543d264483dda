/**
 * The register window's MMIO handlers (QEMU vtd_mem_read / vtd_mem_write):
 * 4- and 8-byte accesses only (the bus refuses the rest; the handlers
 * themselves read all-ones and drop anything else), accesses running past
 * the file, unlisted offsets, 64-bit values as two halves, IQA's latched
 * base (read from the queue), and the side effect the register table names
 * for the exact offset written (GCMD, CCMD / IOTLB high halves, FSTS /
 * FECTL / ICS / IECTL event rules, FRCD high dwords and PPF, IQT and the
 * queue), the table itself, plus traces.
 */
import { describe, expect, it, vi } from 'vitest';
import { VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';
import type { Tracer } from '../../machine/device-type.js';
import type { InvalidateEvent } from './events.js';
import { VtdFault } from './fault-reasons.js';
import { RegisterTable } from './mmio.js';
import { DMAR_BASE, EventCtl, Fsts, Gcmd, Gsts, Ics, Reg } from './reg-layout.js';

const ALL32 = 0xffff_ffff;
const ALL64 = 0xffff_ffff_ffff_ffffn;
const FEADDR = 0xfee0_2000;
const IEADDR = 0xfee0_3000;

/** Spies on the queue's register entry points (they still run). */
function queueSpies(b: VtdBench) {
  return {
    iqt: vi.spyOn(b.iommu.queue, 'onIqtWrite'),
    fsts: vi.spyOn(b.iommu.queue, 'onFstsWrite'),
    qie: vi.spyOn(b.iommu.queue, 'onQieChange'),
  };
}

function traced(names: string[]) {
  const events: [string, Record<string, unknown>][] = [];
  const tracer: Tracer = { enabled: (e) => names.includes(e), trace: (e, f) => void events.push([e, { ...f }]) };
  return { events, tracer };
}

function setup(opts: VtdBenchOptions = {}) {
  const b = new VtdBench(opts);
  const ops = b.iommu.region.ops;
  const inv: InvalidateEvent[] = [];
  b.iommu.events.on('invalidate', (e) => inv.push(e));
  return { b, ops, inv };
}

describe('reads', () => {
  it('4-byte reads return the register word; 8-byte reads join two words (low at the lower offset)', () => {
    const { b, ops } = setup();
    const cap = b.iommu.capability;
    expect(ops.read(Reg.CAP, 4)).toBe(Number(cap & 0xffff_ffffn));
    expect(ops.read(Reg.CAP + 4, 4)).toBe(Number(cap >> 32n));
    expect(ops.read64!(Reg.CAP)).toBe(cap);
    expect(ops.read64!(Reg.ECAP)).toBe(b.iommu.extendedCapability);
    expect(ops.read(Reg.VER, 4)).toBe(0x10);
    // An 8-byte read at a dword offset: CAP's high word, then ECAP's low word.
    expect(ops.read64!(Reg.CAP + 4)).toBe((b.iommu.extendedCapability << 32n) | (cap >> 32n));
    // Bit 63 survives.
    expect(b.r64(Reg.CAP) >> 63n).toBe(1n);
  });

  it('1- and 2-byte reads at the handler read all-ones; through the bus they are refused (0)', () => {
    const { b, ops } = setup();
    expect(ops.read(Reg.VER, 1)).toBe(ALL32);
    expect(ops.read(Reg.VER, 2)).toBe(ALL32);
    expect(ops.read(Reg.FECTL, 2)).toBe(ALL32);
    expect(b.memory.read(DMAR_BASE + Reg.VER, 1)).toBe(0);
    expect(b.memory.read(DMAR_BASE + Reg.FECTL + 2, 2)).toBe(0);
    // Unaligned 4- and 8-byte accesses are refused by the bus.
    expect(b.memory.read(DMAR_BASE + Reg.CAP + 2, 4)).toBe(0);
    expect(b.memory.read64(DMAR_BASE + Reg.CAP + 2)).toBe(0n);
  });

  it('reads up to the last byte of the file work; past it they read all-ones', () => {
    const { b, ops } = setup();
    expect(b.iommu.regs.size).toBe(0x230);
    b.iommu.recordFault(0x1234, VtdFault.READ, 0x5000, false);
    expect(ops.read(0x22c, 4)).toBe((0x8000_0000 | 0x4000_0000 | VtdFault.READ) >>> 0);
    expect(ops.read64!(0x228)).toBe((0xc000_0006n << 32n) | 0x1234n);
    expect(ops.read(0x230, 4)).toBe(ALL32);
    expect(ops.read(0x22e, 4)).toBe(ALL32);
    expect(ops.read64!(0x22c)).toBe(ALL64);
    expect(ops.read64!(0x230)).toBe(ALL64);
    expect(ops.read64!(0xff8)).toBe(ALL64);
  });

  it('the file grows with nfr', () => {
    const { b, ops } = setup({ props: { nfr: 3 } });
    expect(b.iommu.regs.size).toBe(0x250);
    expect(ops.read(0x24c, 4)).toBe(0);
    expect(ops.read64!(0x248)).toBe(0n);
    expect(ops.read(0x250, 4)).toBe(ALL32);
  });

  it('unlisted offsets read 0 and ignore writes (AFLOG, PLMBASE..PHMLIMIT, MTRRs, gaps)', () => {
    const { b } = setup();
    for (const off of [0x30, 0x4c, 0x58, 0x5c, 0x68, 0x6c, 0x70, 0x78, 0x7c, 0xc0, 0xe0, 0x100, 0x1fc, 0x218, 0x21c]) {
      b.w32(off, ALL32);
      expect(b.r32(off), off.toString(16)).toBe(0);
    }
    for (const off of [0x58, 0x68, 0x70, 0x78, 0x100, 0x218]) {
      b.w64(off, ALL64);
      expect(b.r64(off), off.toString(16)).toBe(0n);
    }
  });

  it('reads have no side effects: reading every word twice gives the same file', () => {
    const { b } = setup();
    b.iommu.recordFault(8, VtdFault.WRITE, 0x1000, true);
    const dump = () => Array.from({ length: 0x230 / 4 }, (_, i) => b.r32(i * 4));
    const first = dump();
    for (let off = 0; off < 0x230; off += 8) b.r64(off);
    expect(dump()).toEqual(first);
    expect(b.msis).toEqual([]);
  });
});

describe('IQA reads (base latched at QIE enable, live QS and DW)', () => {
  it('shows the latched base and the written QS and DW (QEMU 11.1; 7.2 hid DW)', () => {
    const { b } = setup();
    b.w64(Reg.IQA, 0x0000_0012_3456_7000n | 0x800n | 0x5n);
    expect(b.r32(Reg.IQA)).toBe(0x805); // nothing latched yet
    expect(b.r32(Reg.IQA + 4)).toBe(0);
    b.gcmd(Gcmd.QIE);
    expect(b.iommu.queue.base).toBe(0x12_3456_7000);
    expect(b.r32(Reg.IQA)).toBe(0x3456_7805);
    expect(b.r32(Reg.IQA + 4)).toBe(0x12);
    expect(b.r64(Reg.IQA)).toBe(0x12_3456_7805n);
    // A new value changes QS and DW at once, the base only at the next enable.
    b.w64(Reg.IQA, 0x9000n | 0x2n);
    expect(b.r64(Reg.IQA)).toBe(0x12_3456_7002n);
    // Reserved bits 10:3 are not writable.
    b.w64(Reg.IQA, 0x7f8n);
    expect(b.r64(Reg.IQA)).toBe(0x12_3456_7000n);
  });

  it('a base with bit 31 set reads back unsigned', () => {
    const { b } = setup();
    b.w64(Reg.IQA, 0x8000_0000n);
    b.gcmd(Gcmd.QIE);
    expect(b.r32(Reg.IQA)).toBe(0x8000_0000);
    expect(b.r64(Reg.IQA)).toBe(0x8000_0000n);
  });
});

describe('read sources', () => {
  it('IQA\'s dwords come from the queue, read unsigned; the others from the file', () => {
    const { b } = setup();
    const lo = vi.spyOn(b.iommu.queue, 'iqaLow').mockReturnValue(-1);
    const hi = vi.spyOn(b.iommu.queue, 'iqaHigh').mockReturnValue(0x42);
    expect(b.r32(Reg.IQA)).toBe(ALL32);
    expect(b.r32(Reg.IQA + 4)).toBe(0x42);
    expect(b.r64(Reg.IQA)).toBe((0x42n << 32n) | 0xffff_ffffn);
    // An 8-byte read at a dword offset asks per dword: IQA's high half from the queue, 0x98 from the file.
    expect(b.iommu.region.ops.read64!(Reg.IQA + 4)).toBe(0x42n);
    expect(lo).toHaveBeenCalledTimes(2);
    expect(hi).toHaveBeenCalledTimes(3);
    expect(b.r32(Reg.VER)).toBe(0x10);
    expect(b.r64(Reg.IQT)).toBe(0n);
    expect(lo).toHaveBeenCalledTimes(2);
  });
});

describe('writes', () => {
  it('4-byte writes go through the masks', () => {
    const { b } = setup();
    b.w32(Reg.FEDATA, ALL32);
    expect(b.r32(Reg.FEDATA)).toBe(0xffff);
    b.w32(Reg.FEADDR, ALL32);
    expect(b.r32(Reg.FEADDR)).toBe(0xffff_fffc);
  });

  it('8-byte writes store both halves through their masks, bit 63 included', () => {
    const { b } = setup();
    b.w64(Reg.RTADDR, 0x1234_5678_9abc_def0n);
    expect(b.r64(Reg.RTADDR)).toBe(0x1234_5678_9abc_dc00n);
    b.w64(Reg.RTADDR, ALL64);
    expect(b.r64(Reg.RTADDR)).toBe(0xffff_ffff_ffff_fc00n);
    b.w64(Reg.IRTA, ALL64);
    expect(b.r64(Reg.IRTA)).toBe(0xffff_ffff_ffff_f80fn);
    // An 8-byte write at a dword offset: FEDATA gets the low half, FEADDR the high half.
    b.iommu.region.ops.write64!(Reg.FEDATA, 0xabcd_ef01_2345_6789n);
    expect(b.r32(Reg.FEDATA)).toBe(0x6789);
    expect(b.r32(Reg.FEADDR)).toBe(0xabcd_ef00);
  });

  it('1- and 2-byte writes are dropped (at the handler and at the bus)', () => {
    const { b, ops } = setup();
    ops.write(Reg.FEDATA, 2, 0x1234);
    ops.write(Reg.FEDATA, 1, 0x12);
    expect(b.r32(Reg.FEDATA)).toBe(0);
    b.memory.write(DMAR_BASE + Reg.FEDATA, 2, 0x1234);
    b.memory.write(DMAR_BASE + Reg.FEDATA, 1, 0x12);
    expect(b.r32(Reg.FEDATA)).toBe(0);
    // A 2-byte write to GCMD does not enable translation.
    ops.write(Reg.GCMD + 2, 2, 0x8000);
    expect(b.r32(Reg.GSTS)).toBe(0);
  });

  it('writes up to the end of the file work; past it they are dropped', () => {
    const { b, ops } = setup();
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false);
    expect(() => ops.write(0x230, 4, ALL32)).not.toThrow();
    expect(() => ops.write(0x22e, 4, ALL32)).not.toThrow();
    expect(() => ops.write64!(0x22c, ALL64)).not.toThrow();
    expect(() => ops.write64!(0x230, ALL64)).not.toThrow();
    expect(b.r32(Reg.FRCD0 + 12) >>> 31).toBe(1);
    // The last dword (FRCD0 F, write-1-to-clear) accepts a 4-byte write ...
    ops.write(0x22c, 4, 0x8000_0000);
    expect(b.r32(Reg.FRCD0 + 12)).toBe(0x4000_0000 | VtdFault.READ);
    // ... and the last qword an 8-byte one.
    b.iommu.recordFault(0x11, VtdFault.READ, 0x5000, false);
    expect(b.r32(Reg.FRCD0 + 12) >>> 31).toBe(1);
    ops.write64!(0x228, 1n << 63n);
    expect(b.r32(Reg.FRCD0 + 12) >>> 31).toBe(0);
  });

  it('read-only registers ignore writes: VER, CAP, ECAP, GSTS, IQH, PMEN, FEUADDR', () => {
    const { b } = setup();
    const before = [b.r64(Reg.VER), b.r64(Reg.CAP), b.r64(Reg.ECAP), b.r64(Reg.IQH)];
    for (const off of [Reg.VER, Reg.CAP, Reg.ECAP, Reg.IQH]) b.w64(off, ALL64);
    b.w32(Reg.GSTS, ALL32);
    b.w32(Reg.PMEN, ALL32);
    b.w32(Reg.FEUADDR, ALL32);
    expect([b.r64(Reg.VER), b.r64(Reg.CAP), b.r64(Reg.ECAP), b.r64(Reg.IQH)]).toEqual(before);
    expect([b.r32(Reg.GSTS), b.r32(Reg.PMEN), b.r32(Reg.FEUADDR)]).toEqual([0, 0, 0]);
  });
});

describe('GCMD', () => {
  it('a 4-byte or an 8-byte write at GCMD acts', () => {
    const a = setup();
    a.b.w32(Reg.GCMD, Gcmd.TE);
    expect(a.b.r32(Reg.GSTS)).toBe(Gsts.TES >>> 0);
    const c = setup();
    c.b.w64(Reg.GCMD, BigInt(Gcmd.TE >>> 0) | (0xffff_ffffn << 32n));
    expect(c.b.r32(Reg.GSTS)).toBe(Gsts.TES >>> 0);
    expect(c.b.r32(Reg.GCMD)).toBe(0); // write-only
  });

  it('a write to GSTS does nothing', () => {
    const { b } = setup();
    b.w32(Reg.GSTS, Gcmd.TE | Gcmd.SRTP);
    expect(b.r32(Reg.GSTS)).toBe(0);
    expect(b.iommu.dmarEnabled).toBe(false);
  });
});

describe('CCMD / IOTLB: only a 64-bit write or a write of the high half triggers', () => {
  const ICC_GLOBAL = 0xa000_0000; // ICC | CIRG=1
  const IVT_GLOBAL = 0x9000_0000; // IVT | IIRG=1

  const QUEUE = 0x30_0000;

  /**
   * A unit with ICC / IVT left pending (written while QI was on, so
   * ignored), QI off again: a wait descriptor first, as QEMU disables an
   * idle queue only after one.
   */
  function pending() {
    const s = setup();
    s.b.enableQueue(QUEUE);
    s.b.w32(Reg.CCMD_HI, ICC_GLOBAL);
    s.b.w32(Reg.IOTLB_HI, IVT_GLOBAL);
    expect(s.b.r32(Reg.CCMD_HI)).toBe(ICC_GLOBAL);
    expect(s.b.r32(Reg.IOTLB_HI)).toBe(IVT_GLOBAL);
    s.b.putDesc(QUEUE, 0, 0x25n, BigInt(QUEUE + 0x1000));
    s.b.setTail(1);
    expect(s.b.setQie(false)).toBe(false);
    expect(s.inv).toEqual([]);
    return s;
  }

  it('a 4-byte write of the low half does not trigger', () => {
    const { b, inv } = pending();
    b.w32(Reg.CCMD, 0x1234);
    b.w32(Reg.IOTLB, 0);
    expect(b.r32(Reg.CCMD_HI)).toBe(ICC_GLOBAL);
    expect(b.r32(Reg.IOTLB_HI)).toBe(IVT_GLOBAL);
    expect(inv).toEqual([]);
  });

  it('a 4-byte write of the high half triggers: ICC / IVT clear, actual granularity written back', () => {
    const { b, inv } = pending();
    b.w32(Reg.CCMD_HI, ICC_GLOBAL);
    expect(b.r32(Reg.CCMD_HI)).toBe(0x2000_0000 | (1 << 27));
    b.w32(Reg.IOTLB_HI, IVT_GLOBAL);
    expect(b.r32(Reg.IOTLB_HI)).toBe(0x1000_0000 | (1 << 25));
    expect(inv.map((e) => [e.cache, e.granularity, e.source])).toEqual([
      ['context', 'global', 'register'],
      ['iotlb', 'global', 'register'],
    ]);
  });

  it('an 8-byte write triggers', () => {
    const { b, inv } = pending();
    b.w64(Reg.CCMD, BigInt(ICC_GLOBAL) << 32n);
    b.w64(Reg.IOTLB, BigInt(IVT_GLOBAL) << 32n);
    expect(b.r32(Reg.CCMD_HI) >>> 31).toBe(0);
    expect(b.r32(Reg.IOTLB_HI) >>> 31).toBe(0);
    expect(inv.map((e) => e.cache)).toEqual(['context', 'iotlb']);
  });

  it('writes next to them (IVA, CCMD low + 8) do not trigger', () => {
    const { b, inv } = pending();
    b.w64(Reg.IVA, 0x1000n);
    b.w32(Reg.IVA + 4, 0);
    b.w32(Reg.CCMD + 8, 0);
    expect(inv).toEqual([]);
    expect(b.r32(Reg.CCMD_HI)).toBe(ICC_GLOBAL);
    expect(b.r32(Reg.IOTLB_HI)).toBe(IVT_GLOBAL);
  });
});

describe('FSTS writes: FECTL.IP drops when nothing is pending', () => {
  function masked(opts: VtdBenchOptions = {}) {
    const s = setup(opts);
    expect(s.b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0); // masked at reset
    return s;
  }
  const IP_IM = (EventCtl.IP | EventCtl.IM) >>> 0;

  it('IQE pending keeps IP; clearing IQE (W1C) drops it', () => {
    const { b } = masked();
    b.iommu.raiseFaultStatus(Fsts.IQE);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, 0);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
  });

  it('PFO pending keeps IP; clearing PFO drops it', () => {
    const { b } = masked();
    b.iommu.regs.setClear32(Reg.FSTS, Fsts.PFO, 0);
    b.iommu.regs.setClear32(Reg.FECTL, EventCtl.IP, 0);
    b.w32(Reg.FSTS, 0);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, Fsts.PFO);
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
  });

  it('PPF pending keeps IP until the fault record is cleared and FSTS written', () => {
    const { b } = masked();
    b.iommu.recordFault(0x20, VtdFault.WRITE, 0x3000, true);
    expect(b.r32(Reg.FSTS) & Fsts.PPF).toBe(Fsts.PPF);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, ALL32);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    expect(b.r32(Reg.FSTS) & Fsts.PPF).toBe(0);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM); // the FRCD write alone does not
    b.w32(Reg.FSTS, 0);
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
  });

  it('other status bits (ITE) do not hold IP', () => {
    const { b } = masked();
    b.iommu.raiseFaultStatus(Fsts.ITE);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, 0);
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
  });

  it('an 8-byte write at 0x30 stores FSTS (W1C applies) but is not an FSTS write: IP stays', () => {
    const { b } = masked();
    b.iommu.raiseFaultStatus(Fsts.IQE);
    b.w64(Reg.FSTS - 4, BigInt(Fsts.IQE) << 32n);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r32(Reg.FECTL)).toBe(IP_IM);
    b.w32(Reg.FSTS, 0);
    expect(b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
  });

  it('traces vtd_fsts_clear_ip only when IP is dropped; every FSTS write tells the queue', () => {
    const { events, tracer } = traced(['vtd_fsts_clear_ip']);
    const { b } = masked({ tracer });
    const spies = queueSpies(b);
    b.w32(Reg.FSTS, 0);
    expect(events).toEqual([]);
    b.iommu.raiseFaultStatus(Fsts.ITE);
    b.w32(Reg.FSTS, 0);
    expect(events).toEqual([['vtd_fsts_clear_ip', {}]]);
    expect(spies.fsts).toHaveBeenCalledTimes(2);
  });
});

describe('FECTL writes: unmasking with IP set sends the deferred fault event', () => {
  it('IP set, IM cleared: MSI to FEUADDR:FEADDR with FEDATA, IP cleared', () => {
    const { events, tracer } = traced(['vtd_reg_write_fectl']);
    const { b } = setup({ tracer });
    b.w32(Reg.FEADDR, FEADDR);
    b.w32(Reg.FEDATA, 0x4242);
    b.iommu.raiseFaultStatus(Fsts.IQE);
    expect(b.msis).toEqual([]);
    b.w32(Reg.FECTL, 0);
    expect(b.msis).toEqual([{ address: FEADDR, data: 0x4242, origin: { kind: 'iommu' } }]);
    expect(b.r32(Reg.FECTL)).toBe(0);
    expect(events).toEqual([['vtd_reg_write_fectl', { value: EventCtl.IP }]]);
  });

  it('IP set, IM kept: nothing; IP clear: nothing', () => {
    const { b } = setup();
    b.w32(Reg.FECTL, 0);
    expect(b.msis).toEqual([]);
    b.w32(Reg.FECTL, EventCtl.IM);
    b.iommu.raiseFaultStatus(Fsts.IQE);
    b.w32(Reg.FECTL, EventCtl.IM);
    expect(b.msis).toEqual([]);
    expect(b.r32(Reg.FECTL)).toBe((EventCtl.IP | EventCtl.IM) >>> 0);
  });

  it('a 64-bit write at FECTL stores FECTL only (FEDATA kept) and still fires the deferred event (QEMU 11.1)', () => {
    const { b } = setup();
    b.w32(Reg.FEADDR, FEADDR);
    b.w32(Reg.FEDATA, 0x4242);
    b.iommu.raiseFaultStatus(Fsts.IQE);
    b.w64(Reg.FECTL, 0xffff_ffff_0000_0000n);
    expect(b.r32(Reg.FEDATA)).toBe(0x4242);
    expect(b.msis).toEqual([{ address: FEADDR, data: 0x4242, origin: { kind: 'iommu' } }]);
    b.w64(Reg.FECTL, 0x1234_5678_8000_0000n);
    expect(b.r64(Reg.FECTL)).toBe(0x4242_8000_0000n);
    // A 64-bit write elsewhere is not truncated: FEADDR takes its low half.
    b.w64(Reg.FEADDR, 0x1_fee0_1000n);
    expect(b.r64(Reg.FEADDR)).toBe(0xfee0_1000n);
  });

  it('a 64-bit write at FEUADDR - 4 (FEADDR:FEUADDR) is not a FECTL write', () => {
    const { b } = setup();
    b.iommu.raiseFaultStatus(Fsts.IQE);
    b.w64(Reg.FEADDR, 0xfee0_0000n);
    expect(b.msis).toEqual([]);
  });
});

describe('invalidation event registers', () => {
  function pendingIectl() {
    const s = setup();
    s.b.w32(Reg.IEADDR, IEADDR);
    s.b.w32(Reg.IEDATA, 0x5151);
    s.b.iommu.signalEvent(Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
    expect(s.b.r32(Reg.IECTL)).toBe((EventCtl.IP | EventCtl.IM) >>> 0);
    return s;
  }

  it('IECTL: unmasking with IP set sends IEDATA to IEADDR and clears IP', () => {
    const { b } = pendingIectl();
    b.w32(Reg.IECTL, EventCtl.IM);
    expect(b.msis).toEqual([]);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toEqual([{ address: IEADDR, data: 0x5151, origin: { kind: 'iommu' } }]);
    expect(b.r32(Reg.IECTL)).toBe(0);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toHaveLength(1);
  });

  it('a 64-bit write at IECTL stores IECTL only (IEDATA kept) and still fires the deferred event (QEMU 11.1)', () => {
    const { b } = pendingIectl();
    b.w64(Reg.IECTL, 0xffff_ffff_0000_0000n);
    expect(b.r32(Reg.IEDATA)).toBe(0x5151);
    expect(b.msis).toEqual([{ address: IEADDR, data: 0x5151, origin: { kind: 'iommu' } }]);
    expect(b.r64(Reg.IECTL)).toBe(0x5151_0000_0000n);
  });

  it('ICS: clearing IWC drops IECTL.IP; IWC still set keeps it', () => {
    const { b } = pendingIectl();
    b.iommu.regs.set32(Reg.ICS, Ics.IWC);
    b.w32(Reg.ICS, 0);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
    expect(b.r32(Reg.IECTL)).toBe((EventCtl.IP | EventCtl.IM) >>> 0);
    b.w32(Reg.ICS, Ics.IWC);
    expect(b.r32(Reg.ICS)).toBe(0);
    expect(b.r32(Reg.IECTL)).toBe(EventCtl.IM >>> 0);
    expect(b.msis).toEqual([]);
  });

  it('ICS written without IECTL.IP: IECTL unchanged', () => {
    const { b } = setup();
    b.w32(Reg.IECTL, 0);
    b.w32(Reg.ICS, Ics.IWC);
    expect(b.r32(Reg.IECTL)).toBe(0);
  });
});

describe('IQT and the queue', () => {
  it('the queue runs on 4- and 8-byte writes at IQT, not at its high half; IQA writes only store', () => {
    const { b } = setup();
    const spies = queueSpies(b);
    b.w32(Reg.IQT, 0x10);
    b.w64(Reg.IQT, 0x20n);
    b.w32(Reg.IQT + 4, 0);
    b.w32(Reg.IQA, 0x1000);
    b.w64(Reg.IQA, 0x2000n);
    b.w32(Reg.IQA + 4, 1);
    expect(spies.iqt).toHaveBeenCalledTimes(2);
    expect(b.r32(Reg.IQT)).toBe(0x20);
    expect(b.iommu.regs.get64(Reg.IQA)).toBe(0x1_0000_2000n);
  });

  it('an IQT high-half write does not restart a stopped queue (only an IQT write does)', () => {
    const { b } = setup();
    b.enableQueue(0x30_0000);
    b.putDesc(0x30_0000, 0, 0xfn); // unknown type: IQE, the queue stops at 0
    b.putDesc(0x30_0000, 1, 0x25n, 0x31_0000n);
    b.setTail(2);
    expect(b.r32(Reg.FSTS) & Fsts.IQE).toBe(Fsts.IQE);
    b.putDesc(0x30_0000, 0, 0x25n, 0x31_0000n); // fixed; IQE cleared
    b.w32(Reg.FSTS, Fsts.IQE);
    b.w32(Reg.IQT + 4, 0);
    expect(b.queueHead()).toBe(0);
    b.w32(Reg.IQT, 2 << 4);
    expect(b.queueHead()).toBe(2);
  });

  it('no queue entry point runs for other registers', () => {
    const { b } = setup();
    const spies = queueSpies(b);
    for (const off of [Reg.VER, Reg.RTADDR, Reg.FEDATA, Reg.FEADDR, Reg.IEDATA, Reg.IEADDR, Reg.IRTA, Reg.IQH, Reg.IVA, Reg.ICS, Reg.IECTL]) {
      b.w32(off, 0);
    }
    expect([spies.iqt, spies.fsts, spies.qie].map((x) => x.mock.calls.length)).toEqual([0, 0, 0]);
  });
});

describe('the register table', () => {
  const ran: string[] = [];
  const rows = [
    { off: 0x10, write: () => void ran.push('any') },
    { off: 0x18, write: () => void ran.push('qword'), qwordOnly: true },
    { off: 0x20, truncate64: true },
    { off: 0x28, read: () => 7 },
  ];

  it('runs a row\'s effect on a write starting at its offset; qword-only rows on 8-byte writes only', () => {
    const t = new RegisterTable(0x40, rows);
    ran.length = 0;
    t.written(0x10, 4);
    t.written(0x10, 8);
    t.written(0x14, 4);
    t.written(0x18, 4);
    t.written(0x18, 8);
    t.written(0x11, 4);
    expect(ran).toEqual(['any', 'any', 'qword']);
  });

  it('answers truncation and read sources by exact dword offset', () => {
    const t = new RegisterTable(0x40, rows);
    expect([0x20, 0x24, 0x1c, 0x21].map((o) => t.truncates(o))).toEqual([true, false, false, false]);
    expect(t.source(0x28)?.()).toBe(7);
    expect(t.source(0x2c)).toBeUndefined();
    expect(t.source(0x29)).toBeUndefined();
  });

  it('refuses rows outside the file, unaligned or repeated (a setup mistake)', () => {
    expect(() => new RegisterTable(0x40, [{ off: 0x40 }])).toThrow(RangeError);
    expect(() => new RegisterTable(0x40, [{ off: 0x3e }])).toThrow(RangeError);
    expect(() => new RegisterTable(0x40, [{ off: -4 }])).toThrow(RangeError);
    expect(() => new RegisterTable(0x40, [{ off: 0x10 }, { off: 0x10, truncate64: true }])).toThrow(RangeError);
    // Unaligned well inside the file (not caught by the end check).
    expect(() => new RegisterTable(0x40, [{ off: 0x12 }])).toThrow(RangeError);
    expect(() => new RegisterTable(0x40, [{ off: 0x21 }])).toThrow(RangeError);
  });

  it('names the bad row in its one error line', () => {
    expect(() => new RegisterTable(0x40, [{ off: 0x12 }])).toThrow('register table: bad or repeated row at 0x12');
    expect(() => new RegisterTable(0x40, [{ off: 0x30 }, { off: 0x30 }])).toThrow('register table: bad or repeated row at 0x30');
  });

  it('accepts rows at the first and the last dword of the file', () => {
    const ran: string[] = [];
    const t = new RegisterTable(0x40, [
      { off: 0, write: () => void ran.push('first'), read: () => 1 },
      { off: 0x3c, write: () => void ran.push('last'), truncate64: true },
    ]);
    t.written(0, 4);
    t.written(0x3c, 4);
    expect(ran).toEqual(['first', 'last']);
    expect(t.source(0)?.()).toBe(1);
    expect(t.truncates(0x3c)).toBe(true);
  });

  it('a row with only a source or only truncation has no write effect, and one with only an effect no source', () => {
    const ran: string[] = [];
    const t = new RegisterTable(0x40, [
      { off: 0x10, read: () => 5 },
      { off: 0x14, truncate64: true },
      { off: 0x18, write: () => void ran.push('w'), qwordOnly: true },
    ]);
    for (const off of [0x10, 0x14, 0x18]) {
      t.written(off, 4);
      t.written(off, 8);
    }
    expect(ran).toEqual(['w']);
    expect(t.source(0x18)).toBeUndefined();
    expect(t.source(0x14)).toBeUndefined();
    expect(t.source(0x10)?.()).toBe(5);
  });
});

describe('FRCD writes recompute PPF', () => {
  /** PPF made stale: set while no F bit is (raw device view). */
  function stale(b: VtdBench) {
    b.iommu.regs.set32(Reg.FSTS, Fsts.PPF);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  }

  it('a 4-byte write of a record\'s last dword, or an 8-byte write of its high qword', () => {
    const { b } = setup();
    stale(b);
    b.w32(Reg.FRCD0 + 12, 0);
    expect(b.r32(Reg.FSTS)).toBe(0);
    stale(b);
    b.w64(Reg.FRCD0 + 8, 0n);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('not other writes inside a record', () => {
    const { b } = setup();
    stale(b);
    b.w32(Reg.FRCD0, 0);
    b.w32(Reg.FRCD0 + 4, 0);
    b.w32(Reg.FRCD0 + 8, 0);
    b.w64(Reg.FRCD0, 0n);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  });

  it('not writes below FRCD0', () => {
    const { b } = setup();
    stale(b);
    b.w32(Reg.FRCD0 - 4, 0);
    b.w64(Reg.FRCD0 - 8, 0n);
    b.w32(Reg.FRCD0 - 16 + 12, 0);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  });

  it('every record of nfr, the last one included; the PPF value follows the F bits', () => {
    const { b } = setup({ props: { nfr: 3 } });
    for (const i of [1, 2]) {
      stale(b);
      b.w32(Reg.FRCD0 + 16 * i + 12, 0);
      expect(b.r32(Reg.FSTS), `record ${i}`).toBe(0);
    }
    // The other way round: an F bit set behind the unit's back shows up at the next FRCD write.
    b.iommu.regs.set32(Reg.FRCD0 + 16 * 2 + 12, 0x8000_0000);
    expect(b.r32(Reg.FSTS)).toBe(0);
    b.w32(Reg.FRCD0 + 16 + 12, 0);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  });

  it('clearing F of a recorded fault clears PPF (through the bus)', () => {
    const { b } = setup();
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
    b.w64(Reg.FRCD0 + 8, 1n << 63n);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r64(Reg.FRCD0 + 8) >> 63n).toBe(0n);
  });
});

describe('traces', () => {
  it('vtd_reg_read / vtd_reg_write for every access, refused ones included', () => {
    const { events, tracer } = traced(['vtd_reg_read', 'vtd_reg_write']);
    const { b, ops } = setup({ tracer });
    b.r32(Reg.VER);
    b.r64(Reg.CAP);
    b.w32(Reg.FEDATA, 0x12);
    b.w64(Reg.RTADDR, 0x1000n);
    ops.read(0x230, 4);
    ops.read(Reg.VER, 2);
    ops.read64!(0x230);
    ops.write(Reg.VER, 1, 5);
    ops.write64!(0x230, 1n);
    expect(events).toEqual([
      ['vtd_reg_read', { addr: Reg.VER, size: 4 }],
      ['vtd_reg_read', { addr: Reg.CAP, size: 8 }],
      ['vtd_reg_write', { addr: Reg.FEDATA, size: 4, val: 0x12 }],
      ['vtd_reg_write', { addr: Reg.RTADDR, size: 8, val: 0x1000n }],
      ['vtd_reg_read', { addr: 0x230, size: 4 }],
      ['vtd_reg_read', { addr: Reg.VER, size: 2 }],
      ['vtd_reg_read', { addr: 0x230, size: 8 }],
      ['vtd_reg_write', { addr: Reg.VER, size: 1, val: 5 }],
      ['vtd_reg_write', { addr: 0x230, size: 8, val: 1n }],
    ]);
  });

  it('nothing is traced when the tracer does not ask', () => {
    const calls: string[] = [];
    const tracer: Tracer = { enabled: () => false, trace: (e) => void calls.push(e) };
    const { b } = setup({ tracer });
    b.r32(Reg.VER);
    b.r64(Reg.CAP);
    b.w32(Reg.FEDATA, 1);
    b.w64(Reg.RTADDR, 0n);
    b.iommu.raiseFaultStatus(Fsts.ITE);
    b.w32(Reg.FSTS, 0);
    b.w32(Reg.FECTL, 0);
    expect(calls).toEqual([]);
  });
});
