/**
 * PatternDma on its own: the pieces it hands the DMA space and system memory
 * (ending at CHUNK-aligned addresses, every one attempted), the pattern
 * phase of each, the bigint entry point from 2^53 on, wrap-around, and the
 * read-back verdicts; plus the register-layout helpers it relies on.
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import { PATTERN_DMA_CHUNK, PatternDma, type SystemMemoryReader } from './pattern-dma.js';
import { ITD_ATTRS_RESET, ItdReg, ItdResult, attrsInconsistent, patternByte } from './regs.js';

const C = PATTERN_DMA_CHUNK;

/** A DMA space that records each write (address, first bytes, length) and fails the ones `fail` picks. */
function recordingDma(fail: (addr: bigint) => boolean = () => false) {
  const writes: { addr: bigint; len: number; head: number[]; wide: boolean }[] = [];
  const rec = (addr: bigint, src: Uint8Array, wide: boolean): MemTx => {
    writes.push({ addr, len: src.length, head: Array.from(src.subarray(0, 4)), wide });
    return fail(addr) ? MemTx.DecodeError : MemTx.Ok;
  };
  const dma: DmaMemory = {
    read: () => MemTx.Ok,
    write: (addr, src) => rec(BigInt(addr), src, false),
    writeU32: () => MemTx.Ok,
    readWide: () => MemTx.Ok,
    writeWide: (addr, src) => rec(addr, src, true),
  };
  return { dma, writes };
}

/** System memory answering reads with the pattern of a DMA that started at `origin` (or `bytes`), recording them. */
function patternMemory(origin: number, opts: { failAt?: number; corruptAt?: number } = {}) {
  const reads: [number, number][] = [];
  const mem: SystemMemoryReader = {
    readInto(addr, dst, start, length) {
      reads.push([addr, length]);
      for (let i = 0; i < length; i++) dst[start + i] = patternByte(addr + i - origin);
      const hit = (x: number | undefined) => x !== undefined && x >= addr && x < addr + length;
      if (hit(opts.corruptAt)) dst[start + opts.corruptAt! - addr] ^= 0xff;
      return hit(opts.failAt) ? MemTx.DecodeError : MemTx.Ok;
    },
  };
  return { mem, reads };
}

const PATTERN_AT = (phase: number) => [0, 1, 2, 3].map((k) => patternByte(phase + k));

describe('PatternDma writes', () => {
  it('one piece when it fits before the next CHUNK boundary', () => {
    const { dma, writes } = recordingDma();
    expect(new PatternDma(dma, patternMemory(0).mem).write(0x1000, 0, 16)).toBe(true);
    expect(writes).toEqual([{ addr: 0x1000n, len: 16, head: [0x78, 0x56, 0x34, 0x12], wide: false }]);
  });

  it('pieces end at CHUNK-aligned addresses and carry the pattern phase', () => {
    const { dma, writes } = recordingDma();
    const start = 5 * C - 3;
    expect(new PatternDma(dma, patternMemory(0).mem).write(start, 0, 2 * C + 10)).toBe(true);
    expect(writes.map((w) => [w.addr, w.len])).toEqual([
      [BigInt(start), 3],
      [BigInt(5 * C), C],
      [BigInt(6 * C), C],
      [BigInt(7 * C), 7],
    ]);
    expect(writes[0]!.head).toEqual([0x78, 0x56, 0x34]);
    expect(writes[1]!.head).toEqual(PATTERN_AT(3));
    expect(writes[3]!.head).toEqual(PATTERN_AT(3));
  });

  it('every piece is attempted after one fails; the result is a failure', () => {
    const { dma, writes } = recordingDma((a) => a === BigInt(C));
    expect(new PatternDma(dma, patternMemory(0).mem).write(0, 0, 3 * C)).toBe(false);
    expect(writes.map((w) => w.addr)).toEqual([0n, BigInt(C), BigInt(2 * C)]);
  });

  it('from 2^53 on the bigint entry point takes exact addresses and wraps past 2^64', () => {
    const { dma, writes } = recordingDma();
    const p = new PatternDma(dma, patternMemory(0).mem);
    expect(p.write(0x1234, 0x0020_0000, 8)).toBe(true);
    expect(writes.pop()).toEqual({ addr: 2n ** 53n + 0x1234n, len: 8, head: PATTERN_AT(0), wide: true });
    // 2^53 - 4 + 8 reaches 2^53: the whole transfer takes the wide path (two pieces: 2^53 is CHUNK-aligned).
    p.write(0xffff_fffc, 0x001f_ffff, 8);
    expect(writes.splice(0).map((w) => [w.addr, w.len, w.wide])).toEqual([
      [2n ** 53n - 4n, 4, true],
      [2n ** 53n, 4, true],
    ]);
    p.write(0xffff_fffc, 0xffff_ffff, 8);
    expect(writes.map((w) => [w.addr, w.len, w.wide])).toEqual([
      [0xffff_ffff_ffff_fffcn, 4, true],
      [0n, 4, true],
    ]);
    expect(writes[1]!.head).toEqual(PATTERN_AT(4));
  });

  it('reuses its piece views (no allocation for repeated transfers of one shape)', () => {
    const seen: Uint8Array[] = [];
    const dma: DmaMemory = { ...recordingDma().dma, write: (_a, src) => (seen.push(src), MemTx.Ok) };
    const p = new PatternDma(dma, patternMemory(0).mem);
    p.write(0x100, 0, 12);
    p.write(0x200, 0, 12);
    p.write(0, 0, 2 * C);
    p.write(0, 0, 2 * C);
    expect(seen[1]).toBe(seen[0]);
    expect(seen[4]).toBe(seen[2]);
  });
});

