/**
 * The `vtemu` command line: QEMU's argument syntax for what this emulator
 * models (-machine/-M, -accel, -m, -device, -qtest, -qmp, -trace,
 * --machine FILE) and the QEMU options test scripts pass that do not matter
 * here (-display, -nodefaults, -bios, -S, ...), accepted and ignored.
 * Errors are printed as `vtemu: OPTION ARG: MESSAGE` and exit 1.
 *
 * What QEMU 11.1 refuses is refused with its message (test/diff/
 * cli-validation.test.ts holds the corpus and the documented differences):
 * `-m` forms and limits (including what the host can allocate), `-machine`
 * property types, `-accel` choice and properties, `-smp`.  Output is flushed
 * before the process exits (main(), runAsProgram()).
 */
import { pathToFileURL } from 'node:url';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createMachine, type Machine, type MachineOptions } from './machine/q35.js';
import { ConfigError, parseDeviceArg } from './machine/registry.js';
import { loadMachineFile } from './machine/machine-file.js';
import { PatternTracer } from './machine/tracer.js';
import {
  applyMachineArg,
  checkMemoryConfig,
  checkMemoryOption,
  checkSmpOption,
  machineArgsSetAccel,
  parseAccelOption,
  resolveMachineArgs,
  type AccelName,
  type MachineArgs,
} from './machine/machine-options.js';
import { MemSizeError, parseMemSize } from './memory/ram-layout.js';
import { QtestServer } from './qtest/server.js';
import { QmpSession } from './qtest/qmp.js';
import { flushStream, openChannel, parseChardev, type Channel, type ChardevSpec } from './qtest/transport.js';
import type { DmarExtras } from './machine/dmar-wiring.js';
import { loadBiosImage } from './machine/firmware-rom.js';

/** Program name used in messages. */
export const PROG = 'vtemu';

/** Options that take an argument and are ignored (QEMU compatibility). */
const IGNORED_WITH_ARG = new Set(['display', 'serial', 'monitor', 'qtest-log', 'vga', 'name', 'cpu', 'L', 'global', 'rtc', 'boot', 'uuid', 'parallel', 'net', 'nic']);
/** Flags that are ignored. */
const IGNORED_FLAGS = new Set(['nodefaults', 'S', 'no-reboot', 'no-shutdown', 'nographic', 'no-user-config']);

/** Options that take an argument and are handled here. */
const WITH_ARG = new Set(['machine', 'M', 'accel', 'm', 'device', 'qtest', 'qmp', 'trace', 'machine-file', 'bios', 'chardev', 'mon', 'smp']);

/** What the command line asks for. */
export interface CliConfig {
  readonly machine: MachineOptions;
  readonly qtest: ChardevSpec | null;
  readonly qmp: ChardevSpec | null;
  readonly trace: readonly string[];
}

/** Parse outcome: run, or print and exit. */
export type CliParse = { readonly kind: 'run'; readonly config: CliConfig; readonly warnings: readonly string[] } | { readonly kind: 'exit'; readonly code: number; readonly stdout: string; readonly stderr: string };

const USAGE = `usage: ${PROG} [-machine q35[,prop=value...]] [-accel qtest] [-m SIZE] [-device TYPE[,prop=value...]]...
            [-qtest stdio|unix:PATH[,server]] [-qmp unix:PATH[,server]] [-trace PATTERN]...
            [--machine FILE.json]
'-device help' lists device types; '-device TYPE,help' lists a type's properties.
`;

function exit(code: number, stdout: string, stderr = ''): CliParse {
  return { kind: 'exit', code, stdout, stderr };
}

/** `k=v` elements as a record (no escapes; an element without `=` maps to ''). */
function keyValues(parts: readonly string[]): Record<string, string> {
  return Object.fromEntries(parts.map((kv) => [kv.split('=')[0], kv.split('=').slice(1).join('=')]));
}

/**
 * A non-option argument: QEMU opens it as a disk image.  vtemu has no disks:
 * a missing file gets QEMU's message, an existing one vtemu's refusal.
 */
