/**
 * VT-d translation cost: an IOTLB-hit translate, 3- and 4-level miss walks
 * (IOTLB flushed before every translate), a miss walk ending in a 2 MiB
 * leaf, and device DMA through the IOMMU (IOTLB warm) compared with the same
 * DMA without an IOMMU: 4 KiB and 64 KiB over 4 KiB pages (scattered, so
 * every page is its own piece), 64 KiB over 4 KiB pages that are contiguous
 * in guest-physical memory too, and 1 MiB inside one 2 MiB page.  The data
 * pages hold bytes, so every DMA figure is a real copy (not a zero fill of
 * never-written sparse RAM).
 *
 * Scalable mode (fsts=on, PGTT first stage, the same layout in 4-level
 * first-stage tables): a PASID-keyed IOTLB hit, the 4-level first-stage
 * walk (the walk stage alone, against the second-stage walk), the whole
 * miss (IOTLB flushed: the PASID directory and entry are resolved again,
 * from the requester's memo while guest RAM is unchanged, as here, else
 * from memory; then the walk), and 4 KiB / 64 KiB DMA; each
 * `*Ratio` figure is the scalable
 * figure's cost relative to its legacy counterpart (4-level tables) measured
 * in the same run, in alternating rounds: the median of the per-round
 * legacy rate / scalable rate (1.0 is as fast, 1.3 is 30% slower).
 * `sanitizedDma4k(Ratio)` is the 4 KiB DMA with the invalidation sanitizer
 * attached (x-sanitize=on), against the same DMA without it (legacy, 4-level):
 * what the sanitizer costs when on.  That it costs nothing when off is
 * measured against the commit before it: scripts/bench-compare.mjs.
 */
import { DmaSpace } from '../src/memory/dma-space.js';
import { DmaAccess, newIotlbEntry } from '../src/memory/iommu.js';
import { Gcmd } from '../src/hw/intel-iommu/reg-layout.js';
import { Pgtt } from '../src/hw/intel-iommu/scalable-context.js';
import { newWalkResult, walkSecondStage } from '../src/hw/intel-iommu/page-walk.js';
import { walkFirstStage } from '../src/hw/intel-iommu/first-stage-walk.js';
import { ctxEntry, FS_PRESENT_RW_US, VtdBench } from '../test/support/vtd-bench.js';
import { Sanitizer } from '../src/monitor/sanitizer.js';
import { type Bench, type Figures, perSecond, round3 } from './bench.js';
import { iova as iovaOf } from '../src/memory/address.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const MB = 1e6;
/** Guest-physical base of the data pages (2 MiB aligned). */
const DATA = 0x200_0000;
/** 4 KiB pages mapped at IOVA 0 (onto DATA, shuffled). */
const SMALL_PAGES = 16;
/** IOVA of 16 4 KiB pages mapped contiguously onto DATA. */
const CONTIG_IOVA = 0x10_0000;
/** IOVA of the 2 MiB leaf (onto DATA). */
const LARGE_IOVA = 0x4000_0000;
const LARGE_PAGE = 2 * MiB;
/** Leaf level of a 2 MiB page in the test-support table builder. */
const LEAF_2M = 2;
/** PTE flags R|W. */
const RW = 3;
/** Byte the data pages are filled with. */
const DATA_BYTE = 0x5a;
/** Translations per timed call. */
const CALLS = 1 << 12;
/** Alternating rounds of a legacy / scalable pair, and the time of each measurement. */
const PAIR_ROUNDS = 9;
const PAIR_MS = 60;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * A legacy figure and its scalable counterpart measured in alternating
 * rounds (so load changes hit both alike): the medians of each, and the
 * median of the per-round ratios legacy / scalable (the cost of scalable).
 */
function paired(legacy: (ms: number) => number, scalable: (ms: number) => number): { legacy: number; scalable: number; ratio: number } {
  const l: number[] = [];
  const f: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < PAIR_ROUNDS; i++) {
    const a = legacy(PAIR_MS);
    const b = scalable(PAIR_MS);
    l.push(a);
    f.push(b);
    r.push(a / b);
  }
  return { legacy: median(l), scalable: median(f), ratio: median(r) };
}

