/**
 * Scalable-mode root, context, PASID-directory and PASID-table entries
 * (VT-d spec 9.2, 9.4, 9.5, 9.6): fetch from guest memory and validation with
 * QEMU 11.1's fault reasons and order (vtd_dev_to_context_entry in scalable
 * mode, vtd_ce_pasid_0_check, vtd_get_pe_from_pasid_table,
 * vtd_get_pe_in_pasid_leaf_table, vtd_pe_type_check, vtd_ce_get_pasid_fpd).
 * Entries are kept as 32-bit halves; nothing here allocates.
 *
 *   root entry (16 bytes, indexed by bus)
 *     lo  bit 0 LP, bits 11:1 reserved, bits 63:12 lower context table (devfn 0x00-0x7f)
 *     hi  bit 0 UP, bits 11:1 reserved, bits 63:12 upper context table (devfn 0x80-0xff)
 *         (bits >= HAW reserved in both halves)
 *   context entry (32 bytes, indexed by devfn & 0x7f)
 *     val0  bit 0 P, bit 1 FPD, bits 3:2 DTE/PASIDE (accepted), bit 4 PRE, bits 8:5 reserved,
 *           bits 11:9 PDTS (ignored), bits 63:12 PASID directory (bits >= HAW reserved)
 *     val1  bits 19:0 RID_PASID, bit 20 RID_PRIV (both accepted and ignored), bits 63:21 reserved
 *     val2, val3  reserved
 *   PASID directory entry (8 bytes, indexed by (pasid >> 6) & 0x3fff)
 *     bit 0 P, bit 1 FPD, bits 63:12 PASID table
 *   PASID table entry (64 bytes, indexed by pasid & 0x3f; no reserved-bit checks)
 *     qword 0  bit 0 P, bit 1 FPD, bits 4:2 AW, bits 8:6 PGTT, bits 63:12 second-stage table
 *     qword 1  bits 15:0 DID
 *     qword 2  bit 0 SRE, bits 3:2 FSPM, bit 4 WPE, bit 7 EAFE, bits 63:12 first-stage table
 *
 * Two stages, as QEMU splits them so that a translator can cache the first:
 *   - lookupScalableContext: root and context entry, then PASID 0's entry
 *     must resolve (QEMU validates it on every context fetch; its fault is the
 *     fetch's fault).  Cacheable per requester like QEMU's context cache.
 *   - resolvePasid: the request's PASID directory and table entry, re-read on
 *     every IOTLB miss (QEMU caches no PASID entries on this path), giving a
 *     PasidConfig or a fault.
 * resolveScalable does both (the uncached path).  Requests without a PASID use
 * PASID 0: RID_PASID is ignored, as in QEMU (ECAP.RPS is 0).
 *
 * FPD (which Fault Processing Disable bits apply to which fault, as QEMU's
 * vtd_do_iommu_translate computes is_fpd_set):
 *   0x08 root unreadable, 0x01, 0x0A        none (no context entry read)
 *   0x09 context unreadable                  none
 *   0x02, 0x0B                               the context entry's
 *   PASID 0 faults during the context fetch  the context entry's only
 *   (0x50, 0x51, 0x58, 0x5B, 0x59)
 *   resolvePasid: 0x50                       the context entry's
 *                 0x51, 0x58, 0x5B           context | directory entry (not the
 *                                            PASID entry's own: QEMU returns
 *                                            before it looks at that FPD)
 *                 0x59, and success          context | directory | PASID entry
 * The FPD only suppresses qualified faults (fault-reasons.ts: 0x02, 0x51, 0x59,
 * 0x5B here; 0x01, 0x08-0x0B, 0x50 and 0x58 are always recorded).  QEMU
 * reports every fault of this module with PP=0 (no PASID in the record).
 *
 * Where QEMU 11.1 has no defined answer this module reports a fault: for a
 * PASID other than 0 (or PASID 0 after a context-cache hit) QEMU never checks
 * the PASID entry's P bit (it walks the non-present entry), and when the
 * context or directory entry has FPD set it skips the directory / table checks
 * and walks whatever the entries hold.  Here those cases are 0x59 / 0x50 /
 * 0x51 / 0x58 / 0x5B with the FPD above (so the qualified ones stay silent).
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64 } from '../../memory/address.js';
import type { ChunkedRam } from '../../memory/ram.js';
import { isQualifiedFault, VtdFault } from './fault-reasons.js';
import { lastReadRam, newQword, readEntry, readQword, type Qword } from './guest-mem.js';

/** Scalable-mode root entry (spec 9.2). */
export const SmRoot = {
  /** Size of a root entry (two halves of 8 bytes). */
  SIZE: 16,
  /** Present bit of each half: LP (lo), UP (hi). */
  P: 1 << 0,
  /** Reserved bits 11:1 of each half. */
  RSVD_LO: 0xffe,
  /** Address bits of a half's low dword (bits 31:12). */
  ADDR_LO: 0xffff_f000,
  /** First devfn served by the upper half (QEMU: devfn > UINT8_MAX / 2). */
  UPPER_DEVFN: 0x80,
} as const;

