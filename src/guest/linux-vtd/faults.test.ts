import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { FAULT_REASONS, faultReasonName, formatFault, handleFaults } from './faults.js';

const BASE = 0xfed90000;
const FRO = 0x220;

/** A register file with FSTS and two fault records; W1C on F and FSTS bits. */
function unit(records: Array<[lo: bigint, hi: bigint]>, fri = 0): { p: FakePlatform; regs: Map<number, bigint> } {
  const p = new FakePlatform();
  const regs = new Map<number, bigint>();
  let fsts = (records.some(([, hi]) => hi >> 63n) ? 2 : 0) | (fri << 8);
  records.forEach(([lo, hi], i) => { regs.set(FRO + i * 16, lo); regs.set(FRO + i * 16 + 8, hi); });
  p.mapMmio(BASE, 0x1000, {
    read(off, size) {
      if (off === 0x34) return BigInt(fsts);
      const q = regs.get(off & ~7) ?? 0n;
      const v = off & 4 ? q >> 32n : q;
      return size === 8 ? v : v & 0xffffffffn;
    },
    write(off, _size, value) {
      if (off === 0x34) { fsts &= ~Number(value & 0x83n); return; }
      if (off >= FRO && (off & 0xf) === 12 && value & 0x80000000n) regs.set(off - 4, regs.get(off - 4)! & ~(1n << 63n));
    },
  });
  return { p, regs };
}

describe('handleFaults', () => {
  it('walks from FRI, decodes, clears F and FSTS', async () => {
    const hi = (1n << 63n) | (1n << 62n) | (6n << 32n) | 0x0008n; // F, T=read, FR 6, SID 00:01.0
    const { p, regs } = unit([[0x100000n, hi]]);
    const recs = await handleFaults(p, BASE, FRO, 1);
    expect(recs).toEqual([{ index: 0, sid: 8, reason: 6, reasonName: FAULT_REASONS[6], type: 'read', address: 0x100000n, pasid: undefined }]);
    expect(regs.get(FRO + 8)! >> 63n).toBe(0n);
    expect(await p.read(BASE + 0x34, 4)).toBe(0);
    expect(formatFault(recs[0]!)).toBe('DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x100000 [fault reason 0x06] PTE Read access is not set');
  });
  it('wraps around NFR and decodes interrupt-remapping faults by index', async () => {
    const ir = (1n << 63n) | (0x22n << 32n) | 0x0100n;
    const dma = (1n << 63n) | (5n << 32n) | 0x0010n;
    const { p } = unit([[0n, dma], [5n << 48n, ir]], 1);
    const recs = await handleFaults(p, BASE, FRO, 2);
    expect(recs.map((r) => [r.index, r.type, r.reason, r.address])).toEqual([[1, 'interrupt', 0x22, 5n], [0, 'write', 5, 0n]]);
    expect(formatFault(recs[0]!)).toContain('[INTR-REMAP] Request device [01:00.0] fault index 0x5 [fault reason 0x22]');
  });
  it('decodes a scalable-mode fault with a PASID (PP) and names it', async () => {
    const hi = (1n << 63n) | (0x59n << 32n) | (0x1234n << 40n) | (1n << 31n) | 0x0018n; // F, write, FR 0x59, PASID 0x1234, PP
    const { p } = unit([[0x7000n, hi]]);
    const [r] = await handleFaults(p, BASE, FRO, 1);
    expect([r!.pasid, r!.reason, r!.type]).toEqual([0x1234, 0x59, 'write']);
    expect(formatFault(r!)).toBe('DMAR: [DMA Write PASID 0x1234] Request device [00:03.0] fault addr 0x7000 [fault reason 0x59] SM: PASID table entry not present');
    expect(faultReasonName(0x71)).toBe('SM: first-stage paging entry not present');
    expect(faultReasonName(0x51)).toBe('SM: PASID directory entry not present');
  });
  it('reads nothing without PPF and names unknown reasons', async () => {
    const { p } = unit([]);
    expect(await handleFaults(p, BASE, FRO, 1)).toEqual([]);
    expect(faultReasonName(0x99)).toBe('Unknown');
  });
});
