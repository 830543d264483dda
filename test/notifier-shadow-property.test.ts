/**
 * Property test of the VT-d IOMMU notifiers (caching-mode=on): a vfio-like
 * consumer (test/support/vfio-shadow.ts) keeps a host mapping table from
 * the MAP / UNMAP notifications alone, while a random guest maps, remaps and
 * unmaps 4 KiB / 2 MiB / 1 GiB pages (splitting large leaves into tables and
 * dropping whole tables) and invalidates what it changed: page-selective
 * IOTLB, PASID-based IOTLB, domain, global, device-selective and global
 * context, PASID-cache.  Whenever every change of an address space has been
 * invalidated, its host table must equal the mappings found by walking the
 * guest's tables, with a walker written here (bigint-free, a raw 4 KiB read
 * per table, independent of src/), and vfio's contract must hold (no MAP
 * over a mapping, no UNMAP cutting one).  Now and then a second consumer
 * registers and replays.
 *
 * Modes: legacy second stage (two devices, two domains), scalable second
 * stage and scalable first stage (one device, its requests without a PASID
 * and PASID 7, two domains).
 *
 * And: a guest that skips an invalidation leaves the host table visibly
 * stale, as with real vfio, until it invalidates.
 *
 *   VTEMU_NOTIFIER_SEED / VTEMU_NOTIFIER_OPS   another seed / operation count
 */
import { describe, expect, it } from 'vitest';
import { IommuPerm, NO_PASID } from '../src/memory/iommu.js';
import { Gcmd } from '../src/hw/intel-iommu/reg-layout.js';
import { Rng } from './support/prng.js';
import { VfioShadow, type HostMapping } from './support/vfio-shadow.js';
import { ctxEntry, VtdBench } from './support/vtd-bench.js';

type Mode = 'legacy' | 'scalable-ss' | 'first-stage';

const OPS = Number(process.env['VTEMU_NOTIFIER_OPS'] ?? 10_000);
const SEED = process.env['VTEMU_NOTIFIER_SEED'] !== undefined ? Number(process.env['VTEMU_NOTIFIER_SEED']) : 0x5eed_0012;

const PAGE = 4096;
const LEVELS = 4;
const LEVEL_SIZE = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39];
const WINDOW_FIRST = 0xfee0_0000;
const WINDOW_LAST = 0xfeef_ffff;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** Largest address mask of a page-selective invalidation (CAP.MAMV). */
const MAMV = 18;
/** Second-stage entry bits R, W, PS; first-stage P, RW, US, PS. */
const SS_RW = 3n;
const PS = 0x80n;
const FS_P = 1n;
const FS_RW = 2n;
const FS_US = 4n;
/** The window of IOVAs the guest uses: GiB slots, 2 MiB slots per GiB, 4 KiB slots per 2 MiB. */
const GIB_SLOTS = 2;
const MIB2_SLOTS = 4;
const PAGE_SLOTS = 16;
/** Translated addresses: below 2^36. */
const OUT_BITS = 36;

/** One address space the guest programs and a consumer shadows. */
interface Space {
  readonly name: string;
  readonly did: number;
  /** PASID of the space (NO_PASID: requests without one). */
  readonly pasid: number;
  readonly sid: number;
  readonly top: number;
  shadow: VfioShadow;
  /** Changed ranges not yet invalidated. */
  dirty: { start: number; size: number }[];
}

/** A guest of one mode on a VT-d unit with caching-mode=on. */
class Guest {
  readonly bench: VtdBench;
  readonly spaces: Space[] = [];
  private readonly buf = new Uint8Array(PAGE);
  private readonly view = new DataView(this.buf.buffer);

