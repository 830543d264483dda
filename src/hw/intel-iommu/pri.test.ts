/**
 * A function's page request on its way to the queue (pri.ts), driven
 * straight through submitPageRequest on a whole unit: the checks before the
 * queue in QEMU 11.1's order (queue present, PASID present, execute without
 * read) leave no trace; the context fetch records its own fault whatever the
 * FPD bits; PRE clear records 0x47 unless the context, directory or PASID
 * entry sets FPD; legacy mode always refuses (no PRE bit there); the implicit
 * invalidation before the write; and what the function is told.
 */
import { describe, expect, it, vi } from 'vitest';
import { VtdBench, ctxEntry } from '../../../test/support/vtd-bench.js';
import { NO_PASID, type DevicePageRequest } from '../../memory/iommu.js';
import type { PropValues } from '../../machine/device-type.js';
import { VtdFault } from './fault-reasons.js';
import { submitPageRequest } from './pri.js';
import { Reg } from './reg-layout.js';
import { Pgtt } from './scalable-context.js';

const DEVFN = 0x10;
const SID = DEVFN;
const PASID = 5;
const DID = 3;
const VA = 0x4000_0000;
const PQ = 0x300_0000;
const DESC_SIZE = 32;
const SVM = { 'scalable-mode': true, 'device-iotlb': true, fsts: true, svm: true, 'pasid-bits': 20 } as const;
/** Scalable-context and PASID-directory entry bit 1. */
const FPD = 0x2n;
/** Scalable-context val0 bit 5: reserved. */
const SM_CTX_RSVD = 0x20n;
/** Legacy context bit 4: reserved there (where a scalable entry has PRE). */
const LEGACY_BIT4 = 0x10n;

function pr(over: Partial<DevicePageRequest> = {}): DevicePageRequest {
  return { addr: VA, read: true, write: true, prgi: 7, last: true, ...over };
}

/** The low qword's address of the scalable context entry of (0, devfn) under `root`. */
function smCtxAt(b: VtdBench, root: number, devfn: number): number {
  return Number(b.peek64(root) & ~0xfffn) + (devfn & 0x7f) * 32;
}

/**
 * A scalable unit (svm=on unless `props` say otherwise) with the function
 * (0, DEVFN): PASID 0 pass-through, PASID 5 first stage; the page-request
 * queue programmed at PQ, translation off (page requests do not need it).
 */
function scalable(opts: { pre?: boolean; fpd?: boolean; props?: PropValues } = {}) {
  const b = new VtdBench({ props: opts.props ?? { ...SVM } });
  const root = b.allocPage();
  const dir = b.allocPage();
  b.setScalableContext(root, 0, DEVFN, dir, { pre: opts.pre ?? true, fpd: opts.fpd });
  b.setPasidEntry(dir, 0, { pgtt: Pgtt.PassThrough, did: 1 });
  b.setPasidEntry(dir, PASID, { pgtt: Pgtt.FirstStage, did: DID, fs: b.allocPage() });
  b.setRoot(root, true);
  b.w64(Reg.PQA, BigInt(PQ));
  const events = b.recordEvents();
  return { b, root, dir, events };
}

const submit = (b: VtdBench, sid: number, pasid: number, req: DevicePageRequest = pr()) => submitPageRequest(b.iommu, sid, pasid, req);
const faults = (e: ReturnType<typeof scalable>['events']) => e.faults.map((f) => [f.reason, f.outcome]);

describe('the checks before the context: refused, nothing recorded', () => {
  it('without a page-request queue (svm off), whatever the context says', () => {
    for (const pre of [false, true]) {
      const { b, events } = scalable({ pre, props: { 'scalable-mode': true, 'device-iotlb': true, fsts: true, 'pasid-bits': 20 } });
      expect(b.iommu.pageRequests).toBeNull();
      expect(submit(b, SID, PASID)).toBe('refused');
      expect(events.faults).toEqual([]);
    }
  });

  it('without a PASID (QEMU supports no PRI without one), whatever the context says', () => {
    for (const pre of [false, true]) {
      const { b, events } = scalable({ pre });
      expect(submit(b, SID, NO_PASID)).toBe('refused');
      expect(events.faults).toEqual([]);
      expect(b.r64(Reg.PQT)).toBe(0n);
    }
  });

  it('execute without read, before the context is looked at', () => {
    for (const pre of [false, true]) {
      const { b, events } = scalable({ pre });
      expect(submit(b, SID, PASID, pr({ execute: true, read: false, write: false }))).toBe('refused');
      expect(submit(b, SID, PASID, pr({ execute: true, read: false, write: true }))).toBe('refused');
      expect(events.faults).toEqual([]);
      expect(b.r64(Reg.PQT)).toBe(0n);
    }
  });

  it('execute with read, write-only and read-only requests go through', () => {
    const { b, events } = scalable();
    expect(submit(b, SID, PASID, pr({ execute: true, read: true, write: false }))).toBe('queued');
    expect(submit(b, SID, PASID, pr({ read: false, write: true }))).toBe('queued');
    expect(submit(b, SID, PASID, pr({ execute: false, read: false, write: true }))).toBe('queued');
    expect(submit(b, SID, PASID, pr({ read: true, write: false }))).toBe('queued');
    expect(b.r64(Reg.PQT)).toBe(4n * BigInt(DESC_SIZE));
    expect(events.faults).toEqual([]);
  });
});

