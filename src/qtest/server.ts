/**
 * The qtest front door (QEMU system/qtest.c protocol): one command per
 * line, replies byte-identical to QEMU 11.1's for every command QEMU
 * answers.  Lines end at `\n` only; words are separated by single spaces
 * (a tab, a `\r` or an empty word between two spaces is part of the
 * command, as on QEMU); an empty line gets no reply, as on QEMU.  Numbers
 * are read as QEMU reads them (protocol.ts).
 *
 * Where QEMU aborts (a missing argument, a malformed or out-of-range number,
 * `read ADDR 0`, a port beyond 0xffff, a size it cannot allocate) this
 * server answers a `FAIL ...` line and lives on.  Deliberate differences
 * where QEMU does not abort: a line holding a NUL byte gets
 * `FAIL NUL byte in command line` (QEMU stops finding line ends at the NUL
 * and never answers again), and a line longer than MAX_LINE_LENGTH gets
 * `FAIL command line too long` (QEMU buffers without a limit).
 *
 * Asynchronous `IRQ raise N`
 * / `IRQ lower N` lines go through the same `send` as replies, so a line
 * caused by a command comes before that command's reply.
 *
 * One extension beyond QEMU (a CPU-less machine has no other way to show its
 * APIC bus to a qtest client): `msi_intercept` answers `OK`, after which every
 * message delivered to the APIC bus (device MSIs, remapped interrupts, IOAPIC
 * and IOMMU events) is sent as `MSI 0x<address> 0x<data>`, again before the
 * reply of the command that caused it.  QEMU answers `FAIL Unknown command`,
 * which is how a client tells the two apart.
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { VirtualClock } from '../core/clock.js';
import type { Ioapic } from '../hw/intc/ioapic.js';
import type { MsiSink } from '../hw/intc/msi-sink.js';
import type { QtestLog } from './qtest-log.js';
import {
  LineReader,
  MAX_EXACT_ADDR,
  decodeWriteData,
  formatMemValue,
  formatPortValue,
  fromBase64,
  parseArgI32,
  parseArgI64,
  parseArgU64,
  toBase64,
  toHex,
} from './protocol.js';

/** What the server drives: a machine's CPU view, clock and IOAPIC. */
export interface QtestTarget {
  readonly memory: AddressSpace;
  readonly io: AddressSpace;
  readonly clock: VirtualClock;
  /** The IOAPIC (absent on `-machine none`: its path is an unknown device). */
  readonly ioapic?: Ioapic;
  /** The APIC bus, for the `msi_intercept` extension (absent: the command fails). */
  readonly msiSink?: MsiSink;
  /** Resolves a QOM-like path to a device id known to the machine (for intercept/set_irq_in). */
  deviceById?(id: string): unknown;
}

/** Largest data length one command may move (QEMU would try to g_malloc it; a hex reply is twice this). */
export const MAX_TRANSFER = 64 * 1024 * 1024;

/** Room on a command line for the command word, address, size and separators beside its data. */
const LINE_OVERHEAD = 4096;

/**
 * Longest command line kept, in characters: a `write` of MAX_TRANSFER bytes
 * (two hex digits a byte after `0x`) plus LINE_OVERHEAD; a b64write of
 * MAX_TRANSFER bytes is shorter.  QEMU's line buffer (a GString) has no
 * limit; beyond this one the line's text is dropped as it arrives and the
 * line gets one FAIL reply, so a client's memory cost stays bounded.
 */
export const MAX_LINE_LENGTH = 2 * MAX_TRANSFER + 2 + LINE_OVERHEAD;

/** Highest port number the port commands take (QEMU asserts `addr <= 0xffff`). */
const MAX_PORT = 0xffff;

/** Shortest `write`/`b64write` data word QEMU accepts (shorter: `ERR invalid argument size`). */
const MIN_DATA_WORD = 3;

/** Longest part of a bad argument echoed in a FAIL reply (control characters escaped). */
const ECHO_LIMIT = 40;

/** QEMU 11.1's replies at the virtual clock's limits. */
const CLOCK_NO_DEADLINE = 'FAIL cannot advance clock to the next deadline because there is no pending deadline';
const CLOCK_NO_ADVANCE = 'FAIL could not advance time';