  constructor(readonly mode: Mode) {
    const props: Record<string, boolean> =
      mode === 'legacy' ? { 'caching-mode': true } : mode === 'scalable-ss' ? { 'caching-mode': true, 'scalable-mode': true } : { 'caching-mode': true, 'scalable-mode': true, fsts: true };
    this.bench = new VtdBench({ props, ramSize: 256 * 1024 * 1024 });
    const b = this.bench;
    const root = b.allocPage();
    const defs: { name: string; did: number; pasid: number; devfn: number }[] =
      mode === 'legacy'
        ? [{ name: '00:01.0', did: 1, pasid: NO_PASID, devfn: 8 }, { name: '00:02.0', did: 2, pasid: NO_PASID, devfn: 16 }]
        : [{ name: '00:01.0', did: 1, pasid: NO_PASID, devfn: 8 }, { name: '00:01.0 pasid 7', did: 2, pasid: 7, devfn: 8 }];
    const pasidDir = b.allocPage();
    const reqs = new Map<number, ReturnType<VtdBench['device']>['req']>();
    for (const d of defs) {
      const top = b.allocPage();
      if (!reqs.has(d.devfn)) reqs.set(d.devfn, b.device(0, d.devfn).req);
      if (mode === 'legacy') {
        const [lo, hi] = ctxEntry(top, d.did, 2);
        b.setContext(root, 0, d.devfn, lo, hi);
      } else {
        b.setScalableContext(root, 0, d.devfn, pasidDir);
        const pasid = d.pasid === NO_PASID ? 0 : d.pasid;
        b.setPasidEntry(pasidDir, pasid, mode === 'first-stage' ? { pgtt: 1, did: d.did, aw: 2, fs: top } : { pgtt: 2, did: d.did, aw: 2, ss: top });
      }
      this.spaces.push({ name: d.name, did: d.did, pasid: d.pasid, sid: d.devfn, top, shadow: null!, dirty: [] });
    }
    // setScalableContext wrote the same entry twice for the shared device: the PASID entries stay.
    b.setRoot(root, mode !== 'legacy');
    b.gcmd(Gcmd.TE);
    for (const s of this.spaces) s.shadow = new VfioShadow(b.iommu.notifierSpace(reqs.get(s.sid)!, s.pasid));
  }

  private get fs(): boolean {
    return this.mode === 'first-stage';
  }

  private present(e: bigint): boolean {
    return this.fs ? (e & FS_P) !== 0n : (e & SS_RW) !== 0n;
  }

  private static isLeaf(e: bigint, level: number): boolean {
    return level === 1 || ((e & PS) !== 0n && level <= 3);
  }

  private static index(iova: number, level: number): number {
    return Math.floor(iova / LEVEL_SIZE[level]!) % 512;
  }

  private dirty(s: Space, iova: number, level: number): void {
    const size = LEVEL_SIZE[level]!;
    s.dirty.push({ start: iova - (iova % size), size });
  }

  /** Installs a leaf at `level` for `iova`, splitting leaves and creating tables on the way. */
  install(s: Space, iova: number, level: number, leaf: bigint): void {
    const b = this.bench;
    const inter = this.fs ? FS_P | FS_RW | FS_US : SS_RW;
    let table = s.top;
    for (let l = LEVELS; l > level; l--) {
      const at = table + Guest.index(iova, l) * 8;
      let e = b.peek64(at);
      if (!this.present(e) || Guest.isLeaf(e, l)) {
        if (this.present(e)) this.dirty(s, iova, l);
        e = BigInt(b.allocPage()) | inter;
        b.poke64(at, e);
      }
      table = Number(e & ADDR_MASK);
    }
    b.poke64(table + Guest.index(iova, level) * 8, leaf);
    this.dirty(s, iova, level);
  }

  /** Clears the entry for `iova` at `level` (or the leaf above it); nothing when not mapped. */
  clear(s: Space, iova: number, level: number): void {
    const b = this.bench;
    let table = s.top;
    for (let l = LEVELS; l >= level; l--) {
      const at = table + Guest.index(iova, l) * 8;
      const e = b.peek64(at);
      if (!this.present(e)) return;
      if (l === level || Guest.isLeaf(e, l)) {
        b.poke64(at, 0n);
        this.dirty(s, iova, l);
        return;
      }
      table = Number(e & ADDR_MASK);
    }
  }

