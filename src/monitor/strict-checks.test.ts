/**
 * The strict programming-model checks on hand-built tables (VtdBench): each
 * rule fires on the smallest sequence that breaks it, with its id, the
 * register or entry it names and the spec section, once per cause; the
 * correct sequence next to it stays silent; and the unit behaves the same
 * with the checker attached (warnings, never faults).
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../memory/address-space.js';
import type { ChunkedRam } from '../memory/ram.js';
import type { PropValues } from '../machine/device-type.js';
import type { StrictWarning } from '../hw/intel-iommu/events.js';
import { Gcmd, Reg } from '../hw/intel-iommu/reg-layout.js';
import { ctxEntry, VtdBench } from '../../test/support/vtd-bench.js';
import { attachStrict, StrictChecker, strictOf } from './strict-checks.js';

const X = 0x5000;
const A = 0x200_0000;
const DID = 1;
const SID = 8;
const IRT = 0x80_0000;
const IQ = 0x90_0000;

function ramOf(b: VtdBench): ChunkedRam {
  const r = b.memory.lookup(0)!;
  if (r.leaf.kind !== 'ram') throw new Error('no RAM at 0');
  return r.leaf.ram;
}

/** A bench with a checker attached; `rules()` gives [rule, what, section] of every warning so far. */
function bench(props: PropValues = {}) {
  const b = new VtdBench({ props });
  const s = new StrictChecker(b.iommu, [ramOf(b)]);
  const events: StrictWarning[] = [];
  b.iommu.events.on('strict', (w) => events.push(w));
  const rules = () => s.warnings.map((w) => [w.rule, w.what, w.section]);
  return { b, s, events, rules };
}

/** Legacy tables: root, context (bus 0, devfn 1.0) -> 3-level tables mapping X -> A; SRTP done, TE not set. */
function legacy(props: PropValues = {}) {
  const t = bench(props);
  const { b } = t;
  const root = b.allocPage();
  const top = b.allocPage();
  b.setContext(root, 0, SID, ...ctxEntry(top, DID, 1));
  b.map(top, 3, X, A);
  b.setRoot(root);
  const { dma } = b.device(0, SID);
  const read = (): MemTx => dma.read(X, new Uint8Array(4));
  const ctxAt = Number(b.peek64(root) & ~0xfffn) + SID * 16;
  return { ...t, root, top, read, ctxAt };
}

const iotlbGlobal = (b: VtdBench) => b.w64(Reg.IOTLB, (1n << 63n) | (1n << 60n));
const ccDevice = (b: VtdBench, sid: number) => b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (BigInt(sid) << 16n));
const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

