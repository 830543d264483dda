/**
 * A device's DMA address space: straight to memory without an IOMMU, gated
 * by bus mastering, split into fragments by a translator, zeros for faulting
 * pages, and the interrupt window.
 */
import { MSI_WINDOW } from '../core/irq.js';
import { describe, expect, it } from 'vitest';
import { AddressSpace, MemTx } from './address-space.js';
import { DmaSpace } from './dma-space.js';
import { DmaAccess, DmaRequestKind, type DmaTranslator, type IotlbEntry, IommuPerm } from './iommu.js';
import { createTsRam } from './ram-ts.js';
import { ContainerRegion, MmioRegion, RamRegion } from './region.js';
import { Rng } from '../../test/support/prng.js';

const PAGE = 4096;
const RAM_SIZE = 64 * PAGE;

function system(): { as: AddressSpace; ram: ReturnType<typeof createTsRam> } {
  const ram = createTsRam(RAM_SIZE);
  const root = new ContainerRegion('system', 2 ** 40);
  root.add(new RamRegion('ram', RAM_SIZE, ram), 0);
  return { as: new AddressSpace('memory', root), ram };
}

/**
 * A fake IOMMU: IOVA page i (from 0x10_0000) maps to the physical page in
 * `pages[i]` (-1: fault) with `perm`; records every call.
 */
class FakeTranslator implements DmaTranslator {
  readonly interruptWindow = MSI_WINDOW;
  readonly calls: [iova: number, access: DmaAccess][] = [];
  readonly interrupts: [addr: number, data: number][] = [];
  constructor(
    private readonly pages: number[],
    private readonly perm: IommuPerm[] = [],
    private readonly base = 0x10_0000,
  ) {}
  translate(iova: number, access: DmaAccess, out: IotlbEntry): boolean {
    this.calls.push([iova, access]);
    const i = Math.floor((iova - this.base) / PAGE);
    const page = this.pages[i];
    if (iova < this.base || page === undefined || page < 0) return false;
    out.iova = this.base + i * PAGE;
    out.translated = page * PAGE;
    out.addrMask = PAGE - 1;
    out.perm = this.perm[i] ?? IommuPerm.ReadWrite;
    return true;
  }
  interruptWrite(addr: number, data: number): void {
    this.interrupts.push([addr, data]);
  }
}

/** A deterministic pattern of `n` bytes (a plain loop: Uint8Array.from with a callback is slow at RAM sizes). */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

