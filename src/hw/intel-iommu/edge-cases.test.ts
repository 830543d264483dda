/**
 * Edge cases of the VT-d model with expectations taken from current QEMU
 * (hw/i386/intel_iommu.c) and the VT-d spec, for behaviour QEMU 7.2 (the
 * differential oracle, test/diff/intel-iommu-edge.test.ts) does not share or
 * does not have:
 *   - TM (bit 62) in leaves needs device-iotlb AND stale-tm (current QEMU);
 *     7.2 allows it with device-iotlb alone and has no stale-tm property.
 *   - page-selective IOTLB invalidation uses the full address mask (current
 *     QEMU, spec); 7.2 stores the mask in a uint8_t and over-invalidates
 *     (AM >= 8 drops the whole domain, AM < 8 compares only 8 gfn bits).
 *   - aw-bits=57 and nfr > 1 exist only in vtemu.
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import { IommuPerm, NO_PASID } from '../../memory/iommu.js';
import { VtdFault } from './fault-reasons.js';
import { Iotlb } from './iotlb.js';
import { EventCtl, Fsts, Gcmd, Gsts, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';

const DATA = 0x200_0000;
const OTHER = 0x210_0000;
const X = 0x5000;

function setup(opts: VtdBenchOptions & { aw?: number; tt?: number; te?: boolean } = {}) {
  const b = new VtdBench(opts);
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  const aw = opts.aw ?? 1;
  b.setContext(root, 0, 8, ...ctxEntry(top, 1, aw, { tt: opts.tt }));
  b.memory.write(X, 4, 0xd4d4_d4d4);
  b.memory.write(DATA, 4, 0xa1a1_a1a1);
  b.memory.write(OTHER, 4, 0xb2b2_b2b2);
  if (opts.te !== false) b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  return { b, root, top, levels: aw + 2, req, dma };
}

const read32 = (dma: { read(a: number, d: Uint8Array): MemTx }, iova: number): number => {
  const d = new Uint8Array(4);
  dma.read(iova, d);
  return new DataView(d.buffer).getUint32(0, true);
};

/** Fault reason of FRCD[i] (0 when F is clear). */
function reason(b: VtdBench, i = 0): number {
  const hi = b.r64(Reg.FRCD0 + 16 * i + 8);
  return hi >> 63n ? Number((hi >> 32n) & 0xffn) : 0;
}

const ccDevice = (b: VtdBench, sid: number) => b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (BigInt(sid) << 16n));
const ccGlobal = (b: VtdBench) => b.w64(Reg.CCMD, (1n << 63n) | (1n << 61n));

