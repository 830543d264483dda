import { describe, expect, it } from 'vitest';
import { IommuPerm } from '../../memory/iommu.js';
import { FS_PRESENT_RW_US, VtdBench } from '../../../test/support/vtd-bench.js';
import { newTranslationConfig, type TranslationConfig } from './resolve.js';
import { Pgtt } from './scalable-context.js';
import { ShadowWalker, walkable, walkSpan } from './shadow-walk.js';

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

describe('ShadowWalker, edges the translation draws', () => {
  it('walkable: second and first stage only', () => {
    const c = newTranslationConfig();
    for (const [pgtt, want] of [[Pgtt.SecondStage, true], [Pgtt.FirstStage, true], [Pgtt.PassThrough, false], [Pgtt.Nested, false]] as const) {
      c.pgtt = pgtt;
      expect(walkable(c)).toBe(want);
    }
  });

  it('first-stage span: the smaller of 30 + 9 * AW and aw-bits, halved; span() is walkSpan', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true } });
    const c = newTranslationConfig();
    c.pgtt = Pgtt.FirstStage;
    c.aw = 1;
    expect(walkSpan(b.iommu.walkStageRules, c)).toBe(2 ** 38);
    c.aw = 3;
    expect(walkSpan(b.iommu.walkStageRules, c)).toBe(2 ** 47);
    expect(new ShadowWalker(b.memory, b.iommu.walkStageRules).span(c)).toBe(2 ** 47);
    const s = ssConfig(0);
    s.aw = 1;
    expect(new ShadowWalker(b.memory, b.iommu.walkStageRules).span(s)).toBe(2 ** 39);
  });

  it('a page ending just below the interrupt window is a leaf', () => {
    const b = new VtdBench();
    const top = b.allocPage();
    b.map(top, 4, 0x1000, 0xfedf_f000);
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    expect(collect(w, ssConfig(top), 0x1000, 0x2000)).toEqual(['leaf 0x1000+0x1000->0xfedff000 3']);
  });

  it('second stage: reserved bits by level (large leaves, PS where it is not a size, high dword)', () => {
    const b = new VtdBench();
    const top = b.allocPage();
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    const or = (a: number, bits: bigint): void => b.poke64(a, b.peek64(a) | bits);
    b.map(top, 4, M2, 0x60_0000, 3, 2);
    or(b.pteAddr(top, 4, M2, 2), 1n << 13n); // bit 13 of a 2 MiB leaf is reserved
    b.map(top, 4, G1, 0x8000_0000, 3, 3);
    or(b.pteAddr(top, 4, G1, 3), 1n << 13n); // and of a 1 GiB leaf
    b.map(top, 4, 0x1000, 0x50_0000);
    or(b.pteAddr(top, 4, 0x1000, 1), (1n << 7n) | (1n << 11n)); // level 1: bit 7 is no size, bit 11 reserved
    b.map(top, 4, 0x2000, 0x51_0000);
    or(b.pteAddr(top, 4, 0x2000, 1), 1n << 51n); // above aw-bits 48
    b.map(top, 4, 0x3000, 0x52_0000);
    expect(collect(w, ssConfig(top), 0x1000, 0x4000)).toEqual(['hole 0x1000+0x1000', 'hole 0x2000+0x1000', 'leaf 0x3000+0x1000->0x520000 3']);
    expect(collect(w, ssConfig(top), M2, M2 + 1)).toEqual(['hole 0x200000+0x200000']);
    expect(collect(w, ssConfig(top), G1, G1 + 1)).toEqual(['hole 0x40000000+0x40000000']);
    // PS at level 4 is reserved, not a 512 GiB page.
    // (Its output lies clear of the interrupt window, so only the reserved bit makes it a hole.)
    const hiTop = b.allocPage();
    b.poke64(hiTop + 8, 0x1_0000_0000n | (1n << 7n) | 3n);
    expect(collect(w, ssConfig(hiTop), 2 ** 39, 2 ** 39 + 1)).toEqual(['hole 0x8000000000+0x8000000000']);
  });

  it('a table the walk cannot read is a hole (second and first stage)', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true } });
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    const top = b.allocPage();
    b.map(top, 4, 0x1000, 0x50_0000);
    const l2 = b.pteAddr(top, 4, 0x1000, 2);
    b.poke64(l2, 0x1_0000_0000n | 3n); // the level-1 table lies outside RAM
    expect(collect(w, ssConfig(top), 0x1000, 0x2000)).toEqual(['hole 0x1000+0x1000']);
    const fsTop = b.allocPage();
    b.mapFs(fsTop, 4, 0x1000, 0x50_0000);
    const f2 = b.pteAddr(fsTop, 4, 0x1000, 2);
    b.poke64(f2, 0x1_0000_0000n | BigInt(FS_PRESENT_RW_US));
    const c = newTranslationConfig();
    c.pgtt = Pgtt.FirstStage;
    c.aw = 2;
    c.fsLevels = 4;
    c.fsRoot = fsTop;
    expect(collect(w, c, 0x1000, 0x2000)).toEqual(['hole 0x1000+0x1000']);
  });

  it('first stage: not present, reserved high bits, reserved bits of a large leaf are holes; a 2 MiB leaf drops PAT', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true } });
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    const top = b.allocPage();
    const or = (a: number, bits: bigint): void => b.poke64(a, b.peek64(a) | bits);
    b.mapFs(top, 4, 0x1000, 0x50_0000, FS_PRESENT_RW_US & ~1); // US without P
    b.mapFs(top, 4, 0x2000, 0x51_0000);
    or(b.pteAddr(top, 4, 0x2000, 1), 1n << 51n); // above aw-bits 48
    b.mapFs(top, 4, M2, 0x60_0000, FS_PRESENT_RW_US, 2);
    or(b.pteAddr(top, 4, M2, 2), 1n << 12n); // PAT of a 2 MiB leaf: not an address bit
    b.mapFs(top, 4, 2 * M2, 0x80_0000, FS_PRESENT_RW_US, 2);
    or(b.pteAddr(top, 4, 2 * M2, 2), 1n << 13n); // reserved in a 2 MiB leaf
    const c = newTranslationConfig();
    c.pgtt = Pgtt.FirstStage;
    c.aw = 2;
    c.fsLevels = 4;
    c.fsRoot = top;
    expect(collect(w, c, 0x1000, 0x3000)).toEqual(['hole 0x1000+0x1000', 'hole 0x2000+0x1000']);
    expect(collect(w, c, M2, 3 * M2)).toEqual(['leaf 0x200000+0x200000->0x600000 3', 'hole 0x400000+0x200000']);
  });
});

