/**
 * sva.ts against a FakePlatform: the process page table as the CPU walks
 * it, handle_mm_fault, munmap and its notifier, the PASID allocator, the
 * descriptor words, and the bind / unmap / unbind / page-request sequences
 * against a fake remapping unit that consumes queued descriptors (recording
 * them and writing wait status) and holds the page-request registers.
 */
import { describe, expect, it } from 'vitest';
import { GuestAllocator, PAGE_SIZE } from '../alloc.js';
import { FakePlatform, FAKE_RAM_PAGE } from '../testing/fake-platform.js';
import { PasidTable, SmCtx } from './pasid.js';
import { LARGE_PAGE } from './pagetable.js';
import type { DeviceHandle } from './domain.js';
import { VtdUnit } from './unit.js';
import {
  DEVTLB_ALL_ORDER, PageRequestQueue, PasidAllocator, PrqReg, PrsBit, ProcessMm, SvaBond, decodePageRequest, devTlbPasidDesc, fenceWaitDesc,
  pageResponseDesc, pasidCacheDesc, piotlbDesc, setContextSvaBits, type SvaDevice, type SvaSkip,
} from './sva.js';

const BASE = 0xfed9_0000;
const RAM_BASE = 0x100_0000;
const RAM_LIMIT = 0x400_0000;
const IQT = 0x88;
const SID = 0x10;
/** ECAP of QEMU 11.1 with svm=on (PDS bit 42 set) plus SMPWC (bit 48). */
const ECAP_SVM = 0x0000_8d9a_20f0_0f4en | (1n << 48n);
const CAP_CM = 1n << 7n;

/** A unit's registers and queue consumer over the fake platform's RAM. */
class FakeUnit {
  readonly regs = new Map<number, bigint>();
  /** Descriptors consumed: [qw0, qw1]. */
  readonly descs: Array<readonly [bigint, bigint]> = [];
  private head = 0;
  queue = 0;

  constructor(private readonly p: FakePlatform) {
    p.mapMmio(BASE, 0x1000, {
      read: (o) => this.regs.get(o) ?? 0n,
      write: (o, _s, v) => this.write(o, v),
    });
  }

  private write(off: number, v: bigint): void {
    if (off === PrqReg.PRS) { this.regs.set(off, (this.regs.get(off) ?? 0n) & ~v); return; }
    this.regs.set(off, v);
    if (off !== IQT) return;
    const tail = Number(v >> 5n);
    for (; this.head !== tail; this.head = (this.head + 1) % 256) {
      const at = this.queue + this.head * 32;
      const q0 = u64(this.p, at);
      const q1 = u64(this.p, at + 8);
      this.descs.push([q0, q1]);
      if ((q0 & 0xfn) === 5n && q0 & (1n << 5n)) new DataView(this.p.ramPage(Number(q1) / FAKE_RAM_PAGE | 0, true)!).setUint32(Number(q1) % FAKE_RAM_PAGE, Number(q0 >> 32n), true);
    }
  }

  /** Descriptor types consumed since the last call, with the status waits shown as 'W'. */
  take(): string[] {
    return this.descs.splice(0).map(([q0]) => ((q0 & 0xfn) === 5n && q0 & (1n << 5n) ? 'W' : String(Number(q0 & 0xfn))));
  }
}

function u64(p: FakePlatform, addr: number): bigint {
  const page = p.ramPage(Math.floor(addr / FAKE_RAM_PAGE), true)!;
  return new DataView(page).getBigUint64(addr % FAKE_RAM_PAGE, true);
}

