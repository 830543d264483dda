/**
 * Interrupt remapping (interrupt-remap.ts) inside the real unit (VtdBench,
 * whose unit owns its remapper): the guest programs IRTA / GCMD.SIRTP / IRE
 * through the register window and writes IRTEs into guest RAM; messages
 * enter through the unit's interrupt entry points (a requester's write into
 * the interrupt window, or the IOAPIC path); the tests read the MSIs the unit
 * sends (`bench.msis`) and its 'fault' events.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench, type RecordedEvents, type RecordedMsi } from '../../../test/support/vtd-bench.js';
import { u32Stream } from '../../../test/support/prng.js';
import type { FaultEvent } from './events.js';
import { SID_UNKNOWN } from './requests.js';
import { FAULT_SID_UNKNOWN } from './interrupt-remap.js';
import { VtdFault } from './fault-reasons.js';
import { Gcmd, Reg } from './reg-layout.js';
import type { PropValues, Tracer } from '../../machine/device-type.js';

const IRT = 0x40_0000;
const QUEUE = 0x10_0000;
const EDU_SID = 0x0008;

interface IrteFields {
  p?: number; fpd?: number; dm?: number; rh?: number; tm?: number; dlm?: number; im?: number; vector?: number;
  dst?: number; sid?: number; sq?: number; svt?: number; hiExtra?: number; loExtra?: number;
}

function putIrte(b: VtdBench, index: number, f: IrteFields): void {
  const w0 = ((f.p ?? 1) | ((f.fpd ?? 0) << 1) | ((f.dm ?? 0) << 2) | ((f.rh ?? 0) << 3) | ((f.tm ?? 0) << 4) |
    ((f.dlm ?? 0) << 5) | ((f.im ?? 0) << 15) | ((f.vector ?? 0) << 16) | (f.loExtra ?? 0)) >>> 0;
  const w2 = ((f.sid ?? 0) | ((f.sq ?? 0) << 16) | ((f.svt ?? 0) << 18)) >>> 0;
  const bytes = new Uint8Array(16);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, w0, true);
  v.setUint32(4, (f.dst ?? 0) >>> 0, true);
  v.setUint32(8, w2, true);
  v.setUint32(12, (f.hiExtra ?? 0) >>> 0, true);
  b.memory.writeBytes(IRT + index * 16, bytes);
}

/** Remappable-format MSI address for `handle` (SHV optional). */
function remapAddr(handle: number, shv = false): number {
  return (0xfee0_0000 | ((handle & 0x7fff) << 5) | 0x10 | (shv ? 0x8 : 0) | ((handle >> 15) << 2)) >>> 0;
}

/** A unit with interrupt remapping available (IRE off). */
function unit(props: PropValues = {}, tracer?: Tracer): VtdBench {
  return new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', ...props }, tracer });
}

/** IRTA (base | S | EIME) and GCMD.SIRTP, as a guest does. */
function setIrta(b: VtdBench, base: number, s: number, eime = false): void {
  b.w64(Reg.IRTA, BigInt((base | s | (eime ? 1 << 11 : 0)) >>> 0));
  b.gcmd(Gcmd.SIRTP);
}

/** GCMD.IRE on or off (other persistent bits kept). */
function setIre(b: VtdBench, on: boolean): void {
  if (on) b.gcmd(Gcmd.IRE);
  else b.gcmd(0, Gcmd.IRE);
}

function irOn(props: PropValues = {}, s = 0xf, eime = false, tracer?: Tracer): VtdBench {
  const b = unit(props, tracer);
  setIrta(b, IRT, s, eime);
  setIre(b, true);
  return b;
}

/** A 4-byte write of `data` to `addr` in the interrupt window by `sid` (SID_UNKNOWN: the IOAPIC's message). */
function send(b: VtdBench, addr: number, data: number, sid: number): void {
  if (sid === SID_UNKNOWN) b.iommu.interruptFromIoapic(addr, data);
  else b.iommu.interruptWrite(addr, data, sid);
}

/** Sends one message and returns the one MSI it became. */
function deliver(b: VtdBench, addr: number, data = 0, sid = SID_UNKNOWN): RecordedMsi {
  const before = b.msis.length;
  send(b, addr, data, sid);
  expect(b.msis).toHaveLength(before + 1);
  return b.msis[before]!;
}

