/**
 * The PCI identity and capabilities (pci-identity.ts) on a bare PCI
 * function: IDs, the legacy capability chain (PCIe, then MSI), the
 * extended chain (ATS -> PASID -> PRI), and the capability objects handed
 * back reading the config space they were added at.
 */
import { describe, expect, it } from 'vitest';
import { PciDevice } from '../../pci/device.js';
import { AtsReg } from '../../pci/pcie-ext-caps.js';
import { PriReg } from '../../pci/pcie-pri.js';
import { addSvaCapabilities, MSI_CAP_OFFSET, PCIE_CAP_OFFSET, SVA_PCI_INIT } from './pci-identity.js';
import { SvaPci } from './regs.js';

/** A PCI function with nothing of its own. */
class BareFunction extends PciDevice {}

/** Capability ID and next pointer of the legacy capability at `at`. */
function legacyCap(dev: PciDevice, at: number): [number, number] {
  return [dev.configRead(at, 1), dev.configRead(at + 1, 1)];
}

describe('sva-testdev PCI identity', () => {
  it('vendor, device, revision, class, subsystem; a PCI Express function', () => {
    const dev = new BareFunction(SVA_PCI_INIT);
    expect(dev.typeName).toBe('sva-testdev');
    expect(dev.configRead(0x00, 4)).toBe(((SvaPci.DeviceId << 16) | SvaPci.VendorId) >>> 0);
    expect(dev.configRead(0x08, 4)).toBe(((SvaPci.ClassCode << 8) | SvaPci.Revision) >>> 0);
    expect(dev.configRead(0x2c, 4)).toBe(((SvaPci.SubsystemId << 16) | SvaPci.SubsystemVendorId) >>> 0);
    expect(dev.isExpress).toBe(true);
  });
});

describe('addSvaCapabilities', () => {
  it('legacy chain: PCIe endpoint capability, then 64-bit single-vector MSI', () => {
    const dev = new BareFunction(SVA_PCI_INIT);
    addSvaCapabilities(dev);
    expect(dev.configRead(0x34, 1)).toBe(PCIE_CAP_OFFSET);
    expect(legacyCap(dev, PCIE_CAP_OFFSET)).toEqual([0x10, MSI_CAP_OFFSET]);
    expect(legacyCap(dev, MSI_CAP_OFFSET)).toEqual([0x05, 0]);
    expect(dev.configRead(MSI_CAP_OFFSET + 2, 2)).toBe(0x0080);
  });

  it('extended chain: ATS at 0x100 -> PASID at 0x110 -> PRI at 0x120, the last one', () => {
    const dev = new BareFunction(SVA_PCI_INIT);
    addSvaCapabilities(dev);
    const header = (at: number) => dev.configRead(at, 4);
    expect([header(SvaPci.AtsCap) & 0xffff, header(SvaPci.AtsCap) >>> 20]).toEqual([0x000f, SvaPci.PasidCap]);
    expect([header(SvaPci.PasidCap) & 0xffff, header(SvaPci.PasidCap) >>> 20]).toEqual([0x001b, SvaPci.PriCap]);
    expect([header(SvaPci.PriCap) & 0xffff, header(SvaPci.PriCap) >>> 20]).toEqual([0x0013, 0]);
  });

  it('the returned capabilities read the config space they were added at', () => {
    const dev = new BareFunction(SVA_PCI_INIT);
    const { ats, pasidCap, pri } = addSvaCapabilities(dev);
    expect([ats.enabled(), pasidCap.enabled(), pri.enabled()]).toEqual([false, false, false]);
    dev.configWrite(SvaPci.AtsCap + AtsReg.Ctrl, 2, 0x8000);
    dev.configWrite(SvaPci.PasidCap + 6, 2, 0x0007);
    dev.configWrite(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
    expect([ats.enabled(), pasidCap.enabled(), pri.enabled()]).toEqual([true, true, true]);
    expect([pasidCap.maxPasid(), pasidCap.executeEnabled(), pasidCap.privilegedEnabled()]).toEqual([2 ** SvaPci.PasidWidth - 1, true, true]);
    expect([pri.offset, pri.capacity]).toEqual([SvaPci.PriCap, SvaPci.PriCapacity]);
  });
});