/** Byte sizes of the fixed-width commands. */
const WIDTH: Readonly<Record<string, 1 | 2 | 4 | 8>> = {
  outb: 1, outw: 2, outl: 4,
  inb: 1, inw: 2, inl: 4,
  writeb: 1, writew: 2, writel: 4, writeq: 8,
  readb: 1, readw: 2, readl: 4, readq: 8,
};

/** A reply that ends the command early (bad input). */
class Fail {
  constructor(readonly line: string) {}
}

/** The IOAPIC's names as QOM paths resolve them (partial path `ioapic` included). */
function isIoapicPath(path: string): boolean {
  return path === 'ioapic' || path.endsWith('/ioapic');
}

/** One qtest session over a machine. */
export class QtestServer {
  private readonly reader = new LineReader(MAX_LINE_LENGTH, (line) => this.handleLine(line));
  private readonly scratch = new Uint8Array(8);
  private intercepted: string | null = null;
  private msiListener: ((irq: { address: number; data: number }) => void) | null = null;
  private closed = false;

  /** Writes protocol text (complete lines, each ending in `\n`), logged when there is a log. */
  private readonly send: (text: string) => void;

  constructor(
    private readonly target: QtestTarget,
    send: (text: string) => void,
    /** The session log (`-qtest-log`): every line received and sent. */
    private readonly log: QtestLog | null = null,
  ) {
    this.send = log
      ? (text) => {
          log.sent(text);
          send(text);
        }
      : send;
  }

  /** Feeds raw input (any chunking); every complete line is processed in order, in linear time. */
  feed(chunk: string): void {
    this.reader.push(chunk);
  }

  /** Characters of fed input examined so far (each exactly once; for tests and metrics). */
  get scanned(): number {
    return this.reader.scanned;
  }

  /**
   * Processes one command line (without its newline) and sends its reply,
   * if any (an empty line has none).  null stands for a line that was over
   * MAX_LINE_LENGTH.  Never throws.
   */
  handleLine(line: string | null): void {
    if (this.closed) return;
    this.log?.received(line);
    let reply: string | null;
    try {
      reply = this.lineReply(line);
    } catch (e) {
      // Unreachable by design (the fuzzer asserts it never shows); a last resort that keeps the session alive.
      reply = e instanceof Fail ? e.line : `FAIL internal error: ${echo(e instanceof Error ? e.message : String(e))}`;
    }
    if (reply !== null) this.send(reply + '\n');
  }

  /** Removes the IRQ intercept (the session ended). */
  close(): void {
    if (this.intercepted !== null) this.target.ioapic?.setIntercept(null);
    this.intercepted = null;
    if (this.msiListener) this.target.msiSink?.events.off('interrupt', this.msiListener);
    this.msiListener = null;
    this.closed = true;
  }

  /** The reply to one line, or null for none. */
  private lineReply(line: string | null): string | null {
    if (line === null) return `FAIL command line too long (limit ${MAX_LINE_LENGTH} characters)`;
    if (line === '') return null;
    if (line.includes('\0')) return 'FAIL NUL byte in command line';
    return this.command(line.split(' '));
  }

  private command(words: string[]): string {
    const cmd = words[0] ?? '';
    // Own properties only: a command named `constructor` or `__proto__` is unknown, not a width.
    const width = Object.hasOwn(WIDTH, cmd) ? WIDTH[cmd] : undefined;
    if (width !== undefined) return this.fixedWidth(cmd, width, words);
    switch (cmd) {
      case 'read':
      case 'b64read':
        return this.readRange(cmd, words);
      case 'write':
        return this.writeHex(words);
      case 'b64write':
        return this.writeB64(words);
      case 'memset':
        return this.memset(words);
      case 'endianness':
        return 'OK little';
      case 'clock_step':
      case 'clock_set':
        return this.clockCommand(cmd, words);
      case 'irq_intercept_in':
      case 'irq_intercept_out':
        return this.intercept(cmd, need(words, 1));
      case 'set_irq_in':
        return this.setIrqIn(words);
      case 'msi_intercept':
        return this.msiIntercept();
      case 'module_load':
        need(words, 2);
        return 'FAIL';
      default:
        return `FAIL Unknown command '${cmd}'`;
    }
  }

