/**
 * A libqtest-equivalent client (QEMU tests/qtest/libqtest.c, written from its
 * observable behaviour): starts a system emulator exactly as libqtest does
 * and drives it through the qtest and QMP sockets.
 *
 *  - Two listening UNIX sockets (qtest, QMP) in a fresh temp dir; then
 *    `/bin/sh -c "exec $BINARY ARGS"` with ARGS = `[-trace T ]-qtest unix:SOCK
 *    -qtest-log /dev/null|/dev/fd/2 -chardev socket,path=QMPSOCK,id=char0
 *    -mon chardev=char0,mode=control -display none -audio none
 *    [-run-with exit-with-parent=on ]EXTRA -accel qtest`.
 *  - The qtest connection is taken first, then the QMP one (whatever order the
 *    binary connects in); `endianness` goes out on qtest before the QMP
 *    greeting is read and `qmp_capabilities` sent.
 *  - Every qtest command must get an `OK` reply (libqtest asserts it); `IRQ
 *    raise/lower N` lines update the intercepted levels.
 *  - quit(): SIGTERM, wait up to 30 s, and the process must have exited
 *    normally with status 0, or the test fails.
 *
 * A binary whose files live in a chroot (QEMU 11.1's sid root) gets its
 * sockets under ROOT/tmp, named /tmp/... on its command line.  The binary
 * string may hold spaces (`chroot ROOT qemu-system-x86_64`): the shell splits
 * it.  Its name must contain `-system-`; the architecture follows the last dash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { LineSplitter } from './runner.js';
import { hex, type Step } from './transcript.js';
import { QmpSession, type QmpEvent, type QmpObject } from './libqtest-qmp.js';

/** What QTEST_QEMU_BINARY names, and the chroot its paths are relative to (null: the host's). */
export interface LibQtestBinary {
  /** The command, pasted into `sh -c "exec ..."` (may contain spaces). */
  readonly command: string;
  readonly root: string | null;
}

/** Options of a start beyond the test's own arguments. */
export interface LibQtestOptions {
  /** `-trace T` in front (libqtest: QTEST_TRACE). */
  readonly trace?: string;
  /** `-qtest-log /dev/fd/2` instead of /dev/null (default: whether QTEST_LOG is set). */
  readonly log?: boolean;
  /** `-run-with exit-with-parent=on` (default true, as libqtest on Linux). */
  readonly exitWithParent?: boolean;
  /** How long to wait for each connection and handshake answer. */
  readonly timeoutMs?: number;
}

/** How long quit() waits for the process after SIGTERM (libqtest: 30 s). */
export const QUIT_TIMEOUT_MS = 30_000;
/** Default time allowed for the binary to connect and answer the handshakes. */
const CONNECT_TIMEOUT_MS = 30_000;
/** Number of IRQ lines tracked (libqtest MAX_IRQ). */
const MAX_IRQ = 256;

/** The architecture a binary is for: what follows the last dash; the name must contain `-system-`. */
export function qtestArch(command: string): string {
  if (!command.includes('-system-')) throw new Error(`QTEST_QEMU_BINARY '${command}' does not name a system emulator (no '-system-')`);
  return command.slice(command.lastIndexOf('-') + 1);
}

/** The argument string libqtest passes after the binary (sockets as the binary sees them). */
export function libqtestArgs(qtestSock: string, qmpSock: string, extra: string, o: LibQtestOptions = {}): string {
  const log = o.log ?? process.env['QTEST_LOG'] !== undefined;
  return (
    (o.trace ? `-trace ${o.trace} ` : '') +
    `-qtest unix:${qtestSock} -qtest-log ${log ? '/dev/fd/2' : '/dev/null'} ` +
    `-chardev socket,path=${qmpSock},id=char0 -mon chardev=char0,mode=control ` +
    '-display none -audio none ' +
    (o.exitWithParent === false ? '' : '-run-with exit-with-parent=on ') +
    `${extra} -accel qtest`
  );
}

/** A listening socket whose connections queue up until taken. */
class Listener {
  readonly server: Server;
  private readonly pending: Socket[] = [];
  private waiter: (() => void) | null = null;

  constructor(path: string) {
    this.server = createServer((s) => {
      this.pending.push(s);
      this.waiter?.();
    });
    this.server.listen(path);
  }

