/**
 * IOMMU notifiers of the VT-d unit (the notifier half of QEMU's
 * intel_iommu.c): one notifier space per requester and PASID
 * (`space(requester, pasid)`, the IommuNotifierSpace contract of
 * memory/iommu-notifier.ts), and what each guest action reports:
 *
 *   registration   refused as QEMU's vtd_iommu_notify_flag_changed refuses
 *                  it: any flags under snoop-control; MAP without
 *                  caching-mode; DEVIOTLB_UNMAP without device-iotlb
 *   IOTLB          global: every space synced; domain: spaces of the DID
 *                  synced; page-selective: the range synced (spaces without
 *                  a MAP notifier hear UNMAP of the range; of their whole
 *                  window for global and domain)
 *   PASID-IOTLB    the same for the spaces of (DID, PASID); requests without
 *                  a PASID are PASID 0's (RID_PASID) in scalable mode
 *   PASID-cache    covered spaces synced whole
 *   context        device-selective: the covered spaces synced whole;
 *                  global (and domain, performed as global): every space
 *                  unmapped, then synced (QEMU vtd_address_space_refresh_all
 *                  and vtd_iommu_replay_all)
 *   GCMD.TE off, SRTP, reset   every space unmapped; TE on: every space
 *                  synced (QEMU: the IOMMU region is enabled and its
 *                  notifiers replayed)
 *   device-TLB     DEVIOTLB_UNMAP of the range to the spaces of the SID (and
 *                  PASID; a global descriptor 8: every PASID's space)
 *
 * A sync (shadow-sync.ts) walks the invalidated range of the space's
 * current tables and reports the differences from what it reported before;
 * a space whose context or PASID entry no longer resolves, or that is
 * pass-through or nested, is unmapped whole (its DMA no longer goes through
 * a shadow).  A DID-selective invalidation reaches a space whose entry now
 * has that DID, or whose shadow came from it (QEMU checks only the current
 * entry, so a guest that moves a device to another domain leaves the old
 * shadow there).  Nothing happens while translation is off.
 *
 * While no space has a notifier `active` is false and the unit's
 * invalidation paths call nothing here: no walk, no allocation.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import {
  IOVA_SPACE_END,
  IommuNotifierError,
  IommuNotifierFlag,
  type IommuNotifier,
  type IommuNotifierSpace,
} from '../../memory/iommu-notifier.js';
import { ALL_PASIDS, NO_PASID, type DmaRequester } from '../../memory/iommu.js';
import { FM_DEVFN_MASK } from './invalidation.js';
import type { IommuConfig } from './props.js';
import { newTranslationConfig, type TranslationConfig } from './resolve.js';
import type { ContextInvalidation, IotlbInvalidation, PasidCacheInvalidation, PasidIotlbInvalidation } from './requests.js';
import { ctxAw, ctxDid, ctxLevels, ctxTableBase, ctxType, lookupContext, newContextEntry, TranslationType, type ContextRules } from './root-context.js';
import type { NotifierHooks } from './roles.js';
import { newScalableContext, Pgtt, resolveScalable, type ScalableRules } from './scalable-context.js';
import { ShadowSpace } from './shadow-sync.js';
import { ShadowWalker, walkable } from './shadow-walk.js';
import { sourceId } from './translator.js';
import type { WalkStageRules } from './walk-stage.js';

/** What the notifiers read from their unit. */
export interface NotifierUnit {
  readonly memory: AddressSpace;
  readonly config: Pick<IommuConfig, 'cachingMode' | 'snoopControl' | 'deviceIotlb' | 'awBits'>;
  /** GCMD.TE accepted. */
  readonly dmarEnabled: boolean;
  /** RTADDR.SMT latched by SRTP. */
  readonly scalable: boolean;
  readonly rootTable: number;
  readonly ctxRules: ContextRules;
  readonly smRules: ScalableRules;
  readonly walkStageRules: WalkStageRules;
}

