/**
 * The spawned CLI's output channels against hostile and slow readers
 * (issue 13): a reader that vanishes while a large reply is in flight
 * (EPIPE / ECONNRESET on stdout, on a listening unix socket and on
 * libqtest's client-mode socket, and a QMP client that resets its
 * connection) never kills the process; a slow reader at EOF still gets every
 * reply; a client that never reads cannot make the process queue replies
 * without bound (input stops being read while output is backed up).
 *
 * QEMU 11.1, for comparison (observed): with its stdout closed it keeps
 * executing commands and drops their replies; at EOF on stdin it keeps
 * running until killed, and exits 0 on SIGTERM.  vtemu drops the replies
 * the same way, and exits 0 at EOF (the end of its qtest session).
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from '../harness/index.js';

/** A large reply (far beyond a pipe's buffer and the output backlog limit): `read` of 4 MiB answers 8 MiB of hex. */
const BIG_READ_LEN = 0x40_0000;
const BIG_READ = `read 0x0 0x${BIG_READ_LEN.toString(16)}\n`;
const BIG_REPLY_BYTES = 'OK 0x'.length + 2 * BIG_READ_LEN + 1;
/** stderr text that means the process crashed rather than handled its reader going away. */
const CRASH = /Error|EPIPE|ECONNRESET|at .*\.js/;

/** A spawned vtemu with its stderr collected. */
interface Spawned {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exit: Promise<number | null>;
  /** Resolves once the process exited and its stdio streams closed. */
  readonly closed: Promise<void>;
  stderr(): string;
}

function start(args: readonly string[]): Spawned {
  const child = spawn(process.execPath, [buildCli(), '-accel', 'qtest', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    err += d;
  });
  child.stdin.on('error', () => {});
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return { child, exit, closed, stderr: () => err };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the exit code, or 'running' if the process is still alive after `ms`. */
function exitedWithin(s: Spawned, ms: number): Promise<number | null | 'running'> {
  return Promise.race([s.exit, sleep(ms).then(() => 'running' as const)]);
}

/** Resident set size of a process in KiB (Linux /proc). */
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Collects output lines (long ones as `<N bytes>`) and counts bytes, working on raw buffers. */
function collectLines(stream: NodeJS.ReadableStream): { lines: string[]; bytes: () => number } {
  const NEWLINE = 0x0a;
  const SHORT = 512;
  const lines: string[] = [];
  let partial = '';
  let partialLen = 0;
  let bytes = 0;
  stream.on('data', (d: Buffer) => {
    bytes += d.length;
    let from = 0;
    for (let nl = d.indexOf(NEWLINE); nl >= 0; nl = d.indexOf(NEWLINE, from)) {
      const len = partialLen + nl - from;
      lines.push(len > SHORT ? `<${len} bytes>` : partial + d.toString('latin1', from, nl));
      partial = '';
      partialLen = 0;
      from = nl + 1;
    }
    if (partialLen + d.length - from <= SHORT) partial += d.toString('latin1', from);
    partialLen += d.length - from;
  });
  stream.resume();
  return { lines, bytes: () => bytes };
}

function acceptOnce(path: string): Promise<Socket> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(path);
  });
}

async function connectRetry(path: string): Promise<Socket> {
  for (let i = 0; i < 200; i++) {
    const sock = await new Promise<Socket | null>((resolve) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', () => setTimeout(() => resolve(null), 25));
    });
    if (sock) return sock;
  }
  throw new Error(`could not connect to ${path}`);
}

