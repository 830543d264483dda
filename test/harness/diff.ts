/**
 * One call for a differential test: run steps on QEMU 7.2 and on vtemu
 * (in-process) built from the same arguments, and return the first
 * difference (null when the transcripts are identical).
 */
import { rmSync } from 'node:fs';
import { makeHaltFirmware } from '../../src/guest/qtest-client.js';
import { QemuRunner } from './qemu.js';
import { VtemuRunner } from './vtemu.js';
import { firstDifference, runTranscript, type Step, type TranscriptLine, type TranscriptOptions } from './transcript.js';

/** Both transcripts and the first difference. */
export interface DiffResult {
  readonly qemu: TranscriptLine[];
  readonly vtemu: TranscriptLine[];
  readonly difference: string | null;
}

/**
 * Runs `steps` on QEMU (`qemuArgs`, default = `args`) and vtemu (`args`,
 * plus `-bios` with the same halt firmware QEMU gets).
 */
export async function diffTranscripts(
  args: readonly string[],
  steps: readonly Step[],
  qemuArgs: readonly string[] = args,
  options: TranscriptOptions = {},
): Promise<DiffResult> {
  const q = QemuRunner.start(qemuArgs, { qmp: steps.some((s) => typeof s === 'object' && 'reset' in s) });
  const [dir, bios] = makeHaltFirmware();
  let v: VtemuRunner;
  try {
    v = VtemuRunner.start(['-bios', bios, ...args]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  try {
    const [tq, tv] = await Promise.all([runTranscript(q, steps, options), runTranscript(v, steps, options)]);
    return { qemu: tq, vtemu: tv, difference: firstDifference(tq, tv) };
  } finally {
    await Promise.all([q.close(), v.close()]);
  }
}
