import { describe, expect, it } from 'vitest';
import type { DmaSpace } from '../../memory/dma-space.js';
import { IOTLB_MAX_ENTRIES } from './iotlb.js';
import { Gcmd, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';

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
