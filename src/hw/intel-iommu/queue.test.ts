/**
 * The invalidation queue (queue.ts) inside the real unit (VtdBench, whose
 * unit owns its queue): the guest programs IQA / IQT / GCMD.QIE through the
 * register window and puts descriptors in guest RAM; the tests read back
 * IQH, FSTS, IQER, status dwords in guest RAM, the unit's 'invalidate'
 * events and the MSIs it sends (invalidation completion and fault events).
 */
import { describe, expect, it, vi } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { u32Stream } from '../../../test/support/prng.js';
import { MAMV } from './caps.js';
import { Iqei, Iqer } from './queue.js';
import { EventCtl, Fsts, Iqa, Ics, Reg } from './reg-layout.js';
import { PatternTracer } from '../../machine/tracer.js';
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
  return new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', ...props } });
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
    expect(rec.invalidations).toEqual([{ cache: 'device-iotlb', granularity: 'page', sid: 0x10, addr: 0x5000, size: 0x1000, source: 'queue' }]);
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

// ---- the 256-bit queue (scalable mode, IQA.DW) ------------------------------

/** Scalable-mode properties. */
const SM: PropValues = { 'scalable-mode': true };
/** The SVM property set (ECAP.PRS, PDS). */
const SVM: PropValues = { 'aw-bits': 48, 'scalable-mode': true, fsts: true, 'pasid-bits': 20, 'device-iotlb': true, svm: true };
/** A 256-bit descriptor: four qwords (2 and 3 default to 0). */
type Desc256 = [bigint, bigint, bigint?, bigint?];
const WIDE_SIZE = 32;

/** Writes a 256-bit descriptor at `index` of the queue at Q. */
function put256(b: VtdBench, index: number, [q0, q1, q2 = 0n, q3 = 0n]: Desc256): void {
  const at = Q + index * WIDE_SIZE;
  b.poke64(at, q0);
  b.poke64(at + 8, q1);
  b.poke64(at + 16, q2);
  b.poke64(at + 24, q3);
}

/** IQT for a 256-bit queue (index << 5). */
const tail256 = (b: VtdBench, index: number) => b.w32(Reg.IQT, index << 5);
/** IQH as a 256-bit index. */
const head256 = (b: VtdBench) => b.r32(Reg.IQH) >>> 5;

/** A scalable-mode unit with a 256-bit queue enabled at Q (QS as given). */
function setup256(props: PropValues = SM, qs = 0): VtdBench {
  const b = unit(props);
  b.w64(Reg.IQA, BigInt(Q | Iqa.DW | qs));
  expect(b.setQie(true)).toBe(true);
  return b;
}

/** Submits 256-bit descriptors from the current head. */
function submit256(b: VtdBench, descs: Desc256[]): void {
  const from = head256(b);
  const size = b.iommu.queue.sizeEntries;
  descs.forEach((d, i) => put256(b, (from + i) % size, d));
  tail256(b, (from + descs.length) % size);
}

const wait256 = (data: number, addr = STATUS): Desc256 => [...waitSw(data, addr)];