const PAGE_4K = 4096;
const BYTE = 0xff;
const BUS_SHIFT = 8;
const SLOT_SHIFT = 3;
const FUNC_MASK = 7;
/** The PASID requests without one use in scalable mode (QEMU 11.1: RID_PASID is taken as 0). */
const RID_PASID = 0;
/** QEMU's error_setg_errno(ENOTSUP) suffix. */
const ENOTSUP = 'Operation not supported';

/** QEMU's "%02x.%02x.%x" name of a requester (bus, slot, function). */
function deviceName(req: DmaRequester): string {
  const sid = sourceId(req);
  const bus = (sid >>> BUS_SHIFT) & BYTE;
  const devfn = sid & BYTE;
  const hex = (v: number, w: number): string => v.toString(16).padStart(w, '0');
  return `${hex(bus, 2)}.${hex(devfn >>> SLOT_SHIFT, 2)}.${hex(devfn & FUNC_MASK, 1)}`;
}

/** The notifier space of one requester and PASID, as handed to embedders. */
class VtdNotifierSpace implements IommuNotifierSpace {
  constructor(
    private readonly owner: VtdNotifiers,
    readonly shadow: ShadowSpace,
  ) {}

  get requester(): DmaRequester {
    return this.shadow.requester;
  }

  get pasid(): number {
    return this.shadow.pasid;
  }

  get notifierFlags(): number {
    return this.shadow.list.flags;
  }

  registerNotifier(n: IommuNotifier): void {
    this.owner.register(this.shadow, n);
  }

  unregisterNotifier(n: IommuNotifier): void {
    this.owner.unregister(this.shadow, n);
  }

  replay(n: IommuNotifier): void {
    this.owner.replay(this.shadow, n);
  }
}

/** The notifier spaces of one unit and the unit's hooks into them. */
export class VtdNotifiers implements NotifierHooks {
  /** True while some space has a notifier. */
  active = false;
  private readonly byKey = new Map<object, Map<number, VtdNotifierSpace>>();
  /** The spaces with notifiers, in registration order (QEMU vtd_as_with_notifiers); replaced on change. */
  private registered: readonly ShadowSpace[] = [];
  private walker: ShadowWalker | null = null;
  private readonly cfg: TranslationConfig = newTranslationConfig();
  private readonly legacyCe = newContextEntry();
  private readonly smCe = newScalableContext();
  /** Translation was on at the last cache reset (TE going on replays every space). */
  private wasEnabled = false;

  constructor(private readonly u: NotifierUnit) {}

  /** The notifier space of `requester` for `pasid` (NO_PASID: requests without one). */
  space(requester: DmaRequester, pasid: number = NO_PASID): IommuNotifierSpace {
    let spaces = this.byKey.get(requester.key);
    if (spaces === undefined) {
      spaces = new Map();
      this.byKey.set(requester.key, spaces);
    }
    let s = spaces.get(pasid);
    if (s === undefined) {
      s = new VtdNotifierSpace(this, new ShadowSpace(requester, pasid, this.u.config.awBits));
      spaces.set(pasid, s);
    }
    return s;
  }

  /** Registers `n` on `s`, checking the new flags as QEMU does (only when they change). */
  register(s: ShadowSpace, n: IommuNotifier): void {
    if (s.list.notifiers.includes(n)) return;
    const flags = s.list.flagsWith(n);
    if (flags !== s.list.flags) this.check(s, flags);
    const first = s.list.flags === 0;
    s.add(n);
    if (first) this.registered = [...this.registered, s];
    this.walker ??= new ShadowWalker(this.u.memory, this.u.walkStageRules);
    this.active = true;
  }

  /** Unregisters `n` from `s`. */
  unregister(s: ShadowSpace, n: IommuNotifier): void {
    s.remove(n);
    if (s.list.flags === 0 && this.registered.includes(s)) {
      this.registered = this.registered.filter((x) => x !== s);
      this.active = this.registered.length > 0;
    }
  }

