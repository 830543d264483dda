/**
 * Test support for the QI/IR modules: a minimal IommuCore over real guest
 * RAM and the real register file, recording what the extension asks the core
 * to do (invalidations, faults, fault status, MSIs).  Used by the colocated
 * unit tests only; the whole-machine tests use the real IntelIommu.
 */
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { createRam } from '../../memory/ram-backend.js';
import { VirtualClock } from '../../core/clock.js';
import type { InterruptOrigin } from '../../core/irq.js';
import type { PropValues, Tracer } from '../../machine/device-type.js';
import { capValue, ecapValue } from './caps.js';
import { createIommuEmitter } from './events.js';
import type { ContextInvalidation, FaultExtra, IommuCore, IotlbInvalidation } from './hooks.js';
import { resolveIommuConfig } from './props.js';
import { defineVtdRegisters, RegisterFile, registerFileSize } from './registers.js';
import { Fsts, Gsts, Reg } from './reg-layout.js';
import { qiIrExtension, type QiIrHooks } from './queue-ir-extension.js';

/** Guest RAM size of the test core. */
export const TEST_RAM_SIZE = 32 * 1024 * 1024;

/** One recorded fault. */
export interface RecordedFault {
  sid: number;
  reason: number;
  addr: number;
  isWrite: boolean;
  extra?: FaultExtra;
}

/** One recorded MSI. */
export interface RecordedMsi {
  address: number;
  data: number;
  origin: InterruptOrigin;
}

const NO_TRACE: Tracer = { enabled: () => false, trace: () => {} };

/**
 * A fake core with the QI/IR extension attached.  It provides what IommuCore
 * had when written; it is handed over with a cast so that members the core
 * adds later do not break this file.
 */
