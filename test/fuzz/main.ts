/**
 * The long fuzz run of issue 13 (outside `npm test`): `npm run fuzz -- [--ops N]
 * [--messages M] [--processes P] [--seed S]`.
 *
 * - Guest operations: hostile VT-d cases (test/support/vtd-hostile-gen.ts)
 *   until N command lines ran, each timed; host exceptions, wedged devices
 *   and the slowest command are counted.
 * - Malformed protocol messages: M in all, half qtest lines
 *   (test/support/qtest-fuzz-gen.ts) fed in random chunks to an in-process
 *   qtest server on a q35 machine with intel-iommu and edu, half QMP messages
 *   (test/support/qmp-fuzz-gen.ts) fed to an in-process QMP session; each
 *   timed; a `FAIL internal error` reply or an exception is a host error.
 * - Processes: P spawned vtemu processes (the sources compiled with this
 *   driver) that get a random transcript and lose their reader at a random
 *   moment (stdout destroyed, or the QMP socket closed mid-reply), then EOF
 *   or SIGTERM: each must exit by itself with status 0.
 * - Memory: RSS after each tenth of the guest operations (after a GC when
 *   node runs with --expose-gc); "flat" means the last sample is within
 *   ±10% of the one after the first tenth (the warm-up).
 *
 * Prints one JSON object of figures on stdout and exits 1 when any property
 * failed.  Progress goes to stderr.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMachine, parseCli } from '../../src/cli.js';
import { QmpSession } from '../../src/qtest/qmp.js';
import { MAX_TRANSFER, QtestServer } from '../../src/qtest/server.js';
import { Rng } from '../support/prng.js';
import { QMP_RESYNC, qmpFuzzMessage } from '../support/qmp-fuzz-gen.js';
import { fuzzLine, randomChunks } from '../support/qtest-fuzz-gen.js';
import { generateHostileCase, newHostileStats, runHostileCase } from '../support/vtd-hostile-gen.js';

/**
 * A command slower than this (wall time) is a failure (issue 13).  Wall time,
 * not process CPU time: the latter also counts V8's background threads
 * (concurrent GC, compilers), so it can exceed the command's duration.
 */
const SLOW_MS = 100;
/** Command lines per hostile case. */
const OPS_PER_CASE = 400;
/** RSS may move this much between the warm-up sample and the last one. */
const RSS_TOLERANCE = 0.1;

interface Options {
  ops: number;
  messages: number;
  processes: number;
  seed: number;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { ops: 1_000_000, messages: 100_000, processes: 40, seed: 0x5eed };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!.replace(/^--/, '') as keyof Options;
    const v = Number(argv[++i]);
    if (!(key in o) || !Number.isFinite(v) || v < 0) {
      process.stderr.write(`fuzz: usage: --ops N --messages M --processes P --seed S (bad '${argv[i - 1]} ${argv[i] ?? ''}')\n`);
      process.exit(2);
    }
    o[key] = Math.floor(v);
  }
  return o;
}

const progress = (s: string): void => void process.stderr.write(`fuzz: ${s}\n`);

function rssMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

/** Lets the event loop turn (Node runs native finalizers, e.g. the RAM addon's munmap, from it). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Guest operations: hostile VT-d cases, one event-loop turn between cases as in a running vtemu. */
async function guestOps(o: Options) {
  const rng = new Rng(o.seed);
  const stats = newHostileStats();
  const rss: number[] = [];
  let cases = 0;
  let nextSample = o.ops / 10;
  const t0 = performance.now();
  while (stats.ops < o.ops) {
    runHostileCase(generateHostileCase(rng, OPS_PER_CASE), stats);
    cases++;
    await turn();
    if (stats.ops >= nextSample) {
      rss.push(Math.round(rssMiB()));
      progress(`guest ops ${stats.ops} (${cases} cases), rss ${rss.at(-1)} MiB, worst ${stats.worstCpuMs.toFixed(1)} ms cpu`);
      nextSample += o.ops / 10;
    }
  }
  const warm = rss[0] ?? 0;
  const last = rss.at(-1) ?? 0;
  return {
    ops: stats.ops,
    cases,
    seconds: Math.round((performance.now() - t0) / 1000),
    hostErrors: stats.hostErrors.length,
    firstHostError: stats.hostErrors[0] ?? null,
    wedged: stats.wedged.length,
    firstWedged: stats.wedged[0] ?? null,
    worstCommandCpuMs: Number(stats.worstCpuMs.toFixed(2)),
    worstCommandWallMs: Number(stats.worstWallMs.toFixed(2)),
    worstCommand: stats.worstLine,
    reentrantRefusals: stats.reentrantRefusals,
    interrupts: stats.interrupts,
    rssMiB: rss,
    rssFlat: warm > 0 && Math.abs(last - warm) <= warm * RSS_TOLERANCE,
  };
}

