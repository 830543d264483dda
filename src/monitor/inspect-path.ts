/**
 * The inspector's translation-path view: for one requester (source ID),
 * PASID and IOVA, every structure entry a translation goes through, read
 * from guest memory and decoded field by field, and the outcome.
 *
 *   legacy    root entry (bus) -> context entry (devfn) -> second-stage tables
 *   scalable  root entry (bus; lower/upper half) -> 256-bit context entry
 *             -> PASID directory entry -> PASID table entry -> first-stage,
 *             second-stage or nested tables (PGTT)
 *
 * The outcome is the unit's own: resolve.ts (resolveRequest, with a fresh
 * context-cache entry, i.e. what memory says now) and walk-stage.ts
 * (walkTranslation) run on a read-only view of guest memory
 * (inspect-common.ts), so the fault reason is exactly the one a DMA would
 * get on an IOTLB miss; the decoding here only follows the pointers to show
 * the entries.  Reserved bits are reported with the unit's own masks (the
 * PASID entries have none: the model checks none there).  Next to it the
 * cached state that would answer first: an IOTLB entry for the page and the
 * requester's cached context entry, each marked stale when it disagrees
 * with memory.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { FsPte, FsPteHi, LEAF_ADDR_LO, RSVD_PS_LO } from '../hw/intel-iommu/first-stage-walk.js';
import { isQualifiedFault } from '../hw/intel-iommu/fault-reasons.js';
import type { Qword } from '../hw/intel-iommu/guest-mem.js';
import { newWalkResult, Pte, PteHi, LEVEL_SIZE, walkSecondStage } from '../hw/intel-iommu/page-walk.js';
import { ContextCacheEntry, newTranslationConfig, resolveRequest, type ResolveUnit, type TranslationConfig } from '../hw/intel-iommu/resolve.js';
import { Entry } from '../hw/intel-iommu/root-context.js';
import { PasidDir, PasidEntry, Pgtt, SmContext, SmRoot } from '../hw/intel-iommu/scalable-context.js';
import { sourceId } from '../hw/intel-iommu/translator.js';
import { walkTranslation } from '../hw/intel-iommu/walk-stage.js';
import { MSI_ADDRESS_BASE, MSI_ADDRESS_LAST } from '../core/irq.js';
import { IommuPerm, NO_PASID } from '../memory/iommu.js';
import type { AddressSpace } from '../memory/address-space.js';
import type { Tracer } from '../machine/device-type.js';
import { bdf, entryView, faultReasonName, hex64, hexShort, joinHalves, readOnlyMemory, readQwords, reservedMask, type EntryView } from './inspect-common.js';
import {
  addrOf, bit, legacyContextFields, legacyRootFields, pasidDirFields, pasidEntryFields, permText, pgttName, sizeText, smContextFields, smRootFields, tableIndex,
} from './inspect-entries.js';

/** What to inspect. */
export interface PathQuery {
  /** Source ID (bus << 8 | devfn). */
  readonly sid: number;
  /** PASID of the request, or null for a request without one. */
  readonly pasid: number | null;
  /** Input address, or null to stop after the PASID entry. */
  readonly iova: number | null;
  /** A write (default: a read). */
  readonly write?: boolean;
}

/** The translation config resolve.ts gave. */
export interface ConfigView {
  readonly did: number;
  readonly pgtt: string;
  readonly fpd: boolean;
  readonly secondStage: { readonly root: string; readonly levels: number } | null;
  readonly firstStage: { readonly root: string; readonly levels: number } | null;
}

/** One walked table hierarchy. */
export interface StageView {
  readonly name: 'second stage' | 'first stage' | 'nested first stage' | 'nested second stage (output)';
  readonly root: string;
  readonly levels: number;
  readonly entries: readonly EntryView[];
}

/** How the request ends. */
export type PathResult =
  | { readonly kind: 'translated'; readonly output: string; readonly page: string; readonly size: number; readonly perm: string }
  | { readonly kind: 'fault'; readonly reason: number; readonly name: string; readonly recorded: boolean }
  | { readonly kind: 'identity'; readonly why: string }
  | { readonly kind: 'blocked'; readonly why: string }
  | { readonly kind: 'interrupt'; readonly why: string }
  | { readonly kind: 'resolved'; readonly why: string };

