import { describe, expect, it } from 'vitest';
import {
  DescError,
  DescType,
  decodeDescriptor,
  descriptorType,
  type DecodeOptions,
  type DecodeResult,
  type InvDescriptor,
} from './descriptors.js';

const OPTS: DecodeOptions = { mamv: 18 };
/** A 256-bit queue (IQA.DW with ECAP.SMTS). */
const WIDE: DecodeOptions = { mamv: 18, wide: true };

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

/** A 256-bit descriptor: qwords 0-1 decoded, qwords 2-3 only tested for zero (as the queue does). */
function dec256(qw0: bigint, qw1 = 0n, qw2 = 0n, qw3 = 0n, opts = WIDE): DecodeResult {
  const d = (v: bigint, s: bigint) => Number((v >> s) & 0xffff_ffffn);
  return decodeDescriptor(d(qw0, 0n), d(qw0, 32n), d(qw1, 0n), d(qw1, 32n), opts, (qw2 | qw3) !== 0n);
}

/**
 * Every single bit of a 256-bit descriptor (type bits 3:0 excepted) set on
 * top of `qw0`/`qw1`; returns the positions (0-255) whose setting makes it
 * fail.  Bits 11:9 change the type and are reported too.
 */
function failingBits256(qw0: bigint, qw1: bigint, opts = WIDE): number[] {
  const out: number[] = [];
  for (let bit = 4; bit < 256; bit++) {
    const b = 1n << BigInt(bit % 64);
    const q = [qw0, qw1, 0n, 0n];
    q[bit >> 6] = q[bit >> 6]! | b;
    if (!dec256(q[0]!, q[1]!, q[2]!, q[3]!, opts).ok) out.push(bit);
  }
  return out;
}

