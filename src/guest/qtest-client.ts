/**
 * A qtest client: drives any qtest target (QEMU, or `vtemu`) over a child
 * process's stdio or a unix socket, and presents it as a `GuestPlatform`.
 *
 * Protocol facts (QEMU system/qtest.c): one command per line, one reply line
 * per command in order; `IRQ raise N` / `IRQ lower N` lines arrive
 * asynchronously after `irq_intercept_in`.  Commands are pipelined: each
 * pending promise takes the next non-asynchronous line.
 *
 * Interrupts, honestly: qtest has no APIC, so
 *  - INTx is observed with `irq_intercept_in ioapic` (IOAPIC input levels);
 *  - MSIs are not observable through standard qtest (QEMU 7.2 has no such
 *    stream: `interrupts.msi` is false there).  vtemu offers an extension,
 *    `msi_intercept`, after which the server prints `MSI <addr> <data>` lines
 *    for each message that reaches the APIC bus; the client probes for it.
 * Time: `clock_step NS` when the target has a qtest clock (vtemu and QEMU
 * 11.1 with `-accel qtest`); otherwise (QEMU 7.2 has no qtest accelerator)
 * real sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { InterruptHub } from './interrupt-hub.js';
import type {
  AccessWidth, GuestInterrupt, GuestPlatform, InterruptCapabilities, InterruptHandler, TimeMode,
} from './platform.js';

/** Largest chunk moved by one `read`/`write` command. */
const BYTES_PER_COMMAND = 4096;
/** Bytes in the halt firmware image and where the reset vector lives. */
const HALT_BIOS_SIZE = 0x10000;
const RESET_VECTOR_OFFSET = 0xfff0;
/** cli; hlt; jmp $-3: the CPU halts forever so the clock runs without a guest. */
const HALT_CODE = [0xfa, 0xf4, 0xeb, 0xfd];
/** MSI data bits holding the vector. */
const MSI_DATA_VECTOR_MASK = 0xff;
/**
 * QEMU 11.1's answer to `clock_step 0` under `-accel qtest` (a zero step
 * does not advance the clock); vtemu answers `OK 0`.  Without a qtest
 * clock the command is unknown.
 */
const CLOCK_STEP_ZERO_REFUSED = 'FAIL could not advance time';

/**
 * Writes the halt firmware (HALT_CODE at the reset vector of a 64 KiB image)
 * into a fresh temp dir; returns [dir, file].  The caller removes `dir`.
 */
export function makeHaltFirmware(): [string, string] {
  const dir = mkdtempSync(join(tmpdir(), 'vtemu-halt-'));
  const file = join(dir, 'halt.bin');
  writeFileSync(file, haltFirmwareImage());
  return [dir, file];
}

/** The halt firmware image: HALT_CODE at the reset vector of a 64 KiB image. */
export function haltFirmwareImage(): Uint8Array {
  const image = new Uint8Array(HALT_BIOS_SIZE);
  image.set(HALT_CODE, RESET_VECTOR_OFFSET);
  return image;
}

/** Raised when a target answers FAIL/ERR or goes away. */
export class QtestError extends Error {}

interface Pending {
  readonly line: string;
  resolve(reply: string): void;
  reject(err: Error): void;
}

const SUFFIX: Record<AccessWidth, string> = { 1: 'b', 2: 'w', 4: 'l' };

/** A GuestPlatform speaking the qtest protocol. */
export class QtestClient implements GuestPlatform {
  readonly name: string;
  private readonly hub = new InterruptHub();
  private readonly pending: Pending[] = [];
  private buffer = '';
  private closed = false;
  private caps: InterruptCapabilities = { msi: false, intx: false };
  private mode: TimeMode = 'real';
  private readonly started = performance.now();
  /** The virtual clock as the last `clock_step` reported it (QEMU 11.1 has no way to read it without stepping). */
  private virtualNs = 0;
  private stderrTail = '';
  private cleanup: () => void = () => {};

