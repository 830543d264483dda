/**
 * DmaSpace at its edges: source buffers of dropped writes stay untouched,
 * faults that start in the middle of a page (below and above 2^53), the
 * last byte of the interrupt window, a page holding the interrupt window,
 * huge IOMMU pages (page masks above 2^31), odd bigint
 * addresses just above 2^53, and no peeking at or above 2^53.
 */
import { describe, expect, it } from 'vitest';
import { MSI_WINDOW } from '../core/irq.js';
import { AddressSpace, MemTx } from './address-space.js';
import { DmaSpace } from './dma-space.js';
import { type DmaAccess, type DmaTranslator, type IotlbEntry, IommuPerm } from './iommu.js';
import { createTsRam } from './ram-ts.js';
import { ContainerRegion, RamRegion } from './region.js';

const PAGE = 4096;

/** RAM of `pages` pages at 0 (and optionally a page at `extraAt`) in a 2^44 system space. */
function system(pages = 16, extraAt?: number) {
  const ram = createTsRam(pages * PAGE);
  const root = new ContainerRegion('system', 2 ** 44);
  root.add(new RamRegion('ram', pages * PAGE, ram), 0);
  const extra = createTsRam(PAGE);
  if (extraAt !== undefined) root.add(new RamRegion('extra', PAGE, extra), extraAt);
  return { as: new AddressSpace('memory', root), ram, extra };
}

/**
 * A translator of pages of `mask + 1` bytes: `map(pageBase)` gives the
 * physical page base, or null for a fault.  Records translations and peeks.
 */
class PageTranslator implements DmaTranslator {
  readonly calls: number[] = [];
  readonly peeks: number[] = [];
  readonly interrupts: [number, number][] = [];
  constructor(
    private readonly map: (pageBase: number) => number | null,
    private readonly mask = PAGE - 1,
    readonly interruptWindow: DmaTranslator['interruptWindow'] = MSI_WINDOW,
    peeking = false,
  ) {
    if (!peeking) this.peek = undefined;
  }
  private fill(iova: number, out: IotlbEntry): boolean {
    const base = iova - (iova % (this.mask + 1));
    const phys = this.map(base);
    if (phys === null) return false;
    out.iova = base;
    out.translated = phys;
    out.addrMask = this.mask;
    out.perm = IommuPerm.ReadWrite;
    return true;
  }
  translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
    this.calls.push(iova);
    return this.fill(iova, out);
  }
  peek?: (iova: number, access: DmaAccess, out: IotlbEntry) => boolean = (iova, _access, out) => {
    this.peeks.push(iova);
    return this.fill(iova, out);
  };
  interruptWrite(addr: number, data: number): void {
    this.interrupts.push([addr, data]);
  }
}

const ramp = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i % 251) + 1);

