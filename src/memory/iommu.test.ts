/**
 * The bus/IOMMU contract: the access and permission encodings a translator
 * and a DMA space must agree on, the caller-owned entry, and where the
 * interrupt window starts and ends as a DMA space applies it (first and
 * last byte, the bytes just outside).
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace, MemTx } from './address-space.js';
import type { Iova } from './address.js';
import { DmaSpace } from './dma-space.js';
import {
  DmaAccess,
  type DmaTranslator,
  type DmaWindow,
  type IotlbEntry,
  AtsStatus,
  IommuPerm,
  newAtsCompletion,
  newIotlbEntry,
} from './iommu.js';
import { createTsRam } from './ram-ts.js';
import { MSI_ADDRESS_BASE, MSI_ADDRESS_LAST } from '../core/irq.js';
import { ContainerRegion, RamRegion } from './region.js';

describe('access and permission encodings', () => {
  it('DmaAccess is one bit per direction', () => {
    expect(DmaAccess.Read).toBe(1);
    expect(DmaAccess.Write).toBe(2);
  });

  it('IommuPerm uses the same bits as DmaAccess (QEMU IOMMU_RO / IOMMU_WO / IOMMU_RW)', () => {
    expect(IommuPerm.None).toBe(0);
    expect(IommuPerm.Read).toBe(1);
    expect(IommuPerm.Write).toBe(2);
    expect(IommuPerm.ReadWrite).toBe(3);
    expect(IommuPerm.ReadWrite).toBe(IommuPerm.Read | IommuPerm.Write);
    // A permission allows an access exactly when their bits intersect.
    expect(IommuPerm.Read & DmaAccess.Read).not.toBe(0);
    expect(IommuPerm.Read & DmaAccess.Write).toBe(0);
    expect(IommuPerm.Write & DmaAccess.Read).toBe(0);
    expect(IommuPerm.Write & DmaAccess.Write).not.toBe(0);
    expect(IommuPerm.None & (DmaAccess.Read | DmaAccess.Write)).toBe(0);
  });
});

describe('newIotlbEntry', () => {
  it('is an empty, permissionless entry with exactly the five contract fields', () => {
    const e = newIotlbEntry();
    expect(e).toStrictEqual({ iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 });
    expect(Object.keys(e).sort()).toEqual(['addrMask', 'fault', 'iova', 'perm', 'translated']);
  });

  it('hands out a fresh object every time (callers own and fill it)', () => {
    const a = newIotlbEntry();
    const b = newIotlbEntry();
    expect(a).not.toBe(b);
    a.iova = 0x1000;
    a.translated = 0x2000;
    a.addrMask = 0xfff;
    a.perm = IommuPerm.ReadWrite;
    expect(b).toStrictEqual({ iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 });
    expect(newIotlbEntry()).toStrictEqual({ iova: 0, translated: 0, addrMask: 0, perm: IommuPerm.None, fault: 0 });
  });
});

/** The window the test translator answers with: the x86 MSI range. */
const INTERRUPT_WINDOW_BASE = MSI_ADDRESS_BASE;
const INTERRUPT_WINDOW_LAST = MSI_ADDRESS_LAST;

describe('interrupt window constants', () => {
  it('is the 1 MiB at 0xFEE00000 (Intel SDM: MSI address 0xFEExxxxx)', () => {
    expect(INTERRUPT_WINDOW_BASE).toBe(0xfee0_0000);
    expect(INTERRUPT_WINDOW_LAST).toBe(0xfeef_ffff);
    expect(INTERRUPT_WINDOW_LAST - INTERRUPT_WINDOW_BASE + 1).toBe(0x10_0000);
    expect(INTERRUPT_WINDOW_BASE % 0x10_0000).toBe(0);
  });
});

