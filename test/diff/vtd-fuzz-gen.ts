/**
 * Generator of random legacy VT-d translation cases for the differential
 * fuzzer (intel-iommu-fuzz.test.ts): a seeded PRNG, an in-memory model of the
 * guest's root / context / second-stage tables (only to decide where to put
 * things, which DMAs are safe and which RAM to read back, never to predict
 * results), and the qtest transcript of one case.
 *
 * A case: edu at 00:01.0 (SID 0x0008, BAR0 at 0xE0000000, dma_mask all-ones
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
 * off and read.
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

/** Builds one case's transcript. */
class CaseBuilder {
  readonly setup: Step[] = [];
  readonly ops: Step[] = [];
  /** The guest's table memory as the generator wrote it (qword address -> value). */
  private readonly mem = new Map<bigint, bigint>();
  private nextTable: bigint;
  private readonly versions: LeafVersion[] = [];
  readonly mappings: Mapping[] = [];
  /** The mapping most operations aim at, so remaps and invalidations meet cached translations. */
  hot: Mapping | null = null;
  /** RAM pages to pre-fill and to read back. */
  readonly pages = new Set<bigint>();
  private readonly notes: string[] = [];
  te = false;
  /**
   * Set once translation may be 1:1 (a pass-through context was written or
   * TE was turned off; caches keep either alive): DMAs are then kept away
   * from low memory and MMIO, where QEMU's and vtemu's machines differ in
   * things other than VT-d (firmware shadow, HPET, ...).
   */
  identity = false;

  readonly aw: 39 | 48;
  /** Context AW field actually written, and the levels the tables are built for. */
  ctxAw = 1;
  levels = 3;
  did = 1;
  ctxTop = 0n;
  ctxLo = 0n;
  ctxHi = 0n;

  constructor(readonly r: Rng, aw: 39 | 48, readonly L: Layout) {
    this.aw = aw;
    this.nextTable = L.tables;
  }

  note(s: string): void {
    this.notes.push(s);
  }
  get summary(): string {
    return this.notes.join(' ');
  }

  /** Limit of translatable IOVAs for the context's AGAW and the unit's width. */
  get limit(): bigint {
    const agaw = 30 + 9 * this.levelsAw();
    return 1n << BigInt(Math.min(agaw, this.aw));
  }
  private levelsAw(): number {
    return this.levels - 2;
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

  // -- tables -------------------------------------------------------------

  /** A random non-leaf entry's permission bits (mostly R|W). */
  private dirPerm(): bigint {
    return this.r.weighted<bigint>([[90, 3n], [4, 1n], [4, 2n], [2, 0n]]);
  }

  /** Rare extra bits for an entry at `level` (reserved, ignored, above HAW). */
  private extraBits(level: number, leaf: boolean): bigint {
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
  private target(level: number): { phys: bigint; lo: bigint; hi: bigint } {
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

  /** A leaf entry value for a page of `level` at `phys`. */
  leafValue(level: number, phys: bigint): bigint {
    const r = this.r.chance(0.85) ? PTE_R : 0n;
    const w = this.r.chance(0.75) ? PTE_W : 0n;
    return phys | r | w | (level > 1 ? PTE_PS : 0n) | this.extraBits(level, true);
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
      const slot = table + ((iova / LEVEL_SIZE[l - 1]!) % 512n) * 8n;
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

  /**
   * True when a DMA over [iova, iova+len) can only reach memory the case
   * controls, under every leaf ever written (stale IOTLB entries) and, once
   * translation may be 1:1, under identity: never firmware, MMIO or tables
   * (writes never into the interrupt window, which would send interrupts).
   */
  safe(iova: bigint, len: bigint, write: boolean): boolean {
    const end = iova + len;
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

  // -- context ------------------------------------------------------------

  /** A random context entry for edu (mostly valid). */
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
function dmaOp(b: CaseBuilder, out: Step[], dmaPages: bigint[], at?: bigint): bigint {
  const r = b.r;
  const count = r.weighted<number>([[30, 4], [15, 8], [15, r.range(1, 64)], [25, r.range(1, EDU_SAFE)], [15, EDU_SAFE]]);
  const bufOff = r.int(EDU_SAFE - count + 1);
  const toRam = r.chance(0.5);
  let iova = at !== undefined && b.safe(at, BigInt(count), toRam) ? at : -1n;
  for (let tries = 0; tries < 12 && iova < 0n && at === undefined; tries++) {
    const v = dmaIova(b, count, toRam);
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
  b.note(`dma:${toRam ? 'w' : 'r'}@${hex(iova)}+${count}`);
  return iova;
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

function faultClearOp(b: CaseBuilder, out: Step[]): void {
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
  if (k === 'srtp') out.push(`writel ${hex(VTD + REG.GCMD)} ${hex((te | GCMD_SRTP) >>> 0)}`);
  else if (k === 'srtp-te-off') {
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_SRTP)}`);
    b.te = false;
  } else if (k === 'te-off-on') out.push(`writel ${hex(VTD + REG.GCMD)} 0x0`, `writel ${hex(VTD + REG.GCMD)} ${hex(GCMD_TE)}`), (b.te = true);
  else {
    b.te = !b.te;
    out.push(`writel ${hex(VTD + REG.GCMD)} ${hex(b.te ? GCMD_TE : 0)}`);
  }
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
