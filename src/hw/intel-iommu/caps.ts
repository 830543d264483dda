/**
 * CAP and ECAP register values from the configuration (VT-d spec 11.4.2,
 * 11.4.3), as QEMU 11.1's vtd_cap_init computes them.  Computed once at
 * realize, so bigints are fine here.
 *
 * Beyond QEMU, each off by default: CAP.PI (x-pi), CAP.FS5LP (x-fs5lp, with
 * fsts), ECAP.NEST with ECAP.SSTS (x-nested, with fsts) and ECAP.SMPWC
 * (x-smpwc), all validated in props.ts.
 */
import type { IommuConfig } from './props.js';

/** CAP fields (spec 11.4.2). */
export const Cap = {
  /** Number of domains supported, bits 2:0 (6 = 2^16 domains). */
  ND: 6n,
  /** Caching mode, bit 7. */
  CM: 1n << 7n,
  SAGAW_SHIFT: 8n,
  /** SAGAW bit for 3-level (39-bit) tables. */
  SAGAW_39: 0x2n,
  /** SAGAW bit for 4-level (48-bit) tables. */
  SAGAW_48: 0x4n,
  /** SAGAW bit for 5-level (57-bit) tables. */
  SAGAW_57: 0x8n,
  MGAW_SHIFT: 16n,
  /** Fault-recording register offset in 16-byte units, bits 33:24. */
  FRO_SHIFT: 24n,
  FRO: 0x22n,
  /** Second-level large page support: 2 MiB (bit 34) and 1 GiB (bit 35). */
  SLLPS_2M: 1n << 34n,
  SLLPS_1G: 1n << 35n,
  /** Page-selective invalidation, bit 39. */
  PSI: 1n << 39n,
  /** Number of fault-recording registers - 1, bits 47:40. */
  NFR_SHIFT: 40n,
  /** Maximum address mask value, bits 53:48. */
  MAMV_SHIFT: 48n,
  MAMV: 18n,
  /** Write draining, bit 54. */
  DWD: 1n << 54n,
  /** Read draining, bit 55. */
  DRD: 1n << 55n,
  /** First-stage 1 GiB pages, bit 56. */
  FS1GP: 1n << 56n,
  /** Posted interrupts, bit 59 (posted-interrupts.ts, beyond QEMU). */
  PI: 1n << 59n,
  /** First-stage 5-level paging, bit 60 (vtemu's x-fs5lp, beyond QEMU). */
  FS5LP: 1n << 60n,
  /** Enhanced set root table pointer support (SRTP flushes caches), bit 63. */
  ESRTPS: 1n << 63n,
} as const;

/** ECAP fields (spec 11.4.3). */
export const Ecap = {
  /** Queued invalidation, bit 1. */
  QI: 1n << 1n,
  /** Device-TLB, bit 2. */
  DT: 1n << 2n,
  /** Interrupt remapping, bit 3. */
  IR: 1n << 3n,
  /** Extended interrupt mode, bit 4. */
  EIM: 1n << 4n,
  /** Pass-through, bit 6. */
  PT: 1n << 6n,
  /** Snoop control, bit 7. */
  SC: 1n << 7n,
  /** IOTLB register offset in 16-byte units, bits 17:8 (0xF: IVA at 0xF0). */
  IRO_SHIFT: 8n,
  IRO: 0xfn,
  /** Maximum handle mask value, bits 23:20. */
  MHMV_SHIFT: 20n,
  MHMV: 0xfn,
  /** Nested translation, bit 26 (vtemu's x-nested, beyond QEMU). */
  NEST: 1n << 26n,
  /** Page requests, bit 29. */
  PRS: 1n << 29n,
  /** Supervisor requests, bit 31. */
  SRS: 1n << 31n,
  /** No write flag support, bit 33. */
  NWFS: 1n << 33n,
  /** PASID size supported, bits 39:35 (PASID width - 1). */
  PSS_SHIFT: 35n,
  /** PSS for the 8-bit PASIDs of the deprecated x-pasid-mode=on. */
  PSS: 7n,
  /** PASID support, bit 40. */
  PASID: 1n << 40n,
  /** Page-request drain, bit 42. */
  PDS: 1n << 42n,
  /** Scalable mode translation, bit 43. */
  SMTS: 1n << 43n,
  /** Second-stage translation, bit 46. */
  SSTS: 1n << 46n,
  /** First-stage translation, bit 47. */
  FSTS: 1n << 47n,
  /** Scalable-mode page-walk coherency, bit 48 (vtemu's x-smpwc, beyond QEMU). */
  SMPWC: 1n << 48n,
} as const;