describe('ShadowWalker, all-ones entries', () => {
  it('first stage at aw-bits 57 (no reserved high bits): an all-ones entry is a hole, one with a clear high dword is not', () => {
    const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true, 'x-fs5lp': true, 'aw-bits': 57 } });
    const w = new ShadowWalker(b.memory, b.iommu.walkStageRules);
    const top = b.allocPage();
    b.mapFs(top, 4, 0x1000, 0x50_0000);
    b.mapFs(top, 4, 0x2000, 0x50_0000);
    b.mapFs(top, 4, 0x3000, 0x50_0000);
    b.poke64(b.pteAddr(top, 4, 0x1000, 1), 0xffff_ffff_ffff_ffffn);
    b.poke64(b.pteAddr(top, 4, 0x2000, 1), 0xffff_ffffn);
    b.poke64(b.pteAddr(top, 4, 0x3000, 1), 0xffff_ffff_0050_0007n);
    const c = newTranslationConfig();
    c.pgtt = Pgtt.FirstStage;
    c.aw = 2;
    c.fsLevels = 4;
    c.fsRoot = top;
    expect(collect(w, c, 0x1000, 0x4000)).toEqual(['hole 0x1000+0x1000', 'leaf 0x2000+0x1000->0xfffff000 3', 'leaf 0x3000+0x1000->0xfffff00500000 3']);
  });
});