/** A cached IOTLB entry for the page. */
export interface IotlbHitView {
  readonly did: number;
  readonly page: string;
  readonly size: number;
  readonly output: string;
  readonly perm: string;
  /** It disagrees with what memory translates to now. */
  readonly stale: boolean;
}

/** The whole path of one request. */
export interface PathInspection {
  readonly requester: string;
  readonly sid: number;
  readonly pasid: number | null;
  readonly iova: string | null;
  readonly access: 'read' | 'write';
  readonly mode: 'legacy' | 'scalable';
  readonly rootTable: string;
  readonly entries: readonly EntryView[];
  readonly config: ConfigView | null;
  readonly stages: readonly StageView[];
  readonly result: PathResult;
  readonly iotlb: IotlbHitView | null;
  /** The requester's cached context entry (qwords), or null; `stale` when memory holds another value. */
  readonly contextCache: { readonly raw: readonly string[]; readonly stale: boolean } | null;
}

const NO_TRACER: Tracer = { enabled: () => false, trace: () => {} };
const PTE_SIZE = 8;
/** One second-stage entry decoded; `next` is the address it points to, `stop` whether the walk ends here. */
function ssEntry(u: IntelIommu, level: number, index: number, at: number, q: readonly Qword[] | null): { view: EntryView; next: number; stop: boolean } {
  if (q === null) return { view: entryView(`L${level}`, index, at, null, {}, [], ''), next: 0, stop: true };
  const r = u.walkRules;
  const { lo, hi } = q[0]!;
  const ps = level >= 2 && bit(lo, Pte.PS);
  const large = ps && level <= 3;
  const next = joinHalves(lo & Pte.ADDR_LO, hi & r.addrHiMask);
  const present = bit(lo, Pte.R | Pte.W);
  const leaf = level === 1 || ps;
  const fields = { R: bit(lo, Pte.R), W: bit(lo, Pte.W), PS: ps, SNP: bit(lo, Pte.SNP), TM: bit(hi, PteHi.TM), ADDR: hexShort(next) };
  const reserved = [reservedMask(q[0]!, large ? r.largeLo[level]! : r.rsvdLo[level]!, large ? r.largeHi[level]! : r.rsvdHi[level]!)];
  const note = !present ? 'not present' : leaf ? `leaf ${sizeText(LEVEL_SIZE[level]!)}` : '';
  return { view: entryView(`L${level}`, index, at, q, fields, reserved, note), next, stop: !present || leaf };
}

/** One first-stage entry decoded (spec 9.7). */
function fsEntry(u: IntelIommu, level: number, index: number, at: number, q: readonly Qword[] | null, gpaNote: string): { view: EntryView; next: number; stop: boolean } {
  if (q === null) return { view: entryView(`L${level}`, index, at, null, {}, [], gpaNote), next: 0, stop: true };
  const r = u.walkStageRules.fs;
  const { lo, hi } = q[0]!;
  const ps = level >= 2 && bit(lo, FsPte.PS);
  const leaf = level === 1 || ps;
  const addrLo = leaf && level > 1 && level <= 3 ? LEAF_ADDR_LO[level]! : FsPte.ADDR_LO;
  const next = joinHalves(lo & addrLo, hi & r.addrHiMask);
  const fields = {
    P: bit(lo, FsPte.P), RW: bit(lo, FsPte.RW), US: bit(lo, FsPte.US), PWT: bit(lo, FsPte.PWT), PCD: bit(lo, FsPte.PCD),
    A: bit(lo, FsPte.A), D: bit(lo, FsPte.D), PS: ps, G: bit(lo, FsPte.G), XD: bit(hi, FsPteHi.XD), ADDR: hexShort(next),
  };
  const reserved = [reservedMask(q[0]!, ps ? RSVD_PS_LO[level]! : 0, r.rsvdHi)];
  const present = bit(lo, FsPte.P);
  const note = [gpaNote, !present ? 'not present' : leaf ? `leaf ${sizeText(LEVEL_SIZE[level]!)}` : ''].filter((s) => s).join(', ');
  return { view: entryView(`L${level}`, index, at, q, fields, reserved, note), next, stop: !present || leaf };
}