describe('256-bit queue geometry (IQA.DW with ECAP.SMTS)', () => {
  it('reads 32-byte descriptors; IQH and IQT count 32-byte units', () => {
    const b = setup256();
    expect(b.iommu.queue.wide).toBe(true);
    submit256(b, [wait256(1), wait256(2, STATUS + 4), wait256(3, STATUS + 8)]);
    expect(b.r32(Reg.IQH)).toBe(0x60);
    expect([b.peek32(STATUS), b.peek32(STATUS + 4), b.peek32(STATUS + 8)]).toEqual([1, 2, 3]);
    expect(iqe(b)).toBe(false);
  });

  it('holds 2^(QS+7) entries, latched at QIE enable', () => {
    for (const qs of [0, 1, 3]) {
      const b = setup256(SM, qs);
      expect(b.iommu.queue.sizeEntries).toBe(1 << (qs + 7));
      tail256(b, 1 << (qs + 7));
      expect(iqe(b)).toBe(true);
      expect(head256(b)).toBe(0);
    }
  });

  it('DW takes effect at the IQA write: head index kept, width and units change, size stays latched', () => {
    const b = setup(SM);
    const rec = b.recordEvents();
    expect(b.iommu.queue.wide).toBe(false);
    submit(b, [waitSw(1), waitSw(2, STATUS + 4)]);
    expect(b.r32(Reg.IQH)).toBe(0x20);
    b.w64(Reg.IQA, BigInt(Q | Iqa.DW));
    expect(b.iommu.queue.wide).toBe(true);
    expect(b.r32(Reg.IQH)).toBe(0x20); // nothing fetched since
    put256(b, 2, [0x12n, 0n]);
    tail256(b, 3);
    expect(b.r32(Reg.IQH)).toBe(0x60);
    expect(rec.invalidations).toEqual([{ cache: 'iotlb', granularity: 'global', source: 'queue' }]);
    // Enabled with DW off: 256 entries, even though DW is now on.
    expect(b.iommu.queue.sizeEntries).toBe(256);
    put256(b, 3, wait256(4));
    tail256(b, 4);
    expect(b.peek32(STATUS)).toBe(4);
    b.w64(Reg.IQA, BigInt(Q));
    expect(b.iommu.queue.wide).toBe(false);
    b.putDesc(Q, 4, ...waitSw(5));
    b.setTail(5);
    expect(b.r32(Reg.IQH)).toBe(0x50);
    expect(b.peek32(STATUS)).toBe(5);
  });

  it('enabled with DW on, then off: the queue keeps its 128 entries', () => {
    const b = setup256();
    b.w64(Reg.IQA, BigInt(Q));
    b.putDesc(Q, 0, ...waitSw(1));
    b.setTail(128);
    expect(iqe(b)).toBe(true);
    expect(b.peek32(STATUS)).toBe(0);
  });

  it('DW without scalable mode reads back and does nothing', () => {
    const b = unit();
    b.w64(Reg.IQA, BigInt(Q | Iqa.DW));
    expect(b.iommu.queue.wide).toBe(false);
    b.setQie(true);
    expect(b.iommu.queue.sizeEntries).toBe(256);
    b.setTail(1); // bit 4 set: fine in a 128-bit queue
    expect(b.queueHead()).toBe(0);
    expect(iqe(b)).toBe(true); // an all-zero descriptor, not the tail
    expect(b.r32(Reg.IQA)).toBe(Q | Iqa.DW);
  });

  it('an IQT with bit 4 set is a queue error at once, QI on or off, and keeps the old tail', () => {
    const b = unit({ ...SM, 'x-iqer': true });
    unmaskFaultEvent(b);
    b.w64(Reg.IQA, BigInt(Q | Iqa.DW));
    tail256(b, 1);
    b.w32(Reg.IQT, 0x50);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.InvalidTail);
    expect(b.r32(Reg.IQT)).toBe(0x50);
    expect(b.msis).toEqual([FAULT_EVENT]);
    put256(b, 0, wait256(1));
    put256(b, 1, wait256(2, STATUS + 4));
    b.w32(Reg.FSTS, Fsts.IQE);
    b.setQie(true); // runs to the tail latched before the bad write
    expect(head256(b)).toBe(1);
    expect([b.peek32(STATUS), b.peek32(STATUS + 4)]).toEqual([1, 0]);
    b.w32(Reg.IQT, 0x70);
    expect(iqe(b)).toBe(true);
    expect(head256(b)).toBe(1);
  });

  it('wraps around after the last entry', () => {
    const b = setup256();
    for (let i = 0; i < 126; i++) put256(b, i, [...WAIT_FN]);
    tail256(b, 126);
    submit256(b, [wait256(1), wait256(2, STATUS + 4), wait256(3, STATUS + 8)]);
    expect(head256(b)).toBe(1);
    expect(b.peek32(STATUS + 8)).toBe(3);
    expect(iqe(b)).toBe(false);
  });

  it('QIE disable after a wait returns IQH to 0', () => {
    const b = setup256();
    submit256(b, [wait256(1)]);
    expect(b.setQie(false)).toBe(false);
    expect(b.r32(Reg.IQH)).toBe(0);
  });

  it('an unreadable 256-bit queue: fetch error', () => {
    const b = unit({ ...SM, 'x-iqer': true });
    b.w64(Reg.IQA, BigInt(0xf000_0000 | Iqa.DW));
    b.setQie(true);
    tail256(b, 1);
    expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.FetchError);
  });
});

