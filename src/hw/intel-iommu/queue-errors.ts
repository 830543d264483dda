/**
 * Error reporting of the invalidation queue: FSTS.IQE (QEMU), and beyond
 * QEMU, the device-TLB invalidation time-out / completion errors (FSTS.ITE /
 * ICE, spec 6.5.2.10) of a function that does not answer or answers with an
 * error (or of one SID chosen by a property), and behind a property the
 * invalidation queue error record (IQER, 0xB0, spec 11.4.9.9).
 */
import type { AtsInvalidationResult } from '../../memory/iommu.js';
import type { QueueErrorsUnit } from './roles.js';
import { DescError, type DescErrorKind } from './descriptors.js';
import { Fsts, Reg } from './reg-layout.js';

/** IQER (0xB0) fields: IQEI in the low dword, ITESID / ICESID in the high dword. */
export const Iqer = {
  /** Invalidation queue error info, bits 3:0. */
  IQEI_MASK: 0xf,
  /** High dword: ITESID bits 47:32 -> 15:0, ICESID bits 63:48 -> 31:16. */
  ITESID_SHIFT: 0,
  ICESID_SHIFT: 16,
  SID_MASK: 0xffff,
} as const;

/** IQER.IQEI codes (spec 11.4.9.9). */
export const Iqei = {
  NotAvailable: 0,
  /** Tail pointer beyond the queue, or with bit 4 set in a 256-bit queue. */
  InvalidTail: 1,
  /** Descriptor fetch failed. */
  FetchError: 2,
  /** Descriptor type invalid or unsupported. */
  InvalidType: 3,
  /** Reserved field set / invalid field value. */
  Reserved: 4,
  /** 256-bit descriptor in a 128-bit queue. */
  InvalidWidth: 5,
} as const;

/** Sentinel SID meaning "no device" for the test properties. */
export const NO_SID = 0x1_0000;

/** Options from the unit's properties. */
export interface QueueOptions {
  readonly iqer: boolean;
  readonly devtlbTimeoutSid: number;
  readonly devtlbErrorSid: number;
}

/** Reads the queue options out of the resolved properties. */
export function queueOptionsFrom(raw: Readonly<Record<string, unknown>>): QueueOptions {
  const num = (k: string) => (typeof raw[k] === 'number' || typeof raw[k] === 'bigint' ? Number(raw[k]) : NO_SID);
  return { iqer: raw['x-iqer'] === true, devtlbTimeoutSid: num('x-devtlb-timeout-sid'), devtlbErrorSid: num('x-devtlb-error-sid') };
}

/**
 * The IQEI code for a refused descriptor: unknown type 3, a 256-bit type in
 * a 128-bit queue 5, anything else (reserved bits, a non-zero upper half,
 * bad granularity, AM, a wait doing nothing, a page-group response without
 * PASID) 4.
 */
export function iqeiFor(e: DescErrorKind): number {
  if (e === DescError.UnknownType) return Iqei.InvalidType;
  if (e === DescError.WideType) return Iqei.InvalidWidth;
  return Iqei.Reserved;
}

/** Sets the error bits and records; shared by the queue's processing paths. */
export class QueueErrors {
  constructor(
    private readonly core: QueueErrorsUnit,
    private readonly opts: QueueOptions,
  ) {
    const regs = core.regs;
    if (opts.iqer) {
      regs.define32(Reg.IQER, 0, 0, 0);
      regs.define32(Reg.IQER + 4, 0, 0, 0);
    }
    // ITE and ICE are write-1-to-clear next to QEMU's PFO and IQE (QEMU never sets them, so
    // its FSTS reads the same whatever is written).
    regs.define32(Reg.FSTS, 0, 0, Fsts.PFO | Fsts.IQE | Fsts.ICE | Fsts.ITE);
  }

  /** FSTS.IQE with its IQEI code; the fault event as QEMU raises it. */
  queueError(iqei: number): void {
    if (this.opts.iqer) this.core.regs.setClear32(Reg.IQER, iqei, Iqer.IQEI_MASK);
    this.core.raiseFaultStatus(Fsts.IQE);
  }

  /**
   * After a device-TLB invalidation for `sid`, given how the function at
   * that SID answered (absent: as 'done'): ITE for a time-out, ICE for an
   * error, as for a SID the properties configure to fail.
   */
  deviceIotlbDone(sid: number, answer?: AtsInvalidationResult): void {
    if (answer === 'timeout' || sid === this.opts.devtlbTimeoutSid) this.invalidationError(Fsts.ITE, Iqer.ITESID_SHIFT, sid);
    else if (answer === 'error' || sid === this.opts.devtlbErrorSid) this.invalidationError(Fsts.ICE, Iqer.ICESID_SHIFT, sid);
  }

  /** True while FSTS.ITE is set (wait descriptors are aborted). */
  timedOut(): boolean {
    return (this.core.regs.get32(Reg.FSTS) & Fsts.ITE) !== 0;
  }

  /** FSTS was written: clearing an error clears its IQER field. */
  onFstsWrite(): void {
    if (!this.opts.iqer) return;
    const regs = this.core.regs;
    const fsts = regs.get32(Reg.FSTS);
    if ((fsts & Fsts.IQE) === 0) regs.setClear32(Reg.IQER, 0, Iqer.IQEI_MASK);
    if ((fsts & Fsts.ITE) === 0) regs.setClear32(Reg.IQER + 4, 0, Iqer.SID_MASK << Iqer.ITESID_SHIFT);
    if ((fsts & Fsts.ICE) === 0) regs.setClear32(Reg.IQER + 4, 0, Iqer.SID_MASK << Iqer.ICESID_SHIFT);
  }

  private invalidationError(bit: number, sidShift: number, sid: number): void {
    const regs = this.core.regs;
    if ((regs.get32(Reg.FSTS) & bit) !== 0) return;
    if (this.opts.iqer) {
      regs.setClear32(Reg.IQER + 4, ((sid & Iqer.SID_MASK) << sidShift) >>> 0, (Iqer.SID_MASK << sidShift) >>> 0);
    }
    const event = bit === Fsts.ITE ? 'vtd_inv_timeout' : 'vtd_inv_completion_error';
    if (this.core.tracer.enabled(event)) this.core.tracer.trace(event, { sid });
    this.core.raiseFaultStatus(bit);
  }
}
