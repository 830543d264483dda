/**
 * The intel-iommu device as a whole: what it is built from (CAP / ECAP,
 * register window, walk and context rules from the properties), the core
 * services it offers (caches, translators, faults, events, interrupts), the
 * components it owns (queue, remapper, posted interrupts), reset back to power-on state (QEMU's intel-iommu-test checks
 * the whole register file before and after system_reset), the DMAR facts,
 * and the device type.
 */
import { describe, expect, it, vi } from 'vitest';
import { ctxEntry, VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';
import { AddressSpace } from '../../memory/address-space.js';
import { iova } from '../../memory/address.js';
import { DmaAccess, IommuPerm, newIotlbEntry } from '../../memory/iommu.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { createRam } from '../../memory/ram-backend.js';
import type { InterruptOrigin } from '../../core/irq.js';
import type { DeviceContext, PropValues, Tracer } from '../../machine/device-type.js';
import { capValue, ecapValue } from './caps.js';
import { IntelIommu, intelIommuDeviceType } from './device.js';
import type { FaultEvent, InvalidateEvent } from './events.js';
import { VtdFault } from './fault-reasons.js';
import { InterruptRemapper } from './interrupt-remap.js';
import { PostedInterrupts } from './posted-interrupts.js';
import { INTEL_IOMMU_PROPS, resolveIommuConfig } from './props.js';
import { InvalidationQueue } from './queue.js';
import { SID_UNKNOWN } from './requests.js';
import { DMAR_BASE, EventCtl, Fsts, Gcmd, Gsts, Reg } from './reg-layout.js';

const OTHER = 0x210_0000;

/** A unit with translation on and device 00:01.0 mapped 0x5000 -> OTHER through a 4-level table. */
function translating(opts: VtdBenchOptions = {}, tt = 0) {
  const b = new VtdBench(opts);
  const root = b.allocPage();
  const top = b.allocPage();
  b.setRoot(root);
  b.setContext(root, 0, 8, ...ctxEntry(top, 7, 2, { tt }));
  b.map(top, 4, 0x5000, OTHER);
  b.memory.write(0x5000, 4, 0xd4d4_d4d4);
  b.memory.write(OTHER, 4, 0xb2b2_b2b2);
  b.gcmd(Gcmd.TE);
  const { req, dma } = b.device(0, 8);
  const read32 = () => {
    const d = new Uint8Array(4);
    dma.read(0x5000, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  return { b, root, top, req, dma, read32 };
}

/** Reason of FRCD0, 0 when F is clear. */
const reason0 = (b: VtdBench) => {
  const hi = b.r64(Reg.FRCD0 + 8);
  return hi >> 63n ? Number((hi >> 32n) & 0xffn) : 0;
};

const dump = (b: VtdBench) => Array.from({ length: b.iommu.regs.size / 4 }, (_, i) => b.r32(i * 4));

describe('construction', () => {
  it('is an intel-iommu whose CAP / ECAP follow the properties', () => {
    for (const props of [{}, { 'aw-bits': 39, 'caching-mode': true }, { intremap: 'off', 'device-iotlb': true, nfr: 4 }] as PropValues[]) {
      const b = new VtdBench({ props });
      const cfg = resolveIommuConfig(props);
      expect(b.iommu.typeName).toBe('intel-iommu');
      expect(b.iommu.config).toEqual(cfg);
      expect(b.iommu.capability).toBe(capValue(cfg));
      expect(b.iommu.extendedCapability).toBe(ecapValue(cfg));
      expect(b.r64(Reg.CAP)).toBe(capValue(cfg));
      expect(b.r64(Reg.ECAP)).toBe(ecapValue(cfg));
      expect(b.r32(Reg.VER)).toBe(0x10);
      expect(b.iommu.haw).toBe(cfg.awBits);
    }
  });

  it('the register window: named intel_iommu, sized for nfr records, 4- and 8-byte accesses', () => {
    for (const [nfr, size] of [
      [1, 0x230],
      [2, 0x240],
      [3, 0x250],
      [222, 0x1000],
    ] as const) {
      const b = new VtdBench({ props: { nfr } });
      expect(b.iommu.region.name).toBe('intel_iommu');
      expect(b.iommu.region.size).toBe(size);
      expect(b.iommu.regs.size).toBe(size);
    }
    const b = new VtdBench();
    expect(b.iommu.region.rules).toEqual({ valid: { unaligned: false, min: 4, max: 8 }, impl: { min: 4, max: 8 } });
    b.memory.write(DMAR_BASE + Reg.FEDATA, 2, 0x1234);
    b.memory.write(DMAR_BASE + Reg.FEDATA, 1, 0x12);
    expect(b.r32(Reg.FEDATA)).toBe(0);
    expect(b.memory.read(DMAR_BASE + Reg.VER, 2)).toBe(0);
    expect(b.memory.read(DMAR_BASE + Reg.VER, 1)).toBe(0);
  });

  it('context rules from aw-bits, SAGAW, device-iotlb and pt', () => {
    expect(new VtdBench().iommu.ctxRules).toEqual({ hawHiMask: 0xffff, sagaw: 6, deviceIotlb: false, passThrough: true });
    expect(new VtdBench({ props: { 'aw-bits': 39, 'device-iotlb': true, pt: false } }).iommu.ctxRules).toEqual({
      hawHiMask: 0x7f,
      sagaw: 2,
      deviceIotlb: true,
      passThrough: false,
    });
    expect(new VtdBench({ props: { 'aw-bits': 57, 'dma-translation': false } }).iommu.ctxRules).toEqual({
      hawHiMask: 0x1ff_ffff,
      sagaw: 0,
      deviceIotlb: false,
      passThrough: true,
    });
  });

  it('walk rules: aw-bits; SNP with snoop-control; TM only with stale-tm and device-iotlb', () => {
    expect(new VtdBench({ props: { 'aw-bits': 39 } }).iommu.walkRules.awBits).toBe(39);
    for (const [props, bit, allowed] of [
      [{}, 11n, false],
      [{ 'snoop-control': true }, 11n, true],
      [{}, 62n, false],
      [{ 'stale-tm': true }, 62n, false],
      [{ 'device-iotlb': true }, 62n, false],
      [{ 'stale-tm': true, 'device-iotlb': true }, 62n, true],
    ] as const) {
      const { b, top, req } = translating({ props });
      const at = b.pteAddr(top, 4, 0x5000, 1);
      b.poke64(at, b.peek64(at) | (1n << bit));
      const e = newIotlbEntry();
      const what = `${JSON.stringify(props)} bit ${bit}`;
      expect(b.iommu.translatorFor(req).translate(iova(0x5000), DmaAccess.Read, e), what).toBe(allowed);
      expect(reason0(b), what).toBe(allowed ? 0 : VtdFault.PAGING_ENTRY_RSVD);
    }
  });

  it('owns its invalidation queue and interrupt remapper always (as QEMU\'s intel-iommu), posted interrupts with x-pi', () => {
    const b = new VtdBench();
    const host = { memory: b.memory, msi: { deliverMsi: () => {} }, clock: b.clock };
    for (const props of [{}, { intremap: 'off' }, { 'scalable-mode': true }] as PropValues[]) {
      const u = new IntelIommu(host, resolveIommuConfig(props));
      expect(u.queue).toBeInstanceOf(InvalidationQueue);
      expect(u.remapper).toBeInstanceOf(InterruptRemapper);
      expect(u.posted).toBeNull();
    }
    expect(new VtdBench({ props: { intremap: 'on', 'x-pi': true } }).iommu.posted).toBeInstanceOf(PostedInterrupts);
    // x-pi needs intremap (CAP.PI is not offered without it).
    expect(new VtdBench({ props: { intremap: 'off', 'x-pi': true } }).iommu.posted).toBeNull();
  });
});

describe('tracing', () => {
  it('without a tracer nothing is enabled and IOTLB hits are not traced', () => {
    const b = new VtdBench();
    expect(b.iommu.tracer.enabled('vtd_iotlb_page_hit')).toBe(false);
    expect(() => b.iommu.tracer.trace('x', {})).not.toThrow();
    expect(b.iommu.traceHits).toBe(false);
  });

  it('traceHits follows the tracer, re-read by refreshTracing', () => {
    let on = true;
    const events: string[] = [];
    const tracer: Tracer = { enabled: (e) => on && e === 'vtd_iotlb_page_hit', trace: (e) => void events.push(e) };
    const { b, read32 } = translating({ tracer });
    expect(b.iommu.traceHits).toBe(true);
    read32();
    read32();
    expect(events).toEqual(['vtd_iotlb_page_hit']);
    on = false;
    expect(b.iommu.traceHits).toBe(true);
    b.iommu.refreshTracing();
    expect(b.iommu.traceHits).toBe(false);
  });

  it('an untraced cached translation can be peeked; a traced one cannot', () => {
    const { b, req, read32 } = translating();
    read32();
    const e = newIotlbEntry();
    expect(b.iommu.translatorFor(req).peek!(iova(0x5123), DmaAccess.Read, e)).toBe(true);
    expect(e).toEqual({ iova: 0x5000, translated: OTHER, addrMask: 0xfff, perm: IommuPerm.ReadWrite, fault: 0 });
    const t = translating({ tracer: { enabled: (n) => n === 'vtd_iotlb_page_hit', trace: () => {} } });
    t.read32();
    expect(t.b.iommu.translatorFor(t.req).peek!(iova(0x5123), DmaAccess.Read, newIotlbEntry())).toBe(false);
  });
});

describe('caches and address spaces', () => {
  it('the context generation moves by one per bump; a cached context is dropped by it', () => {
    const { b, req, read32 } = translating();
    const t = b.iommu.translatorFor(req);
    read32();
    expect(t.contextCached).toBe(true);
    const g = b.iommu.contextGeneration;
    b.iommu.bumpContextGeneration();
    expect(b.iommu.contextGeneration).toBe(g + 1);
    expect(t.contextCached).toBe(false);
    b.iommu.bumpContextGeneration();
    expect(b.iommu.contextGeneration).toBe(g + 2);
  });

  it('resetCaches empties the IOTLB, drops cached contexts and refreshes pass-through decisions', () => {
    const { b, root, top, req, read32 } = translating();
    const t = b.iommu.translatorFor(req);
    expect(read32()).toBe(0xb2b2_b2b2);
    expect(b.iommu.iotlb.size).toBe(1);
    b.setContext(root, 0, 8, ...ctxEntry(top, 7, 2, { tt: 2 }));
    const g = b.iommu.contextGeneration;
    b.iommu.resetCaches();
    expect(b.iommu.iotlb.size).toBe(0);
    expect(b.iommu.contextGeneration).toBe(g + 1);
    expect(t.contextCached).toBe(false);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(true);
    expect(read32()).toBe(0xd4d4_d4d4);
  });

  it('refreshAddressSpaces re-decides pass-through for existing translators (and nothing else)', () => {
    const { b, root, top, req, read32 } = translating();
    const t = b.iommu.translatorFor(req);
    expect(read32()).toBe(0xb2b2_b2b2);
    b.setContext(root, 0, 8, ...ctxEntry(top, 7, 2, { tt: 2 }));
    expect(read32()).toBe(0xb2b2_b2b2); // cached: nothing invalidated
    b.iommu.refreshAddressSpaces();
    expect(read32()).toBe(0xd4d4_d4d4);
    expect(b.iommu.iotlb.size).toBe(1);
    expect(t.contextCached).toBe(true);
    b.setContext(root, 0, 8, ...ctxEntry(top, 7, 2));
    b.iommu.refreshAddressSpaces();
    expect(read32()).toBe(0xb2b2_b2b2);
  });

  it('one translator per requester key, listed in creation order', () => {
    const b = new VtdBench();
    const a = b.device(0, 8).req;
    const c = b.device(0, 8).req;
    const ta = b.iommu.translatorFor(a);
    expect(b.iommu.translatorFor(a)).toBe(ta);
    const tc = b.iommu.translatorFor(c);
    expect(tc).not.toBe(ta);
    expect(tc.requester).toBe(c);
    expect([...b.iommu.translators()]).toEqual([ta, tc]);
  });

  it('a new translator decides its pass-through switch from memory at creation (QEMU vtd_find_add_as)', () => {
    const { b, root, top, read32 } = translating({}, 2);
    expect(b.iommu.passThrough.isPassThrough(8)).toBe(true); // decided when the device was created, after TE
    expect(read32()).toBe(0xd4d4_d4d4);
    expect(b.iommu.iotlb.size).toBe(0);
    b.setContext(root, 0, 16, ...ctxEntry(top, 7, 2, { tt: 2 }));
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(false); // no address space: nothing decided
    b.device(0, 16);
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(true);
  });

  it('invalidateContext / invalidateIotlb act and report their source', () => {
    const { b, req, read32 } = translating();
    const inv: InvalidateEvent[] = [];
    b.iommu.events.on('invalidate', (e) => inv.push(e));
    read32();
    const t = b.iommu.translatorFor(req);
    b.iommu.invalidateIotlb({ kind: 'domain', did: 6 }, 'queue');
    expect(b.iommu.iotlb.size).toBe(1);
    b.iommu.invalidateIotlb({ kind: 'domain', did: 7 }, 'register');
    expect(b.iommu.iotlb.size).toBe(0);
    b.iommu.invalidateContext({ kind: 'device', did: 7, sid: 8, fm: 0 }, 'queue');
    expect(t.contextCached).toBe(false);
    expect(inv.map((e) => [e.cache, e.granularity, e.did, e.source])).toEqual([
      ['iotlb', 'domain', 6, 'queue'],
      ['iotlb', 'domain', 7, 'register'],
      ['context', 'device', 7, 'queue'],
    ]);
  });

  it('qiEnabled / irEnabled report GSTS.QIES / IRES', () => {
    const b = new VtdBench();
    expect([b.iommu.qiEnabled(), b.iommu.irEnabled()]).toEqual([false, false]);
    b.gcmd(Gcmd.QIE);
    expect([b.iommu.qiEnabled(), b.iommu.irEnabled()]).toEqual([true, false]);
    b.gcmd(Gcmd.IRE);
    expect([b.iommu.qiEnabled(), b.iommu.irEnabled()]).toEqual([true, true]);
    b.iommu.regs.set32(Reg.GSTS, Gsts.IRES);
    expect([b.iommu.qiEnabled(), b.iommu.irEnabled()]).toEqual([false, true]);
    const off = new VtdBench({ props: { intremap: 'off' } });
    off.gcmd(Gcmd.IRE);
    expect(off.iommu.irEnabled()).toBe(false);
  });
});

describe('faults and events', () => {
  it('recordFault fills FRCD0, sets PPF and raises the fault event', () => {
    const b = new VtdBench();
    const faults: FaultEvent[] = [];
    b.iommu.events.on('fault', (e) => faults.push(e));
    b.w32(Reg.FEADDR, 0xfee0_0000);
    b.w32(Reg.FEDATA, 0x31);
    b.w32(Reg.FECTL, 0);
    b.iommu.recordFault(0x0108, VtdFault.WRITE, 0x1_2345_6789, true);
    expect(b.r64(Reg.FRCD0)).toBe(0x1_2345_6000n);
    expect(b.r64(Reg.FRCD0 + 8)).toBe((1n << 63n) | (5n << 32n) | 0x108n);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x31, origin: { kind: 'iommu' } }]);
    expect(faults).toEqual([{ sid: 0x108, reason: 5, addr: 0x1_2345_6789, isWrite: true, irIndex: undefined, outcome: 'recorded', index: 0 }]);
    expect(b.iommu.state.nextFrcd).toBe(0);
  });

  it('FPD suppresses a qualified fault passed to recordFault', () => {
    const b = new VtdBench();
    b.iommu.recordFault(0x0108, VtdFault.READ, 0x1000, false, { fpd: true });
    expect(b.r32(Reg.FSTS)).toBe(0);
    b.iommu.recordFault(0x0108, VtdFault.ROOT_ENTRY_P, 0x1000, false, { fpd: true });
    expect(b.r32(Reg.FSTS)).toBe(Fsts.PPF);
  });

  it('raiseFaultStatus sets the bits and signals only if nothing was pending', () => {
    const b = new VtdBench();
    b.w32(Reg.FECTL, 0);
    b.iommu.raiseFaultStatus(Fsts.ITE);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE);
    expect(b.msis).toHaveLength(1);
    b.iommu.raiseFaultStatus(Fsts.IQE);
    expect(b.msis).toHaveLength(2);
    b.iommu.raiseFaultStatus(Fsts.ICE);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.ITE | Fsts.IQE | Fsts.ICE);
    expect(b.msis).toHaveLength(2);
  });

  it('generateFaultEvent looks at FSTS before the update', () => {
    const b = new VtdBench();
    b.w32(Reg.FECTL, 0);
    for (const pre of [Fsts.PPF, Fsts.PFO, Fsts.IQE]) b.iommu.generateFaultEvent(pre);
    expect(b.msis).toEqual([]);
    b.iommu.generateFaultEvent(Fsts.ITE | Fsts.ICE);
    b.iommu.generateFaultEvent(0);
    expect(b.msis).toHaveLength(2);
  });

  it('signalEvent delivers through the given register group, or sets IP when masked', () => {
    const b = new VtdBench();
    b.w32(Reg.IEADDR, 0xfee0_1000);
    b.w32(Reg.IEDATA, 0x77);
    b.iommu.signalEvent(Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
    expect(b.msis).toEqual([]);
    expect(b.r32(Reg.IECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    b.w32(Reg.IECTL, 0);
    expect(b.msis).toEqual([{ address: 0xfee0_1000, data: 0x77, origin: { kind: 'iommu' } }]);
    b.iommu.signalEvent(Reg.IECTL, Reg.IEDATA, Reg.IEADDR, Reg.IEUADDR);
    expect(b.msis).toHaveLength(2);
    expect(b.r32(Reg.IECTL)).toBe(0);
  });
});

describe('interrupt messages', () => {
  it('with IRE off they go to the APIC bus unchanged, tagged with their origin', () => {
    const b = new VtdBench();
    b.iommu.interruptWrite(0xfee0_1004, 0x4031, 0x0310);
    b.iommu.interruptWrite(0xfee0_0000, 0x20, SID_UNKNOWN);
    b.iommu.interruptFromIoapic(0xfee0_2000, 0x8041);
    b.iommu.interruptWrite(0xfee0_0000, 0x21, 0);
    const o: InterruptOrigin[] = b.msis.map((m) => m.origin);
    expect(b.msis.map((m) => [m.address, m.data])).toEqual([
      [0xfee0_1004, 0x4031],
      [0xfee0_0000, 0x20],
      [0xfee0_2000, 0x8041],
      [0xfee0_0000, 0x21],
    ]);
    expect(o).toEqual([{ kind: 'msi', source: 0x0310 }, { kind: 'ioapic' }, { kind: 'ioapic' }, { kind: 'msi', source: 0 }]);
  });

  it('a device translator hands its writes in with its source ID', () => {
    const b = new VtdBench();
    b.iommu.translatorFor(b.device(3, 0x11).req).interruptWrite(0xfee0_0000, 0x33);
    expect(b.msis).toEqual([{ address: 0xfee0_0000, data: 0x33, origin: { kind: 'msi', source: 0x0311 } }]);
  });

  it('every message goes through the remapper: with IRE on a remappable one is remapped, not passed on', () => {
    const b = new VtdBench({ props: { intremap: 'on' } });
    const seen = vi.spyOn(b.iommu.remapper, 'interruptWrite');
    b.iommu.interruptWrite(0xfee0_0000, 5, 0x10);
    b.iommu.interruptFromIoapic(0xfee0_1000, 6);
    expect(seen.mock.calls).toEqual([[0xfee0_0000, 5, 0x10], [0xfee0_1000, 6, SID_UNKNOWN]]);
    expect(b.msis).toHaveLength(2);
    const irt = b.allocPage();
    b.poke64(irt + 16, 1n | (0x33n << 16n) | (0x200n << 32n)); // IRTE 1: present, vector 0x33, DST 0x200
    b.w64(Reg.IRTA, BigInt(irt));
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.IRE);
    b.iommu.interruptFromIoapic((0xfee0_0000 | (1 << 5) | 0x10) >>> 0, 0);
    expect(b.msis[2]).toEqual({ address: 0xfee0_2000, data: 0x4033, origin: { kind: 'ioapic', remappedIndex: 1 } });
  });
});

