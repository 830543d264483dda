/**
 * Edge cases of VT-d legacy DMA remapping, differential against QEMU 11.1
 * (hw/i386/intel_iommu.c) and the VT-d spec.  Each scenario is a qtest
 * transcript (guest tables written with writeq, edu DMA run to completion
 * by stepping the virtual clock, VT-d registers and RAM read back) run on
 * QEMU 11.1 and on vtemu; the replies must be identical and the checked
 * replies must also equal the expectation written next to them (derived
 * from the spec / QEMU's source, not from a run).
 *
 * Compared since the oracle is 11.1 (QEMU 7.2 differed or was too slow):
 * FRCD.PV 0 for requests without PASID (7.2 wrote 0xFFFF), the TM bit with
 * device-iotlb and stale-tm, page-selective invalidation with the full
 * address mask, the 1024-entry IOTLB flush (hundreds of DMAs, cheap on
 * virtual time), TT=2 with ECAP.PT always set.
 *
 * Not compared here: nfr > 1 (beyond QEMU), and DMA writes into the
 * interrupt window (interrupt requests to QEMU's CPU, not observable over
 * qtest); both have unit tests.  Deprecated property names QEMU 11.1 rejects
 * (pt=off) are checked on vtemu alone.
 *
 * edu sits at 00:01.0 (SID 0x0008).  IOVA 0x7000 is mapped 1:1 in every
 * table so the edu buffer can always be written out to RAM 0x7000 and read.
 */
import { describe, expect, it } from 'vitest';
import { needQemu, hex, checkTranscripts, diffTranscripts, type Step, type TranscriptLine } from '../harness/index.js';

const qemu = needQemu('11.1', 'intel-iommu edge-case differential tests');

const VTD = 0xfed9_0000;
const R = { GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, CCMD: 0x28, FSTS: 0x34, FECTL: 0x38, IVA: 0xf0, IOTLB: 0xf8, FRCD: 0x220 } as const;
const TE = 0x8000_0000;
const SRTP = 0x4000_0000;
const RTPS = 0x4000_0000;
const ROOT = 0x100_0000;
const ROOT2 = 0x10f_0000;
/** Pages with known contents: RAM[X_ID] is what IOVA X reads untranslated. */
const X = 0x5000;
const X_ID = 0xd4d4_d4d4;
const OUT = 0x7000;
const DATA_A = 0x200_0000;
const DATA_B = 0x220_0000;
const DATA_C = 0x240_0000;
const A = 0xa1a1_a1a1;
const B = 0xb2b2_b2b2;
const C = 0xc3c3_c3c3;
const BAR = 0xe000_0000;
const EDU_BUF = 0x4_0000;
const SID = 0x0008;

const q16 = (v: number | bigint) => `OK 0x${BigInt(v).toString(16).padStart(16, '0')}`;

/**
 * FRCD high qword: F, T (read), reason, SID; PP and PV 0 (no PASID).  QEMU
 * 7.2 put PV=0xFFFF (its PCI_NO_PASID) into page-walk faults; 11.1 and the
 * spec leave PV 0 when PP is clear.  `_walk` says which stage faulted.
 */
const frcdHi = (reason: number, read = true, _walk = true) => (1n << 63n) | (read ? 1n << 62n : 0n) | (BigInt(reason) << 32n) | BigInt(SID);

/** A transcript under construction: steps plus the replies some of them must get. */
class Script {
  readonly steps: Step[] = [];
  readonly checks: { at: number; want: string; what: string }[] = [];
  private nextPage = 0x101_0000;
  /** Intermediate tables already created: PTE address -> next table. */
  private readonly tables = new Map<number, number>();

