/**
 * The snapshot round trip into a fresh *process* (issue 12 acceptance,
 * "restoring into a fresh process"): snapshot.ts moves a scenario to a new
 * machine in the same process at each cut; this moves it to a new vtemu
 * process, started from a file with `-incoming file:PATH` and the scenario's
 * own options, as QEMU's incoming migration does.
 *
 * Up to the first cut the steps run on an in-process machine (A), which
 * writes its state to a file.  From then on a spawned CLI (B1) runs them;
 * at the next cut B1 saves with QMP `migrate file:PATH` and exits, and B2
 * starts from that file, and so on: process to process after the first cut.
 * Beside them, A goes on as the reference and reloads its own state in
 * place at every cut (snapshot.ts's reference: it drops its caches and
 * nothing else).  Checked:
 *   - every process, right after `-incoming`, saves back the very text it
 *     started from (RAM, registers, devices byte-identical);
 *   - at every later cut and at the end, the process saves what A saves;
 *   - the process's replies are A's, line for line;
 *   - A's transcript is the uninterrupted one, unless the scenario reads a
 *     stale cache across a cut (cache-sensitive, snapshot.ts's rule); when
 *     snapshot.ts ran for the same scenario, both must classify it alike.
 * The qtest session is not machine state: intercept commands sent before a
 * cut are sent again, silently, to each new process (as snapshot.ts does).
 *
 * diff.ts runs this for the scenarios VTEMU_SNAPSHOT_PROCESS selects:
 * unset or `sample` the first scenario with a cut of every test file, `all`
 * every scenario (`npm run test:snapshot-process`), `0` none.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { makeHaltFirmware } from '../../src/guest/qtest-client.js';
import { decodeState, encodeState } from '../../src/machine/snapshot-file.js';
import { QmpSession, type QmpObject } from './libqtest-qmp.js';
import type { QtestRunner } from './runner.js';
import { cutPoints, firstTextDifference, isSessionCommand } from './snapshot.js';
import { firstDifference, runTranscript, type Step, type TranscriptLine, type TranscriptOptions } from './transcript.js';
import { VtemuCliRunner, VtemuRunner } from './vtemu.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A JSON-lines file each process round trip appends its outcome to (snapshot-process-setup.ts), when set. */
    snapshotProcessLog?: string;
  }
}

/** Which scenarios get the process round trip. */
export type ProcessSnapshotMode = 'off' | 'sample' | 'all';

/** VTEMU_SNAPSHOT_PROCESS: unset/`sample`, `all` or `0`; anything else is a mistake of the caller. */
export function processSnapshotMode(): ProcessSnapshotMode {
  const v = process.env['VTEMU_SNAPSHOT_PROCESS'];
  if (v === undefined || v === '' || v === 'sample') return 'sample';
  if (v === 'all') return 'all';
  if (v === '0') return 'off';
  throw new Error(`VTEMU_SNAPSHOT_PROCESS=${v}: expected all, sample or 0`);
}

/** Outcome of a process round trip. */
export interface ProcessRoundTrip {
  /** The first problem found, or null. */
  readonly problem: string | null;
  /** The reference reloaded in place differs from the uninterrupted transcript (a stale cache read across a cut). */
  readonly cacheSensitive: boolean;
  /** Where the scenario moved to a new process. */
  readonly cuts: readonly number[];
}

/** What the caller already knows of the scenario. */
export interface ProcessRoundTripOptions extends TranscriptOptions {
  /** snapshot.ts's classification of the same scenario at the same cuts, when it ran. */
  readonly expectCacheSensitive?: boolean;
  /** Extra arguments for the processes only, after the scenario's (the harness's own test: a refused state). */
  readonly processArgs?: readonly string[];
}

/** How long a new process may take to open its QMP socket. */
const QMP_CONNECT_MS = 15_000;

/** A spawned vtemu started from a state file, with a QMP socket for `migrate` and `system_reset`. */
class ProcessTarget implements QtestRunner {
  readonly name = 'vtemu-process';

  private constructor(
    private readonly cli: VtemuCliRunner,
    private readonly qmp: QmpSession,
  ) {}

