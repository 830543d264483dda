import { describe, expect, it } from 'vitest';
import { MSI_WINDOW } from '../../core/irq.js';
import { VirtualClock } from '../../core/clock.js';
import type { Tracer } from '../../machine/device-type.js';
import { AddressSpace } from '../../memory/address-space.js';
import { DmaAccess, IommuPerm, type DmaRequester, type DmaTranslator, type IotlbEntry } from '../../memory/iommu.js';
import { createRam } from '../../memory/ram-backend.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { PciBus, type PciBusHost } from '../../pci/bus.js';
import { PciCommand, PciReg } from '../../pci/config.js';
import { MsiSink, MsiAddr } from '../intc/msi-sink.js';
import { EduDevice, eduDeviceType } from './index.js';
import { EduDmaBuffer, EduPci, EduReg, factorial32 } from './regs.js';
import { u32Stream } from '../../../test/support/prng.js';

const BAR = 0xe000_0000;
const RAM_SIZE = 64 * 1024 * 1024;
const MS = 1_000_000;

interface Options {
  dmaMask?: bigint;
  translator?: DmaTranslator;
}

function setup(opts: Options = {}) {
  const clock = new VirtualClock('qtest');
  const ram = createRam(RAM_SIZE, 'ts');
  const system = new ContainerRegion('system', 2 ** 64);
  system.add(new RamRegion('ram', RAM_SIZE, ram), 0);
  const sink = new MsiSink();
  system.add(sink.region, MsiAddr.Base);
  const io = new ContainerRegion('io', 0x10000);
  const memory = new AddressSpace('memory', system);
  const irqs: [number, boolean][] = [];
  const traces: [string, Record<string, unknown>][] = [];
  const host: PciBusHost = {
    dmaMemory: memory,
    iommuGeneration: 0,
    translatorFor: (_r: DmaRequester) => opts.translator ?? null,
    mapRootIrq: (_devfn, pin) => pin,
    setRootIrq: (irq, level) => irqs.push([irq, level]),
    rootIrqCount: 8,
  };
  const bus = new PciBus('pcie.0', host, null, true, { memory: system, io });
  const tracer: Tracer = {
    enabled: () => true,
    trace: (event, fields) => traces.push([event, { ...fields }]),
  };
  const edu = new EduDevice({ clock, tracer, ...(opts.dmaMask !== undefined ? { dmaMask: opts.dmaMask } : {}) });
  bus.plug(edu, { devfn: 0x08 });
  edu.configWrite(PciReg.Bar0, 4, BAR);
  edu.configWrite(PciReg.Command, 2, PciCommand.Memory | PciCommand.Master);
  const rd = (off: number) => memory.read(BAR + off, 4);
  const wr = (off: number, v: number) => memory.write(BAR + off, 4, v >>> 0);
  const rdq = (off: number) => memory.read64(BAR + off);
  const wrq = (off: number, v: bigint) => memory.write64(BAR + off, v);
  const msiOn = (addr = 0xfee0_0000, data = 0x4041) => {
    const cap = edu.findCapability(0x05);
    edu.configWrite(cap + 4, 4, addr);
    edu.configWrite(cap + 8, 4, 0);
    edu.configWrite(cap + 12, 2, data);
    edu.configWrite(cap + 2, 2, 1);
  };
  /** Runs a DMA: program registers, let 100 ms of virtual time pass. */
  const dma = (src: number, dst: number, count: number, cmd: number) => {
    wrq(EduReg.DmaSrc, BigInt(src));
    wrq(EduReg.DmaDst, BigInt(dst));
    wrq(EduReg.DmaCount, BigInt(count));
    wrq(EduReg.DmaCmd, BigInt(cmd));
    clock.step(100 * MS);
  };
  return { clock, ram, memory, edu, sink, irqs, traces, rd, wr, rdq, wrq, msiOn, dma };
}