/** AW field of the context entry: 1 = 3-level (39-bit), 2 = 4-level (48-bit) tables. */
function unit(aw: number) {
  const b = new VtdBench({ props: { 'aw-bits': aw === 1 ? 39 : 48 } });
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, 1, aw));
  for (let i = 0; i < SMALL_PAGES; i++) b.map(top, aw + 2, i * 0x1000, DATA + ((i * 5) % SMALL_PAGES) * 0x1000);
  for (let i = 0; i < SMALL_PAGES; i++) b.map(top, aw + 2, CONTIG_IOVA + i * 0x1000, DATA + i * 0x1000);
  b.map(top, aw + 2, LARGE_IOVA, DATA, RW, LEAF_2M);
  b.memory.fill(DATA, LARGE_PAGE, DATA_BYTE);
  b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  return { b, t: b.iommu.translatorFor(req), dma, top };
}

/** First-stage levels (4-level, 48-bit). */
const FS_LEVELS = 4;

/** The same mappings as `unit(2)`, in scalable mode: PASID 0 of the device with PGTT first stage. */
function scalableUnit() {
  const b = new VtdBench({ props: { 'scalable-mode': true, fsts: true } });
  const root = b.allocPage();
  const dir = b.allocPage();
  const top = b.allocPage();
  b.setScalableContext(root, 0, 8, dir);
  b.setPasidEntry(dir, 0, { pgtt: Pgtt.FirstStage, did: 1, aw: 2, fs: top });
  for (let i = 0; i < SMALL_PAGES; i++) b.mapFs(top, FS_LEVELS, i * 0x1000, DATA + ((i * 5) % SMALL_PAGES) * 0x1000);
  for (let i = 0; i < SMALL_PAGES; i++) b.mapFs(top, FS_LEVELS, CONTIG_IOVA + i * 0x1000, DATA + i * 0x1000);
  b.mapFs(top, FS_LEVELS, LARGE_IOVA, DATA, FS_PRESENT_RW_US, LEAF_2M);
  b.memory.fill(DATA, LARGE_PAGE, DATA_BYTE);
  b.setRoot(root, true);
  b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  return { b, t: b.iommu.translatorFor(req), dma, top };
}

function dmaRate(dma: DmaSpace, iova: number, size: number, ms?: number): number {
  const buf = new Uint8Array(size);
  return round3(perSecond(() => (dma.read(iova, buf), buf[0]!), size, ms) / MB);
}

