/**
 * Invalidation queue error reporting: FSTS.IQE with the fault event (QEMU),
 * and beyond QEMU behind properties the IQER record (0xB0: IQEI 3:0, ITESID
 * 47:32, ICESID 63:48, spec 11.4.9.9) and device-TLB invalidation time-out /
 * completion errors (FSTS.ITE / ICE, spec 6.5.2.10).  First QueueErrors on
 * its own over a real unit, then every error path through the real queue.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';
import type { PropValues, Tracer } from '../../machine/device-type.js';
import { DescError } from './descriptors.js';
import { Iqei, Iqer, iqeiFor, NO_SID, QueueErrors, queueOptionsFrom, type QueueOptions } from './queue-errors.js';
import { EventCtl, Fsts, Gcmd, Ics, Iqa, Reg } from './reg-layout.js';
import { resolveIommuConfig } from './props.js';

const FEADDR = 0xfee0_1000;
const FEDATA = 0x41;
const HOLE = 0x8000_0000;

/** A recording tracer for the invalidation error events. */
function recorder() {
  const events: [string, Record<string, unknown>][] = [];
  const tracer: Tracer = {
    enabled: (e) => e === 'vtd_inv_timeout' || e === 'vtd_inv_completion_error',
    trace: (e, f) => void events.push([e, { ...f }]),
  };
  return { events, tracer };
}

/** A unit with its fault event unmasked, and a QueueErrors on it. */
function direct(opts: Partial<QueueOptions> = {}, bench: VtdBenchOptions = {}) {
  const { events, tracer } = recorder();
  const b = new VtdBench({ tracer, ...bench });
  b.w32(Reg.FEADDR, FEADDR);
  b.w32(Reg.FEDATA, FEDATA);
  b.w32(Reg.FECTL, 0);
  const e = new QueueErrors(b.iommu, { iqer: false, devtlbTimeoutSid: NO_SID, devtlbErrorSid: NO_SID, ...opts });
  return { b, e, events };
}

const iqeiOf = (b: VtdBench) => b.r32(Reg.IQER) & 0xf;

describe('constants', () => {
  it('IQEI codes (spec 11.4.9.9), IQER layout and the no-SID sentinel', () => {
    expect(Iqei).toEqual({ NotAvailable: 0, InvalidTail: 1, FetchError: 2, InvalidType: 3, Reserved: 4, InvalidWidth: 5 });
    expect(Iqer).toEqual({ IQEI_MASK: 0xf, ITESID_SHIFT: 0, ICESID_SHIFT: 16, SID_MASK: 0xffff });
    expect(NO_SID).toBe(0x1_0000);
  });
});

describe('iqeiFor', () => {
  it('maps each refusal to its IQEI code', () => {
    expect(iqeiFor(DescError.UnknownType)).toBe(3);
    expect(iqeiFor(DescError.WideType)).toBe(5);
    expect(iqeiFor(DescError.Reserved)).toBe(4);
    expect(iqeiFor(DescError.Granularity)).toBe(4);
    expect(iqeiFor(DescError.AddressMask)).toBe(4);
    expect(iqeiFor(DescError.WaitNoAction)).toBe(4);
    expect(iqeiFor(DescError.NoPasid)).toBe(4);
  });
});