/** A tracer keeping every event with its fields. */
function traceLog(): { tracer: Tracer; events: { event: string; fields: Readonly<Record<string, unknown>> }[] } {
  const events: { event: string; fields: Readonly<Record<string, unknown>> }[] = [];
  return { tracer: { enabled: () => true, trace: (event, fields) => { events.push({ event, fields }); } }, events };
}

describe('pass-through', () => {
  it('with IRE off, messages pass unchanged and nothing faults', () => {
    const b = unit();
    const rec = b.recordEvents();
    setIrta(b, IRT, 0);
    send(b, remapAddr(5), 0x1234, EDU_SID);
    expect(b.msis).toEqual([{ address: remapAddr(5), data: 0x1234, origin: { kind: 'msi', source: EDU_SID } }]);
    expect(rec.faults).toEqual([]);
  });

  it('compatibility-format messages pass unchanged with IRE on (QEMU)', () => {
    const b = irOn();
    send(b, 0xfee0_1000, 0x41, SID_UNKNOWN);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x41, origin: { kind: 'ioapic' } }]);
  });
});

describe('remapped delivery', () => {
  it('turns index 2 into the IRTE vector and destination (kvm-unit-tests MSI case)', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 2, { vector: 0xee, dst: 0x0100, sid: EDU_SID, svt: 1 });
    send(b, remapAddr(2), 0, EDU_SID);
    expect(rec.faults).toEqual([]);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0xee | 0x4000, origin: { kind: 'msi', source: EDU_SID, remappedIndex: 2 } }]);
  });

  it('carries DM, RH, TM and DLM into the message', () => {
    const b = irOn();
    putIrte(b, 7, { vector: 0x30, dst: 0x0300, dm: 1, rh: 1, tm: 1, dlm: 1 });
    expect(deliver(b, remapAddr(7))).toEqual({
      address: (0xfee0_3000 | 0x8 | 0x4) >>> 0,
      data: 0x30 | (1 << 8) | (1 << 14) | (1 << 15),
      origin: { kind: 'ioapic', remappedIndex: 7 },
    });
  });

  it('keeps address bits 1:0 of the request', () => {
    const b = irOn();
    putIrte(b, 1, { vector: 0x40 });
    expect(deliver(b, (remapAddr(1) | 0x3) >>> 0).address).toBe(0xfee0_0003);
  });

  it('uses handle bit 15 from address bit 2', () => {
    const b = irOn();
    putIrte(b, 0x8001, { vector: 0x51 });
    expect(deliver(b, remapAddr(0x8001)).data & 0xff).toBe(0x51);
  });

  it('adds the sub-handle from the data when SHV is set', () => {
    const b = irOn();
    putIrte(b, 0x13, { vector: 0x61 });
    expect(deliver(b, remapAddr(0x10, true), 3).data & 0xff).toBe(0x61);
  });

  it('without SHV the data (IOAPIC vector/trigger) does not select the entry', () => {
    const b = irOn();
    putIrte(b, 0x10, { vector: 0x62 });
    expect(deliver(b, remapAddr(0x10), 0x8023).data & 0xff).toBe(0x62);
  });

  it('xAPIC mode takes DST[15:8]; EIME with eim gives the full 32-bit destination', () => {
    const x = irOn();
    putIrte(x, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(deliver(x, remapAddr(1)).address).toBe(0xfee5_6000);
    const e = irOn({ eim: 'on' }, 0xf, true);
    putIrte(e, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(deliver(e, remapAddr(1)).address).toBe(0x1234_5600 * 2 ** 32 + 0xfee7_8000);
  });

  it('ignores IRTA.EIME when the eim property is off', () => {
    const b = irOn({}, 0xf, true);
    putIrte(b, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(deliver(b, remapAddr(1)).address).toBe(0xfee5_6000);
  });
});

describe('IOAPIC data checks', () => {
  it('traces (only) a vector or trigger mismatch between the RTE data and the IRTE, as QEMU', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    const names = () => log.events.map((e) => e.event);
    putIrte(b, 1, { vector: 0xed, tm: 0 });
    send(b, remapAddr(1), 0x80ec, SID_UNKNOWN);
    expect(b.msis.map((m) => m.data & 0xff)).toEqual([0xed]);
    expect(names()).toEqual(expect.arrayContaining(['vtd_warn_ir_vector', 'vtd_warn_ir_trigger']));
    log.events.length = 0;
    send(b, remapAddr(1), 0xed, SID_UNKNOWN);
    expect(names()).not.toContain('vtd_warn_ir_vector');
    expect(names()).not.toContain('vtd_warn_ir_trigger');
  });
});

