/**
 * The per-source-ID pass-through switch (QEMU vtd_switch_address_space /
 * vtd_pt_enable_fast_path / vtd_address_space_refresh_all): a source ID is
 * in pass-through while translation is enabled and its context entry in
 * memory is a valid TT=2 entry at the time of a decision; decisions are
 * recorded until the next one.  Driven on a fresh switch over a real unit
 * (the unit's live TE / root pointer / rules), so the unit's own refreshes do
 * not interfere.
 */
import { describe, expect, it } from 'vitest';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import type { PropValues } from '../../machine/device-type.js';
import { PassThroughSwitch } from './pass-through.js';
import { Gcmd } from './reg-layout.js';

const TOP = 0x30_0000;
const HOLE = 0x8000_0000;
const sid = (bus: number, devfn: number) => (bus << 8) | devfn;

function setup(props: PropValues = {}, te = true) {
  const b = new VtdBench({ props });
  const root = b.allocPage();
  b.setRoot(root);
  if (te) b.gcmd(Gcmd.TE);
  const sw = new PassThroughSwitch(b.iommu);
  const pt = (bus: number, devfn: number) => b.setContext(root, bus, devfn, ...ctxEntry(TOP, 1, 1, { tt: 2 }));
  const ml = (bus: number, devfn: number) => b.setContext(root, bus, devfn, ...ctxEntry(TOP, 1, 1));
  /** Every source ID recorded as pass-through. */
  const on = () => {
    const out: number[] = [];
    for (let s = 0; s < 0x1_0000; s++) if (sw.isPassThrough(s)) out.push(s);
    return out;
  };
  return { b, root, sw, pt, ml, on };
}

describe('decide', () => {
  it('nothing is pass-through before any decision', () => {
    const { pt, on } = setup();
    pt(0, 8);
    expect(on()).toEqual([]);
  });

  it('a valid TT=2 entry with translation on: pass-through, recorded', () => {
    const { sw, pt, on } = setup();
    pt(3, 0x11);
    expect(sw.decide(sid(3, 0x11))).toBe(true);
    expect(sw.isPassThrough(0x311)).toBe(true);
    expect(on()).toEqual([0x311]);
  });

  it('splits the source ID into bus (15:8) and devfn (7:0)', () => {
    const { sw, pt, on } = setup();
    pt(0xff, 0xff);
    pt(0x01, 0x80);
    expect(sw.decide(0xffff)).toBe(true);
    expect(sw.decide(0x0180)).toBe(true);
    expect(sw.decide(0xff7f)).toBe(false);
    expect(sw.decide(0x80ff)).toBe(false);
    expect(sw.decide(0x0101)).toBe(false);
    expect(on()).toEqual([0x0180, 0xffff]);
  });

  it('a multi-level entry, a missing entry or translation off: not pass-through', () => {
    const { b, sw, pt, ml } = setup({}, false);
    pt(0, 8);
    ml(0, 16);
    expect(sw.decide(sid(0, 8))).toBe(false); // TE off
    b.gcmd(Gcmd.TE);
    expect(sw.decide(sid(0, 8))).toBe(true);
    expect(sw.decide(sid(0, 16))).toBe(false);
    expect(sw.decide(sid(0, 24))).toBe(false);
    expect(sw.decide(sid(9, 8))).toBe(false);
    b.gcmd(0, Gcmd.TE);
    expect(sw.decide(sid(0, 8))).toBe(false);
    expect(sw.isPassThrough(sid(0, 8))).toBe(false);
  });

  it('an invalid TT=2 entry is not pass-through (pt=off, reserved bits, bad AW)', () => {
    const noPt = setup({ pt: false });
    noPt.pt(0, 8);
    expect(noPt.sw.decide(sid(0, 8))).toBe(false);

    const { b, root, sw } = setup();
    const [lo, hi] = ctxEntry(TOP, 1, 1, { tt: 2 });
    b.setContext(root, 0, 8, lo | 0x10n, hi);
    expect(sw.decide(sid(0, 8))).toBe(false);
    b.setContext(root, 0, 8, lo, (hi & ~7n) | 3n); // AW 3 with aw-bits 48
    expect(sw.decide(sid(0, 8))).toBe(false);
    b.setContext(root, 0, 8, lo & ~1n, hi);
    expect(sw.decide(sid(0, 8))).toBe(false);
    b.setContext(root, 0, 8, lo, hi);
    expect(sw.decide(sid(0, 8))).toBe(true);
  });

  it('a decision stands until the next one, which reads memory again', () => {
    const { sw, pt, ml } = setup();
    pt(0, 8);
    expect(sw.decide(sid(0, 8))).toBe(true);
    ml(0, 8);
    expect(sw.isPassThrough(sid(0, 8))).toBe(true);
    expect(sw.decide(sid(0, 8))).toBe(false);
    expect(sw.isPassThrough(sid(0, 8))).toBe(false);
    pt(0, 8);
    expect(sw.isPassThrough(sid(0, 8))).toBe(false);
    expect(sw.decide(sid(0, 8))).toBe(true);
  });

  it('follows the unit\'s root table pointer', () => {
    const { b, sw, pt } = setup();
    pt(0, 8);
    expect(sw.decide(sid(0, 8))).toBe(true);
    b.setRoot(b.allocPage());
    expect(sw.decide(sid(0, 8))).toBe(false);
  });
});