describe('queueOptionsFrom', () => {
  it('reads the defaults of a resolved configuration: nothing beyond QEMU', () => {
    expect(queueOptionsFrom(resolveIommuConfig({}).raw)).toEqual({ iqer: false, devtlbTimeoutSid: NO_SID, devtlbErrorSid: NO_SID });
  });

  it('takes numbers and bigints as SIDs, anything else as none', () => {
    expect(queueOptionsFrom({ 'x-iqer': true, 'x-devtlb-timeout-sid': 0x108, 'x-devtlb-error-sid': 0x20n })).toEqual({
      iqer: true,
      devtlbTimeoutSid: 0x108,
      devtlbErrorSid: 0x20,
    });
    expect(queueOptionsFrom({ 'x-devtlb-timeout-sid': 0, 'x-devtlb-error-sid': 0xffff })).toEqual({
      iqer: false,
      devtlbTimeoutSid: 0,
      devtlbErrorSid: 0xffff,
    });
    expect(queueOptionsFrom({ 'x-iqer': 'on', 'x-devtlb-timeout-sid': '5', 'x-devtlb-error-sid': true })).toEqual({
      iqer: false,
      devtlbTimeoutSid: NO_SID,
      devtlbErrorSid: NO_SID,
    });
    expect(queueOptionsFrom({ 'x-iqer': 1 }).iqer).toBe(false);
    expect(queueOptionsFrom({})).toEqual({ iqer: false, devtlbTimeoutSid: NO_SID, devtlbErrorSid: NO_SID });
  });

  it('reads the properties as the unit resolves them', () => {
    const raw = resolveIommuConfig({ 'x-iqer': true, 'x-devtlb-timeout-sid': 0x308, 'x-devtlb-error-sid': 0x10 }).raw;
    expect(queueOptionsFrom(raw)).toEqual({ iqer: true, devtlbTimeoutSid: 0x308, devtlbErrorSid: 0x10 });
  });
});

describe('QueueErrors: register definitions', () => {
  it('with x-iqer, IQER is defined read-only zero (reset at once)', () => {
    const b = new VtdBench();
    b.iommu.regs.set32(Reg.IQER, 0x5);
    b.iommu.regs.set32(Reg.IQER + 4, 0x1234_5678);
    new QueueErrors(b.iommu, { iqer: true, devtlbTimeoutSid: NO_SID, devtlbErrorSid: NO_SID });
    expect(b.r64(Reg.IQER)).toBe(0n);
    b.w64(Reg.IQER, 0xffff_ffff_ffff_ffffn);
    expect(b.r64(Reg.IQER)).toBe(0n);
  });

  it('without x-iqer, IQER is left alone', () => {
    const b = new VtdBench();
    b.iommu.regs.set32(Reg.IQER, 0x5);
    new QueueErrors(b.iommu, { iqer: false, devtlbTimeoutSid: NO_SID, devtlbErrorSid: NO_SID });
    expect(b.r32(Reg.IQER)).toBe(5);
  });

  it('FSTS.ITE and ICE are write-1-to-clear, with or without a configured SID', () => {
    for (const [timeout, error] of [
      [NO_SID, NO_SID],
      [0x108, NO_SID],
      [NO_SID, 0x108],
      [0, 0],
    ] as const) {
      const b = new VtdBench();
      new QueueErrors(b.iommu, { iqer: false, devtlbTimeoutSid: timeout, devtlbErrorSid: error });
      expect(b.iommu.regs.w1cMask(Reg.FSTS), `${timeout} ${error}`).toBe(0x71);
      expect(b.iommu.regs.writableMask(Reg.FSTS)).toBe(0);
      b.iommu.raiseFaultStatus(Fsts.ITE | Fsts.ICE);
      b.w32(Reg.FSTS, Fsts.ITE | Fsts.ICE);
      expect(b.r32(Reg.FSTS) & (Fsts.ITE | Fsts.ICE)).toBe(0);
    }
  });
});