  /**
   * in/out and read/write of 1-8 bytes.  QEMU performs these as byte-range
   * accesses (address_space_read/write of `width` bytes), which split into
   * the sizes a region accepts; so do we.
   */
  private fixedWidth(cmd: string, width: 1 | 2 | 4 | 8, words: string[]): string {
    const isWrite = cmd.startsWith('out') || cmd.startsWith('write');
    const [a, v] = isWrite ? need(words, 2) : [need(words, 1)[0]!, undefined];
    const addr = num(a, 'address');
    const isPort = cmd.startsWith('in') || cmd.startsWith('out');
    if (isPort && addr > BigInt(MAX_PORT)) throw new Fail(`FAIL port 0x${addr.toString(16)} out of range (limit 0x${MAX_PORT.toString(16)})`);
    const buf = this.scratch.subarray(0, width);
    if (isWrite) {
      let value = num(v!, 'value');
      for (let i = 0; i < width; i++, value >>= 8n) buf[i] = Number(value & 0xffn);
    }
    // Memory beyond 2^53 is unmapped.
    const at = isPort ? Number(addr) : addr + BigInt(width) > BigInt(MAX_EXACT_ADDR) ? -1 : Number(addr);
    const space = isPort ? this.target.io : this.target.memory;
    if (isWrite) {
      if (at >= 0) space.writeBytes(at, buf);
      return 'OK';
    }
    if (at >= 0) space.readBytes(at, buf);
    else buf.fill(0);
    let value = 0n;
    for (let i = width - 1; i >= 0; i--) value = (value << 8n) | BigInt(buf[i]!);
    return isPort ? formatPortValue(Number(value)) : formatMemValue(value);
  }

  private range(words: string[], n: number): { addr: number; len: number; beyond: boolean; args: string[] } {
    const args = need(words, n);
    const addr = num(args[0], 'address');
    const len = num(args[1], 'size');
    if (len > BigInt(MAX_TRANSFER)) throw new Fail(`FAIL size ${len} too large (limit ${MAX_TRANSFER})`);
    const beyond = addr + len > BigInt(MAX_EXACT_ADDR);
    return { addr: beyond ? 0 : Number(addr), len: Number(len), beyond, args };
  }

  private readRange(cmd: string, words: string[]): string {
    const r = this.range(words, 2);
    if (cmd === 'read' && r.len === 0) throw new Fail('FAIL read size must not be 0');
    const data = new Uint8Array(r.len);
    if (!r.beyond) this.target.memory.readBytes(r.addr, data);
    return cmd === 'read' ? `OK 0x${toHex(data)}` : `OK ${toBase64(data)}`;
  }

  private writeHex(words: string[]): string {
    const r = this.range(words, 3);
    const text = r.args[2]!;
    if (text.length < MIN_DATA_WORD) return 'ERR invalid argument size';
    if (!r.beyond && r.len > 0) this.target.memory.writeBytes(r.addr, decodeWriteData(text, r.len));
    return 'OK';
  }

  private writeB64(words: string[]): string {
    const r = this.range(words, 3);
    const text = r.args[2]!;
    if (text.length < MIN_DATA_WORD) return 'ERR invalid argument size';
    // QEMU writes min(decoded length, size) bytes: short data leaves the rest of the range alone.
    const decoded = fromBase64(text);
    const data = decoded.subarray(0, Math.min(decoded.length, r.len));
    if (!r.beyond && data.length > 0) this.target.memory.writeBytes(r.addr, data);
    return 'OK';
  }

  private memset(words: string[]): string {
    const r = this.range(words, 3);
    const pattern = num(r.args[2], 'pattern');
    if (!r.beyond && r.len > 0) this.target.memory.fill(r.addr, r.len, Number(pattern & 0xffn));
    return 'OK';
  }

  /**
   * clock_step [NS] / clock_set NS with QEMU 11.1's answers, in int64
   * nanoseconds: a step moves to now + NS (int64 arithmetic, so a sum past
   * INT64_MAX wraps negative) and fails unless that is ahead of now;
   * without NS it steps to the next timer deadline, and fails when none is
   * armed.  A set advances to NS and says `OK` only if the clock is then at
   * NS (`FAIL <now>` for a time in the past).  Both reply with the time.
   */
  private clockCommand(cmd: string, words: string[]): string {
    const clock = this.target.clock;
    // Only the qtest accelerator has these commands (QEMU 7.2 without it: unknown).
    if (clock.mode !== 'qtest') return `FAIL Unknown command '${cmd}'`;
    const before = clock.nowNs();
    if (cmd === 'clock_step') {
      let ns: bigint;
      if (words[1] === undefined) {
        const deadline = clock.nextDeadline();
        if (deadline < 0n) return CLOCK_NO_DEADLINE;
        ns = deadline > before ? deadline - before : 0n;
      } else {
        ns = signed(words[1], 'time step');
      }
      const dest = BigInt.asIntN(64, before + ns);
      const after = clock.advanceTo(dest);
      return after > before ? `OK ${after}` : CLOCK_NO_ADVANCE;
    }
    const dest = signed(need(words, 1)[0], 'time');
    const after = clock.advanceTo(dest);
    return `${after === dest ? 'OK' : 'FAIL'} ${after}`;
  }

