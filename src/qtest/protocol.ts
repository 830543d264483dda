/**
 * qtest wire-format helpers (QEMU softmmu/qtest.c facts): base-0 number
 * parsing with strtoull semantics, the reply formats, and hex/base64 data.
 */
import { parseU64 } from '../machine/props.js';

/** Largest guest address a JavaScript number addresses exactly. */
export const MAX_EXACT_ADDR = 2 ** 53;

/** Parses an unsigned 64-bit argument (base 0, trailing garbage refused); null when invalid. */
export function parseArgU64(word: string | undefined): bigint | null {
  if (word === undefined || word === '') return null;
  return parseU64(word);
}

/** Parses a signed 64-bit argument (strtoll base 0); null when invalid. */
export function parseArgI64(word: string | undefined): bigint | null {
  if (word === undefined) return null;
  const m = /^\s*([+-]?)(.*)$/.exec(word)!;
  const v = parseU64(m[2]!);
  if (v === null || v > (1n << 63n)) return null;
  return m[1] === '-' ? -v : v;
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

/**
 * Decodes the data of `write ADDR LEN DATA` as QEMU does: the first two
 * characters (the `0x`) are skipped unchecked, byte i comes from characters
 * 2i+2 and 2i+3 when both exist, else 0; an invalid digit sets every bit.
 */
export function decodeWriteData(data: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    if (i * 2 + 4 <= data.length) {
      out[i] = ((hex2nib(data.charCodeAt(i * 2 + 2)) << 4) | hex2nib(data.charCodeAt(i * 2 + 3))) & 0xff;
    }
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
