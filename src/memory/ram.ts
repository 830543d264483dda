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

/** Size of the pieces whose RAM views are cached (a DMA piece per 4 KiB IOMMU page). */
const VIEW_PAGE = 4096;
/**
 * Slots of the page-view cache: direct-mapped by page number, so at most
 * this many views are alive (a bounded cost; a ring of DMA buffers fits).
 */
const VIEW_SLOTS = 1024;

/** Two little-endian 32-bit halves of a 64-bit value (`readU32Pair`). */
export interface U32Pair {
  lo: number;
  hi: number;
}

/** Throws unless [start, start+length) is a span of `buf` (a caller bug). */
function checkSpan(buf: Uint8Array, start: number, length: number): void {
  if (!(Math.floor(start) === start && start >= 0 && start + length <= buf.length)) {
    throw new RangeError(`guest RAM: span ${start}+${length} outside a buffer of ${buf.length}`);
  }
}

/**
 * Byte loop for small copies (entries, descriptors).  The whole-destination
 * case bounds the loop by `to.length`, which lets the JIT drop the index checks.
 */
function smallCopy(from: Uint8Array, fromStart: number, to: Uint8Array, toStart: number, length: number): void {
  if (toStart === 0 && length === to.length) {
    for (let i = 0; i < to.length; i++) to[i] = from[fromStart + i]!;
  } else {
    for (let i = 0; i < length; i++) to[toStart + i] = from[fromStart + i]!;
  }
}

/** The guest RAM interface the memory layer uses. */
/**
 * Sees each write to a RAM just before it happens (the bytes still hold
 * their old values): the invalidation sanitizer's view of guest stores.
 * The range may lie partly outside the RAM (the write then throws).
 */
export interface RamWriteWatcher {
  willWrite(ram: ChunkedRam, offset: number, length: number): void;
}

export class ChunkedRam {
  /** Size in bytes. */
  readonly size: number;
  /** Name of the backend, for messages and benchmarks. */
  readonly backend: string;
  private readonly mask: number;
  private readonly chunkSize: number;
  private readonly u8s: (Uint8Array | null)[];
  private readonly dvs: (DataView | null)[];
  /** Cached views of whole 4 KiB pages and the page number each slot holds (-1: none). */
  private readonly pageViews: (Uint8Array | null)[] = new Array<Uint8Array | null>(VIEW_SLOTS).fill(null);
  private readonly pageViewPage = new Float64Array(VIEW_SLOTS).fill(-1);
  private writeCount = 0;
  /** Write watchers; null (the usual case) costs each write one field test. */
  private watchers: RamWriteWatcher[] | null = null;

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

  /**
   * Writes to this RAM so far (every write method counts one; a bulk write
   * once however long it is).  A reader that decoded a structure from this
   * RAM may reuse the result while the count is unchanged (and the memory
   * map too): nothing in it can have changed.
   */
  get writes(): number {
    return this.writeCount;
  }

  /** Adds a write watcher (once per watcher). */
  addWatcher(w: RamWriteWatcher): void {
    const list = this.watchers ?? [];
    if (!list.includes(w)) list.push(w);
    this.watchers = list;
  }

  /** Removes a write watcher. */
  removeWatcher(w: RamWriteWatcher): void {
    const list = (this.watchers ?? []).filter((x) => x !== w);
    this.watchers = list.length > 0 ? list : null;
  }

  private notify(offset: number, length: number): void {
    for (const w of this.watchers!) w.willWrite(this, offset, length);
  }

  /** Throws unless [offset, offset+length) lies in RAM.  Length 0 is allowed. */
  checkRange(offset: number, length: number): void {
    if (this.inRange(offset, length)) return;
    if (length === 0 && Number.isInteger(offset) && offset >= 0 && offset <= this.size) return;
    if (inclusiveEnd(offset, length, this.size) < 0) {
      throw new RangeError(`guest RAM: range ${offset}+${length} outside 0..${this.size}`);
    }
  }

  /**
   * The hot-path form of `checkRange`: true when offset and length are
   * non-negative integers and the range ends inside RAM (no function call,
   * no allocation); anything else goes to `checkRange`, which throws.
   */
  private inRange(offset: number, length: number): boolean {
    return (
      Math.floor(offset) === offset &&
      offset >= 0 &&
      Math.floor(length) === length &&
      length >= 0 &&
      offset + length <= this.size
    );
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
    if (!this.inRange(offset, 4) || (offset & this.mask) > this.mask - 3) return this.readSlow(offset, 4);
    const index = Math.floor(offset / this.chunkSize);
    const dv = this.dvs[index] ?? this.view(index, false);
    return dv ? dv.getUint32(offset & this.mask, true) : 0;
  }

