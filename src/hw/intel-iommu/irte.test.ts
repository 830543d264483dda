import { describe, expect, it } from 'vitest';
import {
  Svt, decodeIrte, irteDestination, irteHasReservedBits, newIrte, verifySourceId, type Irte,
} from './irte.js';

/** Builds IRTE dwords from fields (remapped format). */
function remapped(f: {
  p?: number; fpd?: number; dm?: number; rh?: number; tm?: number; dlm?: number; avail?: number; vector?: number;
  dst?: number; sid?: number; sq?: number; svt?: number;
}): [number, number, number, number] {
  const w0 = ((f.p ?? 1) | ((f.fpd ?? 0) << 1) | ((f.dm ?? 0) << 2) | ((f.rh ?? 0) << 3) | ((f.tm ?? 0) << 4) |
    ((f.dlm ?? 0) << 5) | ((f.avail ?? 0) << 8) | ((f.vector ?? 0) << 16)) >>> 0;
  const w2 = ((f.sid ?? 0) | ((f.sq ?? 0) << 16) | ((f.svt ?? 0) << 18)) >>> 0;
  return [w0, (f.dst ?? 0) >>> 0, w2, 0];
}

function dec(w: [number, number, number, number]): Irte {
  return decodeIrte(w[0], w[1], w[2], w[3], newIrte());
}

describe('decodeIrte (remapped format)', () => {
  it('decodes every field', () => {
    const e = dec(remapped({ p: 1, fpd: 1, dm: 1, rh: 1, tm: 1, dlm: 5, vector: 0xed, dst: 0x1234_5678, sid: 0x0108, sq: 2, svt: 1 }));
    expect(e).toMatchObject({
      present: true, fpd: true, destLogical: true, redirHint: true, levelTriggered: true, deliveryMode: 5,
      vector: 0xed, dst: 0x1234_5678, sid: 0x108, sq: 2, svt: 1, posted: false,
    });
  });
  it('decodes each single-bit field on its own', () => {
    expect(dec(remapped({ p: 0 })).present).toBe(false);
    expect(dec(remapped({ fpd: 1 })).fpd).toBe(true);
    expect(dec(remapped({ dm: 1 })).destLogical).toBe(true);
    expect(dec(remapped({ rh: 1 })).redirHint).toBe(true);
    expect(dec(remapped({ tm: 1 })).levelTriggered).toBe(true);
    for (let d = 0; d < 8; d++) expect(dec(remapped({ dlm: d })).deliveryMode).toBe(d);
  });
  it('reuses the output object', () => {
    const out = newIrte();
    const a = remapped({ vector: 1 });
    const b = remapped({ vector: 2 });
    expect(decodeIrte(a[0], a[1], a[2], a[3], out)).toBe(out);
    decodeIrte(b[0], b[1], b[2], b[3], out);
    expect(out.vector).toBe(2);
  });
});

describe('decodeIrte (posted format)', () => {
  it('decodes IM, URG, vector and the descriptor address', () => {
    const w0 = 1 | (1 << 14) | (1 << 15) | (0x31 << 16);
    const e = decodeIrte(w0, 0xabcd_ef40, 0x0008 | (1 << 18), 0x1, newIrte());
    expect(e).toMatchObject({ posted: true, urgent: true, vector: 0x31, pidAddr: 0x1_abcd_ef40, sid: 8, svt: 1 });
  });
  it('URG clear is not urgent, even when decoded over an urgent entry', () => {
    const out = newIrte();
    decodeIrte(1 | (1 << 14) | (1 << 15), 0x40, 0, 0, out);
    expect(decodeIrte(1 | (1 << 15), 0x40, 0, 0, out).urgent).toBe(false);
  });
});

describe('newIrte', () => {
  it('is a blank entry: not present, every flag clear, every number 0', () => {
    expect(newIrte()).toEqual({
      present: false, fpd: false, posted: false, vector: 0, destLogical: false, redirHint: false,
      levelTriggered: false, deliveryMode: 0, dst: 0, urgent: false, pidAddr: 0, sid: 0, sq: 0, svt: 0,
    });
  });
});

