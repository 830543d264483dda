/**
 * The invalidation sanitizer of one VT-d unit (`-device
 * intel-iommu,x-sanitize=on`): reports, at the moment of use, a DMA, ATS
 * request or interrupt that may be served by a cached entry whose source in
 * guest memory changed without the invalidation the VT-d spec requires.
 *
 * It keeps its own ledger of what a conforming implementation may hold in
 * each cache (sanitizer-coverage.ts), independent of what this model happens
 * to cache: each use puts the entries it went through into the ledger with
 * the values read (sanitizer-chain.ts), each invalidation drops what it
 * covers, and setting the root table or switching translation (or interrupt
 * remapping) empties the caches concerned.  At a use, an entry still in the
 * ledger whose source now reads differently is a stale use: one report
 * naming the device, PASID, address, the structure and its guest-physical
 * address, the old and new values, and the invalidation that would have
 * covered the change; the ledger then takes the new values (one report per
 * change).  An invalidation is never reported, needed or not.
 *
 * With CAP.CM=1 the spec also requires an invalidation after a not-present
 * entry becomes present (the hardware may cache not-present entries; a
 * hypervisor shadowing the tables relies on it): at the first use of an
 * entry, a write to it since the last invalidation covering it is reported
 * ('caching-mode').  First-stage paging entries are exempt, as the spec
 * exempts them (Linux flushes them on map only for second-stage domains).
 * Interrupt remapping entries follow the plain rule.
 *
 * Reports go to the unit's 'sanitizer' event, the `vtd_sanitizer_report`
 * trace event, `reports` (QMP x-vtemu-query-sanitizer) and `summary()` (the
 * CLI prints it at exit).  Off by default; when off nothing is attached and
 * nothing costs anything.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import type { InterruptRemapEvent, InvalidateEvent, RegisterWriteEvent, SanitizerReport, TranslateEvent } from '../hw/intel-iommu/events.js';
import { Reg } from '../hw/intel-iommu/reg-layout.js';
import type { ChunkedRam } from '../memory/ram.js';
import { bdf, hex64 } from './inspect-common.js';
import { chainOf, irteSource, sameSource, type Source } from './sanitizer-chain.js';
import { covers, required, sourcesFor, type CacheKind, type CacheTags } from './sanitizer-coverage.js';
import { WriteHistory } from './sanitizer-history.js';

/** Reports kept for queries (the count goes on beyond). */
const KEPT_REPORTS = 10_000;
/** Invalidations remembered for the caching-mode rule. */
const KEPT_INVALIDATIONS = 4096;
const GCMD_SRTP = 1 << 30;
const GCMD_SIRTP = 1 << 24;
const PAGE_SIZES = [4096, 2 ** 21, 2 ** 30] as const;

/** One cached entry in the ledger. */
interface Held {
  tags: CacheTags;
  sources: readonly Source[];
  /** The translated page (device-TLB entries). */
  output: number;
}

/** What a use was. */
interface Use {
  readonly kind: SanitizerReport['use'];
  readonly sid: number;
  readonly pasid: number | null;
  readonly address: number;
}

const hexes = (s: Source | undefined): string[] => (s ? s.raw.map((q) => hex64(q)) : []);

function keyOf(t: CacheTags): string {
  switch (t.cache) {
    case 'context':
      return `c:${t.sid}`;
    case 'pasid':
      return `p:${t.sid}:${t.tagPasid}`;
    case 'iotlb':
      return `t:${t.sid}:${t.tagPasid}:${t.page}`;
    case 'device-tlb':
      return `d:${t.sid}:${t.pasid ?? -1}:${t.page}`;
    case 'iec':
      return `i:${t.index}`;
  }
}

/** The first entry where two walks differ, or null when they agree. */
function firstDifference(old: readonly Source[], now: readonly Source[]): { old: Source | undefined; now: Source | undefined } | null {
  for (let i = 0; i < Math.max(old.length, now.length); i++) {
    const a = old[i];
    const b = now[i];
    if (a === undefined || b === undefined || !sameSource(a, b)) return { old: a, now: b };
  }
  return null;
}

