/**
 * Re-entrant DMA into the IOMMU's registers (issue 13): no device wedged, the
 * spec's / QEMU 11.1's visible result, and a trace line per refused access.
 *
 * Differential (vtemu in-process, and QEMU 11.1 when installed; every
 * checked reply is also an expectation):
 *  - a wait descriptor whose status write targets the unit's own IQT is
 *    refused by the re-entrancy guard (the unit is inside the IQT write):
 *    the write fails, so the queue stops on it with FSTS.IQE, IQH on the
 *    descriptor, as QEMU's vtd_process_wait_desc does; after IQE is cleared
 *    and the descriptor fixed, the queue goes on;
 *  - edu's DMA writes IQT (translation off), so the unit processes its queue
 *    from inside edu's DMA: one wait's status write lands on edu's BAR
 *    (allowed: edu is not inside one of its own register accesses, its DMA
 *    runs from a timer, as in QEMU), the next targets IQT and fails (IQE).
 *    edu's command completes all the same (run bit clear, interrupt 0x100
 *    raised as asked) and a following normal DMA works;
 *  - edu's DMA writes GCMD.SRTP: latched as from the CPU.
 * Through the spawned CLI: `-trace memory_region_reentrant_access` prints
 * the refusal.
 */
import { describe, expect, it } from 'vitest';
import { checkTranscripts, hex, needQemu, VtemuCliRunner, type Step } from './harness/index.js';
import { get32, leHex, regR32 as rl, regR64 as rq, regW32 as wl, regW64 as wq, step } from './support/qtest-steps.js';

const haveQemu = needQemu('11.1', 'VT-d re-entrancy differential tests');

const ARGS = ['-machine', 'q35', '-device', 'intel-iommu,aw-bits=39', '-device', 'edu,dma_mask=0xffffffffffffffff'];
const TIMEOUT = 60_000;

const VTD = 0xfed9_0000;
const R = { GCMD: 0x18, GSTS: 0x1c, FSTS: 0x34, IQH: 0x80, IQT: 0x88, IQA: 0x90, ICS: 0x9c } as const;
const GCMD = { SRTP: 0x4000_0000, QIE: 0x0400_0000 } as const;
const FSTS_IQE = 0x10;
const IQ = 0x10_0000;
const STATUS = 0x18_0000;
const SRC = 0x20_0000;
const OUT = 0x30_0000;
const EDU_BAR = 0xe000_0000;
const EDU_DEVFN = 0x08;
const EDU = { LIVENESS: 0x04, IRQ_STATUS: 0x24, IRQ_ACK: 0x64, SRC: 0x80, DST: 0x88, CNT: 0x90, CMD: 0x98 } as const;
const EDU_BUF = 0x40000;
/** edu DMA command bits: run, buffer to RAM, raise interrupt 0x100. */
const CMD = { RUN: 1, TO_RAM: 2, IRQ: 4 } as const;
const EDU_IRQ_DMA = 0x100;

/** A wait descriptor writing `data` to `addr` (SW). */
const wait = (data: number, addr: number): [bigint, bigint] => [0x25n | (BigInt(data) << 32n), BigInt(addr)];

/** Descriptors written at queue indexes from `index`. */
const descs = (index: number, list: [bigint, bigint][]): Step => step(`write ${hex(IQ + index * 16)} ${hex(list.length * 16)} 0x${leHex(list.flat())}`);

/** edu at 00:01.0: BAR0, memory and bus-master enable. */
function eduSetup(): Step[] {
  const cfg = (off: number) => hex((0x8000_0000 | (EDU_DEVFN << 8) | off) >>> 0);
  return [step(`outl 0xcf8 ${cfg(0x10)}`), step(`outl 0xcfc ${hex(EDU_BAR)}`), step(`outl 0xcf8 ${cfg(0x04)}`), step('outw 0xcfc 0x6')];
}

/** Runs one edu DMA (src, dst, count, cmd), waits its 100 ms and checks that the command completed as `done`. */
function eduDma(src: number, dst: number, count: number, cmd: number): Step[] {
  const e = (off: number) => hex(EDU_BAR + off);
  return [
    step(`writeq ${e(EDU.SRC)} ${hex(src)}`),
    step(`writeq ${e(EDU.DST)} ${hex(dst)}`),
    step(`writeq ${e(EDU.CNT)} ${hex(count)}`),
    step(`writeq ${e(EDU.CMD)} ${hex(cmd)}`),
    { wait: true, ns: 200_000_000 },
    step(`readq ${e(EDU.CMD)}`, cmd & ~CMD.RUN),
  ];
}

/** QI on with the queue at IQ (256 entries). */
const enableQi = (): Step[] => [wq(R.IQA, IQ), wq(R.IQT, 0), wl(R.GCMD, GCMD.QIE), rl(R.GSTS, GCMD.QIE)];

async function check(steps: Step[]): Promise<void> {
  const r = await checkTranscripts(ARGS, steps, { qemu: haveQemu });
  expect(r.qemu !== null).toBe(haveQemu);
  expect(r.unmet).toEqual([]);
  expect(r.difference).toBeNull();
}

