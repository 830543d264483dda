/**
 * Cache invalidation as Linux issues it: register-based (CCMD / IOTLB
 * registers, polled) or queued (qi_submit_sync: descriptors + a wait
 * descriptor whose status write the driver spins on).
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

/** Queued-invalidation descriptor fields (128-bit descriptors). */
export const QiDesc = {
  CC: 1n, IOTLB: 2n, DEVTLB: 3n, IEC: 4n, WAIT: 5n,
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
  WAIT_STATUS_SHIFT: 32n,
  IH: 1n << 6n,
} as const;

/** Queue geometry (Linux: one page, 256 descriptors of 16 bytes). */
const QI_ENTRIES = 256;
const QI_DESC_SIZE = 16;
const QI_DONE = 2;
const QI_IN_USE = 1;

/** Queued invalidation (the unit must have QIE set by `enable`). */
export class QueuedInvalidator implements Invalidator {
  readonly kind = 'queued';
  private tail = 0;
  private status = 0;
  queue = 0;
  /** Descriptors the hardware rejected (IQE) so far. */
  iqeCount = 0;

  constructor(private readonly p: GuestPlatform, private readonly base: number, private readonly alloc: GuestAllocator) {}

  /** Allocates the queue and status word; IQA value to program. */
  async prepare(): Promise<bigint> {
    if (!this.queue) {
      this.queue = await this.alloc.page();
      this.status = await this.alloc.alloc(16, 16);
    }
    this.tail = 0;
    return BigInt(this.queue) & ~Iqa.QS_MASK;
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

  /** Submits descriptors plus a wait descriptor; resolves when the status write lands. */
  async submit(descs: ReadonlyArray<readonly [bigint, bigint]>): Promise<void> {
    await this.p.write(this.status, 4, QI_IN_USE);
    const all = [...descs, [QiDesc.WAIT | QiDesc.WAIT_SW | (BigInt(QI_DONE) << QiDesc.WAIT_STATUS_SHIFT), BigInt(this.status)] as const];
    const first = this.tail;
    for (const [q0, q1] of all) {
      const at = this.queue + this.tail * QI_DESC_SIZE;
      await this.p.write64(at, q0);
      await this.p.write64(at + 8, q1);
      this.tail = (this.tail + 1) % QI_ENTRIES;
    }
    await this.p.write64(this.base + Reg.IQT, BigInt(this.tail * QI_DESC_SIZE));
    for (let i = 0; i < POLL_LIMIT; i++) {
      if ((await this.p.read(this.status, 4)) === QI_DONE) return;
      const fsts = await this.p.read(this.base + Reg.FSTS, 4);
      if (fsts & Fsts.IQE) {
        // Linux: replace the bad descriptor with a wait descriptor, clear IQE, report -EINVAL.
        const head = Number((await this.p.read64(this.base + Reg.IQH)) >> 4n);
        const at = this.queue + head * QI_DESC_SIZE;
        await this.p.write64(at, all[all.length - 1]![0]);
        await this.p.write64(at + 8, all[all.length - 1]![1]);
        await this.p.write(this.base + Reg.FSTS, 4, Fsts.IQE);
        this.iqeCount++;
        throw new Error(`VT-d: invalidation queue error at descriptor ${head} (submitted from ${first})`);
      }
    }
    throw new Error('VT-d: queued invalidation timed out');
  }
}
