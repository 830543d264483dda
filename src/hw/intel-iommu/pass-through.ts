/**
 * The per-requester pass-through switch, as QEMU keeps it
 * (vtd_switch_address_space, vtd_pt_enable_fast_path): QEMU reads a
 * device's context entry from memory when the unit refreshes its address
 * spaces (TE change, SRTP, global context invalidation, reset), when a
 * device-selective context invalidation matches the device, when the
 * device's address space is created, and on the device's first
 * pass-through translation.  While translation is enabled and that entry is
 * a valid pass-through (TT=2) entry, the device's DMA goes to the
 * untranslated region and bypasses the IOMMU entirely (IOTLB and context
 * cache included) until the next decision.  Spec-wise this is a cached
 * context entry; tagging the IOTLB by domain, real hardware does not use
 * stale IOTLB entries for a pass-through context either.
 *
 * In scalable mode the entry that decides is PASID 0's: pass-through PGTT
 * (QEMU 11.1 vtd_dev_pt_enabled); a requester's context entry lives in the
 * lower or upper context table named by its root entry.
 *
 * Like QEMU's context caches, which hang off the device address spaces that
 * exist, decisions are kept for the requesters whose (no-PASID) address
 * space exists: the unit `track`s a requester when it creates its
 * translator (the PCI host creates one for every plugged function, as QEMU
 * does at machine-done), which decides for it at once.  A refresh, a
 * device-selective or a PASID-cache invalidation decides again for the
 * tracked requesters' current source IDs (read now: a guest may renumber
 * buses), each source ID once even when several requesters share it (bus
 * numbers not yet assigned, aliases behind bridges).  So every operation
 * here costs O(tracked requesters + source IDs recorded since the last
 * refresh), each decision a bounded number of table reads (root, context,
 * and in scalable mode PASID directory and entry): never a scan of the
 * 65,536 possible source IDs, whatever the guest's tables hold.
 */
import { SnapshotError, type SnapshotValue } from '../../core/snapshot-state.js';
import type { AddressSpace } from '../../memory/address-space.js';
import type { DmaRequester } from '../../memory/iommu.js';
import type { VtdState } from './state.js';
import { ctxType, lookupContext, newContextEntry, TranslationType, type ContextRules } from './root-context.js';
import { lookupScalableContext, newPasidConfig, newScalableContext, Pgtt, type ScalableRules } from './scalable-context.js';

/** Number of source IDs (bus << 8 | devfn). */
const SID_COUNT = 0x1_0000;
const DEVFNS = 256;
const BUS_SHIFT = 8;
const BYTE = 0xff;
/** No PASID 0 domain remembered (see ptDid). */
const NO_DID = -1;
/** The last pass stamp before the stamps wrap (see beginPass). */
const LAST_STAMP = 0xffff_ffff;

/** What the switch reads from its unit (never changes). */
export interface PassThroughUnit {
  readonly memory: AddressSpace;
  readonly ctxRules: ContextRules;
  readonly smRules: ScalableRules;
  /** Translation enabled, the root table and RTADDR.SMT latched by SRTP. */
  readonly state: Readonly<Pick<VtdState, 'translationEnabled' | 'rootTable' | 'scalable'>>;
}

/** Source ID of `req` now: bus << 8 | devfn (the bus number is guest-programmable). */
function currentSid(req: DmaRequester): number {
  return ((req.busNumber() & BYTE) << BUS_SHIFT) | (req.devfn & BYTE);
}

/** Pass-through decisions of one unit, by source ID, for the requesters it tracks. */
export class PassThroughSwitch {
  private readonly pt = new Uint8Array(SID_COUNT);
  private readonly ce = newContextEntry();
  private readonly smCe = newScalableContext();
  private readonly pe0 = newPasidConfig();
  /**
   * Scalable mode: the domain ID of PASID 0's entry when a refresh (not the
   * translation fast path) put `sid` in pass-through, else NO_DID.  QEMU 11.1
   * keeps that entry as the device's PASID-cache entry and matches
   * PASID-cache invalidations against it; a device switched by the fast path
   * has none, so only a context-cache invalidation takes it out again.
   */
  private readonly ptDid = new Int32Array(SID_COUNT).fill(NO_DID);
  /** The requesters whose address space exists, in creation order (no duplicates). */
  private readonly tracked: DmaRequester[] = [];
  private readonly trackedKeys = new WeakSet<object>();
  /**
   * The source IDs with a decision on record (pt or ptDid set) since the last
   * refresh, so that a refresh forgets them in O(recorded), not O(65,536).
   * `listed[sid]` is 1 while `sid` is in `recorded[0, recordedCount)`.
   */
  private readonly recorded = new Uint16Array(SID_COUNT);
  private recordedCount = 0;
  private readonly listed = new Uint8Array(SID_COUNT);
  /** Per source ID, the pass that last visited it (each source ID is decided once per pass). */
  private readonly stamps = new Uint32Array(SID_COUNT);
  private stamp = 0;

  constructor(private readonly u: PassThroughUnit) {}

  /** The recorded decision for `sid`. */
  isPassThrough(sid: number): boolean {
    return this.pt[sid] === 1;
  }

  /** The number of requesters whose decisions are kept (tests, bounds). */
  get trackedCount(): number {
    return this.tracked.length;
  }

  /**
   * Keeps decisions for `req` from now on (its no-PASID address space was
   * created) and decides for it from memory now, as QEMU's
   * vtd_find_add_as switches a new address space; returns the decision.
   */
  track(req: DmaRequester): boolean {
    if (!this.trackedKeys.has(req.key)) {
      this.trackedKeys.add(req.key);
      this.tracked.push(req);
    }
    return this.decide(currentSid(req));
  }