/** A scalable-mode unit with QI on the fake: the driver's view (VtdUnit) and the fake's. */
async function setup(opts: { cap?: bigint; ecap?: bigint } = {}): Promise<{ p: FakePlatform; unit: VtdUnit; fake: FakeUnit; alloc: GuestAllocator }> {
  const p = new FakePlatform();
  const alloc = new GuestAllocator(p, RAM_BASE, RAM_LIMIT);
  const fake = new FakeUnit(p);
  const unit = new VtdUnit(p, BASE, alloc);
  unit.cap = opts.cap ?? 0n;
  unit.ecap = opts.ecap ?? ECAP_SVM;
  unit.levels = 4;
  unit.scalable = true;
  fake.queue = Number((await unit.qi.prepare(true)) & ~0xfffn);
  unit.invalidator = unit.qi;
  unit.rootTable = await alloc.page();
  return { p, unit, fake, alloc };
}

/** A device handle with a PASID table and ATS / PASID / PRI on. */
async function svaDevice(unit: VtdUnit, over: Partial<{ atsEnabled: boolean; priEnabled: boolean }> = {}): Promise<SvaDevice> {
  const dev: DeviceHandle = { name: '00:02.0', sids: [SID], unit, rmrrs: [], domain: undefined, pasidTable: await new PasidTable(unit).init() };
  return {
    dev,
    sid: SID,
    pcie: {
      caps: { ats: { offset: 0x100, qdep: 32, pageAligned: true }, pasid: { offset: 0x110, width: 20, exec: true, priv: true }, pri: { offset: 0x120, capacity: 32, pasidRequired: false } },
      atsEnabled: over.atsEnabled ?? true,
      priEnabled: over.priEnabled ?? true,
    },
  };
}

