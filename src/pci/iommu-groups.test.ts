/**
 * IOMMU groups as Linux forms them, over hand-built topologies (each rule of
 * iommu-groups.ts: DMA aliases behind PCIe-to-PCI and conventional bridges,
 * ACS on the whole path for SV/RR/CR/UF with offered-only controls, switch
 * ports, multi-function slots, probe order and group numbering) and over a
 * live q35 host with QEMU's ports, read back from configuration space.
 */
import { describe, expect, it } from 'vitest';
import { PciDevice } from './device.js';
import { PcieRootPort, PciePciBridge, PciPciBridge, X3130Upstream, Xio3130Downstream } from './bridges.js';
import { BridgeReg } from './config.js';
import { addPcieCap, PcieType } from './pcie-cap.js';
import { AcsBit, addFunctionAcsCap, LINUX_REQUIRED_ACS, linuxAcsControl } from './pcie-ext-caps.js';
import {
  acsEnabled,
  computeIommuGroups,
  describePciTopology,
  functionLabel,
  PcieTypeExtra,
  type TopologyBus,
  type TopologyFunction,
} from './iommu-groups.js';
import { makeTestHost, TestEndpoint } from '../../test/support/pci-host.js';

/** QEMU's port ACS capability (SV TB RR CR UF DT) with the control as given. */
const portAcs = (ctrl: number) => ({ cap: 0x005f, ctrl });
/** What Linux programs into QEMU's port ACS. */
const ACS_ON = portAcs(linuxAcsControl(0x005f));

let counter = 0;
/** A function; `name` defaults to a unique label. */
function fn(devfn: number, pcieType: number | null, more: Partial<TopologyFunction> = {}): TopologyFunction {
  return { devfn, pcieType, multifunction: false, acs: null, name: `f${counter++}`, ...more };
}
const bus = (number: number, ...functions: TopologyFunction[]): TopologyBus => ({ number, functions });

/** Groups as lists of names, in group order. */
function names(root: TopologyBus): string[][] {
  return computeIommuGroups(root).groups.map((g) => g.members.map((m) => m.name!));
}

const CONV = null;
const EP = PcieType.Endpoint;

describe('acsEnabled (Linux pci_acs_enabled without quirks)', () => {
  it('conventional functions, PCIe-to-PCI / PCI-to-PCIe bridges and event collectors: never', () => {
    for (const t of [CONV, PcieType.PcieToPciBridge, PcieTypeExtra.PciToPcieBridge, PcieTypeExtra.RcEventCollector]) {
      expect(acsEnabled(fn(0, t, { acs: { cap: 0, ctrl: 0xffff } })), String(t)).toBe(false);
    }
  });

  it('root and downstream ports: only through ACS with SV, RR, CR and UF on', () => {
    for (const t of [PcieType.RootPort, PcieType.Downstream]) {
      expect(acsEnabled(fn(0, t))).toBe(false);
      expect(acsEnabled(fn(0, t, { acs: portAcs(0) }))).toBe(false);
      expect(acsEnabled(fn(0, t, { acs: ACS_ON }))).toBe(true);
      for (const bit of [AcsBit.SourceValidation, AcsBit.RequestRedirect, AcsBit.CompletionRedirect, AcsBit.UpstreamForwarding]) {
        expect(acsEnabled(fn(0, t, { acs: portAcs(LINUX_REQUIRED_ACS & ~bit) })), `without 0x${bit.toString(16)}`).toBe(false);
      }
      // Translation blocking, egress control and direct translated P2P do not matter.
      expect(acsEnabled(fn(0, t, { acs: portAcs(LINUX_REQUIRED_ACS) }))).toBe(true);
    }
  });

  it('controls the capability does not offer count as hard-wired on (except egress control)', () => {
    const rp = (cap: number, ctrl: number) => fn(0, PcieType.RootPort, { acs: { cap, ctrl } });
    expect(acsEnabled(rp(0, 0))).toBe(true);
    expect(acsEnabled(rp(AcsBit.SourceValidation, 0))).toBe(false);
    expect(acsEnabled(rp(AcsBit.SourceValidation, AcsBit.SourceValidation))).toBe(true);
    expect(acsEnabled(rp(0, 0), AcsBit.EgressControl)).toBe(false);
  });

  it('endpoints and upstream ports: single-function always; multi-function only through ACS', () => {
    for (const t of [EP, PcieType.Upstream, PcieTypeExtra.LegacyEndpoint, PcieTypeExtra.RcIntegratedEndpoint]) {
      expect(acsEnabled(fn(0, t))).toBe(true);
      expect(acsEnabled(fn(0, t, { multifunction: true }))).toBe(false);
      expect(acsEnabled(fn(0, t, { multifunction: true, acs: { cap: 0, ctrl: 0 } }))).toBe(true);
    }
  });

  it('other types: always', () => {
    expect(acsEnabled(fn(0, 0x3))).toBe(true);
  });
});

