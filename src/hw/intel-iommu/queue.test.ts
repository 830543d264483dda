/**
 * The invalidation queue (queue.ts) inside the real unit (VtdBench with the
 * qi-ir extension): the guest programs IQA / IQT / GCMD.QIE through the
 * register window and puts descriptors in guest RAM; the tests read back
 * IQH, FSTS, IQER, status dwords in guest RAM, the unit's 'invalidate'
 * events and the MSIs it sends (invalidation completion and fault events).
 */
import { describe, expect, it } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { u32Stream } from '../../../test/support/prng.js';
import { MAMV } from './caps.js';
import { qiIrExtension } from './queue-ir-extension.js';
import { Iqei, Iqer } from './queue.js';
import { EventCtl, Fsts, Ics, Reg } from './reg-layout.js';
import type { PropValues } from '../../machine/device-type.js';

const Q = 0x10_0000; // queue base
const STATUS = 0x20_0000; // status dword

/** Wait descriptor with SW: status `data` to `addr`. */
const waitSw = (data: number, addr = STATUS): [bigint, bigint] => [0x25n | (BigInt(data) << 32n), BigInt(addr)];
const WAIT_IF: [bigint, bigint] = [0x15n, 0n];
const WAIT_FN: [bigint, bigint] = [0x45n, 0n];

/** Fault event message (FEDATA / FEADDR) used where a test unmasks it. */
const FE_DATA = 0x4f;
const FE_ADDR = 0xfee0_f000;
const FAULT_EVENT = { address: FE_ADDR, data: FE_DATA, origin: { kind: 'iommu' } };

/** A unit with queued invalidation (QI disabled). */
function unit(props: PropValues = {}): VtdBench {
  return new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', ...props }, extensions: [qiIrExtension] });
}

/** A unit with the queue enabled at Q (256 entries). */
function setup(props: PropValues = {}): VtdBench {
  const b = unit(props);
  expect(b.enableQueue(Q)).toBe(true);
  return b;
}

/** Unmasks the fault event, so each one the unit raises arrives in `b.msis`. */
function unmaskFaultEvent(b: VtdBench): void {
  b.w32(Reg.FEDATA, FE_DATA);
  b.w32(Reg.FEADDR, FE_ADDR);
  b.w32(Reg.FECTL, 0);
}

function submit(b: VtdBench, descs: [bigint, bigint][], from = b.queueHead()): void {
  descs.forEach(([a, c], i) => b.putDesc(Q, (from + i) % 256, a, c));
  b.setTail((from + descs.length) % 256);
}

/** FSTS.IQE. */
function iqe(b: VtdBench): boolean {
  return (b.r32(Reg.FSTS) & Fsts.IQE) !== 0;
}

