/**
 * Guest RAM: a flat byte array of `size` bytes, stored as power-of-two
 * chunks.  Reads and writes of 1/2/4 bytes are plain typed-array accesses;
 * bulk operations (copy in/out, copy within, fill, compare) may be done by a
 * backend in one call.
 *
 * Two backends share this class: the pure TypeScript one (`ram-ts.ts`,
 * sparse chunks allocated on first write) and the native one
 * (`ram-native.ts`, chunks are external ArrayBuffers over one anonymous
 * MAP_NORESERVE mapping).
 *
 * Offsets here are RAM offsets, not guest-physical addresses; the memory
 * layer (a RAM region in an address space) maps one onto the other.  Every
 * method checks its range and throws a RangeError for an out-of-range one: a
 * caller bug, never reachable from guest input because the address space only
 * dispatches ranges that lie inside the region.
 */
import { inclusiveEnd } from './address.js';

/** Where a `ChunkedRam` gets its chunk storage from. */
export interface ChunkSource {
  /** log2 of the chunk size in bytes. */
  readonly chunkShift: number;
  /** Total size in bytes (a multiple of 4096). */
  readonly size: number;
  /**
   * The buffer of chunk `index`.  With `create` false a backend may answer
   * null for a chunk that was never written (it reads as zeros).
   */
  chunk(index: number, create: boolean): ArrayBuffer | null;
}

/** Native bulk operations, when the backend has them (one call each). */
export interface BulkOps {
  copyOut(offset: number, dst: Uint8Array): void;
  copyIn(offset: number, src: Uint8Array): void;
  copyWithin(dstOffset: number, srcOffset: number, length: number): void;
  fill(offset: number, length: number, value: number): void;
  compare(offset: number, bytes: Uint8Array): boolean;
}

/**
 * Copies up to this many bytes inside one chunk are done with a byte loop:
 * cheaper than a native call or a subarray view for 8- and 16-byte
 * structures (page-table entries, context entries, descriptors).
 */
const SMALL_COPY = 64;

/** The guest RAM interface the memory layer uses. */
export class ChunkedRam {
  /** Size in bytes. */
  readonly size: number;
  /** Name of the backend, for messages and benchmarks. */
  readonly backend: string;
  private readonly mask: number;
  private readonly chunkSize: number;
  private readonly u8s: (Uint8Array | null)[];
  private readonly dvs: (DataView | null)[];

  constructor(
    private readonly source: ChunkSource,
    backend: string,
    private readonly bulk: BulkOps | null = null,
  ) {
    if (source.chunkShift < 12 || source.chunkShift > 30) {
      throw new RangeError(`guest RAM: chunk shift ${source.chunkShift} out of range`);
    }
    this.size = source.size;
    this.backend = backend;
    this.chunkSize = 2 ** source.chunkShift;
    this.mask = this.chunkSize - 1;
    const count = Math.ceil(source.size / this.chunkSize);
    this.u8s = new Array<Uint8Array | null>(count).fill(null);
    this.dvs = new Array<DataView | null>(count).fill(null);
  }

  /** Throws unless [offset, offset+length) lies in RAM.  Length 0 is allowed. */
  checkRange(offset: number, length: number): void {
    if (length === 0 && Number.isInteger(offset) && offset >= 0 && offset <= this.size) return;
    if (inclusiveEnd(offset, length, this.size) < 0) {
      throw new RangeError(`guest RAM: range ${offset}+${length} outside 0..${this.size}`);
    }
  }

  private view(index: number, create: boolean): DataView | null {
    const dv = this.dvs[index];
    if (dv) return dv;
    const buf = this.source.chunk(index, create);
    if (!buf) return null;
    const u8 = new Uint8Array(buf);
    const v = new DataView(buf);
    this.u8s[index] = u8;
    this.dvs[index] = v;
    return v;
  }

  private bytes(index: number, create: boolean): Uint8Array | null {
    return this.u8s[index] ?? (this.view(index, create) ? this.u8s[index] : null);
  }

  readU8(offset: number): number {
    this.checkRange(offset, 1);
    const dv = this.dvs[Math.floor(offset / this.chunkSize)] ?? this.view(Math.floor(offset / this.chunkSize), false);
    return dv ? dv.getUint8(offset & this.mask) : 0;
  }

  readU16(offset: number): number {
    if ((offset & 1) !== 0 || (offset & this.mask) > this.mask - 1) return this.readSlow(offset, 2);
    this.checkRange(offset, 2);
    const dv = this.dvs[Math.floor(offset / this.chunkSize)] ?? this.view(Math.floor(offset / this.chunkSize), false);
    return dv ? dv.getUint16(offset & this.mask, true) : 0;
  }

  /** Little-endian 32-bit read; the hot path of page walks. */
  readU32(offset: number): number {
    if ((offset & this.mask) > this.mask - 3) return this.readSlow(offset, 4);
    this.checkRange(offset, 4);
    const index = Math.floor(offset / this.chunkSize);
    const dv = this.dvs[index] ?? this.view(index, false);
    return dv ? dv.getUint32(offset & this.mask, true) : 0;
  }

  writeU8(offset: number, value: number): void {
    this.checkRange(offset, 1);
    const index = Math.floor(offset / this.chunkSize);
    (this.dvs[index] ?? this.view(index, true))!.setUint8(offset & this.mask, value);
  }

