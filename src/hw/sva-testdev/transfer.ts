/**
 * The work of `sva-testdev`'s READ, WRITE and TRANSLATE commands on the
 * job's pages (job.ts): one attempt, from scratch; retries after page
 * requests are the command engine's.
 *
 *  - READ / WRITE without the ATC flag: one untranslated access of LENGTH
 *    bytes through `dma` (no PASID) or `dmaWithPasid`.
 *  - READ / WRITE with the ATC flag: the translation phase first -- every
 *    page needs a translation granting the access (a device-TLB hit, else a
 *    translation request; with the PRI flag, a completion lacking the access
 *    raises a page request, at most SVA_MAX_PAGE_REQUESTS per command) --
 *    and only then the data phase, so a command retried after a page
 *    request writes once.  A page moves as a translated request through
 *    `translatedDma()`, always without a PASID (a translated request
 *    carries none); a page whose translation has U set moves as an
 *    untranslated request instead (the spec's meaning of U).
 *  - TRANSLATE: a translation request for every page (No Write unless the
 *    WRITE flag), filling the ATC; no data moves.
 *
 * Device addresses are numbers, exact to 2^64 for page bases; from 2^53 on
 * the untranslated accesses use the bigint DMA entry points.
 */
import { MemTx } from '../../memory/address-space.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import { NO_PASID } from '../../memory/iommu.js';
import type { AtcEntry, DeviceAtc } from './atc.js';
import type { SvaAtsRequests } from './ats-requests.js';
import { MAX_PAGES, type SvaJob } from './job.js';
import { SVA_MAX_PAGE_REQUESTS, SvaCmd, SvaResult } from './regs.js';

/** From 2^53 on a number no longer holds every integer: the bigint DMA entry points take over. */
const EXACT_LIMIT = 2 ** 53;

/** The DMA spaces of the PCI function (PciDevice provides them). */
export interface SvaDmaHost {
  /** Untranslated requests without a PASID. */
  readonly dma: DmaMemory;
  /** Untranslated requests with `pasid`. */
  dmaWithPasid(pasid: number): DmaMemory;
  /** Translated requests (without a PASID). */
  translatedDma(): DmaMemory;
  /** Plugged into a bus (translated requests need one). */
  readonly plugged: boolean;
}

/** The translation and data phases of READ / WRITE / TRANSLATE. */
export class SvaTransfer {
  /** The translation of each page of the running transfer: translated page address, or U. */
  private readonly pageXlat = new Float64Array(MAX_PAGES);
  private readonly pageUntranslated = new Uint8Array(MAX_PAGES);

  constructor(
    private readonly host: SvaDmaHost,
    private readonly job: SvaJob,
    private readonly buffer: Uint8Array,
    private readonly atc: DeviceAtc,
    private readonly requests: SvaAtsRequests,
  ) {}

  /** READ / WRITE without the ATC: one untranslated access of LENGTH bytes. */
  untranslated(write: boolean): number {
    const job = this.job;
    const data = this.buffer.subarray(0, job.length);
    return move(this.untranslatedSpace(), job.page, job.offset, data, write) === MemTx.Ok ? SvaResult.Ok : SvaResult.DmaFault;
  }

  /** READ / WRITE through the ATC: translate every page, then move the data. */
  throughAtc(write: boolean): number {
    const pages = this.job.pageCount();
    for (let i = 0; i < pages; i++) {
      const r = this.translatePage(i, write);
      if (r !== SvaResult.Ok) return r;
    }
    return this.movePages(pages, write);
  }

  /** TRANSLATE: a translation request for every page, filling the ATC. */
  translateAll(): number {
    const noWrite = (this.job.cmd & SvaCmd.WRITE) === 0;
    for (let i = 0, pages = this.job.pageCount(); i < pages; i++) {
      const r = this.requests.translationRequest(this.job.pageBase(i), noWrite);
      if (r !== SvaResult.Ok) return r;
      const c = this.requests.completion;
      if (!(c.read || c.write || c.untranslatedOnly)) return SvaResult.NoAccess;
    }
    return SvaResult.Ok;
  }

  /** Makes sure page `i` has a usable translation (ATC hit or a new completion); may raise a page request. */
  private translatePage(i: number, write: boolean): number {
    const job = this.job;
    const page = job.pageBase(i);
    const hit = this.atc.lookup(job.pasid, page);
    if (hit !== null && allows(hit, write)) {
      this.record(i, hit, page);
      return SvaResult.Ok;
    }
    const r = this.requests.translationRequest(page, !write);
    if (r !== SvaResult.Ok) return r;
    const cached = this.requests.cached;
    if (cached !== null && allows(cached, write)) {
      this.record(i, cached, page);
      return SvaResult.Ok;
    }
    if (!(job.cmd & SvaCmd.PRI) || job.issued >= SVA_MAX_PAGE_REQUESTS) return SvaResult.NoAccess;
    return this.requests.pageRequest(page, !write, write);
  }

  /** Page `i` goes through entry `e`: its translated address, or untranslated (U). */
  private record(i: number, e: AtcEntry, page: number): void {
    this.pageUntranslated[i] = e.untranslatedOnly ? 1 : 0;
    this.pageXlat[i] = e.translated + (page - e.iova);
  }

  /** The data phase: every page moves, even after one failed; DMA_FAULT if any did. */
  private movePages(pages: number, write: boolean): number {
    const job = this.job;
    let r: number = SvaResult.Ok;
    for (let i = 0, done = 0; i < pages; i++) {
      const n = job.pageBytes(i);
      const data = this.buffer.subarray(done, done + n);
      done += n;
      let tx: MemTx;
      if (this.pageUntranslated[i]) {
        tx = move(this.untranslatedSpace(), job.pageBase(i), job.pageStart(i), data, write);
      } else if (!this.host.plugged) {
        tx = MemTx.DecodeError;
      } else {
        const mem = this.host.translatedDma();
        const at = this.pageXlat[i]! + job.pageStart(i);
        tx = write ? mem.write(at, data) : mem.read(at, data);
      }
      if (tx !== MemTx.Ok) r = SvaResult.DmaFault;
    }
    return r;
  }

  /** The job's untranslated DMA space (with its PASID, if any). */
  private untranslatedSpace(): DmaMemory {
    const pasid = this.job.pasid;
    return pasid === NO_PASID ? this.host.dma : this.host.dmaWithPasid(pasid);
  }
}

/** True when a cached translation serves an access (a U entry serves any, untranslated). */
function allows(e: AtcEntry, write: boolean): boolean {
  return e.untranslatedOnly || (write ? e.write : e.read);
}

/** One untranslated access at page + offset (the bigint entry points from 2^53 on). */
function move(mem: DmaMemory, page: number, offset: number, data: Uint8Array, write: boolean): MemTx {
  const addr = page + offset;
  if (addr + data.length <= EXACT_LIMIT) return write ? mem.write(addr, data) : mem.read(addr, data);
  const wide = BigInt(page) + BigInt(offset);
  return write ? mem.writeWide(wide, data) : mem.readWide(wide, data);
}