describe('re-entrant DMA into the IOMMU registers vs QEMU 11.1', () => {
  it('a wait status write onto the unit\'s own IQT fails: IQE, the queue stops there, and recovers', async () => {
    await check([
      ...enableQi(),
      descs(0, [wait(0x11, STATUS), wait(0x20, VTD + R.IQT), wait(0x33, STATUS + 4)]),
      wq(R.IQT, 0x30),
      rq(R.IQH, 0x10),
      rq(R.IQT, 0x30),
      rl(R.FSTS, FSTS_IQE),
      get32(STATUS, 0x11),
      get32(STATUS + 4, 0),
      // Fix the descriptor, clear IQE, move IQT again: the queue goes on.
      descs(1, [wait(0x22, STATUS + 8)]),
      wl(R.FSTS, FSTS_IQE),
      rl(R.FSTS, 0),
      wq(R.IQT, 0x30),
      rq(R.IQH, 0x30),
      get32(STATUS + 8, 0x22),
      get32(STATUS + 4, 0x33),
      rl(R.FSTS, 0),
    ]);
  }, TIMEOUT);

  it('edu DMA onto IQT: status writes reach edu\'s BAR, one onto IQT fails (IQE); edu completes, interrupts, and works again', async () => {
    await check([
      ...eduSetup(),
      ...enableQi(),
      descs(0, [wait(0x1234_5678, EDU_BAR + EDU.LIVENESS), wait(0x30, VTD + R.IQT)]),
      // The buffer's first qword is the new tail (0x20): RAM -> buffer, then buffer -> IQT.
      step(`writeq ${hex(SRC)} 0x20`),
      ...eduDma(SRC, EDU_BUF, 8, CMD.RUN),
      ...eduDma(EDU_BUF, VTD + R.IQT, 8, CMD.RUN | CMD.TO_RAM | CMD.IRQ),
      rq(R.IQT, 0x20),
      rq(R.IQH, 0x10),
      rl(R.FSTS, FSTS_IQE),
      step(`readl ${hex(EDU_BAR + EDU.LIVENESS)}`, ~0x1234_5678 >>> 0),
      step(`readl ${hex(EDU_BAR + EDU.IRQ_STATUS)}`, EDU_IRQ_DMA),
      step(`writel ${hex(EDU_BAR + EDU.IRQ_ACK)} ${hex(EDU_IRQ_DMA)}`),
      // A normal DMA afterwards: RAM -> buffer -> RAM.
      step(`writel ${hex(SRC + 0x100)} 0xcafef00d`),
      ...eduDma(SRC + 0x100, EDU_BUF + 0x100, 4, CMD.RUN),
      ...eduDma(EDU_BUF + 0x100, OUT, 4, CMD.RUN | CMD.TO_RAM | CMD.IRQ),
      get32(OUT, 0xcafe_f00d),
      step(`readl ${hex(EDU_BAR + EDU.IRQ_STATUS)}`, EDU_IRQ_DMA),
      // The unit answers and takes a valid invalidation + wait after IQE is cleared.
      descs(1, [[0x11n, 0n], wait(0x77, STATUS)]),
      wl(R.FSTS, FSTS_IQE),
      wq(R.IQT, 0x30),
      rq(R.IQH, 0x30),
      get32(STATUS, 0x77),
      rl(R.FSTS, 0),
    ]);
  }, TIMEOUT);

  it('edu DMA onto GCMD latches SRTP like a CPU write', async () => {
    await check([
      ...eduSetup(),
      step(`writel ${hex(SRC)} ${hex(GCMD.SRTP)}`),
      ...eduDma(SRC, EDU_BUF, 4, CMD.RUN),
      ...eduDma(EDU_BUF, VTD + R.GCMD, 4, CMD.RUN | CMD.TO_RAM),
      rl(R.GSTS, GCMD.SRTP),
      rl(R.FSTS, 0),
    ]);
  }, TIMEOUT);
});

describe('tracing', () => {
  // Needs the machine's memory AddressSpace to get the machine tracer (src/machine/q35.ts:
  // `new AddressSpace('memory', this.systemMemory, { tracer: this.tracer })`).
  it('-trace memory_region_reentrant_access prints each refused re-entrant access', async () => {
    const v = VtemuCliRunner.start(['-device', 'intel-iommu,aw-bits=39', '-trace', 'memory_region_reentrant_access', '-accel', 'qtest']);
    try {
      for (const c of [
        `writeq ${hex(VTD + R.IQA)} ${hex(IQ)}`,
        `writeq ${hex(VTD + R.IQT)} 0x0`,
        `writel ${hex(VTD + R.GCMD)} ${hex(GCMD.QIE)}`,
        `write ${hex(IQ)} 0x10 0x${leHex(wait(0x10, VTD + R.IQT))}`,
        `writeq ${hex(VTD + R.IQT)} 0x10`,
      ]) {
        expect(await v.command(c)).toBe('OK');
      }
      expect(await v.command(`readl ${hex(VTD + R.FSTS)}`)).toBe('OK 0x0000000000000010');
    } finally {
      await v.close();
    }
    expect(v.stderr).toMatch(/^memory_region_reentrant_access space=memory region=intel_iommu offset=0x88 size=0x4 write=1$/m);
  }, TIMEOUT);
});
