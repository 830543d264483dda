/**
 * The IOTLB hash table against a plain reference model (a Map keyed by
 * strings, QEMU's semantics written the obvious way): random inserts,
 * lookups, domain- and page-selective removals and flushes, with IOVAs that
 * straddle 32-bit boundaries and reach 2^57, many entries per source ID (long
 * probe runs) and removals from the middle of runs (backward-shift deletion).
 */
import { describe, expect, it } from 'vitest';
import { IommuPerm } from '../../memory/iommu.js';
import { Iotlb, IOTLB_MAX_ENTRIES, type VtdIotlbEntry } from './iotlb.js';
import { Rng } from '../../../test/support/prng.js';

interface ModelEntry {
  sid: number;
  did: number;
  level: number;
  size: number;
  iova: number;
  gfn: number;
  translated: number;
  perm: IommuPerm;
}

const PAGE_4K = 4096;
const levelSize = (level: number) => 2 ** (12 + 9 * (level - 1));

/** The reference: QEMU's IOTLB semantics over a string-keyed Map. */
class ModelIotlb {
  readonly m = new Map<string, ModelEntry>();
  insert(sid: number, did: number, iova: number, level: number, translated: number, perm: IommuPerm): boolean {
    let flushed = false;
    if (this.m.size >= IOTLB_MAX_ENTRIES) {
      this.m.clear();
      flushed = true;
    }
    const size = levelSize(level);
    const page = Math.floor(iova / size);
    const base = page * size;
    this.m.set(`${sid}/${level}/${page}`, { sid, did, level, size, iova: base, gfn: base / PAGE_4K, translated, perm });
    return flushed;
  }
  lookup(sid: number, iova: number): ModelEntry | undefined {
    for (let level = 1; level <= 3; level++) {
      const e = this.m.get(`${sid}/${level}/${Math.floor(iova / levelSize(level))}`);
      if (e) return e;
    }
    return undefined;
  }
  removeWhere(pred: (e: ModelEntry) => boolean): number {
    let n = 0;
    for (const [k, e] of this.m) {
      if (pred(e)) {
        this.m.delete(k);
        n++;
      }
    }
    return n;
  }
  removePages(did: number, addr: number, am: number): number {
    const block = 2 ** am;
    const gfnAddr = Math.floor(addr / PAGE_4K);
    const gfn = gfnAddr - (gfnAddr % block);
    return this.removeWhere(
      (e) => e.did === did && (e.gfn - (e.gfn % block) === gfn || Math.floor(addr / e.size) * e.size === e.iova),
    );
  }
}

/** IOVAs around interesting places: low memory, the 4 GiB line, high 48- and 57-bit addresses. */
function randomIova(r: Rng): number {
  const bases = [0, 2 ** 32 - 2 ** 22, 2 ** 32, 2 ** 40, 2 ** 47 - 2 ** 30, 2 ** 56];
  return r.pick(bases) + r.int(2 ** 23) * PAGE_4K;
}

function same(e: VtdIotlbEntry | undefined, m: ModelEntry | undefined): void {
  if (m === undefined) {
    expect(e).toBeUndefined();
    return;
  }
  expect(e).toBeDefined();
  const { sid, did, level, size, iova, gfn, translated, perm } = e!;
  expect({ sid, did, level, size, iova, gfn, translated, perm }).toEqual(m);
}

describe('Iotlb', () => {
  it.each([1, 2, 3, 4])('agrees with the reference model on random operations (seed %i)', (seed) => {
    const r = new Rng(seed * 0x9e3779b9);
    const t = new Iotlb();
    const m = new ModelIotlb();
    const recent: [number, number][] = [];
    for (let step = 0; step < 20_000; step++) {
      const op = r.int(1000);
      if (op < 500) {
        const sid = r.pick([0x0008, 0x0010, 0x0100, 0xffff]);
        const iova = randomIova(r);
        const level = r.pick([1, 1, 1, 2, 3]);
        const args = [sid, r.pick([1, 2, 3]), iova, level, r.int(2 ** 20) * PAGE_4K, r.pick([1, 2, 3])] as const;
        expect(t.insert(...args)).toBe(m.insert(...args));
        recent.push([sid, iova]);
        if (recent.length > 64) recent.shift();
      } else if (op < 900) {
        // Half the lookups hit something inserted lately (or its neighbourhood).
        const [sid, iova] =
          recent.length && r.chance(0.5) ? r.pick(recent) : [r.pick([0x0008, 0x0010, 0x0100, 0xffff]), randomIova(r)];
        const probe = iova + r.pick([0, 0, PAGE_4K, -PAGE_4K, 2 ** 21]);
        same(t.lookup(sid, Math.max(0, probe)), m.lookup(sid, Math.max(0, probe)));
      } else if (op < 960) {
        const [, iova] = recent.length ? r.pick(recent) : [0, randomIova(r)];
        const args = [r.pick([1, 2, 3]), iova, r.pick([0, 0, 1, 4, 9, 18])] as const;
        expect(t.removePages(...args)).toBe(m.removePages(...args));
      } else if (op < 995) {
        const did = r.pick([1, 2, 3]);
        expect(t.removeDomain(did)).toBe(m.removeWhere((e) => e.did === did));
      } else {
        t.clear();
        m.m.clear();
      }
      expect(t.size).toBe(m.m.size);
    }
    // Every surviving entry is still reachable, and entries() lists exactly them.
    expect([...t.entries()].length).toBe(m.m.size);
    for (const e of m.m.values()) same(t.lookup(e.sid, e.iova), m.lookup(e.sid, e.iova));
  });

  it('flushes everything when the 1025th entry arrives, and reports it', () => {
    const t = new Iotlb();
    for (let i = 0; i < IOTLB_MAX_ENTRIES; i++) expect(t.insert(8, 1, i * PAGE_4K, 1, i * PAGE_4K, IommuPerm.Read)).toBe(false);
    expect(t.size).toBe(IOTLB_MAX_ENTRIES);
    expect(t.insert(8, 1, 2 ** 40, 1, 0, IommuPerm.Read)).toBe(true);
    expect(t.size).toBe(1);
    expect(t.lookup(8, 0)).toBeUndefined();
    expect(t.lookup(8, 2 ** 40 + 5)?.iova).toBe(2 ** 40);
  });

  it('keeps entries reachable when their neighbours in a probe run are removed', () => {
    const t = new Iotlb();
    // 1000 consecutive pages of one source ID, then remove every other one by page invalidation.
    for (let i = 0; i < 1000; i++) t.insert(8, i & 1 ? 2 : 1, i * PAGE_4K, 1, (i + 7) * PAGE_4K, IommuPerm.ReadWrite);
    expect(t.removeDomain(2)).toBe(500);
    for (let i = 0; i < 1000; i++) {
      const e = t.lookup(8, i * PAGE_4K + 1);
      if (i & 1) expect(e).toBeUndefined();
      else expect(e?.translated).toBe((i + 7) * PAGE_4K);
    }
  });
});
