/**
 * One DMA remapping unit (a DRHD) brought up in Linux's order:
 * VER/CAP/ECAP, GCMD shadow seeded from GSTS, disable what firmware left on,
 * queued invalidation, root table + SRTP, global context and IOTLB
 * invalidation (unless CAP.ESRTPS), fault interrupt, translation enable,
 * protected memory off.
 *
 * Scalable mode is used when ECAP.SMTS is set (Linux with intel_iommu=sm_on,
 * the default of current kernels) and queued invalidation is available:
 * RTADDR carries SMT, domain ID 1 is reserved for pass-through PASID
 * entries, and the global invalidations after SRTP include the PASID cache.
 */
import type { GuestPlatform } from '../platform.js';
import type { GuestAllocator } from '../alloc.js';
import { Cap, Ecap, Fectl, GCMD_ONE_SHOT, Gcmd, Pmen, POLL_LIMIT, RTADDR_SMT, Reg, field } from './regs.js';
import {
  QueuedInvalidator, RegisterInvalidator, type ContextScope, type Invalidator, type IotlbScope, type PasidCacheScope, type PasidIotlbScope,
} from './invalidation.js';
import { handleFaults, type FaultRecord } from './faults.js';

/** Named invalidations a test may skip (to prove they are needed). */
export type InvalidationSite =
  | 'attach-context' | 'attach-iotlb' | 'detach-context' | 'detach-iotlb' | 'map-iotlb' | 'unmap-iotlb' | 'bringup-context' | 'bringup-iotlb'
  | 'attach-pasid-cache' | 'detach-pasid-cache' | 'bringup-pasid-cache'
  /** IOTLB invalidation after a present leaf was rewritten in place (Domain.remapInPlace). */
  | 'remap-iotlb'
  /** IEC invalidation after an IRTE was rewritten (InterruptRemapping.program). */
  | 'modify-irte-iec';

/** Options of a unit. */
export interface UnitOptions {
  /** Use register-based invalidation even when ECAP.QI is set (scalable mode then stays off). */
  readonly noQi?: boolean;
  /** Legacy mode even when ECAP.SMTS is set (Linux intel_iommu=sm_off). */
  readonly smOff?: boolean;
  /** Invalidations to leave out (test-only). */
  readonly skip?: ReadonlySet<InvalidationSite>;
  /** Fault event MSI: data (vector) and address. */
  readonly faultVector?: number;
  readonly faultAddress?: number;
}

/** SAGAW bit -> page-table levels. */
const SAGAW_LEVELS: ReadonlyArray<readonly [bit: number, levels: number, aw: number]> = [[3, 5, 57], [2, 4, 48], [1, 3, 39]];
/** Default fault vector/address (Linux assigns a vector; xAPIC address of CPU 0). */
const DEFAULT_FAULT_VECTOR = 0xf1;
const MSI_ADDRESS_BASE = 0xfee0_0000;
/** Bytes of register space per IRO/FRO unit. */
const REG_UNIT = 16;
/** Major version field of VER (bits 7:4). */
const VER_MAJOR_SHIFT = 4;
/** Domain ID of pass-through PASID entries in scalable mode (Linux FLPT_DEFAULT_DID); never handed to a domain. */
export const FLPT_DEFAULT_DID = 1;

/** A remapping unit. */
export class VtdUnit {
  ver = 0;
  cap = 0n;
  ecap = 0n;
  /** Persistent GCMD bits we keep on (Linux iommu->gcmd). */
  gcmd = 0;
  levels = 3;
  addressWidth = 39;
  invalidator: Invalidator;
  readonly qi: QueuedInvalidator;
  rootTable = 0;
  /** The unit runs in scalable mode (RTADDR.SMT): decided by `probe`. */
  scalable = false;
  /** Lines describing each step (register values included). */
  readonly log: string[] = [];
  /** Domain IDs in use (0 reserved). */
  private readonly dids = new Set<number>([0]);

  constructor(readonly p: GuestPlatform, readonly base: number, readonly alloc: GuestAllocator, readonly opts: UnitOptions = {}) {
    this.qi = new QueuedInvalidator(p, base, alloc);
    this.invalidator = new RegisterInvalidator(p, base, 0);
  }

