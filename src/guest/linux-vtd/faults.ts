/**
 * The fault handler (Linux dmar_fault): walk fault recording registers from
 * FSTS.FRI, decode, clear each with a write of F, then clear PFO/PPF/PRO.
 */
import type { GuestPlatform } from '../platform.js';
import { Frcd, Fsts, Reg } from './regs.js';

/** Fault reason names (VT-d spec 3.x appendix A; Linux dma_remap_fault_reasons / irq / scalable). */
export const FAULT_REASONS: Readonly<Record<number, string>> = {
  0x00: 'Software', 0x01: 'Present bit in root entry is clear', 0x02: 'Present bit in context entry is clear',
  0x03: 'Invalid context entry', 0x04: 'Access beyond MGAW', 0x05: 'PTE Write access is not set',
  0x06: 'PTE Read access is not set', 0x07: 'Next page table ptr is invalid', 0x08: 'Root table address invalid',
  0x09: 'Context table ptr is invalid', 0x0a: 'non-zero reserved fields in RTP', 0x0b: 'non-zero reserved fields in CTP',
  0x0c: 'non-zero reserved fields in PTE', 0x0d: 'PCE for translation request specifies blocking',
  0x0e: 'Untranslated request to interrupt address range',
  0x20: 'Detected reserved fields in the decoded interrupt-remapped request',
  0x21: 'Interrupt index exceeded the interrupt-remapping table size', 0x22: 'Present field in the IRTE entry is clear',
  0x23: 'Error accessing interrupt-remapping table pointed by IRTA_REG', 0x24: 'Detected reserved fields in the IRTE entry',
  0x25: 'Blocked a compatibility format interrupt request', 0x26: 'Blocked an interrupt request due to source-id verification failure',
  // Scalable mode (spec appendix A, 0x30-0x90; worded here, numbered as Linux's table).
  0x30: 'SM: invalid root table address', 0x31: 'SM: TTM 0 for a request with PASID', 0x32: 'SM: TTM 0 for a page group request',
  0x38: 'SM: root entry not readable', 0x39: 'SM: root entry not present', 0x3a: 'SM: reserved bits set in root entry',
  0x40: 'SM: context entry not readable', 0x41: 'SM: context entry not present', 0x42: 'SM: reserved bits set in context entry',
  0x43: 'SM: invalid context entry', 0x44: 'SM: DTE clear in context entry', 0x45: 'SM: PASIDE clear in context entry',
  0x46: 'SM: PASID above the context entry maximum', 0x47: 'SM: PRE clear in context entry', 0x48: 'SM: RID_PASID error in context entry',
  0x50: 'SM: PASID directory entry not readable', 0x51: 'SM: PASID directory entry not present',
  0x52: 'SM: reserved bits set in PASID directory entry',
  0x58: 'SM: PASID table entry not readable', 0x59: 'SM: PASID table entry not present', 0x5a: 'SM: reserved bits set in PASID table entry',
  0x5b: 'SM: invalid PASID table entry', 0x5c: 'SM: ERE clear in PASID table entry', 0x5d: 'SM: SRE clear in PASID table entry',
  0x70: 'SM: first-stage paging entry not readable', 0x71: 'SM: first-stage paging entry not present',
  0x72: 'SM: reserved bits set in first-stage paging entry', 0x73: 'SM: first-stage top-level entry not readable',
  0x74: 'SM: nested: first-stage entry address beyond MGAW', 0x75: 'SM: nested: top-level first-stage entry not readable',
  0x76: 'SM: nested: first-stage entry read not permitted', 0x77: 'SM: nested: first-stage entry write not permitted',
  0x78: 'SM: second-stage paging entry not readable', 0x79: 'SM: second-stage read/write permission error',
  0x7a: 'SM: reserved bits set in second-stage paging entry', 0x7b: 'SM: invalid second-stage table pointer',
  0x7c: 'SM: second-stage A/D update needed under no-snoop',
  0x80: 'SM: non-canonical address in first-stage translation', 0x81: 'SM: user access to a supervisor page',
  0x82: 'SM: execute not permitted', 0x83: 'SM: address beyond the hardware maximum', 0x84: 'SM: second-stage address beyond the maximum',
  0x85: 'SM: write to a page without write permission', 0x86: 'SM: read of a page without read permission',
  0x87: 'SM: untranslated request to the interrupt address range', 0x90: 'SM: first-stage A/D update needed under no-snoop',
  0x91: 'SM: A/D bit update failed',
};

