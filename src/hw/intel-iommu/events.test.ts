/**
 * The unit's emitter keeps `translateListened` (what the translation hot
 * path reads instead of listenerCount) in step with every way of adding and
 * removing listeners, and translations emit exactly while someone listens.
 */
import { describe, expect, it } from 'vitest';
import { DmaAccess, newIotlbEntry } from '../../memory/iommu.js';
import { createIommuEmitter, type TranslateEvent } from './events.js';
import { Gcmd } from './reg-layout.js';
import { ctxEntry, VtdBench } from '../../../test/support/vtd-bench.js';
import { iova } from '../../memory/address.js';

describe('IommuEmitter.translateListened', () => {
  it('follows on/off, prepend, once and removeAll', () => {
    const ev = createIommuEmitter();
    const a = () => {};
    const b = () => {};
    expect(ev.translateListened).toBe(false);
    ev.on('fault', () => {});
    expect(ev.translateListened).toBe(false);
    ev.on('translate', a);
    expect(ev.translateListened).toBe(true);
    ev.prependListener('translate', b);
    ev.off('translate', a);
    expect(ev.translateListened).toBe(true);
    ev.removeListener('translate', b);
    expect(ev.translateListened).toBe(false);
    ev.addListener('translate', a);
    ev.removeAllListeners('translate');
    expect(ev.translateListened).toBe(false);
    ev.once('translate', a);
    expect(ev.translateListened).toBe(true);
    ev.emit('translate', {} as TranslateEvent);
    expect(ev.translateListened).toBe(false);
    ev.prependOnceListener('translate', b);
    expect(ev.translateListened).toBe(true);
    ev.removeAllListeners();
    expect(ev.translateListened).toBe(false);
    // Still tracked after everything was removed.
    ev.on('translate', a);
    expect(ev.translateListened).toBe(true);
  });

  it('addListener adds (and chains) like on', () => {
    const ev = createIommuEmitter();
    const seen: boolean[] = [];
    expect(ev.addListener('translate', (e) => seen.push(e.cached))).toBe(ev);
    expect(ev.translateListened).toBe(true);
    ev.emit('translate', { cached: true } as TranslateEvent);
    expect(seen).toEqual([true]);
  });

  it('removeAllListeners(name) removes only that event\'s listeners', () => {
    const ev = createIommuEmitter();
    ev.on('fault', () => {});
    ev.on('translate', () => {});
    expect(ev.removeAllListeners('translate')).toBe(ev);
    expect(ev.translateListened).toBe(false);
    expect(ev.listenerCount('fault')).toBe(1);
  });

  it('translations emit events only while a listener is attached', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    const top = b.allocPage();
    b.setRoot(root);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1));
    b.map(top, 3, 0x5000, 0x20_0000);
    b.gcmd(Gcmd.TE);
    const t = b.iommu.translatorFor(b.device(0, 8).req);
    const e = newIotlbEntry();
    const seen: boolean[] = [];
    const listener = (ev: TranslateEvent) => seen.push(ev.cached);
    expect(t.translate(iova(0x5000), DmaAccess.Read, e)).toBe(true); // miss, unheard
    b.iommu.events.on('translate', listener);
    t.translate(iova(0x5008), DmaAccess.Read, e); // hit
    b.iommu.iotlb.clear();
    t.translate(iova(0x5010), DmaAccess.Read, e); // miss
    b.iommu.events.off('translate', listener);
    t.translate(iova(0x5018), DmaAccess.Read, e);
    expect(seen).toEqual([true, false]);
  });

  it('a DMA over contiguous cached pages still reports one translate event per page to a listener', () => {
    const b = new VtdBench();
    const root = b.allocPage();
    const top = b.allocPage();
    b.setRoot(root);
    b.setContext(root, 0, 8, ...ctxEntry(top, 1, 1));
    for (let i = 0; i < 4; i++) b.map(top, 3, i * 0x1000, 0x20_0000 + i * 0x1000);
    b.gcmd(Gcmd.TE);
    b.memory.fill(0x20_0000, 0x4000, 0x33);
    const { dma } = b.device(0, 8);
    const buf = new Uint8Array(0x4000);
    dma.read(0, buf); // fills the IOTLB
    const seen: string[] = [];
    b.iommu.events.on('translate', (ev) => seen.push(`${ev.iova.toString(16)}:${ev.cached}`));
    buf.fill(0);
    dma.read(0, buf);
    expect(seen).toEqual(['0:true', '1000:true', '2000:true', '3000:true']);
    expect(buf.every((x) => x === 0x33)).toBe(true);
  });
});