describe('descriptors in a 256-bit queue', () => {
  it('legacy descriptors run with a zero upper half', () => {
    const b = setup256();
    const rec = b.recordEvents();
    submit256(b, [[0x11n, 0n], [0x32n | (6n << 16n), 0x4000n | 1n], [0x4n, 0n], [0x3n | (0x10n << 32n), 0x5000n], [...WAIT_IF], wait256(9)]);
    expect(iqe(b)).toBe(false);
    expect(rec.invalidations.map((e) => e.cache)).toEqual(['context', 'iotlb', 'iec', 'device-iotlb']);
    expect(b.r32(Reg.ICS)).toBe(Ics.IWC);
    expect(b.peek32(STATUS)).toBe(9);
  });

  it('a non-zero upper half is a queue error for types 1-8 (reserved field), not for 9', () => {
    const descs: Desc256[] = [
      [0x11n, 0n, 1n], [0x12n, 0n, 0n, 1n], [0x3n, 0n, 4n], [0x4n, 0n, 0n, 8n], [0x25n, BigInt(STATUS), 1n << 40n],
      [0x26n, 0n, 0n, 1n << 63n], [0x37n, 0n, 2n], [0x8n, 0n, 0n, 1n],
    ];
    for (const d of descs) {
      const b = setup256({ ...SM, 'x-iqer': true });
      const rec = b.recordEvents();
      submit256(b, [d]);
      expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.Reserved);
      expect(head256(b)).toBe(0);
      expect(rec.invalidations).toEqual([]);
    }
    const b = setup256();
    submit256(b, [[0x19n, 0n, 2n ** 64n - 1n, 2n ** 64n - 1n]]);
    expect(iqe(b)).toBe(false);
  });

  it('PASID-IOTLB (6) goes to the core: all of a PASID, or pages', () => {
    const b = setup256();
    const spy = vi.spyOn(b.iommu, 'invalidatePasidIotlb');
    submit256(b, [[0x26n | (3n << 16n) | (0x55n << 32n), 0n], [0x36n | (4n << 16n) | (0xf_ffffn << 32n), 0x8000_0000n | 0x40n | 2n]]);
    expect(spy.mock.calls).toEqual([
      [{ kind: 'pasid', did: 3, pasid: 0x55 }],
      [{ kind: 'page', did: 4, pasid: 0xf_ffff, addr: 0x8000_0000, am: 2, ih: true }],
    ]);
  });

  it('PASID-cache (7) goes to the core: domain, PASID, global', () => {
    const b = setup256();
    const spy = vi.spyOn(b.iommu, 'invalidatePasidCache');
    submit256(b, [[0x07n | (3n << 16n) | (9n << 32n), 0n], [0x17n | (3n << 16n) | (9n << 32n), 0n], [0x37n, 0n]]);
    expect(spy.mock.calls).toEqual([
      [{ kind: 'domain', did: 3 }],
      [{ kind: 'pasid', did: 3, pasid: 9 }],
      [{ kind: 'global' }],
    ]);
  });

  it('PASID device-TLB (8) is announced with its PASID, or for every PASID with G', () => {
    const b = setup256();
    const rec = b.recordEvents();
    submit256(b, [[0x8n | (0x108n << 16n) | (7n << 32n), 0x3000n], [0x8n | (0x110n << 16n) | (7n << 32n), 0x4000n | 1n]]);
    expect(iqe(b)).toBe(false);
    expect(rec.invalidations).toEqual([
      { cache: 'device-iotlb', granularity: 'pasid', sid: 0x108, pasid: 7, addr: 0x3000, size: 0x1000, source: 'queue' },
      { cache: 'device-iotlb', granularity: 'global', sid: 0x110, addr: 0x4000, size: 0x1000, source: 'queue' },
    ]);
  });

  it('PASID device-TLB (8) times out or fails for the configured SIDs (beyond QEMU)', () => {
    const b = setup256({ ...SM, 'x-iqer': true, 'x-devtlb-timeout-sid': 0x108, 'x-devtlb-error-sid': 0x20 });
    submit256(b, [[0x8n | (0x20n << 16n), 0n], wait256(1)]);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ICE);
    expect(b.r32(Reg.IQER + 4) >>> 16).toBe(0x20);
    expect(b.peek32(STATUS)).toBe(1);
    submit256(b, [[0x8n | (0x108n << 16n) | (1n << 32n), 1n], wait256(2)]);
    expect(b.r32(Reg.FSTS) & Fsts.ITE).toBe(Fsts.ITE);
    expect(b.r32(Reg.IQER + 4) & 0xffff).toBe(0x108);
    expect(b.peek32(STATUS)).toBe(1); // the wait was aborted
  });

  it('a page-group response (9) goes to the core and on to its listeners, with or without svm', () => {
    for (const props of [SM, SVM]) {
      const b = setup256(props);
      const spy = vi.spyOn(b.iommu, 'pageGroupResponse');
      const seen: unknown[] = [];
      b.iommu.events.on('pageGroupResponse', (e) => seen.push(e));
      submit256(b, [[0x19n | (0xfn << 12n) | (0x108n << 16n) | (0x4_0000n << 32n), 0x1ffn << 3n]]);
      const resp = { rid: 0x108, pasidPresent: true, pasid: 0x4_0000, code: 0xf, prgi: 0x1ff };
      expect(spy.mock.calls).toEqual([[resp]]);
      expect(seen).toEqual([resp]);
    }
  });

  const refused: [string, Desc256][] = [
    ['PASID-IOTLB G=0', [0x06n, 0n]],
    ['PASID-IOTLB G=1', [0x16n, 0n]],
    ['PASID-IOTLB AM above MAMV', [0x36n, BigInt(MAMV + 1)]],
    ['PASID-IOTLB reserved qw1 bit 7', [0x26n, 0x80n]],
    ['PASID-cache G=2', [0x27n, 0n]],
    ['PASID-cache non-zero qw1', [0x37n, 1n]],
    ['PASID device-TLB reserved qw1 bit 1', [0x8n, 2n]],
    ['page-group response without PP', [0x9n, 0n]],
    ['page-group response reserved qw0 bit 5', [0x39n, 0n]],
  ];
  for (const [name, d] of refused) {
    it(`${name}: IQE (reserved field), nothing reaches the core`, () => {
      const b = setup256({ ...SM, 'x-iqer': true });
      const calls = [
        vi.spyOn(b.iommu, 'invalidatePasidIotlb'),
        vi.spyOn(b.iommu, 'invalidatePasidCache'),
        vi.spyOn(b.iommu, 'pageGroupResponse'),
      ];
      const rec = b.recordEvents();
      submit256(b, [wait256(1), d, wait256(2, STATUS + 4)]);
      expect(head256(b)).toBe(1);
      expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.Reserved);
      expect(b.peek32(STATUS + 4)).toBe(0);
      for (const c of calls) expect(c).not.toHaveBeenCalled();
      expect(rec.invalidations).toEqual([]);
    });
  }

  it('types 6-9 in a 128-bit queue of a scalable unit: IQE with IQEI "invalid width"', () => {
    for (const t of [0x26n, 0x37n, 0x8n, 0x19n]) {
      const b = setup({ ...SM, 'x-iqer': true });
      submit(b, [[t, 0n]]);
      expect(b.r32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.InvalidWidth);
    }
  });

  it('the wait PD bit is accepted with svm=on (ECAP.PDS), in both widths', () => {
    const pd: [bigint, bigint] = [0xa5n | (3n << 32n), BigInt(STATUS)];
    const wide = setup256(SVM);
    submit256(wide, [[...pd]]);
    expect(wide.peek32(STATUS)).toBe(3);
    const narrow = setup(SVM);
    submit(narrow, [pd]);
    expect(narrow.peek32(STATUS)).toBe(3);
    const refusing = setup256();
    submit256(refusing, [[...pd]]);
    expect(iqe(refusing)).toBe(true);
  });
});

