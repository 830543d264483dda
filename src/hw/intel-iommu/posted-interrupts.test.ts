import { describe, expect, it } from 'vitest';
import { SID_UNKNOWN } from './hooks.js';
import { TestCore } from './queue-testing.js';
import { Cap, capValue } from './caps.js';
import { Pid, PostResult, PostedInterrupts } from './posted-interrupts.js';
import { VtdFault } from './fault-reasons.js';

const PID = 0x80_0000;
const IRT = 0x40_0000;

function writePid(c: TestCore, f: { on?: boolean; sn?: boolean; nv: number; ndst: number; pir?: number[] }): void {
  const b = new Uint8Array(Pid.SIZE);
  const v = new DataView(b.buffer);
  for (const vec of f.pir ?? []) b[vec >> 3]! |= 1 << (vec & 7);
  b[Pid.CONTROL] = (f.on ? Pid.ON : 0) | (f.sn ? Pid.SN : 0);
  b[Pid.NV] = f.nv;
  v.setUint32(Pid.NDST, f.ndst, true);
  c.poke(PID, b);
}

function readPid(c: TestCore): { pir: number[]; on: boolean; sn: boolean } {
  const b = new Uint8Array(Pid.SIZE);
  c.memory.readBytes(PID, b);
  const pir: number[] = [];
  for (let v = 0; v < 256; v++) if (b[v >> 3]! & (1 << (v & 7))) pir.push(v);
  return { pir, on: (b[Pid.CONTROL]! & Pid.ON) !== 0, sn: (b[Pid.CONTROL]! & Pid.SN) !== 0 };
}

function poster(c: TestCore): PostedInterrupts {
  return new PostedInterrupts(c.memory, c.msi, c.tracer);
}

describe('PostedInterrupts.post', () => {
  it('sets the PIR bit and ON, and notifies NDST with NV', () => {
    const c = new TestCore();
    writePid(c, { nv: 0xf2, ndst: 0x0300, pir: [0x20] });
    expect(poster(c).post(PID, 0x85, false, false, 8, 4)).toBe(PostResult.Notified);
    expect(readPid(c)).toEqual({ pir: [0x20, 0x85], on: true, sn: false });
    expect(c.msis).toEqual([{ address: 0xfee0_3000, data: 0xf2, origin: { kind: 'msi', source: 8, remappedIndex: 4 } }]);
  });

  it('does not notify again while ON is set', () => {
    const c = new TestCore();
    writePid(c, { on: true, nv: 0xf2, ndst: 0 });
    expect(poster(c).post(PID, 0x40, true, false, 8, 4)).toBe(PostResult.Suppressed);
    expect(readPid(c)).toEqual({ pir: [0x40], on: true, sn: false });
    expect(c.msis).toEqual([]);
  });

  it('SN suppresses the notification unless the IRTE is urgent', () => {
    const c = new TestCore();
    writePid(c, { sn: true, nv: 0xf2, ndst: 0 });
    expect(poster(c).post(PID, 0x41, false, false, 8, 4)).toBe(PostResult.Suppressed);
    expect(readPid(c).on).toBe(false);
    expect(poster(c).post(PID, 0x42, true, false, 8, 4)).toBe(PostResult.Notified);
    expect(readPid(c)).toEqual({ pir: [0x41, 0x42], on: true, sn: true });
    expect(c.msis).toHaveLength(1);
  });

  it('x2APIC NDST uses all 32 bits', () => {
    const c = new TestCore();
    writePid(c, { nv: 0xf0, ndst: 0x0001_0203 });
    poster(c).post(PID, 0x30, false, true, 8, 4);
    expect(c.msis[0]!.address).toBe(0x0001_0200 * 2 ** 32 + 0xfee0_3000);
  });

  it('an unreadable PID posts nothing', () => {
    const c = new TestCore();
    expect(poster(c).post(0x7000_0000, 0x30, false, false, 8, 4)).toBe(PostResult.AccessError);
    expect(c.msis).toEqual([]);
  });
});

describe('posted-format IRTEs through the remapper', () => {
  function putPostedIrte(c: TestCore, index: number, vector: number, urgent = false, extraLo = 0): void {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, (1 | (urgent ? 1 << 14 : 0) | (1 << 15) | (vector << 16) | extraLo) >>> 0, true);
    v.setUint32(4, PID, true);
    v.setUint32(8, 0x0008 | (1 << 18), true);
    v.setUint32(12, 0, true);
    c.poke(IRT + index * 16, b);
  }
  const addr = (h: number) => (0xfee0_0000 | (h << 5) | 0x10) >>> 0;

  it('x-pi sets CAP.PI (with intremap)', () => {
    const c = new TestCore({ 'x-pi': true });
    expect(capValue(c.config) & Cap.PI).toBe(Cap.PI);
    expect(capValue(new TestCore().config) & Cap.PI).toBe(0n);
  });

  it('posts instead of delivering, after source-ID verification', () => {
    const c = new TestCore({ 'x-pi': true });
    c.setIrta(IRT, 0xf);
    c.setIre(true);
    writePid(c, { nv: 0xf2, ndst: 0x0100 });
    putPostedIrte(c, 3, 0x66);
    c.hooks.interruptWrite?.(addr(3), 0, 0x0008);
    expect(readPid(c).pir).toEqual([0x66]);
    expect(c.msis).toEqual([{ address: 0xfee0_1000, data: 0xf2, origin: { kind: 'msi', source: 8, remappedIndex: 3 } }]);
    c.hooks.interruptWrite?.(addr(3), 0, 0x0010);
    expect(c.faults).toMatchObject([{ reason: VtdFault.IR_SID_ERR }]);
    c.hooks.interruptWrite?.(addr(3), 0, SID_UNKNOWN);
    expect(c.msis).toHaveLength(1); // ON still set: no second notification
  });

  it('reserved bits of the posted format fault 0x24', () => {
    const c = new TestCore({ 'x-pi': true });
    c.setIrta(IRT, 0xf);
    c.setIre(true);
    putPostedIrte(c, 3, 0x66, false, 1 << 3);
    c.hooks.interruptWrite?.(addr(3), 0, 0x0008);
    expect(c.faults).toMatchObject([{ reason: VtdFault.IR_IRTE_RSVD }]);
  });
});