describe('QueueErrors.queueError', () => {
  it('sets FSTS.IQE and raises the fault event (MSI to FEADDR / FEDATA)', () => {
    const { b, e } = direct();
    e.queueError(Iqei.Reserved);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.msis).toEqual([{ address: FEADDR, data: FEDATA, origin: { kind: 'iommu' } }]);
    expect(b.r32(Reg.FECTL)).toBe(0);
    // Without x-iqer nothing is recorded.
    expect(b.r64(Reg.IQER)).toBe(0n);
  });

  it('with the event masked: FECTL.IP, no MSI', () => {
    const { b, e } = direct();
    b.w32(Reg.FECTL, EventCtl.IM);
    e.queueError(Iqei.InvalidTail);
    expect(b.msis).toEqual([]);
    expect(b.r32(Reg.FECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
  });

  it('no second fault event while IQE is pending', () => {
    const { b, e } = direct();
    e.queueError(Iqei.Reserved);
    e.queueError(Iqei.InvalidType);
    expect(b.msis).toHaveLength(1);
  });

  it('with x-iqer, records the IQEI code, replacing the previous one', () => {
    const { b, e } = direct({ iqer: true });
    for (const code of [Iqei.InvalidTail, Iqei.FetchError, Iqei.InvalidType, Iqei.Reserved, Iqei.InvalidWidth]) {
      e.queueError(code);
      expect(iqeiOf(b)).toBe(code);
      expect(b.r32(Reg.IQER + 4)).toBe(0);
    }
    e.queueError(Iqei.Reserved);
    e.queueError(Iqei.InvalidType);
    expect(b.r32(Reg.IQER)).toBe(Iqei.InvalidType);
    e.queueError(Iqei.NotAvailable);
    expect(b.r32(Reg.IQER)).toBe(0);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
  });
});

describe('QueueErrors.deviceIotlbDone', () => {
  it('the time-out SID: FSTS.ITE, ITESID (IQER 47:32), trace, fault event', () => {
    const { b, e, events } = direct({ iqer: true, devtlbTimeoutSid: 0x1208 });
    expect(e.timedOut()).toBe(false);
    e.deviceIotlbDone(0x1208);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(e.timedOut()).toBe(true);
    expect(b.r64(Reg.IQER)).toBe(0x1208n << 32n);
    expect(events).toEqual([['vtd_inv_timeout', { sid: 0x1208 }]]);
    expect(b.msis).toHaveLength(1);
  });

  it('the error SID: FSTS.ICE, ICESID (IQER 63:48), trace, fault event; not a time-out', () => {
    const { b, e, events } = direct({ iqer: true, devtlbErrorSid: 0xfa07 });
    e.deviceIotlbDone(0xfa07);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ICE);
    expect(e.timedOut()).toBe(false);
    expect(b.r64(Reg.IQER)).toBe(0xfa07n << 48n);
    expect(events).toEqual([['vtd_inv_completion_error', { sid: 0xfa07 }]]);
    expect(b.msis).toHaveLength(1);
  });

  it('the function\'s own answer: done (or none given) nothing, timeout ITE, error ICE', () => {
    const { b, e, events } = direct({ iqer: true });
    e.deviceIotlbDone(0x21, 'done');
    e.deviceIotlbDone(0x22);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(events).toEqual([]);
    e.deviceIotlbDone(0x23, 'error');
    e.deviceIotlbDone(0x24, 'timeout');
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ICE | Fsts.ITE);
    expect(b.r64(Reg.IQER)).toBe((0x23n << 48n) | (0x24n << 32n));
    expect(events).toEqual([
      ['vtd_inv_completion_error', { sid: 0x23 }],
      ['vtd_inv_timeout', { sid: 0x24 }],
    ]);
  });

  it('other SIDs: nothing', () => {
    const { b, e, events } = direct({ iqer: true, devtlbTimeoutSid: 0x108, devtlbErrorSid: 0x110 });
    for (const sid of [0, 0x107, 0x109, 0x10f, 0x111, 0x1108, NO_SID]) e.deviceIotlbDone(sid);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r64(Reg.IQER)).toBe(0n);
    expect(events).toEqual([]);
    expect(b.msis).toEqual([]);
  });

  it('unconfigured (NO_SID) never matches a real SID', () => {
    const { b, e } = direct({ iqer: true });
    for (let sid = 0; sid < 0x1_0000; sid += 0x101) e.deviceIotlbDone(sid);
    e.deviceIotlbDone(0xffff);
    expect(b.r32(Reg.FSTS)).toBe(0);
  });

  it('one SID configured for both: the time-out wins', () => {
    const { b, e } = direct({ iqer: true, devtlbTimeoutSid: 0x42, devtlbErrorSid: 0x42 });
    e.deviceIotlbDone(0x42);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(b.r64(Reg.IQER)).toBe(0x42n << 32n);
  });

  it('both errors keep their own SID field', () => {
    const { b, e } = direct({ iqer: true, devtlbTimeoutSid: 0xffff, devtlbErrorSid: 0x8001 });
    e.deviceIotlbDone(0xffff);
    e.deviceIotlbDone(0x8001);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE | Fsts.ICE);
    expect(b.r32(Reg.IQER + 4) >>> 0).toBe(0x8001_ffff);
    expect(b.r32(Reg.IQER)).toBe(0);
    // ITE then ICE: the second raise still signals (ITE / ICE do not block the fault event).
    expect(b.msis).toHaveLength(2);
  });

  it('while its bit is set a repeat does nothing: no record update, no trace, no event', () => {
    const { b, e, events } = direct({ iqer: true, devtlbTimeoutSid: 0x108, devtlbErrorSid: 0x110 });
    e.deviceIotlbDone(0x108);
    e.deviceIotlbDone(0x110);
    b.iommu.regs.set32(Reg.IQER + 4, 0); // forget the SIDs: a repeat would write them again
    e.deviceIotlbDone(0x108);
    e.deviceIotlbDone(0x110);
    expect(b.r32(Reg.IQER + 4)).toBe(0);
    expect(events.map(([n]) => n)).toEqual(['vtd_inv_timeout', 'vtd_inv_completion_error']);
    expect(b.msis).toHaveLength(2);
  });

  it('without x-iqer: the status bits only', () => {
    const { b, e } = direct({ devtlbTimeoutSid: 0x108, devtlbErrorSid: 0x110 });
    e.deviceIotlbDone(0x108);
    e.deviceIotlbDone(0x110);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE | Fsts.ICE);
    expect(b.r64(Reg.IQER)).toBe(0n);
  });

  it('a configured SID above 16 bits is recorded in 16 bits and does not spill', () => {
    const { b, e } = direct({ iqer: true, devtlbTimeoutSid: 0x2_0108, devtlbErrorSid: 0x3_0110 });
    e.deviceIotlbDone(0x2_0108);
    e.deviceIotlbDone(0x3_0110);
    expect(b.r64(Reg.IQER)).toBe((0x0110n << 48n) | (0x0108n << 32n));
  });

  it('no trace call when the tracer does not ask for it', () => {
    const calls: string[] = [];
    const tracer: Tracer = { enabled: () => false, trace: (e) => void calls.push(e) };
    const b = new VtdBench({ tracer });
    const e = new QueueErrors(b.iommu, { iqer: false, devtlbTimeoutSid: 1, devtlbErrorSid: 2 });
    e.deviceIotlbDone(1);
    e.deviceIotlbDone(2);
    expect(calls).toEqual([]);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE | Fsts.ICE);
  });
});