describe('DMAR facts', () => {
  it('host address width, INTR_REMAP, ATSR and the register base', () => {
    expect(new VtdBench().iommu.dmarConfig()).toEqual({ hostAddressWidth: 48, intremap: true, deviceIotlb: false, base: 0xfed9_0000 });
    expect(new VtdBench({ props: { 'aw-bits': 39, intremap: 'off', 'device-iotlb': true } }).iommu.dmarConfig()).toEqual({
      hostAddressWidth: 39,
      intremap: false,
      deviceIotlb: true,
      base: DMAR_BASE,
    });
  });
});

describe('reset', () => {
  it('puts the whole register file and the unit state back to power-on', () => {
    const { b, root, top, read32 } = translating({ props: { nfr: 2 } });
    const resets = [vi.spyOn(b.iommu.queue, 'reset'), vi.spyOn(b.iommu.remapper, 'reset')];
    const announced: string[] = [];
    b.iommu.events.on('reset', (e) => announced.push(e.why));
    const fresh = new VtdBench({ props: { nfr: 2 } });
    const powerOn = dump(fresh);
    read32();
    b.setContext(root, 0, 16, ...ctxEntry(top, 1, 2, { tt: 2 }));
    b.device(0, 16);
    b.iommu.refreshAddressSpaces();
    b.device(0, 24).dma.read(0x1000, new Uint8Array(4)); // fault: no context
    b.w64(Reg.IQA, 0x40_0000n | 3n);
    b.gcmd(Gcmd.QIE);
    for (const off of [Reg.FEDATA, Reg.FEADDR, Reg.IEDATA, Reg.IEADDR, Reg.IQT, Reg.IRTA]) b.w32(off, 0xffff_fff0);
    b.w32(Reg.FECTL, 0);
    expect(b.iommu.dmarEnabled).toBe(true);
    expect(b.iommu.rootTable).toBe(root);
    expect(b.iommu.state.nextFrcd).toBe(1);
    expect(b.iommu.queue.base).toBe(0x40_0000);
    expect(b.iommu.iotlb.size).toBe(1);
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(true);
    expect(dump(b)).not.toEqual(powerOn);
    const g = b.iommu.contextGeneration;

    b.iommu.reset();
    expect(dump(b)).toEqual(powerOn);
    expect(b.iommu.dmarEnabled).toBe(false);
    expect(b.iommu.rootTable).toBe(0);
    expect(b.iommu.state.nextFrcd).toBe(0);
    expect(b.iommu.queue.base).toBe(0);
    expect(b.iommu.iotlb.size).toBe(0);
    expect(b.iommu.contextGeneration).toBeGreaterThan(g);
    expect(b.iommu.passThrough.isPassThrough(16)).toBe(false);
    expect(resets.map((r) => r.mock.calls.length)).toEqual([1, 1]);
    expect(announced).toEqual(['reset']);
    // Translation is off again: DMA is the identity.
    expect(read32()).toBe(0xd4d4_d4d4);
  });

  it('the registers and masks the queue defines too (x-iqer, x-devtlb-timeout-sid)', () => {
    const opts = { props: { 'x-iqer': true, 'x-devtlb-timeout-sid': 5 } };
    const b = new VtdBench(opts);
    const powerOn = dump(new VtdBench(opts));
    b.w64(Reg.IQA, 0x40_0000n);
    b.gcmd(Gcmd.QIE);
    b.poke64(0x40_0000, 0xfn); // unknown type: IQE, IQEI 3
    b.w64(Reg.IQT, 0x10n);
    expect(b.r32(Reg.FSTS)).toBe(Fsts.IQE);
    expect(b.r32(Reg.IQER)).toBe(3);
    expect(b.r64(Reg.IQA)).toBe(0x40_0000n);
    b.iommu.reset();
    expect(dump(b)).toEqual(powerOn);
    expect(b.iommu.regs.w1cMask(Reg.FSTS)).toBe(0x71); // masks the queue defined survive reset
  });
});

