/**
 * Cache invalidation as Linux issues it: register-based (CCMD / IOTLB
 * registers, polled) or queued (qi_submit_sync: descriptors + a wait
 * descriptor whose status write the driver spins on).
 *
 * With ECAP.SMTS the queue holds 256-bit descriptors (IQA.DW=1, QS=1: two
 * pages, 256 entries; IQT/IQH = index << 5) whatever mode the driver runs
 * in, as Linux does; legacy descriptors then take 32 bytes with zero upper
 * halves.  Only such a queue carries the scalable-mode descriptors:
 * PASID-based IOTLB (6), PASID-cache (7) and PASID-based device-TLB (8).
 */
import type { GuestPlatform } from '../platform.js';
import type { GuestAllocator } from '../alloc.js';
import { Ccmd, Fsts, Iotlb, Iqa, POLL_LIMIT, Reg } from './regs.js';

/** Invalidation granularities. */
export type ContextScope = { kind: 'global' } | { kind: 'domain'; did: number } | { kind: 'device'; did: number; sid: number; fm: number };
/** IOTLB granularities. */
export type IotlbScope = { kind: 'global' } | { kind: 'domain'; did: number } | { kind: 'page'; did: number; addr: number; am: number; ih: boolean };

/** Something that can invalidate a unit's caches. */
export interface Invalidator {
  readonly kind: 'register' | 'queued';
  context(scope: ContextScope): Promise<void>;
  iotlb(scope: IotlbScope, drainReads: boolean, drainWrites: boolean): Promise<void>;
  /** Interrupt entry cache: global, or `count = 2^im` entries from `index`. */
  iec(global: boolean, index?: number, im?: number): Promise<void>;
}

/** Register-based invalidation (no IEC: needs QI). */
export class RegisterInvalidator implements Invalidator {
  readonly kind = 'register';
  /** IAIG of the last IOTLB invalidation (0 = not done). */
  lastIaig = 0;
  constructor(private readonly p: GuestPlatform, private readonly base: number, private readonly iotlbOffset: number) {}

  async context(scope: ContextScope): Promise<void> {
    let v = Ccmd.ICC;
    if (scope.kind === 'global') v |= Ccmd.GLOBAL << Ccmd.CIRG_SHIFT;
    else if (scope.kind === 'domain') v |= (Ccmd.DOMAIN << Ccmd.CIRG_SHIFT) | BigInt(scope.did);
    else v |= (Ccmd.DEVICE << Ccmd.CIRG_SHIFT) | BigInt(scope.did) | (BigInt(scope.sid) << Ccmd.SID_SHIFT) | (BigInt(scope.fm) << Ccmd.FM_SHIFT);
    await this.p.write64(this.base + Reg.CCMD, v);
    for (let i = 0; i < POLL_LIMIT; i++) if (!((await this.p.read64(this.base + Reg.CCMD)) & Ccmd.ICC)) return;
    throw new Error('VT-d: context invalidation timed out');
  }

  async iotlb(scope: IotlbScope, dr: boolean, dw: boolean): Promise<void> {
    let v = Iotlb.IVT;
    if (dr) v |= Iotlb.DR;
    if (dw) v |= Iotlb.DW;
    if (scope.kind === 'global') v |= Iotlb.GLOBAL << Iotlb.IIRG_SHIFT;
    else if (scope.kind === 'domain') v |= (Iotlb.DOMAIN << Iotlb.IIRG_SHIFT) | (BigInt(scope.did) << Iotlb.DID_SHIFT);
    else {
      v |= (Iotlb.PAGE << Iotlb.IIRG_SHIFT) | (BigInt(scope.did) << Iotlb.DID_SHIFT);
      await this.p.write64(this.base + this.iotlbOffset, BigInt(scope.addr) | (scope.ih ? Iotlb.IVA_IH : 0n) | BigInt(scope.am));
    }
    const reg = this.base + this.iotlbOffset + 8;
    await this.p.write64(reg, v);
    for (let i = 0; i < POLL_LIMIT; i++) {
      const r = await this.p.read64(reg);
      if (!(r & Iotlb.IVT)) {
        this.lastIaig = Number((r >> Iotlb.IAIG_SHIFT) & Iotlb.IAIG_MASK);
        return;
      }
    }
    throw new Error('VT-d: IOTLB invalidation timed out');
  }

