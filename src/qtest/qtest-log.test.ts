import { describe, expect, it } from 'vitest';
import { QtestLog } from './qtest-log.js';

describe('QtestLog (QEMU 11.1 -qtest-log format)', () => {
  const run = (times: number[]): { log: QtestLog; lines: string[] } => {
    const lines: string[] = [];
    let i = 0;
    const log = new QtestLog((l) => lines.push(l), () => times[Math.min(i++, times.length - 1)]!);
    return { log, lines };
  };

  it('stamps events with six-decimal seconds since OPENED', () => {
    const { log, lines } = run([100, 100.021054, 100.021248, 100.02145, 100.021471]);
    log.opened();
    log.received('readl 0x1000');
    log.sent('OK 0x0000000000000000\n');
    log.received('');
    log.closed();
    expect(lines).toEqual([
      '[I 0.000000] OPENED',
      '[R +0.021054] readl 0x1000',
      '[S +0.021248] OK 0x0000000000000000',
      '[R +0.021450]',
      '[I +0.021471] CLOSED',
    ]);
  });

  it('logs each line of a multi-line send, and an over-long line by a marker', () => {
    const { log, lines } = run([5, 5.5, 6]);
    log.opened();
    log.sent('IRQ raise 3\nOK\n');
    log.received(null);
    expect(lines).toEqual(['[I 0.000000] OPENED', '[S +0.500000] IRQ raise 3', '[S +0.500000] OK', '[R +1.000000] <command line too long>']);
  });
});
