/**
 * Generator of random VT-d translation cases, legacy (generateCase) and
 * scalable mode (generateScalableCase, described at its section below), for
 * the differential fuzzer (intel-iommu-fuzz.test.ts): a seeded PRNG, an
 * in-memory copy of the guest's tables (only to decide where to put things,
 * which DMAs are safe and which RAM to read back, never to predict results),
 * and the qtest transcript of one case.
 *
 * Legacy cases:
 * edu at 00:01.0 (SID 0x0008, BAR0 at 0xE0000000, dma_mask all-ones
 * so no IOVA is clamped); aw-bits 39 or 48; a low (128 MiB) or high (2.5 GiB,
 * structures above 2 GiB) layout; a root table and edu's context entry,
 * valid in most cases (FPD, TT 0 or 2, DID) and broken in one way in some
 * (not present, reserved bits, TT 1/3, AW outside SAGAW, unreadable table);
 * 3- or 4-level tables with random R/W at every level, 2 MiB / 1 GiB
 * leaves, occasional reserved / ignored bits, leaves in the interrupt window,
 * above the host address width or in unbacked space, tables in unbacked
 * space.  Then RTADDR, SRTP, TE and a series of operations: edu DMAs (random
 * direction, size and buffer offset inside the first 2 KiB of the buffer,
 * IOVAs mapped / unmapped / across a page / beyond the context's or the
 * unit's width / above 2^53), staleness probes (DMA, edit a leaf or the
 * context entry, the right / a wrong / no invalidation, DMA again at the same
 * IOVA), register-based CCMD / IOTLB invalidations of every granularity,
 * fault clearing and GCMD toggles.  After every DMA the transcript reads
 * FSTS, FECTL and FRCD0; after a DMA to RAM, the pages the IOVA range ever
 * mapped to; at the end, edu's buffer is copied back to RAM with translation
 * off and read.  No write goes where a read may have cached a translation
 * without write permission (the deliberate difference of PlanBase.taintReadOnly).
 */
import type { Step } from '../harness/index.js';
import { hex } from '../harness/transcript.js';
import { Rng } from '../support/prng.js';

// ---------------------------------------------------------------------------
// Layout and register offsets (VT-d spec 10.4; QEMU's register file)

const VTD = 0xfed9_0000n;
const REG = { GCMD: 0x18n, GSTS: 0x1cn, RTADDR: 0x20n, CCMD: 0x28n, FSTS: 0x34n, FECTL: 0x38n, IVA: 0xf0n, IOTLB: 0xf8n, FRCD: 0x220n } as const;
const GCMD_TE = 0x8000_0000;
const GCMD_SRTP = 0x4000_0000;
const BAR = 0xe000_0000n;
/** edu registers (docs/specs/edu.rst). */
const EDU = { SRC: 0x80n, DST: 0x88n, CNT: 0x90n, CMD: 0x98n } as const;
const EDU_BUF = 0x40000n;
const EDU_CMD_RUN = 1n;
const EDU_CMD_TO_RAM = 2n;
/**
 * DMAs stay within the first half of edu's buffer (QEMU 7.2's edu aborted on
 * a DMA ending at the buffer end; kept so that the cases stay comparable).
 */
const EDU_SAFE = 0x800;
/** edu at 00:01.0. */
export const EDU_SID = 0x0008;
const EDU_DEVFN = 0x08;
/** devfn 0x80 (00:10.0): the first function served by the upper half of a scalable root entry. */
const UPPER_DEVFN = 0x80;

const PAGE = 0x1000n;
/**
 * Where a case puts its structures.  The low layout uses QEMU's default
 * 128 MiB; the high one (-m 2560M, all of it below 4 GiB on q35) puts
 * everything above 2 GiB, where address bit 31 is set.
 */
interface Layout {
  readonly mem: string | null;
  readonly root: bigint;
  readonly tables: bigint;
  /** 4 KiB data pages. */
  readonly data4k: bigint;
  /** 2 MiB data pages. */
  readonly data2m: bigint;
  /** Where edu's buffer is copied back at the end (translation off). */
  readonly check: bigint;
  /** End of guest RAM: readable candidate pages lie below. */
  readonly ramEnd: bigint;
  /** The 1 GiB page holding the data pages (target of 1 GiB RAM leaves). */
  readonly gig: bigint;
  /** Guest-physical space with nothing behind it. */
  readonly unbacked: readonly bigint[];
}
const LOW: Layout = {
  mem: null, root: 0x0100_0000n, tables: 0x0101_0000n, data4k: 0x0200_0000n, data2m: 0x0400_0000n, check: 0x0600_0000n,
  ramEnd: 0x0800_0000n, gig: 0n, unbacked: [0x4000_0000n, 0x1_0000_0000n, 0x20_0000_0000n],
};
const HIGH: Layout = {
  mem: '2560M', root: 0x8100_0000n, tables: 0x8101_0000n, data4k: 0x8200_0000n, data2m: 0x8400_0000n, check: 0x8600_0000n,
  ramEnd: 0xa000_0000n, gig: 0x8000_0000n, unbacked: [0x1_0000_0000n, 0x20_0000_0000n],
};
const DATA4K_PAGES = 64;
const DATA2M_PAGES = 8;
const SIZE2M = 0x20_0000n;
const SIZE1G = 0x4000_0000n;
const INTR_BASE = 0xfee0_0000n;
/** Device addresses are 64-bit. */
const TWO_64 = 1n << 64n;
const LEVEL_SIZE = [0n, 1n << 12n, 1n << 21n, 1n << 30n, 1n << 39n];

/** PTE / entry bits. */
const PTE_R = 1n;
const PTE_W = 2n;
const PTE_PS = 1n << 7n;
const PTE_SNP = 1n << 11n;
const PTE_TM = 1n << 62n;

// ---------------------------------------------------------------------------
// The case

/** One generated case. */
export interface FuzzCase {
  readonly index: number;
  /** intel-iommu / edu arguments (both targets). */
  readonly args: string[];
  readonly steps: Step[];
  /** A one-line description (configuration and operation mix). */
  readonly summary: string;
  /** The command reading edu's buffer back at the end. */
  readonly bufferReadBack: string;
}

/** A leaf the guest wrote at some point (for the pages to read back). */
interface LeafVersion {
  readonly iova: bigint;
  readonly size: bigint;
  readonly phys: bigint;
  /** Offsets inside the page a DMA may touch (1 GiB RAM leaves: the data pages only). */
  readonly lo: bigint;
  readonly hi: bigint;
}

/** A mapping the generator made (its leaf slot can be edited later). */
interface Mapping {
  readonly iova: bigint;
  readonly level: number;
  /** Address of the leaf entry. */
  readonly slot: bigint;
  /** Data offsets inside the page that stay in checked RAM (1 GiB leaves at 0). */
  readonly lo: bigint;
  readonly hi: bigint;
}

/** What a case breaks in its root / context setup (most cases: nothing). */
type Defect = 'none' | 'root-np' | 'root-rsvd' | 'root-hi' | 'root-haw' | 'ctx-np' | 'ctx-rsvd' | 'ctx-tt' | 'ctx-aw' | 'top-unbacked';
const DEFECTS: readonly Defect[] = ['root-np', 'root-rsvd', 'root-hi', 'root-haw', 'ctx-np', 'ctx-rsvd', 'ctx-tt', 'ctx-aw', 'top-unbacked'];

/**
 * What one case wrote into guest memory and where its DMAs may land, shared
 * by the legacy and the scalable-mode builders: the generator's copy of the
 * tables (to place things, never to predict results), every leaf ever
 * written (stale IOTLB entries may keep any of them alive), and the safety
 * rule that keeps DMAs inside memory the case controls.
 */
abstract class PlanBase<M extends Mapping = Mapping> {
  readonly setup: Step[] = [];
  /** The guest's table memory as the generator wrote it (qword address -> value). */
  protected readonly mem = new Map<bigint, bigint>();
  protected nextTable: bigint;
  protected readonly versions: LeafVersion[] = [];
  readonly mappings: M[] = [];
  /** The mapping most operations aim at, so remaps and invalidations meet cached translations. */
  hot: M | null = null;
  private readonly notes: string[] = [];
  /**
   * Set once translation may be 1:1 (a pass-through context was written or
   * TE was turned off; caches keep either alive): DMAs are then kept away
   * from low memory and MMIO, where QEMU's and vtemu's machines differ in
   * things other than VT-d (firmware shadow, HPET, ...).
   */
  identity = false;
  /** IOVA ranges where a read may have cached a translation without write permission (see taintReadOnly). */
  protected readonly tainted: (readonly [bigint, bigint])[] = [];

  constructor(
    readonly r: Rng,
    /** The unit's aw-bits. */
    readonly aw: number,
    readonly L: Layout,
  ) {
    this.nextTable = L.tables;
  }

  note(s: string): void {
    this.notes.push(s);
  }
  get summary(): string {
    return this.notes.join(' ');
  }

  // -- guest memory -------------------------------------------------------

  write64(out: Step[], addr: bigint, v: bigint): void {
    this.mem.set(addr, v);
    out.push(`writeq ${hex(addr)} ${hex(v)}`);
  }
  read64(addr: bigint): bigint {
    return this.mem.get(addr) ?? 0n;
  }
  table(): bigint {
    const t = this.nextTable;
    this.nextTable += PAGE;
    return t;
  }
  /** Every table page handed out so far. */
  tablePages(): bigint[] {
    const out: bigint[] = [];
    for (let p = this.L.tables; p < this.nextTable; p += PAGE) out.push(p);
    return out;
  }

  // -- second-stage entries -------------------------------------------------

  /** A random non-leaf entry's permission bits (mostly R|W). */
  protected dirPerm(): bigint {
    return this.r.weighted<bigint>([[90, 3n], [4, 1n], [4, 2n], [2, 0n]]);
  }

  /** Rare extra bits for an entry at `level` (reserved, ignored, above HAW). */
  protected extraBits(level: number, leaf: boolean): bigint {
    if (!this.r.chance(0.06)) return 0n;
    const hawBit = BigInt(this.r.range(this.aw, 51));
    const opts: bigint[] = [PTE_SNP, 1n << hawBit, 1n << BigInt(this.r.range(52, 61)), 1n << 63n, PTE_TM];
    if (level === 4 && !leaf) opts.push(PTE_PS);
    if (leaf && level === 2) opts.push(1n << BigInt(this.r.range(12, 20)));
    if (leaf && level === 3) opts.push(1n << BigInt(this.r.range(12, 29)));
    if (leaf && level === 1) opts.push(PTE_PS);
    return this.r.pick(opts);
  }

  /** A leaf target for a page of `level`: mostly checked RAM, sometimes the interrupt window or unbacked space. */
  protected target(level: number): { phys: bigint; lo: bigint; hi: bigint } {
    const kind = this.r.weighted<string>([[82, 'ram'], [12, 'intr'], [6, 'unbacked']]);
    if (level === 1) {
      if (kind === 'intr') return { phys: INTR_BASE + BigInt(this.r.int(256)) * PAGE, lo: 0n, hi: PAGE };
      if (kind === 'unbacked') return { phys: this.r.pick(this.L.unbacked) + BigInt(this.r.int(16)) * PAGE, lo: 0n, hi: PAGE };
      return { phys: this.L.data4k + BigInt(this.r.int(DATA4K_PAGES)) * PAGE, lo: 0n, hi: PAGE };
    }
    if (level === 2) {
      if (kind === 'intr') return { phys: INTR_BASE, lo: 0n, hi: SIZE2M };
      if (kind === 'unbacked') return { phys: this.r.pick(this.L.unbacked), lo: 0n, hi: SIZE2M };
      return { phys: this.L.data2m + BigInt(this.r.int(DATA2M_PAGES)) * SIZE2M, lo: 0n, hi: SIZE2M };
    }
    if (kind === 'intr') return { phys: 0xc000_0000n, lo: 0n, hi: SIZE1G };
    if (kind === 'unbacked') return { phys: 0x1_0000_0000n, lo: 0n, hi: SIZE1G };
    // A 1 GiB leaf at 0 maps all of RAM: keep its DMAs on the data pages.
    return { phys: this.L.gig, lo: this.L.data4k - this.L.gig, hi: this.L.data2m + BigInt(DATA2M_PAGES) * SIZE2M - this.L.gig };
  }