  async iec(): Promise<void> {
    // IEC exists only as a queued descriptor; callers use QI when IR is on.
  }
}

/** PASID-cache invalidation granularities (descriptor 7). */
export type PasidCacheScope = { kind: 'domain'; did: number } | { kind: 'pasid'; did: number; pasid: number } | { kind: 'global' };
/** PASID-based IOTLB granularities (descriptor 6): all of a PASID in a domain, or pages of it. */
export type PasidIotlbScope = { kind: 'pasid'; did: number; pasid: number } | { kind: 'page'; did: number; pasid: number; addr: number; am: number; ih: boolean };
/** A PASID-based device-TLB invalidation (descriptor 8): `sizeOrder` 0 is one page, n is 2^n pages at an aligned `addr`. */
export interface PasidDevTlbScope { readonly sid: number; readonly pasid: number; readonly qdep: number; readonly addr: number; readonly sizeOrder: number }

/** Queued-invalidation descriptor fields (qw0 / qw1; 256-bit descriptors add two zero qwords). */
export const QiDesc = {
  CC: 1n, IOTLB: 2n, DEVTLB: 3n, IEC: 4n, WAIT: 5n, PASID_IOTLB: 6n, PASID_CACHE: 7n, PASID_DEVTLB: 8n,
  GRAN_SHIFT: 4n,
  DID_SHIFT: 16n,
  SID_SHIFT: 32n,
  FM_SHIFT: 48n,
  IOTLB_DR: 1n << 7n,
  IOTLB_DW: 1n << 6n,
  IEC_INDEX_SEL: 1n << 4n,
  IEC_IM_SHIFT: 27n,
  IEC_IIDX_SHIFT: 32n,
  WAIT_SW: 1n << 5n,
  /** Wait descriptor: fence (6) and page-request drain (7, with ECAP.PDS). */
  WAIT_FN: 1n << 6n,
  WAIT_PD: 1n << 7n,
  WAIT_STATUS_SHIFT: 32n,
  IH: 1n << 6n,
  /** Descriptors 6-8: PASID in qw0 bits 51:32. */
  PASID_SHIFT: 32n,
  /** Descriptor 8: SID 31:16, QDEP 8:4; qw1 S (size) bit 11. */
  PDEVTLB_SID_SHIFT: 16n,
  PDEVTLB_QDEP_SHIFT: 4n,
  PDEVTLB_QDEP_MASK: 0x1fn,
  PDEVTLB_S: 1n << 11n,
} as const;

/** Granularity values of descriptor 7 (PASID-cache). */
export const PcGran = { DOMAIN: 0n, PASID: 1n, GLOBAL: 3n } as const;
/** Granularity values of descriptor 6 (PASID-based IOTLB). */
export const PiotlbGran = { PASID: 2n, PAGE: 3n } as const;

/** Options of one submission (Linux qi_submit_sync's `options`). */
export interface SubmitOptions {
  /**
   * QI_OPT_WAIT_DRAIN: PD on the queue's own status wait, so it completes
   * only after the page requests and responses before it have drained
   * (intel_iommu_drain_pasid_prq; the unit needs ECAP.PDS).
   */
  readonly drainPageRequests?: boolean;
}

/** Queue geometry (Linux: 256 descriptors; one page of 16-byte ones, or two pages of 32-byte ones). */
const QI_ENTRIES = 256;
const QI_DESC_SIZE = 16;
const QI_WIDE_DESC_SIZE = 32;
/** IQH/IQT hold index << 4 (128-bit) or << 5 (256-bit). */
const QI_SHIFT = 4n;
const QI_WIDE_SHIFT = 5n;
/** IQA.QS of the 256-bit queue: 2^QS pages. */
const QI_WIDE_QS = 1n;
const QI_DONE = 2;
const QI_IN_USE = 1;
const QWORD = 8;
const PAGE_SHIFT = 12;

