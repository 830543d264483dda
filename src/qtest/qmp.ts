/**
 * vtemu's QMP server (what libqtest uses), faithful to QEMU 11.1 for every
 * input it can be sent: the greeting, `qmp_capabilities`, `system_reset`
 * (with the RESET event), `quit`, and the machine commands of
 * qmp-commands.ts (query-version, query-status, query-machines,
 * qom-list-types, device-list-properties, qom-list/get/set,
 * human-monitor-command); any other command is CommandNotFound.
 *
 * Input is read by the streaming reader of qmp-json.ts (QEMU's lexer,
 * streamer and parser: objects across lines, several per line, QEMU's parse
 * errors and limits).  Each message gets exactly one reply, checked by one
 * validator as QEMU's qmp_dispatch() checks it: a JSON object whose members
 * are `execute` (or, once out-of-band is enabled, `exec-oob`; a string),
 * `arguments` (an object) and `id` (echoed whatever its type), met in QEMU's
 * QDict order; before negotiation only `qmp_capabilities` exists.  Replies
 * are written by QEMU's JSON writer (qmp-qobject.ts), one per line, `\r\n`.
 */
import type { Machine } from '../machine/q35.js';
import { ErrorClass, generic, ok, type Outcome } from './qmp-args.js';
import { machineCommands, QEMU_VERSION, VTEMU_PACKAGE, type Command } from './qmp-commands.js';
import { QmpJsonReader } from './qmp-json.js';
import { QDict, toQmpJson, type QValue } from './qmp-qobject.js';

/** What QMP commands act on. */
export interface QmpTarget {
  /** The machine (null: `-machine none`). */
  readonly machine: Machine | null;
  reset(): void;
  quit(): void;
}

/** The greeting QEMU 11.1 sends on connect (vtemu's own `package`). */
export const QMP_GREETING = {
  // Members in QEMU's insertion order (its QDict puts `micro` before `minor`).
  QMP: { version: { qemu: { major: QEMU_VERSION.major, minor: QEMU_VERSION.minor, micro: QEMU_VERSION.micro }, package: VTEMU_PACKAGE }, capabilities: ['oob'] },
};

const GENERIC = ErrorClass.Generic;
const NOT_FOUND = ErrorClass.CommandNotFound;

/** A plain JSON value (the greeting) as QObjects. */
function fromPlain(v: unknown): QValue {
  if (typeof v === 'number') return { kind: 'int', value: BigInt(v) };
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  if (Array.isArray(v)) return v.map(fromPlain);
  return QDict.of(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, fromPlain(x)]));
}

function timestamp(): QDict {
  const now = Date.now();
  return QDict.of([
    ['seconds', { kind: 'int', value: BigInt(Math.floor(now / 1000)) }],
    ['microseconds', { kind: 'int', value: BigInt((now % 1000) * 1000) }],
  ]);
}

/** The visitor's check for a command without parameters (first unexpected member, in QDict order). */
function noArguments(args: QDict): Outcome | null {
  const extra = args.keys()[0];
  return extra === undefined ? null : generic(`Parameter '${extra}' is unexpected`);
}

/** The QMP capabilities this server offers (QEMU QMPCapability). */
const CAPABILITIES = new Set(['oob']);

/** One QMP session. */
export class QmpSession {
  private readonly reader = new QmpJsonReader({
    value: (v) => this.dispatch(v),
    error: (desc) => this.reply(undefined, { errClass: GENERIC, desc }),
  });
  private negotiated = false;
  private oobEnabled = false;
  private quitting = false;
  private readonly commands: ReadonlyMap<string, Command>;

  constructor(
    private readonly target: QmpTarget,
    private readonly send: (text: string) => void,
  ) {
    this.commands = new Map<string, Command>([
      ...machineCommands(target.machine),
      ['qmp_capabilities', { allowOob: false, run: (a) => this.capabilities(a) }],
      ['system_reset', { allowOob: false, run: (a) => noArguments(a) ?? this.systemReset() }],
      ['quit', { allowOob: false, run: (a) => noArguments(a) ?? this.quit() }],
    ]);
  }

  /** Sends the greeting (call once the channel is open). */
  greet(): void {
    this.emit(fromPlain(QMP_GREETING));
  }

  /** Feeds raw input (bytes, or text sent as UTF-8); each complete message is answered. */
  feed(chunk: Uint8Array | string): void {
    if (!this.quitting) this.reader.feed(chunk);
  }

  private emit(v: QValue): void {
    this.send(toQmpJson(v) + '\r\n');
  }

