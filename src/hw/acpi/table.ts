/**
 * ACPI table building blocks: a little-endian byte writer, the 36-byte
 * System Description Table header (ACPI 6.5 section 5.2.6) and the 8-bit
 * checksum every table carries.
 *
 * Tables are built on the host at machine setup, so this module allocates
 * freely; nothing here is on a guest hot path.
 */

/** Offsets inside the common table header (ACPI 6.5 table 5.4). */
export const AcpiHeader = {
  SIGNATURE: 0,
  LENGTH: 4,
  REVISION: 8,
  CHECKSUM: 9,
  OEM_ID: 10,
  OEM_TABLE_ID: 16,
  OEM_REVISION: 24,
  CREATOR_ID: 28,
  CREATOR_REVISION: 32,
  /** Size of the header; table-specific fields start here. */
  SIZE: 36,
} as const;

/** The identification strings QEMU puts in every table (hw/acpi/aml-build.c). */
export const QEMU_OEM = {
  /** OEM ID, 6 characters. */
  OEM_ID: 'BOCHS ',
  /** OEM table ID, 8 characters. */
  OEM_TABLE_ID: 'BXPC    ',
  OEM_REVISION: 1,
  /** Creator ("ASL compiler") ID, 4 characters. */
  CREATOR_ID: 'BXPC',
  CREATOR_REVISION: 1,
} as const;

/** Identification written into a table header; defaults are QEMU's. */
export interface TableIdentity {
  readonly oemId?: string;
  readonly oemTableId?: string;
  readonly oemRevision?: number;
  readonly creatorId?: string;
  readonly creatorRevision?: number;
}

/** A growable little-endian byte buffer. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  /** Number of bytes written so far (the offset of the next byte). */
  get length(): number {
    return this.len;
  }

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      next.set(this.buf.subarray(0, at));
      this.buf = next;
    }
    this.len = at + n;
    return at;
  }

  /** Appends one byte; returns its offset. */
  u8(v: number): number {
    const at = this.reserve(1);
    this.buf[at] = v & 0xff;
    return at;
  }

  /** Appends a 16-bit little-endian value; returns its offset. */
  u16(v: number): number {
    const at = this.reserve(2);
    this.put(at, v, 2);
    return at;
  }

  /** Appends a 32-bit little-endian value; returns its offset. */
  u32(v: number): number {
    const at = this.reserve(4);
    this.put(at, v, 4);
    return at;
  }

  /** Appends a 64-bit little-endian value (number below 2^53 or bigint); returns its offset. */
  u64(v: number | bigint): number {
    const at = this.reserve(8);
    const big = BigInt.asUintN(64, BigInt(v));
    this.put(at, Number(big & 0xffff_ffffn), 4);
    this.put(at + 4, Number(big >> 32n), 4);
    return at;
  }

  /** Appends raw bytes; returns their offset. */
  bytes(src: Uint8Array | readonly number[]): number {
    const at = this.reserve(src.length);
    this.buf.set(src, at);
    return at;
  }

  /** Appends `n` zero bytes; returns their offset. */
  zeros(n: number): number {
    const at = this.reserve(n);
    this.buf.fill(0, at, at + n);
    return at;
  }

  /** Appends an ASCII string padded with `pad` (or cut) to exactly `n` bytes. */
  ascii(s: string, n: number, pad = 0x20): number {
    const at = this.reserve(n);
    for (let i = 0; i < n; i++) this.buf[at + i] = i < s.length ? s.charCodeAt(i) & 0xff : pad;
    return at;
  }

  /** Overwrites `size` bytes at `at` with a little-endian value. */
  put(at: number, v: number, size: 1 | 2 | 4): void {
    let x = v >>> 0;
    for (let i = 0; i < size; i++, x >>>= 8) this.buf[at + i] = x & 0xff;
  }

  /** Reads back one byte. */
  byteAt(at: number): number {
    return this.buf[at] ?? 0;
  }

  /** A copy of the bytes written. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Sum of bytes modulo 256. */
export function byteSum(bytes: Uint8Array, start = 0, length = bytes.length - start): number {
  let s = 0;
  const end = Math.min(bytes.length, start + length);
  for (let i = Math.max(0, start); i < end; i++) s = (s + bytes[i]!) & 0xff;
  return s;
}

/** The checksum byte that makes `bytes[start, start+length)` sum to zero (assuming the byte itself is 0). */
export function checksumFor(bytes: Uint8Array, start = 0, length = bytes.length - start): number {
  return (0x100 - byteSum(bytes, start, length)) & 0xff;
}

/**
 * Writes a table header whose length and checksum are filled in by
 * `finishTable`.  Returns the header's offset.
 */
export function beginTable(w: ByteWriter, signature: string, revision: number, id: TableIdentity = {}): number {
  const at = w.ascii(signature, 4);
  w.u32(0); // length, patched by finishTable
  w.u8(revision);
  w.u8(0); // checksum, patched by finishTable
  w.ascii(id.oemId ?? QEMU_OEM.OEM_ID, 6);
  w.ascii(id.oemTableId ?? QEMU_OEM.OEM_TABLE_ID, 8);
  w.u32(id.oemRevision ?? QEMU_OEM.OEM_REVISION);
  w.ascii(id.creatorId ?? QEMU_OEM.CREATOR_ID, 4);
  w.u32(id.creatorRevision ?? QEMU_OEM.CREATOR_REVISION);
  return at;
}

/** Patches the length of the table begun at `at` (it ends at the writer's end). */
export function patchTableLength(w: ByteWriter, at: number): void {
  w.put(at + AcpiHeader.LENGTH, w.length - at, 4);
}

/**
 * Finishes a standalone table: patches its length and checksum and returns
 * its bytes.  (Inside the QEMU-style table blob the checksum is left 0 and
 * computed by the firmware's table loader instead.)
 */
export function finishTable(w: ByteWriter, at = 0): Uint8Array {
  patchTableLength(w, at);
  const bytes = w.toBytes();
  bytes[at + AcpiHeader.CHECKSUM] = 0;
  bytes[at + AcpiHeader.CHECKSUM] = checksumFor(bytes, at, bytes.length - at);
  return bytes.subarray(at);
}

/** Reads up to `n` bytes at `at` as Latin-1 characters (stops at the end of `bytes`). */
export function readAscii(bytes: Uint8Array, at: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && at + i < bytes.length; i++) s += String.fromCharCode(bytes[at + i]!);
  return s;
}

/** Reads the signature of the table at `at`. */
export function tableSignature(bytes: Uint8Array, at = 0): string {
  return readAscii(bytes, at, 4);
}

/** Reads a little-endian unsigned 32-bit value (0 past the end). */
export function readU32(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + 4 > bytes.length) return 0;
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Reads a little-endian unsigned 16-bit value (0 past the end). */
export function readU16(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + 2 > bytes.length) return 0;
  return bytes[at]! | (bytes[at + 1]! << 8);
}

/** Reads a little-endian 64-bit value as a bigint (0 past the end). */
export function readU64(bytes: Uint8Array, at: number): bigint {
  return (BigInt(readU32(bytes, at + 4)) << 32n) | BigInt(readU32(bytes, at));
}