  /** A second-stage leaf entry value for a page of `level` at `phys`. */
  leafValue(level: number, phys: bigint): bigint {
    const r = this.r.chance(0.85) ? PTE_R : 0n;
    const w = this.r.chance(0.75) ? PTE_W : 0n;
    return phys | r | w | (level > 1 ? PTE_PS : 0n) | this.extraBits(level, true);
  }

  /**
   * True when a DMA over [iova, iova+len) can only reach memory the case
   * controls, under every leaf ever written (stale IOTLB entries) and, once
   * translation may be 1:1, under identity: never firmware, MMIO or tables
   * (writes never into the interrupt window, which would send interrupts).
   */
  safe(iova: bigint, len: bigint, write: boolean): boolean {
    const end = iova + len;
    if (end > TWO_64) return false; // would wrap around to address 0
    if (write && this.tainted.some(([a, b]) => iova < b && end > a)) return false;
    if (write && iova < INTR_BASE + 0x10_0000n && end > INTR_BASE) return false;
    for (const v of this.versions) {
      const a = iova > v.iova ? iova : v.iova;
      const b = end < v.iova + v.size ? end : v.iova + v.size;
      if (a < b && (a - v.iova < v.lo || b - v.iova > v.hi)) return false;
    }
    if (this.identity && iova < 0x1_0000_0000n) {
      const inWindow = iova >= INTR_BASE && end <= INTR_BASE + 0x10_0000n;
      if (!inWindow && (iova < (write ? this.L.data4k : 0x10_0000n) || end > this.L.ramEnd)) return false;
    }
    return true;
  }

  /**
   * Whether the translation a walk of the tables at `top` (`levels` levels,
   * `wBit` the write-permission bit of the format) would cache for `iova`
   * allows writes (true when the walk reaches no leaf: nothing is cached).
   */
  protected walkWritable(top: bigint, levels: number, wBit: bigint, iova: bigint): boolean {
    let table = top;
    let writable = true;
    for (let l = levels; l >= 1; l--) {
      const e = this.read64(table + ((iova / LEVEL_SIZE[l]!) % 512n) * 8n);
      if (e === 0n) return true;
      writable &&= (e & wBit) !== 0n;
      if (l === 1 || (l <= 3 && (e & PTE_PS) !== 0n)) return writable;
      table = e & 0xf_ffff_ffff_f000n;
    }
    return true;
  }

  /**
   * After a read DMA over [iova, iova+len): marks the leaves of `maps` (in
   * the tables at `top`) it may have cached without write permission.  A
   * write hitting such a cached translation is where vtemu follows the spec
   * (fault 5 / 0x85) and QEMU drops the write silently (issue 9: a
   * deliberate difference, pinned by intel-iommu-dma.test.ts and
   * intel-iommu-sm-dma.test.ts), so no write goes there until a global
   * IOTLB invalidation (or SRTP) has dropped every cached translation.
   */
  protected taintReadOnly(maps: readonly Mapping[], top: bigint, levels: number, wBit: bigint, iova: bigint, len: bigint): void {
    for (const m of maps) {
      const size = LEVEL_SIZE[m.level]!;
      if (iova < m.iova + size && iova + len > m.iova && !this.walkWritable(top, levels, wBit, m.iova)) this.tainted.push([m.iova, m.iova + size]);
    }
  }

  /** Marks what a read DMA over [iova, iova+len) may have cached without write permission. */
  abstract taintRead(iova: bigint, len: bigint): void;

  /** A global IOTLB flush (or SRTP): no cached translation is left. */
  clearTaint(): void {
    this.tainted.length = 0;
  }

  /** The RAM pages [iova, iova+len) may reach through any leaf ever written. */
  candidatePages(iova: bigint, len: bigint): bigint[] {
    const out: bigint[] = [];
    for (const v of this.versions) {
      const a = iova > v.iova ? iova : v.iova;
      const endV = v.iova + v.size;
      const endD = iova + len;
      const b = endD < endV ? endD : endV;
      if (a >= b) continue;
      for (let p = ((v.phys + (a - v.iova)) / PAGE) * PAGE; p < v.phys + (b - v.iova); p += PAGE) {
        if (p < this.L.ramEnd && p >= this.L.data4k) out.push(p);
      }
    }
    if (this.identity) {
      for (let p = (iova / PAGE) * PAGE; p < iova + len; p += PAGE) if (p < this.L.ramEnd && p >= this.L.data4k) out.push(p);
    }
    return out;
  }
}

/** Builds one legacy case's transcript. */
class CaseBuilder extends PlanBase {
  readonly ops: Step[] = [];
  /** RAM pages to pre-fill and to read back. */
  readonly pages = new Set<bigint>();
  te = false;

  /** Context AW field actually written, and the levels the tables are built for. */
  ctxAw = 1;
  levels = 3;
  did = 1;
  ctxTop = 0n;
  ctxLo = 0n;
  ctxHi = 0n;

  constructor(r: Rng, aw: 39 | 48, L: Layout) {
    super(r, aw, L);
  }

  override taintRead(iova: bigint, len: bigint): void {
    this.taintReadOnly(this.mappings, this.ctxTop, this.levels, PTE_W, iova, len);
  }

  /** Limit of translatable IOVAs for the context's AGAW and the unit's width. */
  get limit(): bigint {
    const agaw = 30 + 9 * this.levelsAw();
    return 1n << BigInt(Math.min(agaw, this.aw));
  }
  private levelsAw(): number {
    return this.levels - 2;
  }

  /** A random page-aligned IOVA for a leaf at `level`. */
  private iovaFor(level: number): bigint {
    const size = LEVEL_SIZE[level]!;
    const pages = this.limit / size;
    const kind = this.r.weighted<string>([[40, 'low'], [30, 'any'], [15, 'top'], [15, 'near4g']]);
    let n: bigint;
    if (kind === 'low') n = BigInt(this.r.int(Number(pages < 64n ? pages : 64n)));
    else if (kind === 'top') n = pages - 1n - BigInt(this.r.int(2));
    else if (kind === 'near4g') n = (0x1_0000_0000n / size) - 1n + BigInt(this.r.int(3));
    else n = this.r.bits(64) % pages;
    if (n < 0n) n = 0n;
    if (n >= pages) n = pages - 1n;
    return n * size;
  }

  /**
   * Maps one leaf at `level` (creating intermediate tables with random
   * permissions); skipped when the path runs into an existing leaf.
   */
  map(level: number): void {
    const iova = this.iovaFor(level);
    let table = this.ctxTop;
    for (let l = this.levels; l > level; l--) {
      const slot = table + ((iova / LEVEL_SIZE[l]!) % 512n) * 8n;
      let e = this.read64(slot);
      if (e === 0n) {
        // Rarely a table in unbacked space (the walk cannot read it: fault 7).
        const t = this.r.chance(0.08) ? this.r.pick(this.L.unbacked) : this.table();
        e = t | this.dirPerm() | this.extraBits(l, false);
        this.write64(this.setup, slot, e);
      } else if ((e & PTE_PS) !== 0n || (e & 0xf_ffff_ffff_f000n) < this.L.tables || (e & 0xf_ffff_ffff_f000n) >= this.nextTable) {
        return;
      }
      table = e & 0xf_ffff_ffff_f000n;
    }
    const slot = table + ((iova / LEVEL_SIZE[level]!) % 512n) * 8n;
    const t = this.target(level);
    const v = this.leafValue(level, t.phys);
    this.write64(this.setup, slot, v);
    this.versions.push({ iova, size: LEVEL_SIZE[level]!, phys: t.phys, lo: t.lo, hi: t.hi });
    this.mappings.push({ iova, level, slot, lo: t.lo, hi: t.hi });
  }

  /** Rewrites a mapping's leaf (new target / permissions, or clears it). */
  remap(out: Step[], m: Mapping): void {
    if (this.r.chance(0.2)) {
      this.write64(out, m.slot, 0n);
      return;
    }
    const t = this.target(m.level);
    this.write64(out, m.slot, this.leafValue(m.level, t.phys));
    this.versions.push({ iova: m.iova, size: LEVEL_SIZE[m.level]!, phys: t.phys, lo: t.lo, hi: t.hi });
  }

  // -- context ------------------------------------------------------------

  /**
   * A context entry for edu: valid (present, TT 0 or sometimes 2, no
   * reserved bits) unless `defect` names what to break.
   */
  contextValue(defect: Defect = 'none'): [bigint, bigint] {
    const r = this.r;
    const present = defect === 'ctx-np' ? 0n : 1n;
    const fpd = r.chance(0.15) ? 2n : 0n;
    const tt = defect === 'ctx-tt' ? r.pick([1n, 3n]) : r.chance(0.1) ? 2n : 0n;
    if (tt === 2n) this.identity = true;
    let lo = this.ctxTop | present | fpd | (tt << 2n);
    let hi = BigInt(defect === 'ctx-aw' ? r.pick([0, 3, 4, 7, this.aw === 39 ? 2 : 0]) : this.ctxAw) | (BigInt(this.did) << 8n);
    if (defect === 'ctx-rsvd') {
      const which = r.int(4);
      if (which === 0) lo |= 1n << BigInt(r.range(4, 11));
      else if (which === 1) hi |= 1n << 7n;
      else if (which === 2) hi |= 1n << BigInt(r.range(24, 63));
      else lo |= 1n << BigInt(r.range(this.aw, 63));
    }
    if (r.chance(0.05)) hi |= BigInt(r.range(3, 6)) << 3n; // ignored bits 6:3
    return [lo, hi];
  }

  pickDid(): number {
    return this.r.weighted<number>([[40, 1], [25, 2], [10, 0], [25, this.r.range(3, 0xffff)]]);
  }
}

// ---------------------------------------------------------------------------
// Transcript pieces

/** Step the 100 ms of virtual time an edu DMA takes, then poll its run bit clear. */
const dmaDone: Step = {
  before: { ns: 100_000_000 },
  poll: `readl ${hex(BAR + EDU.CMD)}`,
  until: (reply: string) => (parseInt(reply.slice(3), 16) & 1) === 0,
  quiet: true,
};

function dmaSteps(out: Step[], toRam: boolean, ram: bigint, bufOff: number, count: number): void {
  const buf = EDU_BUF + BigInt(bufOff);
  out.push(`writeq ${hex(BAR + EDU.SRC)} ${hex(toRam ? buf : ram)}`);
  out.push(`writeq ${hex(BAR + EDU.DST)} ${hex(toRam ? ram : buf)}`);
  out.push(`writeq ${hex(BAR + EDU.CNT)} ${hex(count)}`);
  out.push(`writeq ${hex(BAR + EDU.CMD)} ${hex(EDU_CMD_RUN | (toRam ? EDU_CMD_TO_RAM : 0n))}`);
  out.push(dmaDone);
}

function faultSteps(out: Step[]): void {
  out.push(`readl ${hex(VTD + REG.FSTS)}`, `readl ${hex(VTD + REG.FECTL)}`);
  out.push(`readq ${hex(VTD + REG.FRCD)}`, `readq ${hex(VTD + REG.FRCD + 8n)}`);
}

