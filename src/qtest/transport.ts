/**
 * Transports for the qtest and QMP front doors: stdio, and unix sockets in
 * QEMU's two modes (`unix:PATH` connects to a listening client, as libqtest
 * expects; `unix:PATH,server[=on]` listens and serves one client).
 *
 * Every channel survives its peer (issue 13):
 * - a reader that vanishes (EPIPE, ECONNRESET, a closed socket) only stops
 *   the output: later replies are dropped, as QEMU (which ignores SIGPIPE)
 *   drops them, and nothing is thrown;
 * - input is paced by output: it is handed on one line at a time, and while
 *   more than OUTPUT_BACKLOG_LIMIT bytes of replies wait for a slow reader
 *   the channel stops reading (backpressure), so a client that sends
 *   commands without reading their replies pins at most the limit plus one
 *   reply (a qtest reply is at most 2 * MAX_TRANSFER + a line) instead of
 *   an unbounded queue;
 * - `flush()` resolves once every reply written so far has been taken by
 *   the operating system (or the reader is gone), so the process can exit
 *   without truncating what its reader has not yet read.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

/** A bidirectional text channel. */
export interface Channel {
  /** Queues text for the peer; dropped (never thrown) once the peer stopped reading. */
  write(text: string): void;
  /**
   * Receives input in pieces that each end at a newline (or are the rest of
   * what arrived); no piece is delivered while the output is backed up.
   */
  onData(fn: (text: string) => void): void;
  /**
   * Called once when the input is over and every piece was delivered; `eof`
   * tells an orderly end of input (EOF) from a peer that went away abruptly
   * (a reset or another error).
   */
  onClose(fn: (eof: boolean) => void): void;
  /** Resolves when everything written so far has left the process, or the peer is gone. */
  flush(): Promise<void>;
  /** Stops reading and closes the connection (after what was written). */
  close(): void;
}

/**
 * How a channel turns bytes into text and back.  'latin1' maps each byte to
 * one character, so a protocol that works on bytes (as QEMU's do) sees
 * exactly what arrived, invalid UTF-8 included.
 */
export interface ChannelEncoding {
  readonly input: 'utf8' | 'latin1';
  readonly output: 'utf8' | 'latin1';
}

/** Text in and out as UTF-8. */
export const UTF8_CHANNEL: ChannelEncoding = { input: 'utf8', output: 'utf8' };

/** A parsed chardev spec (`stdio`, `unix:PATH[,server[=on|off]][,wait=off]`). */
export type ChardevSpec = { readonly kind: 'stdio' } | { readonly kind: 'unix'; readonly path: string; readonly server: boolean };

/**
 * Bytes of output waiting for the reader above which a channel stops
 * reading input.  With MAX_TRANSFER-sized replies, memory pinned by a reader
 * that never reads stays below this plus one reply.
 */
export const OUTPUT_BACKLOG_LIMIT = 1024 * 1024;

/** Parses a `-qtest` / `-qmp` chardev argument; null when unsupported. */
export function parseChardev(arg: string): ChardevSpec | null {
  if (arg === 'stdio') return { kind: 'stdio' };
  if (!arg.startsWith('unix:')) return null;
  const [path, ...opts] = arg.slice('unix:'.length).split(',');
  if (!path) return null;
  let server = false;
  for (const o of opts) {
    if (o === 'server' || o === 'server=on') server = true;
    else if (o === 'server=off') server = false;
    else if (o === 'nowait' || o === 'wait=off' || o === 'wait=on' || o === 'wait') continue;
    else return null;
  }
  return { kind: 'unix', path, server };
}

/**
 * Resolves once `stream` has handed everything written to it to the
 * operating system, or cannot (destroyed, errored).  Never rejects.
 */
export function flushStream(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableFinished || stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('finish', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('finish', done);
    stream.once('close', done);
    stream.once('error', done);
    // Writes complete in order: this callback runs after every earlier write.
    // An ended stream (a socket whose peer half-closed) finishes once its queue is out.
    if (!stream.writableEnded) stream.write('', done);
  });
}

