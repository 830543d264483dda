import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IOVA_SPACE_END, IommuNotifier, IommuNotifierError, IommuNotifierFlag, IommuNotifierList, flagOf, type IommuEvent } from './iommu-notifier.js';

const ev = (type: IommuEvent['type'], iova: number, size: number): IommuEvent => ({ type, iova, size, addrMask: size - 1, translated: 0, perm: 0, pasid: -1 });

describe('IommuNotifier', () => {
  it('uses QEMU flag values, as run-time values', () => {
    expect(IommuNotifierFlag).toEqual({ None: 0, Unmap: 1, Map: 2, DevIotlbUnmap: 4, IotlbEvents: 3 });
    expect([flagOf('map'), flagOf('unmap'), flagOf('devIotlbUnmap')]).toEqual([2, 1, 4]);
  });

  it('refuses bad flags and windows (host mistakes)', () => {
    expect(() => new IommuNotifier(0)).toThrow(RangeError);
    expect(() => new IommuNotifier(8)).toThrow(RangeError);
    expect(() => new IommuNotifier(1, { start: 10, end: 10 })).toThrow(RangeError);
    expect(() => new IommuNotifier(1, { start: 0, end: IOVA_SPACE_END * 2 })).toThrow(RangeError);
    expect(() => new IommuNotifier(8)).toThrow('IommuNotifier: bad flags 8');
    expect(() => new IommuNotifier(1, { start: -0x1000, end: 0x1000 })).toThrow('IommuNotifier: bad window [-4096, 4096)');
    expect(new IommuNotifier(7).end).toBe(IOVA_SPACE_END);
  });

  it('delivers only the types it asked for, inside its window', () => {
    const n = new IommuNotifier(IommuNotifierFlag.Map, { start: 0x1000, end: 0x3000 });
    const got: string[] = [];
    n.on('map', (e) => got.push(`map ${e.iova}`));
    n.on('unmap', (e) => got.push(`unmap ${e.iova}`));
    expect(n.deliver(ev('unmap', 0x1000, 0x1000))).toBe(false);
    expect(n.deliver(ev('map', 0x0, 0x1000))).toBe(false);
    expect(n.deliver(ev('map', 0x3000, 0x1000))).toBe(false);
    expect(n.deliver(ev('map', 0x0, 0x2000))).toBe(true);
    expect(n.deliver(ev('map', 0x2000, 0x1000))).toBe(true);
    expect(got).toEqual(['map 0', 'map 8192']);
  });

  it('IommuNotifierError is an Error with its name', () => {
    const e = new IommuNotifierError('x');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('IommuNotifierError');
  });
});

describe('IommuNotifierList', () => {
  it('keeps the union of flags and tolerates changes during delivery', () => {
    const l = new IommuNotifierList();
    const a = new IommuNotifier(IommuNotifierFlag.Unmap);
    const b = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
    expect(l.flagsWith(b)).toBe(3);
    l.add(a);
    l.add(a);
    expect(l.notifiers).toHaveLength(1);
    l.add(b);
    expect(l.flags).toBe(3);
    expect(l.flagsWithout(b)).toBe(1);
    const seen: string[] = [];
    a.on('unmap', () => {
      seen.push('a');
      l.remove(b); // removing another notifier mid-delivery does not skip or break the loop
    });
    b.on('unmap', () => seen.push('b'));
    l.notify(ev('unmap', 0, 0x1000));
    expect(seen).toEqual(['a', 'b']);
    expect(l.flags).toBe(1);
    // `except` (the notifier a replay is for) is left out, the others get the event.
    const other = new IommuNotifier(IommuNotifierFlag.Unmap);
    other.on('unmap', () => seen.push('other'));
    l.add(other);
    seen.length = 0;
    l.notify(ev('unmap', 0, 0x1000), a);
    expect(seen).toEqual(['other']);
    l.remove(other);
    expect(l.remove(b)).toBe(false);
    expect(l.remove(a)).toBe(true);
    expect(l.flags).toBe(0);
  });

  it('imports nothing from src/hw (the memory layer stays below devices)', () => {
    const src = readFileSync(new URL('./iommu-notifier.ts', import.meta.url), 'utf8');
    const specs = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
    expect(specs).toContain('./iommu.js');
    expect(specs.filter((s) => s.startsWith('..'))).toEqual([]);
  });
});
