/**
 * The harness itself: every kind of target (vtemu in-process, the spawned
 * CLI built from the current sources, QEMU 7.2, QEMU 11.1) answers the same
 * transcript, and the comparison and expectation checks do report a
 * difference when there is one (a harness that cannot fail proves nothing).
 */
import { describe, expect, it } from 'vitest';
import { firstDifference, runTranscript, unmetExpectations, type Step, type TranscriptLine } from './transcript.js';
import { VtemuCliRunner, VtemuRunner } from './vtemu.js';
import { QemuRunner } from './qemu.js';
import { needQemu } from './oracle.js';
import type { QtestRunner } from './runner.js';

const q72 = needQemu('7.2', 'harness self-test on QEMU 7.2');
const q111 = needQemu('11.1', 'harness self-test on QEMU 11.1');

/** Answers that do not depend on the QEMU release or on time. */
const STEPS: Step[] = [
  { cmd: 'readl 0xfed90000', expect: 'OK 0x0000000000000010' },
  { cmd: 'outl 0xcf8 0x80000000', expect: 'OK' },
  { cmd: 'inl 0xcfc', expect: 'OK 0x29c08086' },
  { cmd: 'writel 0x100000 0x12345678', expect: 'OK' },
  { cmd: 'readw 0x100002', expect: 'OK 0x0000000000001234' },
  { cmd: 'nosuchcommand', expect: "FAIL Unknown command 'nosuchcommand'" },
];
const ARGS = ['-device', 'intel-iommu'];

async function transcriptOf(r: QtestRunner): Promise<TranscriptLine[]> {
  try {
    return await runTranscript(r, STEPS);
  } finally {
    await r.close();
  }
}

describe('qtest harness', () => {
  it('vtemu in-process meets every expectation', async () => {
    expect(unmetExpectations(await transcriptOf(VtemuRunner.start(ARGS)))).toEqual([]);
  });

  it('the spawned CLI gives the in-process transcript', async () => {
    const a = await transcriptOf(VtemuRunner.start(ARGS));
    const b = await transcriptOf(VtemuCliRunner.start(['-accel', 'qtest', ...ARGS]));
    expect(firstDifference(a, b)).toBeNull();
  });

  it.skipIf(!q72)('QEMU 7.2 gives the same transcript', async () => {
    const q = await transcriptOf(QemuRunner.start(ARGS, { version: '7.2' }));
    expect(unmetExpectations(q)).toEqual([]);
    expect(firstDifference(q, await transcriptOf(VtemuRunner.start(ARGS)))).toBeNull();
  });

  it.skipIf(!q111)('QEMU 11.1 runs with the qtest accelerator and gives the same transcript', async () => {
    const r = QemuRunner.start(ARGS, { version: '11.1' });
    expect(await r.command('clock_step 1000')).toMatch(/^OK \d+$/);
    const q = await transcriptOf(r);
    expect(unmetExpectations(q)).toEqual([]);
    expect(firstDifference(q, await transcriptOf(VtemuRunner.start(ARGS)))).toBeNull();
  });

  it('a differing reply and an unmet expectation are reported', () => {
    const a: TranscriptLine[] = [{ step: 0, cmd: 'readl 0x0', reply: 'OK 0x0000000000000001' }];
    const b: TranscriptLine[] = [{ step: 0, cmd: 'readl 0x0', reply: 'OK 0x0000000000000002', expected: 'OK 0x0000000000000001' }];
    expect(firstDifference(a, b)).toContain('vtemu: readl 0x0 -> OK 0x0000000000000002');
    expect(firstDifference(a, [])).toContain('vtemu: <end>');
    expect(unmetExpectations(b, 'v')).toEqual(["v: 'readl 0x0' -> 'OK 0x0000000000000002', expected 'OK 0x0000000000000001'"]);
  });
});