describe('QueueErrors.onFstsWrite', () => {
  function full() {
    const d = direct({ iqer: true, devtlbTimeoutSid: 0x108, devtlbErrorSid: 0x110 });
    d.e.queueError(Iqei.InvalidWidth);
    d.e.deviceIotlbDone(0x108);
    d.e.deviceIotlbDone(0x110);
    expect(d.b.r64(Reg.IQER)).toBe((0x110n << 48n) | (0x108n << 32n) | 5n);
    return d;
  }

  it('keeps every field while its status bit is set', () => {
    const { b, e } = full();
    b.w32(Reg.FSTS, 0);
    e.onFstsWrite();
    expect(b.r64(Reg.IQER)).toBe((0x110n << 48n) | (0x108n << 32n) | 5n);
  });

  it('clearing IQE clears IQEI only', () => {
    const { b, e } = full();
    b.w32(Reg.FSTS, Fsts.IQE);
    e.onFstsWrite();
    expect(b.r64(Reg.IQER)).toBe((0x110n << 48n) | (0x108n << 32n));
  });

  it('clearing ITE clears ITESID only; clearing ICE clears ICESID only', () => {
    const a = full();
    a.b.w32(Reg.FSTS, Fsts.ITE);
    a.e.onFstsWrite();
    expect(a.b.r64(Reg.IQER)).toBe((0x110n << 48n) | 5n);
    expect(a.e.timedOut()).toBe(false);
    const c = full();
    c.b.w32(Reg.FSTS, Fsts.ICE);
    c.e.onFstsWrite();
    expect(c.b.r64(Reg.IQER)).toBe((0x108n << 32n) | 5n);
    c.b.w32(Reg.FSTS, Fsts.ITE | Fsts.IQE);
    c.e.onFstsWrite();
    expect(c.b.r64(Reg.IQER)).toBe(0n);
  });

  it('without x-iqer it touches nothing', () => {
    const { b, e } = direct({ devtlbTimeoutSid: 0x108 });
    b.iommu.regs.set32(Reg.IQER, 0x3);
    b.iommu.regs.set32(Reg.IQER + 4, 0x0110_0108);
    e.onFstsWrite();
    expect(b.r64(Reg.IQER)).toBe(0x0110_0108_0000_0003n);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the real queue (the one a real unit owns).

const Q = 0x40_0000;
const desc = {
  wait: (flags: { sw?: boolean; iF?: boolean; fn?: boolean }, data = 0, addr = 0): [bigint, bigint] => [
    5n | (flags.iF ? 1n << 4n : 0n) | (flags.sw ? 1n << 5n : 0n) | (flags.fn ? 1n << 6n : 0n) | (BigInt(data) << 32n),
    BigInt(addr),
  ],
  devtlb: (sid: number): [bigint, bigint] => [3n | (BigInt(sid) << 32n), 0n],
  ccGlobal: (): [bigint, bigint] => [1n | (1n << 4n), 0n],
};

function queue(props: PropValues = {}) {
  const { events, tracer } = recorder();
  const b = new VtdBench({ props, tracer });
  b.w32(Reg.FEADDR, FEADDR);
  b.w32(Reg.FEDATA, FEDATA);
  b.w32(Reg.FECTL, 0);
  b.w64(Reg.IQA, BigInt(Q)); // QS 0: 256 descriptors
  b.gcmd(Gcmd.QIE);
  let tail = 0;
  const submit = (...ds: [bigint, bigint][]) => {
    for (const [lo, hi] of ds) {
      b.poke64(Q + tail * 16, lo);
      b.poke64(Q + tail * 16 + 8, hi);
      tail = (tail + 1) % 256;
    }
    b.w64(Reg.IQT, BigInt(tail << 4));
  };
  const head = () => Number(b.r64(Reg.IQH) >> 4n);
  return { b, submit, head, events };
}

describe('through the queue: IQE paths', () => {
  const BAD: [string, [bigint, bigint], number][] = [
    ['unknown type 0', [0n, 0n], Iqei.InvalidType],
    ['unknown type 15', [0xfn, 0n], Iqei.InvalidType],
    ['256-bit type 6 in a 128-bit queue', [6n, 0n], Iqei.InvalidWidth],
    ['256-bit type 9', [0x9n, 0n], Iqei.InvalidWidth],
    ['unknown type 16 (type bits 11:9)', [0x200n, 0n], Iqei.InvalidType],
    ['reserved bit in a context-cache descriptor', [1n | (1n << 4n) | (1n << 6n), 0n], Iqei.Reserved],
    ['context-cache granularity 0', [1n, 0n], Iqei.Reserved],
    ['IOTLB page-selective AM 19 > MAMV', [2n | (3n << 4n), 19n], Iqei.Reserved],
    ['wait without SW, IF or FN', [5n, 0n], Iqei.Reserved],
  ];
  for (const [what, d, code] of BAD) {
    it(`${what}: IQE, IQEI ${code}, IQH stays on it, fault event`, () => {
      const { b, submit, head } = queue({ 'x-iqer': true });
      submit(desc.ccGlobal(), d, desc.ccGlobal());
      expect(head()).toBe(1);
      expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
      expect(iqeiOf(b)).toBe(code);
      expect(b.msis).toEqual([{ address: FEADDR, data: FEDATA, origin: { kind: 'iommu' } }]);
    });
  }

  it('a tail beyond the queue: IQE, IQEI 1, nothing processed', () => {
    const { b, head } = queue({ 'x-iqer': true });
    b.poke64(Q, desc.wait({ iF: true })[0]);
    b.w64(Reg.IQT, 256n << 4n);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(iqeiOf(b)).toBe(Iqei.InvalidTail);
    expect(head()).toBe(0);
    expect(b.r32(Reg.ICS)).toBe(0);
  });

  it('an unreadable descriptor: IQE, IQEI 2', () => {
    const { events, tracer } = recorder();
    void events;
    const b = new VtdBench({ props: { 'x-iqer': true }, tracer });
    b.w64(Reg.IQA, BigInt(HOLE));
    b.gcmd(Gcmd.QIE);
    b.w64(Reg.IQT, 1n << 4n);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(iqeiOf(b)).toBe(Iqei.FetchError);
    expect(b.r64(Reg.IQH)).toBe(0n);
  });

  it('a wait whose status write fails: IQE, IQEI 0 (replacing an older code)', () => {
    const { b, submit, head } = queue({ 'x-iqer': true });
    b.iommu.regs.set32(Reg.IQER, Iqei.InvalidWidth);
    submit(desc.wait({ sw: true }, 0x1234, HOLE));
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.r32(Reg.IQER)).toBe(Iqei.NotAvailable);
    expect(head()).toBe(0);
  });

  it('without x-iqer: IQE and the fault event, IQER stays 0 (QEMU)', () => {
    const { b, submit } = queue();
    submit([0xfn, 0n]);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.r64(Reg.IQER)).toBe(0n);
    expect(b.msis).toHaveLength(1);
  });

  it('clearing IQE through FSTS clears IQEI; the next tail write resumes', () => {
    const { b, submit, head } = queue({ 'x-iqer': true });
    submit([0xfn, 0n]);
    expect(iqeiOf(b)).toBe(Iqei.InvalidType);
    b.poke64(Q, desc.wait({ iF: true })[0]);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r64(Reg.IQER)).toBe(0n);
    b.w64(Reg.IQT, 1n << 4n);
    expect(head()).toBe(1);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
  });
});

describe('through the queue: device-TLB errors', () => {
  it('time-out: ITE and ITESID, waits aborted while ITE is set; clearing ITE clears ITESID', () => {
    const { b, submit, head, events } = queue({ 'x-iqer': true, 'x-devtlb-timeout-sid': 0x108 });
    submit(desc.devtlb(0x100), desc.devtlb(0x108), desc.wait({ iF: true }));
    expect(head()).toBe(3);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(b.r64(Reg.IQER)).toBe(0x108n << 32n);
    expect(events).toEqual([['vtd_inv_timeout', { sid: 0x108 }]]);
    expect(b.r32(Reg.ICS)).toBe(0); // the wait was aborted
    b.w32(Reg.FSTS, Fsts.ITE);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r64(Reg.IQER)).toBe(0n);
    submit(desc.wait({ iF: true }));
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
  });

  it('completion error: ICE and ICESID, processing goes on', () => {
    const { b, submit, head, events } = queue({ 'x-iqer': true, 'x-devtlb-error-sid': 0x20 });
    submit(desc.devtlb(0x20), desc.wait({ iF: true }));
    expect(head()).toBe(2);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ICE);
    expect(b.r64(Reg.IQER)).toBe(0x20n << 48n);
    expect(events).toEqual([['vtd_inv_completion_error', { sid: 0x20 }]]);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
    b.w32(Reg.FSTS, Fsts.ICE);
    expect(b.r64(Reg.IQER)).toBe(0n);
  });

  it('without the properties device-TLB invalidations simply complete', () => {
    const { b, submit, head } = queue({ 'x-iqer': true });
    submit(desc.devtlb(0x108), desc.devtlb(0x10000 - 1), desc.wait({ iF: true }));
    expect(head()).toBe(3);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
  });
});

