/**
 * The requests `sva-testdev` sends its host's AtsPort for the job
 * (job.ts): ATS translation requests (PCIe Base 6.0 §10.2.2) and page
 * requests (§10.4.1).
 *
 *  - Bus mastering gates both (the whole chain of bridges, as the DMA
 *    spaces do): with it off neither goes out and the command ends with
 *    DMA_FAULT.
 *  - No port (no ATS on the host): a translation request completes as
 *    Unsupported Request; a page request is refused (its PRI credit comes
 *    straight back).
 *  - A translation request's completion sets LAST_ATS and XLAT, and is
 *    cached in the ATC when it grants any access (R, W or U).
 *  - A page request takes a PRI credit (none left, PRI disabled or
 *    stopped: PRI_UNAVAILABLE), counts in PRQ_COUNT, and carries LPIG and
 *    the PRGI register.  Queued: the job waits (PENDING) -- the response
 *    may even arrive before the port call returns.  Dropped on overflow or
 *    refused: no response will come, so the credit comes back at once.
 */
import { hi32, iova, lo32 } from '../../memory/address.js';
import { AtsStatus, newAtsCompletion, type AtsCompletion, type AtsEndpoint, type AtsPort } from '../../memory/iommu.js';
import type { PriCap } from '../../pci/pcie-pri.js';
import { translationSize, type AtcEntry, type DeviceAtc } from './atc.js';
import { NO_RESPONSE, PAGE_OFFSET_MASK, type SvaJob } from './job.js';
import type { SvaRegisters } from './registers.js';
import { SvaCmd, SvaLastAts, SvaResult } from './regs.js';

/** LAST_ATS status field width (4 bits) and size field width (8 bits). */
const ATS_STATUS_MASK = 0xf;
const ATS_SIZE_MASK = 0xff;
/** Page requests are one-page groups: Last Page In Group on every one. */
const LAST_IN_GROUP = true;

/** What the requests need of the PCI function (PciDevice provides it). */
export interface SvaAtsHost {
  /** Bus master of the function and of every bridge above it. */
  masterChainEnabled(): boolean;
  /** The host's port, registering `endpoint` (null: no ATS there). */
  atsPort(endpoint: AtsEndpoint): AtsPort | null;
}

/** Translation requests and page requests of the job. */
export class SvaAtsRequests {
  /** The completion of the last translation request. */
  readonly completion: AtsCompletion = newAtsCompletion();
  private cachedEntry: AtcEntry | null = null;

  constructor(
    private readonly host: SvaAtsHost,
    private readonly endpoint: AtsEndpoint,
    private readonly job: SvaJob,
    private readonly regs: SvaRegisters,
    private readonly atc: DeviceAtc,
    private readonly pri: PriCap,
  ) {}

  /** The ATC entry the last translation request created (null: none). */
  get cached(): AtcEntry | null {
    return this.cachedEntry;
  }

  /**
   * One ATS translation request for `page`: the completion lands in
   * `completion` and LAST_ATS / XLAT, and is cached when it grants any
   * access.  Returns OK for any Success completion.
   */
  translationRequest(page: number, noWrite: boolean): number {
    if (!this.host.masterChainEnabled()) return SvaResult.DmaFault;
    const c = this.completion;
    this.cachedEntry = null;
    c.status = AtsStatus.Success;
    c.iova = page;
    c.translated = 0;
    c.addrMask = PAGE_OFFSET_MASK;
    c.read = false;
    c.write = false;
    c.untranslatedOnly = false;
    const port = this.port();
    if (port === null) c.status = AtsStatus.UnsupportedRequest;
    else port.translationRequest(this.job.pasid, iova(page), noWrite, c);
    this.recordCompletion(c.status === AtsStatus.Success);
    if (c.status === AtsStatus.UnsupportedRequest) return SvaResult.AtsUr;
    if (c.status !== AtsStatus.Success) return SvaResult.AtsCa;
    if (c.read || c.write || c.untranslatedOnly) this.cachedEntry = this.atc.insert(this.job.pasid, page, c);
    return SvaResult.Ok;
  }

  /** One page request for `page` (LPIG set, PRGI register); PENDING when the host queued it. */
  pageRequest(page: number, read: boolean, write: boolean): number {
    if (!this.host.masterChainEnabled()) return SvaResult.DmaFault;
    if (!this.pri.issue()) return SvaResult.PriUnavailable;
    const job = this.job;
    const regs = this.regs;
    job.issued++;
    const port = this.port();
    if (port === null) {
      this.pri.retire(1);
      return SvaResult.PrqRefused;
    }
    regs.prqCount = (regs.prqCount + 1) >>> 0;
    job.pending = true;
    job.pendingPrgi = regs.prgi;
    const status = port.pageRequest(job.pasid, {
      addr: page,
      read,
      write,
      execute: (job.cmd & SvaCmd.EXEC) !== 0,
      privileged: (job.cmd & SvaCmd.PRIV) !== 0,
      prgi: regs.prgi,
      last: LAST_IN_GROUP,
    });
    if (status === 'queued') return SvaResult.Pending;
    // Dropped or refused: no response will come; the credit comes back at once.
    if (job.pending) this.pri.retire(1);
    job.pending = false;
    job.deferredCode = NO_RESPONSE;
    return status === 'overflow' ? SvaResult.PrqOverflow : SvaResult.PrqRefused;
  }

  /** The host's port (null: no ATS there). */
  private port(): AtsPort | null {
    return this.host.atsPort(this.endpoint);
  }

  /** LAST_ATS and XLAT from `completion`. */
  private recordCompletion(success: boolean): void {
    const c = this.completion;
    const size = c.addrMask + 1;
    const log2 = Math.log2(size);
    const sizeField = Number.isInteger(log2) ? log2 & ATS_SIZE_MASK : 0;
    const perms = success ? (c.read ? SvaLastAts.R : 0) | (c.write ? SvaLastAts.W : 0) | (c.untranslatedOnly ? SvaLastAts.U : 0) : 0;
    this.regs.lastAts = (perms | ((c.status & ATS_STATUS_MASK) << SvaLastAts.STATUS_SHIFT) | (sizeField << SvaLastAts.SIZE_SHIFT)) >>> 0;
    const unit = translationSize(c.addrMask);
    const base = c.translated - (c.translated % unit);
    this.regs.xlatLo = lo32(base);
    this.regs.xlatHi = hi32(base);
  }
}
