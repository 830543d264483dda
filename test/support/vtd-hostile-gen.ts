/**
 * Hostile VT-d guests (issue 13): a seeded generator of qtest command lines
 * that aim the unit's own DMA (wait-descriptor status writes, fault and
 * invalidation-event messages, table walks) and edu's DMA and MSIs at the
 * IOMMU's register page, edu's BAR, the IOAPIC and the MSI window, build
 * self-referencing tables (a page-table entry pointing at its own table or
 * at its parent, root/context/PASID pointers into MMIO), queues that wrap
 * onto themselves or whose status writes land inside the queue, and
 * interrupt storms (FECTL unmasked while faults and queue errors repeat);
 * plus an in-process runner that times every command and a final check that
 * no device is wedged.
 *
 * Used by test/vtd-hostile-fuzz.test.ts (a few seconds per run) and meant
 * for a long driver: `generateHostileCase(rng, ops)` then
 * `runHostileCase(c, stats)` per case, any number of cases; `stats` collects
 * the operation count, the worst CPU and wall time of one command (and
 * which), host exceptions (a `FAIL internal error` reply: the qtest server
 * turns an exception into one) and wedged devices.  Nothing here predicts
 * guest-visible results: the properties are the absence of host errors,
 * bounded time per command and devices that still work.
 *
 * Layout (guest RAM, 128 MiB): tables 16 MiB up, the invalidation queue at
 * 17 MiB, status dwords at 18 MiB, DMA data at 19 MiB.  edu at 00:01.0
 * (SID 0x0008), BAR0 at 0xE0000000, dma_mask all-ones.
 */
import { buildMachine, parseCli } from '../../src/cli.js';
import type { Machine } from '../../src/machine/q35.js';
import { MmioRegion } from '../../src/memory/region.js';
import { QtestServer } from '../../src/qtest/server.js';
import { Rng } from './prng.js';

// ---- layout -------------------------------------------------------------------

const VTD = 0xfed9_0000;
/** VT-d registers (spec 11.4) the generator writes. */
const R = {
  VER: 0x00, GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, CCMD: 0x28, FSTS: 0x34, FECTL: 0x38, FEDATA: 0x3c, FEADDR: 0x40,
  IQH: 0x80, IQT: 0x88, IQA: 0x90, ICS: 0x9c, IECTL: 0xa0, IEDATA: 0xa4, IEADDR: 0xa8, IRTA: 0xb8, IVA: 0xf0, IOTLB: 0xf8,
  FRCD_HI: 0x228,
} as const;
const REG_OFFSETS: readonly number[] = Object.values(R);
const GCMD = { TE: 0x8000_0000, SRTP: 0x4000_0000, QIE: 0x0400_0000, IRE: 0x0200_0000, SIRTP: 0x0100_0000 } as const;
/** GCMD bits that are states (kept when another command is issued). */
const PERSISTENT = GCMD.TE | GCMD.QIE | GCMD.IRE;
const VER_VALUE = 'OK 0x0000000000000010';
const RTADDR_SMT = 0x400;
const IQA_DW = 0x800;

const EDU_BAR = 0xe000_0000;
const EDU_DEVFN = 0x08;
const EDU = { LIVENESS: 0x04, FACT: 0x08, STATUS: 0x20, IRQ_RAISE: 0x60, IRQ_ACK: 0x64, SRC: 0x80, DST: 0x88, CNT: 0x90, CMD: 0x98 } as const;
const EDU_OFFSETS: readonly number[] = Object.values(EDU);
const EDU_BUF = 0x40000;
const EDU_BUF_SIZE = 0x1000;
const EDU_RUN = 1;
const EDU_TO_RAM = 2;
const EDU_IRQ = 4;
/** edu's MSI capability (QEMU msi_init at the first free offset). */
const EDU_MSI_CAP = 0x40;
/** 100 ms: an edu DMA's delay. */
const DMA_DELAY_NS = 100_000_000;

const IOAPIC = 0xfec0_0000;
const MSI_WINDOW = 0xfee0_0000;
const HOLE = 0xd000_0000;