  private constructor(name: string, input: Readable, private readonly output: Writable) {
    this.name = name;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => this.onData(chunk));
    input.on('close', () => this.onClose('target closed the connection'));
    input.on('error', (e: Error) => this.onClose(e.message));
  }

  /** Interrupt observation available on this target (valid after `probe`). */
  get interrupts(): InterruptCapabilities { return this.caps; }
  /** How `sleep` passes time on this target (valid after `probe`). */
  get timeMode(): TimeMode { return this.mode; }

  /** Wraps an already-connected byte stream pair; call `probe()` next. */
  static fromStreams(name: string, input: Readable, output: Writable): QtestClient {
    return new QtestClient(name, input, output);
  }

  /**
   * Spawns `command args...`; `args` must include `-qtest stdio`.  Resolves
   * after the target answered `endianness` and the capability probe.
   */
  static async spawn(name: string, command: string, args: readonly string[]): Promise<QtestClient> {
    const child: ChildProcess = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const client = new QtestClient(name, child.stdout!, child.stdin!);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => { client.stderrTail = (client.stderrTail + s).slice(-2000); });
    child.on('error', (e) => client.onClose(`cannot start ${command}: ${e.message}`));
    child.on('exit', (code) => client.onClose(`${command} exited with ${code}`));
    client.cleanup = () => { if (child.exitCode === null) child.kill('SIGTERM'); };
    await client.probe();
    return client;
  }

  /**
   * Spawns QEMU (default /usr/bin/qemu-system-x86_64) with a temporary halt
   * firmware and `-qtest stdio`; `extra` are machine/device arguments.
   */
  static async spawnQemu(extra: readonly string[], binary = 'qemu-system-x86_64'): Promise<QtestClient> {
    const [dir, bios] = makeHaltFirmware();
    const args = ['-bios', bios, '-qtest', 'stdio', '-display', 'none', '-nodefaults', ...extra];
    try {
      const client = await QtestClient.spawn('qtest QEMU', binary, args);
      const kill = client.cleanup;
      client.cleanup = () => { kill(); rmSync(dir, { recursive: true, force: true }); };
      return client;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Connects to a target listening on a unix socket (`-qtest unix:PATH,server=on`). */
  static async connectUnix(name: string, path: string): Promise<QtestClient> {
    const sock: Socket = await new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    const client = new QtestClient(name, sock, sock);
    client.cleanup = () => sock.destroy();
    await client.probe();
    return client;
  }

  /** Checks the target answers, then probes the clock and the MSI extension. */
  async probe(): Promise<void> {
    const endian = await this.command('endianness');
    if (endian !== 'OK little') throw new QtestError(`unexpected endianness reply '${endian}'`);
    const step = await this.command('clock_step 0');
    this.mode = step.startsWith('OK') || step === CLOCK_STEP_ZERO_REFUSED ? 'virtual' : 'real';
    if (step.startsWith('OK ')) this.virtualNs = Number(step.slice(3));
    const intx = await this.command('irq_intercept_in ioapic');
    const msi = await this.command('msi_intercept');
    this.caps = { intx: intx === 'OK', msi: msi === 'OK' };
  }

  /** Sends one raw command line; resolves with its reply line (FAIL included). */
  command(line: string): Promise<string> {
    if (this.closed) return Promise.reject(new QtestError(`qtest target gone: ${this.stderrTail.trim()}`));
    return new Promise((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.output.write(line + '\n');
    });
  }

  /** Sends a command that must answer `OK [value]`; returns the text after `OK`. */
  async ok(line: string): Promise<string> {
    const reply = await this.command(line);
    if (reply === 'OK') return '';
    if (reply.startsWith('OK ')) return reply.slice(3);
    throw new QtestError(`'${line}' -> '${reply}'`);
  }

  async read(addr: number, size: AccessWidth): Promise<number> {
    return Number(BigInt(await this.ok(`read${SUFFIX[size]} ${hex(addr)}`)));
  }
  async write(addr: number, size: AccessWidth, value: number): Promise<void> {
    await this.ok(`write${SUFFIX[size]} ${hex(addr)} ${hex(value >>> 0)}`);
  }
  async read64(addr: number): Promise<bigint> {
    return BigInt(await this.ok(`readq ${hex(addr)}`));
  }
  async write64(addr: number, value: bigint): Promise<void> {
    await this.ok(`writeq ${hex(addr)} 0x${BigInt.asUintN(64, value).toString(16)}`);
  }
  async in(port: number, size: AccessWidth): Promise<number> {
    return Number(BigInt(await this.ok(`in${SUFFIX[size]} ${hex(port)}`)));
  }
  async out(port: number, size: AccessWidth, value: number): Promise<void> {
    await this.ok(`out${SUFFIX[size]} ${hex(port)} ${hex(value >>> 0)}`);
  }

  async readBytes(addr: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let done = 0; done < length; done += BYTES_PER_COMMAND) {
      const n = Math.min(BYTES_PER_COMMAND, length - done);
      const text = await this.ok(`read ${hex(addr + done)} ${hex(n)}`);
      out.set(Buffer.from(text.slice(2), 'hex').subarray(0, n), done);
    }
    return out;
  }
  async writeBytes(addr: number, bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length; done += BYTES_PER_COMMAND) {
      const part = bytes.subarray(done, Math.min(bytes.length, done + BYTES_PER_COMMAND));
      await this.ok(`write ${hex(addr + done)} ${hex(part.length)} 0x${Buffer.from(part).toString('hex')}`);
    }
  }
  async fill(addr: number, length: number, byte: number): Promise<void> {
    if (length > 0) await this.ok(`memset ${hex(addr)} ${hex(length)} ${hex(byte & 0xff)}`);
  }

  onInterrupt(kind: 'msi' | 'intx', vector: number, handler: InterruptHandler): void {
    this.hub.on(kind, vector, handler);
  }
  takeInterrupts(): GuestInterrupt[] { return this.hub.take(); }

  async sleep(ns: number): Promise<void> {
    if (this.mode === 'virtual') {
      const step = Math.round(ns);
      // A zero step moves no time (and QEMU 11.1 refuses it).
      if (step > 0) this.virtualNs = Number(await this.ok(`clock_step ${step}`));
    } else {
      await new Promise((r) => setTimeout(r, Math.ceil(ns / 1e6)));
      await this.command('endianness'); // let pending asynchronous lines arrive
    }
  }
  async now(): Promise<number> {
    if (this.mode === 'virtual') {
      // vtemu reports the clock; QEMU 11.1 refuses a zero step, and then only our own steps moved it.
      const reply = await this.command('clock_step 0');
      if (reply === CLOCK_STEP_ZERO_REFUSED) return this.virtualNs;
      if (!reply.startsWith('OK ')) throw new QtestError(`'clock_step 0' -> '${reply}'`);
      this.virtualNs = Number(reply.slice(3));
      return this.virtualNs;
    }
    return Math.round((performance.now() - this.started) * 1e6);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.output.end();
    this.cleanup();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trimEnd();
      this.buffer = this.buffer.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (line.startsWith('IRQ ')) {
      const [, what, pin] = line.split(' ');
      this.hub.deliver({ kind: 'intx', vector: Number(pin), level: what === 'raise' });
      return;
    }
    if (line.startsWith('MSI ')) {
      const [, a, d] = line.split(' ');
      const data = Number(d);
      this.hub.deliver({ kind: 'msi', vector: data & MSI_DATA_VECTOR_MASK, address: Number(a), data });
      return;
    }
    const p = this.pending.shift();
    if (p) p.resolve(line);
  }

  private onClose(why: string): void {
    if (this.closed && this.pending.length === 0) return;
    this.closed = true;
    const err = new QtestError(`qtest target gone (${why}) ${this.stderrTail.trim()}`);
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}
