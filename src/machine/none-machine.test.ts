import { describe, expect, it } from 'vitest';
import { NoneMachine } from './none-machine.js';
import { QtestServer } from '../qtest/server.js';

function session(m: NoneMachine): (line: string) => string {
  let out = '';
  const s = new QtestServer(m, (t) => (out += t));
  return (line) => {
    out = '';
    s.handleLine(line);
    return out.trimEnd();
  };
}

describe('-machine none', () => {
  it('has no RAM without -m: memory reads 0, writes are dropped, ports read all-ones', () => {
    const m = new NoneMachine();
    const q = session(m);
    expect(q('writel 0x1000 0x12345678')).toBe('OK');
    expect(q('readl 0x1000')).toBe('OK 0x0000000000000000');
    expect(q('inb 0x510')).toBe('OK 0x00ff');
    m.dispose();
  });

  it('maps -m RAM at 0', () => {
    const m = new NoneMachine(16 << 20);
    const q = session(m);
    expect(q('writel 0xfff000 0x12345678')).toBe('OK');
    expect(q('readl 0xfff000')).toBe('OK 0x0000000012345678');
    expect(q('readl 0x1000000')).toBe('OK 0x0000000000000000');
    m.dispose();
  });

  it('has no IOAPIC: its path is an unknown device', () => {
    const m = new NoneMachine();
    const q = session(m);
    expect(q('irq_intercept_in ioapic')).toBe('FAIL Unknown device');
    expect(q('set_irq_in ioapic unnamed-gpio-in 0 1')).toBe('FAIL Unknown device');
    expect(q('clock_step 100')).toBe('OK 100');
    m.dispose();
  });
});
