/**
 * The libqtest-equivalent client itself, against a fake system emulator
 * (libqtest-fake.mjs, a node script behind a `fake-system-x86_64` wrapper):
 * the exact argument vector, taking qtest before QMP whatever order the
 * binary connects in, `endianness` before the QMP greeting is read, QMP
 * parsed as a JSON stream with events kept apart, IRQ levels, the probes,
 * and quit() failing on anything but a normal exit with status 0.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LibQtest, libqtestArgs, qtestArch, type LibQtestBinary } from './libqtest.js';
import { JsonStreamReader } from './libqtest-qmp.js';
import { devices, hasDevice, hasMachine } from './libqtest-probes.js';

const FAKE = join(dirname(fileURLToPath(import.meta.url)), 'libqtest-fake.mjs');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A `fake-system-x86_64` running the fake in `mode`; its log file. */
function fake(mode: string, env: Record<string, string> = {}): { binary: LibQtestBinary; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'libqtest-fake-'));
  dirs.push(dir);
  const log = join(dir, 'log');
  writeFileSync(log, '');
  const vars = Object.entries({ FAKE_MODE: mode, FAKE_LOG: log, ...env }).map(([k, v]) => `${k}='${v}'`).join(' ');
  const bin = join(dir, 'fake-system-x86_64');
  writeFileSync(bin, `#!/bin/sh\n${vars} exec '${process.execPath}' '${FAKE}' "$@"\n`);
  chmodSync(bin, 0o755);
  return { binary: { command: bin, root: null }, log };
}

/** The fake's log: its argv record and then what it saw, in order. */
function seen(log: string): unknown[] {
  return readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

describe('libqtest client: command line', () => {
  it('qtestArch: the name must contain -system-; the architecture follows the last dash', () => {
    expect(qtestArch('chroot /opt/root qemu-system-x86_64')).toBe('x86_64');
    expect(qtestArch('/build/qemu-system-aarch64')).toBe('aarch64');
    expect(() => qtestArch('/usr/bin/vtemu')).toThrow(/-system-/);
  });

  it('the binary gets exactly libqtest’s argument vector around the test’s arguments', async () => {
    const f = fake('normal');
    const q = await LibQtest.start(f.binary, ['-machine', 'q35', '-device', 'edu'], { log: false });
    await q.quit();
    const argv = (seen(f.log)[0] as { argv: string[] }).argv;
    const dir = argv[1]!.replace(/^unix:/, '').replace(/\/qtest\.sock$/, '');
    expect(dir).toMatch(/libqtest-/);
    expect(argv).toEqual([
      '-qtest', `unix:${dir}/qtest.sock`, '-qtest-log', '/dev/null',
      '-chardev', `socket,path=${dir}/qmp.sock,id=char0`, '-mon', 'chardev=char0,mode=control',
      '-display', 'none', '-audio', 'none', '-run-with', 'exit-with-parent=on',
      '-machine', 'q35', '-device', 'edu', '-accel', 'qtest',
    ]);
  });

  it('-trace first, -qtest-log /dev/fd/2 when logging, no -run-with when asked', () => {
    expect(libqtestArgs('/t/q', '/t/m', '-M none', { trace: 'vtd_*', log: true, exitWithParent: false })).toBe(
      '-trace vtd_* -qtest unix:/t/q -qtest-log /dev/fd/2 -chardev socket,path=/t/m,id=char0 -mon chardev=char0,mode=control ' +
        '-display none -audio none -M none -accel qtest',
    );
  });

  it('a binary in a chroot gets its sockets under ROOT/tmp, named /tmp/... on its command line', async () => {
    const f = fake('normal');
    const root = mkdtempSync(join(tmpdir(), 'libqtest-root-'));
    dirs.push(root);
    // The fake runs outside that root, so the /tmp/... names do not reach it: the start fails, the argv shows the names.
    const q = LibQtest.start({ command: f.binary.command, root }, '', { timeoutMs: 1500 });
    await expect(q).rejects.toThrow(/no qtest connection|exited/);
    const argv = (seen(f.log)[0] as { argv: string[] }).argv;
    expect(argv[1]).toMatch(/^unix:\/tmp\/libqtest-[^/]+\/qtest\.sock$/);
  });
});

describe('libqtest client: connecting', () => {
  for (const mode of ['normal', 'qtest-first']) {
    it(`takes qtest, sends endianness, then reads the QMP greeting and negotiates (${mode})`, async () => {
      const f = fake(mode);
      const q = await LibQtest.start(f.binary, '');
      expect(await q.readl(0x1000)).toBe(0x1234_5678);
      await q.quit();
      const lines = seen(f.log).slice(1);
      // The fake withholds its greeting until endianness arrives: a client that read the greeting first would hang.
      expect(lines).toEqual(['endianness', 'greeting', 'qmp_capabilities', 'readl 0x1000', 'SIGTERM']);
    });
  }

  it('fails (and stops the process) when the binary never connects the qtest socket', async () => {
    const f = fake('no-qtest');
    await expect(LibQtest.start(f.binary, '', { timeoutMs: 1000 })).rejects.toThrow(/no qtest connection/);
    expect(seen(f.log).slice(1)).toEqual(['greeting']);
  });

  it('fails with the binary’s message when it exits before connecting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libqtest-fake-'));
    dirs.push(dir);
    const bin = join(dir, 'bad-system-x86_64');
    writeFileSync(bin, '#!/bin/sh\necho "bad-system: unsupported option" >&2\nexit 1\n');
    chmodSync(bin, 0o755);
    await expect(LibQtest.start({ command: bin, root: null }, '')).rejects.toThrow(/exited \(1\)[\s\S]*unsupported option/);
  });
});

