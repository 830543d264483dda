/**
 * Registers the device types vtemu ships with (importing this module is
 * enough): edu, intel-iommu, iommu-testdev and the PCI bridges, with the
 * `-device help` category and description QEMU lists for each (7.2's; for
 * iommu-testdev, which 7.2 lacks, 11.1's, given by the type itself).
 */
import { eduDeviceType } from '../hw/edu/index.js';
import { iommuTestdevDeviceType } from '../hw/iommu-testdev/index.js';
import { svaTestdevDeviceType } from '../hw/sva-testdev/index.js';
import { intelIommuDeviceType } from '../hw/intel-iommu/device.js';
import { bridgeDeviceTypes } from '../pci/bridges.js';
import type { DeviceCategory, DeviceType } from './device-type.js';
import { getDeviceType, registerDeviceType } from './registry.js';

/** QEMU 7.2's `-device help` category and description per type name. */
const LISTING: Readonly<Record<string, { category: DeviceCategory; description: string }>> = {
  edu: { category: 'Misc', description: '' },
  'intel-iommu': { category: 'Misc', description: 'Intel IOMMU (VT-d) DMA Remapping device' },
  'pcie-root-port': { category: 'Controller/Bridge/Hub', description: 'PCI Express Root Port' },
  'pcie-pci-bridge': { category: 'Controller/Bridge/Hub', description: '' },
  'pci-bridge': { category: 'Controller/Bridge/Hub', description: 'Standard PCI Bridge' },
  'x3130-upstream': { category: 'Controller/Bridge/Hub', description: 'TI X3130 Upstream Port of PCI Express Switch' },
  'xio3130-downstream': { category: 'Controller/Bridge/Hub', description: 'TI X3130 Downstream Port of PCI Express Switch' },
};

function listed(t: DeviceType): DeviceType {
  const l = LISTING[t.name];
  return l ? { ...t, ...l } : t;
}

/** The built-in device types, in registration order. */
export const BUILTIN_DEVICE_TYPES: readonly DeviceType[] = [
  eduDeviceType as DeviceType,
  intelIommuDeviceType as DeviceType,
  iommuTestdevDeviceType as DeviceType,
  svaTestdevDeviceType as DeviceType,
  ...bridgeDeviceTypes,
].map(listed);

for (const t of BUILTIN_DEVICE_TYPES) if (!getDeviceType(t.name)) registerDeviceType(t);
