import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import { DmaAccess, DmaRequestKind, IommuPerm, NO_PASID, newIotlbEntry } from '../../memory/iommu.js';
import type { PropValues, Tracer } from '../../machine/device-type.js';
import { PatternTracer } from '../../machine/tracer.js';
import { IOTLB_MAX_ENTRIES } from './iotlb.js';
import { Pgtt } from './scalable-context.js';
import { VtdFault } from './fault-reasons.js';
import { Fsts, Gcmd, Reg } from './reg-layout.js';
import { ctxEntry, VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';
import { iova } from '../../memory/address.js';

const MiB = 1024 * 1024;
const DATA = 0x200_0000;

function setup(opts: VtdBenchOptions & { aw?: number; did?: number; fpd?: boolean; tt?: number } = {}) {
  const b = new VtdBench(opts);
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  const aw = opts.aw ?? 1;
  b.setContext(root, 0, 8, ...ctxEntry(top, opts.did ?? 1, aw, { fpd: opts.fpd, tt: opts.tt }));
  b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  return { b, root, top, levels: aw + 2, req, dma };
}

function pattern(b: VtdBench, at: number, len: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(len).map((_, i) => (i * 7 + seed) & 0xff);
  b.memory.writeBytes(at, bytes);
  return bytes;
}

/** FRCD0 as [hi, lo]. */
function frcd(b: VtdBench, i = 0): [bigint, bigint] {
  return [b.r64(Reg.FRCD0 + 16 * i + 8), b.r64(Reg.FRCD0 + 16 * i)];
}

describe('translation', () => {
  it('is the identity while TE is clear', () => {
    const b = new VtdBench();
    const { dma } = b.device(0, 8);
    const src = pattern(b, DATA, 64, 1);
    const got = new Uint8Array(64);
    expect(dma.read(DATA, got)).toBe(MemTx.Ok);
    expect(got).toEqual(src);
    expect(b.r32(Reg.GSTS) & 0x8000_0000).toBe(0);
  });

  for (const [aw, props] of [
    [1, { 'aw-bits': 39 }],
    [2, {}],
    [3, { 'aw-bits': 57 }],
  ] as const) {
    it(`walks ${aw + 2}-level tables`, () => {
      const { b, top, levels, dma } = setup({ aw, props });
      const iova = aw === 3 ? 2 ** 50 + 0x5000 : aw === 2 ? 2 ** 40 + 0x5000 : 0x7000_5000;
      b.map(top, levels, iova, DATA);
      const src = pattern(b, DATA, 4096, 3);
      const got = new Uint8Array(4096);
      expect(dma.read(iova, got)).toBe(MemTx.Ok);
      expect(got).toEqual(src);
      expect(dma.write(iova + 16, new Uint8Array([9, 9]))).toBe(MemTx.Ok);
      expect(b.memory.read(DATA + 16, 2)).toBe(0x0909);
      expect(b.r32(Reg.FSTS)).toBe(0);
    });
  }

  it('maps 2 MiB and 1 GiB leaves', () => {
    const { b, top, levels, dma } = setup({ aw: 2 });
    b.map(top, levels, 0x4000_0000, 0x0, 3, 3); // 1 GiB at 1 GiB -> 0
    b.map(top, levels, 0x20_0000, 0x0, 3, 2); // 2 MiB at 2 MiB -> 0
    const src = pattern(b, DATA + 0x1234, 8, 5);
    const got = new Uint8Array(8);
    dma.read(0x4000_0000 + DATA + 0x1234, got);
    expect(got).toEqual(src);
    const e = newIotlbEntry();
    const t = b.iommu.translatorFor(b.device(0, 8).req);
    expect(t.translate(iova(0x20_0000 + 0x1f_f000), DmaAccess.Read, e)).toBe(true);
    expect(e).toMatchObject({ iova: 0x20_0000, translated: 0, addrMask: 2 * MiB - 1, perm: IommuPerm.ReadWrite });
  });

  it('splits a DMA spanning two IOVA pages onto scattered pages', () => {
    const { b, top, levels, dma } = setup();
    b.map(top, levels, 0x1000, DATA + 0x5000);
    b.map(top, levels, 0x2000, DATA + 0x1000);
    const src = pattern(b, 0x300_0000, 0x1000, 11);
    expect(dma.write(0x1800, src)).toBe(MemTx.Ok);
    const a = new Uint8Array(0x800);
    const c = new Uint8Array(0x800);
    b.memory.readBytes(DATA + 0x5800, a);
    b.memory.readBytes(DATA + 0x1000, c);
    expect(a).toEqual(src.subarray(0, 0x800));
    expect(c).toEqual(src.subarray(0x800));
  });

  it('treats pass-through contexts as identity, uncached; TT=2 needs pt', () => {
    const { b, dma } = setup({ tt: 2 });
    const src = pattern(b, DATA, 16, 2);
    const got = new Uint8Array(16);
    expect(dma.read(DATA, got)).toBe(MemTx.Ok);
    expect(got).toEqual(src);
    expect(b.iommu.iotlb.size).toBe(0);
    const n = setup({ tt: 2, props: { pt: false } });
    expect(n.dma.read(DATA, got)).toBe(MemTx.DecodeError);
    expect(Number((frcd(n.b)[0] >> 32n) & 0xffn)).toBe(VtdFault.CONTEXT_ENTRY_INV);
  });

  it('keys the IOTLB by source ID: two devices, two domains, one IOVA', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    b.setRoot(root);
    const t1 = b.allocPage();
    const t2 = b.allocPage();
    b.setContext(root, 0, 8, ...ctxEntry(t1, 1, 1));
    b.setContext(root, 0, 16, ...ctxEntry(t2, 2, 1));
    b.map(t1, 3, 0x1000, DATA);
    b.map(t2, 3, 0x1000, DATA + 0x1000);
    b.gcmd(Gcmd.TE);
    pattern(b, DATA, 8, 1);
    pattern(b, DATA + 0x1000, 8, 2);
    const a = new Uint8Array(8);
    const c = new Uint8Array(8);
    b.device(0, 8).dma.read(0x1000, a);
    b.device(0, 16).dma.read(0x1000, c);
    expect(a[0]).toBe(1);
    expect(c[0]).toBe(2);
  });

  it('computes the source ID at translation time (bus renumbering)', () => {
    const { b, root, top, levels, req, dma } = setup();
    b.map(top, levels, 0x1000, DATA);
    req.bus = 3;
    expect(dma.read(0x1000, new Uint8Array(4))).toBe(MemTx.DecodeError);
    expect(Number(frcd(b)[0] & 0xffffn)).toBe(0x308);
    expect(Number((frcd(b)[0] >> 32n) & 0xffn)).toBe(VtdFault.ROOT_ENTRY_P);
    b.setContext(root, 3, 8, ...ctxEntry(top, 1, 1));
    expect(dma.read(0x1000, new Uint8Array(4))).toBe(MemTx.Ok);
  });
});