describe('pass-through switch (QEMU vtd_switch_address_space / vtd_pt_enable_fast_path)', () => {
  it('a context that is pass-through at TE bypasses translation until a context invalidation', () => {
    const { b, root, top, dma } = setup({ tt: 2, te: false });
    b.map(top, 3, X, OTHER);
    b.gcmd(Gcmd.TE);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1)); // TT=0, no invalidation, before any DMA
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
    ccDevice(b, 0x10); // another device: no change
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
    ccDevice(b, 8);
    expect(read32(dma, X)).toBe(0xb2b2_b2b2);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('after a context invalidation to pass-through, stale IOTLB entries are bypassed', () => {
    const { b, root, top, dma } = setup();
    b.map(top, 3, X, OTHER);
    expect(read32(dma, X)).toBe(0xb2b2_b2b2);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { tt: 2 }));
    expect(read32(dma, X)).toBe(0xb2b2_b2b2); // IOTLB hit, nothing invalidated
    ccGlobal(b);
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
    expect(b.iommu.iotlb.size).toBe(1); // still cached, just not consulted
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1));
    ccDevice(b, 8);
    expect(read32(dma, X)).toBe(0xb2b2_b2b2);
  });

  it('the first pass-through translation switches the device to the bypass (fast path)', () => {
    const { b, root, top, dma } = setup();
    b.map(top, 3, X, OTHER);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { tt: 2 })); // after TE: decided TT=0 at TE
    const seen: boolean[] = [];
    b.iommu.events.on('translate', (e) => seen.push(e.passthrough));
    expect(read32(dma, X)).toBe(0xd4d4_d4d4); // context read now: PT
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1));
    expect(read32(dma, X)).toBe(0xd4d4_d4d4); // bypassed: not even the context cache is consulted
    // Both are announced as pass-through (a listener sees bypassed requests too).
    expect(seen).toEqual([true, true]);
    ccDevice(b, 8);
    expect(read32(dma, X)).toBe(0xb2b2_b2b2);
  });

  it('the decision made at TE covers every existing address space, on every bus and function', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    b.setRoot(root);
    const top = b.allocPage();
    b.map(top, 3, X, OTHER);
    b.setContext(root, 2, 0x11, ...ctxEntry(top, 1, 1, { tt: 2 }));
    b.setContext(root, 2, 0x12, ...ctxEntry(top, 1, 1));
    b.setContext(root, 5, 0xff, ...ctxEntry(top, 1, 1, { tt: 2 }));
    b.memory.write(X, 4, 0xd4d4_d4d4);
    b.memory.write(OTHER, 4, 0xb2b2_b2b2);
    const [d211, d212, d5ff] = ([[2, 0x11], [2, 0x12], [5, 0xff]] as const).map(([bus, devfn]) => b.device(bus, devfn).dma);
    b.gcmd(Gcmd.TE);
    for (const [bus, devfn] of [[2, 0x11], [2, 0x12], [5, 0xff]] as const) {
      b.setContext(root, bus, devfn, ...ctxEntry(top, 1, 1, { tt: devfn === 0x12 ? 2 : 0 })); // flipped, not invalidated
    }
    expect(read32(d211!, X)).toBe(0xd4d4_d4d4); // PT at TE
    expect(read32(d5ff!, X)).toBe(0xd4d4_d4d4);
    expect(read32(d212!, X)).toBe(0xd4d4_d4d4); // TT=0 at TE, read now: PT
    ccDevice(b, 0x2ff); // FM=0 on another devfn: nothing
    expect(read32(d5ff!, X)).toBe(0xd4d4_d4d4);
    b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (3n << 32n) | (0x5f8n << 16n)); // FM=3: devfn 0xf8-0xff on bus 5
    expect(read32(d5ff!, X)).toBe(0xb2b2_b2b2);
    expect(read32(b.device(2, 0x11).dma, X)).toBe(0xb2b2_b2b2); // created after TE: decided from memory now (TT=0)
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('TE off, SRTP and reset re-decide; an invalid context is never a bypass', () => {
    const { b, root, top, dma } = setup({ tt: 2 });
    b.map(top, 3, X, OTHER);
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1));
    b.gcmd(Gcmd.SRTP);
    expect(read32(dma, X)).toBe(0xb2b2_b2b2);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { tt: 2 }));
    b.gcmd(0, Gcmd.TE);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 5)); // AW=5 is invalid even with TT=2
    b.poke64(Number(b.peek64(root) & ~0xfffn) + 8 * 16, BigInt(top) | (2n << 2n) | 1n);
    b.gcmd(Gcmd.TE);
    expect(read32(dma, X)).toBe(0);
    expect(reason(b)).toBe(VtdFault.CONTEXT_ENTRY_INV);
    b.iommu.reset();
    expect(b.r32(Reg.GSTS)).toBe(0);
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
  });
});