  constructor() {
    // edu BAR0 and memory + bus-master enable (00:01.0).
    this.cmd('outl 0xcf8 0x80000810', `outl 0xcfc ${hex(BAR)}`, 'outl 0xcf8 0x80000804', 'outw 0xcfc 0x6');
    this.fill(X, 0x1000, 0xd4);
    this.fill(DATA_A, 0x1000, 0xa1);
    this.fill(DATA_B, 0x1000, 0xb2);
    this.fill(DATA_C, 0x1000, 0xc3);
    this.fill(ROOT, 0x1000, 0);
  }
  cmd(...lines: Step[]): this {
    this.steps.push(...lines);
    return this;
  }
  fill(addr: number, len: number, byte: number): this {
    return this.cmd(`memset ${hex(addr)} ${hex(len)} ${hex(byte)}`);
  }
  /** A step whose reply must be `want` (an `OK 0x...` value or a literal reply). */
  check(line: string, want: number | bigint | string, what: string): this {
    this.checks.push({ at: this.steps.length, want: typeof want === 'string' ? want : q16(want), what });
    return this.cmd(line);
  }
  w64(addr: number, v: bigint | number): this {
    return this.cmd(`writeq ${hex(addr)} ${hex(BigInt(v))}`);
  }
  w32(addr: number, v: number): this {
    return this.cmd(`writel ${hex(addr)} ${hex(v >>> 0)}`);
  }
  reg32(off: number, v: number): this {
    return this.w32(VTD + off, v);
  }
  reg64(off: number, v: bigint): this {
    return this.w64(VTD + off, v);
  }
  page(): number {
    const p = this.nextPage;
    this.nextPage += 0x1000;
    this.fill(p, 0x1000, 0);
    return p;
  }
  /** Root table at `root`, SRTP (no TE). */
  srtp(root = ROOT): this {
    return this.reg64(R.RTADDR, BigInt(root)).reg32(R.GCMD, SRTP);
  }
  /** Context entry of 00:01.0 under `root` (creates the context table). */
  context(lo: bigint, hi: bigint, root = ROOT): this {
    let ctx = this.tables.get(root);
    if (ctx === undefined) {
      ctx = this.page();
      this.tables.set(root, ctx);
      this.w64(root, BigInt(ctx) | 1n);
    }
    return this.w64(ctx + 8 * 16, lo).w64(ctx + 8 * 16 + 8, hi);
  }
  /** Address of the context table under `root` (after context()). */
  contextTable(root = ROOT): number {
    return this.tables.get(root)!;
  }
  /** Maps iova -> phys with a leaf at `leaf` level; intermediate entries R|W; returns the leaf PTE address. */
  map(top: number, levels: number, iova: number, phys: number, flags = 3n, leaf = 1): number {
    let table = top;
    for (let l = levels; l > leaf; l--) {
      const at = table + (Math.floor(iova / 2 ** (12 + 9 * (l - 1))) % 512) * 8;
      let next = this.tables.get(at);
      if (next === undefined) {
        next = this.page();
        this.tables.set(at, next);
        this.w64(at, BigInt(next) | 3n);
      }
      table = next;
    }
    const at = table + (Math.floor(iova / 2 ** (12 + 9 * (leaf - 1))) % 512) * 8;
    this.w64(at, BigInt(phys) | flags | (leaf > 1 ? 0x80n : 0n));
    return at;
  }
  /** Address of the entry for iova at `level` (the path must exist). */
  pte(top: number, levels: number, iova: number, level: number): number {
    let table = top;
    for (let l = levels; l > level; l--) table = this.tables.get(table + (Math.floor(iova / 2 ** (12 + 9 * (l - 1))) % 512) * 8)!;
    return table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
  }
  /** A top table for the edu context with IOVA OUT mapped 1:1. */
  domain(levels: number): number {
    const top = this.page();
    this.map(top, levels, OUT, OUT);
    return top;
  }
  /** edu DMA: its 100 ms of virtual time stepped, then its run bit checked (polled, should it still be set). */
  dma(src: number, dst: number, count: number, toRam: boolean): this {
    this.w64(BAR + 0x80, BigInt(src)).w64(BAR + 0x88, BigInt(dst)).w64(BAR + 0x90, BigInt(count)).w64(BAR + 0x98, toRam ? 3n : 1n);
    return this.cmd({
      before: { ns: 100_000_000 },
      poll: `readl ${hex(BAR + 0x98)}`,
      until: (r: string) => (parseInt(r.slice(3), 16) & 1) === 0,
      quiet: true,
    });
  }
  /** Copies 4 bytes at `iova` through the IOMMU into the buffer and out to RAM OUT; checks RAM OUT. */
  probe(iova: number, want: number, what: string): this {
    this.fill(OUT, 4, 0);
    this.dma(iova, EDU_BUF, 4, false).dma(EDU_BUF, OUT, 4, true);
    return this.check(`readl ${hex(OUT)}`, want, what);
  }
  /** Checks FSTS and FRCD0 (high, low). */
  fault(fsts: number, hi: bigint, lo: bigint | number, what: string): this {
    return this.check(`readl ${hex(VTD + R.FSTS)}`, fsts, `${what}: FSTS`)
      .check(`readq ${hex(VTD + R.FRCD + 8)}`, hi, `${what}: FRCD hi`)
      .check(`readq ${hex(VTD + R.FRCD)}`, BigInt(lo), `${what}: FRCD lo`);
  }
  /** Expects a recorded fault for a read at `iova`, then clears it. */
  readFault(iova: number, reason: number, what: string, walk = true): this {
    this.dma(iova, EDU_BUF, 4, false);
    this.fault(2, frcdHi(reason, true, walk), iova - (iova % 0x1000), what);
    return this.reg32(R.FRCD + 12, 0x8000_0000).check(`readl ${hex(VTD + R.FSTS)}`, 0, `${what}: cleared`);
  }
  noFault(what: string): this {
    return this.check(`readl ${hex(VTD + R.FSTS)}`, 0, `${what}: no fault`);
  }
  ccGlobal(): this {
    return this.reg64(R.CCMD, (1n << 63n) | (1n << 61n));
  }
  ccDevice(sid = SID): this {
    return this.reg64(R.CCMD, (1n << 63n) | (3n << 61n) | (BigInt(sid) << 16n));
  }
  iotlbGlobal(): this {
    return this.reg64(R.IOTLB, (1n << 63n) | (1n << 60n));
  }
  psi(did: number, addr: number, am: number): this {
    return this.reg64(R.IVA, BigInt(addr) | BigInt(am)).reg64(R.IOTLB, (1n << 63n) | (3n << 60n) | (BigInt(did) << 32n));
  }
}