describe('256-bit queue, random input (property)', () => {
  const SEED = 0x256d;

  it(`random 256-bit descriptors never throw; IQH stays in the queue and stops only with IQE (seed 0x${SEED.toString(16)})`, () => {
    const next = u32Stream(SEED);
    const rnd64 = () => BigInt(next()) | (BigInt(next()) << 32n);
    let errors = 0;
    let deep = 0;
    for (let round = 0; round < 40; round++) {
      const b = setup256({ ...SM, 'x-iqer': true, 'x-devtlb-timeout-sid': next() & 0xffff });
      for (let i = 0; i < 48; i++) {
        const r = rnd64();
        const templates: Desc256[] = [
          [0x12n, 0n],
          [0x25n | (r & 0xffff_ffff_0000_0000n), BigInt(STATUS + (next() % 64) * 4)],
          [0x26n + (BigInt(next() % 2) << 4n) | (r & 0x000f_ffff_ffff_0000n), (r & 0xffff_ffff_ffff_f07fn) % 0x4000_0000n & ~0x3fn | BigInt(next() % 19)],
          [0x07n + (BigInt([0, 1, 3][next() % 3]!) << 4n) | (r & 0x000f_ffff_ffff_0000n), 0n],
          [0x8n | (r & 0x000f_ffff_ffff_0000n), r & 0xffff_ffff_ffff_f801n],
          [0x19n | (r & 0x000f_ffff_ffff_f000n), r & 0xff8n],
        ];
        const d = templates[next() % templates.length]!;
        if (next() % 8 === 0) {
          const bit = next() % 256;
          const q = bit >> 6;
          d[q] = (d[q] ?? 0n) ^ (1n << BigInt(bit & 63));
        }
        put256(b, i, d);
      }
      const tail = next() % 160;
      expect(() => tail256(b, tail)).not.toThrow();
      const head = head256(b);
      expect(head).toBeLessThan(128);
      if (tail < 128 && head !== tail) expect(iqe(b)).toBe(true);
      if (iqe(b)) errors++;
      if (head >= 8) deep++;
    }
    expect(errors).toBeGreaterThan(5);
    expect(deep).toBeGreaterThan(5);
  });
});