describe('second-stage reserved bits (current QEMU masks)', () => {
  const TM = 1n << 62n;
  const cases: [string, Record<string, boolean>, boolean][] = [
    ['device-iotlb + stale-tm', { 'device-iotlb': true, 'stale-tm': true }, true],
    ['device-iotlb alone (QEMU 7.2 allowed it)', { 'device-iotlb': true }, false],
    ['stale-tm alone', { 'stale-tm': true }, false],
  ];
  for (const [name, props, allowed] of cases) {
    it(`TM in leaves with ${name}: ${allowed ? 'allowed' : 'reserved'}; never in non-leaf entries`, () => {
      const { b, top, dma } = setup({ props: { 'aw-bits': 39, ...props } });
      b.map(top, 3, X, DATA);
      b.map(top, 3, 0x40_0000, DATA, 3, 2);
      b.poke64(b.pteAddr(top, 3, X, 1), BigInt(DATA) | 3n | TM);
      b.poke64(b.pteAddr(top, 3, 0x40_0000, 2), BigInt(DATA) | 0x83n | TM);
      expect(read32(dma, X)).toBe(allowed ? 0xa1a1_a1a1 : 0);
      expect(reason(b)).toBe(allowed ? 0 : VtdFault.PAGING_ENTRY_RSVD);
      b.w32(Reg.FRCD0 + 12, 0x8000_0000);
      expect(read32(b.device(0, 8).dma, 0x40_0000)).toBe(allowed ? 0xa1a1_a1a1 : 0);
      b.w32(Reg.FRCD0 + 12, 0x8000_0000);
      b.iommu.iotlb.clear();
      const l2 = b.pteAddr(top, 3, X, 2);
      b.poke64(l2, b.peek64(l2) | TM);
      expect(read32(dma, X)).toBe(0);
      expect(reason(b)).toBe(VtdFault.PAGING_ENTRY_RSVD);
    });
  }

  it('snoop-control: SNP in a 1 GiB leaf is allowed', () => {
    const { b, top, dma } = setup({ props: { 'aw-bits': 39, 'snoop-control': true } });
    b.map(top, 3, 0x4000_0000, 0, 3 | 0x800, 3);
    expect(read32(dma, 0x4000_0000 + DATA)).toBe(0xa1a1_a1a1);
  });

  it('aw-bits=39: bit 39 is reserved in leaf and non-leaf entries', () => {
    const { b, top, dma } = setup({ props: { 'aw-bits': 39 } });
    b.map(top, 3, X, DATA);
    const leaf = b.pteAddr(top, 3, X, 1);
    b.poke64(leaf, BigInt(DATA) | 3n | (1n << 39n));
    expect(read32(dma, X)).toBe(0);
    expect(reason(b)).toBe(VtdFault.PAGING_ENTRY_RSVD);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    b.poke64(leaf, BigInt(DATA) | 3n);
    b.poke64(top, b.peek64(top) | (1n << 39n));
    expect(read32(dma, X)).toBe(0);
    expect(reason(b)).toBe(VtdFault.PAGING_ENTRY_RSVD);
  });

  it('aw-bits=57 (5-level): reserved bits and PS at level 5, IOVA limit 2^57', () => {
    const { b, top, dma } = setup({ props: { 'aw-bits': 57 }, aw: 3 });
    const iova = 2 ** 56 + X;
    b.map(top, 5, iova, DATA);
    expect(read32(dma, iova)).toBe(0xa1a1_a1a1);
    b.iommu.iotlb.clear();
    const l5 = b.pteAddr(top, 5, iova, 5);
    const good = b.peek64(l5);
    for (const bit of [1n << 62n, 0x80n, 0x800n]) {
      b.poke64(l5, good | bit);
      expect(read32(dma, iova)).toBe(0);
      expect(reason(b)).toBe(VtdFault.PAGING_ENTRY_RSVD);
      b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    }
    b.poke64(l5, good);
    expect(read32(dma, 2 ** 57 + X)).toBe(0);
    expect(reason(b)).toBe(VtdFault.ADDR_BEYOND_MGAW);
  });

  it('ignored bits 61:52 of a leaf never reach the output address (aw-bits=57 too)', () => {
    for (const [aw, props] of [[1, { 'aw-bits': 39 }], [2, { 'aw-bits': 48 }], [3, { 'aw-bits': 57 }]] as const) {
      const { b, top, levels, dma } = setup({ props, aw });
      b.map(top, levels, X, DATA);
      const leaf = b.pteAddr(top, levels, X, 1);
      b.poke64(leaf, BigInt(DATA) | 3n | (0x3ffn << 52n) | (1n << 63n));
      expect(read32(dma, X), `aw-bits=${props['aw-bits']}`).toBe(0xa1a1_a1a1);
      expect(b.r32(Reg.FSTS)).toBe(0);
    }
  });
});

