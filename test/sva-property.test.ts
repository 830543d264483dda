/**
 * Property test of shared virtual addressing end to end (issue 10), vtemu
 * only (QEMU has no device that issues ATS or page requests): a whole
 * machine with `intel-iommu,scalable-mode=on,device-iotlb=on,fsts=on,svm=on`
 * and one `sva-testdev`, three PASIDs bound to first-stage (x86 CPU style)
 * page tables, and random sequences of
 *   - guest map (a free data page at a free virtual page of a PASID),
 *   - guest unmap, followed by the invalidations Linux issues (PASID-based
 *     IOTLB, PASID-based device-TLB, wait) — or, sometimes, not yet: the
 *     translation is then stale, and the invalidation may come later,
 *   - device commands: untranslated READ / WRITE with the PASID, the same
 *     through the device's ATC (ATS translation requests, translated
 *     requests), with PRI (page requests answered by the guest's handler:
 *     map and Success, or Invalid Request), TRANSLATE, ATC_FLUSH.
 * The guest never frees a data page before the invalidations of its
 * unmapping completed; then it may give it to another PASID.
 *
 * Checked after every device command, against the model's candidates of
 * each virtual page (its current data page and the data pages of stale,
 * not yet invalidated, mappings of that page):
 *   - a READ that completes returns, page piece by page piece, the contents
 *     of one of the candidates: never data the PASID cannot reach, never a
 *     page whose mapping was removed and invalidated;
 *   - every data page a WRITE changes is a candidate of one of the pages it
 *     covers, whatever the command's result;
 *   - no other data page and no table page changes.
 *
 *   VTEMU_SVA_SEED / VTEMU_SVA_CASES   another seed / case count (printed)
 */
import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/index.js';
import type { PciDevice } from '../src/pci/device.js';
import { Reg } from '../src/hw/intel-iommu/reg-layout.js';
import { Rng } from './support/prng.js';

const VTD = 0xfed9_0000;
/** The unit's register offsets. */
const R = Reg;
const GCMD = { TE: 0x8000_0000, SRTP: 0x4000_0000, QIE: 0x0400_0000 } as const;
const BAR = 0xe000_0000;
const DEVFN = 0x20;
const SID = DEVFN;
/** sva-testdev registers (src/hw/sva-testdev/regs.ts) and commands. */
const S = { CMD: 0x08, RESULT: 0x0c, ADDR_LO: 0x10, ADDR_HI: 0x14, LEN: 0x18, PASID: 0x1c, STATUS: 0x04, PRGI: 0x48, BUF: 0x1000 } as const;
const OP = { READ: 1, WRITE: 2, TRANSLATE: 3, FLUSH: 5 } as const;
const FLAG = { PASID: 1 << 8, ATC: 1 << 9, PRI: 1 << 10 } as const;
const RES = { OK: 0, PENDING: 1 } as const;
const STATUS_PENDING = 1;

const ROOT = 0x0100_0000;
const CTX = 0x0100_1000;
const QUEUE = 0x0100_2000;
const STATUS = 0x0100_3000;
const PQ = 0x0100_4000;
const DIR = 0x0100_5000;
const PTABLE = 0x0100_6000;
const TABLES = 0x0108_0000;
const TABLES_END = 0x010c_0000;
const DATA = 0x0200_0000;
const DATA_PAGES = 40;
const PAGE = 0x1000;
const PASIDS = [1, 2, 3] as const;
/** Virtual pages each PASID may use: 12 consecutive pages at two places (one above 4 GiB). */
const VA_BASES = [0x7f00_0000_0000, 0x1_0000_0000] as const;
const VA_PAGES = 6;
const FS_P = 1n;
const FS_RW = 2n;
const FS_US = 4n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

const SEED = process.env['VTEMU_SVA_SEED'] !== undefined ? Number(process.env['VTEMU_SVA_SEED']) : 0x5a_7e57;
const CASES = process.env['VTEMU_SVA_CASES'] !== undefined ? Number(process.env['VTEMU_SVA_CASES']) : 60;
const OPS_PER_CASE = 40;