/** Context entry halves: table | TT | FPD | P, and AW | DID. */
const ctx = (table: number, aw: number, did: number, tt = 0): [bigint, bigint] => [
  BigInt(table) | (BigInt(tt) << 2n) | 1n,
  BigInt(aw) | (BigInt(did) << 8n),
];

const IOMMU39 = ['-device', 'intel-iommu,aw-bits=39', '-device', 'edu'];
const WIDE_EDU = 'edu,dma_mask=0xffffffffffffffff';

/** The reply of step `at` (not an asynchronous line). */
function replyOf(t: readonly TranscriptLine[], at: number): string | undefined {
  return t.find((l) => l.step === at && !l.cmd.startsWith('<'))?.reply;
}

function scenario(name: string, args: string[], build: (s: Script) => void, timeout = 60_000): void {
  it(name, async () => {
    const s = new Script();
    build(s);
    const r = await diffTranscripts(args, s.steps);
    // The oracle first: QEMU 11.1 must give the spec-derived replies.
    for (const c of s.checks) expect.soft(replyOf(r.qemu, c.at), `QEMU: ${c.what}`).toBe(c.want);
    expect(r.difference).toBeNull();
    for (const c of s.checks) expect(replyOf(r.vtemu, c.at), `vtemu: ${c.what}`).toBe(c.want);
  }, timeout);
}

/** A scenario on vtemu alone (a configuration QEMU 11.1 refuses), with the same expectations. */
function vtemuScenario(name: string, args: string[], build: (s: Script) => void): void {
  it(name, async () => {
    const s = new Script();
    build(s);
    const r = await checkTranscripts(args, s.steps, { qemu: false });
    for (const c of s.checks) expect(replyOf(r.vtemu, c.at), `vtemu: ${c.what}`).toBe(c.want);
  });
}

