/**
 * The unit's IOMMU notifiers through its public entry points: registration
 * (QEMU's refusals), replay, the invalidation queue and registers driving
 * MAP / UNMAP / DEVIOTLB_UNMAP, TE and SRTP, and nothing at all while no
 * notifier is registered.
 */
import { describe, expect, it, vi } from 'vitest';
import { IommuNotifier, IommuNotifierError, IommuNotifierFlag, type IommuEvent } from '../../memory/iommu-notifier.js';
import { ALL_PASIDS, IommuPerm, NO_PASID } from '../../memory/iommu.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import { Gcmd, Reg } from './reg-layout.js';

const Q = 0x80_0000;
const K4 = 0x1000;
const M2 = 0x20_0000;
const G1 = 0x4000_0000;

/** A legacy unit with one device (00:01.0, domain 5) whose 4-level tables start empty; translation on, queue on. */
function setup(props: Record<string, boolean | number> = { 'caching-mode': true }) {
  const b = new VtdBench({ props });
  const root = b.allocPage();
  const top = b.allocPage();
  const { req } = b.device(0, 8);
  const [lo, hi] = ctxEntry(top, 5, 2);
  b.setContext(root, 0, 8, lo, hi);
  b.setRoot(root);
  b.gcmd(Gcmd.TE);
  b.enableQueue(Q);
  let tail = 0;
  const submit = (...descs: [bigint, bigint][]): void => {
    for (const [a, c] of descs) b.putDesc(Q, tail++, a, c);
    b.setTail(tail);
  };
  return { b, req, top, root, submit, space: b.iommu.notifierSpace(req) };
}

/** Events of a notifier as short strings. */
function record(n: IommuNotifier): string[] {
  const out: string[] = [];
  const f = (e: IommuEvent): void => {
    out.push(e.type === 'map' ? `map ${hex(e.iova)}+${hex(e.size)}->${hex(e.translated)} ${e.perm}` : `${e.type} ${hex(e.iova)}+${hex(e.size)}`);
  };
  n.on('map', f);
  n.on('unmap', f);
  n.on('devIotlbUnmap', f);
  return out;
}
const hex = (v: number): string => '0x' + v.toString(16);

const iotlbPage = (did: number, addr: number, am: number): [bigint, bigint] => [2n | (3n << 4n) | (BigInt(did) << 16n), BigInt(addr) | BigInt(am)];
const iotlbDomain = (did: number): [bigint, bigint] => [2n | (2n << 4n) | (BigInt(did) << 16n), 0n];
const ctxGlobal: [bigint, bigint] = [1n | (1n << 4n), 0n];
const ctxDevice = (did: number, sid: number): [bigint, bigint] => [1n | (3n << 4n) | (BigInt(did) << 16n) | (BigInt(sid) << 32n), 0n];
const devTlb = (sid: number, addr: number): [bigint, bigint] => [3n | (BigInt(sid) << 32n), BigInt(addr)];

describe('registration', () => {
  it('a MAP notifier needs caching-mode (QEMU: "requires caching mode"); UNMAP-only ones do not', () => {
    const { space } = setup({});
    expect(() => space.registerNotifier(new IommuNotifier(IommuNotifierFlag.IotlbEvents))).toThrow(
      new IommuNotifierError('device 00.01.0 requires caching mode: Operation not supported'),
    );
    expect(space.notifierFlags).toBe(0);
    const n = new IommuNotifier(IommuNotifierFlag.Unmap);
    space.registerNotifier(n);
    expect(space.notifierFlags).toBe(IommuNotifierFlag.Unmap);
  });

  it('DEVIOTLB_UNMAP needs device-iotlb; any notifier is refused under snoop-control', () => {
    const { space } = setup({ 'caching-mode': true });
    expect(() => space.registerNotifier(new IommuNotifier(IommuNotifierFlag.DevIotlbUnmap))).toThrow(/device 00\.01\.0 requires device IOTLB mode/);
    const sc = setup({ 'caching-mode': true, 'snoop-control': true }).space;
    expect(() => sc.registerNotifier(new IommuNotifier(IommuNotifierFlag.Unmap))).toThrow(/Snoop Control with vhost or VFIO is not supported/);
  });

  it('checks only when the flags change, and unregistering drops the flags', () => {
    const { b, space } = setup({});
    const a = new IommuNotifier(IommuNotifierFlag.Unmap);
    space.registerNotifier(a);
    space.registerNotifier(a);
    expect(b.iommu.notifiers.active).toBe(true);
    space.unregisterNotifier(a);
    expect(space.notifierFlags).toBe(0);
    expect(b.iommu.notifiers.active).toBe(false);
    expect(b.iommu.notifierSpace(space.requester)).toBe(space);
    expect(b.iommu.notifierSpace(space.requester, 3).pasid).toBe(3);
  });
});

