/**
 * The snapshot round trip of a transcript (issue 12, item 4): vtemu runs the
 * steps again, and at a few cut points saves its machine, encodes the state
 * to text, builds a fresh machine from that text alone and goes on there.
 * At every cut the restored machine must save byte-identically to the saved
 * one, and what comes after each cut must be what the saved machine itself
 * answers once its caches are dropped (a snapshot does not carry caches,
 * as QEMU's migration does not): a reference run reloads its own state in
 * place at the same cuts.  Where a scenario reads a stale cache across a
 * cut, that reference differs from the uninterrupted transcript; every
 * other scenario must give the uninterrupted transcript after each cut.
 *
 * The qtest session is not machine state (QEMU's is not migrated either):
 * the intercept commands sent before a cut are sent again, silently, to the
 * new session.  diff.ts runs this for every differential scenario unless
 * VTEMU_SNAPSHOT_CHECK=0.
 */
import { decodeState, encodeState, machineFromState } from '../../src/machine/snapshot-file.js';
import { VtemuRunner } from './vtemu.js';
import { firstDifference, runTranscript, type Step, type TranscriptLine, type TranscriptOptions } from './transcript.js';

/** Cut points per scenario (spread evenly over its steps). */
export const SNAPSHOT_CUTS = 3;

/** Whether the differential helpers run the snapshot round trip (default on). */
export function snapshotCheckEnabled(): boolean {
  return process.env['VTEMU_SNAPSHOT_CHECK'] !== '0';
}

/** The step indexes (1..n-1, increasing, distinct) where the machine is saved and restored. */
export function cutPoints(n: number, cuts = SNAPSHOT_CUTS): number[] {
  const out = new Set<number>();
  for (let i = 1; i <= cuts; i++) {
    const k = Math.round((n * i) / (cuts + 1));
    if (k > 0 && k < n) out.add(k);
  }
  return [...out];
}

/** Session commands a restored session needs again (QEMU keeps them per qtest connection). */
export function isSessionCommand(s: Step): string | null {
  const cmd = typeof s === 'string' ? s : 'cmd' in s ? s.cmd : null;
  return cmd !== null && /^(irq_intercept_in|irq_intercept_out|msi_intercept)( |$)/.test(cmd) ? cmd : null;
}

/** Outcome of a round trip. */
export interface RoundTrip {
  /** The first problem (a state that does not save back identically, or a transcript line that differs), or null. */
  readonly problem: string | null;
  /**
   * The scenario answers differently once caches are dropped at a cut (it
   * relies on a stale IOTLB/context/interrupt entry there): allowed, since a
   * snapshot drops caches as QEMU's post_load does.
   */
  readonly cacheSensitive: boolean;
}

/**
 * Runs `steps` on vtemu (`start()` builds each machine), moving to a fresh
 * machine built from the state's text at each cut; the fresh machine must
 * save back the very text it was built from.  The transcript must equal
 * `uninterrupted`; where it does not, the run is repeated beside a
 * reference session that reloads its own state in place at the same cuts
 * (which drops its caches and nothing else): both must save identical
 * states at every cut and give identical transcripts, and the scenario is
 * then one that reads a stale cache across a cut (cacheSensitive).
 */
export async function snapshotRoundTrip(
  start: () => VtemuRunner,
  steps: readonly Step[],
  uninterrupted: readonly TranscriptLine[],
  options: TranscriptOptions = {},
  cuts: readonly number[] = cutPoints(steps.length),
): Promise<RoundTrip> {
  // Most scenarios do not read a stale cache across a cut: the chained run alone must then give the uninterrupted transcript.
  const alone = await chainedRun(start, steps, options, cuts, false);
  if (alone.problem !== null) return { problem: alone.problem, cacheSensitive: false };
  if (firstDifference(uninterrupted, alone.chain) === null) return { problem: null, cacheSensitive: false };
  const paired = await chainedRun(start, steps, options, cuts, true);
  if (paired.problem !== null) return { problem: paired.problem, cacheSensitive: false };
  const d = firstDifference(paired.ref, paired.chain, 3, ['reloaded in place', 'restored into a fresh machine']);
  if (d !== null) return { problem: `snapshot round trip (cuts at steps ${cuts.join(', ')}): ${d}`, cacheSensitive: false };
  return { problem: null, cacheSensitive: true };
}

/**
 * One chained run (a fresh machine at every cut) and, when `withRef`, the
 * reference run that reloads its own state in place at the same cuts; both
 * transcripts, or the first state that does not save back identically.
 */
async function chainedRun(
  start: () => VtemuRunner,
  steps: readonly Step[],
  options: TranscriptOptions,
  cuts: readonly number[],
  withRef: boolean,
): Promise<{ problem: string | null; chain: TranscriptLine[]; ref: TranscriptLine[] }> {
  const ref = withRef ? start() : null;
  let chain = start();
  const refLines: TranscriptLine[] = [];
  const chainLines: TranscriptLine[] = [];
  const fail = (problem: string): { problem: string; chain: TranscriptLine[]; ref: TranscriptLine[] } => ({ problem, chain: chainLines, ref: refLines });
  try {
    let from = 0;
    for (const cut of [...cuts, steps.length]) {
      const segment = steps.slice(from, cut);
      if (ref) for (const l of await runTranscript(ref, segment, options)) refLines.push({ ...l, step: l.step + from });
      for (const l of await runTranscript(chain, segment, options)) chainLines.push({ ...l, step: l.step + from });
      if (cut === steps.length) break;
      const text = encodeState(chain.machine.saveState());
      if (ref) {
        const inPlace = encodeState(ref.machine.saveState());
        if (inPlace !== text) return fail(`snapshot at step ${cut}: the machine restored earlier saves differently (${firstTextDifference(inPlace, text)})`);
        ref.machine.restoreState(decodeState(text));
      }
      const restored = machineFromState(decodeState(text), { ramBackend: chain.machine.ram.backend === 'ts' ? 'ts' : 'native' });
      await chain.close();
      chain = VtemuRunner.fromMachine(restored);
      const again = encodeState(restored.saveState());
      if (again !== text) return fail(`snapshot at step ${cut}: the restored machine does not save identically (${firstTextDifference(text, again)})`);
      for (const s of steps.slice(0, cut)) {
        const cmd = isSessionCommand(s);
        if (cmd !== null) await chain.command(cmd);
      }
      chain.takeAsync();
      from = cut;
    }
  } finally {
    await Promise.all([ref?.close(), chain.close()]);
  }
  return { problem: null, chain: chainLines, ref: refLines };
}

/** Where two state texts part (for the message). */
export function firstTextDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at character ${i}: ...${a.slice(Math.max(0, i - 80), i + 40)}... vs ...${b.slice(Math.max(0, i - 80), i + 40)}...`;
}