describe('DmaSpace edges', () => {
  it('writes that are dropped (bus mastering off, faulting page, refused window piece) leave the source alone', () => {
    const { as } = system();
    const src = ramp(16);
    expect(new DmaSpace(as, () => false, () => null).write(0x1000, src)).toBe(MemTx.DecodeError);
    expect(src).toEqual(ramp(16));
    const t = new PageTranslator(() => null);
    expect(new DmaSpace(as, () => true, () => t).write(0x5000, src)).toBe(MemTx.DecodeError);
    expect(src).toEqual(ramp(16));
    const w = new PageTranslator((p) => p);
    expect(new DmaSpace(as, () => true, () => w).write(MSI_WINDOW.base + 1, src)).toBe(MemTx.DecodeError);
    expect(src).toEqual(ramp(16));
  });

  it('a fault starting in the middle of a page covers only the rest of that page', () => {
    const { as, ram } = system();
    ram.copyIn(2 * PAGE, ramp(PAGE));
    // IOVA page 0x10000 faults, 0x11000 maps to physical page 2.
    const t = new PageTranslator((p) => (p === 0x11000 ? 2 * PAGE : null));
    const out = new Uint8Array(0x200).fill(0xee);
    expect(new DmaSpace(as, () => true, () => t).read(0x11000 - 0x100, out)).toBe(MemTx.DecodeError);
    expect(out.subarray(0, 0x100).every((b) => b === 0)).toBe(true);
    expect(out.subarray(0x100)).toEqual(ramp(PAGE).subarray(0, 0x100));
    expect(t.calls).toEqual([0x11000 - 0x100, 0x11000]);
  });

  it('above 2^53 too, a fault mid-page ends at its page and the next page is translated', () => {
    const { as, ram } = system();
    ram.copyIn(3 * PAGE, ramp(PAGE));
    const good = 2 ** 53 + 2 * PAGE;
    const t = new PageTranslator((p) => (p === good ? 3 * PAGE : null));
    const out = new Uint8Array(0x20).fill(0xee);
    const dma = new DmaSpace(as, () => true, () => t);
    expect(dma.readWide(BigInt(good) - 0x11n, out)).toBe(MemTx.DecodeError);
    expect(out.subarray(0, 0x11).every((b) => b === 0)).toBe(true);
    expect(out.subarray(0x11)).toEqual(ramp(0xf));
    expect(t.calls).toEqual([good - PAGE, good]);
  });

  it('an odd bigint address just above 2^53 reaches its exact byte', () => {
    const { as, ram } = system();
    ram.copyIn(5 * PAGE, ramp(PAGE));
    const t = new PageTranslator((p) => (p === 2 ** 53 ? 5 * PAGE : null));
    const out = new Uint8Array(0x20);
    expect(new DmaSpace(as, () => true, () => t).readWide(2n ** 53n + 0x11n, out)).toBe(MemTx.Ok);
    expect(out).toEqual(ramp(PAGE).subarray(0x11, 0x31));
    expect(t.calls).toEqual([2 ** 53]);
  });

  it('a translator that can peek is never asked to at or above 2^53', () => {
    const { as, ram } = system();
    ram.copyIn(4 * PAGE, ramp(2 * PAGE));
    const t = new PageTranslator((p) => 4 * PAGE + (p - 2 ** 53), PAGE - 1, MSI_WINDOW, true);
    const out = new Uint8Array(2 * PAGE);
    expect(new DmaSpace(as, () => true, () => t).readWide(2n ** 53n, out)).toBe(MemTx.Ok);
    expect(out).toEqual(ramp(2 * PAGE));
    expect(t.calls).toEqual([2 ** 53, 2 ** 53 + PAGE]);
    expect(t.peeks).toEqual([]);
  });

  it('the last byte of the interrupt window is part of it', () => {
    const { as } = system();
    const t = new PageTranslator((p) => p % (16 * PAGE));
    const out = new Uint8Array(1).fill(0xee);
    expect(new DmaSpace(as, () => true, () => t).read(MSI_WINDOW.last, out)).toBe(MemTx.DecodeError);
    expect(out[0]).toBe(0);
    expect(t.calls).toEqual([]);
  });

  it('a page holding the interrupt window is translated up to the window, then the window', () => {
    const { as, ram } = system();
    ram.copyIn(0, ramp(4 * PAGE));
    // An identity translator whose window is the upper half of page 1.
    const t = new PageTranslator((p) => p, PAGE - 1, { base: 0x1800, last: 0x1fff });
    const dma = new DmaSpace(as, () => true, () => t);
    const out = new Uint8Array(0x200).fill(0xee);
    expect(dma.read(0x1700, out)).toBe(MemTx.Ok);
    expect(out.subarray(0, 0x100)).toEqual(ramp(4 * PAGE).subarray(0x1700, 0x1800));
    expect(out.subarray(0x100).every((b) => b === 0)).toBe(true);
    expect(t.calls).toEqual([0x1700]);
    const src = new Uint8Array(0x108).fill(0x66);
    expect(dma.write(0x1700, src)).toBe(MemTx.Ok);
    expect(ram.readU8(0x17ff)).toBe(0x66);
    expect(ram.readU8(0x1800)).toBe(ramp(4 * PAGE)[0x1800]);
    expect(t.interrupts).toEqual([[0x1800, 0x6666_6666], [0x1804, 0x6666_6666]]);
  });

  it('page masks of 2^31 and more keep offsets above 4 GiB', () => {
    const { as, ram, extra } = system(16, 2 ** 32 + 2 ** 31);
    extra.copyIn(0, ramp(PAGE));
    ram.copyIn(0, new Uint8Array(PAGE).fill(0x99));
    // 1 TiB pages: IOVA [2^40, 2^41) maps to physical [0, 2^40).
    const t = new PageTranslator((p) => (p === 2 ** 40 ? 0 : null), 2 ** 40 - 1, null);
    const out = new Uint8Array(0x10);
    const dma = new DmaSpace(as, () => true, () => t);
    expect(dma.read(2 ** 40 + 2 ** 32 + 2 ** 31 + 0x20, out)).toBe(MemTx.Ok);
    expect(out).toEqual(ramp(PAGE).subarray(0x20, 0x30));
    expect(dma.write(2 ** 40 + 2 ** 32 + 2 ** 31 + 0x40, Uint8Array.of(1, 2))).toBe(MemTx.Ok);
    expect(extra.readU16(0x40)).toBe(0x0201);
  });
});