describe('QI enable / disable', () => {
  it('enables without IQA programmed (kvm-unit-tests does) and reports QIES', () => {
    const b = unit();
    expect(b.setQie(true)).toBe(true);
    expect(b.queueHead()).toBe(0);
  });

  it('latches IQA at enable; IQA reads show the latched base with the written QS and DW', () => {
    const b = unit();
    b.w32(Reg.IQA, Q | 0x801);
    expect(b.r32(Reg.IQA)).toBe(0x801);
    b.setQie(true);
    expect(b.r32(Reg.IQA)).toBe(Q | 0x801);
    b.w32(Reg.IQA, 0x30_0000 | 0x2);
    expect(b.r32(Reg.IQA)).toBe(Q | 0x2);
    // The queue still runs from the latched base.
    submit(b, [waitSw(7)]);
    expect(b.peek32(STATUS)).toBe(7);
  });

  it('ignores IQA.DW without scalable mode: 128-bit descriptors, IQH in 16-byte units (QEMU)', () => {
    const b = unit();
    b.w32(Reg.IQA, Q | 0x800);
    b.setQie(true);
    expect(b.r32(Reg.IQA)).toBe(Q | 0x800); // DW reads back (QEMU 11.1; 7.2 read 0) but has no effect
    submit(b, [waitSw(1), waitSw(2, STATUS + 4)]);
    expect(b.r32(Reg.IQH)).toBe(0x20);
    expect([b.peek32(STATUS), b.peek32(STATUS + 4)]).toEqual([1, 2]);
    expect(iqe(b)).toBe(false);
  });

  it('processes at once when IQT is already non-zero at enable', () => {
    const b = unit();
    b.w32(Reg.IQA, Q);
    b.putDesc(Q, 0, ...waitSw(0x55));
    b.setTail(1);
    expect(b.peek32(STATUS)).toBe(0);
    b.setQie(true);
    expect(b.peek32(STATUS)).toBe(0x55);
    expect(b.queueHead()).toBe(1);
  });

  it('refuses disable unless head == tail and the last descriptor was a wait; then IQH = 0', () => {
    const b = setup();
    expect(b.setQie(false)).toBe(true); // nothing fetched yet: last type is none
    submit(b, [[0x11n, 0n]]);
    expect(b.setQie(false)).toBe(true);
    submit(b, [waitSw(1)]);
    expect(b.queueHead()).toBe(2);
    expect(b.setQie(false)).toBe(false);
    expect(b.queueHead()).toBe(0);
    expect(b.r32(Reg.IQH)).toBe(0);
  });

  it('refuses disable while descriptors are pending (IQE stopped the queue)', () => {
    const b = setup();
    submit(b, [waitSw(1), [0xen, 0n]]);
    expect(iqe(b)).toBe(true);
    expect(b.setQie(false)).toBe(true);
  });
});

describe('wait descriptor', () => {
  it('SW writes the status dword and advances IQH', () => {
    const b = setup();
    submit(b, [waitSw(0xdead_beef)]);
    expect(b.peek32(STATUS)).toBe(0xdead_beef);
    expect(b.queueHead()).toBe(1);
    expect(b.r32(Reg.IQH)).toBe(0x10);
  });

  it('IF with IECTL masked: ICS.IWC and IECTL.IP, no MSI; unmasking sends it', () => {
    const b = setup();
    b.w32(Reg.IEDATA, 0x4041);
    b.w32(Reg.IEADDR, 0xfee0_1000);
    submit(b, [WAIT_IF]);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
    expect(b.r32(Reg.IECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    expect(b.msis).toHaveLength(0);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x4041, origin: { kind: 'iommu' } }]);
    expect(b.r32(Reg.IECTL)).toBe(0);
  });

  it('IF unmasked: MSI at once, IP cleared; a second IF while IWC is set does nothing', () => {
    const b = setup();
    b.w32(Reg.IECTL, 0);
    b.w32(Reg.IEDATA, 0x31);
    b.w32(Reg.IEADDR, 0xfee0_0000);
    submit(b, [WAIT_IF, WAIT_IF]);
    expect(b.msis).toHaveLength(1);
    expect(b.r32(Reg.IECTL)).toBe(0);
    b.w32(Reg.ICS, Ics.IWC);
    expect(b.r32(Reg.ICS)).toBe(0);
    submit(b, [WAIT_IF]);
    expect(b.msis).toHaveLength(2);
  });

  it('clearing ICS.IWC drops a pending (masked) completion interrupt', () => {
    const b = setup();
    submit(b, [WAIT_IF]);
    b.w32(Reg.ICS, Ics.IWC);
    expect(b.r32(Reg.IECTL)).toBe(EventCtl.IM >>> 0);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toHaveLength(0);
  });

  it('SW and IF together do both (QEMU 7.2 would assert)', () => {
    const b = setup();
    b.w32(Reg.IECTL, 0);
    submit(b, [[0x35n | (9n << 32n), BigInt(STATUS)]]);
    expect(b.peek32(STATUS)).toBe(9);
    expect(b.msis).toHaveLength(1);
  });

  it('FN alone is a valid no-op', () => {
    const b = setup();
    submit(b, [WAIT_FN]);
    expect(iqe(b)).toBe(false);
    expect(b.queueHead()).toBe(1);
  });

  it('a status write to unassigned memory is a queue error', () => {
    const b = setup();
    submit(b, [waitSw(1, 0xf000_0000)]);
    expect(iqe(b)).toBe(true);
    expect(b.queueHead()).toBe(0);
  });
});