describe('PatternDma read-back', () => {
  it('reads every byte once in CHUNK-aligned pieces; Ok when all match', () => {
    const { mem, reads } = patternMemory(C - 2);
    expect(new PatternDma(recordingDma().dma, mem).readBack(C - 2, 0, C + 4)).toBe(ItdResult.Ok);
    expect(reads).toEqual([
      [C - 2, 2],
      [C, C],
      [2 * C, 2],
    ]);
  });

  it('a mismatching byte anywhere: Mismatch; a failed read anywhere wins over it', () => {
    const len = 3 * C;
    expect(new PatternDma(recordingDma().dma, patternMemory(0, { corruptAt: 2 * C + 5 }).mem).readBack(0, 0, len)).toBe(ItdResult.Mismatch);
    expect(new PatternDma(recordingDma().dma, patternMemory(0, { corruptAt: len - 1 }).mem).readBack(0, 0, len)).toBe(ItdResult.Mismatch);
    const both = patternMemory(0, { corruptAt: 5, failAt: 2 * C });
    expect(new PatternDma(recordingDma().dma, both.mem).readBack(0, 0, len)).toBe(ItdResult.ReadFail);
    expect(both.reads.length).toBe(3);
  });

  it('at 2^53 and above nothing is read (a failure); the part below is read, the part past 2^64 at 0', () => {
    const below = patternMemory(2 ** 53 - 4);
    expect(new PatternDma(recordingDma().dma, below.mem).readBack(0xffff_fffc, 0x001f_ffff, 8)).toBe(ItdResult.ReadFail);
    expect(below.reads).toEqual([[2 ** 53 - 4, 4]]);
    const wrap = patternMemory(-4);
    expect(new PatternDma(recordingDma().dma, wrap.mem).readBack(0xffff_fffc, 0xffff_ffff, 12)).toBe(ItdResult.ReadFail);
    expect(wrap.reads).toEqual([[0, 8]]);
    const high = patternMemory(0);
    expect(new PatternDma(recordingDma().dma, high.mem).readBack(0, 0x0100_0000, 4)).toBe(ItdResult.ReadFail);
    expect(high.reads).toEqual([]);
  });
});

describe('register layout helpers', () => {
  it('the result codes and register offsets are QEMU 11.1 include/hw/misc/iommu-testdev.h values', () => {
    expect(ItdResult).toEqual({
      Ok: 0, Idle: 0xffff_ffff, Busy: 0xffff_fffe, BadLength: 0xdead_0001, TxFail: 0xdead_0002,
      ReadFail: 0xdead_0003, Mismatch: 0xdead_0004, NotArmed: 0xdead_0005, BadAttrs: 0xdead_0006,
    });
    expect(ItdReg).toEqual({ Trigger: 0, IovaLo: 4, IovaHi: 8, Length: 0xc, Result: 0x10, Doorbell: 0x14, Attrs: 0x18, GpaLo: 0x1c, GpaHi: 0x20 });
  });

  it('the pattern is 0x12345678 little-endian', () => {
    expect([0, 1, 2, 3, 4, 7].map(patternByte)).toEqual([0x78, 0x56, 0x34, 0x12, 0x78, 0x12]);
  });

  it('attributes are inconsistent only with space valid and a secure bit contradicting space 0 or 1', () => {
    const bad = [];
    for (let v = 0; v < 32; v++) if (attrsInconsistent(v)) bad.push(v);
    expect(bad).toEqual([0x08, 0x0b, 0x18, 0x1b]);
    expect(attrsInconsistent(0xffff_fff8)).toBe(true);
    expect(attrsInconsistent(ITD_ATTRS_RESET)).toBe(false);
    expect(ITD_ATTRS_RESET).toBe(0x2);
  });
});