describe('DmaSpace', () => {
  it('without an IOMMU goes straight to system memory', () => {
    const { as, ram } = system();
    const dma = new DmaSpace(as, () => true, () => null);
    expect(dma.write(0x2000, bytes(100))).toBe(MemTx.Ok);
    expect(ram.compare(0x2000, bytes(100))).toBe(true);
    const out = new Uint8Array(100);
    expect(dma.read(0x2000, out)).toBe(MemTx.Ok);
    expect(out).toEqual(bytes(100));
    expect(dma.writeU32(0x3000, 0x1122_3344)).toBe(MemTx.Ok);
    expect(ram.readU32(0x3000)).toBe(0x1122_3344);
    expect(dma.read(RAM_SIZE - 2, new Uint8Array(4))).toBe(MemTx.DecodeError);
  });

  it('with bus mastering off reads zeros and drops writes, without asking the IOMMU', () => {
    const { as, ram } = system();
    ram.fill(0, PAGE, 0x77);
    let master = false;
    const t = new FakeTranslator([0]);
    const dma = new DmaSpace(as, () => master, () => t);
    const out = new Uint8Array(16).fill(9);
    expect(dma.read(0x10_0000, out)).toBe(MemTx.DecodeError);
    expect(out.every((b) => b === 0)).toBe(true);
    expect(dma.write(0x10_0000, bytes(16))).toBe(MemTx.DecodeError);
    expect(dma.writeU32(0xfee0_0000, 0x41)).toBe(MemTx.DecodeError);
    expect(t.calls).toEqual([]);
    expect(t.interrupts).toEqual([]);
    expect(ram.readU8(0)).toBe(0x77);
    master = true;
    expect(dma.read(0x10_0000, out)).toBe(MemTx.Ok);
    expect(out[0]).toBe(0x77);
  });

  it('splits one IOVA range into scattered physical fragments, one translation per page', () => {
    const { as, ram } = system();
    const t = new FakeTranslator([5, 2, 9]);
    const dma = new DmaSpace(as, () => true, () => t);
    const data = bytes(2 * PAGE, 3);
    const start = 0x10_0000 + PAGE - 100; // 100 bytes before the end of IOVA page 0
    ram.fill(0, RAM_SIZE, 0xee);
    expect(dma.write(start, data)).toBe(MemTx.Ok);
    expect(ram.compare(5 * PAGE + PAGE - 100, data.subarray(0, 100))).toBe(true);
    expect(ram.compare(2 * PAGE, data.subarray(100, 100 + PAGE))).toBe(true);
    expect(ram.compare(9 * PAGE, data.subarray(100 + PAGE))).toBe(true);
    expect(ram.readU8(9 * PAGE + PAGE - 100)).toBe(0xee);
    expect(ram.readU8(5 * PAGE + PAGE - 101)).toBe(0xee);
    expect(t.calls.map(([a]) => a)).toEqual([start, 0x10_0000 + PAGE, 0x10_0000 + 2 * PAGE]);
    expect(t.calls.every(([, acc]) => acc === DmaAccess.Write)).toBe(true);
    const back = new Uint8Array(data.length);
    expect(dma.read(start, back)).toBe(MemTx.Ok);
    expect(back).toEqual(data);
  });

  it('a faulting page reads zeros and drops its bytes; the pages around it still work', () => {
    const { as, ram } = system();
    ram.fill(0, RAM_SIZE, 0xcc);
    const t = new FakeTranslator([1, -1, 3]);
    const dma = new DmaSpace(as, () => true, () => t);
    const out = new Uint8Array(3 * PAGE).fill(0x11);
    expect(dma.read(0x10_0000, out)).toBe(MemTx.DecodeError);
    expect(out.subarray(0, PAGE).every((b) => b === 0xcc)).toBe(true);
    expect(out.subarray(PAGE, 2 * PAGE).every((b) => b === 0)).toBe(true);
    expect(out.subarray(2 * PAGE).every((b) => b === 0xcc)).toBe(true);
    expect(dma.write(0x10_0000, new Uint8Array(3 * PAGE))).toBe(MemTx.DecodeError);
    expect(ram.readU8(PAGE)).toBe(0);
    expect(ram.readU8(3 * PAGE + PAGE - 1)).toBe(0);
    expect(ram.readU8(2 * PAGE)).toBe(0xcc); // nothing leaked anywhere else
    expect(ram.readU8(0)).toBe(0xcc);
  });

  it('honours permissions: a write to a read-only page is dropped, a read allowed', () => {
    const { as, ram } = system();
    const t = new FakeTranslator([4], [IommuPerm.Read]);
    const dma = new DmaSpace(as, () => true, () => t);
    ram.writeU32(4 * PAGE, 0xabcd);
    expect(dma.write(0x10_0000, bytes(4))).toBe(MemTx.DecodeError);
    expect(ram.readU32(4 * PAGE)).toBe(0xabcd);
    const out = new Uint8Array(4);
    expect(dma.read(0x10_0000, out)).toBe(MemTx.Ok);
    expect(out[0]).toBe(0xcd);
  });

  it('uses the page size the translator reports (a 2 MiB page is one fragment)', () => {
    const ram = createTsRam(8 * 2 ** 20);
    const root = new ContainerRegion('system', 2 ** 40);
    root.add(new RamRegion('ram', ram.size, ram), 0);
    let n = 0;
    const t: DmaTranslator = {
      interruptWindow: MSI_WINDOW,
      translate(iova, _access, out) {
        n++;
        out.iova = iova - (iova % 2 ** 21);
        out.translated = 2 ** 22;
        out.addrMask = 2 ** 21 - 1;
        out.perm = IommuPerm.ReadWrite;
        return true;
      },
      interruptWrite() {},
    };
    const dma = new DmaSpace(new AddressSpace('m', root), () => true, () => t);
    expect(dma.write(2 ** 21 + 4000, bytes(64 * 1024))).toBe(MemTx.Ok);
    expect(n).toBe(1);
    expect(ram.compare(2 ** 22 + 4000, bytes(64 * 1024))).toBe(true);
  });

  describe('interrupt window 0xFEE00000-0xFEEFFFFF', () => {
    const make = () => {
      const { as, ram } = system();
      const t = new FakeTranslator([], [], 0x10_0000);
      return { t, ram, dma: new DmaSpace(as, () => true, () => t) };
    };

    it('an aligned 4-byte write is an interrupt request, not a translation', () => {
      const { t, dma } = make();
      expect(dma.writeU32(0xfee0_1004, 0x4041)).toBe(MemTx.Ok);
      expect(t.interrupts).toEqual([[0xfee0_1004, 0x4041]]);
      expect(t.calls).toEqual([]);
    });

    it('an 8-byte write is two interrupt requests (split into valid 4-byte accesses)', () => {
      const { t, dma } = make();
      expect(dma.write(0xfee0_0000, Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0))).toBe(MemTx.Ok);
      expect(t.interrupts).toEqual([[0xfee0_0000, 1], [0xfee0_0004, 2]]);
    });

    it('misaligned or short pieces are refused', () => {
      const { t, dma } = make();
      expect(dma.write(0xfee0_0002, Uint8Array.of(1, 2, 3, 4))).toBe(MemTx.DecodeError);
      expect(dma.write(0xfee0_0000, Uint8Array.of(1, 2))).toBe(MemTx.DecodeError);
      expect(dma.write(0xfee0_0001, Uint8Array.of(1, 2, 3, 4, 5, 6, 7))).toBe(MemTx.DecodeError);
      expect(t.interrupts).toEqual([[0xfee0_0004, 0x0706_0504]]);
    });

    it('reads return zeros', () => {
      const { t, dma } = make();
      const out = new Uint8Array(8).fill(0x55);
      expect(dma.read(0xfee0_0000, out)).toBe(MemTx.Ok);
      expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
      out.fill(0x55);
      expect(dma.read(0xfee0_0001, out.subarray(0, 2))).toBe(MemTx.DecodeError);
      expect([out[0], out[1]]).toEqual([0, 0]);
      expect(t.calls).toEqual([]);
      expect(t.interrupts).toEqual([]);
    });

    it('a range running into the window is translated up to it, then remapped', () => {
      const { as } = system();
      const pages = new Array<number>(256).fill(-1);
      pages[255] = 7;
      const t = new FakeTranslator(pages, [], 0xfee0_0000 - 256 * PAGE);
      const dma = new DmaSpace(as, () => true, () => t);
      const src = new Uint8Array(8);
      src[4] = 0x99;
      src[7] = 0x12;
      dma.write(0xfee0_0000 - 4, src);
      expect(t.calls.map(([a]) => a)).toEqual([0xfee0_0000 - 4]);
      expect(t.interrupts).toEqual([[0xfee0_0000, 0x1200_0099]]);
    });

    it('without an IOMMU the window is plain system memory (the MSI sink lives there)', () => {
      const { as } = system();
      const dma = new DmaSpace(as, () => true, () => null);
      expect(dma.writeU32(0xfee0_0000, 1)).toBe(MemTx.DecodeError); // nothing mapped in this test system
    });
  });

  describe('merging physically contiguous pages (translators with peek)', () => {
    /** A FakeTranslator whose pages in `peekable` can also be peeked; records peeks. */
    class PeekingTranslator extends FakeTranslator {
      readonly peeks: number[] = [];
      constructor(pages: number[], perm: IommuPerm[] = [], private readonly peekable: boolean[] = []) {
        super(pages, perm);
      }
      peek(iova: number, access: DmaAccess, out: IotlbEntry): boolean {
        const i = Math.floor((iova - 0x10_0000) / PAGE);
        if (!(this.peekable[i] ?? true)) return false;
        this.peeks.push(iova);
        const before = this.calls.length;
        const ok = this.translate(iova, access, out);
        this.calls.length = before; // a peek is not a translation
        return ok;
      }
    }
    const page = (i: number) => 0x10_0000 + i * PAGE;

    it('contiguous pages are translated once and peeked after', () => {
      const { as, ram } = system();
      const image = bytes(RAM_SIZE, 5);
      ram.copyIn(0, image);
      const t = new PeekingTranslator([3, 4, 5, 6]);
      const out = new Uint8Array(4 * PAGE);
      expect(new DmaSpace(as, () => true, () => t).read(page(0), out)).toBe(MemTx.Ok);
      expect(out).toEqual(image.subarray(3 * PAGE, 7 * PAGE));
      expect(t.calls.map(([a]) => a)).toEqual([page(0)]);
      expect(t.peeks).toEqual([page(1), page(2), page(3)]);
    });

    it('a translated-request space passes its kind and never peeks (each page is checked on its own)', () => {
      const { as, ram } = system();
      const image = bytes(RAM_SIZE, 7);
      ram.copyIn(0, image);
      const kinds: (DmaRequestKind | undefined)[] = [];
      class KindRecorder extends PeekingTranslator {
        override translate(iova: number, access: DmaAccess, out: IotlbEntry, kind?: DmaRequestKind): boolean {
          kinds.push(kind);
          return super.translate(iova, access, out);
        }
      }
      const t = new KindRecorder([3, 4, 5]);
      const out = new Uint8Array(3 * PAGE);
      expect(new DmaSpace(as, () => true, () => t, DmaRequestKind.Translated).read(page(0), out)).toBe(MemTx.Ok);
      expect(out).toEqual(image.subarray(3 * PAGE, 6 * PAGE));
      expect(t.peeks).toEqual([]);
      expect(kinds).toEqual([DmaRequestKind.Translated, DmaRequestKind.Translated, DmaRequestKind.Translated]);
    });

    it('a cached page that is not contiguous is used as peeked, never looked up twice', () => {
      const { as, ram } = system();
      const image = bytes(RAM_SIZE, 6);
      ram.copyIn(0, image);
      const t = new PeekingTranslator([3, 4, 9, 10, 2]);
      const out = new Uint8Array(5 * PAGE);
      expect(new DmaSpace(as, () => true, () => t).read(page(0), out)).toBe(MemTx.Ok);
      const want = [3, 4, 9, 10, 2].map((p) => image.subarray(p * PAGE, (p + 1) * PAGE));
      expect(out).toEqual(Uint8Array.from(want.flatMap((w) => [...w])));
      expect(t.calls.map(([a]) => a)).toEqual([page(0)]);
      expect(t.peeks).toEqual([page(1), page(2), page(3), page(4)]);
    });

    it('pages that cannot be peeked, or lack the permission, go through translate', () => {
      const { as, ram } = system();
      ram.fill(0, RAM_SIZE, 0xcc);
      const rw = IommuPerm.ReadWrite;
      const t = new PeekingTranslator([3, 4, 5, 6, 7], [rw, rw, IommuPerm.Read], [true, true, true, false, true]);
      expect(new DmaSpace(as, () => true, () => t).write(page(0), bytes(5 * PAGE, 1))).toBe(MemTx.DecodeError);
      expect(t.calls.map(([a]) => a)).toEqual([page(0), page(2), page(3)]);
      expect(ram.compare(3 * PAGE, bytes(5 * PAGE, 1).subarray(0, 2 * PAGE))).toBe(true);
      expect(ram.readU8(5 * PAGE)).toBe(0xcc); // the read-only page
      expect(ram.compare(6 * PAGE, bytes(5 * PAGE, 1).subarray(3 * PAGE))).toBe(true);
    });

    it('a merged run stops at the end of RAM', () => {
      const { as, ram } = system();
      ram.fill(0, RAM_SIZE, 0x42);
      const t = new PeekingTranslator([62, 63, 64]);
      const out = new Uint8Array(3 * PAGE).fill(1);
      expect(new DmaSpace(as, () => true, () => t).read(page(0), out)).toBe(MemTx.DecodeError);
      expect(out.subarray(0, 2 * PAGE).every((b) => b === 0x42)).toBe(true);
      expect(out.subarray(2 * PAGE).every((b) => b === 0)).toBe(true);
      expect(t.calls.map(([a]) => a)).toEqual([page(0)]);
    });

    it('a merged run never includes MMIO, whose side effects may change later translations', () => {
      const ram = createTsRam(RAM_SIZE);
      const root = new ContainerRegion('system', 2 ** 40);
      root.add(new RamRegion('ram', RAM_SIZE, ram), 0);
      const pages = [62, 63, 64, 1];
      // A device right after RAM whose register write remaps IOVA page 3 (as a write to an IOMMU could).
      const writes: number[] = [];
      const remapper = new MmioRegion('remapper', PAGE, {
        read: () => 0,
        write: (offset) => {
          writes.push(offset);
          pages[3] = 10;
        },
      });
      root.add(remapper, RAM_SIZE);
      const t = new PeekingTranslator(pages);
      const dma = new DmaSpace(new AddressSpace('memory', root), () => true, () => t);
      expect(dma.write(page(0), bytes(4 * PAGE, 2))).toBe(MemTx.Ok);
      expect(writes.length).toBeGreaterThan(0);
      expect(ram.compare(10 * PAGE, bytes(4 * PAGE, 2).subarray(3 * PAGE))).toBe(true);
      expect(ram.readU8(PAGE)).toBe(0);
    });

    it('random mappings: merging gives the same bytes and results as page-by-page copies (seed 99)', () => {
      const r = new Rng(99);
      const rnd = (n: number) => r.int(n);
      for (let round = 0; round < 300; round++) {
        const n = 1 + rnd(8);
        // Runs of contiguous pages, jumps, faults, read-only pages, pages past the end of RAM.
        const pages: number[] = [];
        let p = rnd(70);
        for (let i = 0; i < n; i++) {
          pages.push(rnd(6) === 0 ? -1 : p);
          p = rnd(3) === 0 ? rnd(70) : p + 1;
        }
        const perm = pages.map(() => (rnd(8) === 0 ? IommuPerm.Read : IommuPerm.ReadWrite));
        const peekable = pages.map(() => rnd(5) !== 0);
        const start = page(0) + rnd(PAGE);
        const len = 1 + rnd(n * PAGE - (start - page(0)));
        const isWrite = rnd(2) === 0;
        const runs = [new PeekingTranslator(pages, perm, peekable), new FakeTranslator(pages, perm)].map((t) => {
          const { as, ram } = system();
          ram.copyIn(0, bytes(RAM_SIZE, round));
          const dma = new DmaSpace(as, () => true, () => t);
          const buf = bytes(len, round + 1);
          const r = isWrite ? dma.write(start, buf) : dma.read(start, buf);
          const mem = new Uint8Array(RAM_SIZE);
          ram.copyOut(0, mem);
          return { r, buf, mem };
        });
        expect(runs[0]!.r).toBe(runs[1]!.r);
        expect(Buffer.compare(runs[0]!.buf, runs[1]!.buf)).toBe(0);
        expect(Buffer.compare(runs[0]!.mem, runs[1]!.mem)).toBe(0);
      }
    });
  });
});

