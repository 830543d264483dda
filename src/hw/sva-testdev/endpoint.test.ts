/**
 * The endpoint side (endpoint.ts): ATC invalidation requests under
 * CONTROL, and page-group responses -- the counters, LAST_PRG, PRI
 * accounting, and whether the waiting command resumes now, later (it is
 * executing) or not at all (not its PRGI).
 */
import { describe, expect, it } from 'vitest';
import { ALL_PASIDS, NO_PASID, newAtsCompletion } from '../../memory/iommu.js';
import { PciDevice } from '../../pci/device.js';
import { PriReg, PriStatusBit } from '../../pci/pcie-pri.js';
import { DeviceAtc } from './atc.js';
import { SvaEndpointSide, type SvaResume } from './endpoint.js';
import { NO_RESPONSE, SvaJob } from './job.js';
import { addSvaCapabilities, SVA_PCI_INIT } from './pci-identity.js';
import { SvaRegisters } from './registers.js';
import { SvaControl, SvaIrq, SvaPci } from './regs.js';

const PAGE = 0x1000;

class BareFunction extends PciDevice {}

class FakeEngine implements SvaResume {
  readonly resumed: number[] = [];
  resume(code: number): void {
    this.resumed.push(code);
  }
}

function setup() {
  const fn = new BareFunction(SVA_PCI_INIT);
  const { pri } = addSvaCapabilities(fn);
  fn.configWrite(SvaPci.PriCap + PriReg.Allocation, 4, 4);
  fn.configWrite(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  pri.configWritten(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  const msis: number[] = [];
  const regs = new SvaRegisters({ msiEnabled: () => true, msiNotify: (v) => msis.push(v) });
  const job = new SvaJob();
  const atc = new DeviceAtc();
  const engine = new FakeEngine();
  const side = new SvaEndpointSide(job, regs, atc, pri, engine);
  /** A cached 4 KiB read/write translation of `pasid` at `addr`. */
  const cache = (pasid: number, addr: number) => {
    const c = newAtsCompletion();
    c.addrMask = PAGE - 1;
    c.read = true;
    atc.insert(pasid, addr, c);
  };
  /** The job waits for the response to PRGI `prgi` (one PRI credit taken). */
  const waitFor = (prgi: number) => {
    pri.issue();
    job.pending = true;
    job.pendingPrgi = prgi;
  };
  const priStatus = () => fn.configRead(SvaPci.PriCap + PriReg.Status, 2);
  return { pri, regs, job, atc, engine, side, msis, cache, waitFor, priStatus };
}

describe('ATC invalidation requests', () => {
  it('drop the overlapping entries of the PASID, count in INV_COUNT, raise the ATC invalidated interrupt', () => {
    const { regs, atc, side, msis, cache } = setup();
    cache(1, 0x5000);
    cache(2, 0x5000);
    cache(NO_PASID, 0x5000);
    regs.irqEnable = SvaIrq.AtcInvalidated;
    expect(side.invalidateAtc(1, 0x5000, PAGE)).toBe('done');
    expect([atc.lookup(1, 0x5000), atc.count, regs.invCount, regs.irqStatus, msis]).toEqual([null, 2, 1, SvaIrq.AtcInvalidated, [0]]);
    expect(side.invalidateAtc(ALL_PASIDS, 0, 2 ** 64)).toBe('done');
    expect([atc.count, regs.invCount]).toEqual([0, 2]);
  });

  it('CONTROL.STALL leaves them unanswered, CONTROL.FAIL fails them: nothing dropped, counted or raised', () => {
    const { regs, atc, side, cache } = setup();
    cache(1, 0x5000);
    regs.control = SvaControl.Stall | SvaControl.Fail;
    expect(side.invalidateAtc(1, 0x5000, PAGE)).toBe('timeout');
    regs.control = SvaControl.Fail;
    expect(side.invalidateAtc(1, 0x5000, PAGE)).toBe('error');
    expect([atc.count, regs.invCount, regs.irqStatus]).toEqual([1, 0, 0]);
  });

  it('INV_COUNT wraps at 2^32', () => {
    const { regs, side } = setup();
    regs.invCount = 0xffff_ffff;
    side.invalidateAtc(1, 0, PAGE);
    expect(regs.invCount).toBe(0);
  });
});

describe('page-group responses', () => {
  it('to the waiting command: PRG_COUNT, LAST_PRG, the credit back, the interrupt, then the command resumes', () => {
    const { pri, regs, job, engine, side, msis, waitFor } = setup();
    regs.irqEnable = SvaIrq.PageResponse;
    waitFor(0x1a5);
    side.pageGroupResponse(7, 0x1a5, 0);
    expect([regs.prgCount, regs.lastPrg, pri.outstanding(), regs.irqStatus, msis]).toEqual([1, 0x01a5_0000, 0, SvaIrq.PageResponse, [0]]);
    expect([job.pending, engine.resumed]).toEqual([false, [0]]);
  });

  it('the code is 4 bits and the PRGI 9 bits; the PASID plays no part', () => {
    const { regs, engine, side, waitFor } = setup();
    waitFor(0x1ff);
    side.pageGroupResponse(NO_PASID, 0x3ff, 0x31);
    expect([regs.lastPrg, engine.resumed]).toEqual([0x01ff_0001, [1]]);
  });

  it('while the command executes: kept for the engine, not resumed here', () => {
    const { job, engine, side, waitFor } = setup();
    waitFor(3);
    job.running = true;
    side.pageGroupResponse(1, 3, 0x7fff_fff1);
    expect([job.pending, job.deferredCode, engine.resumed]).toEqual([false, 1, []]);
  });

  it('another PRGI, or nothing waiting: counted and recorded, Unexpected PRG Index, no credit back, no resumption', () => {
    const { pri, regs, job, engine, side, waitFor, priStatus } = setup();
    side.pageGroupResponse(1, 0, 0);
    waitFor(4);
    side.pageGroupResponse(1, 5, 0);
    expect([regs.prgCount, regs.lastPrg, pri.outstanding(), job.pending, job.deferredCode, engine.resumed]).toEqual([2, 0x0005_0000, 1, true, NO_RESPONSE, []]);
    expect(priStatus() & PriStatusBit.UnexpectedPrgIndex).toBe(PriStatusBit.UnexpectedPrgIndex);
    expect(regs.irqStatus).toBe(SvaIrq.PageResponse);
  });

  it('Response Failure sets PRI Response Failure (and the command still resumes with it)', () => {
    const { engine, side, waitFor, priStatus } = setup();
    waitFor(0);
    expect(priStatus() & PriStatusBit.ResponseFailure).toBe(0);
    side.pageGroupResponse(1, 0, 0xf);
    expect(priStatus() & PriStatusBit.ResponseFailure).toBe(PriStatusBit.ResponseFailure);
    expect(engine.resumed).toEqual([0xf]);
  });

  it('PRG_COUNT wraps at 2^32', () => {
    const { regs, side } = setup();
    regs.prgCount = 0xffff_ffff;
    side.pageGroupResponse(1, 0, 0);
    expect(regs.prgCount).toBe(0);
  });
});
