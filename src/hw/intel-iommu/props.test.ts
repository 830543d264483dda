import { describe, expect, it } from 'vitest';
import { capValue, ecapValue } from './caps.js';
import { INTEL_IOMMU_PROPS, resolveIommuConfig } from './props.js';

const hex = (v: bigint) => '0x' + v.toString(16).toUpperCase().padStart(16, '0');

describe('intel-iommu properties', () => {
  it('lists every QEMU property with its default', () => {
    for (const [name, def] of [
      ['aw-bits', 48],
      ['caching-mode', false],
      ['intremap', 'auto'],
      ['eim', 'auto'],
      ['device-iotlb', false],
      ['pt', true],
      ['dma-drain', true],
      ['dma-translation', true],
      ['snoop-control', false],
      ['x-scalable-mode', false],
      ['x-pasid-mode', false],
      ['x-flts', false],
      ['fs1gp', true],
      ['svm', false],
      ['stale-tm', false],
      ['version', 0],
      ['x-buggy-eim', false],
      ['nfr', 1],
    ] as const) {
      expect(INTEL_IOMMU_PROPS[name]?.default, name).toBe(def);
    }
  });

  it('resolves intremap/eim like QEMU without KVM', () => {
    const c = resolveIommuConfig({});
    expect(c.intremap).toBe(true);
    expect(c.eim).toBe(false);
    // No KVM: kernel-irqchip changes nothing, as QEMU 7.2 shows under TCG
    // (ECAP 0xf00f4a for kernel-irqchip=on, split and off alike).
    for (const irq of ['on', 'split', 'off'] as const) {
      expect(resolveIommuConfig({}, irq).intremap).toBe(true);
      expect(resolveIommuConfig({}, irq).eim).toBe(false);
    }
    expect(resolveIommuConfig({ 'x-buggy-eim': true }).eim).toBe(true);
    expect(resolveIommuConfig({ intremap: 'off' }).eim).toBe(false);
  });

  it('refuses what QEMU refuses, with its messages', () => {
    expect(() => resolveIommuConfig({ 'aw-bits': 40 })).toThrow('Supported values for aw-bits are: 39, 48, 57');
    expect(() => resolveIommuConfig({ eim: 'on', intremap: 'off' })).toThrow('eim=on cannot be selected without intremap=on');
    expect(() => resolveIommuConfig({ eim: 'on' })).toThrow('eim=on requires accel=kvm,kernel-irqchip=split');
    expect(() => resolveIommuConfig({ eim: 'on' }, 'split')).toThrow('eim=on requires accel=kvm,kernel-irqchip=split');
    expect(resolveIommuConfig({ eim: 'on', 'x-buggy-eim': true }, 'split').eim).toBe(true);
    expect(() => resolveIommuConfig({ 'x-scalable-mode': true, 'dma-drain': false })).toThrow('Need to set dma_drain');
    expect(() => resolveIommuConfig({ 'x-pasid-mode': true })).toThrow('Need to set scalable mode for PASID');
    expect(() => resolveIommuConfig({ 'x-scalable-mode': true })).toThrow(/not implemented/);
    expect(() => resolveIommuConfig({ svm: true })).toThrow(/svm=on requires/);
    expect(() => resolveIommuConfig({ nfr: 0 })).toThrow(/nfr must be/);
    expect(() => resolveIommuConfig({ nfr: 223 })).toThrow(/nfr must be/);
    expect(resolveIommuConfig({ nfr: 222 }).nfr).toBe(222);
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
  it('dma-translation=off clears SAGAW; pt=off clears ECAP.PT; snoop-control sets SC; no drain without dma-drain', () => {
    expect((capValue(resolveIommuConfig({ 'dma-translation': false })) >> 8n) & 0x1fn).toBe(0n);
    expect(ecapValue(resolveIommuConfig({ pt: false })) & 0x40n).toBe(0n);
    expect(ecapValue(resolveIommuConfig({ 'snoop-control': true })) & 0x80n).toBe(0x80n);
    expect(capValue(resolveIommuConfig({ 'dma-drain': false })) & (3n << 54n)).toBe(0n);
  });
});
