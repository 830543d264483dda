import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { Gcmd, Gsts, Reg } from '../hw/intel-iommu/reg-layout.js';
import { sourceId, type VtdTranslator } from '../hw/intel-iommu/translator.js';
import { DmaAccess, newIotlbEntry } from '../memory/iommu.js';
import { iova } from '../memory/address.js';
import { runHmp } from './hmp.js';
import { inspectIommu } from './inspect.js';
import { formatInspection } from './inspect-text.js';

const BASE = 0xfed9_0000;
const EDU = 0x08; // 00:01.0
const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});

/** A q35 machine with one intel-iommu (`props`) and an edu at 00:01.0. */
function build(props = ''): { m: Machine; u: IntelIommu; t: VtdTranslator } {
  const m = createMachine({ devices: [`intel-iommu,id=vtd${props}`, 'edu'], accel: 'qtest' });
  machines.push(m);
  const u = m.iommus[0]!;
  const t = u.translators().find((x) => sourceId(x.requester) === EDU)!;
  return { m, u, t };
}

function w64(m: Machine, addr: number, v: bigint): void {
  m.memory.write(addr, 4, Number(v & 0xffff_ffffn));
  m.memory.write(addr + 4, 4, Number(v >> 32n));
}
function r32(m: Machine, addr: number): number {
  return m.memory.read(addr, 4);
}
function reg64(m: Machine, off: number, v: number): void {
  m.memory.write(BASE + off, 4, v >>> 0);
  m.memory.write(BASE + off + 4, 4, Math.floor(v / 2 ** 32));
}
/** GCMD with the persistent enables kept (QEMU compares the whole command with GSTS). */
function command(m: Machine, bit: number): void {
  const keep = Gsts.TES | Gsts.QIES | Gsts.IRES;
  m.memory.write(BASE + Reg.GCMD, 4, ((m.memory.read(BASE + Reg.GSTS, 4) & keep) | bit) >>> 0);
}
const hmp = (m: Machine, line: string): string[] => runHmp(m, line).split('\r\n');

/** Legacy tables: root 0x100000, context (DID 5, 3 levels) 0x101000, L3 0x102000, L2 0x103000, L1 0x104000; 0x401000 -> 0x200000 read-only. */
function legacyTables(m: Machine): void {
  w64(m, 0x10_0000, 0x10_1001n);
  w64(m, 0x10_1000 + EDU * 16, 0x10_2001n);
  w64(m, 0x10_1000 + EDU * 16 + 8, 0x501n);
  w64(m, 0x10_2000, 0x10_3003n);
  w64(m, 0x10_3000 + 2 * 8, 0x10_4003n);
  w64(m, 0x10_4000 + 1 * 8, 0x20_0001n);
  reg64(m, Reg.RTADDR, 0x10_0000);
  command(m, Gcmd.SRTP);
  command(m, Gcmd.TE);
}

/** Lines of the path block (from the `path` line to the context-cache line). */
function pathBlock(out: readonly string[]): string[] {
  const from = out.findIndex((l) => l.startsWith('  path '));
  const to = out.findIndex((l) => l.startsWith('    context cache:'));
  return out.slice(from, to + 1);
}

