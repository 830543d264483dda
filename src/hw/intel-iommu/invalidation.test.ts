import { describe, expect, it } from 'vitest';
import type { DmaSpace } from '../../memory/dma-space.js';
import { IOTLB_MAX_ENTRIES } from './iotlb.js';
import { Gcmd, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import { PatternTracer } from '../../machine/tracer.js';
import type { Tracer } from '../../machine/device-type.js';
import { Pgtt } from './scalable-context.js';

const A = 0x200_0000;
const B = 0x210_0000;

function setup() {
  const b = new VtdBench();
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, 5, 1));
  b.gcmd(Gcmd.TE);
  b.memory.write(A, 4, 0xaaaa_aaaa);
  b.memory.write(B, 4, 0xbbbb_bbbb);
  const { dma } = b.device(0, 8);
  return { b, root, top, dma };
}

function peek(dma: DmaSpace, iova: number): number {
  const d = new Uint8Array(4);
  dma.read(iova, d);
  return new DataView(d.buffer).getUint32(0, true);
}

/** Register-based IOTLB invalidation; returns the IOTLB register afterwards. */
function iotlbInv(b: VtdBench, g: number, did: number, iva = 0n): bigint {
  if (g === 3) b.w64(Reg.IVA, iva);
  b.w64(Reg.IOTLB, (1n << 63n) | (BigInt(g) << 60n) | (BigInt(did) << 32n));
  return b.r64(Reg.IOTLB);
}

function ccInv(b: VtdBench, g: number, did = 0, sid = 0, fm = 0): bigint {
  b.w64(Reg.CCMD, (1n << 63n) | (BigInt(g) << 61n) | (BigInt(fm) << 32n) | (BigInt(sid) << 16n) | BigInt(did));
  return b.r64(Reg.CCMD);
}