  /** The first connection; rejects if `gone()` says the process ended, or after `timeoutMs`. */
  async accept(what: string, gone: () => string | null, timeoutMs: number): Promise<Socket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.pending.shift();
      if (s) return s;
      const why = gone();
      if (why !== null) throw new Error(`no ${what} connection: ${why}`);
      if (Date.now() >= deadline) throw new Error(`no ${what} connection within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  close(): void {
    this.server.close();
    for (const s of this.pending) s.destroy();
  }
}

/** A running binary under libqtest's control (QTestState). */
export class LibQtest {
  /** The architecture (from the binary's name). */
  readonly arch: string;
  private readonly lines = new LineSplitter();
  private readonly irqLevel = new Array<boolean>(MAX_IRQ).fill(false);
  private stderrText = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;
  private qtestSock: Socket | null = null;
  private qmpSession: QmpSession | null = null;
  /** `big` when the target answered `endianness` with `OK big`. */
  bigEndian = false;

  private constructor(
    binary: LibQtestBinary,
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly listeners: readonly Listener[],
  ) {
    this.arch = qtestArch(binary.command);
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', () => {});
    child.stderr?.on('data', (d: string) => {
      this.stderrText += d;
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        this.lines.fail(new Error(`process exited (${code ?? signal}): ${this.lastStderrLine()}`));
        resolve();
      });
    });
  }

  /**
   * Starts `binary` with libqtest's arguments around `extra` (a shell-pasted
   * string, or words joined by spaces), connects and handshakes.  The
   * process is stopped again if any of that fails.
   */
  static async start(binary: LibQtestBinary, extra: string | readonly string[] = '', o: LibQtestOptions = {}): Promise<LibQtest> {
    qtestArch(binary.command);
    const [dir, seen] = socketDir(binary.root);
    const qtestPath = join(dir, 'qtest.sock');
    const qmpPath = join(dir, 'qmp.sock');
    const listeners = [new Listener(qtestPath), new Listener(qmpPath)];
    await Promise.all(listeners.map((l) => new Promise((r) => (l.server.listening ? r(null) : l.server.once('listening', r)))));
    const args = libqtestArgs(join(seen, 'qtest.sock'), join(seen, 'qmp.sock'), typeof extra === 'string' ? extra : extra.join(' '), o);
    const child = spawn('/bin/sh', ['-c', `exec ${binary.command} ${args}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const q = new LibQtest(binary, child, dir, listeners);
    try {
      await q.connect(o.timeoutMs ?? CONNECT_TIMEOUT_MS);
    } catch (e) {
      await q.kill();
      throw new Error(`${(e as Error).message}\nstderr: ${q.stderrText.trim()}`);
    }
    return q;
  }

  private lastStderrLine(): string {
    return this.stderrText.trim().split('\n').pop() ?? '';
  }

  private why(): string | null {
    return this.exit ? `process exited (${this.exit.code ?? this.exit.signal}): ${this.lastStderrLine()}` : null;
  }

  /** Takes qtest first, then QMP; `endianness` before the QMP greeting. */
  private async connect(timeoutMs: number): Promise<void> {
    const [qtestL, qmpL] = this.listeners as [Listener, Listener];
    const qt = await qtestL.accept('qtest', () => this.why(), timeoutMs);
    this.qtestSock = qt;
    qt.setEncoding('utf8');
    qt.on('data', (d: string) => this.lines.push(d));
    qt.on('error', () => {});
    const qm = await qmpL.accept('QMP', () => this.why(), timeoutMs);
    qm.on('error', () => {});
    const endian = await this.command('endianness');
    if (endian !== 'OK little' && endian !== 'OK big') throw new Error(`endianness: unexpected reply '${endian}'`);
    this.bigEndian = endian === 'OK big';
    const qmp = new QmpSession(qm);
    const greeting = await qmp.receive(timeoutMs);
    if (!('QMP' in greeting)) throw new Error(`QMP greeting expected, got ${JSON.stringify(greeting)}`);
    const caps = await qmp.execute('qmp_capabilities');
    if (!('return' in caps)) throw new Error(`qmp_capabilities failed: ${JSON.stringify(caps)}`);
    this.qmpSession = qmp;
  }

