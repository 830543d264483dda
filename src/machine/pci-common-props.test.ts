/**
 * The QEMU 11.1 PCIDevice property set a QEMU 11.1-only type lists and
 * accepts (iommu-testdev): `-device iommu-testdev,help` byte for byte as
 * QEMU 11.1 prints it, and its parse errors worded as QEMU 11.1's.  The
 * 7.2 set stays what edu lists (registry.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { DeviceType } from './device-type.js';
import { boolDefaultText, pciCommonProps } from './pci-common-props.js';
import { parseI64, parsePropValue } from './props.js';
import { ConfigError, deviceHelp, getDeviceType, parseDeviceArg } from './registry.js';
import './builtins.js';

function errorOf(arg: string): string {
  try {
    parseDeviceArg(arg);
  } catch (e) {
    return (e as ConfigError).line;
  }
  return '<no error>';
}

describe('QEMU 11.1 PCIDevice properties', () => {
  it('-device iommu-testdev,help is QEMU 11.1 output', () => {
    // `chroot /opt/vtemu/qemu-11-sid qemu-system-x86_64 -device iommu-testdev,help`, QEMU 11.1.3.
    expect(deviceHelp(getDeviceType('iommu-testdev')!)).toBe(
      [
        'iommu-testdev options:',
        '  acpi-index=<uint32>    -  (default: 0)',
        '  addr=<str>             - Slot and optional function number, example: 06.0 or 06 (default: -1)',
        '  busnr=<busnr>',
        '  failover_pair_id=<str>',
        '  multifunction=<bool>   - on/off (default: off)',
        '  rombar=<int32>         -  (default: -1)',
        '  romfile=<str>',
        '  romsize=<uint32>       -  (default: 4294967295)',
        '  sriov-pf=<str>',
        '  x-max-bounce-buffer-size=<size> - Maximum buffer size allocated for bounce buffers used for mapped access to indirect DMA memory (default: 4096)',
        '  x-pcie-ari-nextfn-1=<bool> - on/off (default: off)',
        '  x-pcie-err-unc-mask=<bool> - on/off (default: on)',
        '  x-pcie-ext-tag=<bool>  - on/off (default: on)',
        '  x-pcie-lnksta-dllla=<bool> - on/off (default: on)',
        '',
      ].join('\n'),
    );
  });

  it('an 11.1 type prints its own boolean defaults as on/off; a 7.2 type as true/false', () => {
    const t: DeviceType = {
      name: 'test-11',
      description: '',
      bus: 'system',
      qemuRelease: '11.1',
      props: { flag: { kind: 'bool', default: true }, mode: { kind: 'OnOffAuto', default: 'auto' } },
      create: () => ({ typeName: 'test-11', reset() {} }),
    };
    // 11.1 also describes a boolean as `on/off` and prints an enum default bare
    // (`-device intel-iommu,help`: `caching-mode=<bool>    - on/off (default: off)`,
    // `eim=<OnOffAuto>        - on/off/auto (default: auto)`); 7.2 did neither.
    expect(deviceHelp(t)).toBe('test-11 options:\n  flag=<bool>            - on/off (default: on)\n  mode=<OnOffAuto>       - on/off/auto (default: auto)\n');
    expect(deviceHelp({ ...t, qemuRelease: '7.2' })).toBe('test-11 options:\n  flag=<bool>            -  (default: true)\n  mode=<OnOffAuto>       - on/off/auto (default: "auto")\n');
    expect([boolDefaultText('11.1', false), boolDefaultText('7.2', false)]).toEqual(['off', 'false']);
  });

  it('accepts them (addr and multifunction used, the rest ignored); 7.2-only ones are unknown', () => {
    const a = parseDeviceArg('iommu-testdev,addr=5.1,multifunction=on,rombar=-5,romsize=4096,x-max-bounce-buffer-size=1M,x-pcie-ext-tag=off,acpi-index=3');
    expect(a.kind).toBe('device');
    if (a.kind !== 'device') return;
    expect([a.spec.devfn, a.spec.multifunction, a.spec.explicit.size]).toEqual([(5 << 3) | 1, true, 0]);
    expect(errorOf('iommu-testdev,x-pcie-extcap-init=on')).toBe("-device iommu-testdev,x-pcie-extcap-init=on: Property 'iommu-testdev.x-pcie-extcap-init' not found");
    expect(Object.keys(pciCommonProps('7.2'))).not.toContain('busnr');
    expect(errorOf('edu,busnr=1')).toBe("-device edu,busnr=1: Property 'edu.busnr' not found");
  });

  it('errors as QEMU 11.1 words them', () => {
    const cases: [string, string][] = [
      ['rombar=abc', "Parameter 'rombar' expects integer"],
      ['rombar=99999999999', "Parameter 'rombar' expects int32_t"],
      ['rombar=-0x80000001', "Parameter 'rombar' expects int32_t"],
      ['busnr=3', "Property 'iommu-testdev.busnr' is not writable"],
      ['x-max-bounce-buffer-size=abc', "Parameter 'x-max-bounce-buffer-size' expects size"],
      ['sriov-pf=x', 'user cannot create SR-IOV VF with this device type'],
      // sriov-pf is refused at realize: a bad property after it is reported first.
      ['sriov-pf=x,foo=1', "Property 'iommu-testdev.foo' not found"],
      ['acpi-index=-1', "Parameter 'acpi-index' expects uint32_t"],
      ['multifunction=maybe', "Parameter 'multifunction' expects 'on' or 'off'"],
      ['addr=zz', "Property 'iommu-testdev.addr' doesn't take value 'zz'"],
      ['dma_mask=1', "Property 'iommu-testdev.dma_mask' not found"],
    ];
    for (const [props, message] of cases) expect(errorOf(`iommu-testdev,${props}`)).toBe(`-device iommu-testdev,${props}: ${message}`);
    expect(errorOf('iommu-testdev,rombar=0x7fffffff')).toBe('<no error>');
  });

  it('int32 values: strtoll with base 0, then the int32_t range', () => {
    const def = { kind: 'int32' } as const;
    expect(parsePropValue('p', def, '-2147483648')).toEqual({ value: -(2 ** 31) });
    expect(parsePropValue('p', def, '0x7fffffff')).toEqual({ value: 2 ** 31 - 1 });
    expect(parsePropValue('p', def, '-010')).toEqual({ value: -8 });
    expect(parsePropValue('p', def, '2147483648')).toEqual({ error: "Parameter 'p' expects int32_t" });
    expect(parsePropValue('p', def, '1x')).toEqual({ error: "Parameter 'p' expects integer" });
    expect(parseI64('9223372036854775807')).toBe(2n ** 63n - 1n);
    expect(parseI64('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(parseI64('9223372036854775808')).toBeNull();
    expect(parseI64('')).toBeNull();
  });
});