describe('register rules', () => {
  it('te-before-srtp: TE with no SRTP since reset (GCMD, 11.4.4.1); after SRTP silent', () => {
    const { b, rules, events } = bench();
    b.gcmd(Gcmd.TE);
    expect(rules()).toEqual([['te-before-srtp', { register: 'GCMD', offset: 0x18 }, '11.4.4.1']]);
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toBe(
      'strict: te-before-srtp: GCMD (0x18): GCMD.TE set before any SRTP since reset: translation uses a root table that was never latched (VT-d spec 11.4.4.1)',
    );
    const ok = bench();
    ok.b.setRoot(ok.b.allocPage());
    ok.b.gcmd(Gcmd.TE);
    expect(ok.rules()).toEqual([]);
  });

  it('each warning goes to the vtd_strict_warning trace event and the summary; total counts them', () => {
    const traced: { event: string; fields: Readonly<Record<string, unknown>> }[] = [];
    const b = new VtdBench({ tracer: { enabled: (e) => e === 'vtd_strict_warning', trace: (event, fields) => { traced.push({ event, fields }); } } });
    const s = attachStrict(b.iommu, [ramOf(b)]);
    expect(attachStrict(b.iommu, [])).toBe(s);
    expect(strictOf(b.iommu)).toBe(s);
    b.gcmd(Gcmd.TE);
    b.gcmd(Gcmd.TE);
    expect(traced).toEqual([{ event: 'vtd_strict_warning', fields: { rule: 'te-before-srtp', section: '11.4.4.1', reg: 0x18 } }]);
    expect(s.total).toBe(1);
    expect(s.summary()).toEqual(['intel-iommu strict: 1 warning', `  ${s.warnings[0]!.message}`]);
    s.close();
    b.w64(Reg.RTADDR, 0x1000n);
    b.iommu.reset();
    b.gcmd(Gcmd.TE);
    expect(s.total).toBe(1); // detached
  });

  it('a device reset is noticed (GSTS loses RTPS): TE before a new SRTP warns again', () => {
    const { b, rules } = bench();
    b.setRoot(b.allocPage());
    b.gcmd(Gcmd.TE);
    b.iommu.reset();
    b.w64(Reg.RTADDR, 0x10_0000n);
    b.gcmd(Gcmd.TE);
    expect(rules()).toEqual([['te-before-srtp', { register: 'GCMD', offset: 0x18 }, '11.4.4.1']]);
  });

  it('rtaddr-without-srtp: RTADDR changed, DMA with the old root table: once per value (RTADDR, 11.4.5)', () => {
    const { b, rules, read } = legacy();
    b.gcmd(Gcmd.TE);
    read();
    expect(rules()).toEqual([]);
    b.w64(Reg.RTADDR, BigInt(b.allocPage()));
    read();
    read();
    expect(rules()).toEqual([['rtaddr-without-srtp', { register: 'RTADDR', offset: 0x20 }, '11.4.5']]);
    b.gcmd(Gcmd.SRTP);
    read();
    expect(rules()).toHaveLength(1);
  });

  it('rtaddr-without-srtp when TE is set with RTADDR moved after the last SRTP', () => {
    const { b, rules } = legacy();
    b.w64(Reg.RTADDR, 0x30_0000n);
    b.gcmd(Gcmd.TE);
    expect(rules()).toEqual([['rtaddr-without-srtp', { register: 'RTADDR', offset: 0x20 }, '11.4.5']]);
  });

  it('qie-tail-nonzero: QIE set with IQT != IQH (IQT, 11.4.9.2); IQT = 0 first is silent', () => {
    const { b, rules, s } = bench();
    b.setTail(1);
    b.enableQueue(IQ);
    expect(rules()).toEqual([['qie-tail-nonzero', { register: 'IQT', offset: 0x88 }, '11.4.9.2']]);
    expect(s.warnings[0]!.message).toContain('IQT 0x10, IQH 0x0 before enabling');
    const ok = bench();
    ok.b.setTail(0);
    ok.b.enableQueue(IQ);
    expect(ok.rules()).toEqual([]);
  });

  it('iqa-while-qi: IQA rewritten with QI on (IQA, 11.4.9.3); with QI off silent', () => {
    const { b, rules } = bench();
    b.w64(Reg.IQA, BigInt(IQ));
    b.setQie(true);
    b.w64(Reg.IQA, BigInt(IQ + 0x1000));
    b.w64(Reg.IQA, BigInt(IQ + 0x1000));
    expect(rules()).toEqual([['iqa-while-qi', { register: 'IQA', offset: 0x90 }, '11.4.9.3']]);
    const ok = bench();
    ok.b.w64(Reg.IQA, BigInt(IQ));
    ok.b.w64(Reg.IQA, BigInt(IQ + 0x1000));
    ok.b.setQie(true);
    expect(ok.rules()).toEqual([]);
  });

  it('register-invalidation-while-qi: IOTLB and CCMD commands with QI on (6.5.2); the same with QI off silent', () => {
    const off = legacy();
    iotlbGlobal(off.b);
    ccDevice(off.b, SID);
    expect(off.rules()).toEqual([]);
    const { b, rules } = legacy();
    b.enableQueue(IQ);
    iotlbGlobal(b);
    ccDevice(b, SID);
    b.w64(Reg.IVA, 0x1000n); // the address register alone is no command
    expect(rules()).toEqual([
      ['register-invalidation-while-qi', { register: 'IOTLB', offset: 0xf8 }, '6.5.2'],
      ['register-invalidation-while-qi', { register: 'CCMD', offset: 0x28 }, '6.5.2'],
    ]);
    // 32-bit writes: the command goes with the high half.
    b.w32(Reg.IOTLB_HI, ((1 << 31) | (2 << 28)) >>> 0);
    expect(rules()).toHaveLength(3);
  });
});