  /**
   * Reads the 8 bytes at `offset` as two little-endian 32-bit halves into
   * `out` (page-table, root and context entries): one range check and one
   * chunk lookup for both halves.
   */
  readU32Pair(offset: number, out: U32Pair): void {
    if (!this.inRange(offset, 8) || (offset & this.mask) > this.mask - 7) {
      this.checkRange(offset, 8);
      out.lo = this.readU32(offset);
      out.hi = this.readU32(offset + 4);
      return;
    }
    const index = Math.floor(offset / this.chunkSize);
    const dv = this.dvs[index] ?? this.view(index, false);
    const at = offset & this.mask;
    out.lo = dv ? dv.getUint32(at, true) : 0;
    out.hi = dv ? dv.getUint32(at + 4, true) : 0;
  }

  writeU8(offset: number, value: number): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, 1);
    this.checkRange(offset, 1);
    const index = Math.floor(offset / this.chunkSize);
    (this.dvs[index] ?? this.view(index, true))!.setUint8(offset & this.mask, value);
  }

  writeU16(offset: number, value: number): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, 2);
    if ((offset & this.mask) > this.mask - 1) return this.writeSlow(offset, 2, value);
    this.checkRange(offset, 2);
    const index = Math.floor(offset / this.chunkSize);
    (this.dvs[index] ?? this.view(index, true))!.setUint16(offset & this.mask, value, true);
  }

  writeU32(offset: number, value: number): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, 4);
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

  /** Copies RAM [offset, offset+dst.length) into dst (see `copyOutAt`). */
  copyOut(offset: number, dst: Uint8Array): void {
    this.copyOutSpan(offset, dst, 0, dst.length);
  }

  /**
   * Copies RAM [offset, offset+length) into dst[dstStart, dstStart+length).
   * Small copies inside one chunk are a byte loop (page-table entries and
   * descriptors); larger ones inside one chunk are one typed-array set on
   * every backend (a single view of the chunk, no view of dst: cheaper than
   * a native call for page-sized DMA pieces); copies across chunks go to the
   * backend's bulk copy or chunk by chunk.
   */
  copyOutAt(offset: number, dst: Uint8Array, dstStart: number, length: number): void {
    checkSpan(dst, dstStart, length);
    this.copyOutSpan(offset, dst, dstStart, length);
  }

  /** `copyOutAt` once the span is known to lie in dst. */
  private copyOutSpan(offset: number, dst: Uint8Array, dstStart: number, length: number): void {
    this.checkRange(offset, length);
    if (length === 0) return;
    const index = this.chunkOf(offset);
    const at = offset - index * this.chunkSize;
    if (at + length <= this.chunkSize) {
      const bytes = this.bytes(index, false);
      if (!bytes) dst.fill(0, dstStart, dstStart + length);
      else if (length <= SMALL_COPY) smallCopy(bytes, at, dst, dstStart, length);
      else if (length === VIEW_PAGE && (offset & (VIEW_PAGE - 1)) === 0) dst.set(this.pageView(offset, bytes, at), dstStart);
      else dst.set(bytes.subarray(at, at + length), dstStart);
      return;
    }
    this.copyOutAcross(offset, dst, dstStart, length);
  }

  /** `copyOutSpan` across chunks (kept apart so the in-chunk path stays small enough to inline). */
  private copyOutAcross(offset: number, dst: Uint8Array, dstStart: number, length: number): void {
    if (this.bulk) {
      const whole = dstStart === 0 && length === dst.length;
      return this.bulk.copyOut(offset, whole ? dst : dst.subarray(dstStart, dstStart + length));
    }
    let done = 0;
    while (done < length) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(length - done, this.chunkSize - a);
      const bytes = this.bytes(i, false);
      if (bytes) dst.set(bytes.subarray(a, a + n), dstStart + done);
      else dst.fill(0, dstStart + done, dstStart + done + n);
      done += n;
    }
  }

  /**
   * A view of the whole 4 KiB page at RAM `offset` (at `at` in the chunk
   * `bytes`), from the direct-mapped cache: a page-sized DMA piece copies
   * without creating a view each time.  Chunk buffers never move, so a
   * cached view stays valid.
   */
  private pageView(offset: number, bytes: Uint8Array, at: number): Uint8Array {
    const page = offset / VIEW_PAGE;
    const slot = page & (VIEW_SLOTS - 1);
    if (this.pageViewPage[slot] === page) return this.pageViews[slot]!;
    const view = bytes.subarray(at, at + VIEW_PAGE);
    this.pageViews[slot] = view;
    this.pageViewPage[slot] = page;
    return view;
  }

  /** Copies src into RAM at offset (see `copyInAt`). */
  copyIn(offset: number, src: Uint8Array): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, src.length);
    this.copyInSpan(offset, src, 0, src.length);
  }

  /**
   * Copies src[srcStart, srcStart+length) into RAM at offset.  Inside one
   * chunk this is a byte loop for small copies and a typed-array set (a
   * memmove; a view of src only when it is a part of src) otherwise.
   */
  copyInAt(offset: number, src: Uint8Array, srcStart: number, length: number): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, length);
    checkSpan(src, srcStart, length);
    this.copyInSpan(offset, src, srcStart, length);
  }

  /** `copyInAt` once the span is known to lie in src. */
  private copyInSpan(offset: number, src: Uint8Array, srcStart: number, length: number): void {
    this.checkRange(offset, length);
    if (length === 0) return;
    const index = this.chunkOf(offset);
    const at = offset - index * this.chunkSize;
    if (at + length <= this.chunkSize) {
      const bytes = this.bytes(index, true)!;
      // (a view of this very chunk goes through set(), which handles overlap)
      if (length <= SMALL_COPY && src.buffer !== bytes.buffer) {
        smallCopy(src, srcStart, bytes, at, length);
      } else {
        bytes.set(srcStart === 0 && length === src.length ? src : src.subarray(srcStart, srcStart + length), at);
      }
      return;
    }
    this.copyInAcross(offset, src, srcStart, length);
  }

  /** `copyInSpan` across chunks. */
  private copyInAcross(offset: number, src: Uint8Array, srcStart: number, length: number): void {
    const whole = srcStart === 0 && length === src.length;
    if (this.bulk) return this.bulk.copyIn(offset, whole ? src : src.subarray(srcStart, srcStart + length));
    let done = 0;
    while (done < length) {
      const i = this.chunkOf(offset + done);
      const a = offset + done - i * this.chunkSize;
      const n = Math.min(length - done, this.chunkSize - a);
      this.bytes(i, true)!.set(src.subarray(srcStart + done, srcStart + done + n), a);
      done += n;
    }
  }

  /** memmove inside RAM. */
  copyWithin(dstOffset: number, srcOffset: number, length: number): void {
    this.writeCount++;
    if (this.watchers !== null) this.notify(dstOffset, length);
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
    this.writeCount++;
    if (this.watchers !== null) this.notify(offset, length);
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

  /**
   * Snapshot: calls `visit(offset, page)` for every 4 KiB page that holds a
   * non-zero byte, in address order (`page` is a view, valid during the
   * call).  Chunks a sparse backend never created are skipped; with native
   * bulk operations whole zero blocks are skipped with one compare each.
   */
  forEachNonZeroPage(visit: (offset: number, page: Uint8Array) => void): void {
    for (let index = 0; index < this.u8s.length; index++) {
      const bytes = this.bytes(index, false);
      if (!bytes) continue;
      const base = index * this.chunkSize;
      const len = Math.min(bytes.length, this.size - base);
      const words = new Int32Array(bytes.buffer, bytes.byteOffset, len >>> 2);
      for (let block = 0; block < len; block += SCAN_BLOCK) {
        const blockLen = Math.min(SCAN_BLOCK, len - block);
        if (this.bulk && blockLen === SCAN_BLOCK && this.bulk.compare(base + block, zeroBlock())) continue;
        for (let page = block; page < block + blockLen; page += VIEW_PAGE) {
          const end = (page + VIEW_PAGE) >>> 2;
          for (let w = page >>> 2; w < end; w++) {
            if (words[w] !== 0) {
              visit(base + page, bytes.subarray(page, page + VIEW_PAGE));
              break;
            }
          }
        }
      }
    }
  }
}

/** Bytes compared at once when scanning for non-zero pages with native bulk operations. */
const SCAN_BLOCK = 0x10_0000;
let zeroes: Uint8Array | null = null;
/** A shared all-zero block of SCAN_BLOCK bytes (never written). */
function zeroBlock(): Uint8Array {
  return (zeroes ??= new Uint8Array(SCAN_BLOCK));
}
