/**
 * Several VT-d units on one PCI segment (beyond QEMU, from a machine file's
 * `dmar.units`): each unit claims the devices of its DRHD device scopes
 * (an endpoint, or a bridge's whole sub-hierarchy), and the unit flagged
 * INCLUDE_PCI_ALL takes every other requester (VT-d spec 8.3.1).  Bus numbers
 * are guest-programmed, so the unit is chosen at translation time.
 */
import {
  IommuPerm,
  NO_PASID,
  type DmaAccess,
  type DmaIommu,
  type DmaRequestKind,
  type DmaRequester,
  type DmaTranslator,
  type DmaWindow,
  type IotlbEntry,
} from '../memory/iommu.js';
import { MSI_WINDOW } from '../core/irq.js';
import { BridgeReg } from '../pci/config.js';
import type { PciDevice } from '../pci/device.js';
import type { Iova } from '../memory/address.js';

/** 4 KiB page offset mask of identity entries. */
const PAGE_MASK = 0xfff;

/** The translation of a requester no unit claims: identity, full access. */
function identity(iova: number, out: IotlbEntry): void {
  out.iova = iova;
  out.translated = iova;
  out.addrMask = PAGE_MASK;
  out.perm = IommuPerm.ReadWrite;
  out.fault = 0;
}

/** One unit and what it claims. */
export interface RoutedUnit {
  readonly iommu: DmaIommu;
  /** PCI functions named in the DRHD's device scopes. */
  readonly scope: readonly PciDevice[];
  readonly includePciAll: boolean;
}

/** True when requester (bus, devfn) is `dev` itself or below it when it is a bridge. */
function inScope(dev: PciDevice, bus: number, devfn: number): boolean {
  if (dev.bus.busNumber() === bus && dev.devfn === devfn) return true;
  if (!dev.isBridge) return false;
  const sec = dev.config.getByte(BridgeReg.SecondaryBus);
  const sub = dev.config.getByte(BridgeReg.SubordinateBus);
  return sec !== 0 && bus >= sec && bus <= sub;
}

/** A DmaIommu that hands each requester to the unit whose scope claims it. */
export class RoutedIommu implements DmaIommu {
  private readonly catchAll: RoutedUnit | undefined;

  constructor(
    private readonly units: readonly RoutedUnit[],
    /** Where interrupt writes of requesters no unit claims go (the APIC bus). */
    private readonly unclaimedInterrupt: (addr: number, data: number) => void,
  ) {
    this.catchAll = units.find((u) => u.includePciAll);
  }

  /** The unit for a requester right now (undefined: no unit claims it, DMA untranslated). */
  unitFor(bus: number, devfn: number): RoutedUnit | undefined {
    for (const u of this.units) {
      if (u.includePciAll) continue;
      for (const d of u.scope) if (inScope(d, bus, devfn)) return u;
    }
    return this.catchAll;
  }

  translatorFor(requester: DmaRequester, pasid: number = NO_PASID): DmaTranslator {
    const per = new Map<RoutedUnit, DmaTranslator>();
    const unclaimed = this.unclaimedInterrupt;
    const pick = (): DmaTranslator | null => {
      const u = this.unitFor(requester.busNumber(), requester.devfn);
      if (!u) return null;
      let t = per.get(u);
      if (!t) per.set(u, (t = u.iommu.translatorFor(requester, pasid)));
      return t;
    };
    return {
      // The chosen unit's window; an unclaimed requester's untranslated DMA still signals interrupts there.
      get interruptWindow(): DmaWindow | null {
        const t = pick();
        return t ? t.interruptWindow : pasid === NO_PASID ? MSI_WINDOW : null;
      },
      translate(iova: Iova, access: DmaAccess, out: IotlbEntry, kind?: DmaRequestKind): boolean {
        const t = pick();
        if (t) return t.translate(iova, access, out, kind);
        identity(iova, out);
        return true;
      },
      // The chosen unit's peek (contiguous pages merge into one copy); choosing a unit is unobservable.
      peek(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean {
        const t = pick();
        if (!t) {
          identity(iova, out);
          return true;
        }
        return t.peek !== undefined && t.peek(iova, access, out);
      },
      interruptWrite(addr: number, data: number): void {
        const t = pick();
        if (t) t.interruptWrite(addr, data);
        else unclaimed(addr, data);
      },
    };
  }
}
