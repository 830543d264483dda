/**
 * Register map of QEMU's educational PCI device (QEMU docs/specs/edu.rst,
 * hw/misc/edu.c).  BAR0 is a 1 MiB MMIO window:
 *
 *     0x00 RO  identification 0x010000ed (major 1, minor 0, 0xed)
 *     0x04 RW  liveness check: reads the bitwise inverse of the last write
 *     0x08 RW  factorial: write n, read n! (mod 2^32) when status bit 0 clears
 *     0x20 RW  status: bit 0 computing (RO), bit 7 raise IRQ 0x01 after factorial
 *     0x24 RO  interrupt status
 *     0x60 WO  interrupt raise (ORed into 0x24)
 *     0x64 WO  interrupt acknowledge (cleared from 0x24)
 *     0x80 RW  DMA source address        (64-bit)
 *     0x88 RW  DMA destination address   (64-bit)
 *     0x90 RW  DMA transfer count        (64-bit)
 *     0x98 RW  DMA command               (64-bit)
 *
 * Below 0x80 only 4-byte accesses do anything; from 0x80 on 4- and 8-byte
 * accesses.  Anything else reads all-ones and ignores writes.
 */

/** PCI identity. */
export const EduPci = {
  VendorId: 0x1234,
  DeviceId: 0x11e8,
  Revision: 0x10,
  /** PCI_CLASS_OTHERS: base class 0x00, subclass 0xff, prog-if 0 (24-bit class code). */
  ClassCode: 0x00ff00,
  /** QEMU's default subsystem for devices that set none (Red Hat/Qumranet 0x1af4, QEMU 0x1100). */
  SubsystemVendorId: 0x1af4,
  SubsystemId: 0x1100,
  /** Interrupt pin INTA#. */
  InterruptPin: 1,
  /** Where QEMU's msi_init(pdev, 0, ...) ends up placing the capability: the first free offset. */
  MsiCapOffset: 0x40,
  MsiVectors: 1,
  /** BAR0 size: 1 MiB. */
  MmioSize: 0x10_0000,
} as const;

/** MMIO register offsets. */
export const EduReg = {
  Ident: 0x00,
  Liveness: 0x04,
  Factorial: 0x08,
  Status: 0x20,
  IrqStatus: 0x24,
  IrqRaise: 0x60,
  IrqAck: 0x64,
  DmaSrc: 0x80,
  DmaDst: 0x88,
  DmaCount: 0x90,
  DmaCmd: 0x98,
  /** Registers below this take 4-byte accesses only; from it on 4 or 8 bytes. */
  WideStart: 0x80,
} as const;

/** Identification value. */
export const EDU_IDENT = 0x010000ed;

/** Status register bits. */
export const EduStatus = {
  /** A factorial is being computed (read-only). */
  Computing: 0x01,
  /** Raise interrupt 0x01 when a factorial completes. */
  IrqFact: 0x80,
} as const;

/** Interrupt status bits raised by the device itself. */
export const EduIrq = {
  Factorial: 0x0000_0001,
  Dma: 0x0000_0100,
} as const;

/** DMA command bits. */
export const EduDmaCmd = {
  /** Start a transfer; cleared when it completes. */
  Run: 0x1,
  /** Direction: 0 = RAM to the buffer (from PCI), 1 = buffer to RAM (to PCI). */
  ToRam: 0x2,
  /** Raise interrupt 0x100 when the transfer completes. */
  Irq: 0x4,
} as const;

/** The device's DMA buffer, as addressed in src/dst. */
export const EduDmaBuffer = {
  Base: 0x40000,
  Size: 4096,
} as const;

/** Default DMA mask (QEMU: dma_mask = (1 << 28) - 1). */
export const EDU_DEFAULT_DMA_MASK = 0x0fff_ffff;

/** Delay between a DMA command and its execution: 100 ms of virtual time, on QEMU's ms-granular timer. */
export const EDU_DMA_DELAY_MS = 100;
/** Nanoseconds per millisecond. */
export const NS_PER_MS = 1_000_000;

/**
 * Factorials of n below this finish at once: QEMU's worker thread is done
 * before a client's next command (measured on QEMU 7.2: n = 2^20 is never
 * seen busy; 2^24 is busy for ~30 ms).
 */
export const FACTORIAL_INSTANT_LIMIT = 1 << 20;
/** Virtual time per multiply of a longer factorial (QEMU's loop runs at ~1.1 ns an iteration). */
export const FACTORIAL_NS_PER_STEP = 1;

/** n! mod 2^32 is 0 from here on (34! has 32 factors of two). */
export const FACTORIAL_ZERO_FROM = 34;

/** n! modulo 2^32, as the device's 32-bit multiply loop computes it. */
export function factorial32(n: number): number {
  let v = n >>> 0;
  if (v >= FACTORIAL_ZERO_FROM) return 0;
  let r = 1;
  while (v > 0) r = Math.imul(r, v--) >>> 0;
  return r;
}