describe('interrupt remapping rules', () => {
  const irUnit = () => bench({ 'aw-bits': 39, intremap: 'on' });
  const setIrta = (b: VtdBench, base: number) => {
    b.w64(Reg.IRTA, BigInt(base | 0xf));
    b.gcmd(Gcmd.SIRTP);
  };
  // Index 0, remappable format; the IRTE is not present (the request faults, which changes nothing here).
  const send = (b: VtdBench) => b.iommu.interruptWrite(0xfee0_0010, 0, SID);
  const iecGlobal = (b: VtdBench, slot: number) => {
    b.putDesc(IQ, slot, 0x4n);
    b.setTail(slot + 1);
  };

  it('a fresh unit: SIRTP then IRE without an IEC invalidation is silent (nothing can be cached yet)', () => {
    const { b, rules } = irUnit();
    setIrta(b, IRT);
    b.gcmd(Gcmd.IRE);
    send(b);
    expect(rules()).toEqual([]);
  });

  it('ire-without-iec: a new table after interrupts were remapped, used without the global IEC invalidation (11.4.4.1)', () => {
    const { b, rules } = irUnit();
    setIrta(b, IRT);
    b.gcmd(Gcmd.IRE);
    send(b);
    setIrta(b, IRT + 0x10000);
    send(b);
    send(b);
    expect(rules()).toEqual([['ire-without-iec', { register: 'GCMD', offset: 0x18 }, '11.4.4.1']]);
  });

  it('with the global IEC invalidation after SIRTP: silent; an index-selective one does not do', () => {
    const ok = irUnit();
    ok.b.enableQueue(IQ);
    setIrta(ok.b, IRT);
    ok.b.gcmd(Gcmd.IRE);
    send(ok.b);
    setIrta(ok.b, IRT + 0x10000);
    iecGlobal(ok.b, 0);
    send(ok.b);
    expect(ok.rules()).toEqual([]);
    const bad = irUnit();
    bad.b.enableQueue(IQ);
    setIrta(bad.b, IRT);
    bad.b.gcmd(Gcmd.IRE);
    send(bad.b);
    setIrta(bad.b, IRT + 0x10000);
    bad.b.putDesc(IQ, 0, 0x4n | 0x10n); // index-selective, index 0
    bad.b.setTail(1);
    send(bad.b);
    expect(bad.rules().map((r) => r[0])).toEqual(['ire-without-iec']);
  });

  it('ire-without-iec also when IRE is set (off, new table, on)', () => {
    const { b, rules } = irUnit();
    setIrta(b, IRT);
    b.gcmd(Gcmd.IRE);
    send(b);
    b.gcmd(0, Gcmd.IRE);
    setIrta(b, IRT + 0x10000);
    b.gcmd(Gcmd.IRE);
    expect(rules().map((r) => r[0])).toEqual(['ire-without-iec']);
  });

  it('irta-without-sirtp: IRTA moved, interrupts remapped with the old table (IRTA, 11.4.10.1)', () => {
    const { b, rules } = irUnit();
    setIrta(b, IRT);
    b.gcmd(Gcmd.IRE);
    b.w64(Reg.IRTA, BigInt(IRT + 0x10000 + 0xf));
    send(b);
    send(b);
    expect(rules()).toEqual([['irta-without-sirtp', { register: 'IRTA', offset: 0xb8 }, '11.4.10.1']]);
  });
});

