/**
 * The unit's own invalidation queue and interrupt remapper, wired into the
 * real IntelIommu (register MMIO, GCMD, caches, fault recording): what a
 * guest sees through the bus.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench, ctxEntry } from '../../../test/support/vtd-bench.js';
import { InterruptRemapper } from './interrupt-remap.js';
import { InvalidationQueue } from './queue.js';
import { EventCtl, Fsts, Gcmd, Gsts, Reg } from './reg-layout.js';
import { VtdFault } from './fault-reasons.js';

const QUEUE = 0x20_0000;
const STATUS = 0x21_0000;
const IRT = 0x30_0000;
const BUF_A = 0x40_0000;
const BUF_B = 0x50_0000;
const EDU = { bus: 0, devfn: 0x08, sid: 0x0008 };

function bench(props = {}): VtdBench {
  return new VtdBench({ props: { 'aw-bits': 39, ...props } });
}

function enableQi(b: VtdBench): void {
  b.w64(Reg.IQA, BigInt(QUEUE));
  b.w64(Reg.IQT, 0n);
  b.gcmd(Gcmd.QIE);
}

let tail = 0;
function submit(b: VtdBench, descs: [bigint, bigint][]): void {
  tail = Number(b.r64(Reg.IQT) >> 4n);
  for (const [lo, hi] of descs) {
    b.poke64(QUEUE + tail * 16, lo);
    b.poke64(QUEUE + tail * 16 + 8, hi);
    tail = (tail + 1) % 256;
  }
  b.w64(Reg.IQT, BigInt(tail << 4));
}

/** Translation set up for EDU: IOVA 0 -> BUF_A, 3-level, DID 1. */
function translated(b: VtdBench): { dma: ReturnType<VtdBench['device']>['dma']; top: number; root: number } {
  const root = b.allocPage();
  const top = b.allocPage();
  b.setContext(root, EDU.bus, EDU.devfn, ...ctxEntry(top, 1, 1));
  b.map(top, 3, 0, BUF_A);
  b.setRoot(root);
  b.gcmd(Gcmd.TE);
  const { dma } = b.device(EDU.bus, EDU.devfn);
  b.memory.fill(BUF_A, 16, 0xaa);
  b.memory.fill(BUF_B, 16, 0xbb);
  return { dma, top, root };
}

function readByte(dma: ReturnType<VtdBench['device']>['dma'], iova: number): number {
  const x = new Uint8Array(1);
  dma.read(iova, x);
  return x[0]!;
}

describe('queued invalidation in the unit', () => {
  it('is the unit\'s own, reachable with the remapper', () => {
    const b = bench();
    expect(b.iommu.queue).toBeInstanceOf(InvalidationQueue);
    expect(b.iommu.remapper).toBeInstanceOf(InterruptRemapper);
  });

  it('GCMD.QIE reports QIES; a wait descriptor writes its status; IQH moves', () => {
    const b = bench();
    enableQi(b);
    expect(b.r32(Reg.GSTS) & Gsts.QIES).toBe(Gsts.QIES);
    submit(b, [[0x25n | (0x1234n << 32n), BigInt(STATUS)]]);
    expect(b.memory.read(STATUS, 4)).toBe(0x1234);
    expect(b.r64(Reg.IQH)).toBe(0x10n);
  });

  it('IQA reads the latched base', () => {
    const b = bench();
    b.w64(Reg.IQA, BigInt(QUEUE | 1));
    expect(b.r64(Reg.IQA)).toBe(1n);
    b.gcmd(Gcmd.QIE);
    expect(b.r64(Reg.IQA)).toBe(BigInt(QUEUE | 1));
  });

  it('a stale IOTLB entry is fixed only by the queued invalidation (register one ignored)', () => {
    const b = bench();
    const { dma, top } = translated(b);
    enableQi(b);
    expect(readByte(dma, 0)).toBe(0xaa);
    b.poke64(b.pteAddr(top, 3, 0, 1), BigInt(BUF_B) | 3n);
    expect(readByte(dma, 0)).toBe(0xaa);
    b.w64(Reg.IOTLB, (1n << 63n) | (1n << 60n)); // register-based global: ignored
    expect(b.r64(Reg.IOTLB) >> 63n).toBe(1n);
    expect(readByte(dma, 0)).toBe(0xaa);
    submit(b, [[0x32n | (1n << 16n), 0n], [0x25n | (1n << 32n), BigInt(STATUS)]]);
    expect(readByte(dma, 0)).toBe(0xbb);
  });

  it('a context change is seen after a queued context-cache + IOTLB invalidation', () => {
    const b = bench();
    const { dma, root } = translated(b);
    enableQi(b);
    expect(readByte(dma, 0)).toBe(0xaa);
    const top2 = b.allocPage();
    b.map(top2, 3, 0, BUF_B);
    b.setContext(root, EDU.bus, EDU.devfn, ...ctxEntry(top2, 2, 1));
    expect(readByte(dma, 0)).toBe(0xaa);
    submit(b, [[0x31n | (1n << 16n) | (BigInt(EDU.sid) << 32n), 0n], [0x22n | (1n << 16n), 0n]]);
    expect(readByte(dma, 0)).toBe(0xbb);
  });

  it('IQE raises the fault event (FECTL unmasked) and stops at the bad descriptor', () => {
    const b = bench();
    b.w32(Reg.FEADDR, 0xfee0_0000);
    b.w32(Reg.FEDATA, 0x99);
    b.w32(Reg.FECTL, 0);
    enableQi(b);
    submit(b, [[0x11n, 0n], [0xfn, 0n]]);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.r64(Reg.IQH)).toBe(0x10n);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x99, origin: { kind: 'iommu' } }]);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('QIE disable: refused after a non-wait descriptor, accepted after a wait', () => {
    const b = bench();
    enableQi(b);
    submit(b, [[0x11n, 0n]]);
    b.gcmd(0, Gcmd.QIE);
    expect(b.r32(Reg.GSTS) & Gsts.QIES).toBe(Gsts.QIES);
    submit(b, [[0x25n, BigInt(STATUS)]]);
    b.gcmd(0, Gcmd.QIE);
    expect(b.r32(Reg.GSTS) & Gsts.QIES).toBe(0);
    expect(b.r64(Reg.IQH)).toBe(0n);
  });

  it('completion interrupt through IEADDR/IEDATA', () => {
    const b = bench();
    enableQi(b);
    b.w32(Reg.IEADDR, 0xfee0_2000);
    b.w32(Reg.IEDATA, 0x42);
    submit(b, [[0x15n, 0n]]);
    expect(b.r32(Reg.IECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toEqual([{ address: 0xfee0_2000, data: 0x42, origin: { kind: 'iommu' } }]);
    expect(b.r32(Reg.IECTL)).toBe(0);
  });
});