describe('IOTLB staleness and invalidation', () => {
  it('serves stale translations until a page-selective invalidation covers them', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0x5000, A);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    b.map(top, 3, 0x5000, B);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    expect(iotlbInv(b, 3, 5, 0x4000n) >> 57n & 3n).toBe(3n); // AM=0 at another page: IAIG=3, still stale
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    expect(iotlbInv(b, 3, 6, 0x4000n | 1n) >> 57n & 3n).toBe(3n); // other domain
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    iotlbInv(b, 3, 5, 0x4000n | 1n); // AM=1 covers 0x4000-0x5fff
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
  });

  it('removes a large page containing the invalidated address', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0x20_0000, 0, 3, 2);
    expect(peek(dma, 0x20_0000 + A)).toBe(0); // unmapped 2 MiB block
    b.memory.write(0x1_2340, 4, 0x1234);
    expect(peek(dma, 0x21_2340)).toBe(0x1234);
    b.map(top, 3, 0x20_0000, 0x20_0000, 3, 2);
    expect(peek(dma, 0x21_2340)).toBe(0x1234);
    iotlbInv(b, 3, 5, 0x21_0000n);
    expect(peek(dma, 0x21_2340)).toBe(0);
  });

  it('domain and global invalidation; AM above MAMV is not done', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0x5000, A);
    peek(dma, 0x5000);
    b.map(top, 3, 0x5000, B);
    const r = iotlbInv(b, 3, 5, 19n);
    expect(r >> 63n).toBe(0n);
    expect((r >> 57n) & 3n).toBe(0n);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    expect((iotlbInv(b, 2, 4) >> 57n) & 3n).toBe(2n);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    iotlbInv(b, 2, 5);
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
    b.map(top, 3, 0x5000, A);
    expect((iotlbInv(b, 1, 0) >> 57n) & 3n).toBe(1n);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    expect((iotlbInv(b, 0, 0) >> 57n) & 3n).toBe(0n);
  });

  it('a 32-bit write of the low half does not trigger; the high half does', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0x5000, A);
    peek(dma, 0x5000);
    b.map(top, 3, 0x5000, B);
    b.w32(Reg.IOTLB, 0);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    b.w32(Reg.IOTLB + 4, 0x9000_0000);
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
    expect(b.r32(Reg.IOTLB + 4)).toBe(0x1200_0000);
  });

  it('keeps the context cache until a context invalidation (device-selective or global)', () => {
    const { b, root, top, dma } = setup();
    b.map(top, 3, 0x5000, A);
    const top2 = b.allocPage();
    b.map(top2, 3, 0x5000, B);
    peek(dma, 0x5000);
    b.setContext(root, 0, 8, ...ctxEntry(top2, 5, 1));
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa); // context still cached
    expect((ccInv(b, 3, 5, 0x10, 0) >> 59n) & 3n).toBe(3n); // other device: no effect
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    ccInv(b, 3, 5, 0x0c, 2); // FM=2 masks devfn bits 2:1 -> matches 0x08
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa); // IOTLB entry survives a context invalidation
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
    b.setContext(root, 0, 8, ...ctxEntry(top, 5, 1));
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
    const r = ccInv(b, 2, 5); // domain-selective is performed as global
    expect(r >> 63n).toBe(0n);
    expect((r >> 59n) & 3n).toBe(1n);
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
  });

  it('does not cache not-present entries (no negative caching)', () => {
    const { b, top, dma } = setup();
    expect(peek(dma, 0x5000)).toBe(0);
    b.map(top, 3, 0x5000, A);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
  });

  it('ignores register invalidation while QI is enabled (ICC / IVT stay set)', () => {
    const { b } = setup();
    b.gcmd(Gcmd.QIE);
    expect(b.r32(Reg.GSTS) & (1 << 26)).not.toBe(0);
    expect(ccInv(b, 1) >> 63n).toBe(1n);
    expect(iotlbInv(b, 1, 0) >> 63n).toBe(1n);
  });

  it('flushes everything when the IOTLB reaches 1024 entries', () => {
    const { b, top, dma } = setup();
    for (let i = 0; i <= IOTLB_MAX_ENTRIES; i++) b.map(top, 3, i * 0x1000, A);
    for (let i = 0; i < IOTLB_MAX_ENTRIES; i++) peek(dma, i * 0x1000);
    expect(b.iommu.iotlb.size).toBe(IOTLB_MAX_ENTRIES);
    peek(dma, IOTLB_MAX_ENTRIES * 0x1000);
    expect(b.iommu.iotlb.size).toBe(1);
  });

  it('emits invalidate events', () => {
    const { b } = setup();
    const seen: string[] = [];
    b.iommu.events.on('invalidate', (e) => seen.push(`${e.cache}:${e.granularity}:${e.source}`));
    ccInv(b, 1);
    iotlbInv(b, 3, 1, 0x1000n);
    expect(seen).toEqual(['context:global:register', 'iotlb:page:register']);
  });
});

/** A unit whose 'vtd_inv_desc_*' trace lines and 'invalidate' events are recorded. */
function observed() {
  const lines: string[] = [];
  const b = new VtdBench({ tracer: new PatternTracer(['vtd_inv_desc_*'], (l) => lines.push(l)) });
  const events = b.recordEvents().invalidations;
  return { b, lines, events };
}

