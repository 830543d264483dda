/**
 * The invalidation sanitizer's view of a translation's sources: the guest
 * memory a cached entry is built from (sanitizer.ts).  For one request
 * (source ID, PASID, address) the inspector's path walk (inspect-path.ts,
 * the unit's own resolve and walk rules on a read-only view of memory) gives
 * every structure entry on the way: root entry, context entry, PASID
 * directory and table entries, and the page-table entries down to the leaf.
 * Each becomes a `Source`: its kind, guest-physical address and qwords.
 *
 * Bits the unit itself writes are masked out before comparing: the Accessed
 * and Dirty flags of paging entries (first stage: bits 5 and 6; second stage
 * with ECAP.SSADS: bits 8 and 9).  A change there is not a change of the
 * translation and needs no invalidation.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { inspectPath, type PathInspection } from './inspect-path.js';
import { readQwords, type EntryView } from './inspect-common.js';

/** Which cache a source feeds (the kinds a cached translation is made of). */
export type SourceKind = 'root' | 'context' | 'pasid-dir' | 'pasid' | 'pte' | 'irte';

/** One structure entry a translation was built from. */
export interface Source {
  readonly kind: SourceKind;
  /** `L4`..`L1` for page-table entries, else the kind. */
  readonly label: string;
  /** Paging level (page-table entries), else 0. */
  readonly level: number;
  /** A leaf paging entry (or any entry that ends the walk). */
  readonly leaf: boolean;
  /** First-stage paging entry. */
  readonly firstStage: boolean;
  readonly gpa: number;
  /** The entry's qwords as read. */
  readonly raw: readonly bigint[];
  /** The qwords compared (bits the unit writes itself cleared). */
  readonly cmp: readonly bigint[];
}

/** What a request's walk gives now. */
export interface Chain {
  readonly sources: readonly Source[];
  /** Domain ID of the translation (legacy context entry or PASID entry), or -1. */
  readonly did: number;
  /** First-stage (or nested) translation type. */
  readonly firstStage: boolean;
  /** Pass-through translation type. */
  readonly passThrough: boolean;
  /** The translated page: input base and size; output base (0 without a translation). */
  readonly page: number;
  readonly size: number;
  readonly output: number;
}

const PAGE_4K = 4096;
/** Accessed and dirty flags: first-stage bits 5-6, second-stage bits 8-9. */
const FS_AD = (1n << 5n) | (1n << 6n);
const SS_AD = (1n << 8n) | (1n << 9n);

function kindOf(view: EntryView): { kind: SourceKind; level: number } {
  const m = /^L(\d)$/.exec(view.kind);
  if (m) return { kind: 'pte', level: Number(m[1]) };
  return { kind: view.kind as SourceKind, level: 0 };
}

function sourceOf(view: EntryView, firstStage: boolean): Source | null {
  if (!view.readable) return null;
  const { kind, level } = kindOf(view);
  const raw = view.raw.map((h) => BigInt(`0x${h}`));
  const mask = kind !== 'pte' ? 0n : firstStage ? FS_AD : SS_AD;
  const cmp = mask === 0n ? raw : raw.map((q, i) => (i === 0 ? q & ~mask : q));
  const leaf = kind === 'pte' && view.note.startsWith('leaf');
  return { kind, label: view.kind, level, leaf, firstStage: kind === 'pte' && firstStage, gpa: Number(view.addr), raw, cmp };
}

/** The sources of a request on unit `u` (PASID null: a request without one). */
export function chainOf(u: IntelIommu, sid: number, pasid: number | null, iova: number): Chain {
  const p: PathInspection = inspectPath(u, { sid, pasid, iova });
  const fs = p.config !== null && /first|nested/.test(p.config.pgtt);
  const sources: Source[] = [];
  for (const e of p.entries) {
    const s = sourceOf(e, false);
    if (s) sources.push(s);
  }
  for (const st of p.stages) {
    // The output stage of a nested walk is second-stage; the rest follow the config.
    const stageFs = st.name === 'first stage' || st.name === 'nested first stage';
    for (const e of st.entries) {
      const s = sourceOf(e, stageFs);
      if (s) sources.push(s);
    }
  }
  let did = p.config?.did ?? -1;
  if (did < 0) {
    const ctx = p.entries.find((e) => e.kind === 'context');
    if (ctx && typeof ctx.fields['DID'] === 'number') did = ctx.fields['DID'];
  }
  const r = p.result;
  const translated = r.kind === 'translated';
  const size = translated ? r.size : PAGE_4K;
  return {
    sources,
    did,
    firstStage: fs,
    passThrough: p.config?.pgtt === 'pass-through' || r.kind === 'identity',
    page: iova - (iova % size),
    size,
    output: translated ? Number(r.page) : 0,
  };
}

/** The interrupt remapping table entry at `gpa` as a source (null: not RAM). */
export function irteSource(u: IntelIommu, gpa: number): Source | null {
  const q = readQwords(u.memory, gpa, 2);
  if (q === null) return null;
  const raw = q.map((x) => (BigInt(x.hi) << 32n) | BigInt(x.lo));
  return { kind: 'irte', label: 'irte', level: 0, leaf: true, firstStage: false, gpa, raw, cmp: raw };
}

/** Whether two sources hold the same entry (same place, same compared bits). */
export function sameSource(a: Source, b: Source): boolean {
  return a.gpa === b.gpa && a.cmp.length === b.cmp.length && a.cmp.every((q, i) => q === b.cmp[i]);
}
