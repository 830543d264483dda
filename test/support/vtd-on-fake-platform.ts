/**
 * A real VT-d unit (the IntelIommu, with its invalidation queue and
 * interrupt remapper, built as VtdBench builds it) mounted on a FakePlatform, for
 * tests of guest drivers without a machine.
 *
 * The unit's register window is the platform's MMIO at `base`; the unit
 * reads its root / context tables, invalidation queue and IRT from, and
 * writes wait status to, the platform's own RAM (the same 4 KiB pages, shared
 * through `FakePlatform.ramPage`, in the first `FAKE_VTD_RAM_SIZE` bytes);
 * its MSIs (fault and invalidation events) reach the platform's interrupt
 * hub.  Units mounted on one platform share one system address space.
 *
 * Each unit logs what the guest did to it, for tests of register sequences:
 * every register write ("GCMD 0x4000000", "CCMD 0xa000000000000000"; names
 * as in reg-layout.ts, other offsets in hex) and, after an IQT write, each
 * descriptor the unit consumed ("QI type 1 0x11"; 16 or 32 bytes apart, as
 * the queue's descriptor width in force, IQA.DW on a scalable-mode unit).
 */
import { AddressSpace } from '../../src/memory/address-space.js';
import { ChunkedRam } from '../../src/memory/ram.js';
import { ContainerRegion, RamRegion } from '../../src/memory/region.js';
import type { MsiTarget } from '../../src/core/irq.js';
import { VirtualClock } from '../../src/core/clock.js';
import type { PropValues } from '../../src/machine/device-type.js';
import { IntelIommu } from '../../src/hw/intel-iommu/device.js';
import { resolveIommuConfig } from '../../src/hw/intel-iommu/props.js';
import { MMIO_SIZE, Reg } from '../../src/hw/intel-iommu/reg-layout.js';
import { FAKE_RAM_PAGE, type FakePlatform } from './guest-fakes/fake-platform.js';
import type { RecordedMsi } from './vtd-bench.js';

/** Platform RAM the unit sees (from address 0); the guest tests allocate well below it. */
export const FAKE_VTD_RAM_SIZE = 0x4000_0000;

/** Options of a mounted unit. */
export interface MountVtdOptions {
  /** intel-iommu properties; `aw-bits` defaults to 39 (the driver picks 3-level tables). */
  readonly props?: PropValues;
  /**
   * CAP bits the unit does not advertise (the register the guest reads; the
   * unit behaves as before), e.g. `Cap.ESRTPS`: the guest must then
   * invalidate globally after SRTP.
   */
  readonly capClear?: bigint;
  /** GCMD bits set before the guest starts, e.g. `Gcmd.TE` (firmware left translation on); not logged. */
  readonly firmwareGcmd?: number;
}

/** A unit on a FakePlatform. */
export interface MountedVtd {
  readonly iommu: IntelIommu;
  readonly base: number;
  /** Guest register writes and consumed descriptors, in order (see the file comment). */
  readonly log: string[];
  /** MSIs the unit sent (also delivered to the platform's interrupt hub). */
  readonly msis: RecordedMsi[];
}

/** Register names by offset (the first name of an offset in reg-layout.ts). */
const NAMES = new Map<number, string>();
for (const [name, off] of Object.entries(Reg)) if (!NAMES.has(off)) NAMES.set(off, name);

/** Bytes of a 128-bit descriptor; IQH holds its index from bit 4. */
const DESC_SIZE = 16;
const IQ_HEAD_SHIFT = 4;
/** Bytes of a 256-bit descriptor (IQA.DW in force); IQH holds its index from bit 5. */
const WIDE_DESC_SIZE = 32;
const WIDE_IQ_HEAD_SHIFT = 5;

/** IQA bits 63:12: the queue base. */
const IQA_BASE_MASK = ~0xfffn;
/** Descriptor bits 3:0: the type. */
const DESC_TYPE_MASK = 0xfn;
const LO32 = 0xffff_ffffn;

/** The system address space shared by the units of one platform. */
const systems = new WeakMap<FakePlatform, { system: ContainerRegion; memory: AddressSpace }>();

function systemOf(p: FakePlatform): { system: ContainerRegion; memory: AddressSpace } {
  let s = systems.get(p);
  if (!s) {
    const ram = new ChunkedRam(
      { chunkShift: Math.log2(FAKE_RAM_PAGE), size: FAKE_VTD_RAM_SIZE, chunk: (index, create) => p.ramPage(index, create) },
      'fake-platform',
    );
    const system = new ContainerRegion('system', 2 ** 40);
    system.add(new RamRegion('ram', FAKE_VTD_RAM_SIZE, ram), 0);
    s = { system, memory: new AddressSpace('memory', system) };
    systems.set(p, s);
  }
  return s;
}

/** Mounts a real VT-d unit at `base` of the platform's memory space. */
export function mountVtd(p: FakePlatform, base: number, opts: MountVtdOptions = {}): MountedVtd {
  const { system, memory } = systemOf(p);
  const msis: RecordedMsi[] = [];
  const msi: MsiTarget = {
    deliverMsi: (address, data, origin) => {
      msis.push({ address, data, origin });
      p.hub.deliver({ kind: 'msi', vector: data & 0xff, address, data });
    },
  };
  const config = resolveIommuConfig({ 'aw-bits': 39, ...opts.props });
  const iommu = new IntelIommu({ memory, msi, clock: new VirtualClock('qtest') }, config);
  system.add(iommu.region, base);
  if (opts.capClear) {
    const cap = iommu.regs.get64(Reg.CAP) & ~opts.capClear;
    iommu.regs.define32(Reg.CAP, Number(cap & LO32), 0, 0);
    iommu.regs.define32(Reg.CAP + 4, Number(cap >> 32n), 0, 0);
  }
  if (opts.firmwareGcmd) memory.write(base + Reg.GCMD, 4, opts.firmwareGcmd >>> 0);

  const log: string[] = [];
  /** The queue's descriptor width now: 256-bit while IQA.DW is honoured (scalable mode). */
  const wide = (): boolean => iommu.queue.wide;
  const head = (): number => memory.read(base + Reg.IQH, 4) >>> (wide() ? WIDE_IQ_HEAD_SHIFT : IQ_HEAD_SHIFT);
  /** Logs the descriptors the unit consumed between two IQH values. */
  const logConsumed = (from: number, to: number): void => {
    const size = wide() ? WIDE_DESC_SIZE : DESC_SIZE;
    // The queue wraps at the size latched at QIE enable (2^(QS+8) 128-bit or 2^(QS+7) 256-bit entries).
    const entries = iommu.queue.sizeEntries;
    const queue = Number(memory.read64(base + Reg.IQA) & IQA_BASE_MASK);
    for (let i = from; i !== to; i = (i + 1) % entries) {
      const qw0 = memory.read64(queue + i * size);
      log.push(`QI type ${Number(qw0 & DESC_TYPE_MASK)} 0x${qw0.toString(16)}`);
    }
  };
  p.mapMmio(base, MMIO_SIZE, {
    read(off, size) {
      return size === 8 ? memory.read64(base + off) : BigInt(memory.read(base + off, size) >>> 0);
    },
    write(off, size, value) {
      log.push(`${NAMES.get(off) ?? '0x' + off.toString(16)} 0x${value.toString(16)}`);
      const before = off === Reg.IQT ? head() : 0;
      if (size === 8) memory.write64(base + off, value);
      else memory.write(base + off, size, Number(value));
      if (off === Reg.IQT) logConsumed(before, head());
    },
  });
  return { iommu, base, log, msis };
}