/** Scalable-mode context entry (spec 9.4). */
export const SmContext = {
  /** Size of a context entry. */
  SIZE: 32,
  /** devfn bits indexing a 128-entry context table. */
  INDEX_MASK: 0x7f,
  /** Present, val0 bit 0. */
  P: 1 << 0,
  /** Fault processing disable, val0 bit 1. */
  FPD: 1 << 1,
  /** Page request enable, val0 bit 4. */
  PRE: 1 << 4,
  /** val0 reserved bits 8:5 (QEMU VTD_SM_CONTEXT_ENTRY_RSVD_VAL0 without the HAW part). */
  RSVD0_LO: 0x1e0,
  /** val1 reserved bits 31:21 of the low dword (QEMU VTD_SM_CONTEXT_ENTRY_RSVD_VAL1; 63:32 all reserved). */
  RSVD1_LO: 0xffe0_0000,
  /** PASID-directory address bits of val0's low dword (bits 31:12). */
  ADDR_LO: 0xffff_f000,
} as const;

/** PASID directory entry (spec 9.5). */
export const PasidDir = {
  /** Size of a directory entry. */
  SIZE: 8,
  /** (pasid >> 6) & 0x3fff indexes the directory (QEMU VTD_PASID_DIR_INDEX: 20-bit PASIDs). */
  INDEX_SHIFT: 6,
  INDEX_MASK: 0x3fff,
  /** Present, bit 0. */
  P: 1 << 0,
  /** Fault processing disable, bit 1. */
  FPD: 1 << 1,
  /** PASID-table address bits of the low dword (bits 31:12). */
  ADDR_LO: 0xffff_f000,
} as const;

/** PASID table entry (spec 9.6). */
export const PasidEntry = {
  /** Size of a PASID table entry (eight qwords, all read). */
  SIZE: 64,
  /** pasid & 0x3f indexes a 64-entry PASID table. */
  INDEX_MASK: 0x3f,
  /** Present, qword 0 bit 0. */
  P: 1 << 0,
  /** Fault processing disable, qword 0 bit 1. */
  FPD: 1 << 1,
  /** Address width, qword 0 bits 4:2 (second stage: AW + 2 levels). */
  AW_SHIFT: 2,
  AW_MASK: 7,
  /** PASID-granular translation type, qword 0 bits 8:6. */
  PGTT_SHIFT: 6,
  PGTT_MASK: 7,
  /** Table address bits of a qword's low dword (bits 31:12): qword 0 second stage, qword 2 first stage. */
  ADDR_LO: 0xffff_f000,
  /** Domain ID, qword 1 bits 15:0. */
  DID_MASK: 0xffff,
  /** Supervisor request enable, qword 2 bit 0. */
  SRE: 1 << 0,
  /** First-stage paging mode, qword 2 bits 3:2 (4 + FSPM levels). */
  FSPM_SHIFT: 2,
  FSPM_MASK: 3,
  /** Write protect enable, qword 2 bit 4. */
  WPE: 1 << 4,
  /** Extended accessed flag enable, qword 2 bit 7. */
  EAFE: 1 << 7,
} as const;

