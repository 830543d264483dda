/**
 * The fresh-process snapshot round trip itself (snapshot-process.ts): a
 * scenario with a DMA and a factorial pending on timers, the IOMMU's queue
 * set up, INTx lines seen through irq_intercept_in (a session command the
 * new processes must get again) and a system_reset (QMP in the process)
 * goes through three processes with the uninterrupted transcript; and the
 * comparisons do report a difference when there is one.
 */
import { describe, expect, it } from 'vitest';
import { hex, runTranscript, VtemuRunner, type Step, type TranscriptLine } from './index.js';
import { processSnapshotMode, processSnapshotRoundTrip } from './snapshot-process.js';

const ARGS = ['-accel', 'qtest', '-machine', 'q35', '-m', '256M', '-device', 'intel-iommu', '-device', 'edu,addr=3.0'];
const EDU = 0xfe00_0000;
const CFG = (reg: number): string => hex((0x8000_0000 | (3 << 11) | reg) >>> 0);

const STEPS: Step[] = [
  'irq_intercept_in ioapic',
  `outl 0xcf8 ${CFG(0x10)}`, `outl 0xcfc ${hex(EDU)}`,
  `outl 0xcf8 ${CFG(0x04)}`, 'outw 0xcfc 0x6',
  'writel 0x100000 0x12345678', 'writeq 0x100008 0xfeedfacecafebeef',
  `writel ${hex(EDU + 0x08)} 0x2000000`,
  `writeq ${hex(EDU + 0x80)} 0x100000`, `writeq ${hex(EDU + 0x88)} 0x40000`,
  `writeq ${hex(EDU + 0x90)} 0x10`, `writeq ${hex(EDU + 0x98)} 0x1`,
  'writel 0xfed90090 0x200000', 'writel 0xfed90018 0x4000000',
  // Cut 1 (step 14): the DMA and the factorial are pending.
  `readl ${hex(EDU + 0x20)}`, `readq ${hex(EDU + 0x98)}`,
  `writel ${hex(EDU + 0x60)} 0x1`, `readl ${hex(EDU + 0x24)}`,
  { wait: true, ns: 200_000_000 },
  `readl ${hex(EDU + 0x08)}`, `readl ${hex(EDU + 0x20)}`, `readq ${hex(EDU + 0x98)}`,
  `writel ${hex(EDU + 0x64)} 0xffffffff`,
  `writeq ${hex(EDU + 0x80)} 0x40000`, `writeq ${hex(EDU + 0x88)} 0x300000`, `writeq ${hex(EDU + 0x98)} 0x3`,
  { wait: true, ns: 200_000_000 },
  // Cut 2 (step 27).
  'readq 0x300008', 'readq 0x100000', 'readl 0xfed9001c', 'readq 0xfed90090',
  `writel ${hex(EDU + 0x60)} 0x4`,
  { reset: true },
  'readl 0xfed9001c', 'readq 0xfed90090', 'readq 0x100000',
  `outl 0xcf8 ${CFG(0x10)}`, 'inl 0xcfc', 'clock_step',
  // Cut 3 (step 39).
  `outl 0xcf8 ${CFG(0x10)}`, `outl 0xcfc ${hex(EDU)}`, `outl 0xcf8 ${CFG(0x04)}`, 'outw 0xcfc 0x6',
  `writel ${hex(EDU + 0x60)} 0x8`, `readl ${hex(EDU + 0x24)}`, `writel ${hex(EDU + 0x64)} 0x8`,
  `readl ${hex(EDU + 0x04)}`, 'readl 0x100000', 'clock_step 1000',
];

/** The scenario on one in-process machine, never cut. */
async function uninterrupted(): Promise<TranscriptLine[]> {
  const v = VtemuRunner.start(ARGS, { realClock: true });
  try {
    return await runTranscript(v, STEPS);
  } finally {
    await v.close();
  }
}

describe('snapshot into a fresh process', () => {
  it('three processes in a row give the uninterrupted transcript, IRQ lines and a reset included', async () => {
    const whole = await uninterrupted();
    // What the cuts carry over really shows: IRQ lines after the first cut, the DMA and factorial done there.
    const irqs = whole.filter((l) => l.step > 14 && l.reply.startsWith('IRQ raise'));
    expect(irqs.length).toBeGreaterThan(0);
    expect(whole.find((l) => l.step === 35)!.reply).toBe('OK 0x0000000012345678');
    expect(STEPS[32]).toEqual({ reset: true });
    const r = await processSnapshotRoundTrip(ARGS, STEPS, whole, {}, [14, 27, 39]);
    expect(r).toEqual({ problem: null, cacheSensitive: false, cuts: [14, 27, 39] });
  });

  it('reports a transcript that differs before the first cut, and a classification snapshot.ts disagrees with', async () => {
    const whole = await uninterrupted();
    const early = whole.map((l) => (l.step === 5 ? { ...l, reply: 'OK 0x1' } : l));
    expect((await processSnapshotRoundTrip(ARGS, STEPS, early, {}, [14])).problem).toMatch(/before the first cut: transcripts differ/);
    // A difference after the cut is what a stale cache read across it looks like: allowed, unless snapshot.ts saw none.
    const late = whole.map((l) => (l.step === 20 ? { ...l, reply: 'OK 0x1' } : l));
    const sensitive = await processSnapshotRoundTrip(ARGS, STEPS, late, {}, [14]);
    expect(sensitive).toEqual({ problem: null, cacheSensitive: true, cuts: [14] });
    expect((await processSnapshotRoundTrip(ARGS, STEPS, late, { expectCacheSensitive: false }, [14])).problem).toMatch(/in-process round trip found the scenario not cache-sensitive/);
  });

  it('a process that cannot start from the state is a problem, not a throw', async () => {
    // Another memory size for the processes than for the saved machine: -incoming refuses the state.
    const r = await processSnapshotRoundTrip(ARGS, STEPS, await uninterrupted(), { processArgs: ['-m', '512M'] }, [14]);
    expect(r.problem).toMatch(/vtemu exited \(1\) before its QMP socket opened: vtemu: -incoming file:.*another configuration/);
  });

  it('VTEMU_SNAPSHOT_PROCESS takes all, sample or 0', () => {
    const old = process.env['VTEMU_SNAPSHOT_PROCESS'];
    try {
      for (const [v, mode] of [['all', 'all'], ['sample', 'sample'], ['0', 'off'], ['', 'sample']] as const) {
        process.env['VTEMU_SNAPSHOT_PROCESS'] = v;
        expect(processSnapshotMode()).toBe(mode);
      }
      process.env['VTEMU_SNAPSHOT_PROCESS'] = 'yes';
      expect(() => processSnapshotMode()).toThrow('VTEMU_SNAPSHOT_PROCESS=yes: expected all, sample or 0');
    } finally {
      if (old === undefined) delete process.env['VTEMU_SNAPSHOT_PROCESS'];
      else process.env['VTEMU_SNAPSHOT_PROCESS'] = old;
    }
  });
});