  /**
   * Splits the large leaf mapping `iova` at `level` (2 or 3) into a table
   * of 512 leaves one level down mapping the same pages (as Linux splits a
   * superpage), and marks only one of the new pages changed: invalidating
   * any page of the old leaf drops it from an IOTLB, after which every
   * address re-walks.  Nothing when there is no such leaf.
   */
  split(s: Space, rng: Rng, iova: number, level: number): void {
    const b = this.bench;
    let table = s.top;
    for (let l = LEVELS; l > level; l--) {
      const e = b.peek64(table + Guest.index(iova, l) * 8);
      if (!this.present(e) || Guest.isLeaf(e, l)) return;
      table = Number(e & ADDR_MASK);
    }
    const at = table + Guest.index(iova, level) * 8;
    const e = b.peek64(at);
    if (!this.present(e) || !Guest.isLeaf(e, level)) return;
    const sub = LEVEL_SIZE[level - 1]!;
    const flags = e & (level - 1 > 1 ? 0xfffn : 0xf7fn);
    const out = Number(e & ADDR_MASK);
    const t = b.allocPage();
    for (let i = 0; i < 512; i++) b.poke64(t + i * 8, BigInt(out + i * sub) | flags);
    b.poke64(at, BigInt(t) | (this.fs ? FS_P | FS_RW | FS_US : SS_RW));
    this.dirty(s, iova - (iova % LEVEL_SIZE[level]!) + rng.int(512) * sub, level - 1);
  }

  /** A leaf entry value for a page of `level` at `translated` with a random permission. */
  leaf(rng: Rng, level: number, translated: number): bigint {
    const ps = level > 1 ? PS : 0n;
    if (this.fs) return BigInt(translated) | FS_P | FS_US | (rng.chance(0.7) ? FS_RW : 0n) | ps;
    return BigInt(translated) | BigInt(rng.pick([1, 2, 3, 3])) | ps;
  }

  /** The mappings of `s` found by walking its tables (independent of src/). */
  walk(s: Space): HostMapping[] {
    const out: HostMapping[] = [];
    this.walkTable(s.top, LEVELS, 0, true, true, out);
    return out;
  }

  private walkTable(table: number, level: number, base: number, r: boolean, w: boolean, out: HostMapping[]): void {
    const entries: [number, number][] = [];
    this.bench.memory.readBytes(table, this.buf);
    for (let i = 0; i < 512; i++) entries.push([this.view.getUint32(i * 8, true), this.view.getUint32(i * 8 + 4, true)]);
    const size = LEVEL_SIZE[level]!;
    for (let i = 0; i < 512; i++) {
      const [lo, hi] = entries[i]!;
      let rr: boolean;
      let ww: boolean;
      if (this.fs) {
        if ((lo & 1) === 0 || (lo & 4) === 0) continue;
        rr = r;
        ww = w && (lo & 2) !== 0;
      } else {
        rr = r && (lo & 1) !== 0;
        ww = w && (lo & 2) !== 0;
        if (!rr && !ww) continue;
      }
      const addr = (hi & 0xf_ffff) * 2 ** 32 + ((lo & 0xffff_f000) >>> 0);
      const iova = base + i * size;
      if (level === 1 || ((lo & 0x80) !== 0 && level <= 3)) {
        if (addr <= WINDOW_LAST && addr + size - 1 >= WINDOW_FIRST) continue;
        const perm = this.fs ? (ww ? IommuPerm.ReadWrite : IommuPerm.Read) : (rr ? IommuPerm.Read : 0) | (ww ? IommuPerm.Write : 0);
        out.push({ iova, size, translated: addr, perm });
      } else {
        this.walkTable(addr, level - 1, iova, rr, ww, out);
      }
    }
  }
}

