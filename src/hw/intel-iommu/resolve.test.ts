/**
 * The resolve stage (resolve.ts) on its own: a ResolveUnit whose root table,
 * mode and context-cache generation the test sets directly, over tables a
 * VtdBench writes in guest RAM.  Covers the per-requester context cache, the
 * PASID memo (used only while re-reading the entries would give the same
 * bytes), the config a legacy context entry becomes, the fault fields and
 * the context-cache trace line.
 */
import { describe, expect, it, vi } from 'vitest';
import { VtdBench, ctxEntry } from '../../../test/support/vtd-bench.js';
import type { Tracer } from '../../machine/device-type.js';
import { PatternTracer } from '../../machine/tracer.js';
import { MmioRegion } from '../../memory/region.js';
import { VtdFault } from './fault-reasons.js';
import { ContextCacheEntry, newTranslationConfig, resolveRequest, type ResolveUnit } from './resolve.js';
import { PasidEntry, Pgtt } from './scalable-context.js';

/** The requester of every test: 0:1.0. */
const SID = 0x08;
const DEVFN = 0x08;
const PAGE = 0x1000;
/** Byte offset of qword 2 (SRE, WPE, EAFE) in a PASID table entry. */
const PE_QW2 = 16;

/** A ResolveUnit with mutable root, mode and generation, over `b`'s memory and rules. */
interface TestUnit extends ResolveUnit {
  rootTable: number;
  scalable: boolean;
  contextGeneration: number;
}

function unitOver(b: VtdBench, tracer: Tracer = b.iommu.tracer): TestUnit {
  return {
    memory: b.memory,
    tracer,
    ctxRules: b.iommu.ctxRules,
    smRules: b.iommu.smRules,
    rootTable: 0,
    scalable: false,
    contextGeneration: 1,
  };
}

/** A scalable root table for 0:1.0 whose PASID 0 and `pasid` entries are second-stage with the given DIDs. */
function scalableRoot(b: VtdBench, entries: [pasid: number, did: number][]): { root: number; dir: number } {
  const root = b.allocPage();
  const dir = b.allocPage();
  b.setScalableContext(root, 0, DEVFN, dir);
  const ss = b.allocPage();
  for (const [pasid, did] of entries) b.setPasidEntry(dir, pasid, { pgtt: Pgtt.SecondStage, did, aw: 2, ss });
  return { root, dir };
}

/** A legacy root table for 0:1.0 with one context entry (DID `did`, or `ctx` as given). */
function legacyRoot(b: VtdBench, ctx: [bigint, bigint] = ctxEntry(b.allocPage(), 7, 1)): number {
  const root = b.allocPage();
  b.setContext(root, 0, DEVFN, ...ctx);
  return root;
}

describe('the PASID memo', () => {
  it('serves a repeated resolution without reading memory, until guest RAM is written', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const { root, dir } = scalableRoot(b, [[0, 1], [3, 4]]);
    const u = unitOver(b);
    u.rootTable = root;
    u.scalable = true;
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    expect(resolveRequest(u, cc, SID, 3, out)).toBe(0);
    const lookups = vi.spyOn(b.memory, 'lookup');
    out.did = 0;
    expect(resolveRequest(u, cc, SID, 3, out)).toBe(0);
    expect(out.did).toBe(4);
    expect(lookups).not.toHaveBeenCalled();
    // A RAM write (anywhere) makes the next resolution read the entries again.
    b.setPasidEntry(dir, 3, { pgtt: Pgtt.SecondStage, did: 9, aw: 2, ss: b.allocPage() });
    expect(resolveRequest(u, cc, SID, 3, out)).toBe(0);
    expect(out.did).toBe(9);
    expect(lookups).toHaveBeenCalled();
  });

  it('is kept per PASID: another PASID is resolved from its own entry', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const { root } = scalableRoot(b, [[0, 1], [3, 4], [5, 6]]);
    const u = unitOver(b);
    u.rootTable = root;
    u.scalable = true;
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    expect(resolveRequest(u, cc, SID, 3, out)).toBe(0);
    expect(out.did).toBe(4);
    expect(resolveRequest(u, cc, SID, 5, out)).toBe(0);
    expect([out.pasid, out.did]).toEqual([5, 6]);
    expect(resolveRequest(u, cc, SID, 3, out)).toBe(0);
    expect([out.pasid, out.did]).toEqual([3, 4]);
  });

  it('is forgotten with the context entry: a new root table (no RAM write) is read, whether its entries are RAM or MMIO', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const a = scalableRoot(b, [[0, 1], [1, 2]]);
    const c = scalableRoot(b, [[0, 3], [1, 4]]);
    // Root C's PASID table is served by a device (MMIO) that mirrors what was written there.
    const table = Number(b.peek64(c.dir) & ~0xfffn);
    const words = new Map<number, number>();
    for (let off = 0; off < PAGE; off += 4) words.set(off, b.memory.read(table + off, 4));
    b.system.add(new MmioRegion('pasid-table', PAGE, { read: (off) => words.get(off) ?? 0, write: () => {} }), table, 1);
    const u = unitOver(b);
    u.scalable = true;
    u.rootTable = a.root;
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    expect(resolveRequest(u, cc, SID, 1, out)).toBe(0);
    expect(out.did).toBe(2);
    // SRTP-like switch: new root, new generation, no RAM written since the memo.
    u.rootTable = c.root;
    u.contextGeneration++;
    expect(resolveRequest(u, cc, SID, 1, out)).toBe(0);
    expect(out.did).toBe(4);
    // The MMIO entry is not memoized: it is read again (and still says DID 4).
    expect(resolveRequest(u, cc, SID, 1, out)).toBe(0);
    expect(out.did).toBe(4);
  });
});