describe('PRE (scalable mode)', () => {
  it('PRE set: queued with the function\'s RID and the PASID, nothing recorded', () => {
    const { b, events } = scalable();
    expect(submit(b, SID, PASID)).toBe('queued');
    expect(Number((b.peek64(PQ) >> 16n) & 0xffffn)).toBe(SID);
    expect(Number((b.peek64(PQ) >> 32n) & 0xf_ffffn)).toBe(PASID);
    expect(events.faults).toEqual([]);
  });

  it('PRE clear: fault 0x47 with the request\'s PASID, address and direction; nothing queued', () => {
    const { b, events } = scalable({ pre: false });
    expect(submit(b, SID, PASID, pr({ addr: VA + 0x3000, write: false }))).toBe('refused');
    expect(events.faults).toMatchObject([{ sid: SID, reason: VtdFault.SM_PRE_ABS, addr: VA + 0x3000, isWrite: false, outcome: 'recorded' }]);
    const hi = b.r64(Reg.FRCD0 + 8);
    expect(Number((hi >> 32n) & 0xffn)).toBe(VtdFault.SM_PRE_ABS);
    expect(Number((hi >> 40n) & 0xf_ffffn)).toBe(PASID);
    expect(b.r64(Reg.PQT)).toBe(0n);
  });

  it('PRE clear: the FPD of the context, the PASID directory entry or the PASID entry suppresses 0x47', () => {
    const { b, dir, events } = scalable({ pre: false });
    // PASID 6: entry with FPD; PASID 64: under a directory entry with FPD; PASID 5: neither.
    b.setPasidEntry(dir, 6, { pgtt: Pgtt.FirstStage, did: DID, fpd: true });
    b.setPasidEntry(dir, 64, { pgtt: Pgtt.FirstStage, did: DID });
    b.poke64(dir + 8, b.peek64(dir + 8) | FPD);
    // Alternated, so nothing from the previous request can decide the next one.
    for (const pasid of [6, PASID, 6, 64, PASID, 64]) expect(submit(b, SID, pasid), String(pasid)).toBe('refused');
    const sm = VtdFault.SM_PRE_ABS;
    expect(faults(events)).toEqual([
      [sm, 'fpd'],
      [sm, 'recorded'],
      [sm, 'fpd'],
      [sm, 'fpd'],
      [sm, 'collapsed'],
      [sm, 'fpd'],
    ]);
    const quiet = scalable({ pre: false, fpd: true });
    expect(submit(quiet.b, SID, PASID)).toBe('refused');
    expect(faults(quiet.events)).toEqual([[sm, 'fpd']]);
  });

  it('PRE clear and the PASID entry unusable: still 0x47 (the context said no first)', () => {
    const { b, events } = scalable({ pre: false });
    expect(submit(b, SID, 0x100)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.SM_PRE_ABS, 'recorded']]);
  });
});

describe('a failed context fetch records its own fault, whatever PRE and FPD say', () => {
  it('a reserved bit in a context entry with PRE and FPD set: 0x0B recorded', () => {
    const { b, root, events } = scalable({ fpd: true });
    const at = smCtxAt(b, root, DEVFN);
    b.poke64(at, b.peek64(at) | SM_CTX_RSVD);
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.CONTEXT_ENTRY_RSVD, 'recorded']]);
    expect(b.r64(Reg.PQT)).toBe(0n);
  });

  it('a context entry with PRE and FPD but P clear: 0x02 recorded', () => {
    const { b, root, events } = scalable({ fpd: true });
    const at = smCtxAt(b, root, DEVFN);
    b.poke64(at, b.peek64(at) & ~1n);
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.CONTEXT_ENTRY_P, 'recorded']]);
  });

  it('a function without a root entry, right after one whose PRE allowed a request', () => {
    const { b, events } = scalable();
    expect(submit(b, SID, PASID)).toBe('queued');
    expect(submit(b, 0x0100 | DEVFN, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.ROOT_ENTRY_P, 'recorded']]);
    expect(b.r64(Reg.PQT)).toBe(BigInt(DESC_SIZE));
  });

  it('a function without a context entry', () => {
    const { b, events } = scalable();
    expect(submit(b, 0x18, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.CONTEXT_ENTRY_P, 'recorded']]);
  });
});