function imageArgError(arg: string): ConfigError {
  if (!existsSync(arg)) return new ConfigError(`Could not open '${arg}': No such file or directory`, arg);
  return new ConfigError('disk images are not supported (vtemu models no block devices)', arg);
}

/**
 * The accelerator of the `-accel` options: as QEMU 11.1, the first known
 * one wins; a bad property of a known one is fatal; when none is known,
 * every one is reported.  Null without `-accel`.
 */
function chooseAccel(args: readonly string[]): AccelName | null {
  let chosen: AccelName | null = null;
  for (const a of args) {
    let name: AccelName | null;
    try {
      name = parseAccelOption(a);
    } catch (e) {
      throw new ConfigError((e as Error).message, `-accel ${a}`);
    }
    chosen ??= name;
  }
  if (chosen !== null || args.length === 0) return chosen;
  const lines = args.map((a) => `-accel ${a}: invalid accelerator ${a.split(',')[0]}`);
  throw new ConfigError(`invalid accelerator ${args.at(-1)!.split(',')[0]}`, `-accel ${args.at(-1)!}`, lines.slice(0, -1));
}

/** Parses argv (without node and script); never throws. */
export function parseCli(argv: readonly string[]): CliParse {
  const machineArgs: string[] = [];
  const devices: string[] = [];
  const trace: string[] = [];
  const warnings: string[] = [];
  const accelArgs: string[] = [];
  let enableKvm = false;
  let memory: string | undefined;
  let qtest: ChardevSpec | null = null;
  let qmp: ChardevSpec | null = null;
  let dmar: DmarExtras | undefined;
  let bios: Uint8Array | undefined;
  const chardevs = new Map<string, ChardevSpec>();
  const fileDevices: string[] = [];
  const fileMachine: string[] = [];
  let fileMemory: string | undefined;
  const addMachineFile = (path: string): void => {
    const f = loadMachineFile(path);
    fileMachine.push(f.machine);
    if (f.m !== undefined) fileMemory = f.m;
    fileDevices.push(...f.devices);
    if (f.dmar) dmar = f.dmar;
  };
  try {
    for (let i = 0; i < argv.length; i++) {
      const raw = argv[i]!;
      if (!raw.startsWith('-')) throw imageArgError(raw);
      const name = raw.replace(/^--?/, '');
      const takesArg = WITH_ARG.has(name) || IGNORED_WITH_ARG.has(name);
      let arg = '';
      if (takesArg) {
        if (i + 1 >= argv.length) throw new ConfigError('requires an argument', raw);
        arg = argv[++i]!;
      }
      const where = `${raw} ${arg}`;
      switch (name) {
        case 'h':
        case 'help':
          return exit(0, USAGE);
        case 'version':
          return exit(0, `${PROG} version 0.1.0 (QEMU 7.2 compatible front door)\n`);
        case 'machine':
        case 'M':
          if (raw === '--machine' && arg.endsWith('.json')) {
            addMachineFile(arg);
            break;
          }
          if (arg === 'help' || arg.split(',').includes('help')) return exit(0, `Supported machines are:\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\npc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n`);
          machineArgs.push(arg);
          break;
        case 'machine-file':
          addMachineFile(arg);
          break;
        case 'accel':
          accelArgs.push(arg);
          break;
        case 'm':
          checkMemoryOption(arg);
          memory = arg;
          break;
        case 'smp':
          checkSmpOption(arg);
          break;
        case 'enable-kvm':
          enableKvm = true;
          break;
        case 'device': {
          const parsed = parseDeviceArg(arg);
          if (parsed.kind === 'help') {
            return exit(0, parsed.text, parsed.warnings.map((w) => `${PROG}: ${w}\n`).join(''));
          }
          devices.push(arg);
          break;
        }
        case 'qtest':
        case 'qmp': {
          const spec = parseChardev(arg);
          if (!spec) throw new ConfigError(`'${arg}' is not a supported chardev (use stdio or unix:PATH[,server])`, where);
          if (name === 'qtest') qtest = spec;
          else qmp = spec;
          break;
        }
        case 'trace':
          trace.push(arg);
          break;
        case 'chardev': {
          // libqtest: -chardev socket,path=P,id=ID[,server=on,wait=off] with -mon chardev=ID,mode=control
          const o = keyValues(arg.split(',').slice(1));
          const id = o['id'];
          if (!arg.startsWith('socket,') || !o['path'] || !id) throw new ConfigError(`only '-chardev socket,path=PATH,id=ID' is supported`, where);
          const server = o['server'] === '' || o['server'] === 'on';
          chardevs.set(id, { kind: 'unix', path: o['path'], server });
          break;
        }
        case 'mon': {
          const o = keyValues(arg.split(','));
          const spec = chardevs.get(o['chardev'] ?? '');
          if (!spec) throw new ConfigError(`chardev '${o['chardev'] ?? ''}' not found`, where);
          if (o['mode'] !== 'control') throw new ConfigError(`only mode=control (QMP) monitors are supported`, where);
          qmp = spec;
          break;
        }
        case 'bios':
          bios = loadBiosImage(arg);
          break;
        default:
          if (IGNORED_WITH_ARG.has(name) || IGNORED_FLAGS.has(name)) break;
          throw new ConfigError('invalid option', raw);
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) return exit(1, '', e.lines(PROG));
    return exit(1, '', `${PROG}: ${(e as Error).message}\n`);
  }
  const mem = memory ?? fileMemory;
  let accel: AccelName | null;
  try {
    if (accelArgs.length > 0 && (enableKvm || machineArgsSetAccel([...fileMachine, ...machineArgs]))) {
      throw new ConfigError('The -accel and "-machine accel=" options are incompatible');
    }
    accel = chooseAccel(accelArgs);
  } catch (e) {
    return exit(1, '', e instanceof ConfigError ? e.lines(PROG) : `${PROG}: ${(e as Error).message}\n`);
  }
  const machine: MachineOptions = {
    machine: [...fileMachine, ...machineArgs, ...(enableKvm ? ['accel=kvm'] : [])],
    devices: [...fileDevices, ...devices],
    qtest: qtest !== null,
    ...(accel !== null ? { accel } : {}),
    ...(mem !== undefined ? { memory: mem } : {}),
    ...(dmar !== undefined ? { dmar } : {}),
    ...(bios !== undefined ? { bios } : {}),
  };
  return { kind: 'run', config: { machine, qtest, qmp, trace }, warnings };
}

/**
 * Bytes of guest RAM the host would let QEMU allocate, by Linux's overcommit
 * policy (vm.overcommit_memory): 0 (heuristic) refuses one mapping larger
 * than RAM plus swap, 1 never refuses, 2 refuses beyond the commit limit.
 * Infinity where /proc is not there.
 */
export function hostRamLimit(): number {
  try {
    const mode = readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim();
    const info = readFileSync('/proc/meminfo', 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? NaN) * 1024;
    if (mode === '1') return Infinity;
    if (mode === '2') return kib('CommitLimit') - kib('Committed_AS');
    const limit = kib('MemTotal') + kib('SwapTotal');
    return Number.isFinite(limit) ? limit : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * The checks QEMU 11.1 makes when the machine starts, in its order: machine
 * properties, then `-m` against maxmem/slots and what the host can allocate.
 * Throws ConfigError.
 */
function checkMachineMemory(options: MachineOptions): void {
  const margs: MachineArgs = {};
  for (const m of options.machine ?? []) applyMachineArg(m, margs);
  if (options.accel !== undefined) applyMachineArg(`accel=${options.accel}`, margs);
  resolveMachineArgs(margs);
  if (typeof options.memory !== 'string') return;
  let size: number | null;
  try {
    size = parseMemSize(options.memory);
  } catch (e) {
    // Beyond what a number holds exactly is far beyond any host; other errors are the size's own.
    if (!(e instanceof MemSizeError) || !/too large/.test(e.message)) throw new ConfigError((e as Error).message);
    size = null;
  }
  checkMemoryConfig(options.memory, size, hostRamLimit());
}

/** Builds the machine of a parsed command line; ConfigError lines go to `err`. */
export function buildMachine(config: CliConfig, err: (line: string) => void): Machine | null {
  const tracer = new PatternTracer(config.trace, (line) => err(line));
  try {
    checkMachineMemory(config.machine);
    return createMachine({ ...config.machine, tracer, warn: (w) => err(`${PROG}: ${w}`) });
  } catch (e) {
    if (e instanceof ConfigError) err(e.lines(PROG).trimEnd());
    else err(`${PROG}: ${(e as Error).message.replace(/^vtemu: /, '')}`);
    return null;
  }
}

/**
 * How long a signal waits for a reader to take the replies already produced
 * before the process exits anyway (a second signal exits at once).
 */
const SIGNAL_FLUSH_LIMIT_MS = 10_000;

/** Resolves when every channel has flushed, or after `limitMs` (null: no limit). */
function flushAll(channels: readonly Channel[], limitMs: number | null): Promise<void> {
  const flushed = Promise.all(channels.map((c) => c.flush())).then(() => undefined);
  if (limitMs === null) return flushed;
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, limitMs);
    void flushed.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Runs vtemu; resolves with the exit code when the front doors close, after
 * every reply already produced has been flushed to its reader.
 *
 * The qtest session ends at EOF on stdin or when its socket peer goes away
 * (QEMU 11.1 keeps running until killed; vtemu exits 0, as QEMU does on
 * SIGTERM).  A reader that vanishes while its input is still open (EPIPE)
 * only loses its replies: commands keep running until EOF, as in QEMU.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCli(argv);
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.stdout);
    process.stderr.write(parsed.stderr);
    return parsed.code;
  }
  const err = (line: string): void => {
    process.stderr.write(line + '\n');
  };
  const machine = buildMachine(parsed.config, err);
  if (!machine) return 1;
  return new Promise<number>((resolve) => {
    let done = false;
    const channels: Channel[] = [];
    let server: QtestServer | null = null;
    const keepAlive = setInterval(() => {}, 1 << 30);
    const finish = (code: number, flushLimitMs: number | null = null): void => {
      if (done) return;
      done = true;
      server?.close();
      machine.dispose();
      void flushAll(channels, flushLimitMs).then(() => {
        for (const ch of channels) ch.close();
        clearInterval(keepAlive);
        resolve(code);
      });
    };
    const onSignal = (): void => {
      if (done) process.exit(0);
      finish(0, SIGNAL_FLUSH_LIMIT_MS);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    const { qtest, qmp } = parsed.config;
    if (qmp) {
      // QMP reads bytes (QEMU's JSON lexer sees invalid UTF-8 as it is) and writes UTF-8 JSON.
      openChannel(qmp, { input: 'latin1', output: 'utf8' }).then(
        (ch) => {
          channels.push(ch);
          const session = new QmpSession({ reset: () => machine.reset(), quit: () => finish(0) }, (t) => ch.write(t));
          ch.onData((d) => session.feed(Buffer.from(d, 'latin1')));
          session.greet();
        },
        (e: Error) => {
          err(`${PROG}: -qmp: ${e.message}`);
          finish(1);
        },
      );
    }
    if (qtest) {
      // qtest is a byte protocol: a word echoed in a reply comes back byte for byte.
      openChannel(qtest, { input: 'latin1', output: 'latin1' }).then(
        (ch) => {
          channels.push(ch);
          const s = new QtestServer(machine, (t) => ch.write(t));
          server = s;
          ch.onData((d) => s.feed(d));
          ch.onClose(() => finish(0));
        },
        (e: Error) => {
          err(`${PROG}: -qtest: ${e.message}`);
          finish(1);
        },
      );
    }
  });
}

/** Runs main() as the program: exits with its code once stdout and stderr are flushed. */
async function runAsProgram(): Promise<void> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).stack ?? String(e)}\n`);
    code = 1;
  }
  await flushStream(process.stdout);
  await flushStream(process.stderr);
  process.exit(code);
}

/** True when this module is the program being run (not imported). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // Output errors (a reader that went away) are handled per channel; these keep stray ones from killing the process.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  void runAsProgram();
}