describe('output channels with vanished and slow readers (spawned CLI)', () => {
  it('EPIPE on stdout: replies are dropped, commands keep running, exit 0 at EOF', async () => {
    const s = start(['-qtest', 'stdio', '-device', 'edu']);
    s.child.stdin.write(BIG_READ);
    s.child.stdout.destroy();
    await sleep(500);
    s.child.stdin.write('writel 0x1000 0x1234\nreadl 0x1000\n' + BIG_READ);
    expect(await exitedWithin(s, 500)).toBe('running');
    s.child.stdin.end();
    expect(await exitedWithin(s, 10_000)).toBe(0);
    expect(s.stderr()).not.toMatch(CRASH);
  });

  it('a listening unix socket whose client disconnects mid-reply: the session ends cleanly (exit 0)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-epipe-'));
    const path = join(dir, 'q.sock');
    const s = start(['-qtest', `unix:${path},server`]);
    try {
      const sock = await connectRetry(path);
      sock.write('endianness\n' + BIG_READ + BIG_READ);
      await sleep(100);
      sock.destroy();
      expect(await exitedWithin(s, 10_000)).toBe(0);
      expect(s.stderr()).not.toMatch(CRASH);
    } finally {
      s.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("libqtest's client mode: the listener vanishing mid-reply ends the session cleanly (exit 0)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-epipe-'));
    const path = join(dir, 'q.sock');
    const conn = acceptOnce(path);
    const s = start(['-qtest', `unix:${path}`]);
    try {
      const sock = await conn;
      sock.write(BIG_READ + BIG_READ);
      await sleep(100);
      sock.destroy();
      expect(await exitedWithin(s, 10_000)).toBe(0);
      expect(s.stderr()).not.toMatch(CRASH);
    } finally {
      s.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a QMP client that resets its connection does not stop the qtest session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-epipe-'));
    const path = join(dir, 'qmp.sock');
    const conn = acceptOnce(path);
    const s = start(['-qtest', 'stdio', '-qmp', `unix:${path}`]);
    try {
      const out = collectLines(s.child.stdout);
      const sock = await conn;
      // Unread replies on our side make the close a reset (ECONNRESET) for vtemu.
      sock.write('{"execute": "qmp_capabilities"}\n'.repeat(2000));
      await sleep(200);
      sock.destroy();
      await sleep(200);
      s.child.stdin.write('endianness\n');
      await sleep(300);
      expect(await exitedWithin(s, 10)).toBe('running');
      s.child.stdin.end();
      expect(await exitedWithin(s, 10_000)).toBe(0);
      expect(out.lines).toEqual(['OK little']);
      expect(s.stderr()).not.toMatch(CRASH);
    } finally {
      s.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a slow reader at EOF gets every reply (a large read, then many small commands)', async () => {
    const s = start(['-qtest', 'stdio']);
    const N = 2000;
    let input = BIG_READ;
    for (let i = 0; i < N; i++) input += `writel 0x2000 ${i}\nreadl 0x2000\n`;
    s.child.stdin.end(input);
    // Nobody reads stdout for a while: vtemu meets EOF with most replies still queued.
    await sleep(1500);
    const out = collectLines(s.child.stdout);
    expect(await exitedWithin(s, 20_000)).toBe(0);
    await s.closed;
    expect(out.lines.length).toBe(1 + 2 * N);
    expect(out.lines[0]).toBe(`<${BIG_REPLY_BYTES - 1} bytes>`);
    expect(out.lines.at(-1)).toBe(`OK 0x${(N - 1).toString(16).padStart(16, '0')}`);
  });

  it("a slow reader over libqtest's client-mode socket gets every reply after it half-closes", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-slow-'));
    const path = join(dir, 'q.sock');
    const conn = acceptOnce(path);
    const s = start(['-qtest', `unix:${path}`]);
    try {
      const sock = await conn;
      const closed = new Promise((r) => sock.once('close', r));
      const N = 2000;
      let input = BIG_READ;
      for (let i = 0; i < N; i++) input += `writel 0x2000 ${i}\nreadl 0x2000\n`;
      sock.end(input);
      await sleep(1500);
      const out = collectLines(sock);
      expect(await exitedWithin(s, 20_000)).toBe(0);
      await closed;
      expect(out.lines.length).toBe(1 + 2 * N);
      expect(out.lines.at(-1)).toBe(`OK 0x${(N - 1).toString(16).padStart(16, '0')}`);
    } finally {
      s.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM: replies already produced reach a slow reader before the process exits', async () => {
    const s = start(['-qtest', 'stdio']);
    const N = 2000;
    // Replies beyond the pipe's buffer but within the output backlog limit: every command runs.
    let input = 'read 0x0 0x30000\n';
    for (let i = 0; i < N; i++) input += `writel 0x2000 ${i}\nreadl 0x2000\n`;
    s.child.stdin.write(input);
    // Let vtemu run every command (its replies queue behind the unread pipe), then stop it.
    await sleep(1500);
    s.child.kill('SIGTERM');
    await sleep(200);
    const out = collectLines(s.child.stdout);
    expect(await exitedWithin(s, 20_000)).toBe(0);
    await s.closed;
    expect(out.lines.length).toBe(1 + 2 * N);
    expect(out.lines.at(-1)).toBe(`OK 0x${(N - 1).toString(16).padStart(16, '0')}`);
  });

  it('QMP quit on stdio: every reply and the SHUTDOWN event reach a slow reader', async () => {
    const s = start(['-qmp', 'stdio']);
    const N = 3000;
    s.child.stdin.write('{"execute": "qmp_capabilities"}\n' + '{"execute": "query-status"}\n'.repeat(N) + '{"execute": "quit"}\n');
    await sleep(1500);
    const out = collectLines(s.child.stdout);
    expect(await exitedWithin(s, 20_000)).toBe(0);
    await s.closed;
    // greeting, capabilities, N statuses, then quit's reply and event (in QEMU's order, whichever comes first).
    expect(out.lines.length).toBe(2 + N + 2);
    expect(out.lines.slice(-2).some((l) => l.includes('SHUTDOWN'))).toBe(true);
  });

  it('a reader that never reads: input stops being read instead of replies piling up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-paced-'));
    const log = join(dir, 'qtest.log');
    const s = start(['-qtest', 'stdio', '-qtest-log', log]);
    const COMMANDS = 16;
    try {
      s.child.stdin.write('endianness\n');
      await new Promise((r) => s.child.stdout.once('readable', r));
      const base = rssKiB(s.child.pid!);
      s.child.stdin.write(BIG_READ.repeat(COMMANDS));
      let peak = 0;
      for (let i = 0; i < 15; i++) {
        await sleep(100);
        peak = Math.max(peak, rssKiB(s.child.pid!));
      }
      // The qtest log shows what was executed: with replies paced, the first big reply fills the
      // output backlog and no further command is read until the reader takes it. Unpaced, all 16
      // would have run (and 16 x 8 MiB of replies would be queued). RSS is reported, not asserted:
      // it depends on the host's allocator and garbage collector.
      const executed = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => /^\[R \+[0-9.]+\] read /.test(l)).length;
      console.log(`never-reading reader: ${executed} of ${COMMANDS} reads executed, RSS +${peak - base} KiB`);
      expect(executed).toBeGreaterThanOrEqual(1);
      expect(executed).toBeLessThanOrEqual(2);
      const out = collectLines(s.child.stdout);
      s.child.stdin.end();
      expect(await exitedWithin(s, 30_000)).toBe(0);
      await s.closed;
      expect(out.lines.length).toBe(1 + COMMANDS);
      expect(out.bytes()).toBe('OK little\n'.length + COMMANDS * BIG_REPLY_BYTES);
    } finally {
      s.child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
