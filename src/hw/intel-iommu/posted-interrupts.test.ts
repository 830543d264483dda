/**
 * Posted interrupts (posted-interrupts.ts): the poster over a VtdBench's
 * guest RAM and MSI recorder, and posted-format IRTEs through the real
 * unit's interrupt remapping (x-pi).
 */
import { describe, expect, it } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { Cap } from './caps.js';
import { Pid, PostResult, PostedInterrupts } from './posted-interrupts.js';
import { VtdFault } from './fault-reasons.js';
import { Gcmd, Reg } from './reg-layout.js';
import type { PropValues, Tracer } from '../../machine/device-type.js';

const PID = 0x80_0000;
const IRT = 0x40_0000;

/** A unit with interrupt remapping available (IRE off). */
function unit(props: PropValues = {}): VtdBench {
  return new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', ...props } });
}

/** IRTA = IRT with 2^16 entries, SIRTP, then IRE, as a guest does. */
function enableIr(b: VtdBench): void {
  b.w64(Reg.IRTA, BigInt(IRT | 0xf));
  b.gcmd(Gcmd.SIRTP);
  b.gcmd(Gcmd.IRE);
}

function writePid(c: VtdBench, f: { on?: boolean; sn?: boolean; nv: number; ndst: number; pir?: number[] }): void {
  const b = new Uint8Array(Pid.SIZE);
  const v = new DataView(b.buffer);
  for (const vec of f.pir ?? []) b[vec >> 3]! |= 1 << (vec & 7);
  b[Pid.CONTROL] = (f.on ? Pid.ON : 0) | (f.sn ? Pid.SN : 0);
  b[Pid.NV] = f.nv;
  v.setUint32(Pid.NDST, f.ndst, true);
  c.memory.writeBytes(PID, b);
}

function readPid(c: VtdBench): { pir: number[]; on: boolean; sn: boolean } {
  const b = new Uint8Array(Pid.SIZE);
  c.memory.readBytes(PID, b);
  const pir: number[] = [];
  for (let v = 0; v < 256; v++) if (b[v >> 3]! & (1 << (v & 7))) pir.push(v);
  return { pir, on: (b[Pid.CONTROL]! & Pid.ON) !== 0, sn: (b[Pid.CONTROL]! & Pid.SN) !== 0 };
}

/** A poster over the bench's guest RAM, delivering to its MSI recorder. */
function poster(c: VtdBench): PostedInterrupts {
  return new PostedInterrupts(c.memory, c.iommu.msi, c.iommu.tracer);
}

describe('PostedInterrupts.post', () => {
  it('sets the PIR bit and ON, and notifies NDST with NV', () => {
    const c = unit();
    writePid(c, { nv: 0xf2, ndst: 0x0300, pir: [0x20] });
    expect(poster(c).post(PID, 0x85, false, false, 8, 4)).toBe(PostResult.Notified);
    expect(readPid(c)).toEqual({ pir: [0x20, 0x85], on: true, sn: false });
    expect(c.msis).toEqual([{ address: 0xfee0_3000, data: 0xf2, origin: { kind: 'msi', source: 8, remappedIndex: 4 } }]);
  });

  it('does not notify again while ON is set', () => {
    const c = unit();
    writePid(c, { on: true, nv: 0xf2, ndst: 0 });
    expect(poster(c).post(PID, 0x40, true, false, 8, 4)).toBe(PostResult.Suppressed);
    expect(readPid(c)).toEqual({ pir: [0x40], on: true, sn: false });
    expect(c.msis).toEqual([]);
  });

  it('SN suppresses the notification unless the IRTE is urgent', () => {
    const c = unit();
    writePid(c, { sn: true, nv: 0xf2, ndst: 0 });
    expect(poster(c).post(PID, 0x41, false, false, 8, 4)).toBe(PostResult.Suppressed);
    expect(readPid(c).on).toBe(false);
    expect(poster(c).post(PID, 0x42, true, false, 8, 4)).toBe(PostResult.Notified);
    expect(readPid(c)).toEqual({ pir: [0x41, 0x42], on: true, sn: true });
    expect(c.msis).toHaveLength(1);
  });

  it('x2APIC NDST uses all 32 bits', () => {
    const c = unit();
    writePid(c, { nv: 0xf0, ndst: 0x0001_0203 });
    poster(c).post(PID, 0x30, false, true, 8, 4);
    expect(c.msis[0]!.address).toBe(0x0001_0200 * 2 ** 32 + 0xfee0_3000);
  });

  it('an unreadable PID posts nothing', () => {
    const c = unit();
    expect(poster(c).post(0x7000_0000, 0x30, false, false, 8, 4)).toBe(PostResult.AccessError);
    expect(c.msis).toEqual([]);
  });
});

