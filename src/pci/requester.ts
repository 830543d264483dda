/**
 * Requester IDs as the IOMMU sees them (QEMU pci_device_get_iommu_bus_devfn,
 * PCIe-to-PCI/PCI-X Bridge Spec 1.0 §2.3).
 *
 * Walking from the device towards the root bus, every conventional PCI bus
 * on the way aliases the requester:
 *  - behind a PCIe-to-PCI bridge (PCIe capability type 7) the bridge takes
 *    ownership with (its secondary bus, devfn 00.0);
 *  - behind any other bridge (a conventional PCI-PCI bridge) the bridge's own
 *    devfn on its parent bus is used.
 * Devices behind root ports and switch ports (PCIe buses) keep their own BDF.
 * The result is a (bus object, devfn) pair; the bus number is read at
 * translation time because a guest may renumber buses.
 */
import type { DmaRequester } from '../memory/iommu.js';
import type { PciBus } from './bus.js';
import type { PciDevice } from './device.js';
import { PcieType, pcieType } from './pcie-cap.js';

/** The (bus, devfn) a device's DMA is tagged with at the root complex. */
function requesterBusDevfn(dev: PciDevice): { bus: PciBus; devfn: number } {
  let bus = dev.bus;
  let devfn = dev.devfn;
  let iommuBus: PciBus = bus;
  while (iommuBus.parent) {
    const bridge = iommuBus.parent;
    const parentBus = bridge.bus;
    if (!iommuBus.isExpress) {
      if (pcieType(bridge) === PcieType.PcieToPciBridge) {
        devfn = 0;
        bus = iommuBus;
      } else {
        devfn = bridge.devfn;
        bus = parentBus;
      }
    }
    iommuBus = parentBus;
  }
  return { bus, devfn };
}

/** The stable requester object for `dev` (shared by every device aliased to it). */
export function requesterOf(dev: PciDevice): DmaRequester {
  const { bus, devfn } = requesterBusDevfn(dev);
  return bus.requester(devfn);
}
