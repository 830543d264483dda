/**
 * Legacy root / context entry lookup (VT-d spec 9.1 / 9.3, QEMU
 * vtd_dev_to_context_entry): indexing by bus and devfn, fetch failures,
 * present bits, reserved bits (root: hi, lo 11:1, above HAW; context: lo
 * 11:4 and above HAW, hi bit 7 and 63:24), the AW-in-SAGAW check and the
 * translation types, each with QEMU's fault reason and in QEMU's order; and
 * the field accessors.
 */
import { describe, expect, it } from 'vitest';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import type { PropValues } from '../../machine/device-type.js';
import { createRam } from '../../memory/ram-backend.js';
import { RamRegion } from '../../memory/region.js';
import { VtdFault } from './fault-reasons.js';
import {
  ctxAgaw,
  ctxAw,
  ctxDid,
  ctxFpd,
  ctxLevels,
  ctxTableBase,
  ctxType,
  Entry,
  ENTRY_SIZE,
  lookupContext,
  newContextEntry,
  TranslationType,
  type ContextEntry,
} from './root-context.js';

const RAM = 64 * 1024 * 1024;
const HOLE = 0x8000_0000;
const TOP = 0x30_0000;

function setup(props: PropValues = {}) {
  const b = new VtdBench({ props });
  const root = b.allocPage();
  const look = (bus: number, devfn: number, rootTable = root): { r: number; ce: ContextEntry } => {
    const ce = newContextEntry();
    const r = lookupContext(b.memory, rootTable, bus, devfn, b.iommu.ctxRules, ce);
    return { r, ce };
  };
  /** Context table address of `bus` (after setContext). */
  const table = (bus: number) => Number(b.peek64(root + bus * 16) & ~0xfffn);
  return { b, root, look, table };
}

/** A context entry from its two qwords, without memory. */
function entry(lo: bigint, hi: bigint): ContextEntry {
  const ce = newContextEntry();
  ce.lo.lo = Number(lo & 0xffff_ffffn);
  ce.lo.hi = Number(lo >> 32n);
  ce.hi.lo = Number(hi & 0xffff_ffffn);
  ce.hi.hi = Number(hi >> 32n);
  return ce;
}

describe('layout constants', () => {
  it('entry bits and translation types', () => {
    expect(Entry).toEqual({
      P: 1,
      FPD: 2,
      TT_SHIFT: 2,
      TT_MASK: 3,
      ADDR_LO: 0xffff_f000,
      ROOT_RSVD_LO: 0xffe,
      CTX_RSVD_LO: 0xff0,
      CTX_RSVD_HI_LO: 0xff00_0080,
      AW_MASK: 7,
      DID_SHIFT: 8,
      DID_MASK: 0xffff,
    });
    expect(TranslationType).toEqual({ MultiLevel: 0, DeviceIotlb: 1, PassThrough: 2 });
    expect(ENTRY_SIZE).toBe(16);
  });

  it('a fresh context entry is zero and unread', () => {
    expect(newContextEntry()).toEqual({ lo: { lo: 0, hi: 0 }, hi: { lo: 0, hi: 0 }, read: false });
    const a = newContextEntry();
    expect(a.lo).not.toBe(newContextEntry().lo);
    expect(a.lo).not.toBe(a.hi);
  });
});

