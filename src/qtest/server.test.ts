import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/q35.js';
import { QtestServer } from './server.js';

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
    expect(run('')[0]).toBe("FAIL Unknown command ''");
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
    expect(run('clock_set 5')).toEqual(['OK 10000']);
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

  it('feed() splits lines and keeps partial input', () => {
    const { m } = session();
    const out: string[] = [];
    const s = new QtestServer(m, (t) => out.push(t));
    s.feed('endian');
    expect(out).toEqual([]);
    s.feed('ness\r\nreadb 0x0\n');
    expect(out).toEqual(['OK little\n', 'OK 0x0000000000000000\n']);
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
