import { describe, expect, it } from 'vitest';
import { SID_UNKNOWN } from './hooks.js';
import { TestCore } from './queue-testing.js';
import { FAULT_SID_UNKNOWN } from './interrupt-remap.js';
import { VtdFault } from './fault-reasons.js';

const IRT = 0x40_0000;
const EDU_SID = 0x0008;

interface IrteFields {
  p?: number; fpd?: number; dm?: number; rh?: number; tm?: number; dlm?: number; im?: number; vector?: number;
  dst?: number; sid?: number; sq?: number; svt?: number; hiExtra?: number; loExtra?: number;
}

function putIrte(c: TestCore, index: number, f: IrteFields): void {
  const w0 = ((f.p ?? 1) | ((f.fpd ?? 0) << 1) | ((f.dm ?? 0) << 2) | ((f.rh ?? 0) << 3) | ((f.tm ?? 0) << 4) |
    ((f.dlm ?? 0) << 5) | ((f.im ?? 0) << 15) | ((f.vector ?? 0) << 16) | (f.loExtra ?? 0)) >>> 0;
  const w2 = ((f.sid ?? 0) | ((f.sq ?? 0) << 16) | ((f.svt ?? 0) << 18)) >>> 0;
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, w0, true);
  v.setUint32(4, (f.dst ?? 0) >>> 0, true);
  v.setUint32(8, w2, true);
  v.setUint32(12, (f.hiExtra ?? 0) >>> 0, true);
  c.poke(IRT + index * 16, b);
}

/** Remappable-format MSI address for `handle` (SHV optional). */
function remapAddr(handle: number, shv = false): number {
  return (0xfee0_0000 | ((handle & 0x7fff) << 5) | 0x10 | (shv ? 0x8 : 0) | ((handle >> 15) << 2)) >>> 0;
}

function irOn(props = {}, s = 0xf, eime = false): TestCore {
  const c = new TestCore(props);
  c.setIrta(IRT, s, eime);
  c.setIre(true);
  return c;
}

describe('pass-through', () => {
  it('with IRE off, messages pass unchanged and nothing faults', () => {
    const c = new TestCore();
    c.setIrta(IRT, 0);
    c.hooks.interruptWrite?.(remapAddr(5), 0x1234, EDU_SID);
    expect(c.msis).toEqual([{ address: remapAddr(5), data: 0x1234, origin: { kind: 'msi', source: EDU_SID } }]);
    expect(c.faults).toEqual([]);
  });

  it('compatibility-format messages pass unchanged with IRE on (QEMU)', () => {
    const c = irOn();
    c.hooks.interruptWrite?.(0xfee0_1000, 0x41, SID_UNKNOWN);
    expect(c.msis).toEqual([{ address: 0xfee0_1000, data: 0x41, origin: { kind: 'ioapic' } }]);
  });
});