describe('entry rules (legacy)', () => {
  it('present-entry-modified: a present context entry rewritten in place (6.5.3.3), named with its address and new value', () => {
    const { b, rules, read, ctxAt, top } = legacy();
    b.gcmd(Gcmd.TE);
    read();
    const [lo, hi] = ctxEntry(top, DID + 1, 1);
    b.poke64(ctxAt + 8, hi);
    expect(lo).toBe(b.peek64(ctxAt)); // only the DID (high qword) changed
    expect(rules()).toEqual([['present-entry-modified', { entry: 'context', gpa: ctxAt, raw: [hex(lo), hex(hi)] }, '6.5.3.3']]);
    b.poke64(ctxAt + 8, hi); // the same value again: no change, no second warning
    expect(rules()).toHaveLength(1);
  });

  it('a function-masked device-selective invalidation covering the entry does', () => {
    const t = legacy();
    t.b.gcmd(Gcmd.TE);
    t.read();
    t.b.poke64(t.ctxAt, 0n);
    t.b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (3n << 32n) | (BigInt(SID + 7) << 16n)); // FM 3: devfn bits 2:0 ignored
    t.b.poke64(t.ctxAt + 8, ctxEntry(t.top, DID + 1, 1)[1]);
    t.b.poke64(t.ctxAt, ctxEntry(t.top, DID + 1, 1)[0]);
    expect(t.rules()).toEqual([]);
  });

  it('clear, invalidate, write: silent; clear and write without the invalidation: entry-rewritten-without-invalidation', () => {
    const ok = legacy();
    ok.b.gcmd(Gcmd.TE);
    ok.read();
    ok.b.poke64(ok.ctxAt, 0n);
    ccDevice(ok.b, SID);
    iotlbGlobal(ok.b);
    const [lo, hi] = ctxEntry(ok.top, DID + 1, 1);
    ok.b.poke64(ok.ctxAt + 8, hi);
    ok.b.poke64(ok.ctxAt, lo);
    ok.read();
    expect(ok.rules()).toEqual([]);

    const bad = legacy();
    bad.b.gcmd(Gcmd.TE);
    bad.read();
    bad.b.poke64(bad.ctxAt, 0n);
    bad.b.poke64(bad.ctxAt + 8, hi);
    bad.b.poke64(bad.ctxAt, lo);
    bad.read();
    expect(bad.rules()).toEqual([['entry-rewritten-without-invalidation', { entry: 'context', gpa: bad.ctxAt, raw: [hex(lo), hex(hi)] }, '6.5.3.3']]);
    expect(bad.s.warnings[0]!.message).toContain(`was ${hex(ctxEntry(bad.top, DID, 1)[0])}:${hex(ctxEntry(bad.top, DID, 1)[1])}`);
  });

  it('an invalidation that does not cover the entry (another device, another device under FM, the IOTLB only) does not do', () => {
    const otherUnderFm = (b: VtdBench) => b.w64(Reg.CCMD, (1n << 63n) | (3n << 61n) | (1n << 32n) | (BigInt(SID + 1) << 16n));
    for (const inv of [(b: VtdBench) => ccDevice(b, SID + 1), otherUnderFm, iotlbGlobal]) {
      const t = legacy();
      t.b.gcmd(Gcmd.TE);
      t.read();
      t.b.poke64(t.ctxAt, 0n);
      inv(t.b);
      t.b.poke64(t.ctxAt + 8, ctxEntry(t.top, DID + 1, 1)[1]);
      t.b.poke64(t.ctxAt, ctxEntry(t.top, DID + 1, 1)[0]);
      expect(t.rules().map((r) => r[0])).toEqual(['entry-rewritten-without-invalidation']);
    }
  });

  it('did-zero-caching-mode: DID 0 in a context entry with CAP.CM=1 (11.4.2); not without caching mode', () => {
    for (const cm of [true, false]) {
      const t = bench({ 'caching-mode': cm });
      const { b } = t;
      const root = b.allocPage();
      const top = b.allocPage();
      b.setContext(root, 0, SID, ...ctxEntry(top, 0, 1));
      b.map(top, 3, X, A);
      b.setRoot(root);
      b.gcmd(Gcmd.TE);
      b.device(0, SID).dma.read(X, new Uint8Array(4));
      b.device(0, SID).dma.read(X, new Uint8Array(4));
      expect(t.rules().map((r) => [r[0], r[2]])).toEqual(cm ? [['did-zero-caching-mode', '11.4.2']] : []);
    }
  });

  it('warnings, never faults: the same DMA result and fault count with and without the checker', () => {
    const run = (strict: boolean) => {
      const b = new VtdBench();
      if (strict) attachStrict(b.iommu, [ramOf(b)]);
      const rec = b.recordEvents();
      b.gcmd(Gcmd.TE); // te-before-srtp: root table 0, all zero
      const r = b.device(0, SID).dma.read(X, new Uint8Array(4));
      return { r, faults: rec.faults.map((f) => f.reason), gsts: b.r32(Reg.GSTS), warned: strictOf(b.iommu)?.total ?? -1 };
    };
    const on = run(true);
    const off = run(false);
    expect({ ...on, warned: 0 }).toEqual({ ...off, warned: 0 });
    expect(on.warned).toBe(1);
    expect(off.warned).toBe(-1);
  });
});