const PAGE = 0x1000;
const ROOT = 0x100_0000;
const CTX = 0x100_1000;
/** Page-table pages (and PASID structures in scalable mode). */
const TABLES = 0x100_2000;
const TABLE_PAGES = 8;
const QUEUE = 0x110_0000;
/** Queue sizes used: QS 0..2 (1-4 pages), and the largest, QS 7 (128 pages, up to 0x1180000). */
const MAX_QS = 2;
const MAX_QS_FLOOD = 7;
const STATUS = 0x120_0000;
const DATA = 0x130_0000;
/** The wedge check's status dword. */
const CHECK_STATUS = STATUS + 0xff0;
/** Guest RAM below which the queue of the wedge check must lie. */
const RAM_SIZE = 128 * 1024 * 1024;

const hex = (n: number | bigint): string => '0x' + n.toString(16);

// ---- cases --------------------------------------------------------------------

/** One generated guest: machine arguments and qtest command lines. */
export interface HostileCase {
  readonly args: readonly string[];
  readonly scalable: boolean;
  /** What the case does, for failure messages. */
  readonly summary: string;
  /** The command lines (setup included); `clock_step` lines let edu's DMA run. */
  readonly lines: readonly string[];
}

/** A target for hostile DMA: a register of the unit, of edu, the IOAPIC, the MSI window, RAM or a hole. */
function hostileAddr(rng: Rng): number {
  return rng.weighted<() => number>([
    [4, () => VTD + rng.pick(REG_OFFSETS)],
    [1, () => VTD + (rng.int(PAGE) & ~3)],
    [3, () => EDU_BAR + rng.pick(EDU_OFFSETS)],
    [1, () => IOAPIC + rng.pick([0, 0x10])],
    [2, () => MSI_WINDOW + (rng.int(PAGE) & ~3)],
    [2, () => QUEUE + (rng.int(4 * PAGE) & ~3)],
    [1, () => ROOT + (rng.int(2 * PAGE) & ~7)],
    [1, () => STATUS + (rng.int(PAGE) & ~3)],
    [1, () => HOLE],
  ])();
}

/** A page-aligned pointer for a table entry: a table page (itself, its parent...), an MMIO page or RAM. */
function tablePointer(rng: Rng): number {
  return rng.weighted<() => number>([
    [5, () => TABLES + rng.int(TABLE_PAGES) * PAGE],
    [1, () => ROOT],
    [1, () => CTX],
    [2, () => VTD],
    [1, () => EDU_BAR],
    [1, () => IOAPIC],
    [1, () => MSI_WINDOW],
    [1, () => QUEUE],
    [1, () => DATA],
  ])();
}

/** `writeq` of a 64-bit value. */
const wq = (addr: number, v: bigint | number): string => `writeq ${hex(addr)} ${hex(BigInt.asUintN(64, BigInt(v)))}`;
const wl = (addr: number, v: number): string => `writel ${hex(addr)} ${hex(v >>> 0)}`;

/** Root, context and page-table entries, some pointing at themselves, their parents or MMIO (legacy or scalable). */
function tables(rng: Rng, scalable: boolean, out: string[]): void {
  const n = rng.range(1, 6);
  for (let i = 0; i < n; i++) {
    const p = BigInt(tablePointer(rng));
    switch (rng.int(4)) {
      case 0: // root entry (bus 0 mostly); both halves in scalable mode
        out.push(wq(ROOT + (rng.chance(0.8) ? 0 : rng.int(256)) * 16 + (scalable && rng.chance(0.5) ? 8 : 0), p | 1n));
        break;
      case 1: {
        // edu's context entry: table pointer, TT/AW/DID (legacy) or PASID directory (scalable)
        const devfn = rng.chance(0.8) ? EDU_DEVFN : rng.int(256);
        if (scalable) {
          out.push(wq(CTX + (devfn & 0x7f) * 32, p | 1n), wq(CTX + (devfn & 0x7f) * 32 + 8, rng.chance(0.8) ? 0 : rng.u32()));
        } else {
          out.push(wq(CTX + devfn * 16, p | (BigInt(rng.int(4)) << 2n) | 1n), wq(CTX + devfn * 16 + 8, rng.pick([1n, 2n, 3n]) | (1n << 8n)));
        }
        break;
      }
      case 2: {
        // a page-table (or PASID directory / table) entry: next level, self, parent or a hostile leaf
        const table = TABLES + rng.int(TABLE_PAGES) * PAGE;
        const leaf = rng.chance(0.3) ? 0x80n : 0n;
        const target = rng.chance(0.3) ? BigInt(table) : rng.chance(0.3) ? BigInt(hostileAddr(rng) & ~(PAGE - 1)) : p;
        out.push(wq(table + rng.int(8) * 8, target | leaf | BigInt(rng.pick([1, 3, 3, 7]))));
        break;
      }
      default: {
        // scalable PASID entry shapes (PGTT 1-4) anywhere in a table page, or raw random qwords
        const table = TABLES + rng.int(TABLE_PAGES) * PAGE;
        const pgtt = BigInt(rng.range(1, 4));
        out.push(wq(table + rng.int(64) * 8, p | (pgtt << 6n) | (1n << 2n) | 1n), wq(table + rng.int(512) * 8, rng.bits(64)));
      }
    }
  }
}

