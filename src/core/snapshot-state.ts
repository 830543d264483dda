/**
 * The vocabulary every snapshot section is written in (docs/snapshot-format.md):
 * JSON values only, 64-bit and larger integers as decimal strings, byte
 * arrays as base64 (`b64`), and one reader that checks each field as it is
 * taken, so a damaged or foreign state is refused with one clear
 * SnapshotError naming the section and field rather than half loaded.
 *
 * Devices save plain objects of these values (QEMU's vmstate fields) and
 * load them back through a SectionReader; nothing here knows any device.
 */

/** A JSON value as sections hold it. */
export type SnapshotValue = string | number | boolean | null | readonly SnapshotValue[] | { readonly [key: string]: SnapshotValue };

/** One section: a JSON object. */
export type SnapshotSection = { readonly [key: string]: SnapshotValue };

/** A state that cannot be loaded: wrong version, other configuration, damaged or missing field. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** Bytes as base64 (the section encoding of byte arrays). */
export function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Words as base64 of their little-endian bytes. */
export function u32ToB64(words: Uint32Array): string {
  return toB64(new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Takes fields out of one section, checking each; every failure is a SnapshotError naming `where`. */
export class SectionReader {
  constructor(
    private readonly obj: SnapshotSection,
    /** Section name (and sub-path) for messages. */
    readonly where: string,
  ) {}

  /** A reader over `value`, which must be an object. */
  static of(value: SnapshotValue | undefined, where: string): SectionReader {
    if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) {
      throw new SnapshotError(`snapshot: ${where}: missing or not an object`);
    }
    return new SectionReader(value as SnapshotSection, where);
  }

  private fail(key: string, what: string): never {
    throw new SnapshotError(`snapshot: ${this.where}.${key}: expected ${what}`);
  }

  /** True when the field is present. */
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, key);
  }

  /** The raw field (checked by the caller). */
  raw(key: string): SnapshotValue | undefined {
    return this.obj[key];
  }

  /** An integer in [min, max]. */
  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer in [${min}, ${max}]`);
    return v;
  }

  /** A finite number in [min, max] (e.g. a page base up to 2^64, exact as a multiple of 4096). */
  num(key: string, min = -Infinity, max = Infinity): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(key, `a number in [${min}, ${max}]`);
    return v;
  }

  /** A 32-bit unsigned integer. */
  u32(key: string): number {
    return this.int(key, 0, 0xffff_ffff);
  }

  /** A boolean. */
  bool(key: string): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'a boolean');
    return v;
  }

  /** A string. */
  str(key: string): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  /** A decimal bigint string in [min, max]. */
  big(key: string, min: bigint, max: bigint): bigint {
    const v = this.obj[key];
    if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v)) this.fail(key, 'a decimal integer string');
    const b = BigInt(v);
    if (b < min || b > max) this.fail(key, `an integer in [${min}, ${max}]`);
    return b;
  }

  /** Base64 bytes, of exactly `length` bytes when given. */
  bytes(key: string, length?: number): Uint8Array {
    const v = this.obj[key];
    if (typeof v !== 'string' || !B64_RE.test(v)) this.fail(key, 'base64 bytes');
    const b = new Uint8Array(Buffer.from(v, 'base64'));
    if (length !== undefined && b.length !== length) this.fail(key, `${length} bytes, got ${b.length}`);
    return b;
  }

  /** Base64 little-endian 32-bit words, exactly `count` of them. */
  words(key: string, count: number): Uint32Array {
    const b = this.bytes(key, count * 4);
    const out = new Uint32Array(count);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, true);
    return out;
  }

  /** An array field. */
  array(key: string): readonly SnapshotValue[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'an array');
    return v as readonly SnapshotValue[];
  }

  /** A nested object as a reader. */
  sub(key: string): SectionReader {
    return SectionReader.of(this.obj[key], `${this.where}.${key}`);
  }

  /** A nested object or null. */
  optSub(key: string): SectionReader | null {
    const v = this.obj[key];
    return v === null ? null : this.sub(key);
  }
}