describe('ProcessMm: an x86 page table in guest RAM', () => {
  it('populated pages: leaves P|RW|US|A|D, tables P|RW|US|A, the CPU walk finds them', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x5555_5555_4000, 4 * PAGE_SIZE, { read: true, write: true }, 'heap');
    mm.mmap(0x5555_5556_0000, PAGE_SIZE, { read: true, write: false }, 'text');
    await mm.populate(0x5555_5555_4000, PAGE_SIZE);
    await mm.populate(0x5555_5556_0000, PAGE_SIZE);
    const rw = (await mm.walk(0x5555_5555_4123))!;
    expect(rw).toMatchObject({ write: true, user: true, pageSize: PAGE_SIZE });
    expect(rw.phys % PAGE_SIZE).toBe(0x123);
    expect(await mm.walk(0x5555_5556_0000)).toMatchObject({ write: false, user: true });
    expect(await mm.walk(0x5555_5555_5000)).toBeUndefined();
    // Every level of the walk as the unit reads it.
    let table = mm.cr3;
    const va = 0x5555_5555_4000;
    for (let level = 4; level >= 1; level--) {
      const e = u64(p, table + (Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512) * 8);
      expect(e & 0xfffn).toBe(level === 1 ? 0x67n : 0x27n);
      table = Number(e & ~0xfffn);
    }
    expect(mm.cr3 % PAGE_SIZE).toBe(0);
  });

  it('a 2 MiB page: one PS leaf at level 2 over 2 MiB-aligned RAM', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    const phys = await mm.mapHuge(0x7f12_3440_0000, { read: true, write: true }, 'huge');
    expect(phys % LARGE_PAGE).toBe(0);
    expect(await mm.walk(0x7f12_3441_2345)).toEqual({ phys: phys + 0x1_2345, write: true, user: true, pageSize: LARGE_PAGE });
    await expect(mm.mapHuge(0x7f12_3450_1000, { read: true, write: true }, 'x')).rejects.toThrow(/2 MiB/);
  });

  it('handle_mm_fault: maps inside a VMA, refuses outside one and accesses the VMA does not allow', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x1000_0000, 2 * PAGE_SIZE, { read: true, write: true }, 'heap');
    mm.mmap(0x2000_0000, PAGE_SIZE, { read: true, write: false }, 'ro');
    expect(await mm.fault(0x1000_1234, true)).toBe('success');
    expect(await mm.walk(0x1000_1000)).toMatchObject({ write: true });
    expect(await mm.fault(0x1000_1000, false)).toBe('success');
    expect(mm.log.at(-1)).toBe('proc: fault at 0x10001000: already mapped');
    expect(await mm.fault(0x3000_0000, false)).toBe('invalid');
    expect(await mm.fault(0x2000_0000, true)).toBe('invalid');
    expect(await mm.walk(0x2000_0000)).toBeUndefined();
    expect(await mm.fault(0x2000_0000, false)).toBe('success');
    expect(await mm.walk(0x2000_0000)).toMatchObject({ write: false });
  });

  it('munmap clears PTEs, splits the VMA and runs the notifiers with the range', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x1000_0000, 4 * PAGE_SIZE, { read: true, write: true }, 'heap');
    await mm.populate(0x1000_0000, 4 * PAGE_SIZE);
    const calls: string[] = [];
    const n = async (s: number, e: number): Promise<void> => { calls.push(`0x${s.toString(16)}-0x${e.toString(16)}`); };
    mm.addNotifier(n);
    await mm.munmap(0x1000_1000, 2 * PAGE_SIZE);
    expect(calls).toEqual(['0x10001000-0x10003000']);
    expect(await mm.walk(0x1000_1000)).toBeUndefined();
    expect(await mm.walk(0x1000_2000)).toBeUndefined();
    expect(await mm.walk(0x1000_3000)).toBeDefined();
    expect(mm.vmas.map((v) => [v.start, v.end]).sort()).toEqual([[0x1000_0000, 0x1000_1000], [0x1000_3000, 0x1000_4000]]);
    expect(await mm.fault(0x1000_1000, false)).toBe('invalid');
    mm.removeNotifier(n);
    await mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(calls).toHaveLength(1);
  });

  it('CPU loads and stores cross page boundaries through the walk', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x1000_0000, 2 * PAGE_SIZE, { read: true, write: true }, 'heap');
    await mm.populate(0x1000_0000, 2 * PAGE_SIZE);
    const data = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
    expect(await mm.cpuWrite(0x1000_0fe0, data)).toBe(true);
    expect(await mm.cpuRead(0x1000_0fe0, 64)).toEqual(data);
    const second = (await mm.walk(0x1000_1000))!.phys;
    expect(await p.readBytes(second, 32)).toEqual(data.subarray(32));
    expect(await mm.cpuRead(0x1000_1fe0, 64)).toBeUndefined();
    expect(await mm.cpuWrite(0x1000_2000, data)).toBe(false);
  });

  it('refuses overlapping or malformed mmaps (a setup mistake, not guest input)', async () => {
    const { p, alloc } = await setup();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x1000_0000, PAGE_SIZE, { read: true, write: true }, 'a');
    expect(() => mm.mmap(0x1000_0000, PAGE_SIZE, { read: true, write: true }, 'b')).toThrow(/overlaps/);
    expect(() => mm.mmap(0x1000_0800, PAGE_SIZE, { read: true, write: true }, 'c')).toThrow(/bad range/);
    expect(() => mm.mmap(2 ** 47 - PAGE_SIZE, 2 * PAGE_SIZE, { read: true, write: true }, 'd')).toThrow(/bad range/);
  });
});

describe('PasidAllocator (the global PASID space)', () => {
  it('hands out the lowest free PASID from 1 up to the limit', () => {
    const a = new PasidAllocator(3);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([1, 2, 3, undefined]);
    a.free(2);
    expect(a.alloc()).toBe(2);
  });
});

