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
import { existsSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
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
  machineType,
  parseAccelOption,
  resolveMachineArgs,
  type AccelName,
  type MachineArgs,
} from './machine/machine-options.js';
import { MemSizeError, parseMemSize } from './memory/ram-layout.js';
import { QtestServer, type QtestTarget } from './qtest/server.js';
import { QtestLog } from './qtest/qtest-log.js';
import { debugSummary } from './monitor/debug-summary.js';
import { NoneMachine, NONE_MACHINE } from './machine/none-machine.js';
import { GLOBAL_HELP_TEXT, isGlobalHelp } from './machine/globals.js';
import { checkAudioOption, checkNetOption, MACHINE_HELP, parseRunWith } from './machine/process-options.js';
import { QmpSession } from './qtest/qmp.js';
import { flushStream, openChannel, parseChardev, type Channel, type ChardevSpec } from './qtest/transport.js';
import type { DmarExtras } from './machine/dmar-wiring.js';
import { loadBiosImage } from './machine/firmware-rom.js';
import { infoIommu } from './monitor/info-iommu.js';
import { machineUnits } from './monitor/inspect.js';
import { fileUriPath, readStateFile } from './machine/snapshot-file.js';

/** Program name used in messages. */
export const PROG = 'vtemu';

/** Options that take an argument and are ignored (QEMU compatibility). */
const IGNORED_WITH_ARG = new Set(['display', 'serial', 'monitor', 'vga', 'name', 'cpu', 'L', 'rtc', 'parallel', 'nic']);
/** Flags that are ignored. */
const IGNORED_FLAGS = new Set(['nodefaults', 'S', 'no-reboot', 'no-shutdown', 'nographic', 'no-user-config']);

/** Options that take an argument and are handled here. */
const WITH_ARG = new Set([
  'machine', 'M', 'accel', 'm', 'device', 'qtest', 'qmp', 'trace', 'machine-file', 'bios', 'chardev', 'mon', 'smp',
  'qtest-log', 'audio', 'run-with', 'net', 'global', 'uuid', 'boot', 'object', 'numa', 'incoming', 'inspect',
]);

/** What the command line asks for. */
export interface CliConfig {
  readonly machine: MachineOptions;
  readonly qtest: ChardevSpec | null;
  readonly qmp: ChardevSpec | null;
  readonly trace: readonly string[];
  /** `-qtest-log`: a file, 'none', or null for QEMU's default (stderr). */
  readonly qtestLog: string | null;
  /** `-run-with exit-with-parent=on`: exit when the parent process goes away. */
  readonly exitWithParent: boolean;
  /** `-inspect ARGS` (vtemu): print `info iommu ARGS` (the VT-d inspector) to stderr at exit. */
  readonly inspect?: string;
  /** `-incoming file:PATH`: the machine starts from the state in PATH (snapshot-file.ts). */
  readonly incoming?: string;
}

/** Parse outcome: run, or print and exit. */
export type CliParse = { readonly kind: 'run'; readonly config: CliConfig; readonly warnings: readonly string[] } | { readonly kind: 'exit'; readonly code: number; readonly stdout: string; readonly stderr: string };

