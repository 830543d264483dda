/**
 * The command `sva-testdev` is running or waiting on (its "job"): the
 * COMMAND, ADDR, LENGTH and PASID it was issued with, the page requests it
 * issued so far, and where it stands:
 *  - running: executing; BAR0 refuses accesses, and a page-group response
 *    arriving meanwhile is kept (`deferredCode`) for the command engine;
 *  - pending: its one page request is outstanding (STATUS.PENDING), under
 *    PRGI `pendingPrgi`.
 *
 * ADDR is held as a 4 KiB page base (a number, exact up to 2^64) and the
 * offset into that page.  A command covers at most two pages (LENGTH is at
 * most 4 KiB); the page helpers name each page's base (wrapping past
 * 2^64 - 1) and the bytes of the job in it.
 */
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import { TWO_POW_32 } from '../../memory/address.js';
import { NO_PASID } from '../../memory/iommu.js';
import { ATC_PAGE_SIZE } from './atc.js';
import { SvaCmd } from './regs.js';

/** ADDR bits 11:0: the offset into a 4 KiB page. */
export const PAGE_OFFSET_MASK = ATC_PAGE_SIZE - 1;
/** A command spans at most two pages (LENGTH is at most 4 KiB). */
export const MAX_PAGES = 2;
/** No page-group response waiting to be handled. */
export const NO_RESPONSE = -1;
/** Device addresses wrap past 2^64 - 1. */
const ADDRESS_SPAN = 2 ** 64;

/** The command being run or waiting, as it was when issued. */
export class SvaJob {
  /** COMMAND as issued. */
  cmd = 0;
  /** ADDR as a 4 KiB page base (exact up to 2^64) and the offset into that page. */
  page = 0;
  offset = 0;
  length = 0;
  /** PASID of its requests (NO_PASID without the PASID flag). */
  pasid = NO_PASID;
  /** Page requests it issued so far (retries included). */
  issued = 0;
  /** A command is executing: BAR0 refuses accesses; responses are deferred. */
  running = false;
  /** A page request is outstanding for the job (STATUS.PENDING), with this PRGI. */
  pending = false;
  pendingPrgi = 0;
  /** A response to the job that arrived while it was running (NO_RESPONSE: none). */
  deferredCode = NO_RESPONSE;

  /** Takes on command `cmd` with the registers' ADDR, LENGTH and PASID (used with the PASID flag only). */
  start(cmd: number, addrLo: number, addrHi: number, length: number, pasid: number): void {
    this.cmd = cmd;
    this.page = addrHi * TWO_POW_32 + ((addrLo & ~PAGE_OFFSET_MASK) >>> 0);
    this.offset = addrLo & PAGE_OFFSET_MASK;
    this.length = length;
    this.pasid = cmd & SvaCmd.PASID ? pasid : NO_PASID;
    this.issued = 0;
  }

  /** The opcode of the command. */
  get opcode(): number {
    return this.cmd & SvaCmd.OPCODE_MASK;
  }

  /** True for READ and WRITE (the commands a successful page-group response retries). */
  isTransfer(): boolean {
    const op = this.opcode;
    return op === SvaCmd.Read || op === SvaCmd.Write;
  }

  /** Pages the job covers: 1, or 2 when its bytes cross a 4 KiB boundary. */
  pageCount(): number {
    return this.offset + this.length > ATC_PAGE_SIZE ? MAX_PAGES : 1;
  }

  /** Base of the job's page `i` (wrapping past 2^64). */
  pageBase(i: number): number {
    const p = this.page + i * ATC_PAGE_SIZE;
    return p >= ADDRESS_SPAN ? p - ADDRESS_SPAN : p;
  }

  /** Offset into page `i` where the job's bytes start. */
  pageStart(i: number): number {
    return i === 0 ? this.offset : 0;
  }

  /** Bytes of the job in page `i`. */
  pageBytes(i: number): number {
    const first = Math.min(this.length, ATC_PAGE_SIZE - this.offset);
    return i === 0 ? first : this.length - first;
  }

  /** Snapshot: the job as issued and where it stands. */
  saveState(): SnapshotSection {
    return {
      cmd: this.cmd,
      page: this.page,
      offset: this.offset,
      length: this.length,
      pasid: this.pasid,
      issued: this.issued,
      running: this.running,
      pending: this.pending,
      pendingPrgi: this.pendingPrgi,
      deferredCode: this.deferredCode,
    };
  }

  /** Loads what saveState saved. */
  loadState(r: SectionReader): void {
    const cmd = r.u32('cmd');
    const page = r.num('page', 0, ADDRESS_SPAN);
    const offset = r.int('offset', 0, PAGE_OFFSET_MASK);
    const length = r.u32('length');
    const pasid = r.int('pasid', NO_PASID, 0xf_ffff);
    const issued = r.u32('issued');
    const running = r.bool('running');
    const pending = r.bool('pending');
    const pendingPrgi = r.u32('pendingPrgi');
    const deferredCode = r.int('deferredCode', NO_RESPONSE, 0xffff);
    Object.assign(this, { cmd, page, offset, length, pasid, issued, running, pending, pendingPrgi, deferredCode });
  }

  /** Device reset: the command, its page-request count and its wait are forgotten. */
  reset(): void {
    this.cmd = 0;
    this.issued = 0;
    this.pending = false;
    this.deferredCode = NO_RESPONSE;
  }
}
