/**
 * The IOTLB hash table against a plain reference model (a Map keyed by
 * strings, QEMU's semantics written the obvious way): random inserts,
 * lookups, domain-, page-, PASID- and PASID-page-selective removals and
 * flushes over legacy (no PASID) and scalable (PASID, PGTT) entries, with IOVAs that
 * straddle 32-bit boundaries and reach 2^57, many entries per source ID (long
 * probe runs) and removals from the middle of runs (backward-shift deletion).
 */
import { describe, expect, it } from 'vitest';
import { IommuPerm, NO_PASID } from '../../memory/iommu.js';
import { Iotlb, IOTLB_MAX_ENTRIES, PGTT_FIRST_STAGE, PGTT_LEGACY, type VtdIotlbEntry } from './iotlb.js';
import { Rng } from '../../../test/support/prng.js';

interface ModelEntry {
  sid: number;
  pasid: number;
  did: number;
  pgtt: number;
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
  insert(sid: number, pasid: number, did: number, iova: number, level: number, translated: number, perm: IommuPerm, pgtt: number): boolean {
    let flushed = false;
    if (this.m.size >= IOTLB_MAX_ENTRIES) {
      this.m.clear();
      flushed = true;
    }
    const size = levelSize(level);
    const page = Math.floor(iova / size);
    const base = page * size;
    this.m.set(`${sid}/${pasid}/${level}/${page}`, { sid, pasid, did, pgtt, level, size, iova: base, gfn: base / PAGE_4K, translated, perm });
    return flushed;
  }
  lookup(sid: number, pasid: number, iova: number): ModelEntry | undefined {
    for (let level = 1; level <= 3; level++) {
      const e = this.m.get(`${sid}/${pasid}/${level}/${Math.floor(iova / levelSize(level))}`);
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
    // QEMU 11.1: a legacy page-selective invalidation also drops every first-stage entry of the domain.
    return this.removeWhere((e) => e.did === did && (e.pgtt === PGTT_FIRST_STAGE || inBlock(e, addr, gfn, block)));
  }
  removePasidPages(did: number, pasid: number, addr: number, am: number): number {
    const block = 2 ** am;
    const gfnAddr = Math.floor(addr / PAGE_4K);
    const gfn = gfnAddr - (gfnAddr % block);
    return this.removeWhere((e) => e.did === did && e.pasid === pasid && e.pgtt === PGTT_FIRST_STAGE && inBlock(e, addr, gfn, block));
  }
}

function inBlock(e: ModelEntry, addr: number, gfn: number, block: number): boolean {
  return e.gfn - (e.gfn % block) === gfn || Math.floor(addr / e.size) * e.size === e.iova;
}

const SIDS = [0x0008, 0x0010, 0x0100, 0xffff];
/** Legacy entries, PASID 0 and two PASIDs, the largest among them. */
const PASIDS = [NO_PASID, NO_PASID, 0, 1, 0xf_ffff];
/** PGTT tags: legacy, first stage, second stage. */
const PGTTS = [PGTT_LEGACY, PGTT_FIRST_STAGE, 2];

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
  const { sid, pasid, did, pgtt, level, size, iova, gfn, translated, perm } = e!;
  expect({ sid, pasid, did, pgtt, level, size, iova, gfn, translated, perm }).toEqual(m);
}