/** The sanitizer attached to one unit. */
export class Sanitizer {
  /** Reports so far (the first KEPT_REPORTS). */
  readonly reports: SanitizerReport[] = [];
  private count = 0;
  private seq = 0;
  private readonly ledger = new Map<string, Held>();
  private readonly invalidations: { seq: number; ev: InvalidateEvent }[] = [];
  private readonly history = new WriteHistory(() => ++this.seq);
  /** Sequence number of the last event that emptied the DMA caches (root table set, translation switched). */
  private dmaReset = 0;
  private te: boolean;
  private ire: boolean;
  /** The unit events it follows. */
  private readonly handlers = {
    translate: (e: TranslateEvent): void => this.onTranslate(e),
    invalidate: (e: InvalidateEvent): void => this.onInvalidate(e),
    interruptRemap: (e: InterruptRemapEvent): void => this.onInterrupt(e),
    registerWrite: (e: RegisterWriteEvent): void => this.onRegisterWrite(e),
    reset: (): void => this.onReset(),
  };

  constructor(
    readonly unit: IntelIommu,
    rams: readonly ChunkedRam[] = [],
  ) {
    for (const ram of rams) this.history.watch(ram);
    this.te = unit.dmarEnabled;
    this.ire = unit.irEnabled();
    this.listen('on');
  }

  /** Detaches from the unit and its RAM. */
  close(): void {
    this.listen('off');
    this.history.close();
  }

  private listen(how: 'on' | 'off'): void {
    const ev = this.unit.events;
    const h = this.handlers;
    ev[how]('translate', h.translate);
    ev[how]('invalidate', h.invalidate);
    ev[how]('interruptRemap', h.interruptRemap);
    ev[how]('registerWrite', h.registerWrite);
    ev[how]('reset', h.reset);
  }

  /** Reports made so far (beyond the kept ones too). */
  get total(): number {
    return this.count;
  }

  /** The exit summary: a count line, then one line per distinct missing invalidation. */
  summary(): string[] {
    const lines = [`intel-iommu sanitizer: ${this.count} report${this.count === 1 ? '' : 's'}`];
    const groups = new Map<string, number>();
    for (const r of this.reports) {
      const k = `${r.device} ${r.cache}: ${r.structure.kind} changed without ${r.required.descriptor} (type ${r.required.type})`;
      groups.set(k, (groups.get(k) ?? 0) + 1);
    }
    for (const [k, n] of groups) lines.push(`  ${n} x ${k}`);
    return lines;
  }

  private onRegisterWrite(e: RegisterWriteEvent): void {
    if (e.offset !== Reg.GCMD) return;
    const value = Number(e.value & 0xffff_ffffn);
    const te = this.unit.dmarEnabled;
    const ire = this.unit.irEnabled();
    if ((value & GCMD_SRTP) !== 0 || te !== this.te) {
      this.drop((h) => h.tags.cache !== 'iec');
      this.dmaReset = ++this.seq;
    }
    if ((value & GCMD_SIRTP) !== 0 || ire !== this.ire) this.drop((h) => h.tags.cache === 'iec');
    this.te = te;
    this.ire = ire;
  }

  /** Reset or snapshot load: every cache is empty. */
  private onReset(): void {
    this.ledger.clear();
    this.dmaReset = ++this.seq;
    this.te = this.unit.dmarEnabled;
    this.ire = this.unit.irEnabled();
  }

  private onInvalidate(ev: InvalidateEvent): void {
    this.drop((h) => covers(h.tags, ev));
    this.invalidations.push({ seq: ++this.seq, ev });
    if (this.invalidations.length > KEPT_INVALIDATIONS) this.invalidations.shift();
  }