  /** CAP/ECAP field helpers. */
  capf(f: keyof typeof Cap): number { return field(this.cap, Cap[f]); }
  ecapf(f: keyof typeof Ecap): number { return field(this.ecap, Ecap[f]); }
  get cachingMode(): boolean { return this.capf('CM') === 1; }
  get froBytes(): number { return this.capf('FRO') * REG_UNIT; }
  get nfr(): number { return this.capf('NFR') + 1; }
  get domainCount(): number { return 1 << (4 + 2 * this.capf('ND')); }
  /** DMA domains use first-stage tables (scalable mode with ECAP.FLTS, as Linux prefers). */
  get firstStage(): boolean { return this.scalable && this.ecapf('FLTS') === 1; }

  /** Step 1: identify; returns false when the unit looks absent. */
  async probe(): Promise<boolean> {
    this.ver = await this.p.read(this.base + Reg.VER, 4);
    this.cap = await this.p.read64(this.base + Reg.CAP);
    this.ecap = await this.p.read64(this.base + Reg.ECAP);
    if (this.cap === 0xffff_ffff_ffff_ffffn || this.ecap === 0xffff_ffff_ffff_ffffn || this.cap === 0n) {
      this.log.push(`unit 0x${this.base.toString(16)}: CAP/ECAP all-ones or zero, ignored`);
      return false;
    }
    const gsts = await this.p.read(this.base + Reg.GSTS, 4);
    this.gcmd = gsts & (Gcmd.TE | Gcmd.QIE | Gcmd.IRE);
    const mgaw = this.capf('MGAW') + 1;
    const sagaw = this.capf('SAGAW');
    const pick = SAGAW_LEVELS.find(([bit, , aw]) => sagaw & (1 << bit) && aw <= Math.max(mgaw, 39));
    if (pick) [, this.levels, this.addressWidth] = pick;
    this.invalidator = new RegisterInvalidator(this.p, this.base, this.ecapf('IRO') * REG_UNIT);
    this.decideScalable();
    this.log.push(`unit 0x${this.base.toString(16)}: VER ${this.ver >> VER_MAJOR_SHIFT}.${this.ver & 0xf} CAP 0x${this.cap.toString(16)} ` +
      `ECAP 0x${this.ecap.toString(16)} GSTS 0x${gsts.toString(16)}`);
    this.log.push(`  SAGAW 0x${sagaw.toString(16)} MGAW ${mgaw} -> ${this.levels}-level tables; ND ${this.capf('ND')} (${this.domainCount} domains) ` +
      `CM ${this.capf('CM')} RWBF ${this.capf('RWBF')} ESRTPS ${this.capf('ESRTPS')} QI ${this.ecapf('QI')} IR ${this.ecapf('IR')} PT ${this.ecapf('PT')} ` +
      `FRO 0x${this.capf('FRO').toString(16)} NFR ${this.nfr}`);
    if (this.ecapf('SMTS')) {
      this.log.push(`  SMTS 1 FLTS ${this.ecapf('FLTS')} SLTS ${this.ecapf('SLTS')} PASID ${this.ecapf('PASID')} -> ` +
        (this.scalable ? `scalable mode, DMA domains on ${this.firstStage ? 'first' : 'second'}-stage tables` : 'legacy mode'));
    }
    return true;
  }

  /** Scalable mode when offered, wanted, and queued invalidation is usable (PASID descriptors exist only in the queue). */
  private decideScalable(): void {
    this.scalable = this.ecapf('SMTS') === 1 && !this.opts.smOff && !this.opts.noQi && this.ecapf('QI') === 1;
    if (this.scalable) this.dids.add(FLPT_DEFAULT_DID);
  }

  /** Writes GCMD (shadow | bits) and polls GSTS until `(gsts & status) === want`. */
  private async gcmdWrite(bits: number, status: number, want: number): Promise<number> {
    await this.p.write(this.base + Reg.GCMD, 4, (this.gcmd | bits) >>> 0);
    for (let i = 0; i < POLL_LIMIT; i++) {
      const gsts = await this.p.read(this.base + Reg.GSTS, 4);
      if (((gsts & status) >>> 0) === (want >>> 0)) return gsts;
    }
    throw new Error(`VT-d: GSTS did not reach 0x${want.toString(16)} (mask 0x${status.toString(16)})`);
  }