describe('decideAll', () => {
  it('finds every valid TT=2 entry on every bus, first and last included', () => {
    const { sw, pt, ml, on } = setup();
    pt(0, 0);
    pt(0, 255);
    pt(7, 0x42);
    pt(255, 0);
    pt(255, 255);
    ml(7, 0x43);
    sw.decideAll();
    expect(on()).toEqual([0x0000, 0x00ff, 0x0742, 0xff00, 0xffff]);
  });

  it('forgets earlier decisions, and with translation off decides nothing', () => {
    const { b, sw, pt, ml, on } = setup();
    pt(0, 8);
    pt(1, 8);
    sw.decideAll();
    expect(on()).toEqual([0x0008, 0x0108]);
    ml(1, 8);
    sw.decideAll();
    expect(on()).toEqual([0x0008]);
    b.gcmd(0, Gcmd.TE);
    sw.decideAll();
    expect(on()).toEqual([]);
  });

  it('skips buses whose root entry is not present or unreadable, and unreadable context tables', () => {
    const { b, root, sw, pt, on } = setup();
    pt(2, 8);
    pt(3, 8);
    pt(4, 8);
    b.poke64(root + 2 * 16, b.peek64(root + 2 * 16) & ~1n); // bus 2: not present
    b.poke64(root + 3 * 16, BigInt(HOLE) | 1n); // bus 3: context table in a hole
    sw.decideAll();
    expect(on()).toEqual([0x0408]);
  });

  it('an unreadable root table: nothing', () => {
    const { b, sw, pt, on } = setup();
    pt(0, 8);
    sw.decideAll();
    expect(on()).toEqual([8]);
    b.w64(0x20, BigInt(HOLE));
    b.gcmd(Gcmd.SRTP);
    sw.decideAll();
    expect(on()).toEqual([]);
  });

  it('present TT=2 entries that fail validation stay off; TT=1 and TT=3 are not pass-through', () => {
    const { b, root, sw, pt, on } = setup({ 'device-iotlb': true });
    pt(0, 1);
    const [lo, hi] = ctxEntry(TOP, 1, 1, { tt: 2 });
    b.setContext(root, 0, 2, lo | 0x800n, hi); // reserved bit
    b.setContext(root, 0, 3, ...ctxEntry(TOP, 1, 1, { tt: 1 }));
    b.setContext(root, 0, 4, ...ctxEntry(TOP, 1, 1, { tt: 3 }));
    b.setContext(root, 0, 5, lo & ~1n, hi); // not present
    b.setContext(root, 1, 0, lo, hi | (1n << 40n)); // reserved high bit
    sw.decideAll();
    expect(on()).toEqual([1]);
  });
});

describe('decideMatching', () => {
  it('re-decides the functions of one bus whose devfn matches outside the ignored bits', () => {
    const { sw, pt, ml, on } = setup();
    for (let f = 0x10; f <= 0x18; f++) pt(1, f);
    pt(2, 0x10);
    sw.decideMatching(1, 0x10, 0x7);
    expect(on()).toEqual([0x110, 0x111, 0x112, 0x113, 0x114, 0x115, 0x116, 0x117]);
    ml(1, 0x13);
    sw.decideMatching(1, 0x13, 0);
    expect(on()).toEqual([0x110, 0x111, 0x112, 0x114, 0x115, 0x116, 0x117]);
    sw.decideMatching(1, 0x18, 0);
    expect(on()).toContain(0x118);
    expect(on()).not.toContain(0x210);
  });

  it('with ignore bits 0x4 and 0x6 (FM 1 and 2)', () => {
    const { sw, pt, on } = setup();
    for (let f = 0x20; f < 0x28; f++) pt(5, f);
    sw.decideMatching(5, 0x21, 0x4);
    expect(on()).toEqual([0x521, 0x525]);
    sw.decideMatching(5, 0x20, 0x6);
    expect(on()).toEqual([0x520, 0x521, 0x522, 0x524, 0x525, 0x526]);
  });

  it('can switch matching functions off', () => {
    const { b, sw, pt, on } = setup();
    pt(1, 0x10);
    pt(1, 0x11);
    sw.decideAll();
    expect(on()).toEqual([0x110, 0x111]);
    b.gcmd(0, Gcmd.TE);
    sw.decideMatching(1, 0x10, 0);
    expect(on()).toEqual([0x111]);
  });
});

describe('the unit\'s own switch', () => {
  it('is refreshed by TE and SRTP, as QEMU refreshes all address spaces', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 1, { tt: 2 }));
    b.setRoot(root);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(false); // TE off
    b.gcmd(Gcmd.TE);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(true);
    b.gcmd(0, Gcmd.TE);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(false);
  });
});