describe('IR faults (spec 5.1.4, recorded as current QEMU)', () => {
  /** The one fault event of the test; no MSI was delivered. */
  function fault(b: VtdBench, rec: RecordedEvents): FaultEvent {
    expect(b.msis).toEqual([]);
    expect(rec.faults).toHaveLength(1);
    return rec.faults[0]!;
  }
  /** FPD values the remapper passed with its faults (trace vtd_ir_fault). */
  const fpdsOf = (log: ReturnType<typeof traceLog>) => log.events.filter((e) => e.event === 'vtd_ir_fault').map((e) => e.fields.fpd);

  it('0x21: index beyond 2^(S+1) entries (not qualified: FPD of no entry)', () => {
    const log = traceLog();
    const b = irOn({}, 0, false, log.tracer); // 2 entries
    const rec = b.recordEvents();
    putIrte(b, 2, { vector: 1, fpd: 1 });
    send(b, remapAddr(2), 0, EDU_SID);
    expect(fault(b, rec)).toEqual({ sid: EDU_SID, reason: VtdFault.IR_INDEX_OVER, addr: 0, isWrite: true, irIndex: 2, outcome: 'recorded', index: 0 });
    expect(fpdsOf(log)).toEqual([false]);
  });

  it('0x22: IRTE not present, with its FPD passed for suppression', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 3, { p: 0 });
    send(b, remapAddr(3), 0, EDU_SID);
    expect(fault(b, rec)).toMatchObject({ reason: VtdFault.IR_ENTRY_P, irIndex: 3, outcome: 'recorded' });
    const d = irOn();
    const drec = d.recordEvents();
    putIrte(d, 3, { p: 0, fpd: 1 });
    send(d, remapAddr(3), 0, EDU_SID);
    expect(fault(d, drec)).toMatchObject({ reason: VtdFault.IR_ENTRY_P, outcome: 'fpd' });
  });

  it('0x23: the table cannot be read', () => {
    const b = unit();
    const rec = b.recordEvents();
    setIrta(b, 0x7000_0000, 0xf);
    setIre(b, true);
    send(b, remapAddr(1), 0, EDU_SID);
    expect(fault(b, rec)).toMatchObject({ reason: VtdFault.IR_ROOT_INVAL, irIndex: 1, outcome: 'recorded' });
  });

  for (const [name, f] of [
    ['bits 14:12', { loExtra: 1 << 12 }],
    ['bits 31:24', { loExtra: 1 << 24 }],
    ['bits 127:84', { hiExtra: 1 }],
    ['IM=1 without posted interrupts', { im: 1 }],
  ] as [string, IrteFields][]) {
    it(`0x24: reserved ${name}`, () => {
      const b = irOn();
      const rec = b.recordEvents();
      putIrte(b, 4, { vector: 0x20, ...f });
      send(b, remapAddr(4), 0, EDU_SID);
      expect(fault(b, rec)).toMatchObject({ reason: VtdFault.IR_IRTE_RSVD, irIndex: 4, outcome: 'recorded' });
    });
  }

  it('0x26: source-ID mismatch (SVT 1), FPD passed along', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 5, { vector: 0x20, sid: 0x0010, svt: 1, fpd: 1 });
    send(b, remapAddr(5), 0, EDU_SID);
    expect(fault(b, rec)).toMatchObject({ sid: EDU_SID, reason: VtdFault.IR_SID_ERR, irIndex: 5, outcome: 'fpd' });
  });

  it('0x26: bus outside the SVT 2 range; inside passes', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 5, { vector: 0x20, sid: 0x0203, svt: 2 });
    send(b, remapAddr(5), 0, 0x0100);
    expect(fault(b, rec)).toMatchObject({ reason: VtdFault.IR_SID_ERR });
    send(b, remapAddr(5), 0, 0x0300);
    expect(b.msis).toHaveLength(1);
  });

  it('the IOAPIC path (unknown SID) skips source-ID verification', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 1, { vector: 0xed, sid: EDU_SID, svt: 1 });
    send(b, remapAddr(1), 0, SID_UNKNOWN);
    expect(rec.faults).toEqual([]);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0xed | 0x4000, origin: { kind: 'ioapic', remappedIndex: 1 } }]);
  });

  it('IOAPIC-path faults are recorded with SID 0xFFFF', () => {
    const b = irOn({}, 0);
    const rec = b.recordEvents();
    send(b, remapAddr(9), 0, SID_UNKNOWN);
    expect(fault(b, rec)).toMatchObject({ sid: FAULT_SID_UNKNOWN, reason: VtdFault.IR_INDEX_OVER, irIndex: 9 });
  });

  it('0x20: SHV with data bits 31:16 set, after the lookup, index 0', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    const rec = b.recordEvents();
    putIrte(b, 0x11, { vector: 0x20 });
    send(b, remapAddr(0x10, true), 0x1_0001, EDU_SID);
    expect(fault(b, rec)).toMatchObject({ reason: VtdFault.IR_REQ_RSVD, irIndex: 0 });
    expect(fpdsOf(log)).toEqual([false]);
  });

  it('0x20: an address outside 0xFEExxxxx', () => {
    const b = irOn();
    const rec = b.recordEvents();
    send(b, 0xfed0_0010, 0, EDU_SID);
    expect(rec.faults[0]).toMatchObject({ reason: VtdFault.IR_REQ_RSVD });
    send(b, 2 ** 32 + 0xfee0_0010, 0, EDU_SID);
    expect(rec.faults[1]).toMatchObject({ reason: VtdFault.IR_REQ_RSVD });
    expect(b.msis).toEqual([]);
  });
});