describe('IOTLB page-selective invalidation with the full address mask (current QEMU)', () => {
  const fill = (t: Iotlb) => {
    t.insert(8, NO_PASID, 7, 0x20_0000, 2, 0x400_0000, IommuPerm.ReadWrite); // 2 MiB at 2 MiB (gfn 0x200)
    t.insert(8, NO_PASID, 7, 0x410_4000, 1, 0x500_0000, IommuPerm.ReadWrite); // 4 KiB, gfn 0x4104
    t.insert(8, NO_PASID, 7, 0x4000_0000, 3, 0, IommuPerm.ReadWrite); // 1 GiB at 1 GiB
  };
  it('does not over-invalidate (QEMU 7.2 did: uint8_t mask)', () => {
    const t = new Iotlb();
    fill(t);
    expect(t.removePages(7, 0, 9)).toBe(0); // 7.2: AM >= 8 removed the whole domain
    expect(t.removePages(7, 0x40_0000, 0)).toBe(0); // 7.2: gfn 0x400 aliased 0x200 in 8 bits
    expect(t.removePages(7, 0x4000, 0)).toBe(0); // 7.2: gfn 0x004 aliased 0x4104
    expect(t.size).toBe(3);
    expect(t.removePages(7, 0, 18)).toBe(2); // 0-1 GiB block: not the 1 GiB page at 1 GiB
    expect(t.lookup(8, NO_PASID, 0x4000_0000)?.level).toBe(3);
  });
  it('removes entries in the block or whose page contains the address', () => {
    const t = new Iotlb();
    fill(t);
    expect(t.removePages(7, 0x4000_0000 + 0x12_3000, 0)).toBe(1);
    expect(t.removePages(7, 0x3f_f000, 0)).toBe(1);
    expect(t.removePages(8, 0x410_4000, 0)).toBe(0); // other domain
    expect(t.removePages(7, 0x410_0000, 8)).toBe(1); // 1 MiB block holding gfn 0x4104
    expect(t.size).toBe(0);
  });
});

