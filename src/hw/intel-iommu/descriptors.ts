/**
 * Invalidation descriptors of the queued invalidation interface (VT-d spec
 * 6.5.2): decoding and reserved-bit validation of one 128-bit descriptor.
 *
 * A descriptor is four little-endian dwords: w0/w1 = bits 31:0 / 63:32 of
 * the first qword, w2/w3 = the same of the second.  Decoding is pure: it
 * returns a typed descriptor or a typed error, never throws (guest input).
 *
 * The descriptor type is bits 3:0 plus bits 11:9 as type[6:4] (6.5.2).
 * Reserved masks follow current QEMU (hw/i386/intel_iommu_internal.h), which
 * match the spec for a unit without scalable mode, PDS and DIT:
 *
 *     type 1 context-cache  qw0: G 5:4, DID 31:16, SID 47:32, FM 49:48     qw1: reserved
 *     type 2 IOTLB          qw0: G 5:4, DW 6, DR 7, DID 31:16             qw1: AM 5:0, IH 6, ADDR 63:12
 *     type 3 device-TLB     qw0: QDEP 20:16, SID 47:32                    qw1: S 0, ADDR 63:12
 *     type 4 IEC            qw0: G 4, IM 31:27, IIDX 47:32                qw1: reserved
 *     type 5 wait           qw0: IF 4, SW 5, FN 6, (PD 7), SDATA 63:32   qw1: status address 63:2
 *
 * Types 6-9 are 256-bit (scalable-mode) descriptors; a 128-bit queue refuses
 * them, as QEMU does.
 */
import { TWO_POW_32 } from '../../memory/address.js';

/** Descriptor type codes (6.5.2). */
export const DescType = {
  ContextCache: 1,
  Iotlb: 2,
  DeviceIotlb: 3,
  Iec: 4,
  Wait: 5,
  PasidIotlb: 6,
  PasidCache: 7,
  PasidDeviceIotlb: 8,
  PageGroupResponse: 9,
} as const;

/** Bit positions shared by several descriptor types (dword 0 unless noted). */
export const DescBits = {
  /** Type bits 3:0. */
  TYPE_LO_MASK: 0xf,
  /** Type bits 6:4 live in bits 11:9. */
  TYPE_HI_SHIFT: 9,
  TYPE_HI_MASK: 0x7,
  TYPE_HI_TO: 4,
  /** Granularity bits 5:4 (context-cache, IOTLB). */
  G_SHIFT: 4,
  G_MASK: 0x3,
  /** Domain ID bits 31:16. */
  DID_SHIFT: 16,
  /** 16-bit field mask (DID, SID, IIDX). */
  U16: 0xffff,
  /** Dword 2 (qw1 low): page address bits 31:12. */
  ADDR_LO_MASK: 0xffff_f000,
} as const;

/** Context-cache descriptor fields. */
export const CcFields = {
  /** Dword 1: FM bits 49:48 -> bits 17:16. */
  FM_SHIFT: 16,
  FM_MASK: 0x3,
  /** Reserved bits of qw0 (0xfffc00000000ffc0). */
  RSVD_W0: 0x0000_ffc0,
  RSVD_W1: 0xfffc_0000,
} as const;

/** IOTLB descriptor fields. */
export const IotlbFields = {
  /** Drain writes, bit 6. */
  DW: 1 << 6,
  /** Drain reads, bit 7. */
  DR: 1 << 7,
  /** Dword 2: address mask 5:0, invalidation hint bit 6. */
  AM_MASK: 0x3f,
  IH: 1 << 6,
  /** Reserved bits: qw0 0xffffffff0000ff00, qw1 0xf80. */
  RSVD_W0: 0x0000_ff00,
  RSVD_W1: 0xffff_ffff,
  RSVD_W2: 0x0000_0f80,
} as const;

/** Device-TLB descriptor fields. */
export const DevIotlbFields = {
  /** Max invalidations pending (QDEP) bits 20:16. */
  QDEP_SHIFT: 16,
  QDEP_MASK: 0x1f,
  /** Dword 2: size bit 0. */
  S: 1 << 0,
  /** Reserved (no DIT, so PFSID is reserved too): qw0 0xffff0000ffe0f1f0, qw1 0xffe. */
  RSVD_W0: 0xffe0_f1f0,
  RSVD_W1: 0xffff_0000,
  RSVD_W2: 0x0000_0ffe,
} as const;

