/**
 * The Page Request Interface extended capability (PCIe Base 6.0 §10.5.2,
 * ID 0x0013, 16 bytes) for a device model that issues page requests: the
 * registers with QEMU 11.1's values and masks (hw/pci/pcie.c
 * pcie_pri_init) and the spec's behaviour where QEMU only stores bits, plus
 * the outstanding-request accounting the device keeps through the handle.
 *
 *   control    Enable (RW), Reset (write 1 with Enable clear: forget every
 *              outstanding request; reads 0 -- QEMU stores it as a plain bit)
 *   status     Response Failure, Unexpected PRG Index (RW1C); Stopped (RO,
 *              follows Enable and the outstanding count -- QEMU leaves it set
 *              forever); PRG Response PASID Required (RO)
 *   capacity   Outstanding Page Request Capacity (RO)
 *   allocation Outstanding Page Request Allocation (RW, all 32 bits)
 *
 * No QEMU 11.1 device exposes PRI, so these rules are the spec's over
 * QEMU's source.  A device with PRI calls `pri.configWritten(...)` after
 * `super.configWrite(...)` and `pri.reset()` from its deviceReset.
 */
import type { SectionReader, SnapshotSection } from '../core/snapshot-state.js';
import { rangesOverlap, type PciConfig } from './config.js';
import type { PciDevice } from './device.js';
import { SvaExtCapId } from './pcie-ext-caps.js';

/** Bits of a write of `value` at `offset` that land in the 16-bit register at `reg`. */
function writtenWord(offset: number, value: number, reg: number): number {
  const shift = 8 * (reg - offset);
  return (shift >= 0 ? value >>> shift : value << -shift) & 0xffff;
}

/** PRI register offsets (PCIe Base 6.0 §10.5.2.2-5). */
export const PriReg = {
  Ctrl: 0x04,
  Status: 0x06,
  /** Outstanding Page Request Capacity (RO). */
  Capacity: 0x08,
  /** Outstanding Page Request Allocation (RW). */
  Allocation: 0x0c,
} as const;

/** PRI control bits (§10.5.2.2). */
export const PriCtrlBit = {
  Enable: 0x0001,
  /** Write 1 with Enable clear: forget the outstanding requests.  Reads 0. */
  Reset: 0x0002,
} as const;

/** PRI status bits (§10.5.2.3). */
export const PriStatusBit = {
  /** RW1C: a PRG Response with Response Failure arrived. */
  ResponseFailure: 0x0001,
  /** RW1C: a PRG Response named a group index with nothing outstanding. */
  UnexpectedPrgIndex: 0x0002,
  /** RO: disabled and every issued request has completed (reset value 1). */
  Stopped: 0x0100,
  /** RO: PRG Responses to requests with a PASID must carry it. */
  PasidRequired: 0x8000,
} as const;

const PRI_SIZE = 16;
const PRI_VERSION = 1;
/** The status flags a 0-to-1 Enable transition clears. */
const PRI_ENABLE_CLEARS = PriStatusBit.ResponseFailure | PriStatusBit.UnexpectedPrgIndex | PriStatusBit.Stopped;
const U32_MAX = 0xffff_ffff;

/** What a PRI capability offers. */
export interface PriOptions {
  /** Outstanding Page Request Capacity: page requests the function can have in flight. */
  readonly capacity: number;
  /** PRG Response PASID Required (default false). */
  readonly prgResponsePasidRequired?: boolean;
}

/**
 * A function's Page Request Interface: the registers plus the outstanding
 * request count the device model keeps through `issue` and `retire`.
 *
 *  - Enable 0 -> 1 clears Stopped, Response Failure and UPRGI.
 *  - Enable 1 -> 0 sets Stopped at once when nothing is outstanding, else
 *    when `retire` brings the count to 0.
 *  - Reset written 1 while Enable is (or becomes) clear forgets every
 *    outstanding request and sets Stopped; it always reads 0.
 *  - After a Response Failure the function issues nothing and ignores PRG
 *    responses until software re-enables PRI (§10.4.2.1).
 */
export class PriCap {
  private outstandingCount = 0;
  private wasEnabled = false;

  constructor(
    private readonly config: PciConfig,
    /** Offset of the capability header. */
    readonly offset: number,
    /** Outstanding Page Request Capacity. */
    readonly capacity: number,
  ) {}

  /** Enable: the function may issue page requests. */
  enabled(): boolean {
    return (this.config.getWord(this.offset + PriReg.Ctrl) & PriCtrlBit.Enable) !== 0;
  }

  /** The status register. */
  status(): number {
    return this.config.getWord(this.offset + PriReg.Status);
  }

  /** Stopped status bit. */
  stopped(): boolean {
    return (this.status() & PriStatusBit.Stopped) !== 0;
  }