describe('enable and disable edge cases', () => {
  it('QIE enable with a pending tail does not run while FSTS.IQE is set (QEMU checks IQE first)', () => {
    const b = setup();
    submit(b, [waitSw(1)]); // head = tail = 1, the last descriptor a wait
    b.setTail(300); // beyond the 256-entry queue: IQE
    expect(iqe(b)).toBe(true);
    b.setTail(1); // latched, not run
    expect(b.setQie(false)).toBe(false); // head == tail after a wait: disabled, IQH back to 0
    b.putDesc(Q, 0, ...waitSw(2));
    expect(b.setQie(true)).toBe(true);
    expect(b.peek32(STATUS)).toBe(1);
    expect(b.queueHead()).toBe(0);
    // Once IQE is cleared the next tail write runs the queue.
    b.w32(Reg.FSTS, Fsts.IQE);
    b.setTail(1);
    expect(b.peek32(STATUS)).toBe(2);
    expect(b.queueHead()).toBe(1);
  });

  it('refuses disable while head != tail, even when the last descriptor fetched was a wait', () => {
    const b = setup();
    submit(b, [waitSw(1)]);
    b.setTail(300); // IQE; the tail moves away from the head, the last type stays "wait"
    expect(b.queueHead()).toBe(1);
    expect(b.setQie(false)).toBe(true);
    expect(b.r32(Reg.IQH)).toBe(0x10);
  });

  it('headIndex follows IQH', () => {
    const b = setup();
    expect(b.iommu.queue.headIndex).toBe(0);
    submit(b, [WAIT_FN, WAIT_FN, WAIT_FN]);
    expect(b.iommu.queue.headIndex).toBe(3);
    expect(b.queueHead()).toBe(3);
  });
});