function readPages(out: Step[], pages: Iterable<bigint>): void {
  for (const p of new Set(pages)) out.push(`b64read ${hex(p)} 0x1000`);
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

// ---------------------------------------------------------------------------
// Operations

/** A DMA IOVA: mapped (with offsets that may cross the page end), unmapped, or out of range. */
function dmaIova(b: CaseBuilder, count: number, toRam: boolean): bigint {
  const r = b.r;
  const kind = r.weighted<string>([[72, 'mapped'], [9, 'unmapped'], [7, 'beyond'], [4, 'edge'], [3, 'huge'], [toRam ? 0 : 3, 'intr'], [2, 'wide']]);
  const c = BigInt(count);
  if (kind === 'mapped' && b.mappings.length > 0) {
    const m = b.hot && r.chance(0.6) ? b.hot : r.pick(b.mappings);
    const size = LEVEL_SIZE[m.level]!;
    const span = m.hi - m.lo;
    let off: bigint;
    if (r.chance(0.25)) off = m.hi - BigInt(r.range(1, count)); // runs off the page end
    else off = m.lo + (span > c ? r.bits(40) % (span - c) : 0n);
    if (off < 0n) off = 0n;
    if (off >= size) off = size - 1n;
    return m.iova + off;
  }
  if (kind === 'beyond') return b.limit + r.bits(20) + (r.chance(0.5) ? 0n : r.bits(8) << 20n);
  if (kind === 'edge') return b.limit - BigInt(r.range(1, count));
  if (kind === 'huge') {
    // Above 2^53 (not exact as a double); often near a page end, where rounding would change the page.
    const v = r.bits(64) | (1n << BigInt(r.range(53, 63)));
    return r.chance(0.5) ? v | 0xf00n : v;
  }
  if (kind === 'intr') return INTR_BASE - (r.chance(0.5) ? BigInt(r.range(1, count)) : -BigInt(r.int(0x100000)));
  if (kind === 'wide') return (1n << BigInt(b.aw)) + r.bits(12);
  return (r.bits(64) % b.limit) & ~0x3n;
}

/** One DMA (at `at` if given and safe, else at a random IOVA); returns its IOVA, or -1 when none was safe. */
/**
 * One edu DMA at `at` or at an IOVA `pick` proposes (up to 12 tries, only
 * where the plan says it is safe), with its fault readout; the pages it may
 * write are read back.  Returns the IOVA, or -1 when none was safe.
 */
function dmaWith<M extends Mapping>(
  b: PlanBase<M>,
  out: Step[],
  dmaPages: bigint[],
  pick: (count: number, toRam: boolean) => bigint,
  at?: bigint,
): bigint {
  const r = b.r;
  const count = r.weighted<number>([[30, 4], [15, 8], [15, r.range(1, 64)], [25, r.range(1, EDU_SAFE)], [15, EDU_SAFE]]);
  const bufOff = r.int(EDU_SAFE - count + 1);
  const toRam = r.chance(0.5);
  let iova = at !== undefined && b.safe(at, BigInt(count), toRam) ? at : -1n;
  for (let tries = 0; tries < 12 && iova < 0n && at === undefined; tries++) {
    const v = pick(count, toRam);
    if (b.safe(v, BigInt(count), toRam)) iova = v;
  }
  if (iova < 0n) return -1n;
  dmaSteps(out, toRam, iova, bufOff, count);
  faultSteps(out);
  // Mostly clear the record, so the next DMA's fault is recorded rather than collapsed.
  if (r.chance(0.7)) out.push(`writel ${hex(VTD + REG.FRCD + 12n)} 0x80000000`);
  const pages = b.candidatePages(iova, BigInt(count));
  dmaPages.push(...pages);
  if (toRam) readPages(out, pages);
  else b.taintRead(iova, BigInt(count));
  b.note(`dma:${toRam ? 'w' : 'r'}@${hex(iova)}+${count}`);
  return iova;
}

/** A legacy-mode DMA (dmaWith over the legacy IOVA picker). */
function dmaOp(b: CaseBuilder, out: Step[], dmaPages: bigint[], at?: bigint): bigint {
  return dmaWith(b, out, dmaPages, (count, toRam) => dmaIova(b, count, toRam), at);
}

/**
 * A staleness probe: a DMA caches a translation of the hot mapping, its leaf
 * is rewritten (with the right, a wrong or no invalidation), and a DMA at
 * the same IOVA shows which translation the unit used.
 */
function probeOp(b: CaseBuilder, out: Step[], dmaPages: bigint[]): void {
  const m = b.hot;
  if (!m) return;
  const iova = dmaOp(b, out, dmaPages, m.iova + m.lo + (b.r.bits(40) % (m.hi - m.lo)));
  if (iova < 0n) return;
  remapOp(b, out, m);
  dmaOp(b, out, dmaPages, iova);
}

/** Register-based context-cache invalidation (random granularity / SID / FM). */
function ccmd(b: CaseBuilder, out: Step[], kind?: 'global' | 'device' | 'wrong' | 'domain' | 'none'): void {
  const r = b.r;
  const k = kind ?? r.weighted<string>([[35, 'global'], [30, 'device'], [10, 'domain'], [15, 'wrong'], [10, 'none']]);
  let cirg: bigint;
  let sid = BigInt(EDU_SID);
  if (k === 'global') cirg = 1n;
  else if (k === 'domain') cirg = 2n;
  else if (k === 'device') cirg = 3n;
  else if (k === 'wrong') {
    cirg = 3n;
    sid = BigInt(r.pick([0x10, 0x0, 0x100 | EDU_DEVFN, 0x0a]));
  } else cirg = 0n;
  const fm = BigInt(r.int(4));
  const v = (1n << 63n) | (cirg << 61n) | (fm << 32n) | (sid << 16n) | BigInt(r.chance(0.5) ? b.did : r.int(0x10000));
  out.push(`writeq ${hex(VTD + REG.CCMD)} ${hex(v)}`, `readq ${hex(VTD + REG.CCMD)}`);
  b.note(`ccmd:${k}`);
}

/** Register-based IOTLB invalidation (random granularity / DID / IVA / AM). */
function iotlb(b: CaseBuilder, out: Step[], kind?: 'global' | 'domain' | 'page' | 'wrong' | 'none'): void {
  const r = b.r;
  const k = kind ?? r.weighted<string>([[25, 'global'], [25, 'domain'], [35, 'page'], [10, 'wrong'], [5, 'none']]);
  const did = BigInt(k === 'wrong' ? (b.did + 1 + r.int(3)) & 0xffff : b.did);
  let iirg = 0n;
  if (k === 'global') iirg = 1n;
  else if (k === 'domain' || k === 'wrong') iirg = 2n;
  else if (k === 'page') iirg = 3n;
  if (iirg === 3n) {
    const m = b.mappings.length > 0 && r.chance(0.8) ? (b.hot && r.chance(0.7) ? b.hot : r.pick(b.mappings)) : null;
    const addr = m ? m.iova + (r.bits(30) % LEVEL_SIZE[m.level]!) : r.bits(b.aw);
    const am = BigInt(r.weighted<number>([[50, 0], [35, r.range(1, 18)], [15, r.range(19, 63)]]));
    const ih = r.chance(0.3) ? 1n << 6n : 0n;
    out.push(`writeq ${hex(VTD + REG.IVA)} ${hex((addr & ~0xfffn) | ih | am | (r.chance(0.1) ? BigInt(r.int(0x1000)) : 0n))}`);
  }
  if (iirg === 1n) b.clearTaint();
  const drw = r.chance(0.3) ? BigInt(r.int(4)) << 48n : 0n;
  const v = (1n << 63n) | (iirg << 60n) | drw | (did << 32n);
  out.push(`writeq ${hex(VTD + REG.IOTLB)} ${hex(v)}`, `readq ${hex(VTD + REG.IOTLB)}`);
  b.note(`iotlb:${k}`);
}

function remapOp(b: CaseBuilder, out: Step[], which?: Mapping): void {
  if (b.mappings.length === 0) return;
  const m = which ?? (b.hot && b.r.chance(0.6) ? b.hot : b.r.pick(b.mappings));
  b.remap(out, m);
  b.note('remap');
  const inv = b.r.weighted<string>([[40, 'right'], [25, 'none'], [20, 'random'], [15, 'global']]);
  if (inv === 'right') {
    out.push(`writeq ${hex(VTD + REG.IVA)} ${hex(m.iova | BigInt(m.level === 1 ? 0 : 9 * (m.level - 1)))}`);
    out.push(`writeq ${hex(VTD + REG.IOTLB)} ${hex((1n << 63n) | (3n << 60n) | (BigInt(b.did) << 32n))}`, `readq ${hex(VTD + REG.IOTLB)}`);
  } else if (inv === 'random') iotlb(b, out);
  else if (inv === 'global') iotlb(b, out, 'global');
}

/**
 * A context probe: a DMA caches edu's context entry, the entry changes
 * (presence, TT, DID, FPD), the context cache is invalidated rightly, wrongly
 * or not, the IOTLB mostly flushed, and a DMA at the same IOVA shows which
 * entry the unit used.
 */
function contextProbeOp(b: CaseBuilder, out: Step[], dmaPages: bigint[]): void {
  const iova = dmaOp(b, out, dmaPages);
  if (iova < 0n) return;
  const r = b.r;
  if (r.chance(0.3)) b.did = b.pickDid();
  const [lo, hi] = b.contextValue(r.chance(0.4) ? r.pick(DEFECTS.filter((d) => d.startsWith('ctx'))) : 'none');
  const ctx = b.read64(b.L.root) & ~0xfffn;
  b.write64(out, ctx + BigInt(EDU_DEVFN) * 16n, lo);
  b.write64(out, ctx + BigInt(EDU_DEVFN) * 16n + 8n, hi);
  b.note('ctx');
  ccmd(b, out);
  if (r.chance(0.8)) iotlb(b, out, 'global');
  dmaOp(b, out, dmaPages, iova);
}

function contextOp(b: CaseBuilder, out: Step[]): void {
  const r = b.r;
  if (r.chance(0.3)) b.did = b.pickDid();
  const [lo, hi] = b.contextValue(r.chance(0.3) ? r.pick(DEFECTS.filter((d) => d.startsWith('ctx'))) : 'none');
  const ctx = b.read64(b.L.root) & ~0xfffn;
  b.write64(out, ctx + BigInt(EDU_DEVFN) * 16n, lo);
  b.write64(out, ctx + BigInt(EDU_DEVFN) * 16n + 8n, hi);
  b.note('ctx');
  if (r.chance(0.7)) ccmd(b, out);
  if (r.chance(0.6)) iotlb(b, out);
}

function faultClearOp(b: PlanBase, out: Step[]): void {
  const k = b.r.int(3);
  if (k === 0) out.push(`writel ${hex(VTD + REG.FRCD + 12n)} 0x80000000`);
  else if (k === 1) out.push(`writeq ${hex(VTD + REG.FRCD + 8n)} 0x8000000000000000`);
  else out.push(`writel ${hex(VTD + REG.FSTS)} ${hex(b.r.pick([1, 0x11, 0xff]))}`);
  out.push(`readl ${hex(VTD + REG.FSTS)}`);
  b.note('clear');
}

function gcmdOp(b: CaseBuilder, out: Step[]): void {
  const k = b.r.weighted<string>([[30, 'srtp'], [25, 'srtp-te-off'], [25, 'te-off-on'], [20, 'te-toggle']]);
  const te = b.te ? GCMD_TE : 0;
  if (k === 'srtp' || k === 'srtp-te-off') b.clearTaint();
  if (k === 'srtp') out.push(`writel ${hex(VTD + REG.GCMD)} ${hex((te | GCMD_SRTP) >>> 0)}`);
  else if (k === 'srtp-te-off') {
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_SRTP)}`);
    b.te = false;
  } else if (k === 'te-off-on') out.push(`writel ${hex(VTD + REG.GCMD)} 0x0`, `writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_TE)}`), (b.te = true);
  else {
    b.te = !b.te;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.te ? GCMD_TE : 0)}`);
  }
  // With TE off, DMAs go 1:1 until it is back on.
  if (!b.te) b.identity = true;
  out.push(`readl ${hex(VTD + REG.GSTS)}`);
  b.note(`gcmd:${k}`);
}

// ---------------------------------------------------------------------------
// A whole case