describe('libqtest client: qtest and QMP', () => {
  it('IRQ lines update levels; a FAIL reply throws; memread decodes hex', async () => {
    const f = fake('normal');
    const q = await LibQtest.start(f.binary, '');
    try {
      expect(await q.getIrq(3)).toBe(false);
      await q.irqInterceptIn('ioapic');
      expect(await q.getIrq(3)).toBe(true);
      expect(await q.getIrq(4)).toBe(false);
      expect([...(await q.memread(0x10, 2))]).toEqual([0xa5, 0xb6]);
      await expect(q.writel(0x10, 1)).rejects.toThrow(/FAIL Unknown command/);
    } finally {
      await q.quit();
    }
  });

  it('system_reset: the event that came before the answer is buffered and waited for', async () => {
    const f = fake('normal');
    const q = await LibQtest.start(f.binary, '');
    await q.systemReset();
    await q.qmpReturn('stop');
    await expect(q.waitEvent('RESET', 300)).rejects.toThrow(/timed out/);
    await q.quit();
  });

  it('JSON stream reader: values split anywhere, several per chunk, braces and escapes in strings', () => {
    const got: unknown[] = [];
    const r = new JsonStreamReader((v) => got.push(v));
    const text = '{"a": "}{[\\"\\\\"}\r\n [1, {"b": []}]{"event": "X"}';
    for (const c of text) r.push(c);
    expect(got).toEqual([{ a: '}{["\\' }, [1, { b: [] }], { event: 'X' }]);
    expect(() => r.push(' x')).toThrow(/unexpected/);
  });
});

describe('libqtest client: probes', () => {
  it('hasMachine matches name or alias; hasDevice asks for concrete devices', async () => {
    const f = fake('normal');
    expect(await hasMachine(f.binary, 'q35-fake')).toBe(true);
    expect(await hasMachine(f.binary, 'q35')).toBe(true);
    expect(await hasMachine(f.binary, 'pc')).toBe(false);
    expect(await hasDevice(f.binary, 'edu')).toBe(true);
    expect(await hasDevice(f.binary, 'pci-device')).toBe(false);
    expect(await devices(f.binary)).toEqual(['edu']);
    const log = seen(f.log);
    expect(log.filter((l) => typeof l === 'object' && l !== null && 'argv' in l).map((l) => (l as { argv: string[] }).argv.slice(-4))).toEqual([
      ['-machine', 'none', '-accel', 'qtest'],
      ['-machine', 'none', '-accel', 'qtest'],
    ]);
    expect(log).toContainEqual({ args: { abstract: false, implements: 'device' } });
  });
});

describe('libqtest client: quit', () => {
  it('a normal exit with status 0 passes', async () => {
    const q = await LibQtest.start(fake('normal').binary, '');
    await expect(q.quit()).resolves.toBeUndefined();
  });

  it('a non-zero exit status after SIGTERM fails', async () => {
    const q = await LibQtest.start(fake('status', { FAKE_STATUS: '3' }).binary, '');
    await expect(q.quit()).rejects.toThrow(/status 3/);
  });

  it('death by a signal fails', async () => {
    const q = await LibQtest.start(fake('suicide').binary, '');
    await expect(q.quit()).rejects.toThrow(/killed by SIGKILL/);
  });

  it('a process that ignores SIGTERM fails after the wait (and is killed)', async () => {
    const q = await LibQtest.start(fake('stubborn').binary, '');
    await expect(q.quit(500)).rejects.toThrow(/did not exit within 500 ms/);
  });
});
