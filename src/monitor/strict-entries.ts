/**
 * Guest stores to context and PASID entries, as the strict checks see them
 * (spec 6.5.3.3, "Guidance to Software for Invalidations"): a present entry
 * may be changed only by clearing it, invalidating what the hardware may
 * have cached of it, then writing the new entry.
 *
 * Entries become tracked when a request goes through them (strict-checks.ts
 * hands them over from the translation path).  The RAM's write watcher
 * (ChunkedRam.addWatcher) runs before each store, so a store only marks the
 * entries it touches; they are compared with memory at the next watcher call
 * or unit event (`settle`), when the store is done.  Per entry:
 *   present -> another present value         'present-entry-modified'
 *   present -> not present                   remembers the old value until an
 *                                            invalidation covering it
 *   not present -> present, another value than before the clear, with no
 *   covering invalidation since the clear    'entry-rewritten-without-invalidation'
 *
 * Covering invalidations are taken leniently (any invalidation that may
 * cover the entry counts): context entries by a context-cache invalidation
 * that is global, domain-selective for the entry's domain (any domain in
 * scalable mode, whose context entries have none) or device-selective for
 * its source ID under the function mask; PASID entries by a PASID-cache
 * invalidation that is global, for its domain, or for its domain and PASID,
 * or by a global context-cache invalidation.  SRTP (the unit advertises
 * ESRTPS: it invalidates everything itself) covers every entry.
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { ChunkedRam, RamWriteWatcher } from '../memory/ram.js';
import type { InvalidateEvent } from '../hw/intel-iommu/events.js';
import { FM_DEVFN_MASK } from '../hw/intel-iommu/invalidation.js';
import { readQwords } from './inspect-common.js';

/** Entries tracked at most (beyond, new ones are not tracked). */
const MAX_TRACKED = 1 << 16;
/** Writes longer than this are matched against the tracked entries rather than qword by qword. */
const SCAN_BYTES = 4096;
const QW = 8;

/** A tracked context or PASID entry. */
interface Tracked {
  readonly kind: 'context' | 'pasid';
  readonly gpa: number;
  readonly sid: number;
  readonly pasid: number;
  readonly qwords: number;
  readonly ramOffset: number;
  /** Domain ID of the last present value (-1: none, scalable-mode context entries). */
  did: number;
  value: bigint[];
  /** The present value before the entry was cleared, until an invalidation covers it. */
  clearedFrom: bigint[] | null;
  clearedDid: number;
  dirty: boolean;
}

/** A finding of the tracker. */
export interface EntryFinding {
  readonly rule: 'present-entry-modified' | 'entry-rewritten-without-invalidation';
  readonly kind: 'context' | 'pasid';
  readonly gpa: number;
  readonly old: readonly bigint[];
  readonly now: readonly bigint[];
}

const present = (v: readonly bigint[]): boolean => ((v[0] ?? 0n) & 1n) !== 0n;
const same = (a: readonly bigint[], b: readonly bigint[]): boolean => a.length === b.length && a.every((q, i) => q === b[i]);

/** The tracker of one unit's context and PASID entries. */
export class EntryTracker implements RamWriteWatcher {
  private readonly byRam = new Map<ChunkedRam, Map<number, Tracked>>();
  private readonly byGpa = new Map<number, Tracked>();
  private readonly dirty: Tracked[] = [];

  constructor(
    private readonly memory: AddressSpace,
    private readonly report: (f: EntryFinding) => void,
  ) {}

  /** Entries tracked. */
  get size(): number {
    return this.byGpa.size;
  }

  /** Stops watching every RAM. */
  close(): void {
    for (const ram of this.byRam.keys()) ram.removeWatcher(this);
    this.byRam.clear();
    this.byGpa.clear();
  }

