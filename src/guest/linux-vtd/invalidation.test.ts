import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../alloc.js';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { QueuedInvalidator } from './invalidation.js';
import { Fsts, Reg } from './regs.js';

const BASE = 0xfed90000;
const IQA_DW = 1n << 11n;
const WAIT = 5n;
const WAIT_SW = 1n << 5n;
const WAIT_PD = 1n << 7n;

/**
 * A minimal queue consumer: an IQT write walks the descriptors from IQH to
 * IQT (32 bytes apart with IQA.DW, else 16), records their qwords, answers
 * wait descriptors with their status write, and stops with FSTS.IQE at a
 * descriptor whose type is in `reject`.
 */
function fakeQueue(p: FakePlatform, reject: ReadonlySet<number> = new Set()): { seen: bigint[][]; regs: Map<number, bigint> } {
  const regs = new Map<number, bigint>([[Reg.IQH, 0n], [Reg.IQT, 0n], [Reg.IQA, 0n], [Reg.FSTS, 0n]]);
  const seen: bigint[][] = [];
  const ram = (a: number): bigint => {
    let v = 0n;
    const pg = p.ramPage(Math.floor(a / 0x1000), true)!;
    const b = new Uint8Array(pg, a % 0x1000, 8);
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  };
  const process = (): void => {
    const iqa = regs.get(Reg.IQA)!;
    const wide = (iqa & IQA_DW) !== 0n;
    const shift = wide ? 5n : 4n;
    const queue = Number(iqa & ~0xfffn);
    const size = wide ? 32 : 16;
    let head = Number(regs.get(Reg.IQH)! >> shift);
    const tail = Number(regs.get(Reg.IQT)! >> shift);
    while (head !== tail) {
      const at = queue + head * size;
      const qw = Array.from({ length: size / 8 }, (_, i) => ram(at + i * 8));
      const type = Number(qw[0]! & 0xfn);
      if (reject.has(type)) { regs.set(Reg.FSTS, BigInt(Fsts.IQE)); break; }
      seen.push(qw);
      if (BigInt(type) === WAIT && qw[0]! & WAIT_SW) void p.write(Number(qw[1]!), 4, Number(qw[0]! >> 32n));
      head = (head + 1) % 256;
    }
    regs.set(Reg.IQH, BigInt(head) << shift);
  };
  p.mapMmio(BASE, 0x1000, {
    read: (off) => regs.get(off) ?? 0n,
    write(off, _size, value) {
      if (off === Reg.FSTS) { regs.set(Reg.FSTS, regs.get(Reg.FSTS)! & ~value); return; }
      regs.set(off, value);
      if (off === Reg.IQT) process();
    },
  });
  return { seen, regs };
}

async function queue(wide: boolean, reject?: ReadonlySet<number>) {
  const p = new FakePlatform();
  const fake = fakeQueue(p, reject);
  const qi = new QueuedInvalidator(p, BASE, new GuestAllocator(p, 0x10_1000, 0x20_0000));
  const iqa = await qi.prepare(wide);
  fake.regs.set(Reg.IQA, iqa);
  return { p, qi, iqa, ...fake };
}

