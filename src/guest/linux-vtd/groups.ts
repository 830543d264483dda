/**
 * Requester IDs a device's DMA may carry (Linux pci_for_each_dma_alias) and
 * IOMMU groups derived from them: a conventional PCI device behind a
 * PCIe-to-PCI bridge is seen as (secondary bus, devfn 0); behind a
 * conventional PCI-to-PCI bridge as the bridge itself.  Devices whose DMA
 * can carry the same alias cannot be isolated from each other: one group.
 */
import { bdfId, bdfName } from '../firmware/pci-config.js';
import { isPcieToPciBridge, type PciFunction } from '../firmware/pci-enum.js';

/** Requester IDs of `f`: its own first, then each alias walking up. */
export function dmaAliases(f: PciFunction): number[] {
  const ids = [bdfId(f)];
  for (let p = f.parent; p; p = p.parent) {
    if (isPcieToPciBridge(p)) ids.push(p.secondaryBus << 8);
    else if (p.pcieType === undefined) ids.push(bdfId(p));
  }
  return [...new Set(ids)];
}

/** An IOMMU group. */
export interface IommuGroup {
  readonly id: number;
  /** The requester ID that ties the members together. */
  readonly key: number;
  readonly members: PciFunction[];
}

/** Groups the endpoints of a topology. */
export function buildGroups(endpoints: readonly PciFunction[]): IommuGroup[] {
  const byKey = new Map<number, IommuGroup>();
  for (const f of endpoints) {
    const aliases = dmaAliases(f);
    const key = aliases[aliases.length - 1]!;
    let g = byKey.get(key);
    if (!g) { g = { id: byKey.size, key, members: [] }; byKey.set(key, g); }
    g.members.push(f);
  }
  return [...byKey.values()];
}

/** "group 3: 02:01.0 02:02.0" */
export function formatGroup(g: IommuGroup): string {
  return `iommu group ${g.id}: ${g.members.map((m) => m.name).join(' ')}` +
    (g.members.length > 1 || g.key !== bdfId(g.members[0]!) ? ` (DMA alias ${bdfName({ bus: g.key >> 8, dev: (g.key >> 3) & 0x1f, fn: g.key & 7 })})` : '');
}
