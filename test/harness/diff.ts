/**
 * One call for a differential test: run steps on QEMU (11.1 by default, or
 * 7.2 for the suites that stay on it) and on vtemu (in-process) built from
 * the same arguments, and return the first difference (null when the
 * transcripts are identical) and every unmet expectation on either side.
 */
import { rmSync } from 'node:fs';
import { makeHaltFirmware } from '../../src/guest/qtest-client.js';
import type { RamBackendName } from '../../src/memory/ram-backend.js';
import { QemuRunner } from './qemu.js';
import { VtemuRunner } from './vtemu.js';
import { firstDifference, runTranscript, unmetExpectations, type Step, type TranscriptLine, type TranscriptOptions } from './transcript.js';
import { DEFAULT_ORACLE, type QemuVersion } from './oracle.js';
import { snapshotCheckEnabled, snapshotRoundTrip } from './snapshot.js';
import { processSnapshotProblem } from './snapshot-process.js';

/** Both transcripts, the first difference and the unmet expectations. */
export interface DiffResult {
  readonly qemu: TranscriptLine[];
  readonly vtemu: TranscriptLine[];
  readonly difference: string | null;
  /** Replies that are not what their step expected (QEMU's and vtemu's). */
  readonly unmet: string[];
}

/** Options of a differential run. */
export interface DiffOptions extends TranscriptOptions {
  /** The QEMU release that answers (default 11.1). */
  readonly oracle?: QemuVersion;
}

/** vtemu in-process with `args` and the halt firmware QemuRunner gives QEMU as `-bios`. */
function startVtemu(args: readonly string[], ramBackend?: RamBackendName): VtemuRunner {
  const [dir, bios] = makeHaltFirmware();
  try {
    return VtemuRunner.start(['-bios', bios, ...args], ramBackend ? { ramBackend } : {});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The snapshot round trips of the vtemu half: null when a machine saved and
 * restored at each cut answers as `reference`, in the same process
 * (snapshot.ts, off with VTEMU_SNAPSHOT_CHECK=0) and in a fresh process
 * (snapshot-process.ts, for the scenarios VTEMU_SNAPSHOT_PROCESS selects).
 */
async function snapshotProblem(args: readonly string[], steps: readonly Step[], reference: readonly TranscriptLine[], options: TranscriptOptions): Promise<string | null> {
  let cacheSensitive: boolean | undefined;
  if (snapshotCheckEnabled()) {
    // The sparse TypeScript RAM makes a save cost what the guest wrote, not the RAM size (the backends behave alike).
    const r = await snapshotRoundTrip(() => startVtemu(args, 'ts'), steps, reference, options);
    if (r.cacheSensitive && process.env['VTEMU_SNAPSHOT_VERBOSE'] === '1') console.info(`snapshot: cache-sensitive scenario (${args.join(' ')}, ${steps.length} steps)`);
    if (r.problem !== null) return r.problem;
    cacheSensitive = r.cacheSensitive;
  }
  return processSnapshotProblem(args, steps, reference, { ...options, ...(cacheSensitive !== undefined ? { expectCacheSensitive: cacheSensitive } : {}) });
}

/**
 * Runs `steps` on QEMU (`qemuArgs`, default = `args`) and vtemu (`args`,
 * plus `-bios` with the same halt firmware QEMU gets).
 */
export async function diffTranscripts(
  args: readonly string[],
  steps: readonly Step[],
  qemuArgs: readonly string[] = args,
  options: DiffOptions = {},
): Promise<DiffResult> {
  const v = startVtemu(args);
  let q: QemuRunner;
  try {
    q = QemuRunner.start(qemuArgs, { qmp: steps.some((s) => typeof s === 'object' && 'reset' in s), version: options.oracle ?? DEFAULT_ORACLE });
  } catch (e) {
    await v.close();
    throw e;
  }
  try {
    const [tq, tv] = await Promise.all([runTranscript(q, steps, options), runTranscript(v, steps, options)]);
    const snapshot = await snapshotProblem(args, steps, tv, options);
    const difference = firstDifference(tq, tv, 3, [q.name, 'vtemu']) ?? snapshot;
    return { qemu: tq, vtemu: tv, difference, unmet: [...unmetExpectations(tq, q.name), ...unmetExpectations(tv, 'vtemu'), ...(snapshot ? [snapshot] : [])] };
  } finally {
    await Promise.all([q.close(), v.close()]);
  }
}

/** Options of checkTranscripts. */
export interface CheckOptions extends DiffOptions {
  /** Whether the oracle runs too (the caller's needQemu gate). */
  readonly qemu: boolean;
  /** QEMU's arguments when they differ from vtemu's. */
  readonly qemuArgs?: readonly string[];
}

/**
 * A scenario whose steps carry expectations: vtemu always runs it; with
 * `qemu`, the oracle runs it too and the transcripts are compared.  Without
 * the oracle the vtemu half still has to meet every expectation.
 */
export async function checkTranscripts(args: readonly string[], steps: readonly Step[], options: CheckOptions): Promise<DiffResult | { readonly qemu: null; readonly vtemu: TranscriptLine[]; readonly difference: null; readonly unmet: string[] }> {
  if (options.qemu) return diffTranscripts(args, steps, options.qemuArgs ?? args, options);
  const v = startVtemu(args);
  try {
    const tv = await runTranscript(v, steps, options);
    const snapshot = await snapshotProblem(args, steps, tv, options);
    return { qemu: null, vtemu: tv, difference: null, unmet: [...unmetExpectations(tv, 'vtemu'), ...(snapshot ? [snapshot] : [])] };
  } finally {
    await v.close();
  }
}