/** The second-stage tables from `root` for `addr`; returns the stage and the leaf output (or null). */
function walkSsView(u: IntelIommu, mem: AddressSpace, name: StageView['name'], root: number, levels: number, addr: number): StageView {
  const entries: EntryView[] = [];
  let table = root;
  for (let level = levels; level >= 1; level--) {
    const index = tableIndex(addr, level);
    const at = table + index * PTE_SIZE;
    const e = ssEntry(u, level, index, at, readQwords(mem, at, 1));
    entries.push(e.view);
    if (e.stop) break;
    table = e.next;
  }
  return { name, root: hex64(root), levels, entries };
}

/**
 * The first-stage tables from `root` for `iova`; with `nested` each table
 * address is a guest-physical one, shown with the host address the second
 * stage (the unit's walkSecondStage) gives it.  Returns the stage and the
 * leaf's output address for `iova` (null when no leaf was reached).
 */
function walkFsView(u: IntelIommu, mem: AddressSpace, cfg: TranslationConfig, iova: number, nested: boolean): { stage: StageView; output: number | null } {
  const entries: EntryView[] = [];
  const ss = newWalkResult();
  let table = cfg.fsRoot;
  let output: number | null = null;
  for (let level = cfg.fsLevels; level >= 1; level--) {
    const index = tableIndex(iova, level);
    const gpa = table + index * PTE_SIZE;
    let at = gpa;
    let gpaNote = '';
    if (nested) {
      const r = walkSecondStage(mem, u.walkRules, cfg.ssRoot, cfg.ssLevels, 30 + 9 * cfg.aw, gpa, false, ss);
      if (r !== 0) {
        entries.push({ ...entryView(`L${level}`, index, gpa, null, {}, [], ''), note: `gpa not mapped by the second stage (${faultReasonName(r)})` });
        break;
      }
      at = ss.translated + (gpa % LEVEL_SIZE[ss.level]!);
      gpaNote = `gpa ${hexShort(gpa)}`;
    }
    const e = fsEntry(u, level, index, at, readQwords(mem, at, 1), gpaNote);
    entries.push(e.view);
    if (e.stop) {
      if (e.view.readable && e.view.fields['P'] === true) output = e.next + (iova % LEVEL_SIZE[level]!);
      break;
    }
    table = e.next;
  }
  return { stage: { name: nested ? 'nested first stage' : 'first stage', root: hex64(cfg.fsRoot), levels: cfg.fsLevels, entries }, output };
}

