/**
 * q35 RAM layout and `-m` parsing against QEMU 7.2 (the oracle, when it is
 * installed): its answers for sizes, warnings and messages, and `info mtree`
 * for the split.  Kept apart from ram-layout.test.ts because it spawns QEMU:
 * the mutation run (vitest.mutate-memory.config.ts) leaves it out.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { needQemu, qemuOracle } from '../../test/harness/oracle.js';
import { createTsRam } from './ram-ts.js';
import { parseMemSize, q35RamLayout } from './ram-layout.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const haveQemu = needQemu('7.2', 'q35 RAM layout vs QEMU 7.2');
const QEMU = qemuOracle('7.2')?.command ?? 'qemu-system-x86_64';

describe('q35RamLayout vs QEMU 7.2', () => {
  it.skipIf(!haveQemu)('matches QEMU 7.2 info mtree at the split threshold', () => {
    for (const [m, size] of [['2815M', 2815 * MiB], ['2816M', 2816 * MiB], ['4G', 4 * GiB]] as const) {
      const out = runQemu(m, 'human-monitor-command', { 'command-line': 'info mtree' }).stdout;
      const below = /ram-below-4g @pc\.ram 0000000000000000-([0-9a-f]+)/.exec(out);
      const above = /ram-above-4g @pc\.ram ([0-9a-f]+)-([0-9a-f]+)/.exec(out);
      const l = q35RamLayout(createTsRam(size));
      expect(below, out).not.toBeNull();
      expect(parseInt(below![1]!, 16) + 1).toBe(l.below4g);
      if (l.above4g === 0) expect(above).toBeNull();
      else expect([parseInt(above![1]!, 16), parseInt(above![2]!, 16) + 1 - parseInt(above![1]!, 16)]).toEqual([l.below4g, l.above4g]);
    }
  });
});

describe('parseMemSize vs QEMU 7.2', () => {
  it.skipIf(!haveQemu)('agrees with QEMU 7.2 on sizes, warnings and messages', () => {
    const cases = ['0', '', '3k', '1b', '2048', '1.0001M', '0x10', '0x1f', '+5', '010', '0.3k', '4097k', '1.5G', 'size=64M',
      '1G,size=96M', 'foo', '-5', '5MB', '1.5', '1.5b', '.5G', '16E', 'abc=1', 'size=', '5 M', '1e3'];
    for (const arg of cases) {
      const q = runQemu(arg, 'query-memory-size-summary');
      const size = /"base-memory": (\d+)/.exec(q.stdout);
      const qemuError = /qemu-system-x86_64: (.*(?:\n(?!qemu-system)[^{].*)*)/.exec(q.stderr)?.[1];
      const warnings: string[] = [];
      let ours: number | string;
      try {
        ours = parseMemSize(arg, (w) => warnings.push(w));
      } catch (e) {
        ours = (e as Error).message;
      }
      if (size) {
        expect(ours, arg).toBe(Number(size[1]));
        const qemuWarnings = [...q.stderr.matchAll(/warning: (.*)/g)].map((m) => m[1]);
        expect(warnings.length > 0, arg).toBe(qemuWarnings.length > 0);
        if (warnings.length) expect(qemuWarnings).toContain(warnings[0]);
      } else {
        expect(ours, arg).toBe(qemuError?.trimEnd());
      }
    }
  });
});

/** Runs QEMU 7.2 (q35, stopped) with `-m arg` and one QMP command. */
function runQemu(arg: string, command: string, args?: object): { stdout: string; stderr: string } {
  const qmp =
    '{"execute":"qmp_capabilities"}\n' +
    JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) +
    '\n{"execute":"quit"}\n';
  const r = spawnSync(QEMU, ['-M', 'q35', '-display', 'none', '-nodefaults', '-S', '-qmp', 'stdio', '-m', arg], {
    input: qmp,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { stdout: r.stdout, stderr: r.stderr };
}