/** Name of a fault reason. */
export function faultReasonName(fr: number): string {
  return FAULT_REASONS[fr] ?? 'Unknown';
}

/** One decoded fault record. */
export interface FaultRecord {
  readonly index: number;
  readonly sid: number;
  readonly reason: number;
  readonly reasonName: string;
  /** 'read' | 'write' for DMA faults, 'interrupt' for IR faults (reason 0x20-0x2F). */
  readonly type: 'read' | 'write' | 'interrupt';
  /** Page address (DMA) or IRTE index (IR). */
  readonly address: bigint;
  readonly pasid: number | undefined;
}

/** The Linux log line of a fault. */
export function formatFault(f: FaultRecord): string {
  const sid = `[${hex2(f.sid >> 8)}:${hex2((f.sid >> 3) & 0x1f)}.${f.sid & 7}]`;
  if (f.type === 'interrupt') {
    return `DMAR: [INTR-REMAP] Request device ${sid} fault index 0x${f.address.toString(16)} [fault reason 0x${hex2(f.reason)}] ${f.reasonName}`;
  }
  const pasid = f.pasid === undefined ? 'NO_PASID' : `PASID 0x${f.pasid.toString(16)}`;
  return `DMAR: [DMA ${f.type === 'read' ? 'Read' : 'Write'} ${pasid}] Request device ${sid} fault addr 0x${f.address.toString(16)} ` +
    `[fault reason 0x${hex2(f.reason)}] ${f.reasonName}`;
}

function hex2(v: number): string {
  return v.toString(16).padStart(2, '0');
}

/** IR fault reasons occupy 0x20-0x2F; their FRCD low qword holds the index in 63:48. */
const IR_REASON_FIRST = 0x20;
const IR_REASON_LAST = 0x2f;
const IR_INDEX_SHIFT = 48n;
const PAGE_MASK = ~0xfffn;

/** Reads and clears all pending fault records of one unit. */
export async function handleFaults(p: GuestPlatform, base: number, froBytes: number, nfr: number): Promise<FaultRecord[]> {
  const out: FaultRecord[] = [];
  const fsts = await p.read(base + Reg.FSTS, 4);
  if (fsts & Fsts.PPF) {
    let i = (fsts >> Fsts.FRI_SHIFT) & Fsts.FRI_MASK;
    for (let n = 0; n < nfr; n++) {
      const rec = base + froBytes + i * Frcd.SIZE;
      const d3 = await p.read(rec + 12, 4);
      if (!(d3 & Frcd.F)) break;
      const reason = d3 & Frcd.FR_MASK;
      const d2 = await p.read(rec + 8, 4);
      const lo = await p.read64(rec);
      const ir = reason >= IR_REASON_FIRST && reason <= IR_REASON_LAST;
      out.push({
        index: i, sid: d2 & Frcd.SID_MASK, reason, reasonName: faultReasonName(reason),
        type: ir ? 'interrupt' : d3 & Frcd.T ? 'read' : 'write',
        address: ir ? lo >> IR_INDEX_SHIFT : lo & PAGE_MASK,
        pasid: d2 & Frcd.PP ? (d3 >>> Frcd.PASID_SHIFT) & 0xfffff : undefined,
      });
      await p.write(rec + 12, 4, Frcd.F);
      i = (i + 1) % nfr;
    }
  }
  await p.write(base + Reg.FSTS, 4, Fsts.PFO | Fsts.PPF | Fsts.PRO);
  return out;
}