/** The root, context and (scalable) PASID entries of the request, decoded; stops at the first one not present. */
function structureEntries(u: IntelIommu, mem: AddressSpace, sid: number, pasid: number): EntryView[] {
  const haw = u.walkRules.hawHiMask;
  const bus = sid >>> 8;
  const devfn = sid & 0xff;
  const out: EntryView[] = [];
  const rootAt = u.rootTable + bus * 16;
  const root = readQwords(mem, rootAt, 2);
  if (!u.scalable) {
    const rf = root && legacyRootFields(root, haw);
    out.push(entryView('root', bus, rootAt, root, rf?.fields ?? {}, rf?.reserved ?? [], rf && !rf.fields.P ? 'not present' : ''));
    if (!root || !rf!.fields.P) return out;
    const at = addrOf(root[0]!, Entry.ADDR_LO) + devfn * 16;
    const ce = readQwords(mem, at, 2);
    const cf = ce && legacyContextFields(ce, haw);
    out.push(entryView('context', devfn, at, ce, cf?.fields ?? {}, cf?.reserved ?? [], cf && !cf.fields.P ? 'not present' : ''));
    return out;
  }
  const upper = devfn >= SmRoot.UPPER_DEVFN;
  const rf = root && smRootFields(root, haw);
  const present = rf !== null && rf.fields[upper ? 'UP' : 'LP'] === true;
  out.push(entryView('root', bus, rootAt, root, rf?.fields ?? {}, rf?.reserved ?? [], rf ? `${upper ? 'upper' : 'lower'} half${present ? '' : ' not present'}` : ''));
  if (!root || !present) return out;
  const ctxAt = addrOf(root[upper ? 1 : 0]!, SmRoot.ADDR_LO) + (devfn & SmContext.INDEX_MASK) * SmContext.SIZE;
  const ce = readQwords(mem, ctxAt, 4);
  const cf = ce && smContextFields(ce, haw);
  out.push(entryView('context', devfn & SmContext.INDEX_MASK, ctxAt, ce, cf?.fields ?? {}, cf?.reserved ?? [], cf && !cf.fields.P ? 'not present' : ''));
  if (!ce || !cf!.fields.P) return out;
  const dirIndex = (pasid >>> PasidDir.INDEX_SHIFT) & PasidDir.INDEX_MASK;
  const dirAt = addrOf(ce[0]!, SmContext.ADDR_LO) + dirIndex * PasidDir.SIZE;
  const de = readQwords(mem, dirAt, 1);
  const df = de && pasidDirFields(de);
  out.push(entryView('pasid-dir', dirIndex, dirAt, de, df ?? {}, [], df && !df.P ? 'not present' : ''));
  if (!de || !df!.P) return out;
  const peIndex = pasid & PasidEntry.INDEX_MASK;
  const peAt = addrOf(de[0]!, PasidDir.ADDR_LO) + peIndex * PasidEntry.SIZE;
  const pe = readQwords(mem, peAt, 8);
  const pf = pe && pasidEntryFields(pe);
  out.push(entryView('pasid', peIndex, peAt, pe, pf ?? {}, [], pf && !pf.P ? 'not present' : `pasid ${pasid}`));
  return out;
}

function configView(cfg: TranslationConfig, scalable: boolean): ConfigView {
  const pgtt = scalable ? pgttName(cfg.pgtt) : cfg.pgtt === Pgtt.PassThrough ? 'pass-through' : 'second-stage';
  const ss = cfg.pgtt === Pgtt.SecondStage || cfg.pgtt === Pgtt.Nested;
  const fs = cfg.pgtt === Pgtt.FirstStage || cfg.pgtt === Pgtt.Nested;
  return {
    did: cfg.did,
    pgtt,
    fpd: cfg.fpd,
    secondStage: ss ? { root: hex64(cfg.ssRoot), levels: cfg.ssLevels } : null,
    firstStage: fs ? { root: hex64(cfg.fsRoot), levels: cfg.fsLevels } : null,
  };
}