describe('descriptor words', () => {
  it('PASID-IOTLB: all of a PASID, or page-selective with AM and the address aligned to it', () => {
    expect(piotlbDesc(1, 5)).toMatchObject({ q0: 0x5_0001_0026n, q1: 0n });
    expect(piotlbDesc(1, 5, 0x1234_5000, 1)).toMatchObject({ q0: 0x5_0001_0036n, q1: 0x1234_5000n });
    expect(piotlbDesc(2, 5, 0x1234_5000, 3, true)).toMatchObject({ q0: 0x5_0002_0036n, q1: 0x1234_4000n | 0x40n | 2n });
  });

  it('PASID-cache, PASID-selective', () => {
    expect(pasidCacheDesc(1, 0x1234)).toMatchObject({ q0: 0x1234_0001_0017n, q1: 0n });
  });

  it('PASID device-TLB: one page without S; 2^n pages with S and n-1 address bits set from bit 12', () => {
    expect(devTlbPasidDesc(0x10, 1, 32, 0x5000, 0)).toMatchObject({ q0: 0x1_0010_0008n, q1: 0x5000n });
    expect(devTlbPasidDesc(0x10, 1, 8, 0x8000, 1)).toMatchObject({ q0: 0x1_0010_0088n, q1: 0x8800n });
    expect(devTlbPasidDesc(0x10, 1, 32, 0x8000, 3)).toMatchObject({ q1: 0xb800n });
    expect(devTlbPasidDesc(0x10, 1, 32, 0, DEVTLB_ALL_ORDER)).toMatchObject({ q1: 0x7fff_ffff_ffff_f800n });
  });

  it('page-group response: PP, code, RID, PASID; PRGI and LPIG', () => {
    expect(pageResponseDesc(0x10, 1, 4, 0, true)).toMatchObject({ q0: 0x1_0010_0019n, q1: 0x24n });
    expect(pageResponseDesc(0x10, 1, 5, 1, true)).toMatchObject({ q0: 0x1_0010_1019n, q1: 0x2cn });
    expect(pageResponseDesc(0x210, undefined, 0x1ff, 0xf, false)).toMatchObject({ q0: 0x210_f009n, q1: 0xff8n });
  });

  it('fenced waits, with and without PD', () => {
    expect(fenceWaitDesc(false)).toMatchObject({ q0: 0x2_0000_0045n, q1: 0n });
    expect(fenceWaitDesc(true)).toMatchObject({ q0: 0x2_0000_00c5n, q1: 0n });
  });

  it('page request descriptors decode as QEMU writes them', () => {
    expect(decodePageRequest(3, 0x1_0010_0101n, 0x5555_5555_c026n)).toMatchObject({
      index: 3, rid: 0x10, pasid: 1, addr: 0x5555_5555_c000, read: false, write: true, exec: false, priv: false, lpig: true, prgi: 4,
    });
    expect(decodePageRequest(0, 0n, 0xffff_8000_0000_1001n)).toMatchObject({ canonical: true, read: true });
    expect(decodePageRequest(0, 0n, 0xfff7_8000_0000_1001n)).toMatchObject({ canonical: false });
    expect(decodePageRequest(0, 0n, 0x0000_8000_0000_1001n)).toMatchObject({ canonical: false });
    expect(decodePageRequest(0, 0x30_0000_0000_0001n | (0x123n << 16n), 0x7ff9n)).toMatchObject({
      rid: 0x123, pasid: undefined, read: true, write: false, exec: true, priv: true, lpig: false, prgi: 0x1ff, addr: 0x7000,
    });
  });
});