describe('field accessors', () => {
  it('FPD, TT, AW, levels, AGAW, DID and the table base', () => {
    const ce = entry(0x0000_0012_3456_7000n | (2n << 2n) | 2n | 1n, (0xbeefn << 8n) | 3n);
    expect(ctxFpd(ce)).toBe(true);
    expect(ctxType(ce)).toBe(TranslationType.PassThrough);
    expect(ctxAw(ce)).toBe(3);
    expect(ctxLevels(ce)).toBe(5);
    expect(ctxAgaw(ce)).toBe(57);
    expect(ctxDid(ce)).toBe(0xbeef);
    expect(ctxTableBase(ce)).toBe(0x12_3456_7000);
  });

  it('each field reads only its bits', () => {
    const ce = entry(0xffff_ffff_ffff_fff1n & ~0xen, 0xffff_ffff_ffff_ff78n);
    expect(ctxFpd(ce)).toBe(false);
    expect(ctxType(ce)).toBe(0);
    expect(ctxAw(ce)).toBe(0);
    expect(ctxLevels(ce)).toBe(2);
    expect(ctxAgaw(ce)).toBe(30);
    expect(ctxDid(ce)).toBe(0xffff);
    expect(ctxTableBase(ce)).toBe(2 ** 64 - 0x1000);
    const low = entry(0xffen | 0x1000n, 0x7n | 0x80n);
    expect(ctxFpd(low)).toBe(true);
    expect(ctxType(low)).toBe(3);
    expect(ctxAw(low)).toBe(7);
    expect(ctxLevels(low)).toBe(9);
    expect(ctxAgaw(low)).toBe(93);
    expect(ctxDid(low)).toBe(0);
    expect(ctxTableBase(low)).toBe(0x1000);
  });

  it('AW 1, 2, 3: 3, 4, 5 levels; AGAW 39, 48, 57', () => {
    for (const aw of [1, 2, 3]) {
      const ce = entry(1n, BigInt(aw));
      expect([ctxLevels(ce), ctxAgaw(ce)]).toEqual([aw + 2, 30 + 9 * aw]);
    }
  });
});