describe('PostedInterrupts traces (vtemu\'s own: QEMU 11.1 has no posted interrupts)', () => {
  /** A poster whose tracer asks for `names` and records what it is given. */
  function tracedPoster(c: VtdBench, names: readonly string[]) {
    const events: [string, Record<string, unknown>][] = [];
    const tracer: Tracer = { enabled: (e) => names.includes(e), trace: (e, f) => void events.push([e, { ...f }]) };
    return { p: new PostedInterrupts(c.memory, c.iommu.msi, tracer), events };
  }
  const ALL = ['vtd_pi_post', 'vtd_pi_access_error'];

  it('vtd_pi_post for a notified and a suppressed post, with their fields', () => {
    const c = unit();
    writePid(c, { nv: 0xf2, ndst: 0x0300 });
    const { p, events } = tracedPoster(c, ALL);
    expect(p.post(PID, 0x85, false, false, 8, 4)).toBe(PostResult.Notified);
    expect(p.post(PID, 0x86, false, false, 8, 4)).toBe(PostResult.Suppressed);
    expect(events).toEqual([
      ['vtd_pi_post', { addr: PID, vector: 0x85, notified: true, nv: 0xf2, dest: 3 }],
      ['vtd_pi_post', { addr: PID, vector: 0x86, notified: false }],
    ]);
  });

  it('vtd_pi_access_error with the PID address', () => {
    const c = unit();
    const { p, events } = tracedPoster(c, ALL);
    expect(p.post(0x7000_0000, 0x30, false, false, 8, 4)).toBe(PostResult.AccessError);
    expect(events).toEqual([['vtd_pi_access_error', { addr: 0x7000_0000 }]]);
  });

  it('each event only when the tracer asks for it; nothing when it asks for none', () => {
    const c = unit();
    writePid(c, { nv: 0xf2, ndst: 0 });
    const only = tracedPoster(c, ['vtd_pi_access_error']);
    only.p.post(PID, 0x40, false, false, 8, 4);
    only.p.post(PID, 0x41, false, false, 8, 4);
    only.p.post(0x7000_0000, 0x30, false, false, 8, 4);
    expect(only.events).toEqual([['vtd_pi_access_error', { addr: 0x7000_0000 }]]);
    const none = tracedPoster(c, []);
    writePid(c, { nv: 0xf2, ndst: 0 });
    none.p.post(PID, 0x40, false, false, 8, 4);
    none.p.post(PID, 0x41, false, false, 8, 4);
    none.p.post(0x7000_0000, 0x30, false, false, 8, 4);
    expect(none.events).toEqual([]);
    expect(c.msis).toHaveLength(2);
  });
});

describe('posted-format IRTEs through the remapper', () => {
  function putPostedIrte(c: VtdBench, index: number, vector: number, urgent = false, extraLo = 0): void {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, (1 | (urgent ? 1 << 14 : 0) | (1 << 15) | (vector << 16) | extraLo) >>> 0, true);
    v.setUint32(4, PID, true);
    v.setUint32(8, 0x0008 | (1 << 18), true);
    v.setUint32(12, 0, true);
    c.memory.writeBytes(IRT + index * 16, b);
  }
  const addr = (h: number) => (0xfee0_0000 | (h << 5) | 0x10) >>> 0;

  it('x-pi sets CAP.PI (with intremap)', () => {
    expect(unit({ 'x-pi': true }).r64(Reg.CAP) & Cap.PI).toBe(Cap.PI);
    expect(unit().r64(Reg.CAP) & Cap.PI).toBe(0n);
  });

  it('posts instead of delivering, after source-ID verification', () => {
    const c = unit({ 'x-pi': true });
    const rec = c.recordEvents();
    enableIr(c);
    writePid(c, { nv: 0xf2, ndst: 0x0100 });
    putPostedIrte(c, 3, 0x66);
    c.iommu.interruptWrite(addr(3), 0, 0x0008);
    expect(readPid(c).pir).toEqual([0x66]);
    expect(c.msis).toEqual([{ address: 0xfee0_1000, data: 0xf2, origin: { kind: 'msi', source: 8, remappedIndex: 3 } }]);
    expect(rec.faults).toEqual([]);
    c.iommu.interruptWrite(addr(3), 0, 0x0010);
    expect(rec.faults).toMatchObject([{ reason: VtdFault.IR_SID_ERR }]);
    c.iommu.interruptFromIoapic(addr(3), 0);
    expect(c.msis).toHaveLength(1); // ON still set: no second notification
  });

  it('reserved bits of the posted format fault 0x24', () => {
    const c = unit({ 'x-pi': true });
    const rec = c.recordEvents();
    enableIr(c);
    putPostedIrte(c, 3, 0x66, false, 1 << 3);
    c.iommu.interruptWrite(addr(3), 0, 0x0008);
    expect(rec.faults).toMatchObject([{ reason: VtdFault.IR_IRTE_RSVD }]);
    expect(c.msis).toEqual([]);
  });
});
