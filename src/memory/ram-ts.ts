/**
 * Pure TypeScript guest-RAM backend: sparse 2 MiB chunks, each allocated
 * the first time something writes to it.  Untouched RAM reads as zeros and
 * costs nothing, so `-m 64G` is as cheap here as with the native backend.
 */
import { ChunkedRam, type ChunkSource } from './ram.js';

const CHUNK_SHIFT = 21;

class SparseChunks implements ChunkSource {
  readonly chunkShift = CHUNK_SHIFT;
  private readonly chunks = new Map<number, ArrayBuffer>();
  constructor(readonly size: number) {}

  chunk(index: number, create: boolean): ArrayBuffer | null {
    let buf = this.chunks.get(index);
    if (!buf && create) {
      const chunkSize = 2 ** CHUNK_SHIFT;
      buf = new ArrayBuffer(Math.min(chunkSize, this.size - index * chunkSize));
      this.chunks.set(index, buf);
    }
    return buf ?? null;
  }
}

/** Creates a pure TypeScript RAM of `size` bytes (a positive multiple of 4 KiB). */
export function createTsRam(size: number): ChunkedRam {
  if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
    throw new RangeError(`guest RAM: size ${size} must be a positive multiple of 4096`);
  }
  return new ChunkedRam(new SparseChunks(size), 'ts');
}