  /**
   * Decides for `sid` from its context entry in memory now, records and
   * returns it: a refresh (TE, SRTP, context-cache or PASID-cache
   * invalidation) when `fastPath` is false, the translation fast path
   * (QEMU vtd_pt_enable_fast_path) when true.  Bounded: at most the root,
   * context, PASID directory and PASID table entries of `sid` are read.
   */
  decide(sid: number, fastPath = false): boolean {
    const u = this.u;
    const state = u.state;
    const bus = sid >>> BUS_SHIFT;
    const devfn = sid & (DEVFNS - 1);
    let on = false;
    if (state.translationEnabled && state.scalable) {
      on = lookupScalableContext(u.memory, state.rootTable, bus, devfn, u.smRules, this.smCe, this.pe0) === 0 && this.pe0.pgtt === Pgtt.PassThrough;
    } else if (state.translationEnabled) {
      on = lookupContext(u.memory, state.rootTable, bus, devfn, u.ctxRules, this.ce) === 0 && ctxType(this.ce) === TranslationType.PassThrough;
    }
    this.pt[sid] = on ? 1 : 0;
    this.ptDid[sid] = on && state.scalable && !fastPath ? this.pe0.did : NO_DID;
    if (on && this.listed[sid] === 0) {
      this.listed[sid] = 1;
      this.recorded[this.recordedCount++] = sid;
    }
    return on;
  }

  /**
   * Decides for every tracked requester (QEMU vtd_address_space_refresh_all):
   * forgets the decisions on record, then decides each current source ID
   * once.  O(recorded + tracked) decisions' worth of work.
   */
  decideAll(): void {
    this.forgetRecorded();
    const u = this.u;
    if (!u.state.translationEnabled) return;
    this.beginPass();
    for (const req of this.tracked) {
      const sid = this.visit(req);
      if (sid >= 0) this.decide(sid);
    }
  }

  /**
   * A PASID-cache invalidation (scalable mode): decides again for every
   * tracked source ID in pass-through whose remembered PASID 0 domain (see
   * ptDid) `covers` accepts, taking it out of pass-through when its entry
   * changed.  O(tracked) calls of `covers`, a decision for each match.
   */
  redecideCovered(covers: (did: number) => boolean): void {
    this.beginPass();
    for (const req of this.tracked) {
      const sid = this.visit(req);
      if (sid < 0 || this.pt[sid] !== 1) continue;
      const did = this.ptDid[sid]!;
      if (did !== NO_DID && covers(did)) this.decide(sid);
    }
  }

  /**
   * Decides for the tracked requesters on `bus` whose devfn matches `devfn`
   * outside `ignore` bits (device-selective invalidation).  O(tracked).
   */
  decideMatching(bus: number, devfn: number, ignore: number): void {
    const want = devfn & ~ignore;
    this.beginPass();
    for (const req of this.tracked) {
      const sid = this.visit(req);
      if (sid >= 0 && sid >>> BUS_SHIFT === bus && (sid & ~ignore & BYTE) === want) this.decide(sid);
    }
  }

  /**
   * Snapshot: the decisions on record, as [sid, pt, ptDid] in recording
   * order.  QEMU recomputes its address-space switches on load; keeping the
   * decisions instead makes a restored unit answer exactly as the saved
   * one, even where the guest changed a context entry without invalidating.
   */
  saveState(): SnapshotValue[] {
    const out: SnapshotValue[] = [];
    for (let i = 0; i < this.recordedCount; i++) {
      const sid = this.recorded[i]!;
      out.push([sid, this.pt[sid]!, this.ptDid[sid]!]);
    }
    return out;
  }

  /** Loads what saveState saved (after forgetting every decision). */
  loadState(rows: readonly SnapshotValue[], where: string): void {
    const ok = (v: SnapshotValue | undefined, max: number, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
    for (const row of rows) {
      if (!Array.isArray(row) || row.length !== 3 || !ok(row[0], SID_COUNT - 1) || !ok(row[1], 1) || !ok(row[2], 0xffff, NO_DID)) {
        throw new SnapshotError(`snapshot: ${where}: expected [sid, pt, ptDid] rows`);
      }
    }
    this.forgetRecorded();
    for (const row of rows as readonly (readonly [number, number, number])[]) {
      const [sid, pt, did] = row;
      this.pt[sid] = pt;
      this.ptDid[sid] = did;
      if (this.listed[sid] === 0) {
        this.listed[sid] = 1;
        this.recorded[this.recordedCount++] = sid;
      }
    }
  }

  /** Clears every decision on record (a refresh starts from none). */
  private forgetRecorded(): void {
    for (let i = 0; i < this.recordedCount; i++) {
      const sid = this.recorded[i]!;
      this.pt[sid] = 0;
      this.ptDid[sid] = NO_DID;
      this.listed[sid] = 0;
    }
    this.recordedCount = 0;
  }

  /** Starts a pass over the tracked requesters (see visit). */
  private beginPass(): void {
    if (this.stamp === LAST_STAMP) {
      this.stamps.fill(0);
      this.stamp = 0;
    }
    this.stamp++;
  }

  /** `req`'s current source ID, or -1 when this pass has already visited it. */
  private visit(req: DmaRequester): number {
    const sid = currentSid(req);
    if (this.stamps[sid] === this.stamp) return -1;
    this.stamps[sid] = this.stamp;
    return sid;
  }
}
