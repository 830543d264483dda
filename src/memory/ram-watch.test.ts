/**
 * RAM write watchers (the invalidation sanitizer's view of stores): every
 * write method calls each watcher with the written range before the bytes
 * change; removed watchers are not called.
 */
import { describe, expect, it } from 'vitest';
import { createRam } from './ram-backend.js';
import type { ChunkedRam } from './ram.js';

describe('ChunkedRam write watchers', () => {
  it('see each write, before it lands, with its offset and length', () => {
    const ram = createRam(1 << 20, 'ts');
    const seen: [number, number, number][] = [];
    const w = { willWrite: (r: ChunkedRam, off: number, len: number) => seen.push([off, len, r.readU8(off)]) };
    ram.addWatcher(w);
    ram.addWatcher(w); // once per watcher
    ram.writeU8(0x10, 1);
    ram.writeU16(0x20, 0x202);
    ram.writeU32(0x30, 0x3030303);
    ram.copyIn(0x40, new Uint8Array([4, 4]));
    ram.copyInAt(0x50, new Uint8Array([0, 5, 5]), 1, 2);
    ram.copyWithin(0x60, 0x40, 2);
    ram.fill(0x70, 3, 7);
    expect(seen).toEqual([[0x10, 1, 0], [0x20, 2, 0], [0x30, 4, 0], [0x40, 2, 0], [0x50, 2, 0], [0x60, 2, 0], [0x70, 3, 0]]);
    ram.writeU8(0x10, 9);
    expect(seen.at(-1)).toEqual([0x10, 1, 1]); // the old byte is still there
    ram.removeWatcher(w);
    ram.writeU8(0x10, 2);
    expect(seen).toHaveLength(8);
  });
});