describe('wait descriptor flags act alone', () => {
  it('IF without SW writes no status dword, whatever the status fields hold', () => {
    const b = setup();
    b.poke64(STATUS, 0xffff_ffff_ffff_ffffn);
    b.w32(Reg.IECTL, 0);
    submit(b, [[0x15n | (0x1234n << 32n), BigInt(STATUS)]]);
    expect(b.peek32(STATUS)).toBe(0xffff_ffff);
    expect(b.msis).toHaveLength(1);
  });

  it('SW without IF raises no completion event: ICS.IWC and IECTL.IP stay clear', () => {
    const b = setup();
    b.w32(Reg.IECTL, 0);
    submit(b, [waitSw(3)]);
    expect(b.peek32(STATUS)).toBe(3);
    expect(b.r32(Reg.ICS)).toBe(0);
    expect(b.r32(Reg.IECTL)).toBe(0);
    expect(b.msis).toHaveLength(0);
  });
});

describe('tracing', () => {
  /** A unit whose queue trace lines (vtd_inv_* and vtd_err_*) land in `lines`. */
  function traced(props: PropValues = {}): { b: VtdBench; lines: string[] } {
    const lines: string[] = [];
    const tracer = new PatternTracer(['vtd_inv_*', 'vtd_err_*'], (l) => void lines.push(l));
    const b = new VtdBench({ props: { 'aw-bits': 39, intremap: 'on', ...props }, tracer });
    return { b, lines };
  }

  it('enable, tail, descriptors, status write, completion interrupt and disable', () => {
    const { b, lines } = traced();
    b.w32(Reg.IECTL, 0);
    b.w32(Reg.IEDATA, 0x41);
    b.w32(Reg.IEADDR, 0xfee0_1000);
    expect(b.enableQueue(Q)).toBe(true);
    submit(b, [waitSw(7), WAIT_IF]);
    expect(b.setQie(false)).toBe(false);
    expect(lines).toEqual([
      'vtd_inv_qi_enable enable=1 base=0x100000 size=0x100',
      'vtd_inv_qi_tail tail=0x2',
      'vtd_inv_desc head=0x0 type=0x5',
      'vtd_inv_desc_wait_sw addr=0x200000 data=0x7',
      'vtd_inv_desc head=0x1 type=0x5',
      'vtd_inv_desc_wait_irq addr=0xfee01000 data=0x41',
      'vtd_inv_qi_enable enable=0',
    ]);
  });

  it('a refused disable, a tail beyond the queue and a bad descriptor', () => {
    const { b, lines } = traced();
    b.enableQueue(Q);
    submit(b, [[0x11n, 0n]]);
    expect(b.setQie(false)).toBe(true);
    b.setTail(300);
    b.w32(Reg.FSTS, Fsts.IQE);
    b.putDesc(Q, 1, 0xen, 0n);
    b.setTail(2);
    expect(lines.slice(1)).toEqual([
      'vtd_inv_qi_tail tail=0x1',
      'vtd_inv_desc head=0x0 type=0x1',
      'vtd_inv_desc_cc_global',
      'vtd_err_qi_disable head=0x1 tail=0x1 lastType=0x1',
      'vtd_inv_qi_tail tail=0x12c',
      'vtd_err_qi_tail tail=0x12c size=0x100',
      'vtd_inv_qi_tail tail=0x2',
      'vtd_err_inv_desc head=0x1 type=0xe error=unknown-type',
    ]);
  });

  it('an IQT with bit 4 set in a 256-bit queue', () => {
    const { b, lines } = traced(SM);
    b.w64(Reg.IQA, BigInt(Q | Iqa.DW));
    b.w32(Reg.IQT, 0x30);
    expect(lines).toEqual(['vtd_err_qi_tail_rsvd iqt=0x30']);
  });

  it('a wait aborted while a device-TLB invalidation timed out', () => {
    const { b, lines } = traced({ 'x-devtlb-timeout-sid': 0x108 });
    b.enableQueue(Q);
    submit(b, [[0x3n | (0x108n << 32n), 0n], waitSw(1)]);
    expect(lines).toContain('vtd_inv_desc_wait_abort head=0x1');
    expect(lines.some((l) => l.startsWith('vtd_inv_desc_wait_sw'))).toBe(false);
  });
});
