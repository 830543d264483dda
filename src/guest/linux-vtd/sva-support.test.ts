/**
 * sva-support.ts: the probe-time decision of ATS / PASID / PRI (unit ECAP,
 * the function's capabilities) and dmar_ats_supported over a fake PCI
 * topology enumerated by the firmware (integrated devices, root ports named
 * or not by an ATSR, ALL_PORTS, bridges that forbid ATS, SATC).
 */
import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { fakeFn, installFakePci } from '../../../test/support/guest-fakes/fake-pci.js';
import { ECAP_PDS, ECAP_SVM, fakeSvaUnit } from '../../../test/support/guest-fakes/fake-sva-unit.js';
import { AtsrFlag, DmarType, ScopeType, type DmarStructure } from '../firmware/dmar.js';
import { enumeratePci, type PciTopology } from '../firmware/pci-enum.js';
import { PcieType } from '../firmware/pci-config.js';
import type { SvaCapabilities } from './pcie-caps.js';
import { NO_SVA_SUPPORT, decideSvaSupport, describeSvaSupport, dmarAtsSupported } from './sva-support.js';

const ALL_CAPS: SvaCapabilities = {
  ats: { offset: 0x100, qdep: 32, pageAligned: true },
  pasid: { offset: 0x110, width: 20, exec: true, priv: true },
  pri: { offset: 0x120, capacity: 32, pasidRequired: false },
};
/** ECAP.DT (bit 2) and ECAP.PRS (bit 29). */
const ECAP_DT = 1n << 2n;
const ECAP_PRS = 1n << 29n;

describe('decideSvaSupport (intel_iommu_probe_device)', () => {
  it('everything on a scalable unit with DT, PASID, PRS and PDS for a function with all three capabilities', async () => {
    const { unit } = await fakeSvaUnit();
    expect(decideSvaSupport(unit, ALL_CAPS, true)).toEqual({ ats: true, pasid: true, pri: true });
    expect(describeSvaSupport({ ats: true, pasid: true, pri: true })).toBe('ATS PASID PRI');
    expect(describeSvaSupport(NO_SVA_SUPPORT)).toBe('none');
  });

  it('PRI needs ATS, ECAP.PRS and ECAP.PDS; ATS needs ECAP.DT and the platform; PASID needs scalable mode', async () => {
    const noDt = await fakeSvaUnit({ ecap: ECAP_SVM & ~ECAP_DT });
    expect(decideSvaSupport(noDt.unit, ALL_CAPS, true)).toEqual({ ats: false, pasid: true, pri: false });
    const noPds = await fakeSvaUnit({ ecap: ECAP_SVM & ~ECAP_PDS });
    expect(decideSvaSupport(noPds.unit, ALL_CAPS, true)).toEqual({ ats: true, pasid: true, pri: false });
    const noPrs = await fakeSvaUnit({ ecap: ECAP_SVM & ~ECAP_PRS });
    expect(decideSvaSupport(noPrs.unit, ALL_CAPS, true)).toEqual({ ats: true, pasid: true, pri: false });
    const { unit } = await fakeSvaUnit();
    expect(decideSvaSupport(unit, ALL_CAPS, false)).toEqual({ ats: false, pasid: true, pri: false });
    unit.scalable = false;
    expect(decideSvaSupport(unit, ALL_CAPS, true)).toEqual({ ats: true, pasid: false, pri: false });
  });

  it('a capability the function lacks is never used', async () => {
    const { unit } = await fakeSvaUnit();
    expect(decideSvaSupport(unit, {}, true)).toEqual(NO_SVA_SUPPORT);
    expect(decideSvaSupport(unit, { ats: ALL_CAPS.ats, pasid: ALL_CAPS.pasid }, true)).toEqual({ ats: true, pasid: true, pri: false });
    expect(decideSvaSupport(unit, { pasid: ALL_CAPS.pasid, pri: ALL_CAPS.pri }, true)).toEqual({ ats: false, pasid: true, pri: false });
  });
});

