import { describe, expect, it } from 'vitest';
import { MSI_WINDOW } from '../core/irq.js';
import { MemTx } from '../memory/address-space.js';
import { createRam } from '../memory/ram-backend.js';
import { MmioRegion, RamRegion } from '../memory/region.js';
import { DmaRequestKind, IommuPerm, NO_PASID, type AtsEndpoint, type AtsPort, type DmaIommu, type DmaRequester, type IotlbEntry } from '../memory/iommu.js';
import { IrqWire } from '../core/irq.js';
import { PciCommand, PciConfig, PciReg, PciStatus } from './config.js';
import { BAR_UNMAPPED } from './device.js';
import { MsiFlags } from './msi.js';
import { PcieRootPort } from './bridges.js';
import { TestEndpoint, cfgRead, cfgWrite, makeTestHost } from '../../test/support/pci-host.js';

const MSI = 0x50;

describe('PciConfig masks', () => {
  it('applies wmask and w1cmask in one helper; reads outside are all-ones', () => {
    const c = new PciConfig();
    c.setWord(0x40, 0xa5a5);
    c.setWmask(0x40, 2, 0x00ff);
    c.setW1cmask(0x40, 2, 0x0f00);
    c.guestWrite(0x40, 2, 0x0312);
    expect(c.getWord(0x40)).toBe(0xa412); // low byte written; high byte read-only except bits 8-9 cleared by the 1s written
    expect(c.read(0xfe, 4)).toBe(0xffff0000);
    expect(c.read(0x100, 1)).toBe(0xff);
    c.guestWrite(0xff, 4, 0xffffffff); // partly outside: no throw
    expect(() => c.setByte(0x100, 0)).toThrow(RangeError);
    expect(() => new PciConfig(512)).toThrow(RangeError);
  });

  it('device writes never touch read-only header fields', () => {
    const d = new TestEndpoint();
    d.configWrite(0, 4, 0);
    d.configWrite(PciReg.RevisionId, 4, 0);
    d.configWrite(PciReg.Status, 2, 0xffff);
    expect(d.config.getLong(0)).toBe(0x56781234);
    expect(d.config.getLong(PciReg.RevisionId)).toBe(0x00ff0001);
    expect(d.config.getWord(PciReg.Status)).toBe(PciStatus.CapList);
  });
});