/** A random IOVA of a page at `level` inside the guest's window. */
function slot(rng: Rng, level: number): number {
  let iova = rng.int(GIB_SLOTS) * LEVEL_SIZE[3]!;
  if (level <= 2) iova += rng.int(MIB2_SLOTS) * LEVEL_SIZE[2]!;
  if (level === 1) iova += rng.int(PAGE_SLOTS) * PAGE;
  return iova;
}

/** A random translated address for a page of `level` (now and then one in the interrupt window). */
function target(rng: Rng, level: number): number {
  const size = LEVEL_SIZE[level]!;
  if (rng.chance(0.02)) return WINDOW_FIRST - (WINDOW_FIRST % size);
  return rng.int(2 ** OUT_BITS / size) * size;
}

/** Runs `ops` random operations; returns the number of comparisons made. */
function run(mode: Mode, seed: number, ops: number): number {
  const rng = new Rng(seed);
  const g = new Guest(mode);
  const u = g.bench.iommu;
  const scalable = mode !== 'legacy';
  let checks = 0;
  const check = (s: Space, what: string): void => {
    checks++;
    expect(s.shadow.violations, `seed ${seed} ${mode} ${s.name} ${what}`).toEqual([]);
    expect(s.shadow.mappings(), `seed ${seed} ${mode} ${s.name} ${what}`).toEqual(g.walk(s));
  };
  const pasidOf = (s: Space): number => (s.pasid === NO_PASID ? 0 : s.pasid);
  for (let op = 0; op < ops; op++) {
    const s = rng.pick(g.spaces);
    const what = rng.weighted<string>([
      [45, 'map'],
      [20, 'unmap'],
      [3, 'split'],
      [35, 'invalidate'],
      [1, 'replay'],
    ]);
    const tag = `op ${op} ${what}`;
    if (what === 'map') {
      const level = rng.weighted([[70, 1], [22, 2], [8, 3]] as const);
      g.install(s, slot(rng, level), level, g.leaf(rng, level, target(rng, level)));
      continue;
    }
    if (what === 'unmap') {
      const level = rng.weighted([[60, 1], [25, 2], [12, 3], [3, 4]] as const);
      g.clear(s, slot(rng, Math.min(level, 3)), level);
      continue;
    }
    if (what === 'split') {
      const level = rng.pick([2, 2, 3]);
      g.split(s, rng, slot(rng, level), level);
      continue;
    }
    if (what === 'replay') {
      // A second consumer registers and replays: the space is synced whole, so both must match the tables.
      const extra = new VfioShadow(s.shadow.space);
      s.dirty = [];
      check(s, tag);
      expect(extra.mappings(), `seed ${seed} ${mode} ${s.name} ${tag} (replayed)`).toEqual(g.walk(s));
      expect(extra.violations, `seed ${seed} ${mode} ${s.name} ${tag} (replayed)`).toEqual([]);
      extra.detach();
      continue;
    }
    const kind = rng.weighted<string>([
      [55, 'page'],
      [scalable ? 15 : 0, 'pasid-page'],
      [8, 'domain'],
      [scalable ? 4 : 0, 'pasid-all'],
      [4, 'global'],
      [6, 'context'],
      [2, 'context-global'],
    ]);
    const touched: Space[] = [s];
    if (kind === 'page' || kind === 'pasid-page') {
      const d = s.dirty.length > 0 ? rng.pick(s.dirty) : { start: slot(rng, 1), size: PAGE };
      const am = Math.log2(d.size / PAGE);
      if (am > MAMV) {
        u.invalidateIotlb({ kind: 'domain', did: s.did }, 'queue');
        s.dirty = [];
      } else {
        if (kind === 'page') u.invalidateIotlb({ kind: 'page', did: s.did, addr: d.start, am, ih: false }, 'queue');
        else u.invalidatePasidIotlb({ kind: 'page', did: s.did, pasid: pasidOf(s), addr: d.start, am, ih: false });
        s.dirty = s.dirty.filter((x) => !(x.start >= d.start && x.start + x.size <= d.start + d.size));
      }
    } else if (kind === 'domain') {
      u.invalidateIotlb({ kind: 'domain', did: s.did }, 'queue');
      s.dirty = [];
    } else if (kind === 'pasid-all') {
      u.invalidatePasidIotlb({ kind: 'pasid', did: s.did, pasid: pasidOf(s) });
      s.dirty = [];
    } else if (kind === 'global' || kind === 'context-global') {
      if (kind === 'global') u.invalidateIotlb({ kind: 'global' }, 'queue');
      else if (scalable) u.invalidatePasidCache({ kind: 'global' });
      else u.invalidateContext({ kind: 'global' }, 'queue');
      for (const x of g.spaces) x.dirty = [];
      touched.push(...g.spaces);
    } else {
      if (scalable) u.invalidatePasidCache({ kind: 'pasid', did: s.did, pasid: pasidOf(s) });
      else u.invalidateContext({ kind: 'device', did: s.did, sid: s.sid, fm: 0 }, 'queue');
      s.dirty = [];
    }
    for (const x of new Set(touched)) if (x.dirty.length === 0) check(x, `${tag} ${kind}`);
  }
  // Finally everything invalidated: every space matches.
  u.invalidateIotlb({ kind: 'global' }, 'queue');
  for (const x of g.spaces) check(x, 'final global invalidation');
  return checks;
}