/** Interrupt-entry-cache descriptor fields. */
export const IecFields = {
  /** Granularity bit 4: 1 = index-selective, 0 = global. */
  G_INDEX: 1 << 4,
  /** Index mask bits 31:27. */
  IM_SHIFT: 27,
  IM_MASK: 0x1f,
  /** Reserved qw0 0xffff000007fff1e0; qw1 all. */
  RSVD_W0: 0x07ff_f1e0,
  RSVD_W1: 0xffff_0000,
} as const;

/** Invalidation-wait descriptor fields. */
export const WaitFields = {
  /** Interrupt flag. */
  IF: 1 << 4,
  /** Status write. */
  SW: 1 << 5,
  /** Fence. */
  FN: 1 << 6,
  /** Page-request drain (reserved without ECAP.PDS). */
  PD: 1 << 7,
  /** Reserved: qw0 bits 31:7 (PD included), status address bits 1:0. */
  RSVD_W0: 0xffff_ff80,
  RSVD_W2: 0x3,
} as const;

/** Why a descriptor was refused (maps to IQER.IQEI codes, see queue.ts). */
export const DescError = {
  /** Type not implemented by this unit. */
  UnknownType: 'unknown-type',
  /** A 256-bit descriptor type in a 128-bit queue. */
  WideType: 'wide-type',
  /** A reserved bit is set. */
  Reserved: 'reserved',
  /** Reserved granularity encoding. */
  Granularity: 'granularity',
  /** IOTLB page-selective AM above CAP.MAMV. */
  AddressMask: 'address-mask',
  /** Wait descriptor with none of SW, IF, FN. */
  WaitNoAction: 'wait-no-action',
} as const;
/** A DescError value. */
export type DescErrorKind = (typeof DescError)[keyof typeof DescError];

/** Context-cache invalidation (type 1). */
export interface ContextCacheDesc {
  readonly type: typeof DescType.ContextCache;
  readonly granularity: 'global' | 'domain' | 'device';
  readonly did: number;
  readonly sid: number;
  readonly fm: number;
}

/** IOTLB invalidation (type 2). */
export interface IotlbDesc {
  readonly type: typeof DescType.Iotlb;
  readonly granularity: 'global' | 'domain' | 'page';
  readonly did: number;
  /** Page address (4 KiB aligned, < 2^64; exact as a number for page-aligned values). */
  readonly addr: number;
  readonly am: number;
  readonly ih: boolean;
  readonly drainReads: boolean;
  readonly drainWrites: boolean;
}

/** Device-TLB invalidation (type 3). */
export interface DeviceIotlbDesc {
  readonly type: typeof DescType.DeviceIotlb;
  readonly sid: number;
  readonly qdep: number;
  readonly addr: number;
  /** S bit: the range size is encoded in the low address bits (ATS). */
  readonly sizeBit: boolean;
}

/** Interrupt entry cache invalidation (type 4). */
export interface IecDesc {
  readonly type: typeof DescType.Iec;
  readonly global: boolean;
  readonly index: number;
  /** 2^indexMask entries starting at index (aligned). */
  readonly indexMask: number;
}

/** Invalidation wait (type 5). */
export interface WaitDesc {
  readonly type: typeof DescType.Wait;
  readonly statusWrite: boolean;
  readonly interrupt: boolean;
  readonly fence: boolean;
  readonly statusData: number;
  /** Status address (dword aligned). */
  readonly statusAddr: number;
}

/** A decoded descriptor. */
export type InvDescriptor = ContextCacheDesc | IotlbDesc | DeviceIotlbDesc | IecDesc | WaitDesc;

/** Result of decoding: a descriptor, or why it was refused (with the raw type). */
export type DecodeResult =
  | { readonly ok: true; readonly desc: InvDescriptor }
  | { readonly ok: false; readonly error: DescErrorKind; readonly type: number };

/** Unit capabilities that change validation. */
export interface DecodeOptions {
  /** CAP.MAMV: largest IOTLB page-selective address mask. */
  readonly mamv: number;
}

const CC_GRANULARITY = [null, 'global', 'domain', 'device'] as const;
const IOTLB_GRANULARITY = [null, 'global', 'domain', 'page'] as const;

/** The descriptor type of dword 0 (bits 3:0 | bits 11:9 << 4). */
export function descriptorType(w0: number): number {
  return (
    (w0 & DescBits.TYPE_LO_MASK) |
    (((w0 >>> DescBits.TYPE_HI_SHIFT) & DescBits.TYPE_HI_MASK) << DescBits.TYPE_HI_TO)
  );
}

