/**
 * The per-source-ID pass-through switch (QEMU vtd_switch_address_space /
 * vtd_pt_enable_fast_path / vtd_address_space_refresh_all): a source ID is
 * in pass-through while translation is enabled and its context entry in
 * memory is a valid TT=2 entry at the time of a decision; decisions are
 * recorded until the next one.  Refreshes decide for the tracked requesters
 * (those whose address space exists) only, each current source ID once.
 * Driven on a fresh switch over a real unit (the unit's live TE / root
 * pointer / rules), so the unit's own refreshes do not interfere.
 */
import { describe, expect, it } from 'vitest';
import { ctxEntry, FakeRequester, VtdBench } from '../../../test/support/vtd-bench.js';
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
  /** Tracks a requester at (bus, devfn) for every pair given; returns them. */
  const track = (...at: (readonly [number, number])[]) =>
    at.map(([bus, devfn]) => {
      const req = new FakeRequester(bus, devfn);
      sw.track(req);
      return req;
    });
  /** Every source ID recorded as pass-through. */
  const on = () => {
    const out: number[] = [];
    for (let s = 0; s < 0x1_0000; s++) if (sw.isPassThrough(s)) out.push(s);
    return out;
  };
  return { b, root, sw, pt, ml, on, track };
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

describe('track', () => {
  it('decides for the new requester at once, from memory (QEMU vtd_find_add_as), once per requester key', () => {
    const { sw, pt, on, track } = setup();
    pt(3, 0x11);
    expect(on()).toEqual([]);
    const [req] = track([3, 0x11]);
    expect(on()).toEqual([0x311]);
    expect(sw.trackedCount).toBe(1);
    expect(sw.track(req!)).toBe(true);
    expect(sw.trackedCount).toBe(1);
    track([3, 0x11]); // another requester with the same source ID
    expect(sw.trackedCount).toBe(2);
  });
});