describe('every invalidation is traced and reported with its own fields', () => {
  it('register interface: context global, domain (done as global) and device; IOTLB global, domain and page', () => {
    const { b, lines, events } = observed();
    expect((ccInv(b, 1) >> 59n) & 3n).toBe(1n);
    expect((ccInv(b, 2, 7) >> 59n) & 3n).toBe(1n);
    expect((ccInv(b, 3, 7, 0x1234, 2) >> 59n) & 3n).toBe(3n);
    expect((iotlbInv(b, 1, 0) >> 57n) & 3n).toBe(1n);
    expect((iotlbInv(b, 2, 9) >> 57n) & 3n).toBe(2n);
    expect((iotlbInv(b, 3, 9, 0x8000_3000n | 0x40n | 1n) >> 57n) & 3n).toBe(3n); // IH, AM=1, bit 31 of the address
    expect((iotlbInv(b, 3, 9, 0x1_0000_4000n) >> 57n) & 3n).toBe(3n);
    expect(lines).toEqual([
      'vtd_inv_desc_cc_global',
      'vtd_inv_desc_cc_global',
      'vtd_inv_desc_cc_device sid=0x1234 fm=0x2',
      'vtd_inv_desc_iotlb_global',
      'vtd_inv_desc_iotlb_domain domain=0x9',
      'vtd_inv_desc_iotlb_pages domain=0x9 addr=0x80003000 mask=0x1',
      'vtd_inv_desc_iotlb_pages domain=0x9 addr=0x100004000 mask=0x0',
    ]);
    expect(events).toStrictEqual([
      { cache: 'context', granularity: 'global', source: 'register' },
      { cache: 'context', granularity: 'global', source: 'register' },
      { cache: 'context', granularity: 'device', did: 7, sid: 0x1234, fm: 2, source: 'register' },
      { cache: 'iotlb', granularity: 'global', source: 'register' },
      { cache: 'iotlb', granularity: 'domain', did: 9, source: 'register' },
      { cache: 'iotlb', granularity: 'page', did: 9, addr: 0x8000_3000, am: 1, ih: true, source: 'register' },
      { cache: 'iotlb', granularity: 'page', did: 9, addr: 0x1_0000_4000, am: 0, ih: false, source: 'register' },
    ]);
  });

  it('a CCMD or IOTLB write without ICC / IVT does nothing and reports nothing', () => {
    const { b, lines, events } = observed();
    b.w64(Reg.CCMD, 1n << 61n);
    expect(b.r64(Reg.CCMD)).toBe(1n << 61n);
    b.w64(Reg.IOTLB, 1n << 60n);
    expect(b.r64(Reg.IOTLB)).toBe(1n << 60n);
    expect(lines).toEqual([]);
    expect(events).toEqual([]);
  });

  it('reserved granularities are not done: CAIG / IAIG read 0 and nothing is reported', () => {
    const { b, events } = observed();
    const cc = ccInv(b, 0);
    expect(cc >> 63n).toBe(0n);
    expect((cc >> 59n) & 3n).toBe(0n);
    const io = iotlbInv(b, 0, 3);
    expect(io >> 63n).toBe(0n);
    expect((io >> 57n) & 3n).toBe(0n);
    expect(events).toEqual([]);
  });

  it('the queue: context and IOTLB descriptors of every granularity report source "queue"', () => {
    const { b, lines, events } = observed();
    const QUEUE = 0x80_0000;
    expect(b.enableQueue(QUEUE)).toBe(true);
    b.putDesc(QUEUE, 0, 0x1n | (1n << 4n));
    b.putDesc(QUEUE, 1, 0x1n | (2n << 4n) | (7n << 16n));
    b.putDesc(QUEUE, 2, 0x1n | (3n << 4n) | (7n << 16n) | (0x1234n << 32n) | (3n << 48n));
    b.putDesc(QUEUE, 3, 0x2n | (1n << 4n));
    b.putDesc(QUEUE, 4, 0x2n | (2n << 4n) | (9n << 16n));
    b.putDesc(QUEUE, 5, 0x2n | (3n << 4n) | (9n << 16n), 0x5000n | 0x40n | 2n);
    b.setTail(6);
    expect(b.queueHead()).toBe(6);
    expect(events).toStrictEqual([
      { cache: 'context', granularity: 'global', source: 'queue' },
      { cache: 'context', granularity: 'domain', did: 7, source: 'queue' },
      { cache: 'context', granularity: 'device', did: 7, sid: 0x1234, fm: 3, source: 'queue' },
      { cache: 'iotlb', granularity: 'global', source: 'queue' },
      { cache: 'iotlb', granularity: 'domain', did: 9, source: 'queue' },
      { cache: 'iotlb', granularity: 'page', did: 9, addr: 0x5000, am: 2, ih: true, source: 'queue' },
    ]);
    expect(lines.filter((l) => l.startsWith('vtd_inv_desc_cc_device'))).toEqual(['vtd_inv_desc_cc_device sid=0x1234 fm=0x3']);
  });

  it('PASID-based IOTLB and PASID-cache invalidations report their DID, PASID and range', () => {
    const { b, events } = observed();
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 3, pasid: 0x10 });
    b.iommu.invalidatePasidIotlb({ kind: 'page', did: 3, pasid: 0x10, addr: 0x7000, am: 1, ih: false });
    b.iommu.invalidatePasidCache({ kind: 'global' });
    b.iommu.invalidatePasidCache({ kind: 'domain', did: 4 });
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 4, pasid: 0x20 });
    expect(events).toStrictEqual([
      { cache: 'pasid-iotlb', granularity: 'pasid', did: 3, pasid: 0x10, source: 'queue' },
      { cache: 'pasid-iotlb', granularity: 'page', did: 3, pasid: 0x10, addr: 0x7000, am: 1, ih: false, source: 'queue' },
      { cache: 'pasid', granularity: 'global', source: 'queue' },
      { cache: 'pasid', granularity: 'domain', did: 4, source: 'queue' },
      { cache: 'pasid', granularity: 'pasid', did: 4, pasid: 0x20, source: 'queue' },
    ]);
  });
});

