/**
 * Scalable-mode translation through the unit: RTADDR.SMT latched by SRTP,
 * PGTT second stage / first stage / pass-through / nested (x-nested), the
 * IOTLB keyed by PASID, fault records with and without the PASID, the
 * scalable interrupt-window fault, the spec's write fault on a cached
 * read-only translation, PASID-based and PASID-cache invalidation, and
 * requests with a PASID in legacy mode.
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import { MmioRegion } from '../../memory/region.js';
import { iova } from '../../memory/address.js';
import { DmaAccess, DmaRequestKind, IommuPerm, NO_PASID, newIotlbEntry } from '../../memory/iommu.js';
import { FS_PRESENT_RW_US, VtdBench } from '../../../test/support/vtd-bench.js';
import { VtdFault } from './fault-reasons.js';
import { Gcmd, Reg } from './reg-layout.js';
import { Pgtt } from './scalable-context.js';
import { PGTT_FIRST_STAGE } from './iotlb.js';

const DATA = 0x200_0000;
const DATA2 = 0x210_0000;
const EDU_DEVFN = 0x10;
/** FRCD 0 as [lo, hi]. */
const frcd = (b: VtdBench): [bigint, bigint] => [b.r64(Reg.FRCD0), b.r64(Reg.FRCD0 + 8)];
const reason = (b: VtdBench) => Number((frcd(b)[1] >> 32n) & 0xffn);
const pasidOf = (b: VtdBench) => ({ pp: (frcd(b)[1] >> 31n) & 1n, pv: Number((frcd(b)[1] >> 40n) & 0xfffffn) });
/** Clears FRCD 0's F bit and FSTS, so the next fault is recorded in FRCD 1... and checks it is gone. */
const clearFault = (b: VtdBench) => {
  b.w64(Reg.FRCD0 + 8, 1n << 63n);
  b.w32(Reg.FSTS, b.r32(Reg.FSTS));
  expect(b.r32(Reg.FSTS)).toBe(0);
};

/** A unit in scalable mode with one device whose PASID 0 (and more) are set up by the test. */
function sm(props: Record<string, boolean | number | string> = {}) {
  const b = new VtdBench({ props: { 'scalable-mode': true, ...props } });
  const root = b.allocPage();
  const dir = b.allocPage();
  b.setScalableContext(root, 0, EDU_DEVFN, dir);
  const dev = b.device(0, EDU_DEVFN);
  const enable = () => {
    b.setRoot(root, true);
    b.gcmd(Gcmd.TE);
  };
  return { b, root, dir, dev, enable };
}

const read4 = (dma: { read(a: number, d: Uint8Array): MemTx }, addr: number) => {
  const buf = new Uint8Array(4);
  const r = dma.read(addr, buf);
  return r === MemTx.Ok ? new DataView(buf.buffer).getUint32(0, true) : -1;
};

describe('scalable mode is chosen by RTADDR.SMT at SRTP', () => {
  it('SMT with scalable-mode=on: the root table is read as scalable', () => {
    const { b, enable } = sm();
    enable();
    expect(b.iommu.scalable).toBe(true);
    b.w64(Reg.RTADDR, 0n);
    b.gcmd(Gcmd.SRTP);
    expect(b.iommu.scalable).toBe(false);
  });

  it('SMT without scalable-mode: legacy tables', () => {
    const b = new VtdBench();
    b.setRoot(b.allocPage(), true);
    expect(b.iommu.scalable).toBe(false);
  });
});

