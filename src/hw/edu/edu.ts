/**
 * QEMU's educational PCI device (`-device edu`), register for register.
 * See regs.ts for the map.  Differences from QEMU, all on guest errors that
 * QEMU does not survive or answers racily:
 *
 *  - QEMU computes the factorial on a worker thread, one multiply per
 *    step down from n (~1.1 ns each).  Here a small n (below 2^20) finishes
 *    before the write returns, as QEMU's thread does before a client's next
 *    command; a larger n keeps status bit 0 set for n ns of virtual time
 *    (a qtest client sees it busy, as with QEMU, until it steps the clock).
 *    While busy, 0x08 reads the operand and writes to it are ignored; the
 *    0x01 interrupt is raised on completion if status bit 7 is set then.
 *  - A DMA whose buffer range leaves 0x40000-0x40FFF makes QEMU 7.2 call
 *    hw_error() and abort (and, through an off-by-one, also a transfer that
 *    ends exactly at 0x41000 or has count 0).  Here the valid range is the
 *    full buffer (as in current QEMU), count 0 is a valid empty transfer,
 *    and an out-of-range command is traced (`edu_dma_out_of_range`) and
 *    dropped: no bytes move, the run bit clears, no interrupt is raised.
 *  - Otherwise a DMA completes its command (run bit cleared, interrupt
 *    0x100 if asked) whatever its transfer met, as QEMU's edu ignores the
 *    DMA result: faults, bytes refused by a re-entrancy guard (a DMA into
 *    the IOMMU's registers that reaches back), and even a host error
 *    escaping the transfer, which then propagates with the engine idle.
 *
 * DMA goes through `this.dma`, the device's PCI DMA address space, so it is
 * gated by bus mastering and translated by the IOMMU when there is one.  A
 * RAM-side address of 2^53 or more (dma_mask permitting) takes the bigint
 * entry point, so every bit of the 64-bit register reaches the IOMMU.
 */
import { readTimerState, type Timer, type VirtualClock } from '../../core/clock.js';
import { toB64, u32ToB64, type SectionReader, type SnapshotSection } from '../../core/snapshot-state.js';
import type { Tracer } from '../../machine/device-type.js';
import { join64, join64n, split64n } from '../../memory/address.js';
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import { PciDevice } from '../../pci/device.js';
import {
  EDU_DEFAULT_DMA_MASK,
  EDU_DMA_DELAY_MS,
  EDU_IDENT,
  EduDmaBuffer,
  EduDmaCmd,
  EduIrq,
  EduPci,
  EduReg,
  EduStatus,
  FACTORIAL_INSTANT_LIMIT,
  FACTORIAL_NS_PER_STEP,
  factorial32,
  NS_PER_MS,
} from './regs.js';

const ALL_ONES_32 = 0xffff_ffff;
/** High halves from here on make addresses of 2^53 and above, inexact as numbers. */
const EXACT_HI_LIMIT = 0x20_0000;
const ALL_ONES_64 = 0xffff_ffff_ffff_ffffn;

/** Indices of the 64-bit DMA registers in the halves array (lo at 2i, hi at 2i+1). */
const enum Dma {
  Src = 0,
  Dst = 2,
  Count = 4,
  Cmd = 6,
}

/** Maps a register offset from 0x80 on to its halves index, or -1. */
function dmaIndex(offset: number): number {
  switch (offset) {
    case EduReg.DmaSrc:
      return Dma.Src;
    case EduReg.DmaDst:
      return Dma.Dst;
    case EduReg.DmaCount:
      return Dma.Count;
    case EduReg.DmaCmd:
      return Dma.Cmd;
    default:
      return -1;
  }
}

/** Construction options of an edu device. */
export interface EduOptions {
  readonly clock: VirtualClock;
  readonly tracer?: Tracer;
  /** The `dma_mask` property: RAM-side DMA addresses are ANDed with it (default 2^28 - 1). */
  readonly dmaMask?: bigint;
}

/** The edu PCI device. */
export class EduDevice extends PciDevice {
  /** BAR0. */
  readonly mmio: MmioRegion;
  /** The 4 KiB DMA buffer (device addresses 0x40000-0x40FFF). */
  readonly buffer = new Uint8Array(EduDmaBuffer.Size);
  private addr4 = 0;
  private fact = 0;
  private status = 0;
  private irqStatus = 0;
  /** src, dst, count, cmd as lo/hi 32-bit halves. */
  private readonly dmaRegs = new Uint32Array(8);
  private dmaMaskLo = 0;
  private dmaMaskHi = 0;
  private readonly dmaTimer: Timer;
  private readonly factTimer: Timer;
  private readonly clock: VirtualClock;
  private readonly tracer: Tracer | undefined;

  /** The `dma_mask` property (QEMU lets QMP qom-set change it at run time). */
  get dmaMask(): bigint {
    return join64n(this.dmaMaskLo, this.dmaMaskHi);
  }
  set dmaMask(mask: bigint) {
    [this.dmaMaskLo, this.dmaMaskHi] = split64n(BigInt.asUintN(64, mask));
  }