/** PGTT values (spec 9.6). 0, 5, 6 and 7 are reserved. */
export const Pgtt = {
  FirstStage: 1,
  SecondStage: 2,
  Nested: 3,
  PassThrough: 4,
} as const;

/** Second-stage levels are AW + 2 (AW 1: 3 levels, AW 2: 4 levels). */
export const SS_LEVEL_BASE = 2;
/** First-stage levels are FSPM + 4. */
export const FS_LEVEL_BASE = 4;
/** 5-level first stage (FSPM 1), only with the vtemu extension x-fs5lp. */
export const FS_LEVELS_5 = 5;

/** What the unit supports, for scalable-mode validation (the caller derives it from CAP/ECAP once). */
export interface ScalableRules {
  /** Mask of the high dword of an address below the host address width (HAW 48: 0xffff). */
  readonly hawHiMask: number;
  /** CAP.SAGAW bits (bit n: n + 2 second-stage levels). */
  readonly sagaw: number;
  /** ECAP.FSTS: PGTT first stage allowed. */
  readonly fsts: boolean;
  /** ECAP.SSTS: PGTT second stage allowed. */
  readonly ssts: boolean;
  /** ECAP.PT: PGTT pass-through allowed. */
  readonly pt: boolean;
  /** vtemu extension x-nested: PGTT nested allowed (QEMU 11.1 always refuses it). */
  readonly nested: boolean;
  /** vtemu extension x-fs5lp: 5-level first stage allowed (QEMU 11.1: 4 levels only). */
  readonly fs5lp: boolean;
}

/** A scalable-mode context entry as read from memory. */
export interface ScalableContext {
  readonly val0: Qword;
  readonly val1: Qword;
  readonly val2: Qword;
  readonly val3: Qword;
  /** True once the entry was read (its FPD bit is meaningful even when invalid). */
  read: boolean;
}

/** A fresh scalable context entry. */
export function newScalableContext(): ScalableContext {
  return { val0: newQword(), val1: newQword(), val2: newQword(), val3: newQword(), read: false };
}

/** FPD bit of a scalable context entry. */
export function smCtxFpd(ce: ScalableContext): boolean {
  return (ce.val0.lo & SmContext.FPD) !== 0;
}

/** PRE bit of a scalable context entry. */
export function smCtxPre(ce: ScalableContext): boolean {
  return (ce.val0.lo & SmContext.PRE) !== 0;
}

/** PASID directory base of a scalable context entry. */
export function smCtxPasidDir(ce: ScalableContext): number {
  return join64(ce.val0.lo & SmContext.ADDR_LO, ce.val0.hi);
}

/**
 * The translation config of one (source-id, PASID), filled in place by
 * resolvePasid / resolveScalable.  Fields of the PASID entry are valid once
 * it was read (peRead), whatever the result.
 */
export interface PasidConfig {
  /** The PASID resolved (0 for requests without a PASID). */
  pasid: number;
  /** Domain ID (qword 1). */
  did: number;
  /** PGTT (Pgtt). */
  pgtt: number;
  /** AW field; second-stage levels AW + 2, and QEMU's first-stage canonical width 30 + 9 * AW. */
  aw: number;
  /** Second-stage levels (AW + 2). */
  ssLevels: number;
  /** Second-stage table (qword 0 bits 63:12). */
  ssRoot: number;
  /** First-stage levels (FSPM + 4). */
  fsLevels: number;
  /** First-stage table (qword 2 bits 63:12). */
  fsRoot: number;
  /** SRE, WPE, EAFE (qword 2). */
  sre: boolean;
  wpe: boolean;
  eafe: boolean;
  /** The context entry's PRE bit. */
  pre: boolean;
  /** The FPD in force for the returned fault, or for faults of the walk after a success. */
  fpd: boolean;
  /** The returned fault is qualified and `fpd` suppresses it (do not record it). */
  suppressed: boolean;
  /** The PASID table entry was read (its fields above are meaningful). */
  peRead: boolean;
}