describe('second stage (PGTT=2)', () => {
  it('translates through a 4-level table and caches the leaf under PASID 0', () => {
    const { b, dir, dev, enable } = sm();
    const ss = b.allocPage();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss });
    b.map(ss, 4, 0x1000, DATA);
    b.memory.write(DATA, 4, 0x1234_5678);
    enable();
    expect(read4(dev.dma, 0x1000)).toBe(0x1234_5678);
    const e = [...b.iommu.iotlb.entries()];
    expect(e.map((x) => [x.pasid, x.did, x.pgtt])).toEqual([[0, 5, Pgtt.SecondStage]]);
  });

  it('an output in the interrupt window faults 0x87 (0x0E in legacy mode)', () => {
    const { b, dir, dev, enable } = sm();
    const ss = b.allocPage();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 1, ss });
    b.map(ss, 3, 0x1000, 0xfee0_0000);
    enable();
    expect(read4(dev.dma, 0x1000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.SM_INTERRUPT_ADDR);
    expect(pasidOf(b)).toEqual({ pp: 0n, pv: 0 });
  });

  it('PASID 0 faults at the context fetch: only the context entry\'s FPD counts (QEMU 11.1)', () => {
    const { b, dir, dev, enable } = sm();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss: b.allocPage(), p: false, fpd: true });
    enable();
    expect(read4(dev.dma, 0x1000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.PASID_ENTRY_P);
    expect(pasidOf(b).pp).toBe(0n);
  });

  it('another PASID\'s non-present entry faults 0x59 without the PASID, and its FPD suppresses that', () => {
    const { b, dir, dev, enable } = sm();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss: b.allocPage() });
    b.setPasidEntry(dir, 5, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss: b.allocPage(), p: false });
    enable();
    expect(read4(b.pasidSpace(dev.req, 5), 0x1000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.PASID_ENTRY_P);
    expect(pasidOf(b).pp).toBe(0n);
    clearFault(b);
    b.setPasidEntry(dir, 5, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss: b.allocPage(), p: false, fpd: true });
    expect(read4(b.pasidSpace(dev.req, 5), 0x1000)).toBe(-1);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });
});

describe('first stage (PGTT=1, fsts=on)', () => {
  const fs = () => {
    const s = sm({ fsts: true });
    const top = s.b.allocPage();
    s.b.setPasidEntry(s.dir, 0, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top });
    return { ...s, top };
  };

  it('translates, sets A on every level and D on the leaf of a write', () => {
    const { b, dev, enable, top } = fs();
    b.mapFs(top, 4, 0x5000, DATA);
    enable();
    expect(dev.dma.write(0x5000, Uint8Array.of(9, 8, 7, 6))).toBe(MemTx.Ok);
    expect(b.memory.read(DATA, 4)).toBe(0x0607_0809);
    const leaf = b.pteAddr(top, 4, 0x5000, 1);
    expect(Number(b.peek64(leaf) & 0x60n)).toBe(0x60);
    expect(Number(b.peek64(b.pteAddr(top, 4, 0x5000, 4)) & 0x60n)).toBe(0x20);
    expect([...b.iommu.iotlb.entries()][0]!.pgtt).toBe(PGTT_FIRST_STAGE);
  });

  it('a 2 MiB leaf', () => {
    const { b, dev, enable, top } = fs();
    b.mapFs(top, 4, 0x20_0000, 0x40_0000, FS_PRESENT_RW_US, 2);
    b.memory.write(0x40_0000 + 0x1_2344, 4, 0xabcd);
    enable();
    expect(read4(dev.dma, 0x21_2344)).toBe(0xabcd);
    expect([...b.iommu.iotlb.entries()][0]!.level).toBe(2);
  });

  it('a write to a read-only leaf faults 0x85; a write hitting the cached read-only entry faults 0x85 too (the spec)', () => {
    const { b, dev, enable, top } = fs();
    b.mapFs(top, 4, 0x5000, DATA, 0x5);
    enable();
    expect(dev.dma.write(0x5000, Uint8Array.of(1, 2, 3, 4))).toBe(MemTx.DecodeError);
    expect(reason(b)).toBe(VtdFault.SM_WRITE);
    clearFault(b);
    expect(read4(dev.dma, 0x5000)).toBe(0);
    expect(b.iommu.iotlb.size).toBe(1);
    expect(dev.dma.write(0x5000, Uint8Array.of(1, 2, 3, 4))).toBe(MemTx.DecodeError);
    expect(reason(b)).toBe(VtdFault.SM_WRITE);
    expect(b.memory.read(DATA, 4)).toBe(0);
  });

  it('requests with a PASID use that PASID\'s entry and IOTLB tag, and faults carry PP and PV', () => {
    const { b, dir, dev, enable, top } = fs();
    const top7 = b.allocPage();
    b.setPasidEntry(dir, 7, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top7 });
    b.mapFs(top, 4, 0x5000, DATA);
    b.mapFs(top7, 4, 0x5000, DATA2);
    b.memory.write(DATA, 4, 0x1111);
    b.memory.write(DATA2, 4, 0x7777);
    enable();
    const p7 = b.pasidSpace(dev.req, 7);
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    expect(read4(p7, 0x5000)).toBe(0x7777);
    expect([...b.iommu.iotlb.entries()].map((e) => e.pasid).sort()).toEqual([0, 7]);
    expect(read4(p7, 0x9000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.FS_PAGING_ENTRY_P);
    expect(pasidOf(b)).toEqual({ pp: 1n, pv: 7 });
    // A PASID without a directory entry: a PASID-table fault, recorded with PP=0.
    clearFault(b);
    expect(read4(b.pasidSpace(dev.req, 0x1000), 0x5000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.PASID_DIR_ENTRY_P);
    expect(pasidOf(b).pp).toBe(0n);
  });

  it('requests with a PASID have no interrupt window: the range is translated', () => {
    const { b, dir, dev, enable } = fs();
    const top7 = b.allocPage();
    b.setPasidEntry(dir, 7, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top7 });
    enable();
    const p7 = b.pasidSpace(dev.req, 7);
    expect(p7.writeU32(0xfee0_0000, 0x41)).toBe(MemTx.DecodeError);
    expect(b.msis).toEqual([]);
    expect(reason(b)).toBe(VtdFault.FS_PAGING_ENTRY_P);
  });

  it('an ATS translation request returns the fault without recording it', () => {
    const { b, enable } = fs();
    enable();
    const t = b.iommu.translatorFor(b.device(0, EDU_DEVFN).req);
    const out = newIotlbEntry();
    expect(t.translate(iova(0x9000), DmaAccess.Read, out, DmaRequestKind.TranslationRequest)).toBe(false);
    expect(out.fault).toBe(VtdFault.FS_PAGING_ENTRY_P);
    expect(out.perm).toBe(IommuPerm.None);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });
});