describe('SVA on a fake unit', () => {
  it('the context entry gains DTE, PASIDE and PRE, then a device-selective context-cache invalidation', async () => {
    const { p, unit, fake, alloc } = await setup();
    const sva = await svaDevice(unit);
    const table = await alloc.page();
    await p.write64(unit.rootTable, BigInt(table) | 1n);
    const ctx = table + SID * 32;
    await p.write64(ctx, 0x123_4401n);
    const log: string[] = [];
    await setContextSvaBits(unit, sva, log);
    expect(u64(p, ctx)).toBe(0x123_4401n | SmCtx.DTE | SmCtx.PASIDE | SmCtx.PRE);
    expect(fake.descs[0]).toEqual([0x10_0000_0031n, 0n]); // type 1, device-selective (G 3), SID 0x10 at 47:32
    expect(log[0]).toMatch(/lo 0x1234401 -> 0x123441d \(DTE PASIDE PRE\)/);
  });

  it('bind: the first-stage PASID entry on CR3 with DID 1; no invalidation without caching mode', async () => {
    const { p, unit, fake, alloc } = await setup();
    const sva = await svaDevice(unit);
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
    const { p, unit, fake, alloc } = await setup({ cap: CAP_CM, ecap: ECAP_SVM & ~(1n << 48n) });
    const sva = await svaDevice(unit);
    const bond = await SvaBond.bind(unit, sva, await ProcessMm.create(p, alloc, 'proc'), new PasidAllocator(100));
    expect(u64(p, bond.entry + 8)).toBe(1n);
    expect(fake.take()).toEqual(['7', 'W', '6', 'W']);
  });

  /** A bond over a populated heap page, the queue drained. */
  async function bound(skip: ReadonlySet<SvaSkip> = new Set(), over: Partial<{ atsEnabled: boolean; priEnabled: boolean }> = {}) {
    const env = await setup();
    const sva = await svaDevice(env.unit, over);
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

  it('unbind: P cleared, PASID-cache, PASID-IOTLB, device-TLB (all), the drain batch, entry cleared, PASID freed', async () => {
    const { p, unit, fake, bond, pasids, mm } = await bound();
    const prq = new PageRequestQueue(unit);
    const entry = bond.entry;
    await bond.unbind(pasids, prq);
    const descs = fake.descs.splice(0);
    expect(descs.map(([q0]) => Number(q0 & 0xfn))).toEqual([7, 5, 6, 5, 8, 5, 5, 6, 8, 5, 5]);
    expect(descs[0]![0]).toBe(0x1_0001_0017n);
    expect(descs[2]![0]).toBe(0x1_0001_0026n);
    expect(descs[4]).toEqual([0x1_0010_0008n, 0x7fff_ffff_ffff_f800n]);
    expect(descs[6]![0]).toBe(0x2_0000_0045n);
    expect(descs[9]![0]).toBe(0x2_0000_00c5n);
    for (let q = 0; q < 8; q++) expect(u64(p, entry + q * 8)).toBe(0n);
    expect(pasids.alloc()).toBe(1);
    await mm.munmap(0x1000_0000, PAGE_SIZE);
    expect(fake.descs).toEqual([]);
  });

  it('unbind with a request of the PASID still queued: the handler answers it (Invalid) before the drain batch', async () => {
    const { p, unit, fake, bond, pasids } = await bound();
    const prq = new PageRequestQueue(unit);
    await prq.enable(0xf2, 0xfee0_0000);
    await p.write64(prq.base, 1n | (1n << 8n) | (1n << 32n) | (BigInt(SID) << 16n));
    await p.write64(prq.base + 8, 0x1000_0000n | 1n | 4n | (2n << 3n));
    fake.regs.set(PrqReg.PQT, 0x20n);
    await bond.unbind(pasids, prq);
    const types = fake.take();
    expect(types).toEqual(['7', 'W', '6', 'W', '8', 'W', '9', 'W', '5', '6', '8', '5', 'W']);
    expect(fake.regs.get(PrqReg.PQH)).toBe(0x20n);
    expect(bond.log.join('\n')).toMatch(/still queued: handler run first[\s\S]*PRGI 2 Invalid Request/);
  });

  it('unbind without ECAP.PDS drains without the PD wait; without PRI there is no drain', async () => {
    const env = await setup({ ecap: ECAP_SVM & ~(1n << 42n) });
    const sva = await svaDevice(env.unit);
    const pasids = new PasidAllocator(10);
    const bond = await SvaBond.bind(env.unit, sva, await ProcessMm.create(env.p, env.alloc, 'proc'), pasids);
    await bond.unbind(pasids, new PageRequestQueue(env.unit));
    expect(env.fake.take()).toEqual(['7', 'W', '6', 'W', '8', 'W', '5', '6', '8', 'W']);
    const noPri = await bound(new Set(), { priEnabled: false });
    await noPri.bond.unbind(noPri.pasids, new PageRequestQueue(noPri.unit));
    expect(noPri.fake.take()).toEqual(['7', 'W', '6', 'W', '8', 'W']);
  });
});

describe('the page-request queue', () => {
  /** Writes page request `index` into the ring and moves PQT past it. */
  async function post(p: FakePlatform, fake: FakeUnit, prq: PageRequestQueue, index: number, q0: bigint, q1: bigint): Promise<void> {
    await p.write64(prq.base + index * 32, q0);
    await p.write64(prq.base + index * 32 + 8, q1);
    fake.regs.set(PrqReg.PQT, BigInt((index + 1) * 32));
    fake.regs.set(PrqReg.PRS, BigInt(PrsBit.PPR));
  }

  const req = (rid: number, pasid: number | undefined, addr: number, rw: 'r' | 'w', lpig: boolean, prgi: number, extra = 0n): readonly [bigint, bigint] => [
    1n | (pasid !== undefined ? (1n << 8n) | (BigInt(pasid) << 32n) : 0n) | (BigInt(rid) << 16n) | extra,
    BigInt(addr) | (rw === 'r' ? 1n : 2n) | (lpig ? 4n : 0n) | (BigInt(prgi) << 3n),
  ];

  async function queue() {
    const env = await setup();
    const prq = new PageRequestQueue(env.unit);
    await prq.enable(0xf2, 0xfee0_0000);
    const mm = await ProcessMm.create(env.p, env.alloc, 'proc');
    mm.mmap(0x1000_0000, 4 * PAGE_SIZE, { read: true, write: true }, 'heap');
    env.fake.take();
    return { ...env, prq, mm, resolve: (rid: number, pasid: number) => (rid === SID && pasid === 1 ? mm : undefined) };
  }

  it('enable: event registers, then PQH = PQT = 0 and PQA = ring | PRQ_ORDER, the ring 64 KiB aligned', async () => {
    const { p, fake, prq } = await queue();
    expect(prq.base % 0x1_0000).toBe(0);
    expect(p.trace.filter((l) => l.includes('0xfed900')).slice(-7)).toEqual([
      'w4 0xfed900e4 0xf2', 'w4 0xfed900e8 0xfee00000', 'w4 0xfed900ec 0x0', 'w4 0xfed900e0 0x0',
      'w8 0xfed900c0 0x0', 'w8 0xfed900c8 0x0', `w8 0xfed900d0 0x${(prq.base + 4).toString(16)}`,
    ]);
    await prq.disable();
    expect(fake.regs.get(PrqReg.PQA)).toBe(0n);
  });

  it('a fault in the process: PPR cleared first, handle_mm_fault, PQH = PQT, a Success response with the request\'s PRGI', async () => {
    const { p, fake, prq, mm, resolve } = await queue();
    const [q0, q1] = req(SID, 1, 0x1000_2000, 'w', true, 7);
    await post(p, fake, prq, 0, q0, q1);
    const run = await prq.handle(resolve);
    expect(run.responses).toEqual([{ rid: SID, pasid: 1, prgi: 7, code: 0 }]);
    expect(fake.regs.get(PrqReg.PRS)).toBe(0n);
    expect(fake.regs.get(PrqReg.PQH)).toBe(0x20n);
    expect(fake.descs.splice(0)[0]).toEqual([0x1_0010_0019n, 0x3cn]);
    expect(await mm.walk(0x1000_2000)).toMatchObject({ write: true });
    const order = p.trace.filter((l) => l.includes('0xfed900dc') || l.includes('0xfed900c0')).slice(-2);
    expect(order).toEqual(['w4 0xfed900dc 0x1', 'w8 0xfed900c0 0x20']);
  });

  it('a group answers once, at its last request; errors are sticky; unknown PASIDs are Invalid', async () => {
    const { p, fake, prq, mm, resolve } = await queue();
    const a = req(SID, 1, 0x1000_0000, 'r', false, 3);
    await post(p, fake, prq, 0, a[0], a[1]);
    expect((await prq.handle(resolve)).responses).toEqual([]);
    expect(await mm.walk(0x1000_0000)).toBeUndefined();
    const b = req(SID, 1, 0x5000_0000, 'r', false, 3);
    const c = req(SID, 1, 0x1000_1000, 'w', true, 3);
    await post(p, fake, prq, 1, b[0], b[1]);
    await post(p, fake, prq, 2, c[0], c[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SID, pasid: 1, prgi: 3, code: 1 }]);
    expect(await mm.walk(0x1000_0000)).toBeDefined();
    expect(await mm.walk(0x1000_1000)).toBeUndefined(); // after the failure the group's later requests are not served
    const d = req(SID, 9, 0x1000_0000, 'r', true, 4);
    await post(p, fake, prq, 3, d[0], d[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SID, pasid: 9, prgi: 4, code: 1 }]);
  });

  it('malformed requests are answered Invalid at once (LPIG only); stop markers are dropped', async () => {
    const { p, fake, prq, resolve } = await queue();
    const posts = [
      req(SID, 1, 2 ** 47, 'r', true, 1), // not canonical
      req(SID, 1, 0x1000_0000, 'r', true, 2, 1n << 53n), // privileged
      req(SID, 1, 0x1000_0000, 'r', true, 3, 1n << 52n), // execute with read
      req(SID, 1, 0x1000_0000, 'r', false, 4, 1n << 53n), // privileged, not last: no response
      [1n | (1n << 8n) | (1n << 32n) | (BigInt(SID) << 16n), 0x1000_0000n | 4n | (5n << 3n)] as const, // stop marker
    ];
    for (let i = 0; i < posts.length; i++) await post(p, fake, prq, i, posts[i]![0], posts[i]![1]);
    const run = await prq.handle(resolve);
    expect(run.requests).toHaveLength(5);
    expect(run.responses.map((r) => [r.prgi, r.code])).toEqual([[1, 1], [2, 1], [3, 1]]);
    expect(prq.log.join('\n')).toMatch(/address is not canonical[\s\S]*privileged mode[\s\S]*execution request not supported[\s\S]*stop marker: dropped/);
  });

  it('overflow: PRO is cleared once the queue is empty, partial groups dropped', async () => {
    const { p, fake, prq, resolve } = await queue();
    const a = req(SID, 1, 0x1000_0000, 'r', false, 6);
    await post(p, fake, prq, 0, a[0], a[1]);
    fake.regs.set(PrqReg.PRS, BigInt(PrsBit.PPR | PrsBit.PRO));
    const run = await prq.handle(resolve);
    expect(run.overflow).toBe(true);
    expect(fake.regs.get(PrqReg.PRS)).toBe(0n);
    const b = req(SID, 1, 0x1000_1000, 'r', true, 6);
    await post(p, fake, prq, 1, b[0], b[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SID, pasid: 1, prgi: 6, code: 0 }]);
  });

  it('a response the unit refuses (IQE) is logged, not thrown', async () => {
    const { p, fake, prq, resolve, unit } = await queue();
    const a = req(SID, undefined, 0x1000_0000, 'r', true, 2);
    await post(p, fake, prq, 0, a[0], a[1]);
    const submit = unit.qi.submit.bind(unit.qi);
    unit.qi.submit = async () => { throw new Error('VT-d: invalidation queue error at descriptor 9 (submitted from 9)'); };
    const run = await prq.handle(resolve);
    unit.qi.submit = submit;
    expect(run.responses).toEqual([{ rid: SID, pasid: undefined, prgi: 2, code: 1 }]);
    expect(prq.log.at(-1)).toMatch(/page-group response refused: VT-d: invalidation queue error/);
  });
});