  /** Reports every current mapping of `s` to `n` (a MAP notifier) as MAP events. */
  replay(s: ShadowSpace, n: IommuNotifier): void {
    if ((n.flags & IommuNotifierFlag.Map) === 0) return;
    if (s.shadowing) {
      // The shadow is brought in line with the tables first (the others hear the differences, `n` the result).
      s.muted = n;
      try {
        this.syncWhole(s);
      } finally {
        s.muted = null;
      }
      s.replayShadow(n);
    } else if (this.resolve(s) && walkable(this.cfg)) {
      this.walker ??= new ShadowWalker(this.u.memory, this.u.walkStageRules);
      s.replayWalk(this.walker, this.cfg, n);
    }
  }

  /** Refuses flags the unit cannot serve (QEMU vtd_iommu_notify_flag_changed). */
  private check(s: ShadowSpace, flags: number): void {
    const c = this.u.config;
    if (c.snoopControl) throw new IommuNotifierError(`Snoop Control with vhost or VFIO is not supported: ${ENOTSUP}`);
    if (!c.cachingMode && (flags & IommuNotifierFlag.Map) !== 0) {
      throw new IommuNotifierError(`device ${deviceName(s.requester)} requires caching mode: ${ENOTSUP}`);
    }
    if (!c.deviceIotlb && (flags & IommuNotifierFlag.DevIotlbUnmap) !== 0) {
      throw new IommuNotifierError(`device ${deviceName(s.requester)} requires device IOTLB mode: ${ENOTSUP}`);
    }
  }

  /**
   * Resolves `s`'s translation config from memory into `this.cfg` (as QEMU
   * vtd_dev_to_context_entry: no cache, nothing traced or recorded); false
   * when translation is off or the entries do not resolve.
   */
  private resolve(s: ShadowSpace): boolean {
    const u = this.u;
    if (!u.dmarEnabled) return false;
    const sid = sourceId(s.requester);
    const bus = sid >>> BUS_SHIFT;
    const devfn = sid & BYTE;
    const cfg = this.cfg;
    if (u.scalable) {
      const pasid = s.pasid === NO_PASID ? RID_PASID : s.pasid;
      return resolveScalable(u.memory, u.rootTable, bus, devfn, pasid, u.smRules, this.smCe, cfg) === 0;
    }
    // Without scalable mode requests with a PASID are blocked: nothing to shadow.
    if (s.pasid !== NO_PASID) return false;
    const ce = this.legacyCe;
    if (lookupContext(u.memory, u.rootTable, bus, devfn, u.ctxRules, ce) !== 0) return false;
    cfg.did = ctxDid(ce);
    cfg.pgtt = ctxType(ce) === TranslationType.PassThrough ? Pgtt.PassThrough : Pgtt.SecondStage;
    cfg.aw = ctxAw(ce);
    cfg.ssLevels = ctxLevels(ce);
    cfg.ssRoot = ctxTableBase(ce);
    return true;
  }

  /** Syncs all of `s`; a space without a shadow hears UNMAP of its notifiers' windows. */
  private syncWhole(s: ShadowSpace): void {
    if (!s.shadowing) {
      s.unmapRange(null, 0);
      return;
    }
    this.syncResolved(s, this.resolve(s), 0, IOVA_SPACE_END);
  }

  /** Syncs a shadowing space whose config `resolve` just tried to put in `this.cfg`. */
  private syncResolved(s: ShadowSpace, resolved: boolean, start: number, end: number): void {
    if (!this.u.dmarEnabled) return;
    if (!resolved || !walkable(this.cfg)) s.unmapAll();
    else s.sync(this.walker!, this.cfg, start, end);
  }

