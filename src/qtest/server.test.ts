import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/q35.js';
import { MAX_LINE_LENGTH, QtestServer } from './server.js';

function session(args: { accel?: string; devices?: string[] } = { accel: 'qtest' }) {
  const m = createMachine({ ...(args.accel ? { accel: args.accel } : {}), devices: args.devices ?? [] });
  const out: string[] = [];
  const s = new QtestServer(m, (t) => out.push(...t.split('\n').filter((l) => l !== '')));
  const run = (line: string): string[] => {
    out.length = 0;
    s.handleLine(line);
    return [...out];
  };
  return { m, s, run };
}

describe('QtestServer', () => {
  it('answers every memory and port command', () => {
    const { run } = session();
    expect(run('endianness')).toEqual(['OK little']);
    expect(run('writeq 0x1000 0x1122334455667788')).toEqual(['OK']);
    expect(run('readq 0x1000')).toEqual(['OK 0x1122334455667788']);
    expect(run('readb 0x1000')).toEqual(['OK 0x0000000000000088']);
    expect(run('read 0x1000 3')).toEqual(['OK 0x887766']);
    expect(run('b64read 0x1000 3')).toEqual(['OK iHdm']);
    expect(run('b64write 0x1000 2 AQI=')).toEqual(['OK']);
    expect(run('readw 0x1000')).toEqual(['OK 0x0000000000000201']);
    expect(run('memset 0x1000 2 0x1ff')).toEqual(['OK']);
    expect(run('readl 0x1000')).toEqual(['OK 0x000000005566ffff']);
    expect(run('inb 0x1234')).toEqual(['OK 0x00ff']);
    expect(run('outw 0x510 0')).toEqual(['OK']);
    expect(run('inb 0x511')).toEqual(['OK 0x0051']);
    expect(run('module_load a b')).toEqual(['FAIL']);
    expect(run('nope')).toEqual(["FAIL Unknown command 'nope'"]);
  });

  it('answers malformed commands instead of aborting (QEMU asserts)', () => {
    const { run } = session();
    expect(run('read 0x1000 0')[0]).toMatch(/^FAIL /);
    expect(run('readb')[0]).toMatch(/^FAIL /);
    expect(run('readb zz')[0]).toMatch(/^FAIL invalid address/);
    expect(run('writel 0x1000')[0]).toMatch(/^FAIL /);
    expect(run('write 0x1000 4')[0]).toMatch(/^FAIL /);
    expect(run('write 0x1000 4 0x')).toEqual(['ERR invalid argument size']);
    expect(run('read 0x1000 1k')[0]).toMatch(/^FAIL /);
    expect(run('read 0x1000 0x100000000')[0]).toMatch(/too large/);
    expect(run('memset 0x1000 4 q')[0]).toMatch(/^FAIL /);
    expect(run('')).toEqual([]); // QEMU 11.1: an empty line has no reply
    expect(run('set_irq_in ioapic unnamed-gpio-in 99 1')[0]).toMatch(/^FAIL /);
    expect(run('clock_set x')[0]).toMatch(/^FAIL /);
    // still alive
    expect(run('endianness')).toEqual(['OK little']);
  });

  it('addresses beyond 2^53 read 0 and drop writes', () => {
    const { run } = session();
    expect(run('writeq 0xffffffffffffff00 1')).toEqual(['OK']);
    expect(run('readq 0xffffffffffffff00')).toEqual(['OK 0x0000000000000000']);
    expect(run('read 0xfffffffffffffff0 4')).toEqual(['OK 0x00000000']);
  });

  it('clock_step / clock_set under -accel qtest; unknown with a real clock as in QEMU 7.2', () => {
    const { run, m } = session();
    let fired = 0;
    m.clock.timer(() => fired++).armIn(1000);
    expect(run('clock_step')).toEqual(['OK 1000']);
    expect(fired).toBe(1);
    expect(run('clock_step 500')).toEqual(['OK 1500']);
    expect(run('clock_set 10000')).toEqual(['OK 10000']);
    expect(run('clock_set 5')).toEqual(['FAIL 10000']); // QEMU 11.1: a time in the past is a FAIL with the time
    const real = session({});
    expect(real.run('clock_step 10')).toEqual(["FAIL Unknown command 'clock_step'"]);
  });

  it('IRQ intercept: lines come before the reply of the command that caused them', () => {
    const { run, m } = session({ accel: 'qtest', devices: ['edu,id=e0'] });
    expect(run('irq_intercept_in nosuch')).toEqual(['FAIL Unknown device']);
    expect(run('irq_intercept_in ioapic')).toEqual(['OK']);
    expect(run('irq_intercept_in ioapic')).toEqual(['OK']);
    expect(run('irq_intercept_out /machine/peripheral/e0')).toEqual(['FAIL IRQ intercept already enabled']);
    expect(run('set_irq_in ioapic unnamed-gpio-in 3 1')).toEqual(['IRQ raise 3', 'OK']);
    expect(run('set_irq_in ioapic unnamed-gpio-in 3 0')).toEqual(['IRQ lower 3', 'OK']);
    expect(m.ioapic.pins.length).toBe(24);
  });

  it('feed() splits lines at \\n only and keeps partial input (a \\r stays in the line, as on QEMU 11.1)', () => {
    const { m } = session();
    const out: string[] = [];
    const s = new QtestServer(m, (t) => out.push(t));
    s.feed('endian');
    expect(out).toEqual([]);
    s.feed('ness\nreadb 0x0\nendianness\r\n');
    expect(out).toEqual(['OK little\n', 'OK 0x0000000000000000\n', "FAIL Unknown command 'endianness\r'\n"]);
  });
});