describe('remapped delivery', () => {
  it('turns index 2 into the IRTE vector and destination (kvm-unit-tests MSI case)', () => {
    const c = irOn();
    putIrte(c, 2, { vector: 0xee, dst: 0x0100, sid: EDU_SID, svt: 1 });
    c.hooks.interruptWrite?.(remapAddr(2), 0, EDU_SID);
    expect(c.faults).toEqual([]);
    expect(c.msis).toEqual([{ address: 0xfee0_1000, data: 0xee | 0x4000, origin: { kind: 'msi', source: EDU_SID, remappedIndex: 2 } }]);
  });

  it('carries DM, RH, TM and DLM into the message', () => {
    const c = irOn();
    putIrte(c, 7, { vector: 0x30, dst: 0x0300, dm: 1, rh: 1, tm: 1, dlm: 1 });
    const o = c.hooks.remapper.remap(remapAddr(7), 0, SID_UNKNOWN);
    expect(o.status).toBe('delivered');
    expect(o.address).toBe((0xfee0_3000 | 0x8 | 0x4) >>> 0);
    expect(o.data).toBe(0x30 | (1 << 8) | (1 << 14) | (1 << 15));
  });

  it('keeps address bits 1:0 of the request', () => {
    const c = irOn();
    putIrte(c, 1, { vector: 0x40 });
    expect(c.hooks.remapper.remap((remapAddr(1) | 0x3) >>> 0, 0, SID_UNKNOWN).address).toBe(0xfee0_0003);
  });

  it('uses handle bit 15 from address bit 2', () => {
    const c = irOn();
    putIrte(c, 0x8001, { vector: 0x51 });
    expect(c.hooks.remapper.remap(remapAddr(0x8001), 0, SID_UNKNOWN).data & 0xff).toBe(0x51);
  });

  it('adds the sub-handle from the data when SHV is set', () => {
    const c = irOn();
    putIrte(c, 0x13, { vector: 0x61 });
    expect(c.hooks.remapper.remap(remapAddr(0x10, true), 3, SID_UNKNOWN).data & 0xff).toBe(0x61);
  });

  it('without SHV the data (IOAPIC vector/trigger) does not select the entry', () => {
    const c = irOn();
    putIrte(c, 0x10, { vector: 0x62 });
    expect(c.hooks.remapper.remap(remapAddr(0x10), 0x8023, SID_UNKNOWN).data & 0xff).toBe(0x62);
  });

  it('xAPIC mode takes DST[15:8]; EIME with eim gives the full 32-bit destination', () => {
    const x = irOn();
    putIrte(x, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(x.hooks.remapper.remap(remapAddr(1), 0, SID_UNKNOWN).address).toBe(0xfee5_6000);
    const e = irOn({ eim: 'on', 'x-buggy-eim': true }, 0xf, true);
    putIrte(e, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(e.hooks.remapper.remap(remapAddr(1), 0, SID_UNKNOWN).address).toBe(0x1234_5600 * 2 ** 32 + 0xfee7_8000);
  });

  it('ignores IRTA.EIME when the eim property is off', () => {
    const c = irOn({}, 0xf, true);
    putIrte(c, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(c.hooks.remapper.remap(remapAddr(1), 0, SID_UNKNOWN).address).toBe(0xfee5_6000);
  });
});

describe('IOAPIC data checks', () => {
  it('traces (only) a vector or trigger mismatch between the RTE data and the IRTE, as QEMU', () => {
    const events: string[] = [];
    const c = new TestCore({}, { enabled: () => true, trace: (e) => { events.push(e); } });
    c.setIrta(IRT, 0xf);
    c.setIre(true);
    putIrte(c, 1, { vector: 0xed, tm: 0 });
    c.hooks.interruptWrite?.(remapAddr(1), 0x80ec, SID_UNKNOWN);
    expect(c.msis.map((m) => m.data & 0xff)).toEqual([0xed]);
    expect(events).toEqual(expect.arrayContaining(['vtd_warn_ir_vector', 'vtd_warn_ir_trigger']));
    events.length = 0;
    c.hooks.interruptWrite?.(remapAddr(1), 0xed, SID_UNKNOWN);
    expect(events).not.toContain('vtd_warn_ir_vector');
    expect(events).not.toContain('vtd_warn_ir_trigger');
  });
});

describe('IR faults (spec 5.1.4, recorded as current QEMU)', () => {
  function fault(c: TestCore) {
    expect(c.msis).toEqual([]);
    expect(c.faults).toHaveLength(1);
    return c.faults[0]!;
  }

  it('0x21: index beyond 2^(S+1) entries (not qualified: FPD of no entry)', () => {
    const c = irOn({}, 0); // 2 entries
    putIrte(c, 2, { vector: 1, fpd: 1 });
    c.hooks.interruptWrite?.(remapAddr(2), 0, EDU_SID);
    expect(fault(c)).toEqual({ sid: EDU_SID, reason: VtdFault.IR_INDEX_OVER, addr: 0, isWrite: true, extra: { fpd: false, irIndex: 2 } });
  });

  it('0x22: IRTE not present, with its FPD passed for suppression', () => {
    const c = irOn();
    putIrte(c, 3, { p: 0 });
    c.hooks.interruptWrite?.(remapAddr(3), 0, EDU_SID);
    expect(fault(c)).toMatchObject({ reason: VtdFault.IR_ENTRY_P, extra: { fpd: false, irIndex: 3 } });
    const d = irOn();
    putIrte(d, 3, { p: 0, fpd: 1 });
    d.hooks.interruptWrite?.(remapAddr(3), 0, EDU_SID);
    expect(fault(d)).toMatchObject({ reason: VtdFault.IR_ENTRY_P, extra: { fpd: true } });
  });

  it('0x23: the table cannot be read', () => {
    const c = new TestCore();
    c.setIrta(0x7000_0000, 0xf);
    c.setIre(true);
    c.hooks.interruptWrite?.(remapAddr(1), 0, EDU_SID);
    expect(fault(c)).toMatchObject({ reason: VtdFault.IR_ROOT_INVAL, extra: { irIndex: 1 } });
  });

  for (const [name, f] of [
    ['bits 14:12', { loExtra: 1 << 12 }],
    ['bits 31:24', { loExtra: 1 << 24 }],
    ['bits 127:84', { hiExtra: 1 }],
    ['IM=1 without posted interrupts', { im: 1 }],
  ] as [string, IrteFields][]) {
    it(`0x24: reserved ${name}`, () => {
      const c = irOn();
      putIrte(c, 4, { vector: 0x20, ...f });
      c.hooks.interruptWrite?.(remapAddr(4), 0, EDU_SID);
      expect(fault(c)).toMatchObject({ reason: VtdFault.IR_IRTE_RSVD, extra: { irIndex: 4 } });
    });
  }

  it('0x26: source-ID mismatch (SVT 1), FPD passed along', () => {
    const c = irOn();
    putIrte(c, 5, { vector: 0x20, sid: 0x0010, svt: 1, fpd: 1 });
    c.hooks.interruptWrite?.(remapAddr(5), 0, EDU_SID);
    expect(fault(c)).toMatchObject({ sid: EDU_SID, reason: VtdFault.IR_SID_ERR, extra: { fpd: true, irIndex: 5 } });
  });

  it('0x26: bus outside the SVT 2 range; inside passes', () => {
    const c = irOn();
    putIrte(c, 5, { vector: 0x20, sid: 0x0203, svt: 2 });
    c.hooks.interruptWrite?.(remapAddr(5), 0, 0x0100);
    expect(fault(c)).toMatchObject({ reason: VtdFault.IR_SID_ERR });
    c.hooks.interruptWrite?.(remapAddr(5), 0, 0x0300);
    expect(c.msis).toHaveLength(1);
  });

  it('the IOAPIC path (unknown SID) skips source-ID verification', () => {
    const c = irOn();
    putIrte(c, 1, { vector: 0xed, sid: EDU_SID, svt: 1 });
    c.hooks.interruptWrite?.(remapAddr(1), 0, SID_UNKNOWN);
    expect(c.faults).toEqual([]);
    expect(c.msis).toEqual([{ address: 0xfee0_0000, data: 0xed | 0x4000, origin: { kind: 'ioapic', remappedIndex: 1 } }]);
  });

  it('IOAPIC-path faults are recorded with SID 0xFFFF', () => {
    const c = irOn({}, 0);
    c.hooks.interruptWrite?.(remapAddr(9), 0, SID_UNKNOWN);
    expect(fault(c)).toMatchObject({ sid: FAULT_SID_UNKNOWN, reason: VtdFault.IR_INDEX_OVER, extra: { irIndex: 9 } });
  });

  it('0x20: SHV with data bits 31:16 set, after the lookup, index 0', () => {
    const c = irOn();
    putIrte(c, 0x11, { vector: 0x20 });
    c.hooks.interruptWrite?.(remapAddr(0x10, true), 0x1_0001, EDU_SID);
    expect(fault(c)).toMatchObject({ reason: VtdFault.IR_REQ_RSVD, extra: { irIndex: 0, fpd: false } });
  });

  it('0x20: an address outside 0xFEExxxxx', () => {
    const c = irOn();
    c.hooks.remapper.remap(0xfed0_0010, 0, EDU_SID);
    expect(c.faults[0]).toMatchObject({ reason: VtdFault.IR_REQ_RSVD });
    c.hooks.remapper.remap(2 ** 32 + 0xfee0_0010, 0, EDU_SID);
    expect(c.faults[1]).toMatchObject({ reason: VtdFault.IR_REQ_RSVD });
  });
});

describe('interrupt entry cache', () => {
  function vectorOf(c: TestCore, index: number): number {
    return c.hooks.remapper.remap(remapAddr(index), 0, SID_UNKNOWN).data & 0xff;
  }

  it('keeps a cached IRTE until an IEC invalidation covers it', () => {
    const c = irOn();
    putIrte(c, 0x21, { vector: 0x30 });
    expect(vectorOf(c, 0x21)).toBe(0x30);
    putIrte(c, 0x21, { vector: 0x31 });
    expect(vectorOf(c, 0x21)).toBe(0x30);
    c.hooks.remapper.invalidateIec(false, 0x24, 2); // 0x24-0x27: not 0x21
    expect(vectorOf(c, 0x21)).toBe(0x30);
    c.hooks.remapper.invalidateIec(false, 0x22, 2); // aligned block 0x20-0x23
    expect(vectorOf(c, 0x21)).toBe(0x31);
    putIrte(c, 0x21, { vector: 0x32 });
    c.hooks.remapper.invalidateIec(true, 0, 0);
    expect(vectorOf(c, 0x21)).toBe(0x32);
  });

  it('does not cache faulting entries', () => {
    const c = irOn();
    putIrte(c, 6, { p: 0 });
    c.hooks.remapper.remap(remapAddr(6), 0, SID_UNKNOWN);
    putIrte(c, 6, { vector: 0x44 });
    expect(vectorOf(c, 6)).toBe(0x44);
  });

  it('SIRTP and IRE changes flush it', () => {
    const c = irOn();
    putIrte(c, 1, { vector: 0x50 });
    expect(vectorOf(c, 1)).toBe(0x50);
    putIrte(c, 1, { vector: 0x51 });
    c.setIrta(IRT, 0xf);
    expect(vectorOf(c, 1)).toBe(0x51);
    putIrte(c, 1, { vector: 0x52 });
    c.setIre(false);
    c.setIre(true);
    expect(vectorOf(c, 1)).toBe(0x52);
  });

  it('the queue IEC descriptor reaches it', () => {
    const c = irOn();
    c.enableQueue(0x10_0000);
    putIrte(c, 3, { vector: 0x60 });
    expect(vectorOf(c, 3)).toBe(0x60);
    putIrte(c, 3, { vector: 0x61 });
    c.putDesc(0x10_0000, 0, 0x14n | (3n << 32n));
    c.setTail(1);
    expect(vectorOf(c, 3)).toBe(0x61);
  });
});

describe('random input (property)', () => {
  it('random IRTEs and messages never throw; every message is delivered, posted or dropped with a fault or FPD', () => {
    let x = 0x1234_5678;
    const next = () => {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      return x;
    };
    const c = irOn({ 'x-pi': true }, 4);
    for (let i = 0; i < 32; i++) {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      for (let w = 0; w < 4; w++) v.setUint32(w * 4, next() % 4 === 0 ? next() : next() & [0x00ff_8fff, 0xffff_ffff, 0x000f_ffff, 0][w]!, true);
      c.poke(IRT + i * 16, b);
    }
    for (let n = 0; n < 2000; n++) {
      const addr = (0xfee0_0000 | (next() & 0xf_ffff)) >>> 0;
      const before = c.faults.length;
      const o = c.hooks.remapper.remap(addr, next(), next() % 5 === 0 ? SID_UNKNOWN : next() & 0xffff);
      expect(['delivered', 'posted', 'dropped']).toContain(o.status);
      if (o.status === 'dropped' && o.reason !== 0) expect(c.faults.length).toBe(before + 1);
      if (o.status === 'delivered') expect(o.address >= 0xfee0_0000).toBe(true);
    }
  });
});