/** The IOMMU bench module. */
export const iommuBench: Bench = {
  name: 'iommu',
  run(): Figures {
    const e = newIotlbEntry();
    const three = unit(1);
    const four = unit(2);
    const sm = scalableUnit();
    const hitRate = (u: { t: ReturnType<typeof unit>['t'] }, ms?: number) =>
      perSecond(() => {
        let s = 0;
        for (let i = 0; i < CALLS; i++) s += u.t.translate(iovaOf((i & (SMALL_PAGES - 1)) * 0x1000), DmaAccess.Read, e) ? 1 : 0;
        return s;
      }, CALLS, ms);
    const hit = hitRate(three);
    const miss = (u: { b: VtdBench; t: ReturnType<typeof unit>['t'] }, iova: number, ms?: number) =>
      perSecond(() => {
        u.b.iommu.iotlb.clear();
        return u.t.translate(iovaOf(iova), DmaAccess.Read, e) ? 1 : 0;
      }, 1, ms);
    const plain = new DmaSpace(three.b.memory, () => true, () => null);
    const mops = (n: number) => ({ value: round3(n / 1e6), unit: 'Mops/s' });
    const mbps = (n: number) => ({ value: n, unit: 'MB/s' });
    // The 2 MiB figures must measure a 2 MiB leaf.
    if (!three.t.translate(iovaOf(LARGE_IOVA), DmaAccess.Read, e) || e.addrMask !== LARGE_PAGE - 1) {
      throw new Error('bench: the 2 MiB mapping did not translate as a 2 MiB page');
    }
    if (!sm.t.translate(iovaOf(0x3000), DmaAccess.Read, e) || sm.b.iommu.iotlb.entries().next().value?.pasid !== 0) {
      throw new Error('bench: the scalable unit did not cache a first-stage translation under PASID 0');
    }
    const ratio = (p: { ratio: number }) => ({ value: round3(p.ratio), unit: 'x' });
    const hitPair = paired((ms) => hitRate(four, ms), (ms) => hitRate(sm, ms));
    const missPair = paired((ms) => miss(four, 0x3000, ms), (ms) => miss(sm, 0x3000, ms));
    // The walk stage alone (4-level tables, the same IOVA): what a miss costs beyond resolving the request.
    const w = newWalkResult();
    const u4 = four.b.iommu;
    const us = sm.b.iommu;
    const walkPair = paired(
      (ms) => perSecond(() => walkSecondStage(u4.memory, u4.walkStageRules.ss, four.top, 4, 48, 0x3000, false, w), 1, ms),
      (ms) => perSecond(() => walkFirstStage(us.memory, us.walkStageRules.fs, sm.top, 4, 2, 0x3000, false, w), 1, ms),
    );
    const dma4kPair = paired((ms) => dmaRate(four.dma, 0, 4 * KiB, ms), (ms) => dmaRate(sm.dma, 0, 4 * KiB, ms));
    const dma64kPair = paired((ms) => dmaRate(four.dma, 0, 64 * KiB, ms), (ms) => dmaRate(sm.dma, 0, 64 * KiB, ms));
    // What the invalidation sanitizer costs when on (x-sanitize=on): the same DMA with one attached.
    const sanitized = unit(2);
    new Sanitizer(sanitized.b.iommu);
    const sanitizedPair = paired((ms) => dmaRate(four.dma, 0, 4 * KiB, ms), (ms) => dmaRate(sanitized.dma, 0, 4 * KiB, ms));
    return {
      translateHit: mops(hit),
      translateMiss3: mops(miss(three, 0x3000)),
      translateMiss4: mops(missPair.legacy),
      fsTranslateHitPasid: mops(hitPair.scalable),
      fsTranslateHitPasidRatio: ratio(hitPair),
      walk4: mops(walkPair.legacy),
      fsWalk4: mops(walkPair.scalable),
      fsWalk4Ratio: ratio(walkPair),
      fsTranslateMiss4: mops(missPair.scalable),
      fsTranslateMiss4Ratio: ratio(missPair),
      dma4kLegacy4: mbps(dma4kPair.legacy),
      fsDma4k: mbps(dma4kPair.scalable),
      fsDma4kRatio: ratio(dma4kPair),
      dma64kLegacy4: mbps(dma64kPair.legacy),
      fsDma64k: mbps(dma64kPair.scalable),
      fsDma64kRatio: ratio(dma64kPair),
      sanitizedDma4k: mbps(sanitizedPair.scalable),
      sanitizedDma4kRatio: ratio(sanitizedPair),
      translateMiss3Large: mops(miss(three, LARGE_IOVA)),
      dma4k: mbps(dmaRate(three.dma, 0, 4 * KiB)),
      dma4kNoIommu: mbps(dmaRate(plain, DATA, 4 * KiB)),
      dma64k: mbps(dmaRate(three.dma, 0, 64 * KiB)),
      dma64kNoIommu: mbps(dmaRate(plain, DATA, 64 * KiB)),
      dma64kContiguous: mbps(dmaRate(three.dma, CONTIG_IOVA, 64 * KiB)),
      dma1m2M: mbps(dmaRate(three.dma, LARGE_IOVA, MiB)),
      dma1mNoIommu: mbps(dmaRate(plain, DATA, MiB)),
    };
  },
};