describe('legacy mode (svm=on, root table without SMT): always refused', () => {
  /** The svm unit with a legacy root table and a valid legacy context entry for (0, DEVFN). */
  function legacy(opts: { fpd?: boolean; bit4?: boolean; absent?: boolean } = {}) {
    const b = new VtdBench({ props: { ...SVM } });
    const root = b.allocPage();
    const [lo, hi] = ctxEntry(b.allocPage(), DID, 2, { fpd: opts.fpd });
    b.setContext(root, 0, DEVFN, (lo | (opts.bit4 ? LEGACY_BIT4 : 0n)) & (opts.absent ? ~1n : ~0n), hi);
    b.setRoot(root, false);
    b.w64(Reg.PQA, BigInt(PQ));
    return { b, events: b.recordEvents() };
  }

  it('a valid context entry: 0x47, as a scalable entry with PRE clear', () => {
    const { b, events } = legacy();
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(events.faults).toMatchObject([{ sid: SID, reason: VtdFault.SM_PRE_ABS, outcome: 'recorded' }]);
    expect(b.r64(Reg.PQT)).toBe(0n);
  });

  it('the context entry\'s FPD suppresses it', () => {
    const { b, events } = legacy({ fpd: true });
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.SM_PRE_ABS, 'fpd']]);
  });

  it('bit 4 (PRE in scalable mode) is reserved: the fetch fails with 0x0B, recorded even with FPD', () => {
    const { b, events } = legacy({ fpd: true, bit4: true });
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.CONTEXT_ENTRY_RSVD, 'recorded']]);
    expect(b.r64(Reg.PQT)).toBe(0n);
  });

  it('an entry with FPD but P clear: 0x02 recorded (QEMU reads no FPD after a failed fetch)', () => {
    const { b, events } = legacy({ fpd: true, absent: true });
    expect(submit(b, SID, PASID)).toBe('refused');
    expect(faults(events)).toEqual([[VtdFault.CONTEXT_ENTRY_P, 'recorded']]);
  });
});

describe('the implicit invalidation before the write, and the answer', () => {
  it('drops the page of (DID, PASID) from the IOTLB, then queues', () => {
    const { b } = scalable();
    const drop = vi.spyOn(b.iommu.iotlb, 'removePasidPages');
    expect(submit(b, SID, PASID, pr({ addr: VA + 0x5000 }))).toBe('queued');
    expect(drop.mock.calls).toEqual([[DID, PASID, VA + 0x5000, 0]]);
  });

  it('a PASID entry that is not first stage, or missing: refused, nothing written or recorded', () => {
    const { b, dir, events } = scalable();
    b.setPasidEntry(dir, 6, { pgtt: Pgtt.PassThrough, did: 1 });
    const drop = vi.spyOn(b.iommu.iotlb, 'removePasidPages');
    expect(submit(b, SID, 6)).toBe('refused');
    expect(submit(b, SID, 7)).toBe('refused');
    expect(drop).not.toHaveBeenCalled();
    expect(b.r64(Reg.PQT)).toBe(0n);
    expect(b.peek64(PQ)).toBe(0n);
    expect(events.faults).toEqual([]);
  });

  it('uses the context of the function asking: the same PASID of another function is its own', () => {
    const { b, root } = scalable();
    const otherDir = b.allocPage();
    b.setScalableContext(root, 0, 0x18, otherDir, { pre: true });
    b.setPasidEntry(otherDir, 0, { pgtt: Pgtt.PassThrough, did: 1 });
    b.setPasidEntry(otherDir, PASID, { pgtt: Pgtt.PassThrough, did: 9 });
    expect(submit(b, SID, PASID)).toBe('queued');
    expect(submit(b, 0x18, PASID)).toBe('refused');
    expect(submit(b, SID, PASID)).toBe('queued');
    expect(b.r64(Reg.PQT)).toBe(2n * BigInt(DESC_SIZE));
  });

  it('a full queue is overflow; a queue that is not memory is refused', () => {
    const { b } = scalable();
    b.w64(Reg.PQH, BigInt(DESC_SIZE));
    expect(submit(b, SID, PASID)).toBe('overflow');
    const broken = scalable();
    broken.b.w64(Reg.PQA, 0x8000_0000n);
    expect(submit(broken.b, SID, PASID)).toBe('refused');
    expect(broken.b.r64(Reg.PQT)).toBe(0n);
  });
});
