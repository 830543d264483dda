/**
 * The `vtemu` command line: QEMU's argument syntax for what this emulator
 * models (-machine/-M, -accel, -m, -device, -qtest, -qmp, -trace,
 * --machine FILE) and the QEMU options test scripts pass that do not matter
 * here (-display, -nodefaults, -bios, -S, ...), accepted and ignored.
 * Errors are printed as `vtemu: OPTION ARG: MESSAGE` and exit 1.
 */
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { createMachine, type Machine, type MachineOptions } from './machine/q35.js';
import { ConfigError, parseDeviceArg } from './machine/registry.js';
import { loadMachineFile } from './machine/machine-file.js';
import { PatternTracer } from './machine/tracer.js';
import { parseAccel } from './machine/machine-options.js';
import { QtestServer } from './qtest/server.js';
import { QmpSession } from './qtest/qmp.js';
import { openChannel, parseChardev, type ChardevSpec } from './qtest/transport.js';
import type { DmarExtras } from './machine/dmar-wiring.js';
import { loadBiosImage } from './machine/firmware-rom.js';

/** Program name used in messages. */
export const PROG = 'vtemu';

/** Options that take an argument and are ignored (QEMU compatibility). */
const IGNORED_WITH_ARG = new Set(['display', 'serial', 'monitor', 'qtest-log', 'vga', 'name', 'cpu', 'smp', 'L', 'global', 'rtc', 'boot', 'uuid', 'parallel', 'net', 'nic']);
/** Flags that are ignored. */
const IGNORED_FLAGS = new Set(['nodefaults', 'S', 'no-reboot', 'no-shutdown', 'nographic', 'no-user-config', 'enable-kvm', 'no-hpet']);

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

/** Parses argv (without node and script); never throws. */
export function parseCli(argv: readonly string[]): CliParse {
  const machineArgs: string[] = [];
  const devices: string[] = [];
  const trace: string[] = [];
  const warnings: string[] = [];
  let accel: string | undefined;
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
      if (!raw.startsWith('-')) throw new ConfigError('invalid option', raw);
      const name = raw.replace(/^--?/, '');
      const takesArg = ['machine', 'M', 'accel', 'm', 'device', 'qtest', 'qmp', 'trace', 'machine-file', 'bios', 'chardev', 'mon'].includes(name) || IGNORED_WITH_ARG.has(name);
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
          try {
            parseAccel(arg);
          } catch (e) {
            throw new ConfigError((e as Error).message, where);
          }
          accel = arg;
          break;
        case 'm':
          memory = arg;
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
  const machine: MachineOptions = {
    machine: [...fileMachine, ...machineArgs],
    devices: [...fileDevices, ...devices],
    qtest: qtest !== null,
    ...(accel !== undefined ? { accel } : {}),
    ...(mem !== undefined ? { memory: mem } : {}),
    ...(dmar !== undefined ? { dmar } : {}),
    ...(bios !== undefined ? { bios } : {}),
  };
  return { kind: 'run', config: { machine, qtest, qmp, trace }, warnings };
}

/** Builds the machine of a parsed command line; ConfigError lines go to `err`. */
export function buildMachine(config: CliConfig, err: (line: string) => void): Machine | null {
  const tracer = new PatternTracer(config.trace, (line) => err(line));
  try {
    return createMachine({ ...config.machine, tracer, warn: (w) => err(`${PROG}: ${w}`) });
  } catch (e) {
    if (e instanceof ConfigError) err(e.lines(PROG).trimEnd());
    else err(`${PROG}: ${(e as Error).message.replace(/^vtemu: /, '')}`);
    return null;
  }
}

/** Runs vtemu; resolves with the exit code when the front doors close. */
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
    const keepAlive = setInterval(() => {}, 1 << 30);
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      clearInterval(keepAlive);
      machine.dispose();
      resolve(code);
    };
    process.once('SIGTERM', () => finish(0));
    process.once('SIGINT', () => finish(0));
    const { qtest, qmp } = parsed.config;
    if (qmp) {
      openChannel(qmp).then(
        (ch) => {
          const session = new QmpSession({ reset: () => machine.reset(), quit: () => finish(0) }, (t) => ch.write(t));
          ch.onData((d) => session.feed(d));
          session.greet();
        },
        (e: Error) => {
          err(`${PROG}: -qmp: ${e.message}`);
          finish(1);
        },
      );
    }
    if (qtest) {
      openChannel(qtest).then(
        (ch) => {
          const server = new QtestServer(machine, (t) => ch.write(t));
          ch.onData((d) => server.feed(d));
          ch.onClose(() => {
            server.close();
            finish(0);
          });
        },
        (e: Error) => {
          err(`${PROG}: -qtest: ${e.message}`);
          finish(1);
        },
      );
    }
  });
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
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`${PROG}: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