  /** Spawns `vtemu -qtest stdio ARGS -qmp unix:QMP -incoming file:STATE` and negotiates QMP. */
  static async start(args: readonly string[], state: string, qmpPath: string): Promise<ProcessTarget> {
    const cli = VtemuCliRunner.start([...args, '-qmp', `unix:${qmpPath},server=on,wait=off`, '-incoming', `file:${state}`]);
    try {
      const qmp = new QmpSession(await connect(qmpPath, cli));
      await qmp.receive(); // greeting
      expectReturn(await qmp.execute('qmp_capabilities'), 'qmp_capabilities');
      return new ProcessTarget(cli, qmp);
    } catch (e) {
      await cli.close();
      throw e;
    }
  }

  /** What the process wrote to stderr. */
  get stderr(): string {
    return this.cli.stderr;
  }

  /** QMP `migrate file:PATH`; the text of the state written. */
  async save(path: string): Promise<string> {
    expectReturn(await this.qmp.execute('migrate', { uri: `file:${path}` }), `migrate file:${path}`);
    return readFileSync(path, 'utf8');
  }

  command(line: string): Promise<string> {
    return this.cli.command(line);
  }

  takeAsync(): string[] {
    return this.cli.takeAsync();
  }

  wait(ms: number, virtualNs: number): Promise<void> {
    return this.cli.wait(ms, virtualNs);
  }

  /**
   * QMP system_reset and its RESET event; then a qtest command that changes
   * nothing (`endianness`), so that the IRQ lines the reset wrote to the
   * qtest stream (another channel than QMP's) are in before its reply.
   */
  async systemReset(): Promise<void> {
    expectReturn(await this.qmp.execute('system_reset'), 'system_reset');
    await this.qmp.waitEvent('RESET');
    await this.cli.command('endianness');
  }

  async close(): Promise<void> {
    this.qmp.sock.destroy();
    await this.cli.close();
  }
}

/** Connects to the process's QMP socket, retrying while it starts; fails at once if it exits. */
async function connect(path: string, cli: VtemuCliRunner): Promise<Socket> {
  const deadline = Date.now() + QMP_CONNECT_MS;
  while (Date.now() < deadline) {
    if (cli.child.exitCode !== null) throw new Error(`vtemu exited (${cli.child.exitCode}) before its QMP socket opened: ${cli.stderr.trim()}`);
    const sock = await new Promise<Socket | null>((resolve) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', () => {
        s.destroy();
        setTimeout(() => resolve(null), 20);
      });
    });
    if (sock) return sock;
  }
  throw new Error(`no QMP socket at ${path} after ${QMP_CONNECT_MS} ms: ${cli.stderr.trim()}`);
}

/** Throws unless a QMP answer is `{"return": {}}`. */
function expectReturn(answer: QmpObject, what: string): void {
  const text = JSON.stringify(answer);
  if (text !== '{"return":{}}') throw new Error(`QMP ${what}: ${text}`);
}

/**
 * Runs `steps` on the vtemu CLI arguments `args` (everything after
 * `-qtest stdio`, with `-accel qtest` and any `-bios` file, which must exist
 * until this resolves), moving to a new process at each of `cuts`; see the
 * file comment for what is compared.  Never throws for what the processes
 * do: a process that dies, hangs or answers QMP with an error is a problem.
 */