describe('DmaSpace at 64-bit addresses (readWide / writeWide, and numbers from 2^53)', () => {
  const P53 = 2 ** 53;
  const P56 = 2 ** 56;
  const P57 = 2 ** 57;
  const P64 = 2 ** 64;

  /**
   * IOVA 4 KiB pages -> physical pages from a table (keys are exact page
   * bases, any size up to 2^64); unmapped pages fault.  Records
   * translations, peeks and faults.
   */
  class PageTableTranslator implements DmaTranslator {
  readonly interruptWindow = MSI_WINDOW;
    readonly calls: number[] = [];
    readonly peeks: number[] = [];
    readonly faults: number[] = [];
    readonly interrupts: [addr: number, data: number][] = [];
    constructor(private readonly pages: ReadonlyMap<number, number>) {}
    translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
      this.calls.push(iova);
      return this.lookup(iova, out, true);
    }
    peek(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
      this.peeks.push(iova);
      return this.lookup(iova, out, false);
    }
    interruptWrite(addr: number, data: number): void {
      this.interrupts.push([addr, data]);
    }
    private lookup(iova: number, out: IotlbEntry, record: boolean): boolean {
      const page = iova - (iova % PAGE);
      const phys = this.pages.get(page);
      if (phys === undefined) {
        if (record) this.faults.push(page);
        return false;
      }
      out.iova = page;
      out.translated = phys * PAGE;
      out.addrMask = PAGE - 1;
      out.perm = IommuPerm.ReadWrite;
      return true;
    }
  }

  function make(pages: [iovaPage: number, physPage: number][]) {
    const { as, ram } = system();
    ram.fill(0, RAM_SIZE, 0xee);
    const t = new PageTableTranslator(new Map(pages));
    return { t, ram, dma: new DmaSpace(as, () => true, () => t) };
  }

  it('IOVA 2^56 + 0x1234 reaches offset 0x234 of its page (a number would have lost the low bits)', () => {
    const { t, ram, dma } = make([[P56 + PAGE, 7]]);
    ram.copyIn(7 * PAGE, bytes(PAGE, 4));
    const out = new Uint8Array(4);
    expect(dma.readWide(2n ** 56n + 0x1234n, out)).toBe(MemTx.Ok);
    expect(out).toEqual(bytes(PAGE, 4).subarray(0x234, 0x238));
    expect(t.calls).toEqual([P56 + PAGE]);
    // The same address as a number is already 2^56 + 0x1230: the number API cannot do better.
    expect(P56 + 0x1234).toBe(P56 + 0x1230);
    expect(dma.read(P56 + 0x1234, out)).toBe(MemTx.Ok);
    expect(out).toEqual(bytes(PAGE, 4).subarray(0x230, 0x234));
  });

  it('a page crossing above 2^53 translates each exact page once and keeps the byte offsets', () => {
    const { t, ram, dma } = make([
      [P56 + 0xabc_d000, 5],
      [P56 + 0xabc_e000, 2],
    ]);
    const data = bytes(0x30, 9);
    expect(dma.writeWide(2n ** 56n + 0xabc_dff3n, data)).toBe(MemTx.Ok);
    expect(ram.compare(5 * PAGE + 0xff3, data.subarray(0, 13))).toBe(true);
    expect(ram.compare(2 * PAGE, data.subarray(13))).toBe(true);
    expect(ram.readU8(5 * PAGE + 0xff2)).toBe(0xee);
    expect(ram.readU8(2 * PAGE + 0x30 - 13)).toBe(0xee);
    expect(t.calls).toEqual([P56 + 0xabc_d000, P56 + 0xabc_e000]);
    const back = new Uint8Array(data.length);
    expect(dma.readWide(2n ** 56n + 0xabc_dff3n, back)).toBe(MemTx.Ok);
    expect(back).toEqual(data);
    // Pages above 2^53 are copied one by one: nothing was peeked.
    expect(t.peeks).toEqual([]);
  });

  it('at 2^57 and above every page faults on its own exact page base and reads zeros', () => {
    const { t, ram, dma } = make([[P57 - PAGE, 3]]);
    ram.copyIn(3 * PAGE, bytes(PAGE, 2));
    const out = new Uint8Array(2 * PAGE + 16).fill(0x11);
    // The last 8 bytes below 2^57 translate; everything from 2^57 on faults.
    expect(dma.readWide(2n ** 57n - 8n, out)).toBe(MemTx.DecodeError);
    expect(out.subarray(0, 8)).toEqual(bytes(PAGE, 2).subarray(PAGE - 8));
    expect(out.subarray(8).every((b) => b === 0)).toBe(true);
    expect(t.calls).toEqual([P57 - PAGE, P57, P57 + PAGE, P57 + 2 * PAGE]);
    expect(t.faults).toEqual([P57, P57 + PAGE, P57 + 2 * PAGE]);
    // Writes there are dropped; so is one at the top of the 64-bit space.
    expect(dma.writeWide(0xffff_ffff_ffff_f004n, bytes(8))).toBe(MemTx.DecodeError);
    expect(t.faults.at(-1)).toBe(P64 - PAGE);
    expect(ram.compare(3 * PAGE, bytes(PAGE, 2))).toBe(true);
  });

  it('an access running past 2^64 - 1 wraps around to address 0, as 64-bit address arithmetic does', () => {
    const { t, ram, dma } = make([
      [P64 - PAGE, 3],
      [0, 4],
    ]);
    const data = bytes(16, 3);
    expect(dma.writeWide(0xffff_ffff_ffff_fff8n, data)).toBe(MemTx.Ok);
    expect(t.calls).toEqual([P64 - PAGE, 0]);
    expect(ram.compare(3 * PAGE + 0xff8, data.subarray(0, 8))).toBe(true);
    expect(ram.compare(4 * PAGE, data.subarray(8))).toBe(true);
    // A negative bigint is taken modulo 2^64 (guest values never throw).
    const out = new Uint8Array(16);
    expect(dma.readWide(-8n, out)).toBe(MemTx.Ok);
    expect(out).toEqual(data);
  });

  it('the interrupt window is where it was: 0xFEE00000 remaps, 2^56 + 0xFEE00000 translates', () => {
    const { t, ram, dma } = make([[P56 + 0xfee0_0000, 6]]);
    expect(dma.writeWide(0xfee0_1000n, Uint8Array.of(0x41, 0x40, 0, 0))).toBe(MemTx.Ok);
    expect(t.interrupts).toEqual([[0xfee0_1000, 0x4041]]);
    expect(t.calls).toEqual([]);
    const zeros = new Uint8Array(4).fill(0x55);
    expect(dma.readWide(0xfee0_0000n, zeros)).toBe(MemTx.Ok);
    expect(Array.from(zeros)).toEqual([0, 0, 0, 0]);
    expect(dma.writeWide(2n ** 56n + 0xfee0_0010n, Uint8Array.of(1, 2, 3, 4))).toBe(MemTx.Ok);
    expect(t.interrupts.length).toBe(1);
    expect(t.calls).toEqual([P56 + 0xfee0_0000]);
    expect(ram.readU32(6 * PAGE + 0x10)).toBe(0x0403_0201);
  });

  it('an access crossing 2^53 is exact on both sides, from a number or a bigint', () => {
    for (const wide of [false, true]) {
      const { t, ram, dma } = make([
        [P53 - PAGE, 1],
        [P53, 2],
      ]);
      const data = bytes(24, 7);
      expect(wide ? dma.writeWide(2n ** 53n - 8n, data) : dma.write(P53 - 8, data)).toBe(MemTx.Ok);
      expect(ram.compare(PAGE + 0xff8, data.subarray(0, 8))).toBe(true);
      expect(ram.compare(2 * PAGE, data.subarray(8))).toBe(true);
      expect(t.calls).toEqual([P53 - 8]); // the page at 2^53 was merged after a peek
      expect(t.peeks).toEqual([P53]);
    }
  });

  it('a number at 2^53 or above that holds its address exactly works like the bigint', () => {
    const P55 = 2 ** 55; // spacing of doubles 8 here: 2^55 + 0xff8 is exact
    const { t, ram, dma } = make([
      [P55, 1],
      [P55 + PAGE, 2],
    ]);
    const data = bytes(16, 5);
    expect(dma.write(P55 + 0xff8, data)).toBe(MemTx.Ok);
    expect(t.calls).toEqual([P55, P55 + PAGE]);
    expect(ram.compare(PAGE + 0xff8, data.subarray(0, 8))).toBe(true);
    expect(ram.compare(2 * PAGE, data.subarray(8))).toBe(true);
  });

  it('small bigints take the number path; bus mastering and no IOMMU behave as for numbers', () => {
    const { as, ram } = system();
    let master = true;
    const dma = new DmaSpace(as, () => master, () => null);
    expect(dma.writeWide(0x2000n, bytes(64))).toBe(MemTx.Ok);
    expect(ram.compare(0x2000, bytes(64))).toBe(true);
    master = false;
    const out = new Uint8Array(8).fill(1);
    expect(dma.readWide(2n ** 56n, out)).toBe(MemTx.DecodeError);
    expect(out.every((b) => b === 0)).toBe(true);
    expect(dma.writeWide(0x2000n, new Uint8Array(8))).toBe(MemTx.DecodeError);
    expect(ram.compare(0x2000, bytes(64))).toBe(true);
  });
});
