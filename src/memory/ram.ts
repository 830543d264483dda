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
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.readU8(offset + i);
    return v;
  }

  private writeSlow(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.writeU8(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** Copies RAM [offset, offset+dst.length) into dst. */
  copyOut(offset: number, dst: Uint8Array): void {
    this.checkRange(offset, dst.length);
    if (this.bulk) return this.bulk.copyOut(offset, dst);
    this.forEachPiece(offset, dst.length, false, (bytes, at, done, len) => {
      if (bytes) dst.set(bytes.subarray(at, at + len), done);
      else dst.fill(0, done, done + len);
    });
  }

  /** Copies src into RAM at offset. */
  copyIn(offset: number, src: Uint8Array): void {
    this.checkRange(offset, src.length);
    if (this.bulk) return this.bulk.copyIn(offset, src);
    this.forEachPiece(offset, src.length, true, (bytes, at, done, len) => {
      bytes!.set(src.subarray(done, done + len), at);
    });
  }

  /** memmove inside RAM. */
  copyWithin(dstOffset: number, srcOffset: number, length: number): void {
    this.checkRange(dstOffset, length);
    this.checkRange(srcOffset, length);
    if (length === 0) return;
    if (this.bulk) return this.bulk.copyWithin(dstOffset, srcOffset, length);
    const tmp = new Uint8Array(length);
    this.copyOut(srcOffset, tmp);
    this.copyIn(dstOffset, tmp);
  }

  /** Sets [offset, offset+length) to value & 0xff. */
  fill(offset: number, length: number, value: number): void {
    this.checkRange(offset, length);
    if (this.bulk) return this.bulk.fill(offset, length, value & 0xff);
    const v = value & 0xff;
    this.forEachPiece(offset, length, v !== 0, (bytes, at, _done, len) => {
      if (bytes) bytes.fill(v, at, at + len);
    });
  }

  /** True when RAM at offset holds exactly `bytes`. */
  compare(offset: number, bytes: Uint8Array): boolean {
    this.checkRange(offset, bytes.length);
    if (this.bulk) return this.bulk.compare(offset, bytes);
    let same = true;
    this.forEachPiece(offset, bytes.length, false, (chunk, at, done, len) => {
      for (let i = 0; same && i < len; i++) {
        if ((chunk ? chunk[at + i]! : 0) !== bytes[done + i]) same = false;
      }
    });
    return same;
  }

  private forEachPiece(
    offset: number,
    length: number,
    create: boolean,
    fn: (chunk: Uint8Array | null, at: number, done: number, len: number) => void,
  ): void {
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const index = Math.floor(pos / this.chunkSize);
      const at = pos - index * this.chunkSize;
      const len = Math.min(length - done, this.chunkSize - at);
      fn(this.bytes(index, create), at, done, len);
      done += len;
    }
  }
}
