/**
 * VT-d register offsets and bits as a driver uses them (VT-d spec 3.x
 * chapter 11; Linux include/linux/intel-iommu.h facts).
 */

/** Register offsets from the unit's base. */
export const Reg = {
  VER: 0x00,
  CAP: 0x08,
  ECAP: 0x10,
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  FEDATA: 0x3c,
  FEADDR: 0x40,
  FEUADDR: 0x44,
  PMEN: 0x64,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  ICS: 0x9c,
  IECTL: 0xa0,
  IQER: 0xb0,
  IRTA: 0xb8,
} as const;

/** GCMD / GSTS bits (same positions; status names in comments). */
export const Gcmd = {
  TE: 1 << 31, // TES
  SRTP: 1 << 30, // RTPS
  SFL: 1 << 29,
  EAFL: 1 << 28,
  WBF: 1 << 27, // WBFS
  QIE: 1 << 26, // QIES
  IRE: 1 << 25, // IRES
  SIRTP: 1 << 24, // IRTPS
  CFI: 1 << 23, // CFIS
} as const;

/** GCMD bits that are commands, not state: never kept in the shadow. */
export const GCMD_ONE_SHOT = Gcmd.SRTP | Gcmd.SFL | Gcmd.WBF | Gcmd.SIRTP;

/** CAP fields: [shift, width]. */
export const Cap = {
  ND: [0, 3], AFL: [3, 1], RWBF: [4, 1], PLMR: [5, 1], PHMR: [6, 1], CM: [7, 1], SAGAW: [8, 5], MGAW: [16, 6],
  ZLR: [22, 1], FRO: [24, 10], SLLPS: [34, 4], PSI: [39, 1], NFR: [40, 8], MAMV: [48, 6], DWD: [54, 1], DRD: [55, 1],
  FL1GP: [56, 1], PI: [59, 1], FL5LP: [60, 1], ESIRTPS: [62, 1], ESRTPS: [63, 1],
} as const satisfies Record<string, readonly [number, number]>;

/** ECAP fields: [shift, width]. */
export const Ecap = {
  C: [0, 1], QI: [1, 1], DT: [2, 1], IR: [3, 1], EIM: [4, 1], PT: [6, 1], SC: [7, 1], IRO: [8, 10], MHMV: [20, 4],
  NEST: [26, 1], PRS: [29, 1], SRS: [31, 1], PSS: [35, 5], PASID: [40, 1], PDS: [42, 1], SMTS: [43, 1], SLTS: [46, 1], FLTS: [47, 1],
  SMPWC: [48, 1],
} as const satisfies Record<string, readonly [number, number]>;

/** Extracts a [shift, width] field of a 64-bit register as a number. */
export function field(value: bigint, [shift, width]: readonly [number, number]): number {
  return Number((value >> BigInt(shift)) & ((1n << BigInt(width)) - 1n));
}

/** CCMD bits (64-bit register). */
export const Ccmd = {
  ICC: 1n << 63n,
  CIRG_SHIFT: 61n,
  GLOBAL: 1n,
  DOMAIN: 2n,
  DEVICE: 3n,
  SID_SHIFT: 16n,
  FM_SHIFT: 32n,
  CAIG_SHIFT: 59n,
} as const;

/** IOTLB register (at ECAP.IRO*16 + 8) and IVA (at +0). */
export const Iotlb = {
  IVT: 1n << 63n,
  IIRG_SHIFT: 60n,
  GLOBAL: 1n,
  DOMAIN: 2n,
  PAGE: 3n,
  IAIG_SHIFT: 57n,
  IAIG_MASK: 3n,
  DR: 1n << 49n,
  DW: 1n << 48n,
  DID_SHIFT: 32n,
  IVA_IH: 1n << 6n,
} as const;

/** FSTS bits. */
export const Fsts = { PFO: 1 << 0, PPF: 1 << 1, IQE: 1 << 4, ICE: 1 << 5, ITE: 1 << 6, PRO: 1 << 7, FRI_SHIFT: 8, FRI_MASK: 0xff } as const;
/** FECTL / IECTL bits. */
export const Fectl = { IM: 1 << 31, IP: 1 << 30 } as const;
/** PMEN bits. */
export const Pmen = { EPM: 1 << 31, PRS: 1 << 0 } as const;
/** IQA fields. */
export const Iqa = { DW: 1n << 11n, QS_MASK: 7n } as const;
/** IRTA fields. */
export const Irta = { EIME: 1n << 11n, S_MASK: 0xfn } as const;
/** RTADDR scalable-mode bit. */
export const RTADDR_SMT = 1n << 10n;

/** Fault recording register layout (16 bytes each at FRO*16). */
export const Frcd = {
  SIZE: 16,
  /** dword at +12. */
  F: 1 << 31,
  T: 1 << 30,
  FR_MASK: 0xff,
  PASID_SHIFT: 8,
  /** dword at +8. */
  SID_MASK: 0xffff,
  PP: 1 << 31,
} as const;

/** Polls of a status register before declaring the hardware dead (Linux: 10 s of spinning). */
export const POLL_LIMIT = 10_000;