describe('translation details', () => {
  it('a write that hits a cached read-only entry is blocked and faults like an uncached one (the spec; QEMU drops it silently)', () => {
    const { b, top, levels, dma } = setup();
    b.map(top, levels, 0x1000, DATA, 1);
    expect(dma.read(0x1000, new Uint8Array(4))).toBe(MemTx.Ok);
    expect(b.iommu.iotlb.size).toBe(1);
    expect(dma.write(0x1000, new Uint8Array([1, 2, 3, 4]))).toBe(MemTx.DecodeError);
    expect(b.memory.read(DATA, 4)).toBe(0);
    expect(b.r32(Reg.FSTS) & Fsts.PPF).toBe(Fsts.PPF);
    expect(Number((frcd(b)[0] >> 32n) & 0xffn)).toBe(VtdFault.WRITE);
    // Reads keep hitting the entry.
    expect(dma.read(0x1000, new Uint8Array(4))).toBe(MemTx.Ok);
  });

  it('emits translate events (walk, IOTLB hit, pass-through)', () => {
    const { b, top, levels, dma } = setup();
    b.map(top, levels, 0x1000, DATA);
    const seen: string[] = [];
    b.iommu.events.on('translate', (e) => seen.push(`${e.sid}:${e.iova.toString(16)}->${e.translated.toString(16)}:${e.cached}`));
    dma.read(0x1010, new Uint8Array(4));
    dma.read(0x1020, new Uint8Array(4));
    expect(seen).toEqual([`8:1010->${(DATA + 0x10).toString(16)}:false`, `8:1020->${(DATA + 0x20).toString(16)}:true`]);
  });

  it('traces with QEMU-like event names', () => {
    const lines: string[] = [];
    const tracer = { enabled: (e: string) => e.startsWith('vtd_'), trace: (e: string, f: object) => lines.push(`${e} ${JSON.stringify(f, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`) };
    const { b, dma } = setup({ tracer });
    dma.read(0x1000, new Uint8Array(4));
    expect(lines.some((l) => l.startsWith('vtd_dmar_fault '))).toBe(true);
    expect(lines.some((l) => l.startsWith('vtd_frr_new '))).toBe(true);
    expect(lines.some((l) => l.startsWith('vtd_reg_write_gcmd '))).toBe(true);
    expect(b.iommu.traceHits).toBe(true);
  });

  it('dma-translation=off leaves DMA untranslated even after a TE write', () => {
    const { b, dma } = setup({ props: { 'dma-translation': false } });
    b.memory.write(DATA, 4, 0x1234);
    const got = new Uint8Array(4);
    expect(dma.read(DATA, got)).toBe(MemTx.Ok);
    expect(got[0]).toBe(0x34);
  });
});