describe('pass-through (PGTT=4)', () => {
  it('PASID 0 pass-through switches the requester to the bypass; other PASIDs are not affected', () => {
    const { b, dir, dev, enable } = sm();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: 1 });
    b.memory.write(0x7000, 4, 0x5555);
    enable();
    expect(b.iommu.passThrough.isPassThrough(EDU_DEVFN)).toBe(true);
    expect(read4(dev.dma, 0x7000)).toBe(0x5555);
    expect(b.iommu.iotlb.size).toBe(0);
    expect(read4(b.pasidSpace(dev.req, 3), 0x7000)).toBe(-1);
  });
});

describe('nested (PGTT=3, x-nested)', () => {
  it('first-stage tables and output go through the second stage', () => {
    const { b, dir, dev, enable } = sm({ 'x-nested': true, fsts: true });
    const ss = b.allocPage();
    const fsTopGpa = 0x30_0000;
    const fsTopHpa = b.allocPage();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.Nested, did: 2, aw: 2, ss, fs: fsTopGpa });
    b.map(ss, 4, fsTopGpa, fsTopHpa);
    // First-stage tables live at GPAs 0x31_0000.. mapped by the second stage.
    const l3g = 0x31_0000, l2g = 0x32_0000, l1g = 0x33_0000, dataG = 0x34_0000;
    const l3h = b.allocPage(), l2h = b.allocPage(), l1h = b.allocPage();
    for (const [g, h] of [[l3g, l3h], [l2g, l2h], [l1g, l1h], [dataG, DATA]] as const) b.map(ss, 4, g, h);
    b.poke64(fsTopHpa, BigInt(l3g) | 7n);
    b.poke64(l3h, BigInt(l2g) | 7n);
    b.poke64(l2h, BigInt(l1g) | 7n);
    b.poke64(l1h + 5 * 8, BigInt(dataG) | 7n);
    b.memory.write(DATA, 4, 0xfeed);
    enable();
    const ev = b.recordEvents();
    const got = read4(dev.dma, 0x5000);
    expect(ev.faults).toEqual([]);
    expect(got).toBe(0xfeed);
  });
});