  /** PRG Response PASID Required. */
  prgResponsePasidRequired(): boolean {
    return (this.status() & PriStatusBit.PasidRequired) !== 0;
  }

  /** Outstanding Page Request Allocation as software programmed it. */
  allocation(): number {
    return this.config.getLong(this.offset + PriReg.Allocation);
  }

  /** Page requests the function may have outstanding: the allocation, capped by the capacity. */
  limit(): number {
    return Math.min(this.allocation(), this.capacity);
  }

  /** Page requests issued and not yet retired. */
  outstanding(): number {
    return this.outstandingCount;
  }

  /** True when one more page request may be issued now. */
  canIssue(): boolean {
    return this.enabled() && !(this.status() & PriStatusBit.ResponseFailure) && this.outstandingCount < this.limit();
  }

  /** Takes one request slot; false (nothing changes) when `canIssue` is false. */
  issue(): boolean {
    if (!this.canIssue()) return false;
    this.outstandingCount++;
    return true;
  }

  /**
   * A PRG Response retired `count` outstanding requests.  Ignored (false)
   * after a Response Failure; the count never goes below 0.  With Enable
   * clear, reaching 0 sets Stopped.
   */
  retire(count: number): boolean {
    if (this.status() & PriStatusBit.ResponseFailure) return false;
    this.outstandingCount = Math.max(0, this.outstandingCount - Math.max(0, Math.trunc(count)));
    this.updateStopped();
    return true;
  }

  /** Records a PRG Response Failure: sets Response Failure; the interface stops issuing. */
  responseFailure(): void {
    this.setStatus(PriStatusBit.ResponseFailure, true);
  }

  /** Records a PRG Response whose group index had nothing outstanding: sets UPRGI. */
  unexpectedPrgIndex(): void {
    this.setStatus(PriStatusBit.UnexpectedPrgIndex, true);
  }

  /** Call after every config write (after the masks applied): Enable transitions and Reset. */
  configWritten(offset: number, size: 1 | 2 | 4, value: number): void {
    const ctl = this.offset + PriReg.Ctrl;
    if (!rangesOverlap(offset, size, ctl, 2)) return;
    const enabled = this.enabled();
    if (enabled && !this.wasEnabled) this.setStatus(PRI_ENABLE_CLEARS, false);
    if (!enabled && writtenWord(offset, value, ctl) & PriCtrlBit.Reset) this.outstandingCount = 0;
    this.wasEnabled = enabled;
    this.updateStopped();
  }

  /** Snapshot: the outstanding count and the last Enable seen (the registers are config space). */
  saveState(): SnapshotSection {
    return { outstanding: this.outstandingCount, wasEnabled: this.wasEnabled };
  }

  /** Loads what saveState saved. */
  loadState(r: SectionReader): void {
    const outstanding = r.u32('outstanding');
    this.wasEnabled = r.bool('wasEnabled');
    this.outstandingCount = outstanding;
  }

  /** Device reset: nothing outstanding (the config space itself is restored by PciDevice.reset). */
  reset(): void {
    this.outstandingCount = 0;
    this.wasEnabled = false;
  }

  private updateStopped(): void {
    if (!this.enabled() && this.outstandingCount === 0) this.setStatus(PriStatusBit.Stopped, true);
  }

  private setStatus(bits: number, on: boolean): void {
    const at = this.offset + PriReg.Status;
    const sta = this.config.getWord(at);
    this.config.setWord(at, on ? sta | bits : sta & ~bits);
  }
}

/**
 * Adds a PRI capability at `offset` (QEMU pcie_pri_init): disabled and
 * Stopped at reset, allocation 0 and fully writable, RF/UPRGI write-1-to-clear.
 */
export function addPriCap(dev: PciDevice, offset: number, opts: PriOptions): PriCap {
  if (!Number.isInteger(opts.capacity) || opts.capacity < 0 || opts.capacity > U32_MAX) {
    throw new RangeError(`pci device ${dev.typeName}: PRI capacity ${opts.capacity} is not a 32-bit count`);
  }
  const at = dev.addExtCapability(SvaExtCapId.Pri, PRI_VERSION, offset, PRI_SIZE);
  const c = dev.config;
  c.setWord(at + PriReg.Status, PriStatusBit.Stopped | (opts.prgResponsePasidRequired ? PriStatusBit.PasidRequired : 0));
  c.setLong(at + PriReg.Capacity, opts.capacity);
  c.setWmask(at + PriReg.Ctrl, 2, PriCtrlBit.Enable);
  c.setW1cmask(at + PriReg.Status, 2, PriStatusBit.ResponseFailure | PriStatusBit.UnexpectedPrgIndex);
  c.setWmask(at + PriReg.Allocation, 4, U32_MAX);
  return new PriCap(c, at, opts.capacity);
}