/** Generates case `index` of the run seeded with `seed`. */
export function generateCase(seed: number, index: number): FuzzCase {
  const r = new Rng((seed ^ Math.imul(index + 1, 0x9e37_79b9)) >>> 0);
  const aw = r.chance(0.25) ? 48 : 39;
  const L = r.chance(0.2) ? HIGH : LOW;
  // Properties: caching mode (no effect on results), SNP allowed in leaves (snoop-control), TT=1
  // valid (device-iotlb) and with it TM allowed in leaves (stale-tm): the generator's
  // "reserved" SNP / TM bits and TT=1 defects then become valid on both sides.
  const devIotlb = r.chance(0.15);
  const extraProps =
    `${r.chance(0.2) ? ',caching-mode=on' : ''}${r.chance(0.15) ? ',snoop-control=on' : ''}` +
    `${devIotlb ? ',device-iotlb=on' : ''}${devIotlb && r.chance(0.5) ? ',stale-tm=on' : ''}`;
  const b = new CaseBuilder(r, aw, L);
  b.note(`aw=${aw}${extraProps}${L.mem ? ` -m ${L.mem}` : ''}`);
  const s = b.setup;

  // PCI: edu BAR0 and command (memory + bus master) through CF8/CFC.
  const cfg = (reg: number) => hex((0x8000_0000 | (EDU_DEVFN << 8) | reg) >>> 0);
  s.push(`outl 0xcf8 ${cfg(0x10)}`, `outl 0xcfc ${hex(BAR)}`, `outl 0xcf8 ${cfg(0x04)}`, 'outw 0xcfc 0x6');
  s.push(`readq ${hex(VTD + 8n)}`, `readq ${hex(VTD + 0x10n)}`);

  // Most cases set up a valid root and context entry; some break one thing.
  const defect: Defect = r.chance(0.15) ? r.pick(DEFECTS) : 'none';
  if (defect !== 'none') b.note(defect);
  b.ctxAw = aw === 48 && r.chance(0.6) ? 2 : 1;
  b.levels = 2 + b.ctxAw;
  b.did = b.pickDid();
  b.ctxTop = b.table();
  // Root entry for bus 0 and edu's context entry.
  const ctxTable = b.table();
  let root = ctxTable | 1n;
  if (defect === 'root-np') root &= ~1n;
  if (defect === 'root-rsvd') root |= 1n << BigInt(r.range(1, 11));
  if (defect === 'root-haw') root |= 1n << BigInt(r.range(aw, 63));
  b.write64(s, L.root, root);
  if (defect === 'root-hi') b.write64(s, L.root + 8n, 1n << BigInt(r.int(64)));
  if (defect === 'top-unbacked') b.ctxTop = r.pick(L.unbacked);
  const [lo, hi] = b.contextValue(defect);
  b.write64(s, ctxTable + BigInt(EDU_DEVFN) * 16n, lo);
  b.write64(s, ctxTable + BigInt(EDU_DEVFN) * 16n + 8n, hi);

  // Mappings.
  if (b.ctxTop < L.ramEnd) {
    const n = r.range(2, 6);
    for (let i = 0; i < n; i++) b.map(r.weighted<number>([[72, 1], [20, 2], [8, 3]]));
    if (b.mappings.length > 0) b.hot = r.pick(b.mappings);
  }

  // Registers: RTADDR (occasionally with bits above the HAW), SRTP, TE.
  const rtHigh = r.chance(0.04) ? 1n << BigInt(r.range(aw, 63)) : 0n;
  const ops: Step[] = [];
  const dmaPages: bigint[] = [];
  ops.push(`writeq ${hex(VTD + REG.RTADDR)} ${hex(L.root | rtHigh | BigInt(r.int(0x1000)))}`);
  ops.push(`readq ${hex(VTD + REG.RTADDR)}`);
  if (r.chance(0.9)) {
    ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_SRTP)}`);
    ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_TE)}`);
  } else {
    ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_TE)}`);
    ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex((GCMD_TE | GCMD_SRTP) >>> 0)}`);
  }
  b.te = true;
  ops.push(`readl ${hex(VTD + REG.GSTS)}`);

  const nOps = r.range(3, 9);
  let dmas = 0;
  for (let i = 0; i < nOps || dmas === 0; i++) {
    const op = r.weighted<string>([[40, 'dma'], [14, 'probe'], [7, 'ctx-probe'], [8, 'remap'], [4, 'ctx'], [11, 'inv'], [9, 'clear'], [5, 'gcmd']]);
    if (op === 'dma') (dmaOp(b, ops, dmaPages), dmas++);
    else if (op === 'ctx-probe') (contextProbeOp(b, ops, dmaPages), dmas++);
    else if (op === 'probe') (probeOp(b, ops, dmaPages), dmas++);
    else if (op === 'remap') remapOp(b, ops);
    else if (op === 'ctx') contextOp(b, ops);
    else if (op === 'inv') r.chance(0.5) ? ccmd(b, ops) : iotlb(b, ops);
    else if (op === 'clear') faultClearOp(b, ops);
    else gcmdOp(b, ops);
  }

  // The end: faults, then edu's buffer copied back with translation off, and every page read again.
  faultSteps(ops);
  ops.push(`writel ${hex(VTD + REG.GCMD)} 0x0`, `readl ${hex(VTD + REG.GSTS)}`);
  dmaSteps(ops, true, L.check, 0, EDU_SAFE);
  const bufferReadBack = `b64read ${hex(L.check)} ${hex(EDU_SAFE)}`;
  ops.push(bufferReadBack);
  readPages(ops, dmaPages);

  // Pre-fill every page a DMA may touch with random bytes (tables sit below the data pages).
  const fill: Step[] = [];
  for (const p of new Set(dmaPages)) fill.push(`b64write ${hex(p)} 0x1000 ${b64(r.bytes(0x1000))}`);

  return {
    index,
    args: [...(L.mem ? ['-m', L.mem] : []), '-device', `intel-iommu,aw-bits=${aw}${extraProps}`, '-device', 'edu,dma_mask=0xffffffffffffffff'],
    steps: [...s, ...fill, ...ops],
    summary: b.summary,
    bufferReadBack,
  };
}

// ===========================================================================
// Scalable mode
//
// A case: a unit with scalable-mode=on translating either through second-
// stage tables (aw-bits 39 or 48) or first-stage ones (fsts=on, aw-bits 48),
// edu at 00:01.0 or at 00:10.0 (devfn 0x80: the upper half of the root
// entry); a scalable root table, 256-bit context entry, PASID directory and
// PASID table (requests without PASID use PASID 0's entry; the context's
// RID_PASID is random and points at a decoy entry that must not be used),
// PGTT second stage, first stage or pass-through, valid in most cases and
// broken in one way in some (each link not present or unreadable, reserved
// bits in the root and context entries, a PGTT the unit refuses, second-stage
// levels outside SAGAW, 5-level first stage, an unreadable top table); one or
// two page-table trees with 4 KiB / 2 MiB / 1 GiB leaves, random permissions
// (first stage: P, RW, US, A, D, PWT, PCD, G, PAT, XD, ignored bits),
// occasional reserved bits, leaves in the interrupt window or unbacked space,
// tables in unbacked space; first-stage mappings at sign-extended IOVAs.
// Then RTADDR (SMT), SRTP, TE and a series of operations: edu DMAs in both
// directions (mapped, unmapped, non-canonical, beyond the width, above 2^53),
// staleness probes that edit a leaf, a table entry, the PASID entry (DID,
// FPD, PGTT, table, AW, present) or the context / directory entry (FPD,
// present) and then invalidate rightly, wrongly or not at all, fault
// clearing and GCMD toggles.  Invalidations go through a 256-bit queue
// (IQA.DW: context-cache, IOTLB, PASID-IOTLB and PASID-cache descriptors,
// waits with a status write, now and then a malformed descriptor and the
// recovery from the queue error) or, in some cases, through the CCMD / IOTLB
// registers.  The structures sit at random gaps from one another.  Read
// back: FSTS, FECTL, FRCD0 after every DMA, the queue registers and status
// after every submission, the RAM every DMA may reach, edu's buffer at the
// end, and every table page (first-stage A / D bits).  What the generator
// keeps out of the transcripts (deliberate differences): see
// intel-iommu-fuzz.test.ts.

/** RTADDR.TTM = 01b (bit 10): a scalable-mode root table (spec 11.4.5). */
const RTADDR_SMT = 1n << 10n;
/** GCMD / GSTS.QIE. */
const GCMD_QIE = 0x0400_0000;
/** Queue registers and IQA.DW (spec 11.4.9). */
const QREG = { IQH: 0x80n, IQT: 0x88n, IQA: 0x90n } as const;
const IQA_DW = 1n << 11n;
/** A 256-bit queue of one page (QS = 0): 2^(QS + 7) descriptors of 32 bytes; IQH / IQT count them from bit 5. */
const QUEUE_ENTRIES = 128;
const QUEUE_INDEX_SHIFT = 5n;
const DESC_BYTES = 32n;
const FSTS_IQE = 0x10;

/** Context, PASID-directory and PASID-table entry bits (spec 9.4-9.6). */
const SMENT = { P: 1n, FPD: 2n, PRE: 0x10n } as const;
/** PASID-granular translation types (PASID entry bits 8:6). */
const PGTT = { FS: 1, SS: 2, NESTED: 3, PT: 4 } as const;
/** First-stage entry bits (spec 9.7). */
const FS = {
  P: 1n, RW: 2n, US: 4n, PWT: 8n, PCD: 0x10n, A: 0x20n, D: 0x40n, PS: 0x80n, G: 0x100n,
  /** PAT of a 2 MiB / 1 GiB leaf (bit 12); PAT of a 4 KiB leaf is bit 7. */
  PAT_LARGE: 0x1000n,
  XD: 1n << 63n,
} as const;
/** First-stage bits 62:52 are ignored. */
const FS_IGNORED_LO = 52;
const FS_IGNORED_HI = 62;
/** IOAPIC page: a 2 MiB first-stage leaf here with PAT set reaches into the interrupt window as QEMU computes it. */
const BELOW_WINDOW_2M = 0xfec0_0000n;
/** Independent stream from the legacy generator's for the same seed and index. */
const SM_STREAM = 0x5ca1_ab1e;

type Stage = 'ss' | 'fs';

/** One page-table tree of the case. */
interface Tree {
  readonly top: bigint;
  readonly levels: number;
  readonly stage: Stage;
}

/** A scalable-mode mapping: in which tree. */
interface SmMapping extends Mapping {
  readonly tree: Tree;
}

/** The PASID 0 entry as the generator last wrote it. */
interface PasidState {
  present: boolean;
  fpd: boolean;
  aw: number;
  pgtt: number;
  did: number;
  ss: bigint;
  fs: bigint;
  fspm: number;
  /** Bits no check looks at: q0 11:9, q1 63:16, q2 11:4 and 1:0, qwords 3-7. */
  junk: bigint[];
}

/** The context entry as the generator last wrote it. */
interface ContextState {
  present: boolean;
  fpd: boolean;
  dir: bigint;
  /** PRE, DTE / PASIDE (3:2), PDTS (11:9): accepted and ignored. */
  misc: bigint;
  ridPasid: number;
  ridPriv: boolean;
  /** Reserved bits (a defect) per qword. */
  rsvd: [bigint, bigint, bigint, bigint];
}

/** What a scalable case breaks (most cases: nothing). */
type SmDefect =
  | 'none' | 'rt-unbacked' | 'root-np' | 'root-rsvd' | 'root-haw' | 'ctx-unbacked' | 'ctx-np' | 'ctx-rsvd'
  | 'dir-unbacked' | 'dir-np' | 'pt-unbacked' | 'pe-np' | 'pe-pgtt' | 'pe-aw' | 'pe-fspm' | 'top-unbacked';
const SM_DEFECTS: readonly SmDefect[] = [
  'rt-unbacked', 'root-np', 'root-rsvd', 'root-haw', 'ctx-unbacked', 'ctx-np', 'ctx-rsvd',
  'dir-unbacked', 'dir-np', 'pt-unbacked', 'pe-np', 'pe-pgtt', 'pe-aw', 'pe-fspm', 'top-unbacked',
];

/** An invalidation request (a descriptor, or a register write where one exists). */
type Inv =
  | { readonly k: 'cc-global' }
  | { readonly k: 'cc-domain'; readonly did: number }
  | { readonly k: 'cc-device'; readonly did: number; readonly sid: number; readonly fm: number }
  | { readonly k: 'iotlb-global' }
  | { readonly k: 'iotlb-domain'; readonly did: number }
  | { readonly k: 'iotlb-page'; readonly did: number; readonly addr: bigint; readonly am: number; readonly ih: boolean }
  | { readonly k: 'piotlb-pasid'; readonly did: number; readonly pasid: number }
  | { readonly k: 'piotlb-page'; readonly did: number; readonly pasid: number; readonly addr: bigint; readonly am: number; readonly ih: boolean }
  | { readonly k: 'pc-domain'; readonly did: number }
  | { readonly k: 'pc-pasid'; readonly did: number; readonly pasid: number }
  | { readonly k: 'pc-global' };

/** Invalidation descriptor encodings (spec 6.5.2; type in bits 3:0, granularity in 5:4). */
const DESC = { CC: 1n, IOTLB: 2n, WAIT: 5n, PIOTLB: 6n, PC: 7n } as const;
const WAIT_SW = 1n << 5n;
/** The largest address mask (CAP.MAMV / QEMU VTD_MAMV). */
const MAMV = 18;