describe('edu PCI identity', () => {
  it('has QEMU 7.2 IDs, class, pin, MSI capability and a 1 MiB BAR', () => {
    const { edu } = setup();
    expect(edu.configRead(0x00, 4)).toBe(0x11e8_1234);
    expect(edu.configRead(0x08, 4)).toBe(0x00ff_0010);
    expect(edu.configRead(0x2c, 4)).toBe(0x1100_1af4);
    expect(edu.configRead(0x3d, 1)).toBe(1);
    expect(edu.configRead(0x34, 1)).toBe(0x40);
    expect(edu.findCapability(0x05)).toBe(EduPci.MsiCapOffset);
    expect(edu.configRead(0x40, 4)).toBe(0x0080_0005); // MSI, last, 64-bit, 1 vector, disabled
    expect(edu.configRead(0x06, 2) & 0x10).toBe(0x10);
    edu.configWrite(0x10, 4, 0xffff_ffff);
    expect(edu.configRead(0x10, 4)).toBe(0xfff0_0000);
  });

  it('device type: edu, pci, dma_mask property', () => {
    expect(eduDeviceType.name).toBe('edu');
    expect(eduDeviceType.bus).toBe('pci');
    expect(eduDeviceType.props['dma_mask']!.kind).toBe('uint64');
    expect(eduDeviceType.props['dma_mask']!.default).toBeUndefined(); // QEMU's help shows no default
  });

  it('device type: create() takes dma_mask as number or bigint, refuses other values', () => {
    const ctx = {
      clock: new VirtualClock('qtest'),
      tracer: { enabled: () => false, trace: () => {} },
    } as unknown as Parameters<typeof eduDeviceType.create>[0];
    expect(eduDeviceType.create(ctx, {})).toBeInstanceOf(EduDevice);
    expect(eduDeviceType.create(ctx, { dma_mask: 0xfff })).toBeInstanceOf(EduDevice);
    expect(eduDeviceType.create(ctx, { dma_mask: 0xffff_ffff_ffff_ffffn })).toBeInstanceOf(EduDevice);
    expect(() => eduDeviceType.create(ctx, { dma_mask: 'lots' })).toThrow(/dma_mask/);
    expect(() => eduDeviceType.create(ctx, { dma_mask: -1 })).toThrow(/dma_mask/);
  });
});

describe('edu registers', () => {
  it('ident, liveness, unhandled offsets', () => {
    const { rd, wr } = setup();
    expect(rd(EduReg.Ident)).toBe(0x0100_00ed);
    wr(EduReg.Liveness, 0x1234_5678);
    expect(rd(EduReg.Liveness)).toBe(0xedcb_a987);
    wr(EduReg.Liveness, 0);
    expect(rd(EduReg.Liveness)).toBe(0xffff_ffff);
    expect(rd(0x0c)).toBe(0xffff_ffff);
    expect(rd(0x84)).toBe(0xffff_ffff);
    expect(rd(0xa0)).toBe(0xffff_ffff);
    expect(rd(0xf_fffc)).toBe(0xffff_ffff);
    wr(EduReg.Ident, 0);
    expect(rd(EduReg.Ident)).toBe(0x0100_00ed);
  });

  it('access widths: 1/2-byte refused (0), 8-byte below 0x80 all-ones and ignored', () => {
    const { memory, rd, rdq, wrq } = setup();
    expect(memory.read(BAR, 1)).toBe(0);
    expect(memory.read(BAR, 2)).toBe(0);
    memory.write(BAR + EduReg.Liveness, 2, 0x1234);
    expect(rd(EduReg.Liveness)).toBe(0);
    expect(rdq(EduReg.Ident)).toBe(0xffff_ffff_ffff_ffffn);
    wrq(EduReg.Ident, 5n);
    expect(rd(EduReg.Liveness)).toBe(0);
    expect(rd(EduReg.Factorial)).toBe(0);
    // An unaligned 8-byte range access is split into aligned 4-byte ones (QEMU 7.2: writeq BAR+4 hits 0x04 and 0x08).
    memory.writeBytes(BAR + EduReg.Liveness, new Uint8Array([5, 0, 0, 0, 3, 0, 0, 0]));
    expect(rd(EduReg.Liveness)).toBe(0xffff_fffa);
    expect(rd(EduReg.Factorial)).toBe(6);
    // Unaligned 4-byte access is refused by the bus.
    expect(memory.read(BAR + 2, 4)).toBe(0);
  });

  it('factorial: computes n! mod 2^32, status bit 0 reads clear afterwards', () => {
    const { rd, wr } = setup();
    wr(EduReg.Factorial, 10);
    expect(rd(EduReg.Status) & 1).toBe(0);
    expect(rd(EduReg.Factorial)).toBe(3_628_800);
    wr(EduReg.Factorial, 13);
    expect(rd(EduReg.Factorial)).toBe(1_932_053_504); // 13! mod 2^32
    wr(EduReg.Factorial, 0);
    expect(rd(EduReg.Factorial)).toBe(1);
  });

  it('factorial of a large n stays busy for n ns of virtual time; writes ignored meanwhile', () => {
    const { clock, rd, wr, irqs } = setup();
    wr(EduReg.Status, 0x80);
    wr(EduReg.Factorial, 1 << 24);
    expect(rd(EduReg.Status)).toBe(0x81);
    expect(rd(EduReg.Factorial)).toBe(1 << 24); // the operand, as QEMU's thread has not stored yet
    wr(EduReg.Factorial, 5); // ignored while computing
    clock.step((1 << 24) - 1);
    expect(rd(EduReg.Status)).toBe(0x81);
    expect(irqs).toEqual([]);
    clock.step(1);
    expect(rd(EduReg.Status)).toBe(0x80);
    expect(rd(EduReg.Factorial)).toBe(0);
    expect(rd(EduReg.IrqStatus)).toBe(1);
    expect(irqs).toEqual([[0, true]]);
    wr(EduReg.Factorial, 0xffff_ffff);
    expect(rd(EduReg.Status) & 1).toBe(1);
    clock.step(0xffff_ffff);
    expect(rd(EduReg.Status) & 1).toBe(0);
    expect(rd(EduReg.Factorial)).toBe(0);
  });

  it('factorial32 matches a bigint reference', () => {
    for (let n = 0; n < 40; n++) {
      let ref = 1n;
      for (let k = 2n; k <= BigInt(n); k++) ref *= k;
      expect(factorial32(n)).toBe(Number(ref % 2n ** 32n));
    }
  });

  it('status: only bit 7 writable', () => {
    const { rd, wr } = setup();
    wr(EduReg.Status, 0xffff_ffff);
    expect(rd(EduReg.Status)).toBe(0x80);
    wr(EduReg.Status, 0x7f);
    expect(rd(EduReg.Status)).toBe(0);
  });

  it('DMA registers: 64-bit, 4-byte writes zero-extend, 4-byte reads give the low half', () => {
    const { rd, rdq, wr, wrq } = setup();
    wrq(EduReg.DmaSrc, 0x1234_5678_9abc_def0n);
    expect(rdq(EduReg.DmaSrc)).toBe(0x1234_5678_9abc_def0n);
    expect(rd(EduReg.DmaSrc)).toBe(0x9abc_def0);
    expect(rd(EduReg.DmaSrc + 4)).toBe(0xffff_ffff);
    wr(EduReg.DmaSrc, 0x42);
    expect(rdq(EduReg.DmaSrc)).toBe(0x42n);
    // A command without the run bit is ignored.
    wr(EduReg.DmaCmd, 0x6);
    expect(rdq(EduReg.DmaCmd)).toBe(0n);
  });
});