  /** Sets or clears a persistent GCMD bit and waits for its status. */
  async setPersistent(bit: number, on: boolean): Promise<number> {
    if (on) this.gcmd |= bit;
    else this.gcmd &= ~bit;
    this.gcmd &= ~GCMD_ONE_SHOT;
    return this.gcmdWrite(0, bit, on ? bit : 0);
  }

  /** Issues a one-shot command (SRTP, SIRTP, WBF) and waits for its status. */
  async oneShot(bit: number, statusMustSet: boolean): Promise<number> {
    return this.gcmdWrite(bit, statusMustSet ? bit : 0, statusMustSet ? bit : 0);
  }

  /** Write-buffer flush when CAP.RWBF (or caching mode) asks for one. */
  async flushWriteBuffer(): Promise<void> {
    if (!this.capf('RWBF')) return;
    await this.p.write(this.base + Reg.GCMD, 4, (this.gcmd | Gcmd.WBF) >>> 0);
    for (let i = 0; i < POLL_LIMIT; i++) if (!((await this.p.read(this.base + Reg.GSTS, 4)) & Gcmd.WBF)) return;
  }

  /** Context-cache invalidation at a named site (skippable in tests). */
  async flushContext(site: InvalidationSite, scope: ContextScope): Promise<void> {
    if (this.opts.skip?.has(site)) { this.log.push(`  (skipped ${site} context invalidation)`); return; }
    await this.invalidator.context(scope);
  }

  /** IOTLB invalidation at a named site; PSI falls back to DSI as Linux does. */
  async flushIotlb(site: InvalidationSite, scope: IotlbScope): Promise<void> {
    if (this.opts.skip?.has(site)) { this.log.push(`  (skipped ${site} IOTLB invalidation)`); return; }
    let s = scope;
    if (s.kind === 'page' && (!this.capf('PSI') || s.am > this.capf('MAMV'))) s = { kind: 'domain', did: s.did };
    await this.invalidator.iotlb(s, this.capf('DRD') === 1, this.capf('DWD') === 1);
  }

  /** PASID-cache invalidation at a named site (scalable mode only). */
  async flushPasidCache(site: InvalidationSite, scope: PasidCacheScope): Promise<void> {
    if (this.opts.skip?.has(site)) { this.log.push(`  (skipped ${site} PASID-cache invalidation)`); return; }
    await this.qi.pasidCache(scope);
  }

  /** PASID-based IOTLB invalidation at a named site (scalable mode only). */
  async flushPasidIotlb(site: InvalidationSite, scope: PasidIotlbScope): Promise<void> {
    if (this.opts.skip?.has(site)) { this.log.push(`  (skipped ${site} PASID-based IOTLB invalidation)`); return; }
    await this.qi.pasidIotlb(scope);
  }

  /** Index-selective IEC invalidation of 2^im entries from `index`, at a named site (skippable in tests). */
  async flushIec(site: InvalidationSite, index: number, im: number): Promise<void> {
    if (this.opts.skip?.has(site)) { this.log.push(`  (skipped ${site} interrupt-entry-cache invalidation)`); return; }
    await this.invalidator.iec(false, index, im);
  }

  /** Allocates a domain ID (never 0; never 1 in scalable mode). */
  allocDid(): number {
    for (let d = 1; d < this.domainCount; d++) if (!this.dids.has(d)) { this.dids.add(d); return d; }
    throw new Error('VT-d: out of domain IDs');
  }

  /** Step 4 of Linux: enable queued invalidation (IQT=0, IQA, QIE). */
  async enableQi(): Promise<void> {
    if (this.opts.noQi || !this.ecapf('QI')) {
      this.log.push('  queued invalidation not used: register-based invalidation');
      return;
    }
    if (this.gcmd & Gcmd.QIE) await this.disableQi();
    // Linux: 256-bit descriptors whenever the unit offers scalable mode, whichever mode is used.
    const iqa = await this.qi.prepare(this.ecapf('SMTS') === 1);
    await this.p.write64(this.base + Reg.IQT, 0n);
    await this.p.write64(this.base + Reg.IQA, iqa);
    const gsts = await this.setPersistent(Gcmd.QIE, true);
    this.invalidator = this.qi;
    this.log.push(`  QI: IQA 0x${iqa.toString(16)} (256 descriptors of ${this.qi.descSize * 8} bits), GCMD.QIE -> GSTS 0x${gsts.toString(16)}`);
  }