describe('BARs', () => {
  it('sizes 32-bit, I/O and 64-bit prefetchable BARs by writing all-ones', () => {
    const d = new TestEndpoint();
    for (let i = 0; i < 6; i++) d.configWrite(PciReg.Bar0 + 4 * i, 4, 0xffffffff);
    expect(d.configRead(PciReg.Bar0, 4)).toBe(0xfffff000);
    expect(d.configRead(PciReg.Bar0 + 4, 4)).toBe(0);
    expect(d.configRead(PciReg.Bar0 + 8, 4)).toBe(0xfffffff1);
    expect(d.configRead(PciReg.Bar0 + 16, 4)).toBe(0xffff000c);
    expect(d.configRead(PciReg.Bar0 + 20, 4)).toBe(0xffffffff);
  });

  it('maps while decode is enabled, moves, and follows QEMU pci_bar_address rules', () => {
    const { host, mem, io } = makeTestHost();
    const d = new TestEndpoint();
    host.rootBus.plug(d);
    expect(d.devfn).toBe(0x08);
    cfgWrite(io, 0, 0x08, PciReg.Bar0, 0xe000_0000);
    cfgWrite(io, 0, 0x08, PciReg.Bar0 + 8, 0xc000);
    expect(mem.read(0xe000_0010, 4)).toBe(0);
    expect(d.bars[0]!.addr).toBe(BAR_UNMAPPED);
    cfgWrite(io, 0, 0x08, PciReg.Command, PciCommand.Memory, 2);
    expect(mem.read(0xe000_0010, 4)).toBe(0x1234_0010);
    expect(io.read(0xc004, 2)).toBe(0xffff); // I/O decode still off
    cfgWrite(io, 0, 0x08, PciReg.Command, PciCommand.Memory | PciCommand.Io, 2);
    expect(io.read(0xc004, 2)).toBe(0x0004);
    cfgWrite(io, 0, 0x08, PciReg.Bar0, 0xe100_0000);
    expect(mem.read(0xe000_0010, 4)).toBe(0);
    expect(mem.read(0xe100_0010, 4)).toBe(0x1234_0010);
    cfgWrite(io, 0, 0x08, PciReg.Bar0, 0); // address 0: unmapped
    expect(d.bars[0]!.addr).toBe(BAR_UNMAPPED);
    cfgWrite(io, 0, 0x08, PciReg.Bar0, 0xffffffff); // sizing pattern: last byte at 4G - 1 is refused
    expect(d.bars[0]!.addr).toBe(BAR_UNMAPPED);
    cfgWrite(io, 0, 0x08, PciReg.Bar0, 0xffffe000);
    expect(d.bars[0]!.addr).toBe(0xffffe000);
    // 64-bit BAR above 4 GiB.
    cfgWrite(io, 0, 0x08, PciReg.Bar0 + 16, 0x0001_0000);
    cfgWrite(io, 0, 0x08, PciReg.Bar0 + 20, 0x1);
    expect(mem.read(0x1_0001_0008, 4)).toBe(0x1234_0008);
    cfgWrite(io, 0, 0x08, PciReg.Command, 0, 2);
    expect(mem.read(0x1_0001_0008, 4)).toBe(0);
    expect(d.bars.filter((b) => b && b.addr !== BAR_UNMAPPED)).toEqual([]);
  });

  it('rejects impossible BAR registrations (host mistakes)', () => {
    const d = new TestEndpoint();
    expect(() => d.registerBar(0, new MmioRegion('x', 0x1000, { read: () => 0, write: () => {} }), 'mem32')).toThrow();
    expect(() => d.registerBar(1, new MmioRegion('y', 0x1800, { read: () => 0, write: () => {} }), 'mem32')).toThrow(RangeError);
    const ops = { read: () => 0, write: () => {} };
    expect(() => d.registerBar(5, new MmioRegion('z', 0x1000, ops), 'mem32')).toThrow(/overlaps/); // upper half of BAR4
    expect(() => d.registerBar(3, new MmioRegion('w', 0x1000, ops), 'mem64')).toThrow(/overlaps/); // would cover BAR4
    const e = new TestEndpoint();
    expect(() => e.registerBar(6, new MmioRegion('v', 0x1000, ops), 'mem32')).toThrow(RangeError);
  });
});

describe('CF8/CFC versus ECAM', () => {
  it('every register reads and writes the same through both mechanisms', () => {
    const { host, io, mem } = makeTestHost();
    const d = new TestEndpoint();
    host.rootBus.plug(d, { devfn: 0x18 });
    cfgWrite(io, 0, 0, 0x60, 0xb000_0001);
    const ecam = (reg: number): number => 0xb000_0000 + (0x18 << 12) + reg;
    for (let reg = 0; reg < 256; reg += 4) expect(mem.read(ecam(reg), 4)).toBe(cfgRead(io, 0, 0x18, reg));
    for (let reg = 0; reg < 256; reg++) expect(mem.read(ecam(reg), 1)).toBe(cfgRead(io, 0, 0x18, reg, 1));
    for (let reg = 0; reg < 256; reg += 2) expect(mem.read(ecam(reg), 2)).toBe(cfgRead(io, 0, 0x18, reg, 2));
    mem.write(ecam(PciReg.InterruptLine), 1, 0x0b);
    expect(cfgRead(io, 0, 0x18, PciReg.InterruptLine, 1)).toBe(0x0b);
    cfgWrite(io, 0, 0x18, 0x44, 0x1234_5678);
    expect(mem.read(ecam(0x44), 4)).toBe(0x1234_5678);
    // Extended space only through ECAM.
    mem.write(ecam(0x200), 4, 0xcafe_f00d);
    expect(mem.read(ecam(0x200), 4)).toBe(0xcafe_f00d);
    // 8-byte and unaligned ECAM accesses behave as in QEMU 7.2.
    expect(mem.read64(0xb000_0000 + (0xf8 << 12) + 8)).toBe(0x0080000006010002n);
    expect(mem.read(0xb000_0000 + (0xf8 << 12) + 9, 4)).toBe(0x00060100);
    mem.write64(ecam(0x80), 0x0b0b0b0b0a0a0a0an);
    mem.write(ecam(0x81), 4, 0x01020304);
    expect(mem.read64(ecam(0x80))).toBe(0x0b0b0b010203040an);
    // Absent function and absent bus through ECAM.
    expect(mem.read(ecam(0) + 0x1000, 4)).toBe(0xffffffff);
    expect(mem.read(0xb000_0000 + (3 << 20), 4)).toBe(0xffffffff);
  });

  it('CONFIG_ADDRESS takes only 4-byte writes and the data port needs the enable bit', () => {
    const { io } = makeTestHost();
    io.write(0xcf8, 4, 0x8000_0000);
    io.write(0xcf8, 2, 0);
    expect(io.read(0xcf8, 4)).toBe(0x8000_0000);
    expect(io.read(0xcfc, 4)).toBe(0x29c08086);
    expect(io.read(0xcfe, 2)).toBe(0x29c0);
    io.write(0xcf8, 4, 0x0000_0000);
    expect(io.read(0xcfc, 4)).toBe(0xffffffff);
  });
});

