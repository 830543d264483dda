import { describe, expect, it } from 'vitest';
import { MSI_WINDOW } from '../core/irq.js';
import { IommuPerm, type DmaIommu, type DmaRequester } from '../memory/iommu.js';
import { BridgeReg, PciCommand, PciReg } from './config.js';
import { PcieRootPort, PciePciBridge, PciPciBridge, X3130Upstream, Xio3130Downstream } from './bridges.js';
import type { PciBridge } from './bridge.js';
import { PcieType, pcieType } from './pcie-cap.js';
import { requesterOf } from './requester.js';
import { TestEndpoint, makeTestHost } from '../../test/support/pci-host.js';

/** Source ID as the IOMMU computes it at translation time. */
const sid = (r: DmaRequester): number => (r.busNumber() << 8) | r.devfn;

function setBuses(b: PciBridge, primary: number, secondary: number, subordinate: number): void {
  b.configWrite(BridgeReg.PrimaryBus, 4, primary | (secondary << 8) | (subordinate << 16));
}

describe('requester IDs (QEMU pci_device_get_iommu_bus_devfn)', () => {
  it('root-bus devices use their own BDF', () => {
    const { host } = makeTestHost();
    const d = new TestEndpoint();
    host.rootBus.plug(d, { devfn: 0x18 });
    expect(sid(d.requester())).toBe(0x0018);
    expect(d.requester()).toBe(host.rootBus.requester(0x18));
  });

  it('behind a root port: own devfn on the secondary bus, bus number read at translate time', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x08 });
    const d = new TestEndpoint();
    rp.secondaryBus.plug(d);
    const r = d.requester();
    expect(sid(r)).toBe(0x0000); // secondary bus not programmed yet
    setBuses(rp, 0, 1, 1);
    expect(sid(r)).toBe(0x0100);
    setBuses(rp, 0, 4, 4); // renumbered: same requester object, new SID
    expect(sid(r)).toBe(0x0400);
    expect(d.requester()).toBe(r);
  });

  it('behind a switch: own BDF below the downstream port', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x08 });
    const up = new X3130Upstream();
    rp.secondaryBus.plug(up);
    const down = new Xio3130Downstream();
    up.secondaryBus.plug(down);
    const d = new TestEndpoint();
    down.secondaryBus.plug(d);
    setBuses(rp, 0, 1, 3);
    setBuses(up, 1, 2, 3);
    setBuses(down, 2, 3, 3);
    expect(sid(d.requester())).toBe(0x0300);
    expect(sid(down.requester())).toBe(0x0200);
    expect(sid(up.requester())).toBe(0x0100);
  });

  it('behind a PCIe-to-PCI bridge: aliased to (secondary bus, devfn 0)', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x08 });
    const pb = new PciePciBridge();
    rp.secondaryBus.plug(pb);
    expect(pcieType(pb)).toBe(PcieType.PcieToPciBridge);
    const a = new TestEndpoint({ express: false });
    const b = new TestEndpoint({ express: false });
    pb.secondaryBus.plug(a, { devfn: 0x08 });
    pb.secondaryBus.plug(b, { devfn: 0x10 });
    setBuses(rp, 0, 1, 2);
    setBuses(pb, 1, 2, 2);
    expect(sid(a.requester())).toBe(0x0200);
    expect(sid(b.requester())).toBe(0x0200);
    expect(a.requester().key).toBe(b.requester().key); // one IOMMU address space for both
    expect(a.requester()).toBe(pb.secondaryBus.requester(0));
    expect(sid(pb.requester())).toBe(0x0100); // the bridge itself is a PCIe function
  });

  it('behind a conventional PCI-PCI bridge: the bridge’s own devfn on its parent bus', () => {
    const { host } = makeTestHost();
    const br = new PciPciBridge({ chassisNr: 1 });
    host.rootBus.plug(br, { devfn: 0x18 });
    const d = new TestEndpoint({ express: false });
    br.secondaryBus.plug(d, { devfn: 0x20 });
    setBuses(br, 0, 1, 1);
    expect(sid(d.requester())).toBe(0x0018);
    expect(d.requester()).toBe(br.requester());
  });

  it('nested: PCI-PCI bridge behind a PCIe-to-PCI bridge aliases to the outer bridge’s secondary bus', () => {
    const { host } = makeTestHost();
    const pb = new PciePciBridge();
    host.rootBus.plug(pb, { devfn: 0x10 });
    const br = new PciPciBridge({ chassisNr: 2 });
    pb.secondaryBus.plug(br, { devfn: 0x08 });
    const d = new TestEndpoint({ express: false });
    br.secondaryBus.plug(d);
    setBuses(pb, 0, 1, 2);
    setBuses(br, 1, 2, 2);
    expect(sid(d.requester())).toBe(0x0100);
    expect(requesterOf(d)).toBe(pb.secondaryBus.requester(0));
  });

  it('the device DMA space asks the IOMMU for exactly that requester, once per IOMMU setting', () => {
    const { host } = makeTestHost();
    const pb = new PciePciBridge();
    host.rootBus.plug(pb, { devfn: 0x10 });
    pb.configWrite(PciReg.Command, 2, PciCommand.Master);
    setBuses(pb, 0, 3, 3);
    const d = new TestEndpoint({ express: false });
    pb.secondaryBus.plug(d, { devfn: 0x28 });
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    const asked: number[] = [];
    const sids: number[] = [];
    const iommu: DmaIommu = {
      translatorFor(r) {
        if (r === d.requester()) asked.push(sid(r)); // asked when the IOMMU is set, for every plugged function
        return {
          interruptWindow: MSI_WINDOW,
          translate(iova, _a, out) {
            sids.push(sid(r));
            out.iova = iova;
            out.translated = iova;
            out.addrMask = 0xfff;
            out.perm = IommuPerm.ReadWrite;
            return true;
          },
          interruptWrite() {},
        };
      },
    };
    host.setIommu(iommu);
    const buf = new Uint8Array(4);
    d.dma.read(0, buf);
    d.dma.read(0x1000, buf);
    setBuses(pb, 0, 5, 5);
    d.dma.read(0, buf);
    expect(asked).toEqual([0x0300]);
    expect(sids).toEqual([0x0300, 0x0300, 0x0500]);
    host.setIommu(iommu);
    d.dma.read(0, buf);
    expect(asked).toEqual([0x0300, 0x0500]);
  });
});