/** A channel over an input and an output stream (the same socket, or stdin/stdout). */
class PacedChannel implements Channel {
  /** Input received but not yet delivered (non-empty only while the output is backed up). */
  private pending = '';
  private consumer: ((text: string) => void) | null = null;
  private closeListener: ((eof: boolean) => void) | null = null;
  private inputEnded = false;
  /** The input ended with EOF (not an error). */
  private eof = false;
  private closeFired = false;
  private outputGone = false;
  private waitingForDrain = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    /** Closes the connection (after the output), or stops reading. */
    private readonly shutdown: () => void,
    private readonly encoding: ChannelEncoding,
  ) {
    input.setEncoding(encoding.input);
    input.on('data', (d: string) => {
      this.pending += d;
      this.pump();
    });
    input.on('end', () => {
      this.eof = true;
      this.endInput();
    });
    input.on('close', this.endInput);
    input.on('error', this.endInput);
    output.on('error', this.dropOutput);
    output.on('close', this.dropOutput);
  }

  write(text: string): void {
    if (this.outputGone || this.output.destroyed) return;
    this.output.write(text, this.encoding.output);
  }

  onData(fn: (text: string) => void): void {
    this.consumer = fn;
    this.pump();
  }

  onClose(fn: (eof: boolean) => void): void {
    this.closeListener = fn;
    this.pump();
  }

  flush(): Promise<void> {
    return this.outputGone ? Promise.resolve() : flushStream(this.output);
  }

  close(): void {
    this.input.pause();
    this.shutdown();
  }

  /** True while replies wait for a reader that is still there. */
  private backedUp(): boolean {
    return !this.outputGone && !this.output.destroyed && this.output.writableLength > OUTPUT_BACKLOG_LIMIT;
  }

  /** Delivers pending input line by line until it runs out or the output backs up. */
  private pump(): void {
    if (!this.consumer) return;
    let pos = 0;
    while (pos < this.pending.length && !this.backedUp()) {
      const nl = this.pending.indexOf('\n', pos);
      const end = nl < 0 ? this.pending.length : nl + 1;
      const piece = this.pending.slice(pos, end);
      pos = end;
      this.consumer(piece);
    }
    this.pending = pos === this.pending.length ? '' : this.pending.slice(pos);
    if (this.backedUp()) {
      this.waitForDrain();
      return;
    }
    if (this.inputEnded && this.pending === '' && !this.closeFired && this.closeListener) {
      this.closeFired = true;
      this.closeListener(this.eof);
    }
  }

  /** Stops reading until the reader has taken the backlog (or is gone). */
  private waitForDrain(): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.input.pause();
    this.output.once('drain', this.resume);
  }

  private readonly resume = (): void => {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.output.off('drain', this.resume);
    if (!this.inputEnded) this.input.resume();
    this.pump();
  };

  private readonly endInput = (): void => {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.pump();
  };

  /** The reader vanished: drop output from now on and let input flow again. */
  private readonly dropOutput = (): void => {
    if (this.outputGone) return;
    this.outputGone = true;
    this.resume();
  };
}

function socketChannel(sock: Socket, server: Server | null, encoding: ChannelEncoding): Channel {
  return new PacedChannel(
    sock,
    sock,
    () => {
      sock.end();
      server?.close();
    },
    encoding,
  );
}

/** Opens a channel (stdio at once; unix sockets once connected). */
export function openChannel(spec: ChardevSpec, encoding: ChannelEncoding = UTF8_CHANNEL): Promise<Channel> {
  if (spec.kind === 'stdio') {
    return Promise.resolve(new PacedChannel(process.stdin, process.stdout, () => process.stdin.pause(), encoding));
  }
  if (!spec.server) {
    return new Promise((resolve, reject) => {
      // Half-open: a peer that ends its input still gets every reply before the session closes.
      const sock = createConnection({ path: spec.path, allowHalfOpen: true });
      const failed = (e: Error): void => reject(e);
      sock.once('error', failed);
      sock.once('connect', () => {
        sock.off('error', failed);
        resolve(socketChannel(sock, null, encoding));
      });
    });
  }
  return new Promise((resolve, reject) => {
    try {
      unlinkSync(spec.path);
    } catch {
      // no stale socket
    }
    const server = createServer({ allowHalfOpen: true });
    server.maxConnections = 1;
    server.once('connection', (sock) => resolve(socketChannel(sock, server, encoding)));
    server.once('error', reject);
    server.listen(spec.path);
  });
}
