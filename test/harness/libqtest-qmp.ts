/**
 * The QMP side of the libqtest-equivalent client (libqtest.ts): a JSON stream
 * reader (QMP output is a stream of JSON values, not necessarily one per
 * line or one per chunk) and a QMP session over a connected socket that
 * keeps events apart.  Objects carrying an `event` key are events: they are
 * buffered in arrival order until a test waits for one; every other object
 * is the answer to the oldest command in flight (or the greeting).
 */
import type { Socket } from 'node:net';

/** A QMP object as parsed (`{"return": ...}`, `{"error": ...}`, `{"event": ...}`, the greeting). */
export type QmpObject = Record<string, unknown>;

/** A QMP event. */
export interface QmpEvent extends QmpObject {
  readonly event: string;
  readonly data?: Record<string, unknown>;
}

/**
 * Splits a character stream into top-level JSON values: tracks nesting of
 * `{}`/`[]` outside strings (with `\` escapes inside them) and hands each
 * complete value to `JSON.parse`.  Whitespace between values is skipped.
 */
export class JsonStreamReader {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Where the current value starts in `buf` (-1: between values). */
  private start = -1;
  private scanned = 0;

  constructor(private readonly onValue: (v: unknown) => void) {}

  /** Feeds text; calls onValue for every value completed by it (throws on malformed JSON). */
  push(text: string): void {
    this.buf += text;
    for (; this.scanned < this.buf.length; this.scanned++) {
      const c = this.buf[this.scanned]!;
      if (this.start < 0) {
        if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
        if (c !== '{' && c !== '[') throw new Error(`QMP stream: unexpected '${c}' between values`);
        this.start = this.scanned;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          const text = this.buf.slice(this.start, this.scanned + 1);
          this.buf = this.buf.slice(this.scanned + 1);
          this.scanned = -1;
          this.start = -1;
          this.onValue(JSON.parse(text));
        }
      }
    }
  }
}

/** A negotiated-or-not QMP connection: commands, answers and buffered events. */
export class QmpSession {
  private readonly answers: QmpObject[] = [];
  private readonly events: QmpEvent[] = [];
  private waiters: (() => void)[] = [];
  private failure: Error | null = null;

  constructor(readonly sock: Socket) {
    const reader = new JsonStreamReader((v) => {
      const o = v as QmpObject;
      if (typeof o['event'] === 'string') this.events.push(o as QmpEvent);
      else this.answers.push(o);
      this.wake();
    });
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      try {
        reader.push(d);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.wake();
  }

  /** Waits until `pick` finds something (checked on every arrival), or fails after `timeoutMs`. */
  private async until<T>(pick: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pick();
      if (v !== undefined) return v;
      if (this.failure) throw new Error(`${what}: ${this.failure.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next non-event object (the greeting, or the answer to the oldest command). */
  receive(timeoutMs = 30_000): Promise<QmpObject> {
    return this.until(() => this.answers.shift(), 'waiting for a QMP answer', timeoutMs);
  }

  /** Sends one command as a single line of JSON. */
  send(command: string, args?: Record<string, unknown>): void {
    const msg: Record<string, unknown> = { execute: command };
    if (args !== undefined) msg['arguments'] = args;
    this.sock.write(JSON.stringify(msg) + '\n');
  }

  /** Sends a command and resolves with its answer (`{"return": ...}` or `{"error": ...}`). */
  async execute(command: string, args?: Record<string, unknown>): Promise<QmpObject> {
    this.send(command, args);
    return this.receive();
  }

  /** The first buffered event named `name` (removed from the buffer), waiting for it if needed. */
  waitEvent(name: string, timeoutMs = 30_000): Promise<QmpEvent> {
    return this.until(
      () => {
        const i = this.events.findIndex((e) => e.event === name);
        return i < 0 ? undefined : this.events.splice(i, 1)[0];
      },
      `waiting for QMP event ${name}`,
      timeoutMs,
    );
  }

  /** Events received and not yet waited for, oldest first. */
  pendingEvents(): readonly QmpEvent[] {
    return [...this.events];
  }
}
