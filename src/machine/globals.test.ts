import { describe, expect, it } from 'vitest';
import { applyGlobals, Globals, mchGlobals, parseGlobalArg } from './globals.js';
import { ConfigError, parseDeviceArg, type DeviceSpec } from './registry.js';
import './builtins.js';

const spec = (arg: string): DeviceSpec => {
  const p = parseDeviceArg(arg);
  if (p.kind !== 'device') throw new Error('help');
  return p.spec;
};
const errorOf = (f: () => unknown): ConfigError => {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('no error');
};

describe('-global parsing (QEMU 11.1 qemu_global_option)', () => {
  it('D.P=V keeps everything after the first = (commas included)', () => {
    expect(parseGlobalArg('mch.extended-tseg-mbytes=1,,2').global).toEqual({ driver: 'mch', property: 'extended-tseg-mbytes', value: '1,,2' });
    expect(parseGlobalArg('edu.dma_mask=').global.value).toBe('');
  });
  it('driver=,property=,value= form; unknown keys and missing ones refused', () => {
    expect(parseGlobalArg('driver=mch,property=x,value=3,').global).toEqual({ driver: 'mch', property: 'x', value: '3' });
    expect(errorOf(() => parseGlobalArg('driver=mch,property=x')).line).toBe("-global driver=mch,property=x: options 'driver', 'property', and 'value' are required");
    expect(errorOf(() => parseGlobalArg('mch.=1')).line).toBe("-global mch.=1: Invalid parameter 'mch.'");
    const e = errorOf(() => parseGlobalArg('noequals'));
    expect(e.line).toBe("-global noequals: Invalid parameter 'equals'");
    expect(e.preamble).toEqual(["-global noequals: warning: short-form boolean option 'noequals' deprecated\nPlease use equals=off instead"]);
  });
});

describe('-global applied', () => {
  it('a default under explicit properties; later globals win', () => {
    const g = Globals.parse(['edu.dma_mask=0x10', 'edu.dma_mask=0x20']);
    expect(applyGlobals(spec('edu'), g).props['dma_mask']).toBe(0x20);
    expect(applyGlobals(spec('edu,dma_mask=5'), g).props['dma_mask']).toBe(5);
  });
  it('bad values and unknown properties: QEMU 11.1 string-visitor wording with the -device context', () => {
    const bad = (arg: string, dev = 'edu'): string => errorOf(() => applyGlobals(spec(dev), Globals.parse([arg]))).line;
    expect(bad('edu.dma_mask=zz')).toBe("-device edu: can't apply global edu.dma_mask=zz: Parameter 'dma_mask' expects uint64");
    expect(bad('edu.foo=1')).toBe("-device edu: can't apply global edu.foo=1: Property 'edu.foo' not found");
    expect(bad('edu.rombar=zz')).toBe("-device edu: can't apply global edu.rombar=zz: Parameter 'rombar' expects int64");
    expect(bad('intel-iommu.aw-bits=256', 'intel-iommu')).toBe("-device intel-iommu: can't apply global intel-iommu.aw-bits=256: Parameter 'aw-bits' expects uint8_t");
  });
  it('unused globals of system-bus types warn; PCI (hotpluggable) and unknown types do not', () => {
    const g = Globals.parse(['intel-iommu.aw-bits=48', 'edu.x=1', 'foo.bar=1']);
    expect(g.unusedWarnings()).toEqual(['warning: global intel-iommu.aw-bits=48 not used']);
  });
  it('mch: extended-tseg-mbytes and smbase-smram, PCI properties accepted, others refused', () => {
    expect(mchGlobals(Globals.parse(['mch.extended-tseg-mbytes=0x20', 'mch.smbase-smram=off', 'mch.rombar=0']))).toEqual({ extendedTsegMbytes: 32, smbaseSmram: false });
    expect(errorOf(() => mchGlobals(Globals.parse(['mch.extended-tseg-mbytes=65536']))).line).toBe("can't apply global mch.extended-tseg-mbytes=65536: Parameter 'extended-tseg-mbytes' expects uint16_t");
    expect(errorOf(() => mchGlobals(Globals.parse(['mch.foo=1']))).line).toBe("can't apply global mch.foo=1: Property 'mch.foo' not found");
  });
});
