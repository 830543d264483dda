/**
 * PCI identity and capabilities of `sva-testdev` (see regs.ts for the
 * values): vendor 0x1234 and a device ID of vtemu's own, a PCI Express
 * function, and its capabilities in config space:
 *
 *   0x40   MSI, 64-bit, one vector, no per-vector masking
 *   0x80   PCI Express capability (version 2) of an endpoint, with the
 *          values of a QEMU endpoint: RBER, error-reporting enables
 *          writable, a x1 2.5 GT/s link, extended fmt field and end-end
 *          TLP prefixes supported, end-end TLP prefix blocking writable
 *   0x100  ATS (PCIe Base 6.0 §10.5.1)
 *   0x110  PASID (§7.8.8): 20 bits, execute and privileged modes
 *   0x120  PRI (§10.5.2): Outstanding Page Request Capacity 32
 *
 * BAR0 is registered by the composition (sva-testdev.ts), after these.
 */
import type { PciDevice, PciDeviceInit } from '../../pci/device.js';
import { addPcieCap, PcieType } from '../../pci/pcie-cap.js';
import { addAtsCap, addPasidCap, type AtsCap, type PasidCap } from '../../pci/pcie-ext-caps.js';
import { addPriCap, type PriCap } from '../../pci/pcie-pri.js';
import { SvaPci } from './regs.js';

/** Legacy capability offsets: MSI (64-bit, one vector, 14 bytes) and the PCIe capability (0x3C bytes). */
export const MSI_CAP_OFFSET = 0x40;
export const PCIE_CAP_OFFSET = 0x80;
/** PCIe capability values of a QEMU endpoint: RBER; error-reporting enables writable; x1 2.5 GT/s. */
const DEVCAP_RBER = 0x0000_8000;
const DEVCTL_ERR_ENABLES = 0x000f;
const LINKCAP_X1 = 0x0000_0411;
const LINKSTA_X1 = 0x0011;
/** DEVCAP2 extended fmt field + end-end TLP prefix supported; DEVCTL2 end-end TLP prefix blocking writable. */
const DEVCAP2_EXT = 0x0030_0000;
const DEVCTL2_EETLPPB = 0x8000;
/** MSI: 64-bit addresses, no per-vector masking. */
const MSI_64BIT = true;
const MSI_PER_VECTOR_MASK = false;

/** What an sva-testdev is created with: its PCI identity, as a PCI Express function. */
export const SVA_PCI_INIT: PciDeviceInit = {
  typeName: 'sva-testdev',
  vendorId: SvaPci.VendorId,
  deviceId: SvaPci.DeviceId,
  revision: SvaPci.Revision,
  classCode: SvaPci.ClassCode,
  subsystemVendorId: SvaPci.SubsystemVendorId,
  subsystemId: SvaPci.SubsystemId,
  express: true,
};

/** The extended capabilities the device model consults. */
export interface SvaCaps {
  readonly ats: AtsCap;
  readonly pasidCap: PasidCap;
  readonly pri: PriCap;
}

/** Adds MSI, the PCIe capability, ATS, PASID and PRI to `dev`, in that order. */
export function addSvaCapabilities(dev: PciDevice): SvaCaps {
  dev.initMsi(MSI_CAP_OFFSET, SvaPci.MsiVectors, MSI_64BIT, MSI_PER_VECTOR_MASK);
  addPcieCap(dev, PCIE_CAP_OFFSET, {
    type: PcieType.Endpoint,
    devCap: DEVCAP_RBER,
    devCtlWmask: DEVCTL_ERR_ENABLES,
    linkCap: LINKCAP_X1,
    linkSta: LINKSTA_X1,
    devCap2: DEVCAP2_EXT,
    devCtl2Wmask: DEVCTL2_EETLPPB,
  });
  const ats = addAtsCap(dev, SvaPci.AtsCap);
  const pasidCap = addPasidCap(dev, SvaPci.PasidCap, { width: SvaPci.PasidWidth, execute: true, privileged: true });
  const pri = addPriCap(dev, SvaPci.PriCap, { capacity: SvaPci.PriCapacity });
  return { ats, pasidCap, pri };
}
