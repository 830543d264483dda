/**
 * The resolve stage of DMA translation: (source ID, PASID) to a translation
 * config (domain, PGTT, first- and second-stage roots and levels, FPD) or a
 * fault reason.  Legacy mode reads the root and 128-bit context entry
 * (root-context.ts); scalable mode the root halves, the 256-bit context entry
 * and the PASID directory and table (scalable-context.ts).
 *
 * The context entry is cached per requester, as QEMU caches it in each
 * device's address space: a `ContextCacheEntry` is valid while its
 * generation equals the unit's (a global or domain context invalidation
 * bumps the unit's; a device-selective one clears the entry's).  PASID
 * entries are re-read on every resolve (QEMU 11.1 keeps none on this path).
 *
 * A legacy context entry becomes a config with PGTT second stage (TT 0 and
 * 1) or pass-through (TT 2), so the walk stage never needs to know the mode.
 */
import type { AddressSpace, FlatRange } from '../../memory/address-space.js';
import type { ChunkedRam } from '../../memory/ram.js';
import type { Tracer } from '../../machine/device-type.js';
import { Trace } from './events.js';
import { isQualifiedFault } from './fault-reasons.js';
import {
  ctxAw,
  ctxDid,
  ctxFpd,
  ctxLevels,
  ctxTableBase,
  ctxType,
  lookupContext,
  newContextEntry,
  TranslationType,
  type ContextEntry,
  type ContextRules,
} from './root-context.js';
import {
  copyPasidConfig,
  lookupScalableContext,
  newPasidConfig,
  pasidEntriesRam,
  newScalableContext,
  Pgtt,
  resolvePasid,
  smCtxFpd,
  type PasidConfig,
  type ScalableContext,
  type ScalableRules,
} from './scalable-context.js';

/** What a request resolves to (the same record in both modes; see PasidConfig). */
export type TranslationConfig = PasidConfig;

/** A fresh translation config. */
export const newTranslationConfig: () => TranslationConfig = newPasidConfig;

const BYTE = 0xff;
const BUS_SHIFT = 8;

/** What the resolve stage reads from its unit. */
export interface ResolveUnit {
  readonly memory: AddressSpace;
  readonly tracer: Tracer;
  readonly ctxRules: ContextRules;
  readonly smRules: ScalableRules;
  /** Root table latched by SRTP. */
  readonly rootTable: number;
  /** RTADDR.SMT latched by SRTP (scalable-mode root table). */
  readonly scalable: boolean;
  /** The unit's context-cache generation. */
  readonly contextGeneration: number;
}

/**
 * One requester's cached context entry (QEMU's per-address-space context
 * cache), and a memo of its last successful PASID resolution.  The memo is
 * not a PASID cache: QEMU re-reads the PASID directory and table entry on
 * every IOTLB miss, so an edited entry takes effect at the next miss.  The
 * memo gives exactly that: it is used only while no guest RAM was written
 * and the memory map did not change since the entries were read from RAM,
 * i.e. while re-reading them would give the same bytes.
 */
export class ContextCacheEntry {
  /** Generation the entry was read at (0: invalid). */
  gen = 0;
  private memoPasid = -1;
  private memoWrites = -1;
  /** The RAM the memoized entries came from. */
  private memoRam: ChunkedRam | null = null;
  private memoView: readonly FlatRange[] | null = null;
  private readonly memo: TranslationConfig = newPasidConfig();
  /** Whether the cached entry is a scalable-mode one. */
  scalable = false;
  readonly legacy: ContextEntry = newContextEntry();
  readonly sm: ScalableContext = newScalableContext();

  /** Drops the entry (device-selective context invalidation). */
  invalidate(): void {
    this.gen = 0;
    this.memoPasid = -1;
  }

  /** Fills `out` from the memo when it still holds what resolving `pasid` from memory would give. */
  recall(mem: AddressSpace, pasid: number, out: TranslationConfig): boolean {
    if (this.memoPasid !== pasid || this.memoWrites !== this.memoRam!.writes || this.memoView !== mem.flatView()) return false;
    copyPasidConfig(this.memo, out);
    return true;
  }

  /** Remembers a successful resolution of `pasid` whose entries came from RAM. */
  remember(mem: AddressSpace, pasid: number, cfg: TranslationConfig): void {
    const ram = pasidEntriesRam();
    if (ram === null) {
      this.memoPasid = -1;
      return;
    }
    copyPasidConfig(cfg, this.memo);
    this.memoPasid = pasid;
    this.memoRam = ram;
    this.memoWrites = ram.writes;
    this.memoView = mem.flatView();
  }

  /** True while the entry is valid for the unit. */
  valid(u: ResolveUnit): boolean {
    return this.gen !== 0 && this.gen === u.contextGeneration && this.scalable === u.scalable;
  }
}

/** Sets the fault fields of `out` and returns `reason`. */
function fault(out: TranslationConfig, reason: number, fpd: boolean): number {
  out.fpd = fpd;
  out.suppressed = fpd && isQualifiedFault(reason);
  return reason;
}

/** Fills `out` from a valid legacy context entry. */
function fromLegacy(ce: ContextEntry, out: TranslationConfig): void {
  out.pasid = 0;
  out.did = ctxDid(ce);
  out.pgtt = ctxType(ce) === TranslationType.PassThrough ? Pgtt.PassThrough : Pgtt.SecondStage;
  out.aw = ctxAw(ce);
  out.ssLevels = ctxLevels(ce);
  out.ssRoot = ctxTableBase(ce);
  out.fsLevels = 0;
  out.fsRoot = 0;
  out.sre = out.wpe = out.eafe = out.pre = false;
  out.fpd = ctxFpd(ce);
  out.suppressed = false;
  out.peRead = false;
}

/**
 * Resolves a request from `sid` with `pasid` (0 for requests without a
 * PASID in scalable mode; ignored in legacy mode) through `cc`, the
 * requester's context cache.  Returns 0 with `out` filled, or a fault reason
 * with out.fpd / out.suppressed set.
 */
export function resolveRequest(u: ResolveUnit, cc: ContextCacheEntry, sid: number, pasid: number, out: TranslationConfig): number {
  const bus = sid >>> BUS_SHIFT;
  const devfn = sid & BYTE;
  if (!cc.valid(u)) {
    cc.invalidate();
    cc.scalable = u.scalable;
    const r = u.scalable
      ? lookupScalableContext(u.memory, u.rootTable, bus, devfn, u.smRules, cc.sm)
      : lookupContext(u.memory, u.rootTable, bus, devfn, u.ctxRules, cc.legacy);
    if (r !== 0) {
      const read = u.scalable ? cc.sm.read : cc.legacy.read;
      const fpd = read && (u.scalable ? smCtxFpd(cc.sm) : ctxFpd(cc.legacy));
      out.pasid = pasid;
      out.peRead = false;
      return fault(out, r, fpd);
    }
    if (u.tracer.enabled(Trace.ccUpdate)) {
      const lo = u.scalable ? cc.sm.val0.lo : cc.legacy.lo.lo;
      const hi = u.scalable ? cc.sm.val1.lo : cc.legacy.hi.lo;
      u.tracer.trace(Trace.ccUpdate, { bus, devfn, hi, lo });
    }
    cc.gen = u.contextGeneration;
  }
  if (u.scalable) {
    if (cc.recall(u.memory, pasid, out)) return 0;
    const r = resolvePasid(u.memory, cc.sm, pasid, u.smRules, out);
    if (r === 0) cc.remember(u.memory, pasid, out);
    return r;
  }
  fromLegacy(cc.legacy, out);
  return 0;
}