/** Register writes that point the unit's structures, events and queue at hostile places, and GCMD commands. */
function registers(rng: Rng, scalable: boolean, out: string[]): void {
  switch (rng.int(6)) {
    case 0:
      out.push(wq(VTD + R.RTADDR, (rng.chance(0.7) ? ROOT : tablePointer(rng)) | (scalable ? RTADDR_SMT : 0)), wl(VTD + R.GCMD, GCMD.SRTP));
      break;
    case 1:
      out.push(wl(VTD + R.GCMD, rng.pick([GCMD.TE, GCMD.TE | GCMD.QIE, GCMD.QIE, 0, GCMD.TE | GCMD.IRE | GCMD.QIE])));
      break;
    case 2: // the queue: in RAM (possibly wrapping onto status writes) or in MMIO
      out.push(wq(VTD + R.IQA, (rng.chance(0.7) ? QUEUE : tablePointer(rng)) | rng.int(MAX_QS + 1) | (scalable && rng.chance(0.7) ? IQA_DW : 0)));
      break;
    case 3: // fault / invalidation events unmasked, at the APIC bus or somewhere hostile
      out.push(wl(VTD + R.FECTL, rng.chance(0.7) ? 0 : 0x8000_0000), wl(VTD + R.FEADDR, rng.chance(0.6) ? MSI_WINDOW : hostileAddr(rng)));
      out.push(wl(VTD + R.FEDATA, rng.u32()), wl(VTD + R.IECTL, 0), wl(VTD + R.IEADDR, rng.chance(0.6) ? MSI_WINDOW : hostileAddr(rng)));
      break;
    case 4: // interrupt remapping table in MMIO or RAM
      out.push(wq(VTD + R.IRTA, tablePointer(rng) | rng.int(16)), wl(VTD + R.GCMD, GCMD.SIRTP));
      break;
    default: // anything at any register
      out.push(rng.chance(0.5) ? wl(VTD + (rng.int(PAGE) & ~3), rng.u32()) : wq(VTD + (rng.int(PAGE) & ~7), rng.bits(64)));
  }
}

/** One descriptor (two qwords; 256-bit queues get two zero qwords more). */
function descriptor(rng: Rng): [bigint, bigint] {
  return rng.weighted<() => [bigint, bigint]>([
    [5, () => [0x25n | (BigInt(rng.u32()) << 32n), BigInt(hostileAddr(rng))]], // wait, status write somewhere hostile
    [2, () => [0x35n | (BigInt(rng.u32()) << 32n), BigInt(hostileAddr(rng))]], // wait SW|IF
    [1, () => [0x15n, 0n]], // wait IF
    [3, () => [0x11n, 0n]], // context-cache global
    [2, () => [0x31n | (BigInt(rng.u32() & 0xffff) << 32n) | (BigInt(rng.int(4)) << 48n), 0n]], // device-selective
    [2, () => [rng.pick([0x12n, 0x22n, 0x32n]) | (1n << 16n), BigInt(rng.int(64) * PAGE)]], // IOTLB
    [1, () => [rng.pick([0x4n, 0x14n]) | (BigInt(rng.int(16)) << 32n), 0n]], // IEC
    [1, () => [rng.pick([0x07n, 0x17n, 0x37n]) | (1n << 16n), 0n]], // PASID-cache
    [1, () => [0x6n | (BigInt(rng.int(4)) << 4n) | (1n << 16n), 0n]], // PASID-IOTLB
    [1, () => [0x3n | (BigInt(EDU_DEVFN) << 16n), 0n]], // device-TLB
    [1, () => [rng.bits(64), rng.bits(64)]], // garbage
  ])();
}