describe('translation path, legacy mode', () => {
  it('decodes root, context and every second-stage level, and the translation', () => {
    const { m } = build();
    legacyTables(m);
    expect(pathBlock(hmp(m, 'info iommu -t 00:01.0 0x401234'))).toEqual([
      '  path 00:01.0 pasid - iova 0x0000000000401234 read: legacy mode, root table 0x0000000000100000',
      '    root      [0x000] @0x0000000000100000  0000000000101001  P=1 CTP=0x101000',
      '    context   [0x008] @0x0000000000101080  0000000000102001 0000000000000501  P=1 FPD=0 TT=0 (multi-level) SSPTPTR=0x102000 AW=1 (3-level, 39-bit) DID=5',
      '    config: DID 5 second-stage, second stage 3 levels at 0x0000000000102000, FPD 0',
      '    second stage: 3 levels, table 0x0000000000102000',
      '      L3        [0x000] @0x0000000000102000  0000000000103003  R=1 W=1 PS=0 SNP=0 TM=0 ADDR=0x103000',
      '      L2        [0x002] @0x0000000000103010  0000000000104003  R=1 W=1 PS=0 SNP=0 TM=0 ADDR=0x104000',
      '      L1        [0x001] @0x0000000000104008  0000000000200001  R=1 W=0 PS=0 SNP=0 TM=0 ADDR=0x200000  -- leaf 4 KiB',
      '    result: 0x0000000000401234 -> 0x0000000000200234 (4 KiB page at 0x0000000000200000, R-)',
      '    IOTLB: miss',
      '    context cache: empty',
    ]);
  });

  it('ends a write in the unit\'s fault, by name, without recording it', () => {
    const { m, u } = build();
    legacyTables(m);
    expect(hmp(m, 'info iommu -t 00:01.0 0x401000 w')).toContain('    result: fault 0x05 WRITE');
    expect(u.regs.get32(Reg.FSTS)).toBe(0);
  });

  it('shows the cached translation and context entry after a DMA, and marks them stale once memory changes', () => {
    const { m, t } = build();
    legacyTables(m);
    expect(t.translate(iova(0x401000), DmaAccess.Read, newIotlbEntry())).toBe(true);
    let out = hmp(m, 'info iommu -t 00:01.0 0x401000');
    expect(out).toContain('    IOTLB: hit DID 5 0x0000000000401000 4 KiB -> 0x0000000000200000 R-');
    expect(out).toContain('    context cache: 0000000000102001 0000000000000501');
    // A leaf rewritten without an IOTLB invalidation, and the context entry's DID changed without a context one.
    w64(m, 0x10_4008, 0x30_0001n);
    w64(m, 0x10_1088, 0x601n);
    out = hmp(m, 'info iommu -t 00:01.0 0x401000');
    expect(out).toContain('    result: 0x0000000000401000 -> 0x0000000000300000 (4 KiB page at 0x0000000000300000, R-)');
    expect(out).toContain('    IOTLB: hit DID 5 0x0000000000401000 4 KiB -> 0x0000000000200000 R-  STALE (memory translates otherwise)');
    expect(out).toContain('    context cache: 0000000000102001 0000000000000501  STALE (memory holds another entry)');
  });

  it('reports reserved bits by the unit\'s masks and the fault they cause', () => {
    const { m } = build();
    legacyTables(m);
    w64(m, 0x10_2000, 0x10_3803n); // bit 11 (SNP) is reserved in a non-leaf entry
    const out = pathBlock(hmp(m, 'info iommu -t 00:01.0 0x401000'));
    expect(out[5]).toBe('      L3        [0x000] @0x0000000000102000  0000000000103803  R=1 W=1 PS=0 SNP=1 TM=0 ADDR=0x103000  RESERVED(0x800)');
    expect(out).toContain('    result: fault 0x0c PAGING_ENTRY_RSVD');
  });

  it('ends the walk at a large leaf and at a non-present entry', () => {
    const { m } = build();
    legacyTables(m);
    w64(m, 0x10_3010, 0x60_0081n); // L2: a read-only 2 MiB leaf (R, PS)
    let out = pathBlock(hmp(m, 'info iommu -t 00:01.0 0x412345'));
    expect(out.slice(6, 8)).toEqual([
      '      L2        [0x002] @0x0000000000103010  0000000000600081  R=1 W=0 PS=1 SNP=0 TM=0 ADDR=0x600000  -- leaf 2 MiB',
      '    result: 0x0000000000412345 -> 0x0000000000612345 (2 MiB page at 0x0000000000600000, R-)',
    ]);
    w64(m, 0x10_3010, 0x10_4000n); // L2 not present (neither R nor W)
    out = pathBlock(hmp(m, 'info iommu -t 00:01.0 0x401000'));
    expect(out.slice(6, 8)).toEqual([
      '      L2        [0x002] @0x0000000000103010  0000000000104000  R=0 W=0 PS=0 SNP=0 TM=0 ADDR=0x104000  -- not present',
      '    result: fault 0x06 READ',
    ]);
  });

  it('stops at the first entry not present, with the fault of the lookup', () => {
    const { m } = build();
    legacyTables(m);
    w64(m, 0x10_1080, 0x10_2000n); // context entry not present
    const out = pathBlock(hmp(m, 'info iommu -t 00:01.0 0x401000'));
    expect(out[2]).toMatch(/^    context   \[0x008\] .* P=0 .*  -- not present$/);
    expect(out[3]).toBe('    result: fault 0x02 CONTEXT_ENTRY_P');
    const other = pathBlock(hmp(m, 'info iommu -t 02:00.0'));
    expect(other[1]).toBe('    root      [0x002] @0x0000000000100020  0000000000000000  P=0 CTP=0x0  -- not present');
    expect(other[2]).toBe('    result: fault 0x01 ROOT_ENTRY_P');
  });

  it('says why nothing is translated: translation off, a PASID in legacy mode, the interrupt window', () => {
    const { m } = build();
    expect(hmp(m, 'info iommu -t 00:01.0 0x1000')).toContain('    result: identity: translation off (GSTS.TES clear): addresses pass 1:1');
    legacyTables(m);
    expect(hmp(m, 'info iommu -t 00:01.0 3 0x1000')).toContain('    result: blocked: legacy mode: a request with a PASID is blocked without a fault record');
    expect(pathBlock(hmp(m, 'info iommu -t 00:01.0 0xfee00000'))[3]).toMatch(/^    result: interrupt: interrupt window/);
  });

  it('gives the same record as JSON', () => {
    const { m } = build();
    legacyTables(m);
    const ins = inspectIommu(m, { path: { sid: EDU, pasid: null, iova: 0x401000 } });
    const p = ins.units[0]!.path!;
    expect(p.entries.map((e) => e.kind)).toEqual(['root', 'context']);
    expect(p.entries[1]!.fields).toEqual({ P: true, FPD: false, TT: '0 (multi-level)', SSPTPTR: '0x102000', AW: '1 (3-level, 39-bit)', DID: 5 });
    expect(p.stages[0]!.entries.map((e) => [e.kind, e.index, e.raw[0]])).toEqual([['L3', 0, '0000000000103003'], ['L2', 2, '0000000000104003'], ['L1', 1, '0000000000200001']]);
    expect(p.result).toEqual({ kind: 'translated', output: '0x0000000000200000', page: '0x0000000000200000', size: 4096, perm: 'R-' });
    expect(JSON.parse(JSON.stringify(ins))).toEqual(ins);
    expect(formatInspection(ins)).toBe(runHmp(m, 'info iommu -t 00:01.0 0x401000').replace(/\r\n/g, '\n'));
  });
});