  private resolve(path: string): 'ioapic' | 'device' | null {
    if (isIoapicPath(path)) return this.target.ioapic ? 'ioapic' : null;
    const id = path.slice(path.lastIndexOf('/') + 1);
    return this.target.deviceById?.(id) !== undefined ? 'device' : null;
  }

  private intercept(cmd: string, args: string[]): string {
    const path = args[0]!;
    const kind = this.resolve(path);
    if (!kind) return 'FAIL Unknown device';
    const key = kind === 'ioapic' ? 'ioapic' : path;
    if (this.intercepted !== null) return this.intercepted === key ? 'OK' : 'FAIL IRQ intercept already enabled';
    this.intercepted = key;
    if (kind === 'ioapic' && cmd === 'irq_intercept_in') {
      this.target.ioapic!.setIntercept((input, level) => this.send(`IRQ ${level ? 'raise' : 'lower'} ${input}\n`));
    }
    return 'OK';
  }

  private msiIntercept(): string {
    const sink = this.target.msiSink;
    if (!sink) return "FAIL Unknown command 'msi_intercept'";
    if (!this.msiListener) {
      this.msiListener = (irq) => this.send(`MSI 0x${irq.address.toString(16)} 0x${(irq.data >>> 0).toString(16)}\n`);
      sink.events.on('interrupt', this.msiListener);
    }
    return 'OK';
  }

  private setIrqIn(words: string[]): string {
    const [path, name, n, level] = need(words, 4);
    const kind = this.resolve(path!);
    if (!kind) return 'FAIL Unknown device';
    const pin = int(n, 'input number');
    const lv = int(level, 'level');
    if (kind !== 'ioapic' || name !== 'unnamed-gpio-in') return `FAIL no input '${echo(name!)}' on ${echo(path!)}`;
    const line = this.target.ioapic!.pins[pin];
    if (!line) return `FAIL no input ${pin} on ${echo(path!)}`;
    line.set(lv !== 0);
    return 'OK';
  }
}

/**
 * The first `n` arguments after the command word; Fail when one is
 * missing.  An empty word (two spaces in a row) is present, as on QEMU.
 */
function need(words: string[], n: number): string[] {
  const args = words.slice(1, n + 1);
  if (args.length < n) throw new Fail(`FAIL ${words[0]} needs ${n} argument${n > 1 ? 's' : ''}`);
  return args;
}

/** `word` fit for a reply line: control characters escaped, at most ECHO_LIMIT characters kept. */
function echo(word: string): string {
  const head = word.length > ECHO_LIMIT ? word.slice(0, ECHO_LIMIT) : word;
  const safe = head.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return word.length > ECHO_LIMIT ? `${safe}... (${word.length} characters)` : safe;
}

/** The FAIL for an argument QEMU's parser refuses (QEMU asserts). */
function invalid(word: string | undefined, what: string): Fail {
  return new Fail(word === undefined ? `FAIL missing ${what}` : `FAIL invalid ${what} '${echo(word)}'`);
}

/** An unsigned 64-bit argument (qemu_strtou64); Fail when invalid. */
function num(word: string | undefined, what: string): bigint {
  const v = parseArgU64(word);
  if (v === null) throw invalid(word, what);
  return v;
}

/** A signed 64-bit argument (qemu_strtoi64); Fail when invalid or outside int64. */
function signed(word: string | undefined, what: string): bigint {
  const v = parseArgI64(word);
  if (v === null) throw invalid(word, what);
  return v;
}

/** A C int argument (qemu_strtoi); Fail when invalid or outside int32. */
function int(word: string | undefined, what: string): number {
  const v = parseArgI32(word);
  if (v === null) throw invalid(word, what);
  return v;
}
