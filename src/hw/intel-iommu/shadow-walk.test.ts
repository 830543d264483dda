import { describe, expect, it } from 'vitest';
import { IommuPerm } from '../../memory/iommu.js';
import { FS_PRESENT_RW_US, VtdBench } from '../../../test/support/vtd-bench.js';
import { newTranslationConfig, type TranslationConfig } from './resolve.js';
import { Pgtt } from './scalable-context.js';
import { ShadowWalker, walkSpan } from './shadow-walk.js';

const M2 = 0x20_0000;
const G1 = 0x4000_0000;

/** Records what a walk reports. */
function collect(w: ShadowWalker, cfg: TranslationConfig, start: number, end: number): string[] {
  const out: string[] = [];
  w.walk(cfg, start, end, {
    leaf: (iova, size, t, perm) => out.push(`leaf 0x${iova.toString(16)}+0x${size.toString(16)}->0x${t.toString(16)} ${perm}`),
    hole: (iova, size) => out.push(`hole 0x${iova.toString(16)}+0x${size.toString(16)}`),
  });
  return out;
}

function ssConfig(root: number): TranslationConfig {
  const c = newTranslationConfig();
  c.pgtt = Pgtt.SecondStage;
  c.aw = 2;
  c.ssLevels = 4;
  c.ssRoot = root;
  return c;
}

describe('ShadowWalker, second stage', () => {
  it('reports 4 KiB / 2 MiB / 1 GiB leaves with stacked permissions and whole-entry holes', () => {
    const b = new VtdBench();
    const top = b.allocPage();
    b.map(top, 4, 0x1000, 0x50_0000, 1);
    b.map(top, 4, M2, 0x60_0000, 3, 2);
    b.map(top, 4, G1, 0x8000_0000, 2, 3);
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    const all = collect(w, ssConfig(top), 0, 2 * G1).filter((e) => e.startsWith('leaf'));
    expect(all).toEqual(['leaf 0x1000+0x1000->0x500000 1', 'leaf 0x200000+0x200000->0x600000 3', 'leaf 0x40000000+0x40000000->0x80000000 2']);
    // A range inside one 4 KiB hole: that entry alone, whole.
    expect(collect(w, ssConfig(top), 0x2800, 0x2900)).toEqual(['hole 0x2000+0x1000']);
    // An intermediate entry with R only: leaves below it lose W.
    const l3 = b.pteAddr(top, 4, 0, 3);
    b.poke64(l3, (b.peek64(l3) & ~3n) | 1n);
    expect(collect(w, ssConfig(top), M2, M2 + 1)).toEqual([`leaf 0x200000+0x200000->0x600000 ${IommuPerm.Read}`]);
  });

  it('entries the translation would fault on are holes: reserved bits, output in the interrupt window', () => {
    const b = new VtdBench();
    const top = b.allocPage();
    b.map(top, 4, 0x1000, 0xfee0_0000);
    b.map(top, 4, 0x2000, 0x50_0000);
    b.poke64(b.pteAddr(top, 4, 0x2000, 1), b.peek64(b.pteAddr(top, 4, 0x2000, 1)) | (1n << 8n) | (1n << 9n) | (1n << 10n) | (1n << 11n));
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    expect(collect(w, ssConfig(top), 0x1000, 0x3000)).toEqual(['hole 0x1000+0x1000', 'hole 0x2000+0x1000']);
  });

  it('walks only below the address width', () => {
    const b = new VtdBench();
    const c = ssConfig(b.allocPage());
    expect(walkSpan(b.iommu.walkStageRules, c)).toBe(2 ** 48);
    c.aw = 1;
    expect(walkSpan(b.iommu.walkStageRules, c)).toBe(2 ** 39);
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    expect(collect(w, c, 2 ** 39, 2 ** 40)).toEqual([]);
  });
});

describe('ShadowWalker, first stage', () => {
  it('needs P and US at every level, stacks RW, reads the lower canonical half', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true } });
    const top = b.allocPage();
    b.mapFs(top, 4, 0x1000, 0x50_0000);
    b.mapFs(top, 4, 0x2000, 0x51_0000, FS_PRESENT_RW_US & ~2);
    b.mapFs(top, 4, 0x3000, 0x52_0000, FS_PRESENT_RW_US & ~4);
    b.mapFs(top, 4, M2, 0x60_0000, FS_PRESENT_RW_US, 2);
    const c = newTranslationConfig();
    c.pgtt = Pgtt.FirstStage;
    c.aw = 2;
    c.fsLevels = 4;
    c.fsRoot = top;
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    expect(walkSpan(b.iommu.walkStageRules, c)).toBe(2 ** 47);
    expect(collect(w, c, 0x1000, 0x4000)).toEqual(['leaf 0x1000+0x1000->0x500000 3', 'leaf 0x2000+0x1000->0x510000 1', 'hole 0x3000+0x1000']);
    expect(collect(w, c, M2, M2 + 0x1000)).toEqual(['leaf 0x200000+0x200000->0x600000 3']);
    // The walk writes no Accessed bit.
    expect(b.peek64(top) & 0x20n).toBe(0n);
  });
});
