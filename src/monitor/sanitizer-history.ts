/**
 * Guest stores as the invalidation sanitizer needs them: for every qword of
 * RAM written (by the guest, a device or the unit), the sequence number of
 * the last write and the value it overwrote.  Fed by the RAM's write watcher
 * (ChunkedRam.addWatcher), before the bytes change.
 *
 * Bounded: writes longer than BULK_BYTES (RAM initialisation, big DMA
 * buffers) are not recorded qword by qword, and once TRACKED_LIMIT qwords are
 * recorded the record starts again empty.  A qword without a record has no
 * known write: the sanitizer then reports nothing about it (it never guesses).
 */
import type { ChunkedRam, RamWriteWatcher, U32Pair } from '../memory/ram.js';
import type { AddressSpace } from '../memory/address-space.js';

/** The last write to one qword. */
export interface LastWrite {
  readonly seq: number;
  /** The qword before that write. */
  readonly before: bigint;
}

/** Writes longer than this are not recorded qword by qword. */
const BULK_BYTES = 64 * 1024;
/** Qwords recorded before the record starts again. */
const TRACKED_LIMIT = 1 << 20;
const QW = 8;

/** The write record of the RAMs it watches. */
export class WriteHistory implements RamWriteWatcher {
  private readonly last = new Map<ChunkedRam, Map<number, LastWrite>>();
  private tracked = 0;
  private readonly pair: U32Pair = { lo: 0, hi: 0 };

  /** `nextSeq` numbers each write (shared with the sanitizer's other events). */
  constructor(private readonly nextSeq: () => number) {}

  watch(ram: ChunkedRam): void {
    if (this.last.has(ram)) return;
    this.last.set(ram, new Map());
    ram.addWatcher(this);
  }

  /** Stops watching every RAM. */
  close(): void {
    for (const ram of this.last.keys()) ram.removeWatcher(this);
    this.last.clear();
  }

  willWrite(ram: ChunkedRam, offset: number, length: number): void {
    const map = this.last.get(ram);
    if (map === undefined || length <= 0 || length > BULK_BYTES) return;
    const seq = this.nextSeq();
    const end = Math.min(offset + length, ram.size);
    for (let q = offset - (offset % QW); q < end; q += QW) {
      if (q < 0 || q + QW > ram.size) continue;
      ram.readU32Pair(q, this.pair);
      if (!map.has(q)) this.tracked++;
      map.set(q, { seq, before: (BigInt(this.pair.hi) << 32n) | BigInt(this.pair.lo) });
    }
    if (this.tracked > TRACKED_LIMIT) {
      for (const m of this.last.values()) m.clear();
      this.tracked = 0;
    }
  }

  /** The last write to the qword at guest-physical `gpa` (8-aligned) of `mem`, if recorded. */
  lastWrite(mem: AddressSpace, gpa: number): LastWrite | undefined {
    const at = mem.ramAt(gpa, QW);
    if (at === null) return undefined;
    this.watch(at.ram);
    return this.last.get(at.ram)!.get(at.offset);
  }
}
