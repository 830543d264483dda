/**
 * `sva-testdev`: vtemu's shared-virtual-addressing test device (a vtemu
 * extension; QEMU 11.1 has no device that issues ATS translation requests
 * or page requests).  See regs.ts for the register map and the commands.
 *
 * A PCI Express endpoint with MSI and the ATS, PASID and PRI extended
 * capabilities.  A guest programs ADDR / LENGTH / PASID and writes COMMAND;
 * the command runs before the write returns, except that a command waiting
 * for a page-group response stays PENDING until the response arrives.
 *
 * Request paths (PCIe Base 6.0 §10):
 *  - untranslated requests through `dma` (no PASID) or `dmaWithPasid`;
 *  - ATS translation requests and page requests through the host's AtsPort
 *    (`atsPort(endpoint)`); no port means no ATS on the host: translation
 *    requests complete as Unsupported Request, page requests are refused;
 *  - translated requests through `translatedDma()`, always without a PASID
 *    (a translated request carries none; QEMU refuses them with one).
 * Bus mastering gates all of them: the DMA spaces check it themselves, ATS
 * and PRI the device (the whole chain of bridges, as the DMA spaces do).
 *
 * This file is the composition; each concern has its module:
 *   pci-identity.ts    PCI identity, MSI, PCIe, ATS, PASID and PRI capabilities
 *   registers.ts       BAR0's register state, the buffer, interrupts
 *   bar0.ts            the BAR0 region and the decoding of guest accesses
 *   job.ts             the command being run or waiting, and its pages
 *   command-engine.ts  COMMAND: checks, execution, retries, RESULT, PRI Reset
 *   transfer.ts        READ / WRITE / TRANSLATE: translation and data phases
 *   ats-requests.ts    translation requests and page requests to the host
 *   endpoint.ts        ATC invalidations and page-group responses from the host
 *   atc.ts             the device-TLB
 */
import type { Tracer } from '../../machine/device-type.js';
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import type { AtsEndpoint } from '../../memory/iommu.js';
import type { MmioRegion } from '../../memory/region.js';
import { PciDevice } from '../../pci/device.js';
import type { AtsCap, PasidCap } from '../../pci/pcie-ext-caps.js';
import type { PriCap } from '../../pci/pcie-pri.js';
import { DeviceAtc } from './atc.js';
import { SvaAtsRequests } from './ats-requests.js';
import { SvaBar0 } from './bar0.js';
import { SvaCommandEngine } from './command-engine.js';
import { SvaEndpointSide } from './endpoint.js';
import { SvaJob } from './job.js';
import { addSvaCapabilities, SVA_PCI_INIT } from './pci-identity.js';
import { SvaRegisters } from './registers.js';
import { SvaTransfer } from './transfer.js';

/** BAR0's index and kind. */
const BAR0 = 0;
const BAR0_TYPE = 'mem32';

/** Construction options of an sva-testdev. */
export interface SvaTestdevOptions {
  readonly tracer?: Tracer;
}

/** The sva-testdev PCI Express function. */
export class SvaTestdev extends PciDevice {
  /** BAR0. */
  readonly mmio: MmioRegion;
  /** The data buffer (BAR0 0x1000-0x1FFF). */
  readonly buffer: Uint8Array;
  /** The device-TLB. */
  readonly atc = new DeviceAtc();
  readonly ats: AtsCap;
  readonly pasidCap: PasidCap;
  readonly pri: PriCap;
  /** What the host's AtsPort calls: ATC invalidations and page-group responses. */
  readonly endpoint: AtsEndpoint;

  private readonly regs: SvaRegisters;
  private readonly job = new SvaJob();
  private readonly engine: SvaCommandEngine;
  private readonly endpointSide: SvaEndpointSide;

  constructor(options: SvaTestdevOptions = {}) {
    super(SVA_PCI_INIT);
    this.regs = new SvaRegisters(this);
    this.buffer = this.regs.buffer;
    const caps = addSvaCapabilities(this);
    this.ats = caps.ats;
    this.pasidCap = caps.pasidCap;
    this.pri = caps.pri;
    this.endpoint = {
      invalidateAtc: (pasid, addr, size) => this.endpointSide.invalidateAtc(pasid, addr, size),
      pageGroupResponse: (pasid, prgi, code) => this.endpointSide.pageGroupResponse(pasid, prgi, code),
    };
    const requests = new SvaAtsRequests(this, this.endpoint, this.job, this.regs, this.atc, this.pri);
    const transfer = new SvaTransfer(this, this.job, this.buffer, this.atc, requests);
    this.engine = new SvaCommandEngine(this.job, this.regs, this.atc, caps, transfer, requests, options.tracer);
    this.endpointSide = new SvaEndpointSide(this.job, this.regs, this.atc, this.pri, this.engine);
    this.mmio = new SvaBar0(this.regs, this.atc, this.engine).region;
    this.registerBar(BAR0, this.mmio, BAR0_TYPE);
    // Invalidations and page-group responses reach the device from the start.
    this.declareAtsEndpoint(this.endpoint);
  }

  /** IRQ_STATUS (for tests and traces). */
  get interruptStatus(): number {
    return this.regs.irqStatus;
  }

  /** True while a command waits for a page-group response. */
  get isPending(): boolean {
    return this.job.pending;
  }

  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    super.configWrite(offset, size, value);
    this.pri.configWritten(offset, size, value);
    this.engine.priConfigWritten();
  }

  /**
   * Snapshot: BAR0's registers and buffer, the job, the PRI accounting.
   * The ATC is a cache and is not saved: a loaded device starts with it
   * empty (as after an ATC flush) and refills it by translation requests.
   */
  protected override saveDeviceState(): SnapshotSection {
    return { regs: this.regs.saveState(), job: this.job.saveState(), pri: this.pri.saveState() };
  }

  protected override loadDeviceState(r: SectionReader): void {
    const regs = r.sub('regs');
    const job = r.sub('job');
    const pri = r.sub('pri');
    this.regs.loadState(regs);
    this.job.loadState(job);
    this.pri.loadState(pri);
    this.atc.flush();
  }

  /** Everything back to power-on: registers, buffer, ATC, PRI accounting, the waiting command. */
  protected override deviceReset(): void {
    this.pri.reset();
    this.atc.flush();
    this.regs.reset();
    this.job.reset();
  }
}