/** Descriptors at random queue indexes, then an IQT write (a wrap, the same value, or beyond the queue). */
function queue(rng: Rng, scalable: boolean, out: string[]): void {
  const wide = scalable && rng.chance(0.5);
  const size = wide ? 32 : 16;
  const count = rng.range(1, 12);
  const at = rng.int(64);
  const bytes: bigint[] = [];
  for (let i = 0; i < count; i++) {
    bytes.push(...descriptor(rng));
    if (wide) bytes.push(0n, 0n);
  }
  out.push(`write ${hex(QUEUE + at * size)} ${hex(bytes.length * 8)} 0x${leHex(bytes)}`);
  const tail = rng.weighted<() => number>([
    [6, () => (at + count) * size],
    [1, () => rng.int(4 * PAGE) & ~0xf],
    [1, () => 0],
    [1, () => rng.u32() & 0x7fff0],
  ])();
  out.push(wq(VTD + R.IQT, tail));
  if (rng.chance(0.5)) out.push(wl(VTD + R.FSTS, 0x7f));
}

/** An edu DMA between its buffer and a hostile address (or an IOVA the tables may map there), then its 100 ms. */
function eduDma(rng: Rng, out: string[]): void {
  const count = rng.weighted<() => number>([[3, () => rng.range(1, 16)], [1, () => rng.range(1, EDU_BUF_SIZE)], [1, () => 8]])();
  const off = rng.int(EDU_BUF_SIZE - count + 1);
  const far = rng.chance(0.7) ? hostileAddr(rng) : rng.int(16) * PAGE + rng.int(PAGE);
  const toRam = rng.chance(0.7);
  out.push(
    wq(EDU_BAR + EDU.SRC, toRam ? EDU_BUF + off : far),
    wq(EDU_BAR + EDU.DST, toRam ? far : EDU_BUF + off),
    wq(EDU_BAR + EDU.CNT, count),
    wq(EDU_BAR + EDU.CMD, EDU_RUN | (toRam ? EDU_TO_RAM : 0) | (rng.chance(0.5) ? EDU_IRQ : 0)),
  );
  if (rng.chance(0.3)) out.push(`write ${hex(DATA)} 0x8 0x${rng.bits(64).toString(16).padStart(16, '0')}`);
  out.push(`clock_step ${rng.range(DMA_DELAY_NS, 2 * DMA_DELAY_NS)}`);
}

/** edu's MSI aimed somewhere hostile (config space through CF8/CFC), then interrupts raised. */
function eduMsi(rng: Rng, out: string[]): void {
  const cfg = (off: number) => hex((0x8000_0000 | (EDU_DEVFN << 8) | off) >>> 0);
  out.push(`outl 0xcf8 ${cfg(EDU_MSI_CAP + 4)}`, `outl 0xcfc ${hex(hostileAddr(rng))}`);
  out.push(`outl 0xcf8 ${cfg(EDU_MSI_CAP + 8)}`, 'outl 0xcfc 0x0');
  out.push(`outl 0xcf8 ${cfg(EDU_MSI_CAP + 12)}`, `outw 0xcfc ${hex(rng.int(0x10000))}`);
  out.push(`outl 0xcf8 ${cfg(EDU_MSI_CAP)}`, `outl 0xcfc ${hex(rng.chance(0.8) ? 0x10000 : 0)}`);
  for (let i = rng.range(1, 4); i > 0; i--) out.push(wl(EDU_BAR + EDU.IRQ_RAISE, 1 << rng.int(32)), wl(EDU_BAR + EDU.IRQ_ACK, 0xffff_ffff));
}

/** Little-endian hex of qwords (a `write` command's data). */
function leHex(qwords: readonly bigint[]): string {
  return qwords.map((q) => BigInt.asUintN(64, q).toString(16).padStart(16, '0').match(/../g)!.reverse().join('')).join('');
}

/**
 * A flood: every root entry present and pointing at one context table whose
 * entries are all present (pass-through in legacy mode), then the whole
 * queue of the case's size filled with global context-cache (or PASID-cache)
 * invalidations and IQT moved: up to a full queue in one command.
 */
