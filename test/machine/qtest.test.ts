/**
 * Whole-machine qtest tests on vtemu: error replies for what QEMU 7.2 would
 * abort on, reset equivalence (a reset machine reads like a fresh one), and
 * the same transcript through the in-process server and the spawned CLI.
 */
import { describe, expect, it } from 'vitest';
import { firstDifference, runTranscript, VtemuCliRunner, VtemuRunner, type Step } from '../harness/index.js';

const MACHINE = ['-device', 'intel-iommu,aw-bits=39', '-device', 'edu'];

/** Reads that describe the visible state: VT-d registers, PCI config of 00:01.0 / 00:00.0, RAM. */
const STATE_READS: Step[] = [
  'readl 0xfed90000',
  'readq 0xfed90008',
  'readq 0xfed90010',
  'readl 0xfed9001c',
  'readq 0xfed90020',
  'readl 0xfed90034',
  'readl 0xfed90038',
  'readl 0xfed9003c',
  'readl 0xfed90040',
  'readq 0xfed90228',
  'outl 0xcf8 0x80000800',
  'inl 0xcfc',
  'outl 0xcf8 0x80000804',
  'inl 0xcfc',
  'outl 0xcf8 0x80000810',
  'inl 0xcfc',
  'outl 0xcf8 0x80000000',
  'inl 0xcfc',
  'outw 0x510 0x0',
  'inb 0x511',
];

const DIRTY: Step[] = [
  'writel 0xfed90040 0xfee00000',
  'writel 0xfed9003c 0x44',
  'writel 0xfed90038 0x0',
  'writeq 0xfed90020 0x1000000',
  'writel 0xfed90018 0x40000000',
  'outl 0xcf8 0x80000810',
  'outl 0xcfc 0xe0000000',
  'outl 0xcf8 0x80000804',
  'outl 0xcfc 0x6',
  'writel 0xe0000004 0x12345678',
  'outw 0x510 0x1',
];

describe('qtest on vtemu', () => {
  it('answers errors where QEMU 7.2 aborts, then carries on', async () => {
    const v = VtemuRunner.start(MACHINE);
    try {
      for (const bad of ['read 0x1000 0', 'read 0x1000', 'readb', 'readl zz', 'writeq 0x1000 0x10000000000000000', 'memset 0x200 3 q', 'outb 0x80', 'b64read 0x1000 1k']) {
        expect(await v.command(bad), bad).toMatch(/^(FAIL|ERR) /);
      }
      expect(await v.command('write 0x100 4 0x')).toBe('ERR invalid argument size');
      expect(await v.command('endianness')).toBe('OK little');
    } finally {
      await v.close();
    }
  });

  it('system reset: a dirtied machine reads like a fresh one afterwards', async () => {
    const fresh = VtemuRunner.start(MACHINE);
    const used = VtemuRunner.start(MACHINE);
    try {
      const before = await runTranscript(fresh, STATE_READS);
      await runTranscript(used, DIRTY);
      const dirty = await runTranscript(used, STATE_READS);
      expect(firstDifference(before, dirty)).not.toBeNull();
      used.machine.reset();
      const after = await runTranscript(used, STATE_READS);
      expect(firstDifference(before, after, 3, ['fresh', 'reset'])).toBeNull();
    } finally {
      await fresh.close();
      await used.close();
    }
  });

  it('the spawned CLI and the in-process server give the same transcript', async () => {
    const steps: Step[] = [...STATE_READS, ...DIRTY, ...STATE_READS, 'read 0x1000 0', 'clock_step 1000', 'clock_set 5000'];
    const a = VtemuRunner.start(MACHINE);
    const b = VtemuCliRunner.start(['-accel', 'qtest', ...MACHINE]);
    try {
      const [ta, tb] = [await runTranscript(a, steps), await runTranscript(b, steps)];
      expect(firstDifference(ta, tb, 3, ['in-process', 'cli'])).toBeNull();
      expect(ta.at(-1)!.reply).toBe('OK 5000');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
