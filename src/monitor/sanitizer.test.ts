/**
 * The invalidation sanitizer on hand-built legacy-mode tables (VtdBench):
 * a translation cached by a DMA, its source changed, then the DMA again —
 * reported with the exact structure, values and required invalidation when
 * no covering invalidation came between, silent when one did; one report per
 * change; SRTP empties the ledger; the caching-mode rule (CM=1: a mapping
 * written since the last covering invalidation) and its absence with CM=0.
 */
import { describe, expect, it } from 'vitest';
import type { MemTx } from '../memory/address-space.js';
import type { ChunkedRam } from '../memory/ram.js';
import type { SanitizerReport } from '../hw/intel-iommu/events.js';
import { Gcmd, Reg } from '../hw/intel-iommu/reg-layout.js';
import { ctxEntry, VtdBench } from '../../test/support/vtd-bench.js';
import { Sanitizer } from './sanitizer.js';

const X = 0x5000;
const Y = 0x40_0000;
const A = 0x200_0000;
const B = 0x210_0000;
const DID = 1;

function ramOf(b: VtdBench): ChunkedRam {
  const r = b.memory.lookup(0)!;
  if (r.leaf.kind !== 'ram') throw new Error('no RAM at 0');
  return r.leaf.ram;
}

function setup(props: Record<string, boolean> = {}) {
  const b = new VtdBench({ props });
  const s = new Sanitizer(b.iommu, [ramOf(b)]);
  const reports: SanitizerReport[] = [];
  b.iommu.events.on('sanitizer', (r) => reports.push(r));
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, DID, 1));
  b.map(top, 3, X, A);
  b.gcmd(Gcmd.TE);
  const { dma } = b.device(0, 8);
  const read = (iova: number): MemTx => dma.read(iova, new Uint8Array(4));
  return { b, s, reports, root, top, dma, read };
}

const iotlbPage = (b: VtdBench, did: number, addr: number, am = 0) => {
  b.w64(Reg.IVA + 0, BigInt(addr) | BigInt(am));
  b.w64(Reg.IOTLB, (1n << 63n) | (3n << 60n) | (BigInt(did) << 32n));
};
const iotlbDomain = (b: VtdBench, did: number) => b.w64(Reg.IOTLB, (1n << 63n) | (2n << 60n) | (BigInt(did) << 32n));
const iotlbGlobal = (b: VtdBench) => b.w64(Reg.IOTLB, (1n << 63n) | (1n << 60n));
const ccDevice = (b: VtdBench, sid: number) => b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (BigInt(sid) << 16n));

const hex = (v: number | bigint) => `0x${v.toString(16).padStart(16, '0')}`;