describe('edu interrupts', () => {
  it('INTx: raise ORs status and asserts, ack clears and deasserts at zero', () => {
    const { edu, rd, wr, irqs } = setup();
    wr(EduReg.IrqRaise, 0x5);
    expect(rd(EduReg.IrqStatus)).toBe(5);
    expect(irqs).toEqual([[0, true]]);
    expect(edu.configRead(0x06, 2) & 0x08).toBe(0x08);
    wr(EduReg.IrqAck, 0x1);
    expect(irqs).toEqual([[0, true]]);
    wr(EduReg.IrqAck, 0x4);
    expect(rd(EduReg.IrqStatus)).toBe(0);
    expect(irqs).toEqual([
      [0, true],
      [0, false],
    ]);
  });

  it('factorial with status bit 7 raises 0x01', () => {
    const { rd, wr, irqs } = setup();
    wr(EduReg.Status, 0x80);
    wr(EduReg.Factorial, 5);
    expect(rd(EduReg.Factorial)).toBe(120);
    expect(rd(EduReg.IrqStatus)).toBe(1);
    expect(irqs).toEqual([[0, true]]);
  });

  it('MSI when enabled: one message per raise while status is non-zero, ack sends nothing', () => {
    const { rd, wr, sink, msiOn, irqs } = setup();
    msiOn(0xfee0_1000, 0x4062);
    wr(EduReg.IrqRaise, 0x10);
    wr(EduReg.IrqRaise, 0); // status still non-zero: QEMU notifies again
    wr(EduReg.IrqAck, 0x10);
    wr(EduReg.IrqRaise, 0); // status zero: nothing
    expect(rd(EduReg.IrqStatus)).toBe(0);
    expect(sink.delivered.map((d) => [d.vector, d.destination])).toEqual([
      [0x62, 1],
      [0x62, 1],
    ]);
    expect(irqs).toEqual([]);
  });

  it('MSI is blocked by bus mastering off', () => {
    const { edu, wr, sink, msiOn } = setup();
    msiOn();
    edu.configWrite(PciReg.Command, 2, PciCommand.Memory);
    wr(EduReg.IrqRaise, 1);
    expect(sink.delivered).toEqual([]);
  });
});