describe('the config of a legacy context entry', () => {
  it('clears every scalable-only field a previous resolution left in the same record', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const sm = b.allocPage();
    const dir = b.allocPage();
    b.setScalableContext(sm, 0, DEVFN, dir, { pre: true });
    b.setPasidEntry(dir, 0, { pgtt: Pgtt.SecondStage, did: 1, aw: 2, ss: b.allocPage() });
    const pe = b.setPasidEntry(dir, 2, { pgtt: Pgtt.SecondStage, did: 2, aw: 2, ss: b.allocPage(), p: false, fpd: true });
    b.poke64(pe + PE_QW2, BigInt(PasidEntry.SRE | PasidEntry.WPE | PasidEntry.EAFE));
    const u = unitOver(b);
    u.scalable = true;
    u.rootTable = sm;
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    // PASID 2: read, not present with FPD: a suppressed fault that leaves the entry's fields.
    expect(resolveRequest(u, cc, SID, 2, out)).toBe(VtdFault.PASID_ENTRY_P);
    expect(out).toMatchObject({ sre: true, wpe: true, eafe: true, pre: true, fpd: true, suppressed: true, peRead: true });
    u.scalable = false;
    u.rootTable = legacyRoot(b);
    u.contextGeneration++;
    expect(resolveRequest(u, cc, SID, 2, out)).toBe(0);
    expect(out).toMatchObject({
      pasid: 0,
      did: 7,
      pgtt: Pgtt.SecondStage,
      aw: 1,
      ssLevels: 3,
      sre: false,
      wpe: false,
      eafe: false,
      pre: false,
      fpd: false,
      suppressed: false,
      peRead: false,
    });
  });

  it('a context-stage fault says no PASID entry was read', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const { root } = scalableRoot(b, [[0, 1]]);
    const u = unitOver(b);
    u.scalable = true;
    u.rootTable = root;
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    expect(resolveRequest(u, cc, SID, 0, out)).toBe(0);
    expect(out.peRead).toBe(true);
    u.rootTable = b.allocPage(); // empty root table
    u.contextGeneration++;
    expect(resolveRequest(u, cc, SID, 0, out)).toBe(VtdFault.ROOT_ENTRY_P);
    expect(out.peRead).toBe(false);
  });
});

describe('fault fields', () => {
  it('a context fault is suppressed exactly when the context entry was read with FPD and the reason is qualified', () => {
    const b = new VtdBench();
    const u = unitOver(b);
    const out = newTranslationConfig();
    // Not present (0x2, qualified), FPD clear: reported.
    u.rootTable = legacyRoot(b, [0n, 0n]);
    expect(resolveRequest(u, new ContextCacheEntry(), SID, 0, out)).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect([out.fpd, out.suppressed]).toEqual([false, false]);
    // Not present with FPD: suppressed.
    u.rootTable = legacyRoot(b, [2n, 0n]);
    expect(resolveRequest(u, new ContextCacheEntry(), SID, 0, out)).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect([out.fpd, out.suppressed]).toEqual([true, true]);
    // Root entry not present (0x1): no context entry read, so no FPD.
    u.rootTable = b.allocPage();
    expect(resolveRequest(u, new ContextCacheEntry(), SID, 0, out)).toBe(VtdFault.ROOT_ENTRY_P);
    expect([out.fpd, out.suppressed]).toEqual([false, false]);
  });
});

describe('tracing', () => {
  it('a context-cache fill traces the entry read (QEMU vtd_iotlb_cc_update), a cached one nothing', () => {
    const b = new VtdBench();
    const lines: string[] = [];
    const u = unitOver(b, new PatternTracer(['vtd_iotlb_cc_update'], (l) => void lines.push(l)));
    const table = b.allocPage();
    u.rootTable = legacyRoot(b, ctxEntry(table, 7, 1));
    const cc = new ContextCacheEntry();
    const out = newTranslationConfig();
    expect(resolveRequest(u, cc, SID, 0, out)).toBe(0);
    expect(resolveRequest(u, cc, SID, 0, out)).toBe(0);
    expect(lines).toEqual([`vtd_iotlb_cc_update bus=0x0 devfn=0x8 hi=0x701 lo=0x${(table | 1).toString(16)}`]);
  });

  it('nothing is traced when the tracer does not ask', () => {
    const b = new VtdBench();
    const calls: string[] = [];
    const u = unitOver(b, { enabled: () => false, trace: (e) => void calls.push(e) });
    u.rootTable = legacyRoot(b);
    expect(resolveRequest(u, new ContextCacheEntry(), SID, 0, newTranslationConfig())).toBe(0);
    expect(calls).toEqual([]);
  });
});
