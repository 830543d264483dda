import { describe, expect, it } from 'vitest';
import { capValue, ecapValue } from './caps.js';
import { INTEL_IOMMU_DEPRECATED_PROPS, INTEL_IOMMU_PROPS, resolveIommuConfig } from './props.js';
import { Reg } from './reg-layout.js';
import { VtdBench } from '../../../test/support/vtd-bench.js';

const hex = (v: bigint) => '0x' + v.toString(16).toUpperCase().padStart(16, '0');

describe('intel-iommu properties', () => {
  it('lists every QEMU 11.1 property with its default, and vtemu\'s own', () => {
    const qemu111 = [
      ['aw-bits', 48],
      ['caching-mode', false],
      ['device-iotlb', false],
      ['dma-translation', true],
      ['eim', 'auto'],
      ['fs1gp', true],
      ['fsts', false],
      ['intremap', 'auto'],
      ['pasid-bits', 0],
      ['scalable-mode', false],
      ['snoop-control', false],
      ['stale-tm', false],
      ['svm', false],
      ['version', 0],
    ] as const;
    for (const [name, def] of qemu111) expect(INTEL_IOMMU_PROPS[name]?.default, name).toBe(def);
    expect(INTEL_IOMMU_PROPS['nfr']?.default).toBe(1);
    // Every other listed property is vtemu's own and says so.
    const own = Object.keys(INTEL_IOMMU_PROPS).filter((n) => !qemu111.some(([q]) => q === n));
    expect(own).toEqual(['nfr', 'x-pi', 'x-cfi', 'x-iqer', 'x-devtlb-timeout-sid', 'x-devtlb-error-sid', 'x-fs5lp', 'x-nested', 'x-smpwc', 'x-sanitize', 'x-strict']);
    for (const n of own) expect(INTEL_IOMMU_PROPS[n]!.help, n).toMatch(/\(beyond QEMU\)$/);
    // The scalable-mode extensions are off by default: the default machine is QEMU's.
    for (const n of ['x-fs5lp', 'x-nested', 'x-smpwc']) expect(INTEL_IOMMU_PROPS[n], n).toMatchObject({ kind: 'bool', default: false });
  });

  it('keeps the names QEMU 11.1 dropped as deprecated, unlisted aliases', () => {
    expect(Object.keys(INTEL_IOMMU_DEPRECATED_PROPS).sort()).toEqual(['dma-drain', 'pt', 'x-buggy-eim', 'x-flts', 'x-pasid-mode', 'x-scalable-mode']);
    for (const n of Object.keys(INTEL_IOMMU_DEPRECATED_PROPS)) expect(INTEL_IOMMU_PROPS[n], n).toBeUndefined();
    const d = INTEL_IOMMU_DEPRECATED_PROPS;
    expect(d['x-scalable-mode']!.replacement!(true)).toEqual(['scalable-mode', true]);
    expect(d['x-flts']!.replacement!(false)).toEqual(['fsts', false]);
    expect(d['x-pasid-mode']!.replacement!(true)).toEqual(['pasid-bits', 8]);
    expect(d['x-pasid-mode']!.replacement!(false)).toEqual(['pasid-bits', 0]);
    for (const n of ['pt', 'dma-drain', 'x-buggy-eim']) expect(d[n]!.replacement, n).toBeUndefined();
    expect([d['pt']!.def.default, d['dma-drain']!.def.default, d['x-buggy-eim']!.def.default]).toEqual([true, true, false]);
    expect(d['x-flts']!.warning(true)).toBe("intel-iommu property 'x-flts' is deprecated (QEMU 11.1 name: 'fsts'); use fsts=on");
    expect(d['x-scalable-mode']!.warning(false)).toBe("intel-iommu property 'x-scalable-mode' is deprecated (QEMU 11.1 name: 'scalable-mode'); use scalable-mode=off");
    expect(d['x-pasid-mode']!.warning(true)).toBe("intel-iommu property 'x-pasid-mode' is deprecated (QEMU 11.1 name: 'pasid-bits'); use pasid-bits=8");
    expect(d['x-pasid-mode']!.warning(false)).toBe("intel-iommu property 'x-pasid-mode' is deprecated (QEMU 11.1 name: 'pasid-bits'); use pasid-bits=0");
    expect(d['pt']!.warning(false)).toBe("intel-iommu property 'pt' is deprecated (QEMU 11.1 removed it and always sets ECAP.PT); pt=off kept as a vtemu extension");
    expect(d['dma-drain']!.warning(true)).toBe(
      "intel-iommu property 'dma-drain' is deprecated (QEMU 11.1 removed it and always sets CAP.DRD/DWD); dma-drain=on kept as a vtemu extension",
    );
    expect(d['x-buggy-eim']!.warning(true)).toBe("intel-iommu property 'x-buggy-eim' is deprecated (QEMU 11.1 removed it; use eim=on); x-buggy-eim=on kept as a vtemu extension");
  });

  it('resolves intremap/eim like QEMU 11.1 without KVM', () => {
    const c = resolveIommuConfig({});
    expect(c.intremap).toBe(true);
    expect(c.eim).toBe(false);
    // No KVM: kernel-irqchip changes nothing, as QEMU 11.1 -accel qtest shows
    // (ECAP 0xf00f4a for kernel-irqchip=on, split and off alike; 0xf00f5a with eim=on).
    for (const irq of ['on', 'split', 'off'] as const) {
      expect(resolveIommuConfig({}, irq).intremap).toBe(true);
      expect(resolveIommuConfig({}, irq).eim).toBe(false);
      expect(resolveIommuConfig({ eim: 'on' }, irq).eim).toBe(true);
    }
    expect(resolveIommuConfig({ 'x-buggy-eim': true }).eim).toBe(true);
    expect(resolveIommuConfig({ 'x-buggy-eim': true, intremap: 'off' }).eim).toBe(false);
    expect(resolveIommuConfig({ intremap: 'off' }).eim).toBe(false);
  });

  it('refuses what QEMU 11.1 refuses, with its messages, in its order', () => {
    const refusal = (props: Record<string, boolean | number | string>): string => {
      try {
        resolveIommuConfig(props);
      } catch (e) {
        return (e as Error).message;
      }
      return '<accepted>';
    };
    const LEGACY_AW = 'Legacy mode: supported values for aw-bits are: 39, 48';
    const cases: [Record<string, boolean | number | string>, string][] = [
      // Each message checked with `chroot /opt/vtemu/qemu-11-sid qemu-system-x86_64 -device intel-iommu,...` (11.1.3).
      [{ 'aw-bits': 40 }, LEGACY_AW],
      [{ 'aw-bits': 0 }, LEGACY_AW],
      [{ 'aw-bits': 56 }, LEGACY_AW],
      [{ eim: 'on', intremap: 'off' }, 'eim=on cannot be selected without intremap=on'],
      [{ eim: 'on', intremap: 'off', fsts: true, 'aw-bits': 57 }, 'eim=on cannot be selected without intremap=on'],
      [{ fsts: true }, 'fsts is only available in scalable mode'],
      [{ fsts: true, 'aw-bits': 39, 'pasid-bits': 8 }, 'fsts is only available in scalable mode'],
      [{ 'scalable-mode': true, 'aw-bits': 57 }, 'Scalable mode(fsts=off): supported values for aw-bits are: 39, 48'],
      [{ 'scalable-mode': true, fsts: true, 'aw-bits': 39 }, 'Scalable mode(fsts=on): supported value for aw-bits is: 48'],
      [{ 'pasid-bits': 8 }, 'Need to set scalable mode for PASID'],
      [{ 'pasid-bits': 21 }, 'Need to set scalable mode for PASID'],
      [{ 'pasid-bits': 8, 'aw-bits': 40 }, LEGACY_AW],
      [{ 'scalable-mode': true, 'pasid-bits': 21 }, 'PASID width 21 exceeds Max PASID Width 20 allowed in PCI spec'],
      [{ 'scalable-mode': true, 'pasid-bits': 21, svm: true }, 'PASID width 21 exceeds Max PASID Width 20 allowed in PCI spec'],
      [{ svm: true }, 'Need to set device IOTLB for svm'],
      [{ svm: true, 'aw-bits': 40 }, LEGACY_AW],
      [{ svm: true, 'pasid-bits': 8 }, 'Need to set scalable mode for PASID'],
      [{ svm: true, 'device-iotlb': true }, 'Need to set fsts for svm'],
      [{ svm: true, 'device-iotlb': true, 'dma-translation': false }, 'Need to set fsts for svm'],
      [{ svm: true, 'device-iotlb': true, 'scalable-mode': true, fsts: true, 'dma-translation': false }, 'Need to set dma-translation for svm'],
      [{ svm: true, 'device-iotlb': true, 'scalable-mode': true, fsts: true }, 'Need to set PASID support for svm'],
    ];
    for (const [props, message] of cases) expect(refusal(props), JSON.stringify(props)).toBe(message);
    // Accepted as QEMU 11.1 accepts them (plus vtemu's aw-bits=57 in legacy mode).
    const accepted: Record<string, boolean | number | string>[] = [
      { eim: 'on' },
      { 'aw-bits': 39 },
      { 'aw-bits': 57 },
      { 'pasid-bits': 0 },
      { 'dma-translation': false, 'stale-tm': true, fs1gp: false, version: 7 },
      { 'scalable-mode': true },
      { 'scalable-mode': true, fsts: true },
      { 'scalable-mode': true, 'pasid-bits': 20 },
      { 'scalable-mode': true, 'dma-translation': false },
      { svm: true, 'device-iotlb': true, 'scalable-mode': true, fsts: true, 'pasid-bits': 8 },
    ];
    for (const props of accepted) {
      expect(refusal(props), JSON.stringify(props)).toBe('<accepted>');
    }
    expect(() => resolveIommuConfig({ nfr: 0 })).toThrow(/nfr must be/);
    expect(() => resolveIommuConfig({ nfr: 223 })).toThrow(/nfr must be/);
    expect(resolveIommuConfig({ nfr: 222 }).nfr).toBe(222);
  });

  it('checks x-fs5lp, x-nested and x-smpwc after QEMU 11.1, in its style', () => {
    const refusal = (props: Record<string, boolean | number | string>): string => {
      try {
        resolveIommuConfig(props);
      } catch (e) {
        return (e as Error).message;
      }
      return '<accepted>';
    };
    const SM = { 'scalable-mode': true } as const;
    const FS = { 'scalable-mode': true, fsts: true } as const;
    const cases: [Record<string, boolean | number | string>, string][] = [
      // QEMU's own refusals come first, whatever extension is set.
      [{ 'x-fs5lp': true, fsts: true }, 'fsts is only available in scalable mode'],
      [{ 'x-nested': true, 'pasid-bits': 8 }, 'Need to set scalable mode for PASID'],
      [{ ...FS, 'x-nested': true, svm: true }, 'Need to set device IOTLB for svm'],
      [{ 'x-smpwc': true, 'aw-bits': 40 }, 'Legacy mode: supported values for aw-bits are: 39, 48'],
      // x-fs5lp: needs fsts; with it fsts=on also takes aw-bits=57, no other width.
      [{ 'x-fs5lp': true }, 'Need to set fsts for x-fs5lp'],
      [{ ...SM, 'x-fs5lp': true }, 'Need to set fsts for x-fs5lp'],
      [{ ...SM, 'x-fs5lp': true, 'aw-bits': 57 }, 'Scalable mode(fsts=off): supported values for aw-bits are: 39, 48'],
      [{ ...FS, 'aw-bits': 57 }, 'Scalable mode(fsts=on): supported value for aw-bits is: 48'],
      [{ ...FS, 'x-fs5lp': true, 'aw-bits': 39 }, 'Scalable mode(fsts=on): supported value for aw-bits is: 48'],
      [{ ...FS, 'x-fs5lp': false, 'aw-bits': 57 }, 'Scalable mode(fsts=on): supported value for aw-bits is: 48'],
      // x-nested: scalable mode, then fsts (first stage), then dma-translation (second stage).
      [{ 'x-nested': true }, 'Need to set scalable mode for x-nested'],
      [{ 'x-nested': true, 'dma-translation': false }, 'Need to set scalable mode for x-nested'],
      [{ ...SM, 'x-nested': true }, 'Need to set fsts for x-nested'],
      [{ ...SM, 'x-nested': true, 'dma-translation': false }, 'Need to set fsts for x-nested'],
      [{ ...FS, 'x-nested': true, 'dma-translation': false }, 'Need to set dma-translation for x-nested'],
      // x-smpwc: scalable mode.
      [{ 'x-smpwc': true }, 'Need to set scalable mode for x-smpwc'],
      // Between extensions: x-fs5lp, x-nested, x-smpwc.
      [{ 'x-fs5lp': true, 'x-nested': true, 'x-smpwc': true }, 'Need to set fsts for x-fs5lp'],
      [{ 'x-nested': true, 'x-smpwc': true }, 'Need to set scalable mode for x-nested'],
    ];
    for (const [props, message] of cases) expect(refusal(props), JSON.stringify(props)).toBe(message);
    const accepted: Record<string, boolean | number | string>[] = [
      { ...FS, 'x-fs5lp': true },
      { ...FS, 'x-fs5lp': true, 'aw-bits': 57 },
      { ...FS, 'x-nested': true },
      { ...FS, 'x-nested': true, 'x-fs5lp': true, 'aw-bits': 57, 'x-smpwc': true },
      { ...SM, 'x-smpwc': true },
      { ...SM, 'x-smpwc': true, 'dma-translation': false },
      { ...FS, 'x-nested': true, svm: true, 'device-iotlb': true, 'pasid-bits': 20 },
      { 'x-fs5lp': false, 'x-nested': false, 'x-smpwc': false },
    ];
    for (const props of accepted) expect(refusal(props), JSON.stringify(props)).toBe('<accepted>');
  });

  it('resolves fs5lp, nested and smpwc (off unless asked)', () => {
    const off = resolveIommuConfig({ 'scalable-mode': true, fsts: true });
    expect([off.fs5lp, off.nested, off.smpwc]).toEqual([false, false, false]);
    const base = { 'scalable-mode': true, fsts: true } as const;
    expect(resolveIommuConfig({ ...base, 'x-fs5lp': true })).toMatchObject({ fs5lp: true, nested: false, smpwc: false });
    expect(resolveIommuConfig({ ...base, 'x-nested': true })).toMatchObject({ fs5lp: false, nested: true, smpwc: false });
    expect(resolveIommuConfig({ ...base, 'x-smpwc': true })).toMatchObject({ fs5lp: false, nested: false, smpwc: true });
    expect(resolveIommuConfig({ ...base, 'x-fs5lp': true, 'aw-bits': 57 }).awBits).toBe(57);
    // The CLI's on/off strings resolve like booleans.
    expect(resolveIommuConfig({ ...base, 'x-nested': 'on' }).nested).toBe(true);
  });

  it('every listed property has a default, and the resolved raw values carry them all', () => {
    const defaults = Object.entries(INTEL_IOMMU_PROPS).map(([name, def]) => [name, def.default]);
    for (const [name, def] of defaults) expect(def, String(name)).toBeDefined();
    // Components read their own x-... properties from raw: unset ones must read as their default.
    expect(resolveIommuConfig({}).raw).toEqual(Object.fromEntries(defaults));
    const raw = resolveIommuConfig({ 'x-pi': true, nfr: 4 }).raw;
    expect(raw['x-pi']).toBe(true);
    expect(raw['nfr']).toBe(4);
    expect(raw['x-devtlb-timeout-sid']).toBe(0x10000);
    expect(raw['x-cfi']).toBe(false);
  });

  it('carries version (QEMU 11.1 accepts any u32 and leaves VER at 0x10)', () => {
    expect(resolveIommuConfig({}).version).toBe(0);
    expect(resolveIommuConfig({ version: 7 }).version).toBe(7);
    // Observed with QEMU 11.1.3: -device intel-iommu,version=7 reads VER 0x10.
    expect(new VtdBench({ props: { version: 7 } }).r32(Reg.VER)).toBe(0x10);
  });

  it('removed properties keep their 7.2 meaning; 11.1 property sets always get PT and drain', () => {
    expect(resolveIommuConfig({}).pt).toBe(true);
    expect(resolveIommuConfig({}).dmaDrain).toBe(true);
    expect(resolveIommuConfig({ pt: false }).pt).toBe(false);
    expect(resolveIommuConfig({ 'dma-drain': false }).dmaDrain).toBe(false);
    // The old scalable combination check (dma-drain) is gone in 11.1.
    expect(resolveIommuConfig({ 'scalable-mode': true, 'dma-drain': false }).scalableMode).toBe(true);
  });
});

