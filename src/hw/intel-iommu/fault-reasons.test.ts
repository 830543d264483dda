/**
 * Fault reason codes (VT-d spec 7.1.3 / Appendix A, QEMU VTDFaultReason) and
 * which of them a Fault Processing Disable bit suppresses (QEMU
 * vtd_qualified_faults for DMA remapping; spec 5.1.4.1 for interrupt
 * remapping: only not-present, reserved-bit and SID faults honour the IRTE's
 * FPD).
 */
import { describe, expect, it } from 'vitest';
import { isQualifiedFault, VtdFault } from './fault-reasons.js';

/** [name, code, qualified]: every reason the model raises. */
const REASONS: [keyof typeof VtdFault, number, boolean][] = [
  ['ROOT_ENTRY_P', 0x1, false],
  ['CONTEXT_ENTRY_P', 0x2, true],
  ['CONTEXT_ENTRY_INV', 0x3, true],
  ['ADDR_BEYOND_MGAW', 0x4, true],
  ['WRITE', 0x5, true],
  ['READ', 0x6, true],
  ['PAGING_ENTRY_INV', 0x7, true],
  ['ROOT_TABLE_INV', 0x8, false],
  ['CONTEXT_TABLE_INV', 0x9, false],
  ['ROOT_ENTRY_RSVD', 0xa, false],
  // Not in QEMU's vtd_qualified_faults table (so false there): FPD of a malformed entry is not trusted.
  ['CONTEXT_ENTRY_RSVD', 0xb, false],
  ['PAGING_ENTRY_RSVD', 0xc, true],
  ['CONTEXT_ENTRY_TT', 0xd, true],
  ['INTERRUPT_ADDR', 0xe, true],
  ['IR_REQ_RSVD', 0x20, false],
  ['IR_INDEX_OVER', 0x21, false],
  ['IR_ENTRY_P', 0x22, true],
  ['IR_ROOT_INVAL', 0x23, false],
  ['IR_IRTE_RSVD', 0x24, true],
  ['IR_COMPAT_BLOCKED', 0x25, false],
  ['IR_SID_ERR', 0x26, true],
  // Scalable mode (QEMU 11.1 vtd_qualified_faults): the PASID-structure access errors are not qualified.
  ['SM_PRE_ABS', 0x47, true],
  ['PASID_DIR_ACCESS_ERR', 0x50, false],
  ['PASID_DIR_ENTRY_P', 0x51, true],
  ['PASID_TABLE_ACCESS_ERR', 0x58, false],
  ['PASID_ENTRY_P', 0x59, true],
  ['PASID_TABLE_ENTRY_INV', 0x5b, true],
  // First stage: all qualified.
  ['FS_PAGING_ENTRY_INV', 0x70, true],
  ['FS_PAGING_ENTRY_P', 0x71, true],
  ['FS_PAGING_ENTRY_RSVD', 0x72, true],
  ['PASID_ENTRY_FSPTPTR_INV', 0x73, true],
  ['FS_NON_CANONICAL', 0x80, true],
  ['FS_PAGING_ENTRY_US', 0x81, true],
  ['SM_WRITE', 0x85, true],
  ['SM_INTERRUPT_ADDR', 0x87, true],
  ['FS_BIT_UPDATE_FAILED', 0x91, true],
];

describe('fault reasons', () => {
  for (const [name, code, qualified] of REASONS) {
    it(`${name} = 0x${code.toString(16)}, ${qualified ? 'qualified' : 'not qualified'}`, () => {
      expect(VtdFault[name]).toBe(code);
      expect(isQualifiedFault(code)).toBe(qualified);
    });
  }

  it('names exactly these reasons, each code once', () => {
    expect(Object.keys(VtdFault).sort()).toEqual(REASONS.map(([n]) => n).sort());
    expect(new Set(Object.values(VtdFault)).size).toBe(REASONS.length);
  });

  it('qualified: exactly twenty-five codes', () => {
    const qualified = [];
    for (let code = 0; code < 0x100; code++) if (isQualifiedFault(code)) qualified.push(code);
    expect(qualified).toEqual([
      0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xc, 0xd, 0xe, 0x22, 0x24, 0x26, 0x47, 0x51, 0x59, 0x5b, 0x70, 0x71, 0x72, 0x73, 0x80, 0x81,
      0x85, 0x87, 0x91,
    ]);
  });

  it('no reason code (0), unknown codes and non-codes are never qualified', () => {
    for (const code of [0, 0xf, 0x1f, 0x27, 0x50, 0x58, 0x86, 0xff, -1, 0x102, 2.5, Number.NaN]) {
      expect(isQualifiedFault(code), String(code)).toBe(false);
    }
  });
});