/** A fresh (zero) PASID config. */
export function newPasidConfig(): PasidConfig {
  return {
    pasid: 0,
    did: 0,
    pgtt: 0,
    aw: 0,
    ssLevels: 0,
    ssRoot: 0,
    fsLevels: 0,
    fsRoot: 0,
    sre: false,
    wpe: false,
    eafe: false,
    pre: false,
    fpd: false,
    suppressed: false,
    peRead: false,
  };
}

const rootLo = newQword();
const rootHi = newQword();
const dirEntry = newQword();
/** Qwords 0-2 of a PASID table entry (3-7 hold nothing vtemu uses). */
const pe = [newQword(), newQword(), newQword()] as const;
/** PASID 0's config while a context entry is validated. */
const pasid0 = newPasidConfig();

function clearConfig(out: PasidConfig, pasid: number): void {
  out.pasid = pasid;
  out.did = 0;
  out.pgtt = 0;
  out.aw = 0;
  out.ssLevels = 0;
  out.ssRoot = 0;
  out.fsLevels = 0;
  out.fsRoot = 0;
  out.sre = false;
  out.wpe = false;
  out.eafe = false;
  out.pre = false;
  out.fpd = false;
  out.suppressed = false;
  out.peRead = false;
}

/** Copies a config field by field (no allocation); the field list lives here, next to newPasidConfig and clearConfig. */
export function copyPasidConfig(from: PasidConfig, to: PasidConfig): void {
  to.pasid = from.pasid;
  to.did = from.did;
  to.pgtt = from.pgtt;
  to.aw = from.aw;
  to.ssLevels = from.ssLevels;
  to.ssRoot = from.ssRoot;
  to.fsLevels = from.fsLevels;
  to.fsRoot = from.fsRoot;
  to.sre = from.sre;
  to.wpe = from.wpe;
  to.eafe = from.eafe;
  to.pre = from.pre;
  to.fpd = from.fpd;
  to.suppressed = from.suppressed;
  to.peRead = from.peRead;
}

/** Sets out.fpd / out.suppressed for `reason` and returns it. */
function fault(out: PasidConfig, reason: number, fpd: boolean): number {
  out.fpd = fpd;
  out.suppressed = fpd && isQualifiedFault(reason);
  return reason;
}

/**
 * The RAM the directory and PASID entries of the last resolvePasid that read
 * both came from (null: not one RAM).  Transient, as guest-mem's lastReadRam:
 * taken right after the call.
 */
let entriesRam: ChunkedRam | null = null;

/**
 * The RAM that held the directory and PASID entries the last resolvePasid
 * read (null when not one RAM): its result can then only change by a write
 * to that RAM or a change of the memory map (resolve.ts memoizes it).
 */
export function pasidEntriesRam(): ChunkedRam | null {
  return entriesRam;
}

/** A fault before the PASID entry was read: every field cleared (the context's PRE kept), then the fault. */
function unread(out: PasidConfig, pasid: number, pre: boolean, reason: number, fpd: boolean): number {
  clearConfig(out, pasid);
  out.pre = pre;
  return fault(out, reason, fpd);
}

/** QEMU vtd_pe_type_check plus the vtemu extensions; the reserved PGTT values (0, 5-7) are never allowed. */
function pgttAllowed(pgtt: number, rules: ScalableRules): boolean {
  switch (pgtt) {
    case Pgtt.FirstStage:
      return rules.fsts;
    case Pgtt.SecondStage:
      return rules.ssts;
    case Pgtt.Nested:
      return rules.nested;
    case Pgtt.PassThrough:
      return rules.pt;
  }
  return false;
}

