import { describe, expect, it } from 'vitest';
import { parseUuid, resolveBoot } from './boot-options.js';
import { FwCfg, FwCfgKey } from './fw-cfg.js';
import { addQ35Items } from './q35-items.js';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion } from '../../memory/region.js';

const err = (args: string[]): string => {
  try {
    resolveBoot(args);
  } catch (e) {
    return (e as Error).message;
  }
  return 'ok';
};

describe('-uuid', () => {
  it('16 bytes in string order, either case; anything else refused', () => {
    expect([...parseUuid('4600CB32-38ec-4b2f-8acb-81c6ea54f2d8')]).toEqual([0x46, 0x00, 0xcb, 0x32, 0x38, 0xec, 0x4b, 0x2f, 0x8a, 0xcb, 0x81, 0xc6, 0xea, 0x54, 0xf2, 0xd8]);
    for (const bad of ['', '4600cb32-38ec-4b2f-8acb-81c6ea54f2d', '4600cb32x38ec-4b2f-8acb-81c6ea54f2d8', '4600cb32-38ec-4b2f-8acb-81c6ea54f2dg']) {
      expect(() => parseUuid(bad)).toThrow('failed to parse UUID string: wrong format');
    }
  });
});

describe('-boot', () => {
  it('merges, later keys win; defaults: no menu, reboot -1', () => {
    expect(resolveBoot([])).toEqual({ menu: false, rebootTimeout: -1 });
    expect(resolveBoot(['menu=on,reboot-timeout=5', 'reboot-timeout=0x10,splash-time= 7'])).toEqual({ menu: true, rebootTimeout: 16, splashTime: 7 });
  });
  it("QEMU 11.1's errors in its order", () => {
    expect(err(['foo=1,menu=zz'])).toBe("Parameter 'boot.menu' expects 'on' or 'off'");
    expect(err(['foo=1'])).toBe("Parameter 'boot.foo' is unexpected");
    expect(err(['reboot-timeout=5 '])).toBe("Parameter 'boot.reboot-timeout' expects integer");
    expect(err(['once=x,order=y'])).toBe("Invalid boot device 'y'");
    expect(err(['nomenu'])).toBe("Boot device 'n' was given twice");
    expect(err(['reboot-timeout=99999,splash-time=99999'])).toBe('splash-time is invalid,it should be a value between 0 and 65535');
    expect(err(['reboot-timeout=-2'])).toBe('reboot timeout is invalid,it should be a value between -1 and 65535');
    expect(err(['order=x', 'order=c'])).toBe('ok');
  });
  it('fills BOOT_MENU, etc/boot-fail-wait (le32) and etc/boot-menu-wait (le16, only with splash-time)', () => {
    const fw = new FwCfg({ memory: new AddressSpace('m', new ContainerRegion('sys', 2 ** 32)) });
    addQ35Items(fw, { ramBelow4g: 1 << 27, boot: resolveBoot(['menu=on,reboot-timeout=15,splash-time=12']), smp: { cpus: 2, apicIdLimit: 3 } });
    expect([...fw.file('etc/boot-fail-wait')!]).toEqual([15, 0, 0, 0]);
    expect([...fw.file('etc/boot-menu-wait')!]).toEqual([12, 0]);
    const item = (key: number, n: number): number[] => {
      fw.select(key);
      return Array.from({ length: n }, () => fw.readData(1));
    };
    expect(item(FwCfgKey.BOOT_MENU, 2)).toEqual([1, 0]);
    expect(item(FwCfgKey.NB_CPUS, 2)).toEqual([2, 0]);
    expect(item(FwCfgKey.MAX_CPUS, 2)).toEqual([3, 0]);
    const plain = new FwCfg({ memory: new AddressSpace('m', new ContainerRegion('sys', 2 ** 32)) });
    addQ35Items(plain, { ramBelow4g: 1 << 27 });
    expect([...plain.file('etc/boot-fail-wait')!]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(plain.file('etc/boot-menu-wait')).toBeUndefined();
  });
});