describe('through a 256-bit queue (scalable mode, IQA.DW): IQE paths', () => {
  /** A scalable unit, fault event unmasked, a 256-bit queue enabled at Q (128 entries). */
  function wide(props: PropValues = {}) {
    const b = new VtdBench({ props: { 'scalable-mode': true, 'x-iqer': true, ...props } });
    b.w32(Reg.FEADDR, FEADDR);
    b.w32(Reg.FEDATA, FEDATA);
    b.w32(Reg.FECTL, 0);
    b.w64(Reg.IQA, BigInt(Q) | BigInt(Iqa.DW));
    b.gcmd(Gcmd.QIE);
    const put = (i: number, q: readonly bigint[]) => q.forEach((v, k) => b.poke64(Q + i * 32 + k * 8, v));
    return { b, put, head: () => b.r32(Reg.IQH) >>> 5 };
  }

  const BAD: [string, bigint[], number][] = [
    ['IOTLB with a non-zero upper half', [0x12n, 0n, 0n, 1n], Iqei.Reserved],
    ['PASID-IOTLB G=1', [0x16n, 0n], Iqei.Reserved],
    ['PASID-cache G=2', [0x27n, 0n], Iqei.Reserved],
    ['PASID device-TLB reserved qw0 bit 12', [0x1008n, 0n], Iqei.Reserved],
    ['page-group response without PP', [0x9n, 0n], Iqei.Reserved],
    ['unknown type 10', [0xan, 0n], Iqei.InvalidType],
  ];
  for (const [what, d, code] of BAD) {
    it(`${what}: IQE, IQEI ${code}, IQH stays on it, fault event`, () => {
      const { b, put, head } = wide();
      put(0, [0x11n, 0n, 0n, 0n]);
      put(1, [...d, 0n, 0n].slice(0, 4));
      b.w32(Reg.IQT, 2 << 5);
      expect(head()).toBe(1);
      expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
      expect(iqeiOf(b)).toBe(code);
      expect(b.msis).toEqual([{ address: FEADDR, data: FEDATA, origin: { kind: 'iommu' } }]);
    });
  }

  it('IQT bit 4 set: IQE, IQEI 1 (invalid tail), the fault event', () => {
    const { b, head } = wide();
    b.w32(Reg.IQT, 0x10);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(iqeiOf(b)).toBe(Iqei.InvalidTail);
    expect(head()).toBe(0);
    expect(b.msis).toHaveLength(1);
  });

  it('a tail beyond 2^(QS+7) entries: IQE, IQEI 1', () => {
    const { b } = wide();
    b.w32(Reg.IQT, 128 << 5);
    expect(iqeiOf(b)).toBe(Iqei.InvalidTail);
  });

  it('PASID device-TLB for the time-out SID: ITE and ITESID', () => {
    const { b, put, head } = wide({ 'x-devtlb-timeout-sid': 0x108 });
    put(0, [0x8n | (0x108n << 16n), 0n, 0n, 0n]);
    b.w32(Reg.IQT, 1 << 5);
    expect(head()).toBe(1);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(b.r64(Reg.IQER)).toBe(0x108n << 32n);
  });
});