/** A scalable-mode unit: device 0:8 with the PASID directory `dir` (entries set by the test). */
function smSetup(props: PropValues = {}) {
  const b = new VtdBench({ props: { 'scalable-mode': true, ...props } });
  const root = b.allocPage();
  const dir = b.allocPage();
  b.setScalableContext(root, 0, 8, dir);
  const { req } = b.device(0, 8);
  const enable = () => {
    b.setRoot(root, true);
    b.gcmd(Gcmd.TE);
  };
  return { b, dir, req, enable };
}

describe('peek (the cache stage alone)', () => {
  it('is the identity while translation is off', () => {
    const b = new VtdBench();
    const t = b.iommu.translatorFor(b.device(0, 8).req);
    const e = newIotlbEntry();
    expect(t.peek(iova(0x1234_5678), DmaAccess.Write, e)).toBe(true);
    expect(e).toMatchObject({ iova: 0x1234_5000, translated: 0x1234_5000, addrMask: 0xfff, perm: IommuPerm.ReadWrite, fault: 0 });
  });

  it('answers an IOTLB hit that allows the access, and nothing else', () => {
    const { b, top, levels, req } = setup();
    b.map(top, levels, 0x1000, DATA, 1); // read-only
    const t = b.iommu.translatorFor(req);
    const e = newIotlbEntry();
    expect(t.peek(iova(0x1000), DmaAccess.Read, e)).toBe(false); // not cached yet
    expect(t.translate(iova(0x1000), DmaAccess.Read, e)).toBe(true);
    expect(t.peek(iova(0x1008), DmaAccess.Read, e)).toBe(true);
    expect(e).toMatchObject({ iova: 0x1000, translated: DATA, addrMask: 0xfff, perm: IommuPerm.Read });
    expect(t.peek(iova(0x1008), DmaAccess.Write, e)).toBe(false);
  });

  it('never answers for a request with a PASID in legacy mode, even where the same requester has a cached entry', () => {
    const { b, top, levels, req } = setup();
    b.map(top, levels, 0x1000, DATA);
    const e = newIotlbEntry();
    expect(b.iommu.translatorFor(req).translate(iova(0x1000), DmaAccess.Read, e)).toBe(true);
    expect(b.iommu.translatorFor(req).peek(iova(0x1000), DmaAccess.Read, e)).toBe(true);
    expect(b.iommu.translatorFor(req, 1).peek(iova(0x1000), DmaAccess.Read, e)).toBe(false);
  });

  it('answers for a request with a PASID in scalable mode from that PASID\'s entry', () => {
    const { b, dir, req, enable } = smSetup();
    const ss = b.allocPage();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss });
    b.setPasidEntry(dir, 3, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss });
    b.map(ss, 4, 0x1000, DATA);
    enable();
    const t = b.iommu.translatorFor(req, 3);
    const e = newIotlbEntry();
    expect(t.translate(iova(0x1000), DmaAccess.Read, e)).toBe(true);
    expect(t.peek(iova(0x1000), DmaAccess.Read, e)).toBe(true);
    expect(e.translated).toBe(DATA);
  });
});