const USAGE = `usage: ${PROG} [-machine q35[,prop=value...]] [-accel qtest] [-m SIZE] [-device TYPE[,prop=value...]]...
            [-qtest stdio|unix:PATH[,server]] [-qmp unix:PATH[,server]] [-trace PATTERN]...
            [--machine FILE.json] [-inspect 'INFO-IOMMU-ARGS']
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
  let qtestLog: string | null = null;
  let inspect: string | undefined;
  let exitWithParent = false;
  let smp: string | undefined;
  let uuid: string | undefined;
  const boot: string[] = [];
  const globals: string[] = [];
  const objects: string[] = [];
  const numa: string[] = [];
  let bios: Uint8Array | undefined;
  let incoming: string | undefined;
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
          return exit(0, `${PROG} version 0.1.0 (QEMU 11.1 compatible front door)\n`);
        case 'machine':
        case 'M':
          if (raw === '--machine' && arg.endsWith('.json')) {
            addMachineFile(arg);
            break;
          }
          if (arg === 'help' || arg.split(',').includes('help')) return exit(0, MACHINE_HELP);
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
          smp = arg;
          break;
        case 'qtest-log':
          qtestLog = arg;
          break;
        case 'inspect':
          inspect = arg;
          break;
        case 'audio':
          checkAudioOption(arg);
          break;
        case 'run-with':
          exitWithParent = parseRunWith(arg) ?? exitWithParent;
          break;
        case 'net':
          checkNetOption(arg);
          break;
        case 'global':
          if (isGlobalHelp(arg)) return exit(0, GLOBAL_HELP_TEXT);
          globals.push(arg);
          break;
        case 'object':
          objects.push(arg);
          break;
        case 'numa':
          numa.push(arg);
          break;
        case 'uuid':
          uuid = arg;
          break;
        case 'boot':
          boot.push(arg);
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
        case 'incoming':
          // Snapshots (src/machine/snapshot.ts): QEMU's `-incoming file:PATH`, same configuration required.
          incoming = fileUriPath(arg);
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
    ...(smp !== undefined ? { smp } : {}),
    ...(uuid !== undefined ? { uuid } : {}),
    ...(boot.length > 0 ? { boot } : {}),
    ...(globals.length > 0 ? { globals } : {}),
    ...(objects.length > 0 ? { objects } : {}),
    ...(numa.length > 0 ? { numa } : {}),
  };
  return { kind: 'run', config: { machine, qtest, qmp, trace, qtestLog, exitWithParent, ...(incoming !== undefined ? { incoming } : {}), ...(inspect !== undefined ? { inspect } : {}) }, warnings };
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
    const machine = createMachine({ ...config.machine, tracer, warn: (w) => err(`${PROG}: ${w}`) });
    if (config.incoming !== undefined) loadIncoming(machine, config.incoming);
    return machine;
  } catch (e) {
    if (e instanceof ConfigError) err(e.lines(PROG).trimEnd());
    else err(`${PROG}: ${(e as Error).message.replace(/^vtemu: /, '')}`);
    return null;
  }
}

/** `-incoming file:PATH`: loads the state into the machine just built; errors name the option. */
function loadIncoming(machine: Machine, path: string): void {
  try {
    machine.restoreState(readStateFile(path));
  } catch (e) {
    machine.dispose();
    throw new Error(`-incoming file:${path}: ${(e as Error).message}`);
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

/** How often the exit-with-parent watch looks at the parent pid. */
const PARENT_POLL_MS = 200;

/** The qtest log of `-qtest-log` (QEMU: a file, `none`, or stderr when absent); null: no log. */
function openQtestLog(arg: string | null): QtestLog | null {
  if (arg === 'none' || arg === '/dev/null') return null;
  if (arg === null) return new QtestLog((line) => process.stderr.write(line + '\n'));
  let fd: number;
  try {
    fd = openSync(arg, 'w');
  } catch {
    return null; // QEMU 11.1 runs on without a log when the file cannot be opened
  }
  return new QtestLog((line) => {
    try {
      writeSync(fd, line + '\n');
    } catch {
      // a log that cannot be written is dropped, as QEMU's fprintf errors are
    }
  });
}

/** The machine of the command line: q35, or the empty `-machine none`. */
function buildTarget(config: CliConfig, err: (line: string) => void): { machine: Machine | null; target: QtestTarget & { reset(): void; dispose(): void } } | null {
  let type: string | null;
  try {
    type = machineType(config.machine.machine ?? []);
  } catch {
    type = null; // a bad -machine property: buildMachine reports it
  }
  if (type !== NONE_MACHINE) {
    const machine = buildMachine(config, err);
    return machine ? { machine, target: machine } : null;
  }
  try {
    const bytes = typeof config.machine.memory === 'string' ? parseMemSize(config.machine.memory) : 0;
    const first = config.machine.devices?.[0];
    if (first !== undefined) throw new ConfigError(`No 'PCI' bus found for device '${first.split(',')[0]}'`, `-device ${first}`);
    return { machine: null, target: new NoneMachine(bytes) };
  } catch (e) {
    err(e instanceof ConfigError ? e.lines(PROG).trimEnd() : `${PROG}: ${(e as Error).message}`);
    return null;
  }
}

/**
 * Runs vtemu; resolves with the exit code when the front doors close, after
 * every reply already produced has been flushed to its reader.
 *
 * Connections are made as QEMU makes them for libqtest: the qtest chardev
 * first, then the QMP one; the QMP greeting is sent as soon as its channel
 * is open.  The process ends with status 0 on `quit`, on SIGTERM/SIGINT,
 * when the parent goes away under `-run-with exit-with-parent=on`, and at
 * EOF on either front door (QEMU 11.1 keeps running there until it is
 * killed).  A reader that vanishes while its input is still open (EPIPE),
 * or a QMP peer that resets its connection, only loses its replies:
 * commands keep running until EOF, as in QEMU.
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
  const built = buildTarget(parsed.config, err);
  if (!built) return 1;
  const { machine, target } = built;
  return new Promise<number>((resolve) => {
    let done = false;
    const channels: Channel[] = [];
    let server: QtestServer | null = null;
    let log: QtestLog | null = null;
    const keepAlive = setInterval(() => {}, 1 << 30);
    let parentWatch: ReturnType<typeof setInterval> | null = null;
    const finish = (code: number, flushLimitMs: number | null = null): void => {
      if (done) return;
      done = true;
      server?.close();
      log?.closed();
      // -inspect: the VT-d inspector's view of the machine as the run left it.
      if (parsed.config.inspect !== undefined) process.stderr.write(infoIommu(machineUnits(machine), new Set(), parsed.config.inspect));
      // x-sanitize / x-strict: what they found, whatever ended the run.
      for (const line of debugSummary(machineUnits(machine))) err(line);
      target.dispose();
      if (parentWatch) clearInterval(parentWatch);
      void flushAll(channels, flushLimitMs).then(() => {
        for (const ch of channels) ch.close();
        clearInterval(keepAlive);
        resolve(code);
      });
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (done) process.exit(0);
      err(`${PROG}: terminating on signal ${signal === 'SIGTERM' ? 15 : 2}`);
      finish(0, SIGNAL_FLUSH_LIMIT_MS);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (parsed.config.exitWithParent) {
      const parent = process.ppid;
      parentWatch = setInterval(() => {
        if (process.ppid !== parent) finish(0);
      }, PARENT_POLL_MS);
    }
    const { qtest, qmp } = parsed.config;
    const openQmp = (): void => {
      if (!qmp || done) return;
      // QMP reads bytes (QEMU's JSON lexer sees invalid UTF-8 as it is) and writes UTF-8 JSON.
      openChannel(qmp, { input: 'latin1', output: 'utf8' }).then(
        (ch) => {
          channels.push(ch);
          const session = new QmpSession({ machine, reset: () => target.reset(), quit: () => finish(0) }, (t) => ch.write(t));
          ch.onData((d) => session.feed(Buffer.from(d, 'latin1')));
          // EOF ends the process (libqtest's peer is gone); a reset only drops QMP's output (issue 13).
          ch.onClose((eof) => {
            if (eof) finish(0);
          });
          session.greet();
        },
        (e: Error) => {
          err(`${PROG}: -qmp: ${e.message}`);
          finish(1);
        },
      );
    };
    if (!qtest) {
      openQmp();
      return;
    }
    // qtest is a byte protocol: a word echoed in a reply comes back byte for byte.
    openChannel(qtest, { input: 'latin1', output: 'latin1' }).then(
      (ch) => {
        channels.push(ch);
        log = openQtestLog(parsed.config.qtestLog);
        log?.opened();
        const s = new QtestServer(target, (t) => ch.write(t), log);
        server = s;
        ch.onData((d) => s.feed(d));
        ch.onClose(() => finish(0));
        openQmp();
      },
      (e: Error) => {
        err(`${PROG}: -qtest: ${e.message}`);
        finish(1);
      },
    );
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