/**
 * Looks up the scalable-mode context entry of (bus, devfn) under the root
 * table at `rootTable` and validates PASID 0's entry behind it (QEMU
 * vtd_dev_to_context_entry).  Returns 0 and fills `out`, or a fault reason
 * (out.read tells whether the context entry was read, i.e. whether its FPD
 * counts; for every fault of this stage only that FPD counts).  PASID 0's
 * config is left in `pe0` when given.
 */
export function lookupScalableContext(
  mem: AddressSpace,
  rootTable: number,
  bus: number,
  devfn: number,
  rules: ScalableRules,
  out: ScalableContext,
  pe0: PasidConfig = pasid0,
): number {
  out.read = false;
  const rootAddr = rootTable + bus * SmRoot.SIZE;
  if (!readQword(mem, rootAddr, rootLo) || !readQword(mem, rootAddr + 8, rootHi)) return VtdFault.ROOT_TABLE_INV;
  const half = devfn >= SmRoot.UPPER_DEVFN ? rootHi : rootLo;
  if ((half.lo & SmRoot.P) === 0) return VtdFault.ROOT_ENTRY_P;
  if (
    (rootLo.lo & SmRoot.RSVD_LO) !== 0 ||
    (rootLo.hi & ~rules.hawHiMask) !== 0 ||
    (rootHi.lo & SmRoot.RSVD_LO) !== 0 ||
    (rootHi.hi & ~rules.hawHiMask) !== 0
  ) {
    return VtdFault.ROOT_ENTRY_RSVD;
  }
  const ctxAddr = join64(half.lo & SmRoot.ADDR_LO, half.hi) + (devfn & SmContext.INDEX_MASK) * SmContext.SIZE;
  if (
    !readQword(mem, ctxAddr, out.val0) ||
    !readQword(mem, ctxAddr + 8, out.val1) ||
    !readQword(mem, ctxAddr + 16, out.val2) ||
    !readQword(mem, ctxAddr + 24, out.val3)
  ) {
    return VtdFault.CONTEXT_TABLE_INV;
  }
  out.read = true;
  if ((out.val0.lo & SmContext.P) === 0) return VtdFault.CONTEXT_ENTRY_P;
  if (
    (out.val0.lo & SmContext.RSVD0_LO) !== 0 ||
    (out.val0.hi & ~rules.hawHiMask) !== 0 ||
    (out.val1.lo & SmContext.RSVD1_LO) !== 0 ||
    out.val1.hi !== 0 ||
    out.val2.lo !== 0 ||
    out.val2.hi !== 0 ||
    out.val3.lo !== 0 ||
    out.val3.hi !== 0
  ) {
    return VtdFault.CONTEXT_ENTRY_RSVD;
  }
  return resolvePasid(mem, out, 0, rules, pe0);
}

/**
 * Resolves `pasid` through the PASID directory of the context entry `ce`
 * (already validated by lookupScalableContext, possibly cached): directory
 * entry, PASID table entry, PGTT legal for `rules`, second-stage levels in
 * SAGAW, first-stage levels supported, then present.  Returns 0 with `out`
 * filled, or a fault reason with out.fpd / out.suppressed set.
 */