describe('lookupContext: success', () => {
  it('returns 0 and the entry of (bus, devfn), marked read', () => {
    const { b, root, look } = setup();
    b.setContext(root, 3, 0x11, ...ctxEntry(TOP, 0x1234, 2, { fpd: true }));
    const { r, ce } = look(3, 0x11);
    expect(r).toBe(0);
    expect(ce.read).toBe(true);
    expect(ctxDid(ce)).toBe(0x1234);
    expect(ctxAw(ce)).toBe(2);
    expect(ctxFpd(ce)).toBe(true);
    expect(ctxTableBase(ce)).toBe(TOP);
    expect(ce.lo).toEqual({ lo: TOP | 3, hi: 0 });
    expect(ce.hi).toEqual({ lo: 0x12_3402, hi: 0 });
  });

  it('indexes the root table by bus and the context table by devfn (16-byte entries)', () => {
    const { b, root, look, table } = setup();
    b.setContext(root, 255, 255, ...ctxEntry(TOP, 7, 1));
    b.setContext(root, 0, 0, ...ctxEntry(TOP, 8, 1));
    b.setContext(root, 1, 0x80, ...ctxEntry(TOP, 9, 1));
    expect(table(255)).toBe(Number(b.peek64(root + 255 * 16) & ~0xfffn));
    expect(b.peek64(table(255) + 255 * 16) & 1n).toBe(1n);
    expect([look(255, 255).r, ctxDid(look(255, 255).ce)]).toEqual([0, 7]);
    expect([look(0, 0).r, ctxDid(look(0, 0).ce)]).toEqual([0, 8]);
    expect([look(1, 0x80).r, ctxDid(look(1, 0x80).ce)]).toEqual([0, 9]);
    expect(look(255, 254).r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(look(0, 1).r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(look(1, 0x7f).r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(look(254, 255).r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(look(2, 0).r).toBe(VtdFault.ROOT_ENTRY_P);
  });

  it('a context table above 4 GiB is found through the root entry\'s high dword', () => {
    // RAM ends at 64 MiB; a root entry naming 4 GiB + x is a read failure, which proves the high dword is used.
    const { b, root, look } = setup();
    b.poke64(root, (1n << 32n) | 0x5000n | 1n);
    expect(look(0, 0).r).toBe(VtdFault.CONTEXT_TABLE_INV);
    b.poke64(root, 0x5000n | 1n);
    b.poke64(0x5000 + 16 * 9, BigInt(TOP) | 1n);
    b.poke64(0x5000 + 16 * 9 + 8, 0x2a01n);
    expect(look(0, 9).r).toBe(0);
    expect(ctxDid(look(0, 9).ce)).toBe(0x2a);
  });

  it('AW bits 6:3 of the high qword are ignored; the table base may be above 4 GiB', () => {
    const { b, root, look } = setup();
    b.setContext(root, 0, 8, BigInt(2 ** 47) | 0x1000n | 1n, 0x78n | 1n);
    const { r, ce } = look(0, 8);
    expect(r).toBe(0);
    expect(ctxAw(ce)).toBe(1);
    expect(ctxTableBase(ce)).toBe(2 ** 47 + 0x1000);
  });
});

describe('lookupContext: root entry', () => {
  it('an unreadable root table: 0x8, the context entry not read', () => {
    const { look } = setup();
    const { r, ce } = look(0, 0, HOLE);
    expect(r).toBe(VtdFault.ROOT_TABLE_INV);
    expect(ce.read).toBe(false);
  });

  it('a root entry whose high qword is unreadable: 0x8', () => {
    const { b, look } = setup();
    // Bus 2's entry: low qword is the last of RAM, high qword in the hole behind it.
    const rootTable = RAM - 8 - 2 * 16;
    b.poke64(RAM - 8, BigInt(0x5000) | 1n);
    expect(look(2, 0, rootTable).r).toBe(VtdFault.ROOT_TABLE_INV);
    expect(look(1, 0, rootTable).r).toBe(VtdFault.ROOT_ENTRY_P);
  });

  it('root entry not present: 0x1, whatever else it holds', () => {
    const { b, root, look } = setup();
    b.setContext(root, 4, 0, ...ctxEntry(TOP, 1, 1));
    b.poke64(root + 4 * 16, b.peek64(root + 4 * 16) & ~1n);
    expect(look(4, 0).r).toBe(VtdFault.ROOT_ENTRY_P);
    b.poke64(root + 4 * 16, 0xffen | (1n << 60n));
    b.poke64(root + 4 * 16 + 8, 1n);
    const { r, ce } = look(4, 0);
    expect(r).toBe(VtdFault.ROOT_ENTRY_P);
    expect(ce.read).toBe(false);
  });

  for (const [what, lo, hi] of [
    ['bit 1', 0x2n, 0n],
    ['bit 11', 0x800n, 0n],
    ['hi bit 0', 0n, 1n],
    ['hi bit 63', 0n, 1n << 63n],
    ['hi bit 32', 0n, 1n << 32n],
    ['address bit 48 (aw-bits 48)', 1n << 48n, 0n],
    ['address bit 63', 1n << 63n, 0n],
  ] as const) {
    it(`root reserved ${what}: 0xA`, () => {
      const { b, root, look } = setup();
      b.setContext(root, 5, 0, ...ctxEntry(TOP, 1, 1));
      b.poke64(root + 5 * 16, b.peek64(root + 5 * 16) | lo);
      b.poke64(root + 5 * 16 + 8, hi);
      const { r, ce } = look(5, 0);
      expect(r).toBe(VtdFault.ROOT_ENTRY_RSVD);
      expect(ce.read).toBe(false);
    });
  }

  it('root address bits below the host width are not reserved (aw-bits 39: bit 38 ok, bit 39 reserved)', () => {
    const { b, root, look } = setup({ 'aw-bits': 39 });
    b.poke64(root, (1n << 38n) | 0x5000n | 1n);
    expect(look(0, 0).r).toBe(VtdFault.CONTEXT_TABLE_INV);
    b.poke64(root, (1n << 39n) | 0x5000n | 1n);
    expect(look(0, 0).r).toBe(VtdFault.ROOT_ENTRY_RSVD);
    const w = setup({ 'aw-bits': 48 });
    w.b.poke64(w.root, (1n << 47n) | 0x5000n | 1n);
    expect(w.look(0, 0).r).toBe(VtdFault.CONTEXT_TABLE_INV);
  });
});

describe('lookupContext: context entry', () => {
  it('an unreadable context table: 0x9, the entry not read', () => {
    const { b, root, look } = setup();
    b.poke64(root + 16, BigInt(HOLE) | 1n);
    const { r, ce } = look(1, 0);
    expect(r).toBe(VtdFault.CONTEXT_TABLE_INV);
    expect(ce.read).toBe(false);
  });

  it('a context entry whose high qword is unreadable: 0x9', () => {
    const { b, root, look } = setup();
    // 8 bytes of RAM at 4 GiB with a hole behind: devfn 0's low qword reads, its high qword does not.
    const ram = createRam(0x1000, 'ts');
    b.system.add(new RamRegion('8 bytes', 8, ram), 2 ** 32);
    ram.writeU32(0, TOP | 1);
    b.poke64(root, (1n << 32n) | 1n);
    const { r, ce } = look(0, 0);
    expect(r).toBe(VtdFault.CONTEXT_TABLE_INV);
    expect(ce.read).toBe(false);
    // The same entry fully in RAM is fine.
    b.poke64(0x5000, BigInt(TOP) | 1n);
    b.poke64(0x5008, 0x101n);
    b.poke64(root, 0x5000n | 1n);
    expect(look(0, 0).r).toBe(0);
  });

  it('context not present: 0x2, read (its FPD counts)', () => {
    const { b, root, look } = setup();
    b.setContext(root, 0, 8, BigInt(TOP) | 2n, 0x101n);
    const { r, ce } = look(0, 8);
    expect(r).toBe(VtdFault.CONTEXT_ENTRY_P);
    expect(ce.read).toBe(true);
    expect(ctxFpd(ce)).toBe(true);
    // Not present wins over reserved bits and a bad AW.
    b.setContext(root, 0, 8, 0xff0n, 0xffff_ffff_ff00_0087n);
    expect(look(0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_P);
  });

  const RSVD: [string, bigint, bigint][] = [
    ['lo bit 4', 1n << 4n, 0n],
    ['lo bit 11', 1n << 11n, 0n],
    ['lo address bit 48', 1n << 48n, 0n],
    ['lo address bit 63', 1n << 63n, 0n],
    ['hi bit 7', 0n, 1n << 7n],
    ['hi bit 24', 0n, 1n << 24n],
    ['hi bit 31', 0n, 1n << 31n],
    ['hi bit 32', 0n, 1n << 32n],
    ['hi bit 63', 0n, 1n << 63n],
  ];
  for (const [what, lo, hi] of RSVD) {
    it(`context reserved ${what}: 0xB, read`, () => {
      const { b, root, look } = setup();
      const [l, h] = ctxEntry(TOP, 1, 1);
      b.setContext(root, 0, 8, l | lo, h | hi);
      const { r, ce } = look(0, 8);
      expect(r).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
      expect(ce.read).toBe(true);
    });
  }

  it('context address bits below the host width are not reserved (aw-bits 39)', () => {
    const { b, root, look } = setup({ 'aw-bits': 39 });
    const [l, h] = ctxEntry(TOP, 1, 1);
    b.setContext(root, 0, 8, l | (1n << 38n), h);
    expect(look(0, 8).r).toBe(0);
    expect(ctxTableBase(look(0, 8).ce)).toBe(2 ** 38 + TOP);
    b.setContext(root, 0, 8, l | (1n << 39n), h);
    expect(look(0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
  });

  it('reserved bits are checked before the AW and TT fields', () => {
    const { b, root, look } = setup({ pt: false });
    b.setContext(root, 0, 8, BigInt(TOP) | (3n << 2n) | 0x10n | 1n, 0x7n);
    expect(look(0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
  });

  // [aw-bits, AW values accepted]: SAGAW 0x2 / 0x6 / 0xE.
  for (const [awBits, accepted] of [
    [39, [1]],
    [48, [1, 2]],
    [57, [1, 2, 3]],
  ] as const) {
    it(`aw-bits ${awBits}: AW in ${JSON.stringify(accepted)} accepted, other AW values 0x3`, () => {
      const { b, root, look } = setup({ 'aw-bits': awBits });
      for (let aw = 0; aw < 8; aw++) {
        b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, aw));
        const { r, ce } = look(0, 8);
        expect(r, `AW ${aw}`).toBe((accepted as readonly number[]).includes(aw) ? 0 : VtdFault.CONTEXT_ENTRY_INV);
        expect(ce.read).toBe(true);
      }
    });
  }

  it('dma-translation=off (SAGAW 0): every AW is invalid', () => {
    const { b, root, look } = setup({ 'dma-translation': false });
    for (let aw = 0; aw < 8; aw++) {
      b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, aw));
      expect(look(0, 8).r, `AW ${aw}`).toBe(VtdFault.CONTEXT_ENTRY_INV);
    }
  });

  it('the AW check comes before the TT check', () => {
    const { b, root, look } = setup();
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 0, { tt: 3 }));
    expect(look(0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_INV);
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 1, { tt: 3 }));
    expect(look(0, 8).r).toBe(VtdFault.CONTEXT_ENTRY_INV);
  });

  for (const [props, tt1, tt2] of [
    [{}, false, true],
    [{ 'device-iotlb': true }, true, true],
    [{ pt: false }, false, false],
    [{ 'device-iotlb': true, pt: false }, true, false],
  ] as const) {
    it(`translation types with ${JSON.stringify(props)}: TT0 ok, TT1 ${tt1 ? 'ok' : '0x3'}, TT2 ${tt2 ? 'ok' : '0x3'}, TT3 0x3`, () => {
      const { b, root, look } = setup(props);
      const want = [0, tt1 ? 0 : VtdFault.CONTEXT_ENTRY_INV, tt2 ? 0 : VtdFault.CONTEXT_ENTRY_INV, VtdFault.CONTEXT_ENTRY_INV];
      for (let tt = 0; tt < 4; tt++) {
        b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 1, { tt }));
        const { r, ce } = look(0, 8);
        expect(r, `TT ${tt}`).toBe(want[tt]);
        expect(ctxType(ce)).toBe(tt);
      }
    });
  }

  it('a pass-through entry is valid without a page table', () => {
    const { b, root, look } = setup();
    b.setContext(root, 0, 8, ...ctxEntry(0, 1, 1, { tt: 2 }));
    expect(look(0, 8).r).toBe(0);
  });

  it('uses the rules it is given, not the unit', () => {
    const { b, root } = setup();
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 2, { tt: 1 }));
    const ce = newContextEntry();
    const rules = { hawHiMask: 0xffff, sagaw: 0x4, deviceIotlb: true, passThrough: false };
    expect(lookupContext(b.memory, root, 0, 8, rules, ce)).toBe(0);
    expect(lookupContext(b.memory, root, 0, 8, { ...rules, sagaw: 0x2 }, ce)).toBe(VtdFault.CONTEXT_ENTRY_INV);
    expect(lookupContext(b.memory, root, 0, 8, { ...rules, deviceIotlb: false }, ce)).toBe(VtdFault.CONTEXT_ENTRY_INV);
    expect(lookupContext(b.memory, root, 0, 8, { ...rules, hawHiMask: 0 }, ce)).toBe(0);
    b.setContext(root, 0, 8, ...ctxEntry(2 ** 32, 1, 2, { tt: 1 }));
    expect(lookupContext(b.memory, root, 0, 8, rules, ce)).toBe(0);
    expect(lookupContext(b.memory, root, 0, 8, { ...rules, hawHiMask: 0 }, ce)).toBe(VtdFault.CONTEXT_ENTRY_RSVD);
  });

  it('clears the read flag of a reused entry before looking up', () => {
    const { b, root } = setup();
    b.setContext(root, 0, 8, ...ctxEntry(TOP, 1, 1));
    const ce = newContextEntry();
    expect(lookupContext(b.memory, root, 0, 8, b.iommu.ctxRules, ce)).toBe(0);
    expect(ce.read).toBe(true);
    expect(lookupContext(b.memory, root, 7, 8, b.iommu.ctxRules, ce)).toBe(VtdFault.ROOT_ENTRY_P);
    expect(ce.read).toBe(false);
  });
});