describe.skipIf(!qemu)('intel-iommu edge cases vs QEMU 11.1', () => {
  // QEMU decides "pass-through" per device address space whenever the
  // address spaces are refreshed (TE, SRTP, context invalidations) by reading
  // the context entry, and then bypasses the IOMMU (IOTLB and context cache
  // included) until the next refresh.
  scenario('a pass-through context seen at TE stays pass-through until a context invalidation', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1, 2)).srtp().reg32(R.GCMD, TE);
    s.context(...ctx(top, 1, 1, 0)); // multi-level before any DMA, no invalidation
    s.probe(X, X_ID, 'PT decided at TE: identity although memory now says TT=0');
    s.ccDevice();
    s.probe(X, B, 'after device-selective context invalidation: translated');
    s.noFault('pt');
  });

  scenario('a context switched to pass-through bypasses stale IOTLB entries after a context invalidation', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, B, 'multi-level');
    s.context(...ctx(top, 1, 1, 2));
    s.probe(X, B, 'PT written, not invalidated: cached');
    s.ccDevice();
    s.probe(X, X_ID, 'PT after context invalidation: identity despite the stale IOTLB entry');
    s.map(top, 3, X, DATA_C);
    s.context(...ctx(top, 1, 1)).ccGlobal();
    s.probe(X, B, 'multi-level again: the never-invalidated IOTLB entry is used');
    s.iotlbGlobal();
    s.probe(X, C, 'after IOTLB invalidation');
  });

  scenario('queued context invalidations re-decide pass-through as register ones do', IOMMU39, (s) => {
    const IQ = 0x180_0000;
    const STATUS = 0x181_0000;
    const QIE = 0x0400_0000;
    let tail = 0;
    const submit = (lo: bigint, hi: bigint, status: number) => {
      s.fill(IQ + tail * 16, 32, 0).w64(IQ + tail * 16, lo).w64(IQ + tail * 16 + 8, hi);
      s.w64(IQ + tail * 16 + 16, 0x25n | (BigInt(status) << 32n)).w64(IQ + tail * 16 + 24, BigInt(STATUS));
      tail += 2;
      s.reg64(0x88, BigInt(tail << 4)).check(`readl ${hex(STATUS)}`, status, `wait descriptor ${status}`);
    };
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, B, 'multi-level');
    s.fill(IQ, 0x1000, 0).fill(STATUS, 4, 0).reg64(0x90, BigInt(IQ)).reg64(0x88, 0n).reg32(R.GCMD, TE | QIE);
    s.context(...ctx(top, 1, 1, 2));
    submit(0x31n | (1n << 16n) | (BigInt(SID) << 32n), 0n, 1); // context-cache, device-selective
    s.probe(X, X_ID, 'PT after a queued device-selective invalidation');
    s.map(top, 3, X, DATA_C);
    s.context(...ctx(top, 1, 1));
    submit(0x11n, 0n, 2); // context-cache, global
    s.probe(X, B, 'multi-level again: stale IOTLB entry');
    submit(0x12n, 0n, 3); // IOTLB, global
    s.probe(X, C, 'after a queued IOTLB invalidation');
    s.noFault('qi');
  });

  scenario('TE off/on and SRTP flush the IOTLB and context cache; TE off is 1:1', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, B, 'TE on');
    s.map(top, 3, X, DATA_C);
    s.probe(X, B, 'stale IOTLB');
    s.reg32(R.GCMD, 0);
    s.check(`readl ${hex(VTD + R.GSTS)}`, RTPS, 'TE off: GSTS');
    s.probe(X, X_ID, 'TE off: 1:1');
    s.reg32(R.GCMD, TE);
    s.probe(X, C, 'TE on again: flushed');
    s.map(top, 3, X, DATA_A);
    s.probe(X, C, 'stale again');
    s.reg32(R.GCMD, TE | SRTP);
    s.probe(X, A, 'SRTP (same root) while TE on: flushed');
    // A second root table whose context maps X elsewhere.
    s.fill(ROOT2, 0x1000, 0);
    const top2 = s.domain(3);
    s.map(top2, 3, X, DATA_B);
    s.context(...ctx(top2, 1, 2), ROOT2);
    s.probe(X, A, 'new root written, not latched');
    s.reg64(R.RTADDR, BigInt(ROOT2)).reg32(R.GCMD, TE | SRTP);
    s.probe(X, B, 'new root latched by SRTP while TE on');
    s.noFault('te');
  });

  scenario('translation types: TT=1 with device-iotlb translates, TT=3 is invalid', ['-device', 'intel-iommu,aw-bits=39,device-iotlb=on', '-device', 'edu'], (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, B, 'TT=1 (device-TLB) translates untranslated requests');
    s.noFault('tt1');
    s.context(...ctx(top, 1, 1, 3)).ccGlobal().iotlbGlobal();
    s.readFault(X, 3, 'TT=3', false);
    s.context(...ctx(top, 0, 1, 2));
    s.readFault(X, 3, 'TT=2 with AW=0: the level is checked for pass-through too', false);
  });

  scenario('IOTLB entries keep the domain they were filled under', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, B, 'domain 1');
    s.map(top, 3, X, DATA_C);
    s.context(...ctx(top, 1, 2)).ccDevice();
    s.probe(X, B, 'moved to domain 2: the IOTLB (keyed by source ID) still hits');
    s.reg64(R.IOTLB, (1n << 63n) | (2n << 60n) | (2n << 32n));
    s.probe(X, B, 'DSI of the new domain leaves the entry tagged with the old one');
    s.reg64(R.IOTLB, (1n << 63n) | (2n << 60n) | (1n << 32n));
    s.probe(X, C, 'DSI of the old domain removes it');
  });

  scenario('SRTP latches RTADDR without bits above HAW or below 4 KiB', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1));
    s.reg64(R.RTADDR, BigInt(ROOT) | (1n << 39n) | 0xc00n);
    s.check(`readq ${hex(VTD + R.RTADDR)}`, BigInt(ROOT) | (1n << 39n) | 0xc00n, 'RTADDR reads back as written');
    s.reg32(R.GCMD, SRTP).reg32(R.GCMD, TE);
    s.probe(X, B, 'walks from the masked root');
    s.noFault('rtaddr');
  });

  scenario('translation types: TT=1 without device-iotlb is invalid; TT=2 passes through (ECAP.PT is always set)', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.readFault(X, 3, 'TT=1 without ECAP.DT', false);
    s.context(...ctx(top, 1, 1, 2)).ccDevice();
    s.probe(X, X_ID, 'TT=2: identity');
    s.context(...ctx(top, 1, 1, 0)).ccDevice();
    s.probe(X, B, 'TT=0');
    s.noFault('tt');
  });

  scenario('aw-bits=48: IOVA limit is 2^min(AGAW, MGAW); AW not in SAGAW', ['-device', 'intel-iommu,aw-bits=48', '-device', WIDE_EDU], (s) => {
    const hiIova = 2 ** 39 + X;
    const t3 = s.domain(3);
    s.map(t3, 3, X, DATA_A);
    s.context(...ctx(t3, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, A, '3-level context');
    s.readFault(hiIova, 4, '3-level context, IOVA 2^39');
    const t4 = s.domain(4);
    s.map(t4, 4, hiIova, DATA_B);
    s.context(...ctx(t4, 2, 2)).ccGlobal();
    s.probe(hiIova, B, '4-level context, IOVA 2^39');
    s.readFault(2 ** 48 + X, 4, '4-level context, IOVA 2^48');
    s.context(...ctx(t4, 3, 2)).ccGlobal().iotlbGlobal(); // X is cached: the IOTLB is looked up before the context
    s.readFault(X, 3, 'AW=3 (5-level) not in SAGAW', false);
    s.context(...ctx(t4, 0, 2));
    s.readFault(X, 3, 'AW=0 (2-level) not in SAGAW', false);
  });

  scenario('aw-bits=39: reserved bits above HAW in root and context entries', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_A);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    const ct = s.contextTable();
    s.w64(ROOT, BigInt(ct) | 1n | (1n << 39n));
    s.readFault(X, 0xa, 'root entry bit 39', false);
    s.w64(ROOT, BigInt(ct) | 1n | (1n << 11n));
    s.readFault(X, 0xa, 'root entry bit 11', false);
    s.w64(ROOT, BigInt(ct) | 1n);
    s.w64(ct + 8 * 16, BigInt(top) | 1n | (1n << 39n));
    s.readFault(X, 0xb, 'context entry bit 39', false);
    s.w64(ct + 8 * 16, BigInt(top) | 1n | (1n << 4n));
    s.readFault(X, 0xb, 'context entry bit 4', false);
    s.w64(ct + 8 * 16, BigInt(top) | 1n);
    s.w64(ct + 8 * 16 + 8, 1n | (1n << 8n) | (1n << 24n));
    s.readFault(X, 0xb, 'context entry bit 88', false);
    s.w64(ct + 8 * 16 + 8, 1n | (1n << 8n) | (0xfn << 3n)); // bits 6:3 are ignored
    s.probe(X, A, 'context entry with ignored bits 6:3');
  });

  scenario('aw-bits=48: the same bit 39 is an address (unreadable tables)', ['-device', 'intel-iommu,aw-bits=48', '-device', 'edu'], (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_A);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    const ct = s.contextTable();
    s.w64(ROOT, BigInt(ct) | 1n | (1n << 39n));
    s.readFault(X, 9, 'context table above RAM', false);
    s.w64(ROOT, BigInt(ct) | 1n);
    s.w64(ct + 8 * 16, BigInt(top) | 1n | (1n << 39n));
    s.readFault(X, 3, 'top page table above RAM');
    s.w64(ct + 8 * 16, BigInt(top) | 1n).ccGlobal();
    s.w64(s.pte(top, 3, X, 3), (1n << 39n) | 3n);
    s.readFault(X, 7, 'intermediate table above RAM');
  });

  scenario('aw-bits=48: reserved bits of second-stage entries per level', ['-device', 'intel-iommu,aw-bits=48', '-device', 'edu'], (s) => {
    const top = s.domain(4);
    s.map(top, 4, X, DATA_A);
    s.context(...ctx(top, 2, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, A, '4-level');
    s.iotlbGlobal();
    const cases: [string, number, bigint, number][] = [
      ['L4 bit 48 (above HAW)', 4, 1n << 48n, 0xc],
      ['L4 PS', 4, 0x80n, 0xc],
      ['L4 SNP', 4, 0x800n, 0xc],
      ['L4 bit 62', 4, 1n << 62n, 0xc],
      ['L3 non-leaf SNP', 3, 0x800n, 0xc],
      ['L2 non-leaf SNP', 2, 0x800n, 0xc],
      ['L1 SNP without snoop-control', 1, 0x800n, 0xc],
      ['L1 TM without device-iotlb', 1, 1n << 62n, 0xc],
      ['L1 bit 51 (above HAW)', 1, 1n << 51n, 0xc],
    ];
    for (const [what, level, bit, reason] of cases) {
      const at = s.pte(top, 4, X, level);
      const good = level === 1 ? BigInt(DATA_A) | 3n : null;
      // Rebuild the entry: intermediate entries point at the next table.
      const value = good ?? BigInt(s.pte(top, 4, X, level - 1) & ~0xfff) | 3n;
      s.w64(at, value | bit);
      s.readFault(X, reason, what);
      s.w64(at, value);
    }
    const leaf = s.pte(top, 4, X, 1);
    s.w64(leaf, BigInt(DATA_B) | 3n | (0x3ffn << 52n) | (1n << 63n)); // ignored bits 61:52 and 63
    s.probe(X, B, 'leaf with every ignored bit set');
    s.noFault('ignored');
  });

  // QEMU 7.2 accepted TM with device-iotlb alone; 11.1 also needs stale-tm.
  for (const staleTm of [false, true]) {
    scenario(`TM (bit 62) in a leaf with device-iotlb=on, stale-tm=${staleTm ? 'on' : 'off'}`, ['-device', `intel-iommu,aw-bits=39,device-iotlb=on${staleTm ? ',stale-tm=on' : ''}`, '-device', 'edu'], (s) => {
      const top = s.domain(3);
      s.map(top, 3, X, DATA_A, 3n | (1n << 62n));
      s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
      if (staleTm) s.probe(X, A, 'TM allowed').noFault('tm');
      else s.readFault(X, 0xc, 'TM reserved without stale-tm');
    });
  }

  scenario('snoop-control=on: SNP allowed in leaves only', ['-device', 'intel-iommu,aw-bits=39,snoop-control=on', '-device', 'edu'], (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_A, 3n | 0x800n);
    s.map(top, 3, 0x20_0000, DATA_B, 3n | 0x800n, 2);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, A, '4 KiB leaf with SNP');
    s.probe(0x20_0000, B, '2 MiB leaf with SNP');
    s.iotlbGlobal();
    const l2 = s.pte(top, 3, X, 2);
    s.w64(l2, BigInt(s.pte(top, 3, X, 1) & ~0xfff) | 3n | 0x800n);
    s.readFault(X, 0xc, 'L2 non-leaf with SNP');
  });

  scenario('large pages: 1 GiB in a 3-level table, reserved bits, interrupt range', ['-device', 'intel-iommu,aw-bits=39', '-device', WIDE_EDU], (s) => {
    const top = s.domain(3);
    const gib = s.map(top, 3, 0x4000_0000, 0, 3n, 3);
    s.map(top, 3, 0x8000_0000, 0xc000_0000, 3n, 3); // covers 0xFEE00000
    s.map(top, 3, X, 0xfeef_f000);
    s.map(top, 3, 0x6000, 0xfedf_f000);
    s.map(top, 3, 0x9000, 0xfef0_0000);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(0x4000_0000 + DATA_B + 0x10, B, '1 GiB leaf');
    s.readFault(0x8000_1000, 0xe, '1 GiB output covering the interrupt range');
    s.readFault(X, 0xe, '4 KiB output at 0xFEEFF000');
    s.dma(0x6000, EDU_BUF, 4, false).dma(0x9000, EDU_BUF, 4, false);
    s.noFault('outputs just outside the interrupt range');
    s.iotlbGlobal();
    s.w64(gib, 0x1000n | 3n | 0x80n);
    s.readFault(0x4000_0000 + DATA_B, 0xc, '1 GiB leaf with bit 12');
  });

  // QEMU 7.2 kept the PSI address mask in a uint8_t (AM >= 8 dropped the
  // whole domain, AM < 8 compared 8 gfn bits only); 11.1 and vtemu use the full mask.
  scenario('page-selective invalidation with AM >= 8 removes only its range (7.2 dropped the domain)', IOMMU39, (s) => {
    const top = s.domain(3);
    const inRange = s.map(top, 3, 0x2f_f000, DATA_A);
    const outside = s.map(top, 3, 0x40_0000, DATA_A);
    const sameGfnLowBits = s.map(top, 3, 0x1_2f_f000, DATA_A); // gfn differs from 0x2ff above bit 8 only
    s.context(...ctx(top, 1, 7)).srtp().reg32(R.GCMD, TE);
    for (const iova of [0x2f_f000, 0x40_0000, 0x1_2f_f000]) s.probe(iova, A, `cached 0x${iova.toString(16)}`);
    for (const pte of [inRange, outside, sameGfnLowBits]) s.w64(pte, BigInt(DATA_B) | 3n);
    s.psi(7, 0x20_0000, 9); // 0x200000-0x3fffff
    s.probe(0x2f_f000, B, 'inside the 2 MiB range: removed');
    s.probe(0x40_0000, A, 'outside: still cached');
    s.probe(0x1_2f_f000, A, 'same low gfn bits, other range: still cached');
    s.psi(7, 0x100_0000, 12); // 16 MiB at 16 MiB
    s.probe(0x1_2f_f000, B, 'AM=12 covers it');
    s.probe(0x40_0000, A, 'AM=12 elsewhere: still cached');
    s.noFault('psi');
  });

  scenario('page-selective invalidation with AM and 2 MiB pages', IOMMU39, (s) => {
    const top = s.domain(3);
    const big = s.map(top, 3, 0x20_0000, DATA_A, 3n, 2);
    s.context(...ctx(top, 1, 7)).srtp().reg32(R.GCMD, TE);
    const iova = 0x20_0000 + 0x10;
    s.probe(iova, A, '2 MiB leaf');
    const remap = (phys: number) => s.w64(big, BigInt(phys) | 0x83n);
    remap(DATA_B);
    s.probe(iova, A, 'stale');
    s.psi(8, 0x20_0000, 9);
    s.probe(iova, A, 'another domain');
    s.psi(7, 0x21_0000, 0);
    s.check(`readq ${hex(VTD + R.IOTLB)}`, (3n << 60n) | (3n << 57n) | (7n << 32n), 'IOTLB register after PSI');
    s.probe(iova, B, 'AM=0 inside the large page removes it');
    remap(DATA_C);
    s.psi(7, 0x3f_f000, 0);
    s.probe(iova, C, 'AM=0 on the last 4 KiB of the large page');
    remap(DATA_A);
    s.psi(7, 0, 10);
    s.probe(iova, A, 'AM=10 at 0 covers the page base');
    remap(DATA_B);
    s.psi(7, 0x20_0000, 19);
    s.check(`readq ${hex(VTD + R.IOTLB)}`, (3n << 60n) | (7n << 32n), 'AM=19 > MAMV: IAIG=0, IVT clear');
    s.probe(iova, A, 'not done');
  });

  // Hundreds of edu DMAs: affordable now that both sides run on virtual time (7.2 needed real time).
  scenario('the IOTLB is flushed wholesale when a 1025th entry comes in (QEMU VTD_IOTLB_MAX_SIZE)', IOMMU39, (s) => {
    const BASE = 0x100_0000;
    const top = s.domain(3);
    const pte = s.map(top, 3, X, DATA_A);
    // Pages BASE + i * 4 KiB, i < 1024: a DMA of 4 KiB from BASE + 0x800 + k * 8 KiB walks pages 2k and 2k + 1.
    for (let i = 0; i < 1024; i++) s.map(top, 3, BASE + i * 0x1000, DATA_C);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, A, 'X and OUT cached: 2 entries');
    s.w64(pte, BigInt(DATA_B) | 3n);
    for (let k = 0; k < 511; k++) s.dma(BASE + 0x800 + k * 0x2000, EDU_BUF, 0x1000, false);
    s.probe(X, A, '1024 entries: X still cached');
    s.dma(BASE + 1022 * 0x1000, EDU_BUF, 4, false);
    s.probe(X, B, 'the 1025th entry flushed them all: X walked again');
    s.noFault('iotlb size');
  }, 180_000);

  scenario('register invalidation: actual granularity written back for every request', ['-device', 'intel-iommu,aw-bits=39'], (s) => {
    const cc = (cirg: bigint, low: bigint) => s.reg64(R.CCMD, (1n << 63n) | (cirg << 61n) | (3n << 32n) | low);
    const ccmd = `readq ${hex(VTD + R.CCMD)}`;
    cc(0n, 0x12_0005n).check(ccmd, 5n, 'CIRG=0: CAIG=0, ICC clear, SID/FM write-only');
    cc(1n, 0x12_0005n).check(ccmd, (1n << 61n) | (1n << 59n) | 5n, 'CIRG=1: CAIG=1');
    cc(2n, 0x12_0005n).check(ccmd, (2n << 61n) | (1n << 59n) | 5n, 'CIRG=2 performed as global: CAIG=1');
    cc(3n, 0x12_0005n).check(ccmd, (3n << 61n) | (3n << 59n) | 5n, 'CIRG=3: CAIG=3');
    cc(0n, 0n).check(ccmd, 0n, 'CIRG=0 again clears CAIG');
    const tlb = (iirg: bigint) => s.reg64(R.IOTLB, (1n << 63n) | (iirg << 60n) | (3n << 48n) | (9n << 32n));
    const iotlb = `readq ${hex(VTD + R.IOTLB)}`;
    tlb(0n).check(iotlb, (3n << 48n) | (9n << 32n), 'IIRG=0: IAIG=0');
    tlb(1n).check(iotlb, (1n << 60n) | (1n << 57n) | (3n << 48n) | (9n << 32n), 'IIRG=1: IAIG=1');
    tlb(2n).check(iotlb, (2n << 60n) | (2n << 57n) | (3n << 48n) | (9n << 32n), 'IIRG=2: IAIG=2');
    s.reg64(R.IVA, 0x1234_5000n | 0x40n | 18n).check(`readq ${hex(VTD + R.IVA)}`, 0n, 'IVA is write-only');
    tlb(3n).check(iotlb, (3n << 60n) | (3n << 57n) | (3n << 48n) | (9n << 32n), 'IIRG=3 AM=18: IAIG=3');
    s.reg64(R.IVA, 19n);
    tlb(3n).check(iotlb, (3n << 60n) | (3n << 48n) | (9n << 32n), 'IIRG=3 AM=19: IAIG=0');
    // A 32-bit write of the high half alone triggers too.
    s.reg32(R.IOTLB + 4, 0x9000_0000).check(iotlb, (1n << 60n) | (1n << 57n), 'high-half write');
  });

  scenario('cached write-only translation: a read hitting it is dropped without a fault', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, DATA_C, 2n); // W only
    s.map(top, 3, 0x6000, DATA_A);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.dma(0x6000, EDU_BUF, 4, false); // buffer = A
    s.dma(EDU_BUF, X, 4, true); // walks for a write: cached with W only
    s.check(`readl ${hex(DATA_C)}`, A, 'write through the W-only page');
    s.probe(X, 0, 'read hitting the cached W-only entry reads zeros');
    s.noFault('cached');
    s.iotlbGlobal();
    s.readFault(X, 6, 'read after invalidation walks and faults');
  });

  scenario('DMA reads crossing into and out of the interrupt window', ['-device', 'intel-iommu,aw-bits=39', '-device', 'edu,dma_mask=0xffffffff'], (s) => {
    const top = s.domain(3);
    s.map(top, 3, 0xfedf_f000, DATA_B);
    s.map(top, 3, 0xfef0_0000, DATA_C);
    s.map(top, 3, 0x6000, DATA_A);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    const out = (off: number, want: number, what: string) => s.check(`readl ${hex(OUT + off)}`, want, what);
    s.dma(0x6000, EDU_BUF, 0x800, false); // buffer = A pattern
    s.dma(0xfedf_fc00, EDU_BUF, 0x800, false);
    s.fill(OUT, 0x800, 0x55).dma(EDU_BUF, OUT, 0x800, true);
    out(0, B, 'below the window: translated'); out(0x3fc, B, 'last translated word');
    out(0x400, 0, 'window part reads 0'); out(0x7fc, 0, 'window part reads 0');
    s.dma(0x6000, EDU_BUF, 0x800, false);
    s.dma(0xfeef_fc00, EDU_BUF, 0x800, false);
    s.fill(OUT, 0x800, 0x55).dma(EDU_BUF, OUT, 0x800, true);
    out(0, 0, 'window part reads 0'); out(0x400, C, 'above the window: translated'); out(0x7fc, C, 'last word');
    s.noFault('window');
  });

  scenario('translated DMA into MMIO reaches the VT-d register file', IOMMU39, (s) => {
    const top = s.domain(3);
    s.map(top, 3, X, VTD);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    s.probe(X, 0x10, 'DMA read of VER');
    s.fill(OUT, 8, 0).dma(X + 0x10, EDU_BUF, 8, false).dma(EDU_BUF, OUT, 8, true);
    s.check(`readq ${hex(OUT)}`, 0xf00f4an, 'DMA read of ECAP (8 bytes)');
    s.w32(OUT, 0x1234).dma(OUT, EDU_BUF, 4, false).dma(EDU_BUF, X + 0x3c, 4, true);
    s.check(`readl ${hex(VTD + 0x3c)}`, 0x1234, 'DMA write of FEDATA');
    s.noFault('mmio');
  });

  scenario('dma-translation=off: SAGAW=0, TE ignored, DMA untranslated', ['-device', 'intel-iommu,aw-bits=39,dma-translation=off', '-device', 'edu'], (s) => {
    s.check(`readq ${hex(VTD + 0x08)}`, 0x80d2_008c_2226_0006n, 'CAP: SAGAW 0');
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE | SRTP);
    s.check(`readl ${hex(VTD + R.GSTS)}`, RTPS, 'GSTS: TES stays clear');
    s.probe(X, X_ID, 'untranslated');
    s.noFault('off');
  });

  scenario('fault event: IP stays pending while IM is set, FSTS clears it, FECTL fires it', IOMMU39, (s) => {
    const top = s.domain(3);
    s.context(...ctx(top, 1, 1)).srtp().reg32(R.GCMD, TE);
    const fectl = (want: number, what: string) => s.check(`readl ${hex(VTD + R.FECTL)}`, want, what);
    fectl(0x8000_0000, 'reset: IM');
    s.dma(X, EDU_BUF, 4, false);
    fectl(0xc000_0000, 'fault while masked: IP');
    s.reg32(R.FECTL, 0xc000_0000);
    fectl(0xc000_0000, 'IP is read-only');
    s.reg32(R.FRCD + 12, 0x8000_0000);
    s.check(`readl ${hex(VTD + R.FSTS)}`, 0, 'F cleared: PPF clear');
    fectl(0xc000_0000, 'clearing F alone keeps IP');
    s.reg32(R.FSTS, 0);
    fectl(0x8000_0000, 'an FSTS write with nothing pending clears IP');
    s.dma(0x6000, EDU_BUF, 4, false);
    fectl(0xc000_0000, 'new fault: IP');
    s.reg32(R.FECTL, 0);
    fectl(0, 'unmasking delivers and clears IP');
    s.reg32(R.FSTS, 0x2); // PPF is not W1C
    s.check(`readl ${hex(VTD + R.FSTS)}`, 2, 'PPF follows F only');
    s.reg32(R.FECTL, 0x8000_0000).reg32(R.FRCD + 12, 0x8000_0000);
    s.dma(X, EDU_BUF, 4, false);
    fectl(0xc000_0000, 'next fault');
  });
});

describe('intel-iommu deprecated properties (vtemu only: QEMU 11.1 rejects them)', () => {
  vtemuScenario('pt=off (QEMU 7.2 meaning): TT=2 is invalid without ECAP.PT', ['-device', 'intel-iommu,aw-bits=39,pt=off', '-device', 'edu'], (s) => {
    s.check(`readq ${hex(VTD + 0x10)}`, 0xf0_0f0an, 'ECAP: PT clear');
    const top = s.domain(3);
    s.map(top, 3, X, DATA_B);
    s.context(...ctx(top, 1, 1, 2)).srtp().reg32(R.GCMD, TE);
    s.readFault(X, 3, 'TT=2 without ECAP.PT', false);
    s.context(...ctx(top, 1, 1, 0)).ccDevice();
    s.probe(X, B, 'TT=0');
  });
});
