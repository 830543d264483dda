/**
 * qtest wire-format helpers (QEMU system/qtest.c facts): line framing, the
 * number parsers QEMU's commands use (glibc strtoull/strtoll with base 0 on
 * the whole word, as qemu_strtou64/qemu_strtoi64/qemu_strtoi call them),
 * the reply formats, and hex/base64 data.
 *
 * The parsers are total: any string gives a value or null, never an
 * exception, in time linear in its length.
 */

/** Largest guest address a JavaScript number addresses exactly. */
export const MAX_EXACT_ADDR = 2 ** 53;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/** Character codes the parsers look at. */
const enum Ch {
  Tab = 0x09,
  CarriageReturn = 0x0d,
  Space = 0x20,
  Plus = 0x2b,
  Minus = 0x2d,
  Zero = 0x30,
  One = 0x31,
  Seven = 0x37,
  Nine = 0x39,
  UpperA = 0x41,
  UpperB = 0x42,
  UpperF = 0x46,
  UpperX = 0x58,
  LowerA = 0x61,
  LowerB = 0x62,
  LowerF = 0x66,
  LowerX = 0x78,
}

/**
 * Most significant digits a value below 2^64 can have in each base (2^64
 * needs 65 binary, 22 octal, 20 decimal, 17 hex digits); longer digit runs
 * (after leading zeros) overflow without being converted.
 */
const MAX_DIGITS: Readonly<Record<number, number>> = { 2: 64, 8: 22, 10: 20, 16: 16 };

/** JavaScript's BigInt() prefix for each base. */
const BIGINT_PREFIX: Readonly<Record<number, string>> = { 2: '0b', 8: '0o', 10: '', 16: '0x' };

/** C isspace() in the "C" locale: space, \t, \n, \v, \f, \r. */
function isCSpace(c: number): boolean {
  return c === Ch.Space || (c >= Ch.Tab && c <= Ch.CarriageReturn);
}

/** Whether character code `c` is a digit of `base` (2, 8, 10 or 16). */
function isDigit(c: number, base: number): boolean {
  if (base === 2) return c === Ch.Zero || c === Ch.One;
  if (base === 8) return c >= Ch.Zero && c <= Ch.Seven;
  if (c >= Ch.Zero && c <= Ch.Nine) return true;
  return base === 16 && ((c >= Ch.LowerA && c <= Ch.LowerF) || (c >= Ch.UpperA && c <= Ch.UpperF));
}

/**
 * A whole word read as glibc (2.38+, C23 mode, as QEMU 11.1 is built)
 * strtoull/strtoll read it with base 0: leading C white space, an optional
 * sign, then `0x`/`0X` hex, `0b`/`0B` binary, leading-`0` octal or decimal
 * digits, and nothing after them.  Returns the signed mathematical value,
 * or null for no digits, trailing characters (`0x` alone, `08`, `1\r`) or
 * a magnitude of 2^64 or more (ERANGE for every caller).
 */
function parseBase0(word: string): bigint | null {
  let i = 0;
  while (i < word.length && isCSpace(word.charCodeAt(i))) i++;
  const sign = word.charCodeAt(i);
  const negative = sign === Ch.Minus;
  if (negative || sign === Ch.Plus) i++;
  let base = 10;
  if (word.charCodeAt(i) === Ch.Zero) {
    const p = word.charCodeAt(i + 1);
    if (p === Ch.LowerX || p === Ch.UpperX) base = 16;
    else if (p === Ch.LowerB || p === Ch.UpperB) base = 2;
    else base = 8;
    // `0x`/`0b` count only when a digit follows; otherwise strtoull stops after the `0` (trailing garbage here).
    if (base !== 8) i += 2;
  }
  const first = i;
  while (i < word.length && isDigit(word.charCodeAt(i), base)) i++;
  if (i !== word.length || i === first) return null;
  let lead = first;
  while (lead < i - 1 && word.charCodeAt(lead) === Ch.Zero) lead++;
  if (i - lead > MAX_DIGITS[base]!) return null;
  const magnitude = BigInt(BIGINT_PREFIX[base]! + word.slice(lead, i));
  if (magnitude > U64_MAX) return null;
  return negative ? -magnitude : magnitude;
}

/**
 * An unsigned 64-bit argument (qemu_strtou64 / qemu_strtoul on a 64-bit
 * host): a leading minus wraps modulo 2^64 (`-1` is 2^64-1), as strtoull
 * does.  Null when missing or invalid (QEMU asserts).
 */