/** Transfers above this many bytes are held to a rate (ms per MiB), not to SLOW_MS. */
const LARGE_TRANSFER = 2 ** 20;
/**
 * A large transfer may take at most this per MiB: QEMU 11.1's own rate for
 * a hex `read` (64 MiB in about 1.9 s on the 2-core machine this was
 * written on; an 8 MiB b64read took it 115 ms).
 */
const MAX_MS_PER_MIB = 30;

/** The size argument of a transfer command line (read, b64read, write, b64write, memset), else 0. */
function transferSize(line: string): number {
  const m = /^(?:read|b64read|write|b64write|memset) \S+ (0x[0-9a-fA-F]+|[0-9]+)(?: |$)/.exec(line);
  if (!m) return 0;
  try {
    return Number(BigInt(m[1]!));
  } catch {
    return 0;
  }
}

/** Wall time of `fn` in ms. */
function wallMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Malformed protocol messages, in-process: qtest lines and QMP messages. */
function protocolMessages(o: Options) {
  const rng = new Rng(o.seed ^ 0x9e37_79b9);
  const parsed = parseCli(['-accel', 'qtest', '-m', '128M', '-device', 'intel-iommu', '-device', 'edu']);
  if (parsed.kind === 'exit') throw new Error(parsed.stderr);
  const machine = buildMachine(parsed.config, (l) => progress(l));
  if (!machine) throw new Error('fuzz: the machine did not build');
  let replies = 0;
  const hostErrors: string[] = [];
  let qtestReply = '';
  const qtest = new QtestServer(machine, (t) => {
    qtestReply += t;
    replies++;
  });
  let qmpReply = '';
  const newQmp = () => {
    const s = new QmpSession({ machine, reset: () => machine.reset(), quit: () => {} }, (t) => (qmpReply += t));
    s.feed('{"execute": "qmp_capabilities"}\n');
    return s;
  };
  let qmp = newQmp();
  let worst = 0;
  let worstWhat = '';
  let exceptions = 0;
  let largest = 0;
  let worstMsPerMiB = 0;
  const qtestCount = Math.ceil(o.messages / 2);
  for (let i = 0; i < o.messages; i++) {
    const isQtest = i < qtestCount;
    let what = '';
    const ms = wallMs(() => {
      try {
        if (isQtest) {
          const line = fuzzLine(rng);
          what = line.slice(0, 80);
          qtestReply = '';
          for (const chunk of randomChunks(rng, `${line}\n`, 64)) qtest.feed(chunk);
          if (qtestReply.includes('internal error')) hostErrors.push(`${JSON.stringify(what)} -> ${qtestReply.trim()}`);
        } else {
          const msg = qmpFuzzMessage(rng);
          what = Buffer.from(msg.subarray(0, 80)).toString('latin1');
          qmp.feed(msg);
          qmp.feed(QMP_RESYNC);
          if (qmpReply.length > 1 << 20) qmpReply = '';
          if (rng.chance(0.001)) qmp = newQmp(); // a new client now and then
        }
      } catch (e) {
        exceptions++;
        hostErrors.push(`${JSON.stringify(what)} threw ${(e as Error).message}`);
      }
    });
    const size = transferSize(what);
    if (size > LARGE_TRANSFER && size <= MAX_TRANSFER) {
      // Linear in the size the client asked for (QEMU 11.1 takes ~115 ms for an 8 MiB b64read):
      // held to a rate, not to the per-command bound.
      largest = Math.max(largest, size);
      worstMsPerMiB = Math.max(worstMsPerMiB, ms / (size / 2 ** 20));
    } else if (ms > worst) {
      worst = ms;
      worstWhat = what;
    }
    if ((i + 1) % Math.max(1, Math.floor(o.messages / 10)) === 0) progress(`protocol messages ${i + 1}`);
  }
  qtest.close();
  machine.dispose();
  return {
    messages: o.messages,
    qtestLines: qtestCount,
    qmpMessages: o.messages - qtestCount,
    qtestReplies: replies,
    exceptions,
    hostErrors: hostErrors.length,
    firstHostError: hostErrors[0] ?? null,
    worstMessageWallMs: Number(worst.toFixed(2)),
    worstMessage: worstWhat,
    largestTransferBytes: largest,
    worstTransferMsPerMiB: Number(worstMsPerMiB.toFixed(2)),
  };
}

