/**
 * Property test: random and mangled command lines never throw out of the
 * server, always get exactly one reply line (OK/FAIL/ERR), and leave the
 * server answering normally.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/q35.js';
import { QtestServer } from './server.js';
import { Rng } from '../../test/support/prng.js';

const SEED = 0x5eed;

const COMMANDS = ['outb', 'outw', 'outl', 'inb', 'inw', 'inl', 'readb', 'readw', 'readl', 'readq', 'writeb', 'writew', 'writel', 'writeq', 'read', 'write', 'b64read', 'b64write', 'memset', 'clock_step', 'clock_set', 'irq_intercept_in', 'irq_intercept_out', 'set_irq_in', 'endianness', 'module_load', 'bogus', ''];
const NUMBERS = ['0', '1', '-1', '0x', '0xfed90000', '0xfec00010', '0xe0000000', '0xcf8', '0xcfc', '0x510', '0x1000', '18446744073709551615', '18446744073709551616', '9007199254740993', 'zz', '0x1g', '010', '08', '4096', '0x100000', 'ioapic', 'unnamed-gpio-in', 'AQID', '===', '0xdeadbeef', ' '];

describe('QtestServer fuzz', () => {
  it(`every line gets exactly one reply and nothing throws (seed 0x${SEED.toString(16)})`, () => {
    const m = createMachine({ accel: 'qtest', devices: ['intel-iommu', 'edu'] });
    let replies: string[] = [];
    const s = new QtestServer(m, (t) => {
      for (const l of t.split('\n')) if (l && !l.startsWith('IRQ ')) replies.push(l);
    });
    const r = new Rng(SEED);
    for (let i = 0; i < 5000; i++) {
      const words = [r.pick(COMMANDS)];
      const n = r.int(5);
      for (let j = 0; j < n; j++) words.push(r.pick(NUMBERS));
      let line = words.join(r.chance(0.1) ? '  ' : ' ');
      if (r.chance(0.05)) line = line.slice(0, r.int(line.length));
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