export function parseArgU64(word: string | undefined): bigint | null {
  if (word === undefined) return null;
  const v = parseBase0(word);
  return v === null ? null : BigInt.asUintN(64, v);
}

/** A signed 64-bit argument (qemu_strtoi64); null when missing, invalid or outside int64. */
export function parseArgI64(word: string | undefined): bigint | null {
  if (word === undefined) return null;
  const v = parseBase0(word);
  return v === null || v < I64_MIN || v > I64_MAX ? null : v;
}

/** A C int argument (qemu_strtoi); null when missing, invalid or outside int32. */
export function parseArgI32(word: string | undefined): number | null {
  const v = parseArgI64(word);
  if (v === null) return null;
  const n = Number(v);
  return n < I32_MIN || n > I32_MAX ? null : n;
}

/**
 * Splits an input stream into lines at `\n` in time linear in its length:
 * each chunk is scanned once, and a line's pieces are joined once, when its
 * newline arrives.  A line longer than `maxLine` characters is not kept:
 * its text is dropped as it streams in and `onLine` gets null when it ends.
 */
export class LineReader {
  private pieces: string[] = [];
  private held = 0;
  private overlong = false;
  /** Characters examined so far (every input character exactly once). */
  scanned = 0;

  constructor(
    private readonly maxLine: number,
    /** Receives each complete line without its `\n`, or null for a line over the limit. */
    private readonly onLine: (line: string | null) => void,
  ) {}

  /** Feeds raw input; every complete line is handed on in order. */
  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      const end = nl < 0 ? chunk.length : nl;
      this.scanned += end - start + (nl < 0 ? 0 : 1);
      this.hold(chunk, start, end);
      if (nl < 0) return;
      start = nl + 1;
      this.emit();
    }
  }

  /** Keeps chunk[start, end) as part of the current line (unless it is over the limit). */
  private hold(chunk: string, start: number, end: number): void {
    if (end === start || this.overlong) return;
    if (this.held + end - start > this.maxLine) {
      this.overlong = true;
      this.pieces = [];
      this.held = 0;
      return;
    }
    this.pieces.push(start === 0 && end === chunk.length ? chunk : chunk.slice(start, end));
    this.held += end - start;
  }

  /** The current line is complete: hands it on and starts the next. */
  private emit(): void {
    const line = this.overlong ? null : this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join('');
    this.pieces = [];
    this.held = 0;
    this.overlong = false;
    this.onLine(line);
  }
}

/** `OK 0x%04x` (port reads: at least 4 digits). */
export function formatPortValue(v: number): string {
  return `OK 0x${(v >>> 0).toString(16).padStart(4, '0')}`;
}

/** `OK 0x%016x` (memory reads: always 16 digits). */
export function formatMemValue(v: bigint | number): string {
  return `OK 0x${BigInt.asUintN(64, BigInt(v)).toString(16).padStart(16, '0')}`;
}

/** Lower-case hex of bytes in memory order. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** QEMU hex2nib: a hex digit's value, or -1 (which sets every bit it is ORed into). */
function hex2nib(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** A run of hex digits only (the common, well-formed `write` data). */
const ALL_HEX = /^[0-9a-fA-F]*$/;

/** Characters of `write` data before the digits (the `0x`, which QEMU skips unchecked). */
const DATA_PREFIX = 2;

/**
 * Decodes the data of `write ADDR LEN DATA` as QEMU does: the first two
 * characters (the `0x`) are skipped unchecked, byte i comes from characters
 * 2i+2 and 2i+3 when both exist, else 0; an invalid digit sets every bit.
 * Well-formed digits take a native fast path (a 64 MiB write stays fast).
 */
export function decodeWriteData(data: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const whole = Math.max(0, Math.min(len, Math.floor((data.length - DATA_PREFIX) / 2)));
  const digits = data.slice(DATA_PREFIX, DATA_PREFIX + whole * 2);
  if (ALL_HEX.test(digits)) {
    out.set(Buffer.from(digits, 'hex'));
    return out;
  }
  for (let i = 0; i < whole; i++) {
    out[i] = ((hex2nib(data.charCodeAt(i * 2 + 2)) << 4) | hex2nib(data.charCodeAt(i * 2 + 3))) & 0xff;
  }
  return out;
}

/** Base64 of bytes (g_base64_encode). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Decodes base64 leniently (g_base64_decode). */
export function fromBase64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}