describe('the PASID entry is re-read on every IOTLB miss (QEMU 11.1), memo or not', () => {
  const setup = () => {
    const s = sm({ fsts: true });
    const top = s.b.allocPage();
    const top2 = s.b.allocPage();
    const pe = s.b.setPasidEntry(s.dir, 0, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top });
    s.b.mapFs(top, 4, 0x5000, DATA);
    s.b.mapFs(top2, 4, 0x5000, DATA2);
    s.b.memory.write(DATA, 4, 0x1111);
    s.b.memory.write(DATA2, 4, 0x2222);
    s.enable();
    expect(read4(s.dev.dma, 0x5000)).toBe(0x1111);
    return { ...s, pe, top2 };
  };
  const miss = (b: VtdBench) => b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 3, pasid: 0 });

  it('an edited entry is used at the next miss, without a PASID-cache invalidation', () => {
    const { b, dev, pe, top2 } = setup();
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    b.poke64(pe + 16, BigInt(top2));
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(0x2222);
  });

  it('a change of the memory map under the entry is seen at the next miss', () => {
    const { b, dev, pe } = setup();
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    // An MMIO page over the PASID table: the entry now reads 0 (PGTT 0: 0x5B), with no RAM write.
    const page = pe - (pe % 0x1000);
    const overlay = new MmioRegion('overlay', 0x1000, { read: () => 0, write: () => {} });
    b.system.add(overlay, page, 1);
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(-1);
    expect(reason(b)).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
  });

  it('an entry served by MMIO is read again at every miss (its value can change without a RAM write)', () => {
    const { b, dev, pe, top2 } = setup();
    const page = pe - (pe % 0x1000);
    const words = new Map<number, number>();
    for (let off = 0; off < 0x1000; off += 4) words.set(off, b.memory.read(page + off, 4));
    b.system.add(new MmioRegion('table', 0x1000, { read: (off) => words.get(off) ?? 0, write: () => {} }), page, 1);
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    // The device behind the MMIO page changes the first-stage pointer (qword 2, low dword) by itself.
    words.set((pe % 0x1000) + 16, top2);
    miss(b);
    expect(read4(dev.dma, 0x5000)).toBe(0x2222);
  });
});

describe('legacy mode', () => {
  it('a request with a PASID is blocked without a fault record', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    b.setRoot(root);
    b.gcmd(Gcmd.TE);
    const { req } = b.device(0, EDU_DEVFN);
    expect(read4(b.pasidSpace(req, 1), 0x1000)).toBe(-1);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.iommu.translatorFor(req, NO_PASID).pasid).toBe(NO_PASID);
  });
});