describe('computeIommuGroups', () => {
  it('q35 root bus: one group per single function, the ICH9 multi-function slot together', () => {
    const root = bus(
      0,
      fn(0x00, CONV, { name: 'mch' }),
      fn(0x08, CONV, { name: 'edu1' }),
      fn(0x10, CONV, { name: 'edu2' }),
      fn(0xf8, CONV, { name: 'lpc', multifunction: true }),
      fn(0xfa, CONV, { name: 'ahci', multifunction: true }),
      fn(0xfb, CONV, { name: 'smbus', multifunction: true }),
    );
    expect(names(root)).toEqual([['mch'], ['edu1'], ['edu2'], ['lpc', 'ahci', 'smbus']]);
  });

  it('functions are probed in devfn order whatever the input order', () => {
    const root = bus(0, fn(0x10, CONV, { name: 'b' }), fn(0x08, CONV, { name: 'a' }));
    expect(names(root)).toEqual([['a'], ['b']]);
  });

  it('root port with ACS on: the endpoint below has its own group', () => {
    const root = bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, fn(0, EP, { name: 'ep' })) }));
    expect(names(root)).toEqual([['rp'], ['ep']]);
  });

  it('root port with ACS off, partly on, or absent: the endpoint joins the port', () => {
    for (const acs of [portAcs(0), portAcs(AcsBit.SourceValidation | AcsBit.RequestRedirect | AcsBit.CompletionRedirect), null]) {
      const root = bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs, secondary: bus(1, fn(0, EP, { name: 'ep' })) }));
      expect(names(root), JSON.stringify(acs)).toEqual([['rp', 'ep']]);
    }
  });

  it('probe order: a root bus is finished before the buses below; groups numbered in allocation order', () => {
    const ep = fn(0, EP, { name: 'ep' });
    const root = bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, ep) }), fn(0x18, CONV, { name: 'edu' }));
    const r = computeIommuGroups(root);
    expect(r.groups.map((g) => [g.id, g.members.map((m) => m.name)])).toEqual([
      [0, ['rp']],
      [1, ['edu']],
      [2, ['ep']],
    ]);
    expect(r.groupOf.get(ep)!.id).toBe(2);
  });

  it('switch: QEMU downstream ports have no ACS, so each endpoint joins its downstream port', () => {
    const dn = (devfn: number, n: string, acs: TopologyFunction['acs']) =>
      fn(devfn, PcieType.Downstream, { name: n, acs, secondary: bus(3 + devfn, fn(0, EP, { name: `ep-${n}` })) });
    const topo = (acs: TopologyFunction['acs']) =>
      bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, fn(0, PcieType.Upstream, { name: 'up', secondary: bus(2, dn(0, 'dn0', acs), dn(8, 'dn1', acs)) })) }));
    expect(names(topo(null))).toEqual([['rp'], ['up'], ['dn0', 'ep-dn0'], ['dn1', 'ep-dn1']]);
    expect(names(topo(ACS_ON))).toEqual([['rp'], ['up'], ['dn0'], ['dn1'], ['ep-dn0'], ['ep-dn1']]);
  });

  it('ACS is needed on the whole path: without it on the root port the switch collapses into one group', () => {
    const root = bus(
      0,
      fn(0x10, PcieType.RootPort, {
        name: 'rp',
        acs: portAcs(0),
        secondary: bus(1, fn(0, PcieType.Upstream, { name: 'up', secondary: bus(2, fn(0, PcieType.Downstream, { name: 'dn', acs: ACS_ON, secondary: bus(3, fn(0, EP, { name: 'ep' })) })) })),
      }),
    );
    expect(names(root)).toEqual([['rp', 'up', 'dn', 'ep']]);
  });

  it('a multi-function upstream port without ACS breaks the path below it', () => {
    const root = bus(
      0,
      fn(0x10, PcieType.RootPort, {
        name: 'rp',
        acs: ACS_ON,
        secondary: bus(1, fn(0, PcieType.Upstream, { name: 'up', multifunction: true, secondary: bus(2, fn(0, PcieType.Downstream, { name: 'dn', acs: ACS_ON, secondary: bus(3, fn(0, EP, { name: 'ep' })) })) })),
      }),
    );
    expect(names(root)).toEqual([['rp'], ['up', 'dn', 'ep']]);
  });

  it('PCIe-to-PCI bridge: everything behind it (nested bridges too) joins its group', () => {
    const behind = bus(2, fn(0x08, CONV, { name: 'a' }), fn(0x10, CONV, { name: 'b' }), fn(0x18, CONV, { name: 'pb', secondary: bus(3, fn(0, CONV, { name: 'c' })) }));
    const root = bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, fn(0, PcieType.PcieToPciBridge, { name: 'br', secondary: behind })) }));
    expect(names(root)).toEqual([['rp'], ['br', 'a', 'b', 'pb', 'c']]);
  });

  it('PCI-to-PCIe bridge (type 8) aliases too', () => {
    const root = bus(0, fn(0x10, PcieTypeExtra.PciToPcieBridge, { name: 'br', secondary: bus(1, fn(0, EP, { name: 'ep' })) }));
    expect(names(root)).toEqual([['br', 'ep']]);
  });

  it('conventional PCI-PCI bridge on the root bus: the devices behind it join the bridge', () => {
    const root = bus(0, fn(0x08, CONV, { name: 'edu' }), fn(0x18, CONV, { name: 'pb', secondary: bus(1, fn(0, CONV, { name: 'a' }), fn(0x08, CONV, { name: 'b' })) }));
    expect(names(root)).toEqual([['edu'], ['pb', 'a', 'b']]);
  });

  it('multi-function PCIe endpoint below an isolated port: together without ACS, apart with QEMU endpoint ACS', () => {
    const slot = (acs: TopologyFunction['acs']) =>
      bus(0, fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, fn(0, EP, { name: 'f0', multifunction: true, acs }), fn(1, EP, { name: 'f1', multifunction: true, acs }), fn(8, EP, { name: 'other' })) }));
    expect(names(slot(null))).toEqual([['rp'], ['f0', 'f1'], ['other']]);
    expect(names(slot({ cap: 0, ctrl: 0 }))).toEqual([['rp'], ['f0'], ['f1'], ['other']]);
  });

  it('multi-function: a function joins only siblings that lack ACS; the multi-function bit of the joining function decides', () => {
    // f0 isolated by ACS, f1 and f2 without: f1 and f2 together, f0 alone.
    const mixed = bus(0, fn(0, EP, { name: 'f0', multifunction: true, acs: { cap: 0, ctrl: 0 } }), fn(1, EP, { name: 'f1', multifunction: true }), fn(2, EP, { name: 'f2', multifunction: true }));
    expect(names(mixed)).toEqual([['f0'], ['f1', 'f2']]);
    // A later function without the multi-function bit does not look for siblings (Linux probes in order).
    const asym = bus(0, fn(0, CONV, { name: 'f0', multifunction: true }), fn(1, CONV, { name: 'f1' }));
    expect(names(asym)).toEqual([['f0'], ['f1']]);
    // But a later multi-function function joins an earlier sibling without the bit.
    const asym2 = bus(0, fn(0, CONV, { name: 'f0' }), fn(1, CONV, { name: 'f1', multifunction: true }));
    expect(names(asym2)).toEqual([['f0', 'f1']]);
    // A function isolated by its own ACS does not look for siblings, even after one without ACS.
    const late = bus(0, fn(0, EP, { name: 'f0', multifunction: true }), fn(1, EP, { name: 'f1', multifunction: true, acs: { cap: 0, ctrl: 0 } }));
    expect(names(late)).toEqual([['f0'], ['f1']]);
    // Different slots or buses never merge.
    const slots = bus(0, fn(0x00, CONV, { name: 'a', multifunction: true }), fn(0x08, CONV, { name: 'b', multifunction: true }));
    expect(names(slots)).toEqual([['a'], ['b']]);
    const buses = bus(0, fn(0x00, CONV, { name: 'a', multifunction: true }), fn(0x10, PcieType.RootPort, { name: 'rp', acs: ACS_ON, secondary: bus(1, fn(0x00, EP, { name: 'b', multifunction: true })) }));
    expect(names(buses)).toEqual([['a'], ['rp'], ['b']]);
  });

  it('multi-function root ports with ACS on stay apart, each with its own endpoint', () => {
    const rp = (devfn: number, n: string) => fn(devfn, PcieType.RootPort, { name: n, multifunction: true, acs: ACS_ON, secondary: bus(devfn + 1, fn(0, EP, { name: `ep-${n}` })) });
    expect(names(bus(0, rp(0x10, 'rp0'), rp(0x11, 'rp1')))).toEqual([['rp0'], ['rp1'], ['ep-rp0'], ['ep-rp1']]);
    const off = (devfn: number, n: string) => fn(devfn, PcieType.RootPort, { name: n, multifunction: true, acs: portAcs(0), secondary: bus(devfn + 1, fn(0, EP, { name: `ep-${n}` })) });
    expect(names(bus(0, off(0x10, 'rp0'), off(0x11, 'rp1')))).toEqual([['rp0', 'rp1', 'ep-rp0', 'ep-rp1']]);
  });

  it('an empty bus has no groups', () => {
    expect(computeIommuGroups(bus(0)).groups).toEqual([]);
  });
});

