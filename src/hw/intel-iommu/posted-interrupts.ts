/**
 * Posted interrupts (VT-d spec 5.2.3, 9.11-9.12), beyond QEMU and behind the
 * `x-pi` property (CAP.PI).  A remappable interrupt whose IRTE is in posted
 * format (IM=1) is not delivered: its vector is recorded in a 64-byte
 * posted-interrupt descriptor (PID) in guest memory, and a notification
 * event is sent to the CPU that runs the virtual CPU, unless suppressed.
 *
 * PID layout (byte offsets):
 *
 *     0..31   PIR: one request bit per vector (bit v = byte v >> 3, bit v & 7)
 *     32      bit 0 ON (outstanding notification), bit 1 SN (suppress notification)
 *     34      NV: notification vector
 *     36..39  NDST: notification destination (xAPIC: APIC ID in bits 15:8)
 *
 * Posting (spec 9.12): set PIR[vector]; if ON was clear and (URG or SN clear),
 * set ON and send the notification (fixed, edge, physical, vector NV).  Both
 * updates are one atomic read-modify-write in hardware; here the machine is
 * single-threaded, so the read, update and write-back cannot interleave.
 */
import { MemTx, type AddressSpace } from '../../memory/address-space.js';
import type { MsiTarget } from '../../core/irq.js';
import type { Tracer } from '../../machine/device-type.js';
import { TWO_POW_32 } from '../../memory/address.js';

/** PID byte offsets and bits. */
export const Pid = {
  SIZE: 64,
  /** Bytes of the PIR. */
  PIR_BYTES: 32,
  /** Control byte holding ON and SN. */
  CONTROL: 32,
  ON: 1 << 0,
  SN: 1 << 1,
  NV: 34,
  NDST: 36,
} as const;

/** Message fields of the notification event. */
export const Notification = {
  /** MSI address base (physical destination, no redirection hint). */
  ADDR_BASE: 0xfee0_0000,
  /** Destination APIC ID bits 19:12 of the address. */
  DEST_SHIFT: 12,
  DEST_MASK: 0xff,
  /** xAPIC NDST: APIC ID in bits 15:8. */
  XAPIC_SHIFT: 8,
  /** x2APIC: destination bits 31:8 go to the upper address (QEMU's convention). */
  X2APIC_HI_MASK: 0xffff_ff00,
} as const;

/** What a post did. */
export const PostResult = {
  /** PIR updated and a notification sent. */
  Notified: 'notified',
  /** PIR updated; no notification (ON already set, or SN without URG). */
  Suppressed: 'suppressed',
  /** The PID could not be read or written: nothing posted. */
  AccessError: 'access-error',
} as const;
/** A PostResult value. */
export type PostResultKind = (typeof PostResult)[keyof typeof PostResult];

/** Vector -> PIR byte (v >> 3) and bit (v & 7). */
const PIR_BYTE_SHIFT = 3;
const BYTE_BIT_MASK = 7;

/** Posts interrupts into PIDs in guest memory. */

/** Trace points (built only when the tracer asks: posting is on the interrupt path). */
const TRACE_POST = 'vtd_pi_post';
const TRACE_ACCESS_ERROR = 'vtd_pi_access_error';
export class PostedInterrupts {
  private readonly pid = new Uint8Array(Pid.SIZE);
  private readonly view = new DataView(this.pid.buffer);
  private readonly one = new Uint8Array(1);

  constructor(
    private readonly memory: AddressSpace,
    private readonly msi: MsiTarget,
    private readonly tracer: Tracer,
  ) {}

  /**
   * Posts `vector` to the PID at `pidAddr` (64-byte aligned).  `x2apic`
   * selects the NDST format (IRTA.EIME); `sid`/`index` label the notification.
   */
  post(pidAddr: number, vector: number, urgent: boolean, x2apic: boolean, sid: number, index: number): PostResultKind {
    if (this.memory.readBytes(pidAddr, this.pid) !== MemTx.Ok) return this.fail(pidAddr);
    const pirByte = vector >>> PIR_BYTE_SHIFT;
    this.one[0] = this.pid[pirByte]! | (1 << (vector & BYTE_BIT_MASK));
    if (this.memory.writeBytes(pidAddr + pirByte, this.one) !== MemTx.Ok) return this.fail(pidAddr);
    const control = this.pid[Pid.CONTROL]!;
    const notify = (control & Pid.ON) === 0 && (urgent || (control & Pid.SN) === 0);
    if (!notify) {
      if (this.tracer.enabled(TRACE_POST)) this.tracer.trace(TRACE_POST, { addr: pidAddr, vector, notified: false });
      return PostResult.Suppressed;
    }
    this.one[0] = control | Pid.ON;
    if (this.memory.writeBytes(pidAddr + Pid.CONTROL, this.one) !== MemTx.Ok) return this.fail(pidAddr);
    const nv = this.pid[Pid.NV]!;
    const ndst = this.view.getUint32(Pid.NDST, true);
    const dest = x2apic ? ndst : (ndst >>> Notification.XAPIC_SHIFT) & Notification.DEST_MASK;
    const hi = x2apic ? (dest & Notification.X2APIC_HI_MASK) >>> 0 : 0;
    const lo = (Notification.ADDR_BASE | ((dest & Notification.DEST_MASK) << Notification.DEST_SHIFT)) >>> 0;
    if (this.tracer.enabled(TRACE_POST)) this.tracer.trace(TRACE_POST, { addr: pidAddr, vector, notified: true, nv, dest });
    this.msi.deliverMsi(hi * TWO_POW_32 + lo, nv, { kind: 'msi', source: sid, remappedIndex: index });
    return PostResult.Notified;
  }

  private fail(addr: number): PostResultKind {
    if (this.tracer.enabled(TRACE_ACCESS_ERROR)) this.tracer.trace(TRACE_ACCESS_ERROR, { addr });
    return PostResult.AccessError;
  }
}
