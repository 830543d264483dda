/**
 * Example: following a guest's VT-d mappings the way vfio does, with IOMMU
 * notifiers (copy and adapt it).
 *
 * A VMM that assigns a host device to a guest behind an emulated IOMMU must
 * program the host IOMMU with the guest's current translations.  vtemu
 * reports them as QEMU's intel-iommu does with caching-mode=on: register a
 * MAP | UNMAP notifier on the device's DMA address space, replay the current
 * mappings once, then apply every event.  Where a real VMM would call
 * VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA, `HostIommuTable` keeps a table.
 *
 * `demo()` builds a q35 machine with `intel-iommu,caching-mode=on` and an
 * edu device, acts as the guest (root / context / page tables in RAM,
 * translation on, page-selective IOTLB invalidations through the register
 * interface) and returns what the host table saw.
 */
import { createMachine, IommuNotifier, IommuNotifierFlag, type IommuEvent, type IommuNotifierSpace, type PciDevice } from '../src/index.js';

/** One host IOMMU mapping: [iova, iova + size) -> guest-physical `translated`. */
export interface HostMapping {
  readonly iova: number;
  readonly size: number;
  readonly translated: number;
  /** 1 read, 2 write, 3 both (IommuPerm). */
  readonly perm: number;
}

/** A host-side mapping table kept from the notifications alone. */
export class HostIommuTable {
  private readonly table = new Map<number, HostMapping>();
  private readonly notifier = new IommuNotifier(IommuNotifierFlag.IotlbEvents);
  /** What happened, for the demo (a VMM would issue the ioctls here). */
  readonly log: string[] = [];

  /** Starts shadowing `space`: register, then replay what is mapped already (vfio_listener_region_add). */
  constructor(private readonly space: IommuNotifierSpace) {
    this.notifier.on('map', (e) => this.map(e));
    this.notifier.on('unmap', (e) => this.unmap(e));
    space.registerNotifier(this.notifier); // throws IommuNotifierError without caching-mode=on
    space.replay(this.notifier);
  }

  /** Stops shadowing. */
  close(): void {
    this.space.unregisterNotifier(this.notifier);
  }

  /** The current host mappings, by IOVA. */
  mappings(): HostMapping[] {
    return [...this.table.values()].sort((a, b) => a.iova - b.iova);
  }

  private map(e: IommuEvent): void {
    // VFIO_IOMMU_MAP_DMA(iova, size, vaddr of guest-physical e.translated, perm)
    this.table.set(e.iova, { iova: e.iova, size: e.size, translated: e.translated, perm: e.perm });
    this.log.push(`map 0x${e.iova.toString(16)} +0x${e.size.toString(16)} -> 0x${e.translated.toString(16)} perm ${e.perm}`);
  }

  private unmap(e: IommuEvent): void {
    // VFIO_IOMMU_UNMAP_DMA(iova, size): every mapping inside the range goes (ranges never cut one).
    for (const m of [...this.table.values()]) if (m.iova >= e.iova && m.iova + m.size <= e.iova + e.size) this.table.delete(m.iova);
    this.log.push(`unmap 0x${e.iova.toString(16)} +0x${e.size.toString(16)}`);
  }
}

const VTD = 0xfed9_0000;
const GCMD = VTD + 0x18;
const RTADDR = VTD + 0x20;
const IVA = VTD + 0xf0;
const IOTLB = VTD + 0xf8;
const SRTP = 0x4000_0000;
const TE = 0x8000_0000;
/** IOTLB register: IVT (bit 63) | page-selective (IIRG 3, bits 61:60) | DID (bits 47:32). */
const iotlbPage = (did: number): bigint => (1n << 63n) | (3n << 60n) | (BigInt(did) << 32n);

/** Runs the example; returns the host table's log and final mappings. */
export function demo(): { log: string[]; mappings: HostMapping[] } {
  const m = createMachine({ accel: 'qtest', memory: '256M', devices: ['intel-iommu,caching-mode=on', 'edu'] });
  try {
    const iommu = m.iommus[0]!;
    const edu = m.devices.find((d) => d.spec.type.name === 'edu')!;
    const devfn = edu.devfn!;
    // Guest tables: root (bus 0) -> context (edu, domain 1, 4-level) -> PML4 -> PDPT -> PD -> PT.
    const [root, ctx, l4, l3, l2, l1] = [0x10_0000, 0x10_1000, 0x10_2000, 0x10_3000, 0x10_4000, 0x10_5000];
    m.memory.write64(root, BigInt(ctx) | 1n);
    m.memory.write64(ctx + devfn * 16, BigInt(l4) | 1n);
    m.memory.write64(ctx + devfn * 16 + 8, 2n | (1n << 8n));
    m.memory.write64(l4, BigInt(l3) | 3n);
    m.memory.write64(l3, BigInt(l2) | 3n);
    m.memory.write64(l2, BigInt(l1) | 3n);
    m.memory.write64(RTADDR, BigInt(root));
    m.memory.write(GCMD, 4, SRTP);
    m.memory.write(GCMD, 4, TE);

    const host = new HostIommuTable(iommu.notifierSpace((edu.device as PciDevice).requester()));
    // The guest maps IOVA 0x4000 -> 0x80_0000 (read/write) and tells the IOMMU (caching mode: also for new mappings).
    m.memory.write64(l1 + 4 * 8, 0x80_0000n | 3n);
    m.memory.write64(IVA, 0x4000n);
    m.memory.write64(IOTLB, iotlbPage(1));
    // A 2 MiB page at IOVA 0x20_0000, read-only.
    m.memory.write64(l2 + 8, 0x40_0000n | 1n | 0x80n);
    m.memory.write64(IVA, 0x20_0000n | 9n);
    m.memory.write64(IOTLB, iotlbPage(1));
    // And unmaps the first one.
    m.memory.write64(l1 + 4 * 8, 0n);
    m.memory.write64(IVA, 0x4000n);
    m.memory.write64(IOTLB, iotlbPage(1));
    const result = { log: host.log, mappings: host.mappings() };
    host.close();
    return result;
  } finally {
    m.dispose();
  }
}