describe('PASID-granular invalidation', () => {
  const setup = () => {
    const s = sm({ fsts: true });
    const top = s.b.allocPage();
    const pe = s.b.setPasidEntry(s.dir, 0, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top });
    s.b.mapFs(top, 4, 0x5000, DATA);
    s.b.memory.write(DATA, 4, 0x1111);
    s.b.memory.write(DATA2, 4, 0x2222);
    s.enable();
    expect(read4(s.dev.dma, 0x5000)).toBe(0x1111);
    return { ...s, top, pe };
  };

  it('PASID-based IOTLB invalidation drops the PASID\'s entries; another DID or PASID does not', () => {
    const { b, dev, top } = setup();
    b.mapFs(top, 4, 0x5000, DATA2);
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 4, pasid: 0 });
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 3, pasid: 1 });
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    b.iommu.invalidatePasidIotlb({ kind: 'page', did: 3, pasid: 0, addr: 0x5000, am: 0, ih: false });
    expect(read4(dev.dma, 0x5000)).toBe(0x2222);
  });

  it('PASID-cache invalidation leaves cached translations of a changed entry (QEMU 11.1 keeps no PASID cache for emulated devices); P_IOTLB drops them', () => {
    const { b, dev, dir } = setup();
    const top2 = b.allocPage();
    b.mapFs(top2, 4, 0x5000, DATA2);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.FirstStage, did: 3, aw: 2, fs: top2 });
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 3, pasid: 0 });
    b.iommu.invalidatePasidCache({ kind: 'global' });
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 3, pasid: 0 });
    expect(read4(dev.dma, 0x5000)).toBe(0x2222);
  });

  it('PASID-cache invalidation of a cleared entry keeps its cached translations until an IOTLB invalidation (QEMU 11.1)', () => {
    const { b, dev, pe } = setup();
    b.poke64(pe, 0n);
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 3, pasid: 0 });
    expect(read4(dev.dma, 0x5000)).toBe(0x1111);
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 3, pasid: 0 });
    expect(read4(dev.dma, 0x5000)).toBe(-1);
    // An all-zero entry: PGTT 0 is checked before P (QEMU 11.1).
    expect(reason(b)).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
  });

  it('PASID-cache invalidation takes a requester out of pass-through, even one that never did DMA', () => {
    const { b, dir, enable } = sm();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: 1 });
    enable();
    expect(b.iommu.passThrough.isPassThrough(EDU_DEVFN)).toBe(true);
    const ss = b.allocPage();
    b.map(ss, 4, 0x10_0000, DATA);
    b.memory.write(DATA, 4, 0x4242);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 4, aw: 2, ss });
    // Matched against the DID PASID 0's entry had when the refresh chose pass-through (QEMU 11.1's PASID-cache entry).
    b.iommu.invalidatePasidCache({ kind: 'domain', did: 4 });
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 1, pasid: 1 });
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 4, pasid: 0 });
    b.iommu.invalidateIotlb({ kind: 'global' }, 'queue');
    expect(b.iommu.passThrough.isPassThrough(EDU_DEVFN)).toBe(true);
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 1, pasid: 0 });
    expect(b.iommu.passThrough.isPassThrough(EDU_DEVFN)).toBe(false);
    expect(read4(b.device(0, EDU_DEVFN).dma, 0x10_0000)).toBe(0x4242);
  });

  it('pass-through entered by the translation fast path has no PASID-cache entry: only a context-cache invalidation leaves it (QEMU 11.1)', () => {
    const { b, dir, dev, enable } = sm();
    const ss = b.allocPage();
    b.map(ss, 4, 0x10_0000, DATA);
    b.memory.write(DATA, 4, 0x4242);
    b.memory.write(0x10_0000, 4, 0x1010);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 4, aw: 2, ss });
    enable();
    expect(read4(dev.dma, 0x10_0000)).toBe(0x4242);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: 4 });
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 4, pasid: 0 });
    expect(read4(dev.dma, 0x10_0000)).toBe(0x1010);
    expect(b.iommu.passThrough.isPassThrough(EDU_DEVFN)).toBe(true);
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 4, aw: 2, ss });
    b.iommu.invalidatePasidCache({ kind: 'pasid', did: 4, pasid: 0 });
    b.iommu.invalidatePasidCache({ kind: 'global' });
    expect(read4(dev.dma, 0x10_0000)).toBe(0x1010);
    b.iommu.invalidateContext({ kind: 'global' }, 'queue');
    expect(read4(dev.dma, 0x10_0000)).toBe(0x4242);
  });

  it('the legacy IOTLB page-selective invalidation drops every first-stage entry of the domain', () => {
    const { b, dev, top } = setup();
    b.mapFs(top, 4, 0x5000, DATA2);
    b.iommu.invalidateIotlb({ kind: 'page', did: 3, addr: 0x80_0000, am: 0, ih: false }, 'register');
    expect(read4(dev.dma, 0x5000)).toBe(0x2222);
  });
});