describe('replay and sync', () => {
  it('replay reports the current mappings as MAP events to that notifier alone', () => {
    const { b, top, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000, 1);
    b.map(top, 4, M2, 0x60_0000, 3, 2);
    b.map(top, 4, G1, 0x8000_0000, 2, 3);
    const other = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const otherSeen = record(other);
    space.registerNotifier(other);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    otherSeen.length = 0;
    space.replay(n);
    expect(seen).toEqual(['map 0x1000+0x1000->0x500000 1', 'map 0x200000+0x200000->0x600000 3', 'map 0x40000000+0x40000000->0x80000000 2']);
    // The other, registered before, heard them once through the replay's sync.
    expect(otherSeen).toEqual(seen);
    // Replay to an UNMAP-only notifier reports nothing.
    const u = new IommuNotifier(IommuNotifierFlag.Unmap);
    const uSeen = record(u);
    space.replay(u);
    expect(uSeen).toEqual([]);
  });

  it('queued page-selective invalidations report the differences (map, remap as unmap + map, unmap)', () => {
    const { b, top, submit, space } = setup();
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    b.map(top, 4, 0x3000, 0x70_0000, 3);
    submit(iotlbPage(5, 0x3000, 0));
    expect(seen).toEqual(['map 0x3000+0x1000->0x700000 3']);
    submit(iotlbPage(5, 0x3000, 0));
    expect(seen).toHaveLength(1); // unchanged: nothing reported
    b.map(top, 4, 0x3000, 0x71_0000, 1);
    submit(iotlbPage(9, 0x3000, 0)); // another domain: nothing
    expect(seen).toHaveLength(1);
    submit(iotlbPage(5, 0x3000, 0));
    expect(seen.slice(1)).toEqual(['unmap 0x3000+0x1000', 'map 0x3000+0x1000->0x710000 1']);
    b.poke64(b.pteAddr(top, 4, 0x3000, 1), 0n);
    submit(iotlbDomain(5));
    expect(seen.slice(3)).toEqual(['unmap 0x3000+0x1000']);
  });

  it('without a MAP notifier an invalidation reports UNMAP of its range (vhost)', () => {
    const { submit, space } = setup({});
    const n = new IommuNotifier(IommuNotifierFlag.Unmap);
    const seen = record(n);
    space.registerNotifier(n);
    submit(iotlbPage(5, 0x7000, 2), iotlbDomain(5));
    expect(seen).toEqual(['unmap 0x4000+0x4000', 'unmap 0x0+0x10000000000000000']);
  });

  it('a context invalidation unmaps everything and syncs; a removed context entry unmaps the space', () => {
    const { b, top, root, submit, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    space.replay(n);
    seen.length = 0;
    submit(ctxGlobal);
    // QEMU's vtd_address_space_unmap: one UNMAP of the whole 2^48 space, then the replay.
    expect(seen).toEqual(['unmap 0x0+0x1000000000000', 'map 0x1000+0x1000->0x500000 3']);
    seen.length = 0;
    b.setContext(root, 0, 8, 0n, 0n);
    submit(ctxDevice(5, 8));
    expect(seen).toEqual(['unmap 0x0+0x1000000000000']);
  });

  it('TE off unmaps, TE on replays; SRTP unmaps', () => {
    const { b, top, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    b.gcmd(0, Gcmd.TE);
    expect(seen).toEqual(['unmap 0x0+0x1000000000000']);
    b.gcmd(Gcmd.TE);
    expect(seen.slice(1)).toEqual(['unmap 0x0+0x1000000000000', 'map 0x1000+0x1000->0x500000 3']);
    seen.length = 0;
    b.gcmd(Gcmd.SRTP);
    expect(seen).toEqual(['unmap 0x0+0x1000000000000']);
  });

  it('a device-TLB invalidation reports DEVIOTLB_UNMAP to its SID', () => {
    const { b, submit, space } = setup({ 'caching-mode': true, 'device-iotlb': true });
    const n = new IommuNotifier(IommuNotifierFlag.DevIotlbUnmap);
    const seen = record(n);
    space.registerNotifier(n);
    submit(devTlb(0x10, 0x5000), devTlb(0x8, 0x5000));
    expect(seen).toEqual(['devIotlbUnmap 0x5000+0x1000']);
    expect(b.r32(Reg.FSTS)).toBe(0);
    // A PASID space hears descriptor 8, not 3.
    expect(space.pasid).toBe(NO_PASID);
  });
});

describe('zero cost without notifiers', () => {
  it('invalidations call nothing and allocate no walker while no notifier is registered', () => {
    const { b, submit } = setup();
    const hooks = b.iommu.notifiers;
    const spies = (['iotlbInvalidated', 'contextInvalidated', 'pasidIotlbInvalidated', 'pasidCacheInvalidated', 'deviceTlbInvalidated'] as const).map((m) => vi.spyOn(hooks, m));
    submit(iotlbPage(5, 0, 0), iotlbDomain(5), ctxGlobal, [2n | (1n << 4n), 0n]);
    for (const s of spies) expect(s).not.toHaveBeenCalled();
    expect((hooks as unknown as { walker: unknown }).walker).toBeNull();
    // And with one registered they are called.
    b.iommu.notifierSpace(b.device(0, 16).req).registerNotifier(new IommuNotifier(IommuNotifierFlag.Unmap));
    submit(iotlbDomain(5));
    expect(spies[0]).toHaveBeenCalledTimes(1);
  });

  it('the perm of a map event is the stacked permission', () => {
    const { b, top, space } = setup();
    b.map(top, 4, 0, 0x50_0000, 2);
    const n = new IommuNotifier(IommuNotifierFlag.Map);
    const got: IommuEvent[] = [];
    n.on('map', (e) => got.push(e));
    space.registerNotifier(n);
    space.replay(n);
    expect(got).toEqual([{ type: 'map', iova: 0, size: K4, addrMask: K4 - 1, translated: 0x50_0000, perm: IommuPerm.Write, pasid: NO_PASID }]);
  });
});

describe('which spaces an action reaches', () => {
  /** An UNMAP-only notifier on `space`, recorded. */
  const unmapOnly = (space: { registerNotifier(n: IommuNotifier): void }): string[] => {
    const n = new IommuNotifier(IommuNotifierFlag.Unmap);
    const seen = record(n);
    space.registerNotifier(n);
    return seen;
  };
  const WHOLE = 'unmap 0x0+0x10000000000000000';
  const ALL48 = 'unmap 0x0+0x1000000000000';
  const iotlbGlobal: [bigint, bigint] = [2n | (1n << 4n), 0n];

  it('replay of a space without a MAP notifier walks its tables for that notifier alone, if they resolve', () => {
    const { b, top, root, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.replay(n); // not registered, no walker yet
    expect(seen).toEqual(['map 0x1000+0x1000->0x500000 3']);
    b.setContext(root, 0, 8, 0n, 0n);
    space.replay(n);
    expect(seen).toHaveLength(1);
    b.setContext(root, 0, 8, ...ctxEntry(top, 5, 2));
    space.replay(n);
    expect(seen).toHaveLength(2);
    // Legacy mode: a PASID space translates nothing.
    b.iommu.notifierSpace(space.requester, 3).replay(n);
    expect(seen).toHaveLength(2);
    // Pass-through: nothing to walk.
    b.setContext(root, 0, 8, ...ctxEntry(top, 5, 2, { tt: 2 }));
    space.replay(n);
    expect(seen).toHaveLength(2);
    b.setContext(root, 0, 8, ...ctxEntry(top, 5, 2));
    space.replay(n);
    expect(seen).toHaveLength(3);
    // Translation off: nothing.
    b.gcmd(0, Gcmd.TE);
    space.replay(n);
    expect(seen).toHaveLength(3);
  });

  it('replay to an UNMAP-only notifier does not sync the space', () => {
    const { b, top, space } = setup();
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    b.map(top, 4, 0x1000, 0x50_0000);
    space.replay(new IommuNotifier(IommuNotifierFlag.Unmap));
    expect(seen).toEqual([]);
  });

  it('TE on replays notifiers registered before it, without an earlier SRTP', () => {
    const b = new VtdBench({ props: { 'caching-mode': true } });
    const top = b.allocPage();
    const { req } = b.device(0, 8);
    b.setContext(0, 0, 8, ...ctxEntry(top, 5, 2)); // the root table at the reset value of RTADDR
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    b.iommu.notifierSpace(req).registerNotifier(n);
    b.gcmd(Gcmd.TE);
    expect(seen).toEqual([ALL48, 'map 0x1000+0x1000->0x500000 3']);
  });

  it('two notifiers on one space: the space is listed once', () => {
    const { submit, space } = setup();
    const a = unmapOnly(space);
    const c = unmapOnly(space);
    submit(ctxGlobal);
    expect(a).toEqual([ALL48, WHOLE]);
    expect(c).toEqual([ALL48, WHOLE]);
  });

  it('unregistering one space keeps the others', () => {
    const { b, submit, space } = setup();
    const n = new IommuNotifier(IommuNotifierFlag.Unmap);
    space.registerNotifier(n);
    const other = unmapOnly(b.iommu.notifierSpace(b.device(0, 16).req));
    space.unregisterNotifier(n);
    expect(b.iommu.notifiers.active).toBe(true);
    submit(iotlbGlobal);
    expect(other).toEqual([WHOLE]);
  });

  it('a global IOTLB invalidation: UNMAP of the window without a shadow; nothing while translation is off', () => {
    const { b, top, submit, space } = setup();
    const u = unmapOnly(b.iommu.notifierSpace(b.device(0, 16).req));
    submit(iotlbGlobal);
    expect(u).toEqual([WHOLE]);
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    b.gcmd(0, Gcmd.TE);
    expect(seen).toEqual([ALL48]);
    submit(iotlbGlobal);
    expect(seen).toEqual([ALL48]);
  });

  it('a domain invalidation reaches a space whose shadow came from that domain', () => {
    const { b, top, root, submit, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    const seen = record(n);
    space.registerNotifier(n);
    space.replay(n);
    b.setContext(root, 0, 8, ...ctxEntry(b.allocPage(), 6, 2)); // moved to domain 6, empty tables
    submit(iotlbDomain(5));
    expect(seen).toEqual(['map 0x1000+0x1000->0x500000 3', 'unmap 0x0+0x8000000000']); // the hole of the empty top-level entry
  });

  it('no domain before a sync, after the MAP notifier left, after an unmap-all', () => {
    const { b, top, submit, space } = setup();
    b.map(top, 4, 0x1000, 0x50_0000);
    const u = unmapOnly(space);
    submit(iotlbDomain(1));
    expect(u).toEqual([]);
    const n = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    space.registerNotifier(n);
    space.replay(n);
    space.unregisterNotifier(n);
    // No shadow any more: the range as it is.
    submit(iotlbPage(5, 0x4000, 2));
    expect(u).toEqual(['unmap 0x4000+0x4000']);
    submit(iotlbDomain(1));
    expect(u).toHaveLength(1);
    b.gcmd(Gcmd.SRTP);
    expect(u).toEqual(['unmap 0x4000+0x4000', ALL48]);
    submit(iotlbDomain(1));
    expect(u).toHaveLength(2);
  });

  it('PASID-selective invalidations: the PASID (requests without one are PASID 0) and the granularity', () => {
    const { b, space } = setup();
    const u = unmapOnly(space);
    const hooks = b.iommu.notifiers;
    hooks.pasidIotlbInvalidated({ kind: 'pasid', did: 5, pasid: 7 });
    expect(u).toEqual([]);
    hooks.pasidIotlbInvalidated({ kind: 'pasid', did: 5, pasid: 0 });
    expect(u).toEqual([WHOLE]);
    hooks.pasidIotlbInvalidated({ kind: 'page', did: 5, pasid: 0, addr: 0x5000, am: 2, ih: false });
    expect(u.slice(1)).toEqual(['unmap 0x4000+0x4000']);
    hooks.pasidCacheInvalidated({ kind: 'domain', did: 9 });
    hooks.pasidCacheInvalidated({ kind: 'pasid', did: 5, pasid: 7 });
    expect(u).toHaveLength(2);
    hooks.pasidCacheInvalidated({ kind: 'domain', did: 5 });
    expect(u.slice(2)).toEqual([WHOLE]);
  });

  it('scalable mode: PASID 0 invalidations do not reach another PASID space', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true } });
    const root = b.allocPage();
    const dir = b.allocPage();
    const { req } = b.device(0, 8);
    b.setScalableContext(root, 0, 8, dir);
    b.setPasidEntry(dir, 0, { pgtt: 2, ss: b.allocPage(), did: 5 });
    b.setPasidEntry(dir, 3, { pgtt: 2, ss: b.allocPage(), did: 5 });
    b.setRoot(root, true);
    b.gcmd(Gcmd.TE);
    const u3 = unmapOnly(b.iommu.notifierSpace(req, 3));
    b.iommu.notifiers.pasidIotlbInvalidated({ kind: 'pasid', did: 5, pasid: 0 });
    expect(u3).toEqual([]);
    b.iommu.notifiers.pasidIotlbInvalidated({ kind: 'pasid', did: 5, pasid: 3 });
    expect(u3).toEqual([WHOLE]);
  });

  it('a device-selective context invalidation reaches its bus and devfn only', () => {
    const { submit, space } = setup();
    const u = unmapOnly(space);
    submit(ctxDevice(5, 0x10), ctxDevice(5, 0x108));
    expect(u).toEqual([]);
    submit(ctxDevice(5, 0x8));
    expect(u).toEqual([WHOLE]);
  });

  it('device-TLB invalidations: by SID, and descriptor 3 / ALL_PASIDS by PASID', () => {
    const { b, submit, space } = setup({ 'caching-mode': true, 'device-iotlb': true });
    const d = new IommuNotifier(IommuNotifierFlag.DevIotlbUnmap);
    const seen = record(d);
    space.registerNotifier(d);
    const d3 = new IommuNotifier(IommuNotifierFlag.DevIotlbUnmap);
    const seen3 = record(d3);
    b.iommu.notifierSpace(space.requester, 3).registerNotifier(d3);
    submit(devTlb(0x10, 0x6000), devTlb(0x8, 0x5000));
    expect(seen).toEqual(['devIotlbUnmap 0x5000+0x1000']);
    expect(seen3).toEqual([]);
    b.iommu.notifiers.deviceTlbInvalidated(0x8, ALL_PASIDS, 0x7000, K4);
    expect(seen).toHaveLength(1);
    expect(seen3).toEqual(['devIotlbUnmap 0x7000+0x1000']);
  });
});