/** The 4 qwords of the descriptor of `inv`. */
function descriptorOf(inv: Inv): bigint[] {
  const g = (v: number) => BigInt(v) << 4n;
  const did = (v: number) => BigInt(v) << 16n;
  const pasid = (v: number) => BigInt(v) << 32n;
  const addr = (a: bigint, am: number, ih: boolean) => (a & ~0xfffn) | (ih ? 1n << 6n : 0n) | BigInt(am);
  switch (inv.k) {
    case 'cc-global': return [DESC.CC | g(1), 0n, 0n, 0n];
    case 'cc-domain': return [DESC.CC | g(2) | did(inv.did), 0n, 0n, 0n];
    case 'cc-device': return [DESC.CC | g(3) | did(inv.did) | (BigInt(inv.sid) << 32n) | (BigInt(inv.fm) << 48n), 0n, 0n, 0n];
    case 'iotlb-global': return [DESC.IOTLB | g(1), 0n, 0n, 0n];
    case 'iotlb-domain': return [DESC.IOTLB | g(2) | did(inv.did), 0n, 0n, 0n];
    case 'iotlb-page': return [DESC.IOTLB | g(3) | did(inv.did), addr(inv.addr, inv.am, inv.ih), 0n, 0n];
    case 'piotlb-pasid': return [DESC.PIOTLB | g(2) | did(inv.did) | pasid(inv.pasid), 0n, 0n, 0n];
    case 'piotlb-page': return [DESC.PIOTLB | g(3) | did(inv.did) | pasid(inv.pasid), addr(inv.addr, inv.am, inv.ih), 0n, 0n];
    case 'pc-domain': return [DESC.PC | g(0) | did(inv.did), 0n, 0n, 0n];
    case 'pc-pasid': return [DESC.PC | g(1) | did(inv.did) | pasid(inv.pasid), 0n, 0n, 0n];
    case 'pc-global': return [DESC.PC | g(3), 0n, 0n, 0n];
  }
}

/** True for what the CCMD / IOTLB registers can do. */
function registerKind(inv: Inv): boolean {
  return inv.k.startsWith('cc-') || inv.k.startsWith('iotlb-');
}

/** Builds one scalable-mode case's transcript. */
class SmCaseBuilder extends PlanBase<SmMapping> {
  readonly trees: Tree[] = [];
  readonly sid: number;
  te = false;
  qie = false;
  /** Invalidations through the 256-bit queue (else through the registers). */
  readonly useQueue: boolean;
  /** PGTT pass-through may be used in this case (its mappings then also sit where identity DMAs may go). */
  readonly ptPlan: boolean;
  root = 0n;
  ctxTable = 0n;
  dir = 0n;
  ptable = 0n;
  queueBase = 0n;
  status = 0n;
  private tail = 0;
  private token = 0;
  pe: PasidState = { present: true, fpd: false, aw: 2, pgtt: PGTT.SS, did: 1, ss: 0n, fs: 0n, fspm: 0, junk: [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n] };
  ctx: ContextState = { present: true, fpd: false, dir: 0n, misc: 0n, ridPasid: 0, ridPriv: false, rsvd: [0n, 0n, 0n, 0n] };
  dirEntry = { present: true, fpd: false, table: 0n };

  constructor(
    r: Rng,
    aw: 39 | 48,
    L: Layout,
    readonly stage: Stage,
    readonly devfn: number,
    useQueue: boolean,
    ptPlan: boolean,
  ) {
    super(r, aw, L);
    this.sid = devfn;
    this.useQueue = useQueue;
    this.ptPlan = ptPlan;
  }

  /** A table page, after a random gap of 0-2 pages (so that no two cases lay their structures out alike). */
  override table(): bigint {
    this.nextTable += PAGE * BigInt(this.r.int(3));
    return super.table();
  }

  /** The PASID entry's PGTT of this unit's stage. */
  get stagePgtt(): number {
    return this.stage === 'fs' ? PGTT.FS : PGTT.SS;
  }

  /**
   * IOVAs below this translate without a range fault: second stage
   * 2^min(30 + 9 * AW, aw-bits); first stage the positive canonical half,
   * 2^(width - 1) with width = min(30 + 9 * AW, aw-bits) as QEMU computes it.
   */
  get limit(): bigint {
    const width = Math.min(30 + 9 * this.pe.aw, this.aw);
    return this.stage === 'fs' ? 1n << BigInt(width - 1) : 1n << BigInt(width);
  }

  /**
   * Whether PASID 0's entry as written fails its own checks: not present, a
   * PGTT the unit refuses, second-stage levels outside SAGAW, first-stage
   * levels other than 4.
   */
  peFaults(): boolean {
    const p = this.pe;
    if (!p.present) return true;
    if (p.pgtt === PGTT.PT) return false;
    if (p.pgtt !== this.stagePgtt) return true;
    if (p.pgtt === PGTT.SS) return !(p.aw === 1 || (p.aw === 2 && this.aw === 48));
    return p.fspm !== 0;
  }

  /** The tree the PASID entry names for this unit's stage. */
  activeTree(): Tree | undefined {
    const top = this.stage === 'fs' ? this.pe.fs : this.pe.ss;
    return this.trees.find((t) => t.top === top);
  }

  // -- page tables ----------------------------------------------------------

  /** A random page-aligned IOVA for a leaf at `level` of `tree`. */
  private iovaFor(tree: Tree, level: number): bigint {
    const size = LEVEL_SIZE[level]!;
    const width = tree.stage === 'fs' ? Math.min(30 + 9 * this.pe.aw, this.aw) - 1 : Math.min(30 + 9 * (tree.levels - 2), this.aw);
    const pages = (1n << BigInt(width)) / size;
    const kind = this.r.weighted<string>([
      [36, 'low'], [22, 'any'], [10, 'top'], [8, 'near4g'], [tree.stage === 'fs' ? 14 : 0, 'neg'], [this.ptPlan ? 20 : 4, 'ram'],
    ]);
    if (pages === 0n) return 0n;
    let n: bigint;
    if (kind === 'neg') {
      // Sign-extended: the top of the 64-bit space, canonical for the PASID entry's width.
      n = BigInt(this.r.int(Number(pages < 64n ? pages : 64n)));
      return TWO_64 - (n + 1n) * size;
    }
    if (kind === 'ram') {
      const base = level === 1 ? this.L.data4k : level === 2 ? this.L.data2m : this.L.gig;
      n = base / size + BigInt(level === 3 ? 0 : this.r.int(level === 1 ? DATA4K_PAGES : DATA2M_PAGES));
    } else if (kind === 'low') n = BigInt(this.r.int(Number(pages < 64n ? pages : 64n)));
    else if (kind === 'top') n = pages - 1n - BigInt(this.r.int(2));
    else if (kind === 'near4g') n = (0x1_0000_0000n / size) - 1n + BigInt(this.r.int(3));
    else n = this.r.bits(64) % pages;
    if (n < 0n) n = 0n;
    if (n >= pages) n = pages - 1n;
    return n * size;
  }

  /** A first-stage non-leaf entry pointing at `table` (mostly P | RW | US). */
  private fsDirValue(level: number, table: bigint): bigint {
    const r = this.r;
    let v = table;
    if (r.chance(0.97)) v |= FS.P;
    if (r.chance(0.93)) v |= FS.RW;
    if (r.chance(0.96)) v |= FS.US;
    if (r.chance(0.2)) v |= FS.A;
    if (r.chance(0.1)) v |= r.pick([FS.PWT, FS.PCD, FS.D, FS.G, FS.XD, 1n << BigInt(r.range(FS_IGNORED_LO, FS_IGNORED_HI))]);
    if (r.chance(0.04)) v |= level === 4 && r.chance(0.5) ? FS.PS : 1n << BigInt(r.range(this.aw, 51));
    return v;
  }

  /** A first-stage leaf for a page of `level` at `phys`; PAT is forced on a 2 MiB leaf at BELOW_WINDOW_2M. */
  private fsLeafValue(level: number, phys: bigint): bigint {
    const r = this.r;
    let v = phys | (level > 1 ? FS.PS : 0n);
    if (r.chance(0.97)) v |= FS.P;
    if (r.chance(0.75)) v |= FS.RW;
    if (r.chance(0.95)) v |= FS.US;
    if (r.chance(0.25)) v |= FS.A;
    if (r.chance(0.15)) v |= FS.D;
    if (r.chance(0.15)) v |= r.pick([FS.PWT, FS.PCD, FS.G, FS.XD, 1n << BigInt(r.range(FS_IGNORED_LO, FS_IGNORED_HI))]);
    if (r.chance(0.1) || phys === BELOW_WINDOW_2M) v |= level === 1 ? FS.PS : FS.PAT_LARGE;
    if (r.chance(0.05)) {
      const opts = [1n << BigInt(r.range(this.aw, 51))];
      if (level === 2) opts.push(1n << BigInt(r.range(13, 20)));
      if (level === 3) opts.push(1n << BigInt(r.range(13, 29)));
      v |= r.pick(opts);
    }
    return v;
  }

  /** A leaf value of `tree`'s format; for first stage sometimes a 2 MiB window leaf moved to BELOW_WINDOW_2M (PAT set). */
  private leafFor(tree: Tree, level: number): { value: bigint; t: { phys: bigint; lo: bigint; hi: bigint } } {
    const t = this.target(level);
    if (tree.stage === 'ss') return { value: this.leafValue(level, t.phys), t };
    if (level === 2 && t.phys === INTR_BASE && this.r.chance(0.3)) t.phys = BELOW_WINDOW_2M;
    return { value: this.fsLeafValue(level, t.phys), t };
  }

  /** A new tree of this case's stage (tables from the bump allocator, or unbacked). */
  newTree(levels: number, unbacked = false): Tree {
    const tree: Tree = { top: unbacked ? this.r.pick(this.L.unbacked) : this.table(), levels, stage: this.stage };
    this.trees.push(tree);
    return tree;
  }

  /** The address bits of a table entry. */
  private static next(e: bigint): bigint {
    return e & 0xf_ffff_ffff_f000n;
  }

  /**
   * Maps one leaf at `level` in `tree` (creating intermediate tables with
   * random bits); skipped when the path runs into an existing leaf.
   */
  map(tree: Tree, level: number): void {
    const iova = this.iovaFor(tree, level);
    let table = tree.top;
    for (let l = tree.levels; l > level; l--) {
      const slot = table + ((iova / LEVEL_SIZE[l]!) % 512n) * 8n;
      let e = this.read64(slot);
      if (e === 0n) {
        // Rarely a table in unbacked space (the walk cannot read it).
        const t = this.r.chance(0.03) ? this.r.pick(this.L.unbacked) : this.table();
        e = tree.stage === 'fs' ? this.fsDirValue(l, t) : t | this.dirPerm() | this.extraBits(l, false);
        this.write64(this.setup, slot, e);
      } else if ((e & PTE_PS) !== 0n || SmCaseBuilder.next(e) < this.L.tables || SmCaseBuilder.next(e) >= this.nextTable) {
        return;
      }
      table = SmCaseBuilder.next(e);
    }
    const slot = table + ((iova / LEVEL_SIZE[level]!) % 512n) * 8n;
    if (this.read64(slot) !== 0n) return;
    const { value, t } = this.leafFor(tree, level);
    this.write64(this.setup, slot, value);
    this.versions.push({ iova, size: LEVEL_SIZE[level]!, phys: t.phys, lo: t.lo, hi: t.hi });
    this.mappings.push({ iova, level, slot, lo: t.lo, hi: t.hi, tree });
  }

  /**
   * Whether a read through `m` can translate as the tables stand: every
   * entry on the path present with read (second stage) or P / US (first
   * stage) and no bit the generator uses as reserved, the leaf onto RAM.
   */
  reachable(m: SmMapping): boolean {
    const fs = m.tree.stage === 'fs';
    const ok = fs ? FS.P | FS.US : PTE_R;
    let table = m.tree.top;
    for (let l = m.tree.levels; l >= m.level; l--) {
      const e = this.read64(table + ((m.iova / LEVEL_SIZE[l]!) % 512n) * 8n);
      if ((e & ok) !== ok || (e & (0xfff0_0000_0000_0800n & ~(fs ? 0x7ff0_0000_0000_0800n : 0n))) !== 0n) return false;
      const next = SmCaseBuilder.next(e);
      if (l === m.level) return next >= this.L.data4k && next < this.L.ramEnd;
      if (next < this.L.tables || next >= this.nextTable) return false;
      table = next;
    }
    return false;
  }

  /** Rewrites a mapping's leaf (new target / bits, or clears it). */
  remap(out: Step[], m: SmMapping): void {
    if (this.r.chance(0.2)) {
      this.write64(out, m.slot, 0n);
      return;
    }
    const { value, t } = this.leafFor(m.tree, m.level);
    this.write64(out, m.slot, value);
    this.versions.push({ iova: m.iova, size: LEVEL_SIZE[m.level]!, phys: t.phys, lo: t.lo, hi: t.hi });
  }