describe('Iotlb', () => {
  it.each([1, 2, 3, 4])('agrees with the reference model on random operations (seed %i)', (seed) => {
    const r = new Rng(seed * 0x9e3779b9);
    const t = new Iotlb();
    const m = new ModelIotlb();
    const recent: [number, number, number][] = [];
    for (let step = 0; step < 20_000; step++) {
      const op = r.int(1000);
      if (op < 500) {
        const sid = r.pick(SIDS);
        const pasid = r.pick(PASIDS);
        const iova = randomIova(r);
        const level = r.pick([1, 1, 1, 2, 3]);
        const pgtt = pasid === NO_PASID ? PGTT_LEGACY : r.pick(PGTTS.slice(1));
        const perm = r.pick([IommuPerm.Read, IommuPerm.Write, IommuPerm.ReadWrite]);
        const args = [sid, pasid, r.pick([1, 2, 3]), iova, level, r.int(2 ** 20) * PAGE_4K, perm, pgtt] as const;
        expect(t.insert(...args, false)).toBe(m.insert(...args));
        recent.push([sid, pasid, iova]);
        if (recent.length > 64) recent.shift();
      } else if (op < 880) {
        // Half the lookups hit something inserted lately (or its neighbourhood).
        const [sid, pasid, iova] = recent.length && r.chance(0.5) ? r.pick(recent) : [r.pick(SIDS), r.pick(PASIDS), randomIova(r)];
        const probe = Math.max(0, iova + r.pick([0, 0, PAGE_4K, -PAGE_4K, 2 ** 21]));
        same(t.lookup(sid, pasid, probe), m.lookup(sid, pasid, probe));
      } else if (op < 920) {
        const [, , iova] = recent.length ? r.pick(recent) : [0, 0, randomIova(r)];
        const args = [r.pick([1, 2, 3]), iova, r.pick([0, 0, 1, 4, 9, 18])] as const;
        expect(t.removePages(...args)).toBe(m.removePages(...args));
      } else if (op < 950) {
        const [, pasid, iova] = recent.length ? r.pick(recent) : [0, 1, randomIova(r)];
        const args = [r.pick([1, 2, 3]), pasid, iova, r.pick([0, 0, 1, 4, 9, 18])] as const;
        expect(t.removePasidPages(...args)).toBe(m.removePasidPages(...args));
      } else if (op < 970) {
        const did = r.pick([1, 2, 3]);
        const pasid = r.pick(PASIDS);
        expect(t.removePasid(did, pasid)).toBe(m.removeWhere((e) => e.did === did && e.pasid === pasid));
      } else if (op < 980) {
        const sid = r.pick(SIDS);
        const pasid = r.pick(PASIDS);
        expect(t.removeSpace(sid, pasid)).toBe(m.removeWhere((e) => e.sid === sid && e.pasid === pasid));
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
    for (const e of m.m.values()) same(t.lookup(e.sid, e.pasid, e.iova), m.lookup(e.sid, e.pasid, e.iova));
  });

  it('flushes everything when the 1025th entry arrives, and reports it', () => {
    const t = new Iotlb();
    for (let i = 0; i < IOTLB_MAX_ENTRIES; i++) expect(t.insert(8, NO_PASID, 1, i * PAGE_4K, 1, i * PAGE_4K, IommuPerm.Read)).toBe(false);
    expect(t.size).toBe(IOTLB_MAX_ENTRIES);
    expect(t.insert(8, NO_PASID, 1, 2 ** 40, 1, 0, IommuPerm.Read)).toBe(true);
    expect(t.size).toBe(1);
    expect(t.lookup(8, NO_PASID, 0)).toBeUndefined();
    expect(t.lookup(8, NO_PASID, 2 ** 40 + 5)?.iova).toBe(2 ** 40);
  });

  it('keeps entries reachable when their neighbours in a probe run are removed', () => {
    const t = new Iotlb();
    // 1000 consecutive pages of one source ID, then remove every other one by page invalidation.
    for (let i = 0; i < 1000; i++) t.insert(8, NO_PASID, i & 1 ? 2 : 1, i * PAGE_4K, 1, (i + 7) * PAGE_4K, IommuPerm.ReadWrite);
    expect(t.removeDomain(2)).toBe(500);
    for (let i = 0; i < 1000; i++) {
      const e = t.lookup(8, NO_PASID, i * PAGE_4K + 1);
      if (i & 1) expect(e).toBeUndefined();
      else expect(e?.translated).toBe((i + 7) * PAGE_4K);
    }
  });
});

describe('PASID tags (QEMU 11.1 keying)', () => {
  it('the same page of one source ID is a different entry per PASID, and legacy entries are apart from PASID 0', () => {
    const t = new Iotlb();
    t.insert(8, NO_PASID, 1, 0x1000, 1, 0xa000, IommuPerm.Read);
    t.insert(8, 0, 1, 0x1000, 1, 0xb000, IommuPerm.Read, PGTT_FIRST_STAGE);
    t.insert(8, 5, 1, 0x1000, 1, 0xc000, IommuPerm.Read, 2);
    expect(t.size).toBe(3);
    expect(t.lookup(8, NO_PASID, 0x1234)?.translated).toBe(0xa000);
    expect(t.lookup(8, 0, 0x1234)?.translated).toBe(0xb000);
    expect(t.lookup(8, 5, 0x1234)?.translated).toBe(0xc000);
    expect(t.lookup(8, 6, 0x1234)).toBeUndefined();
  });

  it('entries keep the PGTT and FPD they were built with', () => {
    const t = new Iotlb();
    t.insert(8, 3, 4, 0x2000, 1, 0x9000, IommuPerm.Read, PGTT_FIRST_STAGE, true);
    const e = t.lookup(8, 3, 0x2000)!;
    expect([e.pgtt, e.fpd, e.did]).toEqual([PGTT_FIRST_STAGE, true, 4]);
    t.insert(8, 3, 4, 0x2000, 1, 0x9000, IommuPerm.Read, 2, false);
    expect([e.pgtt, e.fpd]).toEqual([2, false]);
  });

  it('a legacy page-selective invalidation drops every first-stage entry of the domain, and only those beyond the block', () => {
    const t = new Iotlb();
    t.insert(8, 1, 7, 0x40_0000, 1, 0, IommuPerm.Read, PGTT_FIRST_STAGE);
    t.insert(8, 1, 7, 0x80_0000, 1, 0, IommuPerm.Read, 2);
    t.insert(0x10, 1, 9, 0x40_0000, 1, 0, IommuPerm.Read, PGTT_FIRST_STAGE);
    expect(t.removePages(7, 0x1000, 0)).toBe(1);
    expect(t.lookup(0x10, 1, 0x40_0000)).toBeDefined();
    expect(t.lookup(8, 1, 0x40_0000)).toBeUndefined();
    expect(t.lookup(8, 1, 0x80_0000)).toBeDefined();
  });

  it('a PASID page-selective invalidation leaves second-stage entries alone', () => {
    const t = new Iotlb();
    t.insert(8, 1, 7, 0x1000, 1, 0, IommuPerm.Read, 2);
    t.insert(8, 1, 7, 0x2000, 1, 0, IommuPerm.Read, PGTT_FIRST_STAGE);
    expect(t.removePasidPages(7, 1, 0, 4)).toBe(1);
    expect(t.lookup(8, 1, 0x1000)).toBeDefined();
    expect(t.removePasid(7, 1)).toBe(1);
    expect(t.size).toBe(0);
  });
});

describe('insert defaults', () => {
  it('an entry inserted without PGTT, FPD or write fault is legacy, FPD clear, writable by its perm', () => {
    const t = new Iotlb();
    t.insert(8, NO_PASID, 1, 0x3000, 1, 0x9000, IommuPerm.ReadWrite);
    expect(t.lookup(8, NO_PASID, 0x3000)).toMatchObject({ pgtt: PGTT_LEGACY, fpd: false, writeFault: 0 });
  });
});

/** A scratch table for finding keys by the slot they hash to. */
const scratch = new Iotlb();
/** The home slot of the level-`level` key of (sid, pasid, iova). */
function homeOf(sid: number, pasid: number, iova: number, level: number): number {
  scratch.clear();
  scratch.insert(sid, pasid, 1, iova, level, 0, IommuPerm.Read);
  return [...scratch.entries()][0]!.home;
}

describe('keys that share a home slot stay apart', () => {
  /**
   * Finds i >= 1 whose entry key `entry(i)` and lookup key `probe(i)` hash to
   * the same slot, so that the lookup meets the entry first.
   */
  function colliding(entry: (i: number) => [number, number, number, number], probe: (i: number) => [number, number, number, number]): number {
    for (let i = 1; i < 1 << 20; i++) if (homeOf(...entry(i)) === homeOf(...probe(i))) return i;
    throw new Error('no colliding keys');
  }
  /** Inserts entry(i) alone and looks up probe(i)'s address. */
  function lookupOther(entry: [number, number, number, number], probe: [number, number, number, number]): VtdIotlbEntry | undefined {
    const t = new Iotlb();
    const [sid, pasid, iova, level] = entry;
    t.insert(sid, pasid, 1, iova, level, 0x7000, IommuPerm.Read, PGTT_FIRST_STAGE);
    expect(t.lookup(sid, pasid, iova)).toBeDefined();
    return t.lookup(probe[0], probe[1], probe[2]);
  }
  const cases: [string, (i: number) => [number, number, number, number]][] = [
    ['source ID', (i) => [9, 1, i * PAGE_4K, 1]],
    ['PASID', (i) => [8, 2, i * PAGE_4K, 1]],
    ['page number bits 63:32', (i) => [8, 1, i * PAGE_4K + 2 ** 44, 1]],
    // The 4 KiB key of page i against a 2 MiB entry whose page number is also i.
    ['level', (i) => [8, 1, i * PAGE_4K, 1]],
  ];
  it.each(cases)('differing only in %s', (what, probe) => {
    const entry = (i: number): [number, number, number, number] => (what === 'level' ? [8, 1, i * 2 ** 21, 2] : [8, 1, i * PAGE_4K, 1]);
    const i = colliding(entry, probe);
    expect(lookupOther(entry(i), probe(i))).toBeUndefined();
  });
});

describe('backward-shift deletion across the end of the table', () => {
  const LAST = 4095;
  /** `n` distinct 4 KiB pages of source ID 8 (no PASID) whose keys hash to `slot`. */
  function pagesHomedAt(slot: number, n: number, avoid: Set<number>): number[] {
    const out: number[] = [];
    for (let p = 1; out.length < n; p++) {
      if (p > 1 << 24) throw new Error(`no pages homed at ${slot}`);
      if (!avoid.has(p) && homeOf(8, NO_PASID, p * PAGE_4K, 1) === slot) {
        out.push(p);
        avoid.add(p);
      }
    }
    return out;
  }
  const used = new Set<number>();
  const at4094 = pagesHomedAt(LAST - 1, 3, used);
  const at4095 = pagesHomedAt(LAST, 3, used);
  const at0 = pagesHomedAt(0, 1, used);

  /**
   * Inserts the pages in order (removed ones in domain 2), checks the slots
   * they landed in, removes domain 2 and checks every page is found or gone.
   */
  function run(pages: [number, boolean][], slots: number[]): void {
    const t = new Iotlb();
    for (const [p, remove] of pages) t.insert(8, NO_PASID, remove ? 2 : 1, p * PAGE_4K, 1, p * 2 * PAGE_4K, IommuPerm.Read);
    expect(pages.map(([p]) => t.lookup(8, NO_PASID, p * PAGE_4K)!.slot)).toEqual(slots);
    t.removeDomain(2);
    for (const [p, removed] of pages) expect(t.lookup(8, NO_PASID, p * PAGE_4K)?.translated, `page ${p}`).toBe(removed ? undefined : p * 2 * PAGE_4K);
  }

  it('entries after the wrap move back into the hole when their home is outside (hole, slot]', () => {
    run([[at4094[0]!, true], [at4094[1]!, false], [at4095[0]!, false], [at0[0]!, false], [at4094[2]!, false]], [4094, 4095, 0, 1, 2]);
  });
  it('entries after the wrap stay when their home is inside (hole, slot]', () => {
    run([[at4094[0]!, true], [at4095[0]!, false], [at4095[1]!, false], [at0[0]!, false]], [4094, 4095, 0, 1]);
  });
  it('an entry homed at the hole itself moves back across the wrap', () => {
    run([[at4095[0]!, true], [at4095[1]!, false]], [4095, 0]);
  });
  it('an entry in its own home slot after the wrap stays', () => {
    run([[at4095[0]!, true], [at0[0]!, false]], [4095, 0]);
  });
  it('after the wrap, an entry homed before it moves into a hole that is also after it', () => {
    run([[at4095[0]!, false], [at4095[1]!, true], [at4095[2]!, false]], [4095, 0, 1]);
  });
});