describe('fault recording edge cases', () => {
  function faulting(props: Record<string, number | boolean>) {
    const s = setup({ props });
    s.b.w32(Reg.FEDATA, 0x41);
    s.b.w32(Reg.FEADDR, 0xfee0_0000);
    s.b.w32(Reg.FECTL, 0);
    const devs = [8, 16, 24, 32].map((d) => s.b.device(0, d).dma);
    return { ...s, devs };
  }

  it('nfr=2: PFO when the next record is busy although the other one is free; no event for PFO', () => {
    const { b, devs } = faulting({ nfr: 2 });
    read32(devs[0]!, X); // not mapped -> record 0
    read32(devs[1]!, X); // root present, context not present -> record 1
    expect(b.msis.length).toBe(1); // PPF was already set for the second
    b.w32(Reg.FRCD0 + 16 + 12, 0x8000_0000); // free record 1; next is record 0 (busy)
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
    read32(devs[2]!, X);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF | Fsts.PFO);
    expect(b.msis.length).toBe(1);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PFO); // PPF recomputed, PFO kept
    read32(devs[2]!, X);
    expect(reason(b, 0)).toBe(0); // dropped while PFO is set
    b.w32(Reg.FSTS, Fsts.PFO);
    read32(devs[2]!, X);
    expect(reason(b, 0)).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect((b.r32(Reg.FSTS) >>> Fsts.FRI_SHIFT) & 0xff).toBe(0);
    expect(b.msis.length).toBe(2);
    read32(devs[3]!, X); // record 1, FRI unchanged (PPF was set)
    expect(reason(b, 1)).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect((b.r32(Reg.FSTS) >>> Fsts.FRI_SHIFT) & 0xff).toBe(0);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    b.w32(Reg.FRCD0 + 16 + 12, 0x8000_0000);
    read32(devs[0]!, X); // next is record 0 again: FRI 0
    expect((b.r32(Reg.FSTS) >>> Fsts.FRI_SHIFT) & 0xff).toBe(0);
    read32(devs[1]!, X);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000); // only record 1 pending
    b.w32(Reg.FRCD0 + 16 + 12, 0x8000_0000);
    read32(devs[2]!, X); // all clear: recorded at the next index (0) with FRI = 0
    read32(devs[3]!, X);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    b.w32(Reg.FRCD0 + 16 + 12, 0x8000_0000);
    read32(devs[0]!, X); // next index is 0 again after two records
    expect(reason(b, 0)).toBe(VtdFault.READ);
  });

  it('FECTL: a deferred event fires once when IM clears; IP is read-only', () => {
    const { b, dma } = faulting({});
    b.w32(Reg.FECTL, EventCtl.IM);
    read32(dma, X);
    expect(b.msis.length).toBe(0);
    b.w32(Reg.FECTL, (EventCtl.IM | EventCtl.IP) >>> 0);
    expect(b.msis.length).toBe(0);
    b.w32(Reg.FECTL, EventCtl.IP);
    expect(b.msis.length).toBe(1);
    expect(b.r32(Reg.FECTL)).toBe(0);
    b.w32(Reg.FECTL, 0);
    b.w32(Reg.FECTL, EventCtl.IP); // IP cannot be set by software
    expect(b.msis.length).toBe(1);
    read32(dma, 0x6000); // collapsed (same SID pending): no event
    expect(b.msis.length).toBe(1);
  });
});

describe('interrupt window (QEMU: the VT-d interrupt region overlays every device address space)', () => {
  it('a DMA write crossing into the window: translated part to RAM, aligned dwords in the window are interrupt requests', () => {
    const { b, top, dma } = setup();
    b.map(top, 3, 0xfedf_f000, DATA);
    const bytes = new Uint8Array([1, 2, 3, 4, 0x21, 0, 0, 0, 0x22, 0, 0, 0]);
    expect(dma.write(0xfedf_fffc, bytes)).toBe(MemTx.Ok);
    expect(b.memory.read(DATA + 0xffc, 4)).toBe(0x0403_0201);
    expect(b.msis).toEqual([
      { address: 0xfee0_0000, data: 0x21, origin: { kind: 'msi', source: 8 } },
      { address: 0xfee0_0004, data: 0x22, origin: { kind: 'msi', source: 8 } },
    ]);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('an output in the interrupt range is a qualified fault (FPD suppresses it)', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    const top = b.allocPage();
    b.setRoot(root);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1, { fpd: true }));
    b.map(top, 3, X, 0xfee0_0000);
    b.gcmd(Gcmd.TE);
    expect(b.device(0, 8).dma.read(X, new Uint8Array(4))).toBe(MemTx.DecodeError);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });
});

describe('dma-translation=off', () => {
  it('reports SAGAW 0, ignores TE and leaves every context unused', () => {
    const { b, dma } = setup({ props: { 'dma-translation': false } });
    expect((b.iommu.capability >> 8n) & 0x1fn).toBe(0n);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.RTPS);
    expect(read32(dma, X)).toBe(0xd4d4_d4d4);
    expect(b.iommu.iotlb.size).toBe(0);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });
});