interface Bench {
  readonly m: Machine;
  readonly dev: PciDevice;
  nextTable: number;
  tail: number;
  token: number;
  /** PASID -> top of its first-stage table. */
  readonly fsRoot: Map<number, number>;
  /** Table qwords the guest wrote since the command began (its page-request handler maps pages). */
  readonly guestWrites: Set<number>;
}

const r32 = (b: Bench, a: number) => b.m.memory.read(a, 4) >>> 0;
const w32 = (b: Bench, a: number, v: number) => b.m.memory.write(a, 4, v >>> 0);
const r64 = (b: Bench, a: number) => b.m.memory.read64(a);
const w64 = (b: Bench, a: number, v: bigint) => b.m.memory.write64(a, v);
/** A guest write of a page-table qword. */
const wt = (b: Bench, a: number, v: bigint) => {
  b.guestWrites.add(a);
  w64(b, a, v);
};

function cfgWrite(b: Bench, reg: number, size: 1 | 2 | 4, v: number): void {
  b.m.io.write(0xcf8, 4, (0x8000_0000 | (DEVFN << 8) | (reg & 0xfc)) >>> 0);
  b.m.io.write(0xcfc + (reg & 3), size, v);
}

function table(b: Bench): number {
  const t = b.nextTable;
  b.nextTable += PAGE;
  if (b.nextTable > TABLES_END) throw new Error('test tables exhausted');
  return t;
}

function boot(): Bench {
  const m = createMachine({
    accel: 'qtest',
    memory: '128M',
    devices: ['intel-iommu,scalable-mode=on,device-iotlb=on,fsts=on,svm=on,pasid-bits=20', `sva-testdev,addr=${DEVFN >> 3}`],
  });
  const dev = m.devices.find((d) => d.spec.type.name === 'sva-testdev')!.device as PciDevice;
  const b: Bench = { m, dev, nextTable: TABLES, tail: 0, token: 0, fsRoot: new Map(), guestWrites: new Set() };
  cfgWrite(b, 0x10, 4, BAR);
  cfgWrite(b, 0x04, 2, 0x6);
  // Extended config space (past CF8/CFC's 256 bytes) as ECAM would deliver it:
  // PASID enable, PRI allocation then enable, ATS enable (STU 0).
  dev.configWrite(0x110 + 6, 2, 1);
  dev.configWrite(0x120 + 0xc, 4, 32);
  dev.configWrite(0x120 + 4, 2, 1);
  dev.configWrite(0x100 + 6, 2, 0x8000);
  // Scalable root (lower half) -> context (PRE | P), PASID directory, one PASID table for PASIDs 0-63.
  w64(b, ROOT, BigInt(CTX) | 1n);
  w64(b, CTX + DEVFN * 32, BigInt(DIR) | 0x10n | 0x4n | 1n);
  w64(b, DIR, BigInt(PTABLE) | 1n);
  // PASID 0 (requests without a PASID): pass-through, DID 1.
  w64(b, PTABLE, (4n << 6n) | (2n << 2n) | 1n);
  w64(b, PTABLE + 8, 1n);
  for (const pasid of PASIDS) {
    const top = table(b);
    b.fsRoot.set(pasid, top);
    const at = PTABLE + pasid * 64;
    w64(b, at, (1n << 6n) | (2n << 2n) | 1n);
    w64(b, at + 8, BigInt(10 + pasid));
    w64(b, at + 16, BigInt(top));
  }
  w64(b, VTD + R.RTADDR, BigInt(ROOT) | (1n << 10n));
  w32(b, VTD + R.GCMD, GCMD.SRTP);
  w64(b, VTD + R.IQA, BigInt(QUEUE) | (1n << 11n));
  w64(b, VTD + R.IQT, 0n);
  w32(b, VTD + R.GCMD, GCMD.QIE);
  w32(b, VTD + R.GCMD, GCMD.QIE | GCMD.TE);
  w64(b, VTD + R.PQA, BigInt(PQ));
  w64(b, VTD + R.PQH, 0n);
  w64(b, VTD + R.PQT, 0n);
  expect((r32(b, VTD + R.GSTS) & (GCMD.TE | GCMD.QIE)) >>> 0).toBe((GCMD.TE | GCMD.QIE) >>> 0);
  return b;
}