/**
 * Scalable tables: root 0x100000 -> context 0x101000 (PASID dir 0x102000) -> PASID table 0x103000;
 * PASID 0: first stage (DID 7, 4 levels at 0x104000), 0x401000 -> 0x200000 read/write.
 */
function scalableTables(m: Machine): void {
  w64(m, 0x10_0000, 0x10_1001n);
  w64(m, 0x10_1000 + EDU * 32, 0x10_2001n);
  w64(m, 0x10_2000, 0x10_3001n);
  w64(m, 0x10_3000, BigInt(1 | (2 << 2) | (1 << 6)));
  w64(m, 0x10_3008, 7n);
  w64(m, 0x10_3010, 0x10_4000n);
  w64(m, 0x10_4000, 0x10_5007n);
  w64(m, 0x10_5000, 0x10_6007n);
  w64(m, 0x10_6000 + 2 * 8, 0x10_7007n);
  w64(m, 0x10_7000 + 1 * 8, 0x20_0007n);
  reg64(m, Reg.RTADDR, 0x10_0000 | 1 << 10);
  command(m, Gcmd.SRTP);
  command(m, Gcmd.TE);
}

describe('translation path, scalable mode', () => {
  it('decodes the 256-bit context entry, PASID directory and entry, and the first-stage levels; writes no A/D bit', () => {
    const { m } = build(',scalable-mode=on,fsts=on');
    scalableTables(m);
    const out = pathBlock(hmp(m, 'info iommu -t 00:01.0 0x401000 w'));
    expect(out).toEqual([
      '  path 00:01.0 pasid - iova 0x0000000000401000 write: scalable mode, root table 0x0000000000100000',
      '    root      [0x000] @0x0000000000100000  0000000000101001  LP=1 LCTP=0x101000 UP=0 UCTP=0x0  -- lower half',
      '    context   [0x008] @0x0000000000101100  0000000000102001  P=1 FPD=0 DTE=0 PASIDE=0 PRE=0 PDTS=0 PASIDDIRPTR=0x102000 RID_PASID=0 RID_PRIV=0',
      '    pasid-dir [0x000] @0x0000000000102000  0000000000103001  P=1 FPD=0 PASIDTPTR=0x103000',
      '    pasid     [0x000] @0x0000000000103000  0000000000000049 0000000000000007 0000000000104000  P=1 FPD=0 AW=2 (4-level, 48-bit) PGTT=1 (first-stage) SSPTPTR=0x0 DID=7 SRE=0 FSPM=0 (4-level) WPE=0 EAFE=0 FSPTPTR=0x104000  -- pasid 0',
      '    config: DID 7 first-stage, first stage 4 levels at 0x0000000000104000, FPD 0',
      '    first stage: 4 levels, table 0x0000000000104000',
      '      L4        [0x000] @0x0000000000104000  0000000000105007  P=1 RW=1 US=1 PWT=0 PCD=0 A=0 D=0 PS=0 G=0 XD=0 ADDR=0x105000',
      '      L3        [0x000] @0x0000000000105000  0000000000106007  P=1 RW=1 US=1 PWT=0 PCD=0 A=0 D=0 PS=0 G=0 XD=0 ADDR=0x106000',
      '      L2        [0x002] @0x0000000000106010  0000000000107007  P=1 RW=1 US=1 PWT=0 PCD=0 A=0 D=0 PS=0 G=0 XD=0 ADDR=0x107000',
      '      L1        [0x001] @0x0000000000107008  0000000000200007  P=1 RW=1 US=1 PWT=0 PCD=0 A=0 D=0 PS=0 G=0 XD=0 ADDR=0x200000  -- leaf 4 KiB',
      '    result: 0x0000000000401000 -> 0x0000000000200000 (4 KiB page at 0x0000000000200000, RW)',
      '    IOTLB: miss',
      '    context cache: empty',
    ]);
    // The walk ran read-only: no Accessed / Dirty bit was written back.
    expect(r32(m, 0x10_4000)).toBe(0x10_5007);
    expect(r32(m, 0x10_7008)).toBe(0x20_0007);
  });

  it('ends a request with an empty PASID entry in the fault of the unit, and decodes the entry', () => {
    const { m } = build(',scalable-mode=on,fsts=on');
    scalableTables(m);
    const out = pathBlock(hmp(m, 'info iommu -t 00:01.0 5 0x401000'));
    expect(out[4]).toMatch(/^    pasid     \[0x005\] @0x0000000000103140  0000000000000000  P=0 .* -- not present$/);
    // QEMU's order: the PGTT (0, reserved) is checked before P.
    expect(out[5]).toBe('    result: fault 0x5b PASID_TABLE_ENTRY_INV');
  });
});