  private drop(which: (h: Held) => boolean): void {
    for (const [k, h] of this.ledger) if (which(h)) this.ledger.delete(k);
  }

  private onTranslate(e: TranslateEvent): void {
    const pasid = e.pasid ?? null;
    if (e.kind === 'translated') {
      this.onTranslated(e.sid, pasid, e.iova);
      return;
    }
    const u = this.unit;
    const chain = chainOf(u, e.sid, pasid, e.iova);
    const scalable = u.scalable;
    const base: CacheTags = {
      cache: 'context', sid: e.sid, pasid, tagPasid: scalable ? (pasid ?? 0) : -1, did: chain.did,
      firstStage: chain.firstStage, page: chain.page, size: chain.size, index: -1,
    };
    const use: Use = { kind: e.kind === 'translation-request' ? 'ats-request' : 'dma', sid: e.sid, pasid, address: e.iova };
    // Scalable-mode context entries carry no DID (the PASID entry does).
    this.check({ ...base, did: scalable ? -1 : chain.did }, chain.sources, use);
    if (scalable) this.check({ ...base, cache: 'pasid' }, chain.sources, use);
    if (!e.passthrough && !chain.passThrough) this.check({ ...base, cache: 'iotlb' }, chain.sources, use, this.heldPage(base));
    if (e.kind === 'translation-request' && !chain.passThrough) {
      // The device's ATC takes the answer, replacing what it held for the page.
      const t: CacheTags = { ...base, cache: 'device-tlb' };
      this.ledger.set(keyOf(t), { tags: t, sources: chain.sources, output: chain.output });
    }
  }

  /** An IOTLB ledger entry of another page size that covers the request's address, if one is held. */
  private heldPage(t: CacheTags): CacheTags | undefined {
    for (const size of PAGE_SIZES) {
      if (size === t.size) continue;
      const page = t.page - (t.page % size);
      const h = this.ledger.get(keyOf({ ...t, cache: 'iotlb', page }));
      if (h && h.tags.size === size) return h.tags;
    }
    return undefined;
  }

  /** A request the device's ATC translated: each device-TLB entry of the requester whose output holds the address is checked. */
  private onTranslated(sid: number, pasid: number | null, addr: number): void {
    for (const h of [...this.ledger.values()]) {
      const t = h.tags;
      // A translated request names no PASID unless it carries a prefix: it may use any of the requester's entries.
      if (t.cache !== 'device-tlb' || t.sid !== sid || (pasid !== null && t.pasid !== pasid)) continue;
      if (addr < h.output || addr >= h.output + t.size) continue;
      const chain = chainOf(this.unit, sid, t.pasid, t.page);
      this.compare(h, chain.sources, { kind: 'ats-translated', sid, pasid, address: addr }, t.page);
      h.output = chain.output;
    }
  }

  private onInterrupt(e: InterruptRemapEvent): void {
    const src = irteSource(this.unit, e.irteAddr);
    if (src === null) return;
    const t: CacheTags = { cache: 'iec', sid: e.sid, pasid: null, tagPasid: -1, did: -1, firstStage: false, page: 0, size: 0, index: e.index };
    this.check(t, [src], { kind: 'interrupt', sid: e.sid, pasid: null, address: e.index });
  }

  /**
   * One cache's part of a use: compare with the ledger, or enter it (and,
   * with CM=1, check the writes since the last covering invalidation).
   * `other`: a held entry of another page size for the same address.
   */
  private check(t: CacheTags, all: readonly Source[], use: Use, other?: CacheTags): void {
    const sources = sourcesFor(t.cache, all);
    if (sources.length === 0) return;
    const held = this.ledger.get(keyOf(t)) ?? (other ? this.ledger.get(keyOf(other)) : undefined);
    if (held) {
      this.compare(held, sources, use, use.address);
      if (held.tags.page !== t.page || held.tags.size !== t.size) this.ledger.delete(keyOf(held.tags));
    } else if (this.unit.config.cachingMode && t.cache !== 'iec') {
      this.checkCachingMode(t, sources, use);
    }
    this.ledger.set(keyOf(t), { tags: t, sources, output: 0 });
  }

