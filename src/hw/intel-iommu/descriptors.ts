/**
 * Invalidation descriptors of the queued invalidation interface (VT-d spec
 * 6.5.2): decoding and reserved-bit validation of one descriptor, 128-bit
 * or 256-bit (scalable mode, IQA.DW = 1).
 *
 * A descriptor is given as four little-endian dwords: w0/w1 = bits 31:0 /
 * 63:32 of the first qword, w2/w3 = the same of the second.  Of the upper
 * half of a 256-bit descriptor (qwords 2 and 3) only "is it zero" matters:
 * QEMU 11.1 defines no field there.  Decoding is pure: it returns a typed
 * descriptor or a typed error, never throws (guest input).
 *
 * The descriptor type is bits 3:0 plus bits 11:9 as type[6:4] (6.5.2).
 * Reserved masks follow QEMU 11.1 (hw/i386/intel_iommu_internal.h), checked
 * against the 11.1.3 binary bit by bit:
 *
 *     type 1 context-cache  qw0: G 5:4, DID 31:16, SID 47:32, FM 49:48     qw1: reserved
 *     type 2 IOTLB          qw0: G 5:4, DW 6, DR 7, DID 31:16             qw1: AM 5:0, IH 6, ADDR 63:12
 *     type 3 device-TLB     qw0: QDEP 20:16, SID 47:32                    qw1: S 0, ADDR 63:12
 *     type 4 IEC            qw0: G 4, IM 31:27, IIDX 47:32                qw1: reserved
 *     type 5 wait           qw0: IF 4, SW 5, FN 6, PD 7, SDATA 63:32     qw1: status address 63:2
 *     type 6 PASID-IOTLB    qw0: G 5:4, DID 31:16, PASID 51:32            qw1: AM 5:0, IH 6, ADDR 63:12
 *     type 7 PASID-cache    qw0: G 5:4, DID 31:16, PASID 51:32            qw1: reserved
 *     type 8 PASID dev-TLB  qw0: SID 31:16, PASID 51:32                   qw1: G 0, S 11, ADDR 63:12
 *     type 9 page-group rsp qw0: PP 4, RC 15:12, RID 31:16, PASID 51:32  qw1: PRGI 11:3
 *
 * PD (wait, bit 7) is reserved unless ECAP.PDS (svm=on).  Types 6-9 are
 * 256-bit descriptors: in a 128-bit queue they are refused (QEMU 11.1 does
 * so for 6-8; it accepts 9, where vtemu follows the spec: see
 * test/diff/intel-iommu-qi.test.ts).  In a 256-bit queue every type but 9
 * must have a zero upper half (QEMU 11.1 checks qwords 2 and 3 against an
 * all-ones mask for types 1-8; the page-group response never looks at
 * them).
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
  /** Reserved: qw0 bits 31:7 (PD included; see DecodeOptions.pds), status address bits 1:0. */
  RSVD_W0: 0xffff_ff80,
  RSVD_W2: 0x3,
} as const;

/**
 * Fields shared by the PASID-granular descriptors 6-9: the PASID is qw0
 * bits 51:32 (dword 1 bits 19:0), and bits 63:52 of qw0 are reserved.
 */
export const PasidFields = {
  /** Dword 1: PASID bits 19:0. */
  PASID_MASK: 0xf_ffff,
} as const;

/** PASID-based IOTLB invalidation descriptor (type 6) fields. */
export const PiotlbFields = {
  /** Dword 2: address mask 5:0, invalidation hint bit 6. */
  AM_MASK: 0x3f,
  IH: 1 << 6,
  /** Reserved: qw0 0xfff000000000f1c0, qw1 0xf80 (QEMU VTD_INV_DESC_PIOTLB_RSVD_VAL0/1). */
  RSVD_W0: 0x0000_f1c0,
  RSVD_W1: 0xfff0_0000,
  RSVD_W2: 0x0000_0f80,
} as const;

/** PASID-cache invalidation descriptor (type 7) fields. */
export const PasidCacheFields = {
  /** Reserved: qw0 0xfff000000000f1c0 and all of qw1 (QEMU VTD_INV_DESC_PASIDC_RSVD_VAL0). */
  RSVD_W0: 0x0000_f1c0,
  RSVD_W1: 0xfff0_0000,
} as const;

/** PASID-based device-TLB invalidation descriptor (type 8) fields. */
export const PasidDevIotlbFields = {
  /** Source ID bits 31:16. */
  SID_SHIFT: 16,
  /** Dword 2: global (all PASIDs) bit 0, size bit 11. */
  G: 1 << 0,
  S: 1 << 11,
  /** Reserved: qw0 0xfff000000000f000, qw1 0x7fe (QEMU VTD_INV_DESC_PASID_DEVICE_IOTLB_RSVD_VAL0/1). */
  RSVD_W0: 0x0000_f000,
  RSVD_W1: 0xfff0_0000,
  RSVD_W2: 0x0000_07fe,
} as const;