  /** Disables QI after the queue drained (IQH == IQT). */
  async disableQi(): Promise<void> {
    for (let i = 0; i < POLL_LIMIT; i++) {
      if ((await this.p.read64(this.base + Reg.IQT)) === (await this.p.read64(this.base + Reg.IQH))) break;
    }
    await this.setPersistent(Gcmd.QIE, false);
    this.invalidator = new RegisterInvalidator(this.p, this.base, this.ecapf('IRO') * REG_UNIT);
  }

  /** Steps 3 and 5: translation off, root table, invalidations, fault interrupt; TE is enabled by `enableTranslation`. */
  async initDmar(): Promise<void> {
    if (this.gcmd & Gcmd.TE) {
      const g = await this.setPersistent(Gcmd.TE, false);
      this.log.push(`  translation was left on by firmware: disabled (GSTS 0x${g.toString(16)})`);
    }
    this.rootTable = await this.alloc.page();
    await this.flushWriteBuffer();
    const rtaddr = BigInt(this.rootTable) | (this.scalable ? RTADDR_SMT : 0n);
    await this.p.write64(this.base + Reg.RTADDR, rtaddr);
    const gsts = await this.oneShot(Gcmd.SRTP, true);
    this.log.push(`  root table at 0x${this.rootTable.toString(16)}: RTADDR 0x${rtaddr.toString(16)}${this.scalable ? ' (SMT: scalable mode)' : ''}, ` +
      `GCMD.SRTP -> GSTS 0x${gsts.toString(16)}`);
    if (this.capf('ESRTPS')) {
      this.log.push('  CAP.ESRTPS: SRTP flushed the caches, no global invalidation');
    } else {
      await this.flushContext('bringup-context', { kind: 'global' });
      if (this.scalable) await this.flushPasidCache('bringup-pasid-cache', { kind: 'global' });
      await this.flushIotlb('bringup-iotlb', { kind: 'global' });
      this.log.push(`  global context-cache${this.scalable ? ', PASID-cache' : ''} and IOTLB invalidation (${this.invalidator.kind})`);
    }
    const vector = this.opts.faultVector ?? DEFAULT_FAULT_VECTOR;
    const addr = this.opts.faultAddress ?? MSI_ADDRESS_BASE;
    await this.p.write(this.base + Reg.FEDATA, 4, vector);
    await this.p.write(this.base + Reg.FEADDR, 4, addr);
    await this.p.write(this.base + Reg.FEUADDR, 4, 0);
    await this.clearFaults();
    await this.p.write(this.base + Reg.FECTL, 4, 0);
    this.log.push(`  fault interrupt: FEDATA 0x${vector.toString(16)} FEADDR 0x${addr.toString(16)} FECTL 0 (unmasked)`);
  }

  /** Enables translation, then turns protected memory off. */
  async enableTranslation(): Promise<void> {
    const gsts = await this.setPersistent(Gcmd.TE, true);
    this.log.push(`unit 0x${this.base.toString(16)}: translation enabled, GCMD.TE -> GSTS 0x${gsts.toString(16)}`);
    if (this.capf('PLMR') || this.capf('PHMR')) {
      const pmen = await this.p.read(this.base + Reg.PMEN, 4);
      await this.p.write(this.base + Reg.PMEN, 4, pmen & ~Pmen.EPM);
      for (let i = 0; i < POLL_LIMIT; i++) if (!((await this.p.read(this.base + Reg.PMEN, 4)) & Pmen.PRS)) break;
      this.log.push('  protected memory regions disabled');
    }
  }

  /** Disables translation (used on shutdown / reset tests). */
  async disableTranslation(): Promise<void> {
    await this.setPersistent(Gcmd.TE, false);
  }

  /** Reads and clears pending fault records. */
  clearFaults(): Promise<FaultRecord[]> {
    return handleFaults(this.p, this.base, this.froBytes, this.nfr);
  }

  /** FECTL value (for checking the interrupt-pending bit). */
  async faultControl(): Promise<number> {
    return this.p.read(this.base + Reg.FECTL, 4);
  }
}

/** FECTL bits re-exported for callers checking IP. */
export { Fectl };