/** A host with RAM at 0 and a capture region at 0xfee00000. */
function dmaHost(bridgeMasterGating = false) {
  const t = makeTestHost(undefined, bridgeMasterGating);
  const ram = createRam(0x10_0000, 'ts');
  t.system.add(new RamRegion('ram', 0x10_0000, ram), 0);
  const msis: [number, number][] = [];
  t.system.add(
    new MmioRegion('msi', 0x10_0000, {
      read: () => 0,
      write: (off, _size, value) => {
        msis.push([0xfee0_0000 + off, value]);
      },
    }),
    0xfee0_0000,
  );
  return { ...t, ram, msis };
}

function enableMsi(d: TestEndpoint, opts: { qsize?: number; data?: number } = {}): void {
  d.configWrite(MSI + 4, 4, 0xfee0_1000);
  d.configWrite(MSI + 8, 4, 0);
  d.configWrite(MSI + 12, 2, opts.data ?? 0x4040);
  d.configWrite(MSI + 2, 2, MsiFlags.Enable | ((opts.qsize ?? 0) << MsiFlags.QSizeShift));
}

describe('DMA and MSI', () => {
  it('only the device bus-master bit gates DMA by default (QEMU 7.2)', () => {
    const { host, ram } = dmaHost();
    ram.writeU32(0x1000, 0xdeadbeef);
    const rp = new PcieRootPort();
    host.rootBus.plug(rp);
    const d = new TestEndpoint();
    rp.secondaryBus.plug(d);
    const buf = new Uint8Array(4);
    expect(d.dma.read(0x1000, buf)).toBe(MemTx.DecodeError);
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(d.dma.read(0x1000, buf)).toBe(MemTx.Ok);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0xdeadbeef);
  });

  it('with bridgeMasterGating, every bridge above the device must be bus master too', () => {
    const { host, ram } = dmaHost(true);
    ram.writeU32(0x1000, 0xdeadbeef);
    const rp = new PcieRootPort();
    host.rootBus.plug(rp);
    const d = new TestEndpoint();
    rp.secondaryBus.plug(d);
    const buf = new Uint8Array(4);
    expect(d.dma.read(0x1000, buf)).toBe(MemTx.DecodeError);
    expect([...buf]).toEqual([0, 0, 0, 0]);
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(d.dma.read(0x1000, buf)).toBe(MemTx.DecodeError); // root port's bus master is off
    rp.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(d.dma.read(0x1000, buf)).toBe(MemTx.Ok);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0xdeadbeef);
    expect(d.dma.write(0x2000, Uint8Array.of(1, 2, 3))).toBe(MemTx.Ok);
    expect(ram.readU8(0x2002)).toBe(3);
  });

  it('MSI: capability layout and masks like QEMU msi_init', () => {
    const d = new TestEndpoint();
    const c = d.config;
    expect(c.getByte(MSI)).toBe(0x05);
    expect(c.getWord(MSI + 2)).toBe(MsiFlags.Is64 | MsiFlags.MaskBit | (2 << MsiFlags.QMaskShift));
    d.configWrite(MSI, 4, 0xffffffff);
    expect(c.getWord(MSI + 2)).toBe(0x01a5); // enable + QSIZE clamped to QMASK (4 vectors)
    d.configWrite(MSI + 4, 4, 0xffffffff);
    expect(c.getLong(MSI + 4)).toBe(0xfffffffc);
    d.configWrite(MSI + 16, 4, 0xffffffff);
    expect(c.getLong(MSI + 16)).toBe(0xf); // 4 maskable vectors
    d.configWrite(MSI + 20, 4, 0xffffffff);
    expect(c.getLong(MSI + 20)).toBe(0); // pending is read-only
  });

  it('MSI: data | vector goes through the DMA space, masked vectors pend', () => {
    const { host, msis } = dmaHost();
    const d = new TestEndpoint();
    host.rootBus.plug(d);
    enableMsi(d, { qsize: 2, data: 0x4041 });
    d.msiNotify(3);
    expect(msis).toEqual([]); // bus master off: the write is dropped
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(d.msiEnabled()).toBe(true);
    d.msiNotify(3);
    d.msiNotify(0);
    expect(msis).toEqual([
      [0xfee0_1000, 0x4043],
      [0xfee0_1000, 0x4040],
    ]);
    msis.length = 0;
    d.configWrite(MSI + 16, 4, 0x4); // mask vector 2
    d.msiNotify(2);
    expect(msis).toEqual([]);
    expect(d.config.getLong(MSI + 20)).toBe(0x4);
    d.configWrite(MSI + 16, 4, 0); // unmask: pending vector is delivered
    expect(msis).toEqual([[0xfee0_1000, 0x4042]]);
    expect(d.config.getLong(MSI + 20)).toBe(0);
    d.msiNotify(7); // beyond the enabled vectors: dropped
    expect(msis.length).toBe(1);
  });

  it('DMA with a PASID goes through that PASID\'s translator, gated by bus mastering; without an IOMMU the PASID is ignored', () => {
    const { host, ram } = dmaHost();
    ram.writeU32(0x5000, 0x55667788);
    ram.writeU32(0x7000, 0x01020304);
    const asked: [number, number | undefined][] = [];
    const iommu: DmaIommu = {
      translatorFor: (r: DmaRequester, pasid?: number) => {
        asked.push([r.devfn, pasid]);
        return {
          interruptWindow: null,
          translate(iova: number, _access, out: IotlbEntry) {
            out.iova = iova & ~0xfff;
            out.translated = pasid === 9 ? 0x5000 : iova & ~0xfff;
            out.addrMask = 0xfff;
            out.perm = IommuPerm.ReadWrite;
            return true;
          },
          interruptWrite() {},
        };
      },
    };
    host.setIommu(iommu);
    const d = new TestEndpoint();
    const early = d.dmaWithPasid(9);
    host.rootBus.plug(d, { devfn: 0x20 });
    const buf = new Uint8Array(4);
    expect(early.read(0x7000, buf)).toBe(MemTx.DecodeError); // bus mastering off
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(early.read(0x7000, buf)).toBe(MemTx.Ok);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0x55667788);
    expect(d.dmaWithPasid(9)).toBe(early);
    d.dma.read(0x7000, buf);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0x01020304);
    // The function's translator without a PASID is created when it is plugged, the PASID one at first use.
    expect(asked.filter(([devfn]) => devfn === 0x20)).toEqual([[0x20, NO_PASID], [0x20, 9]]);
    host.setIommu(null);
    early.read(0x7000, buf);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0x01020304);
    expect(() => d.dmaWithPasid(0x10_0000)).toThrow(/PASID 1048576 out of range/);
    expect(() => d.dmaWithPasid(-1)).toThrow(/out of range/);
  });

  it('translated requests use a translated-kind space per PASID, bus-master gated', () => {
    const { host, ram } = dmaHost();
    ram.writeU32(0x6000, 0x0a0b0c0d);
    const kinds: [number | undefined, number | undefined][] = [];
    const iommu: DmaIommu = {
      translatorFor: (_r: DmaRequester, pasid?: number) => ({
        interruptWindow: null,
        translate(iova: number, _access, out: IotlbEntry, kind?: DmaRequestKind) {
          kinds.push([pasid, kind]);
          out.iova = iova & ~0xfff;
          out.translated = iova & ~0xfff;
          out.addrMask = 0xfff;
          out.perm = IommuPerm.ReadWrite;
          return true;
        },
        interruptWrite() {},
      }),
    };
    host.setIommu(iommu);
    const d = new TestEndpoint();
    host.rootBus.plug(d, { devfn: 0x20 });
    const buf = new Uint8Array(4);
    expect(d.translatedDma().read(0x6000, buf)).toBe(MemTx.DecodeError);
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(d.translatedDma().read(0x6000, buf)).toBe(MemTx.Ok);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0x0a0b0c0d);
    expect(d.translatedDma(3)).toBe(d.translatedDma(3));
    d.translatedDma(3).read(0x6000, buf);
    d.dma.read(0x6000, buf);
    expect(kinds).toEqual([[NO_PASID, DmaRequestKind.Translated], [3, DmaRequestKind.Translated], [NO_PASID, DmaRequestKind.Untranslated]]);
    expect(() => d.translatedDma(0x10_0000)).toThrow(/out of range/);
  });

  it('the ATS port comes from the host\'s IOMMU, registered again when the IOMMU changes', () => {
    const { host } = dmaHost();
    const d = new TestEndpoint();
    const endpoint: AtsEndpoint = { invalidateAtc: () => 'done', pageGroupResponse: () => {} };
    expect(d.atsPort(endpoint)).toBeNull(); // unplugged
    host.rootBus.plug(d, { devfn: 0x20 });
    expect(d.atsPort(endpoint)).toBeNull(); // no IOMMU
    const registered: [number, AtsEndpoint][] = [];
    const port: AtsPort = { translationRequest: () => {}, pageRequest: () => 'refused' };
    const iommu: DmaIommu = {
      translatorFor: () => ({ interruptWindow: null, translate: () => false, interruptWrite: () => {} }),
      atsPort: (r, ep) => {
        registered.push([r.devfn, ep]);
        return port;
      },
    };
    host.setIommu(iommu);
    expect(d.atsPort(endpoint)).toBe(port);
    expect(d.atsPort(endpoint)).toBe(port);
    expect(registered).toEqual([[0x20, endpoint]]);
    host.setIommu(iommu);
    d.atsPort(endpoint);
    expect(registered.length).toBe(2);
    host.setIommu({ translatorFor: iommu.translatorFor });
    expect(d.atsPort(endpoint)).toBeNull(); // an IOMMU without ATS
  });

  it('MSI and DMA pass the IOMMU translator of the requester', () => {
    const { host, ram } = dmaHost();
    ram.writeU32(0x5000, 0x11223344);
    const seen: { sid: number; addr: number; data?: number }[] = [];
    const iommu: DmaIommu = {
      translatorFor: (r: DmaRequester) => ({
        interruptWindow: MSI_WINDOW,
        translate(iova: number, _access, out: IotlbEntry) {
          seen.push({ sid: (r.busNumber() << 8) | r.devfn, addr: iova });
          out.iova = iova & ~0xfff;
          out.translated = 0x5000;
          out.addrMask = 0xfff;
          out.perm = IommuPerm.ReadWrite;
          return true;
        },
        interruptWrite(addr, data) {
          seen.push({ sid: (r.busNumber() << 8) | r.devfn, addr, data });
        },
      }),
    };
    host.setIommu(iommu);
    const d = new TestEndpoint();
    host.rootBus.plug(d, { devfn: 0x20 });
    d.configWrite(PciReg.Command, 2, PciCommand.Master);
    const buf = new Uint8Array(4);
    d.dma.read(0x7000, buf);
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0x11223344);
    enableMsi(d);
    d.msiNotify(0);
    expect(seen).toEqual([
      { sid: 0x20, addr: 0x7000 },
      { sid: 0x20, addr: 0xfee0_1000, data: 0x4040 },
    ]);
    host.setIommu(null);
    seen.length = 0;
    d.dma.read(0x5000, buf);
    expect(seen).toEqual([]);
  });
});

