/**
 * The extension interface of the VT-d core: the registry of extensions, and
 * the contract hooks.ts documents — when the core calls each hook and what
 * it has already done by then — checked with a recording extension on a
 * real unit.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench, type VtdBenchOptions } from '../../../test/support/vtd-bench.js';
import { IntelIommu } from './device.js';
import { resolveIommuConfig } from './props.js';
import { registeredIommuExtensions, registerIommuExtension, SID_UNKNOWN, type IommuCore, type IommuExtension, type IommuHooks } from './hooks.js';
import { qiIrExtension } from './queue-ir-extension.js';
import { EventCtl, Fsts, Gcmd, Gsts, Ics, Reg } from './reg-layout.js';

/** A unit with one recording extension; `core` is what the extension was handed. */
function unit(hooks: (core: IommuCore, log: string[]) => Partial<IommuHooks>, opts: VtdBenchOptions = {}) {
  const log: string[] = [];
  let core: IommuCore | undefined;
  const ext: IommuExtension = (c) => {
    core = c;
    return { name: 'rec', ...hooks(c, log) };
  };
  const b = new VtdBench({ ...opts, extensions: [ext] });
  return { b, log, core: core! };
}

describe('SID_UNKNOWN', () => {
  it('is -1, never a real source ID', () => {
    expect(SID_UNKNOWN).toBe(-1);
  });
});

describe('what an extension is handed', () => {
  it('the unit itself as its core, once, at construction', () => {
    let calls = 0;
    const b = new VtdBench({
      props: { 'aw-bits': 39 },
      extensions: [
        (c) => {
          calls++;
          expect(c.config.awBits).toBe(39);
          expect(c.haw).toBe(39);
          // The register file is defined before extensions are created.
          expect(c.regs.get32(Reg.VER)).toBe(0x10);
          return { name: 'x' };
        },
      ],
    });
    expect(calls).toBe(1);
    expect(b.iommu.extension('x')).toEqual({ name: 'x' });
  });

  it('the memory, MSI target, clock, tracer, events and latched queue base of the unit', () => {
    const { b, core } = unit(() => ({}));
    expect(core).toBe(b.iommu);
    expect(core.memory).toBe(b.memory);
    expect(core.clock).toBe(b.clock);
    expect(core.events).toBe(b.iommu.events);
    core.msi.deliverMsi(0xfee0_0000, 1, { kind: 'iommu' });
    expect(b.msis).toHaveLength(1);
    b.w64(Reg.IQA, 0x7000n);
    b.gcmd(Gcmd.QIE);
    expect(core.iqBase).toBe(0x7000);
  });

  it('raw register access: no masks, no side effects; 64-bit as halves', () => {
    const { b, core } = unit(() => ({}));
    core.regs.set32(Reg.GSTS, Gsts.TES);
    expect(b.r32(Reg.GSTS)).toBe(Gsts.TES >>> 0);
    expect(b.iommu.dmarEnabled).toBe(false);
    core.regs.set64(Reg.IQH, 0x30, 0x1);
    expect(core.regs.get64(Reg.IQH)).toBe(0x1_0000_0030n);
    expect(b.r64(Reg.IQH)).toBe(0x1_0000_0030n);
    core.regs.set32(Reg.FEDATA, 0xffff_ffff);
    core.regs.setClear32(Reg.FEDATA, 0x1, 0xff);
    expect(core.regs.get32(Reg.FEDATA)).toBe(0xffff_ff01);
  });

  it('define32 takes effect at once and at every reset', () => {
    const { b, core } = unit(() => ({}));
    core.regs.define32(Reg.IQER, 0x5, 0xf0, 0x1);
    expect(b.r32(Reg.IQER)).toBe(0x5);
    b.w32(Reg.IQER, 0xff);
    expect(b.r32(Reg.IQER)).toBe(0xf4);
    b.iommu.reset();
    expect(b.r32(Reg.IQER)).toBe(0x5);
    core.regs.define32(Reg.IQER + 4, 0xab, 0, 0, 0xff);
    expect(core.regs.get32(Reg.IQER + 4)).toBe(0xab);
    expect(b.r32(Reg.IQER + 4)).toBe(0); // write-only bits read 0
  });
});