/** Lines of one view: from the line starting with `head` up to the next view's first line. */
function view(out: readonly string[], head: string): string[] {
  const from = out.findIndex((l) => l.startsWith(head));
  const next = out.findIndex((l, i) => i > from && /^  \S/.test(l) && !l.startsWith(head));
  return out.slice(from, next < 0 ? out.length - 1 : next);
}

describe('state views', () => {
  it('-c lists the IOTLB and context cache by key, and says the model has no PASID cache', () => {
    const { m, t } = build();
    legacyTables(m);
    w64(m, 0x10_4000 + 2 * 8, 0x20_1003n);
    expect(t.translate(iova(0x402000), DmaAccess.Write, newIotlbEntry())).toBe(true);
    expect(t.translate(iova(0x401000), DmaAccess.Read, newIotlbEntry())).toBe(true);
    expect(view(hmp(m, 'info iommu -c'), '  IOTLB:')).toEqual([
      '  IOTLB: 2 entries',
      '    00:01.0 pasid - DID 5 0x0000000000401000 4 KiB -> 0x0000000000200000 R- legacy',
      '    00:01.0 pasid - DID 5 0x0000000000402000 4 KiB -> 0x0000000000201000 RW legacy',
    ]);
    const out = hmp(m, 'info iommu -c');
    expect(view(out, '  context cache:')).toEqual([
      '  context cache: 1 entry',
      '    00:01.0 legacy 0000000000102001 0000000000000501  P=1 FPD=0 TT=0 (multi-level) SSPTPTR=0x102000 AW=1 (3-level, 39-bit) DID=5',
    ]);
    expect(out).toContain('  PASID cache: none: PASID entries are re-read on every IOTLB miss (as QEMU 11.1)');
    expect(out).toContain('  interrupt entry cache: 0 entries');
    const c = inspectIommu(m, { views: ['caches'] }).units[0]!.caches!;
    expect(c.iotlb[1]).toEqual({ sid: EDU, requester: '00:01.0', pasid: null, did: 5, pgtt: 'legacy', iova: '0x0000000000402000', size: 4096, output: '0x0000000000201000', perm: 'RW', fpd: false });
  });

  it('-q decodes the pending descriptors between head and tail, the refused one first', () => {
    const { m } = build();
    reg64(m, Reg.IQA, 0x11_0000);
    command(m, Gcmd.QIE);
    w64(m, 0x11_0000, 0x2n | (3n << 4n) | (5n << 16n) | (1n << 8n)); // IOTLB page-selective, reserved bit 8
    w64(m, 0x11_0008, 0x40_1000n);
    w64(m, 0x11_0010, 0x1n | (2n << 4n) | (5n << 16n)); // context-cache domain-selective
    w64(m, 0x11_0020, 0x5n | (1n << 5n) | (0xabn << 32n)); // wait with status write
    w64(m, 0x11_0028, 0x12_0000n);
    reg64(m, Reg.IQT, 3 << 4);
    expect(view(hmp(m, 'info iommu -q'), '  invalidation queue:')).toEqual([
      '  invalidation queue: on, IQA 0x0000000000110000 (base 0x0000000000110000, QS 0, DW 0: 256 128-bit entries)',
      '    head 0 tail 3 (IQH 0x0000000000000000 IQT 0x0000000000000030), last descriptor Iotlb, errors [IQE]',
      '    pending: 3',
      '    [0] @0x0000000000110000  0000000000050132 0000000000401000  Iotlb REFUSED (reserved)',
      '    [1] @0x0000000000110010  0000000000050021  ContextCache granularity=domain did=5 sid=00:00.0 fm=0',
      '    [2] @0x0000000000110020  000000ab00000025 0000000000120000  Wait statusWrite=1 interrupt=0 fence=0 statusData=0xab statusAddr=0x120000',
    ]);
    const q = inspectIommu(m, { views: ['queue'] }).units[0]!.queue!;
    expect(q.pending.map((d) => [d.type, d.error])).toEqual([[2, 'reserved'], [1, ''], [5, '']]);
    // Once the guest fixes the descriptor and clears IQE, the next IQT write drains the queue: nothing pending.
    w64(m, 0x11_0000, 0x2n | (3n << 4n) | (5n << 16n));
    m.memory.write(BASE + Reg.FSTS, 4, 0x10);
    reg64(m, Reg.IQT, 3 << 4);
    expect(view(hmp(m, 'info iommu -q'), '  invalidation queue:').slice(1)).toEqual([
      '    head 3 tail 3 (IQH 0x0000000000000030 IQT 0x0000000000000030), last descriptor Wait, errors []',
      '    pending: 0',
    ]);
  });

  it('-f decodes the fault records of real faults by name', () => {
    const { m, u, t } = build(',nfr=4,intremap=on');
    legacyTables(m);
    expect(t.translate(iova(0x401000), DmaAccess.Write, newIotlbEntry())).toBe(false);
    u.interruptWrite(0xfee0_0000, 0, 0x10); // not remappable-format with IRE off: passes; no record
    expect(view(hmp(m, 'info iommu -f'), '  faults:')).toEqual([
      '  faults: FSTS 0x2 [PPF] FRI 0, FECTL IM=1 IP=1, 1 of 4 records pending',
      '    FRCD[0] 00:01.0 write addr 0x0000000000401000 reason 0x05 WRITE',
    ]);
    expect(t.translate(iova(0x7_0000_0000), DmaAccess.Read, newIotlbEntry())).toBe(false); // collapsed: same SID pending
    const other = u.translatorFor({ key: {}, devfn: 0x10, busNumber: () => 0 } as never);
    expect(other.translate(iova(0x1000), DmaAccess.Read, newIotlbEntry())).toBe(false);
    const f = inspectIommu(m, { views: ['faults'] }).units[0]!.faults!;
    expect(f.records.map((r) => [r.index, r.requester, r.type, r.addr, r.reason, r.name])).toEqual([
      [0, '00:01.0', 'write', '0x0000000000401000', 5, 'WRITE'],
      [1, '00:02.0', 'read', '0x0000000000001000', 2, 'CONTEXT_ENTRY_P'],
    ]);
  });

  it('-i decodes the interrupt-remapping table, the IEC and posted descriptors', () => {
    const { m, u, t } = build(',intremap=on,x-pi=on,nfr=4');
    w64(m, 0x13_0000 + 2 * 16, 0x1n | (0x31n << 16n) | (0x100n << 32n));
    w64(m, 0x13_0000 + 2 * 16 + 8, BigInt(EDU | (1 << 18)));
    w64(m, 0x13_0000 + 3 * 16, 0x1n | (1n << 12n) | (0x32n << 16n));
    w64(m, 0x13_0000 + 5 * 16, 0x1n | (1n << 15n) | (0x40n << 16n) | (0x14_0000n << 32n));
    m.memory.write(0x14_0000 + 34, 1, 0xf0);
    reg64(m, Reg.IRTA, 0x13_0000 | 3);
    command(m, Gcmd.SIRTP);
    command(m, Gcmd.IRE);
    const handle = (i: number): number => (0xfee0_0010 | (i << 5)) >>> 0;
    t.interruptWrite(handle(2), 0x31);
    t.interruptWrite(handle(5), 0);
    u.interruptWrite(handle(4), 0, 0x10);
    expect(u.regs.get32(Reg.FSTS)).not.toBe(0);
    const out = hmp(m, 'info iommu -i -f -c');
    const irte2 = '    [0x0002] 0000010000310001 0000000000040008  remapped FPD=0 vector=0x31 SID=00:01.0 SQ=0 SVT=1 (requester-id) DM=physical RH=0 TM=edge DLM=0 (fixed) DST=0x100 dest=1  cached';
    const irte5 = '    [0x0005] 0014000000408001  posted FPD=0 vector=0x40 SID=00:00.0 SQ=0 SVT=0 (none) URG=0 PDA=0x140000  cached';
    expect(view(out, '  interrupt entry cache:')).toEqual(['  interrupt entry cache: 2 entries', irte2, irte5]);
    expect(view(out, '  faults:')[1]).toBe('    FRCD[0] 00:02.0 write IR index 0x4 reason 0x22 IR_ENTRY_P');
    expect(view(out, '  interrupt remapping:')).toEqual([
      '  interrupt remapping: on, IRTA 0x0000000000130003 (table 0x0000000000130000, 16 entries, EIME 0), posted interrupts on',
      '    present: 3',
      irte2,
      '    [0x0003] 0000000000321001  remapped FPD=0 vector=0x32 SID=00:00.0 SQ=0 SVT=0 (none) DM=physical RH=0 TM=edge DLM=0 (fixed) DST=0x0 dest=0  RESERVED',
      `${irte5}  PID @0x0000000000140000 ON=1 SN=0 NV=0xf0 NDST=0x0 PIR [0x40]`,
    ]);
    // An IRTE rewritten without an IEC invalidation: the table shows the new entry, the cache the old one.
    w64(m, 0x13_0000 + 2 * 16, 0x1n | (0x33n << 16n) | (0x100n << 32n));
    const ir = inspectIommu(m, { views: ['ir', 'caches'] }).units[0]!;
    expect(ir.ir!.table[0]!.fields['vector']).toBe('0x33');
    expect(ir.caches!.iec[0]!.fields['vector']).toBe('0x31');
  });
});
