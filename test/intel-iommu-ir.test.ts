/**
 * Interrupt-remapping faults through a whole VT-d unit (registers over the
 * bus, guest RAM, device DMA spaces): what a guest reads back in FSTS and
 * the fault recording register, with expectations derived from the VT-d
 * spec (5.1.4, 7.1.3 FRCD layout) and QEMU 11.1's vtd_report_ir_fault
 * (QEMU 7.2 only logged IR faults; test/diff/intel-iommu-qi.test.ts compares
 * the MSI cases with QEMU 11.1):
 *
 *     FRCD lo = IR index << 48          FRCD hi = F(63) | FR << 32 | SID (T clear)
 *
 * A device MSI reaches the unit as a 4-byte DMA write into 0xFEExxxxx with
 * the device's requester ID; the IOAPIC's messages arrive with no
 * requester (recorded as SID 0xFFFF).
 */
import { describe, expect, it } from 'vitest';
import { VtdBench } from './support/vtd-bench.js';
import { Fsts, Gcmd, Gsts, Reg } from '../src/hw/intel-iommu/reg-layout.js';
import { VtdFault } from '../src/hw/intel-iommu/fault-reasons.js';

const IRT = 0x30_0000;
const DEV = { bus: 1, devfn: 0x10, sid: 0x0110 };

interface Irte {
  p?: boolean; fpd?: boolean; vector?: number; dst?: number; tm?: boolean; dlm?: number;
  sid?: number; sq?: number; svt?: number; rsvdLo?: bigint; rsvdHi?: bigint;
}

function irteWords(e: Irte): [bigint, bigint] {
  const lo = (e.p === false ? 0n : 1n) | (e.fpd ? 2n : 0n) | (e.tm ? 0x10n : 0n) | (BigInt(e.dlm ?? 0) << 5n) |
    (BigInt(e.vector ?? 0x20) << 16n) | (BigInt(e.dst ?? 0) << 32n) | (e.rsvdLo ?? 0n);
  const hi = BigInt(e.sid ?? 0) | (BigInt(e.sq ?? 0) << 16n) | (BigInt(e.svt ?? 0) << 18n) | (e.rsvdHi ?? 0n);
  return [lo, hi];
}

/** A unit with IR enabled and a 2^(s+1)-entry table at IRT. */
function unit(s = 0xf): VtdBench {
  const b = new VtdBench({ props: { 'aw-bits': 39, intremap: 'on' } });
  b.w64(Reg.IRTA, BigInt(IRT | s));
  b.gcmd(Gcmd.SIRTP);
  b.gcmd(Gcmd.IRE);
  return b;
}

function setIrte(b: VtdBench, index: number, e: Irte): void {
  const [lo, hi] = irteWords(e);
  b.poke64(IRT + index * 16, lo);
  b.poke64(IRT + index * 16 + 8, hi);
}

/** Remappable-format MSI address for `handle`. */
function msiAddr(handle: number, shv = false): number {
  return (0xfee0_0000 | ((handle & 0x7fff) << 5) | 0x10 | (shv ? 0x8 : 0) | ((handle >> 15) << 2)) >>> 0;
}

/** The device sends an MSI (a DMA write of `data` to `addr`). */
function sendMsi(b: VtdBench, addr: number, data = 0, dev = DEV): void {
  b.device(dev.bus, dev.devfn).dma.writeU32(addr, data);
}

/** FRCD0 as the guest reads it. */
function frcd(b: VtdBench): { lo: bigint; hi: bigint } {
  return { lo: b.r64(Reg.FRCD0), hi: b.r64(Reg.FRCD0 + 8) };
}

/** The expected FRCD of an IR fault. */
function irFault(reason: number, index: number, sid = DEV.sid): { lo: bigint; hi: bigint } {
  return { lo: BigInt(index) << 48n, hi: (1n << 63n) | (BigInt(reason) << 32n) | BigInt(sid) };
}

function expectFault(b: VtdBench, reason: number, index: number, sid = DEV.sid): void {
  expect(b.msis).toEqual([]);
  expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  expect(frcd(b)).toEqual(irFault(reason, index, sid));
}

function expectNoFault(b: VtdBench): void {
  expect(b.r32(Reg.FSTS)).toBe(0);
  expect(frcd(b)).toEqual({ lo: 0n, hi: 0n });
}