describe('when hooks run', () => {
  it('reset: after the core reset its registers and state', () => {
    const { b, log, core } = unit((c, log) => ({
      reset: () => void log.push(`reset fedata=${c.regs.get32(Reg.FEDATA)} gsts=${c.regs.get32(Reg.GSTS)}`),
    }));
    b.w32(Reg.FEDATA, 0x55);
    b.w64(Reg.RTADDR, 0x1000n);
    b.gcmd(Gcmd.SRTP | Gcmd.TE);
    b.iommu.reset();
    expect(log).toEqual(['reset fedata=0 gsts=0']);
    expect(core.qiEnabled()).toBe(false);
  });

  it('readOverride: asked per 32-bit word, both words for an 8-byte read', () => {
    const { b, log } = unit((_c, log) => ({
      readOverride: (off) => {
        log.push(off.toString(16));
        return undefined;
      },
    }));
    b.r32(Reg.FEDATA);
    b.r64(Reg.CAP);
    expect(log).toEqual(['3c', 'c', '8']);
  });

  it('onQieChange: QIES already set on enable (cleared again if refused); cleared on disable only if accepted', () => {
    let accept = false;
    const { b, log, core } = unit((c, log) => ({
      onQieChange: (enable) => {
        log.push(`${enable} qies=${c.qiEnabled()}`);
        return accept;
      },
    }));
    b.w64(Reg.IQA, 0x9000n);
    b.gcmd(Gcmd.QIE);
    expect(core.qiEnabled()).toBe(false);
    expect(core.iqBase).toBe(0); // not latched when refused
    accept = true;
    b.gcmd(Gcmd.QIE);
    expect(core.qiEnabled()).toBe(true);
    expect(core.iqBase).toBe(0x9000);
    accept = false;
    b.gcmd(0, Gcmd.QIE);
    expect(core.qiEnabled()).toBe(true);
    accept = true;
    b.gcmd(0, Gcmd.QIE);
    expect(core.qiEnabled()).toBe(false);
    expect(log).toEqual(['true qies=true', 'true qies=true', 'false qies=true', 'false qies=true']);
    // Writing GCMD without a QIE change does not ask.
    b.gcmd(0);
    expect(log).toHaveLength(4);
  });

  it('every extension is asked about QIE; one refusal is enough', () => {
    const log: string[] = [];
    const ext = (name: string, ok: boolean): IommuExtension => () => ({
      name,
      onQieChange: (e) => {
        log.push(`${name}:${e}`);
        return ok;
      },
    });
    const b = new VtdBench({ extensions: [ext('no', false), ext('yes', true)] });
    b.gcmd(Gcmd.QIE);
    expect(log).toEqual(['no:true', 'yes:true']);
    expect(b.iommu.qiEnabled()).toBe(false);
    const c = new VtdBench({ extensions: [ext('yes', true), ext('no', false)] });
    c.gcmd(Gcmd.QIE);
    expect(c.iommu.qiEnabled()).toBe(false);
  });

  it('onIqtWrite / onIqaWrite: the value is already stored with its mask applied', () => {
    const { b, log } = unit((c, log) => ({
      onIqtWrite: () => void log.push(`iqt=${c.regs.get32(Reg.IQT).toString(16)}`),
      onIqaWrite: () => void log.push(`iqa=${c.regs.get64(Reg.IQA).toString(16)}`),
    }));
    b.w64(Reg.IQT, 0xffff_ffffn);
    b.w64(Reg.IQA, 0xffff_ffff_ffff_ffffn);
    expect(log).toEqual(['iqt=7fff0', 'iqa=fffffffffffff807']);
  });

  it('onIcsWrite: write-1-to-clear already applied', () => {
    const { b, log, core } = unit((c, log) => ({ onIcsWrite: () => void log.push(`ics=${c.regs.get32(Reg.ICS)}`) }));
    core.regs.set32(Reg.ICS, Ics.IWC);
    b.w32(Reg.ICS, 0);
    b.w32(Reg.ICS, Ics.IWC);
    expect(log).toEqual(['ics=1', 'ics=0']);
  });

  it('onIectlWrite: the value is already stored', () => {
    const { b, log } = unit((c, log) => ({ onIectlWrite: () => void log.push(`iectl=${c.regs.get32(Reg.IECTL).toString(16)}`) }));
    b.w32(Reg.IECTL, 0);
    b.w32(Reg.IECTL, EventCtl.IM);
    expect(log).toEqual(['iectl=0', 'iectl=80000000']);
  });

  it('onFstsWrite: W1C applied and FECTL.IP already handled', () => {
    const { b, log, core } = unit((c, log) => ({
      onFstsWrite: () => void log.push(`fsts=${c.regs.get32(Reg.FSTS)} fectl=${c.regs.get32(Reg.FECTL).toString(16)}`),
    }));
    core.raiseFaultStatus(Fsts.IQE);
    expect(b.r32(Reg.FECTL)).toBe((EventCtl.IM | EventCtl.IP) >>> 0);
    b.w32(Reg.FSTS, Fsts.IQE);
    expect(log).toEqual(['fsts=0 fectl=80000000']);
  });

  it('onSirtp: GSTS.IRTPS already set; every SIRTP write, as a one-shot', () => {
    const { b, log } = unit((c, log) => ({ onSirtp: () => void log.push(`irtps=${(c.regs.get32(Reg.GSTS) & Gsts.IRTPS) !== 0}`) }));
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(Gcmd.SIRTP);
    b.gcmd(0);
    expect(log).toEqual(['irtps=true', 'irtps=true']);
    expect(b.r32(Reg.GSTS) & Gsts.IRTPS).toBe(Gsts.IRTPS);
  });

  it('onIreChange: on a change only, GSTS.IRES already updated, only with intremap', () => {
    const { b, log } = unit((c, log) => ({ onIreChange: (on) => void log.push(`${on} ires=${c.irEnabled()}`) }));
    b.gcmd(Gcmd.IRE);
    b.gcmd(Gcmd.IRE);
    b.gcmd(0, Gcmd.IRE);
    expect(log).toEqual(['true ires=true', 'false ires=false']);
    const off = unit((_c, log) => ({ onIreChange: (on) => void log.push(`${on}`) }), { props: { intremap: 'off' } });
    off.b.gcmd(Gcmd.IRE);
    expect(off.log).toEqual([]);
    expect(off.b.r32(Reg.GSTS) & Gsts.IRES).toBe(0);
  });

  it('onCfiChange: when GCMD.CFI differs from GSTS.CFIS, which the core never sets itself', () => {
    const { b, log } = unit((_c, log) => ({ onCfiChange: (on) => void log.push(`${on}`) }));
    b.w32(Reg.GCMD, Gcmd.CFI);
    b.w32(Reg.GCMD, Gcmd.CFI);
    b.w32(Reg.GCMD, 0);
    expect(log).toEqual(['true', 'true']);
    expect(b.r32(Reg.GSTS)).toBe(0);
    // An extension that reports CFIS sees changes only.
    const m = unit((c, log) => ({
      onCfiChange: (on) => {
        log.push(`${on}`);
        c.regs.setClear32(Reg.GSTS, on ? Gsts.CFIS : 0, on ? 0 : Gsts.CFIS);
      },
    }));
    m.b.w32(Reg.GCMD, Gcmd.CFI);
    m.b.w32(Reg.GCMD, Gcmd.CFI);
    m.b.w32(Reg.GCMD, 0);
    m.b.w32(Reg.GCMD, 0);
    expect(m.log).toEqual(['true', 'false']);
  });

  it('interruptWrite: the requester\'s source ID, SID_UNKNOWN for the IOAPIC', () => {
    const { b, log } = unit((_c, log) => ({
      interruptWrite: (addr, data, sid) => {
        log.push(`${addr.toString(16)} ${data} ${sid}`);
        return sid !== SID_UNKNOWN;
      },
    }));
    b.iommu.translatorFor(b.device(1, 2).req).interruptWrite(0xfee0_0010, 9);
    b.iommu.interruptFromIoapic(0xfee0_0020, 10);
    expect(log).toEqual(['fee00010 9 258', 'fee00020 10 -1']);
    expect(b.msis).toEqual([{ address: 0xfee0_0020, data: 10, origin: { kind: 'ioapic' } }]);
  });

  it('a hook that is absent is simply not called', () => {
    const b = new VtdBench({ extensions: [() => ({ name: 'empty' })] });
    expect(() => {
      b.w32(Reg.IQT, 0x10);
      b.w32(Reg.IQA, 0);
      b.w32(Reg.ICS, 1);
      b.w32(Reg.IECTL, 0);
      b.w32(Reg.FSTS, 0);
      b.gcmd(Gcmd.SIRTP | Gcmd.IRE | Gcmd.QIE | Gcmd.CFI);
      b.r64(Reg.IQA);
      b.iommu.interruptFromIoapic(0xfee0_0000, 1);
      b.iommu.reset();
    }).not.toThrow();
    expect(b.iommu.qiEnabled()).toBe(false); // reset
    expect(b.msis).toHaveLength(1);
  });
});

describe('the registry', () => {
  it('holds the queued-invalidation / interrupt-remapping extension once the device is loaded', () => {
    expect(registeredIommuExtensions()).toEqual([qiIrExtension]);
  });

  it('appends new extensions in order, each once; units created afterwards get them', () => {
    const a: IommuExtension = () => ({ name: 'reg-a' });
    const c: IommuExtension = () => ({ name: 'reg-c' });
    registerIommuExtension(a);
    registerIommuExtension(c);
    registerIommuExtension(a);
    registerIommuExtension(qiIrExtension);
    expect(registeredIommuExtensions()).toEqual([qiIrExtension, a, c]);
    const b = new VtdBench();
    const u = new IntelIommu({ memory: b.memory, msi: { deliverMsi: () => {} }, clock: b.clock }, resolveIommuConfig({}));
    expect(u.hooks.map((h) => h.name)).toEqual(['qi-ir', 'reg-a', 'reg-c']);
  });
});