/** Page-group response descriptor (type 9) fields. */
export const PageGroupFields = {
  /** PASID present, bit 4. */
  PP: 1 << 4,
  /** Response code bits 15:12. */
  RC_SHIFT: 12,
  RC_MASK: 0xf,
  /** Requester ID bits 31:16. */
  RID_SHIFT: 16,
  /** Dword 2: page request group index bits 11:3. */
  PRGI_SHIFT: 3,
  PRGI_MASK: 0x1ff,
  /** Reserved: qw0 0xfff00000000001e0, qw1 0xfffffffffffff003 (QEMU VTD_INV_DESC_PGRESP_RSVD_LO/HI). */
  RSVD_W0: 0x0000_01e0,
  RSVD_W1: 0xfff0_0000,
  RSVD_W2: 0xffff_f003,
  RSVD_W3: 0xffff_ffff,
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
  /** IOTLB / PASID-IOTLB page-selective AM above CAP.MAMV. */
  AddressMask: 'address-mask',
  /** Wait descriptor with none of SW, IF, FN. */
  WaitNoAction: 'wait-no-action',
  /** Page-group response without a PASID (PP = 0): QEMU 11.1 refuses it. */
  NoPasid: 'no-pasid',
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

/** PASID-based IOTLB invalidation (type 6): G=2 all of (DID, PASID), G=3 page-selective. */
export interface PasidIotlbDesc {
  readonly type: typeof DescType.PasidIotlb;
  readonly granularity: 'pasid' | 'page';
  readonly did: number;
  readonly pasid: number;
  /** Page address (page-selective only; 0 otherwise). */
  readonly addr: number;
  readonly am: number;
  readonly ih: boolean;
}

/** PASID-cache invalidation (type 7): G=0 domain, G=1 PASID, G=3 global. */
export interface PasidCacheDesc {
  readonly type: typeof DescType.PasidCache;
  readonly granularity: 'domain' | 'pasid' | 'global';
  readonly did: number;
  readonly pasid: number;
}

/** PASID-based device-TLB invalidation (type 8). */
export interface PasidDeviceIotlbDesc {
  readonly type: typeof DescType.PasidDeviceIotlb;
  readonly sid: number;
  readonly pasid: number;
  /** G: every PASID of the device, not only `pasid`. */
  readonly global: boolean;
  readonly addr: number;
  /** S bit: the range size is encoded in the low address bits (ATS). */
  readonly sizeBit: boolean;
}

/** Page-group response (type 9); PP is always set in an accepted one. */
export interface PageGroupResponseDesc {
  readonly type: typeof DescType.PageGroupResponse;
  readonly rid: number;
  readonly pasid: number;
  /** Response code, bits 15:12 (0 success, 1 invalid request, 0xF failure). */
  readonly code: number;
  readonly prgi: number;
}

/** A decoded descriptor. */
export type InvDescriptor =
  | ContextCacheDesc
  | IotlbDesc
  | DeviceIotlbDesc
  | IecDesc
  | WaitDesc
  | PasidIotlbDesc
  | PasidCacheDesc
  | PasidDeviceIotlbDesc
  | PageGroupResponseDesc;

/** Result of decoding: a descriptor, or why it was refused (with the raw type). */
export type DecodeResult =
  | { readonly ok: true; readonly desc: InvDescriptor }
  | { readonly ok: false; readonly error: DescErrorKind; readonly type: number };

/** Unit capabilities and queue state that change validation. */
export interface DecodeOptions {
  /** CAP.MAMV: largest IOTLB / PASID-IOTLB page-selective address mask. */
  readonly mamv: number;
  /** The queue holds 256-bit descriptors (IQA.DW honoured: ECAP.SMTS). Default false. */
  readonly wide?: boolean;
  /** ECAP.PDS: the wait descriptor's PD bit is defined (svm=on). Default false. */
  readonly pds?: boolean;
}

const CC_GRANULARITY = [null, 'global', 'domain', 'device'] as const;
const IOTLB_GRANULARITY = [null, 'global', 'domain', 'page'] as const;
/** PASID-IOTLB G: 0 and 1 are reserved (QEMU 11.1: IQE). */
const PIOTLB_GRANULARITY = [null, null, 'pasid', 'page'] as const;
/** PASID-cache G: 2 is reserved (QEMU 11.1: IQE). */
const PASID_CACHE_GRANULARITY = ['domain', 'pasid', null, 'global'] as const;

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

function accept(desc: InvDescriptor): DecodeResult {
  return { ok: true, desc };
}

/** True when a 256-bit type arrives in a 128-bit queue. */
function isWideType(type: number): boolean {
  return type >= DescType.PasidIotlb && type <= DescType.PageGroupResponse;
}

/**
 * Decodes and validates one descriptor given as four dwords (the first 128
 * bits).  `upperNonZero` tells whether qwords 2-3 of a 256-bit descriptor
 * hold any set bit (ignored in a 128-bit queue).  Validation order follows
 * QEMU 11.1: type, width, reserved bits, then field values.
 */
export function decodeDescriptor(
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  opts: DecodeOptions,
  upperNonZero = false,
): DecodeResult {
  const type = descriptorType(w0);
  const wide = opts.wide === true;
  if (!wide && isWideType(type)) return refuse(DescError.WideType, type);
  // Types 1-8 need a zero upper half in a 256-bit queue; the page-group response (9) ignores it.
  if (wide && upperNonZero && type >= DescType.ContextCache && type <= DescType.PasidDeviceIotlb) {
    return refuse(DescError.Reserved, type);
  }
  switch (type) {
    case DescType.ContextCache:
      return contextCache(w0, w1, w2, w3);
    case DescType.Iotlb:
      return iotlb(w0, w1, w2, w3, opts.mamv);
    case DescType.DeviceIotlb:
      return deviceIotlb(w0, w1, w2, w3);
    case DescType.Iec:
      return iec(w0, w1, w2, w3);
    case DescType.Wait:
      return wait(w0, w1, w2, w3, opts.pds === true);
    case DescType.PasidIotlb:
      return pasidIotlb(w0, w1, w2, w3, opts.mamv);
    case DescType.PasidCache:
      return pasidCache(w0, w1, w2, w3);
    case DescType.PasidDeviceIotlb:
      return pasidDeviceIotlb(w0, w1, w2, w3);
    case DescType.PageGroupResponse:
      return pageGroupResponse(w0, w1, w2, w3);
    default:
      return refuse(DescError.UnknownType, type);
  }
}

function contextCache(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.ContextCache;
  if ((w0 & CcFields.RSVD_W0) !== 0 || (w1 & CcFields.RSVD_W1) !== 0 || (w2 | w3) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  const granularity = CC_GRANULARITY[(w0 >>> DescBits.G_SHIFT) & DescBits.G_MASK];
  if (!granularity) return refuse(DescError.Granularity, type);
  return accept({
    type,
    granularity,
    did: (w0 >>> DescBits.DID_SHIFT) & DescBits.U16,
    sid: w1 & DescBits.U16,
    fm: (w1 >>> CcFields.FM_SHIFT) & CcFields.FM_MASK,
  });
}

function iotlb(w0: number, w1: number, w2: number, w3: number, mamv: number): DecodeResult {
  const type = DescType.Iotlb;
  if ((w0 & IotlbFields.RSVD_W0) !== 0 || (w1 & IotlbFields.RSVD_W1) !== 0 || (w2 & IotlbFields.RSVD_W2) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  const granularity = IOTLB_GRANULARITY[(w0 >>> DescBits.G_SHIFT) & DescBits.G_MASK];
  if (!granularity) return refuse(DescError.Granularity, type);
  const am = w2 & IotlbFields.AM_MASK;
  if (granularity === 'page' && am > mamv) return refuse(DescError.AddressMask, type);
  return accept({
    type,
    granularity,
    did: (w0 >>> DescBits.DID_SHIFT) & DescBits.U16,
    addr: pageAddress(w2, w3),
    am,
    ih: (w2 & IotlbFields.IH) !== 0,
    drainReads: (w0 & IotlbFields.DR) !== 0,
    drainWrites: (w0 & IotlbFields.DW) !== 0,
  });
}

function deviceIotlb(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.DeviceIotlb;
  if ((w0 & DevIotlbFields.RSVD_W0) !== 0 || (w1 & DevIotlbFields.RSVD_W1) !== 0 || (w2 & DevIotlbFields.RSVD_W2) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  return accept({
    type,
    sid: w1 & DescBits.U16,
    qdep: (w0 >>> DevIotlbFields.QDEP_SHIFT) & DevIotlbFields.QDEP_MASK,
    addr: pageAddress(w2, w3),
    sizeBit: (w2 & DevIotlbFields.S) !== 0,
  });
}

function iec(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.Iec;
  if ((w0 & IecFields.RSVD_W0) !== 0 || (w1 & IecFields.RSVD_W1) !== 0 || (w2 | w3) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  return accept({
    type,
    global: (w0 & IecFields.G_INDEX) === 0,
    index: w1 & DescBits.U16,
    indexMask: (w0 >>> IecFields.IM_SHIFT) & IecFields.IM_MASK,
  });
}

function wait(w0: number, w1: number, w2: number, w3: number, pds: boolean): DecodeResult {
  const type = DescType.Wait;
  const reserved = pds ? WaitFields.RSVD_W0 & ~WaitFields.PD : WaitFields.RSVD_W0;
  if ((w0 & reserved) !== 0 || (w2 & WaitFields.RSVD_W2) !== 0) return refuse(DescError.Reserved, type);
  const statusWrite = (w0 & WaitFields.SW) !== 0;
  const interrupt = (w0 & WaitFields.IF) !== 0;
  const fence = (w0 & WaitFields.FN) !== 0;
  if (!statusWrite && !interrupt && !fence) return refuse(DescError.WaitNoAction, type);
  return accept({ type, statusWrite, interrupt, fence, statusData: w1 >>> 0, statusAddr: (w3 >>> 0) * TWO_POW_32 + (w2 >>> 0) });
}

function pasidIotlb(w0: number, w1: number, w2: number, w3: number, mamv: number): DecodeResult {
  const type = DescType.PasidIotlb;
  if ((w0 & PiotlbFields.RSVD_W0) !== 0 || (w1 & PiotlbFields.RSVD_W1) !== 0 || (w2 & PiotlbFields.RSVD_W2) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  const granularity = PIOTLB_GRANULARITY[(w0 >>> DescBits.G_SHIFT) & DescBits.G_MASK];
  if (!granularity) return refuse(DescError.Granularity, type);
  const page = granularity === 'page';
  const am = page ? w2 & PiotlbFields.AM_MASK : 0;
  if (am > mamv) return refuse(DescError.AddressMask, type);
  return accept({
    type,
    granularity,
    did: (w0 >>> DescBits.DID_SHIFT) & DescBits.U16,
    pasid: w1 & PasidFields.PASID_MASK,
    addr: page ? pageAddress(w2, w3) : 0,
    am,
    ih: page && (w2 & PiotlbFields.IH) !== 0,
  });
}

function pasidCache(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.PasidCache;
  if ((w0 & PasidCacheFields.RSVD_W0) !== 0 || (w1 & PasidCacheFields.RSVD_W1) !== 0 || (w2 | w3) !== 0) {
    return refuse(DescError.Reserved, type);
  }
  const granularity = PASID_CACHE_GRANULARITY[(w0 >>> DescBits.G_SHIFT) & DescBits.G_MASK];
  if (!granularity) return refuse(DescError.Granularity, type);
  return accept({
    type,
    granularity,
    did: (w0 >>> DescBits.DID_SHIFT) & DescBits.U16,
    pasid: w1 & PasidFields.PASID_MASK,
  });
}

function pasidDeviceIotlb(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.PasidDeviceIotlb;
  if (
    (w0 & PasidDevIotlbFields.RSVD_W0) !== 0 ||
    (w1 & PasidDevIotlbFields.RSVD_W1) !== 0 ||
    (w2 & PasidDevIotlbFields.RSVD_W2) !== 0
  ) {
    return refuse(DescError.Reserved, type);
  }
  return accept({
    type,
    sid: (w0 >>> PasidDevIotlbFields.SID_SHIFT) & DescBits.U16,
    pasid: w1 & PasidFields.PASID_MASK,
    global: (w2 & PasidDevIotlbFields.G) !== 0,
    addr: pageAddress(w2, w3),
    sizeBit: (w2 & PasidDevIotlbFields.S) !== 0,
  });
}

function pageGroupResponse(w0: number, w1: number, w2: number, w3: number): DecodeResult {
  const type = DescType.PageGroupResponse;
  if (
    (w0 & PageGroupFields.RSVD_W0) !== 0 ||
    (w1 & PageGroupFields.RSVD_W1) !== 0 ||
    (w2 & PageGroupFields.RSVD_W2) !== 0 ||
    (w3 & PageGroupFields.RSVD_W3) !== 0
  ) {
    return refuse(DescError.Reserved, type);
  }
  if ((w0 & PageGroupFields.PP) === 0) return refuse(DescError.NoPasid, type);
  return accept({
    type,
    rid: (w0 >>> PageGroupFields.RID_SHIFT) & DescBits.U16,
    pasid: w1 & PasidFields.PASID_MASK,
    code: (w0 >>> PageGroupFields.RC_SHIFT) & PageGroupFields.RC_MASK,
    prgi: (w2 >>> PageGroupFields.PRGI_SHIFT) & PageGroupFields.PRGI_MASK,
  });
}