describe('interrupt entry cache', () => {
  /** The vector an IOAPIC message for `index` is delivered with. */
  function vectorOf(b: VtdBench, index: number): number {
    return deliver(b, remapAddr(index)).data & 0xff;
  }

  /** A unit with IR on and the queue enabled (the guest's only way to invalidate the IEC). */
  function irQueue(): VtdBench {
    const b = irOn();
    expect(b.enableQueue(QUEUE)).toBe(true);
    return b;
  }

  /** An IEC invalidation descriptor through the queue: global, or the 2^mask entries of the block holding `index`. */
  function iec(b: VtdBench, global: boolean, index = 0, mask = 0): void {
    const head = b.queueHead();
    b.putDesc(QUEUE, head, global ? 0x4n : 0x14n | (BigInt(mask) << 27n) | (BigInt(index) << 32n));
    b.setTail(head + 1);
    expect(b.queueHead()).toBe(head + 1);
  }

  it('keeps a cached IRTE until an IEC invalidation covers it', () => {
    const b = irQueue();
    putIrte(b, 0x21, { vector: 0x30 });
    expect(vectorOf(b, 0x21)).toBe(0x30);
    putIrte(b, 0x21, { vector: 0x31 });
    expect(vectorOf(b, 0x21)).toBe(0x30);
    iec(b, false, 0x24, 2); // 0x24-0x27: not 0x21
    expect(vectorOf(b, 0x21)).toBe(0x30);
    iec(b, false, 0x22, 2); // aligned block 0x20-0x23
    expect(vectorOf(b, 0x21)).toBe(0x31);
    putIrte(b, 0x21, { vector: 0x32 });
    iec(b, true);
    expect(vectorOf(b, 0x21)).toBe(0x32);
  });

  it('does not cache faulting entries', () => {
    const b = irOn();
    putIrte(b, 6, { p: 0 });
    send(b, remapAddr(6), 0, SID_UNKNOWN);
    expect(b.msis).toEqual([]);
    putIrte(b, 6, { vector: 0x44 });
    expect(vectorOf(b, 6)).toBe(0x44);
  });

  it('SIRTP and IRE changes flush it', () => {
    const b = irOn();
    putIrte(b, 1, { vector: 0x50 });
    expect(vectorOf(b, 1)).toBe(0x50);
    putIrte(b, 1, { vector: 0x51 });
    setIrta(b, IRT, 0xf);
    expect(vectorOf(b, 1)).toBe(0x51);
    putIrte(b, 1, { vector: 0x52 });
    setIre(b, false);
    setIre(b, true);
    expect(vectorOf(b, 1)).toBe(0x52);
  });

  it('the queue IEC descriptor reaches it', () => {
    const b = irQueue();
    putIrte(b, 3, { vector: 0x60 });
    expect(vectorOf(b, 3)).toBe(0x60);
    putIrte(b, 3, { vector: 0x61 });
    b.putDesc(QUEUE, 0, 0x14n | (3n << 32n));
    b.setTail(1);
    expect(vectorOf(b, 3)).toBe(0x61);
  });

  it('an index-selective IEC invalidation stops at its block: entries after it stay cached', () => {
    const b = irQueue();
    putIrte(b, 0x21, { vector: 0x30 });
    putIrte(b, 0x30, { vector: 0x40 });
    expect([vectorOf(b, 0x21), vectorOf(b, 0x30)]).toEqual([0x30, 0x40]);
    putIrte(b, 0x21, { vector: 0x31 });
    putIrte(b, 0x30, { vector: 0x41 });
    iec(b, false, 0x21, 0);
    expect([vectorOf(b, 0x21), vectorOf(b, 0x30)]).toEqual([0x31, 0x40]);
  });

  it('a hit returns the cached entry of its own index, and caching one entry leaves its neighbour intact', () => {
    const b = irOn();
    putIrte(b, 0, { vector: 0x30, dst: 0x0100 });
    putIrte(b, 1, { vector: 0x31, dst: 0x0200 });
    const round = () => [deliver(b, remapAddr(0)), deliver(b, remapAddr(1))].map((m) => [m.address, m.data & 0xff]);
    const expected = [[0xfee0_1000, 0x30], [0xfee0_2000, 0x31]];
    expect(round()).toEqual(expected);
    expect(round()).toEqual(expected);
  });

  it('caches entries at every index, the highest ones included', () => {
    const b = irOn();
    putIrte(b, 0xfffe, { vector: 0x52, dst: 0x0400 });
    expect(deliver(b, remapAddr(0xfffe))).toMatchObject({ address: 0xfee0_4000, data: 0x4052 });
    expect(deliver(b, remapAddr(0xfffe))).toMatchObject({ address: 0xfee0_4000, data: 0x4052 });
  });
});

