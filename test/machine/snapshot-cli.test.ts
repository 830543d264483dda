/**
 * Snapshots through the spawned CLI: a vtemu process runs half a
 * transcript, saves its machine with QMP `migrate file:PATH` (QEMU's
 * command), exits; a new process started with the same options and
 * `-incoming file:PATH` answers the rest exactly as one uninterrupted
 * in-process machine does.  Also: `-incoming` refuses another configuration
 * and another format version with one line, and `x-vtemu-load-state` loads
 * into a running machine.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex, runCli, runTranscript, VtemuCliRunner, VtemuRunner, type Step } from '../harness/index.js';

const ARGS = ['-machine', 'q35', '-m', '256M', '-device', 'intel-iommu', '-device', 'edu,addr=3.0'];
const EDU = 0xfe00_0000;
const CFG = (reg: number): string => hex((0x8000_0000 | (3 << 11) | reg) >>> 0);

/** Before the cut: edu mapped, RAM written, a factorial and a DMA pending on timers, the IOMMU's queue set up. */
const FIRST: Step[] = [
  `outl 0xcf8 ${CFG(0x10)}`, `outl 0xcfc ${hex(EDU)}`,
  `outl 0xcf8 ${CFG(0x04)}`, 'outw 0xcfc 0x6',
  'writel 0x100000 0x12345678', 'writeq 0x100008 0xfeedfacecafebeef',
  `writel ${hex(EDU + 0x04)} 0x5a5a5a5a`,
  `writel ${hex(EDU + 0x08)} 0x2000000`,
  `writeq ${hex(EDU + 0x80)} 0x100000`, `writeq ${hex(EDU + 0x88)} 0x40000`,
  `writeq ${hex(EDU + 0x90)} 0x10`, `writeq ${hex(EDU + 0x98)} 0x1`,
  'writel 0xfed90090 0x200000', 'writel 0xfed90018 0x4000000',
  'clock_step 1000',
];
/** After: the timers fire in the new process; registers, RAM and the clock go on. */
const REST: Step[] = [
  `readl ${hex(EDU + 0x04)}`, `readl ${hex(EDU + 0x20)}`, `readq ${hex(EDU + 0x98)}`,
  'clock_step 200000000',
  `readl ${hex(EDU + 0x08)}`, `readl ${hex(EDU + 0x20)}`, `readq ${hex(EDU + 0x98)}`,
  `writeq ${hex(EDU + 0x80)} 0x40000`, `writeq ${hex(EDU + 0x88)} 0x300000`, `writeq ${hex(EDU + 0x98)} 0x3`,
  'clock_step 200000000', 'readq 0x300008', 'readq 0x100000', 'readl 0xfed9001c', 'readq 0xfed90090',
  `outl 0xcf8 ${CFG(0x10)}`, 'inl 0xcfc', 'clock_step',
];

/** A QMP client on vtemu's unix socket (vtemu is the server). */
async function qmpClient(path: string): Promise<{ cmd(json: string): Promise<string>; close(): void }> {
  for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
  const sock: Socket = createConnection(path);
  sock.setEncoding('utf8');
  let buf = '';
  const waiting: ((l: string) => void)[] = [];
  sock.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const l = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (l.includes('"event"')) continue;
      waiting.shift()?.(l);
    }
  });
  const next = (): Promise<string> => new Promise((r) => waiting.push(r));
  await next(); // greeting
  const cmd = (json: string): Promise<string> => {
    const p = next();
    sock.write(json + '\n');
    return p;
  };
  expect(await cmd('{"execute": "qmp_capabilities"}')).toBe('{"return": {}}');
  return { cmd, close: () => sock.end() };
}

