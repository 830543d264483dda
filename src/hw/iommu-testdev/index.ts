/**
 * The `iommu-testdev` device type (QEMU 11.1 `-device iommu-testdev`).  It has
 * no properties of its own; `-device iommu-testdev,help` lists QEMU 11.1's
 * PCIDevice properties.
 */
import type { DeviceContext, DeviceType, PropValues } from '../../machine/device-type.js';
import { IommuTestdev } from './iommu-testdev.js';

export { IommuTestdev, type IommuTestdevOptions } from './iommu-testdev.js';
export { PatternDma, PATTERN_DMA_CHUNK, type SystemMemoryReader, type ReadBackResult } from './pattern-dma.js';
export * from './regs.js';

/** Device type definition: PCI, no properties, QEMU 11.1's listing. */
export const iommuTestdevDeviceType: DeviceType<IommuTestdev> = {
  name: 'iommu-testdev',
  description: 'A test device for IOMMU',
  bus: 'pci',
  category: 'Misc',
  qemuRelease: '11.1',
  props: {},
  create(ctx: DeviceContext, _props: PropValues): IommuTestdev {
    return new IommuTestdev({ systemMemory: ctx.memory, tracer: ctx.tracer });
  },
};
