/**
 * QEMU 7.2 as the oracle: `qemuAvailable()` and a qtest runner that spawns
 * qemu-system-x86_64 with a 64 KiB halt firmware (cli; hlt; jmp at the reset
 * vector, made in a temp dir) so the CPU stays halted and the virtual clock
 * runs in real time (7.2 has no qtest accelerator).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import { makeHaltFirmware } from '../../src/guest/qtest-client.js';
import { LineSplitter, type QtestRunner } from './runner.js';

/** The QEMU binary used as the oracle. */
export const QEMU_BINARY = process.env['VTEMU_QEMU'] ?? 'qemu-system-x86_64';

let available: boolean | undefined;

/** True when QEMU can be spawned here (cached). */
export function qemuAvailable(): boolean {
  if (available === undefined) {
    try {
      available = spawnSync(QEMU_BINARY, ['--version'], { timeout: 10_000 }).status === 0;
    } catch {
      available = false;
    }
  }
  return available;
}

/** Prints the loud skip notice differential tests show without QEMU. */
export function noteQemuSkip(suite: string): void {
  if (!qemuAvailable()) console.warn(`SKIPPED: qemu-system-x86_64 not found (${suite})`);
}

/** A QEMU 7.2 qtest session. */
export class QemuRunner implements QtestRunner {
  readonly name = 'qemu-7.2';
  private readonly lines = new LineSplitter();
  private stderrText = '';
  private exited = false;

  private qmp: { sock: Socket; lines: LineSplitter } | null = null;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly dir: string,
    private readonly qmpPath: string | null,
  ) {
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
   * Spawns `qemu -bios halt.bin -machine q35 -qtest stdio -display none
   * -nodefaults ARGS`; with `qmp`, also a QMP socket for systemReset().
   */
  static start(args: readonly string[] = [], opts: { qmp?: boolean } = {}): QemuRunner {
    const [dir, bios] = makeHaltFirmware();
    const hasMachine = args.includes('-machine') || args.includes('-M');
    const qmpPath = opts.qmp ? join(dir, 'qmp.sock') : null;
    const child = spawn(
      QEMU_BINARY,
      [
        '-bios', bios,
        ...(hasMachine ? [] : ['-machine', 'q35']),
        '-qtest', 'stdio', '-display', 'none', '-nodefaults',
        ...(qmpPath ? ['-qmp', `unix:${qmpPath},server=on,wait=off`] : []),
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    return new QemuRunner(child, dir, qmpPath);
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

  async wait(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
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
