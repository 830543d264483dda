/**
 * Property test: random and mangled command lines never throw out of the
 * server, always get exactly one reply line (OK/FAIL/ERR), and leave the
 * server answering normally.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/q35.js';
import { QtestServer } from './server.js';

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const COMMANDS = ['outb', 'outw', 'outl', 'inb', 'inw', 'inl', 'readb', 'readw', 'readl', 'readq', 'writeb', 'writew', 'writel', 'writeq', 'read', 'write', 'b64read', 'b64write', 'memset', 'clock_step', 'clock_set', 'irq_intercept_in', 'irq_intercept_out', 'set_irq_in', 'endianness', 'module_load', 'bogus', ''];
const NUMBERS = ['0', '1', '-1', '0x', '0xfed90000', '0xfec00010', '0xe0000000', '0xcf8', '0xcfc', '0x510', '0x1000', '18446744073709551615', '18446744073709551616', '9007199254740993', 'zz', '0x1g', '010', '08', '4096', '0x100000', 'ioapic', 'unnamed-gpio-in', 'AQID', '===', '0xdeadbeef', ' '];

describe('QtestServer fuzz', () => {
  it('every line gets exactly one reply and nothing throws', () => {
    const m = createMachine({ accel: 'qtest', devices: ['intel-iommu', 'edu'] });
    let replies: string[] = [];
    const s = new QtestServer(m, (t) => {
      for (const l of t.split('\n')) if (l && !l.startsWith('IRQ ')) replies.push(l);
    });
    const r = rng(0x5eed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
    for (let i = 0; i < 5000; i++) {
      const words = [pick(COMMANDS)];
      const n = Math.floor(r() * 5);
      for (let j = 0; j < n; j++) words.push(pick(NUMBERS));
      let line = words.join(r() < 0.1 ? '  ' : ' ');
      if (r() < 0.05) line = line.slice(0, Math.floor(r() * line.length));
      replies = [];
      expect(() => s.handleLine(line)).not.toThrow();
      expect(replies.length, line).toBe(1);
      expect(replies[0]!, line).toMatch(/^(OK|FAIL|ERR)/);
      expect(replies[0]!, line).not.toMatch(/internal error/);
    }
    replies = [];
    s.handleLine('endianness');
    expect(replies).toEqual(['OK little']);
  });
});