describe('request kinds and PASIDs', () => {
  it('scalable mode: a translated request passes 1:1 without a PASID and is refused, unrecorded, with one (QEMU 11.1)', () => {
    const { b, dir, req, enable } = smSetup();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 5, aw: 2, ss: b.allocPage() });
    enable();
    const e = newIotlbEntry();
    expect(b.iommu.translatorFor(req).translate(iova(0x7000), DmaAccess.Write, e, DmaRequestKind.Translated)).toBe(true);
    expect(e).toMatchObject({ iova: 0x7000, translated: 0x7000, perm: IommuPerm.ReadWrite, fault: 0 });
    expect(b.iommu.translatorFor(req, 2).translate(iova(0x7000), DmaAccess.Read, e, DmaRequestKind.Translated)).toBe(false);
    expect(e).toMatchObject({ perm: IommuPerm.None, fault: 0 });
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('legacy mode: translate refuses a request with a PASID (no reason, no record)', () => {
    const { b, top, levels, req } = setup();
    b.map(top, levels, 0x1000, DATA);
    const e = newIotlbEntry();
    expect(b.iommu.translatorFor(req, 1).translate(iova(0x1000), DmaAccess.Read, e)).toBe(false);
    expect(e).toMatchObject({ perm: IommuPerm.None, fault: 0 });
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('legacy tables on a scalable-capable unit: entries are tagged "no PASID", so a PASID-IOTLB invalidation of PASID 0 keeps them', () => {
    const { b, top, levels, req } = setup({ props: { 'scalable-mode': true } });
    b.map(top, levels, 0x1000, DATA);
    expect(b.iommu.translatorFor(req).translate(iova(0x1000), DmaAccess.Read, newIotlbEntry())).toBe(true);
    expect([...b.iommu.iotlb.entries()].map((x) => x.pasid)).toEqual([NO_PASID]);
    b.iommu.invalidatePasidIotlb({ kind: 'pasid', did: 1, pasid: 0 });
    expect(b.iommu.iotlb.size).toBe(1);
  });

  it('pass-through of another PASID does not switch the requester\'s no-PASID bypass onto that PASID', () => {
    const { b, dir, req, enable } = smSetup();
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: 1 });
    const pe5 = b.setPasidEntry(dir, 5, { pgtt: Pgtt.PassThrough, did: 1 });
    enable();
    const t = b.iommu.translatorFor(req, 5);
    const e = newIotlbEntry();
    expect(t.translate(iova(0x7000), DmaAccess.Read, e)).toBe(true);
    expect(e.translated).toBe(0x7000);
    // PASID 5's entry goes away: its next request faults (the entry is read again).
    b.poke64(pe5, 0n);
    expect(t.translate(iova(0x7000), DmaAccess.Read, e)).toBe(false);
    expect(e.fault).toBe(VtdFault.PASID_TABLE_ENTRY_INV);
  });
});

