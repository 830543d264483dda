import { describe, expect, it } from 'vitest';
import { IovaTree } from './iova-tree.js';

const K4 = 0x1000;
const M2 = 0x20_0000;

describe('IovaTree', () => {
  it('keeps mappings sorted and finds exact ones', () => {
    const t = new IovaTree();
    t.insert({ iova: 3 * K4, size: K4, translated: 0x9000, perm: 3 });
    t.insert({ iova: K4, size: K4, translated: 0x8000, perm: 1 });
    t.insert({ iova: M2, size: M2, translated: 0x40_0000, perm: 2 });
    expect(t.entries().map((m) => m.iova)).toEqual([K4, 3 * K4, M2]);
    expect(t.count).toBe(3);
    expect(t.has(K4, K4, 0x8000, 1)).toBe(true);
    expect(t.has(K4, K4, 0x8000, 3)).toBe(false);
    expect(t.has(K4, K4, 0x9000, 1)).toBe(false);
    expect(t.has(2 * K4, K4, 0x8000, 1)).toBe(false);
    expect(t.overlaps(2 * K4, 3 * K4)).toBe(false);
    expect(t.overlaps(2 * K4, 3 * K4 + 1)).toBe(true);
    expect(t.overlaps(M2 + M2, M2 * 3)).toBe(false);
  });

  it('removes what overlaps and returns the covered range', () => {
    const t = new IovaTree();
    for (let i = 0; i < 4; i++) t.insert({ iova: i * K4, size: K4, translated: 0, perm: 3 });
    t.insert({ iova: M2, size: M2, translated: 0, perm: 3 });
    expect(t.remove(0x10_0000, 0x10_1000)).toBeNull();
    // A hole holding several pages: the hole's range.
    expect(t.remove(0, M2)).toEqual({ start: 0, end: M2 });
    expect(t.count).toBe(1);
    // A page inside a larger mapping: the mapping's range.
    expect(t.remove(M2 + K4, M2 + 2 * K4)).toEqual({ start: M2, end: 2 * M2 });
    expect(t.count).toBe(0);
  });

  it('widens a range to the mappings it overlaps', () => {
    const t = new IovaTree();
    t.insert({ iova: 0, size: M2, translated: 0, perm: 3 });
    t.insert({ iova: 2 * M2, size: K4, translated: 0, perm: 3 });
    const r = { start: K4, end: 2 * K4 };
    t.widen(r);
    expect(r).toEqual({ start: 0, end: M2 });
    const r2 = { start: M2 + K4, end: 2 * M2 + 1 };
    t.widen(r2);
    expect(r2).toEqual({ start: M2 + K4, end: 2 * M2 + K4 });
    t.clear();
    expect(t.entries()).toEqual([]);
  });

  it('has() needs the same start; widen() leaves a range that only touches a mapping', () => {
    const t = new IovaTree();
    t.insert({ iova: 0, size: M2, translated: 0x40_0000, perm: 3 });
    t.insert({ iova: M2 + K4, size: K4, translated: 0, perm: 3 });
    expect(t.has(K4, M2, 0x40_0000, 3)).toBe(false);
    const r = { start: M2, end: M2 + K4 };
    t.widen(r);
    expect(r).toEqual({ start: M2, end: M2 + K4 });
  });
});
