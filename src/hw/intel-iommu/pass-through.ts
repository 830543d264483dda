/**
 * The per-requester pass-through switch, as QEMU keeps it
 * (vtd_switch_address_space, vtd_pt_enable_fast_path): QEMU reads a
 * device's context entry from memory when the unit refreshes its address
 * spaces (TE change, SRTP, global context invalidation, reset), when a
 * device-selective context invalidation matches the device, and on the
 * device's first pass-through translation.  While translation is enabled and
 * that entry is a valid pass-through (TT=2) entry, the device's DMA goes to
 * the untranslated region and bypasses the IOMMU entirely (IOTLB and context
 * cache included) until the next decision.  Spec-wise this is a cached
 * context entry; tagging the IOTLB by domain, real hardware does not use
 * stale IOTLB entries for a pass-through context either.
 *
 * In scalable mode the entry that decides is PASID 0's: pass-through PGTT
 * (QEMU 11.1 vtd_dev_pt_enabled); a requester's context entry lives in the
 * lower or upper context table named by its root entry.
 *
 * QEMU decides for every PCI device at a refresh; vtemu creates translators
 * at a device's first DMA, so a refresh records the decision for every
 * source ID (a scan of the present root entries' context tables) and a new
 * translator starts from the recorded decision.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64 } from '../../memory/address.js';
import { newQword, readQword } from './guest-mem.js';
import type { VtdState } from './state.js';
import { Entry, ENTRY_SIZE, ctxType, lookupContext, newContextEntry, TranslationType, type ContextRules } from './root-context.js';
import {
  lookupScalableContext,
  newPasidConfig,
  newScalableContext,
  Pgtt,
  SmContext,
  SmRoot,
  type ScalableRules,
} from './scalable-context.js';

/** Number of source IDs (bus << 8 | devfn). */
const SID_COUNT = 0x1_0000;
const BUSES = 256;
const DEVFNS = 256;
const BUS_SHIFT = 8;

/** What the switch reads from its unit (never changes). */
export interface PassThroughUnit {
  readonly memory: AddressSpace;
  readonly ctxRules: ContextRules;
  readonly smRules: ScalableRules;
  /** Translation enabled, the root table and RTADDR.SMT latched by SRTP. */
  readonly state: Readonly<Pick<VtdState, 'translationEnabled' | 'rootTable' | 'scalable'>>;
}

/** Devfns per scalable-mode context table (lower and upper halves). */
const SM_HALF_DEVFNS = 128;

/** Pass-through decisions of one unit, by source ID. */
export class PassThroughSwitch {
  private readonly pt = new Uint8Array(SID_COUNT);
  private readonly ce = newContextEntry();
  private readonly root = newQword();
  private readonly ctxLo = newQword();
  private readonly smCe = newScalableContext();
  private readonly pe0 = newPasidConfig();
  /**
   * Scalable mode: the domain ID of PASID 0's entry when a refresh (not the
   * translation fast path) put `sid` in pass-through, else -1.  QEMU 11.1
   * keeps that entry as the device's PASID-cache entry and matches
   * PASID-cache invalidations against it; a device switched by the fast path
   * has none, so only a context-cache invalidation takes it out again.
   */
  private readonly ptDid = new Int32Array(SID_COUNT).fill(-1);

  constructor(private readonly u: PassThroughUnit) {}

  /** The recorded decision for `sid`. */
  isPassThrough(sid: number): boolean {
    return this.pt[sid] === 1;
  }

  /**
   * Decides for `sid` from its context entry in memory now, records and
   * returns it: a refresh (TE, SRTP, context-cache or PASID-cache
   * invalidation) when `fastPath` is false, the translation fast path
   * (QEMU vtd_pt_enable_fast_path) when true.
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
    this.ptDid[sid] = on && state.scalable && !fastPath ? this.pe0.did : -1;
    return on;
  }

  /** Decides for every source ID (QEMU vtd_address_space_refresh_all). */
  decideAll(): void {
    this.pt.fill(0);
    this.ptDid.fill(-1);
    const u = this.u;
    if (!u.state.translationEnabled) return;
    if (u.state.scalable) {
      this.decideAllScalable();
      return;
    }
    for (let bus = 0; bus < BUSES; bus++) {
      if (!readQword(u.memory, u.state.rootTable + bus * ENTRY_SIZE, this.root) || (this.root.lo & Entry.P) === 0) continue;
      const table = join64(this.root.lo & Entry.ADDR_LO, this.root.hi);
      for (let devfn = 0; devfn < DEVFNS; devfn++) {
        // Only a present TT=2 entry can be a pass-through one: skip the rest with one read.
        if (!readQword(u.memory, table + devfn * ENTRY_SIZE, this.ctxLo)) continue;
        if ((this.ctxLo.lo & Entry.P) === 0 || ((this.ctxLo.lo >>> Entry.TT_SHIFT) & Entry.TT_MASK) !== TranslationType.PassThrough) continue;
        this.decide((bus << BUS_SHIFT) | devfn);
      }
    }
  }

  /** decideAll over a scalable-mode root table: every present context entry of both halves. */
  private decideAllScalable(): void {
    const u = this.u;
    for (let bus = 0; bus < BUSES; bus++) {
      const rootAddr = u.state.rootTable + bus * SmRoot.SIZE;
      for (let half = 0; half < 2; half++) {
        if (!readQword(u.memory, rootAddr + half * 8, this.root) || (this.root.lo & SmRoot.P) === 0) continue;
        const table = join64(this.root.lo & SmRoot.ADDR_LO, this.root.hi);
        for (let i = 0; i < SM_HALF_DEVFNS; i++) {
          // A present entry may have a pass-through PASID 0: one read skips the rest.
          if (!readQword(u.memory, table + i * SmContext.SIZE, this.ctxLo) || (this.ctxLo.lo & SmContext.P) === 0) continue;
          this.decide((bus << BUS_SHIFT) | (half * SM_HALF_DEVFNS + i));
        }
      }
    }
  }

  /**
   * A PASID-cache invalidation (scalable mode): decides again for every
   * source ID in pass-through whose remembered PASID 0 domain (see ptDid)
   * `covers` accepts, taking it out of pass-through when its entry changed.
   */
  redecideCovered(covers: (did: number) => boolean): void {
    for (let sid = 0; sid < SID_COUNT; sid++) {
      if (this.pt[sid] === 1 && this.ptDid[sid]! >= 0 && covers(this.ptDid[sid]!)) this.decide(sid);
    }
  }

  /** Decides for the functions of `bus` whose devfn matches `devfn` outside `ignore` bits (device-selective invalidation). */
  decideMatching(bus: number, devfn: number, ignore: number): void {
    for (let f = 0; f < DEVFNS; f++) if ((f & ~ignore) === (devfn & ~ignore)) this.decide((bus << BUS_SHIFT) | f);
  }
}
