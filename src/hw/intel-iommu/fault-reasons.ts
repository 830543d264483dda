/**
 * VT-d fault reasons (spec 7.1.3, Appendix A) that this model raises, and
 * which of them are "qualified" (suppressed by a Fault Processing Disable
 * bit), as QEMU's vtd_qualified_faults table says.
 */

/** Fault reason codes (FRCD.FR). */
export const VtdFault = {
  /** Root entry not present. */
  ROOT_ENTRY_P: 0x1,
  /** Context entry not present. */
  CONTEXT_ENTRY_P: 0x2,
  /** Invalid context entry programming (AW not in SAGAW, bad TT, unreadable top table). */
  CONTEXT_ENTRY_INV: 0x3,
  /** Input address above the guest address width. */
  ADDR_BEYOND_MGAW: 0x4,
  /** Write not permitted. */
  WRITE: 0x5,
  /** Read not permitted. */
  READ: 0x6,
  /** Paging entry unreadable. */
  PAGING_ENTRY_INV: 0x7,
  /** Root table unreadable. */
  ROOT_TABLE_INV: 0x8,
  /** Context table unreadable. */
  CONTEXT_TABLE_INV: 0x9,
  /** Root entry reserved bits set. */
  ROOT_ENTRY_RSVD: 0xa,
  /** Context entry reserved bits set. */
  CONTEXT_ENTRY_RSVD: 0xb,
  /** Paging entry reserved bits set. */
  PAGING_ENTRY_RSVD: 0xc,
  /** Translation type not supported. */
  CONTEXT_ENTRY_TT: 0xd,
  /** Translation output in the interrupt address range. */
  INTERRUPT_ADDR: 0xe,
  /** Interrupt remapping: reserved bits in the request. */
  IR_REQ_RSVD: 0x20,
  /** Interrupt remapping: index beyond the table. */
  IR_INDEX_OVER: 0x21,
  /** Interrupt remapping: IRTE not present. */
  IR_ENTRY_P: 0x22,
  /** Interrupt remapping: table unreadable. */
  IR_ROOT_INVAL: 0x23,
  /** Interrupt remapping: IRTE reserved bits set. */
  IR_IRTE_RSVD: 0x24,
  /** Interrupt remapping: compatibility-format interrupt blocked. */
  IR_COMPAT_BLOCKED: 0x25,
  /** Interrupt remapping: source-ID verification failed. */
  IR_SID_ERR: 0x26,
} as const;

const QUALIFIED = new Set<number>([
  VtdFault.CONTEXT_ENTRY_P,
  VtdFault.CONTEXT_ENTRY_INV,
  VtdFault.ADDR_BEYOND_MGAW,
  VtdFault.WRITE,
  VtdFault.READ,
  VtdFault.PAGING_ENTRY_INV,
  VtdFault.INTERRUPT_ADDR,
  VtdFault.PAGING_ENTRY_RSVD,
  VtdFault.CONTEXT_ENTRY_TT,
  VtdFault.IR_ENTRY_P,
  VtdFault.IR_IRTE_RSVD,
  VtdFault.IR_SID_ERR,
]);

/** True when an FPD bit suppresses this fault (QEMU vtd_is_qualified_fault, IR per spec 5.1.4.1). */
export function isQualifiedFault(reason: number): boolean {
  return QUALIFIED.has(reason);
}