  private event(name: string, data: QDict): void {
    this.emit(QDict.of([['timestamp', timestamp()], ['event', name], ['data', data]]));
  }

  /** A response as qmp_dispatch() builds it: `return` or `error`, then `id`. */
  private reply(id: QValue | undefined, out: Outcome): void {
    const rsp = 'ret' in out
      ? QDict.of([['return', out.ret]])
      : QDict.of([['error', QDict.of([['class', out.errClass], ['desc', out.desc]])]]);
    if (id !== undefined) rsp.put('id', id);
    this.emit(rsp);
  }

  /** QEMU qmp_dispatch() plus the negotiation-mode rewording of monitor_qmp_dispatch(). */
  private dispatch(req: QValue): void {
    if (this.quitting) return;
    if (!(req instanceof QDict)) {
      this.reply(undefined, generic('QMP input must be a JSON object'));
      return;
    }
    const id = req.get('id');
    const checked = this.checkRequest(req);
    if (typeof checked !== 'string') {
      this.reply(id, checked);
      return;
    }
    const oob = checked === 'exec-oob';
    const name = req.get(checked) as string;
    const cmd = this.negotiated || name === 'qmp_capabilities' ? this.commands.get(name) : undefined;
    let out: Outcome;
    if (!cmd) {
      out = { errClass: NOT_FOUND, desc: `The command ${name} has not been found` };
    } else if (oob && !cmd.allowOob) {
      out = generic(`The command ${name} does not support OOB`);
    } else {
      const args = req.get('arguments');
      out = cmd.run(args instanceof QDict ? args : new QDict());
    }
    if (!this.negotiated && 'errClass' in out && out.errClass === NOT_FOUND) {
      out = { errClass: NOT_FOUND, desc: "Expecting capabilities negotiation with 'qmp_capabilities'" };
    }
    this.reply(id, out);
    if (this.quitting) this.target.quit();
  }

  /** QEMU qmp_dispatch_check_obj(): the member naming the command, or the error. */
  private checkRequest(req: QDict): 'execute' | 'exec-oob' | Outcome {
    let execKey: 'execute' | 'exec-oob' | null = null;
    for (const key of req.keys()) {
      const v = req.get(key)!;
      if (key === 'execute' || (key === 'exec-oob' && this.oobEnabled)) {
        if (typeof v !== 'string') return generic(`QMP input member '${key}' must be a string`);
        if (execKey) return generic(`QMP input member '${key}' clashes with '${execKey}'`);
        execKey = key;
      } else if (key === 'arguments') {
        if (!(v instanceof QDict)) return generic("QMP input member 'arguments' must be an object");
      } else if (key !== 'id') {
        return generic(`QMP input member '${key}' is unexpected`);
      }
    }
    return execKey ?? generic("QMP input lacks member 'execute'");
  }

  /** qmp_capabilities: `enable` is an optional list of QMPCapability names. */
  private capabilities(args: QDict): Outcome {
    const enable = args.get('enable');
    const wanted: string[] = [];
    if (enable !== undefined) {
      if (!Array.isArray(enable)) return generic("Invalid parameter type for 'enable', expected: array");
      for (let i = 0; i < enable.length; i++) {
        const cap = enable[i]!;
        if (typeof cap !== 'string') return generic(`Invalid parameter type for 'enable[${i}]', expected: string`);
        // QEMU names a list element 'null' in this message.
        if (!CAPABILITIES.has(cap)) return generic(`Parameter 'null' does not accept value '${cap}'`);
        wanted.push(cap);
      }
    }
    const extra = args.keys().find((k) => k !== 'enable');
    if (extra !== undefined) return generic(`Parameter '${extra}' is unexpected`);
    if (this.negotiated) return { errClass: NOT_FOUND, desc: 'Capabilities negotiation is already complete, command ignored' };
    this.negotiated = true;
    this.oobEnabled = wanted.includes('oob');
    return ok();
  }

  /** system_reset: QEMU reports the RESET event before the reply. */
  private systemReset(): Outcome {
    this.target.reset();
    this.event('RESET', QDict.of([['guest', false], ['reason', 'host-qmp-system-reset']]));
    return ok();
  }

  /** quit: the SHUTDOWN event, the reply, then the process ends; later input is not read. */
  private quit(): Outcome {
    this.event('SHUTDOWN', QDict.of([['guest', false], ['reason', 'host-qmp-quit']]));
    this.quitting = true;
    return ok();
  }
}
