/**
 * Property test (issue 13): hostile qtest input — real commands with
 * mangled numbers (CR/NUL/TAB/VT/FF inside and around arguments, empty
 * arguments, values beyond 2^64, int64 edges), random bytes, long lines,
 * all fed through `feed()` cut at random chunk boundaries — never throws out
 * of the server, gets exactly one reply per non-empty line (an empty line
 * has none, as on QEMU 11.1), never an `internal error` reply, each command
 * within 100 ms, and leaves the server answering normally.  The generator
 * lives in test/support/qtest-fuzz-gen.ts for long seeded drivers.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../machine/q35.js';
import { QtestServer } from './server.js';
import { Rng } from '../../test/support/prng.js';
import { fuzzLine, longWriteLine, randomChunks } from '../../test/support/qtest-fuzz-gen.js';

const SEED = 0x5eed;
const LINES = 6000;
/**
 * Most time one command may take (reading its line included): a guard against
 * pathological (super-linear) commands, an order of magnitude above what any
 * command takes, so a loaded machine does not make it flaky.
 */
const COMMAND_BUDGET_MS = 1000;
/**
 * Tries a command that went over budget gets alone before it counts as slow:
 * the host is shared (a GC pause or a busy core can stretch any one
 * command), while a command that is slow by design is slow every time.
 */
const RETIMES = 3;

/** A session whose replies are collected with the time each one took since the previous mark. */
function fuzzSession() {
  const m = createMachine({ accel: 'qtest', devices: ['intel-iommu', 'edu'] });
  const replies: string[] = [];
  /** Indices (in `replies`) of replies that came more than COMMAND_BUDGET_MS after the previous mark. */
  const slow: number[] = [];
  let mark = performance.now();
  const s = new QtestServer(m, (t) => {
    for (const l of t.split('\n')) {
      if (l === '' || l.startsWith('IRQ ') || l.startsWith('MSI ')) continue;
      const now = performance.now();
      if (now - mark > COMMAND_BUDGET_MS) slow.push(replies.length);
      mark = now;
      replies.push(l);
    }
  });
  const feed = (chunk: string): void => {
    mark = performance.now();
    s.feed(chunk);
  };
  return { s, replies, slow, feed };
}

describe('QtestServer fuzz', () => {
  it(`hostile lines in random chunks: one reply per non-empty line, no throw, no internal error (seed 0x${SEED.toString(16)})`, () => {
    const { replies, slow, feed } = fuzzSession();
    const r = new Rng(SEED);
    const lines: string[] = [];
    for (let i = 0; i < LINES; i++) lines.push(r.chance(0.002) ? longWriteLine(r, r.range(1, 1 << 16)) : fuzzLine(r));
    const stream = lines.join('\n') + '\n';
    for (const chunk of randomChunks(r, stream, 512)) expect(() => feed(chunk)).not.toThrow();
    const answered = lines.filter((l) => l !== '');
    expect(replies.length).toBe(answered.length);
    for (let i = 0; i < replies.length; i++) {
      const what = JSON.stringify(answered[i]!.slice(0, 80));
      expect(replies[i]!, what).toMatch(/^(OK|FAIL|ERR)/);
      expect(replies[i]!, what).not.toMatch(/internal error/);
    }
    // Over-budget commands, timed again alone: the best of RETIMES must be within budget.
    const reallySlow: string[] = [];
    for (const i of slow) {
      const line = answered[i]!;
      let best = Infinity;
      for (let k = 0; k < RETIMES; k++) {
        const t0 = performance.now();
        feed(line + '\n');
        best = Math.min(best, performance.now() - t0);
      }
      if (best > COMMAND_BUDGET_MS) reallySlow.push(`${best.toFixed(0)} ms: ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (slow.length) console.log(`fuzz: ${slow.length} command(s) over ${COMMAND_BUDGET_MS} ms on first run, ${reallySlow.length} when timed alone`);
    expect(reallySlow).toEqual([]);
    replies.length = 0;
    feed('endianness\n');
    expect(replies).toEqual(['OK little']);
  });

  it('each line alone: the reply belongs to it (seed replay)', () => {
    const { s, replies } = fuzzSession();
    const r = new Rng(SEED + 1);
    for (let i = 0; i < 2000; i++) {
      const line = fuzzLine(r);
      replies.length = 0;
      expect(() => s.handleLine(line)).not.toThrow();
      expect(replies.length, JSON.stringify(line)).toBe(line === '' ? 0 : 1);
      if (line !== '') expect(replies[0]!, JSON.stringify(line)).not.toMatch(/internal error/);
    }
  });
});