describe('irteHasReservedBits', () => {
  const base = remapped({ vector: 0x20, dst: 0x0100 });
  const flip = (dw: number, bit: number) => {
    const w = [...base] as [number, number, number, number];
    w[dw] = (w[dw]! | (1 << bit)) >>> 0;
    return irteHasReservedBits(w[0], w[1], w[2], w[3], false);
  };
  it('accepts a clean entry, AVAIL bits included', () => {
    expect(irteHasReservedBits(base[0], base[1], base[2], base[3], false)).toBe(false);
    for (const bit of [8, 9, 10, 11]) expect(flip(0, bit)).toBe(false);
  });
  it('refuses bits 14:12, 31:24, 127:84 in the remapped format', () => {
    for (const bit of [12, 13, 14, 24, 31]) expect(flip(0, bit)).toBe(true);
    for (const bit of [20, 31]) expect(flip(2, bit)).toBe(true);
    for (const bit of [0, 31]) expect(flip(3, bit)).toBe(true);
  });
  it('treats IM=1 as reserved without posted-interrupt support', () => {
    expect(flip(0, 15)).toBe(true);
  });
  it('validates the posted format when supported', () => {
    const w0 = 1 | (1 << 15) | (0x40 << 16);
    expect(irteHasReservedBits(w0, 0x1000_0040, 0, 0xffff_ffff, true)).toBe(false);
    expect(irteHasReservedBits(w0 | (1 << 4), 0x1000_0040, 0, 0, true)).toBe(true);
    expect(irteHasReservedBits(w0 | (1 << 12), 0x1000_0040, 0, 0, true)).toBe(true);
    expect(irteHasReservedBits(w0, 0x1000_0041, 0, 0, true)).toBe(true);
    expect(irteHasReservedBits(w0, 0x1000_0040, 1 << 25, 0, true)).toBe(true);
  });
});

describe('verifySourceId', () => {
  const withSid = (svt: number, sq: number, sid: number) => dec(remapped({ svt, sq, sid }));
  it('SVT 0 accepts everyone', () => {
    expect(verifySourceId(withSid(Svt.None, 0, 0x100), 0xffff)).toBe(true);
  });
  it('SVT 1 compares under the SQ masks', () => {
    const e0 = withSid(Svt.RequesterId, 0, 0x0108);
    expect(verifySourceId(e0, 0x0108)).toBe(true);
    expect(verifySourceId(e0, 0x0109)).toBe(false);
    // SQ 1 ignores bit 2, SQ 2 bits 2:1, SQ 3 bits 2:0.
    expect(verifySourceId(withSid(1, 1, 0x0108), 0x010c)).toBe(true);
    expect(verifySourceId(withSid(1, 1, 0x0108), 0x010a)).toBe(false);
    expect(verifySourceId(withSid(1, 2, 0x0108), 0x010e)).toBe(true);
    expect(verifySourceId(withSid(1, 2, 0x0108), 0x0109)).toBe(false);
    expect(verifySourceId(withSid(1, 3, 0x0108), 0x010f)).toBe(true);
    expect(verifySourceId(withSid(1, 3, 0x0108), 0x0110)).toBe(false);
  });
  it('SVT 2 checks the bus range SID[15:8]..SID[7:0]', () => {
    const e = withSid(Svt.BusRange, 0, 0x0204);
    expect(verifySourceId(e, 0x0100)).toBe(false);
    expect(verifySourceId(e, 0x0200)).toBe(true);
    expect(verifySourceId(e, 0x03ff)).toBe(true);
    expect(verifySourceId(e, 0x0400)).toBe(true);
    expect(verifySourceId(e, 0x0500)).toBe(false);
  });
  it('SVT 3 (reserved) fails verification', () => {
    expect(verifySourceId(withSid(Svt.Reserved, 0, 0), 0)).toBe(false);
  });
});

describe('irteDestination', () => {
  it('uses DST[15:8] in xAPIC mode and all 32 bits with EIME', () => {
    const e = dec(remapped({ dst: 0x1234_5678 }));
    expect(irteDestination(e, false)).toBe(0x56);
    expect(irteDestination(e, true)).toBe(0x1234_5678);
  });
});