describe('CAP / ECAP', () => {
  const caps = (props: Record<string, boolean | number | string>, irq: 'on' | 'off' | 'split' = 'off') => {
    const c = resolveIommuConfig(props, irq);
    return [hex(capValue(c)), hex(ecapValue(c))];
  };
  it('match the values QEMU reports', () => {
    expect(caps({})).toEqual(['0x80D2008C222F0606', '0x0000000000F00F4A']);
    expect(caps({ intremap: 'on', 'caching-mode': true })[0]).toBe('0x80D2008C222F0686');
    expect(caps({ intremap: 'off' })[1]).toBe('0x0000000000000F42');
    expect(caps({}, 'on')[1]).toBe('0x0000000000F00F4A');
    expect(caps({ 'aw-bits': 39 })[0]).toBe('0x80D2008C22260206');
    expect(caps({ 'device-iotlb': true })[1]).toBe('0x0000000000F00F4E');
  });
  it('derive SAGAW/MGAW for 57-bit and NFR from nfr (beyond QEMU)', () => {
    const c = capValue(resolveIommuConfig({ 'aw-bits': 57, nfr: 8 }));
    expect((c >> 8n) & 0x1fn).toBe(0xen);
    expect((c >> 16n) & 0x3fn).toBe(56n);
    expect((c >> 40n) & 0xffn).toBe(7n);
    expect((c >> 24n) & 0x3ffn).toBe(0x22n);
  });
  it('dma-translation=off clears SAGAW; (deprecated) pt=off clears ECAP.PT; snoop-control sets SC; no drain with (deprecated) dma-drain=off', () => {
    expect((capValue(resolveIommuConfig({ 'dma-translation': false })) >> 8n) & 0x1fn).toBe(0n);
    expect(ecapValue(resolveIommuConfig({ pt: false })) & 0x40n).toBe(0n);
    expect(ecapValue(resolveIommuConfig({ 'snoop-control': true })) & 0x80n).toBe(0x80n);
    expect(capValue(resolveIommuConfig({ 'dma-drain': false })) & (3n << 54n)).toBe(0n);
  });
});