describe('random input (property)', () => {
  const SEED = 0x1234_5678;

  it(`random IRTEs and messages never throw; every message is delivered, posted or dropped with a fault or FPD (seed 0x${SEED.toString(16)})`, () => {
    const next = u32Stream(SEED);
    const b = irOn({ 'x-pi': true }, 4);
    const rec = b.recordEvents();
    const remapper = b.iommu.remapper;
    for (let i = 0; i < 32; i++) {
      const bytes = new Uint8Array(16);
      const v = new DataView(bytes.buffer);
      for (let w = 0; w < 4; w++) v.setUint32(w * 4, next() % 4 === 0 ? next() : next() & [0x00ff_8fff, 0xffff_ffff, 0x000f_ffff, 0][w]!, true);
      b.memory.writeBytes(IRT + i * 16, bytes);
    }
    const seen = new Set<string>();
    for (let n = 0; n < 2000; n++) {
      const addr = (0xfee0_0000 | (next() & 0xf_ffff)) >>> 0;
      const before = rec.faults.length;
      const o = remapper.remap(addr, next(), next() % 5 === 0 ? SID_UNKNOWN : next() & 0xffff);
      expect(['delivered', 'posted', 'dropped']).toContain(o.status);
      if (o.status === 'dropped' && o.reason !== 0) expect(rec.faults.length).toBe(before + 1);
      if (o.status === 'delivered') expect(o.address >= 0xfee0_0000).toBe(true);
      seen.add(o.status);
    }
    // The generator must reach delivery and faults.
    expect(seen).toContain('delivered');
    expect(seen).toContain('dropped');
  });
});