describe('device-selective context invalidation matches bus and devfn', () => {
  it('leaves the same devfn on another bus cached', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    const top = b.allocPage();
    const top2 = b.allocPage();
    b.map(top, 3, 0x5000, A);
    b.map(top2, 3, 0x5000, B);
    b.memory.write(A, 4, 0xaaaa_aaaa);
    b.memory.write(B, 4, 0xbbbb_bbbb);
    b.setRoot(root);
    b.setContext(root, 1, 8, ...ctxEntry(top, 5, 1));
    b.gcmd(Gcmd.TE);
    const { dma } = b.device(1, 8);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    b.setContext(root, 1, 8, ...ctxEntry(top2, 5, 1));
    ccInv(b, 3, 5, 0x0008); // bus 0, devfn 8: not this device
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xaaaa_aaaa);
    ccInv(b, 3, 5, 0x0108);
    iotlbInv(b, 1, 0);
    expect(peek(dma, 0x5000)).toBe(0xbbbb_bbbb);
  });
});

describe('a PASID-cache invalidation takes a scalable-mode device out of pass-through when it covers PASID 0', () => {
  const DID = 5;
  /** A device whose PASID 0 is pass-through (decided at TE); then its entry is switched to a second-stage table mapping 0x5000 -> B. */
  function ptDevice() {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const root = b.allocPage();
    const dir = b.allocPage();
    const ss = b.allocPage();
    b.memory.write(0x5000, 4, 0x1111_1111);
    b.memory.write(B, 4, 0xbbbb_bbbb);
    b.map(ss, 3, 0x5000, B);
    b.setScalableContext(root, 0, 8, dir);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: DID });
    const { dma } = b.device(0, 8);
    b.setRoot(root, true);
    b.gcmd(Gcmd.TE);
    expect(peek(dma, 0x5000)).toBe(0x1111_1111);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: DID, aw: 1, ss });
    expect(peek(dma, 0x5000)).toBe(0x1111_1111); // the pass-through decision is cached
    return { b, dma };
  }

  it.each([
    ['global', { kind: 'global' } as const, true],
    ['its domain', { kind: 'domain', did: DID } as const, true],
    ['another domain', { kind: 'domain', did: DID + 1 } as const, false],
    ['PASID 0 of its domain', { kind: 'pasid', did: DID, pasid: 0 } as const, true],
    ['PASID 1 of its domain', { kind: 'pasid', did: DID, pasid: 1 } as const, false],
    ['PASID 0 of another domain', { kind: 'pasid', did: DID + 1, pasid: 0 } as const, false],
  ])('%s', (_name, inv, covers) => {
    const { b, dma } = ptDevice();
    b.iommu.invalidatePasidCache(inv);
    expect(peek(dma, 0x5000)).toBe(covers ? 0xbbbb_bbbb : 0x1111_1111);
  });
});

describe('invalidation tracing is asked for first', () => {
  it('makes no trace call for any granularity when the tracer does not ask', () => {
    const calls: string[] = [];
    const tracer: Tracer = { enabled: () => false, trace: (e) => void calls.push(e) };
    const b = new VtdBench({ tracer });
    for (const g of [1, 3]) ccInv(b, g, 1, 8);
    for (const g of [1, 2, 3]) iotlbInv(b, g, 1, 0x1000n);
    expect(calls).toEqual([]);
  });
});