describe('decideAll', () => {
  it('decides for every tracked requester, first and last bus and devfn included, and nothing else', () => {
    const { sw, pt, ml, on, track } = setup();
    for (const [bus, devfn] of [[0, 0], [0, 255], [7, 0x42], [255, 0], [255, 255], [9, 9]] as const) pt(bus, devfn);
    ml(7, 0x43);
    track([0, 0], [0, 255], [7, 0x42], [7, 0x43], [255, 0], [255, 255]);
    sw.decideAll();
    expect(on()).toEqual([0x0000, 0x00ff, 0x0742, 0xff00, 0xffff]); // 09:09.0 has no address space
  });

  it('reads each requester\'s source ID now (bus renumbering) and forgets the old one', () => {
    const { sw, pt, on, track } = setup();
    pt(1, 8);
    pt(2, 8);
    const [req] = track([1, 8]);
    expect(on()).toEqual([0x108]);
    req!.bus = 2;
    sw.decideAll();
    expect(on()).toEqual([0x208]);
  });

  it('decides a source ID shared by several requesters once per refresh', () => {
    const { b, sw, pt, track } = setup();
    pt(0, 8);
    track([0, 8], [0, 8], [0, 8], [0, 0x10]);
    const reads: number[] = [];
    const decide = sw.decide.bind(sw);
    sw.decide = (sid: number, fastPath?: boolean) => {
      reads.push(sid);
      return decide(sid, fastPath);
    };
    sw.decideAll();
    expect(reads).toEqual([8, 0x10]);
    expect(b.iommu.dmarEnabled).toBe(true);
  });

  it('forgets earlier decisions, and with translation off decides nothing', () => {
    const { b, sw, pt, ml, on, track } = setup();
    pt(0, 8);
    pt(1, 8);
    track([0, 8], [1, 8]);
    sw.decideAll();
    expect(on()).toEqual([0x0008, 0x0108]);
    ml(1, 8);
    sw.decideAll();
    expect(on()).toEqual([0x0008]);
    sw.decide(0x0300, true); // a decision for a source ID no requester has (a fast path), forgotten too
    b.gcmd(0, Gcmd.TE);
    sw.decideAll();
    expect(on()).toEqual([]);
  });

  it('skips buses whose root entry is not present or unreadable, and unreadable context tables', () => {
    const { b, root, sw, pt, on, track } = setup();
    pt(2, 8);
    pt(3, 8);
    pt(4, 8);
    track([2, 8], [3, 8], [4, 8]);
    b.poke64(root + 2 * 16, b.peek64(root + 2 * 16) & ~1n); // bus 2: not present
    b.poke64(root + 3 * 16, BigInt(HOLE) | 1n); // bus 3: context table in a hole
    sw.decideAll();
    expect(on()).toEqual([0x0408]);
  });

  it('an unreadable root table: nothing', () => {
    const { b, sw, pt, on, track } = setup();
    pt(0, 8);
    track([0, 8]);
    sw.decideAll();
    expect(on()).toEqual([8]);
    b.w64(0x20, BigInt(HOLE));
    b.gcmd(Gcmd.SRTP);
    sw.decideAll();
    expect(on()).toEqual([]);
  });

  it('present TT=2 entries that fail validation stay off; TT=1 and TT=3 are not pass-through', () => {
    const { b, root, sw, pt, on, track } = setup({ 'device-iotlb': true });
    pt(0, 1);
    const [lo, hi] = ctxEntry(TOP, 1, 1, { tt: 2 });
    b.setContext(root, 0, 2, lo | 0x800n, hi); // reserved bit
    b.setContext(root, 0, 3, ...ctxEntry(TOP, 1, 1, { tt: 1 }));
    b.setContext(root, 0, 4, ...ctxEntry(TOP, 1, 1, { tt: 3 }));
    b.setContext(root, 0, 5, lo & ~1n, hi); // not present
    b.setContext(root, 1, 0, lo, hi | (1n << 40n)); // reserved high bit
    track([0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [1, 0]);
    sw.decideAll();
    expect(on()).toEqual([1]);
  });

  it('costs O(tracked requesters): a root table full of present TT=2 entries is not scanned', () => {
    const { b, root, sw, pt, on, track } = setup();
    const ctx = b.allocPage();
    const [lo, hi] = ctxEntry(TOP, 1, 1, { tt: 2 });
    for (let d = 0; d < 256; d++) {
      b.poke64(ctx + d * 16, lo);
      b.poke64(ctx + d * 16 + 8, hi);
    }
    for (let bus = 0; bus < 256; bus++) b.poke64(root + bus * 16, BigInt(ctx) | 1n);
    pt(0, 8);
    track([0, 8], [5, 0x10]);
    const decided: number[] = [];
    const decide = sw.decide.bind(sw);
    sw.decide = (sid: number, fastPath?: boolean) => {
      decided.push(sid);
      return decide(sid, fastPath);
    };
    sw.decideAll();
    expect(decided).toEqual([0x0008, 0x0510]);
    expect(on()).toEqual([0x0008, 0x0510]);
  });
});

describe('decideMatching', () => {
  it('re-decides the tracked functions of one bus whose devfn matches outside the ignored bits', () => {
    const { sw, pt, ml, on, track } = setup();
    for (let f = 0x10; f <= 0x18; f++) pt(1, f);
    pt(2, 0x10);
    const reqs = track(...Array.from({ length: 9 }, (_, i) => [1, 0x10 + i] as const), [2, 0x10]);
    sw.decideAll();
    for (let f = 0x10; f <= 0x18; f++) ml(1, f);
    ml(2, 0x10);
    sw.decideMatching(1, 0x10, 0x7);
    expect(on()).toEqual([0x118, 0x210]);
    for (let f = 0x10; f <= 0x18; f++) pt(1, f);
    sw.decideMatching(1, 0x13, 0);
    expect(on()).toEqual([0x113, 0x118, 0x210]);
    expect(reqs).toHaveLength(10);
  });

  it('with ignore bits 0x4 and 0x6 (FM 1 and 2)', () => {
    const { sw, pt, ml, on, track } = setup();
    for (let f = 0x20; f < 0x28; f++) ml(5, f);
    track(...Array.from({ length: 8 }, (_, i) => [5, 0x20 + i] as const));
    for (let f = 0x20; f < 0x28; f++) pt(5, f);
    sw.decideMatching(5, 0x21, 0x4);
    expect(on()).toEqual([0x521, 0x525]);
    sw.decideMatching(5, 0x20, 0x6);
    expect(on()).toEqual([0x520, 0x521, 0x522, 0x524, 0x525, 0x526]);
  });

  it('decides only tracked requesters; untracked matching functions stay undecided', () => {
    const { sw, pt, ml, on, track } = setup();
    for (let f = 0x20; f < 0x28; f++) ml(5, f);
    track([5, 0x21], [5, 0x25]);
    for (let f = 0x20; f < 0x28; f++) pt(5, f);
    sw.decideMatching(5, 0x20, 0x7);
    expect(on()).toEqual([0x521, 0x525]);
  });

  it('can switch matching functions off', () => {
    const { b, sw, pt, on, track } = setup();
    pt(1, 0x10);
    pt(1, 0x11);
    track([1, 0x10], [1, 0x11]);
    sw.decideAll();
    expect(on()).toEqual([0x110, 0x111]);
    b.gcmd(0, Gcmd.TE);
    sw.decideMatching(1, 0x10, 0);
    expect(on()).toEqual([0x111]);
  });
});

describe('the unit\'s own switch', () => {
  it('is refreshed by TE and SRTP for the address spaces that exist, as QEMU refreshes all address spaces', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 1, { tt: 2 }));
    b.setContext(root, 0, 16, ...ctxEntry(TOP, 1, 1, { tt: 2 }));
    b.setRoot(root);
    b.iommu.translatorFor(b.device(0, 8).req);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(false); // TE off
    b.gcmd(Gcmd.TE);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(true);
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(false); // no address space: not decided
    b.iommu.translatorFor(b.device(0, 16).req); // created now: decided now
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(true);
    b.gcmd(0, Gcmd.TE);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(false);
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(false);
  });

  it('tracks the requesters of translators without a PASID only', () => {
    const b = new VtdBench();
    const req = new FakeRequester(0, 8);
    b.iommu.translatorFor(req, 5);
    expect(b.iommu.passThrough.trackedCount).toBe(0);
    b.iommu.translatorFor(req);
    b.iommu.translatorFor(req);
    expect(b.iommu.passThrough.trackedCount).toBe(1);
  });
});
