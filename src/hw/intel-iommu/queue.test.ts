import { describe, expect, it } from 'vitest';
import { TestCore } from './queue-testing.js';
import { MAMV } from './caps.js';
import { Iqei, Iqer } from './queue.js';
import { EventCtl, Fsts, Ics, Reg } from './reg-layout.js';
import type { InvalidateEvent } from './events.js';

const Q = 0x10_0000; // queue base
const STATUS = 0x20_0000; // status dword

/** Wait descriptor with SW: status `data` to `addr`. */
const waitSw = (data: number, addr = STATUS): [bigint, bigint] => [0x25n | (BigInt(data) << 32n), BigInt(addr)];
const WAIT_IF: [bigint, bigint] = [0x15n, 0n];
const WAIT_FN: [bigint, bigint] = [0x45n, 0n];

function setup(props = {}): TestCore {
  const c = new TestCore(props);
  c.enableQueue(Q);
  return c;
}

function submit(c: TestCore, descs: [bigint, bigint][], from = c.head()): void {
  descs.forEach(([a, b], i) => c.putDesc(Q, (from + i) % 256, a, b));
  c.setTail((from + descs.length) % 256);
}

describe('QI enable / disable', () => {
  it('enables without IQA programmed (kvm-unit-tests does) and reports QIES', () => {
    const c = new TestCore();
    expect(c.setQie(true)).toBe(true);
    expect(c.head()).toBe(0);
  });

  it('latches IQA at enable; IQA reads show the latched base with the written QS', () => {
    const c = new TestCore();
    c.write32(Reg.IQA, Q | 0x801);
    expect(c.read32(Reg.IQA)).toBe(0x1);
    c.setQie(true);
    expect(c.read32(Reg.IQA)).toBe(Q | 0x1);
    c.write32(Reg.IQA, 0x30_0000 | 0x2);
    expect(c.read32(Reg.IQA)).toBe(Q | 0x2);
    // The queue still runs from the latched base.
    submit(c, [waitSw(7)]);
    expect(c.mem32(STATUS)).toBe(7);
  });

  it('ignores IQA.DW without scalable mode: 128-bit descriptors, IQH in 16-byte units (QEMU)', () => {
    const c = new TestCore();
    c.write32(Reg.IQA, Q | 0x800);
    c.setQie(true);
    expect(c.read32(Reg.IQA)).toBe(Q); // DW reads 0 (QEMU 7.2)
    submit(c, [waitSw(1), waitSw(2, STATUS + 4)]);
    expect(c.read32(Reg.IQH)).toBe(0x20);
    expect([c.mem32(STATUS), c.mem32(STATUS + 4)]).toEqual([1, 2]);
    expect(c.iqe()).toBe(false);
  });

  it('processes at once when IQT is already non-zero at enable', () => {
    const c = new TestCore();
    c.write32(Reg.IQA, Q);
    c.putDesc(Q, 0, ...waitSw(0x55));
    c.setTail(1);
    expect(c.mem32(STATUS)).toBe(0);
    c.setQie(true);
    expect(c.mem32(STATUS)).toBe(0x55);
    expect(c.head()).toBe(1);
  });

  it('refuses disable unless head == tail and the last descriptor was a wait; then IQH = 0', () => {
    const c = setup();
    expect(c.setQie(false)).toBe(true); // nothing fetched yet: last type is none
    submit(c, [[0x11n, 0n]]);
    expect(c.setQie(false)).toBe(true);
    submit(c, [waitSw(1)]);
    expect(c.head()).toBe(2);
    expect(c.setQie(false)).toBe(false);
    expect(c.head()).toBe(0);
    expect(c.read32(Reg.IQH)).toBe(0);
  });

  it('refuses disable while descriptors are pending (IQE stopped the queue)', () => {
    const c = setup();
    submit(c, [waitSw(1), [0xen, 0n]]);
    expect(c.iqe()).toBe(true);
    expect(c.setQie(false)).toBe(true);
  });
});