/** A PCIe endpoint with a PCIe capability and, optionally, QEMU's endpoint ACS. */
class PcieEndpoint extends PciDevice {
  constructor(acs = false) {
    super({ typeName: 'pcie-ep', vendorId: 0x1234, deviceId: 0x22, revision: 0, classCode: 0x00ff00, express: true });
    addPcieCap(this, 0x40, { type: PcieType.Endpoint, devCap: 0, devCtlWmask: 0, linkCap: 0, linkSta: 0, devCap2: 0, devCtl2Wmask: 0 });
    if (acs) addFunctionAcsCap(this, 0x100);
  }
}

describe('describePciTopology on a live q35 host', () => {
  it('reads types, multi-function bits, ACS and bus numbers; groups follow the guest ACS programming', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort({ chassis: 1, slot: 1 });
    host.rootBus.plug(rp, { devfn: 0x10 });
    rp.secondaryBus.plug(new PcieEndpoint());
    const edu = new TestEndpoint();
    host.rootBus.plug(edu, { devfn: 0x18 });
    rp.configWrite(BridgeReg.SecondaryBus, 1, 1);

    const topo = describePciTopology(host.rootBus);
    const rpFn = topo.functions.find((f) => f.devfn === 0x10)!;
    expect(rpFn).toMatchObject({ pcieType: PcieType.RootPort, multifunction: false, acs: { cap: 0x005f, ctrl: 0 }, name: '00:02.0' });
    expect(rpFn.secondary).toMatchObject({ number: 1, functions: [{ devfn: 0, pcieType: PcieType.Endpoint, acs: null, name: '01:00.0' }] });
    expect(topo.functions.find((f) => f.devfn === 0xfa)).toMatchObject({ pcieType: null, multifunction: true, name: '00:1f.2' });
    // TestEndpoint has a 4 KiB config space but no PCIe capability: conventional to Linux.
    expect(topo.functions.find((f) => f.devfn === 0x18)!.pcieType).toBeNull();

    expect(names(topo)).toEqual([['00:00.0'], ['00:02.0', '01:00.0'], ['00:03.0'], ['00:1f.0', '00:1f.2', '00:1f.3']]);
    // The guest enables ACS on the root port as Linux does.
    rp.configWrite(0x148 + 6, 2, linuxAcsControl(0x005f));
    expect(names(describePciTopology(host.rootBus))).toEqual([['00:00.0'], ['00:02.0'], ['00:03.0'], ['00:1f.0', '00:1f.2', '00:1f.3'], ['01:00.0']]);
  });

  it('a QEMU switch, a PCIe-to-PCI bridge and a PCI bridge', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort({ chassis: 1, slot: 1 });
    host.rootBus.plug(rp, { devfn: 0x10 });
    const up = new X3130Upstream();
    rp.secondaryBus.plug(up);
    const dn = new Xio3130Downstream({ chassis: 2, slot: 0 });
    up.secondaryBus.plug(dn);
    dn.secondaryBus.plug(new PcieEndpoint());
    const br = new PciePciBridge();
    host.rootBus.plug(br, { devfn: 0x18 });
    br.secondaryBus.plug(new TestEndpoint({ express: false }), { devfn: 0x08 });
    const pb = new PciPciBridge({ chassisNr: 1 });
    host.rootBus.plug(pb, { devfn: 0x20 });
    pb.secondaryBus.plug(new TestEndpoint({ express: false }), { devfn: 0x08 });
    const mf = new PcieEndpoint(true);
    const mf2 = new PcieEndpoint(true);
    host.rootBus.plug(mf, { devfn: 0x28, multifunction: true });
    host.rootBus.plug(mf2, { devfn: 0x29, multifunction: true });
    // Bus numbers as firmware would assign them.
    for (const [dev, sec, sub] of [[rp, 1, 3], [up, 2, 3], [dn, 3, 3], [br, 4, 4], [pb, 5, 5]] as const) {
      dev.configWrite(BridgeReg.PrimaryBus, 4, ((sub << 16) | (sec << 8)) >>> 0);
    }
    rp.configWrite(0x148 + 6, 2, linuxAcsControl(0x005f));
    expect(functionLabel(3, 0)).toBe('03:00.0');
    expect(names(describePciTopology(host.rootBus))).toEqual([
      ['00:00.0'],
      ['00:02.0'],
      ['00:03.0', '04:01.0'],
      ['00:04.0', '05:01.0'],
      ['00:05.0'],
      ['00:05.1'],
      ['00:1f.0', '00:1f.2', '00:1f.3'],
      ['01:00.0'],
      ['02:00.0', '03:00.0'],
    ]);
  });
});
