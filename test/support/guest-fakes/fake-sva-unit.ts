/**
 * A scalable-mode remapping unit for unit tests of the SVA guest code
 * (sva.ts, prq.ts, process-mm.ts) on a FakePlatform: the driver's view
 * (a VtdUnit with QI on a 256-bit queue) and a fake unit behind it that
 * consumes queued descriptors (recording them and writing wait status) and
 * holds the page-request registers.  Not a model of VT-d: only what those
 * tests observe.
 */
import { GuestAllocator } from '../../../src/guest/alloc.js';
import { FakePlatform, FAKE_RAM_PAGE } from './fake-platform.js';
import { PasidTable } from '../../../src/guest/linux-vtd/pasid.js';
import type { DeviceHandle } from '../../../src/guest/linux-vtd/domain.js';
import { PrqReg } from '../../../src/guest/linux-vtd/prq.js';
import type { SvaDevice } from '../../../src/guest/linux-vtd/sva.js';
import { VtdUnit } from '../../../src/guest/linux-vtd/unit.js';

/** The unit's register base and the guest RAM the allocator hands out. */
export const FAKE_UNIT_BASE = 0xfed9_0000;
const RAM_BASE = 0x100_0000;
const RAM_LIMIT = 0x400_0000;
const REG_WINDOW = 0x1000;
/** IQT register; IQT/IQH hold index << 5 in a 256-bit queue of 256 entries. */
const IQT = 0x88;
const WIDE_SHIFT = 5n;
const QI_ENTRIES = 256;
const WIDE_DESC_SIZE = 32;
/** Wait descriptor: type 5, status write (SW) bit 5, status data in qw0 63:32. */
const TYPE_MASK = 0xfn;
const WAIT_TYPE = 5n;
const WAIT_SW = 1n << 5n;
const STATUS_SHIFT = 32n;
const PAGE_MASK = 0xfffn;
/** The device the helpers build: requester ID 00:02.0. */
export const SVA_SID = 0x10;
/** ECAP of QEMU 11.1 with svm=on (PDS bit 42 set) plus SMPWC (bit 48). */
export const ECAP_SVM = 0x0000_8d9a_20f0_0f4en | (1n << 48n);
/** ECAP.PDS and ECAP.SMPWC. */
export const ECAP_PDS = 1n << 42n;
export const ECAP_SMPWC = 1n << 48n;
/** CAP.CM (caching mode). */
export const CAP_CM = 1n << 7n;

/** Reads a qword of the fake's RAM directly (no trace line). */
export function u64(p: FakePlatform, addr: number): bigint {
  const page = p.ramPage(Math.floor(addr / FAKE_RAM_PAGE), true)!;
  return new DataView(page).getBigUint64(addr % FAKE_RAM_PAGE, true);
}

/** A unit's registers and queue consumer over the fake platform's RAM. */
export class FakeUnit {
  readonly regs = new Map<number, bigint>();
  /** Descriptors consumed: [qw0, qw1]. */
  readonly descs: Array<readonly [bigint, bigint]> = [];
  private head = 0;
  queue = 0;

  constructor(private readonly p: FakePlatform) {
    p.mapMmio(FAKE_UNIT_BASE, REG_WINDOW, {
      read: (o) => this.regs.get(o) ?? 0n,
      write: (o, _s, v) => this.write(o, v),
    });
  }

  private write(off: number, v: bigint): void {
    if (off === PrqReg.PRS) { this.regs.set(off, (this.regs.get(off) ?? 0n) & ~v); return; }
    this.regs.set(off, v);
    if (off !== IQT) return;
    const tail = Number(v >> WIDE_SHIFT);
    for (; this.head !== tail; this.head = (this.head + 1) % QI_ENTRIES) {
      const at = this.queue + this.head * WIDE_DESC_SIZE;
      const q0 = u64(this.p, at);
      const q1 = u64(this.p, at + 8);
      this.descs.push([q0, q1]);
      if (isStatusWait(q0)) new DataView(this.p.ramPage(Number(q1) / FAKE_RAM_PAGE | 0, true)!).setUint32(Number(q1) % FAKE_RAM_PAGE, Number(q0 >> STATUS_SHIFT), true);
    }
  }

  /** Descriptor types consumed since the last call, with the status waits shown as 'W'. */
  take(): string[] {
    return this.descs.splice(0).map(([q0]) => (isStatusWait(q0) ? 'W' : String(Number(q0 & TYPE_MASK))));
  }
}

/** A wait descriptor with a status write (the queue's own completion wait). */
function isStatusWait(q0: bigint): boolean {
  return (q0 & TYPE_MASK) === WAIT_TYPE && (q0 & WAIT_SW) !== 0n;
}

/** The fake platform, the driver's unit, the fake behind it and the guest allocator. */
export interface FakeSvaEnv {
  readonly p: FakePlatform;
  readonly unit: VtdUnit;
  readonly fake: FakeUnit;
  readonly alloc: GuestAllocator;
}

/** A scalable-mode unit with QI on the fake (CAP 0 and ECAP_SVM unless given), root table allocated. */
export async function fakeSvaUnit(opts: { cap?: bigint; ecap?: bigint } = {}): Promise<FakeSvaEnv> {
  const p = new FakePlatform();
  const alloc = new GuestAllocator(p, RAM_BASE, RAM_LIMIT);
  const fake = new FakeUnit(p);
  const unit = new VtdUnit(p, FAKE_UNIT_BASE, alloc);
  unit.cap = opts.cap ?? 0n;
  unit.ecap = opts.ecap ?? ECAP_SVM;
  unit.levels = 4;
  unit.scalable = true;
  fake.queue = Number((await unit.qi.prepare(true)) & ~PAGE_MASK);
  unit.invalidator = unit.qi;
  unit.rootTable = await alloc.page();
  return { p, unit, fake, alloc };
}

/** A device handle (00:02.0) with a PASID table and ATS / PASID / PRI on (as `over` says). */
export async function fakeSvaDevice(unit: VtdUnit, over: Partial<{ atsEnabled: boolean; priEnabled: boolean }> = {}): Promise<SvaDevice> {
  const dev: DeviceHandle = { name: '00:02.0', sids: [SVA_SID], unit, rmrrs: [], domain: undefined, pasidTable: await new PasidTable(unit).init() };
  return {
    dev,
    sid: SVA_SID,
    pcie: {
      caps: { ats: { offset: 0x100, qdep: 32, pageAligned: true }, pasid: { offset: 0x110, width: 20, exec: true, priv: true }, pri: { offset: 0x120, capacity: 32, pasidRequired: false } },
      atsEnabled: over.atsEnabled ?? true,
      priEnabled: over.priEnabled ?? true,
    },
  };
}