/** Submits 256-bit descriptors and a status wait; the queue must run them all without an error. */
function submit(b: Bench, descs: readonly (readonly bigint[])[]): void {
  const all = [...descs, [0x25n | (BigInt(++b.token) << 32n), BigInt(STATUS), 0n, 0n]];
  for (const d of all) {
    for (let i = 0; i < 4; i++) w64(b, QUEUE + b.tail * 32 + i * 8, d[i] ?? 0n);
    b.tail = (b.tail + 1) % 128;
  }
  w64(b, VTD + R.IQT, BigInt(b.tail) << 5n);
  expect([Number(r64(b, VTD + R.IQH) >> 5n), r32(b, STATUS), r32(b, VTD + R.FSTS) & 0x70], 'queue').toEqual([b.tail, b.token, 0]);
}

/** The leaf PTE address of `va` in PASID `pasid`'s tables, creating tables on the way when `create`. */
function leafAt(b: Bench, pasid: number, va: number, create: boolean): number | null {
  let t = b.fsRoot.get(pasid)!;
  for (let level = 4; level > 1; level--) {
    const at = t + (Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
    let e = r64(b, at);
    if ((e & FS_P) === 0n) {
      if (!create) return null;
      e = BigInt(table(b)) | FS_P | FS_RW | FS_US;
      wt(b, at, e);
    }
    t = Number(e & ADDR_MASK);
  }
  return t + (Math.floor(va / PAGE) % 512) * 8;
}

/** The guest's view: mappings, stale (unmapped, not yet invalidated) mappings, free data pages. */
class Model {
  /** `${pasid}:${va}` -> data page. */
  readonly mapped = new Map<string, number>();
  /** `${pasid}:${va}` -> data pages of removed mappings whose invalidation is still to come. */
  readonly stale = new Map<string, number[]>();
  readonly free: number[] = [];
  constructor() {
    for (let i = 0; i < DATA_PAGES; i++) this.free.push(DATA + i * PAGE);
  }
  candidates(pasid: number, va: number): number[] {
    const k = `${pasid}:${va}`;
    const c = [...(this.stale.get(k) ?? [])];
    const cur = this.mapped.get(k);
    if (cur !== undefined) c.push(cur);
    return c;
  }
}

const vaOf = (r: Rng) => r.pick(VA_BASES) + r.int(VA_PAGES) * PAGE;

function map(b: Bench, model: Model, pasid: number, va: number): boolean {
  const k = `${pasid}:${va}`;
  if (model.mapped.has(k) || model.free.length === 0) return false;
  const page = model.free.shift()!;
  wt(b, leafAt(b, pasid, va, true)!, BigInt(page) | FS_P | FS_RW | FS_US);
  model.mapped.set(k, page);
  return true;
}

/** Linux's flush for one page of an SVA mm: PASID-based IOTLB (page) and device-TLB, then the wait. */
function invalidate(b: Bench, model: Model, pasid: number, va: number): void {
  submit(b, [
    [0x6n | (3n << 4n) | (BigInt(10 + pasid) << 16n) | (BigInt(pasid) << 32n), BigInt(va), 0n, 0n],
    [0x8n | (BigInt(SID) << 16n) | (BigInt(pasid) << 32n), BigInt(va), 0n, 0n],
  ]);
  const k = `${pasid}:${va}`;
  for (const page of model.stale.get(k) ?? []) model.free.push(page);
  model.stale.delete(k);
}

function unmap(b: Bench, model: Model, pasid: number, va: number, flush: boolean): void {
  const k = `${pasid}:${va}`;
  const page = model.mapped.get(k);
  if (page === undefined) return;
  wt(b, leafAt(b, pasid, va, false)!, 0n);
  model.mapped.delete(k);
  model.stale.set(k, [...(model.stale.get(k) ?? []), page]);
  if (flush) invalidate(b, model, pasid, va);
}

/** The guest's page-request handler: maps (or refuses) each request and answers its group. */
function servePageRequests(b: Bench, model: Model, r: Rng): void {
  let head = Number(r64(b, VTD + R.PQH));
  const tail = Number(r64(b, VTD + R.PQT));
  const responses: bigint[][] = [];
  while (head !== tail) {
    const qw0 = r64(b, PQ + head);
    const qw1 = r64(b, PQ + head + 8);
    head = (head + 32) % PAGE;
    expect(Number(qw0 & 0xffn), 'descriptor type').toBe(1);
    expect(Number((qw0 >> 16n) & 0xffffn), 'RID').toBe(SID);
    const pasid = Number((qw0 >> 32n) & 0xfffffn);
    const va = Number(qw1 & ~0xfffn);
    const prgi = (qw1 >> 3n) & 0x1ffn;
    const known = (PASIDS as readonly number[]).includes(pasid) && VA_BASES.some((base) => va >= base && va < base + VA_PAGES * PAGE);
    const ok = known && r.chance(0.8) && (model.mapped.has(`${pasid}:${va}`) || map(b, model, pasid, va));
    if ((qw1 & 4n) !== 0n) responses.push([0x9n | (1n << 4n) | ((ok ? 0n : 1n) << 12n) | (BigInt(SID) << 16n) | (BigInt(pasid) << 32n), prgi << 3n, 0n, 0n]);
  }
  w64(b, VTD + R.PQH, BigInt(head));
  w32(b, VTD + R.PRS, 1);
  if (responses.length > 0) submit(b, responses);
}

/** Every data page's bytes. */
function snapshot(b: Bench): Map<number, Uint8Array> {
  const s = new Map<number, Uint8Array>();
  for (let i = 0; i < DATA_PAGES; i++) {
    const page = DATA + i * PAGE;
    const bytes = new Uint8Array(PAGE);
    b.m.memory.readBytes(page, bytes);
    s.set(page, bytes);
  }
  return s;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One device command and the checks of the module comment; returns its result. */
function command(b: Bench, model: Model, r: Rng, where: string): number {
  const pasid = r.pick(PASIDS);
  const va = vaOf(r) + (r.chance(0.5) ? r.int(PAGE) : 0);
  const len = r.range(1, r.chance(0.3) ? 0x1000 : 64);
  const op = r.weighted<number>([[4, OP.READ], [4, OP.WRITE], [1, OP.TRANSLATE], [1, OP.FLUSH]]);
  const flags = FLAG.PASID | (r.chance(0.7) ? FLAG.ATC : 0) | (r.chance(0.6) ? FLAG.PRI : 0);
  const before = snapshot(b);
  const tables = new Uint8Array(TABLES_END - TABLES);
  b.m.memory.readBytes(TABLES, tables);
  b.guestWrites.clear();
  if (op === OP.WRITE) {
    const data = r.bytes(len);
    b.m.memory.writeBytes(BAR + S.BUF, data);
  }
  w32(b, BAR + S.ADDR_LO, va % 2 ** 32);
  w32(b, BAR + S.ADDR_HI, Math.floor(va / 2 ** 32));
  w32(b, BAR + S.LEN, len);
  w32(b, BAR + S.PASID, pasid);
  w32(b, BAR + S.PRGI, r.int(512));
  w32(b, BAR + S.CMD, op | flags);
  for (let round = 0; round < 8 && (r32(b, BAR + S.STATUS) & STATUS_PENDING) !== 0; round++) servePageRequests(b, model, r);
  const result = r32(b, BAR + S.RESULT);
  expect(result, `${where}: a command still pending after its responses`).not.toBe(RES.PENDING);
  // The pages the command covers, with the data pages each may reach.
  const pieces: { va: number; off: number; len: number; cands: number[] }[] = [];
  for (let at = va; at < va + len; ) {
    const page = at - (at % PAGE);
    const n = Math.min(va + len, page + PAGE) - at;
    pieces.push({ va: page, off: at - page, len: n, cands: model.candidates(pasid, page) });
    at += n;
  }
  const reachable = new Set(pieces.flatMap((p) => p.cands));
  const after = snapshot(b);
  for (const [page, bytes] of after) {
    if (same(bytes, before.get(page)!)) continue;
    expect(op === OP.WRITE && reachable.has(page), `${where}: data page ${page.toString(16)} changed by PASID ${pasid} ${op}@${va.toString(16)}+${len}`).toBe(true);
  }
  const tablesAfter = new Uint8Array(TABLES_END - TABLES);
  b.m.memory.readBytes(TABLES, tablesAfter);
  // Besides the guest's own writes, first-stage tables change only in the A/D bits walks set (bits 5 and 6).
  for (let i = 0; i < tables.length; i++) {
    if (tables[i] === tablesAfter[i] || b.guestWrites.has(TABLES + i - (i % 8))) continue;
    expect(i % 8 === 0 ? (tables[i]! ^ tablesAfter[i]!) & ~0x60 : 1, `${where}: table byte ${(TABLES + i).toString(16)}`).toBe(0);
  }
  if (op === OP.READ && result === RES.OK) {
    const buf = new Uint8Array(len);
    b.m.memory.readBytes(BAR + S.BUF, buf);
    let at = 0;
    for (const p of pieces) {
      const got = buf.subarray(at, at + p.len);
      const fromReachable = p.cands.some((page) => same(got, before.get(page)!.subarray(p.off, p.off + p.len)));
      expect(fromReachable, `${where}: READ of PASID ${pasid} at ${(p.va + p.off).toString(16)} returned data from no page it may reach`).toBe(true);
      at += p.len;
    }
  }
  return result;
}

function runCase(b: Bench, model: Model, r: Rng, label: string, results: Map<number, number>): void {
  for (let i = 0; i < OPS_PER_CASE; i++) {
    const where = `${label} op ${i}`;
    const pasid = r.pick(PASIDS);
    const va = vaOf(r);
    const kind = r.weighted<string>([[3, 'map'], [2, 'unmap'], [1, 'late'], [6, 'dma']]);
    if (kind === 'map') map(b, model, pasid, va);
    else if (kind === 'unmap') unmap(b, model, pasid, va, r.chance(0.75));
    else if (kind === 'late') {
      const stale = [...model.stale.keys()];
      if (stale.length > 0) {
        const [p, v] = r.pick(stale).split(':').map(Number) as [number, number];
        invalidate(b, model, p, v);
      }
    } else {
      const res = command(b, model, r, where);
      results.set(res, (results.get(res) ?? 0) + 1);
    }
  }
}

describe(`SVA property: seed ${SEED}, ${CASES} cases (VTEMU_SVA_SEED / VTEMU_SVA_CASES)`, () => {
  const results = new Map<number, number>();
  const CASES_PER_MACHINE = 10;
  for (let c = 0; c < CASES; c += CASES_PER_MACHINE) {
    const last = Math.min(CASES, c + CASES_PER_MACHINE) - 1;
    it(`cases ${c}-${last}: no access through a removed and invalidated translation, none outside the PASID`, () => {
      const b = boot();
      const model = new Model();
      const r = new Rng(SEED + c);
      // Each data page gets a distinct pattern, so a read tells which page it came from.
      for (let i = 0; i < DATA_PAGES; i++) b.m.memory.writeBytes(DATA + i * PAGE, new Rng(SEED ^ (i * 0x9e37)).bytes(PAGE));
      for (let k = c; k <= last; k++) runCase(b, model, r, `case ${k}`, results);
      b.m.dispose();
    });
  }

  it('the sequences reached every kind of outcome (else the property proves little)', () => {
    console.log(`sva property: seed ${SEED}, ${CASES} cases, results ${JSON.stringify(Object.fromEntries(results))}`);
    const seen = [...results.keys()];
    // OK, refused DMA, no access without PRI, Invalid Request answers.
    for (const want of [0x00, 0x10, 0x13, 0x19]) expect(seen, `result 0x${want.toString(16)} never happened`).toContain(want);
  });
});
