/**
 * vtemu as a qtest target: in-process (the CLI's argument parser and machine
 * builder, the same QtestServer class, replies through a LineSplitter) and
 * as the spawned CLI (compiled from the current sources once per test run,
 * see global-setup.ts).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { inject } from 'vitest';
import type { PlatformOptions } from '../../src/demo/platforms.js';
import { fileURLToPath } from 'node:url';
import { buildMachine, parseCli } from '../../src/cli.js';
import type { Machine } from '../../src/machine/q35.js';
import type { RamBackendName } from '../../src/memory/ram-backend.js';
import { QtestServer } from '../../src/qtest/server.js';
import { LineSplitter, type QtestRunner } from './runner.js';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** An in-process vtemu qtest session (virtual clock: `-accel qtest`). */
export class VtemuRunner implements QtestRunner {
  readonly name = 'vtemu';
  private readonly lines = new LineSplitter();
  readonly server: QtestServer;
  /** stderr lines (traces, warnings). */
  readonly stderr: string[] = [];

  private constructor(readonly machine: Machine) {
    this.server = new QtestServer(machine, (t) => this.lines.push(t));
  }

  /** Builds a machine from QEMU-style arguments; throws with the CLI's message on a bad configuration. */
  static start(args: readonly string[] = [], opts: { realClock?: boolean; ramBackend?: RamBackendName } = {}): VtemuRunner {
    const parsed = parseCli([...(opts.realClock ? [] : ['-accel', 'qtest']), ...args]);
    if (parsed.kind === 'exit') throw new Error(parsed.stderr || parsed.stdout);
    const errs: string[] = [];
    const config = opts.ramBackend ? { ...parsed.config, machine: { ...parsed.config.machine, ramBackend: opts.ramBackend } } : parsed.config;
    const machine = buildMachine(config, (l) => errs.push(l));
    if (!machine) throw new Error(errs.join('\n'));
    const r = new VtemuRunner(machine);
    r.stderr.push(...errs);
    return r;
  }

  /** A session on a machine built elsewhere (e.g. restored from a snapshot, test/harness/snapshot.ts). */
  static fromMachine(machine: Machine): VtemuRunner {
    return new VtemuRunner(machine);
  }

  command(line: string): Promise<string> {
    this.server.handleLine(line);
    return this.lines.next(1000);
  }

  takeAsync(): string[] {
    return this.lines.takeAsync();
  }

  async wait(ms: number, virtualNs: number): Promise<void> {
    if (this.machine.clock.mode === 'qtest') this.machine.clock.step(virtualNs);
    else await new Promise((r) => setTimeout(r, ms));
  }

  async systemReset(): Promise<void> {
    this.machine.reset();
  }

  async close(): Promise<void> {
    this.server.close();
    this.machine.dispose();
  }
}

/**
 * The CLI compiled from the current sources for this test run (by
 * global-setup.ts), never the package's dist/.
 */
export function buildCli(): string {
  const cli = inject('vtemuCli');
  // Without the global setup (a config that does not compile the sources) there is no CLI under test: never fall back to dist/.
  if (typeof cli !== 'string') throw new Error('the CLI under test was not compiled: run with vitest.config.ts (its globalSetup compiles the sources)');
  return cli;
}

/** Platform options that make `vtemu-cli` platforms run the CLI under test. */
export function platformOptions(o: PlatformOptions = {}): PlatformOptions {
  return { ...o, cli: buildCli() };
}

/** Runs the CLI to completion with no input; returns its exit code and output. */
export function runCli(args: readonly string[], input = ''): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [buildCli(), ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The spawned CLI as a qtest target (`-qtest stdio`). */
export class VtemuCliRunner implements QtestRunner {
  readonly name = 'vtemu-cli';
  private readonly lines = new LineSplitter();
  private stderrText = '';

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.lines.push(d));
    child.stderr.on('data', (d: string) => {
      this.stderrText += d;
    });
    child.on('exit', (code) => this.lines.fail(new Error(`vtemu exited (${code}): ${this.stderrText.trim()}`)));
  }

  /** Spawns `node cli.js -qtest stdio ARGS` (extra environment variables in `env`). */
  static start(args: readonly string[] = [], env: Readonly<Record<string, string>> = {}): VtemuCliRunner {
    const child = spawn(process.execPath, [buildCli(), '-qtest', 'stdio', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    return new VtemuCliRunner(child);
  }

  get stderr(): string {
    return this.stderrText;
  }

  command(line: string): Promise<string> {
    this.child.stdin.write(line + '\n');
    return this.lines.next();
  }

  takeAsync(): string[] {
    return this.lines.takeAsync();
  }

  async wait(ms: number, virtualNs: number): Promise<void> {
    const r = await this.command(`clock_step ${virtualNs}`);
    if (r.startsWith('FAIL')) await new Promise((res) => setTimeout(res, ms));
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGTERM'), 2000);
      await gone;
      clearTimeout(t);
    }
  }
}