export async function processSnapshotRoundTrip(
  args: readonly string[],
  steps: readonly Step[],
  uninterrupted: readonly TranscriptLine[],
  options: ProcessRoundTripOptions = {},
  cuts: readonly number[] = cutPoints(steps.length),
): Promise<ProcessRoundTrip> {
  const result = (problem: string | null, cacheSensitive = false): ProcessRoundTrip => ({ problem: problem && `snapshot into a fresh process (cuts at steps ${cuts.join(', ')}): ${problem}`, cacheSensitive, cuts });
  if (cuts.length === 0) return result(null);
  // The reference, A: in-process, built from the very vector the CLI gets (qtest included: the state records it).
  const ref = VtemuRunner.start(['-qtest', 'stdio', ...args], { realClock: true, ramBackend: 'ts' });
  const dir = mkdtempSync(join(tmpdir(), 'vtemu-snapproc-'));
  let proc: ProcessTarget | null = null;
  const refLines: TranscriptLine[] = [];
  const procLines: TranscriptLine[] = [];
  try {
    let from = 0;
    let file = '';
    for (const [i, cut] of [...cuts, steps.length].entries()) {
      const segment = steps.slice(from, cut);
      const [r, p] = await Promise.all([runTranscript(ref, segment, options), proc ? runTranscript(proc, segment, options) : []]);
      for (const l of r) refLines.push({ ...l, step: l.step + from });
      for (const l of p) procLines.push({ ...l, step: l.step + from });
      const text = encodeState(ref.machine.saveState());
      if (proc) {
        file = join(dir, `cut-${i}.json`);
        const saved = await proc.save(file);
        if (saved !== text) return result(`at step ${cut} the process saves another state than the machine reloaded in place (${firstTextDifference(text, saved)})`);
        await proc.close();
        proc = null;
      } else {
        file = join(dir, 'cut-0.json');
        writeFileSync(file, text);
      }
      if (cut === steps.length) break;
      ref.machine.restoreState(decodeState(text));
      proc = await ProcessTarget.start([...args, ...(options.processArgs ?? [])], file, join(dir, `qmp-${i}.sock`));
      const back = await proc.save(join(dir, `back-${i}.json`));
      if (back !== text) return result(`the process started with -incoming at step ${cut} does not save back its state (${firstTextDifference(text, back)})`);
      for (const s of steps.slice(0, cut)) {
        const cmd = isSessionCommand(s);
        if (cmd !== null) await proc.command(cmd);
      }
      proc.takeAsync();
      from = cut;
    }
  } catch (e) {
    return result(`${(e as Error).message}${proc ? `\nprocess stderr: ${proc.stderr.trim()}` : ''}`);
  } finally {
    await Promise.all([proc?.close(), ref.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
  // Before the first cut nothing was restored: A must answer as the uninterrupted machine there.
  const before = (t: readonly TranscriptLine[]): TranscriptLine[] => t.filter((l) => l.step < cuts[0]!);
  const a = firstDifference(before(uninterrupted), before(refLines), 3, ['uninterrupted', 'in-process start']);
  if (a !== null) return result(`before the first cut: ${a}`);
  const d = firstDifference(refLines.filter((l) => l.step >= cuts[0]!), procLines, 3, ['reloaded in place', 'restored into a fresh process']);
  if (d !== null) return result(d);
  const cacheSensitive = firstDifference(uninterrupted, refLines) !== null;
  if (options.expectCacheSensitive !== undefined && options.expectCacheSensitive !== cacheSensitive) {
    return result(`the in-process round trip found the scenario ${options.expectCacheSensitive ? '' : 'not '}cache-sensitive, the process round trip ${cacheSensitive ? '' : 'not '}cache-sensitive`, cacheSensitive);
  }
  return result(null, cacheSensitive);
}

/** Test files whose sample scenario has run (mode `sample`). */
const sampled = new Set<string>();

/** The test file running now (vitest), or '' outside a test. */
function currentTestFile(): string {
  try {
    return expect.getState().testPath ?? '';
  } catch {
    return '';
  }
}

/** The full name of the test running now, or '' outside a test. */
function currentTestName(): string {
  try {
    return expect.getState().currentTestName ?? '';
  } catch {
    return '';
  }
}

/**
 * diff.ts's hook: the process round trip of a scenario, when the mode
 * selects it (`args` as diff.ts gives vtemu, without `-accel qtest` and
 * `-bios`; the halt firmware is added here as diff.ts adds it); the
 * outcome goes to the log of `npm run test:snapshot-process`.  Null when
 * not selected or no problem.
 */
export async function processSnapshotProblem(args: readonly string[], steps: readonly Step[], uninterrupted: readonly TranscriptLine[], options: ProcessRoundTripOptions = {}): Promise<string | null> {
  const mode = processSnapshotMode();
  if (mode === 'off') return null;
  const cuts = cutPoints(steps.length);
  const file = currentTestFile();
  if (mode === 'sample') {
    if (cuts.length === 0 || sampled.has(file)) return null;
    sampled.add(file);
  }
  const [dir, bios] = makeHaltFirmware();
  const t0 = Date.now();
  let r: ProcessRoundTrip;
  try {
    r = await processSnapshotRoundTrip(['-accel', 'qtest', '-bios', bios, ...args], steps, uninterrupted, options, cuts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const log = inject('snapshotProcessLog');
  if (typeof log === 'string') {
    appendFileSync(log, JSON.stringify({ file, test: currentTestName(), steps: steps.length, cuts: r.cuts.length, cacheSensitive: r.cacheSensitive, problem: r.problem, ms: Date.now() - t0 }) + '\n');
  }
  return r.problem;
}