describe('entry rules (scalable mode)', () => {
  const EDU = 0x10;
  function sm(props: PropValues = {}) {
    const t = bench({ 'scalable-mode': true, ...props });
    const { b } = t;
    const root = b.allocPage();
    const dir = b.allocPage();
    const top = b.allocPage();
    b.map(top, 3, X, A);
    b.setScalableContext(root, 0, EDU, dir);
    const pe = b.setPasidEntry(dir, 0, { pgtt: 2, aw: 1, ss: top, did: DID });
    b.setRoot(root, true);
    b.gcmd(Gcmd.TE);
    const { dma } = b.device(0, EDU);
    const read = (): MemTx => dma.read(X, new Uint8Array(4));
    const ctxAt = Number(b.peek64(root) & ~0xfffn) + EDU * 32;
    return { ...t, dir, pe, read, ctxAt };
  }

  it('a correct scalable-mode setup is silent and translates', () => {
    const { rules, read } = sm();
    expect(read()).toBe(MemTx.Ok);
    expect(rules()).toEqual([]);
  });

  it('reserved-sm-context: PRE without ECAP.PRS, RID_PASID without ECAP.RPS (9.4); the unit still translates', () => {
    const { b, rules, read, ctxAt, s } = sm();
    b.poke64(ctxAt, b.peek64(ctxAt) | 0x10n);
    b.poke64(ctxAt + 8, 5n);
    b.gcmd(Gcmd.SRTP);
    expect(read()).toBe(MemTx.Ok);
    const rs = rules();
    expect(rs.map((r) => [r[0], (r[1] as { entry: string }).entry, (r[1] as { gpa: number }).gpa, r[2]])).toEqual([['reserved-sm-context', 'sm-context', ctxAt, '9.4']]);
    expect(s.warnings[0]!.message).toContain('PRE (no ECAP.PRS) = 0x10 in qword 0, RID_PASID (no ECAP.RPS) = 0x5 in qword 1');
  });

  it('reserved-pasid-dir: bits 11:2 of a PASID directory entry (9.5)', () => {
    const { b, rules, read, dir } = sm();
    b.poke64(dir, b.peek64(dir) | 0x4n);
    b.gcmd(Gcmd.SRTP);
    expect(read()).toBe(MemTx.Ok);
    expect(rules().map((r) => [r[0], (r[1] as { gpa: number }).gpa, r[2]])).toEqual([['reserved-pasid-dir', dir, '9.5']]);
  });

  it('reserved-pasid-entry: bits 11:10, 86:80 and qwords 3-7 of a PASID entry, once per value (9.6)', () => {
    const { b, rules, read, pe, s } = sm();
    b.poke64(pe, b.peek64(pe) | 0x400n);
    b.poke64(pe + 8, b.peek64(pe + 8) | (1n << 16n));
    b.poke64(pe + 56, 1n);
    b.gcmd(Gcmd.SRTP);
    expect(read()).toBe(MemTx.Ok);
    read();
    b.gcmd(Gcmd.SRTP);
    read();
    expect(rules().map((r) => [r[0], (r[1] as { gpa: number }).gpa, r[2]])).toEqual([['reserved-pasid-entry', pe, '9.6']]);
    expect(s.warnings[0]!.message).toContain('bits 11:10 = 0x400 in qword 0, bits 86:80 = 0x10000 in qword 1, bits 511:448 = 0x1 in qword 7');
  });

  it('present-entry-modified: a present PASID entry gets another domain in place (6.5.3.3); PASID-cache invalidation path silent', () => {
    const { b, rules, read, pe } = sm();
    read();
    b.poke64(pe + 8, BigInt(DID + 1));
    expect(rules()).toEqual([['present-entry-modified', { entry: 'pasid', gpa: pe, raw: Array.from({ length: 8 }, (_, i) => hex(b.peek64(pe + 8 * i))) }, '6.5.3.3']]);

    const ok = sm();
    ok.read();
    ok.b.poke64(ok.pe, ok.b.peek64(ok.pe) & ~1n);
    // Scalable mode: 256-bit descriptors (IQA.DW), IQT counts 32-byte slots.
    ok.b.w64(Reg.IQA, BigInt(IQ) | (1n << 11n));
    ok.b.setQie(true);
    ok.b.poke64(IQ, 0x7n | (1n << 4n) | (BigInt(DID) << 16n)); // PASID-cache, PASID-selective, DID 1, PASID 0
    for (let i = 1; i < 4; i++) ok.b.poke64(IQ + 8 * i, 0n);
    ok.b.w32(Reg.IQT, 1 << 5);
    expect(ok.b.r32(Reg.FSTS)).toBe(0);
    ok.b.poke64(ok.pe + 8, BigInt(DID + 1));
    ok.b.poke64(ok.pe, ok.b.peek64(ok.pe) | 1n);
    ok.read();
    expect(ok.rules()).toEqual([]);
  });
});
