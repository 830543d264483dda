import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import { VtdFault } from './fault-reasons.js';
import { EventCtl, Fsts, Gcmd, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';

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