/** CAP.PI: posted interrupts (x-pi) are offered, which needs interrupt remapping. */
export function postedInterrupts(cfg: IommuConfig): boolean {
  return cfg.intremap && cfg.raw['x-pi'] === true;
}

/** Supported adjusted guest address widths (SAGAW) for a host address width. */
export function sagawFor(cfg: IommuConfig): bigint {
  if (!cfg.dmaTranslation) return 0n;
  let s = Cap.SAGAW_39;
  if (cfg.awBits >= 48) s |= Cap.SAGAW_48;
  if (cfg.awBits >= 57) s |= Cap.SAGAW_57;
  return s;
}

/** The CAP register value. */
export function capValue(cfg: IommuConfig): bigint {
  let cap =
    Cap.ND |
    (sagawFor(cfg) << Cap.SAGAW_SHIFT) |
    (BigInt(cfg.awBits - 1) << Cap.MGAW_SHIFT) |
    (Cap.FRO << Cap.FRO_SHIFT) |
    Cap.SLLPS_2M |
    Cap.SLLPS_1G |
    Cap.PSI |
    (BigInt(cfg.nfr - 1) << Cap.NFR_SHIFT) |
    (Cap.MAMV << Cap.MAMV_SHIFT) |
    Cap.ESRTPS;
  // QEMU 11.1 always sets DRD/DWD (dma-drain=off is a deprecated vtemu extension).
  if (cfg.dmaDrain) cap |= Cap.DWD | Cap.DRD;
  if (cfg.cachingMode) cap |= Cap.CM;
  if (cfg.fsts && cfg.fs1gp) cap |= Cap.FS1GP;
  if (cfg.fsts && cfg.fs5lp) cap |= Cap.FS5LP;
  if (postedInterrupts(cfg)) cap |= Cap.PI;
  return cap;
}

/** The ECAP register value. */
export function ecapValue(cfg: IommuConfig): bigint {
  let ecap = Ecap.QI | (Ecap.IRO << Ecap.IRO_SHIFT);
  if (cfg.intremap) {
    ecap |= Ecap.IR | (Ecap.MHMV << Ecap.MHMV_SHIFT);
    if (cfg.eim) ecap |= Ecap.EIM;
  }
  if (cfg.deviceIotlb) ecap |= Ecap.DT;
  // QEMU 11.1 always sets PT (pt=off is a deprecated vtemu extension).
  if (cfg.pt) ecap |= Ecap.PT;
  if (cfg.snoopControl) ecap |= Ecap.SC;
  if (cfg.scalableMode) {
    ecap |= Ecap.SMTS;
    ecap |= cfg.fsts ? Ecap.FSTS : Ecap.SRS | Ecap.SSTS;
    // A nested translation walks both stages, so x-nested offers the second
    // stage next to fsts's first (a guest such as Linux allocates the nest
    // parent as a second-stage domain and checks SSTS for it).
    if (cfg.nested) ecap |= Ecap.NEST | Ecap.SSTS;
    if (cfg.smpwc) ecap |= Ecap.SMPWC;
  }
  if (cfg.pasidBits > 0) ecap |= Ecap.PASID | (BigInt(cfg.pasidBits - 1) << Ecap.PSS_SHIFT);
  if (cfg.svm) ecap |= Ecap.PRS | Ecap.PDS | Ecap.NWFS;
  return ecap;
}

/** Maximum value of the IOTLB address mask (CAP.MAMV). */
export const MAMV = Number(Cap.MAMV);