  /** Flips one permission bit of a non-leaf entry on `m`'s path (the address stays). */
  editPath(out: Step[], m: SmMapping): boolean {
    const slots: bigint[] = [];
    let table = m.tree.top;
    for (let l = m.tree.levels; l > m.level; l--) {
      const slot = table + ((m.iova / LEVEL_SIZE[l]!) % 512n) * 8n;
      const e = this.read64(slot);
      if (e === 0n) break;
      slots.push(slot);
      table = SmCaseBuilder.next(e);
    }
    if (slots.length === 0) return false;
    const slot = this.r.pick(slots);
    const bits = m.tree.stage === 'fs' ? [FS.RW, FS.RW, FS.US, FS.P] : [PTE_W, PTE_W, PTE_R];
    this.write64(out, slot, this.read64(slot) ^ this.r.pick(bits));
    return true;
  }

  override taintRead(iova: bigint, len: bigint): void {
    const tree = this.activeTree();
    if (tree) this.taintReadOnly(this.mappings.filter((m) => m.tree === tree), tree.top, tree.levels, tree.stage === 'fs' ? FS.RW : PTE_W, iova, len);
  }

  // -- root, context, PASID directory and PASID entry ------------------------

  /** The four qwords of edu's context entry. */
  ctxQwords(): bigint[] {
    const c = this.ctx;
    const val0 = c.dir | (c.present ? SMENT.P : 0n) | (c.fpd ? SMENT.FPD : 0n) | c.misc | c.rsvd[0];
    const val1 = BigInt(c.ridPasid) | (c.ridPriv ? 1n << 20n : 0n) | c.rsvd[1];
    return [val0, val1, c.rsvd[2], c.rsvd[3]];
  }

  writeContext(out: Step[]): void {
    const at = this.ctxTable + BigInt(this.devfn & 0x7f) * 32n;
    this.ctxQwords().forEach((q, i) => this.write64(out, at + BigInt(i) * 8n, q));
  }

  writeDirEntry(out: Step[]): void {
    const d = this.dirEntry;
    this.write64(out, this.dir, d.table | (d.present ? SMENT.P : 0n) | (d.fpd ? SMENT.FPD : 0n));
  }

  /** The eight qwords of PASID 0's entry. */
  peQwords(): bigint[] {
    const p = this.pe;
    const q0 = p.ss | (BigInt(p.pgtt) << 6n) | (BigInt(p.aw) << 2n) | (p.fpd ? SMENT.FPD : 0n) | (p.present ? SMENT.P : 0n) | p.junk[0]!;
    const q1 = BigInt(p.did) | p.junk[1]!;
    const q2 = p.fs | (BigInt(p.fspm) << 2n) | p.junk[2]!;
    return [q0, q1, q2, ...p.junk.slice(3, 8)];
  }

  writePasidEntry(out: Step[]): void {
    this.peQwords().forEach((q, i) => this.write64(out, this.ptable + BigInt(i) * 8n, q));
    if (this.pe.pgtt === PGTT.PT) this.identity = true;
  }

  /** Junk in the bits of a PASID entry that no check looks at (mostly none). */
  randomJunk(): bigint[] {
    const r = this.r;
    const junk = [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];
    if (r.chance(0.1)) junk[0] = BigInt(r.int(8)) << 9n;
    if (r.chance(0.1)) junk[1] = r.bits(48) << 16n;
    if (r.chance(0.1)) junk[2] = BigInt(r.int(0x100)) << 4n | BigInt(r.int(4));
    if (r.chance(0.1)) junk[r.range(3, 7)] = r.bits(64);
    return junk;
  }

  pickDid(): number {
    return this.r.weighted<number>([[40, 1], [25, 2], [10, 0], [25, this.r.range(3, 0xffff)]]);
  }

  // -- invalidation -----------------------------------------------------------

