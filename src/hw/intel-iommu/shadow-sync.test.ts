import { describe, expect, it } from 'vitest';
import { IommuNotifier, IommuNotifierFlag, type IommuEvent } from '../../memory/iommu-notifier.js';
import { NO_PASID } from '../../memory/iommu.js';
import { FakeRequester } from '../../../test/support/vtd-bench.js';
import { alignedPow2, ShadowSpace } from './shadow-sync.js';
import { newTranslationConfig } from './resolve.js';
import type { ShadowWalker } from './shadow-walk.js';

const K4 = 0x1000;
const M2 = 0x20_0000;

function space(flags: number, window?: { start: number; end: number }): { s: ShadowSpace; seen: string[] } {
  const s = new ShadowSpace(new FakeRequester(0, 8), NO_PASID, 39);
  const n = new IommuNotifier(flags, window);
  const seen: string[] = [];
  const f = (e: IommuEvent): void => void seen.push(`${e.type} 0x${e.iova.toString(16)}+0x${e.size.toString(16)}`);
  n.on('map', f);
  n.on('unmap', f);
  s.add(n);
  return { s, seen };
}

describe('ShadowSpace', () => {
  it('alignedPow2 is QEMU dma_aligned_pow2_mask + 1', () => {
    expect(alignedPow2(0, 2 ** 39, 39)).toBe(2 ** 39);
    expect(alignedPow2(0x3000, 0x10000, 39)).toBe(0x1000);
    expect(alignedPow2(0x4000, 0x10000, 39)).toBe(0x4000);
    expect(alignedPow2(0x8000, 0xc000, 39)).toBe(0x4000);
  });

  it('unmapAll: one UNMAP per aligned piece of each window below 2^aw-bits, whatever was mapped', () => {
    const { s, seen } = space(IommuNotifierFlag.Unmap, { start: 0x3000, end: 0x10000 });
    s.unmapAll();
    expect(seen).toEqual(['unmap 0x3000+0x1000', 'unmap 0x4000+0x4000', 'unmap 0x8000+0x8000']);
    const whole = space(IommuNotifierFlag.IotlbEvents);
    whole.s.unmapAll();
    expect(whole.seen).toEqual(['unmap 0x0+0x8000000000']);
    expect(whole.s.shadowing).toBe(true);
  });

  it('the visitor: new leaf MAP; changed leaf UNMAP then MAP over the larger range; hole UNMAP once', () => {
    const { s, seen } = space(IommuNotifierFlag.IotlbEvents);
    s.leaf(0, M2, 0x40_0000, 3);
    s.leaf(0, M2, 0x40_0000, 3);
    expect(seen).toEqual(['map 0x0+0x200000']);
    s.leaf(K4, K4, 0x9000, 1); // a page inside the 2 MiB mapping: the whole old mapping goes
    expect(seen.slice(1)).toEqual(['unmap 0x0+0x200000', 'map 0x1000+0x1000']);
    s.leaf(2 * K4, K4, 0xa000, 1);
    s.hole(0, M2); // both pages, one UNMAP
    expect(seen.slice(3)).toEqual(['map 0x2000+0x1000', 'unmap 0x0+0x200000']);
    s.hole(0, M2);
    expect(seen).toHaveLength(5);
    expect(s.mappings()).toEqual([]);
  });

  it('without a MAP notifier it keeps no shadow and reports ranges as they are', () => {
    const { s, seen } = space(IommuNotifierFlag.Unmap);
    expect(s.shadowing).toBe(false);
    s.unmapRange(0x4000, 0x8000);
    s.unmapRange(null, 0);
    expect(seen).toEqual(['unmap 0x4000+0x4000', 'unmap 0x0+0x10000000000000000']);
  });

  it('alignedPow2 of an empty range is 1', () => {
    expect(alignedPow2(0x3000, 0x3000, 39)).toBe(1);
  });

  it('without a MAP notifier: no mappings, sync does nothing; unmapRange(null) reports each window', () => {
    const { s, seen } = space(IommuNotifierFlag.Unmap, { start: 0x1000, end: 0x3000 });
    expect(s.mappings()).toEqual([]);
    s.sync(fakeWalker(0), newTranslationConfig(), 0, K4);
    expect(seen).toEqual([]);
    s.unmapRange(null, 0);
    expect(seen).toEqual(['unmap 0x1000+0x2000']);
  });

  it('sync: past the walker span the rest of the range is one hole', () => {
    const { s, seen } = space(IommuNotifierFlag.IotlbEvents);
    s.leaf(0x8000, K4, 0x50_0000, 3);
    s.leaf(0x12000, K4, 0x51_0000, 3);
    seen.length = 0;
    s.sync(fakeWalker(0x4000), newTranslationConfig(), 0, 0x10000);
    expect(seen).toEqual(['unmap 0x4000+0xc000']);
    expect(s.mappings().map((m) => m.iova)).toEqual([0x12000]);
    // A span covering the range leaves it alone.
    s.sync(fakeWalker(0x20000), newTranslationConfig(), 0x10000, 0x20000);
    expect(seen).toHaveLength(1);
  });
});

/** A walker whose tables are empty and span [0, span). */
function fakeWalker(span: number): ShadowWalker {
  return { walk: () => {}, span: () => span } as unknown as ShadowWalker;
}