describe('edu DMA', () => {
  it('RAM -> buffer -> RAM after 100 ms of virtual time, completion IRQ 0x100', () => {
    const { clock, ram, rd, rdq, wrq, edu, irqs } = setup();
    for (let i = 0; i < 256; i++) ram.writeU8(0x10_0000 + i, i ^ 0x5a);
    wrq(EduReg.DmaSrc, 0x10_0000n);
    wrq(EduReg.DmaDst, 0x40010n);
    wrq(EduReg.DmaCount, 256n);
    wrq(EduReg.DmaCmd, 0x1n);
    clock.step(99 * MS);
    expect(edu.buffer[0x10]).toBe(0);
    expect(rdq(EduReg.DmaCmd)).toBe(1n);
    // Writes are ignored while running.
    wrq(EduReg.DmaSrc, 0n);
    wrq(EduReg.DmaCmd, 0x7n);
    expect(rdq(EduReg.DmaSrc)).toBe(0x10_0000n);
    clock.step(1 * MS);
    expect(rdq(EduReg.DmaCmd)).toBe(0n);
    expect(edu.buffer[0x10]).toBe(0x5a);
    expect(edu.buffer[0x10 + 255]).toBe(255 ^ 0x5a);
    expect(rd(EduReg.IrqStatus)).toBe(0);
    // buffer -> RAM with IRQ
    wrq(EduReg.DmaSrc, 0x40010n);
    wrq(EduReg.DmaDst, 0x20_0000n);
    wrq(EduReg.DmaCount, 256n);
    wrq(EduReg.DmaCmd, 0x7n);
    clock.step(100 * MS);
    for (let i = 0; i < 256; i++) expect(ram.readU8(0x20_0000 + i)).toBe(i ^ 0x5a);
    expect(rd(EduReg.IrqStatus)).toBe(0x100);
    expect(rdq(EduReg.DmaCmd)).toBe(6n);
    expect(irqs).toEqual([[0, true]]);
  });

  it('the timer fires at the next whole millisecond + 100 (QEMU ms timer)', () => {
    const { clock, rdq, wrq } = setup();
    clock.step(1.5 * MS);
    wrq(EduReg.DmaSrc, 0n);
    wrq(EduReg.DmaDst, 0x40000n);
    wrq(EduReg.DmaCount, 4n);
    wrq(EduReg.DmaCmd, 1n);
    clock.set(101 * MS - 1);
    expect(rdq(EduReg.DmaCmd)).toBe(1n);
    clock.set(101 * MS);
    expect(rdq(EduReg.DmaCmd)).toBe(0n);
  });

  it('full 4 KiB transfer and an empty one are valid', () => {
    const { ram, edu, dma, rd } = setup();
    ram.fill(0x30_0000, 4096, 0xab);
    dma(0x30_0000, 0x40000, 4096, 0x1);
    expect(edu.buffer.every((b) => b === 0xab)).toBe(true);
    dma(0x30_0000, 0x41000, 0, 0x5);
    expect(rd(EduReg.IrqStatus)).toBe(0x100);
  });

  it('bus mastering off: reads zeros into the buffer, writes nothing to RAM', () => {
    const { ram, edu, dma } = setup();
    ram.fill(0x10_0000, 16, 0x77);
    edu.buffer.fill(0x11);
    edu.configWrite(PciReg.Command, 2, PciCommand.Memory);
    dma(0x10_0000, 0x40000, 16, 0x1);
    expect([...edu.buffer.subarray(0, 16)]).toEqual(new Array(16).fill(0));
    edu.buffer.fill(0x22);
    dma(0x40000, 0x10_0000, 16, 0x3);
    expect(ram.readU8(0x10_0000)).toBe(0x77);
  });

  it('memory decode disabled: BAR unmapped, reads 0', () => {
    const { edu, rd } = setup();
    edu.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(rd(EduReg.Ident)).toBe(0);
    edu.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(rd(EduReg.Ident)).toBe(0x0100_00ed);
  });

  it('dma_mask clamps the RAM address (default 2^28 - 1) and traces it', () => {
    const { ram, edu, dma, traces } = setup();
    ram.fill(0x0010_0000, 8, 0x99);
    dma(0x1010_0000, 0x40000, 8, 0x1);
    expect(edu.buffer[0]).toBe(0x99);
    expect(traces.find(([e]) => e === 'edu_dma_clamp')?.[1]).toEqual({ addr: 0x1010_0000n, clamped: 0x0010_0000n });
    const narrow = setup({ dmaMask: 0xfffn });
    narrow.ram.fill(0x123, 4, 0x44);
    narrow.dma(0x0020_0123, 0x40000, 4, 0x1);
    expect(narrow.edu.buffer[0]).toBe(0x44);
  });

  it('out-of-range buffer: traced, dropped, run bit cleared, no IRQ (QEMU 7.2 aborts here)', () => {
    const { ram, edu, dma, rd, rdq, traces, irqs } = setup();
    ram.fill(0x10_0000, 16, 0x55);
    dma(0x10_0000, 0x40ff8, 16, 0x5); // crosses the end of the buffer
    dma(0x10_0000, 0x3fff0, 16, 0x5); // starts before it
    dma(0x10_0000, 0x1_0004_0000 * 1, 16, 0x5); // high bits set
    expect(edu.buffer.every((b) => b === 0)).toBe(true);
    expect(rdq(EduReg.DmaCmd)).toBe(4n);
    expect(rd(EduReg.IrqStatus)).toBe(0);
    expect(irqs).toEqual([]);
    expect(traces.filter(([e]) => e === 'edu_dma_out_of_range').length).toBe(3);
    // Buffer to RAM out of range: RAM untouched.
    edu.buffer.fill(0xee);
    dma(0x40fff, 0x10_0000, 2, 0x3);
    expect(ram.readU8(0x10_0000)).toBe(0x55);
  });

  it('DMA goes through the IOMMU translator', () => {
    const translator: DmaTranslator = {
      interruptWindow: MSI_WINDOW,
      translate(iova: number, access: DmaAccess, out: IotlbEntry): boolean {
        if (iova >= 0x1000) return false;
        out.iova = iova & ~0xfff;
        out.translated = 0x50_0000;
        out.addrMask = 0xfff;
        out.perm = access === DmaAccess.Read ? IommuPerm.Read : IommuPerm.ReadWrite;
        return true;
      },
      interruptWrite() {},
    };
    const { ram, edu, dma } = setup({ translator });
    ram.fill(0x50_0000, 8, 0x3c);
    dma(0x0, 0x40000, 8, 0x1);
    expect(edu.buffer[7]).toBe(0x3c);
    dma(0x40000, 0x100, 4, 0x3);
    expect(ram.readU32(0x50_0100)).toBe(0x3c3c_3c3c);
  });

  it('a RAM-side address of 2^53 or more reaches the IOMMU exactly (after the dma_mask clamp)', () => {
    const seen: number[] = [];
    const translator: DmaTranslator = {
      interruptWindow: MSI_WINDOW,
      translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
        seen.push(iova);
        out.iova = iova;
        out.translated = 0x50_0000 + seen.length * 0x1000;
        out.addrMask = 0xfff;
        out.perm = IommuPerm.ReadWrite;
        return true;
      },
      interruptWrite() {},
    };
    const run = (dmaMask: bigint, ramAddr: bigint, toRam: boolean) => {
      seen.length = 0;
      const { ram, edu, wrq, clock } = setup({ translator, dmaMask });
      for (let i = 0; i < 0x3000; i++) ram.writeU8(0x50_0000 + i, i & 0xff);
      edu.buffer.fill(0xa5);
      wrq(EduReg.DmaSrc, toRam ? 0x40000n : ramAddr);
      wrq(EduReg.DmaDst, toRam ? ramAddr : 0x40000n);
      wrq(EduReg.DmaCount, 8n);
      wrq(EduReg.DmaCmd, toRam ? 3n : 1n);
      clock.step(100 * MS);
      return { ram, buf: Array.from(edu.buffer.subarray(0, 8)) };
    };
    // All-ones mask: 2^56 + 0x1234 is read at offset 0x234 of its page (as a number it would be 0x230).
    const all = 0xffff_ffff_ffff_ffffn;
    expect(run(all, 2n ** 56n + 0x1234n, false).buf).toEqual([0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b]);
    expect(seen).toEqual([2 ** 56 + 0x1000]);
    // A page crossing up there: two exact pages, the bytes split 4 / 4.
    const { ram } = run(all, 2n ** 60n + 0xffcn, true);
    expect(seen).toEqual([2 ** 60, 2 ** 60 + 0x1000]);
    expect([ram.readU32(0x50_1ffc), ram.readU32(0x50_2000)]).toEqual([0xa5a5_a5a5, 0xa5a5_a5a5]);
    // The mask applies first: with 2^56 - 1 the same address is 0x1234, on the number path.
    expect(run(2n ** 56n - 1n, 2n ** 56n + 0x1234n, false).buf[0]).toBe(0x34);
    expect(seen).toEqual([0x1234]);
  });

  it('reset keeps edu registers (QEMU edu has no reset handler) but resets PCI state', () => {
    // Checked on QEMU 7.2 with QMP system_reset: liveness, factorial and IRQ status survive,
    // the command register clears and INTx is deasserted (status bit 3 clear).
    const { edu, rd, wr, irqs } = setup();
    wr(EduReg.Liveness, 1);
    wr(EduReg.IrqRaise, 4);
    wr(EduReg.Factorial, 5);
    edu.reset();
    expect(edu.configRead(PciReg.Command, 2)).toBe(0);
    expect(edu.configRead(PciReg.Status, 2)).toBe(0x10);
    expect(irqs).toEqual([
      [0, true],
      [0, false],
    ]);
    edu.configWrite(PciReg.Bar0, 4, BAR);
    edu.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(rd(EduReg.Liveness)).toBe(0xffff_fffe);
    expect(rd(EduReg.IrqStatus)).toBe(4);
    expect(rd(EduReg.Factorial)).toBe(120);
  });

  it('buffer base constant', () => {
    expect(EduDmaBuffer.Base).toBe(0x40000);
  });
});

