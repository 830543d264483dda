/**
 * Register offsets and bit fields of the VT-d remapping hardware unit
 * (Intel VT-d spec rev 4, chapter 11 "Register Descriptions").  Values are
 * offsets into the 4 KiB register page at 0xFED90000 (QEMU's q35 base).
 *
 * Only names and numbers live here; masks and reset values are in
 * registers.ts, behaviour elsewhere.
 */

/** Register offsets (spec 11.4). */
export const Reg = {
  /** Version (11.4.1). */
  VER: 0x00,
  /** Capability, 64-bit (11.4.2). */
  CAP: 0x08,
  /** Extended capability, 64-bit (11.4.3). */
  ECAP: 0x10,
  /** Global command, 32-bit write-only (11.4.4.1). */
  GCMD: 0x18,
  /** Global status (11.4.4.2). */
  GSTS: 0x1c,
  /** Root table address, 64-bit (11.4.5). */
  RTADDR: 0x20,
  /** Context command, 64-bit (11.4.6.1). */
  CCMD: 0x28,
  /** High half of CCMD: a write here triggers the command. */
  CCMD_HI: 0x2c,
  /** Fault status (11.4.7.1). */
  FSTS: 0x34,
  /** Fault event control (11.4.7.2). */
  FECTL: 0x38,
  /** Fault event data. */
  FEDATA: 0x3c,
  /** Fault event address. */
  FEADDR: 0x40,
  /** Fault event upper address. */
  FEUADDR: 0x44,
  /** Advanced fault log (unused). */
  AFLOG: 0x58,
  /** Protected memory enable. */
  PMEN: 0x64,
  /** Invalidation queue head, 64-bit (11.4.9.1). */
  IQH: 0x80,
  /** Invalidation queue tail, 64-bit. */
  IQT: 0x88,
  /** Invalidation queue address, 64-bit. */
  IQA: 0x90,
  /** Invalidation completion status. */
  ICS: 0x9c,
  /** Invalidation event control. */
  IECTL: 0xa0,
  /** Invalidation event data. */
  IEDATA: 0xa4,
  /** Invalidation event address. */
  IEADDR: 0xa8,
  /** Invalidation event upper address. */
  IEUADDR: 0xac,
  /** Invalidation queue error record, 64-bit (11.4.9.9). */
  IQER: 0xb0,
  /** Interrupt remapping table address, 64-bit (11.4.10.1). */
  IRTA: 0xb8,
  /** Page request queue head, 64-bit (11.4.11.1); only with ECAP.PRS (svm=on). */
  PQH: 0xc0,
  /** Page request queue tail, 64-bit (11.4.11.2). */
  PQT: 0xc8,
  /** Page request queue address, 64-bit (11.4.11.3). */
  PQA: 0xd0,
  /** Page request status (11.4.11.4). */
  PRS: 0xdc,
  /** Page request event control (11.4.11.5). */
  PECTL: 0xe0,
  /** Page request event data (11.4.11.6). */
  PEDATA: 0xe4,
  /** Page request event address (11.4.11.7). */
  PEADDR: 0xe8,
  /** Page request event upper address (11.4.11.8). */
  PEUADDR: 0xec,
  /** Invalidate address (IOTLB PSI), 64-bit write-only; at ECAP.IRO*16 (11.4.8.2). */
  IVA: 0xf0,
  /** IOTLB invalidate, 64-bit; IVA + 8 (11.4.8.1). */
  IOTLB: 0xf8,
  /** High half of IOTLB: a write here triggers the command. */
  IOTLB_HI: 0xfc,
  /** First fault recording register (CAP.FRO * 16). */
  FRCD0: 0x220,
} as const;

/** Size of QEMU's register file with one fault record. */
export const REG_FILE_SIZE = 0x230;
/** Size in bytes of one fault recording register. */
export const FRCD_SIZE = 16;
/** The unit's MMIO window (one 4 KiB page). */
export const MMIO_SIZE = 0x1000;
/** QEMU's q35 base address of the unit. */
export const DMAR_BASE = 0xfed9_0000;
/** VER register value: major 1, minor 0. */
export const VER_VALUE = 0x10;

/** GCMD / GSTS bits (11.4.4): command bit N reports in status bit N. */
export const Gcmd = {
  /** Compatibility format interrupts. */
  CFI: 1 << 23,
  /** Set interrupt remap table pointer (one-shot). */
  SIRTP: 1 << 24,
  /** Interrupt remapping enable. */
  IRE: 1 << 25,
  /** Queued invalidation enable. */
  QIE: 1 << 26,
  /** Write buffer flush (one-shot, ignored). */
  WBF: 1 << 27,
  /** Enable advanced fault logging (ignored). */
  EAFL: 1 << 28,
  /** Set fault log (ignored). */
  SFL: 1 << 29,
  /** Set root table pointer (one-shot). */
  SRTP: 1 << 30,
  /** Translation enable. */
  TE: 1 << 31,
} as const;

/** GSTS status bits (same positions as GCMD). */
export const Gsts = {
  CFIS: 1 << 23,
  IRTPS: 1 << 24,
  IRES: 1 << 25,
  QIES: 1 << 26,
  WBFS: 1 << 27,
  AFLS: 1 << 28,
  FLS: 1 << 29,
  RTPS: 1 << 30,
  TES: 1 << 31,
} as const;