describe('invalidation sanitizer (legacy mode, hand-built tables)', () => {
  it('a leaf changed under a cached translation: one report naming the entry, values and the page-selective IOTLB invalidation', () => {
    const { b, reports, top, read } = setup();
    read(X);
    const pte = b.pteAddr(top, 3, X, 1);
    const before = b.peek64(pte);
    b.map(top, 3, X, B);
    expect(reports).toEqual([]);
    read(X + 8);
    expect(reports).toHaveLength(1);
    const r = reports[0]!;
    expect(r).toMatchObject({
      seq: 1, sid: 8, device: '00:01.0', pasid: null, use: 'dma', address: X + 8, cache: 'iotlb', rule: 'changed',
      structure: { kind: 'L1', gpa: pte, old: [hex(before)], new: [hex(b.peek64(pte))] },
      required: { type: 2, descriptor: 'IOTLB invalidation', granularity: 'page-selective', fields: { did: DID, addr: X, am: 0 } },
    });
    expect(r.message).toContain('L1 entry at 0x');
    expect(r.message).toContain('required: IOTLB invalidation (descriptor type 2), page-selective DID 1 ADDR 0x0000000000005000 AM 0');
    read(X);
    expect(reports).toHaveLength(1); // one report per change
  });

  it('a covering invalidation in between silences it; one that does not cover does not', () => {
    for (const [name, inv, reported] of [
      ['page-selective, same page', (b: VtdBench) => iotlbPage(b, DID, X), false],
      ['page-selective, 2 MiB covering it', (b: VtdBench) => iotlbPage(b, DID, 0, 9), false],
      ['domain-selective', (b: VtdBench) => iotlbDomain(b, DID), false],
      ['global', (b: VtdBench) => iotlbGlobal(b), false],
      ['page-selective, another page', (b: VtdBench) => iotlbPage(b, DID, Y), true],
      ['page-selective, another domain', (b: VtdBench) => iotlbPage(b, DID + 1, X), true],
      ['domain-selective, another domain', (b: VtdBench) => iotlbDomain(b, DID + 1), true],
      ['context-cache only', (b: VtdBench) => ccDevice(b, 8), true],
    ] as const) {
      const { b, reports, top, read } = setup();
      read(X);
      b.map(top, 3, X, B);
      inv(b);
      read(X);
      expect(reports.length, name).toBe(reported ? 1 : 0);
    }
  });

  it('a context entry changed without the context-cache invalidation (IOTLB flushed): reported against the context cache', () => {
    const { b, reports, root, read } = setup();
    read(X);
    const other = b.allocPage();
    b.map(other, 3, X, B);
    b.setContext(root, 0, 8, ...ctxEntry(other, DID + 1, 1));
    iotlbGlobal(b);
    read(X);
    expect(reports.map((r) => [r.cache, r.structure.kind, r.required.type, r.required.granularity, r.required.fields])).toEqual([
      ['context', 'context', 1, 'device-selective', { sid: 8, fm: 0, did: DID }],
    ]);
  });

  it('the domain switch without the old domain\'s IOTLB flush: reported against the IOTLB, domain-selective', () => {
    const { b, reports, root, read } = setup();
    read(X);
    const other = b.allocPage();
    b.map(other, 3, X, B);
    b.setContext(root, 0, 8, ...ctxEntry(other, DID + 1, 1));
    ccDevice(b, 8);
    read(X);
    expect(reports.map((r) => [r.cache, r.structure.kind, r.required.type, r.required.granularity, r.required.fields])).toEqual([
      ['iotlb', 'context', 2, 'domain-selective', { did: DID }],
    ]);
  });

  it('SRTP and translation switches empty the ledger', () => {
    const { b, reports, top, read } = setup();
    read(X);
    b.map(top, 3, X, B);
    b.gcmd(Gcmd.SRTP);
    read(X);
    b.map(top, 3, X, A);
    b.gcmd(0, Gcmd.TE);
    b.gcmd(Gcmd.TE);
    read(X);
    expect(reports).toEqual([]);
  });

  it('caching mode: a new mapping used without an invalidation is reported; covered or CM=0 it is not', () => {
    for (const [cm, invalidate, reported] of [[true, false, true], [true, true, false], [false, false, false]] as const) {
      const { b, reports, top, read } = setup({ 'caching-mode': cm });
      b.map(top, 3, Y, B); // not present -> present: a new L1 table under a new L2 entry (the first entry written, top down)
      if (invalidate) iotlbPage(b, DID, Y);
      read(Y);
      const rs = reports.map((r) => [r.rule, r.cache, r.structure.kind, r.required.type, r.required.granularity, r.required.fields]);
      expect(rs, `cm=${cm} invalidate=${invalidate}`).toEqual(
        reported ? [['caching-mode', 'iotlb', 'L2', 2, 'page-selective', { did: DID, addr: Y, am: 9 }]] : [],
      );
    }
  });

  it('a unit reset or snapshot load empties the ledger (restored memory is not a change)', () => {
    const { b, reports, top, read } = setup();
    read(X);
    b.map(top, 3, X, B);
    b.iommu.events.emit('reset', { why: 'load' }); // what IntelIommu.loadState / reset emit
    read(X);
    expect(reports).toEqual([]);
    b.iommu.reset();
    b.setRoot(b.allocPage());
    expect(reports).toEqual([]);
  });

  it('close() detaches: nothing is reported after it', () => {
    const { b, s, reports, top, read } = setup();
    read(X);
    s.close();
    b.map(top, 3, X, B);
    read(X);
    expect(reports).toEqual([]);
    expect(s.summary()).toEqual(['intel-iommu sanitizer: 0 reports']);
  });
});
