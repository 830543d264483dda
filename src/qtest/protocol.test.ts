import { describe, expect, it } from 'vitest';
import { decodeWriteData, formatMemValue, formatPortValue, fromBase64, parseArgI64, parseArgU64, toBase64, toHex } from './protocol.js';

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