function flood(rng: Rng, scalable: boolean, qs: number, out: string[]): void {
  const root: bigint[] = [];
  for (let b = 0; b < 256; b++) root.push(BigInt(CTX) | 1n, scalable ? BigInt(CTX) | 1n : 0n);
  out.push(`write ${hex(ROOT)} ${hex(PAGE)} 0x${leHex(root)}`);
  const ctx: bigint[] = [];
  if (scalable) for (let d = 0; d < 128; d++) ctx.push(BigInt(TABLES) | 1n, 0n, 0n, 0n);
  else for (let d = 0; d < 256; d++) ctx.push((2n << 2n) | 1n, 1n | (1n << 8n));
  out.push(`write ${hex(ROOT + PAGE)} ${hex(PAGE)} 0x${leHex(ctx)}`);
  const wide = scalable && rng.chance(0.5);
  const size = wide ? 32 : 16;
  const entries = (PAGE << qs) / size;
  const desc: bigint[] = scalable && rng.chance(0.5) ? [0x37n, 0n] : [0x11n, 0n];
  if (wide) desc.push(0n, 0n);
  const one = leHex(desc);
  out.push(`write ${hex(QUEUE)} ${hex(entries * size)} 0x${one.repeat(entries)}`);
  out.push(wq(VTD + R.IQT, rng.int(entries) * size));
}

/** An interrupt storm: events unmasked, then faults and queue errors over and over, records cleared in between. */
function storm(rng: Rng, out: string[]): void {
  out.push(wl(VTD + R.FECTL, 0), wl(VTD + R.FEADDR, MSI_WINDOW), wl(VTD + R.FEDATA, 0x41), wl(VTD + R.IECTL, 0));
  for (let i = rng.range(4, 24); i > 0; i--) {
    out.push(`write ${hex(QUEUE)} 0x10 0x${'0e'.padEnd(32, '0')}`, wq(VTD + R.IQT, 0x10)); // an unknown type: IQE
    out.push(wl(VTD + R.FSTS, 0x7f), `writel ${hex(VTD + R.FRCD_HI + 4)} 0x80000000`);
    if (rng.chance(0.2)) eduDma(rng, out);
  }
}

/** Choices a caller may force (a warm-up run, a targeted run). */
export interface HostileOptions {
  /** Scalable mode on or off (default: random, on in 40% of the cases). */
  readonly scalable?: boolean;
  /** Start with a flood of a full QS=7 queue (default: floods come at random). */
  readonly floodFirst?: boolean;
}

/**
 * A case of about `ops` command lines: machine arguments, edu's BAR and bus
 * mastering, then a weighted mix of the hostile operations above.
 */
export function generateHostileCase(rng: Rng, ops: number, options: HostileOptions = {}): HostileCase {
  const scalable = options.scalable ?? rng.chance(0.4);
  // The queue size latched at the first enable: the largest one (QS=7, 512 KiB) in a quarter of the cases.
  const qs = options.floodFirst || rng.chance(0.25) ? MAX_QS_FLOOD : rng.int(MAX_QS + 1);
  const args = ['-accel', 'qtest', '-m', '128M', '-device', `intel-iommu,aw-bits=39${scalable ? ',scalable-mode=on' : ''}`, '-device', 'edu,dma_mask=0xffffffffffffffff'];
  const cfg = (off: number) => hex((0x8000_0000 | (EDU_DEVFN << 8) | off) >>> 0);
  const lines = [`outl 0xcf8 ${cfg(0x10)}`, `outl 0xcfc ${hex(EDU_BAR)}`, `outl 0xcf8 ${cfg(0x04)}`, 'outw 0xcfc 0x6'];
  lines.push(wq(VTD + R.IQA, QUEUE | qs), wl(VTD + R.GCMD, GCMD.QIE), wq(VTD + R.RTADDR, ROOT | (scalable ? RTADDR_SMT : 0)), wl(VTD + R.GCMD, GCMD.SRTP | GCMD.QIE));
  const kinds: string[] = [];
  if (options.floodFirst) {
    kinds.push('flood');
    flood(rng, scalable, qs, lines);
  }
  while (lines.length < ops) {
    const kind = rng.weighted<string>([
      [4, 'tables'], [4, 'registers'], [5, 'queue'], [4, 'edu'], [1, 'msi'], [1, 'storm'], [1, 'clock'], [2, 'read'], [0.3, 'flood'],
    ]);
    kinds.push(kind);
    switch (kind) {
      case 'tables': tables(rng, scalable, lines); break;
      case 'registers': registers(rng, scalable, lines); break;
      case 'queue': queue(rng, scalable, lines); break;
      case 'edu': eduDma(rng, lines); break;
      case 'msi': eduMsi(rng, lines); break;
      case 'storm': storm(rng, lines); break;
      case 'flood': flood(rng, scalable, qs, lines); break;
      case 'clock': lines.push(`clock_step ${rng.int(2 * DMA_DELAY_NS)}`); break;
      default: lines.push(`readl ${hex(rng.chance(0.5) ? VTD + rng.pick(REG_OFFSETS) : EDU_BAR + rng.pick(EDU_OFFSETS))}`);
    }
  }
  return { args, scalable, lines, summary: `${scalable ? 'scalable' : 'legacy'}: ${kinds.join(' ')}` };
}