describe('QueuedInvalidator, 256-bit queue (ECAP.SMTS)', () => {
  it('programs IQA with DW and QS=1 over two aligned pages; descriptors are 32 bytes, IQT counts in 32-byte units', async () => {
    const { qi, iqa, seen, regs } = await queue(true);
    expect(qi.queue % 0x2000).toBe(0);
    expect(iqa).toBe(BigInt(qi.queue) | IQA_DW | 1n);
    await qi.context({ kind: 'global' });
    expect(regs.get(Reg.IQT)).toBe(2n << 5n);
    expect(seen.map((d) => d.length)).toEqual([4, 4]);
    expect(seen[0]).toEqual([0x11n, 0n, 0n, 0n]);
    expect(seen[1]![0]! & 0xffn).toBe(WAIT | WAIT_SW);
  });

  it('encodes PASID-cache (7) and PASID-based IOTLB (6) descriptors in every granularity', async () => {
    const { qi, seen } = await queue(true);
    await qi.pasidCache({ kind: 'global' });
    await qi.pasidCache({ kind: 'domain', did: 5 });
    await qi.pasidCache({ kind: 'pasid', did: 5, pasid: 0x12345 });
    await qi.pasidIotlb({ kind: 'pasid', did: 7, pasid: 3 });
    await qi.pasidIotlb({ kind: 'page', did: 7, pasid: 0, addr: 0x20_0000, am: 9, ih: true });
    const mine = seen.filter((_, i) => i % 2 === 0); // every other one is the wait descriptor
    expect(mine.map((d) => [d[0], d[1]])).toEqual([
      [0x37n, 0n],
      [0x07n | (5n << 16n), 0n],
      [0x17n | (5n << 16n) | (0x12345n << 32n), 0n],
      [0x26n | (7n << 16n) | (3n << 32n), 0n],
      [0x36n | (7n << 16n), 0x20_0000n | (1n << 6n) | 9n],
    ]);
  });

  it('encodes PASID-based device-TLB (8) descriptors: SID, PASID, QDEP, and the size in the address with S', async () => {
    const { qi, seen } = await queue(true);
    await qi.pasidDevTlb({ sid: 0x0110, pasid: 9, qdep: 4, addr: 0x40_0000, sizeOrder: 0 });
    await qi.pasidDevTlb({ sid: 0x0110, pasid: 9, qdep: 4, addr: 0x40_0000, sizeOrder: 3 });
    const q0 = 8n | (0x0110n << 16n) | (9n << 32n) | (4n << 4n);
    expect([seen[0]![0], seen[0]![1]]).toEqual([q0, 0x40_0000n]);
    // 8 pages: S set, address bits 13:12 set (the lowest clear bit, 14, marks 2^3 pages)
    expect([seen[2]![0], seen[2]![1]]).toEqual([q0, 0x40_0000n | (1n << 11n) | 0x3000n]);
  });

  it('submit with drainPageRequests sets PD on its own status wait only; the default wait has no PD, no fence', async () => {
    const { qi, seen } = await queue(true);
    const piotlb = [0x26n | (1n << 16n) | (1n << 32n), 0n] as const;
    await qi.submit([piotlb]);
    await qi.submit([piotlb], { drainPageRequests: true });
    await qi.submit([piotlb], {});
    expect(seen.map((d) => d[0]! & 0xffn)).toEqual([0x26n, WAIT | WAIT_SW, 0x26n, WAIT | WAIT_SW | WAIT_PD, 0x26n, WAIT | WAIT_SW]);
    expect(seen[3]![0]! >> 32n).toBe(2n); // status data QI_DONE
    expect(seen[3]![1]).toBe(seen[1]![1]); // the same status word
    expect(qi.statusWait({ drainPageRequests: true })).toBe(0x2_0000_00a5n);
  });

  it('on IQE overwrites the refused descriptor (found through IQH >> 5) with the wait descriptor and clears IQE', async () => {
    const { p, qi, regs } = await queue(true, new Set([7]));
    await qi.context({ kind: 'global' });
    await expect(qi.pasidCache({ kind: 'global' })).rejects.toThrow(/invalidation queue error at descriptor 2/);
    expect(qi.iqeCount).toBe(1);
    expect(regs.get(Reg.IQH)).toBe(2n << 5n);
    expect((await p.read64(qi.queue + 2 * 32)) & 0xffn).toBe(WAIT | WAIT_SW);
    expect(regs.get(Reg.FSTS)! & BigInt(Fsts.IQE)).toBe(0n);
  });
});

describe('QueuedInvalidator, 128-bit queue', () => {
  it('keeps IQA = base and 16-byte descriptors', async () => {
    const { qi, iqa, seen, regs } = await queue(false);
    expect(iqa).toBe(BigInt(qi.queue));
    await qi.iotlb({ kind: 'domain', did: 3 }, true, true);
    expect(regs.get(Reg.IQT)).toBe(2n << 4n);
    expect(seen[0]).toEqual([0x22n | (1n << 7n) | (1n << 6n) | (3n << 16n), 0n]);
  });
});
