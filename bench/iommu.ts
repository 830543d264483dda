/**
 * VT-d translation cost: an IOTLB-hit translate, 3- and 4-level miss walks
 * (IOTLB flushed before every translate), and 4 KiB / 64 KiB device DMA
 * through the IOMMU (4 KiB pages, IOTLB warm) compared with the same DMA
 * without an IOMMU.
 */
import { DmaSpace } from '../src/memory/dma-space.js';
import { DmaAccess, newIotlbEntry } from '../src/memory/iommu.js';
import { Gcmd } from '../src/hw/intel-iommu/reg-layout.js';
import { ctxEntry, VtdBench } from '../src/hw/intel-iommu/test-support.js';
import { type Bench, type Figures, perSecond, round3 } from './bench.js';

const KiB = 1024;
const MB = 1e6;
const DATA = 0x200_0000;
/** Translations per timed call. */
const CALLS = 1 << 12;

function unit(aw: number) {
  const b = new VtdBench({ props: { 'aw-bits': aw === 1 ? 39 : 48 } });
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, 1, aw));
  for (let i = 0; i < 16; i++) b.map(top, aw + 2, i * 0x1000, DATA + ((i * 5) % 16) * 0x1000);
  b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  return { b, t: b.iommu.translatorFor(req), dma };
}

function dmaRate(dma: DmaSpace, size: number): number {
  const buf = new Uint8Array(size);
  return round3((perSecond(() => (dma.read(0, buf), buf[0]!), size) / MB));
}

/** The IOMMU bench module. */
export const iommuBench: Bench = {
  name: 'iommu',
  run(): Figures {
    const e = newIotlbEntry();
    const three = unit(1);
    const four = unit(2);
    const hit = perSecond(() => {
      let s = 0;
      for (let i = 0; i < CALLS; i++) s += three.t.translate((i & 15) * 0x1000, DmaAccess.Read, e) ? 1 : 0;
      return s;
    }, CALLS);
    const miss = (u: ReturnType<typeof unit>) =>
      perSecond(() => {
        u.b.iommu.iotlb.clear();
        return u.t.translate(0x3000, DmaAccess.Read, e) ? 1 : 0;
      }, 1);
    const plain = new DmaSpace(three.b.memory, () => true, () => null);
    return {
      translateHit: { value: round3(hit / 1e6), unit: 'Mops/s' },
      translateMiss3: { value: round3(miss(three) / 1e6), unit: 'Mops/s' },
      translateMiss4: { value: round3(miss(four) / 1e6), unit: 'Mops/s' },
      dma4k: { value: dmaRate(three.dma, 4 * KiB), unit: 'MB/s' },
      dma4kNoIommu: { value: dmaRate(plain, 4 * KiB), unit: 'MB/s' },
      dma64k: { value: dmaRate(three.dma, 64 * KiB), unit: 'MB/s' },
      dma64kNoIommu: { value: dmaRate(plain, 64 * KiB), unit: 'MB/s' },
    };
  },
};
