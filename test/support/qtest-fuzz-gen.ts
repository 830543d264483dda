/**
 * Generator of hostile qtest protocol input (issue 13), shared by the unit
 * fuzzer (src/qtest/server.fuzz.test.ts) and long seeded drivers: command
 * lines built from real commands and mangled numbers (CR/LF/NUL/TAB/VT/FF
 * inside and around arguments, empty arguments, values beyond 2^64, int64
 * edges, `0x` alone, trailing garbage), random bytes, and a splitter that
 * cuts the resulting stream at random chunk boundaries.  Pure: everything
 * comes from the Rng, so a seed replays exactly.
 */
import type { Rng } from './prng.js';

/** Command words, the real ones (and a few QEMU does not know). */
export const FUZZ_COMMANDS: readonly string[] = [
  'outb', 'outw', 'outl', 'inb', 'inw', 'inl',
  'readb', 'readw', 'readl', 'readq', 'writeb', 'writew', 'writel', 'writeq',
  'read', 'write', 'b64read', 'b64write', 'memset',
  'clock_step', 'clock_set', 'irq_intercept_in', 'irq_intercept_out', 'set_irq_in',
  'endianness', 'module_load', 'msi_intercept', 'bogus', '', 'constructor', '__proto__', 'toString',
];

/** Arguments that are numbers, near-numbers or other words the commands take. */
export const FUZZ_WORDS: readonly string[] = [
  '0', '1', '-1', '-0', '+1', '0x', '0X', '0b', '0b101', '0B1', '010', '08', '09', '0x1g', 'zz', '1k', '',
  '0xfed90000', '0xfec00010', '0xe0000000', '0xcf8', '0xcfc', '0x510', '0x1000', '0x100000', '4096',
  '0xffff', '0x10000', '4294967296',
  '9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809',
  '0x7fffffffffffffff', '0x8000000000000000', '-0x8000000000000000',
  '18446744073709551615', '18446744073709551616', '-18446744073709551615', '-18446744073709551616',
  '0xffffffffffffffff', '0x10000000000000000', '9007199254740993', '340282366920938463463374607431768211456',
  'ioapic', '/machine/ioapic', 'unnamed-gpio-in', 'AQID', 'AQ==', '===', '0xdeadbeef', '0x00112233445566778899',
];

/** Control characters a hostile client mixes into arguments (not `\n`, which ends a line). */
export const FUZZ_CONTROLS: readonly string[] = ['\r', '\0', '\t', '\v', '\f', ' ', '\x7f', '\x1b'];

/** A number far beyond 2^64 (or a long run of leading zeros), up to `maxDigits` digits. */
function hugeNumber(r: Rng, maxDigits: number): string {
  const n = r.range(20, maxDigits);
  if (r.chance(0.3)) return '0x' + '0'.repeat(n) + '1';
  let s = r.chance(0.5) ? '-' : '';
  s += String(r.range(1, 9));
  for (let i = 1; i < n; i++) s += String(r.int(10));
  return s;
}

/** A random signed 64-bit edge value in some radix. */
function int64Edge(r: Rng): string {
  const v = r.pick([0n, 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 1n << 64n, (1n << 53n) + 1n]) + BigInt(r.range(-2, 2));
  const mag = v < 0n ? -v : v;
  const sign = v < 0n || r.chance(0.2) ? '-' : '';
  return r.chance(0.5) ? `${sign}0x${mag.toString(16)}` : `${sign}${mag}`;
}

/** Inserts a control character at the start, end or middle of `w`. */
function mangle(r: Rng, w: string): string {
  const c = r.pick(FUZZ_CONTROLS);
  const at = r.pick([0, w.length, r.int(w.length + 1)]);
  return w.slice(0, at) + c + w.slice(at);
}

/** One argument word. */
function fuzzWord(r: Rng): string {
  const w = r.weighted<() => string>([
    [6, () => r.pick(FUZZ_WORDS)],
    [1, () => hugeNumber(r, 60)],
    [2, () => int64Edge(r)],
  ])();
  return r.chance(0.15) ? mangle(r, w) : w;
}

/** Random bytes as a latin1 string without `\n`. */
function randomText(r: Rng, max: number): string {
  let s = '';
  const n = r.int(max);
  for (let i = 0; i < n; i++) {
    const c = r.int(256);
    s += String.fromCharCode(c === 0x0a ? 0x0d : c);
  }
  return s;
}

/**
 * One command line (no `\n`): mostly a command with mangled arguments,
 * sometimes random bytes, a truncated line or a CR/NUL mix.
 */
export function fuzzLine(r: Rng): string {
  const kind = r.weighted<string>([[80, 'command'], [8, 'bytes'], [6, 'controls'], [6, 'cut']]);
  if (kind === 'bytes') return randomText(r, 40);
  if (kind === 'controls') return Array.from({ length: r.int(6) }, () => r.pick(FUZZ_CONTROLS)).join('');
  const words = [r.pick(FUZZ_COMMANDS)];
  const n = r.int(5);
  for (let j = 0; j < n; j++) words.push(fuzzWord(r));
  let line = words.join(r.chance(0.1) ? '  ' : ' ');
  if (r.chance(0.05)) line = mangle(r, line);
  if (kind === 'cut') line = line.slice(0, r.int(line.length + 1));
  return line;
}

/** A `write` line whose data word is `bytes` long (a long line to split across chunks). */
export function longWriteLine(r: Rng, bytes: number): string {
  return `write 0x${(0x100000 + r.int(0x1000)).toString(16)} ${bytes} 0x${'5a'.repeat(bytes)}`;
}

/** Cuts `text` into chunks at random boundaries (sizes 1 to `maxChunk`). */
export function randomChunks(r: Rng, text: string, maxChunk: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = r.range(1, maxChunk);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}