describe('INTx', () => {
  function irqHost() {
    const levels = new Map<number, boolean>();
    const log: string[] = [];
    const wires = Array.from(
      { length: 24 },
      (_, gsi) =>
        new IrqWire((level) => {
          levels.set(gsi, level);
          log.push(`${level ? 'raise' : 'lower'} ${gsi}`);
        }),
    );
    const t = makeTestHost((gsi) => wires[gsi]!);
    return { ...t, levels, log };
  }

  it('routes slot pins to PIRQ E-H = GSI 20-23 as QEMU q35 does, with status and INTx-disable', () => {
    const { host, log } = irqHost();
    const d1 = new TestEndpoint();
    const d4 = new TestEndpoint();
    host.rootBus.plug(d1, { devfn: 0x08 });
    host.rootBus.plug(d4, { devfn: 0x20 });
    d1.setIntx(true);
    expect(d1.config.getWord(PciReg.Status) & PciStatus.Interrupt).toBe(PciStatus.Interrupt);
    d4.setIntx(true);
    expect(log).toEqual(['raise 21', 'raise 20']);
    d1.configWrite(PciReg.Command, 2, PciCommand.IntxDisable);
    expect(log.at(-1)).toBe('lower 21');
    expect(d1.config.getWord(PciReg.Status) & PciStatus.Interrupt).toBe(PciStatus.Interrupt);
    d1.configWrite(PciReg.Command, 2, 0);
    expect(log.at(-1)).toBe('raise 21');
    d1.setIntx(false);
    d4.setIntx(false);
    expect(log.slice(-2)).toEqual(['lower 21', 'lower 20']);
  });

  it('swizzles through bridges and ORs shared PIRQs; LPC PIRQ routing adds the ISA IRQ', () => {
    const { host, log, io } = irqHost();
    const rp = new PcieRootPort();
    host.rootBus.plug(rp, { devfn: 0x10 }); // slot 2
    const behind = new TestEndpoint();
    rp.secondaryBus.plug(behind); // slot 0, INTA -> root port INTA -> PIRQ (2+0)%4+4 = G -> GSI 22
    const other = new TestEndpoint();
    host.rootBus.plug(other, { devfn: 0x30 }); // slot 6 -> PIRQ (6)%4+4 = G as well
    behind.setIntx(true);
    other.setIntx(true);
    behind.setIntx(false);
    expect(log).toEqual(['raise 22']);
    other.setIntx(false);
    expect(log).toEqual(['raise 22', 'lower 22']);
    // PIRQG_ROUT (0x6a) = IRQ 11, enabled.
    cfgWrite(io, 0, 0xf8, 0x6a, 0x0b, 1);
    other.setIntx(true);
    expect(log.slice(2)).toEqual(['raise 22', 'raise 11']);
  });
});