describe('interrupt remapping in the unit', () => {
  function irBench(props = {}): VtdBench {
    const b = bench({ intremap: 'on', ...props });
    b.w64(Reg.IRTA, BigInt(IRT | 0xf));
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.IRE);
    return b;
  }
  function irte(b: VtdBench, index: number, lo: bigint, hi: bigint): void {
    b.poke64(IRT + index * 16, lo);
    b.poke64(IRT + index * 16 + 8, hi);
  }
  const msiAddr = (h: number) => (0xfee0_0000 | (h << 5) | 0x10) >>> 0;

  it('remaps a device MSI written through its DMA space', () => {
    const b = irBench();
    irte(b, 2, 1n | (0xeen << 16n) | (0x100n << 32n), BigInt(EDU.sid) | (1n << 18n));
    const { dma } = b.device(EDU.bus, EDU.devfn);
    dma.writeU32(msiAddr(2), 0);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x40ee, origin: { kind: 'msi', source: EDU.sid, remappedIndex: 2 } }]);
  });

  it('remaps an IOAPIC message without source-ID verification', () => {
    const b = irBench();
    irte(b, 1, 1n | (0xedn << 16n), 0x1234n | (1n << 18n));
    b.iommu.interruptFromIoapic(msiAddr(1), 0x8000);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x40ed, origin: { kind: 'ioapic', remappedIndex: 1 } }]);
  });

  it('records IR faults in FRCD: index in bits 63:48, SID, reason, T clear', () => {
    const b = irBench();
    const { dma } = b.device(EDU.bus, EDU.devfn);
    dma.writeU32(msiAddr(5), 0); // not present
    expect(b.msis).toEqual([]);
    expect(b.r32(Reg.FSTS) & Fsts.PPF).toBe(Fsts.PPF);
    expect(b.r64(Reg.FRCD0)).toBe(5n << 48n);
    expect(b.r64(Reg.FRCD0 + 8)).toBe((1n << 63n) | (BigInt(VtdFault.IR_ENTRY_P) << 32n) | BigInt(EDU.sid));
  });

  it('FPD suppresses qualified IR faults but not index overflow', () => {
    const b = irBench();
    irte(b, 5, 2n, 0n); // FPD, not present
    const { dma } = b.device(EDU.bus, EDU.devfn);
    dma.writeU32(msiAddr(5), 0);
    expect(b.r32(Reg.FSTS)).toBe(0);
    b.w64(Reg.IRTA, BigInt(IRT)); // 2 entries
    b.gcmd(Gcmd.SIRTP);
    dma.writeU32(msiAddr(5), 0);
    expect(b.r64(Reg.FRCD0 + 8) >> 32n & 0xffn).toBe(BigInt(VtdFault.IR_INDEX_OVER));
  });

  it('no remapping and no fault with IRE off', () => {
    const b = bench({ intremap: 'on' });
    const { dma } = b.device(EDU.bus, EDU.devfn);
    dma.writeU32(msiAddr(5), 7);
    expect(b.msis).toEqual([{ address: msiAddr(5), data: 7, origin: { kind: 'msi', source: EDU.sid } }]);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('a queued IEC invalidation makes an IRTE change visible', () => {
    const b = irBench();
    enableQi(b);
    irte(b, 3, 1n | (0x30n << 16n), 0n);
    b.iommu.interruptFromIoapic(msiAddr(3), 0);
    irte(b, 3, 1n | (0x31n << 16n), 0n);
    b.iommu.interruptFromIoapic(msiAddr(3), 0);
    submit(b, [[0x14n | (3n << 32n), 0n]]);
    b.iommu.interruptFromIoapic(msiAddr(3), 0);
    expect(b.msis.map((m) => m.data & 0xff)).toEqual([0x30, 0x30, 0x31]);
  });
});
