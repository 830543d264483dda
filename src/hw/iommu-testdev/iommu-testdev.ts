/**
 * QEMU 11.1's IOMMU test device (`-device iommu-testdev`, hw/misc/iommu-testdev.c),
 * register for register; see regs.ts for the map.
 *
 * A guest programs the IOVA, the GPA it expects the IOVA to translate to and
 * a length, rings the doorbell (result: busy) and reads the trigger register:
 * the device writes its pattern at the IOVA through its IOMMU address space,
 * reads back at the GPA from system memory and leaves the outcome in the
 * result register, all within that read.  Like QEMU's, the DMA goes through
 * `pci_device_iommu_address_space` directly, not the bus-master address
 * space: it happens with bus mastering disabled too.
 *
 * The attribute register only decides the 0xDEAD0006 check: its secure bit
 * and ARM security space mean nothing to x86 memory or to VT-d (in QEMU they
 * ride along in MemTxAttrs and nothing on q35 looks at them).
 *
 * Re-entrancy: QEMU blocks an access to a device's own MMIO while that device
 * is inside an MMIO callback (MemReentrancyGuard: the access fails with
 * MEMTX_ACCESS_ERROR and is not performed).  A DMA that hits BAR0, at the
 * IOVA or at the GPA, therefore fails (0xDEAD0002 / 0xDEAD0003) without
 * touching the registers; here BAR0 refuses accesses while the DMA runs and
 * the device counts the refusal as that failure.
 */
import type { Tracer } from '../../machine/device-type.js';
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import { PciDevice } from '../../pci/device.js';
import { PatternDma, type SystemMemoryReader } from './pattern-dma.js';
import { ITD_ACCESS_SIZE, ITD_ATTRS_RESET, ItdDoorbell, ItdPci, ItdReg, ItdResult, attrsInconsistent } from './regs.js';

/** Construction options of an iommu-testdev. */
export interface IommuTestdevOptions {
  /** System memory (QEMU address_space_memory): where the GPA is read back. */
  readonly systemMemory: SystemMemoryReader;
  readonly tracer?: Tracer;
}

/** The iommu-testdev PCI function. */
export class IommuTestdev extends PciDevice {
  /** BAR0. */
  readonly mmio: MmioRegion;
  private iovaLo = 0;
  private iovaHi = 0;
  private gpaLo = 0;
  private gpaHi = 0;
  private length = 0;
  private result: number = ItdResult.Idle;
  private armed = false;
  private attrs = ITD_ATTRS_RESET;
  /** A DMA is running: BAR0 refuses accesses (QEMU's re-entrancy guard). */
  private inDma = false;
  /** BAR0 refused an access during the running DMA. */
  private blocked = false;
  private readonly engine: PatternDma;
  private readonly tracer: Tracer | undefined;

  constructor(options: IommuTestdevOptions) {
    super({
      typeName: 'iommu-testdev',
      vendorId: ItdPci.VendorId,
      deviceId: ItdPci.DeviceId,
      revision: ItdPci.Revision,
      classCode: ItdPci.ClassCode,
      subsystemVendorId: ItdPci.SubsystemVendorId,
      subsystemId: ItdPci.SubsystemId,
    });
    this.tracer = options.tracer;
    this.engine = new PatternDma(this.iommuDma, options.systemMemory);
    const ops: MmioOps = {
      read: (offset) => this.read(offset),
      write: (offset, _size, value) => this.write(offset, value),
    };
    this.mmio = new MmioRegion('iommu-testdev.bar0', ItdPci.MmioSize, ops, {
      valid: { min: ITD_ACCESS_SIZE, max: ITD_ACCESS_SIZE },
      impl: { min: ITD_ACCESS_SIZE, max: ITD_ACCESS_SIZE },
    });
    this.registerBar(0, this.mmio, 'mem32');
  }

  /** True between a doorbell arm and the trigger that consumes it. */
  get isArmed(): boolean {
    return this.armed;
  }

  /** Snapshot: the registers and the doorbell (a DMA runs inside one access, never across a save). */
  protected override saveDeviceState(): SnapshotSection {
    return {
      iovaLo: this.iovaLo,
      iovaHi: this.iovaHi,
      gpaLo: this.gpaLo,
      gpaHi: this.gpaHi,
      length: this.length,
      result: this.result,
      armed: this.armed,
      attrs: this.attrs,
    };
  }