  /**
   * Runs `f` on each space whose current entry has domain `did` (or whose
   * shadow came from it), with `this.cfg` resolved; `pasid` given: only the
   * spaces of that PASID.
   */
  private forDomain(did: number, pasid: number | null, f: (s: ShadowSpace, resolved: boolean) => void): void {
    for (const s of this.registered) {
      if (pasid !== null && s.pasid !== pasid && !(s.pasid === NO_PASID && pasid === RID_PASID)) continue;
      const resolved = this.resolve(s);
      if ((resolved && this.cfg.did === did) || s.shadowDid === did) f(s, resolved);
    }
  }

  /** A range sync of a space `forDomain` resolved, or UNMAP of the range without a shadow. */
  private rangeOf(s: ShadowSpace, resolved: boolean, addr: number, am: number): void {
    const size = PAGE_4K * 2 ** am;
    const start = addr - (addr % size);
    if (s.shadowing) this.syncResolved(s, resolved, start, start + size);
    else s.unmapRange(start, start + size);
  }

  /** A whole sync of a space `forDomain` resolved. */
  private wholeOf(s: ShadowSpace, resolved: boolean): void {
    if (s.shadowing) this.syncResolved(s, resolved, 0, IOVA_SPACE_END);
    else s.unmapRange(null, 0);
  }

  iotlbInvalidated(inv: IotlbInvalidation): void {
    if (inv.kind === 'global') {
      for (const s of this.registered) this.syncWhole(s);
    } else if (inv.kind === 'domain') {
      this.forDomain(inv.did, null, (s, r) => this.wholeOf(s, r));
    } else {
      this.forDomain(inv.did, null, (s, r) => this.rangeOf(s, r, inv.addr, inv.am));
    }
  }

  pasidIotlbInvalidated(inv: PasidIotlbInvalidation): void {
    if (inv.kind === 'pasid') this.forDomain(inv.did, inv.pasid, (s, r) => this.wholeOf(s, r));
    else this.forDomain(inv.did, inv.pasid, (s, r) => this.rangeOf(s, r, inv.addr, inv.am));
  }

  pasidCacheInvalidated(inv: PasidCacheInvalidation): void {
    if (inv.kind === 'global') {
      for (const s of this.registered) this.syncWhole(s);
    } else {
      this.forDomain(inv.did, inv.kind === 'pasid' ? inv.pasid : null, (s, r) => this.wholeOf(s, r));
    }
  }

  contextInvalidated(inv: ContextInvalidation): void {
    if (inv.kind === 'device') {
      const ignore = FM_DEVFN_MASK[inv.fm & 3]!;
      const bus = (inv.sid >>> BUS_SHIFT) & BYTE;
      const devfn = inv.sid & BYTE & ~ignore;
      for (const s of this.registered) {
        if (s.requester.busNumber() === bus && (s.requester.devfn & ~ignore) === devfn) this.syncWhole(s);
      }
      return;
    }
    const spaces = this.registered;
    for (const s of spaces) s.unmapAll();
    for (const s of spaces) this.syncWhole(s);
  }

  /**
   * The unit flushed its caches for GCMD.TE, SRTP or reset: every space is
   * unmapped, and when translation just went on, synced.
   */
  cachesReset(): void {
    const on = this.u.dmarEnabled;
    const replay = on && !this.wasEnabled;
    this.wasEnabled = on;
    if (!this.active) return;
    const spaces = this.registered;
    for (const s of spaces) s.unmapAll();
    if (replay) for (const s of spaces) this.syncWhole(s);
  }

  /**
   * A device-TLB invalidation for `sid` (descriptor 3: `pasid` NO_PASID;
   * 8: a PASID or ALL_PASIDS) of [addr, addr + size): DEVIOTLB_UNMAP.
   */
  deviceTlbInvalidated(sid: number, pasid: number, addr: number, size: number): void {
    for (const s of this.registered) {
      if ((s.list.flags & IommuNotifierFlag.DevIotlbUnmap) === 0 || sourceId(s.requester) !== sid) continue;
      const covered = pasid === ALL_PASIDS ? s.pasid !== NO_PASID : s.pasid === pasid;
      if (covered) s.devIotlbUnmap(addr, size);
    }
  }
}