describe('plugging and reset', () => {
  it('auto-places in the first free slot and reports QEMU-style conflicts', () => {
    const { host } = makeTestHost();
    expect(host.rootBus.plug(new TestEndpoint())).toBe(0x08);
    expect(host.rootBus.plug(new TestEndpoint())).toBe(0x10);
    expect(() => host.rootBus.plug(new TestEndpoint(), { devfn: 0x08, id: 'x' })).toThrow(
      'PCI: slot 1 function 0 not available for test-endpoint, in use by test-endpoint,id=(null)',
    );
    expect(() => host.rootBus.plug(new TestEndpoint(), { devfn: 0x09 })).toThrow(/single function device/);
    host.rootBus.plug(new TestEndpoint(), { devfn: 0x28, multifunction: true });
    host.rootBus.plug(new TestEndpoint(), { devfn: 0x2a });
    expect(host.rootBus.device(0x28)!.config.getByte(PciReg.HeaderType)).toBe(0x80);
    host.rootBus.plug(new TestEndpoint(), { devfn: 0x33 });
    expect(() => host.rootBus.plug(new TestEndpoint(), { devfn: 0x30 })).toThrow(/indicates single function/);
  });

  it('reset restores config, unmaps BARs and calls deviceReset', () => {
    const { host, mem } = makeTestHost();
    const d = new TestEndpoint();
    host.rootBus.plug(d);
    d.configWrite(PciReg.Bar0, 4, 0xe000_0000);
    d.configWrite(PciReg.Command, 2, PciCommand.Memory | PciCommand.Master);
    d.configWrite(PciReg.InterruptLine, 1, 5);
    enableMsi(d);
    expect(mem.read(0xe000_0000, 4)).toBe(0x1234_0000);
    host.reset();
    expect(mem.read(0xe000_0000, 4)).toBe(0);
    expect(d.config.getLong(PciReg.Bar0)).toBe(0);
    expect(d.config.getByte(PciReg.InterruptLine)).toBe(0);
    expect(d.msiEnabled()).toBe(false);
    expect(d.busMasterEnabled()).toBe(false);
    expect(d.resets).toBe(1);
  });
});