// ---- running ------------------------------------------------------------------

/** What a run found, accumulated over cases. */
export interface HostileStats {
  /** Command lines run (guest operations; the wedge checks included). */
  ops: number;
  /** The slowest command: CPU and wall time in ms, and the line. */
  worstCpuMs: number;
  worstWallMs: number;
  worstLine: string;
  /** Replies that report a host exception (`FAIL internal error ...`), with their line. */
  readonly hostErrors: string[];
  /** Devices found wedged by the final checks. */
  readonly wedged: string[];
  /** Accesses refused by the IOMMU's and edu's re-entrancy guards (the cases do reach them). */
  reentrantRefusals: number;
  /** Messages delivered to the APIC bus (fault / invalidation events, edu MSIs). */
  interrupts: number;
}

/** Empty statistics. */
export function newHostileStats(): HostileStats {
  return { ops: 0, worstCpuMs: 0, worstWallMs: 0, worstLine: '', hostErrors: [], wedged: [], reentrantRefusals: 0, interrupts: 0 };
}

/** An in-process machine with a qtest server answering synchronously. */
class Session {
  private reply = '';
  private readonly server: QtestServer;
  constructor(readonly machine: Machine, private readonly stats: HostileStats) {
    this.server = new QtestServer(machine, (t) => {
      this.reply += t;
    });
    machine.events.on('interrupt', () => {
      stats.interrupts++;
    });
  }

  /** Runs one line, timed; returns its reply line(s). */
  run(line: string): string {
    this.reply = '';
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    this.server.handleLine(line);
    const wall = performance.now() - w0;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1000;
    const s = this.stats;
    s.ops++;
    if (cpu > s.worstCpuMs) {
      s.worstCpuMs = cpu;
      s.worstLine = line.length > 120 ? `${line.slice(0, 120)}...` : line;
    }
    if (wall > s.worstWallMs) s.worstWallMs = wall;
    if (this.reply.includes('internal error')) s.hostErrors.push(`${line.slice(0, 120)} -> ${this.reply.trim()}`);
    return this.reply.trim();
  }

  close(): void {
    const m = this.machine;
    this.stats.reentrantRefusals += m.iommus.reduce((n, u) => n + u.region.guard.blocked, 0);
    for (const d of m.devices) {
      const bar = (d.device as { mmio?: unknown }).mmio;
      if (bar instanceof MmioRegion) this.stats.reentrantRefusals += bar.guard.blocked;
    }
    this.server.close();
    m.dispose();
  }
}

/** Starts the machine of `c` (throws on a configuration the CLI refuses: a generator bug). */
function start(c: HostileCase, stats: HostileStats): Session {
  const parsed = parseCli([...c.args]);
  if (parsed.kind === 'exit') throw new Error(parsed.stderr || parsed.stdout);
  const errs: string[] = [];
  const machine = buildMachine(parsed.config, (l) => errs.push(l));
  if (!machine) throw new Error(errs.join('\n'));
  return new Session(machine, stats);
}