  writeU16(offset: number, value: number): void {
    if ((offset & this.mask) > this.mask - 1) return this.writeSlow(offset, 2, value);
    this.checkRange(offset, 2);
    const index = Math.floor(offset / this.chunkSize);
    (this.dvs[index] ?? this.view(index, true))!.setUint16(offset & this.mask, value, true);
  }

  writeU32(offset: number, value: number): void {
    if ((offset & this.mask) > this.mask - 3) return this.writeSlow(offset, 4, value);
    this.checkRange(offset, 4);
    const index = Math.floor(offset / this.chunkSize);
    (this.dvs[index] ?? this.view(index, true))!.setUint32(offset & this.mask, value >>> 0, true);
  }

  private readSlow(offset: number, size: number): number {
    this.checkRange(offset, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.readU8(offset + i);
    return v;
  }

  private writeSlow(offset: number, size: number, value: number): void {
    this.checkRange(offset, size); // before the first byte: no partial write
    for (let i = 0; i < size; i++) this.writeU8(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** Chunk index of a RAM offset. */
  private chunkOf(offset: number): number {
    return Math.floor(offset / this.chunkSize);
  }

  /**
   * Copies RAM [offset, offset+dst.length) into dst.  Small copies inside
   * one chunk are a byte loop (no native call, no allocation: page-table
   * entries and descriptors); larger ones go to the backend's bulk copy.
   */
  copyOut(offset: number, dst: Uint8Array): void {
    const len = dst.length;
    this.checkRange(offset, len);
    if (len === 0) return;
    const index = this.chunkOf(offset);
    const at = offset - index * this.chunkSize;
    if (at + len <= this.chunkSize && (len <= SMALL_COPY || !this.bulk)) {
      const bytes = this.bytes(index, false);
      if (!bytes) dst.fill(0);
      else if (len <= SMALL_COPY) for (let i = 0; i < len; i++) dst[i] = bytes[at + i]!;
      else dst.set(bytes.subarray(at, at + len));
      return;
    }
    if (this.bulk) return this.bulk.copyOut(offset, dst);
    let done = 0;
    while (done < len) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(len - done, this.chunkSize - a);
      const bytes = this.bytes(i, false);
      if (bytes) dst.set(bytes.subarray(a, a + n), done);
      else dst.fill(0, done, done + n);
      done += n;
    }
  }

  /**
   * Copies src into RAM at offset.  Inside one chunk this is a typed-array
   * set (a memmove, no allocation) on every backend.
   */
  copyIn(offset: number, src: Uint8Array): void {
    const len = src.length;
    this.checkRange(offset, len);
    if (len === 0) return;
    const index = this.chunkOf(offset);
    const at = offset - index * this.chunkSize;
    if (at + len <= this.chunkSize) {
      const bytes = this.bytes(index, true)!;
      // (a view of this very chunk goes through set(), which handles overlap)
      if (len <= SMALL_COPY && src.buffer !== bytes.buffer) for (let i = 0; i < len; i++) bytes[at + i] = src[i]!;
      else bytes.set(src, at);
      return;
    }
    if (this.bulk) return this.bulk.copyIn(offset, src);
    let done = 0;
    while (done < len) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(len - done, this.chunkSize - a);
      this.bytes(i, true)!.set(src.subarray(done, done + n), a);
      done += n;
    }
  }

  /** memmove inside RAM. */
  copyWithin(dstOffset: number, srcOffset: number, length: number): void {
    this.checkRange(dstOffset, length);
    this.checkRange(srcOffset, length);
    if (length === 0 || dstOffset === srcOffset) return;
    if (this.bulk) return this.bulk.copyWithin(dstOffset, srcOffset, length);
    const index = this.chunkOf(dstOffset);
    const dstAt = dstOffset - index * this.chunkSize;
    const srcAt = srcOffset - index * this.chunkSize;
    if (this.chunkOf(srcOffset) === index && dstAt + length <= this.chunkSize && srcAt + length <= this.chunkSize) {
      const bytes = this.bytes(index, true)!;
      bytes.copyWithin(dstAt, srcAt, srcAt + length);
      return;
    }
    const tmp = new Uint8Array(length);
    this.copyOut(srcOffset, tmp);
    this.copyIn(dstOffset, tmp);
  }

  /** Sets [offset, offset+length) to value & 0xff. */
  fill(offset: number, length: number, value: number): void {
    this.checkRange(offset, length);
    if (length === 0) return;
    const v = value & 0xff;
    if (this.bulk) return this.bulk.fill(offset, length, v);
    let done = 0;
    while (done < length) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(length - done, this.chunkSize - a);
      // Zero over a never-written chunk needs no storage.
      const bytes = this.bytes(i, v !== 0);
      if (bytes) bytes.fill(v, a, a + n);
      done += n;
    }
  }

  /** True when RAM at offset holds exactly `bytes`. */
  compare(offset: number, bytes: Uint8Array): boolean {
    const len = bytes.length;
    this.checkRange(offset, len);
    if (len === 0) return true;
    if (this.bulk && len > SMALL_COPY) return this.bulk.compare(offset, bytes);
    let done = 0;
    while (done < len) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(len - done, this.chunkSize - a);
      const chunk = this.bytes(i, false);
      for (let k = 0; k < n; k++) {
        if ((chunk ? chunk[a + k]! : 0) !== bytes[done + k]) return false;
      }
      done += n;
    }
    return true;
  }
}