  protected override loadDeviceState(r: SectionReader): void {
    const iovaLo = r.u32('iovaLo');
    const iovaHi = r.u32('iovaHi');
    const gpaLo = r.u32('gpaLo');
    const gpaHi = r.u32('gpaHi');
    const length = r.u32('length');
    const result = r.u32('result');
    const armed = r.bool('armed');
    const attrs = r.u32('attrs');
    this.iovaLo = iovaLo;
    this.iovaHi = iovaHi;
    this.gpaLo = gpaLo;
    this.gpaHi = gpaHi;
    this.length = length;
    this.result = result;
    this.armed = armed;
    this.attrs = attrs;
    this.inDma = false;
    this.blocked = false;
  }

  /** QEMU iommu_testdev_reset: everything 0, result idle, disarmed, attributes Non-secure space. */
  protected override deviceReset(): void {
    this.iovaLo = 0;
    this.iovaHi = 0;
    this.gpaLo = 0;
    this.gpaHi = 0;
    this.length = 0;
    this.result = ItdResult.Idle;
    this.armed = false;
    this.attrs = ITD_ATTRS_RESET;
  }

  private read(offset: number): number {
    if (this.inDma) return this.refuse();
    switch (offset) {
      case ItdReg.Trigger:
        this.runDma();
        return 0;
      case ItdReg.IovaLo:
        return this.iovaLo;
      case ItdReg.IovaHi:
        return this.iovaHi;
      case ItdReg.Length:
        return this.length;
      case ItdReg.Result:
        return this.result;
      case ItdReg.Attrs:
        return this.attrs;
      case ItdReg.GpaLo:
        return this.gpaLo;
      case ItdReg.GpaHi:
        return this.gpaHi;
      default:
        return 0;
    }
  }

  private write(offset: number, value: number): void {
    if (this.inDma) {
      this.refuse();
      return;
    }
    const v = value >>> 0;
    switch (offset) {
      case ItdReg.IovaLo:
        this.iovaLo = v;
        break;
      case ItdReg.IovaHi:
        this.iovaHi = v;
        break;
      case ItdReg.Length:
        this.length = v;
        break;
      case ItdReg.Result:
        this.result = v;
        break;
      case ItdReg.Doorbell:
        this.armed = (v & ItdDoorbell.Arm) !== 0;
        this.result = this.armed ? ItdResult.Busy : ItdResult.Idle;
        break;
      case ItdReg.Attrs:
        this.attrs = v;
        break;
      case ItdReg.GpaLo:
        this.gpaLo = v;
        break;
      case ItdReg.GpaHi:
        this.gpaHi = v;
        break;
    }
  }

  /** A BAR0 access from inside the device's own DMA: not performed (reads 0), and the DMA fails. */
  private refuse(): number {
    this.blocked = true;
    if (this.tracing('iommu_testdev_reentrant')) this.tracer!.trace('iommu_testdev_reentrant', {});
    return 0;
  }

  /** A trigger read (QEMU iommu_testdev_maybe_run_dma). */
  private runDma(): void {
    if (!this.armed) this.result = ItdResult.NotArmed;
    else if (this.length === 0) this.result = ItdResult.BadLength;
    else if (attrsInconsistent(this.attrs)) this.result = ItdResult.BadAttrs;
    else this.result = this.transfer();
    this.armed = false;
    if (this.tracing('iommu_testdev_dma_result')) this.tracer!.trace('iommu_testdev_dma_result', { result: this.result });
  }

  /** Steps 1-3: write at the IOVA, read back at the GPA, compare; BAR0 refuses accesses meanwhile. */
  private transfer(): number {
    this.inDma = true;
    this.blocked = false;
    try {
      if (!this.engine.write(this.iovaLo, this.iovaHi, this.length) || this.blocked) return ItdResult.TxFail;
      const r = this.engine.readBack(this.gpaLo, this.gpaHi, this.length);
      return this.blocked ? ItdResult.ReadFail : r;
    } finally {
      this.inDma = false;
    }
  }

  /** True when `event` is traced (checked before building the fields: no allocation otherwise). */
  private tracing(event: string): boolean {
    return this.tracer !== undefined && this.tracer.enabled(event);
  }
}