/**
 * Bus 0: 00:01.0 an integrated endpoint; 00:02.0 root port -> 01:00.0;
 * 00:03.0 root port -> switch 02:00.0 -> 03:00.0 -> 04:00.0; 00:04.0 root
 * port -> PCIe-to-PCI bridge 05:00.0 -> 06:01.0.
 */
async function topology(): Promise<PciTopology> {
  const ep = (dev: number) => fakeFn(dev, 0, { pcieType: PcieType.Endpoint });
  const down = fakeFn(0, 0, { bridge: true, pcieType: PcieType.SwitchDownstream, children: [ep(0)] });
  const up = fakeFn(0, 0, { bridge: true, pcieType: PcieType.SwitchUpstream, children: [down] });
  const pciBridge = fakeFn(0, 0, { bridge: true, pcieType: PcieType.PcieToPciBridge, children: [fakeFn(1, 0)] });
  const p = new FakePlatform();
  installFakePci(p, [
    ep(1),
    fakeFn(2, 0, { bridge: true, pcieType: PcieType.RootPort, children: [ep(0)] }),
    fakeFn(3, 0, { bridge: true, pcieType: PcieType.RootPort, children: [up] }),
    fakeFn(4, 0, { bridge: true, pcieType: PcieType.RootPort, children: [pciBridge] }),
  ]);
  return enumeratePci(p);
}

const atsr = (flags: number, ...paths: Array<[number, number]>): DmarStructure => ({
  type: DmarType.Atsr, flags, segment: 0,
  scopes: paths.map((hop) => ({ type: ScopeType.PciSubHierarchy, enumerationId: 0, startBus: 0, path: [hop] })),
});
const satc = (flags: number, bus: number, dev: number): DmarStructure => ({
  type: DmarType.Satc, flags, segment: 0, scopes: [{ type: ScopeType.PciEndpoint, enumerationId: 0, startBus: bus, path: [[dev, 0]] }],
});

describe('dmarAtsSupported', () => {
  it('an integrated device may use ATS without any ATSR', async () => {
    const pci = await topology();
    expect(dmarAtsSupported(pci.at(0, 1, 0)!, [], pci, true)).toBe(true);
  });

  it('below a root port: only when an ATSR names that port, or one has ALL_PORTS', async () => {
    const pci = await topology();
    const direct = pci.at(1, 0, 0)!;
    const switched = pci.at(4, 0, 0)!;
    expect(dmarAtsSupported(direct, [], pci, true)).toBe(false);
    expect(dmarAtsSupported(direct, [atsr(0, [2, 0])], pci, true)).toBe(true);
    expect(dmarAtsSupported(switched, [atsr(0, [2, 0])], pci, true)).toBe(false);
    expect(dmarAtsSupported(switched, [atsr(0, [3, 0])], pci, true)).toBe(true);
    expect(dmarAtsSupported(switched, [atsr(AtsrFlag.AllPorts)], pci, true)).toBe(true);
  });

  it('a PCIe-to-PCI bridge on the way forbids ATS, even with ALL_PORTS', async () => {
    const pci = await topology();
    expect(pci.at(6, 1, 0)).toBeDefined();
    expect(dmarAtsSupported(pci.at(6, 1, 0)!, [atsr(AtsrFlag.AllPorts)], pci, true)).toBe(false);
  });

  it('a SATC naming the device decides first: allowed, unless it requires ATC and the unit is in legacy mode', async () => {
    const pci = await topology();
    const direct = pci.at(1, 0, 0)!;
    expect(dmarAtsSupported(direct, [satc(0, 1, 0)], pci, false)).toBe(true);
    expect(dmarAtsSupported(direct, [satc(1, 1, 0)], pci, true)).toBe(true);
    expect(dmarAtsSupported(direct, [satc(1, 1, 0), atsr(AtsrFlag.AllPorts)], pci, false)).toBe(false);
    expect(dmarAtsSupported(pci.at(0, 1, 0)!, [satc(1, 1, 0)], pci, false)).toBe(true); // another device's SATC
  });
});
