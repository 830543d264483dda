/**
 * The PCI subsystem: configuration space with masks, the PciDevice base
 * class (BARs, capabilities, MSI, INTx, bus-mastered DMA through the IOMMU),
 * buses, bridges and ports, requester IDs, and the q35 host bridge with its
 * built-in ICH9 functions.
 *
 * Typical use (the machine):
 *
 *     const host = createQ35PciHost({ systemMemory, ioSpace, memory, ioapicLine });
 *     host.rootBus.plug(device, { devfn, multifunction, id });   // -device ...
 *     host.setIommu(iommu);                                      // intel-iommu
 *     host.rootBus.devices();                                    // DMAR scopes
 *     host.reset();                                              // system_reset
 */
export * from './config.js';
export * from './bar.js';
export * from './device.js';
export * from './msi.js';
export * from './bus.js';
export * from './bridge.js';
export * from './bridges.js';
export * from './pcie-cap.js';
export * from './requester.js';
export * from './ich9.js';
export * from './host.js';
export * from './pcie-ext-caps.js';
export * from './pcie-pri.js';
export * from './iommu-groups.js';
