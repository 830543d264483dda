/**
 * process-mm.ts against a FakePlatform: the x86 page table as the CPU
 * walks it, handle_mm_fault, munmap and its notifier, CPU loads and stores.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../alloc.js';
import { fakeSvaUnit, u64 } from '../../../test/support/guest-fakes/fake-sva-unit.js';
import { LARGE_PAGE } from './pagetable.js';
import { ProcessMm } from './process-mm.js';

describe('ProcessMm: an x86 page table in guest RAM', () => {
  it('populated pages: leaves P|RW|US|A|D, tables P|RW|US|A, the CPU walk finds them', async () => {
    const { p, alloc } = await fakeSvaUnit();
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
    const { p, alloc } = await fakeSvaUnit();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    const phys = await mm.mapHuge(0x7f12_3440_0000, { read: true, write: true }, 'huge');
    expect(phys % LARGE_PAGE).toBe(0);
    expect(await mm.walk(0x7f12_3441_2345)).toEqual({ phys: phys + 0x1_2345, write: true, user: true, pageSize: LARGE_PAGE });
    await expect(mm.mapHuge(0x7f12_3450_1000, { read: true, write: true }, 'x')).rejects.toThrow(/2 MiB/);
  });

  it('handle_mm_fault: maps inside a VMA, refuses outside one and accesses the VMA does not allow', async () => {
    const { p, alloc } = await fakeSvaUnit();
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
    const { p, alloc } = await fakeSvaUnit();
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
    const { p, alloc } = await fakeSvaUnit();
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
    const { p, alloc } = await fakeSvaUnit();
    const mm = await ProcessMm.create(p, alloc, 'proc');
    mm.mmap(0x1000_0000, PAGE_SIZE, { read: true, write: true }, 'a');
    expect(() => mm.mmap(0x1000_0000, PAGE_SIZE, { read: true, write: true }, 'b')).toThrow(/overlaps/);
    expect(() => mm.mmap(0x1000_0800, PAGE_SIZE, { read: true, write: true }, 'c')).toThrow(/bad range/);
    expect(() => mm.mmap(2 ** 47 - PAGE_SIZE, 2 * PAGE_SIZE, { read: true, write: true }, 'd')).toThrow(/bad range/);
  });
});
