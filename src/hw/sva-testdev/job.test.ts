/**
 * The job (job.ts) through its interface: ADDR split into page and offset,
 * the PASID only with the PASID flag, the pages a command covers (one or
 * two, wrapping past 2^64 - 1), and what a device reset forgets.
 */
import { describe, expect, it } from 'vitest';
import { NO_PASID } from '../../memory/iommu.js';
import { MAX_PAGES, NO_RESPONSE, PAGE_OFFSET_MASK, SvaJob } from './job.js';
import { SvaCmd } from './regs.js';

const PAGE = 0x1000;

/** A job started with ADDR `addr` (below 2^53), LENGTH and PASID. */
function started(cmd: number, addr: number, length: number, pasid = 7): SvaJob {
  const job = new SvaJob();
  job.start(cmd, addr % 2 ** 32, Math.floor(addr / 2 ** 32), length, pasid);
  return job;
}

describe('SvaJob.start', () => {
  it('splits ADDR into a 4 KiB page base and an offset, exact above 2^53', () => {
    const job = new SvaJob();
    job.start(SvaCmd.Read, 0x8765_4abc, 0xffff_fff0, 16, 3);
    expect([job.page, job.offset, job.length, job.cmd]).toEqual([0xffff_fff0 * 2 ** 32 + 0x8765_4000, 0xabc, 16, SvaCmd.Read]);
    expect(job.page % PAGE).toBe(0);
    expect(PAGE_OFFSET_MASK).toBe(PAGE - 1);
  });

  it('takes the PASID only with the PASID flag, and counts page requests from 0', () => {
    const job = started(SvaCmd.Read | SvaCmd.PASID, 0, 1, 9);
    expect(job.pasid).toBe(9);
    job.issued = 3;
    job.start(SvaCmd.Read, 0, 0, 1, 9);
    expect([job.pasid, job.issued]).toEqual([NO_PASID, 0]);
  });

  it('opcode and isTransfer: READ and WRITE are transfers, whatever the flags', () => {
    const kinds = [SvaCmd.Nop, SvaCmd.Read, SvaCmd.Write, SvaCmd.Translate, SvaCmd.PageRequest, SvaCmd.AtcFlush].map((op) => {
      const job = started(op | SvaCmd.ATC | SvaCmd.PRI | SvaCmd.WRITE, 0, 1);
      return [job.opcode, job.isTransfer()];
    });
    expect(kinds).toEqual([
      [0, false],
      [1, true],
      [2, true],
      [3, false],
      [4, false],
      [5, false],
    ]);
  });
});

describe('SvaJob pages', () => {
  it('a command inside one page: one page, its bytes from the offset', () => {
    const job = started(SvaCmd.Read, 0x5000 + 0x100, 0xf00);
    expect([job.pageCount(), job.pageBase(0), job.pageStart(0), job.pageBytes(0)]).toEqual([1, 0x5000, 0x100, 0xf00]);
  });

  it('a full page at offset 0 is one page', () => {
    const job = started(SvaCmd.Read, 0x5000, PAGE);
    expect([job.pageCount(), job.pageBytes(0)]).toEqual([1, PAGE]);
  });

  it('a command crossing a 4 KiB boundary: two pages, the bytes split between them', () => {
    const job = started(SvaCmd.Write, 0x5ff0, 0x20);
    expect(job.pageCount()).toBe(MAX_PAGES);
    expect([job.pageBase(0), job.pageStart(0), job.pageBytes(0)]).toEqual([0x5000, 0xff0, 0x10]);
    expect([job.pageBase(1), job.pageStart(1), job.pageBytes(1)]).toEqual([0x6000, 0, 0x10]);
  });

  it('the second page wraps past 2^64 - 1 to address 0', () => {
    const job = new SvaJob();
    job.start(SvaCmd.Read, 0xffff_fffc, 0xffff_ffff, 8, 0);
    expect([job.pageBase(0), job.pageBase(1), job.pageBytes(0), job.pageBytes(1)]).toEqual([2 ** 64 - PAGE, 0, 4, 4]);
  });
});

describe('SvaJob.reset', () => {
  it('forgets the command, its page-request count and its wait; keeps the rest', () => {
    const job = started(SvaCmd.Write | SvaCmd.PASID, 0x3000, 8, 4);
    Object.assign(job, { issued: 2, running: true, pending: true, pendingPrgi: 5, deferredCode: 0 });
    job.reset();
    expect([job.cmd, job.issued, job.pending, job.deferredCode]).toEqual([0, 0, false, NO_RESPONSE]);
    expect([job.running, job.pendingPrgi, job.page, job.pasid]).toEqual([true, 5, 0x3000, 4]);
  });

  it('a new job starts idle', () => {
    const job = new SvaJob();
    expect([job.cmd, job.pasid, job.running, job.pending, job.deferredCode]).toEqual([0, NO_PASID, false, false, NO_RESPONSE]);
  });
});
