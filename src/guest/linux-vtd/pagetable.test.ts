import { describe, expect, it } from 'vitest';
import { GuestAllocator, PAGE_SIZE } from '../alloc.js';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { FIRST_STAGE, FsPte, IoPageTable, IovaAllocator, LARGE_PAGE, Pte } from './pagetable.js';

describe('IovaAllocator', () => {
  it('allocates top-down, size-aligned, below the limit', () => {
    const a = new IovaAllocator(2 ** 32);
    expect(a.alloc(PAGE_SIZE)).toBe(2 ** 32 - PAGE_SIZE);
    expect(a.alloc(3 * PAGE_SIZE)).toBe(2 ** 32 - 8 * PAGE_SIZE);
    expect(a.alloc(PAGE_SIZE, 2 ** 28)).toBe(2 ** 28 - PAGE_SIZE);
  });
  it('never hands out the interrupt window or page 0, and reuses freed ranges', () => {
    const a = new IovaAllocator(0xfef0_0000 + 0x2000);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push(a.alloc(PAGE_SIZE)!);
    expect(got).toEqual([0xfef0_1000, 0xfef0_0000, 0xfedf_f000]);
    a.free(got[0]!);
    expect(a.alloc(PAGE_SIZE)).toBe(0xfef0_1000);
    const tiny = new IovaAllocator(2 * PAGE_SIZE, []);
    expect(tiny.alloc(PAGE_SIZE)).toBe(PAGE_SIZE);
    expect(tiny.alloc(PAGE_SIZE)).toBeUndefined();
  });
});

describe('IoPageTable (second stage)', () => {
  async function table(levels = 3): Promise<[FakePlatform, IoPageTable]> {
    const p = new FakePlatform();
    const pt = await new IoPageTable(p, new GuestAllocator(p, 0x100000, 0x200000), levels).init();
    return [p, pt];
  }
  it('builds levels with R|W intermediates and leaf permissions', async () => {
    const [p, pt] = await table();
    await pt.map(0x4000_1000, 0x5000, PAGE_SIZE, { read: true, write: false });
    expect(pt.tablePages).toBe(3);
    const l3 = await p.read64(pt.root + 1 * 8); // 0x40001000 >> 30 = 1
    expect(l3 & 3n).toBe(3n);
    const l2 = await p.read64(Number(l3 & Pte.ADDR_MASK) + 0 * 8);
    const leaf = await p.read64(Number(l2 & Pte.ADDR_MASK) + 1 * 8);
    expect(leaf).toBe(0x5000n | Pte.R);
    expect(await pt.lookup(0x4000_1234)).toBe(0x5234);
    await pt.unmap(0x4000_1000, PAGE_SIZE);
    expect(await pt.lookup(0x4000_1234)).toBeUndefined();
  });
  it('maps scattered pages contiguously and 2 MiB superpages with PS', async () => {
    const [p, pt] = await table(4);
    await pt.mapPages(0x10000, [0x9000, 0x3000, 0x7000], { read: true, write: true });
    expect(await pt.lookup(0x11008)).toBe(0x3008);
    expect(await pt.lookup(0x12fff)).toBe(0x7fff);
    await pt.mapLarge(LARGE_PAGE * 4, LARGE_PAGE * 4, LARGE_PAGE, { read: true, write: true });
    const l4 = await p.read64(pt.root);
    const l3 = await p.read64(Number(l4 & Pte.ADDR_MASK));
    const pde = await p.read64(Number(l3 & Pte.ADDR_MASK) + 4 * 8);
    expect(pde).toBe(BigInt(LARGE_PAGE * 4) | Pte.PS | 3n);
  });
});

describe('IoPageTable (first stage, x86 format)', () => {
  async function table(): Promise<[FakePlatform, IoPageTable]> {
    const p = new FakePlatform();
    const pt = await new IoPageTable(p, new GuestAllocator(p, 0x100000, 0x200000), 4, FIRST_STAGE).init();
    return [p, pt];
  }
  const walk = async (p: FakePlatform, pt: IoPageTable, iova: number, down = 3): Promise<bigint[]> => {
    const out: bigint[] = [];
    let table = pt.root;
    for (let level = 4; level > 4 - down; level--) {
      const e = await p.read64(table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8);
      out.push(e);
      table = Number(e & Pte.ADDR_MASK);
    }
    return out;
  };
  it('sets P|RW|US|A on tables; leaves P|US|A, plus RW|D only when writable', async () => {
    const [p, pt] = await table();
    await pt.map(0x4000_1000, 0x5000, PAGE_SIZE, { read: true, write: false });
    await pt.map(0x4000_2000, 0x6000, PAGE_SIZE, { read: false, write: true });
    const [l4, l3, l2] = await walk(p, pt, 0x4000_1000);
    const dir = FsPte.P | FsPte.RW | FsPte.US | FsPte.A;
    for (const e of [l4!, l3!, l2!]) expect(e & 0xfffn).toBe(dir);
    const l1 = Number(l2! & Pte.ADDR_MASK);
    expect(await p.read64(l1 + 1 * 8)).toBe(0x5000n | FsPte.P | FsPte.US | FsPte.A);
    // A write-only DMA mapping is still present (first stage cannot express write-only).
    expect(await p.read64(l1 + 2 * 8)).toBe(0x6000n | FsPte.P | FsPte.RW | FsPte.US | FsPte.A | FsPte.D);
    expect(await pt.lookup(0x4000_2010)).toBe(0x6010);
    await pt.unmap(0x4000_2000, PAGE_SIZE);
    expect(await pt.lookup(0x4000_2010)).toBeUndefined();
  });
  it('maps 2 MiB leaves with PS at level 2', async () => {
    const [p, pt] = await table();
    await pt.mapLarge(LARGE_PAGE * 3, LARGE_PAGE * 5, LARGE_PAGE, { read: true, write: true });
    const [, , pde] = await walk(p, pt, LARGE_PAGE * 3);
    expect(pde).toBe(BigInt(LARGE_PAGE * 5) | FsPte.PS | FsPte.P | FsPte.RW | FsPte.US | FsPte.A | FsPte.D);
  });
});
