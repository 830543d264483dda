/**
 * Which invalidation drops which cached entry (sanitizer-coverage.ts), one
 * table per cache, and the invalidation each structure change requires.
 */
import { describe, expect, it } from 'vitest';
import type { InvalidateEvent } from '../hw/intel-iommu/events.js';
import { covers, required, sourcesFor, type CacheTags } from './sanitizer-coverage.js';
import type { Source } from './sanitizer-chain.js';

const base: CacheTags = { cache: 'iotlb', sid: 0x0108, pasid: null, tagPasid: -1, did: 5, firstStage: false, page: 0x20_0000, size: 0x1000, index: -1 };
const ev = (e: Partial<InvalidateEvent> & Pick<InvalidateEvent, 'cache' | 'granularity'>): InvalidateEvent => ({ source: 'queue', ...e });
const src = (kind: Source['kind'], level = 0, firstStage = false): Source => ({ kind, label: level ? `L${level}` : kind, level, leaf: level === 1, firstStage, gpa: 0x1000, raw: [1n], cmp: [1n] });

describe('covers', () => {
  it('context cache: global, the entry\'s domain, the device under FM', () => {
    const t = { ...base, cache: 'context' as const };
    const cases: [InvalidateEvent, boolean][] = [
      [ev({ cache: 'context', granularity: 'global' }), true],
      [ev({ cache: 'context', granularity: 'domain', did: 5 }), true],
      [ev({ cache: 'context', granularity: 'domain', did: 6 }), false],
      [ev({ cache: 'context', granularity: 'device', sid: 0x0108, fm: 0 }), true],
      [ev({ cache: 'context', granularity: 'device', sid: 0x0109, fm: 0 }), false],
      [ev({ cache: 'context', granularity: 'device', sid: 0x010f, fm: 3 }), true],
      [ev({ cache: 'context', granularity: 'device', sid: 0x0208, fm: 3 }), false],
      [ev({ cache: 'iotlb', granularity: 'global' }), false],
    ];
    for (const [e, want] of cases) expect(covers(t, e), JSON.stringify(e)).toBe(want);
    expect(covers({ ...t, did: -1 }, ev({ cache: 'context', granularity: 'domain', did: 9 }))).toBe(true);
  });

  it('PASID cache: global, domain, PASID-selective', () => {
    const t = { ...base, cache: 'pasid' as const, tagPasid: 3 };
    expect(covers(t, ev({ cache: 'pasid', granularity: 'global' }))).toBe(true);
    expect(covers(t, ev({ cache: 'pasid', granularity: 'domain', did: 5 }))).toBe(true);
    expect(covers(t, ev({ cache: 'pasid', granularity: 'domain', did: 4 }))).toBe(false);
    expect(covers(t, ev({ cache: 'pasid', granularity: 'pasid', did: 5, pasid: 3 }))).toBe(true);
    expect(covers(t, ev({ cache: 'pasid', granularity: 'pasid', did: 5, pasid: 2 }))).toBe(false);
    expect(covers(t, ev({ cache: 'pasid-iotlb', granularity: 'pasid', did: 5, pasid: 3 }))).toBe(false);
  });

  it('IOTLB: page-selective ranges for second stage, PASID-based ones for first stage', () => {
    const ss = base;
    const fs = { ...base, firstStage: true, tagPasid: 3 };
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'global' }))).toBe(true);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'domain', did: 5 }))).toBe(true);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'domain', did: 6 }))).toBe(false);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'page', did: 5, addr: 0x20_0000, am: 0 }))).toBe(true);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'page', did: 5, addr: 0x20_1000, am: 0 }))).toBe(false);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'page', did: 5, addr: 0, am: 9 }))).toBe(false);
    expect(covers(ss, ev({ cache: 'iotlb', granularity: 'page', did: 5, addr: 0x20_0000, am: 9 }))).toBe(true);
    expect(covers(fs, ev({ cache: 'iotlb', granularity: 'page', did: 5, addr: 0x20_0000, am: 0 }))).toBe(false);
    expect(covers(fs, ev({ cache: 'pasid-iotlb', granularity: 'page', did: 5, pasid: 3, addr: 0x20_0000, am: 0 }))).toBe(true);
    expect(covers(fs, ev({ cache: 'pasid-iotlb', granularity: 'page', did: 5, pasid: 4, addr: 0x20_0000, am: 0 }))).toBe(false);
    expect(covers(ss, ev({ cache: 'pasid-iotlb', granularity: 'page', did: 5, pasid: -1, addr: 0x20_0000, am: 0 }))).toBe(false);
    expect(covers(fs, ev({ cache: 'pasid-iotlb', granularity: 'pasid', did: 5, pasid: 3 }))).toBe(true);
  });

  it('device-TLB: the SID, the range, and the PASID form', () => {
    const none = { ...base, cache: 'device-tlb' as const };
    const p7 = { ...none, pasid: 7 };
    const inv = (g: 'page' | 'pasid' | 'global', extra: Partial<InvalidateEvent> = {}) => ev({ cache: 'device-iotlb', granularity: g, sid: 0x0108, addr: 0x20_0000, size: 0x1000, ...extra });
    expect(covers(none, inv('page'))).toBe(true);
    expect(covers(none, inv('page', { sid: 0x0110 }))).toBe(false);
    expect(covers(none, inv('page', { addr: 0x30_0000 }))).toBe(false);
    expect(covers(p7, inv('page'))).toBe(false);
    expect(covers(p7, inv('pasid', { pasid: 7 }))).toBe(true);
    expect(covers(p7, inv('pasid', { pasid: 8 }))).toBe(false);
    expect(covers(p7, inv('global'))).toBe(true);
    expect(covers(p7, inv('global', { addr: 0, size: 2 ** 64 }))).toBe(true);
  });

  it('IEC: global or 2^IM entries around the index', () => {
    const t = { ...base, cache: 'iec' as const, index: 13 };
    expect(covers(t, ev({ cache: 'iec', granularity: 'global' }))).toBe(true);
    expect(covers(t, ev({ cache: 'iec', granularity: 'index', addr: 13, am: 0 }))).toBe(true);
    expect(covers(t, ev({ cache: 'iec', granularity: 'index', addr: 12, am: 0 }))).toBe(false);
    expect(covers(t, ev({ cache: 'iec', granularity: 'index', addr: 14, am: 2 }))).toBe(true); // 12..15
    expect(covers(t, ev({ cache: 'iec', granularity: 'index', addr: 9, am: 2 }))).toBe(false); // 8..11
    expect(covers(t, ev({ cache: 'iec', granularity: 'index', addr: 16, am: 2 }))).toBe(false);
  });
});

