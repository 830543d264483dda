/**
 * Interrupt remapping table entries (VT-d spec 9.10 remapped format, 9.11
 * posted format) and source-ID verification (9.10, table "SVT/SQ").
 *
 * An IRTE is 16 bytes, given as four little-endian dwords w0..w3:
 *
 *     remapped (IM=0)                          posted (IM=1, needs CAP.PI)
 *     w0  0 P  1 FPD  2 DM  3 RH  4 TM         0 P  1 FPD  7:2 rsvd  11:8 AVAIL
 *         7:5 DLM  11:8 AVAIL  14:12 rsvd      13:12 rsvd  14 URG  15 IM
 *         15 IM  23:16 vector  31:24 rsvd      23:16 vector  31:24 rsvd
 *     w1  DST 31:0 (xAPIC: APIC ID in 15:8)    5:0 rsvd  31:6 PDA_L (descriptor address 31:6)
 *     w2  15:0 SID  17:16 SQ  19:18 SVT        same
 *         31:20 rsvd
 *     w3  rsvd                                 PDA_H (descriptor address 63:32)
 *
 * Decoding fills a caller-owned `Irte` (no allocation on the interrupt path).
 */
import { TWO_POW_32 } from '../../memory/address.js';

/** Dword 0 fields. */
export const IrteW0 = {
  P: 1 << 0,
  FPD: 1 << 1,
  /** Destination mode: 1 = logical. */
  DM: 1 << 2,
  /** Redirection hint. */
  RH: 1 << 3,
  /** Trigger mode: 1 = level. */
  TM: 1 << 4,
  /** Delivery mode bits 7:5. */
  DLM_SHIFT: 5,
  DLM_MASK: 0x7,
  /** Posted: urgent, bit 14. */
  URG: 1 << 14,
  /** IRTE mode: 1 = posted, bit 15. */
  IM: 1 << 15,
  /** Vector bits 23:16. */
  VECTOR_SHIFT: 16,
  VECTOR_MASK: 0xff,
  /** Reserved in the remapped format: 14:12 and 31:24 (QEMU __reserved_0/1). */
  RSVD_REMAPPED: 0xff00_7000,
  /** Reserved in the posted format: 7:2, 13:12, 31:24. */
  RSVD_POSTED: 0xff00_30fc,
} as const;

/** Dword 1 (posted): descriptor address low bits. */
export const IrteW1 = {
  /** Posted descriptor address bits 31:6. */
  PDA_L_MASK: 0xffff_ffc0,
  /** Reserved bits 5:0 in the posted format. */
  RSVD_POSTED: 0x3f,
  /** xAPIC destination: APIC ID in DST bits 15:8. */
  XAPIC_DEST_SHIFT: 8,
  XAPIC_DEST_MASK: 0xff,
} as const;

/** Dword 2: source-ID fields. */
export const IrteW2 = {
  SID_MASK: 0xffff,
  /** Source-ID qualifier bits 17:16. */
  SQ_SHIFT: 16,
  SQ_MASK: 0x3,
  /** Source validation type bits 19:18. */
  SVT_SHIFT: 18,
  SVT_MASK: 0x3,
  /** Reserved 31:20 (QEMU __reserved_2, low part). */
  RSVD: 0xfff0_0000,
  /** Bus range (SVT 2): first bus in SID 15:8, last bus in SID 7:0. */
  BUS_FIRST_SHIFT: 8,
  BUS_MASK: 0xff,
} as const;

/** Bus number bits of a requester ID. */
const RID_BUS_SHIFT = 8;

/** Source validation types (SVT). */
export const Svt = {
  /** No verification. */
  None: 0,
  /** Verify the requester ID under the SQ mask. */
  RequesterId: 1,
  /** Verify the requester's bus is within SID[15:8]..SID[7:0]. */
  BusRange: 2,
  /** Reserved encoding: treated as a failed verification, as QEMU does. */
  Reserved: 3,
} as const;

/** SQ: which requester-ID bits are compared (function bits ignored). */
export const SQ_COMPARE_MASKS: readonly number[] = [0xffff, 0xfffb, 0xfff9, 0xfff8];

/** Size of one IRTE in bytes. */
export const IRTE_SIZE = 16;
/** Alignment of a posted-interrupt descriptor. */
export const PID_ALIGN = 64;

