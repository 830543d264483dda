/**
 * The transfer a trigger runs (QEMU iommu_testdev_maybe_run_dma, steps 1-3):
 * write the pattern through the device's IOMMU address space at the IOVA,
 * read the same number of bytes back from system memory at the GPA, compare.
 *
 * QEMU allocates two buffers of the programmed length (up to 4 GiB - 1) and
 * does one write and one read.  Here the transfer goes in pieces through two
 * preallocated buffers; a piece ends at a CHUNK-aligned address, which no
 * translation (4 KiB pages and up) and no MMIO access (8 bytes at most,
 * aligned) crosses, so the pieces make exactly the accesses the one big
 * transfer makes.  Every piece is attempted even after one fails, as QEMU's
 * flatview loop does: a faulting page in the middle leaves the pages after it
 * written.  The read-back reads every byte once and compares afterwards; a
 * failed read anywhere wins over a mismatch.
 *
 * Addresses are 64-bit, given as 32-bit halves.  An IOVA range reaching 2^53
 * goes through the DMA space's bigint entry point, which wraps past 2^64 like
 * QEMU; a GPA range reaching 2^53 reads nothing there (system memory has
 * nothing mapped that high: a failed read) and wraps past 2^64 to address 0.
 */
import { MemTx } from '../../memory/address-space.js';
import { join64, join64n } from '../../memory/address.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import { ITD_PATTERN_PERIOD, ItdResult, patternByte } from './regs.js';

/** What the read-back needs of system memory (QEMU address_space_memory): AddressSpace has it. */
export interface SystemMemoryReader {
  /** Reads `length` bytes at guest-physical `addr` (below 2^53) into dst[start, start+length). */
  readInto(addr: number, dst: Uint8Array, start: number, length: number): MemTx;
}

/** Bytes per piece; pieces end at multiples of it (a power of two, at least 4 KiB). */
export const PATTERN_DMA_CHUNK = 0x1_0000;
const CHUNK_MASK = PATTERN_DMA_CHUNK - 1;
/** High halves below this keep an address under 2^53 (every integer exact). */
const EXACT_HI_LIMIT = 0x20_0000;
const EXACT_LIMIT = 2 ** 53;
const EXACT_LIMIT_N = 1n << 53n;
const ADDRESS_SPAN_N = 1n << 64n;

/** Outcome of a read-back (a result register value). */
export type ReadBackResult = typeof ItdResult.Ok | typeof ItdResult.ReadFail | typeof ItdResult.Mismatch;

/** The pattern transfer over one device's DMA space and system memory. */
export class PatternDma {
  /** The pattern from phase 0, one period longer than a piece so any phase has a full piece. */
  private readonly pattern = new Uint8Array(PATTERN_DMA_CHUNK + ITD_PATTERN_PERIOD);
  /** Full-piece views of `pattern`, one per phase. */
  private readonly fullPieces: Uint8Array[] = [];
  /** The last short piece view handed out, kept for the next transfer of the same shape. */
  private shortPiece: Uint8Array;
  private shortPhase = 0;
  private readonly readBuf = new Uint8Array(PATTERN_DMA_CHUNK);
  /** Read-back state of the transfer in progress. */
  private readFailed = false;
  private mismatched = false;

  constructor(
    /** The device's IOMMU address space (QEMU pci_device_iommu_address_space). */
    private readonly dma: DmaMemory,
    /** System memory, where the GPA is read back. */
    private readonly system: SystemMemoryReader,
  ) {
    for (let i = 0; i < this.pattern.length; i++) this.pattern[i] = patternByte(i);
    for (let p = 0; p < ITD_PATTERN_PERIOD; p++) this.fullPieces.push(this.pattern.subarray(p, p + PATTERN_DMA_CHUNK));
    this.shortPiece = this.pattern.subarray(0, 0);
  }

  /**
   * Writes `length` (1 to 2^32 - 1) pattern bytes at the IOVA; true when
   * every piece was accepted (QEMU dma_memory_write == MEMTX_OK).
   */
  write(iovaLo: number, iovaHi: number, length: number): boolean {
    const wide = iovaHi >= EXACT_HI_LIMIT || join64(iovaLo, iovaHi) + length > EXACT_LIMIT;
    const base = wide ? 0 : join64(iovaLo, iovaHi);
    const baseN = wide ? join64n(iovaLo, iovaHi) : 0n;
    let ok = true;
    let done = 0;
    let n = Math.min(length, PATTERN_DMA_CHUNK - ((iovaLo >>> 0) & CHUNK_MASK));
    while (done < length) {
      const piece = this.piece(done & (ITD_PATTERN_PERIOD - 1), n);
      const tx = wide ? this.dma.writeWide(BigInt.asUintN(64, baseN + BigInt(done)), piece) : this.dma.write(base + done, piece);
      if (tx !== MemTx.Ok) ok = false;
      done += n;
      n = Math.min(length - done, PATTERN_DMA_CHUNK);
    }
    return ok;
  }

  /**
   * Reads `length` bytes back from system memory at the GPA and compares
   * them with the pattern (QEMU address_space_read + the verify loop).
   */
  readBack(gpaLo: number, gpaHi: number, length: number): ReadBackResult {
    this.readFailed = false;
    this.mismatched = false;
    if (gpaHi < EXACT_HI_LIMIT && join64(gpaLo, gpaHi) + length <= EXACT_LIMIT) {
      this.readRange(join64(gpaLo, gpaHi), 0, length);
    } else {
      // Rare: the range reaches 2^53, where nothing is mapped; past 2^64 it wraps to 0.
      const start = join64n(gpaLo, gpaHi);
      const end = start + BigInt(length);
      this.readFailed = true;
      if (start < EXACT_LIMIT_N) this.readRange(Number(start), 0, Number(EXACT_LIMIT_N - start));
      if (end > ADDRESS_SPAN_N) this.readRange(0, Number(ADDRESS_SPAN_N - start), Number(end - ADDRESS_SPAN_N));
    }
    if (this.readFailed) return ItdResult.ReadFail;
    return this.mismatched ? ItdResult.Mismatch : ItdResult.Ok;
  }

  /** Reads [addr, addr+n) (below 2^53), which holds pattern bytes from `rel` on, piece by piece. */
  private readRange(addr: number, rel: number, n: number): void {
    const buf = this.readBuf;
    const pattern = this.pattern;
    let done = 0;
    while (done < n) {
      const at = addr + done;
      const len = Math.min(n - done, PATTERN_DMA_CHUNK - (at % PATTERN_DMA_CHUNK));
      if (this.system.readInto(at, buf, 0, len) !== MemTx.Ok) this.readFailed = true;
      if (!this.mismatched) {
        const phase = (rel + done) & (ITD_PATTERN_PERIOD - 1);
        for (let k = 0; k < len; k++) {
          if (buf[k] !== pattern[phase + k]) {
            this.mismatched = true;
            break;
          }
        }
      }
      done += len;
    }
  }

  /** The pattern from `phase` for `n` bytes (a full piece or the cached short one when it fits). */
  private piece(phase: number, n: number): Uint8Array {
    if (n === PATTERN_DMA_CHUNK) return this.fullPieces[phase]!;
    if (this.shortPhase !== phase || this.shortPiece.length !== n) {
      this.shortPiece = this.pattern.subarray(phase, phase + n);
      this.shortPhase = phase;
    }
    return this.shortPiece;
  }
}