describe('the contract as a DMA space applies it', () => {
  /** Identity translator over 4 KiB pages that records translations and interrupt writes. */
  class Identity implements DmaTranslator {
    constructor(readonly interruptWindow: DmaWindow | null = { base: INTERRUPT_WINDOW_BASE, last: INTERRUPT_WINDOW_LAST }) {}
    readonly translated: [iova: number, access: DmaAccess][] = [];
    readonly interrupts: [addr: number, data: number][] = [];
    translate(iova: Iova, access: DmaAccess, out: IotlbEntry): boolean {
      this.translated.push([iova, access]);
      out.iova = iova - (iova % 4096);
      out.translated = out.iova;
      out.addrMask = 0xfff;
      out.perm = IommuPerm.ReadWrite;
      return true;
    }
    interruptWrite(addr: number, data: number): void {
      this.interrupts.push([addr, data]);
    }
  }

  function setup(window?: DmaWindow | null) {
    // RAM right below and right above the window so translated bytes land somewhere.
    const below = createTsRam(0x1000);
    const above = createTsRam(0x1000);
    const root = new ContainerRegion('system', 2 ** 40);
    root.add(new RamRegion('below', 0x1000, below), INTERRUPT_WINDOW_BASE - 0x1000);
    root.add(new RamRegion('above', 0x1000, above), INTERRUPT_WINDOW_LAST + 1);
    const t = new Identity(window);
    const dma = new DmaSpace(new AddressSpace('memory', root), () => true, () => t);
    return { t, dma, below, above };
  }

  it('the first and last dword of the window are interrupt writes, never translations', () => {
    const { t, dma } = setup();
    expect(dma.writeU32(INTERRUPT_WINDOW_BASE, 0x11)).toBe(MemTx.Ok);
    expect(dma.writeU32(INTERRUPT_WINDOW_LAST - 3, 0x22)).toBe(MemTx.Ok);
    expect(t.interrupts).toEqual([
      [0xfee0_0000, 0x11],
      [0xfeef_fffc, 0x22],
    ]);
    expect(t.translated).toEqual([]);
  });

  it('the dwords just outside the window are translated DMA, with the write access', () => {
    const { t, dma, below, above } = setup();
    expect(dma.writeU32(INTERRUPT_WINDOW_BASE - 4, 0xaabb_ccdd)).toBe(MemTx.Ok);
    expect(dma.writeU32(INTERRUPT_WINDOW_LAST + 1, 0x1122_3344)).toBe(MemTx.Ok);
    expect(t.interrupts).toEqual([]);
    expect(t.translated).toEqual([
      [0xfedf_fffc, DmaAccess.Write],
      [0xfef0_0000, DmaAccess.Write],
    ]);
    expect(below.readU32(0xffc)).toBe(0xaabb_ccdd);
    expect(above.readU32(0)).toBe(0x1122_3344);
  });

  it('reads are translated with the read access outside the window and read zeros inside it', () => {
    const { t, dma, below } = setup();
    below.writeU32(0xffc, 0x0403_0201);
    const out = new Uint8Array(8).fill(0xee);
    expect(dma.read(INTERRUPT_WINDOW_BASE - 4, out)).toBe(MemTx.Ok);
    expect(Array.from(out)).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
    expect(t.translated).toEqual([[0xfedf_fffc, DmaAccess.Read]]);
    expect(t.interrupts).toEqual([]);
  });

  it('a write straddling the last byte of the window is an interrupt write, then translated DMA', () => {
    const { t, dma, above } = setup();
    const src = Uint8Array.of(1, 0, 0, 0, 0x55, 0x66);
    expect(dma.write(INTERRUPT_WINDOW_LAST - 3, src)).toBe(MemTx.Ok);
    expect(t.interrupts).toEqual([[0xfeef_fffc, 1]]);
    expect(t.translated).toEqual([[0xfef0_0000, DmaAccess.Write]]);
    expect(above.readU16(0)).toBe(0x6655);
  });

  it('the window is the translator\'s answer: a translator without one gets the range translated', () => {
    const { t, dma } = setup(null);
    // Translated to 0xFEE00000 where this system has nothing.
    expect(dma.writeU32(INTERRUPT_WINDOW_BASE, 0x11)).toBe(MemTx.DecodeError);
    expect(t.interrupts).toEqual([]);
    expect(t.translated).toEqual([[0xfee0_0000, DmaAccess.Write]]);
  });

  it('a translator may place the window elsewhere', () => {
    const { t, dma } = setup({ base: 0x1000, last: 0x1fff });
    expect(dma.writeU32(0x1ffc, 0x33)).toBe(MemTx.Ok);
    expect(dma.writeU32(INTERRUPT_WINDOW_BASE, 0x44)).toBe(MemTx.DecodeError);
    expect(t.interrupts).toEqual([[0x1ffc, 0x33]]);
    expect(t.translated).toEqual([[0xfee0_0000, DmaAccess.Write]]);
  });
});

describe('newAtsCompletion', () => {
  it('is a fresh successful completion granting nothing, a new object each time', () => {
    const c = newAtsCompletion();
    expect(c).toEqual({ status: AtsStatus.Success, iova: 0, translated: 0, addrMask: 0, read: false, write: false, untranslatedOnly: false });
    c.read = true;
    expect(newAtsCompletion().read).toBe(false);
  });
});