  /** Reports the first difference between a held entry and the sources now, then holds the new values. */
  private compare(held: Held, now: readonly Source[], use: Use, addr: number): void {
    const d = firstDifference(held.sources, now);
    held.sources = now;
    if (d === null) return;
    const s = d.old ?? d.now!;
    this.report(held.tags, use, s, hexes(d.old), hexes(d.now), required(held.tags, s, addr), 'changed');
  }

  /** CM=1: an entry written since the last invalidation covering it (first-stage paging entries exempt). */
  private checkCachingMode(t: CacheTags, sources: readonly Source[], use: Use): void {
    for (const s of sources) {
      if (s.kind === 'pte' && s.firstStage) continue;
      for (let i = 0; i < s.raw.length; i++) {
        const w = this.history.lastWrite(this.unit.memory, s.gpa + 8 * i);
        if (w === undefined || w.seq <= this.dmaReset || w.before === s.raw[i]) continue;
        if (this.invalidations.some((x) => x.seq > w.seq && covers(t, x.ev))) continue;
        const old = s.raw.map((q, j) => hex64(j === i ? w.before : q));
        this.report(t, use, s, old, hexes(s), required(t, s, use.address), 'caching-mode');
        return;
      }
    }
  }

  private report(
    t: CacheTags, use: Use, s: Source, old: string[], now: string[], req: SanitizerReport['required'], rule: SanitizerReport['rule'],
  ): void {
    const device = bdf(use.sid & 0xffff);
    const fields = Object.entries(req.fields).map(([k, v]) => `${k.toUpperCase()} ${k === 'addr' ? hex64(v) : v}`).join(' ');
    const what = rule === 'caching-mode'
      ? `written since the last ${req.descriptor} covering it (caching mode: not-present to present needs one too)`
      : `changed since it was cached in the ${t.cache} cache`;
    const message =
      `sanitizer: ${device}${use.pasid !== null ? ` PASID ${use.pasid}` : ''} ${use.kind} ${use.kind === 'interrupt' ? `index ${use.address}` : hex64(use.address)}: ` +
      `${s.label} entry at ${hex64(s.gpa)} ${what} (${old.join(':') || 'none'} -> ${now.join(':') || 'none'}); ` +
      `required: ${req.descriptor} (descriptor type ${req.type}), ${req.granularity}${fields ? ` ${fields}` : ''}`;
    const r: SanitizerReport = {
      seq: ++this.count, sid: use.sid, device, pasid: use.pasid, use: use.kind, address: use.address, cache: t.cache as CacheKind,
      structure: { kind: s.label, gpa: s.gpa, old, new: now }, required: req, rule, message,
    };
    if (this.reports.length < KEPT_REPORTS) this.reports.push(r);
    const tracer = this.unit.tracer;
    if (tracer.enabled('vtd_sanitizer_report')) {
      tracer.trace('vtd_sanitizer_report', { sid: use.sid, ...(use.pasid !== null ? { pasid: use.pasid } : {}), addr: use.address, cache: t.cache, entry: s.label, gpa: s.gpa, type: req.type });
    }
    this.unit.events.emit('sanitizer', r);
  }
}

const attached = new WeakMap<IntelIommu, Sanitizer>();

/** Attaches a sanitizer to `unit` (once), watching `rams` for guest stores. */
export function attachSanitizer(unit: IntelIommu, rams: readonly ChunkedRam[]): Sanitizer {
  let s = attached.get(unit);
  if (!s) {
    s = new Sanitizer(unit, rams);
    attached.set(unit, s);
  }
  return s;
}

/** The sanitizer attached to `unit`, if any. */
export function sanitizerOf(unit: IntelIommu): Sanitizer | undefined {
  return attached.get(unit);
}
