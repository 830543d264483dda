import { describe, expect, it } from 'vitest';
import { LineReader, decodeWriteData, formatMemValue, formatPortValue, fromBase64, parseArgI32, parseArgI64, parseArgU64, toBase64, toHex } from './protocol.js';

describe('qtest protocol helpers', () => {
  it('numbers', () => {
    expect(parseArgU64('0x10')).toBe(16n);
    expect(parseArgU64(undefined)).toBeNull();
    expect(parseArgU64('')).toBeNull();
    expect(parseArgU64('1k')).toBeNull();
    expect(parseArgI64('-5')).toBe(-5n);
    expect(parseArgI64('0x10')).toBe(16n);
    expect(parseArgI64('zz')).toBeNull();
  });
  it('reply formats', () => {
    expect(formatPortValue(0x51)).toBe('OK 0x0051');
    expect(formatPortValue(0x29c08086)).toBe('OK 0x29c08086');
    expect(formatMemValue(0x22260206)).toBe('OK 0x0000000022260206');
    expect(formatMemValue(-1n)).toBe('OK 0xffffffffffffffff');
  });
  it('write data decoding as QEMU: prefix unchecked, short data zero, bad digit sets bits', () => {
    expect(toHex(decodeWriteData('0xdeadBEEF', 4))).toBe('deadbeef');
    expect(toHex(decodeWriteData('0x11', 4))).toBe('11000000');
    expect(toHex(decodeWriteData('zz123', 2))).toBe('1200');
    expect(toHex(decodeWriteData('0xg1a-zz', 3))).toBe('f1ffff');
  });
  it('base64 round trip', () => {
    expect(toBase64(Uint8Array.of(1, 2, 3))).toBe('AQID');
    expect([...fromBase64('AQID')]).toEqual([1, 2, 3]);
    expect(toBase64(new Uint8Array(0))).toBe('');
  });
});

describe('qtest number parsing as QEMU 11.1 (glibc base 0, whole word)', () => {
  it('accepts what strtoull accepts: white space, sign, hex, C23 binary, octal', () => {
    expect(parseArgU64('\t\v\f\r 0x10')).toBe(16n);
    expect(parseArgU64('+16')).toBe(16n);
    expect(parseArgU64('0B101')).toBe(5n);
    expect(parseArgU64('0777')).toBe(0o777n);
    expect(parseArgU64('0')).toBe(0n);
    expect(parseArgU64('-0')).toBe(0n);
    expect(parseArgU64('-1')).toBe((1n << 64n) - 1n);
    expect(parseArgU64('-18446744073709551615')).toBe(1n);
    expect(parseArgU64('0x' + '0'.repeat(1000) + 'ffffffffffffffff')).toBe((1n << 64n) - 1n);
  });
  it('refuses trailing characters, missing digits and overflow', () => {
    for (const w of ['', ' ', '0x', '0b', '0b2', '08', '1\r', '1\t', '0x1g', '- 1', '--1', '1 ', '18446744073709551616', '-18446744073709551616', '0x10000000000000000', '1'.repeat(100000), '0x\u0000', '１']) {
      expect(parseArgU64(w), JSON.stringify(w)).toBeNull();
    }
  });
  it('signed and int ranges', () => {
    expect(parseArgI64('0x7fffffffffffffff')).toBe((1n << 63n) - 1n);
    expect(parseArgI64('-0x8000000000000000')).toBe(-(1n << 63n));
    expect(parseArgI64('0x8000000000000000')).toBeNull();
    expect(parseArgI64('-9223372036854775809')).toBeNull();
    expect(parseArgI32('-0x80000000')).toBe(-(2 ** 31));
    expect(parseArgI32('0x7fffffff')).toBe(2 ** 31 - 1);
    expect(parseArgI32('0x80000000')).toBeNull();
    expect(parseArgI32(undefined)).toBeNull();
  });
  it('parses a 1 MiB run of zeros in linear time', () => {
    const t0 = performance.now();
    expect(parseArgU64('0'.repeat(1 << 20))).toBe(0n);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('LineReader', () => {
  it('joins a line split across chunks, scans each character once', () => {
    const lines: (string | null)[] = [];
    const r = new LineReader(10, (l) => lines.push(l));
    r.push('ab');
    r.push('c\nde');
    r.push('\n\nf');
    expect(lines).toEqual(['abc', 'de', '']);
    expect(r.scanned).toBe(9);
  });
  it('drops an overlong line (null) and carries on', () => {
    const lines: (string | null)[] = [];
    const r = new LineReader(4, (l) => lines.push(l));
    r.push('abc');
    r.push('def');
    r.push('gh\nabcd\n');
    expect(lines).toEqual([null, 'abcd']);
  });
});
