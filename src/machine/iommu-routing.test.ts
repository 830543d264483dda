/**
 * Several VT-d units: the routing translator hands each requester to the
 * unit whose scope claims it, forwards `peek` to that unit (so physically
 * contiguous pages merge into one copy, as with a single unit), and leaves
 * requesters nobody claims untranslated.
 */
import { MSI_WINDOW } from '../core/irq.js';
import { describe, expect, it } from 'vitest';
import { iova } from '../memory/address.js';
import { AddressSpace, MemTx } from '../memory/address-space.js';
import { DmaSpace } from '../memory/dma-space.js';
import { DmaAccess, IommuPerm, type DmaIommu, type DmaRequester, type DmaTranslator, type IotlbEntry } from '../memory/iommu.js';
import { createTsRam } from '../memory/ram-ts.js';
import { ContainerRegion, RamRegion } from '../memory/region.js';
import type { PciDevice } from '../pci/device.js';
import { RoutedIommu, type RoutedUnit } from './iommu-routing.js';

const PAGE = 4096;
const RAM_SIZE = 64 * PAGE;
/** IOVA of the mapped pages; page i maps to physical page PHYS_PAGE + i. */
const IOVA = 0x10_0000;
const PHYS_PAGE = 8;
const MAPPED_PAGES = 8;

/** A unit's translator: IOVA pages [IOVA, +MAPPED_PAGES) map contiguously; records translate and peek calls. */
class UnitTranslator implements DmaTranslator {
  readonly interruptWindow = MSI_WINDOW;
  readonly calls: number[] = [];
  readonly peeks: number[] = [];
  readonly interrupts: number[] = [];
  declare peek?: (iova: number, access: DmaAccess, out: IotlbEntry) => boolean;
  constructor(withPeek: boolean) {
    if (withPeek) {
      this.peek = (iova, _access, out) => {
        this.peeks.push(iova);
        return this.fill(iova, out);
      };
    }
  }
  translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
    this.calls.push(iova);
    return this.fill(iova, out);
  }
  interruptWrite(addr: number): void {
    this.interrupts.push(addr);
  }
  private fill(iova: number, out: IotlbEntry): boolean {
    const i = Math.floor((iova - IOVA) / PAGE);
    if (i < 0 || i >= MAPPED_PAGES) return false;
    out.iova = IOVA + i * PAGE;
    out.translated = (PHYS_PAGE + i) * PAGE;
    out.addrMask = PAGE - 1;
    out.perm = IommuPerm.ReadWrite;
    return true;
  }
}

/** A unit whose translators are recorded by requester devfn. */
function unit(withPeek: boolean, scope: PciDevice[], includePciAll = false) {
  const made = new Map<number, UnitTranslator>();
  const iommu: DmaIommu = {
    translatorFor(req: DmaRequester): DmaTranslator {
      const t = new UnitTranslator(withPeek);
      made.set(req.devfn, t);
      return t;
    },
  };
  const routed: RoutedUnit = { iommu, scope, includePciAll };
  return { routed, made };
}

/** An endpoint on bus 0 for a DRHD scope (what `inScope` reads of a PCI function). */
function endpoint(devfn: number): PciDevice {
  return { bus: { busNumber: () => 0 }, devfn, isBridge: false } as unknown as PciDevice;
}

function requester(devfn: number): DmaRequester {
  return { busNumber: () => 0, devfn, key: {} };
}

function memory() {
  const ram = createTsRam(RAM_SIZE);
  ram.copyIn(0, Uint8Array.from({ length: RAM_SIZE }, (_, i) => (i * 13 + (i >>> 12)) & 0xff));
  const root = new ContainerRegion('system', 2 ** 40);
  root.add(new RamRegion('ram', RAM_SIZE, ram), 0);
  return { as: new AddressSpace('memory', root), ram };
}

describe('RoutedIommu', () => {
  it('forwards peek to the claiming unit: contiguous pages are translated once and merged', () => {
    const a = unit(true, [endpoint(8)]);
    const b = unit(true, [], true);
    const routed = new RoutedIommu([a.routed, b.routed], () => {});
    const { as, ram } = memory();
    const t = routed.translatorFor(requester(8));
    expect(t.peek).toBeDefined();
    const dma = new DmaSpace(as, () => true, () => t);
    const out = new Uint8Array(4 * PAGE);
    expect(dma.read(IOVA, out)).toBe(MemTx.Ok);
    const want = new Uint8Array(4 * PAGE);
    ram.copyOut(PHYS_PAGE * PAGE, want);
    expect(out).toEqual(want);
    const ta = a.made.get(8)!;
    expect(ta.calls).toEqual([IOVA]);
    expect(ta.peeks).toEqual([IOVA + PAGE, IOVA + 2 * PAGE, IOVA + 3 * PAGE]);
    expect(b.made.size).toBe(0);
    // Another requester falls to the INCLUDE_PCI_ALL unit, peeks included.
    const other = new DmaSpace(as, () => true, () => routed.translatorFor(requester(0x10)));
    expect(other.read(IOVA + PAGE, new Uint8Array(2 * PAGE))).toBe(MemTx.Ok);
    expect([b.made.get(0x10)!.calls, b.made.get(0x10)!.peeks]).toEqual([[IOVA + PAGE], [IOVA + 2 * PAGE]]);
  });

  it('a unit without peek: the wrapper peeks nothing and every page is translated', () => {
    const a = unit(false, [], true);
    const routed = new RoutedIommu([a.routed], () => {});
    const t = routed.translatorFor(requester(8));
    const e = { iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 };
    expect(t.peek!(iova(IOVA), DmaAccess.Read, e)).toBe(false);
    expect(e.perm).toBe(IommuPerm.None);
    const { as } = memory();
    expect(new DmaSpace(as, () => true, () => t).write(IOVA, new Uint8Array(3 * PAGE))).toBe(MemTx.Ok);
    expect(a.made.get(8)!.calls).toEqual([IOVA, IOVA + PAGE, IOVA + 2 * PAGE]);
  });

  it('a requester no unit claims is untranslated, and peeking it is the same identity', () => {
    const a = unit(true, [endpoint(8)]);
    const msis: number[] = [];
    const routed = new RoutedIommu([a.routed], (addr) => msis.push(addr));
    const t = routed.translatorFor(requester(0x18));
    const e = { iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 };
    expect(t.peek!(iova(0x3000), DmaAccess.Write, e)).toBe(true);
    expect(e).toEqual({ iova: 0x3000, translated: 0x3000, addrMask: PAGE - 1, perm: IommuPerm.ReadWrite, fault: 0 });
    const { as, ram } = memory();
    const out = new Uint8Array(3 * PAGE);
    expect(new DmaSpace(as, () => true, () => t).read(0x2800, out)).toBe(MemTx.Ok);
    const want = new Uint8Array(3 * PAGE);
    ram.copyOut(0x2800, want);
    expect(out).toEqual(want);
    t.interruptWrite(0xfee0_0000, 0x41);
    expect(msis).toEqual([0xfee0_0000]);
    expect(a.made.size).toBe(0);
  });
});