export class TestCore implements Pick<IommuCore,
  'config' | 'regs' | 'memory' | 'msi' | 'clock' | 'tracer' | 'events' | 'haw' | 'qiEnabled' | 'irEnabled' |
  'invalidateContext' | 'invalidateIotlb' | 'recordFault' | 'raiseFaultStatus' | 'signalEvent'> {
  readonly config;
  readonly regs: RegisterFile;
  readonly memory: AddressSpace;
  readonly clock = new VirtualClock('qtest');
  readonly events = createIommuEmitter();
  readonly haw: number;
  readonly faults: RecordedFault[] = [];
  readonly msis: RecordedMsi[] = [];
  readonly contextInv: ContextInvalidation[] = [];
  readonly iotlbInv: IotlbInvalidation[] = [];
  readonly faultStatus: number[] = [];
  readonly msi = { deliverMsi: (address: number, data: number, origin: InterruptOrigin) => { this.msis.push({ address, data, origin }); } };
  readonly hooks: QiIrHooks;
  private ir = false;

  constructor(props: PropValues = {}, readonly tracer: Tracer = NO_TRACE) {
    this.config = resolveIommuConfig({ 'aw-bits': 39, intremap: 'on', ...props });
    this.haw = this.config.awBits;
    this.regs = new RegisterFile(registerFileSize(this.config.nfr));
    defineVtdRegisters(this.regs, capValue(this.config), ecapValue(this.config), this.config.nfr);
    const root = new ContainerRegion('system', 2 ** 64);
    root.add(new RamRegion('ram', TEST_RAM_SIZE, createRam(TEST_RAM_SIZE, 'ts')), 0);
    this.memory = new AddressSpace('memory', root);
    this.hooks = qiIrExtension(this as unknown as IommuCore) as QiIrHooks;
  }

  qiEnabled(): boolean {
    return (this.regs.get32(Reg.GSTS) & Gsts.QIES) !== 0;
  }
  irEnabled(): boolean {
    return this.ir;
  }
  invalidateContext(inv: ContextInvalidation): void {
    this.contextInv.push(inv);
  }
  invalidateIotlb(inv: IotlbInvalidation): void {
    this.iotlbInv.push(inv);
  }
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void {
    this.faults.push(extra ? { sid, reason, addr, isWrite, extra } : { sid, reason, addr, isWrite });
  }
  raiseFaultStatus(bits: number): void {
    this.faultStatus.push(bits);
    this.regs.setClear32(Reg.FSTS, bits, 0);
  }
  signalEvent(): void {}

  // ---- guest-side helpers -------------------------------------------------

  /** A guest register write through the masks, then the matching hook. */
  write32(off: number, value: number): void {
    this.regs.write32(off, value);
    const h = this.hooks;
    if (off === Reg.IQT) h.onIqtWrite?.();
    else if (off === Reg.IQA || off === Reg.IQA + 4) h.onIqaWrite?.();
    else if (off === Reg.ICS) h.onIcsWrite?.();
    else if (off === Reg.IECTL) h.onIectlWrite?.();
    else if (off === Reg.FSTS) h.onFstsWrite?.();
  }

  /** A 64-bit guest write: both halves stored, then the hook once. */
  write64(off: number, value: bigint): void {
    this.regs.write32(off + 4, Number((value >> 32n) & 0xffff_ffffn));
    this.write32(off, Number(value & 0xffff_ffffn));
  }

  /** Guest read of a 32-bit register. */
  read32(off: number): number {
    return this.hooks.readOverride?.(off) ?? this.regs.read32(off);
  }

  /** GCMD.QIE as the core would handle it; returns GSTS.QIES afterwards. */
  setQie(on: boolean): boolean {
    if (this.qiEnabled() === on) return on;
    // As the core does: QIES is set before an enable is offered, cleared if refused.
    if (on) this.regs.setClear32(Reg.GSTS, Gsts.QIES, 0);
    const accepted = this.hooks.onQieChange?.(on) ?? false;
    if (on !== accepted) this.regs.setClear32(Reg.GSTS, 0, Gsts.QIES);
    return this.qiEnabled();
  }

  /** Programs IQA (base | QS) and enables QI. */
  enableQueue(base: number, qs = 0): void {
    this.write32(Reg.IQA, (base | qs) >>> 0);
    this.write32(Reg.IQA + 4, Math.floor(base / 2 ** 32));
    this.setQie(true);
  }

  /** Writes a descriptor (two qwords) at `base + index * 16`. */
  putDesc(base: number, index: number, qw0: bigint, qw1 = 0n): void {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, qw0, true);
    v.setBigUint64(8, qw1, true);
    this.memory.writeBytes(base + index * 16, b);
  }

  /** Moves the tail to `index` (IQT = index << 4). */
  setTail(index: number): void {
    this.write32(Reg.IQT, index << 4);
  }

  /** IQH as a descriptor index. */
  head(): number {
    return this.read32(Reg.IQH) >>> 4;
  }

  /** FSTS.IQE. */
  iqe(): boolean {
    return (this.read32(Reg.FSTS) & Fsts.IQE) !== 0;
  }

  /** Reads a little-endian dword of guest memory. */
  mem32(addr: number): number {
    const b = new Uint8Array(4);
    this.memory.readBytes(addr, b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  /** Writes bytes of guest memory. */
  poke(addr: number, bytes: Uint8Array): void {
    this.memory.writeBytes(addr, bytes);
  }

  /** GCMD.SIRTP / IRE as the core would do. */
  setIrta(base: number, s: number, eime = false): void {
    this.regs.write32(Reg.IRTA, (base | s | (eime ? 1 << 11 : 0)) >>> 0);
    this.regs.write32(Reg.IRTA + 4, Math.floor(base / 2 ** 32));
    this.regs.setClear32(Reg.GSTS, Gsts.IRTPS, 0);
    this.hooks.onSirtp?.();
  }
  setIre(on: boolean): void {
    this.ir = on;
    this.regs.setClear32(Reg.GSTS, on ? Gsts.IRES : 0, on ? 0 : Gsts.IRES);
    this.hooks.onIreChange?.(on);
  }
}
