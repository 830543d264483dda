/**
 * Transports for the qtest and QMP front doors: stdio, and unix sockets in
 * QEMU's two modes (`unix:PATH` connects to a listening client, as libqtest
 * expects; `unix:PATH,server[=on]` listens and serves one client).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';

/** A bidirectional text channel. */
export interface Channel {
  write(text: string): void;
  onData(fn: (text: string) => void): void;
  onClose(fn: () => void): void;
  close(): void;
}

/** A parsed chardev spec (`stdio`, `unix:PATH[,server[=on|off]][,wait=off]`). */
export type ChardevSpec = { readonly kind: 'stdio' } | { readonly kind: 'unix'; readonly path: string; readonly server: boolean };

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

function socketChannel(sock: Socket, server: Server | null): Channel {
  sock.setEncoding('utf8');
  return {
    write: (t) => {
      if (!sock.destroyed) sock.write(t);
    },
    onData: (fn) => sock.on('data', (d: string) => fn(d)),
    onClose: (fn) => sock.on('close', fn),
    close: () => {
      sock.end();
      server?.close();
    },
  };
}

/** Opens a channel (stdio at once; unix sockets once connected). */
export function openChannel(spec: ChardevSpec): Promise<Channel> {
  if (spec.kind === 'stdio') {
    process.stdin.setEncoding('utf8');
    return Promise.resolve({
      write: (t) => process.stdout.write(t),
      onData: (fn) => process.stdin.on('data', (d: string) => fn(d)),
      onClose: (fn) => process.stdin.on('end', fn),
      close: () => process.stdin.pause(),
    });
  }
  if (!spec.server) {
    return new Promise((resolve, reject) => {
      const sock = createConnection(spec.path);
      sock.once('connect', () => resolve(socketChannel(sock, null)));
      sock.once('error', reject);
    });
  }
  return new Promise((resolve, reject) => {
    try {
      unlinkSync(spec.path);
    } catch {
      // no stale socket
    }
    const server = createServer();
    server.maxConnections = 1;
    server.once('connection', (sock) => resolve(socketChannel(sock, server)));
    server.once('error', reject);
    server.listen(spec.path);
  });
}
