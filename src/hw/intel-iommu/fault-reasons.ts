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
  /** Scalable mode: a page request through a present context entry whose PRE bit is 0 (SCT.8). */
  SM_PRE_ABS: 0x47,
  /** Scalable mode: PASID directory entry unreadable. */
  PASID_DIR_ACCESS_ERR: 0x50,
  /** Scalable mode: PASID directory entry not present. */
  PASID_DIR_ENTRY_P: 0x51,
  /** Scalable mode: PASID table entry unreadable. */
  PASID_TABLE_ACCESS_ERR: 0x58,
  /** Scalable mode: PASID table entry not present. */
  PASID_ENTRY_P: 0x59,
  /** Scalable mode: invalid PASID table entry (PGTT not supported, AW not in SAGAW, first-stage levels). */
  PASID_TABLE_ENTRY_INV: 0x5b,
  /** First-stage paging entry unreadable, below the top level. */
  FS_PAGING_ENTRY_INV: 0x70,
  /** First-stage paging entry not present. */
  FS_PAGING_ENTRY_P: 0x71,
  /** First-stage paging entry reserved bits set. */
  FS_PAGING_ENTRY_RSVD: 0x72,
  /** PASID entry's first-stage table pointer invalid: the top-level table is unreadable. */
  PASID_ENTRY_FSPTPTR_INV: 0x73,
  /** Input address not canonical for first-stage translation. */
  FS_NON_CANONICAL: 0x80,
  /** First-stage user/supervisor violation (US clear; every DMA is a user access). */
  FS_PAGING_ENTRY_US: 0x81,
  /** Scalable mode: write not permitted. */
  SM_WRITE: 0x85,
  /** Scalable mode: translation output in the interrupt address range. */
  SM_INTERRUPT_ADDR: 0x87,
  /** First-stage Accessed / Dirty write-back failed. */
  FS_BIT_UPDATE_FAILED: 0x91,
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
  VtdFault.SM_PRE_ABS,
  VtdFault.PASID_DIR_ENTRY_P,
  VtdFault.PASID_ENTRY_P,
  VtdFault.PASID_TABLE_ENTRY_INV,
  // First stage (scalable mode): all qualified in QEMU 11.1's vtd_qualified_faults.
  VtdFault.FS_PAGING_ENTRY_INV,
  VtdFault.FS_PAGING_ENTRY_P,
  VtdFault.FS_PAGING_ENTRY_RSVD,
  VtdFault.PASID_ENTRY_FSPTPTR_INV,
  VtdFault.FS_NON_CANONICAL,
  VtdFault.FS_PAGING_ENTRY_US,
  VtdFault.SM_WRITE,
  VtdFault.SM_INTERRUPT_ADDR,
  VtdFault.FS_BIT_UPDATE_FAILED,
]);

/** True when an FPD bit suppresses this fault (QEMU vtd_is_qualified_fault, IR per spec 5.1.4.1). */
export function isQualifiedFault(reason: number): boolean {
  return QUALIFIED.has(reason);
}
