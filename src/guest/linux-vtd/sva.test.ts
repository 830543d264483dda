/**
 * sva.ts against a fake remapping unit on a FakePlatform: the PASID
 * allocator, and the bind / mm change / unbind sequences with every
 * descriptor they queue (the unit consumes them, recording them and
 * writing wait status, and holds the page-request registers).
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../alloc.js';
import { CAP_CM, ECAP_PDS, ECAP_SMPWC, ECAP_SVM, SVA_SID, fakeSvaDevice, fakeSvaUnit, u64 } from '../../../test/support/guest-fakes/fake-sva-unit.js';
import { ProcessMm } from './process-mm.js';
import { PageRequestQueue, PrqReg } from './prq.js';
import { PasidAllocator, SvaBond, type SvaSkip } from './sva.js';

describe('PasidAllocator (the global PASID space)', () => {
  it('hands out the lowest free PASID from 1 up to the limit', () => {
    const a = new PasidAllocator(3);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([1, 2, 3, undefined]);
    a.free(2);
    expect(a.alloc()).toBe(2);
  });
});

describe('SVA on a fake unit', () => {
  it('bind: the first-stage PASID entry on CR3 with DID 1; no invalidation without caching mode', async () => {
    const { p, unit, fake, alloc } = await fakeSvaUnit();
    const sva = await fakeSvaDevice(unit);
    const mm = await ProcessMm.create(p, alloc, 'proc');
    const bond = await SvaBond.bind(unit, sva, mm, new PasidAllocator(100));
    expect(bond.pasid).toBe(1);
    const entry = (await sva.dev.pasidTable!.entry(1));
    expect(bond.entry).toBe(entry);
    expect([u64(p, entry), u64(p, entry + 8), u64(p, entry + 16)]).toEqual([0x49n, 0x80_0001n, BigInt(mm.cr3)]);
    for (let q = 3; q < 8; q++) expect(u64(p, entry + q * 8)).toBe(0n);
    expect(sva.dev.pasidTable!.at(1)).toEqual({ did: 1, pgtt: 1 });
    expect(fake.take()).toEqual([]);
  });

  it('bind with caching mode: PASID-cache then PASID-IOTLB, each waited for; no PWSNP without SMPWC', async () => {
    const { p, unit, fake, alloc } = await fakeSvaUnit({ cap: CAP_CM, ecap: ECAP_SVM & ~ECAP_SMPWC });
    const sva = await fakeSvaDevice(unit);
    const bond = await SvaBond.bind(unit, sva, await ProcessMm.create(p, alloc, 'proc'), new PasidAllocator(100));
    expect(u64(p, bond.entry + 8)).toBe(1n);
    expect(fake.take()).toEqual(['7', 'W', '6', 'W']);
  });

  /** A bond over a populated heap page, the queue drained. */
  async function bound(skip: ReadonlySet<SvaSkip> = new Set(), over: Partial<{ atsEnabled: boolean; priEnabled: boolean }> = {}) {
    const env = await fakeSvaUnit();
    const sva = await fakeSvaDevice(env.unit, over);
    const mm = await ProcessMm.create(env.p, env.alloc, 'proc');
    mm.mmap(0x1000_0000, 4 * PAGE_SIZE, { read: true, write: true }, 'heap');
    await mm.populate(0x1000_0000, 4 * PAGE_SIZE);
    const pasids = new PasidAllocator(100);
    const bond = await SvaBond.bind(env.unit, sva, mm, pasids, skip);
    env.fake.take();
    return { ...env, sva, mm, pasids, bond };
  }

  it('an mm change: one batch of PASID-IOTLB (page-selective) and PASID device-TLB, then the wait', async () => {
    const { mm, fake, bond } = await bound();
    await mm.munmap(0x1000_1000, PAGE_SIZE);
    expect(fake.descs.splice(0)).toEqual([
      [0x1_0001_0036n, 0x1000_1000n],
      [0x1_0010_0008n, 0x1000_1000n],
      [expect.any(BigInt), expect.any(BigInt)],
    ]);
    await mm.munmap(0x1000_2000, 2 * PAGE_SIZE);
    const [piotlb, devtlb] = fake.descs.splice(0);
    expect(piotlb).toEqual([0x1_0001_0036n, 0x1000_2000n | 1n]);
    expect(devtlb).toEqual([0x1_0010_0008n, 0x1000_2000n | 0x800n]);
    expect(bond.log.join('\n')).toContain('mm change 0x10002000-0x10003fff: invalidating PASID 1');
  });

  it('skipping an invalidation (test-only) leaves it out; no ATS, no device-TLB descriptor', async () => {
    const a = await bound(new Set(['unmap-devtlb']));
    await a.mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(a.fake.take()).toEqual(['6', 'W']);
    const b = await bound(new Set(['unmap-piotlb']));
    await b.mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(b.fake.take()).toEqual(['8', 'W']);
    const c = await bound(new Set(), { atsEnabled: false });
    await c.mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(c.fake.take()).toEqual(['6', 'W']);
  });

  it('unbind: P cleared, PASID-cache, PASID-IOTLB, device-TLB (all), the drain batch with PD on its status wait, entry cleared, PASID freed', async () => {
    const { p, unit, fake, bond, pasids, mm } = await bound();
    const prq = new PageRequestQueue(unit);
    const entry = bond.entry;
    await bond.unbind(pasids, prq);
    const descs = fake.descs.splice(0);
    expect(descs.map(([q0]) => Number(q0 & 0xfn))).toEqual([7, 5, 6, 5, 8, 5, 5, 6, 8, 5]);
    expect(descs[0]![0]).toBe(0x1_0001_0017n);
    expect(descs[2]![0]).toBe(0x1_0001_0026n);
    expect(descs[4]).toEqual([0x1_0010_0008n, 0x7fff_ffff_ffff_f800n]);
    expect(descs[6]).toEqual([0x2_0000_0045n, 0n]); // fenced wait, no status write
    expect(descs[9]![0]).toBe(0x2_0000_00a5n); // the queue's status wait: SW | PD (Linux QI_OPT_WAIT_DRAIN), no extra wait
    expect(descs[9]![1]).toBe(descs[5]![1]);
    for (let q = 0; q < 8; q++) expect(u64(p, entry + q * 8)).toBe(0n);
    expect(pasids.alloc()).toBe(1);
    await mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(fake.descs).toEqual([]);
  });

  it('unbind with a request of the PASID still queued: the handler answers it (Invalid) before the drain batch', async () => {
    const { p, unit, fake, bond, pasids } = await bound();
    const prq = new PageRequestQueue(unit);
    await prq.enable(0xf2, 0xfee0_0000);
    await p.write64(prq.base, 1n | (1n << 8n) | (1n << 32n) | (BigInt(SVA_SID) << 16n));
    await p.write64(prq.base + 8, 0x1000_0000n | 1n | 4n | (2n << 3n));
    fake.regs.set(PrqReg.PQT, 0x20n);
    await bond.unbind(pasids, prq);
    const types = fake.take();
    expect(types).toEqual(['7', 'W', '6', 'W', '8', 'W', '9', 'W', '5', '6', '8', 'W']);
    expect(fake.regs.get(PrqReg.PQH)).toBe(0x20n);
    expect(bond.log.join('\n')).toMatch(/still queued: handler run first[\s\S]*PRGI 2 Invalid Request/);
  });

  it('unbind without ECAP.PDS drains without the PD wait; without PRI there is no drain', async () => {
    const env = await fakeSvaUnit({ ecap: ECAP_SVM & ~ECAP_PDS });
    const sva = await fakeSvaDevice(env.unit);
    const pasids = new PasidAllocator(10);
    const bond = await SvaBond.bind(env.unit, sva, await ProcessMm.create(env.p, env.alloc, 'proc'), pasids);
    await bond.unbind(pasids, new PageRequestQueue(env.unit));
    expect(env.fake.descs.at(-1)![0]).toBe(0x2_0000_0025n); // SW, no PD
    expect(env.fake.take()).toEqual(['7', 'W', '6', 'W', '8', 'W', '5', '6', '8', 'W']);
    const noPri = await bound(new Set(), { priEnabled: false });
    await noPri.bond.unbind(noPri.pasids, new PageRequestQueue(noPri.unit));
    expect(noPri.fake.take()).toEqual(['7', 'W', '6', 'W', '8', 'W']);
  });
});