export function resolvePasid(mem: AddressSpace, ce: ScalableContext, pasid: number, rules: ScalableRules, out: PasidConfig): number {
  // Every field is assigned below once the entry is read; before that a fault clears them all.
  const pre = smCtxPre(ce);
  let fpd = smCtxFpd(ce);
  const dirAddr = smCtxPasidDir(ce) + ((pasid >>> PasidDir.INDEX_SHIFT) & PasidDir.INDEX_MASK) * PasidDir.SIZE;
  if (!readQword(mem, dirAddr, dirEntry)) return unread(out, pasid, pre, VtdFault.PASID_DIR_ACCESS_ERR, fpd);
  const dirRam = lastReadRam();
  if ((dirEntry.lo & PasidDir.FPD) !== 0) fpd = true;
  if ((dirEntry.lo & PasidDir.P) === 0) return unread(out, pasid, pre, VtdFault.PASID_DIR_ENTRY_P, fpd);
  const peAddr = join64(dirEntry.lo & PasidDir.ADDR_LO, dirEntry.hi) + (pasid & PasidEntry.INDEX_MASK) * PasidEntry.SIZE;
  // The whole 64-byte entry is read (its unreadability faults); qwords 0-2 hold every field used.
  if (!readEntry(mem, peAddr, PasidEntry.SIZE, pe)) return unread(out, pasid, pre, VtdFault.PASID_TABLE_ACCESS_ERR, fpd);
  entriesRam = dirRam !== null && dirRam === lastReadRam() ? dirRam : null;
  out.pasid = pasid;
  out.pre = pre;
  out.suppressed = false;
  const q0 = pe[0];
  const q2 = pe[2];
  out.peRead = true;
  out.pgtt = (q0.lo >>> PasidEntry.PGTT_SHIFT) & PasidEntry.PGTT_MASK;
  out.aw = (q0.lo >>> PasidEntry.AW_SHIFT) & PasidEntry.AW_MASK;
  out.ssLevels = SS_LEVEL_BASE + out.aw;
  out.ssRoot = join64(q0.lo & PasidEntry.ADDR_LO, q0.hi);
  out.did = pe[1].lo & PasidEntry.DID_MASK;
  out.fsLevels = FS_LEVEL_BASE + ((q2.lo >>> PasidEntry.FSPM_SHIFT) & PasidEntry.FSPM_MASK);
  out.fsRoot = join64(q2.lo & PasidEntry.ADDR_LO, q2.hi);
  out.sre = (q2.lo & PasidEntry.SRE) !== 0;
  out.wpe = (q2.lo & PasidEntry.WPE) !== 0;
  out.eafe = (q2.lo & PasidEntry.EAFE) !== 0;
  if (!pgttAllowed(out.pgtt, rules)) return fault(out, VtdFault.PASID_TABLE_ENTRY_INV, fpd);
  const ss = out.pgtt === Pgtt.SecondStage || out.pgtt === Pgtt.Nested;
  const fs = out.pgtt === Pgtt.FirstStage || out.pgtt === Pgtt.Nested;
  if (ss && (rules.sagaw & (1 << out.aw)) === 0) return fault(out, VtdFault.PASID_TABLE_ENTRY_INV, fpd);
  if (fs && out.fsLevels !== FS_LEVEL_BASE && !(rules.fs5lp && out.fsLevels === FS_LEVELS_5)) {
    return fault(out, VtdFault.PASID_TABLE_ENTRY_INV, fpd);
  }
  if ((q0.lo & PasidEntry.FPD) !== 0) fpd = true;
  if ((q0.lo & PasidEntry.P) === 0) return fault(out, VtdFault.PASID_ENTRY_P, fpd);
  out.fpd = fpd;
  return 0;
}

/**
 * The whole scalable-mode resolution of a request from (bus, devfn) with
 * `pasid` (0 for requests without a PASID): lookupScalableContext into `ce`,
 * then resolvePasid into `out`.  Returns 0 or a fault reason; out.fpd and
 * out.suppressed are set either way (a context-stage fault uses only the
 * context entry's FPD, and none when the entry was not read).
 */
export function resolveScalable(
  mem: AddressSpace,
  rootTable: number,
  bus: number,
  devfn: number,
  pasid: number,
  rules: ScalableRules,
  ce: ScalableContext,
  out: PasidConfig,
): number {
  const r = lookupScalableContext(mem, rootTable, bus, devfn, rules, ce);
  if (r !== 0) {
    clearConfig(out, pasid);
    return fault(out, r, ce.read && smCtxFpd(ce));
  }
  return resolvePasid(mem, ce, pasid, rules, out);
}