describe('edu robustness', () => {
  it('a DMA whose transfer fails with a host error still completes its command (never busy for good)', () => {
    // A translator that fails once with an exception: the command completes (run bit clear, interrupt
    // 0x100 raised as asked), the error reaches the caller, and the next DMA works.
    let failures = 1;
    const translator: DmaTranslator = {
      interruptWindow: MSI_WINDOW,
      translate(iova: number, _access: DmaAccess, out: IotlbEntry): boolean {
        if (failures-- > 0) throw new Error('host error in the middle of a DMA');
        out.iova = iova & ~0xfff;
        out.translated = iova & ~0xfff;
        out.addrMask = 0xfff;
        out.perm = IommuPerm.ReadWrite;
        return true;
      },
      interruptWrite() {},
    };
    const { ram, edu, rd, rdq, dma } = setup({ translator });
    expect(() => dma(0x40000, 0x10_0000, 8, 0x7)).toThrow('host error in the middle of a DMA');
    expect(rdq(EduReg.DmaCmd) & 1n).toBe(0n);
    expect(edu.dmaPending).toBe(false);
    expect(rd(EduReg.IrqStatus)).toBe(0x100);
    edu.buffer.fill(0x5a, 0, 8);
    dma(0x40000, 0x10_0000, 8, 0x3);
    expect(rdq(EduReg.DmaCmd)).toBe(0x2n);
    expect(ram.readU32(0x10_0004)).toBe(0x5a5a_5a5a);
  });

  it('random guest accesses and DMA commands never throw (seed 0x9e3779b9)', () => {
    const { clock, memory, rd } = setup();
    const rnd = u32Stream(0x9e37_79b9);
    const regs = [0x00, 0x04, 0x08, 0x20, 0x24, 0x60, 0x64, 0x80, 0x84, 0x88, 0x90, 0x98, 0x9c, 0x100];
    for (let i = 0; i < 5000; i++) {
      const off = regs[rnd() % regs.length]!;
      const kind = rnd() % 4;
      if (kind === 0) memory.write(BAR + off, 4, rnd());
      else if (kind === 1) memory.write64(BAR + (off & ~7), (BigInt(rnd()) << 32n) | BigInt(rnd()));
      else if (kind === 2) memory.writeBytes(BAR + off + (rnd() % 4), new Uint8Array(1 + (rnd() % 8)).fill(rnd() & 0xff));
      else memory.read64(BAR + (off & ~7));
      if ((rnd() & 15) === 0) clock.step(rnd() % (200 * MS));
    }
    clock.step(5_000_000_000);
    expect(rd(EduReg.Ident)).toBe(0x0100_00ed);
    expect(rd(EduReg.Status) & 1).toBe(0);
  });
});