describe('IOMMU notifiers: a vfio-like shadow follows the guest tables', () => {
  for (const mode of ['legacy', 'scalable-ss', 'first-stage'] as const) {
    it(`${mode}: ${OPS} random map / unmap / invalidate operations (seed ${SEED})`, () => {
      const checks = run(mode, SEED, OPS);
      // The comparisons really ran, and often.
      expect(checks).toBeGreaterThan(OPS / 10);
    });
  }

  it('a guest that skips an invalidation leaves the shadow visibly stale, as with real vfio', () => {
    const g = new Guest('legacy');
    const s = g.spaces[0]!;
    const u = g.bench.iommu;
    const rng = new Rng(1);
    g.install(s, 0x1000, 1, g.leaf(rng, 1, 0x20_0000) | 3n);
    u.invalidateIotlb({ kind: 'page', did: s.did, addr: 0x1000, am: 0, ih: false }, 'queue');
    expect(s.shadow.mappings()).toEqual(g.walk(s));
    expect(s.shadow.lookup(0x1000)?.translated).toBe(0x20_0000);

    // Mapped without invalidation: the host table does not have it (a DMA there would fault on the host).
    g.install(s, 0x2000, 1, g.leaf(rng, 1, 0x30_0000) | 3n);
    expect(g.walk(s).map((m) => m.iova)).toEqual([0x1000, 0x2000]);
    expect(s.shadow.mappings().map((m) => m.iova)).toEqual([0x1000]);
    // Unmapped without invalidation: the host keeps the old translation (DMA still reaches the old page).
    g.clear(s, 0x1000, 1);
    expect(s.shadow.lookup(0x1000)?.translated).toBe(0x20_0000);
    expect(s.shadow.mappings()).not.toEqual(g.walk(s));
    // An invalidation of another domain changes nothing here.
    u.invalidateIotlb({ kind: 'domain', did: 99 }, 'queue');
    expect(s.shadow.mappings().map((m) => m.iova)).toEqual([0x1000]);

    u.invalidateIotlb({ kind: 'page', did: s.did, addr: 0, am: 2, ih: false }, 'queue');
    expect(s.shadow.mappings()).toEqual(g.walk(s));
    expect(s.shadow.mappings().map((m) => m.iova)).toEqual([0x2000]);
    expect(s.shadow.violations).toEqual([]);
  });
});