describe('invalidation descriptors', () => {
  it('context-cache global / domain / device with FM', () => {
    const b = setup();
    const rec = b.recordEvents();
    submit(b, [[0x11n, 0n], [0x21n | (3n << 16n), 0n], [0x31n | (4n << 16n) | (0x108n << 32n) | (2n << 48n), 0n]]);
    expect(rec.invalidations).toEqual([
      { cache: 'context', granularity: 'global', source: 'queue' },
      { cache: 'context', granularity: 'domain', did: 3, source: 'queue' },
      { cache: 'context', granularity: 'device', did: 4, sid: 0x108, fm: 2, source: 'queue' },
    ]);
  });

  it('IOTLB global / domain / page with AM and IH', () => {
    const b = setup();
    const rec = b.recordEvents();
    submit(b, [[0x12n, 0n], [0x22n | (5n << 16n), 0n], [0x32n | (6n << 16n), 0x4000_0000n | 0x40n | 2n]]);
    expect(rec.invalidations).toEqual([
      { cache: 'iotlb', granularity: 'global', source: 'queue' },
      { cache: 'iotlb', granularity: 'domain', did: 5, source: 'queue' },
      { cache: 'iotlb', granularity: 'page', did: 6, addr: 0x4000_0000, am: 2, ih: true, source: 'queue' },
    ]);
  });

  it('IEC global and index-selective reach the interrupt entry cache', () => {
    const b = setup();
    const rec = b.recordEvents();
    submit(b, [[0x4n, 0n], [0x14n | (2n << 27n) | (0x40n << 32n), 0n]]);
    expect(rec.invalidations).toEqual([
      { cache: 'iec', granularity: 'global', source: 'queue' },
      { cache: 'iec', granularity: 'index', addr: 0x40, am: 2, source: 'queue' },
    ]);
  });

  it('device-TLB invalidation is accepted and announced', () => {
    const b = setup();
    const rec = b.recordEvents();
    submit(b, [[0x3n | (0x10n << 32n), 0x5000n]]);
    expect(iqe(b)).toBe(false);
    expect(rec.invalidations).toEqual([{ cache: 'device-iotlb', granularity: 'page', sid: 0x10, addr: 0x5000, source: 'queue' }]);
  });
});

