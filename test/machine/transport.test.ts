/**
 * The spawned CLI over unix sockets the way libqtest drives QEMU: the test
 * listens on a qtest socket and a QMP socket, vtemu connects to both
 * (`-qtest unix:PATH -qmp unix:PATH`); also the listening mode
 * (`unix:PATH,server`).  QMP system_reset resets the machine.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from '../harness/index.js';
import { LineSplitter } from '../harness/runner.js';

function accept(path: string): Promise<Socket> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(path);
  });
}

function lines(sock: Socket): LineSplitter {
  const l = new LineSplitter();
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => l.push(d));
  return l;
}

describe('unix socket transports (spawned CLI)', () => {
  it.each([
    ['-qmp unix:QMP', (q: string) => ['-qmp', `unix:${q}`]],
    ['libqtest: -chardev socket + -mon', (q: string) => ['-qtest-log', '/dev/null', '-chardev', `socket,path=${q},id=char0`, '-mon', 'chardev=char0,mode=control', '-display', 'none']],
  ])('connects to libqtest-style listeners (%s); QMP system_reset resets devices', async (_name, qmpArgs) => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-sock-'));
    const qtestPath = join(dir, 'qtest.sock');
    const qmpPath = join(dir, 'qmp.sock');
    const qtestConn = accept(qtestPath);
    const qmpConn = accept(qmpPath);
    const child = spawn(process.execPath, [buildCli(), '-accel', 'qtest', '-qtest', `unix:${qtestPath}`, ...qmpArgs(qmpPath), '-device', 'intel-iommu'], { stdio: 'ignore' });
    try {
      const [qs, ms] = await Promise.all([qtestConn, qmpConn]);
      const q = lines(qs);
      const m = lines(ms);
      const greeting = JSON.parse(await m.next());
      expect(greeting.QMP.version.qemu.major).toBe(11);
      ms.write('{"execute": "qmp_capabilities"}\n');
      expect(JSON.parse(await m.next())).toEqual({ return: {} });
      qs.write('writel 0xfed90040 0x1234\n');
      expect(await q.next()).toBe('OK');
      qs.write('readl 0xfed90040\n');
      expect(await q.next()).toBe('OK 0x0000000000001234');
      ms.write('{"execute": "system_reset"}\n');
      expect(JSON.parse(await m.next()).event).toBe('RESET'); // QEMU 11.1 sends the event before the reply
      expect(JSON.parse(await m.next())).toEqual({ return: {} });
      qs.write('readl 0xfed90040\n');
      expect(await q.next()).toBe('OK 0x0000000000000000');
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      ms.write('{"execute": "quit"}\n');
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('listens with unix:PATH,server and serves one client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-sock-'));
    const path = join(dir, 'q.sock');
    const child = spawn(process.execPath, [buildCli(), '-qtest', `unix:${path},server,wait=off`], { stdio: 'ignore' });
    try {
      let sock: Socket | null = null;
      for (let i = 0; i < 100 && !sock; i++) {
        sock = await new Promise<Socket | null>((resolve) => {
          const s = createConnection(path);
          s.once('connect', () => resolve(s));
          s.once('error', () => setTimeout(() => resolve(null), 50));
        });
      }
      expect(sock).not.toBeNull();
      const l = lines(sock!);
      sock!.write('endianness\n');
      expect(await l.next()).toBe('OK little');
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      sock!.end();
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
