/**
 * The qtest front door (QEMU softmmu/qtest.c protocol): one command per
 * line, replies byte-identical to QEMU 7.2's for every well-formed command.
 * Where QEMU aborts (missing arguments, bad numbers, `read ADDR 0`) this
 * server answers a `FAIL ...` line and lives on.  Asynchronous `IRQ raise N`
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
import {
  MAX_EXACT_ADDR,
  decodeWriteData,
  formatMemValue,
  formatPortValue,
  fromBase64,
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
  readonly ioapic: Ioapic;
  /** The APIC bus, for the `msi_intercept` extension (absent: the command fails). */
  readonly msiSink?: MsiSink;
  /** Resolves a QOM-like path to a device id known to the machine (for intercept/set_irq_in). */
  deviceById?(id: string): unknown;
}

/** Largest data length one command may move (QEMU would try to g_malloc it; a hex reply is twice this). */
export const MAX_TRANSFER = 64 * 1024 * 1024;

/** Byte sizes of the fixed-width commands. */
const WIDTH: Readonly<Record<string, 1 | 2 | 4 | 8>> = {
  outb: 1, outw: 2, outl: 4,
  inb: 1, inw: 2, inl: 4,
  writeb: 1, writew: 2, writel: 4, writeq: 8,
  readb: 1, readw: 2, readl: 4, readq: 8,
};

const U32_MASK = 0xffff_ffffn;

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
  private buffer = '';
  private readonly scratch = new Uint8Array(8);
  private intercepted: string | null = null;
  private msiListener: ((irq: { address: number; data: number }) => void) | null = null;
  private closed = false;

  constructor(
    private readonly target: QtestTarget,
    /** Writes protocol text (complete lines, each ending in `\n`). */
    private readonly send: (text: string) => void,
  ) {}

  /** Feeds raw input; every complete line is processed in order. */
  feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.handleLine(line);
    }
  }

  /** Processes one command line (without its newline) and sends the reply. */
  handleLine(raw: string): void {
    if (this.closed) return;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    let reply: string;
    try {
      reply = this.command(line.split(/[ \t]+/).filter((w) => w !== ''));
    } catch (e) {
      reply = e instanceof Fail ? e.line : `FAIL internal error: ${(e as Error).message}`;
    }
    this.send(reply + '\n');
  }

  /** Removes the IRQ intercept (the session ended). */
  close(): void {
    if (this.intercepted !== null) this.target.ioapic.setIntercept(null);
    this.intercepted = null;
    if (this.msiListener) this.target.msiSink?.events.off('interrupt', this.msiListener);
    this.msiListener = null;
    this.closed = true;
  }

  private command(words: string[]): string {
    const cmd = words[0] ?? '';
    const width = WIDTH[cmd];
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
    const buf = this.scratch.subarray(0, width);
    if (isWrite) {
      let value = num(v!, 'value');
      for (let i = 0; i < width; i++, value >>= 8n) buf[i] = Number(value & 0xffn);
    }
    // cpu_inb/outb take a 32-bit port number; memory beyond 2^53 is unmapped.
    const at = isPort ? Number(addr & U32_MASK) : addr + BigInt(width) > BigInt(MAX_EXACT_ADDR) ? -1 : Number(addr);
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
    if (text.length < 3) return 'ERR invalid argument size';
    if (!r.beyond && r.len > 0) this.target.memory.writeBytes(r.addr, decodeWriteData(text, r.len));
    return 'OK';
  }

  private writeB64(words: string[]): string {
    const r = this.range(words, 3);
    const decoded = fromBase64(r.args[2]!);
    // QEMU writes `size` bytes whatever the data length; we zero-pad short data.
    const data = new Uint8Array(r.len);
    data.set(decoded.subarray(0, r.len));
    if (!r.beyond && r.len > 0) this.target.memory.writeBytes(r.addr, data);
    return 'OK';
  }

  private memset(words: string[]): string {
    const r = this.range(words, 3);
    const pattern = num(r.args[2], 'pattern');
    if (!r.beyond && r.len > 0) this.target.memory.fill(r.addr, r.len, Number(pattern & 0xffn));
    return 'OK';
  }

  private clockCommand(cmd: string, words: string[]): string {
    const clock = this.target.clock;
    // Only the qtest accelerator has these commands (QEMU 7.2 without it: unknown).
    if (clock.mode !== 'qtest') return `FAIL Unknown command '${cmd}'`;
    if (cmd === 'clock_step') {
      if (words[1] === undefined) return `OK ${clock.step()}`;
      const ns = parseArgI64(words[1]);
      if (ns === null) throw new Fail(`FAIL invalid number '${words[1]}'`);
      return `OK ${clock.step(Math.max(0, Number(ns)))}`;
    }
    const ns = parseArgI64(need(words, 1)[0]);
    if (ns === null) throw new Fail(`FAIL invalid number '${words[1]}'`);
    return `OK ${clock.set(Math.max(0, Number(ns)))}`;
  }

  private resolve(path: string): 'ioapic' | 'device' | null {
    if (isIoapicPath(path)) return 'ioapic';
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
      this.target.ioapic.setIntercept((input, level) => this.send(`IRQ ${level ? 'raise' : 'lower'} ${input}\n`));
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
    const pin = parseArgI64(n);
    const lv = parseArgI64(level);
    if (pin === null || lv === null) throw new Fail(`FAIL invalid number`);
    if (kind !== 'ioapic' || name !== 'unnamed-gpio-in') return `FAIL no input '${name}' on ${path}`;
    const line = this.target.ioapic.pins[Number(pin)];
    if (!line) return `FAIL no input ${pin} on ${path}`;
    line.set(lv !== 0n);
    return 'OK';
  }
}

/** The first `n` arguments after the command word; Fail when one is missing. */
function need(words: string[], n: number): string[] {
  const args = words.slice(1, n + 1);
  if (args.length < n || args.some((a) => a === '')) throw new Fail(`FAIL ${words[0]} needs ${n} argument${n > 1 ? 's' : ''}`);
  return args;
}

/** A base-0 unsigned argument; Fail when invalid. */
function num(word: string | undefined, what: string): bigint {
  const v = parseArgU64(word);
  if (v === null) throw new Fail(`FAIL invalid ${what} '${word ?? ''}'`);
  return v;
}
