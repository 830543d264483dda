/**
 * QEMU as the oracle: a qtest runner for QEMU 11.1 (the sid chroot, `-accel
 * qtest`: virtual time moves only by `clock_step`) and QEMU 7.2 (Debian 12's
 * binary, no qtest accelerator: the virtual clock runs in real time).  Both
 * get the 64 KiB halt firmware as `-bios`, as vtemu does in differential
 * runs: on 7.2 it keeps the CPU halted, on 11.1 (no CPU runs) it makes the
 * ROM areas the same on both sides.  Which binaries exist is oracle.ts's
 * business.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import { haltFirmwareImage, QtestClient } from '../../src/guest/qtest-client.js';
import { LineSplitter, type QtestRunner } from './runner.js';
import { DEFAULT_ORACLE, qemuOracle, type QemuOracle, type QemuVersion } from './oracle.js';

/** Options of a QEMU session. */
export interface QemuStartOptions {
  /** Also open a QMP socket (for systemReset()). */
  readonly qmp?: boolean;
  /** The release (default 11.1, DEFAULT_ORACLE). */
  readonly version?: QemuVersion;
}

/**
 * The command line the harness starts a QEMU release with, before the test's
 * own arguments: `[-bios halt.bin] -machine q35 [-accel qtest] -qtest stdio
 * -display none -nodefaults`.  `bios` is the halt firmware (null: QEMU's own).
 */
export function qemuBaseArgs(o: QemuOracle, args: readonly string[], bios: string | null): string[] {
  const hasMachine = args.includes('-machine') || args.includes('-M');
  return [
    ...o.prefix,
    ...(bios ? ['-bios', bios] : []),
    ...(hasMachine ? [] : ['-machine', 'q35']),
    ...(o.qtestAccel ? ['-accel', 'qtest'] : []),
    '-qtest', 'stdio', '-display', 'none', '-nodefaults',
  ];
}

/** A temp dir QEMU can open files in (inside its chroot); [host path, path as QEMU sees it]. */
export function qemuTempDir(o: QemuOracle): [string, string] {
  if (!o.root) {
    const d = mkdtempSync(join('/tmp', 'vtemu-qemu-'));
    return [d, d];
  }
  mkdirSync(join(o.root, 'tmp'), { recursive: true });
  const d = mkdtempSync(join(o.root, 'tmp', 'vtemu-qemu-'));
  return [d, '/' + relative(o.root, d)];
}

/** A QEMU qtest session. */
export class QemuRunner implements QtestRunner {
  readonly name: string;
  private readonly lines = new LineSplitter();
  private stderrText = '';
  private exited = false;

  private qmp: { sock: Socket; lines: LineSplitter } | null = null;

  private constructor(
    private readonly oracle: QemuOracle,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly dir: string,
    private readonly qmpPath: string | null,
  ) {
    this.name = `qemu-${oracle.version}`;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.lines.push(d));
    child.stderr.on('data', (d: string) => {
      this.stderrText += d;
    });
    child.on('exit', (code) => {
      this.exited = true;
      this.lines.fail(new Error(`qemu exited (${code}): ${this.stderrText.trim().split('\n').pop() ?? ''}`));
    });
  }

  /**
   * Starts QEMU `version` (default 11.1) with the base arguments and ARGS;
   * with `qmp`, also a QMP socket for systemReset().  Throws when that
   * release is not installed (tests gate on needQemu first).
   */
  static start(args: readonly string[] = [], opts: QemuStartOptions = {}): QemuRunner {
    const version = opts.version ?? DEFAULT_ORACLE;
    const o = qemuOracle(version);
    if (!o) throw new Error(`QEMU ${version} is not installed (see scripts/qemu-11-oracle.sh and test/harness/oracle.ts)`);
    const [dir, seen] = qemuTempDir(o);
    // 7.2 runs its CPU: the halt firmware keeps it halted.  11.1 (-accel qtest) runs no CPU, but
    // gets the same image so that its ROM areas are vtemu's (diffTranscripts gives vtemu the same).
    let bios: string | null = null;
    if (!args.includes('-bios')) {
      writeFileSync(join(dir, 'halt.bin'), haltFirmwareImage());
      bios = join(seen, 'halt.bin');
    }
    const qmpPath = opts.qmp ? join(dir, 'qmp.sock') : null;
    const child = spawn(
      o.command,
      [
        ...qemuBaseArgs(o, args, bios),
        ...(qmpPath ? ['-qmp', `unix:${join(seen, 'qmp.sock')},server=on,wait=off`] : []),
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    return new QemuRunner(o, child, dir, qmpPath);
  }

  /** Connects to the QMP socket (retrying while QEMU starts) and negotiates. */
  private async qmpSession(): Promise<{ sock: Socket; lines: LineSplitter }> {
    if (this.qmp) return this.qmp;
    if (!this.qmpPath) throw new Error('QemuRunner started without qmp');
    for (let i = 0; i < 200; i++) {
      const sock = await new Promise<Socket | null>((resolve) => {
        const s = createConnection(this.qmpPath!);
        s.once('connect', () => resolve(s));
        s.once('error', () => setTimeout(() => resolve(null), 25));
      });
      if (!sock) continue;
      const lines = new LineSplitter();
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => lines.push(d));
      await lines.next();
      sock.write('{"execute": "qmp_capabilities"}\n');
      await lines.next();
      return (this.qmp = { sock, lines });
    }
    throw new Error('could not connect to QEMU QMP');
  }

  /** QMP system_reset; resolves once QEMU reports the RESET event (the reset is done). */
  async systemReset(): Promise<void> {
    const q = await this.qmpSession();
    q.sock.write('{"execute": "system_reset"}\n');
    for (let i = 0; i < 10; i++) {
      const line = await q.lines.next();
      if (line.includes('"RESET"')) return;
    }
    throw new Error('no RESET event from QEMU');
  }

  /** What QEMU wrote to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  command(line: string): Promise<string> {
    if (this.exited) return Promise.resolve('<qemu exited>');
    this.child.stdin.write(line + '\n');
    return this.lines.next();
  }

  takeAsync(): string[] {
    return this.lines.takeAsync();
  }

  /** 7.2: sleeps `ms` of wall time; 11.1: `clock_step virtualNs`. */
  async wait(ms: number, virtualNs: number): Promise<void> {
    if (this.oracle.qtestAccel) await this.command(`clock_step ${virtualNs}`);
    else await new Promise((r) => setTimeout(r, ms));
  }

  async close(): Promise<void> {
    this.qmp?.sock.destroy();
    if (!this.exited) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await gone;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A guest-side QtestClient (src/guest) on QEMU `version`: the guests'
 * transport, started with the same command line as QemuRunner.
 */
export async function qemuClient(version: QemuVersion, args: readonly string[]): Promise<QtestClient> {
  const o = qemuOracle(version);
  if (!o) throw new Error(`QEMU ${version} is not installed`);
  if (!o.qtestAccel) return QtestClient.spawnQemu(args, o.command);
  return QtestClient.spawn(`qtest QEMU ${version}`, o.command, [...qemuBaseArgs(o, args, null), ...args]);
}