  // ---- qtest ------------------------------------------------------------------

  /** Sends one qtest line and returns its reply (no check; IRQ lines are consumed). */
  async command(line: string): Promise<string> {
    if (!this.qtestSock) throw new Error('qtest socket not connected');
    this.qtestSock.write(line + '\n');
    const reply = await this.lines.next(CONNECT_TIMEOUT_MS);
    for (const a of this.lines.takeAsync()) {
      const m = /^IRQ (raise|lower) (\d+)$/.exec(a);
      if (m && Number(m[2]) < MAX_IRQ) this.irqLevel[Number(m[2])] = m[1] === 'raise';
    }
    return reply;
  }

  /** A command whose reply must start with OK (libqtest asserts it); the text after `OK `. */
  private async ok(line: string): Promise<string> {
    const reply = await this.command(line);
    if (reply !== 'OK' && !reply.startsWith('OK ')) throw new Error(`qtest '${line}' -> '${reply}'`);
    return reply.slice(3);
  }

  private async value(line: string): Promise<bigint> {
    return BigInt(await this.ok(line));
  }

  readb = async (addr: number | bigint): Promise<number> => Number(await this.value(`readb ${hex(addr)}`));
  readw = async (addr: number | bigint): Promise<number> => Number(await this.value(`readw ${hex(addr)}`));
  readl = async (addr: number | bigint): Promise<number> => Number(await this.value(`readl ${hex(addr)}`));
  readq = (addr: number | bigint): Promise<bigint> => this.value(`readq ${hex(addr)}`);
  writeb = async (addr: number | bigint, v: number): Promise<void> => void (await this.ok(`writeb ${hex(addr)} ${hex(v & 0xff)}`));
  writew = async (addr: number | bigint, v: number): Promise<void> => void (await this.ok(`writew ${hex(addr)} ${hex(v & 0xffff)}`));
  writel = async (addr: number | bigint, v: number): Promise<void> => void (await this.ok(`writel ${hex(addr)} ${hex(v >>> 0)}`));
  writeq = async (addr: number | bigint, v: number | bigint): Promise<void> =>
    void (await this.ok(`writeq ${hex(addr)} ${hex(BigInt.asUintN(64, BigInt(v)))}`));
  inb = async (port: number): Promise<number> => Number(await this.value(`inb ${hex(port)}`));
  inw = async (port: number): Promise<number> => Number(await this.value(`inw ${hex(port)}`));
  inl = async (port: number): Promise<number> => Number(await this.value(`inl ${hex(port)}`));
  outb = async (port: number, v: number): Promise<void> => void (await this.ok(`outb ${hex(port)} ${hex(v & 0xff)}`));
  outw = async (port: number, v: number): Promise<void> => void (await this.ok(`outw ${hex(port)} ${hex(v & 0xffff)}`));
  outl = async (port: number, v: number): Promise<void> => void (await this.ok(`outl ${hex(port)} ${hex(v >>> 0)}`));

  /** Reads `size` bytes of guest memory (`read`, hex payload). */
  async memread(addr: number | bigint, size: number): Promise<Uint8Array> {
    if (size === 0) return new Uint8Array(0);
    const r = await this.ok(`read ${hex(addr)} ${hex(size)}`);
    if (!r.startsWith('0x') || r.length !== 2 + 2 * size) throw new Error(`read: malformed reply '${r}'`);
    return new Uint8Array(Buffer.from(r.slice(2), 'hex'));
  }

  /** Writes bytes to guest memory (`write`, hex payload). */
  async memwrite(addr: number | bigint, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    await this.ok(`write ${hex(addr)} ${hex(bytes.length)} 0x${Buffer.from(bytes).toString('hex')}`);
  }

  /** Fills guest memory with a byte. */
  async memset(addr: number | bigint, size: number, byte: number): Promise<void> {
    await this.ok(`memset ${hex(addr)} ${hex(size)} ${hex(byte & 0xff)}`);
  }

  /** Advances the virtual clock by `ns` (to the next deadline without it); returns the new clock. */
  async clockStep(ns?: number): Promise<bigint> {
    return BigInt(await this.ok(ns === undefined ? 'clock_step' : `clock_step ${ns}`));
  }

