/**
 * The ATS/PRI endpoint side of `sva-testdev`: what the host's AtsPort
 * calls on the device.
 *
 *  - ATC invalidation requests (PCIe Base 6.0 §10.3): dropped from the
 *    device-TLB, counted in INV_COUNT, and signalled (ATC invalidated
 *    interrupt); CONTROL can leave them unanswered (STALL: the IOMMU times
 *    out) or answer them with an error (FAIL).
 *  - Page-group responses (§10.4.2): counted in PRG_COUNT, recorded in
 *    LAST_PRG (code and 9-bit PRGI), and signalled (page response
 *    interrupt).  A response to the waiting command's PRGI returns its PRI
 *    credit and resumes the command -- or, while the command is executing
 *    (the response came from inside the page request), is kept for the
 *    command engine.  Any other response counts as an Unexpected Page
 *    Request Group Index; a Response Failure code sets PRI's Response
 *    Failure status.
 */
import type { AtsInvalidationResult } from '../../memory/iommu.js';
import type { PriCap } from '../../pci/pcie-pri.js';
import type { DeviceAtc } from './atc.js';
import type { SvaJob } from './job.js';
import { SvaRegMask, type SvaRegisters } from './registers.js';
import { SvaControl, SvaIrq } from './regs.js';

/** Page-group response code field (4 bits); Response Failure. */
const PRG_CODE_MASK = 0xf;
const PRG_FAILURE = 0xf;
/** LAST_PRG: code in bits 3:0, PRGI in bits 24:16. */
const LAST_PRG_PRGI_SHIFT = 16;
/** A response retires the one page request of its group. */
const REQUESTS_PER_GROUP = 1;

/** The command engine as a response sees it. */
export interface SvaResume {
  /** The waiting command's page-group response (code) arrived: retry or finish it. */
  resume(code: number): void;
}

/** Handles the host's calls to the device. */
export class SvaEndpointSide {
  constructor(
    private readonly job: SvaJob,
    private readonly regs: SvaRegisters,
    private readonly atc: DeviceAtc,
    private readonly pri: PriCap,
    private readonly engine: SvaResume,
  ) {}

  /** An ATC invalidation request (PCIe §10.3): CONTROL can leave it unanswered or fail it. */
  invalidateAtc(pasid: number, addr: number, size: number): AtsInvalidationResult {
    const regs = this.regs;
    if (regs.control & SvaControl.Stall) return 'timeout';
    if (regs.control & SvaControl.Fail) return 'error';
    this.atc.invalidate(pasid, addr, size);
    regs.invCount = (regs.invCount + 1) >>> 0;
    regs.raiseIrq(SvaIrq.AtcInvalidated);
    return 'done';
  }

  /** A page-group response (PCIe §10.4.2); the PASID plays no part. */
  pageGroupResponse(_pasid: number, prgi: number, code: number): void {
    const regs = this.regs;
    const job = this.job;
    const c = code & PRG_CODE_MASK;
    const g = prgi & SvaRegMask.Prgi;
    regs.prgCount = (regs.prgCount + 1) >>> 0;
    regs.lastPrg = (c | (g << LAST_PRG_PRGI_SHIFT)) >>> 0;
    const ours = job.pending && g === job.pendingPrgi;
    if (ours) this.pri.retire(REQUESTS_PER_GROUP);
    else this.pri.unexpectedPrgIndex();
    if (c === PRG_FAILURE) this.pri.responseFailure();
    regs.raiseIrq(SvaIrq.PageResponse);
    if (!ours) return;
    job.pending = false;
    if (job.running) job.deferredCode = c;
    else this.engine.resume(c);
  }
}