/** The value of an `OK 0x...` reply (0 for anything else). */
function value(reply: string): number {
  const v = reply.split(' ')[1];
  return reply.startsWith('OK') && v !== undefined ? Number(BigInt(v) & 0xffff_ffffn) : 0;
}

/**
 * The wedge checks after a case: edu's DMA engine takes and completes a new
 * command; the unit answers a register read and, with its errors cleared
 * and its queue in RAM, processes a context-cache invalidation and a wait
 * whose status write lands.  (A queue the guest put in MMIO or a hole stays
 * unusable until reset, as on hardware: then only the register read is
 * required.)
 */
function checkNotWedged(s: Session, c: HostileCase, stats: HostileStats): void {
  const wedged = (what: string) => stats.wedged.push(`${what} (${c.summary.slice(0, 200)})`);
  // The guest may have built a self-sustaining chain that keeps edu legitimately busy (QEMU would
  // run it too): edu's MSI aimed at IQT, a wait descriptor whose status write sets edu's DMA RUN
  // bit, each DMA's completion interrupt starting the next.  Stop feeding it (MSI off), then
  // require that the engine comes to rest and takes a new command.
  s.run(`outl 0xcf8 ${hex((0x8000_0000 | (EDU_DEVFN << 8) | EDU_MSI_CAP) >>> 0)}`);
  s.run('outl 0xcfc 0x0');
  s.run(`clock_step ${10 * DMA_DELAY_NS}`);
  s.run(wq(EDU_BAR + EDU.SRC, EDU_BUF));
  s.run(wq(EDU_BAR + EDU.DST, DATA));
  s.run(wq(EDU_BAR + EDU.CNT, 4));
  s.run(wq(EDU_BAR + EDU.CMD, EDU_RUN | EDU_TO_RAM));
  s.run(`clock_step ${2 * DMA_DELAY_NS}`);
  if ((value(s.run(`readq ${hex(EDU_BAR + EDU.CMD)}`)) & EDU_RUN) !== 0) wedged('edu DMA command never completes');

  if (s.run(`readl ${hex(VTD + R.VER)}`) !== VER_VALUE) wedged('intel-iommu does not answer VER');
  s.run(wl(VTD + R.FSTS, 0x7f));
  const gsts = value(s.run(`readl ${hex(VTD + R.GSTS)}`));
  if ((gsts & GCMD.QIE) === 0) {
    s.run(wq(VTD + R.IQA, QUEUE));
    s.run(wq(VTD + R.IQT, 0));
    s.run(wl(VTD + R.GCMD, (gsts & PERSISTENT) | GCMD.QIE));
  }
  // The geometry latched at the last enable and the head index, taken from the unit: IQA reads show
  // the QS written since, a DW toggle keeps the latched entry count, and IQH keeps the units of the
  // last descriptor processed, so registers alone cannot tell where the next descriptor goes.
  const q = s.machine.iommus[0]!.queue;
  const base = q.base;
  const size = q.wide ? 32 : 16;
  const entries = q.sizeEntries;
  if (base + entries * size > RAM_SIZE || (value(s.run(`readl ${hex(VTD + R.GSTS)}`)) & GCMD.QIE) === 0) return;
  // At the head: whatever the guest left between head and tail (a descriptor in error) is skipped.
  const head = q.headIndex;
  const at = (i: number) => base + ((head + i) % entries) * size;
  s.run(`writel ${hex(CHECK_STATUS)} 0x0`);
  s.run(`memset ${hex(at(0))} ${hex(size)} 0x0`);
  s.run(wq(at(0), 0x11));
  s.run(`memset ${hex(at(1))} ${hex(size)} 0x0`);
  s.run(wq(at(1), 0x25n | (0x600dn << 32n)));
  s.run(wq(at(1) + 8, CHECK_STATUS));
  s.run(wq(VTD + R.IQT, ((head + 2) % entries) * size));
  if (value(s.run(`readl ${hex(CHECK_STATUS)}`)) !== 0x600d) wedged('intel-iommu queue does not process a valid invalidation + wait');
}

/** Runs one case and its wedge checks, adding to `stats`. */
export function runHostileCase(c: HostileCase, stats: HostileStats): void {
  const s = start(c, stats);
  try {
    for (const line of c.lines) s.run(line);
    checkNotWedged(s, c, stats);
  } finally {
    s.close();
  }
}