describe('IR fault recording (spec-derived)', () => {
  it('a valid remap delivers the IRTE vector and records nothing', () => {
    const b = unit();
    setIrte(b, 9, { vector: 0x45, dst: 0x0200, sid: DEV.sid, svt: 1 });
    sendMsi(b, msiAddr(9));
    expectNoFault(b);
    expect(b.msis).toEqual([{ address: 0xfee0_2000, data: 0x4045, origin: { kind: 'msi', source: DEV.sid, remappedIndex: 9 } }]);
  });

  it('0x21 index beyond the table (S = 3: 16 entries)', () => {
    const b = unit(3);
    setIrte(b, 16, { vector: 0x45 });
    sendMsi(b, msiAddr(16));
    expectFault(b, VtdFault.IR_INDEX_OVER, 16);
  });

  it('0x21 is not suppressed by FPD (no entry was read)', () => {
    const b = unit(0);
    setIrte(b, 2, { fpd: true });
    sendMsi(b, msiAddr(2));
    expectFault(b, VtdFault.IR_INDEX_OVER, 2);
  });

  it('0x22 IRTE not present', () => {
    const b = unit();
    setIrte(b, 4, { p: false });
    sendMsi(b, msiAddr(4));
    expectFault(b, VtdFault.IR_ENTRY_P, 4);
  });

  it('0x23 table not readable', () => {
    const b = new VtdBench({ props: { 'aw-bits': 39, intremap: 'on' } });
    b.w64(Reg.IRTA, BigInt(0x70_0000_0000 + 0xf));
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.IRE);
    sendMsi(b, msiAddr(1));
    expectFault(b, VtdFault.IR_ROOT_INVAL, 1);
  });

  const reserved: [string, Irte][] = [
    ['lo bits 14:12', { rsvdLo: 1n << 12n }],
    ['lo bits 31:24', { rsvdLo: 1n << 31n }],
    ['IM (no posted interrupts)', { rsvdLo: 1n << 15n }],
    ['hi bits 63:20', { rsvdHi: 1n << 20n }],
    ['hi bit 63', { rsvdHi: 1n << 63n }],
  ];
  for (const [name, e] of reserved) {
    it(`0x24 reserved ${name}`, () => {
      const b = unit();
      setIrte(b, 6, { vector: 0x33, ...e });
      sendMsi(b, msiAddr(6));
      expectFault(b, VtdFault.IR_IRTE_RSVD, 6);
    });
  }

  it('AVAIL bits 11:8 are not reserved', () => {
    const b = unit();
    setIrte(b, 6, { vector: 0x33, rsvdLo: 0xf00n });
    sendMsi(b, msiAddr(6));
    expectNoFault(b);
    expect(b.msis).toHaveLength(1);
  });

  const sidCases: [string, Irte, number, boolean][] = [
    ['SVT 1 SQ 0 exact match', { sid: 0x0110, svt: 1, sq: 0 }, 0x0110, true],
    ['SVT 1 SQ 0 other function', { sid: 0x0111, svt: 1, sq: 0 }, 0x0110, false],
    ['SVT 1 SQ 1 ignores function bit 2', { sid: 0x0114, svt: 1, sq: 1 }, 0x0110, true],
    ['SVT 1 SQ 2 ignores function bits 2:1', { sid: 0x0116, svt: 1, sq: 2 }, 0x0110, true],
    ['SVT 1 SQ 3 ignores function bits 2:0', { sid: 0x0117, svt: 1, sq: 3 }, 0x0110, true],
    ['SVT 1 SQ 3 other device', { sid: 0x0118, svt: 1, sq: 3 }, 0x0110, false],
    ['SVT 2 bus inside 0..1', { sid: 0x0001, svt: 2 }, 0x0110, true],
    ['SVT 2 bus outside 2..3', { sid: 0x0203, svt: 2 }, 0x0110, false],
    ['SVT 3 (reserved) fails', { sid: 0x0110, svt: 3 }, 0x0110, false],
  ];
  for (const [name, e, _sid, ok] of sidCases) {
    it(`source-ID verification: ${name}`, () => {
      const b = unit();
      setIrte(b, 7, { vector: 0x51, ...e });
      sendMsi(b, msiAddr(7));
      if (ok) {
        expectNoFault(b);
        expect(b.msis).toHaveLength(1);
      } else {
        expectFault(b, VtdFault.IR_SID_ERR, 7);
      }
    });
  }

  for (const [name, e] of [
    ['not present', { p: false }],
    ['reserved bits', { rsvdLo: 1n << 13n }],
    ['source-ID mismatch', { sid: 0x0999, svt: 1 }],
  ] as [string, Irte][]) {
    it(`FPD suppresses the ${name} fault (interrupt still dropped)`, () => {
      const b = unit();
      setIrte(b, 8, { fpd: true, vector: 0x52, ...e });
      sendMsi(b, msiAddr(8));
      expectNoFault(b);
      expect(b.msis).toEqual([]);
    });
  }

  it('SHV: index = handle + sub-handle; beyond the table faults with that index', () => {
    const b = unit(4); // 32 entries
    setIrte(b, 0x13, { vector: 0x61 });
    sendMsi(b, msiAddr(0x10, true), 3);
    expect(b.msis.map((m) => m.data & 0xff)).toEqual([0x61]);
    b.msis.length = 0;
    sendMsi(b, msiAddr(0x10, true), 0x10);
    expectFault(b, VtdFault.IR_INDEX_OVER, 0x20);
  });

  it('SHV: data bits 31:16 set is a request fault (0x20, index 0) after the lookup', () => {
    const b = unit();
    setIrte(b, 0x11, { vector: 0x61 });
    sendMsi(b, msiAddr(0x10, true), 0x0001_0001);
    expectFault(b, VtdFault.IR_REQ_RSVD, 0);
  });

  it('without SHV the data does not move the index', () => {
    const b = unit();
    setIrte(b, 0x10, { vector: 0x62 });
    sendMsi(b, msiAddr(0x10), 0x5);
    expectNoFault(b);
    expect(b.msis.map((m) => m.data & 0xff)).toEqual([0x62]);
  });

  it('IOAPIC messages fault with SID 0xFFFF and skip source-ID checks', () => {
    const b = unit(0);
    b.iommu.interruptFromIoapic(msiAddr(5), 0);
    expectFault(b, VtdFault.IR_INDEX_OVER, 5, 0xffff);
    const c = unit();
    setIrte(c, 1, { vector: 0xed, sid: 0x0008, svt: 1 });
    c.iommu.interruptFromIoapic(msiAddr(1), 0x80ed);
    expectNoFault(c);
    expect(c.msis.map((m) => m.data & 0xff)).toEqual([0xed]);
  });

  it('no remapping and no fault with IRE off', () => {
    const b = new VtdBench({ props: { 'aw-bits': 39, intremap: 'on' } });
    b.w64(Reg.IRTA, BigInt(IRT));
    b.gcmd(Gcmd.SIRTP);
    sendMsi(b, msiAddr(5), 0x31);
    expectNoFault(b);
    expect(b.msis).toEqual([{ address: msiAddr(5), data: 0x31, origin: { kind: 'msi', source: DEV.sid } }]);
  });

  it('compatibility-format MSIs pass through with IRE on (QEMU; CFI not modelled)', () => {
    const b = unit();
    sendMsi(b, 0xfee0_3000, 0x41);
    expectNoFault(b);
    expect(b.msis).toEqual([{ address: 0xfee0_3000, data: 0x41, origin: { kind: 'msi', source: DEV.sid } }]);
  });

  it('raises the fault event MSI when FECTL is unmasked; later faults of the same SID collapse', () => {
    const b = unit();
    b.w32(Reg.FEADDR, 0xfee0_0000);
    b.w32(Reg.FEDATA, 0x77);
    b.w32(Reg.FECTL, 0);
    sendMsi(b, msiAddr(3));
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x77, origin: { kind: 'iommu' } }]);
    sendMsi(b, msiAddr(4));
    expect(frcd(b)).toEqual(irFault(VtdFault.IR_ENTRY_P, 3));
    expect(b.msis).toHaveLength(1);
    // Clearing F lets the next fault in.
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    expect(b.r32(Reg.FSTS)).toBe(0);
    sendMsi(b, msiAddr(4));
    expect(frcd(b)).toEqual(irFault(VtdFault.IR_ENTRY_P, 4));
  });

  it('x-cfi (beyond QEMU): CFIS follows CFI; compatibility format is blocked (0x25) without it', () => {
    const b = new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', 'x-cfi': true } });
    b.w64(Reg.IRTA, BigInt(IRT | 0xf));
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.IRE);
    sendMsi(b, 0xfee0_3000, 0x41);
    expectFault(b, VtdFault.IR_COMPAT_BLOCKED, 0);
    b.w32(Reg.FRCD0 + 12, 0x8000_0000);
    b.gcmd(Gcmd.CFI);
    expect(b.r32(Reg.GSTS) & Gsts.CFIS).toBe(Gsts.CFIS);
    sendMsi(b, 0xfee0_3000, 0x41);
    expect(b.msis).toEqual([{ address: 0xfee0_3000, data: 0x41, origin: { kind: 'msi', source: DEV.sid } }]);
    b.gcmd(0, Gcmd.CFI);
    expect(b.r32(Reg.GSTS) & Gsts.CFIS).toBe(0);
  });

  it('without x-cfi, GCMD.CFI leaves GSTS.CFIS clear (QEMU)', () => {
    const b = unit();
    b.gcmd(Gcmd.CFI);
    expect(b.r32(Reg.GSTS) & Gsts.CFIS).toBe(0);
  });
});