  /** Enables the 256-bit queue (IQA with DW, IQT 0, GCMD.QIE with TE kept). */
  enableQueue(out: Step[]): void {
    out.push(`writeq ${hex(VTD + QREG.IQA)} ${hex(this.queueBase | IQA_DW)}`, `writeq ${hex(VTD + QREG.IQT)} 0x0`);
    this.qie = true;
    this.tail = 0;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(this.gcmdBits())}`, `readl ${hex(VTD + REG.GSTS)}`, `readq ${hex(VTD + QREG.IQA)}`);
  }

  /** The persistent GCMD bits in force (TE, QIE). */
  gcmdBits(extra = 0): number {
    return ((this.te ? GCMD_TE : 0) | (this.qie ? GCMD_QIE : 0) | extra) >>> 0;
  }

  /** Writes descriptors at the tail (wrapping), moves IQT, reads IQH, the status and FSTS back. */
  submit(out: Step[], descs: bigint[][]): void {
    const all = [...descs, [DESC.WAIT | WAIT_SW | (BigInt(++this.token) << 32n), this.status, 0n, 0n]];
    for (const d of all) {
      const at = this.queueBase + BigInt(this.tail) * DESC_BYTES;
      d.forEach((q, i) => this.write64(out, at + BigInt(i) * 8n, q));
      this.tail = (this.tail + 1) % QUEUE_ENTRIES;
    }
    out.push(`writeq ${hex(VTD + QREG.IQT)} ${hex(BigInt(this.tail) << QUEUE_INDEX_SHIFT)}`);
    out.push(`readq ${hex(VTD + QREG.IQH)}`, `readl ${hex(this.status)}`, `readl ${hex(VTD + REG.FSTS)}`);
  }

  /**
   * A malformed descriptor (reserved bit, bad granularity, AM beyond MAMV,
   * unknown type, non-zero upper half): the queue error is read, the slot
   * overwritten with a wait (status write), IQE cleared and IQT written again.
   */
  badSubmit(out: Step[]): void {
    const r = this.r;
    const bad = r.pick<bigint[]>([
      [DESC.IOTLB | (1n << 4n) | (1n << 8n), 0n, 0n, 0n],
      [DESC.PIOTLB | (BigInt(r.int(2)) << 4n) | (1n << 16n), 0n, 0n, 0n],
      [DESC.PIOTLB | (3n << 4n) | (1n << 16n), BigInt(r.range(MAMV + 1, 63)), 0n, 0n],
      [DESC.PC | (2n << 4n), 0n, 0n, 0n],
      [DESC.PC | (3n << 4n) | (1n << BigInt(r.range(52, 63))), 0n, 0n, 0n],
      [DESC.CC | (1n << 4n), 0n, r.bits(64) | 1n, 0n],
      [0xfn, 0n, 0n, 0n],
    ]);
    const slot = this.tail;
    this.submit(out, [bad]);
    out.push(`readl ${hex(VTD + REG.FSTS)}`, `readq ${hex(VTD + QREG.IQH)}`);
    // A wait needs SW (or IF): one with neither is itself a queue error.
    const at = this.queueBase + BigInt(slot) * DESC_BYTES;
    [DESC.WAIT | WAIT_SW | (BigInt(++this.token) << 32n), this.status, 0n, 0n].forEach((q, i) => this.write64(out, at + BigInt(i) * 8n, q));
    out.push(`writel ${hex(VTD + REG.FSTS)} ${hex(FSTS_IQE)}`, `writeq ${hex(VTD + QREG.IQT)} ${hex(BigInt(this.tail) << QUEUE_INDEX_SHIFT)}`);
    out.push(`readq ${hex(VTD + QREG.IQH)}`, `readl ${hex(this.status)}`, `readl ${hex(VTD + REG.FSTS)}`);
    this.note('bad-desc');
  }

  /** Issues `invs` through the queue, or those the registers can do through CCMD / IVA / IOTLB. */
  invalidate(out: Step[], invs: Inv[]): void {
    if (invs.some((i) => i.k === 'iotlb-global')) this.clearTaint();
    if (this.useQueue) {
      this.submit(out, invs.map(descriptorOf));
      this.note(`qi:${invs.map((i) => i.k).join('+')}`);
      return;
    }
    for (const inv of invs.filter(registerKind)) {
      if (inv.k.startsWith('cc-')) {
        const cirg = inv.k === 'cc-global' ? 1n : inv.k === 'cc-domain' ? 2n : 3n;
        const did = 'did' in inv ? BigInt(inv.did) : 0n;
        const sid = inv.k === 'cc-device' ? BigInt(inv.sid) : 0n;
        const fm = inv.k === 'cc-device' ? BigInt(inv.fm) : 0n;
        out.push(`writeq ${hex(VTD + REG.CCMD)} ${hex((1n << 63n) | (cirg << 61n) | (fm << 32n) | (sid << 16n) | did)}`, `readq ${hex(VTD + REG.CCMD)}`);
      } else {
        const iirg = inv.k === 'iotlb-global' ? 1n : inv.k === 'iotlb-domain' ? 2n : 3n;
        if (inv.k === 'iotlb-page') out.push(`writeq ${hex(VTD + REG.IVA)} ${hex((inv.addr & ~0xfffn) | (inv.ih ? 1n << 6n : 0n) | BigInt(inv.am))}`);
        const did = 'did' in inv ? BigInt(inv.did) : 0n;
        out.push(`writeq ${hex(VTD + REG.IOTLB)} ${hex((1n << 63n) | (iirg << 60n) | (did << 32n))}`, `readq ${hex(VTD + REG.IOTLB)}`);
      }
    }
    this.note(`reg:${invs.filter(registerKind).map((i) => i.k).join('+')}`);
  }

  /** A random invalidation (any kind, right or wrong DID / PASID / address). */
  randomInv(): Inv {
    const r = this.r;
    const did = r.chance(0.6) ? this.pe.did : this.pickDid();
    const pasid = r.chance(0.8) ? 0 : r.pick([1, this.ctx.ridPasid, r.int(1 << 20)]);
    const m = this.mappings.length > 0 && r.chance(0.8) ? (this.hot && r.chance(0.6) ? this.hot : r.pick(this.mappings)) : null;
    const addr = m ? m.iova + (r.bits(30) % LEVEL_SIZE[m.level]!) : r.bits(this.aw);
    const am = r.weighted<number>([[50, 0], [35, r.range(1, 9)], [15, r.range(10, MAMV)]]);
    const ih = r.chance(0.2);
    const kinds: Inv[] = [
      { k: 'cc-global' }, { k: 'cc-domain', did }, { k: 'cc-device', did, sid: r.chance(0.8) ? this.sid : r.int(0x10000), fm: r.int(4) },
      { k: 'iotlb-global' }, { k: 'iotlb-domain', did }, { k: 'iotlb-page', did, addr, am, ih },
      { k: 'piotlb-pasid', did, pasid }, { k: 'piotlb-page', did, pasid, addr, am, ih },
      { k: 'pc-domain', did }, { k: 'pc-pasid', did, pasid }, { k: 'pc-global' },
    ];
    const usable = this.useQueue ? kinds : kinds.filter(registerKind);
    return r.pick(usable);
  }

  /** The invalidation that makes an edit of a leaf / table entry of `m` visible (one of several right ones). */
  rightForMapping(m: SmMapping): Inv[] {
    const r = this.r;
    const did = this.pe.did;
    const am = m.level === 1 ? 0 : 9 * (m.level - 1);
    const opts: Inv[][] = [[{ k: 'iotlb-domain', did }], [{ k: 'iotlb-global' }]];
    if (m.tree.stage === 'ss') opts.push([{ k: 'iotlb-page', did, addr: m.iova, am, ih: r.chance(0.2) }]);
    else opts.push([{ k: 'iotlb-page', did, addr: r.bits(this.aw), am: 0, ih: false }]);
    if (this.useQueue) {
      opts.push([{ k: 'piotlb-pasid', did, pasid: 0 }]);
      if (m.tree.stage === 'fs') opts.push([{ k: 'piotlb-page', did, pasid: 0, addr: m.iova, am, ih: r.chance(0.2) }]);
    }
    return r.pick(opts);
  }
}

// ---------------------------------------------------------------------------
// Scalable-mode operations

/** A DMA IOVA for a scalable case: mapped, unmapped, beyond the width, non-canonical, above 2^53, ... */
function smDmaIova(b: SmCaseBuilder, count: number, toRam: boolean): bigint {
  const r = b.r;
  const fs = b.stage === 'fs';
  const kind = r.weighted<string>([
    [70, 'mapped'], [8, 'unmapped'], [6, 'beyond'], [4, 'edge'], [3, 'huge'], [toRam ? 0 : 3, 'intr'], [2, 'wide'], [fs ? 4 : 0, 'below-neg'],
  ]);
  const c = BigInt(count);
  const limit = b.limit;
  if (kind === 'mapped' && b.mappings.length > 0) {
    const tree = b.activeTree();
    const active = b.mappings.filter((m) => m.tree === tree);
    const m = b.hot && r.chance(0.5) ? b.hot : r.pick(active.length > 0 && r.chance(0.85) ? active : b.mappings);
    const size = LEVEL_SIZE[m.level]!;
    const span = m.hi - m.lo;
    let off: bigint;
    if (r.chance(0.2)) off = m.hi - BigInt(r.range(1, count)); // runs off the page end
    else off = m.lo + (span > c ? r.bits(40) % (span - c) : 0n);
    if (off < 0n) off = 0n;
    if (off >= size) off = size - 1n;
    return m.iova + off;
  }
  // First stage: from the positive half's end up to the sign-extended half, every IOVA is non-canonical.
  if (kind === 'beyond') return limit + r.bits(20) + (r.chance(0.5) ? 0n : r.bits(8) << 20n);
  if (kind === 'edge') return limit - BigInt(r.range(1, count));
  if (kind === 'below-neg') return TWO_64 - limit - BigInt(r.range(1, count));
  if (kind === 'huge') {
    const v = r.bits(64) | (1n << BigInt(r.range(53, 63)));
    return r.chance(0.5) ? v | 0xf00n : v;
  }
  if (kind === 'intr') return INTR_BASE - (r.chance(0.5) ? BigInt(r.range(1, count)) : -BigInt(r.int(0x100000)));
  if (kind === 'wide') return (1n << BigInt(b.aw)) + r.bits(12);
  return (r.bits(64) % limit) & ~0x3n;
}

/** One DMA (at `at` if given and safe, else at a random IOVA); returns its IOVA, or -1 when none was safe. */
function smDmaOp(b: SmCaseBuilder, out: Step[], dmaPages: bigint[], at?: bigint): bigint {
  return dmaWith(b, out, dmaPages, (count, toRam) => smDmaIova(b, count, toRam), at);
}

/** Right (40%), none (25%), random (20%) or global (15%) invalidation after an edit whose right one is `right`. */
function smInvalidateAfter(b: SmCaseBuilder, out: Step[], right: Inv[]): void {
  const k = b.r.weighted<string>([[40, 'right'], [25, 'none'], [20, 'random'], [15, 'global']]);
  if (k === 'right') b.invalidate(out, right);
  else if (k === 'random') b.invalidate(out, [b.randomInv()]);
  else if (k === 'global') b.invalidate(out, [{ k: 'iotlb-global' }]);
  else b.note('no-inv');
}

/** Remaps a leaf or flips a bit of a table entry on a mapping's path, then invalidates (or not). */
function smEditOp(b: SmCaseBuilder, out: Step[], which?: SmMapping): void {
  if (b.mappings.length === 0) return;
  const m = which ?? (b.hot && b.r.chance(0.6) ? b.hot : b.r.pick(b.mappings));
  if (b.r.chance(0.75) || !b.editPath(out, m)) {
    b.remap(out, m);
    b.note('remap');
  } else b.note('edit-path');
  smInvalidateAfter(b, out, b.rightForMapping(m));
}

/** A staleness probe of a leaf / table entry: DMA, edit, (in)validation, DMA at the same IOVA. */
function smProbeOp(b: SmCaseBuilder, out: Step[], dmaPages: bigint[]): void {
  const m = b.hot;
  if (!m) return;
  const iova = smDmaOp(b, out, dmaPages, m.iova + m.lo + (b.r.bits(40) % (m.hi - m.lo)));
  if (iova < 0n) return;
  smEditOp(b, out, m);
  smDmaOp(b, out, dmaPages, iova);
}

/**
 * Edits PASID 0's entry: DID, FPD, PGTT, table, AW, FSPM or presence.
 * Returns whether the entry may now fault at its own checks (the context
 * fetch then needs to see it: see pasidProbeOp).
 */
function editPasidEntry(b: SmCaseBuilder, out: Step[]): boolean {
  const r = b.r;
  const p = b.pe;
  const what = r.weighted<string>([[18, 'did'], [14, 'fpd'], [18, 'pgtt'], [14, 'tree'], [12, 'aw'], [6, 'fspm'], [10, 'present'], [8, 'junk']]);
  if (what === 'did') p.did = b.pickDid();
  else if (what === 'fpd') p.fpd = !p.fpd;
  else if (what === 'pgtt') {
    p.pgtt = r.weighted<number>([
      [50, p.pgtt === b.stagePgtt && b.ptPlan ? PGTT.PT : b.stagePgtt], [b.ptPlan ? 20 : 0, PGTT.PT],
      [10, b.stage === 'fs' ? PGTT.SS : PGTT.FS], [6, PGTT.NESTED], [6, r.pick([0, 5, 6, 7])], [8, b.stagePgtt],
    ]);
  } else if (what === 'tree') {
    const t = r.pick(b.trees);
    if (b.stage === 'fs') p.fs = t.top;
    else ((p.ss = t.top), (p.aw = t.levels - 2));
  } else if (what === 'aw') {
    // Second stage: only the tree's own AW or one outside SAGAW (another valid AW would walk the tree at the wrong depth).
    if (b.stage === 'fs') p.aw = r.weighted<number>([[40, 2], [25, 1], [15, 0], [20, r.range(3, 7)]]);
    else {
      const t = b.activeTree();
      p.aw = r.chance(0.5) && t ? t.levels - 2 : r.pick([0, 3, 4, 5, 6, 7, b.aw === 39 ? 2 : 0]);
    }
  } else if (what === 'fspm') {
    p.fspm = p.fspm === 0 ? r.range(1, 3) : 0;
  } else if (what === 'present') p.present = !p.present;
  else p.junk = b.randomJunk();
  b.writePasidEntry(out);
  b.note(`pe:${what}`);
  return b.peFaults();
}

/**
 * A PASID-entry probe: a DMA, an edit of PASID 0's entry, the invalidations
 * software owes for it (PASID-cache then PASID-IOTLB / IOTLB, as Linux
 * issues them) or wrong ones or none, and a DMA at the same IOVA.
 *
 * When the edit leaves an entry that faults at its own checks (not present,
 * a PGTT the unit refuses, AW outside SAGAW, FSPM), the context cache is
 * invalidated too before the next DMA: after a context-cache hit QEMU 11.1
 * ignores the entry's present bit and, with FPD in the context or directory
 * entry, checks nothing and walks whatever the entry holds (even aborting
 * on an AW outside SAGAW), where vtemu faults (scalable-context.ts: a
 * deliberate difference).
 */
function pasidProbeOp(b: SmCaseBuilder, out: Step[], dmaPages: bigint[]): void {
  const iova = smDmaOp(b, out, dmaPages);
  const oldDid = b.pe.did;
  const faults = editPasidEntry(b, out);
  const r = b.r;
  const did = b.pe.did;
  if (faults) b.invalidate(out, [{ k: 'cc-device', did: oldDid, sid: b.sid, fm: 0 }]);
  const k = r.weighted<string>([[45, 'right'], [20, 'none'], [20, 'random'], [15, 'partial']]);
  if (k === 'right') {
    const pc: Inv = r.pick<Inv>([{ k: 'pc-pasid', did: oldDid, pasid: 0 }, { k: 'pc-domain', did: oldDid }, { k: 'pc-global' }]);
    const tlb: Inv = r.pick<Inv>([{ k: 'piotlb-pasid', did: oldDid, pasid: 0 }, { k: 'iotlb-domain', did: oldDid }, { k: 'iotlb-global' }]);
    b.invalidate(out, b.useQueue ? [pc, tlb, ...(did !== oldDid && r.chance(0.5) ? [{ k: 'piotlb-pasid', did, pasid: 0 } as Inv] : [])] : [{ k: 'cc-global' }, { k: 'iotlb-global' }]);
  } else if (k === 'partial') {
    b.invalidate(out, [r.pick<Inv>([{ k: 'pc-pasid', did: oldDid, pasid: 0 }, { k: 'pc-global' }, { k: 'piotlb-pasid', did: oldDid, pasid: 0 }, { k: 'cc-global' }])]);
  } else if (k === 'random') b.invalidate(out, [b.randomInv(), b.randomInv()]);
  else b.note('no-inv');
  if (iova >= 0n) smDmaOp(b, out, dmaPages, iova);
}

/**
 * A context / directory probe: a DMA, an edit of edu's context entry (FPD,
 * presence, reserved bits, RID_PASID, the ignored fields) or of PASID 0's
 * directory entry (FPD, presence), the context-cache invalidation done
 * rightly, wrongly or not, the IOTLB mostly flushed, and a DMA at the same
 * IOVA.  Edits that break the chain always get a context-cache invalidation
 * (see pasidProbeOp).
 */
function contextProbeSmOp(b: SmCaseBuilder, out: Step[], dmaPages: bigint[]): void {
  const iova = smDmaOp(b, out, dmaPages);
  const r = b.r;
  const c = b.ctx;
  const what = r.weighted<string>([[20, 'ctx-fpd'], [12, 'ctx-present'], [8, 'ctx-rsvd'], [15, 'ctx-misc'], [15, 'dir-fpd'], [12, 'dir-present'], [10, 'ctx-dir']]);
  let breaks = false;
  if (what === 'ctx-fpd') c.fpd = !c.fpd;
  else if (what === 'ctx-present') ((c.present = !c.present), (breaks = !c.present));
  else if (what === 'ctx-rsvd') {
    const clean = c.rsvd.every((q) => q === 0n);
    c.rsvd = clean ? smContextRsvd(b) : [0n, 0n, 0n, 0n];
    breaks = clean;
  } else if (what === 'ctx-misc') {
    c.misc = smContextMisc(b);
    c.ridPasid = r.chance(0.5) ? 0 : r.int(1 << 20); // no decoy: whatever its directory slot holds
    c.ridPriv = r.chance(0.2);
  } else if (what === 'ctx-dir') {
    const good = c.dir === b.dir;
    c.dir = good ? r.pick(b.L.unbacked) : b.dir;
    breaks = good;
  } else if (what === 'dir-fpd') b.dirEntry.fpd = !b.dirEntry.fpd;
  else ((b.dirEntry.present = !b.dirEntry.present), (breaks = !b.dirEntry.present));
  if (what.startsWith('dir')) b.writeDirEntry(out);
  else b.writeContext(out);
  b.note(what);
  const did = b.pe.did;
  const cc = r.weighted<string>([[breaks ? 0 : 25, 'none'], [35, 'device'], [25, 'global'], [15, 'wrong']]);
  const invs: Inv[] = [];
  if (cc === 'device') invs.push({ k: 'cc-device', did, sid: b.sid, fm: 0 });
  else if (cc === 'global') invs.push({ k: 'cc-global' });
  else if (cc === 'wrong') {
    invs.push({ k: 'cc-device', did, sid: r.pick([0x10, 0x0, b.sid ^ 0x80, 0x100 | b.sid]), fm: 0 });
    if (breaks) invs.push({ k: 'cc-global' });
  }
  if (b.useQueue && r.chance(0.4)) invs.push(r.pick<Inv>([{ k: 'pc-global' }, { k: 'pc-pasid', did, pasid: 0 }]));
  if (r.chance(0.8)) invs.push(r.pick<Inv>([{ k: 'iotlb-global' }, { k: 'iotlb-domain', did }]));
  if (invs.length > 0) b.invalidate(out, invs);
  if (iova >= 0n) smDmaOp(b, out, dmaPages, iova);
}

/** Reserved bits of a context entry (spec 9.4: val0 8:5 and >= HAW, val1 63:21, val2, val3). */
function smContextRsvd(b: SmCaseBuilder): [bigint, bigint, bigint, bigint] {
  const r = b.r;
  const which = r.int(5);
  const rsvd: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, 0n];
  if (which === 0) rsvd[0] = 1n << BigInt(r.range(5, 8));
  else if (which === 1) rsvd[0] = 1n << BigInt(r.range(b.aw, 63));
  else if (which === 2) rsvd[1] = 1n << BigInt(r.range(21, 63));
  else rsvd[which - 1] = 1n << BigInt(r.int(64));
  return rsvd;
}

/** The context entry's accepted-and-ignored fields: PRE, DTE / PASIDE (3:2), PDTS (11:9). */
function smContextMisc(b: SmCaseBuilder): bigint {
  const r = b.r;
  if (!r.chance(0.4)) return 0n;
  return (r.chance(0.3) ? SMENT.PRE : 0n) | (BigInt(r.int(4)) << 2n) | (BigInt(r.int(8)) << 9n);
}

/** GCMD: SRTP (TE and QIE kept), TE off and on, or TE toggled. */
function smGcmdOp(b: SmCaseBuilder, out: Step[]): void {
  const k = b.r.weighted<string>([[40, 'srtp'], [35, 'te-off-on'], [25, 'te-toggle']]);
  if (k === 'srtp') {
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits(GCMD_SRTP))}`);
    b.clearTaint();
  } else if (k === 'te-off-on') {
    b.te = false;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits())}`);
    b.te = true;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits())}`);
  } else {
    b.te = !b.te;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits())}`);
  }
  // With TE off, DMAs go 1:1 until it is back on.
  if (!b.te) b.identity = true;
  out.push(`readl ${hex(VTD + REG.GSTS)}`);
  b.note(`gcmd:${k}`);
}

// ---------------------------------------------------------------------------
// A whole scalable-mode case

/** Generates scalable-mode case `index` of the run seeded with `seed`. */
export function generateScalableCase(seed: number, index: number): FuzzCase {
  const r = new Rng((seed ^ Math.imul(index + 1, 0x85eb_ca6b) ^ SM_STREAM) >>> 0);
  const stage: Stage = r.chance(0.5) ? 'fs' : 'ss';
  const aw: 39 | 48 = stage === 'fs' || r.chance(0.5) ? 48 : 39;
  const L = r.chance(0.2) ? HIGH : LOW;
  const devfn = r.chance(0.25) ? UPPER_DEVFN : EDU_DEVFN;
  const b = new SmCaseBuilder(r, aw, L, stage, devfn, r.chance(0.65), r.chance(0.3));

  // Properties: the stage, and now and then ones that change reserved bits (snoop-control: SNP;
  // device-iotlb + stale-tm: TM), the register file (pasid-bits, svm) or nothing visible here.
  const devIotlb = r.chance(0.15);
  const pasidBits = r.chance(0.15);
  let props = `scalable-mode=on,aw-bits=${aw}${stage === 'fs' ? ',fsts=on' : ''}`;
  if (stage === 'fs' && r.chance(0.2)) props += ',fs1gp=off';
  if (r.chance(0.2)) props += ',caching-mode=on';
  if (r.chance(0.15)) props += ',snoop-control=on';
  if (devIotlb) props += `,device-iotlb=on${r.chance(0.5) ? ',stale-tm=on' : ''}`;
  if (pasidBits) props += ',pasid-bits=20';
  if (stage === 'fs' && devIotlb && pasidBits && r.chance(0.5)) props += ',svm=on';
  b.note(`${props}${devfn === UPPER_DEVFN ? ' edu@10.0' : ''}${L.mem ? ` -m ${L.mem}` : ''}${b.useQueue ? ' qi' : ' reg-inv'}`);
  const s = b.setup;

  // PCI: edu BAR0 and command (memory + bus master) through CF8/CFC.
  const cfg = (reg: number) => hex((0x8000_0000 | (devfn << 8) | reg) >>> 0);
  s.push(`outl 0xcf8 ${cfg(0x10)}`, `outl 0xcfc ${hex(BAR)}`, `outl 0xcf8 ${cfg(0x04)}`, 'outw 0xcfc 0x6');
  s.push(`readq ${hex(VTD + 8n)}`, `readq ${hex(VTD + 0x10n)}`);

  const defect: SmDefect = r.chance(0.15) ? r.pick(SM_DEFECTS) : 'none';
  if (defect !== 'none') b.note(defect);

  // Structures: root, both context tables, PASID directory and table, trees, queue.
  b.root = L.root;
  const lower = b.table();
  const upper = b.table();
  b.ctxTable = devfn >= UPPER_DEVFN ? upper : lower;
  b.dir = b.table();
  b.ptable = b.table();
  const levels = stage === 'fs' ? 4 : aw === 48 && r.chance(0.6) ? 4 : 3;
  const first = b.newTree(levels, defect === 'top-unbacked');
  if (r.chance(0.3)) b.newTree(stage === 'fs' || aw === 39 ? levels : r.pick([3, 4]));
  if (b.useQueue) {
    b.queueBase = b.table();
    b.status = b.table();
  }

  // PASID 0's entry: the stage's PGTT (or pass-through), its tree, a DID, sometimes FPD.
  const p = b.pe;
  p.pgtt = b.ptPlan && r.chance(0.3) ? PGTT.PT : b.stagePgtt;
  p.did = b.pickDid();
  p.fpd = r.chance(0.06);
  if (stage === 'fs') {
    p.fs = first.top;
    p.aw = r.weighted<number>([[55, 2], [25, 1], [8, 0], [12, r.range(3, 7)]]);
  } else {
    p.ss = first.top;
    p.aw = levels - 2;
  }
  if (r.chance(0.3)) {
    // The other stage's pointer set too: the PGTT alone decides which one is walked.
    const other = b.table();
    if (stage === 'fs') p.ss = other;
    else p.fs = other;
  }
  p.junk = b.randomJunk();
  if (defect === 'pe-np') p.present = false;
  if (defect === 'pe-pgtt') p.pgtt = r.pick([0, 3, 5, 6, 7, stage === 'fs' ? PGTT.SS : PGTT.FS]);
  if (defect === 'pe-aw') p.aw = stage === 'fs' ? p.aw : r.pick([0, 3, 4, 7, aw === 39 ? 2 : 0]);
  if (defect === 'pe-fspm') p.fspm = r.range(1, 3);

  // Mappings (before the PASID entry is written: iovaFor reads its AW).
  for (const t of b.trees) {
    if (t.top >= L.ramEnd) continue;
    const n = r.range(2, 6);
    for (let i = 0; i < n; i++) b.map(t, r.weighted<number>([[70, 1], [20, 2], [10, 3]]));
  }
  // The hot mapping: mostly one of the active tree whose walk can succeed, so that probes meet cached translations.
  const active = b.mappings.filter((m) => m.tree === first);
  const good = active.filter((m) => b.reachable(m));
  if (good.length > 0 && r.chance(0.85)) b.hot = r.pick(good);
  else if (active.length > 0) b.hot = r.pick(active);
  else if (b.mappings.length > 0) b.hot = r.pick(b.mappings);

  // The directory entry, the context entry (random ignored fields; RID_PASID pointing at a decoy), the root entry.
  b.dirEntry = { present: defect !== 'dir-np', fpd: r.chance(0.06), table: defect === 'pt-unbacked' ? r.pick(L.unbacked) : b.ptable };
  const c = b.ctx;
  c.present = defect !== 'ctx-np';
  c.fpd = r.chance(0.06);
  c.dir = defect === 'dir-unbacked' ? r.pick(L.unbacked) : b.dir;
  c.misc = smContextMisc(b);
  // RID_PASID below 2^15: its directory entry stays in the directory's first page (the rest is not reserved).
  c.ridPasid = r.chance(0.3) ? r.range(1, (1 << 15) - 1) : 0;
  c.ridPriv = r.chance(0.1);
  if (defect === 'ctx-rsvd') c.rsvd = smContextRsvd(b);
  b.writeDirEntry(s);
  b.writePasidEntry(s);
  if (c.ridPasid !== 0) {
    // A decoy PASID entry at RID_PASID (QEMU 11.1 and vtemu use PASID 0): valid, over an empty table.
    const empty = b.table();
    let table = b.ptable;
    const dirIndex = BigInt(c.ridPasid >> 6);
    if (dirIndex !== 0n) {
      table = b.table();
      b.write64(s, b.dir + dirIndex * 8n, table | SMENT.P);
    }
    const at = table + BigInt(c.ridPasid & 0x3f) * 64n;
    const q0 = (stage === 'ss' ? empty : 0n) | (BigInt(b.stagePgtt) << 6n) | (BigInt(levels - 2) << 2n) | SMENT.P;
    b.write64(s, at, q0);
    b.write64(s, at + 8n, BigInt(b.pickDid()));
    b.write64(s, at + 16n, stage === 'fs' ? empty : 0n);
  }
  b.writeContext(s);
  let lo = lower | SMENT.P;
  let hi = r.chance(0.7) ? upper | SMENT.P : r.chance(0.5) ? upper : 0n;
  if (devfn >= UPPER_DEVFN && !(hi & SMENT.P)) hi = upper | SMENT.P;
  if (defect === 'ctx-unbacked') {
    if (devfn >= UPPER_DEVFN) hi = r.pick(L.unbacked) | SMENT.P;
    else lo = r.pick(L.unbacked) | SMENT.P;
  }
  if (defect === 'root-np') {
    if (devfn >= UPPER_DEVFN) hi &= ~SMENT.P;
    else lo &= ~SMENT.P;
  }
  const rsvdBit = defect === 'root-rsvd' ? 1n << BigInt(r.range(1, 11)) : defect === 'root-haw' ? 1n << BigInt(r.range(aw, 63)) : 0n;
  if (r.chance(0.5)) lo |= rsvdBit;
  else hi |= rsvdBit;
  b.write64(s, b.root + 0n, lo);
  b.write64(s, b.root + 8n, hi);

  // Registers: RTADDR (SMT; sometimes bit 11 and low junk), SRTP, TE, the queue.
  const ops: Step[] = [];
  const dmaPages: bigint[] = [];
  const rt = (defect === 'rt-unbacked' ? r.pick(L.unbacked) : b.root) | RTADDR_SMT | (r.chance(0.1) ? 1n << 11n : 0n) | (r.chance(0.2) ? BigInt(r.int(0x400)) : 0n);
  ops.push(`writeq ${hex(VTD + REG.RTADDR)} ${hex(rt)}`, `readq ${hex(VTD + REG.RTADDR)}`);
  const queueFirst = b.useQueue && r.chance(0.5);
  if (queueFirst) b.enableQueue(ops);
  ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits(GCMD_SRTP))}`);
  b.te = true;
  ops.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.gcmdBits())}`, `readl ${hex(VTD + REG.GSTS)}`);
  if (b.useQueue && !queueFirst) b.enableQueue(ops);

  const nOps = r.range(4, 10);
  let dmas = 0;
  for (let i = 0; i < nOps || dmas === 0; i++) {
    const op = r.weighted<string>([[36, 'dma'], [14, 'probe'], [10, 'pe-probe'], [6, 'ctx-probe'], [8, 'edit'], [10, 'inv'], [7, 'clear'], [5, 'gcmd'], [b.useQueue ? 2 : 0, 'bad-desc']]);
    if (op === 'dma') (smDmaOp(b, ops, dmaPages), dmas++);
    else if (op === 'probe') (smProbeOp(b, ops, dmaPages), dmas++);
    else if (op === 'pe-probe') (pasidProbeOp(b, ops, dmaPages), dmas++);
    else if (op === 'ctx-probe') (contextProbeSmOp(b, ops, dmaPages), dmas++);
    else if (op === 'edit') smEditOp(b, ops);
    else if (op === 'inv') b.invalidate(ops, r.chance(0.7) ? [b.randomInv()] : [b.randomInv(), b.randomInv()]);
    else if (op === 'clear') faultClearOp(b, ops);
    else if (op === 'gcmd') smGcmdOp(b, ops);
    else b.badSubmit(ops);
  }

  // The end: faults, then edu's buffer copied back with translation off, every page read again, every table page.
  faultSteps(ops);
  ops.push(`writel ${hex(VTD + REG.GCMD)} 0x0`, `readl ${hex(VTD + REG.GSTS)}`);
  dmaSteps(ops, true, L.check, 0, EDU_SAFE);
  const bufferReadBack = `b64read ${hex(L.check)} ${hex(EDU_SAFE)}`;
  ops.push(bufferReadBack);
  readPages(ops, dmaPages);
  readPages(ops, b.tablePages());

  const fill: Step[] = [];
  for (const pg of new Set(dmaPages)) fill.push(`b64write ${hex(pg)} 0x1000 ${b64(r.bytes(0x1000))}`);
  const eduArgs = `edu,dma_mask=0xffffffffffffffff${devfn === UPPER_DEVFN ? ',addr=0x10.0' : ''}`;
  return {
    index,
    args: [...(L.mem ? ['-m', L.mem] : []), '-device', `intel-iommu,${props}`, '-device', eduArgs],
    steps: [...s, ...fill, ...ops],
    summary: b.summary,
    bufferReadBack,
  };
}