describe('the device type', () => {
  function context(kernelIrqchip?: 'on' | 'off' | 'split'): DeviceContext & { msis: unknown[] } {
    const systemMemory = new ContainerRegion('system', 2 ** 40);
    const ram = createRam(16 * 1024 * 1024, 'ts');
    systemMemory.add(new RamRegion('ram', ram.size, ram), 0);
    const msis: unknown[] = [];
    const host = new VtdBench();
    return {
      systemMemory,
      ioSpace: new ContainerRegion('io', 0x1_0000),
      memory: new AddressSpace('memory', systemMemory),
      clock: host.clock,
      msi: { deliverMsi: (address, data, origin) => void msis.push({ address, data, origin }) },
      tracer: { enabled: () => false, trace: () => {} },
      kernelIrqchip,
      msis,
    };
  }

  it('is named and described as QEMU has it, on the system bus, with the property list', () => {
    expect(intelIommuDeviceType.name).toBe('intel-iommu');
    expect(intelIommuDeviceType.description).toBe('Intel IOMMU (VT-d) DMA Remapping device');
    expect(intelIommuDeviceType.bus).toBe('system');
    expect(intelIommuDeviceType.props).toBe(INTEL_IOMMU_PROPS);
  });

  it('creates a unit from the properties and maps its registers at 0xFED90000', () => {
    const ctx = context();
    const u = intelIommuDeviceType.create(ctx, { 'aw-bits': 39 });
    expect(u).toBeInstanceOf(IntelIommu);
    expect(u.config.awBits).toBe(39);
    expect(u.config.kernelIrqchip).toBe('off');
    expect(ctx.memory.read(DMAR_BASE + Reg.VER, 4)).toBe(0x10);
    expect(ctx.memory.read64(DMAR_BASE + Reg.CAP)).toBe(0x80d2008c22260206n);
    expect(ctx.systemMemory.has(u.region)).toBe(true);
    expect(u.queue).toBeInstanceOf(InvalidationQueue);
    // Its events go to the context's APIC bus.
    ctx.memory.write(DMAR_BASE + Reg.FECTL, 4, 0);
    u.raiseFaultStatus(Fsts.IQE);
    expect(ctx.msis).toHaveLength(1);
  });

  it('passes the machine\'s kernel-irqchip on', () => {
    expect(intelIommuDeviceType.create(context('split'), {}).config.kernelIrqchip).toBe('split');
    expect(intelIommuDeviceType.create(context('on'), {}).config.kernelIrqchip).toBe('on');
  });

  it('refuses a configuration QEMU refuses', () => {
    expect(() => intelIommuDeviceType.create(context(), { 'aw-bits': 40 })).toThrow(/aw-bits/);
  });
});