describe('RST_CNT (port 0xCF9)', () => {
  it('reads back SYS_RST/FULL_RST, requests a reset on bit 2, and does not disturb CONFIG_ADDRESS', () => {
    const t = makeTestHost();
    let resets = 0;
    t.host.onResetRequest = () => resets++;
    t.io.write(0xcf8, 4, 0x80abcdef);
    expect(t.io.read(0xcf9, 1)).toBe(0);
    t.io.write(0xcf9, 1, 0x0a);
    expect(t.io.read(0xcf9, 1)).toBe(0x0a);
    expect(t.io.read(0xcf8, 4)).toBe(0x80abcdef);
    expect(t.io.read(0xcfa, 1)).toBe(0xef);
    expect(t.io.read(0xcf8, 2)).toBe(0xcdef);
    expect(resets).toBe(0);
    t.io.write(0xcf9, 1, 0x06);
    expect(resets).toBe(1);
    expect(t.io.read(0xcf9, 1)).toBe(0x02);
    t.host.reset();
    expect(t.io.read(0xcf9, 1)).toBe(0);
  });
});

describe('CF8/CFC edge cases observed in QEMU 7.2', () => {
  it('keeps CONFIG_ADDRESS low bits, clips at the end of config space, reads ones past the data port', () => {
    const { io } = makeTestHost();
    io.write(0xcf8, 4, 0x8000_0002);
    expect(io.read(0xcfc, 2)).toBe(0x29c0);
    expect(io.read(0xcfc, 4)).toBe(0x0000_29c0);
    expect(io.read(0xcfe, 2)).toBe(0x29c0);
    io.write(0xcf8, 4, 0x8000_00fc);
    expect(io.read(0xcfe, 4)).toBe(0xffff_0000);
    io.write(0xcf8, 4, 0);
    io.write(0xcfb, 1, 0x12); // enable bit clear: dropped
    io.write(0xcf8, 4, 0x8000_0000);
    expect(io.read(0xcfc, 4)).toBe(0x29c08086);
    const bytes = new Uint8Array(2);
    io.readBytes(0xcfd, bytes); // QEMU splits the unaligned inw 0xcfd into bytes: 0xc080
    expect(bytes[0]! | (bytes[1]! << 8)).toBe(0xc080);
  });
});