  /** Intercepts the GPIO inputs of the QOM object at `path` (their levels then arrive as IRQ lines). */
  async irqInterceptIn(path: string): Promise<void> {
    await this.ok(`irq_intercept_in ${path}`);
  }

  /** The level of intercepted line `n` (a dummy `inb 0x0` first brings the IRQ lines up to date, as libqtest does). */
  async getIrq(n: number): Promise<boolean> {
    await this.inb(0);
    return this.irqLevel[n] ?? false;
  }

  /**
   * Runs transcript steps (test/support builders) and returns the unmet
   * expectations as text: commands, commands with an expected reply, and
   * `{ reset: true }` (system_reset).  Waits and polls are not libqtest's.
   */
  async run(steps: readonly Step[]): Promise<string[]> {
    const unmet: string[] = [];
    for (const s of steps) {
      if (typeof s === 'string') {
        await this.command(s);
      } else if ('cmd' in s) {
        const reply = await this.command(s.cmd);
        if (s.expect !== undefined && reply !== s.expect) unmet.push(`'${s.cmd}' -> '${reply}', expected '${s.expect}'`);
      } else if ('reset' in s) {
        await this.systemReset();
      } else {
        throw new Error('LibQtest.run: waits and polls are not supported');
      }
    }
    return unmet;
  }

  // ---- QMP --------------------------------------------------------------------

  private get session(): QmpSession {
    if (!this.qmpSession) throw new Error('QMP not connected');
    return this.qmpSession;
  }

  /** Executes a QMP command; resolves with its answer (`{"return": ...}` or `{"error": ...}`), events buffered. */
  qmp(command: string, args?: Record<string, unknown>): Promise<QmpObject> {
    return this.session.execute(command, args);
  }

  /** Executes a QMP command that must succeed; resolves with its `return` value. */
  async qmpReturn(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const r = await this.qmp(command, args);
    if (!('return' in r)) throw new Error(`QMP ${command} failed: ${JSON.stringify(r)}`);
    return r['return'];
  }

  /** The first (buffered or coming) event `name`. */
  waitEvent(name: string, timeoutMs?: number): Promise<QmpEvent> {
    return this.session.waitEvent(name, timeoutMs);
  }

  /** system_reset: must return `{}` and be followed by a RESET event. */
  async systemReset(): Promise<void> {
    const r = await this.qmpReturn('system_reset');
    if (JSON.stringify(r) !== '{}') throw new Error(`system_reset returned ${JSON.stringify(r)}`);
    await this.waitEvent('RESET');
  }

  // ---- teardown -----------------------------------------------------------------

  /** What the process wrote to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  private cleanup(): void {
    this.qtestSock?.destroy();
    this.qmpSession?.sock.destroy();
    for (const l of this.listeners) l.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stops the process without judging how it ended (failed starts). */
  private async kill(): Promise<void> {
    if (!this.exit) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    this.cleanup();
  }

  /**
   * qtest_quit: SIGTERM, wait up to 30 s, then throws unless the process
   * exited normally with status 0 (a process that had already ended is
   * judged the same way).
   */
  async quit(timeoutMs = QUIT_TIMEOUT_MS): Promise<void> {
    try {
      if (!this.exit) {
        this.child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
        const how = await Promise.race([this.exited.then(() => 'exited' as const), late]);
        clearTimeout(timer);
        if (how === 'late') {
          this.child.kill('SIGKILL');
          await this.exited;
          throw new Error(`the process did not exit within ${timeoutMs} ms of SIGTERM`);
        }
      }
      const e = this.exit!;
      if (e.signal !== null) throw new Error(`the process was killed by ${e.signal}: ${this.lastStderrLine()}`);
      if (e.code !== 0) throw new Error(`the process exited with status ${e.code}: ${this.lastStderrLine()}`);
    } finally {
      this.cleanup();
    }
  }
}

/** A fresh socket dir the binary can reach: [host path, path as the binary sees it]. */
function socketDir(root: string | null): [string, string] {
  if (root === null) {
    const d = mkdtempSync(join(tmpdir(), 'libqtest-'));
    return [d, d];
  }
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const d = mkdtempSync(join(root, 'tmp', 'libqtest-'));
  return [d, '/' + relative(root, d)];
}
