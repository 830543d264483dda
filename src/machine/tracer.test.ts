import { describe, expect, it } from 'vitest';
import { formatTraceValue, globToRegExp, PatternTracer } from './tracer.js';

describe('PatternTracer', () => {
  it('matches globs, later rules win, prints numbers in hex', () => {
    const out: string[] = [];
    const t = new PatternTracer(['vtd_*', 'enable=edu_dma?', '-vtd_iotlb_*'], (l) => out.push(l));
    expect(t.enabled('vtd_fault_record')).toBe(true);
    expect(t.enabled('vtd_iotlb_hit')).toBe(false);
    expect(t.enabled('edu_dma1')).toBe(true);
    expect(t.enabled('edu_dma')).toBe(false);
    t.trace('vtd_fault_record', { sid: 8, reason: 6, addr: 0x100000n, write: false, name: 'x' });
    t.trace('vtd_iotlb_hit', { sid: 8 });
    expect(out).toEqual(['vtd_fault_record sid=0x8 reason=0x6 addr=0x100000 write=0 name=x']);
  });
  it('helpers', () => {
    expect(globToRegExp('a.b*').test('a.bcd')).toBe(true);
    expect(globToRegExp('a.b*').test('axbcd')).toBe(false);
    expect(formatTraceValue(-1)).toBe('-1');
    expect(formatTraceValue(-1n)).toBe('0xffffffffffffffff');
  });
});
