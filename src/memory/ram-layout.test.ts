/**
 * q35 RAM layout and `-m` parsing, with QEMU 7.2 as the oracle when it is
 * installed (its answers for sizes and messages, and `info mtree` for the
 * split).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { needQemu, qemuOracle } from '../../test/harness/oracle.js';
import { AddressSpace } from './address-space.js';
import { createTsRam } from './ram-ts.js';
import { DEFAULT_RAM_SIZE, MemSizeError, Q35Ram, parseMemSize, parseSize, q35RamLayout } from './ram-layout.js';
import { ContainerRegion } from './region.js';

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const haveQemu = needQemu('7.2', 'q35 RAM layout vs QEMU 7.2');
const QEMU = qemuOracle('7.2')?.command ?? 'qemu-system-x86_64';

describe('q35RamLayout', () => {
  it.each([
    [128 * MiB, 128 * MiB, 0],
    [0xb000_0000 - 4096, 0xb000_0000 - 4096, 0],
    [0xb000_0000, 0x8000_0000, 0x3000_0000],
    [4 * GiB, 2 * GiB, 2 * GiB],
    [64 * GiB, 2 * GiB, 62 * GiB],
  ])('%d bytes -> %d below 4G, %d above', (size, below, above) => {
    const ram = createTsRam(size);
    const l = q35RamLayout(ram);
    expect(l.below4g).toBe(below);
    expect(l.above4g).toBe(above);
    expect(l.block.size).toBe(size);
    expect(l.regions.map((r) => [r.region.name, r.at, r.region.size, r.region.offset])).toEqual(
      above ? [['ram-below-4g', 0, below, 0], ['ram-above-4g', Q35Ram.ABOVE_4G_BASE, above, below]] : [['ram-below-4g', 0, below, 0]],
    );
  });

  it('maps RAM so that 4 GiB reaches the byte after the below-4G part', () => {
    const ram = createTsRam(3 * GiB);
    const l = q35RamLayout(ram);
    const root = new ContainerRegion('system', 2 ** 40);
    for (const { region, at } of l.regions) root.add(region, at);
    const as = new AddressSpace('memory', root);
    ram.writeU32(l.below4g, 0x1234_5678);
    ram.writeU32(l.below4g - 4, 0x9abc_def0);
    expect(as.read(Q35Ram.ABOVE_4G_BASE, 4)).toBe(0x1234_5678);
    expect(as.read(l.below4g - 4, 4)).toBe(0x9abc_def0);
    expect(as.read(l.below4g, 4)).toBe(0); // the hole below 4 GiB
    expect(as.isRam(Q35Ram.ABOVE_4G_BASE, l.above4g)).toBe(true);
    expect(as.isRam(Q35Ram.ABOVE_4G_BASE, l.above4g + 1)).toBe(false);
  });

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

describe('parseSize (qemu_strtosz)', () => {
  it.each([
    ['0', 'B', 0n],
    ['4096', 'B', 4096n],
    ['1k', 'B', 1024n],
    ['1K', 'B', 1024n],
    ['1.5G', 'B', 3n * 2n ** 29n],
    ['1.M', 'B', 2n ** 20n],
    ['0.3k', 'B', 307n],
    ['1.5E', 'B', 3n * 2n ** 59n],
    ['0x1f', 'B', 31n],
    [' +5M', 'B', 5n * 2n ** 20n],
    ['010', 'M', 10n * 2n ** 20n],
    ['16383P', 'B', 16383n * 2n ** 50n],
  ])('%s (default %s) = %d', (text, def, want) => {
    expect(parseSize(text, def)).toBe(want);
  });

  it.each(['', 'foo', '-5', ' -5', '5 M', '5MB', '1e3', '1.5e3', '.5G', '1.5', '1.5b', '0x', '1x', '5M '])(
    '%j is invalid',
    (text) => {
      expect(parseSize(text)).toBe('invalid');
    },
  );

  it.each(['16E', '18446744073709551616', '99999999999999999999k', '0x10000000000000000'])('%s is out of range', (text) => {
    expect(parseSize(text)).toBe('range');
  });

  it('reports a suffix on a hex number', () => {
    let told = 0;
    expect(parseSize('0x10M', 'B', () => told++)).toBe(16n * 2n ** 20n);
    expect(told).toBe(1);
  });
});

describe('parseMemSize (-m)', () => {
  it.each([
    ['64G', 64 * GiB],
    ['512M', 512 * MiB],
    ['2048', 2 * GiB],
    ['1T', 1024 * GiB],
    ['1.5G', 1.5 * GiB],
    ['0', DEFAULT_RAM_SIZE],
    ['', DEFAULT_RAM_SIZE],
    ['3k', 8 * KiB],
    ['4097k', 4097 * KiB + 7 * KiB],
    ['1.0001M', 1056768],
    ['size=1G', GiB],
    ['1G,slots=2,maxmem=4G', GiB],
    ['1G,size=2G', 2 * GiB],
    ['0x10', 16 * MiB],
  ])('-m %j = %d bytes', (arg, want) => {
    expect(parseMemSize(arg)).toBe(want);
  });

  it('warns like QEMU about a hex size given in MiB', () => {
    const warnings: string[] = [];
    expect(parseMemSize('0x10', (w) => warnings.push(w))).toBe(16 * MiB);
    expect(warnings).toEqual(['Using a multiplier suffix on hex numbers is deprecated: 0x10M']);
  });

  it('rejects with QEMU messages', () => {
    expect(() => parseMemSize('foo')).toThrow(MemSizeError);
    expect(() => parseMemSize('foo')).toThrow(
      "-m foo: Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
    );
    expect(() => parseMemSize('16E')).toThrow("-m 16E: Value '16E' is out of range for parameter 'size'");
    expect(() => parseMemSize('abc=1')).toThrow("-m abc=1: Invalid parameter 'abc'");
    expect(() => parseMemSize('1G,slots=x')).toThrow("Parameter 'slots' expects a number");
    expect(() => parseMemSize('8E')).toThrow('ram size too large');
  });

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