describe('source IDs QEMU 7.2 records in VT-d fault records (edu DMA, root table empty)', () => {
  // Observed: FRCD high qword SID for each topology after programming bus numbers as listed.
  it('pcie-pci-bridge at 00:02.0 (buses 0/1/1), edu at 01:03.0 -> 0x0100', () => {
    const { host } = makeTestHost();
    const pb = new PciePciBridge();
    host.rootBus.plug(pb, { devfn: 0x10 });
    const edu = new TestEndpoint({ express: false });
    pb.secondaryBus.plug(edu, { devfn: 0x18 });
    setBuses(pb, 0, 1, 1);
    expect(sid(edu.requester())).toBe(0x0100);
  });

  it('pci-bridge at 00:02.0, edu at 01:03.0 -> 0x0010', () => {
    const { host } = makeTestHost();
    const br = new PciPciBridge({ chassisNr: 1 });
    host.rootBus.plug(br, { devfn: 0x10 });
    const edu = new TestEndpoint({ express: false });
    br.secondaryBus.plug(edu, { devfn: 0x18 });
    setBuses(br, 0, 1, 1);
    expect(sid(edu.requester())).toBe(0x0010);
  });

  it('pcie-root-port at 00:02.0, edu at 01:00.0 -> 0x0100', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x10 });
    const edu = new TestEndpoint();
    rp.secondaryBus.plug(edu);
    setBuses(rp, 0, 1, 1);
    expect(sid(edu.requester())).toBe(0x0100);
  });

  it('root port -> pcie-pci-bridge (bus 2) -> pci-bridge at 02:01.0 (bus 3) -> edu at 03:04.0 -> 0x0200', () => {
    const { host } = makeTestHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x10 });
    const pb = new PciePciBridge();
    rp.secondaryBus.plug(pb);
    const br = new PciPciBridge({ chassisNr: 2 });
    pb.secondaryBus.plug(br, { devfn: 0x08 });
    const edu = new TestEndpoint({ express: false });
    br.secondaryBus.plug(edu, { devfn: 0x20 });
    setBuses(rp, 0, 1, 3);
    setBuses(pb, 1, 2, 3);
    setBuses(br, 2, 3, 3);
    expect(sid(edu.requester())).toBe(0x0200);
  });
});
