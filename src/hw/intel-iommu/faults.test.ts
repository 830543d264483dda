import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import { VtdFault } from './fault-reasons.js';
import { EventCtl, Fsts, Gcmd, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import { PatternTracer } from '../../machine/tracer.js';
import type { Tracer } from '../../machine/device-type.js';

const DATA = 0x200_0000;
const UNASSIGNED = 0x80_0000_0000; // far above RAM

function setup(opts: { props?: Record<string, number | boolean | string>; fpd?: boolean } = {}) {
  const b = new VtdBench({ props: opts.props });
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { fpd: opts.fpd }));
  b.gcmd(Gcmd.TE);
  b.w32(Reg.FEDATA, 0x41);
  b.w32(Reg.FEADDR, 0xfee0_0000);
  b.w32(Reg.FECTL, 0);
  const { dma, req } = b.device(0, 8);
  return { b, root, top, dma, req };
}

/** Decoded FRCD[i]. */
function record(b: VtdBench, i = 0) {
  const hi = b.r64(Reg.FRCD0 + 16 * i + 8);
  const lo = b.r64(Reg.FRCD0 + 16 * i);
  return { f: hi >> 63n === 1n, t: Number((hi >> 62n) & 1n), fr: Number((hi >> 32n) & 0xffn), sid: Number(hi & 0xffffn), lo };
}

const read = (dma: { read(a: number, d: Uint8Array): MemTx }, iova: number) => dma.read(iova, new Uint8Array(4));

describe('fault reasons', () => {
  const cases: [string, number, (s: ReturnType<typeof setup>) => number][] = [
    ['root entry not present', VtdFault.ROOT_ENTRY_P, ({ b, root }) => (b.poke64(root, 0n), 0x1000)],
    ['context entry not present', VtdFault.CONTEXT_ENTRY_P, ({ b, root }) => (b.poke64(Number(b.peek64(root) & ~0xfffn) + 8 * 16, 0n), 0x1000)],
    ['AW not in SAGAW', VtdFault.CONTEXT_ENTRY_INV, ({ b, root, top }) => (b.setContext(root, 0, 8, ...ctxEntry(top, 1, 3)), 0x1000)],
    ['TT reserved', VtdFault.CONTEXT_ENTRY_INV, ({ b, root, top }) => (b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { tt: 3 })), 0x1000)],
    ['TT=1 without device-iotlb', VtdFault.CONTEXT_ENTRY_INV, ({ b, root, top }) => (b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { tt: 1 })), 0x1000)],
    ['unreadable top table', VtdFault.CONTEXT_ENTRY_INV, ({ b, root }) => (b.setContext(root, 0, 8, ...ctxEntry(UNASSIGNED, 1, 1)), 0x1000)],
    ['address beyond MGAW', VtdFault.ADDR_BEYOND_MGAW, () => 2 ** 39],
    ['read of a non-present page', VtdFault.READ, () => 0x1000],
    ['unreadable paging entry', VtdFault.PAGING_ENTRY_INV, ({ b, top }) => (b.poke64(top, BigInt(UNASSIGNED) | 3n), 0x1000)],
    ['unreadable root table', VtdFault.ROOT_TABLE_INV, ({ b }) => (b.setRoot(UNASSIGNED), 0x1000)],
    ['unreadable context table', VtdFault.CONTEXT_TABLE_INV, ({ b, root }) => (b.poke64(root, BigInt(UNASSIGNED) | 1n), 0x1000)],
    ['root entry reserved bits', VtdFault.ROOT_ENTRY_RSVD, ({ b, root }) => (b.poke64(root, b.peek64(root) | 0x10n), 0x1000)],
    ['root entry high qword', VtdFault.ROOT_ENTRY_RSVD, ({ b, root }) => (b.poke64(root + 8, 1n), 0x1000)],
    ['context entry reserved bits', VtdFault.CONTEXT_ENTRY_RSVD, ({ b, root }) => (b.poke64(Number(b.peek64(root) & ~0xfffn) + 8 * 16 + 8, 0x80n | 1n), 0x1000)],
    ['PTE reserved bit 62', VtdFault.PAGING_ENTRY_RSVD, ({ b, top }) => (b.map(top, 3, 0x1000, DATA), b.poke64(b.pteAddr(top, 3, 0x1000, 1), BigInt(DATA) | 3n | (1n << 62n)), 0x1000)],
    ['PTE address above HAW', VtdFault.PAGING_ENTRY_RSVD, ({ b, top }) => (b.poke64(top, (1n << 48n) | 3n), 0x1000)],
    ['2 MiB leaf with bits 20:12 set', VtdFault.PAGING_ENTRY_RSVD, ({ b, top }) => (b.map(top, 3, 0, DATA + 0x1000, 3, 2), 0x1000)],
    ['SNP without snoop control', VtdFault.PAGING_ENTRY_RSVD, ({ b, top }) => (b.map(top, 3, 0x1000, DATA, 3 | 0x800), 0x1000)],
    ['output in the interrupt range', VtdFault.INTERRUPT_ADDR, ({ b, top }) => (b.map(top, 3, 0x1000, 0xfee0_0000), 0x1000)],
    ['2 MiB output covering the interrupt range', VtdFault.INTERRUPT_ADDR, ({ b, top }) => (b.map(top, 3, 0x20_0000, 0xfee0_0000, 3, 2), 0x20_0000)],
  ];
  for (const [name, reason, arrange] of cases) {
    it(`${name} -> 0x${reason.toString(16)}`, () => {
      const s = setup();
      const iova = arrange(s);
      expect(read(s.dma, iova)).toBe(MemTx.DecodeError);
      const r = record(s.b);
      expect(r).toMatchObject({ f: true, t: 1, fr: reason, sid: 8 });
      expect(r.lo).toBe(BigInt(iova - (iova % 4096)));
      expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PPF);
      expect(s.b.msis).toEqual([{ address: 0xfee0_0000, data: 0x41, origin: { kind: 'iommu' } }]);
    });
  }

  it('write to a read-only page -> 5, T=0', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0x1000, DATA, 1);
    expect(dma.read(0x1000, new Uint8Array(4))).toBe(MemTx.Ok);
    b.iommu.iotlb.clear();
    expect(dma.write(0x1000, new Uint8Array(4))).toBe(MemTx.DecodeError);
    expect(record(b)).toMatchObject({ f: true, t: 0, fr: VtdFault.WRITE });
  });

  it('SNP allowed with snoop-control, PS at level 4 reserved', () => {
    const s = setup({ props: { 'snoop-control': true } });
    s.b.map(s.top, 3, 0x1000, DATA, 3 | 0x800);
    expect(read(s.dma, 0x1000)).toBe(MemTx.Ok);
    const b = new VtdBench();
    const root = b.allocPage();
    const top = b.allocPage();
    b.setRoot(root);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 2));
    b.poke64(top, 0x83n);
    b.gcmd(Gcmd.TE);
    expect(read(b.device(0, 8).dma, 0x1000)).toBe(MemTx.DecodeError);
    expect(record(b).fr).toBe(VtdFault.PAGING_ENTRY_RSVD);
  });
});