/** A decoded IRTE (either format). */
export interface Irte {
  present: boolean;
  fpd: boolean;
  /** IM: posted format. */
  posted: boolean;
  vector: number;
  /** Remapped: destination mode logical. */
  destLogical: boolean;
  redirHint: boolean;
  levelTriggered: boolean;
  deliveryMode: number;
  /** Remapped: the raw 32-bit DST field. */
  dst: number;
  /** Posted: urgent. */
  urgent: boolean;
  /** Posted: descriptor address (64-byte aligned). */
  pidAddr: number;
  sid: number;
  sq: number;
  svt: number;
}

/** A blank IRTE object to decode into. */
export function newIrte(): Irte {
  return {
    present: false, fpd: false, posted: false, vector: 0, destLogical: false, redirHint: false,
    levelTriggered: false, deliveryMode: 0, dst: 0, urgent: false, pidAddr: 0, sid: 0, sq: 0, svt: 0,
  };
}


/** Decodes the four dwords of an IRTE into `out`. */
export function decodeIrte(w0: number, w1: number, w2: number, w3: number, out: Irte): Irte {
  out.present = (w0 & IrteW0.P) !== 0;
  out.fpd = (w0 & IrteW0.FPD) !== 0;
  out.posted = (w0 & IrteW0.IM) !== 0;
  out.vector = (w0 >>> IrteW0.VECTOR_SHIFT) & IrteW0.VECTOR_MASK;
  out.destLogical = (w0 & IrteW0.DM) !== 0;
  out.redirHint = (w0 & IrteW0.RH) !== 0;
  out.levelTriggered = (w0 & IrteW0.TM) !== 0;
  out.deliveryMode = (w0 >>> IrteW0.DLM_SHIFT) & IrteW0.DLM_MASK;
  out.dst = w1 >>> 0;
  out.urgent = (w0 & IrteW0.URG) !== 0;
  out.pidAddr = (w3 >>> 0) * TWO_POW_32 + ((w1 & IrteW1.PDA_L_MASK) >>> 0);
  out.sid = w2 & IrteW2.SID_MASK;
  out.sq = (w2 >>> IrteW2.SQ_SHIFT) & IrteW2.SQ_MASK;
  out.svt = (w2 >>> IrteW2.SVT_SHIFT) & IrteW2.SVT_MASK;
  return out;
}

/**
 * True when a present IRTE has a reserved bit set.  With posted interrupts
 * unsupported, IM=1 is itself reserved (spec 9.10; QEMU ignores IM).
 */
export function irteHasReservedBits(w0: number, w1: number, w2: number, w3: number, postedSupported: boolean): boolean {
  if ((w2 & IrteW2.RSVD) !== 0) return true;
  if ((w0 & IrteW0.IM) === 0) return (w0 & IrteW0.RSVD_REMAPPED) !== 0 || w3 !== 0;
  if (!postedSupported) return true;
  return (w0 & IrteW0.RSVD_POSTED) !== 0 || (w1 & IrteW1.RSVD_POSTED) !== 0;
}

/**
 * Source-ID verification of a request from `sid` against the IRTE
 * (spec 9.10 SVT/SQ).  Bus range: SID[15:8] is the first bus, SID[7:0] the
 * last, as Linux programs it.
 */
export function verifySourceId(irte: Irte, sid: number): boolean {
  switch (irte.svt) {
    case Svt.None:
      return true;
    case Svt.RequesterId: {
      const mask = SQ_COMPARE_MASKS[irte.sq]!;
      return (irte.sid & mask) === (sid & mask);
    }
    case Svt.BusRange: {
      const bus = (sid >>> RID_BUS_SHIFT) & IrteW2.BUS_MASK;
      return bus >= ((irte.sid >>> IrteW2.BUS_FIRST_SHIFT) & IrteW2.BUS_MASK) && bus <= (irte.sid & IrteW2.BUS_MASK);
    }
    default:
      return false;
  }
}

/** The destination APIC ID of a remapped IRTE: all of DST with EIME, else DST[15:8]. */
export function irteDestination(irte: Irte, eime: boolean): number {
  return eime ? irte.dst : (irte.dst >>> IrteW1.XAPIC_DEST_SHIFT) & IrteW1.XAPIC_DEST_MASK;
}