  /** Starts tracking the entry at `gpa` (if in RAM and not yet tracked) with its value now. */
  track(kind: 'context' | 'pasid', gpa: number, qwords: number, sid: number, pasid: number, did: number, value: bigint[]): void {
    if (this.byGpa.has(gpa) || this.byGpa.size >= MAX_TRACKED) return;
    const at = this.memory.ramAt(gpa, qwords * QW);
    if (at === null) return;
    const { ram, offset: ramOffset } = at;
    let map = this.byRam.get(ram);
    if (!map) {
      map = new Map();
      this.byRam.set(ram, map);
      ram.addWatcher(this);
    }
    const t: Tracked = { kind, gpa, sid, pasid, qwords, ramOffset, did, value, clearedFrom: null, clearedDid: -1, dirty: false };
    for (let i = 0; i < qwords; i++) map.set(ramOffset + i * QW, t);
    this.byGpa.set(gpa, t);
  }

  willWrite(ram: ChunkedRam, offset: number, length: number): void {
    this.settle();
    const map = this.byRam.get(ram);
    if (map === undefined || length <= 0) return;
    if (length > SCAN_BYTES) {
      for (const t of new Set(map.values())) if (t.ramOffset < offset + length && offset < t.ramOffset + t.qwords * QW) this.mark(t);
      return;
    }
    for (let q = offset - (offset % QW); q < offset + length; q += QW) {
      const t = map.get(q);
      if (t) this.mark(t);
    }
  }

  private mark(t: Tracked): void {
    if (t.dirty) return;
    t.dirty = true;
    this.dirty.push(t);
  }

  /** Compares every entry written since the last call with memory now. */
  settle(): void {
    while (this.dirty.length > 0) {
      const t = this.dirty.pop()!;
      t.dirty = false;
      const q = readQwords(this.memory, t.gpa, t.qwords);
      if (q === null) continue;
      this.changed(t, q.map((x) => (BigInt(x.hi) << 32n) | BigInt(x.lo)));
    }
  }

  private changed(t: Tracked, now: bigint[]): void {
    const old = t.value;
    if (same(old, now)) return;
    t.value = now;
    if (present(old) && present(now)) {
      this.report({ rule: 'present-entry-modified', kind: t.kind, gpa: t.gpa, old, now });
    } else if (present(old)) {
      t.clearedFrom = old;
      t.clearedDid = t.did;
    } else if (present(now) && t.clearedFrom !== null && !same(t.clearedFrom, now)) {
      this.report({ rule: 'entry-rewritten-without-invalidation', kind: t.kind, gpa: t.gpa, old: t.clearedFrom, now });
      t.clearedFrom = null;
    }
    if (present(now)) t.did = didOf(t.kind, now);
  }

  /** An invalidation: forgets the cleared values it covers. */
  invalidated(e: InvalidateEvent, scalable: boolean): void {
    this.settle();
    if (e.cache !== 'context' && e.cache !== 'pasid') return;
    for (const t of this.byGpa.values()) if (t.clearedFrom !== null && covers(t, e, scalable)) t.clearedFrom = null;
  }

  /** SRTP: the unit invalidates every cache itself (ESRTPS). */
  rootTableSet(): void {
    this.settle();
    for (const t of this.byGpa.values()) t.clearedFrom = null;
  }
}

/** The domain ID of a present entry's value (-1: scalable-mode context entries carry none). */
export function didOf(kind: 'context' | 'pasid', v: readonly bigint[]): number {
  if (kind === 'pasid') return Number((v[1] ?? 0n) & 0xffffn);
  return v.length === 2 ? Number(((v[1] ?? 0n) >> 8n) & 0xffffn) : -1;
}

function covers(t: Tracked, e: InvalidateEvent, scalable: boolean): boolean {
  if (t.kind === 'context') {
    if (e.cache !== 'context') return false;
    if (e.granularity === 'global') return true;
    if (e.granularity === 'domain') return scalable || e.did === t.clearedDid;
    if (e.granularity === 'device') {
      const ignore = FM_DEVFN_MASK[(e.fm ?? 0) & 3]!;
      return ((e.sid ?? -1) & ~ignore) === (t.sid & ~ignore);
    }
    return false;
  }
  if (e.granularity === 'global') return true;
  if (e.cache !== 'pasid') return false;
  if (e.granularity === 'domain') return e.did === t.clearedDid;
  if (e.granularity === 'pasid') return e.did === t.clearedDid && e.pasid === t.pasid;
  return false;
}
