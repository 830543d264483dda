/**
 * Legacy-mode root and context entries (VT-d spec 9.1, 9.3): fetch from
 * guest memory and validation with QEMU's fault reasons
 * (vtd_dev_to_context_entry).  Entries are kept as 32-bit halves.
 *
 *   root entry (16 bytes, indexed by bus):
 *     lo  bit 0 P, bits 11:1 reserved, bits 63:12 context-table pointer
 *     hi  reserved (legacy mode)
 *   context entry (16 bytes, indexed by devfn):
 *     lo  bit 0 P, bit 1 FPD, bits 3:2 TT, bits 11:4 reserved, bits 63:12 SSPTPTR
 *     hi  bits 2:0 AW, bits 6:3 ignored, bit 7 reserved, bits 23:8 DID, bits 63:24 reserved
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64 } from '../../memory/address.js';
import { VtdFault } from './fault-reasons.js';
import { newQword, readQword, type Qword } from './guest-mem.js';

/** Bit fields of root and context entries. */
export const Entry = {
  /** Present (root lo, context lo). */
  P: 1 << 0,
  /** Fault processing disable (context lo). */
  FPD: 1 << 1,
  TT_SHIFT: 2,
  TT_MASK: 3,
  /** Address bits of the low dword (bits 31:12). */
  ADDR_LO: 0xffff_f000,
  /** Root lo reserved bits 11:1. */
  ROOT_RSVD_LO: 0xffe,
  /** Context lo reserved bits 11:4. */
  CTX_RSVD_LO: 0xff0,
  /** Context hi reserved bits in the low dword: bit 7 and bits 31:24. */
  CTX_RSVD_HI_LO: 0xff00_0080,
  /** Context hi AW field, bits 2:0. */
  AW_MASK: 7,
  DID_SHIFT: 8,
  DID_MASK: 0xffff,
} as const;

/** Context-entry translation types (TT). */
export const TranslationType = {
  MultiLevel: 0,
  DeviceIotlb: 1,
  PassThrough: 2,
} as const;

/** Size of a root or (legacy) context entry. */
export const ENTRY_SIZE = 16;

/** A context entry as read from memory. */
export interface ContextEntry {
  /** Low qword. */
  readonly lo: Qword;
  /** High qword. */
  readonly hi: Qword;
  /** True once the entry was read (its FPD bit is meaningful even when invalid). */
  read: boolean;
}

/** A fresh context entry. */
export function newContextEntry(): ContextEntry {
  return { lo: newQword(), hi: newQword(), read: false };
}

/** What the unit supports, for context validation. */
export interface ContextRules {
  /** Mask of the high dword of an address below the host address width. */
  readonly hawHiMask: number;
  /** CAP.SAGAW bits. */
  readonly sagaw: number;
  /** ECAP.DT: TT=1 allowed. */
  readonly deviceIotlb: boolean;
  /** ECAP.PT: TT=2 allowed. */
  readonly passThrough: boolean;
}

/** FPD bit of a context entry. */
export function ctxFpd(ce: ContextEntry): boolean {
  return (ce.lo.lo & Entry.FPD) !== 0;
}

/** Translation type of a context entry. */
export function ctxType(ce: ContextEntry): number {
  return (ce.lo.lo >>> Entry.TT_SHIFT) & Entry.TT_MASK;
}

/** Address-width field (AW) of a context entry. */
export function ctxAw(ce: ContextEntry): number {
  return ce.hi.lo & Entry.AW_MASK;
}

/** Page-table levels of a context entry: 2 + AW. */
export function ctxLevels(ce: ContextEntry): number {
  return 2 + ctxAw(ce);
}

/** Adjusted guest address width of a context entry: 30 + 9 * AW. */
export function ctxAgaw(ce: ContextEntry): number {
  return 30 + 9 * ctxAw(ce);
}

/** Domain ID of a context entry. */
export function ctxDid(ce: ContextEntry): number {
  return (ce.hi.lo >>> Entry.DID_SHIFT) & Entry.DID_MASK;
}

/** Second-stage page-table base of a context entry. */
export function ctxTableBase(ce: ContextEntry): number {
  return join64(ce.lo.lo & Entry.ADDR_LO, ce.lo.hi);
}

const rootLo = newQword();
const rootHi = newQword();

/**
 * Looks up the context entry of (bus, devfn) under the root table at
 * `rootTable`.  Returns 0 and fills `out`, or a fault reason (out.read tells
 * whether the context entry itself was read, i.e. whether its FPD counts).
 */
export function lookupContext(
  mem: AddressSpace,
  rootTable: number,
  bus: number,
  devfn: number,
  rules: ContextRules,
  out: ContextEntry,
): number {
  out.read = false;
  const rootAddr = rootTable + bus * ENTRY_SIZE;
  if (!readQword(mem, rootAddr, rootLo) || !readQword(mem, rootAddr + 8, rootHi)) return VtdFault.ROOT_TABLE_INV;
  if ((rootLo.lo & Entry.P) === 0) return VtdFault.ROOT_ENTRY_P;
  if (rootHi.lo !== 0 || rootHi.hi !== 0 || (rootLo.lo & Entry.ROOT_RSVD_LO) !== 0 || (rootLo.hi & ~rules.hawHiMask) !== 0) {
    return VtdFault.ROOT_ENTRY_RSVD;
  }
  const ctxAddr = join64(rootLo.lo & Entry.ADDR_LO, rootLo.hi) + devfn * ENTRY_SIZE;
  if (!readQword(mem, ctxAddr, out.lo) || !readQword(mem, ctxAddr + 8, out.hi)) return VtdFault.CONTEXT_TABLE_INV;
  out.read = true;
  if ((out.lo.lo & Entry.P) === 0) return VtdFault.CONTEXT_ENTRY_P;
  if (
    (out.hi.lo & Entry.CTX_RSVD_HI_LO) !== 0 ||
    out.hi.hi !== 0 ||
    (out.lo.lo & Entry.CTX_RSVD_LO) !== 0 ||
    (out.lo.hi & ~rules.hawHiMask) !== 0
  ) {
    return VtdFault.CONTEXT_ENTRY_RSVD;
  }
  const levels = ctxLevels(out);
  if ((rules.sagaw & (1 << (levels - 2))) === 0) return VtdFault.CONTEXT_ENTRY_INV;
  switch (ctxType(out)) {
    case TranslationType.MultiLevel:
      break;
    case TranslationType.DeviceIotlb:
      if (!rules.deviceIotlb) return VtdFault.CONTEXT_ENTRY_INV;
      break;
    case TranslationType.PassThrough:
      if (!rules.passThrough) return VtdFault.CONTEXT_ENTRY_INV;
      break;
    default:
      return VtdFault.CONTEXT_ENTRY_INV;
  }
  return 0;
}