/** A page address from dwords 2/3 (bits 63:12). */
function pageAddress(w2: number, w3: number): number {
  return (w3 >>> 0) * TWO_POW_32 + ((w2 & DescBits.ADDR_LO_MASK) >>> 0);
}

function refuse(error: DescErrorKind, type: number): DecodeResult {
  return { ok: false, error, type };
}

/**
 * Decodes and validates one 128-bit descriptor given as four dwords.
 * Validation order follows QEMU: type, reserved bits, then field values.
 */
export function decodeDescriptor(w0: number, w1: number, w2: number, w3: number, opts: DecodeOptions): DecodeResult {
  const type = descriptorType(w0);
  const g = (w0 >>> DescBits.G_SHIFT) & DescBits.G_MASK;
  const did = (w0 >>> DescBits.DID_SHIFT) & DescBits.U16;
  switch (type) {
    case DescType.ContextCache: {
      if ((w0 & CcFields.RSVD_W0) !== 0 || (w1 & CcFields.RSVD_W1) !== 0 || (w2 | w3) !== 0) {
        return refuse(DescError.Reserved, type);
      }
      const granularity = CC_GRANULARITY[g];
      if (!granularity) return refuse(DescError.Granularity, type);
      return {
        ok: true,
        desc: {
          type,
          granularity,
          did,
          sid: w1 & DescBits.U16,
          fm: (w1 >>> CcFields.FM_SHIFT) & CcFields.FM_MASK,
        },
      };
    }
    case DescType.Iotlb: {
      if ((w0 & IotlbFields.RSVD_W0) !== 0 || (w1 & IotlbFields.RSVD_W1) !== 0 || (w2 & IotlbFields.RSVD_W2) !== 0) {
        return refuse(DescError.Reserved, type);
      }
      const granularity = IOTLB_GRANULARITY[g];
      if (!granularity) return refuse(DescError.Granularity, type);
      const am = w2 & IotlbFields.AM_MASK;
      if (granularity === 'page' && am > opts.mamv) return refuse(DescError.AddressMask, type);
      return {
        ok: true,
        desc: {
          type,
          granularity,
          did,
          addr: pageAddress(w2, w3),
          am,
          ih: (w2 & IotlbFields.IH) !== 0,
          drainReads: (w0 & IotlbFields.DR) !== 0,
          drainWrites: (w0 & IotlbFields.DW) !== 0,
        },
      };
    }
    case DescType.DeviceIotlb: {
      if ((w0 & DevIotlbFields.RSVD_W0) !== 0 || (w1 & DevIotlbFields.RSVD_W1) !== 0 || (w2 & DevIotlbFields.RSVD_W2) !== 0) {
        return refuse(DescError.Reserved, type);
      }
      return {
        ok: true,
        desc: {
          type,
          sid: w1 & DescBits.U16,
          qdep: (w0 >>> DevIotlbFields.QDEP_SHIFT) & DevIotlbFields.QDEP_MASK,
          addr: pageAddress(w2, w3),
          sizeBit: (w2 & DevIotlbFields.S) !== 0,
        },
      };
    }
    case DescType.Iec: {
      if ((w0 & IecFields.RSVD_W0) !== 0 || (w1 & IecFields.RSVD_W1) !== 0 || (w2 | w3) !== 0) {
        return refuse(DescError.Reserved, type);
      }
      return {
        ok: true,
        desc: {
          type,
          global: (w0 & IecFields.G_INDEX) === 0,
          index: w1 & DescBits.U16,
          indexMask: (w0 >>> IecFields.IM_SHIFT) & IecFields.IM_MASK,
        },
      };
    }
    case DescType.Wait: {
      if ((w0 & WaitFields.RSVD_W0) !== 0 || (w2 & WaitFields.RSVD_W2) !== 0) {
        return refuse(DescError.Reserved, type);
      }
      const statusWrite = (w0 & WaitFields.SW) !== 0;
      const interrupt = (w0 & WaitFields.IF) !== 0;
      const fence = (w0 & WaitFields.FN) !== 0;
      if (!statusWrite && !interrupt && !fence) return refuse(DescError.WaitNoAction, type);
      return {
        ok: true,
        desc: { type, statusWrite, interrupt, fence, statusData: w1 >>> 0, statusAddr: (w3 >>> 0) * TWO_POW_32 + (w2 >>> 0) },
      };
    }
    case DescType.PasidIotlb:
    case DescType.PasidCache:
    case DescType.PasidDeviceIotlb:
    case DescType.PageGroupResponse:
      return refuse(DescError.WideType, type);
    default:
      return refuse(DescError.UnknownType, type);
  }
}