/** Queued invalidation (the unit must have QIE set by `enable`). */
export class QueuedInvalidator implements Invalidator {
  readonly kind = 'queued';
  private tail = 0;
  private status = 0;
  queue = 0;
  /** 256-bit descriptors (IQA.DW): the unit offers scalable mode. */
  wide = false;
  /** Descriptors the hardware rejected (IQE) so far. */
  iqeCount = 0;

  constructor(private readonly p: GuestPlatform, private readonly base: number, private readonly alloc: GuestAllocator) {}

  /** Bytes per descriptor. */
  get descSize(): number {
    return this.wide ? QI_WIDE_DESC_SIZE : QI_DESC_SIZE;
  }

  /** Allocates the queue and status word; IQA value to program (`wide`: ECAP.SMTS, 256-bit descriptors). */
  async prepare(wide = false): Promise<bigint> {
    if (!this.queue || wide !== this.wide) {
      const bytes = QI_ENTRIES * (wide ? QI_WIDE_DESC_SIZE : QI_DESC_SIZE);
      this.queue = await this.alloc.alloc(bytes, bytes);
      if (!this.status) this.status = await this.alloc.alloc(16, 16);
      this.wide = wide;
    }
    this.tail = 0;
    return wide ? BigInt(this.queue) | Iqa.DW | QI_WIDE_QS : BigInt(this.queue);
  }

  async context(scope: ContextScope): Promise<void> {
    const g = scope.kind === 'global' ? 1n : scope.kind === 'domain' ? 2n : 3n;
    let q0 = QiDesc.CC | (g << QiDesc.GRAN_SHIFT);
    if (scope.kind !== 'global') q0 |= BigInt(scope.did) << QiDesc.DID_SHIFT;
    if (scope.kind === 'device') q0 |= (BigInt(scope.sid) << QiDesc.SID_SHIFT) | (BigInt(scope.fm) << QiDesc.FM_SHIFT);
    await this.submit([[q0, 0n]]);
  }

  async iotlb(scope: IotlbScope, dr: boolean, dw: boolean): Promise<void> {
    const g = scope.kind === 'global' ? 1n : scope.kind === 'domain' ? 2n : 3n;
    let q0 = QiDesc.IOTLB | (g << QiDesc.GRAN_SHIFT) | (dr ? QiDesc.IOTLB_DR : 0n) | (dw ? QiDesc.IOTLB_DW : 0n);
    let q1 = 0n;
    if (scope.kind !== 'global') q0 |= BigInt(scope.did) << QiDesc.DID_SHIFT;
    if (scope.kind === 'page') q1 = BigInt(scope.addr) | (scope.ih ? QiDesc.IH : 0n) | BigInt(scope.am);
    await this.submit([[q0, q1]]);
  }

  async iec(global: boolean, index = 0, im = 0): Promise<void> {
    let q0 = QiDesc.IEC;
    if (!global) q0 |= QiDesc.IEC_INDEX_SEL | (BigInt(im) << QiDesc.IEC_IM_SHIFT) | (BigInt(index) << QiDesc.IEC_IIDX_SHIFT);
    await this.submit([[q0, 0n]]);
  }

  /** PASID-cache invalidation (descriptor 7; needs the 256-bit queue). */
  async pasidCache(scope: PasidCacheScope): Promise<void> {
    const g = scope.kind === 'global' ? PcGran.GLOBAL : scope.kind === 'pasid' ? PcGran.PASID : PcGran.DOMAIN;
    let q0 = QiDesc.PASID_CACHE | (g << QiDesc.GRAN_SHIFT);
    if (scope.kind !== 'global') q0 |= BigInt(scope.did) << QiDesc.DID_SHIFT;
    if (scope.kind === 'pasid') q0 |= BigInt(scope.pasid) << QiDesc.PASID_SHIFT;
    await this.submit([[q0, 0n]]);
  }

