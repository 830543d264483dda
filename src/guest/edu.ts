/**
 * A guest driver for QEMU's edu device (docs/specs/edu.rst facts): ident,
 * liveness, DMA between guest memory (by bus address = IOVA) and the
 * device's 4 KiB buffer at device address 0x40000.
 */
import type { GuestPlatform } from './platform.js';
import type { PciFunction } from './firmware/pci-enum.js';

/** edu PCI vendor ID. */
export const EDU_VENDOR = 0x1234;
/** edu PCI device ID. */
export const EDU_DEVICE = 0x11e8;
/** BAR0 register offsets. */
export const EduReg = {
  Ident: 0x00, Liveness: 0x04, Factorial: 0x08, Status: 0x20, IrqStatus: 0x24, IrqRaise: 0x60, IrqAck: 0x64,
  DmaSrc: 0x80, DmaDst: 0x88, DmaCount: 0x90, DmaCmd: 0x98,
} as const;
/** DMA command bits. */
export const EduDmaCmd = { Start: 1, ToRam: 2, Irq: 4 } as const;
/** The device-side DMA buffer address. */
export const EDU_BUFFER = 0x40000;
/** Its size. */
export const EDU_BUFFER_SIZE = 0x1000;
/** The ident value's low byte. */
export const EDU_IDENT_LOW = 0xed;
/** The device's default DMA mask (QEMU edu `dma_mask` property). */
export const EDU_DMA_MASK = 2 ** 28 - 1;
/** Virtual time one DMA takes (100 ms) and the poll step. */
const DMA_TIME_NS = 100_000_000;
const DMA_POLL_NS = 50_000_000;
const DMA_POLLS = 40;

/** One edu instance. */
export class EduDriver {
  constructor(private readonly p: GuestPlatform, readonly fn: PciFunction, readonly bar0: number) {}

  /** Binds to a function found by the firmware (BAR0 assigned). */
  static bind(p: GuestPlatform, fn: PciFunction): EduDriver {
    const bar = fn.bars.find((b) => b.index === 0);
    if (!bar?.address) throw new Error(`edu ${fn.name}: BAR0 not assigned`);
    return new EduDriver(p, fn, bar.address);
  }

  /** The ident register (0x010000ed on QEMU's edu). */
  ident(): Promise<number> {
    return this.p.read(this.bar0 + EduReg.Ident, 4);
  }

  /** Liveness check: the register reads back the complement. */
  async alive(): Promise<boolean> {
    await this.p.write(this.bar0 + EduReg.Liveness, 4, 0x12345678);
    return (await this.p.read(this.bar0 + EduReg.Liveness, 4)) === (~0x12345678 >>> 0);
  }

  /** Copies `count` bytes from bus address `iova` into the device buffer (offset `bufOff`). */
  toDevice(iova: number, count: number, bufOff = 0, irq = false): Promise<void> {
    return this.dma(iova, EDU_BUFFER + bufOff, count, 0, irq);
  }

  /** Copies `count` bytes from the device buffer (offset `bufOff`) to bus address `iova`. */
  fromDevice(iova: number, count: number, bufOff = 0, irq = false): Promise<void> {
    return this.dma(EDU_BUFFER + bufOff, iova, count, EduDmaCmd.ToRam, irq);
  }

  private async dma(src: number, dst: number, count: number, dir: number, irq: boolean): Promise<void> {
    const b = this.bar0;
    await this.p.write64(b + EduReg.DmaSrc, BigInt(src));
    await this.p.write64(b + EduReg.DmaDst, BigInt(dst));
    await this.p.write64(b + EduReg.DmaCount, BigInt(count));
    await this.p.write64(b + EduReg.DmaCmd, BigInt(EduDmaCmd.Start | dir | (irq ? EduDmaCmd.Irq : 0)));
    await this.p.sleep(DMA_TIME_NS);
    for (let i = 0; i < DMA_POLLS; i++) {
      if (!((await this.p.read(b + EduReg.DmaCmd, 4)) & EduDmaCmd.Start)) return;
      await this.p.sleep(DMA_POLL_NS);
    }
    throw new Error(`edu ${this.fn.name}: DMA did not complete`);
  }

  /** Raises an interrupt (MSI when enabled, else INTx). */
  async raise(bits: number): Promise<void> {
    await this.p.write(this.bar0 + EduReg.IrqRaise, 4, bits);
  }

  /** Acknowledges interrupt bits. */
  async ack(bits: number): Promise<void> {
    await this.p.write(this.bar0 + EduReg.IrqAck, 4, bits);
  }
}