describe('queue errors (IQE)', () => {
  const cases: [string, [bigint, bigint]][] = [
    ['unknown type', [0xen, 0n]],
    ['type 0', [0n, 0n]],
    ['256-bit type in a 128-bit queue', [0x6n, 0n]],
    ['reserved bit', [0x11n | (1n << 63n), 0n]],
    ['reserved granularity', [0x02n, 0n]],
    ['AM above MAMV', [0x32n, BigInt(MAMV + 1)]],
    ['wait without SW/IF/FN', [0x5n, 0n]],
  ];
  for (const [name, bad] of cases) {
    it(`${name}: stops with IQH on it, ignores IQT until IQE is cleared, then resumes`, () => {
      const b = setup();
      unmaskFaultEvent(b);
      const rec = b.recordEvents();
      submit(b, [waitSw(1), bad, waitSw(2)]);
      expect(iqe(b)).toBe(true);
      expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
      expect(b.msis).toEqual([FAULT_EVENT]);
      expect(b.queueHead()).toBe(1);
      expect(b.peek32(STATUS)).toBe(1);
      // Tail writes are latched but nothing runs while IQE is set.
      b.putDesc(Q, 3, ...waitSw(3));
      b.putDesc(Q, 1, ...waitSw(9));
      b.setTail(4);
      expect(b.queueHead()).toBe(1);
      expect(b.peek32(STATUS)).toBe(1);
      expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
      expect(b.msis).toEqual([FAULT_EVENT]);
      // Software replaces the bad descriptor (as Linux does), clears IQE, rewrites the tail.
      b.putDesc(Q, 1, ...waitSw(4));
      b.w32(Reg.FSTS, Fsts.IQE);
      expect(iqe(b)).toBe(false);
      expect(b.queueHead()).toBe(1); // clearing IQE alone does not restart (QEMU)
      b.setTail(4);
      expect(b.queueHead()).toBe(4);
      expect(b.peek32(STATUS)).toBe(3);
      // The bad descriptor invalidated nothing; no second fault event.
      expect(rec.invalidations).toEqual([]);
      expect(b.msis).toEqual([FAULT_EVENT]);
    });
  }

  it('tail beyond the queue size: IQE, nothing processed', () => {
    const b = setup(); // QS 0: 256 entries
    b.putDesc(Q, 0, ...waitSw(1));
    b.setTail(300);
    expect(iqe(b)).toBe(true);
    expect(b.queueHead()).toBe(0);
    expect(b.peek32(STATUS)).toBe(0);
  });

  it('a larger queue (QS 1) accepts that tail', () => {
    const b = unit();
    b.enableQueue(Q, 1);
    for (let i = 0; i < 300; i++) b.putDesc(Q, i, ...WAIT_FN);
    b.setTail(300);
    expect(iqe(b)).toBe(false);
    expect(b.queueHead()).toBe(300);
  });

  it('an unreadable descriptor: IQE', () => {
    const b = unit();
    b.enableQueue(0xf000_0000);
    b.setTail(1);
    expect(iqe(b)).toBe(true);
    expect(b.queueHead()).toBe(0);
  });

  it('x-iqer records IQEI and clears it with IQE', () => {
    const b = setup({ 'x-iqer': true });
    submit(b, [[0x12n | (1n << 8n), 0n]]);
    expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.Reserved);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(b.r32(Reg.IQER)).toBe(0);
    b.putDesc(Q, 0, 0xfn, 0n);
    b.setTail(1);
    expect(b.r32(Reg.IQER)).toBe(Iqei.InvalidType);
  });

  it('without x-iqer, IQER reads 0 as in QEMU', () => {
    const b = setup();
    submit(b, [[0xfn, 0n]]);
    expect(b.r32(Reg.IQER)).toBe(0);
  });
});

describe('wrap-around', () => {
  it('processes across the end of the queue back to index 0', () => {
    const b = setup();
    for (let i = 0; i < 250; i++) b.putDesc(Q, i, ...WAIT_FN);
    b.setTail(250);
    expect(b.queueHead()).toBe(250);
    submit(b, [WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, waitSw(0x77), waitSw(0x78)]);
    expect(b.queueHead()).toBe(2);
    expect(b.peek32(STATUS)).toBe(0x78);
    expect(iqe(b)).toBe(false);
  });
});