describe('PIRQ to ISA IRQ routing details', () => {
  it('a disabled route naming an IRQ re-evaluates (and may lower) that IRQ, as QEMU does', () => {
    const log: string[] = [];
    const wires = Array.from({ length: 24 }, (_, gsi) => new IrqWire((l) => log.push(`${l ? 'raise' : 'lower'} ${gsi}`)));
    const { host, io } = makeTestHost((gsi) => wires[gsi]!);
    const a = new TestEndpoint();
    const b = new TestEndpoint();
    host.rootBus.plug(a, { devfn: 0x08 }); // PIRQF (0x69)
    host.rootBus.plug(b, { devfn: 0x10 }); // PIRQG (0x6a)
    cfgWrite(io, 0, 0xf8, 0x69, 0x0a, 1);
    a.setIntx(true);
    expect(log).toEqual(['raise 21', 'raise 10']);
    cfgWrite(io, 0, 0xf8, 0x6a, 0x8a, 1); // PIRQG disabled but naming IRQ 10
    b.setIntx(true);
    expect(log.slice(2)).toEqual(['raise 22']); // IRQ 10 still high through PIRQF
    cfgWrite(io, 0, 0xf8, 0x69, 0x80, 1); // PIRQF routing off
    b.setIntx(false);
    expect(log.slice(3)).toEqual(['lower 22', 'lower 10']);
  });
});