describe('wait descriptor', () => {
  it('SW writes the status dword and advances IQH', () => {
    const c = setup();
    submit(c, [waitSw(0xdead_beef)]);
    expect(c.mem32(STATUS)).toBe(0xdead_beef);
    expect(c.head()).toBe(1);
    expect(c.read32(Reg.IQH)).toBe(0x10);
  });

  it('IF with IECTL masked: ICS.IWC and IECTL.IP, no MSI; unmasking sends it', () => {
    const c = setup();
    c.write32(Reg.IEDATA, 0x4041);
    c.write32(Reg.IEADDR, 0xfee0_1000);
    submit(c, [WAIT_IF]);
    expect(c.read32(Reg.ICS)).toBe(Ics.IWC);
    expect(c.read32(Reg.IECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    expect(c.msis).toHaveLength(0);
    c.write32(Reg.IECTL, 0);
    expect(c.msis).toEqual([{ address: 0xfee0_1000, data: 0x4041, origin: { kind: 'iommu' } }]);
    expect(c.read32(Reg.IECTL)).toBe(0);
  });

  it('IF unmasked: MSI at once, IP cleared; a second IF while IWC is set does nothing', () => {
    const c = setup();
    c.write32(Reg.IECTL, 0);
    c.write32(Reg.IEDATA, 0x31);
    c.write32(Reg.IEADDR, 0xfee0_0000);
    submit(c, [WAIT_IF, WAIT_IF]);
    expect(c.msis).toHaveLength(1);
    expect(c.read32(Reg.IECTL)).toBe(0);
    c.write32(Reg.ICS, Ics.IWC);
    expect(c.read32(Reg.ICS)).toBe(0);
    submit(c, [WAIT_IF]);
    expect(c.msis).toHaveLength(2);
  });

  it('clearing ICS.IWC drops a pending (masked) completion interrupt', () => {
    const c = setup();
    submit(c, [WAIT_IF]);
    c.write32(Reg.ICS, Ics.IWC);
    expect(c.read32(Reg.IECTL)).toBe(EventCtl.IM >>> 0);
    c.write32(Reg.IECTL, 0);
    expect(c.msis).toHaveLength(0);
  });

  it('SW and IF together do both (QEMU 7.2 would assert)', () => {
    const c = setup();
    c.write32(Reg.IECTL, 0);
    submit(c, [[0x35n | (9n << 32n), BigInt(STATUS)]]);
    expect(c.mem32(STATUS)).toBe(9);
    expect(c.msis).toHaveLength(1);
  });

  it('FN alone is a valid no-op', () => {
    const c = setup();
    submit(c, [WAIT_FN]);
    expect(c.iqe()).toBe(false);
    expect(c.head()).toBe(1);
  });

  it('a status write to unassigned memory is a queue error', () => {
    const c = setup();
    submit(c, [waitSw(1, 0xf000_0000)]);
    expect(c.iqe()).toBe(true);
    expect(c.head()).toBe(0);
  });
});

describe('invalidation descriptors', () => {
  it('context-cache global / domain / device with FM', () => {
    const c = setup();
    submit(c, [[0x11n, 0n], [0x21n | (3n << 16n), 0n], [0x31n | (4n << 16n) | (0x108n << 32n) | (2n << 48n), 0n]]);
    expect(c.contextInv).toEqual([
      { kind: 'global' }, { kind: 'domain', did: 3 }, { kind: 'device', did: 4, sid: 0x108, fm: 2 },
    ]);
  });

  it('IOTLB global / domain / page with AM and IH', () => {
    const c = setup();
    submit(c, [[0x12n, 0n], [0x22n | (5n << 16n), 0n], [0x32n | (6n << 16n), 0x4000_0000n | 0x40n | 2n]]);
    expect(c.iotlbInv).toEqual([
      { kind: 'global' }, { kind: 'domain', did: 5 }, { kind: 'page', did: 6, addr: 0x4000_0000, am: 2, ih: true },
    ]);
  });

  it('IEC global and index-selective reach the interrupt entry cache', () => {
    const c = setup();
    const seen: InvalidateEvent[] = [];
    c.events.on('invalidate', (e) => seen.push(e));
    submit(c, [[0x4n, 0n], [0x14n | (2n << 27n) | (0x40n << 32n), 0n]]);
    expect(seen).toEqual([
      { cache: 'iec', granularity: 'global', source: 'queue' },
      { cache: 'iec', granularity: 'index', addr: 0x40, am: 2, source: 'queue' },
    ]);
  });

  it('device-TLB invalidation is accepted and announced', () => {
    const c = setup();
    const seen: InvalidateEvent[] = [];
    c.events.on('invalidate', (e) => seen.push(e));
    submit(c, [[0x3n | (0x10n << 32n), 0x5000n]]);
    expect(c.iqe()).toBe(false);
    expect(seen).toEqual([{ cache: 'device-iotlb', granularity: 'page', sid: 0x10, addr: 0x5000, source: 'queue' }]);
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
      const c = setup();
      submit(c, [waitSw(1), bad, waitSw(2)]);
      expect(c.iqe()).toBe(true);
      expect(c.faultStatus).toEqual([Fsts.IQE]);
      expect(c.head()).toBe(1);
      expect(c.mem32(STATUS)).toBe(1);
      // Tail writes are latched but nothing runs while IQE is set.
      c.putDesc(Q, 3, ...waitSw(3));
      c.putDesc(Q, 1, ...waitSw(9));
      c.setTail(4);
      expect(c.head()).toBe(1);
      expect(c.mem32(STATUS)).toBe(1);
      expect(c.faultStatus).toEqual([Fsts.IQE]);
      // Software replaces the bad descriptor (as Linux does), clears IQE, rewrites the tail.
      c.putDesc(Q, 1, ...waitSw(4));
      c.write32(Reg.FSTS, Fsts.IQE);
      expect(c.iqe()).toBe(false);
      expect(c.head()).toBe(1); // clearing IQE alone does not restart (QEMU)
      c.setTail(4);
      expect(c.head()).toBe(4);
      expect(c.mem32(STATUS)).toBe(3);
    });
  }

  it('tail beyond the queue size: IQE, nothing processed', () => {
    const c = setup(); // QS 0: 256 entries
    c.putDesc(Q, 0, ...waitSw(1));
    c.setTail(300);
    expect(c.iqe()).toBe(true);
    expect(c.head()).toBe(0);
    expect(c.mem32(STATUS)).toBe(0);
  });

  it('a larger queue (QS 1) accepts that tail', () => {
    const c = new TestCore();
    c.enableQueue(Q, 1);
    for (let i = 0; i < 300; i++) c.putDesc(Q, i, ...WAIT_FN);
    c.setTail(300);
    expect(c.iqe()).toBe(false);
    expect(c.head()).toBe(300);
  });

  it('an unreadable descriptor: IQE', () => {
    const c = new TestCore();
    c.enableQueue(0xf000_0000);
    c.setTail(1);
    expect(c.iqe()).toBe(true);
    expect(c.head()).toBe(0);
  });

  it('x-iqer records IQEI and clears it with IQE', () => {
    const c = setup({ 'x-iqer': true });
    submit(c, [[0x12n | (1n << 8n), 0n]]);
    expect(c.read32(Reg.IQER) & Iqer.IQEI_MASK).toBe(Iqei.Reserved);
    c.write32(Reg.FSTS, Fsts.IQE);
    expect(c.read32(Reg.IQER)).toBe(0);
    c.putDesc(Q, 0, 0xfn, 0n);
    c.setTail(1);
    expect(c.read32(Reg.IQER)).toBe(Iqei.InvalidType);
  });

  it('without x-iqer, IQER reads 0 as in QEMU', () => {
    const c = setup();
    submit(c, [[0xfn, 0n]]);
    expect(c.read32(Reg.IQER)).toBe(0);
  });
});

describe('wrap-around', () => {
  it('processes across the end of the queue back to index 0', () => {
    const c = setup();
    for (let i = 0; i < 250; i++) c.putDesc(Q, i, ...WAIT_FN);
    c.setTail(250);
    expect(c.head()).toBe(250);
    submit(c, [WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, WAIT_FN, waitSw(0x77), waitSw(0x78)]);
    expect(c.head()).toBe(2);
    expect(c.mem32(STATUS)).toBe(0x78);
    expect(c.iqe()).toBe(false);
  });
});

describe('device-TLB invalidation errors (beyond QEMU)', () => {
  it('time-out: FSTS.ITE, ITESID, waits aborted until ITE is cleared', () => {
    const c = setup({ 'x-iqer': true, 'x-devtlb-timeout-sid': 0x108 });
    submit(c, [[0x3n | (0x108n << 32n), 0n], waitSw(1)]);
    expect(c.read32(Reg.FSTS) & Fsts.ITE).toBe(Fsts.ITE);
    expect(c.faultStatus).toEqual([Fsts.ITE]);
    expect(c.read32(Reg.IQER + 4) & 0xffff).toBe(0x108);
    expect(c.mem32(STATUS)).toBe(0); // aborted
    expect(c.head()).toBe(2);
    c.write32(Reg.FSTS, Fsts.ITE);
    expect(c.read32(Reg.FSTS) & Fsts.ITE).toBe(0);
    expect(c.read32(Reg.IQER + 4)).toBe(0);
    submit(c, [waitSw(2)]);
    expect(c.mem32(STATUS)).toBe(2);
  });

  it('other SIDs are not affected', () => {
    const c = setup({ 'x-devtlb-timeout-sid': 0x108 });
    submit(c, [[0x3n | (0x110n << 32n), 0n], waitSw(1)]);
    expect(c.read32(Reg.FSTS)).toBe(0);
    expect(c.mem32(STATUS)).toBe(1);
  });

  it('completion error: FSTS.ICE and ICESID, processing goes on', () => {
    const c = setup({ 'x-iqer': true, 'x-devtlb-error-sid': 0x20 });
    submit(c, [[0x3n | (0x20n << 32n), 0n], waitSw(5)]);
    expect(c.read32(Reg.FSTS) & Fsts.ICE).toBe(Fsts.ICE);
    expect(c.read32(Reg.IQER + 4) >>> 16).toBe(0x20);
    expect(c.mem32(STATUS)).toBe(5);
  });
});

describe('reset', () => {
  it('forgets the queue state', () => {
    const c = setup();
    submit(c, [waitSw(1)]);
    c.regs.reset();
    c.hooks.reset?.();
    c.regs.setClear32(Reg.GSTS, 0, 0xffff_ffff);
    expect(c.read32(Reg.IQA)).toBe(0);
    expect(c.head()).toBe(0);
    // Enabling again without IQA uses base 0.
    c.setQie(true);
    c.putDesc(0, 0, ...waitSw(0x99));
    c.setTail(1);
    expect(c.mem32(STATUS)).toBe(0x99);
  });
});

describe('random input (property)', () => {
  /** A small deterministic PRNG (xorshift32). */
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x;
    };
  }

  it('random descriptors never throw; IQH stays in the queue and stops only with IQE', () => {
    const next = rng(0x5eed);
    let errors = 0;
    let deep = 0;
    for (let round = 0; round < 50; round++) {
      const c = setup({ 'x-iqer': true, 'x-devtlb-timeout-sid': next() & 0xffff });
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
        c.putDesc(Q, i, qw0, qw1);
      }
      const tail = next() % 300;
      expect(() => c.setTail(tail)).not.toThrow();
      const head = c.head();
      expect(head).toBeLessThan(256);
      if (tail < 256 && head !== tail) expect(c.iqe()).toBe(true);
      if (c.iqe()) errors++;
      if (head >= 8) deep++;
    }
    // The generator must exercise both paths.
    expect(errors).toBeGreaterThan(5);
    expect(deep).toBeGreaterThan(5);
  });
});