describe('device-TLB invalidation errors (beyond QEMU)', () => {
  it('time-out: FSTS.ITE, ITESID, waits aborted until ITE is cleared', () => {
    const b = setup({ 'x-iqer': true, 'x-devtlb-timeout-sid': 0x108 });
    unmaskFaultEvent(b);
    submit(b, [[0x3n | (0x108n << 32n), 0n], waitSw(1)]);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(b.msis).toEqual([FAULT_EVENT]);
    expect(b.r32(Reg.IQER + 4) & 0xffff).toBe(0x108);
    expect(b.peek32(STATUS)).toBe(0); // aborted
    expect(b.queueHead()).toBe(2);
    b.w32(Reg.FSTS, Fsts.ITE);
    expect(b.r32(Reg.FSTS) & Fsts.ITE).toBe(0);
    expect(b.r32(Reg.IQER + 4)).toBe(0);
    submit(b, [waitSw(2)]);
    expect(b.peek32(STATUS)).toBe(2);
    expect(b.msis).toEqual([FAULT_EVENT]);
  });

  it('other SIDs are not affected', () => {
    const b = setup({ 'x-devtlb-timeout-sid': 0x108 });
    submit(b, [[0x3n | (0x110n << 32n), 0n], waitSw(1)]);
    expect(b.r32(Reg.FSTS)).toBe(0);
    expect(b.peek32(STATUS)).toBe(1);
  });

  it('completion error: FSTS.ICE and ICESID, processing goes on', () => {
    const b = setup({ 'x-iqer': true, 'x-devtlb-error-sid': 0x20 });
    submit(b, [[0x3n | (0x20n << 32n), 0n], waitSw(5)]);
    expect(b.r32(Reg.FSTS) & Fsts.ICE).toBe(Fsts.ICE);
    expect(b.r32(Reg.IQER + 4) >>> 16).toBe(0x20);
    expect(b.peek32(STATUS)).toBe(5);
  });
});

describe('reset', () => {
  it('forgets the queue state', () => {
    const b = setup();
    submit(b, [waitSw(1)]);
    b.iommu.reset();
    expect(b.r32(Reg.IQA)).toBe(0);
    expect(b.queueHead()).toBe(0);
    // Enabling again without IQA uses base 0.
    b.setQie(true);
    b.putDesc(0, 0, ...waitSw(0x99));
    b.setTail(1);
    expect(b.peek32(STATUS)).toBe(0x99);
  });
});

describe('random input (property)', () => {
  const SEED = 0x5eed;

  it(`random descriptors never throw; IQH stays in the queue and stops only with IQE (seed 0x${SEED.toString(16)})`, () => {
    const next = u32Stream(SEED);
    let errors = 0;
    let deep = 0;
    for (let round = 0; round < 50; round++) {
      const b = setup({ 'x-iqer': true, 'x-devtlb-timeout-sid': next() & 0xffff });
      for (let i = 0; i < 64; i++) {
        // Valid descriptors with random fields, one random bit flipped now and then.
        const r = BigInt(next()) | (BigInt(next()) << 32n);
        const templates: [bigint, bigint][] = [
          [0x11n + (BigInt(next() % 3) << 4n) | (r & 0x3_ffff_ffff_0000n), 0n],
          [0x12n + (BigInt(next() % 3) << 4n) | (r & 0xffff_00c0n), (r & 0xffff_ffff_ffff_f07fn) % 0x4000_0000n],
          [0x3n | (r & 0xffff_001f_0000n), r & 0xffff_ffff_ffff_f001n],
          [0x4n | (r & 0xffff_f800_0010n), 0n],
          [0x25n | (r & 0xffff_ffff_0000_0000n), BigInt(STATUS + (next() % 64) * 4)],
          [0x15n, 0n],
        ];
        let [qw0, qw1] = templates[next() % templates.length]!;
        if (next() % 8 === 0) {
          const bit = BigInt(next() % 128);
          if (bit < 64n) qw0 ^= 1n << bit;
          else qw1 ^= 1n << (bit - 64n);
        }
        b.putDesc(Q, i, qw0, qw1);
      }
      const tail = next() % 300;
      expect(() => b.setTail(tail)).not.toThrow();
      const head = b.queueHead();
      expect(head).toBeLessThan(256);
      if (tail < 256 && head !== tail) expect(iqe(b)).toBe(true);
      if (iqe(b)) errors++;
      if (head >= 8) deep++;
    }
    // The generator must exercise both paths.
    expect(errors).toBeGreaterThan(5);
    expect(deep).toBeGreaterThan(5);
  });
});
