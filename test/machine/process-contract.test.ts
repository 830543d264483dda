/**
 * The process contract QEMU's libqtest relies on (issue 11), checked on the
 * spawned CLI: client-mode connections (qtest first, then QMP), the qtest
 * log (`-qtest-log FILE|none`, stderr when absent, as QEMU 11.1), exit 0 on
 * SIGTERM with QEMU's "terminating on signal" line, at EOF on the QMP socket,
 * and when the parent goes away under `-run-with exit-with-parent=on`;
 * `-machine none` for probes.  The full libqtest-style client and suite are
 * test/harness/libqtest.ts and test/libqtest/.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from '../harness/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A listening socket that records when its one connection arrives. */
function listen(path: string, order: string[], name: string): { server: Server; conn: Promise<Socket> } {
  let resolveConn!: (s: Socket) => void;
  const conn = new Promise<Socket>((r) => (resolveConn = r));
  const server = createServer((s) => {
    order.push(name);
    s.setEncoding('latin1');
    resolveConn(s);
  });
  server.listen(path);
  return { server, conn };
}

/** The next `n` lines read from a socket. */
function lines(sock: Socket): () => Promise<string> {
  let buf = '';
  const waiting: ((l: string) => void)[] = [];
  const ready: string[] = [];
  sock.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const l = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(l);
      else ready.push(l);
    }
  });
  return () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((r) => waiting.push(r)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('libqtest process contract (spawned CLI)', () => {
  it('connects qtest then QMP as a client, answers endianness before the greeting is read, exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-libqtest-'));
    const order: string[] = [];
    const q = listen(join(dir, 'qtest.sock'), order, 'qtest');
    const m = listen(join(dir, 'qmp.sock'), order, 'qmp');
    const log = join(dir, 'qtest.log');
    const args = [
      '-qtest', `unix:${join(dir, 'qtest.sock')}`, '-qtest-log', log,
      '-chardev', `socket,path=${join(dir, 'qmp.sock')},id=char0`, '-mon', 'chardev=char0,mode=control',
      '-display', 'none', '-audio', 'none', '-run-with', 'exit-with-parent=on', '-machine', 'q35', '-accel', 'qtest',
    ];
    const child = spawn('/bin/sh', ['-c', `exec '${process.execPath}' '${buildCli()}' ${args.map((a) => `'${a}'`).join(' ')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const qs = await q.conn;
      const ms = await m.conn;
      expect(order).toEqual(['qtest', 'qmp']);
      const qtest = lines(qs);
      const qmp = lines(ms);
      qs.write('endianness\n');
      expect(await qtest()).toBe('OK little');
      expect(JSON.parse(await qmp())).toMatchObject({ QMP: { capabilities: ['oob'] } });
      ms.write('{"execute": "qmp_capabilities"}\n');
      expect(await qmp()).toBe('{"return": {}}');
      qs.write('readl 0xfed90000\n');
      expect(await qtest()).toMatch(/^OK 0x/);
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(stderr).toBe('vtemu: terminating on signal 15\n');
      const logged = readFileSync(log, 'latin1').split('\n');
      expect(logged[0]).toBe('[I 0.000000] OPENED');
      expect(logged.slice(1, 5).map((l) => l.replace(/^\[([RS]) \+\d+\.\d{6}\]/, '[$1]'))).toEqual([
        '[R] endianness', '[S] OK little', '[R] readl 0xfed90000', '[S] OK 0x0000000000000000',
      ]);
      expect(logged.at(-2)).toMatch(/^\[I \+\d+\.\d{6}\] CLOSED$/);
    } finally {
      child.kill('SIGKILL');
      q.server.close();
      m.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logs the qtest session to stderr without -qtest-log, and nothing with -qtest-log none', () => {
    const run = (extra: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [buildCli(), '-qtest', 'stdio', '-accel', 'qtest', ...extra], { input: 'endianness\n', encoding: 'utf8', timeout: 30_000 });
    const plain = run([]);
    expect(plain.status).toBe(0);
    expect(String(plain.stderr).replace(/\+\d+\.\d{6}/g, '+T').split('\n')).toEqual(['[I 0.000000] OPENED', '[R +T] endianness', '[S +T] OK little', '[I +T] CLOSED', '']);
    const none = run(['-qtest-log', 'none']);
    expect(none.stdout).toBe('OK little\n');
    expect(none.stderr).toBe('');
  });

  it('exits 0 when the QMP peer ends its connection (EOF)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-qmp-eof-'));
    const order: string[] = [];
    const m = listen(join(dir, 'qmp.sock'), order, 'qmp');
    const child = spawn(process.execPath, [buildCli(), '-machine', 'none', '-qmp', `unix:${join(dir, 'qmp.sock')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const ms = await m.conn;
      const qmp = lines(ms);
      expect(await qmp()).toMatch(/^\{"QMP"/);
      ms.end('{"execute": "qmp_capabilities"}\n');
      expect(await qmp()).toBe('{"return": {}}');
      expect(await exit).toBe(0);
    } finally {
      child.kill('SIGKILL');
      m.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-run-with exit-with-parent=on: exits once its parent is gone (and not before)', async () => {
    // A parent that starts vtemu, prints its pid and exits after 700 ms.
    const script = `const c = require('child_process').spawn(process.execPath, [${JSON.stringify(buildCli())}, '-machine', 'none', '-qtest', 'stdio', '-run-with', 'exit-with-parent=on'], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      console.log(c.pid); setTimeout(() => process.exit(0), 700);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number(await new Promise<string>((r) => parent.stdout.setEncoding('utf8').once('data', (d: string) => r(d))));
    await sleep(300);
    expect(alive(pid)).toBe(true);
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      await sleep(100);
      gone = !alive(pid);
    }
    if (!gone) process.kill(pid, 'SIGKILL');
    expect(gone).toBe(true);
  });

  it('-machine none refuses devices as QEMU 11.1 does', () => {
    const r = spawnSync(process.execPath, [buildCli(), '-machine', 'none', '-device', 'edu', '-qtest', 'stdio'], { input: '', encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("vtemu: -device edu: No 'PCI' bus found for device 'edu'\n");
  });
});