  constructor(options: EduOptions) {
    super({
      typeName: 'edu',
      vendorId: EduPci.VendorId,
      deviceId: EduPci.DeviceId,
      revision: EduPci.Revision,
      classCode: EduPci.ClassCode,
      subsystemVendorId: EduPci.SubsystemVendorId,
      subsystemId: EduPci.SubsystemId,
      interruptPin: EduPci.InterruptPin,
    });
    this.clock = options.clock;
    this.tracer = options.tracer;
    this.dmaMask = options.dmaMask ?? BigInt(EDU_DEFAULT_DMA_MASK);
    this.dmaTimer = this.clock.timer(() => this.runDma());
    this.factTimer = this.clock.timer(() => this.finishFactorial());
    const ops: MmioOps = {
      read: (offset) => this.read32(offset),
      write: (offset, _size, value) => this.write32(offset, value),
      read64: (offset) => this.read64(offset),
      write64: (offset, value) => this.write64(offset, value),
    };
    this.mmio = new MmioRegion('edu-mmio', EduPci.MmioSize, ops, {
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 8 },
    });
    // msi_init(pdev, 0, 1, true, false): first free offset (0x40), 1 vector, 64-bit, no per-vector mask.
    this.initMsi(0, EduPci.MsiVectors, true, false);
    this.registerBar(0, this.mmio, 'mem32');
  }

  /** Interrupt status register (for tests and traces). */
  get interruptStatus(): number {
    return this.irqStatus;
  }

  /** True while a DMA command waits for its timer. */
  get dmaPending(): boolean {
    return (this.dmaRegs[Dma.Cmd]! & EduDmaCmd.Run) !== 0;
  }

  /**
   * Snapshot (QEMU's edu has no vmstate; these are its fields): registers,
   * the DMA buffer, `dma_mask`, and the DMA and factorial timers, re-armed
   * on load with their saved deadlines.
   */
  protected override saveDeviceState(): SnapshotSection {
    return {
      addr4: this.addr4,
      fact: this.fact,
      status: this.status,
      irqStatus: this.irqStatus,
      dma: u32ToB64(this.dmaRegs),
      dmaMask: this.dmaMask.toString(),
      buffer: toB64(this.buffer),
      dmaTimer: this.dmaTimer.saveState(),
      factTimer: this.factTimer.saveState(),
    } as SnapshotSection;
  }

  protected override loadDeviceState(r: SectionReader): void {
    const s = {
      addr4: r.u32('addr4'),
      fact: r.u32('fact'),
      status: r.u32('status'),
      irqStatus: r.u32('irqStatus'),
      dma: r.words('dma', this.dmaRegs.length),
      dmaMask: r.big('dmaMask', 0n, ALL_ONES_64),
      buffer: r.bytes('buffer', this.buffer.length),
      dmaTimer: readTimerState(r, 'dmaTimer'),
      factTimer: readTimerState(r, 'factTimer'),
    };
    this.addr4 = s.addr4;
    this.fact = s.fact;
    this.status = s.status;
    this.irqStatus = s.irqStatus;
    this.dmaRegs.set(s.dma);
    this.dmaMask = s.dmaMask;
    this.buffer.set(s.buffer);
    this.dmaTimer.loadState(s.dmaTimer);
    this.factTimer.loadState(s.factTimer);
  }

  // QEMU's edu has no reset handler: registers, buffer and a pending DMA
  // survive a reset; only the PCI core state (config space, INTx) resets.
  protected override deviceReset(): void {}

  private read32(offset: number): number {
    switch (offset) {
      case EduReg.Ident:
        return EDU_IDENT;
      case EduReg.Liveness:
        return this.addr4;
      case EduReg.Factorial:
        return this.fact;
      case EduReg.Status:
        return this.status;
      case EduReg.IrqStatus:
        return this.irqStatus;
      default: {
        const i = offset >= EduReg.WideStart ? dmaIndex(offset) : -1;
        return i < 0 ? ALL_ONES_32 : this.dmaRegs[i]!;
      }
    }
  }

  private read64(offset: number): bigint {
    const i = offset >= EduReg.WideStart ? dmaIndex(offset) : -1;
    return i < 0 ? ALL_ONES_64 : join64n(this.dmaRegs[i]!, this.dmaRegs[i + 1]!);
  }

  private write32(offset: number, value: number): void {
    const v = value >>> 0;
    if (offset < EduReg.WideStart) {
      this.writeLow(offset, v);
      return;
    }
    this.writeDma(offset, v, 0);
  }

  private write64(offset: number, value: bigint): void {
    if (offset < EduReg.WideStart) return;
    const [lo, hi] = split64n(value);
    this.writeDma(offset, lo, hi);
  }

  /** The 4-byte-only registers below 0x80. */
  private writeLow(offset: number, v: number): void {
    switch (offset) {
      case EduReg.Liveness:
        this.addr4 = ~v >>> 0;
        break;
      case EduReg.Factorial:
        if (this.status & EduStatus.Computing) break;
        this.fact = v;
        this.status |= EduStatus.Computing;
        if (v < FACTORIAL_INSTANT_LIMIT) this.finishFactorial();
        else this.factTimer.armIn(v * FACTORIAL_NS_PER_STEP);
        break;
      case EduReg.Status:
        if (v & EduStatus.IrqFact) this.status |= EduStatus.IrqFact;
        else this.status &= ~EduStatus.IrqFact;
        break;
      case EduReg.IrqRaise:
        this.raiseIrq(v);
        break;
      case EduReg.IrqAck:
        this.lowerIrq(v);
        break;
    }
  }

  /** The 64-bit DMA registers; writes are ignored while a transfer is pending. */
  private writeDma(offset: number, lo: number, hi: number): void {
    const i = dmaIndex(offset);
    if (i < 0) return;
    if (i === Dma.Cmd && (lo & EduDmaCmd.Run) === 0) return;
    if (this.dmaRegs[Dma.Cmd]! & EduDmaCmd.Run) return;
    this.dmaRegs[i] = lo;
    this.dmaRegs[i + 1] = hi;
    if (i === Dma.Cmd) {
      // QEMU: timer_mod(ms timer, qemu_clock_get_ms(VIRTUAL) + 100).
      const nowMs = Math.floor(this.clock.now() / NS_PER_MS);
      this.dmaTimer.arm((nowMs + EDU_DMA_DELAY_MS) * NS_PER_MS);
    }
  }

  /** The worker's job finishing (see the file comment). */
  private finishFactorial(): void {
    this.fact = factorial32(this.fact);
    this.status &= ~EduStatus.Computing;
    if (this.status & EduStatus.IrqFact) this.raiseIrq(EduIrq.Factorial);
  }

  private raiseIrq(bits: number): void {
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (this.irqStatus === 0) return;
    if (this.msiEnabled()) this.msiNotify(0);
    else this.setIntx(true);
  }

  private lowerIrq(bits: number): void {
    this.irqStatus = (this.irqStatus & ~bits) >>> 0;
    if (this.irqStatus === 0 && !this.msiEnabled()) this.setIntx(false);
  }

  /** The DMA timer: performs the pending transfer. */
  private runDma(): void {
    const r = this.dmaRegs;
    const cmd = r[Dma.Cmd]!;
    if ((cmd & EduDmaCmd.Run) === 0) return;
    const toRam = (cmd & EduDmaCmd.ToRam) !== 0;
    const buf = toRam ? Dma.Src : Dma.Dst;
    const ram = toRam ? Dma.Dst : Dma.Src;
    const bufLo = r[buf]!;
    const countLo = r[Dma.Count]!;
    const inRange =
      r[buf + 1] === 0 &&
      r[Dma.Count + 1] === 0 &&
      bufLo >= EduDmaBuffer.Base &&
      bufLo + countLo <= EduDmaBuffer.Base + EduDmaBuffer.Size;
    if (!inRange) {
      // QEMU 7.2 would hw_error() and abort here; a guest must not be able to kill vtemu.
      if (this.tracing('edu_dma_out_of_range')) {
        this.tracer!.trace('edu_dma_out_of_range', {
          start: join64n(bufLo, r[buf + 1]!),
          count: join64n(countLo, r[Dma.Count + 1]!),
        });
      }
      r[Dma.Cmd] = cmd & ~EduDmaCmd.Run;
      return;
    }
    const ramLo = (r[ram]! & this.dmaMaskLo) >>> 0;
    const ramHi = (r[ram + 1]! & this.dmaMaskHi) >>> 0;
    if (ramLo !== r[ram] || ramHi !== r[ram + 1]) {
      if (this.tracing('edu_dma_clamp')) {
        this.tracer!.trace('edu_dma_clamp', { addr: join64n(r[ram]!, r[ram + 1]!), clamped: join64n(ramLo, ramHi) });
      }
    }
    try {
      if (countLo > 0) this.transfer(bufLo - EduDmaBuffer.Base, countLo, ramLo, ramHi, toRam);
    } finally {
      // QEMU's edu completes the command whatever the transfer did (faults, refused re-entrant
      // accesses); even a host error escaping the transfer must not leave the engine busy for good.
      r[Dma.Cmd] = cmd & ~EduDmaCmd.Run;
      if (cmd & EduDmaCmd.Irq) this.raiseIrq(EduIrq.Dma);
    }
  }

  /** Moves `count` bytes between the buffer at `start` and device address ramHi:ramLo (the result is not looked at, as in QEMU). */
  private transfer(start: number, count: number, ramLo: number, ramHi: number, toRam: boolean): void {
    const piece = this.buffer.subarray(start, start + count);
    if (ramHi < EXACT_HI_LIMIT) {
      const addr = join64(ramLo, ramHi);
      if (toRam) this.dma.write(addr, piece);
      else this.dma.read(addr, piece);
    } else {
      // At 2^53 and above a number would drop the low bits: the bigint entry point keeps them.
      const addr = join64n(ramLo, ramHi);
      if (toRam) this.dma.writeWide(addr, piece);
      else this.dma.readWide(addr, piece);
    }
  }

  /** True when `event` is traced (checked before building the fields: no allocation otherwise). */
  private tracing(event: string): boolean {
    return this.tracer !== undefined && this.tracer.enabled(event);
  }
}