/** The CLI compiled next to this driver. */
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');

/** One spawned vtemu that loses its reader; resolves with how it ended. */
function oneProcess(rng: Rng, dir: string, index: number): Promise<{ code: number | null; signal: string | null; stderr: string; how: string }> {
  const qmpPath = join(dir, `qmp-${index}.sock`);
  const useQmp = rng.chance(0.5);
  return new Promise((resolve) => {
    const server = useQmp ? createServer() : null;
    const args = ['-accel', 'qtest', '-m', '64M', '-device', 'intel-iommu', '-device', 'edu', '-qtest', 'stdio', '-display', 'none'];
    if (useQmp) args.push('-qmp', `unix:${qmpPath}`);
    const start = (): void => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.on('error', () => {});
      child.stdout.on('error', () => {});
      child.stdout.on('data', () => {}); // a reader that keeps reading (until destroyed)
      const how = rng.pick(['stdout destroyed', 'eof', 'sigterm', 'qmp closed']);
      // A large reply in flight, then garbage lines.
      const lines = ['read 0x0 0x1000000', ...Array.from({ length: 50 }, () => fuzzLine(rng).replace(/\n/g, ''))];
      child.stdin.write(lines.join('\n') + '\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        server?.close();
        resolve({ code, signal, stderr, how });
      });
      // Act once the process is up and a reply is in flight (its first output).
      child.stdout.once('data', () => setTimeout(() => {
        if (how === 'stdout destroyed') {
          child.stdout.destroy();
          setTimeout(() => child.stdin.end(), 200);
        } else if (how === 'sigterm') {
          child.kill('SIGTERM');
        } else {
          child.stdin.end();
        }
      }, rng.int(50)));
    };
    if (server) {
      server.on('connection', (sock) => {
        sock.on('error', () => {});
        sock.write('{"execute": "qmp_capabilities"}\n{"execute": "query-status"}\n');
        for (let i = 0; i < 20; i++) sock.write(qmpFuzzMessage(rng));
        setTimeout(() => sock.destroy(), rng.int(300));
      });
      server.listen(qmpPath, start);
    } else {
      start();
    }
  });
}

async function processes(o: Options) {
  const rng = new Rng(o.seed ^ 0x1234_5678);
  const dir = mkdtempSync(join(tmpdir(), 'vtemu-fuzz-'));
  const deaths: string[] = [];
  try {
    for (let i = 0; i < o.processes; i++) {
      const r = await oneProcess(rng, dir, i);
      if (r.code !== 0 || r.signal !== null) deaths.push(`${r.how}: code ${r.code} signal ${r.signal} ${r.stderr.split('\n')[0] ?? ''}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  progress(`processes ${o.processes}`);
  return { processes: o.processes, deaths: deaths.length, firstDeath: deaths[0] ?? null };
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  progress(`seed 0x${o.seed.toString(16)}, ${o.ops} guest ops, ${o.messages} protocol messages, ${o.processes} processes`);
  const guest = await guestOps(o);
  const protocol = protocolMessages(o);
  const procs = await processes(o);
  const figures = { seed: o.seed, guest, protocol, processes: procs };
  process.stdout.write(JSON.stringify(figures, null, 1) + '\n');
  const ok =
    guest.hostErrors === 0 &&
    guest.wedged === 0 &&
    guest.worstCommandWallMs < SLOW_MS &&
    guest.rssFlat &&
    protocol.hostErrors === 0 &&
    protocol.worstMessageWallMs < SLOW_MS &&
    protocol.worstTransferMsPerMiB < MAX_MS_PER_MIB &&
    procs.deaths === 0;
  progress(ok ? 'every property held' : 'FAILED');
  return ok ? 0 : 1;
}

process.exitCode = await main();
