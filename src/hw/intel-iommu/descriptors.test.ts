import { describe, expect, it } from 'vitest';
import { DescError, DescType, decodeDescriptor, descriptorType, type DecodeResult, type InvDescriptor } from './descriptors.js';

const OPTS = { mamv: 18 };

/** Splits two 64-bit bigints into the four dwords decodeDescriptor takes. */
function dec(qw0: bigint, qw1 = 0n, opts = OPTS): DecodeResult {
  const d = (v: bigint, s: bigint) => Number((v >> s) & 0xffff_ffffn);
  return decodeDescriptor(d(qw0, 0n), d(qw0, 32n), d(qw1, 0n), d(qw1, 32n), opts);
}

function ok(r: DecodeResult): InvDescriptor {
  if (!r.ok) throw new Error(`refused: ${r.error}`);
  return r.desc;
}

function err(r: DecodeResult): string {
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.desc)}`);
  return r.error;
}

/** Every single bit of a 128-bit descriptor; returns the positions whose setting makes it fail. */
function failingBits(qw0: bigint, qw1: bigint): number[] {
  const out: number[] = [];
  // Bits 3:0 select the type: flipping them is a different descriptor, not a reserved bit.
  for (let bit = 4; bit < 128; bit++) {
    const b = 1n << BigInt(bit % 64);
    const r = bit < 64 ? dec(qw0 | b, qw1) : dec(qw0, qw1 | b);
    if (!r.ok) out.push(bit);
  }
  return out;
}

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i <= hi; i++) out.push(i);
  return out;
}

describe('descriptorType', () => {
  it('combines bits 3:0 and 11:9', () => {
    expect(descriptorType(0x5)).toBe(5);
    expect(descriptorType(0x200 | 0x1)).toBe(0x11);
    expect(descriptorType(0xe00 | 0xf)).toBe(0x7f);
  });
});

describe('context-cache descriptor (type 1)', () => {
  it('decodes the three granularities', () => {
    expect(ok(dec(0x11n))).toMatchObject({ type: DescType.ContextCache, granularity: 'global' });
    expect(ok(dec(0x21n | (0x1234n << 16n)))).toMatchObject({ granularity: 'domain', did: 0x1234 });
    expect(ok(dec(0x31n | (7n << 16n) | (0x00abn << 32n) | (3n << 48n)))).toEqual({
      type: 1, granularity: 'device', did: 7, sid: 0xab, fm: 3,
    });
  });
  it('refuses granularity 0', () => {
    expect(err(dec(0x01n))).toBe(DescError.Granularity);
  });
  it('reserved bits: 15:6, 63:50 and all of qw1', () => {
    expect(failingBits(0x11n, 0n)).toEqual([...range(6, 15), ...range(50, 63), ...range(64, 127)]);
  });
});

describe('IOTLB descriptor (type 2)', () => {
  it('decodes global, domain and page', () => {
    expect(ok(dec(0x12n))).toMatchObject({ type: DescType.Iotlb, granularity: 'global' });
    expect(ok(dec(0x22n | (5n << 16n)))).toMatchObject({ granularity: 'domain', did: 5 });
    const page = ok(dec(0x32n | 0xc0n | (9n << 16n), 0x12_3456_7000n | 0x40n | 3n));
    expect(page).toEqual({
      type: 2, granularity: 'page', did: 9, addr: 0x12_3456_7000, am: 3, ih: true, drainReads: true, drainWrites: true,
    });
  });
  it('keeps high page addresses exact', () => {
    const d = ok(dec(0x32n, 0xffff_ffff_ffff_f000n));
    expect(d).toMatchObject({ addr: 2 ** 64 - 4096 });
  });
  it('refuses granularity 0 and AM above MAMV (page only)', () => {
    expect(err(dec(0x02n))).toBe(DescError.Granularity);
    expect(err(dec(0x32n, 19n))).toBe(DescError.AddressMask);
    expect(ok(dec(0x32n, 18n))).toMatchObject({ am: 18 });
    expect(ok(dec(0x22n, 19n))).toMatchObject({ granularity: 'domain' });
    expect(err(dec(0x32n, 5n, { mamv: 4 }))).toBe(DescError.AddressMask);
  });
  it('reserved bits: 15:8, 63:32, qw1 11:7', () => {
    expect(failingBits(0x12n, 0n)).toEqual([...range(8, 15), ...range(32, 63), ...range(64 + 7, 64 + 11)]);
  });
});

describe('device-TLB descriptor (type 3)', () => {
  it('decodes SID, QDEP, address and S', () => {
    expect(ok(dec(0x3n | (0x1fn << 16n) | (0x0108n << 32n), 0xabc_d000n | 1n))).toEqual({
      type: 3, sid: 0x108, qdep: 0x1f, addr: 0xabc_d000, sizeBit: true,
    });
  });
  it('reserved bits (no DIT: PFSID reserved): 8:4, 15:12, 31:21, 63:48, qw1 11:1', () => {
    expect(failingBits(0x3n, 0n)).toEqual([
      ...range(4, 8), ...range(9, 11), ...range(12, 15), ...range(21, 31), ...range(48, 63), ...range(65, 75),
    ]);
  });
});

describe('interrupt entry cache descriptor (type 4)', () => {
  it('decodes global and index-selective', () => {
    expect(ok(dec(0x4n))).toEqual({ type: 4, global: true, index: 0, indexMask: 0 });
    expect(ok(dec(0x14n | (4n << 27n) | (0x20n << 32n)))).toEqual({ type: 4, global: false, index: 0x20, indexMask: 4 });
  });
  it('reserved bits: 8:5, 26:12, 63:48 and qw1', () => {
    expect(failingBits(0x4n, 0n)).toEqual([
      ...range(5, 8), ...range(9, 11), ...range(12, 26), ...range(48, 63), ...range(64, 127),
    ]);
  });
});

describe('wait descriptor (type 5)', () => {
  it('decodes a status write', () => {
    expect(ok(dec(0x25n | (2n << 32n), 0x1234_5678n))).toEqual({
      type: 5, statusWrite: true, interrupt: false, fence: false, statusData: 2, statusAddr: 0x1234_5678,
    });
  });
  it('decodes IF, FN alone and SW|IF together', () => {
    expect(ok(dec(0x15n))).toMatchObject({ interrupt: true, statusWrite: false });
    expect(ok(dec(0x45n))).toMatchObject({ fence: true, interrupt: false, statusWrite: false });
    expect(ok(dec(0x35n, 0x1000n))).toMatchObject({ interrupt: true, statusWrite: true });
  });
  it('refuses a wait that does nothing', () => {
    expect(err(dec(0x5n))).toBe(DescError.WaitNoAction);
  });
  it('keeps a 64-bit status address', () => {
    expect(ok(dec(0x25n, 0x1_0000_0004n))).toMatchObject({ statusAddr: 0x1_0000_0004 });
  });
  it('reserved bits: 31:7 (PD included) and status address 1:0', () => {
    expect(failingBits(0x25n, 0x1000n)).toEqual([...range(7, 31), 64, 65]);
  });
});

describe('other types', () => {
  it('refuses 256-bit-only types in a 128-bit queue', () => {
    for (const t of [6n, 7n, 8n, 9n]) expect(err(dec(t))).toBe(DescError.WideType);
  });
  it('refuses unknown types, including type 0 and high type bits', () => {
    for (const t of [0n, 0xan, 0xfn, 0x200n | 5n, 0xe00n | 1n]) expect(err(dec(t))).toBe(DescError.UnknownType);
  });
  it('reports the raw type with the error', () => {
    const r = dec(0xen);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.type).toBe(0xe);
  });
});
