/**
 * The guest interface: everything a guest program (firmware, drivers, test
 * guests) may do to a machine, and nothing more.  There is no CPU in vtemu;
 * a guest is a TypeScript program issuing the accesses a CPU would issue.
 *
 * Every guest program in src/guest/ is written against `GuestPlatform` only,
 * so the same driver runs in-process against a vtemu machine, or through the
 * qtest wire protocol against `vtemu` or QEMU.  The API is asynchronous
 * because the qtest transport is.
 *
 * Addresses are JavaScript numbers (guest-physical addresses stay below
 * 2^53); 64-bit register values are bigints at this edge only.
 */

/** Widths of an MMIO or port access that fit in a number. */
export type AccessWidth = 1 | 2 | 4;

/** One interrupt a guest observed. */
export interface GuestInterrupt {
  /** 'msi': a message reached the APIC bus; 'intx': an IOAPIC input changed level. */
  readonly kind: 'msi' | 'intx';
  /** MSI: the interrupt vector (data bits 7:0).  INTx: the IOAPIC pin. */
  readonly vector: number;
  /** MSI: the message address. */
  readonly address?: number;
  /** MSI: the message data. */
  readonly data?: number;
  /** INTx: the new line level. */
  readonly level?: boolean;
}

/** Called for each interrupt delivered to a registered vector / pin. */
export type InterruptHandler = (irq: GuestInterrupt) => void;

/** What a platform can observe of interrupts (honest capability flags). */
export interface InterruptCapabilities {
  /** MSIs (after any remapping) can be observed with their vector. */
  readonly msi: boolean;
  /** IOAPIC input levels (INTx) can be observed by pin. */
  readonly intx: boolean;
}

/** How guest time passes on this platform. */
export type TimeMode = 'virtual' | 'real';

/** The guest-visible machine. */
export interface GuestPlatform {
  /** A short name for logs ("in-process vtemu", "qtest QEMU 7.2" ...). */
  readonly name: string;
  /** Which interrupts can be observed. */
  readonly interrupts: InterruptCapabilities;
  /** 'virtual': sleep advances a virtual clock instantly; 'real': sleep waits. */
  readonly timeMode: TimeMode;

  /** Reads 1, 2 or 4 bytes of CPU-visible memory (MMIO or RAM). */
  read(addr: number, size: AccessWidth): Promise<number>;
  /** Writes 1, 2 or 4 bytes of CPU-visible memory. */
  write(addr: number, size: AccessWidth, value: number): Promise<void>;
  /** Reads 8 bytes as one access. */
  read64(addr: number): Promise<bigint>;
  /** Writes 8 bytes as one access. */
  write64(addr: number, value: bigint): Promise<void>;

  /** Port input of 1, 2 or 4 bytes. */
  in(port: number, size: AccessWidth): Promise<number>;
  /** Port output of 1, 2 or 4 bytes. */
  out(port: number, size: AccessWidth, value: number): Promise<void>;

  /** Reads `length` bytes of guest memory. */
  readBytes(addr: number, length: number): Promise<Uint8Array>;
  /** Writes bytes into guest memory. */
  writeBytes(addr: number, bytes: Uint8Array): Promise<void>;
  /** Fills `length` bytes of guest memory with `byte`. */
  fill(addr: number, length: number, byte: number): Promise<void>;

  /** Calls `handler` for each MSI with this vector / each level change of this INTx pin. */
  onInterrupt(kind: 'msi' | 'intx', vector: number, handler: InterruptHandler): void;
  /** Returns and forgets every interrupt observed since the last call (polling). */
  takeInterrupts(): GuestInterrupt[];

  /** Lets `ns` nanoseconds of guest time pass. */
  sleep(ns: number): Promise<void>;
  /** Current guest time in ns (virtual clock, or wall time since the platform started). */
  now(): Promise<number>;

  /** Releases the platform (ends a child process, closes a socket). */
  close(): Promise<void>;
}

/** Nanoseconds per millisecond. */
export const NS_PER_MS = 1_000_000;
