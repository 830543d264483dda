/**
 * The `sva-testdev` device type (`-device sva-testdev`): vtemu's
 * shared-virtual-addressing test device, a vtemu extension that QEMU does
 * not have.  No properties of its own; `-device sva-testdev,help` lists
 * QEMU 11.1's PCIDevice properties, as for iommu-testdev.
 */
import type { DeviceContext, DeviceType, PropValues } from '../../machine/device-type.js';
import { SvaTestdev } from './sva-testdev.js';

export { SvaTestdev, type SvaTestdevOptions } from './sva-testdev.js';
export { DeviceAtc, ATC_PAGE_SIZE, translationSize, type AtcEntry } from './atc.js';
export * from './regs.js';

/** Device type definition: PCI Express, no properties. */
export const svaTestdevDeviceType: DeviceType<SvaTestdev> = {
  name: 'sva-testdev',
  description: 'SVA test device: PASID, ATS, PRI (vtemu extension, not in QEMU)',
  bus: 'pci',
  category: 'Misc',
  qemuRelease: '11.1',
  props: {},
  create(ctx: DeviceContext, _props: PropValues): SvaTestdev {
    return new SvaTestdev({ tracer: ctx.tracer });
  },
};