describe('translate events carry cached / passthrough exactly', () => {
  it('walk, IOTLB hit and pass-through', () => {
    const { b, top, levels, req } = setup();
    b.map(top, levels, 0x1000, DATA);
    const seen: { cached: boolean; passthrough: boolean }[] = [];
    b.iommu.events.on('translate', (e) => seen.push({ cached: e.cached, passthrough: e.passthrough }));
    const t = b.iommu.translatorFor(req);
    t.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry());
    t.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry());
    const pt = smSetup();
    pt.b.setPasidEntry(pt.dir, 5, { pgtt: Pgtt.PassThrough, did: 1 });
    pt.b.setPasidEntry(pt.dir, 0, { pgtt: Pgtt.SecondStage, did: 2, aw: 2, ss: pt.b.allocPage() });
    pt.enable();
    pt.b.iommu.events.on('translate', (e) => seen.push({ cached: e.cached, passthrough: e.passthrough }));
    expect(pt.b.iommu.translatorFor(pt.req, 5).translate(iova(0x3000), DmaAccess.Read, newIotlbEntry())).toBe(true);
    expect(seen).toEqual([
      { cached: false, passthrough: false },
      { cached: true, passthrough: false },
      { cached: false, passthrough: true },
    ]);
  });
});

describe('IOTLB tracing', () => {
  /** Legacy setup whose vtd_iotlb_* lines land in `lines`. */
  function tracedSetup() {
    const lines: string[] = [];
    const s = setup({ tracer: new PatternTracer(['vtd_iotlb_page_*', 'vtd_iotlb_reset'], (l) => void lines.push(l)) });
    return { ...s, lines };
  }

  it('a walk traces the update, a hit traces the hit', () => {
    const { b, top, levels, req, lines } = tracedSetup();
    b.map(top, levels, 0x1000, DATA);
    const t = b.iommu.translatorFor(req);
    t.translate(iova(0x1010), DmaAccess.Read, newIotlbEntry());
    t.translate(iova(0x1020), DmaAccess.Read, newIotlbEntry());
    expect(lines).toEqual(['vtd_iotlb_page_update sid=0x8 addr=0x1010 did=0x1', 'vtd_iotlb_page_hit sid=0x8 addr=0x1020 did=0x1']);
  });

  it('a full IOTLB is reset before the next insert (QEMU VTD_IOTLB_MAX_SIZE), and says so', () => {
    const { b, top, levels, req, lines } = tracedSetup();
    const t = b.iommu.translatorFor(req);
    for (let i = 0; i <= IOTLB_MAX_ENTRIES; i++) b.map(top, levels, i * 0x1000, DATA);
    for (let i = 0; i <= IOTLB_MAX_ENTRIES; i++) expect(t.translate(iova(i * 0x1000), DmaAccess.Read, newIotlbEntry())).toBe(true);
    expect(lines.filter((l) => l.startsWith('vtd_iotlb_reset'))).toEqual(['vtd_iotlb_reset reason=iotlb exceeds size limit']);
    expect(lines.at(-2)).toBe('vtd_iotlb_reset reason=iotlb exceeds size limit');
    expect(b.iommu.iotlb.size).toBe(1);
  });

  it('nothing is traced when the tracer does not ask', () => {
    const calls: string[] = [];
    const tracer: Tracer = { enabled: () => false, trace: (e) => void calls.push(e) };
    const { b, top, levels, req } = setup({ tracer });
    b.map(top, levels, 0x1000, DATA);
    const t = b.iommu.translatorFor(req);
    t.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry());
    t.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry());
    expect(calls).toEqual([]);
  });
});

describe('IOTLB entries', () => {
  it('record the fault a later write would get: 0 for a writable leaf, 5 (legacy) for a read-only one', () => {
    const { b, top, levels, req } = setup();
    b.map(top, levels, 0x1000, DATA, 3);
    b.map(top, levels, 0x2000, DATA, 1);
    const t = b.iommu.translatorFor(req);
    t.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry());
    t.translate(iova(0x2000), DmaAccess.Read, newIotlbEntry());
    expect([...b.iommu.iotlb.entries()].map((e) => [e.iova, e.writeFault]).sort()).toEqual([[0x1000, 0], [0x2000, VtdFault.WRITE]]);
  });
});