describe('fault recording', () => {
  it('FPD suppresses qualified faults only', () => {
    const s = setup({ fpd: true });
    expect(read(s.dma, 0x1000)).toBe(MemTx.DecodeError);
    expect(s.b.r32(Reg.FSTS)).toBe(0);
    s.b.poke64(Number(s.b.peek64(s.root) & ~0xfffn) + 8 * 16 + 8, 0x81n); // reserved -> 0xB unqualified
    s.b.gcmd(Gcmd.SRTP);
    read(s.dma, 0x1000);
    expect(record(s.b).fr).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
  });

  it('collapses faults of a pending source ID, sets PFO when the next record is busy', () => {
    const s = setup();
    read(s.dma, 0x1000);
    read(s.dma, 0x2000);
    expect(record(s.b).lo).toBe(0x1000n);
    expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PPF);
    const other = s.b.device(0, 16);
    read(other.dma, 0x3000); // root present, context of 00:02.0 not present; record 0 busy -> PFO
    expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PPF | Fsts.PFO);
    expect(s.b.msis.length).toBe(1);
    // Clear F: PPF recomputed; PFO is W1C.
    s.b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PFO);
    read(other.dma, 0x3000);
    expect(record(s.b).f).toBe(false);
    s.b.w32(Reg.FSTS, Fsts.PFO);
    expect(s.b.r32(Reg.FSTS)).toBe(0);
    read(other.dma, 0x3000);
    expect(record(s.b)).toMatchObject({ f: true, sid: 16, fr: VtdFault.CONTEXT_ENTRY_P });
    expect(s.b.msis.length).toBe(2);
  });

  it('a 32-bit write of the F dword or a 64-bit write of the high qword clears F and updates PPF', () => {
    const s = setup();
    read(s.dma, 0x1000);
    s.b.w32(Reg.FRCD0 + 8, 0xffff_ffff); // low dword of the high qword: no effect on F
    expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PPF);
    s.b.w64(Reg.FRCD0 + 8, 1n << 63n);
    expect(s.b.r32(Reg.FSTS)).toBe(0);
  });

  it('uses nfr records in a ring with FRI pointing at the first pending one', () => {
    const s = setup({ props: { nfr: 3 } });
    const devs = [8, 16, 24, 32].map((d) => s.b.device(0, d));
    for (const d of devs) read(d.dma, 0x1000);
    expect([0, 1, 2].map((i) => record(s.b, i).sid)).toEqual([8, 16, 24]);
    expect(s.b.r32(Reg.FSTS)).toBe(Fsts.PPF | Fsts.PFO);
    for (let i = 0; i < 3; i++) s.b.w32(Reg.FRCD0 + 16 * i + 12, 0x8000_0000);
    s.b.w32(Reg.FSTS, Fsts.PFO);
    read(devs[3]!.dma, 0x1000);
    expect(record(s.b, 0).sid).toBe(32);
    expect((s.b.r32(Reg.FSTS) >>> 8) & 0xff).toBe(0);
    read(devs[0]!.dma, 0x1000);
    expect(record(s.b, 1).sid).toBe(8);
    expect((s.b.r32(Reg.FSTS) >>> 8) & 0xff).toBe(0);
  });

  it('defers the fault event while IM is set and fires it when IM clears', () => {
    const s = setup();
    s.b.w32(Reg.FECTL, EventCtl.IM);
    read(s.dma, 0x1000);
    expect(s.b.msis.length).toBe(0);
    expect(s.b.r32(Reg.FECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    s.b.w32(Reg.FECTL, 0);
    expect(s.b.msis.length).toBe(1);
    expect(s.b.r32(Reg.FECTL)).toBe(0);
    // IP pending, then software clears the status: IP drops without an MSI.
    s.b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    s.b.w32(Reg.FECTL, EventCtl.IM);
    read(s.dma, 0x2000);
    expect(s.b.r32(Reg.FECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    s.b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    s.b.w32(Reg.FSTS, 0);
    expect(s.b.r32(Reg.FECTL)).toBe(EventCtl.IM >>> 0);
    s.b.w32(Reg.FECTL, 0);
    expect(s.b.msis.length).toBe(1);
  });

  it('TE off resets the next record index; IR faults keep the index in bits 63:48', () => {
    const s = setup({ props: { nfr: 2 } });
    read(s.dma, 0x1000);
    s.b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    s.b.gcmd(0, Gcmd.TE);
    s.b.gcmd(Gcmd.TE);
    s.b.iommu.recordFault(0x10, VtdFault.IR_ENTRY_P, 0, false, { irIndex: 0x1234 });
    expect(record(s.b, 0)).toMatchObject({ f: true, fr: 0x22, sid: 0x10 });
    expect(record(s.b, 0).lo).toBe(0x1234n << 48n);
    s.b.iommu.recordFault(0x11, VtdFault.IR_ENTRY_P, 0, false, { irIndex: 1, fpd: true });
    expect(record(s.b, 1).f).toBe(false);
  });
});

describe('every fault outcome is traced and reported', () => {
  /** A unit with 2 records, FEUADDR set, recording 'vtd_*fault*', 'vtd_frr_new', 'vtd_irq_generate' lines and 'fault' events. */
  function observed() {
    const lines: string[] = [];
    const b = new VtdBench({
      props: { nfr: 2 },
      tracer: new PatternTracer(['vtd_*fault*', 'vtd_frr_new', 'vtd_irq_generate'], (l) => lines.push(l)),
    });
    b.w32(Reg.FEDATA, 0x41);
    b.w32(Reg.FEADDR, 0xfee0_1000);
    b.w32(Reg.FEUADDR, 0x2);
    b.w32(Reg.FECTL, 0);
    const events = b.recordEvents().faults;
    return { b, lines, events };
  }

  it('fpd, recorded (with the fault event), collapsed, recorded again, overflow, pfo', () => {
    const { b, lines, events } = observed();
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false, { fpd: true });
    b.iommu.recordFault(0x10, VtdFault.WRITE, 0x1_2345_6000, true);
    b.iommu.recordFault(0x10, VtdFault.READ, 0x7000, false);
    b.iommu.recordFault(0x11, VtdFault.IR_ENTRY_P, 0, true, { irIndex: 7 });
    b.iommu.recordFault(0x12, VtdFault.READ, 0x8000, false);
    b.iommu.recordFault(0x13, VtdFault.READ, 0x9000, false);
    expect(events).toStrictEqual([
      { sid: 0x10, reason: VtdFault.READ, addr: 0x5000, isWrite: false, outcome: 'fpd' },
      { sid: 0x10, reason: VtdFault.WRITE, addr: 0x1_2345_6000, isWrite: true, outcome: 'recorded', index: 0 },
      { sid: 0x10, reason: VtdFault.READ, addr: 0x7000, isWrite: false, outcome: 'collapsed' },
      { sid: 0x11, reason: VtdFault.IR_ENTRY_P, addr: 0, isWrite: true, irIndex: 7, outcome: 'recorded', index: 1 },
      { sid: 0x12, reason: VtdFault.READ, addr: 0x8000, isWrite: false, outcome: 'overflow' },
      { sid: 0x13, reason: VtdFault.READ, addr: 0x9000, isWrite: false, outcome: 'pfo' },
    ]);
    expect(lines).toEqual([
      'vtd_fault_disabled sid=0x10 reason=0x6',
      'vtd_dmar_fault sid=0x10 fault=0x5 addr=0x123456000 is_write=1',
      `vtd_frr_new index=0x0 hi=0x${((0x8000_0005n << 32n) | 0x10n).toString(16)} lo=0x123456000`,
      'vtd_fault_event fsts=0x0',
      'vtd_irq_generate addr=0xfee01000 data=0x41', // FEUADDR is read-only 0 (no EIM upper address)
      'vtd_dmar_fault sid=0x10 fault=0x6 addr=0x7000 is_write=0',
      'vtd_fault_collapse sid=0x10 index=0x0',
      'vtd_dmar_fault sid=0x11 fault=0x22 addr=0x0 is_write=1',
      `vtd_frr_new index=0x1 hi=0x${((0x8000_0022n << 32n) | 0x11n).toString(16)} lo=0x7000000000000`,
      'vtd_dmar_fault sid=0x12 fault=0x6 addr=0x8000 is_write=0',
      'vtd_err_dmar_fault_overflow index=0x0',
      'vtd_dmar_fault sid=0x13 fault=0x6 addr=0x9000 is_write=0',
    ]);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x41, origin: { kind: 'iommu' } }]);
    // One event for the first record only: FRI stays at it while it is pending.
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF | Fsts.PFO);
  });

  it('PP and PV only for a fault with a PASID; FRI moves to the new record once nothing is pending', () => {
    const { b } = observed();
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false);
    expect(b.r64(Reg.FRCD0 + 8)).toBe((0xc000_0006n << 32n) | 0x10n); // F, T=1 (read), FR 6, PP=0
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    b.iommu.recordFault(0x20, VtdFault.WRITE, 0x6000, true, { pasid: 0x12345 });
    expect(b.r64(Reg.FRCD0 + 16 + 8)).toBe((BigInt((0x8000_0005 | (0x12345 << 8)) >>> 0) << 32n) | (1n << 31n) | 0x20n);
    expect((b.r32(Reg.FSTS) >>> 8) & 0xff).toBe(1);
    expect(b.msis.length).toBe(2);
  });
});

describe('fault tracing is asked for first', () => {
  it('makes no trace call for any outcome when the tracer does not ask', () => {
    const calls: string[] = [];
    const tracer: Tracer = { enabled: () => false, trace: (e) => void calls.push(e) };
    const b = new VtdBench({ props: { nfr: 2 }, tracer });
    b.w32(Reg.FECTL, 0);
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false, { fpd: true });
    b.iommu.recordFault(0x10, VtdFault.READ, 0x5000, false);
    b.iommu.recordFault(0x10, VtdFault.READ, 0x6000, false);
    b.iommu.recordFault(0x11, VtdFault.READ, 0x6000, false);
    b.iommu.recordFault(0x12, VtdFault.READ, 0x6000, false);
    expect(b.msis.length).toBe(1);
    expect(b.r32(Reg.FSTS) & Fsts.PFO).toBe(Fsts.PFO);
    expect(calls).toEqual([]);
  });
});