describe('required', () => {
  it('names the narrowest invalidation for each cache and structure', () => {
    const r = (t: Partial<CacheTags>, s: Source, addr = 0x20_3000) => {
      const x = required({ ...base, ...t }, s, addr);
      return [x.type, x.granularity, x.fields];
    };
    expect(r({ cache: 'context' }, src('context'))).toEqual([1, 'device-selective', { sid: 0x0108, fm: 0, did: 5 }]);
    expect(r({ cache: 'context', did: -1 }, src('root'))).toEqual([1, 'device-selective', { sid: 0x0108, fm: 0 }]);
    expect(r({ cache: 'pasid', tagPasid: 3 }, src('pasid'))).toEqual([7, 'PASID-selective', { did: 5, pasid: 3 }]);
    expect(r({}, src('context'))).toEqual([2, 'domain-selective', { did: 5 }]);
    expect(r({ tagPasid: 3 }, src('pasid'))).toEqual([6, 'PASID-selective', { did: 5, pasid: 3 }]);
    expect(r({}, src('pte', 1))).toEqual([2, 'page-selective', { did: 5, addr: 0x20_3000, am: 0 }]);
    expect(r({}, src('pte', 2))).toEqual([2, 'page-selective', { did: 5, addr: 0x20_0000, am: 9 }]);
    expect(r({ firstStage: true, tagPasid: 3 }, src('pte', 1, true))).toEqual([6, 'page-selective', { did: 5, pasid: 3, addr: 0x20_3000, am: 0 }]);
    expect(r({ cache: 'device-tlb' }, src('pte', 1))).toEqual([3, 'page', { sid: 0x0108, addr: 0x20_0000, size: 0x1000 }]);
    expect(r({ cache: 'device-tlb', pasid: 7 }, src('pte', 1))).toEqual([8, 'PASID', { sid: 0x0108, pasid: 7, addr: 0x20_0000, size: 0x1000 }]);
    expect(r({ cache: 'iec', index: 4 }, src('irte'))).toEqual([4, 'index-selective', { index: 4, im: 0 }]);
  });

  it('each cache depends on its own structures', () => {
    const all = [src('root'), src('context'), src('pasid-dir'), src('pasid'), src('pte', 2), src('pte', 1)];
    expect(sourcesFor('context', all).map((s) => s.kind)).toEqual(['root', 'context']);
    expect(sourcesFor('pasid', all).map((s) => s.kind)).toEqual(['pasid-dir', 'pasid']);
    expect(sourcesFor('iotlb', all)).toHaveLength(6);
  });
});
