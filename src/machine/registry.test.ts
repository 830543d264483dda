import { describe, expect, it } from 'vitest';
import type { DeviceType } from './device-type.js';
import { ConfigError, deviceHelp, deviceListHelp, getDeviceType, listDeviceTypes, parseDeviceArg, parsePciAddr, registerDeviceType } from './registry.js';
import './builtins.js';

const fake: DeviceType = {
  name: 'test-fake',
  description: 'a fake',
  bus: 'system',
  category: 'Controller/Bridge/Hub',
  props: { flag: { kind: 'bool', default: false }, count: { kind: 'uint8' } },
  create() {
    return { typeName: 'test-fake', reset() {} };
  },
};
registerDeviceType(fake);

function errorOf(arg: string): string {
  try {
    parseDeviceArg(arg);
  } catch (e) {
    return (e as ConfigError).line;
  }
  return '<no error>';
}

describe('registry', () => {
  it('registers, looks up and refuses duplicates', () => {
    expect(getDeviceType('test-fake')).toBe(fake);
    expect(() => registerDeviceType(fake)).toThrow(/already registered/);
    expect(listDeviceTypes().map((t) => t.name)).toEqual(expect.arrayContaining(['edu', 'intel-iommu', 'test-fake']));
  });

  it('parses properties over defaults, id, bus, addr, multifunction', () => {
    const a = parseDeviceArg('edu,id=e0,bus=rp1,addr=3.2,multifunction=on,dma_mask=0xffffffff,rombar=0');
    expect(a.kind).toBe('device');
    if (a.kind !== 'device') return;
    expect(a.spec.type.name).toBe('edu');
    expect(a.spec.id).toBe('e0');
    expect(a.spec.bus).toBe('rp1');
    expect(a.spec.devfn).toBe((3 << 3) | 2);
    expect(a.spec.multifunction).toBe(true);
    expect(a.spec.props['dma_mask']).toBe(0xffffffff);
    expect([...a.spec.explicit]).toEqual(['dma_mask']);
    const f = parseDeviceArg('test-fake,count=7');
    if (f.kind === 'device') expect(f.spec.props).toEqual({ flag: false, count: 7 });
  });

  it('PCI addr syntax', () => {
    expect(parsePciAddr('06.0')).toBe(0x30);
    expect(parsePciAddr('0x1f')).toBe(0xf8);
    expect(parsePciAddr('1f.7')).toBe(0xff);
    expect(parsePciAddr('0x20')).toBeNull();
    expect(parsePciAddr('1.8')).toBeNull();
    expect(parsePciAddr('zz')).toBeNull();
    expect(parsePciAddr('-1')).toBeNull();
  });

  it('QEMU error messages', () => {
    expect(errorOf('edu,foo=1')).toBe("-device edu,foo=1: Property 'edu.foo' not found");
    expect(errorOf('nosuch')).toBe("-device nosuch: 'nosuch' is not a valid device model name");
    expect(errorOf('edu,addr=zz')).toBe("-device edu,addr=zz: Property 'edu.addr' doesn't take value 'zz'");
    expect(errorOf('id=x')).toBe("-device id=x: Parameter 'driver' is missing");
    expect(errorOf('edu,,x')).toBe("-device edu,,x: 'edu,x' is not a valid device model name");
    expect(errorOf('intel-iommu,addr=1')).toBe("-device intel-iommu,addr=1: Property 'intel-iommu.addr' not found");
    expect(errorOf('test-fake,flag=maybe')).toBe("-device test-fake,flag=maybe: Parameter 'flag' expects 'on' or 'off'");
    try {
      parseDeviceArg('edu,foo');
    } catch (e) {
      expect((e as ConfigError).lines('vtemu')).toBe(
        "vtemu: -device edu,foo: warning: short-form boolean option 'foo' deprecated\nPlease use foo=on instead\nvtemu: -device edu,foo: Property 'edu.foo' not found\n",
      );
    }
  });

  it('help: type properties (QEMU 7.2 layout for edu) and the grouped list', () => {
    expect(deviceHelp(getDeviceType('edu')!)).toBe(
      [
        'edu options:',
        '  acpi-index=<uint32>    -  (default: 0)',
        '  addr=<int32>           - Slot and optional function number, example: 06.0 or 06 (default: -1)',
        '  dma_mask=<uint64>',
        '  failover_pair_id=<str>',
        '  multifunction=<bool>   - on/off (default: false)',
        '  rombar=<uint32>        -  (default: 1)',
        '  romfile=<str>',
        '  romsize=<uint32>       -  (default: 4294967295)',
        '  x-pcie-extcap-init=<bool> - on/off (default: true)',
        '  x-pcie-lnksta-dllla=<bool> - on/off (default: true)',
        '',
      ].join('\n'),
    );
    const list = deviceListHelp();
    expect(list.startsWith('Controller/Bridge/Hub devices:\n')).toBe(true);
    const [controllers, misc] = list.split('\n\n');
    expect(controllers).toContain('name "test-fake", bus System, desc "a fake"');
    expect(misc!.startsWith('Misc devices:\n')).toBe(true);
    expect(list).toContain('name "edu", bus PCI\n');
    expect(list).toContain('name "intel-iommu", bus System, desc "Intel IOMMU (VT-d) DMA Remapping device"\n');
    expect(parseDeviceArg('help').kind).toBe('help');
    expect(parseDeviceArg('edu,?').kind).toBe('help');
  });
});