describe('state before and after the table (mutation-found edges)', () => {
  it('the outcome object is a well-formed "dropped, no reason" before the first message', () => {
    expect(irOn().iommu.remapper.last).toEqual({ status: 'dropped', reason: 0, address: 0, data: 0 });
  });

  it('a device reset forgets the table and its cache: IRE without a new SIRTP remaps nothing (0x21)', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 1, { vector: 0x30 });
    expect(deliver(b, remapAddr(1)).data & 0xff).toBe(0x30);
    b.iommu.reset();
    setIre(b, true);
    send(b, remapAddr(1), 0, SID_UNKNOWN);
    expect(b.msis).toHaveLength(1);
    expect(rec.faults.map((f) => f.reason)).toEqual([VtdFault.IR_INDEX_OVER]);
  });

  it('with the eim property, IRTA.EIME clear still means xAPIC destinations (DST[15:8])', () => {
    const b = irOn({ eim: 'on' }, 0xf, false);
    putIrte(b, 1, { vector: 0x20, dst: 0x1234_5678 });
    expect(deliver(b, remapAddr(1)).address).toBe(0xfee5_6000);
  });

  it('index 0 is a remapped index like any other (the origin carries it)', () => {
    const b = irOn();
    putIrte(b, 0, { vector: 0x21 });
    expect(deliver(b, remapAddr(0)).origin).toEqual({ kind: 'ioapic', remappedIndex: 0 });
  });

  it('a negative address (no bus can carry one) is refused as outside 0xFEExxxxx (0x20)', () => {
    const b = irOn();
    const rec = b.recordEvents();
    putIrte(b, 1, { vector: 0x22 });
    const o = b.iommu.remapper.remap(remapAddr(1) - 2 ** 32, 0, EDU_SID);
    expect(o.status).toBe('dropped');
    expect(rec.faults.map((f) => f.reason)).toEqual([VtdFault.IR_REQ_RSVD]);
  });
});

describe('fault qualification passed along (FPD of no entry)', () => {
  const fpdsOf = (log: ReturnType<typeof traceLog>) => log.events.filter((e) => e.event === 'vtd_ir_fault').map((e) => e.fields.fpd);

  it('0x20 for a bad address and 0x23 for an unreadable table carry FPD clear, whatever the table says', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    putIrte(b, 1, { vector: 0x20, fpd: 1 });
    send(b, remapAddr(1), 0, EDU_SID); // caches nothing wrong: a good entry with FPD set
    send(b, 0xfed0_0010, 0, EDU_SID);
    setIrta(b, 0x7000_0000, 0xf);
    send(b, remapAddr(1), 0, EDU_SID);
    expect(fpdsOf(log)).toEqual([false, false]);
  });

  it('0x25 (compatibility format blocked, x-cfi) carries FPD clear', () => {
    const log = traceLog();
    const b = irOn({ 'x-cfi': true }, 0xf, false, log.tracer);
    const rec = b.recordEvents();
    putIrte(b, 1, { vector: 0x20, fpd: 1 });
    send(b, remapAddr(1), 0, EDU_SID);
    send(b, 0xfee0_1000, 0x41, EDU_SID);
    expect(rec.faults).toMatchObject([{ reason: VtdFault.IR_COMPAT_BLOCKED, outcome: 'recorded' }]);
    expect(fpdsOf(log)).toEqual([false]);
  });
});

describe('posted-format entries through the remapper (x-pi)', () => {
  const PID = 0x80_0000;

  it('a post that reaches the descriptor is "posted"; an unreadable descriptor drops the message without a fault', () => {
    const b = irOn({ 'x-pi': true });
    const rec = b.recordEvents();
    putIrte(b, 1, { im: 1, vector: 0x40, dst: PID });
    putIrte(b, 2, { im: 1, vector: 0x41, dst: 0x7000_0000 });
    expect(b.iommu.remapper.remap(remapAddr(1), 0, EDU_SID)).toMatchObject({ status: 'posted', reason: 0 });
    expect(b.iommu.remapper.remap(remapAddr(2), 0, EDU_SID)).toMatchObject({ status: 'dropped', reason: 0 });
    expect(rec.faults).toEqual([]);
  });

  it('a cached posted entry keeps its own descriptor address (dword 3), not its neighbour\'s', () => {
    const b = irOn({ 'x-pi': true });
    putIrte(b, 0, { vector: 0x30, dst: 0x0100 });
    putIrte(b, 1, { im: 1, vector: 0x40, dst: PID });
    deliver(b, remapAddr(0));
    expect(b.iommu.remapper.remap(remapAddr(1), 0, EDU_SID).status).toBe('posted');
    expect(b.iommu.remapper.remap(remapAddr(1), 0, EDU_SID).status).toBe('posted');
  });
});

