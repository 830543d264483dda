import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { Gcmd, Gsts, Reg, Rtaddr } from '../hw/intel-iommu/reg-layout.js';
import { bitNames, infoIommu, parseInfoIommuArgs } from './info-iommu.js';
import { runHmp } from './hmp.js';

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});
function machine(devices: string[]): Machine {
  const m = createMachine({ devices, accel: 'qtest' });
  machines.push(m);
  return m;
}
const BASE = 0xfed9_0000;

describe('info iommu', () => {
  it('says so without a unit', () => {
    expect(runHmp(machine(['edu']), 'info iommu')).toBe('No IOMMU\r\n');
    expect(runHmp(null, 'info iommu')).toBe('No IOMMU\r\n');
    expect(infoIommu([])).toBe('No IOMMU\n');
  });

  it('shows a unit at reset: legacy mode, translation off, registers, address spaces', () => {
    const m = machine(['intel-iommu,id=vtd', 'edu']);
    const u = m.iommus[0]!;
    const lines = runHmp(m, 'info iommu').split('\r\n');
    expect(lines[0]).toBe(`intel-iommu "vtd" at 0x00000000fed90000: legacy mode, translation off`);
    expect(lines[1]).toBe(`  VER 0x00000010 (1.0)  CAP 0x${u.capability.toString(16).padStart(16, '0')}  ECAP 0x${u.extendedCapability.toString(16).padStart(16, '0')}`);
    expect(lines[2]).toBe('  GSTS 0x00000000 []  FSTS 0x00000000 [] FRI 0');
    expect(lines[3]).toBe('  RTADDR 0x0000000000000000');
    expect(lines[4]).toBe('  IQ head 0x0000000000000000 tail 0x0000000000000000 addr 0x0000000000000000');
    expect(lines[5]).toContain('00:01.0 untranslated');
    expect(lines[5]).toMatch(/^  address spaces: 00:00\.0 untranslated, /);
  });

  it('follows the guest: scalable root table, translation on', () => {
    const m = machine(['intel-iommu,scalable-mode=on', 'edu']);
    const u: IntelIommu = m.iommus[0]!;
    m.memory.write(BASE + Reg.RTADDR, 4, 0x10_0000 | Rtaddr.SMT);
    m.memory.write(BASE + Reg.RTADDR + 4, 4, 0);
    m.memory.write(BASE + Reg.GCMD, 4, Gcmd.SRTP);
    m.memory.write(BASE + Reg.GCMD, 4, Gcmd.TE);
    expect(u.dmarEnabled).toBe(true);
    const lines = runHmp(m, 'info iommu').split('\r\n');
    expect(lines[0]).toBe('intel-iommu "" at 0x00000000fed90000: scalable mode, translation on');
    expect(lines[2]).toBe('  GSTS 0xc0000000 [TES RTPS]  FSTS 0x00000000 [] FRI 0');
    expect(((Gsts.TES | Gsts.RTPS) >>> 0).toString(16)).toBe('c0000000');
    expect(lines[3]).toBe('  RTADDR 0x0000000000100400');
    expect(lines[5]).toContain('00:01.0 translated');
  });

  it('names set bits', () => {
    expect(bitNames(0b101, [['A', 4], ['B', 2], ['C', 1]])).toBe('[A C]');
    expect(bitNames(0, [['A', 4]])).toBe('[]');
  });
});

describe('info iommu options', () => {
  const lines = (m: Machine, cmd: string): string[] => runHmp(m, cmd).split('\r\n');

  it('adds the views asked for, flags in any order; -a adds all four', () => {
    const m = machine(['intel-iommu', 'edu']);
    const heads = (cmd: string): string[] => lines(m, cmd).filter((l) => /^  (IOTLB|context cache|PASID cache|interrupt entry cache|invalidation queue|faults|interrupt remapping):/.test(l)).map((l) => l.split(':')[0]!.trim());
    expect(heads('info iommu')).toEqual([]);
    expect(heads('info iommu -f')).toEqual(['faults']);
    expect(heads('info iommu -i -q')).toEqual(['invalidation queue', 'interrupt remapping']);
    expect(heads('info iommu -a')).toEqual(['IOTLB', 'context cache', 'PASID cache', 'interrupt entry cache', 'invalidation queue', 'faults', 'interrupt remapping']);
    expect(lines(m, 'info iommu -q')).toContain('    queue never enabled: no latched base or size');
    expect(lines(m, 'info iommu -i')).toContain('    no table latched (SIRTP never set)');
  });

  it('answers a bad argument with one line, never an exception', () => {
    const m = machine(['intel-iommu', 'edu']);
    expect(runHmp(m, 'info iommu 00:01.0')).toBe("info iommu: unexpected '00:01.0' (a request needs -t)\r\n");
    expect(runHmp(m, 'info iommu -t')).toBe('info iommu: -t needs a requester bus:dev.fn\r\n');
    expect(runHmp(m, 'info iommu -t 0:1')).toBe("info iommu: '0:1' is not a requester bus:dev.fn\r\n");
    expect(runHmp(m, 'info iommu -t 00:20.0')).toBe("info iommu: '00:20.0' is not a requester bus:dev.fn\r\n");
    expect(runHmp(m, 'info iommu -t 00:01.0 zz')).toBe("info iommu: 'zz' is not a number\r\n");
    expect(runHmp(m, 'info iommu -t 00:01.0 0x100000 0x1000')).toBe('info iommu: PASID 1048576 above 0xfffff\r\n');
    expect(runHmp(m, 'info iommu -t 00:01.0 1 2 3')).toBe("info iommu: unexpected '3'\r\n");
    expect(runHmp(m, 'info iommu -x')).toBe('info iommu: unsupported option -x\r\n');
    expect(runHmp(m, 'info iommu -t 00:01.0 0x20000000000000')).toBe("info iommu: '0x20000000000000' is not a number\r\n");
    expect(runHmp(null, 'info iommu -t 00:01.0')).toBe('No IOMMU\r\n');
  });

  it('reads -t words: one number is the IOVA, two are PASID and IOVA, a trailing w a write', () => {
    expect(parseInfoIommuArgs(new Set(['t']), '00:1f.2 0x1000')).toEqual({ views: [], path: { sid: 0xfa, pasid: null, iova: 0x1000, write: false } });
    expect(parseInfoIommuArgs(new Set(['t']), '01:00.0 5 4096 w')).toEqual({ views: [], path: { sid: 0x100, pasid: 5, iova: 4096, write: true } });
    expect(parseInfoIommuArgs(new Set(['t', 'c']), 'ff:1f.7')).toEqual({ views: ['caches'], path: { sid: 0xffff, pasid: null, iova: null, write: false } });
  });
});