  /** PASID-based IOTLB invalidation (descriptor 6; needs the 256-bit queue). */
  async pasidIotlb(scope: PasidIotlbScope): Promise<void> {
    const g = scope.kind === 'page' ? PiotlbGran.PAGE : PiotlbGran.PASID;
    const q0 = QiDesc.PASID_IOTLB | (g << QiDesc.GRAN_SHIFT) | (BigInt(scope.did) << QiDesc.DID_SHIFT) | (BigInt(scope.pasid) << QiDesc.PASID_SHIFT);
    const q1 = scope.kind === 'page' ? BigInt(scope.addr) | (scope.ih ? QiDesc.IH : 0n) | BigInt(scope.am) : 0n;
    await this.submit([[q0, q1]]);
  }

  /**
   * PASID-based device-TLB invalidation (descriptor 8), for ATS devices
   * using a PASID other than RID_PASID (Linux flushes RID_PASID with the
   * legacy descriptor 3).  PFSID stays 0: it is meaningful only with ECAP.DIT.
   */
  async pasidDevTlb(scope: PasidDevTlbScope): Promise<void> {
    const q0 = QiDesc.PASID_DEVTLB | (BigInt(scope.sid) << QiDesc.PDEVTLB_SID_SHIFT) | (BigInt(scope.pasid) << QiDesc.PASID_SHIFT) |
      ((BigInt(scope.qdep) & QiDesc.PDEVTLB_QDEP_MASK) << QiDesc.PDEVTLB_QDEP_SHIFT);
    // Size encoding (spec 6.5.2.7): with S set, the lowest clear address bit above bit 11 marks the range size.
    const sizeBits = scope.sizeOrder > 0 ? QiDesc.PDEVTLB_S | (((1n << BigInt(scope.sizeOrder - 1)) - 1n) << BigInt(PAGE_SHIFT)) : 0n;
    await this.submit([[q0, BigInt(scope.addr) | sizeBits]]);
  }

  /** The queue's own status wait (status write of QI_DONE), with PD when asked to drain page requests. */
  statusWait(opts: SubmitOptions = {}): bigint {
    return QiDesc.WAIT | QiDesc.WAIT_SW | (opts.drainPageRequests ? QiDesc.WAIT_PD : 0n) | (BigInt(QI_DONE) << QiDesc.WAIT_STATUS_SHIFT);
  }

  /** Submits descriptors plus the status wait; resolves when the status write lands. */
  async submit(descs: ReadonlyArray<readonly [bigint, bigint]>, opts: SubmitOptions = {}): Promise<void> {
    await this.p.write(this.status, 4, QI_IN_USE);
    const all = [...descs, [this.statusWait(opts), BigInt(this.status)] as const];
    const first = this.tail;
    for (const [q0, q1] of all) {
      await this.writeDesc(this.tail, q0, q1);
      this.tail = (this.tail + 1) % QI_ENTRIES;
    }
    const shift = this.wide ? QI_WIDE_SHIFT : QI_SHIFT;
    await this.p.write64(this.base + Reg.IQT, BigInt(this.tail) << shift);
    for (let i = 0; i < POLL_LIMIT; i++) {
      if ((await this.p.read(this.status, 4)) === QI_DONE) return;
      const fsts = await this.p.read(this.base + Reg.FSTS, 4);
      if (fsts & Fsts.IQE) {
        // Linux: replace the bad descriptor with a wait descriptor, clear IQE, report -EINVAL.
        const head = Number((await this.p.read64(this.base + Reg.IQH)) >> shift);
        await this.writeDesc(head, all[all.length - 1]![0], all[all.length - 1]![1]);
        await this.p.write(this.base + Reg.FSTS, 4, Fsts.IQE);
        this.iqeCount++;
        throw new Error(`VT-d: invalidation queue error at descriptor ${head} (submitted from ${first})`);
      }
    }
    throw new Error('VT-d: queued invalidation timed out');
  }

  /** Writes descriptor `index` (a 256-bit one with zero upper qwords in the wide queue). */
  private async writeDesc(index: number, q0: bigint, q1: bigint): Promise<void> {
    const at = this.queue + index * this.descSize;
    await this.p.write64(at, q0);
    await this.p.write64(at + QWORD, q1);
    if (this.wide) {
      await this.p.write64(at + 2 * QWORD, 0n);
      await this.p.write64(at + 3 * QWORD, 0n);
    }
  }
}
