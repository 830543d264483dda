/**
 * The command engine of `sva-testdev`: a COMMAND write runs the command
 * before the write returns, except that a command waiting for a page-group
 * response stays PENDING until the response arrives (regs.ts lists the
 * commands and results).
 *
 *  - NOP and ATC_FLUSH end at once.  Any other command while one is
 *    pending, or an unknown opcode, is BAD_COMMAND.
 *  - Checks before READ / WRITE / TRANSLATE / PAGE_REQUEST: LENGTH in
 *    1..4096 (not for PAGE_REQUEST), the PASID flag needs PASID Enable and
 *    a PASID within the enabled width, the ATC flag and TRANSLATE need ATS
 *    Enable.
 *  - The job then runs from scratch (transfer.ts, ats-requests.ts).  A
 *    page-group response arriving while it runs (host code answering from
 *    inside the page request) is handled when the port call returns: a
 *    Success response retries a READ / WRITE from scratch; otherwise the
 *    response ends the command (Success: OK, Invalid Request: PRG_INVALID,
 *    anything else: PRG_FAILURE).
 *  - A command that ends sets RESULT, traces it, and raises the Done
 *    interrupt; one left PENDING sets RESULT and traces it only.
 *  - A PRI Reset (config space) while a command waits forgets its page
 *    request: the command ends with PRI_UNAVAILABLE instead of waiting
 *    forever.
 */
import type { Tracer } from '../../machine/device-type.js';
import type { DeviceAtc } from './atc.js';
import type { SvaAtsRequests } from './ats-requests.js';
import type { SvaBar0Device } from './bar0.js';
import { NO_RESPONSE, type SvaJob } from './job.js';
import type { SvaCaps } from './pci-identity.js';
import type { SvaRegisters } from './registers.js';
import { SVA_BUFFER_SIZE, SvaCmd, SvaIrq, SvaResult, SvaStatus } from './regs.js';
import type { SvaTransfer } from './transfer.js';

/** Page-group response codes (PCIe Base 6.0 §10.4.2): success, invalid request. */
export const PRG_SUCCESS = 0;
export const PRG_INVALID = 1;
/** The trace event of a command's RESULT. */
const TRACE_RESULT = 'sva_testdev_result';

/** Runs the commands the guest writes to COMMAND. */
export class SvaCommandEngine implements SvaBar0Device {
  constructor(
    private readonly job: SvaJob,
    private readonly regs: SvaRegisters,
    private readonly atc: DeviceAtc,
    private readonly caps: SvaCaps,
    private readonly transfer: SvaTransfer,
    private readonly requests: SvaAtsRequests,
    private readonly tracer: Tracer | undefined,
  ) {}

  /** True while a command executes (BAR0 refuses accesses). */
  get busy(): boolean {
    return this.job.running;
  }

  /** STATUS: PENDING and the ATS / PASID / PRI enables. */
  status(): number {
    const { ats, pasidCap, pri } = this.caps;
    return (
      (this.job.pending ? SvaStatus.Pending : 0) |
      (ats.enabled() ? SvaStatus.AtsEnabled : 0) |
      (pasidCap.enabled() ? SvaStatus.PasidEnabled : 0) |
      (pri.enabled() ? SvaStatus.PriEnabled : 0)
    );
  }

  /** A COMMAND write. */
  runCommand(cmd: number): void {
    const regs = this.regs;
    regs.command = cmd;
    const op = cmd & SvaCmd.OPCODE_MASK;
    if (op === SvaCmd.Nop) return this.finish(SvaResult.Ok);
    if (op === SvaCmd.AtcFlush) {
      this.atc.flush();
      return this.finish(SvaResult.Ok);
    }
    if (this.job.pending || op > SvaCmd.PageRequest) return this.finish(SvaResult.BadCommand);
    const r = this.check(cmd, op);
    if (r !== SvaResult.Ok) return this.finish(r);
    this.job.start(cmd, regs.addrLo, regs.addrHi, regs.length, regs.pasid);
    this.execute();
  }

  /** The waiting command's response arrived: retry a transfer or finish. */
  resume(code: number): void {
    if (code === PRG_SUCCESS && this.job.isTransfer()) this.execute();
    else this.finish(responseResult(code));
  }

  /** After a config write: only a PRI Reset forgets the one request a waiting command has outstanding. */
  priConfigWritten(): void {
    if (this.job.pending && this.caps.pri.outstanding() === 0) {
      this.job.pending = false;
      if (!this.job.running) this.finish(SvaResult.PriUnavailable);
    }
  }

  /** The checks before a READ / WRITE / TRANSLATE / PAGE_REQUEST runs. */
  private check(cmd: number, op: number): number {
    const { ats, pasidCap } = this.caps;
    const length = this.regs.length;
    if (op !== SvaCmd.PageRequest && (length === 0 || length > SVA_BUFFER_SIZE)) return SvaResult.BadCommand;
    if (cmd & SvaCmd.PASID && !(pasidCap.enabled() && pasidCap.accepts(this.regs.pasid))) return SvaResult.PasidDisabled;
    const usesAts = op === SvaCmd.Translate || (op !== SvaCmd.PageRequest && (cmd & SvaCmd.ATC) !== 0);
    if (usesAts && !ats.enabled()) return SvaResult.AtsDisabled;
    return SvaResult.Ok;
  }

  /** Runs the job; a response arriving during a page request is handled here, after the port returns. */
  private execute(): void {
    const job = this.job;
    job.running = true;
    job.deferredCode = NO_RESPONSE;
    let r: number;
    // Whatever happens inside (even a host bug that throws), the engine is not left busy.
    try {
      for (;;) {
        r = this.attempt();
        if (r !== SvaResult.Pending || job.pending) break;
        const code = job.deferredCode;
        job.deferredCode = NO_RESPONSE;
        if (code === NO_RESPONSE) {
          // A PRI Reset during the page request forgot it.
          r = SvaResult.PriUnavailable;
          break;
        }
        if (code !== PRG_SUCCESS || !job.isTransfer()) {
          r = responseResult(code);
          break;
        }
      }
    } finally {
      job.running = false;
    }
    if (r === SvaResult.Pending) {
      this.regs.result = SvaResult.Pending;
      this.traceResult();
    } else {
      this.finish(r);
    }
  }

  /** One run of the job from scratch. */
  private attempt(): number {
    const job = this.job;
    switch (job.opcode) {
      case SvaCmd.PageRequest:
        return this.requests.pageRequest(job.page, true, (job.cmd & SvaCmd.WRITE) !== 0);
      case SvaCmd.Translate:
        return this.transfer.translateAll();
      default: {
        const write = job.opcode === SvaCmd.Write;
        return job.cmd & SvaCmd.ATC ? this.transfer.throughAtc(write) : this.transfer.untranslated(write);
      }
    }
  }

  /** A command ended: RESULT, then the Done interrupt. */
  private finish(r: number): void {
    this.regs.result = r;
    this.traceResult();
    this.regs.raiseIrq(SvaIrq.Done);
  }

  private traceResult(): void {
    if (this.tracer !== undefined && this.tracer.enabled(TRACE_RESULT)) {
      this.tracer.trace(TRACE_RESULT, { command: this.regs.command, result: this.regs.result });
    }
  }
}

/** RESULT of a command ended by a page-group response. */
function responseResult(code: number): number {
  if (code === PRG_SUCCESS) return SvaResult.Ok;
  return code === PRG_INVALID ? SvaResult.PrgInvalid : SvaResult.PrgFailure;
}