describe('QtestServer against hostile input (issue 13)', () => {
  it('a \\r or other control character inside or after a number is a FAIL, never an internal error', () => {
    const { run } = session();
    for (const [line, what] of [
      ['readb 0x1\r0', 'address'],
      ['readb 0x10\r', 'address'],
      ['writeb 0x10 0x5\r', 'value'],
      ['memset 0x10 4 0x1\r', 'pattern'],
      ['read 0x10 4\r', 'size'],
      ['clock_step 5\r', 'time step'],
      ['clock_set 1\r2', 'time'],
      ['clock_step 1\r2', 'time step'],
      ['clock_set 5\v', 'time'],
      ['readb 0x1\f0', 'address'],
      ['readb ', 'address'],
      ['readb  0x10', 'address'],
      ['readb 0x', 'address'],
      ['readb 0x10000000000000000', 'address'],
      ['clock_step 0x8000000000000000', 'time step'],
    ] as const) {
      const reply = run(line);
      expect(reply, JSON.stringify(line)).toHaveLength(1);
      expect(reply[0], JSON.stringify(line)).toMatch(new RegExp(`^FAIL invalid ${what} '`));
      expect(reply[0]).not.toMatch(/[\r\v\f]/);
    }
    // Leading C white space is skipped, as strtoull does.
    expect(run('writeb 0x10 \t\r0x5')).toEqual(['OK']);
    expect(run('readb \v0x10')).toEqual(['OK 0x0000000000000005']);
    expect(run('endianness')).toEqual(['OK little']);
  });

  it('a line with a NUL byte gets one FAIL (QEMU stops answering) and the session lives on', () => {
    const { m } = session();
    const out: string[] = [];
    const s = new QtestServer(m, (t) => out.push(t));
    s.feed('readb \0 0x10\nendianness\n');
    expect(out).toEqual(['FAIL NUL byte in command line\n', 'OK little\n']);
  });

  it('virtual time stays int64: QEMU 11.1 answers at INT64_MAX and on overflowing sums', () => {
    const { run } = session();
    expect(run('clock_step')).toEqual(['FAIL cannot advance clock to the next deadline because there is no pending deadline']);
    expect(run('clock_step 100')).toEqual(['OK 100']);
    expect(run('clock_step 0x7fffffffffffffff')).toEqual(['FAIL could not advance time']); // 100 + INT64_MAX wraps
    expect(run('clock_step 9223372036854775707')).toEqual(['OK 9223372036854775807']);
    expect(run('clock_step 1')).toEqual(['FAIL could not advance time']);
    expect(run('clock_set 0x7fffffffffffffff')).toEqual(['OK 9223372036854775807']);
    expect(run('clock_set -9223372036854775808')).toEqual(['FAIL 9223372036854775807']);
    expect(run('clock_step -1')).toEqual(['FAIL could not advance time']);
  });

  it('a timer at the far end of time fires at INT64_MAX exactly', () => {
    const { run, m } = session();
    let fired = 0;
    m.clock.timer(() => fired++).armAtNs((1n << 63n) - 1n);
    expect(run('clock_step')).toEqual(['OK 9223372036854775807']);
    expect(fired).toBe(1);
  });

  it('command words that name Object.prototype members are unknown commands', () => {
    const { run } = session();
    for (const w of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) expect(run(`${w} 0x10 1`)).toEqual([`FAIL Unknown command '${w}'`]);
  });

  it('a port beyond 0xffff is a FAIL (QEMU asserts), not a wrapped access', () => {
    const { run } = session();
    expect(run('inb 0x10000')[0]).toMatch(/^FAIL port 0x10000 out of range/);
    expect(run('outb -1 1')[0]).toMatch(/^FAIL port 0xffffffffffffffff out of range/);
    expect(run('outb 0x10 -1')).toEqual(['OK']);
  });

  it('b64write writes min(decoded, size) bytes and refuses data under 3 characters, as QEMU 11.1', () => {
    const { run } = session();
    expect(run('write 0x30 4 0xffffffff')).toEqual(['OK']);
    expect(run('b64write 0x30 4 AQ==')).toEqual(['OK']);
    expect(run('read 0x30 4')).toEqual(['OK 0x01ffffff']);
    expect(run('b64write 0x30 2 AQ')).toEqual(['ERR invalid argument size']);
    expect(run('b64write 0x30 2 AQIDBA==')).toEqual(['OK']);
    expect(run('read 0x30 4')).toEqual(['OK 0x0102ffff']);
  });

  it('reads a 16 MiB write line fed in 64 KiB chunks in linear time', () => {
    const { m } = session();
    const out: string[] = [];
    const s = new QtestServer(m, (t) => out.push(t));
    const size = 16 * 1024 * 1024;
    const bytes = Buffer.from(`write 0x100000 ${size} 0x${'a5'.repeat(size)}\n`, 'latin1');
    const CHUNK = 64 * 1024;
    // Flat chunks, as a socket's decoder hands them over.
    const chunks: string[] = [];
    for (let i = 0; i < bytes.length; i += CHUNK) chunks.push(bytes.toString('latin1', i, Math.min(bytes.length, i + CHUNK)));
    const t0 = performance.now();
    for (const c of chunks) s.feed(c);
    const ms = performance.now() - t0;
    console.log(`16 MiB write line in 64 KiB chunks: ${ms.toFixed(0)} ms`);
    expect(out).toEqual(['OK\n']);
    expect(s.scanned).toBe(bytes.length); // every character looked at once
    out.length = 0;
    s.handleLine(`read ${0x100000 + size - 2} 2`);
    expect(out).toEqual(['OK 0xa5a5\n']);
  });

  it('a line over MAX_LINE_LENGTH is dropped as it arrives and gets one FAIL', () => {
    const { m } = session();
    const out: string[] = [];
    const s = new QtestServer(m, (t) => out.push(t));
    const piece = 'x'.repeat(MAX_LINE_LENGTH / 4);
    for (let i = 0; i < 5; i++) s.feed(piece);
    s.feed('\nendianness\n');
    expect(out).toEqual([`FAIL command line too long (limit ${MAX_LINE_LENGTH} characters)\n`, 'OK little\n']);
  });
});