describe('trace lines of the remapper', () => {
  /** The fields of every `event` line traced so far. */
  const fieldsOf = (log: ReturnType<typeof traceLog>, event: string) => log.events.filter((e) => e.event === event).map((e) => e.fields);

  it('vtd_reg_ir_root: the table address and size latched by SIRTP', () => {
    const log = traceLog();
    irOn({}, 3, false, log.tracer);
    expect(fieldsOf(log, 'vtd_reg_ir_root')).toEqual([{ addr: IRT, size: 16, eime: false }]);
  });

  it('vtd_ir_irte_get and vtd_ir_remap_msi: the entry read and the message in and out', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    putIrte(b, 7, { vector: 0x30, dst: 0x0300, sid: 0x1234 });
    deliver(b, remapAddr(7), 0x30);
    const e = fieldsOf(log, 'vtd_ir_irte_get');
    expect(e).toEqual([{ index: 7, lo: b.peek64(IRT + 7 * 16), hi: b.peek64(IRT + 7 * 16 + 8) }]);
    expect([e[0]!['lo'], e[0]!['hi']]).toEqual([(0x0300n << 32n) | (0x30n << 16n) | 1n, 0x1234n]);
    expect(fieldsOf(log, 'vtd_ir_remap_msi')).toEqual([{ addr: remapAddr(7), data: 0x30, outAddr: 0xfee0_3000, outData: 0x4030, index: 7 }]);
  });

  it('vtd_warn_ir_vector / vtd_warn_ir_trigger name the index and both values', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    putIrte(b, 1, { vector: 0xed, tm: 0 });
    send(b, remapAddr(1), 0x80ec, SID_UNKNOWN);
    expect(fieldsOf(log, 'vtd_warn_ir_vector')).toEqual([{ index: 1, vector: 0xec, irteVector: 0xed }]);
    expect(fieldsOf(log, 'vtd_warn_ir_trigger')).toEqual([{ index: 1, level: true, irteLevel: false }]);
  });

  it('with SHV the data is a sub-handle, not an IOAPIC vector: no mismatch warnings (QEMU)', () => {
    const log = traceLog();
    const b = irOn({}, 0xf, false, log.tracer);
    putIrte(b, 0x13, { vector: 0x61 });
    deliver(b, remapAddr(0x10, true), 3);
    expect(log.events.map((e) => e.event).filter((e) => e.startsWith('vtd_warn'))).toEqual([]);
  });

  it('nothing is traced when the tracer does not ask', () => {
    const calls: string[] = [];
    const b = irOn({}, 0xf, false, { enabled: () => false, trace: (e) => void calls.push(e) });
    putIrte(b, 1, { vector: 0xed });
    send(b, remapAddr(1), 0x80ec, SID_UNKNOWN);
    send(b, remapAddr(0x9000), 0, EDU_SID);
    expect(b.msis).toHaveLength(1);
    expect(calls).toEqual([]);
  });
});

describe('the interrupt entry cache counts what it holds', () => {
  /** Vector of the remapped message for handle `i` (the low byte of its data). */
  const vector = (b: VtdBench, i: number) => deliver(b, remapAddr(i)).data & 0xff;

  it('a selective invalidation leaves other cached entries; global and block invalidations reach every cached one', () => {
    const b = irOn();
    putIrte(b, 1, { vector: 0x31 });
    putIrte(b, 5, { vector: 0x35 });
    expect([vector(b, 1), vector(b, 5)]).toEqual([0x31, 0x35]);
    putIrte(b, 1, { vector: 0x41 });
    putIrte(b, 5, { vector: 0x45 });
    b.iommu.invalidateIec(false, 5, 0);
    expect([vector(b, 1), vector(b, 5)]).toEqual([0x31, 0x45]); // 1 still cached
    b.iommu.invalidateIec(false, 5, 0); // nothing left at 5: 1 stays
    expect(vector(b, 1)).toBe(0x31);
    b.iommu.invalidateIec(true, 0, 0);
    expect(vector(b, 1)).toBe(0x41);
    putIrte(b, 1, { vector: 0x51 });
    putIrte(b, 5, { vector: 0x55 });
    b.iommu.invalidateIec(true, 0, 0);
    b.iommu.invalidateIec(true, 0, 0); // an empty cache: nothing to do, nothing lost
    expect([vector(b, 1), vector(b, 5)]).toEqual([0x51, 0x55]);
    putIrte(b, 1, { vector: 0x61 });
    putIrte(b, 5, { vector: 0x65 });
    b.iommu.invalidateIec(false, 3, 3); // the block 0-7 holds both
    expect([vector(b, 1), vector(b, 5)]).toEqual([0x61, 0x65]);
  });
});