/** The set bits of a 64-bit mask, offset by `base`. */
function bitsOf(mask: bigint, base = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(base + i);
  return out;
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

describe('256-bit queue, upper half not given', () => {
  it('is taken as zero: types 1-8 are accepted', () => {
    const d = (v: bigint, sh: bigint) => Number((v >> sh) & 0xffff_ffffn);
    const cc = 0x11n;
    expect(decodeDescriptor(d(cc, 0n), d(cc, 32n), 0, 0, WIDE)).toMatchObject({ ok: true });
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
  it('IH, DR and DW clear decode as false', () => {
    expect(ok(dec(0x32n | (9n << 16n), 0x12_3456_7000n | 3n))).toEqual({
      type: 2, granularity: 'page', did: 9, addr: 0x12_3456_7000, am: 3, ih: false, drainReads: false, drainWrites: false,
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

/** Type bits 11:9: setting one makes another (unknown) type. */
const TYPE_HI_BITS = [9, 10, 11];
/** Qwords 2 and 3 (bits 128-255). */
const UPPER_HALF = range(128, 255);

describe('256-bit queue: legacy types 1-5', () => {
  it('decode as in a 128-bit queue when the upper half is zero', () => {
    expect(ok(dec256(0x11n))).toMatchObject({ type: DescType.ContextCache, granularity: 'global' });
    expect(ok(dec256(0x32n | (9n << 16n), 0x5000n | 2n))).toMatchObject({ type: DescType.Iotlb, did: 9, addr: 0x5000, am: 2 });
    expect(ok(dec256(0x3n | (0x10n << 32n), 0x6000n))).toMatchObject({ type: DescType.DeviceIotlb, sid: 0x10 });
    expect(ok(dec256(0x4n))).toMatchObject({ type: DescType.Iec, global: true });
    expect(ok(dec256(0x25n | (7n << 32n), 0x1000n))).toMatchObject({ type: DescType.Wait, statusData: 7 });
  });
  it('refuse any set bit in the upper half (QEMU 11.1 checks qwords 2-3 against all-ones)', () => {
    for (const qw0 of [0x11n, 0x12n, 0x3n, 0x4n, 0x25n]) {
      expect(err(dec256(qw0, 0n, 1n, 0n))).toBe(DescError.Reserved);
      expect(err(dec256(qw0, 0n, 0n, 1n << 63n))).toBe(DescError.Reserved);
    }
  });
  it('keep their lower-half reserved bits (IOTLB: 15:8, 63:32, qw1 11:7; then the whole upper half)', () => {
    expect(failingBits256(0x12n, 0n)).toEqual([...range(8, 15), ...range(32, 63), ...range(64 + 7, 64 + 11), ...UPPER_HALF]);
  });
  it('the upper half is ignored in a 128-bit queue (it is the next descriptor there)', () => {
    expect(dec256(0x11n, 0n, 1n, 0n, OPTS).ok).toBe(true);
  });
});

describe('wait descriptor PD bit', () => {
  it('is reserved without ECAP.PDS and accepted with it, in both widths', () => {
    expect(err(dec(0xa5n, 0x1000n))).toBe(DescError.Reserved);
    expect(ok(dec(0xa5n, 0x1000n, { mamv: 18, pds: true }))).toMatchObject({ statusWrite: true });
    expect(ok(dec256(0xa5n, 0x1000n, 0n, 0n, { ...WIDE, pds: true }))).toMatchObject({ statusWrite: true });
    expect(failingBits(0x25n, 0x1000n)).toContain(7);
  });
  it('with PDS the rest of 31:8 stays reserved', () => {
    expect(err(dec(0x1a5n, 0x1000n, { mamv: 18, pds: true }))).toBe(DescError.Reserved);
  });
});

describe('PASID-based IOTLB descriptor (type 6)', () => {
  it('decodes G=2 (all of DID+PASID) and G=3 (page-selective with AM and IH)', () => {
    expect(ok(dec256(0x26n | (0x1234n << 16n) | (0xf_ffffn << 32n), 0xabc_d000n | 0x40n | 3n))).toEqual({
      type: 6, granularity: 'pasid', did: 0x1234, pasid: 0xf_ffff, addr: 0, am: 0, ih: false,
    });
    expect(ok(dec256(0x36n | (5n << 16n) | (7n << 32n), 0xffff_ffff_ffff_f000n | 0x40n | 3n))).toEqual({
      type: 6, granularity: 'page', did: 5, pasid: 7, addr: 2 ** 64 - 4096, am: 3, ih: true,
    });
  });
  it('a page-selective one with IH clear decodes ih false', () => {
    expect(ok(dec256(0x36n | (5n << 16n) | (7n << 32n), 0xabc_d000n | 3n))).toMatchObject({ granularity: 'page', am: 3, ih: false });
  });
  it('refuses G=0 and G=1', () => {
    expect(err(dec256(0x06n))).toBe(DescError.Granularity);
    expect(err(dec256(0x16n))).toBe(DescError.Granularity);
  });
  it('refuses a page-selective AM above MAMV; AM is ignored for G=2', () => {
    expect(ok(dec256(0x36n, 18n))).toMatchObject({ am: 18 });
    expect(err(dec256(0x36n, 19n))).toBe(DescError.AddressMask);
    expect(ok(dec256(0x26n, 63n))).toMatchObject({ am: 0 });
  });
  it('reserved bits (qw0 0xfff000000000f1c0, qw1 0xf80, upper half), G=2 and G=3', () => {
    const rsvd = [...bitsOf(0xfff0_0000_0000_f1c0n), ...bitsOf(0xf80n, 64), ...UPPER_HALF];
    expect(failingBits256(0x26n, 0n)).toEqual([...rsvd, ...TYPE_HI_BITS].sort((a, b) => a - b));
    // Page-selective: qw1 bit 5 makes AM 32.
    expect(failingBits256(0x36n, 0n)).toEqual([...rsvd, ...TYPE_HI_BITS, 64 + 5].sort((a, b) => a - b));
  });
  it('is a wide type in a 128-bit queue', () => {
    expect(err(dec(0x26n))).toBe(DescError.WideType);
  });
});

describe('PASID-cache descriptor (type 7)', () => {
  it('decodes domain, PASID and global', () => {
    expect(ok(dec256(0x07n | (3n << 16n) | (9n << 32n)))).toEqual({ type: 7, granularity: 'domain', did: 3, pasid: 9 });
    expect(ok(dec256(0x17n | (0xffffn << 16n) | (0xf_ffffn << 32n)))).toEqual({ type: 7, granularity: 'pasid', did: 0xffff, pasid: 0xf_ffff });
    expect(ok(dec256(0x37n))).toEqual({ type: 7, granularity: 'global', did: 0, pasid: 0 });
  });
  it('refuses G=2', () => {
    expect(err(dec256(0x27n))).toBe(DescError.Granularity);
  });
  it('reserved bits: qw0 0xfff000000000f1c0, all of qw1 and the upper half', () => {
    expect(failingBits256(0x37n, 0n)).toEqual([...bitsOf(0xfff0_0000_0000_f1c0n), ...TYPE_HI_BITS, ...range(64, 255)].sort((a, b) => a - b));
  });
});

describe('PASID-based device-TLB descriptor (type 8)', () => {
  it('decodes SID, PASID, G, S and the address', () => {
    expect(ok(dec256(0x8n | (0x108n << 16n) | (0x4_5678n << 32n), 0x1234_5000n | 0x800n | 1n))).toEqual({
      type: 8, sid: 0x108, pasid: 0x4_5678, global: true, addr: 0x1234_5000, sizeBit: true,
    });
    expect(ok(dec256(0x8n, 0x7000n))).toMatchObject({ global: false, sizeBit: false, addr: 0x7000 });
  });
  it('reserved bits: qw0 0xfff000000000f000, qw1 0x7fe, the upper half', () => {
    expect(failingBits256(0x8n, 0n)).toEqual([...bitsOf(0xfff0_0000_0000_f000n), ...TYPE_HI_BITS, ...bitsOf(0x7fen, 64), ...UPPER_HALF].sort((a, b) => a - b));
  });
});

describe('page-group response descriptor (type 9)', () => {
  it('decodes RID, PASID, response code and PRGI', () => {
    expect(ok(dec256(0x19n | (0xfn << 12n) | (0xabcdn << 16n) | (0x1_2345n << 32n), 0x1ffn << 3n))).toEqual({
      type: 9, rid: 0xabcd, pasid: 0x1_2345, code: 0xf, prgi: 0x1ff,
    });
  });
  it('refuses PP = 0 (QEMU 11.1)', () => {
    expect(err(dec256(0x9n))).toBe(DescError.NoPasid);
  });
  it('reserved bits: qw0 0xfff00000000001e0, qw1 0xfffffffffffff003; the upper half is ignored', () => {
    expect(failingBits256(0x19n, 0n)).toEqual([...bitsOf(0xfff0_0000_0000_01e0n), ...TYPE_HI_BITS, ...bitsOf(0xffff_ffff_ffff_f003n, 64)].sort((a, b) => a - b));
    expect(ok(dec256(0x19n, 0n, 2n ** 64n - 1n, 2n ** 64n - 1n))).toMatchObject({ type: 9 });
  });
  it('is a wide type in a 128-bit queue (spec; QEMU 11.1 would accept it there)', () => {
    expect(err(dec(0x19n))).toBe(DescError.WideType);
  });
});

describe('unknown types in a 256-bit queue', () => {
  it('stay unknown, upper half or not', () => {
    for (const t of [0n, 0xan, 0xfn, 0x200n | 5n]) {
      expect(err(dec256(t))).toBe(DescError.UnknownType);
      expect(err(dec256(t, 0n, 1n))).toBe(DescError.UnknownType);
    }
  });
});
