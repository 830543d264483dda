/**
 * The `edu` device type (QEMU `-device edu[,dma_mask=MASK]`).
 */
import type { DeviceContext, DeviceType, PropValues } from '../../machine/device-type.js';
import { EduDevice } from './edu.js';
import { EDU_DEFAULT_DMA_MASK } from './regs.js';

export { EduDevice, type EduOptions } from './edu.js';
export * from './regs.js';

/** Reads the dma_mask property (uint64; absent means QEMU's default 2^28 - 1). */
function dmaMaskOf(props: PropValues): bigint {
  const v = props['dma_mask'];
  if (v === undefined) return BigInt(EDU_DEFAULT_DMA_MASK);
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
  throw new Error(`Parameter 'dma_mask' expects uint64`);
}

/** Device type definition: PCI, one property. */
export const eduDeviceType: DeviceType<EduDevice> = {
  name: 'edu',
  description: 'QEMU educational PCI device (1234:11e8)',
  bus: 'pci',
  // QEMU 7.2 lists dma_mask without a default in `-device edu,help`; the default lives in the device.
  props: {
    dma_mask: { kind: 'uint64' },
  },
  create(ctx: DeviceContext, props: PropValues): EduDevice {
    return new EduDevice({ clock: ctx.clock, tracer: ctx.tracer, dmaMask: dmaMaskOf(props) });
  },
};