describe('msi_intercept (vtemu extension)', () => {
  const EDU_BAR = 0xe000_0000;
  /** edu at 00:01.0: BAR0, memory + bus master, MSI enabled to 0xFEE01000 data 0x4242. */
  const eduWithMsi = (run: (l: string) => string[]) => {
    const cfg = (reg: number) => `outl 0xcf8 0x${((0x8000_0800 | reg) >>> 0).toString(16)}`;
    run(cfg(0x10)); run(`outl 0xcfc 0x${EDU_BAR.toString(16)}`);
    run(cfg(0x04)); run('outw 0xcfc 0x6');
    run(cfg(0x34)); const cap = Number(BigInt(run('inb 0xcfc')[0]!.slice(3)));
    run(cfg(cap + 4)); run('outl 0xcfc 0xfee01000');
    run(cfg(cap + 8)); run('outl 0xcfc 0x0');
    run(cfg(cap + 12)); run('outw 0xcfc 0x4242');
    run(cfg(cap)); run('outl 0xcfc 0x00810005'); // MSI enable (control word at cap+2)
  };

  it('reports MSIs only once asked, before the reply of the command that raised them', () => {
    const { run, s } = session({ accel: 'qtest', devices: ['edu'] });
    eduWithMsi(run);
    expect(run(`writel 0x${(EDU_BAR + 0x60).toString(16)} 0x1`)).toEqual(['OK']);
    expect(run('msi_intercept')).toEqual(['OK']);
    expect(run(`writel 0x${(EDU_BAR + 0x64).toString(16)} 0x1`)).toEqual(['OK']);
    expect(run(`writel 0x${(EDU_BAR + 0x60).toString(16)} 0x2`)).toEqual(['MSI 0xfee01000 0x4242', 'OK']);
    s.close();
    expect(run(`writel 0x${(EDU_BAR + 0x64).toString(16)} 0x2`)).toEqual([]);
  });

  it('is unknown without an APIC bus, as on QEMU', () => {
    const m = createMachine({ accel: 'qtest' });
    const out: string[] = [];
    const s = new QtestServer({ memory: m.memory, io: m.io, clock: m.clock, ioapic: m.ioapic }, (t) => out.push(t));
    s.handleLine('msi_intercept');
    expect(out).toEqual(["FAIL Unknown command 'msi_intercept'\n"]);
  });
});