/** Inspects the path of one request on unit `u`. */
export function inspectPath(u: IntelIommu, q: PathQuery): PathInspection {
  const mem = readOnlyMemory(u.memory);
  const sid = q.sid & 0xffff;
  const isWrite = q.write === true;
  const resolvePasid = q.pasid ?? 0;
  const base = {
    requester: bdf(sid),
    sid,
    pasid: q.pasid,
    iova: q.iova === null ? null : hex64(q.iova),
    access: isWrite ? ('write' as const) : ('read' as const),
    mode: u.scalable ? ('scalable' as const) : ('legacy' as const),
    rootTable: hex64(u.rootTable),
  };
  const entries = u.dmarEnabled ? structureEntries(u, mem, sid, resolvePasid) : [];
  const stages: StageView[] = [];
  const done = (result: PathResult, config: ConfigView | null = null, iotlb: IotlbHitView | null = null): PathInspection => ({
    ...base, entries, config, stages, result, iotlb, contextCache: cachedContext(u, sid, mem),
  });
  if (!u.dmarEnabled) return done({ kind: 'identity', why: 'translation off (GSTS.TES clear): addresses pass 1:1' });
  if (q.pasid !== null && !u.scalable) return done({ kind: 'blocked', why: 'legacy mode: a request with a PASID is blocked without a fault record' });
  if (q.pasid === null && q.iova !== null && q.iova >= MSI_ADDRESS_BASE && q.iova <= MSI_ADDRESS_LAST) {
    return done({ kind: 'interrupt', why: 'interrupt window 0xfee00000-0xfeefffff: writes are interrupt requests (see -i)' });
  }
  if (q.pasid === null && u.passThrough.isPassThrough(sid)) return done({ kind: 'identity', why: 'pass-through: the address space bypasses the unit' });
  const unit: ResolveUnit = {
    memory: mem, tracer: NO_TRACER, ctxRules: u.ctxRules, smRules: u.smRules, rootTable: u.rootTable, scalable: u.scalable, contextGeneration: 1,
  };
  const cfg = newTranslationConfig();
  const r = resolveRequest(unit, new ContextCacheEntry(), sid, resolvePasid, cfg);
  if (r !== 0) return done({ kind: 'fault', reason: r, name: faultReasonName(r), recorded: !cfg.suppressed });
  const config = configView(cfg, u.scalable);
  if (cfg.pgtt === Pgtt.PassThrough) return done({ kind: 'identity', why: 'pass-through translation type: addresses pass 1:1' }, config);
  if (q.iova === null) return done({ kind: 'resolved', why: 'no IOVA given: tables not walked' }, config);
  const iova = q.iova;
  if (cfg.pgtt === Pgtt.FirstStage || cfg.pgtt === Pgtt.Nested) {
    const nested = cfg.pgtt === Pgtt.Nested;
    const fs = walkFsView(u, mem, cfg, iova, nested);
    stages.push(fs.stage);
    if (nested && fs.output !== null) stages.push(walkSsView(u, mem, 'nested second stage (output)', cfg.ssRoot, cfg.ssLevels, fs.output));
  } else {
    stages.push(walkSsView(u, mem, 'second stage', cfg.ssRoot, cfg.ssLevels, iova));
  }
  const w = newWalkResult();
  const wr = walkTranslation(mem, u.walkStageRules, cfg, u.config.scalableMode, iova, isWrite, w);
  const tag = u.scalable ? resolvePasid : NO_PASID;
  const hit = u.iotlb.lookup(sid, tag, iova);
  const size = LEVEL_SIZE[w.level] ?? 0;
  const page = wr === 0 ? iova - (iova % size) : 0;
  const iotlb: IotlbHitView | null = hit
    ? { did: hit.did, page: hex64(hit.iova), size: hit.size, output: hex64(hit.translated), perm: permText(hit.perm), stale: iotlbStale(u, mem, cfg, iova, hit) }
    : null;
  if (wr !== 0) {
    return done({ kind: 'fault', reason: wr, name: faultReasonName(wr), recorded: !(cfg.fpd && isQualifiedFault(wr)) }, config, iotlb);
  }
  return done({ kind: 'translated', output: hex64(w.translated + (iova - page)), page: hex64(w.translated), size, perm: permText(w.perm) }, config, iotlb);
}

/**
 * Whether a cached IOTLB entry disagrees with memory: the walk with an access
 * the entry allows (a read, or a write for a write-only entry) gives another
 * output or other permissions, or faults.
 */
function iotlbStale(u: IntelIommu, mem: AddressSpace, cfg: TranslationConfig, iova: number, hit: { iova: number; translated: number; perm: number }): boolean {
  const w = newWalkResult();
  const r = walkTranslation(mem, u.walkStageRules, cfg, u.config.scalableMode, iova, (hit.perm & IommuPerm.Read) === 0, w);
  if (r !== 0) return true;
  const size = LEVEL_SIZE[w.level]!;
  return hit.translated + (iova - hit.iova) !== w.translated + (iova % size) || hit.perm !== w.perm;
}

/** The cached context entry of the requester's address space without a PASID, compared with memory. */
function cachedContext(u: IntelIommu, sid: number, mem: AddressSpace): PathInspection['contextCache'] {
  for (const t of u.translators()) {
    if (sourceId(t.requester) !== sid) continue;
    const cc = t.cachedContext();
    if (!cc) continue;
    const qs = cc.scalable ? [cc.sm.val0, cc.sm.val1, cc.sm.val2, cc.sm.val3] : [cc.legacy.lo, cc.legacy.hi];
    const raw = qs.map((x) => x.hi.toString(16).padStart(8, '0') + x.lo.toString(16).padStart(8, '0'));
    const now = structureEntries(u, mem, sid, 0).find((e) => e.kind === 'context');
    const stale = !now || now.raw.join() !== raw.join();
    return { raw, stale };
  }
  return null;
}