describe('snapshots through the command line', () => {
  it('migrate file: in one process, -incoming file: in the next, the same remaining transcript', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-snap-'));
    const state = join(dir, 'state.json');
    try {
      const whole = VtemuRunner.start(ARGS);
      const reference = await runTranscript(whole, [...FIRST, ...REST]);
      await whole.close();

      const a = VtemuCliRunner.start([...ARGS, '-qmp', `unix:${join(dir, 'a.sock')},server=on,wait=off`]);
      const first = await runTranscript(a, FIRST);
      const qa = await qmpClient(join(dir, 'a.sock'));
      expect(await qa.cmd('{"execute": "query-migrate"}')).toBe('{"return": {}}');
      expect(await qa.cmd(`{"execute": "migrate", "arguments": {"uri": "file:${state}"}}`)).toBe('{"return": {}}');
      expect(await qa.cmd('{"execute": "query-migrate"}')).toBe('{"return": {"status": "completed"}}');
      expect(await qa.cmd('{"execute": "migrate", "arguments": {"uri": "exec:cat"}}')).toBe(
        '{"error": {"class": "GenericError", "desc": "unknown migration protocol: exec:cat"}}',
      );
      qa.close();
      await a.close();

      const b = VtemuCliRunner.start([...ARGS, '-incoming', `file:${state}`]);
      const rest = await runTranscript(b, REST);
      await b.close();
      expect(b.stderr).not.toMatch(/^vtemu:/m);
      const chained = [...first, ...rest.map((l) => ({ ...l, step: l.step + FIRST.length }))];
      expect(chained).toEqual(reference);
      // The DMA and the factorial really were pending at the cut.
      expect(first.length).toBe(FIRST.length);
      expect(rest[1]!.reply).toBe('OK 0x0000000000000001');
      expect(rest[5]!.reply).toBe('OK 0x0000000000000000');
      expect(rest.find((l) => l.cmd === 'readq 0x300008')!.reply).toBe('OK 0xfeedfacecafebeef');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-incoming refuses another configuration, another version and a missing file with one error line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-snap-'));
    const state = join(dir, 'state.json');
    try {
      const a = VtemuRunner.start(ARGS);
      writeFileSync(state, JSON.stringify(a.machine.saveState()));
      await a.close();
      const other = runCli(['-machine', 'q35', '-m', '256M', '-device', 'edu', '-incoming', `file:${state}`, '-qtest', 'stdio'], 'readl 0\n');
      expect(other.code).toBe(1);
      expect(other.stderr).toBe(`vtemu: -incoming file:${state}: snapshot: the state was saved from a machine with another configuration (-machine/-device/-m/... differ)\n`);
      const s = JSON.parse(readFileSync(state, 'utf8')) as { version: number };
      s.version = 99;
      writeFileSync(state, JSON.stringify(s));
      const old = runCli([...ARGS, '-incoming', `file:${state}`, '-qtest', 'stdio'], 'readl 0\n');
      expect(old.code).toBe(1);
      expect(old.stderr).toBe(`vtemu: -incoming file:${state}: snapshot: format version 99 is not supported (this vtemu reads version 1)\n`);
      const missing = runCli([...ARGS, '-incoming', `file:${join(dir, 'none')}`, '-qtest', 'stdio'], '');
      expect(missing.stderr).toBe(`vtemu: -incoming file:${join(dir, 'none')}: snapshot: cannot read ${join(dir, 'none')}: ENOENT\n`);
      const proto = runCli([...ARGS, '-incoming', 'tcp:0:4444', '-qtest', 'stdio'], '');
      expect(proto.stderr).toBe('vtemu: unknown migration protocol: tcp:0:4444\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('x-vtemu-load-state loads a saved state into the running machine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-snap-'));
    const state = join(dir, 'state.json');
    try {
      const a = VtemuCliRunner.start([...ARGS, '-qmp', `unix:${join(dir, 'a.sock')},server=on,wait=off`]);
      expect(await a.command('writel 0x100000 0x11111111')).toBe('OK');
      const q = await qmpClient(join(dir, 'a.sock'));
      expect(await q.cmd(`{"execute": "migrate", "arguments": {"uri": "file:${state}"}}`)).toBe('{"return": {}}');
      expect(await a.command('writel 0x100000 0x22222222')).toBe('OK');
      expect(await a.command('writel 0x200000 0x33333333')).toBe('OK');
      expect(await q.cmd(`{"execute": "x-vtemu-load-state", "arguments": {"uri": "file:${state}"}}`)).toBe('{"return": {}}');
      expect(await a.command('readl 0x100000')).toBe('OK 0x0000000011111111');
      expect(await a.command('readl 0x200000')).toBe('OK 0x0000000000000000');
      expect(await q.cmd(`{"execute": "x-vtemu-load-state", "arguments": {"uri": "file:${join(dir, 'nope')}"}}`)).toBe(
        `{"error": {"class": "GenericError", "desc": "snapshot: cannot read ${join(dir, 'nope')}: ENOENT"}}`,
      );
      q.close();
      await a.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