/** FSTS bits (11.4.7.1). */
export const Fsts = {
  /** Primary fault overflow (W1C). */
  PFO: 1 << 0,
  /** Primary pending fault (derived from the FRCD F bits). */
  PPF: 1 << 1,
  /** Advanced fault overflow. */
  AFO: 1 << 2,
  /** Advanced pending fault. */
  APF: 1 << 3,
  /** Invalidation queue error (W1C). */
  IQE: 1 << 4,
  /** Invalidation completion error. */
  ICE: 1 << 5,
  /** Invalidation time-out error. */
  ITE: 1 << 6,
  /** Page request overflow. */
  PRO: 1 << 7,
  /** Fault record index, bits 15:8. */
  FRI_SHIFT: 8,
  FRI_MASK: 0xff << 8,
} as const;

/** FECTL / IECTL bits (11.4.7.2, 11.4.9.4). */
export const EventCtl = {
  /** Interrupt mask. */
  IM: 1 << 31,
  /** Interrupt pending. */
  IP: 1 << 30,
} as const;

/** ICS bits. */
export const Ics = {
  /** Invalidation wait descriptor complete (W1C). */
  IWC: 1 << 0,
} as const;

/** RTADDR low-half bits. */
export const Rtaddr = {
  /** Translation table mode: scalable (bits 11:10 = 01). */
  SMT: 1 << 10,
} as const;

/** CCMD fields, in the high 32 bits (bit N here = CCMD bit N+32). */
export const CcmdHi = {
  /** Invalidate context cache (bit 63). */
  ICC: 1 << 31,
  /** Context invalidation request granularity, bits 62:61. */
  CIRG_SHIFT: 29,
  /** Context actual invalidation granularity, bits 60:59. */
  CAIG_SHIFT: 27,
  GRANULARITY_MASK: 3,
  /** Function mask, bits 33:32. */
  FM_MASK: 3,
} as const;

/** CCMD fields in the low 32 bits. */
export const CcmdLo = {
  DID_MASK: 0xffff,
  SID_SHIFT: 16,
} as const;

/** Context-cache granularities (CIRG / CAIG / QI G). */
export const CtxGranularity = {
  Global: 1,
  Domain: 2,
  Device: 3,
} as const;

/** IOTLB register fields, in its high 32 bits (bit N = IOTLB bit N+32). */
export const IotlbHi = {
  /** Invalidate IOTLB (bit 63). */
  IVT: 1 << 31,
  /** IOTLB invalidation request granularity, bits 61:60. */
  IIRG_SHIFT: 28,
  /** IOTLB actual invalidation granularity, bits 58:57. */
  IAIG_SHIFT: 25,
  GRANULARITY_MASK: 3,
  /** Drain reads (bit 49). */
  DR: 1 << 17,
  /** Drain writes (bit 48). */
  DW: 1 << 16,
  /** Domain ID, bits 47:32. */
  DID_MASK: 0xffff,
} as const;

/** IOTLB granularities (IIRG / IAIG / QI G). */
export const IotlbGranularity = {
  Global: 1,
  Domain: 2,
  Page: 3,
} as const;

/** IVA low-half fields. */
export const Iva = {
  /** Address mask, bits 5:0. */
  AM_MASK: 0x3f,
  /** Invalidation hint, bit 6. */
  IH: 1 << 6,
} as const;

/** FRCD high-qword fields, as offsets inside the record's two high dwords. */
export const Frcd = {
  /** Dword +8: source ID 15:0. */
  SID_MASK: 0xffff,
  /** Dword +8: PASID present, bit 31 (record bit 95). */
  PP: 1 << 31,
  /** Dword +12: fault reason bits 7:0 (record bits 103:96). */
  FR_MASK: 0xff,
  /** Dword +12: PASID value bits 27:8 (record bits 123:104). */
  PV_SHIFT: 8,
  PV_MASK: 0xfffff,
  /** Dword +12: type bit 30 (record bit 126): 1 = read. */
  T: 1 << 30,
  /** Dword +12: fault bit 31 (record bit 127), W1C. */
  F: 1 << 31,
  /** Low qword bits 63:48: IR fault index (in the low qword's high dword: 31:16). */
  FI_SHIFT: 16,
} as const;

/** PRS bits (11.4.11.4), both write-1-to-clear. */
export const Prs = {
  /** Pending page request. */
  PPR: 1 << 0,
  /** Page request overflow. */
  PRO: 1 << 1,
} as const;

/** PQH / PQT: the queue index in bits 18:5 (32-byte descriptors). */
export const PQ_INDEX_MASK = 0x7_ffe0;

/** PQA fields (low half). */
export const Pqa = {
  /** Queue size, bits 2:0 (2^PQS pages). */
  PQS_MASK: 0x7,
} as const;

/** IQA fields (low half). */
export const Iqa = {
  /** Queue size, bits 2:0 (2^QS pages). */
  QS_MASK: 0x7,
  /** Descriptor width 256-bit, bit 11. */
  DW: 1 << 11,
} as const;

/** IRTA fields (low half). */
export const Irta = {
  /** Size, bits 3:0 (2^(S+1) entries). */
  S_MASK: 0xf,
  /** Extended interrupt mode enable, bit 11. */
  EIME: 1 << 11,
} as const;
